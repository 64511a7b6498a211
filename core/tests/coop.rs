//! An event stream hands its thread back however ready its work is: a handler that loops over a
//! publisher subscription answering at once (a resume id the publisher never gave out) yields
//! within one poll, and a stream whose frames are always ready yields after a chunk.
//!
//! Each poll runs on a thread of its own with a deadline, so a stream that never yields fails
//! the test instead of hanging it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use futures::StreamExt;
use outer_core::protocol::orpc;
use outer_core::protocol::{Body, SseBody};
use outer_core::publisher::{MemoryPublisher, Publisher, SeqId, SubscribeOptions};
use outer_core::rt::{Sleep, Timer};
use outer_core::{event_iterator, procedure, App, Emitter, Event, RequestHead, Router};

/// Counts wake-ups.
#[derive(Default)]
struct Wakes(AtomicUsize);

impl Wake for Wakes {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn app() -> App<()> {
    let publisher = MemoryPublisher::<u32>::builder().retain_last(8).build();
    let os = procedure::<()>();
    Router::new()
        .route(
            "spin",
            // What the chat example did: on a gap, look elsewhere, find nothing, subscribe again
            // with the same id. Every poll of the subscription answers at once.
            os.subscription(move |_| {
                let publisher = publisher.clone();
                async move {
                    Ok(event_iterator(move |mut emit: Emitter<u32>| async move {
                        loop {
                            let resume = SubscribeOptions::new().resume_after(SeqId::new(5));
                            let mut live = publisher.subscribe("posts", resume).await?;
                            if let Some(Ok(post)) = live.next().await {
                                emit.send(Event::new(*post.data())).await?;
                            }
                        }
                        #[allow(unreachable_code)]
                        Ok(())
                    }))
                }
            }),
        )
        .route(
            "flood",
            // Always ready: `send` is taken at once by a consumer that always reads.
            os.subscription(|_| async {
                Ok(event_iterator(|mut emit: Emitter<u64>| async move {
                    for n in 0.. {
                        emit.send(Event::new(n)).await?;
                    }
                    Ok(())
                }))
            }),
        )
        .into()
}

fn stream(path: &str) -> SseBody {
    stream_on(path, None)
}

fn stream_on(path: &str, timer: Option<Arc<dyn Timer>>) -> SseBody {
    let response = futures::executor::block_on(orpc::handle(
        &app(),
        RequestHead::new("POST", path),
        path,
        b"",
        &orpc::OrpcOptions::default(),
        timer,
    ));
    match response.body {
        Body::Events(events) => events,
        Body::Full(bytes) => panic!("not a stream: {}", String::from_utf8_lossy(&bytes)),
    }
}

/// Polls `body` `polls` times on another thread; each answer as `Some(chunk length)` or `None`
/// for `Pending`, with the wake-ups seen. Fails if the polls do not come back in time.
fn poll_on_a_thread(mut body: SseBody, polls: usize) -> (Vec<Option<usize>>, usize) {
    let (done, answers) = mpsc::channel();
    std::thread::spawn(move || {
        let wakes = Arc::new(Wakes::default());
        let waker = Waker::from(Arc::clone(&wakes));
        let mut cx = Context::from_waker(&waker);
        let mut seen = Vec::new();
        for _ in 0..polls {
            seen.push(match body.poll_next_unpin(&mut cx) {
                Poll::Ready(Some(chunk)) => Some(chunk.len()),
                Poll::Ready(None) => panic!("the stream ended"),
                Poll::Pending => None,
            });
        }
        let _ = done.send((seen, wakes.0.load(Ordering::SeqCst)));
    });
    answers
        .recv_timeout(Duration::from_secs(10))
        .expect("a poll of the stream never came back: it does not yield")
}

#[test]
fn a_handler_looping_on_an_always_ready_subscription_yields_and_asks_to_run_again() {
    let (answers, wakes) = poll_on_a_thread(stream("/spin"), 4);
    // The opening bytes (after the handler's first turn), then nothing to send: each poll
    // yields.
    assert!(answers[0].is_some(), "{answers:?}");
    assert_eq!(answers[1..], [None, None, None], "{answers:?}");
    // Every turn ended because the budget ran out, not because the handler waits for anything:
    // each woke its task to run again.
    assert_eq!(wakes, 4);
}

#[test]
fn an_always_ready_stream_yields_after_a_full_chunk() {
    let (answers, wakes) = poll_on_a_thread(stream("/flood"), 8);
    // Full chunks (the first with the opening bytes), each followed by one yield that wakes the
    // task at once.
    let mut chunks = 0;
    for pair in answers.chunks(2) {
        let full = pair[0].expect("a chunk");
        assert!(full >= 60 * 1024, "a full chunk, not {full} bytes");
        assert_eq!(pair[1], None, "a yield after a full chunk: {answers:?}");
        chunks += 1;
    }
    assert_eq!(wakes, chunks);
}

/// A runtime whose yield is a future of its own (as tokio's is): pending once, then done.
#[derive(Debug, Default)]
struct YieldingRuntime(Arc<AtomicUsize>);

impl Timer for YieldingRuntime {
    fn sleep(&self, _: Duration) -> Sleep {
        Box::pin(std::future::pending())
    }

