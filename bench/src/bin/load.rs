//! The load generator. One run: N subscribers, a load phase, an optional paced phase; prints
//! the report as one JSON line, then a line for people starting with `#`.
//!
//! ```text
//! load --url http://127.0.0.1:3000/rpc [--protocol orpc|trpc|orpc-ws|trpc-ws|orpc-h2|trpc-h2]
//!      [--label NAME] [--subscribers N] [--streams-per-connection K] [--events M] [--duration SECS] [--rate POSTS_PER_S] [--window W]
//!      [--publishers P]
//!      [--paced-rate POSTS_PER_S --paced-duration SECS] [--connect-concurrency C]
//!      [--connect-timeout SECS] [--server-pid PID] [--title-bytes B] [--settle SECS]
//!      [--threads T] [--post http|ws] [--source-addresses auto|none|K|IP,IP,...]
//! ```
//!
//! `--url` is the protocol's base: `/rpc` for oRPC, `/trpc` for tRPC. With `orpc-ws` and
//! `trpc-ws` the subscribers open WebSockets to the same host, port and path (`ws://…/trpc`) and
//! subscribe there; posts still go over HTTP, as for `orpc` and `trpc`, unless `--post ws`
//! (for servers that take calls over WebSocket only). With `orpc-h2` and `trpc-h2` the
//! subscribers send `orpc`'s and `trpc`'s request over HTTP/2 with prior knowledge (cleartext),
//! `--streams-per-connection` (default 1) of them on each connection; posts go over HTTP/1.1.
//! The load phase stops
//! after `--events` posts or `--duration` seconds (default 10), whichever comes first; with
//! `--rate 0` (the default) it posts as fast as the window allows, with up to `--publishers`
//! (default 4) posts in flight. `--threads 1` (the default)
//! runs the generator on one thread, so that its CPU use reads against one core.
//!
//! `--source-addresses` says which local addresses the subscribers connect from: one source
//! address reaches the server's address and port from at most the ephemeral port range (about
//! 28,000 ports by default), so `auto` (the default) spreads more than 25,000 subscriber
//! connections to a loopback server over ceil(connections / 25,000) addresses from 127.0.0.2 up
//! (all of 127.0.0.0/8 is loopback on Linux), and leaves fewer to the kernel, as before. `K` takes
//! K such loopback addresses, `none` the kernel's choice always, and a list those addresses.

use std::process::ExitCode;
use std::time::Duration;

use outer_bench::http::Url;
use outer_bench::load::{run, Config};
use outer_bench::protocol::Protocol;

const USAGE: &str =
    "usage: load --url URL [--protocol orpc|trpc|orpc-ws|trpc-ws|orpc-h2|trpc-h2] [--label NAME] [--subscribers N] \
[--streams-per-connection K] [--events M] [--duration SECS] [--rate R] [--window W] [--publishers P] [--paced-rate R --paced-duration SECS] \
[--connect-concurrency C] [--connect-timeout SECS] [--server-pid PID] [--title-bytes B] [--settle SECS] [--threads T] \
[--post http|ws] [--source-addresses auto|none|K|IP,IP,...]";

fn parse(args: impl IntoIterator<Item = String>) -> Result<(Config, usize), String> {
    let mut url = None;
    let mut protocol = Protocol::Orpc;
    let mut rest: Vec<(String, String)> = Vec::new();
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        if flag == "-h" || flag == "--help" {
            return Err(String::new());
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--url" => url = Some(Url::parse(&value).map_err(|e| e.to_string())?),
            "--protocol" => protocol = value.parse()?,
            _ => rest.push((flag, value)),
        }
    }
    let url = url.ok_or("--url is required")?;
    let mut config = Config::new(url, protocol, 100);
    let mut threads = 1;
    fn num<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, String> {
        value
            .parse()
            .map_err(|_| format!("{flag} {value}: not a number"))
    }
    let secs = |flag: &str, value: &str| -> Result<Duration, String> {
        let s: f64 = num(flag, value)?;
        Duration::try_from_secs_f64(s).map_err(|e| format!("{flag} {value}: {e}"))
    };
    let mut duration_set = false;
    for (flag, value) in rest {
        match flag.as_str() {
            "--label" => config.label = value,
            "--subscribers" => config.subscribers = num(&flag, &value)?,
            "--streams-per-connection" => {
                config.streams_per_connection = num(&flag, &value)?;
                if config.streams_per_connection == 0 {
                    return Err("--streams-per-connection is at least 1".into());
                }
            }
            "--events" => config.events = Some(num(&flag, &value)?),
            "--duration" => {
                config.duration = Some(secs(&flag, &value)?);
                duration_set = true;
            }
            "--rate" => config.rate = num(&flag, &value)?,
            "--window" => config.window = num(&flag, &value)?,
            "--publishers" => config.publishers = num(&flag, &value)?,
            "--paced-rate" => config.paced_rate = num(&flag, &value)?,
            "--paced-duration" => config.paced_duration = secs(&flag, &value)?,
            "--connect-concurrency" => config.connect_concurrency = num(&flag, &value)?,
            "--connect-timeout" => config.connect_timeout = secs(&flag, &value)?,
            "--server-pid" => config.server_pid = Some(num(&flag, &value)?),
            "--title-bytes" => config.title_len = num(&flag, &value)?,
            "--settle" => config.settle = secs(&flag, &value)?,
            "--threads" => threads = num(&flag, &value)?,
            "--source-addresses" => {
                config.source_addresses = value
                    .parse()
                    .map_err(|why| format!("--source-addresses {value}: {why}"))?
            }
            "--post" => {
                config.post_over_websocket = match value.as_str() {
                    "http" => false,
                    "ws" => true,
                    other => return Err(format!("--post takes http or ws, not {other:?}")),
                }
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if config.streams_per_connection > 1 && !config.protocol.is_http2() {
        return Err(format!(
            "--streams-per-connection is for orpc-h2 and trpc-h2, not {}",
            config.protocol
        ));
    }
    // `--events` alone bounds the phase by count only.
    if config.events.is_some() && !duration_set {
        config.duration = None;
    }
    Ok((config, threads))
}

fn main() -> ExitCode {
    let (config, threads) = match parse(std::env::args().skip(1)) {
        Ok(parsed) => parsed,
        Err(why) => {
            if !why.is_empty() {
                eprintln!("load: {why}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("load: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&config)) {
        Ok(report) => {
            println!("{}", report.to_json());
            println!("# {}", report.to_human());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!(
                "load: {} {} N={}: {err}",
                config.label, config.protocol, config.subscribers
            );
            ExitCode::FAILURE
        }
    }
}
