//! The chat page in headless Chromium (tests/interop/browser.mjs): a person posts and sees the
//! post arrive live over a browser EventSource on /trpc/post.live; then the server restarts on
//! the same port, a post is made while the page is away, and the page resumes by itself with
//! Last-Event-ID and receives every post exactly once, in order. Then the server restarts with
//! fresh state (its posts lost): the page's resume id meets a gap (412), and the page starts
//! over and shows the posts of the new run. Last, an EventSource on /trpc/mentions.live without
//! a token meets 401: it fails for good (CLOSED at once) and does not reconnect. On tokio, on
//! smol and on monoio.
//!
//! The same page over WebSocket (`/?transport=ws`, tests/interop/browser-ws.mjs): posts arrive
//! over tRPC's WebSocket at /trpc; the page answers the server's `PING`s and keeps its socket;
//! when the socket is cut it reconnects and resubscribes with the last id it showed; across a
//! restart with the same posts (the shutdown sends tRPC's reconnect notice) it resumes and gets
//! every post exactly once; after a restart without them it meets the 412 gap and starts over;
//! and on a reconnect notice while the server stays up it moves to a new socket without losing or
//! repeating a post. Also on the three runtimes.
//!
//! A restart here is the server's graceful shutdown in this process, the same `shutdown()` the
//! chat binary runs on SIGTERM, then a new server on the same port over the same (or a new) chat.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use outer_examples::chat::{self, Chat, ChatCtx};
use outer_http::{OuterService, ServerConfig};
use outer_tests::npm_ci;

/// Starts a server on `addr` (the chat's pages and test hooks around `service`) and gives back
/// what stops it (gracefully).
type Start = fn(SocketAddr, OuterService<ChatCtx>) -> Box<dyn FnOnce()>;

fn start_tokio(addr: SocketAddr, service: OuterService<ChatCtx>) -> Box<dyn FnOnce()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        outer_tokio::serve(listener, chat::stack(service, true)).unwrap()
    });
    Box::new(move || {
        runtime.block_on(server.shutdown());
    })
}

fn start_smol(addr: SocketAddr, service: OuterService<ChatCtx>) -> Box<dyn FnOnce()> {
    let server = smol::block_on(async {
        let listener = smol::net::TcpListener::bind(addr).await.unwrap();
        outer_smol::serve(listener, chat::stack(service, true)).unwrap()
    });
    Box::new(move || {
        smol::block_on(server.shutdown());
    })
}

/// On a monoio thread of its own (monoio has no handle to reach it from outside): the stop
/// closes a channel the thread awaits, and the thread shuts its server down.
fn start_monoio(addr: SocketAddr, service: OuterService<ChatCtx>) -> Box<dyn FnOnce()> {
    let (stop, stopped) = smol::channel::bounded::<()>(1);
    let (ready, listening) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        outer_monoio::Driver::available()
            .block_on(async move {
                let listener = outer_monoio::listener(addr).unwrap();
                let server = outer_monoio::serve(listener, chat::stack(service, true)).unwrap();
                ready.send(()).unwrap();
                let _ = stopped.recv().await; // the sender dropped
                server.shutdown().await;
            })
            .unwrap();
    });
    listening.recv().unwrap();
    Box::new(move || {
        drop(stop);
        thread.join().unwrap();
    })
}