    fn now(&self) -> Duration {
        Duration::ZERO
    }

    fn yield_now(&self) -> Option<Sleep> {
        let yields = Arc::clone(&self.0);
        let mut first = true;
        Some(Box::pin(std::future::poll_fn(move |cx| {
            if std::mem::take(&mut first) {
                yields.fetch_add(1, Ordering::SeqCst);
                cx.waker().wake_by_ref();
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })))
    }
}

#[test]
fn an_always_ready_stream_yields_the_runtime_s_way_when_it_has_one() {
    let runtime = YieldingRuntime::default();
    let yields = Arc::clone(&runtime.0);
    let (answers, wakes) = poll_on_a_thread(stream_on("/flood", Some(Arc::new(runtime))), 6);
    for pair in answers.chunks(2) {
        assert!(pair[0].expect("a chunk") >= 60 * 1024);
        assert_eq!(pair[1], None, "a yield after a full chunk: {answers:?}");
    }
    // Each yield was the runtime's future (which woke the task), not a wake of the body's own.
    assert_eq!(yields.load(Ordering::SeqCst), 3);
    assert_eq!(wakes, 3);
}

#[test]
fn a_stream_opens_only_once_its_handler_has_subscribed() {
    // A live-only subscriber (no resume id): a post made once the client sees the stream open
    // must reach it, however soon after.
    let publisher = MemoryPublisher::<u32>::builder().build();
    let for_handler = publisher.clone();
    let app: App<()> = Router::new()
        .route(
            "live",
            // Subscribes inside the stream, not in the setup: the opening must still wait for
            // the handler's first turn.
            procedure::<()>().subscription(move |_| {
                let publisher = for_handler.clone();
                async move {
                    Ok(event_iterator(move |mut emit: Emitter<u32>| async move {
                        let mut live = publisher
                            .subscribe("posts", SubscribeOptions::new())
                            .await?;
                        while let Some(Ok(post)) = live.next().await {
                            emit.send(Event::new(*post.data())).await?;
                        }
                        Ok(())
                    }))
                }
            }),
        )
        .into();
    let options = orpc::OrpcOptions::default();
    let head = RequestHead::new("POST", "/rpc/live");
    let response =
        futures::executor::block_on(orpc::handle(&app, head, "/live", b"", &options, None));
    let Body::Events(mut body) = response.body else {
        panic!("not a stream")
    };
    let mut cx = Context::from_waker(Waker::noop());
    assert!(matches!(body.poll_next_unpin(&mut cx), Poll::Ready(Some(open)) if open == ": \n\n"));
    publisher.publish_now("posts", 7);
    match body.poll_next_unpin(&mut cx) {
        Poll::Ready(Some(chunk)) => assert!(
            std::str::from_utf8(&chunk)
                .unwrap()
                .contains("data: {\"json\":7}"),
            "{chunk:?}"
        ),
        other => panic!("the post made after the opening was missed: {other:?}"),
    }
}
