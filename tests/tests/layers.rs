//! Tower layers on Outer's own servers, as the README shows them: CORS (tower-http), request
//! ids, an authentication layer whose user reaches the procedure's context, and compression
//! that compresses whole answers but never holds back an event stream. Over real loopback
//! sockets on tokio, smol and monoio.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use http::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use http::{Method, Request, Response};
use hyper::body::Incoming;
use outer_core::{event_iterator, procedure, App, Emitter, Router, RpcError};
use outer_harness::conformance::{Adapter, RunningServer};
use outer_harness::loopback::{send, End};
use outer_http::{HttpHead, HttpService, OuterBody, OuterService, ServerConfig, Shutdown, Stack};
use outer_monoio::testing::IoUring as Monoio;
use outer_smol::testing::Smol;
use outer_tokio::testing::Tokio;
use serde_json::{json, Value};
use tower_http::auth::AsyncRequireAuthorizationLayer;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

const ORIGIN: &str = "https://app.example";

/// Who the authentication layer let in: put in the request's extensions by the layer, read by
/// the context builder.
#[derive(Clone, Debug)]
struct User(String);

#[derive(Clone, Debug, Default)]
struct Ctx {
    user: Option<String>,
    request_id: Option<String>,
}

/// `whoami` answers what the context knows, `big` a body worth compressing, and `ticks`
/// streams one event, then a second once `gate` opens.
fn app(gate: Shutdown) -> App<Ctx> {
    let os = procedure::<Ctx>();
    let router = Router::new()
        .route(
            "whoami",
            os.query(|req| async move {
                Ok(json!({ "user": req.ctx.user, "request_id": req.ctx.request_id }))
            }),
        )
        .route("big", os.query(|_| async { Ok("outer ".repeat(1000)) }))
        .route(
            "ticks",
            os.subscription(move |_| {
                let gate = gate.clone();
                async move {
                    Ok(event_iterator(move |mut emit: Emitter<u32>| async move {
                        emit.send_value(1).await?;
                        gate.wait().await;
                        emit.send_value(2).await?;
                        Ok::<_, RpcError>(())
                    }))
                }
            }),
        );
    App::new(router, |head| async move {
        Ok(Ctx {
            user: head.extension::<User>().map(|user| user.0.clone()),
            request_id: head.header("x-request-id").map(str::to_owned),
        })
    })
}

/// Lets in `authorization: Bearer ada` or `Bearer grace`, as the `User`; anything else is
/// answered 401 with an oRPC error body, before Outer sees it.
async fn authenticate(
    mut request: Request<Incoming>,
) -> Result<Request<Incoming>, Response<OuterBody>> {
    let bearer = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    match bearer {
        Some(name @ ("ada" | "grace")) => {
            let user = User(name.to_owned());
            request.extensions_mut().insert(user);
            Ok(request)
        }
        _ => {
            let body = r#"{"json":{"defined":false,"code":"UNAUTHORIZED","status":401,"message":"Sign in"}}"#;
            let mut response = Response::new(OuterBody::full(body));
            *response.status_mut() = http::StatusCode::UNAUTHORIZED;
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            Err(response)
        }
    }
}

/// The stack of the README: the last layer added sees a request first, so CORS answers
/// preflights before authentication, and every answer, refusals too, carries a request id.
fn stack(outer: OuterService<Ctx>) -> Stack<Ctx, impl HttpService> {
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::exact(HeaderValue::from_static(ORIGIN)))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            AUTHORIZATION,
            CONTENT_TYPE,
            "last-event-id".parse().unwrap(),
        ]);
    outer
        .layer(AsyncRequireAuthorizationLayer::new(authenticate))
        .layer(CompressionLayer::new())
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(cors)
}

fn start<R: Adapter>() -> (R::Server, Shutdown) {
    let gate = Shutdown::new();
    let outer = OuterService::new(app(gate.clone()), ServerConfig::default(), R::timer());
    (R::start(stack(outer)), gate)
}

fn request(method: &str, path: &str, headers: &[&str], body: &str) -> Vec<u8> {
    let mut request = format!("{method} {path} HTTP/1.1\r\nhost: test\r\n");
    for header in headers {
        request.push_str(header);
        request.push_str("\r\n");
    }
    request.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
    request.into_bytes()
}

