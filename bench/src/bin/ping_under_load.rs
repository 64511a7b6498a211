//! `ping_under_load --addr HOST:PORT [--streams N] [--pings P]`: how long a `ping` waits while
//! N `counter` streams with `delayMs: 0` are read flat out on other connections. Each ping is a
//! new connection, as a second client's would be. Prints the ping latency quantiles and the
//! streams' throughput.
//!
//! Any server with the chat's `ping` and `counter` (the chat example: `cargo run --release -p
//! outer-examples --bin chat -- --listen 127.0.0.1:3000 --runtime smol`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use outer_bench::histogram::Histogram;

const USAGE: &str = "usage: ping_under_load --addr HOST:PORT [--streams N] [--pings P]";

struct Config {
    addr: SocketAddr,
    streams: usize,
    pings: usize,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Config, String> {
    let (mut addr, mut streams, mut pings) = (None, 3, 200);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let num = |v: &str| {
            v.parse::<usize>()
                .map_err(|_| format!("{flag}: not a number: {v}"))
        };
        match flag.as_str() {
            "--addr" => addr = Some(value.parse().map_err(|e| format!("--addr {value}: {e}"))?),
            "--streams" => streams = num(&value)?,
            "--pings" => pings = num(&value)?.max(1),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    let addr = addr.ok_or("--addr is needed")?;
    Ok(Config {
        addr,
        streams,
        pings,
    })
}

/// Sends `request` on a new connection and reads until `until` appears; the time it took.
fn exchange(addr: SocketAddr, request: &[u8], until: &[u8]) -> std::io::Result<Duration> {
    let start = Instant::now();
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.write_all(request)?;
    let mut seen = Vec::new();
    let mut buffer = [0; 4096];
    while !seen.windows(until.len()).any(|w| w == until) {
        let n = stream.read(&mut buffer)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        seen.extend_from_slice(&buffer[..n]);
    }
    Ok(start.elapsed())
}

fn run(config: &Config) -> std::io::Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    let bytes = Arc::new(AtomicU64::new(0));
    let body = r#"{"json":{"from":1,"to":1000000000000,"delayMs":0}}"#;
    let request = format!(
        "POST /rpc/counter HTTP/1.1\r\nhost: bench\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut readers = Vec::new();
    for _ in 0..config.streams {
        let mut stream = TcpStream::connect(config.addr)?;
        stream.write_all(request.as_bytes())?;
        let (stop, bytes) = (Arc::clone(&stop), Arc::clone(&bytes));
        readers.push(std::thread::spawn(move || {
            let mut buffer = vec![0; 256 * 1024];
            while !stop.load(Ordering::Relaxed) {
                match stream.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => bytes.fetch_add(n as u64, Ordering::Relaxed),
                };
            }
        }));
    }
    // Let the streams get going.
    std::thread::sleep(Duration::from_secs(1));
    let (start, before) = (Instant::now(), bytes.load(Ordering::Relaxed));
    let latency = Histogram::new();
    let ping = b"POST /rpc/ping HTTP/1.1\r\nhost: bench\r\ncontent-type: application/json\r\n\
                 connection: close\r\ncontent-length: 16\r\n\r\n{\"json\":{\"n\":1}}";
    for _ in 0..config.pings {
        let took = exchange(config.addr, ping, b"{\"json\":{\"n\":1}}")?;
        latency.record(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX));
        std::thread::sleep(Duration::from_millis(10));
    }
    let elapsed = start.elapsed().as_secs_f64();
    let streamed = bytes.load(Ordering::Relaxed) - before;
    stop.store(true, Ordering::Relaxed);
    let ms = |ns: u64| ns as f64 / 1e6;
    println!(
        "{} pings beside {} counter streams: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms; streams {:.1} MB/s",
        latency.count(),
        config.streams,
        ms(latency.quantile(0.5)),
        ms(latency.quantile(0.9)),
        ms(latency.quantile(0.99)),
        ms(latency.max()),
        streamed as f64 / elapsed / 1e6,
    );
    // The readers end when the server closes their streams; do not wait for that.
    drop(readers);
    Ok(())
}

fn main() -> ExitCode {
    let config = match parse(std::env::args().skip(1)) {
        Ok(config) => config,
        Err(why) => {
            eprintln!("ping_under_load: {why}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("ping_under_load: {err}");
            ExitCode::FAILURE
        }
    }
}
