//! The scenario on the host: writes exactly the bytes of `outer_embedded_scenario::run` to
//! stdout, as the board's `scenario` binary does over semihosting.

use std::io::Write;

fn main() -> std::io::Result<()> {
    let mut out = Vec::new();
    outer_embedded_scenario::run(&mut out);
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&out)?;
    stdout.flush()
}
