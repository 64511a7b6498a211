//! Protocol encoding: what a server does per subscriber per event once the publisher hands it a
//! post, for oRPC and tRPC, in events per second.
//!
//! The event is the chat example's: a post (`{"id":..,"title":..}`, an 80-byte title) published
//! once and shared, with its id as the SSE id. Each subscriber takes its shared JSON (serialized
//! once per event by `Published`, copied per subscriber into the frame's `Json`), makes the
//! tracked event and writes it with the protocol's framing into the stream's text. 1,000 events
//! per iteration, written into one buffer that is cleared each iteration, as an `SseBody` gathers
//! ready frames into one chunk.
//! Run: `cargo bench -p outer-core --bench protocol`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use outer_core::procedure::{Frame, Json};
use outer_core::protocol::orpc::OrpcFraming;
use outer_core::protocol::trpc::{TrpcFraming, TrpcOptions};
use outer_core::protocol::Framing;
use outer_core::publisher::{Published, SeqId};
use outer_core::tracked;
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

/// One subscriber's work for one event: the shared JSON into a frame, the frame into text.
fn encode(post: &Published<Post>, framing: &mut impl Framing, out: &mut String) {
    // `Published` serializes once; later calls copy the cached bytes, as every subscriber does.
    let json: Json = match serde_json::value::to_raw_value(post) {
        Ok(json) => json,
        Err(err) => panic!("a post serializes: {err}"),
    };
    let event = match tracked(post.id, json) {
        Ok(event) => event,
        Err(err) => panic!("a number is a valid id: {err}"),
    };
    framing.frame(Frame::Event(event), out);
}

fn bench(c: &mut Criterion) {
    let posts = posts();
    let mut out = String::with_capacity(256 * EVENTS as usize);
    // Warm each post's cache, as the first subscriber to send it does.
    for post in &posts {
        encode(post, &mut OrpcFraming, &mut out);
    }
    let mut group = c.benchmark_group("protocol");
    group.throughput(Throughput::Elements(EVENTS));
    group.bench_function("orpc/event", |b| {
        b.iter(|| {
            out.clear();
            let mut framing = OrpcFraming;
            for post in black_box(&posts) {
                encode(post, &mut framing, &mut out);
            }
            black_box(out.len())
        })
    });
    group.bench_function("trpc/event", |b| {
        let mut framing = TrpcFraming::new(&TrpcOptions::default(), "post.live", None);
        b.iter(|| {
            out.clear();
            for post in black_box(&posts) {
                encode(post, &mut framing, &mut out);
            }
            black_box(out.len())
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
