//! `write_floor [--sockets N] [--posts P] [--bytes B] [--per-write K] [--rate R] [--pin W,R]`:
//! the cost of a socket write on this machine, the bound under every server. See
//! `outer_bench::write_floor`.

use std::process::ExitCode;

use outer_bench::write_floor::{run, Config};

const USAGE: &str = "usage: write_floor [--sockets N] [--posts P] [--bytes B] [--per-write K] \
[--rate POSTS_PER_S (0: back to back)] [--pin WRITER_CPU,READER_CPU]";

fn parse(mut args: impl Iterator<Item = String>) -> Result<Config, String> {
    let mut config = Config::default();
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let num = |v: &str| {
            v.parse::<u64>()
                .map_err(|_| format!("{flag}: not a number: {v}"))
        };
        match flag.as_str() {
            "--sockets" => config.sockets = num(&value)? as usize,
            "--posts" => config.posts = num(&value)?,
            "--bytes" => config.event_bytes = num(&value)? as usize,
            "--per-write" => config.events_per_write = num(&value)? as usize,
            "--rate" => config.rate = num(&value)?,
            "--pin" => {
                let (w, r) = value
                    .split_once(',')
                    .ok_or_else(|| format!("--pin takes WRITER,READER, not {value}"))?;
                config.pin = Some((num(w)? as usize, num(r)? as usize));
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(config)
}

fn main() -> ExitCode {
    let config = match parse(std::env::args().skip(1)) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("write_floor: {err}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&config) {
        Ok(report) => {
            println!("{}", report.summary(&config));
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("write_floor: {err}");
            ExitCode::FAILURE
        }
    }
}
