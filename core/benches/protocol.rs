//! Protocol encoding: what a server does per subscriber per event once the publisher hands it a
//! post, for oRPC and tRPC, in events per second.
//!
//! The event is the chat example's: a post (`{"id":..,"title":..}`, an 80-byte title) published
//! once and shared, with its id as the SSE id. Each subscriber takes the post's shared event
//! (made once per event by `Published`) and hands it to the protocol's framing, which takes the
//! frame the first subscriber encoded and pushes it into the stream's chunk. 1,000 events per
//! iteration, each into a chunk of its own, as an `SseBody` sends an event that arrives alone.
//! Run: `cargo bench -p outer-core --bench protocol`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use outer_core::procedure::Frame;
use outer_core::protocol::orpc::OrpcFraming;
use outer_core::protocol::trpc::{TrpcFraming, TrpcOptions};
use outer_core::protocol::{Chunk, Framing};
use outer_core::publisher::{Published, SeqId};
use serde::Serialize;

const EVENTS: u64 = 1_000;

#[derive(Serialize)]
struct Post {
    id: u64,
    title: String,
}

fn posts() -> Vec<Published<Post>> {
    (1..=EVENTS)
        .map(|id| {
            let title = format!("{id} a chat message of a realistic, if modest, length: hello all")
                .chars()
                .cycle()
                .take(80)
                .collect();
            Published::new(SeqId::new(id), Post { id, title })
        })
        .collect()
}

/// One subscriber's work for one event: the shared event into a frame, the frame into a chunk,
/// the chunk into the bytes its socket is handed.
fn encode(post: &Published<Post>, framing: &mut impl Framing) -> usize {
    let event = match post.shared_event() {
        Ok(event) => event,
        Err(err) => panic!("a post serializes: {err}"),
    };
    let mut out = Chunk::new();
    framing.frame(Frame::Shared(event), &mut out);
    out.into_bytes().len()
}

fn bench(c: &mut Criterion) {
    let posts = posts();
    let mut trpc = TrpcFraming::new(&TrpcOptions::default(), "post.live", None);
    // Warm each post's frames, as the first subscriber of each protocol to send it does.
    for post in &posts {
        encode(post, &mut OrpcFraming::default());
        encode(post, &mut trpc);
    }
    let mut group = c.benchmark_group("protocol");
    group.throughput(Throughput::Elements(EVENTS));
    group.bench_function("orpc/event", |b| {
        b.iter(|| {
            let mut framing = OrpcFraming::V1;
            black_box(&posts)
                .iter()
                .map(|post| encode(post, &mut framing))
                .sum::<usize>()
        })
    });
    group.bench_function("trpc/event", |b| {
        b.iter(|| {
            black_box(&posts)
                .iter()
                .map(|post| encode(post, &mut trpc))
                .sum::<usize>()
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5));
    targets = bench
}
criterion_main!(benches);