/// Serves the chat page with `config` and runs `node <script> http://ADDR<page>` against it,
/// restarting the server when the script asks (`STOP`: same posts, plus one made while it is
/// down; `STOP FRESH`: none). Gives back what the script printed, once it has passed.
fn drive(
    script: &str,
    page: &str,
    config: fn() -> ServerConfig,
    start: Start,
    timer: Arc<dyn outer_core::rt::Timer>,
) -> String {
    let dir = npm_ci();
    let mut chat = Chat::new();
    let service = |chat: &Chat| {
        OuterService::new(
            chat::app(chat.clone(), Arc::clone(&timer)),
            config(),
            Arc::clone(&timer),
        )
    };
    // A free port, kept for the restart.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut stop = start(addr, service(&chat));

    let mut node = Command::new("node")
        .arg(script)
        .arg(format!("http://{addr}{page}"))
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("node is needed for the browser test (install Node.js 20+)");
    let mut to_node = node.stdin.take().unwrap();
    let mut transcript = Vec::new();
    for line in BufReader::new(node.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        transcript.push(line.clone());
        if line == "STOP" {
            stop();
            // Made while the page cannot reach the server, as through another instance.
            chat.create_now("made while away");
            stop = start(addr, service(&chat));
            writeln!(to_node, "RESTARTED made while away").unwrap();
        } else if line == "STOP FRESH" {
            stop();
            // A new run that kept nothing: post ids start at 1 again.
            chat = Chat::new();
            stop = start(addr, service(&chat));
            writeln!(to_node, "RESTARTED").unwrap();
        }
    }
    let status = node.wait().unwrap();
    stop();
    let transcript = transcript.join("\n");
    assert!(status.success(), "{script} failed:\n{transcript}");
    println!("{transcript}"); // shown with --nocapture
    transcript
}

fn page_resumes_after_a_restart(start: Start, timer: Arc<dyn outer_core::rt::Timer>) {
    let config = || chat::server_config();
    let transcript = drive("browser.mjs", "/", config, start, timer);
    assert!(
        transcript.contains("without a token gets 401"),
        "{transcript}"
    );
    assert!(
        transcript.contains("browser: all checks passed"),
        "{transcript}"
    );
}

/// The chat's configuration with the test hooks (`/__test/drop` cuts the page's socket), and
/// keep-alive tight enough to see in a few seconds: a socket quiet for 0.5 s gets `PING`, and
/// one that does not answer within 1 s is dropped.
fn websocket_config() -> ServerConfig {
    let mut config = chat::server_config();
    config.websocket.ping = Some(Duration::from_millis(500));
    config.websocket.pong_wait = Duration::from_secs(1);
    config
}

fn page_over_websocket_resumes_after_a_restart(
    start: Start,
    timer: Arc<dyn outer_core::rt::Timer>,
) {
    let page = "/?transport=ws";
    let transcript = drive("browser-ws.mjs", page, websocket_config, start, timer);
    for check in [
        "answers the server's PING with PONG",
        "reconnects, resubscribes with lastEventId \"1\"",
        "the page resumed with lastEventId \"2\"",
        "every post is shown once, in order, across the cut and the restart",
        "the resume meets the gap (412 PRECONDITION_FAILED), the page starts over",
        "on the reconnect notice the page moves to a new socket",
        "browser-ws: all checks passed",
    ] {
        assert!(transcript.contains(check), "no `{check}` in:\n{transcript}");
    }
}

#[test]
fn chat_page_shows_posts_live_and_resumes_after_a_restart_on_tokio() {
    page_resumes_after_a_restart(start_tokio, Arc::new(outer_tokio::TokioRuntime));
}

#[test]
fn chat_page_shows_posts_live_and_resumes_after_a_restart_on_smol() {
    page_resumes_after_a_restart(start_smol, Arc::new(outer_smol::SmolRuntime));
}

#[test]
fn chat_page_shows_posts_live_and_resumes_after_a_restart_on_monoio() {
    page_resumes_after_a_restart(start_monoio, Arc::new(outer_monoio::MonoioRuntime));
}

#[test]
fn chat_page_over_websocket_shows_posts_live_and_resumes_after_a_restart_on_tokio() {
    page_over_websocket_resumes_after_a_restart(start_tokio, Arc::new(outer_tokio::TokioRuntime));
}

#[test]
fn chat_page_over_websocket_shows_posts_live_and_resumes_after_a_restart_on_smol() {
    page_over_websocket_resumes_after_a_restart(start_smol, Arc::new(outer_smol::SmolRuntime));
}

#[test]
fn chat_page_over_websocket_shows_posts_live_and_resumes_after_a_restart_on_monoio() {
    page_over_websocket_resumes_after_a_restart(
        start_monoio,
        Arc::new(outer_monoio::MonoioRuntime),
    );
}
