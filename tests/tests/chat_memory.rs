//! A catch-up from the chat's store costs memory in proportion to what the client reads, not to
//! how far behind it is: 20 clients resume from post 1 of 100,000 posts of 1,000 bytes and
//! read nothing, and the process's resident memory grows by a few MiB, not by 20 copies of the
//! store (2 GB before catch-up was paged). Then they go, and their streams close.
//!
//! Alone in its test binary: it reads the whole process's RSS, which other tests running beside
//! it would move. On tokio and on smol, one after the other.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use outer_examples::chat::{self, Chat, MAX_TITLE};
use outer_harness::conformance::{Adapter, RunningServer};
use outer_harness::loopback::wait_until;
use outer_http::OuterService;

const POSTS: usize = 100_000;
const CLIENTS: usize = 20;
/// What 20 stalled catch-ups may add at most: each holds a page of posts, a chunk and its
/// connection's buffers. Twenty copies of the store would be 2,000 MiB.
const MOST_GROWTH: usize = 64 << 20;

/// This process's resident memory, in bytes.
fn rss() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: usize = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

fn stalled_resumers_hold_a_page_each<R: Adapter>() {
    let chat = Chat::new();
    let title = "x".repeat(MAX_TITLE);
    for _ in 0..POSTS {
        chat.create_now(title.clone());
    }
    let mut server = R::start(OuterService::new(
        chat::app(chat.clone(), R::timer()),
        chat::server_config(),
        R::timer(),
    ));
    let before = rss();
    // oRPC and tRPC alike; the clients send their request and never read.
    let clients: Vec<TcpStream> = (0..CLIENTS)
        .map(|n| {
            let mut stream = TcpStream::connect(server.addr()).unwrap();
            let request: &[u8] = if n % 2 == 0 {
                b"POST /rpc/post/live HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
                  last-event-id: 1\r\ncontent-length: 13\r\n\r\n{\"json\":null}"
            } else {
                b"GET /trpc/post.live HTTP/1.1\r\nhost: test\r\nlast-event-id: 1\r\n\r\n"
            };
            stream.write_all(request).unwrap();
            stream
        })
        .collect();
    wait_until("every catch-up to start", || {
        server.active_streams() == CLIENTS
    });
    // Watch the memory while the catch-ups run into their clients' full buffers.
    let mut most = before;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        most = most.max(rss());
        std::thread::sleep(Duration::from_millis(50));
    }
    let growth = most.saturating_sub(before);
    eprintln!(
        "{CLIENTS} stalled catch-ups: RSS grew by {} KiB",
        growth >> 10
    );
    assert!(
        growth < MOST_GROWTH,
        "{CLIENTS} stalled catch-ups grew RSS by {} MiB",
        growth >> 20
    );
    drop(clients);
    wait_until("the streams to close", || server.active_streams() == 0);
    assert_eq!(chat.live_subscribers(), 0);
    server.shutdown();
}

#[test]
fn stalled_catch_ups_from_the_store_stay_bounded_on_every_runtime() {
    stalled_resumers_hold_a_page_each::<outer_tokio::testing::Tokio>();
    stalled_resumers_hold_a_page_each::<outer_smol::testing::Smol>();
    stalled_resumers_hold_a_page_each::<outer_monoio::testing::IoUring>();
}
