//! The load generator's WebSocket side (`trpc-ws`, `orpc-ws`) against an in-process server that
//! speaks each protocol's WebSocket wire for `post.live` and `post.create`, frame for frame as
//! the captures in `tests/fixtures/reference-ws` show it, and nothing over HTTP, like the
//! reference servers there: so the posts go over WebSocket too. Checks that every post reaches
//! every subscriber and that tRPC's `PING`s are answered.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use outer_bench::http::Url;
use outer_bench::load::{run, Config};
use outer_bench::protocol::Protocol;
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc};
use tokio_tungstenite::tungstenite::Message;

struct State {
    protocol: Protocol,
    /// The last post id given out, held while the post is broadcast so that the streams get
    /// posts in id order.
    ids: std::sync::Mutex<u64>,
    posts: broadcast::Sender<Value>,
    /// `PONG`s received (tRPC).
    pongs: AtomicU64,
}

async fn serve(listener: TcpListener, state: Arc<State>) {
    while let Ok((stream, _)) = listener.accept().await {
        tokio::spawn(connection(stream, Arc::clone(&state)));
    }
}

async fn connection(stream: TcpStream, state: Arc<State>) {
    let Ok(socket) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let (mut sink, mut frames) = socket.split();
    // Subscriptions and call answers share the socket: one writer.
    let (out, mut outgoing) = mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        while let Some(text) = outgoing.recv().await {
            if sink.send(Message::text(text)).await.is_err() {
                break;
            }
        }
    });
    let trpc = state.protocol == Protocol::TrpcWs;
    if trpc {
        // The tRPC server's keep-alive, at once rather than after 500 ms of quiet.
        let _ = out.send("PING".into());
    }
    while let Some(Ok(message)) = frames.next().await {
        let Message::Text(text) = message else {
            continue;
        };
        if text.as_str() == "PONG" {
            state.pongs.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let request: Value = serde_json::from_str(text.as_str()).unwrap();
        let (id, procedure, title) = if trpc {
            (
                request["id"].clone(),
                request["params"]["path"].as_str().unwrap().to_owned(),
                request["params"]["input"]["title"].clone(),
            )
        } else {
            (
                request["i"].clone(),
                request["p"]["u"].as_str().unwrap().to_owned(),
                request["p"]["b"]["json"]["title"].clone(),
            )
        };
        match procedure.as_str() {
            "post.live" | "/post/live" => {
                let mut posts = state.posts.subscribe();
                let out = out.clone();
                let started = if trpc {
                    json!({ "id": id, "result": { "type": "started" } })
                } else {
                    json!({ "i": id, "p": { "h": { "content-type": "text/event-stream" } } })
                };
                let _ = out.send(started.to_string());
                tokio::spawn(async move {
                    while let Ok(post) = posts.recv().await {
                        let event_id = post["id"].to_string();
                        let frame = if trpc {
                            json!({ "id": id, "result": { "type": "data", "data": { "id": event_id, "data": post }, "id": event_id } })
                        } else {
                            json!({ "i": id, "t": 3, "p": { "e": "message", "d": { "json": post }, "m": { "id": event_id } } })
                        };
                        if out.send(frame.to_string()).is_err() {
                            break;
                        }
                    }
                });
            }
            "post.create" | "/post/create" => {
                let post = {
                    let mut ids = state.ids.lock().unwrap();
                    *ids += 1;
                    let post = json!({ "id": *ids, "title": title });
                    let _ = state.posts.send(post.clone());
                    post
                };
                let answer = if trpc {
                    json!({ "id": id, "result": { "type": "data", "data": post } })
                } else {
                    json!({ "i": id, "p": { "b": { "json": post } } })
                };
                let _ = out.send(answer.to_string());
            }
            other => panic!("no procedure {other}"),
        }
    }
}

async fn check(protocol: Protocol) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = match protocol {
        Protocol::TrpcWs => "/trpc",
        _ => "/rpc",
    };
    let url = format!("http://{}{base}", listener.local_addr().unwrap());
    let state = Arc::new(State {
        protocol,
        ids: std::sync::Mutex::new(0),
        posts: broadcast::channel(4096).0,
        pongs: AtomicU64::new(0),
    });
    let server = tokio::spawn(serve(listener, Arc::clone(&state)));

    let mut config = common::small(&url, protocol);
    config.post_over_websocket = true;
    let report = run(&config).await.unwrap();
    server.abort();

    assert_eq!(report.protocol, protocol.to_string());
    common::assert_every_post_delivered(&report);
    let [p50, p99, max] = report.load.latency_us;
    assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{p50} {p99} {max}");
    if protocol == Protocol::TrpcWs {
        // Every subscriber's socket answered its PING (the publishers' may too).
        assert!(state.pongs.load(Ordering::Relaxed) >= 3);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_post_reaches_every_websocket_subscriber_over_trpc() {
    check(Protocol::TrpcWs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_post_reaches_every_websocket_subscriber_over_orpc() {
    check(Protocol::OrpcWs).await;
}

#[tokio::test]
async fn a_refused_websocket_subscription_is_an_error_not_a_hang() {
    // Upgrades, then answers the subscription with tRPC's NOT_FOUND error.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/trpc", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut socket = tokio_tungstenite::accept_async(stream).await.unwrap();
                while let Some(Ok(_)) = socket.next().await {
                    let error = r#"{"id":1,"error":{"message":"No such procedure","code":-32004,"data":{"code":"NOT_FOUND","httpStatus":404,"path":"post.live"}}}"#;
                    let _ = socket.send(Message::text(error)).await;
                }
            });
        }
    });
    let mut config = Config::new(Url::parse(&url).unwrap(), Protocol::TrpcWs, 2);
    config.connect_timeout = Duration::from_secs(5);
    let err = run(&config).await.unwrap_err();
    assert!(err.to_string().contains("post.live refused"), "{err}");
    server.abort();
}
