//! `publisher::backfilled`: a live feed whose gaps a store fills. The publisher here keeps two
//! events; the store (a list standing in for a database table) keeps them all. A client that
//! resumes from further back, or falls behind, gets every event exactly once, in order, then
//! goes on live; what neither has ends the stream with 412; a bad resume id fails at once; and
//! the store is read a page at a time, as fast as the client reads.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use futures::executor::block_on;
use futures::future::{ready, Ready};
use futures::{Stream, StreamExt};
use outer_core::protocol::orpc::{self, OrpcOptions};
use outer_core::protocol::{Body, SseBody};
use outer_core::publisher::{backfilled, Backfilled, MemoryPublisher, SeqId, SubscribeOptions};
use outer_core::{procedure, App, EventId, RequestHead, Router, RpcError};

const TOPIC: &str = "posts";

/// A page of posts from the store, oldest first.
type Page = Result<Vec<(SeqId, u64)>, RpcError>;

/// The publisher and the store behind it: every post goes to both.
#[derive(Clone)]
struct Feed {
    publisher: MemoryPublisher<u64>,
    rows: Arc<Mutex<Vec<(SeqId, u64)>>>,
    /// How many pages the store was asked for.
    pages: Arc<AtomicUsize>,
}

impl Feed {
    /// A publisher that keeps the last two events.
    fn new() -> Self {
        Self {
            publisher: MemoryPublisher::builder().retain_last(2).build(),
            rows: Arc::default(),
            pages: Arc::default(),
        }
    }

    /// Publishes and stores post `n`; its data is ten times its id, so a mix-up shows.
    fn post(&self) -> SeqId {
        let mut rows = self.rows.lock().unwrap();
        let next = rows.last().map_or(1, |(id, _)| id.get() + 1);
        let id = self.publisher.publish_now(TOPIC, next * 10);
        assert_eq!(id.get(), next);
        rows.push((id, next * 10));
        id
    }

    fn posts(&self, count: usize) {
        for _ in 0..count {
            self.post();
        }
    }

    /// The store's query: up to `size` posts after `after`, oldest first.
    fn page(&self, size: usize) -> impl Fn(SeqId) -> Ready<Page> + Send + 'static {
        let (rows, pages) = (Arc::clone(&self.rows), Arc::clone(&self.pages));
        move |after| {
            pages.fetch_add(1, Ordering::SeqCst);
            let rows = rows.lock().unwrap();
            let page = rows.iter().filter(|(id, _)| *id > after).take(size);
            ready(Ok(page.copied().collect()))
        }
    }

    fn pages(&self) -> usize {
        self.pages.load(Ordering::SeqCst)
    }

    /// The backfilled feed from `options`, in pages of three.
    fn subscribe(&self, options: SubscribeOptions) -> Result<Backfilled<u64, SeqId>, RpcError> {
        block_on(backfilled(
            self.publisher.clone(),
            TOPIC,
            options,
            self.page(3),
        ))
    }
}

fn after(id: u64) -> SubscribeOptions {
    SubscribeOptions::new().resume_after(SeqId::new(id))
}

/// Remembers whether it was woken.
#[derive(Default)]
struct Woken(AtomicBool);

