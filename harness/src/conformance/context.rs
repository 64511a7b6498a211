//! The request context over real sockets: what the context builder sees of a request (the
//! peer's address, the query, the headers), middleware that refuses a subscription before its
//! stream opens, a setup that refuses, and middleware wrapped around a stream. The scenarios
//! themselves are in [`suite`](super::suite), with the others; this module is their router.
//!
//! Refusals before a stream opens answer the error's own status and the protocol's JSON error
//! body, in oRPC and in tRPC alike; only a POST to a tRPC subscription answers 200 and its
//! error in the stream, as tRPC does.

use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use outer_core::rt::Timer;
use outer_core::{
    event_iterator, procedure, tracked, App, ErrorCode, RequestHead, Router, RpcError,
};
use outer_http::OuterService;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{quiet_config, Adapter};
use crate::loopback::{open, read_response, RawResponse};

/// What the context builder saw of a request: the scenarios' context, which `whoami` answers.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Caller {
    /// The request's method.
    pub method: String,
    /// The URL path, without the query.
    pub path: String,
    /// The query string, without `?`.
    pub query: String,
    /// The client's address, as text.
    pub peer: Option<String>,
    /// The `authorization` header.
    pub authorization: Option<String>,
    /// The `x-tag` header; the `wrap` middleware sets it for the calls it wraps.
    pub tag: Option<String>,
}

impl Caller {
    fn of(head: &RequestHead) -> Self {
        Self {
            method: head.method.clone(),
            path: head.path.clone(),
            query: head.query.clone(),
            peer: head.peer.map(|peer| peer.to_string()),
            authorization: head.header("authorization").map(str::to_owned),
            tag: head.header("x-tag").map(str::to_owned),
        }
    }
}

/// What the context router's handlers and middleware report.
#[derive(Debug, Default)]
pub struct ContextProbe {
    /// Subscription setups that ran.
    pub setups: AtomicUsize,
    /// Stream handlers that started.
    pub streams: AtomicUsize,
    /// Calls the `wrap` middleware saw.
    pub wrapped: AtomicUsize,
    /// Of those, the ones refused before a stream opened (the wrap saw an `Err`).
    pub wrapped_refused: AtomicUsize,
    /// What the `wrap` middleware saw of each call: its kind and path.
    pub wrapped_calls: Mutex<Vec<String>>,
}

impl ContextProbe {
    /// Reads a counter.
    pub fn count(counter: &AtomicUsize) -> usize {
        counter.load(Ordering::SeqCst)
    }
}

/// The input of `room`.
#[derive(Debug, Deserialize)]
pub struct Room {
    /// `open` streams; any other room is refused in the setup.
    pub name: String,
}

/// The input of `ticks`.
#[derive(Debug, Deserialize)]
pub struct Ticks {
    /// How many events to send.
    pub count: u64,
}

/// The router, on a context built from each request's head ([`Caller`]):
/// - `whoami`: a query that answers the caller as the context builder saw it.
/// - `secret`: a subscription behind a `refine` middleware that refuses a caller without an
///   `authorization` header (401 `UNAUTHORIZED`, "Sign in first"); it sends
///   `{"token": <the header>}` (id 1), then returns `"end"`.
/// - `room`: a subscription whose async setup waits on the timer, then refuses any room but
///   `open` (403 `FORBIDDEN`); `open` sends `"open"` (id 1), then returns `"end"`.
/// - `ticks`: a subscription behind a `wrap` middleware that counts its calls and tags their
///   context; it sends `{"n", "tag"}` with id `n` for `n` in `1..=count`, then returns `"end"`.
pub fn app(probe: &Arc<ContextProbe>, timer: Arc<dyn Timer>) -> App<Caller> {
    App::new(
        router(probe, timer),
        |head| async move { Ok(Caller::of(&head)) },
    )
}