fn layers_answer_preflights_refuse_strangers_and_tag_every_answer<R: Adapter>() {
    let (server, _gate) = start::<R>();
    let addr = server.addr();

    // A browser's preflight is CORS's to answer, before anyone asks who is calling.
    let preflight = send(
        addr,
        &request(
            "OPTIONS",
            "/rpc/whoami",
            &[
                "origin: https://app.example",
                "access-control-request-method: POST",
                "access-control-request-headers: authorization, content-type",
            ],
            "",
        ),
    );
    assert_eq!(preflight.status, 200, "{:?}", preflight.headers);
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        Some(ORIGIN)
    );
    let allowed = preflight.header("access-control-allow-headers").unwrap();
    assert!(allowed.contains("authorization"), "{allowed}");

    // No token: the layer refuses, with an oRPC error and CORS and request-id headers.
    let mut refused = send(
        addr,
        &request("POST", "/rpc/whoami", &["origin: https://app.example"], ""),
    );
    assert_eq!(refused.status, 401);
    assert_eq!(refused.header("access-control-allow-origin"), Some(ORIGIN));
    let id = refused.header("x-request-id").unwrap().to_owned();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    let (body, _) = refused.read_to_end();
    let error: Value = serde_json::from_str(body).unwrap();
    assert_eq!(error["json"]["code"], "UNAUTHORIZED");

    // Signed in: the user the layer found and the request id reach the procedure's context.
    let answer = send(
        addr,
        &request(
            "POST",
            "/rpc/whoami",
            &["authorization: Bearer ada", "x-request-id: req-7"],
            "",
        ),
    );
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("x-request-id"), Some("req-7"));
    assert_eq!(
        answer.json(),
        json!({ "json": { "user": "ada", "request_id": "req-7" } })
    );

    // tRPC through the same stack.
    let trpc = send(
        addr,
        &request("GET", "/trpc/whoami", &["authorization: Bearer grace"], ""),
    );
    assert_eq!(trpc.status, 200);
    assert_eq!(
        trpc.json()["result"]["data"]["user"],
        json!("grace"),
        "tRPC's answer"
    );
}

/// The status, headers and body bytes of one answer, read until the server closes.
fn exchange(addr: SocketAddr, request: &[u8]) -> (String, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).unwrap();
    let split = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8(bytes[..split].to_vec()).unwrap();
    let mut rest = &bytes[split + 4..];
    // Chunked: each chunk is `size CRLF bytes CRLF`, ending with size 0.
    let mut body = Vec::new();
    loop {
        let line = rest.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(std::str::from_utf8(&rest[..line]).unwrap(), 16).unwrap();
        if size == 0 {
            break;
        }
        body.extend_from_slice(&rest[line + 2..line + 2 + size]);
        rest = &rest[line + 2 + size + 2..];
    }
    (head.to_ascii_lowercase(), body)
}

fn compression_shrinks_answers_and_never_holds_back_an_event_stream<R: Adapter>() {
    let (server, gate) = start::<R>();
    let addr = server.addr();

    let (head, gzipped) = exchange(
        addr,
        &request(
            "POST",
            "/rpc/big",
            &[
                "authorization: Bearer ada",
                "accept-encoding: gzip",
                "connection: close",
            ],
            "",
        ),
    );
    assert!(head.contains("content-encoding: gzip"), "{head}");
    let mut plain = String::new();
    flate2::read::GzDecoder::new(&gzipped[..])
        .read_to_string(&mut plain)
        .unwrap();
    assert_eq!(plain, format!(r#"{{"json":"{}"}}"#, "outer ".repeat(1000)));
    assert!(gzipped.len() < plain.len() / 10, "{} bytes", gzipped.len());

    // The stream is sent as it is: its first event arrives while the handler still waits to
    // yield the second, so no compressor is holding it back.
    let mut stream = send(
        addr,
        &request(
            "POST",
            "/rpc/ticks",
            &["authorization: Bearer ada", "accept-encoding: gzip"],
            "",
        ),
    );
    assert_eq!(stream.status, 200);
    assert_eq!(stream.header("content-type"), Some("text/event-stream"));
    assert_eq!(stream.header("content-encoding"), None);
    stream.read_until("data: {\"json\":1}\n\n");
    gate.trigger();
    let (text, end) = stream.read_to_end();
    assert_eq!(
        text,
        ": \n\n\
         event: message\ndata: {\"json\":1}\n\n\
         event: message\ndata: {\"json\":2}\n\n\
         event: done\ndata: {}\n\n"
    );
    assert_eq!(end, End::Clean);
}

#[test]
fn layers_answer_preflights_refuse_strangers_and_tag_every_answer_on_tokio() {
    layers_answer_preflights_refuse_strangers_and_tag_every_answer::<Tokio>();
}

#[test]
fn layers_answer_preflights_refuse_strangers_and_tag_every_answer_on_smol() {
    layers_answer_preflights_refuse_strangers_and_tag_every_answer::<Smol>();
}

#[test]
fn layers_answer_preflights_refuse_strangers_and_tag_every_answer_on_monoio() {
    layers_answer_preflights_refuse_strangers_and_tag_every_answer::<Monoio>();
}

#[test]
fn compression_shrinks_answers_and_never_holds_back_an_event_stream_on_tokio() {
    compression_shrinks_answers_and_never_holds_back_an_event_stream::<Tokio>();
}

#[test]
fn compression_shrinks_answers_and_never_holds_back_an_event_stream_on_smol() {
    compression_shrinks_answers_and_never_holds_back_an_event_stream::<Smol>();
}

#[test]
fn compression_shrinks_answers_and_never_holds_back_an_event_stream_on_monoio() {
    compression_shrinks_answers_and_never_holds_back_an_event_stream::<Monoio>();
}
