//! The floor server: `floor [--listen 127.0.0.1:3300]`. Prints `listening on http://ADDR` once
//! it accepts connections; stops on SIGINT or SIGTERM. See `outer_bench::floor`.

use std::net::SocketAddr;
use std::process::ExitCode;

use axum::serve::ListenerExt;

fn main() -> ExitCode {
    let mut listen = SocketAddr::from(([127, 0, 0, 1], 3300));
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match (flag.as_str(), args.next().map(|v| v.parse())) {
            ("--listen", Some(Ok(addr))) => listen = addr,
            _ => {
                eprintln!("usage: floor [--listen ADDR]");
                return ExitCode::from(2);
            }
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("floor: {err}");
            return ExitCode::FAILURE;
        }
    };
    let served: std::io::Result<()> = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        println!("listening on http://{}", listener.local_addr()?);
        // Events are small writes that must leave at once, as Outer's servers do.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        axum::serve(listener, outer_bench::floor::router())
            .with_graceful_shutdown(async move {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            })
            .await
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("floor: {err}");
            ExitCode::FAILURE
        }
    }
}
