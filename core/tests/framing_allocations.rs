//! What a subscriber's stream allocates per event, counted: framing an event (oRPC or tRPC) into
//! a buffer with room allocates nothing, and a published event, once the first subscriber has
//! framed it, costs every other subscriber no allocation at all (a reference count for the
//! shared event and one for its bytes). Counted per thread, so the tests running beside these
//! do not blur the figures.

use outer_core::procedure::{Frame, Json};
use outer_core::protocol::orpc::OrpcFraming;
use outer_core::protocol::trpc::{TrpcFraming, TrpcOptions};
use outer_core::protocol::{Chunk, Framing};
use outer_core::publisher::{Published, SeqId};
use outer_core::tracked;

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::{allocations, Counting};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn json(value: serde_json::Value) -> Json {
    serde_json::value::to_raw_value(&value).unwrap()
}

#[test]
fn orpc_framing_writes_an_event_and_done_without_allocating() {
    let mut out = Chunk::with_capacity(1024);
    let mut framing = OrpcFraming::V1;
    let event = tracked(7u64, json(serde_json::json!({"id": 7, "title": "hi"}))).unwrap();
    let done = json(serde_json::json!([1]));
    let made = allocations(|| {
        framing.frame(Frame::Event(event), &mut out);
        framing.frame(Frame::Done(done), &mut out);
    });
    assert_eq!(
        out.into_string(),
        "event: message\nid: 7\ndata: {\"json\":{\"id\":7,\"title\":\"hi\"}}\n\n\
         event: done\ndata: {\"json\":[1]}\n\n"
    );
    assert_eq!(made, 0, "framing allocated");
}

#[test]
fn trpc_framing_writes_an_event_without_allocating() {
    let mut out = Chunk::with_capacity(1024);
    let mut framing = TrpcFraming::new(&TrpcOptions::default(), "post.live", None);
    let event = tracked(7u64, json(serde_json::json!({"id": 7}))).unwrap();
    let made = allocations(|| framing.frame(Frame::Event(event), &mut out));
    assert_eq!(out.into_string(), "data: {\"id\":7}\nid: 7\n\n\n");
    assert_eq!(made, 0, "framing allocated");
}

#[test]
fn a_published_event_costs_a_subscriber_no_allocation_once_it_is_framed() {
    let post = Published::new(
        SeqId::new(3),
        serde_json::json!({"id": 3, "title": "a chat post"}),
    );
    // The first subscriber of each protocol serializes the data and writes the frame.
    let mut trpc = TrpcFraming::new(&TrpcOptions::default(), "post.live", None);
    for framing in [&mut OrpcFraming::default() as &mut dyn Framing, &mut trpc] {
        framing.frame(
            Frame::Shared(post.shared_event().unwrap()),
            &mut Chunk::new(),
        );
    }
    // Every other one: the shared event, the frame, the chunk it goes out as.
    for framing in [&mut OrpcFraming::default() as &mut dyn Framing, &mut trpc] {
        let mut out = Chunk::new();
        let made = allocations(|| {
            framing.frame(Frame::Shared(post.shared_event().unwrap()), &mut out);
            drop(std::hint::black_box(out.into_bytes()));
        });
        assert_eq!(made, 0, "{made} allocations per subscriber per event");
    }
}