impl Wake for Woken {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// What a stream has ready now, stopping where it waits for something that has not happened
/// (a turn it yields and asks to be run again for is not that), and whether it ended.
fn ready_items<S: Stream + Unpin>(stream: &mut S) -> (Vec<S::Item>, bool) {
    let woken = Arc::new(Woken::default());
    let waker = Waker::from(Arc::clone(&woken));
    let mut cx = Context::from_waker(&waker);
    let mut items = Vec::new();
    loop {
        woken.0.store(false, Ordering::SeqCst);
        match Pin::new(&mut *stream).poll_next(&mut cx) {
            Poll::Ready(Some(item)) => items.push(item),
            Poll::Ready(None) => return (items, true),
            Poll::Pending if woken.0.load(Ordering::SeqCst) => continue,
            Poll::Pending => return (items, false),
        }
    }
}

/// The ids of the events ready now (each checked against its data); panics on an error.
fn ready_ids(feed: &mut Backfilled<u64, SeqId>) -> Vec<u64> {
    let (items, ended) = ready_items(feed);
    assert!(!ended, "the feed ended");
    items
        .into_iter()
        .map(|item| {
            let post = item.unwrap();
            assert_eq!(*post, post.id().get() * 10, "the data of {}", post.id());
            post.id().get()
        })
        .collect()
}

#[test]
fn a_resume_from_before_retention_is_filled_from_the_store_then_goes_live() {
    let feed = Feed::new();
    feed.posts(10);
    let mut posts = feed.subscribe(after(3)).unwrap();
    assert_eq!(ready_ids(&mut posts), (4..=10).collect::<Vec<_>>());
    assert!(feed.pages() > 0, "the publisher keeps 9 and 10 only");
    assert_eq!(feed.publisher.subscriber_count(TOPIC), 1, "live again");

    feed.posts(2);
    assert_eq!(ready_ids(&mut posts), [11, 12]);
    let pages = feed.pages();
    feed.post();
    assert_eq!(ready_ids(&mut posts), [13]);
    assert_eq!(feed.pages(), pages, "live events come from the publisher");
    drop(posts);
    assert_eq!(feed.publisher.subscriber_count(TOPIC), 0);
}

#[test]
fn posts_made_while_the_store_fills_in_come_once_each() {
    let feed = Feed::new();
    feed.posts(10);
    let mut posts = feed.subscribe(after(0)).unwrap();
    let mut got = vec![block_on(posts.next()).unwrap().unwrap().id().get()];
    // While the client reads the store, the publisher moves on past what it keeps.
    feed.posts(5);
    got.extend(ready_ids(&mut posts));
    feed.posts(1);
    got.extend(ready_ids(&mut posts));
    assert_eq!(got, (1..=16).collect::<Vec<_>>());
}

#[test]
fn a_subscriber_that_falls_behind_is_refilled_from_the_store() {
    let feed = Feed::new();
    // Live only, and allowed to fall one event behind (the publisher keeps two).
    let mut posts = feed.subscribe(SubscribeOptions::new().buffer(1)).unwrap();
    assert_eq!(ready_ids(&mut posts), Vec::<u64>::new());
    feed.post();
    assert_eq!(ready_ids(&mut posts), [1]);
    assert_eq!(feed.pages(), 0);

    // Nine posts while it does not read: the publisher has let 2 to 8 go.
    feed.posts(9);
    assert_eq!(ready_ids(&mut posts), (2..=10).collect::<Vec<_>>());
    assert!(feed.pages() > 0, "the store filled the lag");
    feed.post();
    assert_eq!(ready_ids(&mut posts), [11]);
}

#[test]
fn an_id_never_given_out_ends_with_412_after_the_store_has_nothing_either() {
    let feed = Feed::new();
    feed.posts(3);
    let mut posts = feed.subscribe(after(50)).unwrap();
    let (items, ended) = ready_items(&mut posts);
    assert!(ended);
    let [Err(error)] = items.as_slice() else {
        panic!("expected only the gap, got {items:?}")
    };
    assert_eq!((error.code(), error.status()), ("PRECONDITION_FAILED", 412));
    assert_eq!(feed.pages(), 1, "the store was asked after 50");
    assert_eq!(feed.publisher.subscriber_count(TOPIC), 0);
}

#[test]
fn a_malformed_resume_id_fails_before_any_stream() {
    let feed = Feed::new();
    feed.posts(3);
    let options = SubscribeOptions::new().resume_after(EventId::new("0x2a").unwrap());
    let error = feed.subscribe(options).unwrap_err();
    assert_eq!((error.code(), error.status()), ("BAD_REQUEST", 400));
    assert!(
        error.message().contains("malformed last event id"),
        "{error}"
    );
    assert_eq!(feed.pages(), 0);
    assert_eq!(feed.publisher.subscriber_count(TOPIC), 0);
}

#[test]
fn the_store_is_read_a_page_at_a_time_as_the_client_reads() {
    let feed = Feed::new();
    feed.posts(100);
    let pages = feed.page(10);
    let mut posts = block_on(backfilled(feed.publisher.clone(), TOPIC, after(0), pages)).unwrap();
    assert_eq!(feed.pages(), 0, "nothing is read before the client asks");

    let mut next = || block_on(posts.next()).unwrap().unwrap().id().get();
    assert_eq!(next(), 1);
    // A client that does not read holds one page, however far behind it is: the next is
    // asked for only once it has taken the last post of this one.
    assert_eq!(feed.pages(), 1);
    for id in 2..=10 {
        assert_eq!(next(), id);
    }
    assert_eq!(
        feed.pages(),
        1,
        "the first page is not used up until the 11th post"
    );
    assert_eq!(next(), 11);
    assert_eq!(feed.pages(), 2);
    for id in 12..=100 {
        assert_eq!(next(), id);
    }
    assert_eq!(feed.pages(), 10);
    feed.post();
    assert_eq!(next(), 101);
    assert_eq!(feed.pages(), 11, "one more page, empty, then live");
}

/// A subscription that serves the feed: what a chat's `posts.live` looks like.
fn app(feed: &Feed) -> App<()> {
    let feed = feed.clone();
    Router::new()
        .route(
            "posts",
            procedure::<()>().subscription(move |req| {
                let (publisher, page) = (feed.publisher.clone(), feed.page(3));
                async move {
                    let options = SubscribeOptions {
                        last_event_id: req.last_event_id,
                        ..SubscribeOptions::new()
                    };
                    backfilled(publisher, TOPIC, options, page).await
                }
            }),
        )
        .into()
}

fn orpc_stream(app: &App<()>, last_event_id: &str) -> Result<SseBody, (u16, String)> {
    let head = RequestHead::new("POST", "/rpc/posts").with_header("Last-Event-ID", last_event_id);
    let response = block_on(orpc::handle(
        app,
        head,
        "/posts",
        b"",
        &OrpcOptions::default(),
        None,
    ));
    match response.body {
        Body::Events(body) => Ok(body),
        Body::Full(bytes) => Err((response.status, String::from_utf8(bytes).unwrap())),
    }
}

#[test]
fn a_subscription_returns_the_feed_and_each_event_goes_out_with_its_id() {
    let feed = Feed::new();
    feed.posts(6);
    let app = app(&feed);
    let mut body = orpc_stream(&app, "2").unwrap();
    let text = String::from_utf8(ready_items(&mut body).0.concat()).unwrap();
    assert_eq!(
        text,
        ": \n\n\
         event: message\nid: 3\ndata: {\"json\":30}\n\n\
         event: message\nid: 4\ndata: {\"json\":40}\n\n\
         event: message\nid: 5\ndata: {\"json\":50}\n\n\
         event: message\nid: 6\ndata: {\"json\":60}\n\n"
    );
    feed.post();
    assert_eq!(
        String::from_utf8(ready_items(&mut body).0.concat()).unwrap(),
        "event: message\nid: 7\ndata: {\"json\":70}\n\n"
    );

    // A resume id that is no id of this publisher refuses the call: 400, no stream.
    let (status, text) = orpc_stream(&app, "seven").unwrap_err();
    assert_eq!(status, 400);
    assert!(text.contains("\"code\":\"BAD_REQUEST\""), "{text}");
}
