//! The chat example: the reference router served over oRPC at `/rpc` (oRPC 2 at `/rpc2`) and tRPC
//! at `/trpc`, with a page at `/` where a person posts and sees posts arrive live.
//!
//! ```text
//! chat [--listen 127.0.0.1:3000] [--runtime tokio|smol|monoio|monoio-epoll] [--test-hooks] [--redis URL]
//!      [--tls-cert FILE --tls-key FILE] [--max-connections N] [--max-streams N]
//! ```
//!
//! It prints `listening on http://ADDR` once it accepts connections (`--listen 127.0.0.1:0`
//! picks a free port), and shuts down gracefully on SIGINT or SIGTERM: open streams end so that
//! clients resume elsewhere. Every connection speaks HTTP/1.1 or HTTP/2. `--test-hooks` adds
//! `/__test/streams` and `/__test/drop` for failure tests (see `outer_http::TestHooks`); never
//! use it in production.
//!
//! `--tls-cert cert.pem --tls-key key.pem` serves HTTPS instead (`listening on https://ADDR`),
//! with ALPN offering HTTP/2, so a browser's page opens any number of event streams on one
//! connection; on tokio and smol.
//!
//! `--redis redis://127.0.0.1:6379` keeps posts in Redis instead of in memory, with the same
//! router (see `outer_examples::chat`): every chat server on that Redis shares them, and a
//! client resumes on any of them. Post ids are then Redis stream ids (`"1732000000000-0@3fa9c2d1"`).
//!
//! A request with `authorization: Bearer <name>` is signed in as `<name>`: `me` and
//! `mentions.live` need it.
//!
//! `GET /metrics` answers what Outer records (connections, streams, deliveries, resumes, gaps,
//! calls by procedure and code: see `outer_http::metrics`) in Prometheus's text format.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use outer_core::rt::Timer;
use outer_core::App;
use outer_examples::chat::{self, Chat, ChatCtx, RedisChat};
use outer_examples::prometheus::Prometheus;
use outer_http::ServerConfig;

const USAGE: &str =
    "usage: chat [--listen ADDR] [--runtime tokio|smol|monoio|monoio-epoll] [--test-hooks] [--redis URL]
            [--tls-cert FILE --tls-key FILE] [--max-connections N] [--max-streams N]
       chat --emit-typescript DIR";

