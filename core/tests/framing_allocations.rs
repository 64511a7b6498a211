//! What a subscriber's stream allocates per event, counted: framing an event (oRPC or tRPC) into
//! a buffer with room allocates nothing, so the only allocations per subscriber per event are
//! the frame's own parts (its JSON and its id). Counted per thread, so the tests running beside
//! these do not blur the figures.

use outer_core::procedure::{Frame, Json};
use outer_core::protocol::orpc::OrpcFraming;
use outer_core::protocol::trpc::{TrpcFraming, TrpcOptions};
use outer_core::protocol::Framing;
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
    let mut out = String::with_capacity(1024);
    let mut framing = OrpcFraming;
    let event = tracked(7u64, json(serde_json::json!({"id": 7, "title": "hi"}))).unwrap();
    let done = json(serde_json::json!([1]));
    let made = allocations(|| {
        framing.frame(Frame::Event(event), &mut out);
        framing.frame(Frame::Done(done), &mut out);
    });
    assert_eq!(
        out,
        "event: message\nid: 7\ndata: {\"json\":{\"id\":7,\"title\":\"hi\"}}\n\n\
         event: done\ndata: {\"json\":[1]}\n\n"
    );
    assert_eq!(made, 0, "framing allocated");
}

#[test]
fn trpc_framing_writes_an_event_without_allocating() {
    let mut out = String::with_capacity(1024);
    let mut framing = TrpcFraming::new(&TrpcOptions::default(), "post.live", None);
    let event = tracked(7u64, json(serde_json::json!({"id": 7}))).unwrap();
    let made = allocations(|| framing.frame(Frame::Event(event), &mut out));
    assert_eq!(out, "data: {\"id\":7}\nid: 7\n\n\n");
    assert_eq!(made, 0, "framing allocated");
}

#[test]
fn a_published_event_costs_a_subscriber_its_json_and_its_id_and_nothing_more() {
    let post = Published::new(
        SeqId::new(3),
        serde_json::json!({"id": 3, "title": "a chat post"}),
    );
    // The first subscriber serializes the shared value; every other one copies it.
    let _ = serde_json::value::to_raw_value(&post).unwrap();
    let mut out = String::with_capacity(1024);
    let mut framing = OrpcFraming;
    let made = allocations(|| {
        let json = serde_json::value::to_raw_value(&post).unwrap();
        let event = tracked(3u64, json).unwrap();
        framing.frame(Frame::Event(event), &mut out);
    });
    assert!(out.ends_with("data: {\"json\":{\"id\":3,\"title\":\"a chat post\"}}\n\n"));
    // The JSON copy (serde_json writes it into a buffer, then shrinks that to a box) and the
    // id's text: 3 calls into the allocator per subscriber per event. (4 before the oRPC
    // framing wrote its envelope straight into the stream's text.)
    assert!(made <= 3, "{made} allocations per subscriber per event");
}
