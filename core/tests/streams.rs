//! What a subscription's setup may return, as the wire shows it: a publisher's subscription as
//! it is (each event's SSE id is the publisher's id, and its JSON is made once however many
//! clients stream it), and any `Stream` of events through `events`, where an `Err` item ends
//! the stream with an error frame.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use futures::executor::block_on;
use futures::{stream, Stream, StreamExt};
use outer_core::procedure::{collect_frames, Frame};
use outer_core::protocol::orpc::{self, OrpcOptions};
use outer_core::protocol::trpc::{self, TrpcOptions};
use outer_core::protocol::{Body, HttpResponse, SseBody};
use outer_core::publisher::{MemoryPublisher, Publisher, SubscribeOptions};
use outer_core::{
    events, procedure, tracked, App, ErrorCode, Event, Reply, RequestHead, Router, RpcError,
};
use serde::{Serialize, Serializer};

/// A post whose serialization is counted.
struct Post {
    n: u64,
    serialized: Arc<AtomicUsize>,
}

impl Serialize for Post {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.serialized.fetch_add(1, Ordering::SeqCst);
        serializer.serialize_u64(self.n)
    }
}

/// Remembers whether it was woken.
#[derive(Default)]
struct Woken(AtomicBool);

impl Wake for Woken {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// The text a streamed body has ready now: polled until it waits for something that has not
/// happened (a turn it yields and asks to be run again for is not that).
fn ready_text(body: &mut SseBody) -> String {
    let woken = Arc::new(Woken::default());
    let waker = Waker::from(Arc::clone(&woken));
    let mut cx = Context::from_waker(&waker);
    let mut text = String::new();
    loop {
        woken.0.store(false, Ordering::SeqCst);
        match Pin::new(&mut *body).poll_next(&mut cx) {
            Poll::Ready(Some(chunk)) => text.push_str(std::str::from_utf8(&chunk).unwrap()),
            Poll::Ready(None) => return text,
            Poll::Pending if woken.0.load(Ordering::SeqCst) => continue,
            Poll::Pending => return text,
        }
    }
}

fn events_body(response: HttpResponse) -> SseBody {
    match response.body {
        Body::Events(body) => body,
        Body::Full(bytes) => panic!("not a stream: {}", String::from_utf8_lossy(&bytes)),
    }
}

fn text(response: HttpResponse) -> String {
    match response.body {
        Body::Full(bytes) => String::from_utf8(bytes).unwrap(),
        Body::Events(events) => {
            String::from_utf8(block_on(events.collect::<Vec<_>>()).concat()).unwrap()
        }
    }
}

fn orpc_call<C>(app: &App<C>, path: &str, last_event_id: Option<&str>) -> HttpResponse {
    let mut head = RequestHead::new("POST", format!("/rpc{path}"));
    if let Some(id) = last_event_id {
        head = head.with_header("Last-Event-ID", id);
    }
    let options = OrpcOptions::default();
    block_on(orpc::handle(app, head, path, b"", &options, None))
}

fn trpc_call<C: Clone>(app: &App<C>, path: &str, last_event_id: Option<&str>) -> HttpResponse {
    let mut head = RequestHead::new("GET", format!("/trpc{path}"));
    if let Some(id) = last_event_id {
        head = head.with_header("Last-Event-ID", id);
    }
    let options = TrpcOptions {
        ping: None,
        ..TrpcOptions::default()
    };
    block_on(trpc::handle(app, head, path, "", b"", &options, None))
}

#[test]
fn a_publisher_subscription_streams_with_the_publisher_ids_and_json_made_once_for_all() {
    let publisher = MemoryPublisher::<Post>::new();
    let router = Router::new().route("posts", {
        let publisher = publisher.clone();
        procedure::<()>().subscription(move |req| {
            let publisher = publisher.clone();
            async move {
                let options = SubscribeOptions {
                    last_event_id: req.last_event_id,
                    ..SubscribeOptions::new()
                };
                // The subscription is the stream, as it is.
                Ok(publisher.subscribe("posts", options).await?)
            }
        })
    });
    let app = App::from(router);
    let serialized = Arc::new(AtomicUsize::new(0));
    let post = |n| Post {
        n,
        serialized: Arc::clone(&serialized),
    };
    // Ids 1 and 2 come before anyone listens, so that a resume replays them.
    for n in [10, 20] {
        publisher.publish_now("posts", post(n));
    }

    // Three oRPC clients and two tRPC ones, live; one of each resuming after id 1.
    let mut orpc_live: Vec<SseBody> = (0..3)
        .map(|_| events_body(orpc_call(&app, "/posts", None)))
        .collect();
    let mut trpc_live: Vec<SseBody> = (0..2)
        .map(|_| events_body(trpc_call(&app, "/posts", None)))
        .collect();
    for body in &mut orpc_live {
        assert_eq!(ready_text(body), ": \n\n");
    }
    for body in &mut trpc_live {
        assert_eq!(ready_text(body), "event: connected\ndata: {}\n\n\n");
    }
    let mut orpc_resumed = events_body(orpc_call(&app, "/posts", Some("1")));
    let mut trpc_resumed = events_body(trpc_call(&app, "/posts", Some("1")));
    assert_eq!(
        ready_text(&mut orpc_resumed),
        ": \n\nevent: message\nid: 2\ndata: {\"json\":20}\n\n"
    );
    assert_eq!(
        ready_text(&mut trpc_resumed),
        "event: connected\ndata: {}\n\n\ndata: 20\nid: 2\n\n\n"
    );

    for n in [30, 40] {
        publisher.publish_now("posts", post(n));
    }
    let orpc_events = "event: message\nid: 3\ndata: {\"json\":30}\n\n\
                       event: message\nid: 4\ndata: {\"json\":40}\n\n";
    let trpc_events = "data: 30\nid: 3\n\n\ndata: 40\nid: 4\n\n\n";
    for body in orpc_live.iter_mut().chain([&mut orpc_resumed]) {
        assert_eq!(ready_text(body), orpc_events);
    }
    for body in trpc_live.iter_mut().chain([&mut trpc_resumed]) {
        assert_eq!(ready_text(body), trpc_events);
    }
    // Four posts: the first sent to nobody, the second to the two that resumed, the others
    // to all seven clients. Each post that was sent was serialized once.
    assert_eq!(serialized.load(Ordering::SeqCst), 3);
}

#[test]
fn a_stream_of_events_keeps_their_meta_and_returns_null() {
    let router = Router::new().route(
        "ticks",
        procedure::<()>().subscription(|_| async {
            let ticks = vec![
                tracked("a", 1)?.with_retry(500),
                Event::new(2),
                Event::new(3).with_comment("last")?,
            ];
            Ok(events(stream::iter(ticks)))
        }),
    );
    let app = App::from(router);

    let Reply::Stream(frames) =
        block_on(app.call(RequestHead::default(), "ticks", None, None)).unwrap()
    else {
        panic!("expected a stream")
    };
    let frames = block_on(collect_frames(frames));
    assert_eq!(frames.len(), 4);
    let Frame::Event(first) = &frames[0] else {
        panic!("expected an event")
    };
    assert_eq!(
        (first.id().unwrap().as_str(), first.meta().retry()),
        ("a", Some(500))
    );
    let Frame::Done(done) = &frames[3] else {
        panic!("expected the end")
    };
    assert_eq!(done.get(), "null");

    assert_eq!(
        text(orpc_call(&app, "/ticks", None)),
        ": \n\n\
         event: message\nretry: 500\nid: a\ndata: {\"json\":1}\n\n\
         event: message\ndata: {\"json\":2}\n\n\
         : last\nevent: message\ndata: {\"json\":3}\n\n\
         event: done\ndata: {}\n\n"
    );
    // tRPC's stream carries ids (an untracked event after a tracked one clears the id, then
    // puts it back), not retry or comments.
    assert_eq!(
        text(trpc_call(&app, "/ticks", None)),
        "event: connected\ndata: {}\n\n\n\
         data: 1\nid: a\n\n\n\
         data: 2\nid: \n\n\nevent: restore-id\ndata: \nid: a\n\n\n\
         data: 3\nid: \n\n\nevent: restore-id\ndata: \nid: a\n\n\n\
         event: return\ndata: \n\n\n"
    );
}

/// Counts how often it was dropped.
struct DropGuard(Arc<AtomicUsize>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// An error of the app's own, as a handler's stream may yield it.
#[derive(Debug)]
struct Gone(&'static str);

impl From<Gone> for RpcError {
    fn from(gone: Gone) -> Self {
        RpcError::new(ErrorCode::NOT_FOUND, format!("{} is gone", gone.0))
    }
}

#[test]
fn an_err_item_ends_the_stream_with_an_error_frame_and_drops_the_source() {
    let dropped = Arc::new(AtomicUsize::new(0));
    let pulled = Arc::new(AtomicUsize::new(0));
    let router = Router::new().route("rooms", {
        let (dropped, pulled) = (Arc::clone(&dropped), Arc::clone(&pulled));
        procedure::<()>().subscription(move |_| {
            let guard = DropGuard(Arc::clone(&dropped));
            let pulled = Arc::clone(&pulled);
            async move {
                let items = vec![
                    Ok(Event::new("lobby")),
                    Err(Gone("attic")),
                    Ok(Event::new("never sent")),
                ];
                // The guard lives as long as the source does.
                let source = stream::iter(items).map(move |item| {
                    let _ = &guard;
                    pulled.fetch_add(1, Ordering::SeqCst);
                    item
                });
                Ok(events(source))
            }
        })
    });
    let app = App::from(router);

    let Reply::Stream(mut frames) =
        block_on(app.call(RequestHead::default(), "rooms", None, None)).unwrap()
    else {
        panic!("expected a stream")
    };
    let Some(Frame::Event(lobby)) = block_on(frames.next()) else {
        panic!("expected the first event")
    };
    assert_eq!(lobby.data().get(), "\"lobby\"");
    let Some(Frame::Error(error)) = block_on(frames.next()) else {
        panic!("expected the error frame")
    };
    assert_eq!((error.status(), error.message()), (404, "attic is gone"));
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        1,
        "the source is dropped as the error goes out"
    );
    assert!(block_on(frames.next()).is_none(), "nothing after the error");
    assert_eq!(
        pulled.load(Ordering::SeqCst),
        2,
        "the item after it was never pulled"
    );

    assert_eq!(
        text(orpc_call(&app, "/rooms", None)),
        ": \n\nevent: message\ndata: {\"json\":\"lobby\"}\n\n\
         event: error\ndata: {\"json\":{\"defined\":false,\"code\":\"NOT_FOUND\",\"status\":404,\"message\":\"attic is gone\"}}\n\n"
    );
    assert_eq!(
        text(trpc_call(&app, "/rooms", None)),
        "event: connected\ndata: {}\n\n\n\
         data: \"lobby\"\n\n\n\
         event: serialized-error\ndata: {\"message\":\"attic is gone\",\"code\":-32004,\"data\":{\"code\":\"NOT_FOUND\",\"httpStatus\":404,\"path\":\"rooms\"}}\n\n\n"
    );
}