const HELP: &str = "\
Serves the chat: oRPC at /rpc, oRPC 2 at /rpc2, tRPC at /trpc (over HTTP, and over WebSocket at
ws://ADDR/rpc and ws://ADDR/trpc), the page at / (/?transport=ws for WebSocket), and its metrics
in Prometheus's text format at /metrics. A request with
`authorization: Bearer <name>` (over tRPC's WebSocket, the connection parameter `authorization`)
is signed in as <name> (`me`, `mentions.live`). Connections speak HTTP/1.1 or HTTP/2 (prior
knowledge, or ALPN under TLS). SIGINT or SIGTERM shuts it down gracefully.

  --listen ADDR        the address to listen on (default 127.0.0.1:3000; port 0 picks one)
  --runtime NAME       tokio (default), smol, or monoio (one thread per core, each with
                       its own listener on the port; io_uring where the kernel has it);
                       monoio-epoll is monoio on its epoll driver
  --test-hooks         add /__test/streams and /__test/drop, for failure tests; never in production
  --redis URL          keep posts in this Redis (redis://HOST:PORT, or a cluster:
                       redis+cluster://HOST:PORT,HOST:PORT) instead of in memory
  --tls-cert FILE      serve HTTPS with this PEM certificate chain (and --tls-key); tokio, smol
  --tls-key FILE       the PEM private key of --tls-cert
  --max-connections N  keep at most N connections open (default 16384, or the descriptor
                       limit less 64 when lower); keep it under `ulimit -n`
  --max-streams N      serve at most N event streams at once (default 10000; more are
                       answered 503)
  --emit-typescript DIR
                       write DIR/orpc.ts (the oRPC contract) and DIR/trpc.ts (tRPC's AppRouter
                       type) for TypeScript clients, and exit; needs the typescript feature
  -h, --help           print this and exit";

#[derive(Debug)]
struct Args {
    listen: SocketAddr,
    runtime: Runtime,
    test_hooks: bool,
    /// Posts in this Redis rather than in memory.
    redis: Option<String>,
    /// `--tls-cert` and `--tls-key`: serve HTTPS with these PEM files.
    tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
    /// `--help`: print the usage and exit.
    help: bool,
    /// `--emit-typescript DIR`: write the clients' types there and exit.
    emit_typescript: Option<std::path::PathBuf>,
    /// `--max-connections N`: [`ServerConfig::max_connections`] rather than its default.
    max_connections: Option<usize>,
    /// `--max-streams N`: [`ServerConfig::max_streams`] rather than its default.
    max_streams: Option<usize>,
}

#[derive(Debug, PartialEq, Eq)]
enum Runtime {
    Tokio,
    Smol,
    /// On this driver.
    Monoio(outer_monoio::Driver),
}

/// Hand-parsed: three flags do not justify an argument-parser dependency.
fn parse(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args {
        listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
        runtime: Runtime::Tokio,
        test_hooks: false,
        redis: None,
        tls: None,
        help: false,
        emit_typescript: None,
        max_connections: None,
        max_streams: None,
    };
    let (mut cert, mut key) = (None, None);
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--listen" => {
                let value = args.next().ok_or("--listen needs an address")?;
                parsed.listen = value
                    .parse()
                    .map_err(|err| format!("--listen {value}: {err}"))?;
            }
            "--runtime" => match args.next().as_deref() {
                Some("tokio") => parsed.runtime = Runtime::Tokio,
                Some("smol") => parsed.runtime = Runtime::Smol,
                Some("monoio") => {
                    parsed.runtime = Runtime::Monoio(outer_monoio::Driver::available())
                }
                Some("monoio-epoll") => {
                    parsed.runtime = Runtime::Monoio(outer_monoio::Driver::Epoll)
                }
                other => {
                    return Err(format!(
                        "--runtime takes tokio, smol, monoio or monoio-epoll, not {other:?}"
                    ))
                }
            },
            "--test-hooks" => parsed.test_hooks = true,
            "--redis" => {
                parsed.redis = Some(
                    args.next()
                        .ok_or("--redis needs a URL (redis://HOST:PORT)")?,
                );
            }
            "--tls-cert" => cert = Some(args.next().ok_or("--tls-cert needs a PEM file")?),
            "--tls-key" => key = Some(args.next().ok_or("--tls-key needs a PEM file")?),
            "--emit-typescript" => {
                let dir = args.next().ok_or("--emit-typescript needs a directory")?;
                parsed.emit_typescript = Some(dir.into());
            }
            "--max-connections" | "--max-streams" => {
                let value = args
                    .next()
                    .ok_or_else(|| format!("{flag} needs a number"))?;
                let count = value
                    .parse::<usize>()
                    .ok()
                    .filter(|&count| count > 0)
                    .ok_or_else(|| format!("{flag} {value}: not a positive number"))?;
                if flag == "--max-connections" {
                    parsed.max_connections = Some(count);
                } else {
                    parsed.max_streams = Some(count);
                }
            }
            "-h" | "--help" => parsed.help = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    parsed.tls = match (cert, key) {
        (Some(cert), Some(key)) => Some((cert.into(), key.into())),
        (None, None) => None,
        _ => return Err("--tls-cert and --tls-key go together".into()),
    };
    if parsed.tls.is_some() && matches!(parsed.runtime, Runtime::Monoio(_)) {
        return Err("TLS (--tls-cert) is served on tokio and smol, not monoio".into());
    }
    Ok(parsed)
}

/// Writes `dir/orpc.ts` and `dir/trpc.ts`.
#[cfg(feature = "typescript")]
fn emit_typescript(dir: &std::path::Path) -> ExitCode {
    let written = chat::typescript()
        .map_err(|err| err.to_string())
        .and_then(|(orpc, trpc)| {
            let write = |name: &str, text: String| {
                std::fs::write(dir.join(name), text)
                    .map_err(|err| format!("{}: {err}", dir.join(name).display()))
            };
            std::fs::create_dir_all(dir).map_err(|err| format!("{}: {err}", dir.display()))?;
            write("orpc.ts", orpc)?;
            write("trpc.ts", trpc)
        });
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("chat: --emit-typescript: {why}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(not(feature = "typescript"))]
fn emit_typescript(_: &std::path::Path) -> ExitCode {
    eprintln!(
        "chat: --emit-typescript needs the typescript feature: \
         cargo run -p outer-examples --features typescript --bin chat -- --emit-typescript DIR"
    );
    ExitCode::from(2)
}

fn config(args: &Args) -> ServerConfig {
    let mut config = chat::server_config();
    if let Some(max) = args.max_connections {
        config.max_connections = max;
    }
    if let Some(max) = args.max_streams {
        config.max_streams = max;
    }
    config
}

/// The TLS settings of `--tls-cert` and `--tls-key`, read before anything starts.
fn tls(args: &Args) -> std::io::Result<Option<Arc<outer_http::tls::rustls::ServerConfig>>> {
    args.tls
        .as_ref()
        .map(|(cert, key)| outer_http::tls::from_pem_files(cert, key, &config(args)))
        .transpose()
}

/// The chat: posts in memory, or in the Redis of `--redis` (checked to answer first). Both are
/// the one router of `outer_examples::chat`, over either publisher; everything after is the
/// same. `timer` times the streams; `runtime` runs the Redis publisher's readers.
async fn chat_app(
    args: &Args,
    runtime: impl outer_core::rt::Runtime,
    timer: Arc<dyn Timer>,
) -> std::io::Result<App<ChatCtx>> {
    let Some(url) = &args.redis else {
        return Ok(chat::app(Chat::new(), timer));
    };
    let unreachable =
        |err: outer_redis::Error| std::io::Error::other(format!("--redis {url}: {err}"));
    let chat = RedisChat::connect(url, runtime).map_err(unreachable)?;
    chat.check().await.map_err(unreachable)?;
    Ok(chat::app(chat, timer))
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) if args.help => {
            println!("{USAGE}\n\n{HELP}");
            return ExitCode::SUCCESS;
        }
        Ok(Args {
            emit_typescript: Some(dir),
            ..
        }) => return emit_typescript(&dir),
        Ok(args) => args,
        Err(why) => {
            eprintln!("chat: {why}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match Prometheus::install() {
        // `chat::stack` serves it at /metrics from now on.
        Ok(_) => {}
        Err(err) => {
            eprintln!("chat: cannot install the metrics recorder: {err}");
            return ExitCode::FAILURE;
        }
    }
    let served = match args.runtime {
        Runtime::Tokio => run_tokio(&args),
        Runtime::Smol => run_smol(&args),
        Runtime::Monoio(driver) => run_monoio(&args, driver),
    };
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("chat: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Completes on SIGINT or SIGTERM. The signals are awaited on a thread of their own, so they
/// are seen however busy the runtime's threads are; and if the graceful shutdown has not ended
/// the process `grace` plus a margin later (a handler that spins without ever yielding), the
/// process exits anyway.
fn on_signal(grace: Duration) -> std::io::Result<futures::channel::oneshot::Receiver<()>> {
    use futures::StreamExt;
    let mut signals =
        async_signal::Signals::new([async_signal::Signal::Int, async_signal::Signal::Term])?;
    let (stop, stopped) = futures::channel::oneshot::channel();
    std::thread::Builder::new()
        .name("chat-signals".into())
        .spawn(move || {
            futures::executor::block_on(signals.next());
            let _ = stop.send(());
            std::thread::sleep(grace + Duration::from_secs(5));
            eprintln!("chat: the graceful shutdown did not finish in time; exiting");
            std::process::exit(1);
        })?;
    Ok(stopped)
}

fn announce(addr: SocketAddr, tls: bool, runtime: &str) {
    use std::io::Write;
    let scheme = if tls { "https" } else { "http" };
    println!("listening on {scheme}://{addr} ({runtime})");
    // Tests read this line to learn the port: make sure it leaves now.
    let _ = std::io::stdout().flush();
}

fn run_tokio(args: &Args) -> std::io::Result<()> {
    let tls = tls(args)?;
    let stop = on_signal(config(args).shutdown_grace)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen).await?;
        let app = chat_app(
            args,
            outer_tokio::TokioRuntime,
            Arc::new(outer_tokio::TokioRuntime),
        )
        .await?;
        let stack = chat::stack(outer_tokio::service(app, config(args)), args.test_hooks);
        let server = match tls.clone() {
            Some(tls) => outer_tokio::serve_tls(listener, stack, tls)?,
            None => outer_tokio::serve(listener, stack)?,
        };
        announce(server.local_addr(), tls.is_some(), "tokio");
        let _ = stop.await;
        server.shutdown().await;
        Ok(())
    })
}

fn run_smol(args: &Args) -> std::io::Result<()> {
    let tls = tls(args)?;
    let stop = on_signal(config(args).shutdown_grace)?;
    // One thread runs the tasks and, between them, the reactor: a socket or timer event wakes
    // its task with no hand-off to another thread (smol's global executor would run the tasks
    // on a thread of its own, woken through a futex by whichever thread polled the reactor).
    let executor = Arc::new(smol::Executor::new());
    let spawner = Arc::clone(&executor);
    smol::block_on(executor.run(async move {
        let listener = smol::net::TcpListener::bind(args.listen).await?;
        let runtime = outer_smol::SmolExecutor(Arc::clone(&spawner));
        let app = chat_app(args, runtime.clone(), Arc::new(runtime)).await?;
        let stack = chat::stack(outer_smol::service(app, config(args)), args.test_hooks);
        let server = match tls.clone() {
            Some(tls) => outer_smol::serve_tls_on(spawner, listener, stack, tls)?,
            None => outer_smol::serve_on(spawner, listener, stack)?,
        };
        announce(server.local_addr(), tls.is_some(), "smol");
        let _ = stop.await;
        server.shutdown().await;
        Ok(())
    }))
}

/// Thread per core: one monoio runtime per core, each with its own listener on the one port
/// (the kernel spreads connections between them) and its own server, all sharing one chat. The
/// Redis publisher's readers, if any, run on smol's executor: redis has no monoio sockets, and
/// a publisher's wakes reach monoio from any thread.
fn run_monoio(args: &Args, driver: outer_monoio::Driver) -> std::io::Result<()> {
    use futures::FutureExt;
    let stop = on_signal(config(args).shutdown_grace)?.shared();
    let app = driver.block_on(chat_app(
        args,
        outer_smol::SmolRuntime,
        Arc::new(outer_monoio::MonoioRuntime),
    ))??;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let first = outer_monoio::listener(args.listen)?;
    let addr = first.local_addr()?;
    let mut listeners = vec![first];
    for _ in 1..threads {
        listeners.push(outer_monoio::listener(addr)?);
    }
    let (started, serving) = std::sync::mpsc::channel();
    let servers: Vec<_> = listeners
        .into_iter()
        .map(|listener| {
            let (app, config, stop, started) =
                (app.clone(), config(args), stop.clone(), started.clone());
            let test_hooks = args.test_hooks;
            std::thread::spawn(move || {
                let failed = started.clone();
                let served = driver
                    .block_on(async move {
                        let outer = outer_monoio::service(app, config);
                        let server = outer_monoio::serve(listener, chat::stack(outer, test_hooks))?;
                        let _ = started.send(Ok(()));
                        let _ = stop.await;
                        server.shutdown().await;
                        Ok(())
                    })
                    .and_then(|served| served);
                // A thread that could not start says so, rather than leave main waiting.
                if let Err(err) = &served {
                    let _ = failed.send(Err(std::io::Error::new(err.kind(), err.to_string())));
                }
                served
            })
        })
        .collect();
    drop(started);
    for outcome in serving.iter().take(threads) {
        outcome?;
    }
    announce(
        addr,
        false,
        &format!("monoio, {driver:?}, threads: {threads}"),
    );
    for server in servers {
        server
            .join()
            .map_err(|_| std::io::Error::other("a server thread panicked"))??;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Args, String> {
        parse(list.iter().map(|s| s.to_string()))
    }

    #[test]
    fn flags_parse_and_bad_ones_say_why() {
        let parsed = args(&[
            "--listen",
            "127.0.0.1:0",
            "--runtime",
            "smol",
            "--test-hooks",
            "--redis",
            "redis://127.0.0.1:6379",
        ])
        .unwrap();
        assert_eq!(parsed.listen.port(), 0);
        assert_eq!(parsed.runtime, Runtime::Smol);
        assert!(parsed.test_hooks);
        assert_eq!(parsed.redis.as_deref(), Some("redis://127.0.0.1:6379"));
        assert_eq!(args(&[]).unwrap().runtime, Runtime::Tokio);
        assert_eq!(args(&[]).unwrap().redis, None);
        assert!(args(&["--redis"]).unwrap_err().contains("needs a URL"));
        assert!(args(&["--runtime", "async-std"])
            .unwrap_err()
            .contains("tokio, smol, monoio or monoio-epoll"));
        assert_eq!(
            args(&["--runtime", "monoio-epoll"]).unwrap().runtime,
            Runtime::Monoio(outer_monoio::Driver::Epoll)
        );
        assert_eq!(
            args(&["--runtime", "monoio"]).unwrap().runtime,
            Runtime::Monoio(outer_monoio::Driver::available())
        );
        assert!(args(&["--listen", "nowhere"])
            .unwrap_err()
            .contains("--listen nowhere"));
        assert!(args(&["--bogus"]).unwrap_err().contains("unknown argument"));
        let tls = args(&["--tls-cert", "c.pem", "--tls-key", "k.pem"]).unwrap();
        assert_eq!(tls.tls, Some(("c.pem".into(), "k.pem".into())));
        assert!(args(&["--tls-cert", "c.pem"])
            .unwrap_err()
            .contains("go together"));
        assert!(
            args(&["--tls-cert", "c", "--tls-key", "k", "--runtime", "monoio"])
                .unwrap_err()
                .contains("not monoio")
        );
        assert!(args(&["--help"]).unwrap().help);
        assert!(!args(&[]).unwrap().help);
    }

    #[test]
    fn limits_override_the_defaults() {
        let parsed = args(&["--max-connections", "120000", "--max-streams", "110000"]).unwrap();
        let config = config(&parsed);
        assert_eq!(config.max_connections, 120_000);
        assert_eq!(config.max_streams, 110_000);
        let default = config_of(&[]);
        assert_eq!(default, chat::server_config());
        assert!(args(&["--max-streams", "0"])
            .unwrap_err()
            .contains("not a positive number"));
        assert!(args(&["--max-connections"])
            .unwrap_err()
            .contains("needs a number"));
    }

    fn config_of(list: &[&str]) -> ServerConfig {
        config(&args(list).unwrap())
    }
}