fn router(probe: &Arc<ContextProbe>, timer: Arc<dyn Timer>) -> Router<Caller> {
    let os = procedure::<Caller>();
    let authed = os.refine(|caller| async move {
        caller
            .authorization
            .ok_or_else(|| RpcError::new(ErrorCode::UNAUTHORIZED, "Sign in first"))
    });
    let counted = {
        let probe = Arc::clone(probe);
        os.wrap(move |mut next| {
            let probe = Arc::clone(&probe);
            async move {
                probe.wrapped.fetch_add(1, Ordering::SeqCst);
                let call = format!("{:?} {}", next.info().kind(), next.info().path());
                probe.wrapped_calls.lock().unwrap().push(call);
                next.ctx_mut().tag = Some("wrapped".into());
                let answer = next.run().await;
                if answer.is_err() {
                    probe.wrapped_refused.fetch_add(1, Ordering::SeqCst);
                }
                answer
            }
        })
    };
    let (secret, room, ticks) = (Arc::clone(probe), Arc::clone(probe), Arc::clone(probe));
    Router::new()
        .route(
            "whoami",
            os.input::<Option<serde_json::Value>>()
                .query(|req| async move { Ok(req.ctx) }),
        )
        .route(
            "secret",
            authed.subscription(move |req| {
                let probe = Arc::clone(&secret);
                async move {
                    probe.setups.fetch_add(1, Ordering::SeqCst);
                    Ok(event_iterator(move |mut emit| async move {
                        probe.streams.fetch_add(1, Ordering::SeqCst);
                        emit.send(tracked(1, json!({ "token": req.ctx }))?).await?;
                        Ok("end")
                    }))
                }
            }),
        )
        .route(
            "room",
            os.input::<Room>().subscription(move |req| {
                let (probe, timer) = (Arc::clone(&room), Arc::clone(&timer));
                async move {
                    // A lookup that takes a while: the answer waits for it.
                    timer.sleep(Duration::from_millis(20)).await;
                    probe.setups.fetch_add(1, Ordering::SeqCst);
                    let name = req.input.name;
                    if name != "open" {
                        let message = format!("The room {name} is closed");
                        return Err(RpcError::new(ErrorCode::FORBIDDEN, message));
                    }
                    Ok(event_iterator(move |mut emit| async move {
                        probe.streams.fetch_add(1, Ordering::SeqCst);
                        emit.send(tracked(1, name)?).await?;
                        Ok("end")
                    }))
                }
            }),
        )
        .route(
            "ticks",
            counted.input::<Ticks>().subscription(move |req| {
                let probe = Arc::clone(&ticks);
                async move {
                    Ok(event_iterator(move |mut emit| async move {
                        probe.streams.fetch_add(1, Ordering::SeqCst);
                        for n in 1..=req.input.count {
                            let tick = json!({ "n": n, "tag": req.ctx.tag });
                            emit.send(tracked(n, tick)?).await?;
                        }
                        Ok("end")
                    }))
                }
            }),
        )
}

/// Starts a server on adapter `R` serving [`app`], without keep-alives in either protocol, so
/// bodies can be compared byte for byte.
pub fn start<R: Adapter>() -> (R::Server, Arc<ContextProbe>) {
    let probe = Arc::new(ContextProbe::default());
    let mut config = quiet_config();
    config.trpc.ping = None;
    let service = OuterService::new(app(&probe, R::timer()), config, R::timer());
    (R::start(service), probe)
}

/// Sends `method target` with `headers` and `body` on a new connection, and returns it: its
/// local address is the peer the server sees.
pub fn open_request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> TcpStream {
    let mut request = format!("{method} {target} HTTP/1.1\r\nhost: test\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if method == "POST" {
        request.push_str("content-type: application/json\r\n");
        request.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    request.push_str(body);
    open(addr, request.as_bytes())
}

/// [`open_request`], then the answer's head; the body as it comes.
pub fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> RawResponse {
    read_response(open_request(addr, method, target, headers, body))
}

/// A tRPC `input=` query parameter for `input`.
pub fn trpc_input(input: &serde_json::Value) -> String {
    let text = input.to_string();
    let encoded: String = form_urlencoded::byte_serialize(text.as_bytes()).collect();
    format!("input={encoded}")
}
