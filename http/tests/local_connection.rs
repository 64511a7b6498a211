//! The server's connection path needs no `Send`: `serve_connection` serves a socket that is not
//! `Send`, as a thread-per-core runtime's are, on tokio's `LocalSet` and on smol's
//! `LocalExecutor`, and `accept_loop` accepts such sockets and spawns them on a local executor,
//! then shuts down.

use std::io;
use std::marker::PhantomData;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::StreamExt;
use hyper_util::rt::TokioIo;
use outer_core::rt::{Sleep, Timer};
use outer_core::{procedure, Router};
use outer_http::server::serve_connection;
use outer_http::{OuterService, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

/// A connection that must stay on its thread: an in-memory pipe plus an `Rc`.
struct LocalIo {
    io: TokioIo<DuplexStream>,
    _on_this_thread: PhantomData<Rc<()>>,
}

impl hyper::rt::Read for LocalIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for LocalIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Sleeps that never end: no keep-alives or timeouts are needed here.
#[derive(Debug)]
struct Never;
impl Timer for Never {
    fn sleep(&self, _: Duration) -> Sleep {
        Box::pin(std::future::pending())
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

fn service() -> OuterService<()> {
    let router = Router::new().route(
        "double",
        procedure::<()>()
            .input::<u32>()
            .query(|req| async move { Ok(req.input * 2) }),
    );
    let config = ServerConfig {
        header_read_timeout: None,
        ..ServerConfig::default()
    };
    OuterService::new(router, config, Arc::new(Never))
}

/// Sends one oRPC call over `client` and reads the answer until the server closes.
async fn call(mut client: DuplexStream) -> String {
    let body = r#"{"json":21}"#;
    let request = format!(
        "POST /rpc/double HTTP/1.1\r\nhost: local\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    client.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    client.read_to_string(&mut answer).await.unwrap();
    answer
}

fn local_connection() -> (LocalIo, DuplexStream) {
    let (server, client) = tokio::io::duplex(4096);
    let io = LocalIo {
        io: TokioIo::new(server),
        _on_this_thread: PhantomData,
    };
    (io, client)
}

/// Runs `task` on a single-threaded tokio runtime, where `spawn_local` takes futures that are
/// not `Send`.
fn on_local_set<F: std::future::Future>(task: F) -> F::Output {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tokio::task::LocalSet::new().block_on(&runtime, task)
}

fn assert_doubled(answer: &str) {
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.ends_with("\r\n\r\n{\"json\":42}"), "{answer}");
}

#[test]
fn a_connection_that_is_not_send_is_served_on_a_tokio_local_set() {
    let answer = on_local_set(async {
        let (io, client) = local_connection();
        let served = tokio::task::spawn_local(serve_connection(io, None, service(), SpawnLocal));
        let answer = call(client).await;
        served.await.unwrap();
        answer
    });
    assert_doubled(&answer);
}

#[test]
fn a_connection_that_is_not_send_is_served_on_a_smol_local_executor() {
    let executor = Rc::new(smol::LocalExecutor::new());
    let answer = smol::block_on(executor.run(async {
        let (io, client) = local_connection();
        let spawn = SpawnOnSmol(Rc::clone(&executor));
        let served = executor.spawn(serve_connection(io, None, service(), spawn));
        let answer = call(client).await;
        served.await;
        answer
    }));
    assert_doubled(&answer);
}

/// Spawns on a smol `LocalExecutor`: tasks need not be `Send`.
#[derive(Clone)]
struct SpawnOnSmol(Rc<smol::LocalExecutor<'static>>);

impl<F: std::future::Future<Output = ()> + 'static> hyper::rt::Executor<F> for SpawnOnSmol {
    fn execute(&self, task: F) {
        self.0.spawn(task).detach();
    }
}

/// Spawns connections on tokio's `LocalSet`: they need not be `Send`.
#[derive(Clone, Copy)]
struct SpawnLocal;

impl<F: std::future::Future<Output = ()> + 'static> hyper::rt::Executor<F> for SpawnLocal {
    fn execute(&self, connection: F) {
        tokio::task::spawn_local(connection);
    }
}

#[test]
fn the_accept_loop_serves_sockets_that_are_not_send_and_shuts_down() {
    let answers = on_local_set(async {
        let (first, first_client) = local_connection();
        let (second, second_client) = local_connection();
        // Two sockets arrive, then the listener waits for ever (until shutdown).
        let incoming = futures::stream::iter([Ok((first, None)), Ok((second, None))])
            .chain(futures::stream::pending());
        let (accepting, control) =
            outer_http::server::accept_loop(service().into(), Box::pin(incoming), SpawnLocal);
        let accepting = tokio::task::spawn_local(accepting);
        let answers = [call(first_client).await, call(second_client).await];
        assert!(control.shutdown().await, "nothing left open past the grace");
        accepting.await.unwrap();
        answers
    });
    answers.iter().for_each(|answer| assert_doubled(answer));
}

#[test]
fn dropping_the_control_stops_the_accept_loop_and_closes_the_listener() {
    on_local_set(async {
        /// A listener that reports when it is dropped, and never yields a connection.
        struct Listener(Option<futures::channel::oneshot::Sender<()>>);
        impl futures::Stream for Listener {
            type Item = std::io::Result<(LocalIo, Option<std::net::SocketAddr>)>;
            fn poll_next(
                self: std::pin::Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Option<Self::Item>> {
                std::task::Poll::Pending
            }
        }
        impl Drop for Listener {
            fn drop(&mut self) {
                let _ = self.0.take().map(|closed| closed.send(()));
            }
        }
        let (closed, listener_closed) = futures::channel::oneshot::channel();
        let (accepting, control) =
            outer_http::server::accept_loop(service().into(), Listener(Some(closed)), SpawnLocal);
        let accepting = tokio::task::spawn_local(accepting);
        tokio::task::yield_now().await;
        assert!(!accepting.is_finished(), "accepting until dropped");
        drop(control);
        let stopped = tokio::time::timeout(std::time::Duration::from_secs(5), accepting).await;
        assert!(
            stopped.is_ok(),
            "the accept loop ended when its control was dropped"
        );
        listener_closed.await.expect("the listener was dropped");
    });
}
