//! The suite's scenarios over WebSocket: both protocols' messages as the real clients expect
//! them, bad input and limits, cleanup, keep-alive, shutdown and a client that does not read,
//! on the adapter's server, with the blocking client of [`crate::websocket`].
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(missing_docs)] // each scenario's name is its documentation

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use outer_core::{procedure, App, RequestHead, Router};
use outer_http::{OuterService, ServerConfig};
use serde_json::{json, Value};

use super::{router, start, Adapter, Probe, RunningServer};
use crate::loopback::{send, wait_until};
use crate::websocket::{Received, WsClient};

fn trpc(addr: std::net::SocketAddr) -> WsClient {
    WsClient::connect(addr, "/trpc")
}

fn orpc(addr: std::net::SocketAddr) -> WsClient {
    WsClient::connect(addr, "/rpc")
}

fn cleaned_up(probe: &Probe, n: usize) {
    wait_until("the handlers' cleanup", || {
        probe.cleanups.load(Ordering::SeqCst) >= n
    });
}

pub fn trpc_over_websocket_speaks_wslink<R: Adapter>() {
    let (server, probe) = start::<R>(ServerConfig::default());
    let mut ws = trpc(server.addr());
    // A call that never answers holds up nothing else on the socket.
    ws.send(r#"{"id":9,"method":"query","params":{"path":"hang"}}"#);
    ws.send(r#"{"id":1,"method":"query","params":{"input":{"n":1},"path":"ping"}}"#);
    assert_eq!(
        ws.recv_text(),
        r#"{"id":1,"result":{"type":"data","data":{"n":1}}}"#
    );
    ws.send(r#"{"id":2,"method":"subscription","params":{"path":"gated"}}"#);
    assert_eq!(ws.recv_text(), r#"{"id":2,"result":{"type":"started"}}"#);
    assert_eq!(
        ws.recv_text(),
        r#"{"id":2,"result":{"type":"data","data":{"id":"1","data":{"n":1}},"id":"1"}}"#
    );
    probe.gate.trigger();
    assert_eq!(
        ws.recv_text(),
        r#"{"id":2,"result":{"type":"data","data":{"id":"2","data":{"n":2}},"id":"2"}}"#
    );
    // tRPC does not send the return value: the end is `stopped`.
    assert_eq!(ws.recv_text(), r#"{"id":2,"result":{"type":"stopped"}}"#);
    // A batch: one answer per call, each on its own.
    ws.send(
        r#"[{"id":3,"method":"query","params":{"input":3,"path":"ping"}},{"id":"four","jsonrpc":"2.0","method":"query","params":{"input":4,"path":"ping"}}]"#,
    );
    let mut answers = [ws.recv_text(), ws.recv_text()];
    answers.sort();
    assert_eq!(
        answers,
        [
            r#"{"id":"four","jsonrpc":"2.0","result":{"type":"data","data":4}}"#,
            r#"{"id":3,"result":{"type":"data","data":3}}"#,
        ]
    );
    // Stop: the handler is dropped, then `stopped` answers.
    let before = probe.cleanups.load(Ordering::SeqCst);
    ws.send(r#"{"id":5,"method":"subscription","params":{"path":"silent"}}"#);
    assert_eq!(ws.recv_text(), r#"{"id":5,"result":{"type":"started"}}"#);
    wait_until("the subscription to count", || server.active_streams() == 1);
    ws.send(r#"{"id":5,"method":"subscription.stop"}"#);
    assert_eq!(ws.recv_text(), r#"{"id":5,"result":{"type":"stopped"}}"#);
    assert_eq!(probe.cleanups.load(Ordering::SeqCst), before + 1);
    assert_eq!(server.active_streams(), 0);
    // A path that is not a procedure of the method's kind.
    ws.send(r#"{"id":6,"method":"query","params":{"path":"gated"}}"#);
    assert_eq!(
        ws.recv_text(),
        r#"{"id":6,"error":{"message":"No \"query\"-procedure on path \"gated\"","code":-32004,"data":{"code":"NOT_FOUND","httpStatus":404,"path":"gated"}}}"#
    );
    // Resume: the id goes to the handler as its last event id.
    ws.send(r#"{"id":7,"method":"subscription","params":{"path":"gated","lastEventId":"1"}}"#);
    assert_eq!(ws.recv_text(), r#"{"id":7,"result":{"type":"started"}}"#);
    ws.close();
    cleaned_up(&probe, before + 3);
}

pub fn orpc_over_websocket_speaks_rpclink<R: Adapter>() {
    let (server, probe) = start::<R>(ServerConfig::default());
    let mut ws = orpc(server.addr());
    ws.send(r#"{"i":"9","p":{"u":"/hang","b":{}}}"#);
    ws.send(r#"{"i":"1","p":{"u":"/ping","b":{"json":{"n":1}}}}"#);
    assert_eq!(ws.recv_text(), r#"{"i":"1","p":{"b":{"json":{"n":1}}}}"#);
    ws.send(r#"{"i":"2","p":{"u":"/gated","b":{}}}"#);
    assert_eq!(
        ws.recv_text(),
        r#"{"i":"2","p":{"h":{"content-type":"text/event-stream"}}}"#
    );
    assert_eq!(
        ws.recv_text(),
        r#"{"i":"2","t":3,"p":{"e":"message","d":{"json":{"n":1}},"m":{"id":"1"}}}"#
    );
    probe.gate.trigger();
    assert_eq!(
        ws.recv_text(),
        r#"{"i":"2","t":3,"p":{"e":"message","d":{"json":{"n":2}},"m":{"id":"2"}}}"#
    );
    assert_eq!(
        ws.recv_text(),
        r#"{"i":"2","t":3,"p":{"e":"done","d":{"json":"end"}}}"#
    );
    ws.send(r#"{"i":"3","p":{"u":"/nope","b":{}}}"#);
    assert_eq!(
        ws.recv_text(),
        r#"{"i":"3","p":{"s":404,"b":"No procedure matched"}}"#
    );
    // Abort: the handler is dropped and nothing is sent back.
    let before = probe.cleanups.load(Ordering::SeqCst);
    ws.send(r#"{"i":"4","p":{"u":"/silent","b":{}}}"#);
    assert_eq!(
        ws.recv_text(),
        r#"{"i":"4","p":{"h":{"content-type":"text/event-stream"}}}"#
    );
    ws.send(r#"{"i":"4","t":4}"#);
    cleaned_up(&probe, before + 1);
    wait_until("the stream to close", || server.active_streams() == 0);
    // The socket goes on; the hanging call is dropped with it.
    ws.send(r#"{"i":"5","p":{"u":"/ping","b":{"json":5}}}"#);
    assert_eq!(ws.recv_text(), r#"{"i":"5","p":{"b":{"json":5}}}"#);
    ws.close();
    cleaned_up(&probe, before + 2);
}

pub fn bad_websocket_input_gets_clear_errors_and_the_socket_stays_usable<R: Adapter>() {
    let mut config = ServerConfig::default();
    config.websocket.max_calls = 2;
    let (server, _) = start::<R>(config);
    let mut ws = trpc(server.addr());
    let parse_error = |message: &str| {
        json!({"id": null, "error": {"message": message, "code": -32700,
            "data": {"code": "PARSE_ERROR", "httpStatus": 400}}})
    };
    ws.send("not json{");
    let answer = ws.recv_json();
    assert_eq!(answer["error"]["data"]["code"], "PARSE_ERROR", "{answer}");
    assert_eq!(answer["id"], Value::Null);
    ws.send(r#"{"id":1,"method":"nope"}"#);
    assert_eq!(ws.recv_json(), parse_error("Invalid procedure type"));
    ws.send_binary(br#"{"id":1,"method":"query","params":{"path":"ping"}}"#);
    assert_eq!(
        ws.recv_json(),
        parse_error("jsonEncoder received binary data. JSON uses text frames. Use a binary encoder for binary data.")
    );
    // A stop for an id that is not running is ignored, as tRPC's server does.
    ws.send(r#"{"id":42,"method":"subscription.stop"}"#);
    ws.send(r#"{"id":1,"method":"subscription","params":{"path":"silent"}}"#);
    assert_eq!(ws.recv_text(), r#"{"id":1,"result":{"type":"started"}}"#);
    ws.send(r#"{"id":1,"method":"subscription","params":{"path":"silent"}}"#);
    assert_eq!(
        ws.recv_text(),
        r#"{"id":1,"error":{"message":"Duplicate id 1","code":-32600,"data":{"code":"BAD_REQUEST","httpStatus":400,"path":"silent"}}}"#
    );
    ws.send(r#"{"id":2,"method":"subscription","params":{"path":"silent"}}"#);
    assert_eq!(ws.recv_text(), r#"{"id":2,"result":{"type":"started"}}"#);
    // Past the limit of calls on one socket.
    ws.send(r#"{"id":3,"method":"query","params":{"input":1,"path":"ping"}}"#);
    let refused = ws.recv_json();
    assert_eq!(refused["id"], 3);
    assert_eq!(refused["error"]["data"]["code"], "TOO_MANY_REQUESTS");
    assert_eq!(refused["error"]["data"]["httpStatus"], 429);
    // Still usable once a call ends.
    ws.send(r#"{"id":2,"method":"subscription.stop"}"#);
    assert_eq!(ws.recv_text(), r#"{"id":2,"result":{"type":"stopped"}}"#);
    ws.send(r#"{"id":4,"method":"query","params":{"input":4,"path":"ping"}}"#);
    assert_eq!(
        ws.recv_text(),
        r#"{"id":4,"result":{"type":"data","data":4}}"#
    );
    ws.close();

    // oRPC: a duplicate id is refused on its id; a message without one closes the socket.
    let mut ws = orpc(server.addr());
    ws.send(r#"{"i":"1","p":{"u":"/silent","b":{}}}"#);
    ws.recv_text();
    ws.send(r#"{"i":"1","p":{"u":"/ping","b":{"json":1}}}"#);
    let refused = ws.recv_json();
    assert_eq!(refused["p"]["s"], 400, "{refused}");
    assert_eq!(refused["p"]["b"]["json"]["code"], "BAD_REQUEST");
    ws.send(r#"{"i":"2","p":{"u":"/ping","b":{"json":{"n":1},"meta":"bad"}}}"#);
    let malformed = ws.recv_json();
    assert_eq!(malformed["i"], "2");
    assert_eq!(malformed["p"]["s"], 400, "{malformed}");
    ws.send("not json{");
    let (code, reason) = ws.recv_close().expect("a close code");
    assert_eq!(code, 1007, "{reason}");
    assert!(reason.starts_with("Not an oRPC message"), "{reason}");
    wait_until("the stream to close", || server.active_streams() == 0);
}

pub fn a_websocket_message_over_the_cap_closes_with_1009<R: Adapter>() {
    let mut config = ServerConfig::default();
    config.websocket.max_message_bytes = 1024;
    let (server, probe) = start::<R>(config);
    let mut ws = trpc(server.addr());
    ws.send(r#"{"id":1,"method":"subscription","params":{"path":"silent"}}"#);
    ws.recv_text();
    let big = format!(
        r#"{{"id":2,"method":"query","params":{{"input":"{}","path":"ping"}}}}"#,
        "x".repeat(2000)
    );
    ws.send(&big);
    let (code, _) = ws.recv_close().expect("a close code");
    assert_eq!(code, 1009);
    cleaned_up(&probe, 1);
    wait_until("the stream to close", || server.active_streams() == 0);
}

/// A `silent` subscription on a socket of each protocol, once the server counts both.
fn silent_on_both<S: RunningServer>(server: &S) -> (WsClient, WsClient) {
    let mut trpc_ws = trpc(server.addr());
    trpc_ws.send(r#"{"id":1,"method":"subscription","params":{"path":"silent"}}"#);
    trpc_ws.recv_text();
    let mut orpc_ws = orpc(server.addr());
    orpc_ws.send(r#"{"i":"1","p":{"u":"/silent","b":{}}}"#);
    orpc_ws.recv_text();
    wait_until("both streams to count", || server.active_streams() == 2);
    (trpc_ws, orpc_ws)
}

pub fn a_closed_or_cut_websocket_drops_its_handlers_at_once<R: Adapter>() {
    let (server, probe) = start::<R>(ServerConfig::default());
    for (n, cut) in [(1, false), (2, true)] {
        let (ws, other) = silent_on_both(&server);
        if cut {
            ws.cut();
            other.cut();
        } else {
            ws.close();
            other.close();
        }
        cleaned_up(&probe, 2 * n);
        wait_until("the streams to close", || server.active_streams() == 0);
    }
    wait_until("the connections to close", || {
        server.open_connections() == 0
    });
}

pub fn abort_streams_cuts_websockets_as_a_network_failure_would<R: Adapter>() {
    let probe = Arc::new(Probe::default());
    let service = OuterService::new(router(&probe), ServerConfig::default(), R::timer());
    let server = R::start(service.clone());
    let mut ws = trpc(server.addr());
    ws.send(r#"{"id":1,"method":"subscription","params":{"path":"silent"}}"#);
    ws.recv_text();
    service.abort_streams();
    assert_eq!(ws.recv(), Received::Dropped, "no close frame");
    cleaned_up(&probe, 1);
    // Sockets opened afterwards are not affected.
    let mut ws = trpc(server.addr());
    ws.send(r#"{"id":1,"method":"query","params":{"input":1,"path":"ping"}}"#);
    assert_eq!(
        ws.recv_text(),
        r#"{"id":1,"result":{"type":"data","data":1}}"#
    );
}

pub fn a_quiet_websocket_client_is_pinged_and_dropped_if_it_never_answers<R: Adapter>() {
    let mut config = ServerConfig::default();
    config.websocket.ping = Some(Duration::from_millis(100));
    config.websocket.pong_wait = Duration::from_millis(300);
    let (server, probe) = start::<R>(config);
    let mut ws = trpc(server.addr());
    ws.send(r#"{"id":1,"method":"subscription","params":{"path":"silent"}}"#);
    ws.recv_text();
    // Answered: the socket lives on through several pings.
    for _ in 0..3 {
        assert_eq!(ws.recv(), Received::Text("PING".into()));
        ws.send("PONG");
    }
    // Not answered: dropped, and its handler with it.
    assert_eq!(ws.recv(), Received::Text("PING".into()));
    assert_eq!(ws.recv(), Received::Dropped);
    cleaned_up(&probe, 1);
    // oRPC sockets get ping frames, which every WebSocket client answers on its own.
    let mut ws = orpc(server.addr());
    assert_eq!(ws.recv(), Received::Ping);
    assert_eq!(ws.recv(), Received::Ping);
    ws.send(r#"{"i":"1","p":{"u":"/ping","b":{"json":1}}}"#);
    assert_eq!(ws.recv_text(), r#"{"i":"1","p":{"b":{"json":1}}}"#);
}

pub fn graceful_shutdown_moves_websocket_clients_elsewhere<R: Adapter>() {
    let mut config = ServerConfig::default();
    config.websocket.reconnect_close_after = Duration::from_millis(300);
    let (mut server, probe) = start::<R>(config);
    let (mut trpc_ws, mut orpc_ws) = silent_on_both(&server);
    let clients = std::thread::spawn(move || {
        // tRPC: the notice, then (the client did not move) a 1012 close.
        assert_eq!(trpc_ws.recv_text(), r#"{"id":null,"method":"reconnect"}"#);
        let (code, _) = trpc_ws.recv_close().expect("a close code");
        assert_eq!(code, 1012);
        // oRPC: the stream ends with a retryable error, and the socket closes.
        let interrupted = orpc_ws.recv_json();
        assert_eq!(interrupted["t"], 3);
        assert_eq!(interrupted["p"]["e"], "error");
        assert_eq!(
            interrupted["p"]["d"]["json"]["status"], 503,
            "{interrupted}"
        );
        let (code, _) = orpc_ws.recv_close().expect("a close code");
        assert_eq!(code, 1012);
    });
    let shutting = server.shutdown();
    clients.join().unwrap();
    assert!(shutting, "every connection finished within the grace");
    cleaned_up(&probe, 2);
}

pub fn a_websocket_client_that_does_not_read_stalls_only_its_own_streams<R: Adapter>() {
    let (server, probe) = start::<R>(ServerConfig::default());
    let mut ws = trpc(server.addr());
    ws.send(r#"{"id":1,"method":"subscription","params":{"path":"flood"}}"#);
    assert_eq!(ws.recv_text(), r#"{"id":1,"result":{"type":"started"}}"#);
    // The client reads nothing more: the socket fills, and the stream stops being polled.
    let mut other = trpc(server.addr());
    for n in 0..20 {
        other.send(&format!(
            r#"{{"id":{n},"method":"query","params":{{"input":{n},"path":"ping"}}}}"#
        ));
        assert_eq!(
            other.recv_text(),
            format!(r#"{{"id":{n},"result":{{"type":"data","data":{n}}}}}"#)
        );
    }
    // What the flood got out is bounded by the socket's buffers: once they are full it waits.
    let mut stalled = probe.flooded.load(Ordering::Relaxed);
    wait_until("the flood to stall", || {
        std::thread::sleep(Duration::from_millis(100));
        let now = probe.flooded.load(Ordering::Relaxed);
        std::mem::replace(&mut stalled, now) == now
    });
    // About 30 bytes a frame: the kernel's socket buffers (a few MiB on loopback) and
    // tungstenite's write buffer, nothing more.
    assert!(
        stalled < 500_000,
        "{stalled} values yielded for a client that reads none"
    );
    // A client that reads again gets every value, in order, from where it stopped.
    for expected in 0u64..10_000 {
        let frame = ws.recv_json();
        assert_eq!(frame["result"]["data"], expected, "{frame}");
    }
    ws.close();
    wait_until("the stream to close", || server.active_streams() == 0);
}

pub fn websocket_upgrades_are_checked_and_served_only_at_the_prefixes<R: Adapter>() {
    let (server, _) = start::<R>(ServerConfig::default());
    let upgrade = |path: &str, version: &str, key: bool| {
        let key = if key {
            "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        } else {
            ""
        };
        format!(
            "GET {path} HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: websocket\r\n\
             sec-websocket-version: {version}\r\n{key}\r\n"
        )
    };
    let ok = send(server.addr(), upgrade("/trpc", "13", true).as_bytes());
    assert_eq!(ok.status, 101);
    assert_eq!(
        ok.header("sec-websocket-accept"),
        Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        "RFC 6455's own example"
    );
    let old = send(server.addr(), upgrade("/rpc", "8", true).as_bytes());
    assert_eq!(old.status, 426);
    assert_eq!(old.header("sec-websocket-version"), Some("13"));
    let keyless = send(server.addr(), upgrade("/rpc", "13", false).as_bytes());
    assert_eq!(keyless.status, 400);
    // Below a prefix is a procedure's path, not a socket.
    let procedure = send(server.addr(), upgrade("/rpc/ping", "13", true).as_bytes());
    assert_ne!(procedure.status, 101);
    let elsewhere = send(server.addr(), upgrade("/other", "13", true).as_bytes());
    assert_eq!(elsewhere.status, 404);

    let mut config = ServerConfig::default();
    config.websocket.enabled = false;
    let (server, _) = start::<R>(config);
    let off = send(server.addr(), upgrade("/trpc", "13", true).as_bytes());
    assert_ne!(off.status, 101);
}

/// A context from tRPC's connection params or an `x-token` header: the caller's token.
fn token_app() -> App<Option<String>> {
    let os = procedure::<Option<String>>();
    let router = Router::new().route("whoami", os.query(|req| async move { Ok(req.ctx) }));
    App::new(router, |head: RequestHead| async move {
        let token = head
            .connection_param("token")
            .or_else(|| head.header("x-token"));
        Ok(token.map(str::to_owned))
    })
}

pub fn orpc_call_headers_reach_the_context_builder<R: Adapter>() {
    let service = OuterService::new(token_app(), ServerConfig::default(), R::timer());
    let server = R::start(service);
    let mut ws = orpc(server.addr());
    // The link's `headers` option: each call's `h`, a context of its own.
    ws.send(r#"{"i":"1","p":{"u":"/whoami","b":{},"h":{"x-token":"from-h"}}}"#);
    assert_eq!(ws.recv_text(), r#"{"i":"1","p":{"b":{"json":"from-h"}}}"#);
    // Without them, the socket's context, from the upgrade request.
    ws.send(r#"{"i":"2","p":{"u":"/whoami","b":{}}}"#);
    assert_eq!(
        ws.recv_text(),
        r#"{"i":"2","p":{"b":{}}}"#,
        "None is undefined"
    );
}

pub fn trpc_connection_params_reach_the_context_builder<R: Adapter>() {
    let service = OuterService::new(token_app(), ServerConfig::default(), R::timer());
    let server = R::start(service);
    let whoami = r#"{"id":1,"method":"query","params":{"path":"whoami"}}"#;
    let mut ws = WsClient::connect(server.addr(), "/trpc?connectionParams=1");
    ws.send(r#"{"method":"connectionParams","data":{"token":"abc"}}"#);
    ws.send(whoami);
    assert_eq!(
        ws.recv_text(),
        r#"{"id":1,"result":{"type":"data","data":"abc"}}"#
    );
    // Without the query parameter, the context is built at once without params.
    let mut ws = WsClient::connect(server.addr(), "/trpc");
    ws.send(whoami);
    assert_eq!(
        ws.recv_text(),
        r#"{"id":1,"result":{"type":"data","data":null}}"#
    );
    // A first message that is not the params: an error, then the socket closes.
    let mut ws = WsClient::connect(server.addr(), "/trpc?connectionParams=1");
    ws.send("[1]");
    let refused = ws.recv_json();
    assert_eq!(refused["id"], Value::Null);
    assert_eq!(refused["error"]["data"]["code"], "PARSE_ERROR");
    let (code, _) = ws.recv_close().expect("a close code");
    assert_eq!(code, 1008);
    // Over HTTP, tRPC's httpSubscriptionLink sends them in the query.
    let params = "connectionParams=%7B%22token%22%3A%22q%22%7D";
    let request = format!("GET /trpc/whoami?{params} HTTP/1.1\r\nhost: x\r\n\r\n");
    let mut answer = send(server.addr(), request.as_bytes());
    assert_eq!(answer.read_to_end().0, r#"{"result":{"data":"q"}}"#);
    let bad = "GET /trpc/whoami?connectionParams=%7B%22n%22%3A1%7D HTTP/1.1\r\nhost: x\r\n\r\n";
    let refused = send(server.addr(), bad.as_bytes());
    assert_eq!(refused.status, 400);
    assert_eq!(refused.json()["error"]["data"]["code"], "PARSE_ERROR");
}
