//! The memory publisher's promises, one test each: ids, resume, gaps, slow consumers, cleanup,
//! serialization once per publish.
// A test that unwraps fails loudly at the line that broke, which is what a test is for.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures::executor::block_on;
use futures::{Stream, StreamExt};
use outer_core::publisher::{
    Gap, GapKind, GapPolicy, MemoryPublisher, Published, Publisher, SeqId, SubscribeError,
    SubscribeOptions, Subscription,
};
use outer_core::{EventId, RpcError};

fn live() -> SubscribeOptions {
    SubscribeOptions::new()
}

fn after(id: u64) -> SubscribeOptions {
    SubscribeOptions::new().resume_after(SeqId::new(id))
}

/// Polls once without blocking: what a subscriber has ready now.
fn poll<T>(sub: &mut Subscription<T>) -> Poll<Option<Result<Published<T>, Gap>>> {
    Pin::new(sub).poll_next(&mut Context::from_waker(Waker::noop()))
}

/// Everything a subscriber has ready now, as ids (`Err` for a gap), stopping at Pending or end.
fn drain<T>(sub: &mut Subscription<T>) -> Vec<Result<u64, GapKind>> {
    let mut out = Vec::new();
    while let Poll::Ready(Some(item)) = poll(sub) {
        out.push(item.map(|e| e.id().get()).map_err(|g| g.kind()));
    }
    out
}

fn oks(ids: impl IntoIterator<Item = u64>) -> Vec<Result<u64, GapKind>> {
    ids.into_iter().map(Ok).collect()
}

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::{held_bytes, Counting};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Less than one byte per topic of the loops below: a leak of anything per topic shows.
const NO_LEAK: isize = 1024;

#[test]
fn ids_start_at_one_and_grow_by_one_per_topic() {
    let publisher = MemoryPublisher::new();
    let a: Vec<u64> = (0..3)
        .map(|n| publisher.publish_now("a", n).get())
        .collect();
    let b: Vec<u64> = (0..2)
        .map(|n| publisher.publish_now("b", n).get())
        .collect();
    assert_eq!(a, [1, 2, 3]);
    assert_eq!(b, [1, 2]);
    assert_eq!(publisher.publish_now("a", 9).to_string(), "4");
}

#[test]
fn an_id_is_written_in_decimal_and_travels_in_json_as_a_number() {
    let publisher = MemoryPublisher::builder().ids_after(41).build();
    let id = publisher.publish_now("t", ());
    assert_eq!(id.to_string(), "42");
    assert_eq!(EventId::from(id).as_str(), "42");
    assert_eq!(SeqId::parse("42"), Ok(id));
    assert_eq!(serde_json::to_string(&id).unwrap(), "42");
    assert_eq!(serde_json::from_str::<SeqId>("42").unwrap(), id);
}

#[test]
fn ids_after_seeds_the_numbering() {
    let publisher = MemoryPublisher::builder().ids_after(1_000).build();
    assert_eq!(publisher.publish_now("t", ()).get(), 1_001);
}

#[test]
fn an_out_of_range_seed_is_capped_and_ids_still_grow() {
    let publisher = MemoryPublisher::builder().ids_after(u64::MAX).build();
    let first = publisher.publish_now("t", ());
    let second = publisher.publish_now("t", ());
    assert_eq!(first.get(), 1 << 63);
    assert_eq!(second.get(), first.get() + 1);
    assert!(first < second);
}

#[test]
fn resume_replays_retained_events_then_goes_live() {
    let publisher = MemoryPublisher::new();
    for n in 1..=5 {
        publisher.publish_now("t", n);
    }
    let mut sub = publisher.subscribe_now("t", after(2)).unwrap();
    publisher.publish_now("t", 6);
    assert_eq!(drain(&mut sub), oks(3..=6));
    assert!(poll(&mut sub).is_pending());
    publisher.publish_now("t", 7);
    assert_eq!(drain(&mut sub), oks([7]));
}

#[test]
fn a_live_subscription_starts_with_the_next_publish() {
    let publisher = MemoryPublisher::new();
    publisher.publish_now("t", 1);
    let mut sub = publisher.subscribe_now("t", live()).unwrap();
    assert!(poll(&mut sub).is_pending());
    publisher.publish_now("t", 2);
    assert_eq!(drain(&mut sub), oks([2]));
}

#[test]
fn an_empty_last_event_id_means_no_resume_point() {
    let publisher = MemoryPublisher::new();
    publisher.publish_now("t", 1);
    let options = SubscribeOptions {
        last_event_id: Some(EventId::new("").unwrap()),
        ..live()
    };
    let mut sub = publisher.subscribe_now("t", options).unwrap();
    assert!(poll(&mut sub).is_pending());
}

#[test]
fn resuming_from_zero_replays_everything_retained() {
    let publisher = MemoryPublisher::new();
    publisher.publish_now("t", 1);
    publisher.publish_now("t", 2);
    let mut sub = publisher.subscribe_now("t", after(0)).unwrap();
    assert_eq!(drain(&mut sub), oks([1, 2]));
}

#[test]
fn a_malformed_last_event_id_is_a_clear_bad_request() {
    let publisher = MemoryPublisher::<u8>::new();
    // Decimal without leading zeros, as this publisher writes its ids: "042" is none of them.
    for bad in ["042", "2a", "-1", "18446744073709551616"] {
        let err = publisher
            .subscribe_now("t", live().resume_after(EventId::new(bad).unwrap()))
            .unwrap_err();
        assert!(matches!(err, SubscribeError::MalformedId(_)));
        let rpc = RpcError::from(err);
        assert_eq!((rpc.code(), rpc.status()), ("BAD_REQUEST", 400));
        assert!(rpc.message().contains("decimal number"), "{rpc}");
    }
    assert_eq!(publisher.subscriber_count("t"), 0);
}

#[test]
fn a_last_event_id_never_assigned_is_an_explicit_unknown_gap() {
    // As after a restart: the client's id is ahead of anything this publisher handed out.
    let publisher = MemoryPublisher::new();
    publisher.publish_now("t", 1);
    publisher.publish_now("t", 2);
    let mut sub = publisher.subscribe_now("t", after(50)).unwrap();
    let gap = match poll(&mut sub) {
        Poll::Ready(Some(Err(gap))) => gap,
        other => panic!("expected a gap, got {other:?}"),
    };
    assert_eq!(gap.kind(), GapKind::Unknown);
    assert_eq!((gap.last_id().get(), gap.next_id().unwrap().get()), (50, 1));
    assert_eq!(gap.missed(), None);
    assert!(gap.ends_subscription(), "End is the default policy");
    assert!(matches!(poll(&mut sub), Poll::Ready(None)));
    assert_eq!(
        publisher.subscriber_count("t"),
        0,
        "an ended subscription leaves"
    );

    // Under Skip it goes on with what is retained, after saying so.
    let mut sub = publisher
        .subscribe_now("t", after(50).on_gap(GapPolicy::Skip))
        .unwrap();
    assert_eq!(drain(&mut sub), [Err(GapKind::Unknown), Ok(1), Ok(2)]);
}

#[test]
fn resuming_before_retention_is_an_expired_gap_with_the_missed_count() {
    let publisher = MemoryPublisher::builder().retain_last(3).build();
    for n in 1..=10 {
        publisher.publish_now("t", n);
    }
    let mut sub = publisher
        .subscribe_now("t", after(4).on_gap(GapPolicy::Skip))
        .unwrap();
    let Poll::Ready(Some(Err(gap))) = poll(&mut sub) else {
        panic!("expected a gap first");
    };
    assert_eq!(gap.kind(), GapKind::Expired);
    assert_eq!((gap.last_id().get(), gap.next_id().unwrap().get()), (4, 8));
    assert_eq!(gap.missed(), Some(3), "events 5, 6 and 7 are gone");
    assert_eq!(drain(&mut sub), oks(8..=10));

    let rpc = RpcError::from(gap);
    assert_eq!(rpc.code(), "PRECONDITION_FAILED");
    assert!(rpc.message().contains("refetch"));
}

#[test]
fn a_lagging_subscriber_ends_with_a_gap_under_the_end_policy() {
    let publisher = MemoryPublisher::builder().retain_last(4).build();
    let mut slow = publisher.subscribe_now("t", live().buffer(2)).unwrap();
    publisher.publish_now("t", 1);
    assert_eq!(drain(&mut slow), oks([1]));
    for n in 2..=8 {
        publisher.publish_now("t", n);
    }
    // The window holds 5..=8: event 2, the next it needs, is gone.
    let Poll::Ready(Some(Err(gap))) = poll(&mut slow) else {
        panic!("expected a gap");
    };
    assert_eq!(gap.kind(), GapKind::Lagged);
    assert_eq!((gap.last_id().get(), gap.next_id().unwrap().get()), (1, 5));
    assert_eq!(gap.missed(), Some(3));
    assert!(matches!(poll(&mut slow), Poll::Ready(None)));
    assert_eq!(publisher.subscriber_count("t"), 0);
}

#[test]
fn a_lagging_subscriber_skips_to_the_oldest_retained_with_a_marker_under_the_skip_policy() {
    let publisher = MemoryPublisher::builder().retain_last(4).build();
    let mut slow = publisher
        .subscribe_now("t", live().buffer(0).on_gap(GapPolicy::Skip))
        .unwrap();
    for n in 1..=10 {
        publisher.publish_now("t", n);
    }
    assert_eq!(
        drain(&mut slow),
        [Err(GapKind::Lagged), Ok(7), Ok(8), Ok(9), Ok(10)]
    );
    publisher.publish_now("t", 11);
    assert_eq!(drain(&mut slow), oks([11]));
    assert_eq!(publisher.subscriber_count("t"), 1);
}

#[test]
fn a_buffer_larger_than_retention_keeps_what_a_live_subscriber_still_needs() {
    // Retention 2, buffer 50: a subscriber 50 behind must get every event, not a gap.
    let publisher = MemoryPublisher::builder().retain_last(2).build();
    let mut sub = publisher.subscribe_now("t", live().buffer(50)).unwrap();
    for n in 1..=50 {
        publisher.publish_now("t", n);
    }
    assert_eq!(publisher.retained("t"), 50);
    assert_eq!(drain(&mut sub), oks(1..=50));
    // Once it leaves, the topic shrinks back to its retention.
    drop(sub);
    assert_eq!(publisher.retained("t"), 2);
}

#[test]
fn the_publisher_never_waits_and_memory_stays_within_the_window() {
    let publisher = MemoryPublisher::builder().retain_last(16).build();
    let stalled: Vec<_> = (0..10)
        .map(|_| publisher.subscribe_now("t", live().buffer(8)).unwrap())
        .collect();
    for n in 0..100_000u32 {
        publisher.publish_now("t", n);
    }
    assert_eq!(publisher.retained("t"), 16);
    drop(stalled);
}

#[test]
fn a_zero_buffer_still_holds_the_latest_event() {
    // Nothing retained and a buffer of 0: a subscriber that reads after each publish must still
    // get every event, not a gap each time.
    let publisher = MemoryPublisher::builder().retain_last(0).build();
    let mut sub = publisher.subscribe_now("t", live().buffer(0)).unwrap();
    for n in 1..=3 {
        publisher.publish_now("t", n);
        assert_eq!(drain(&mut sub), oks([n]));
    }
}

#[test]
fn one_slow_subscriber_does_not_hold_back_the_others() {
    let publisher = MemoryPublisher::builder().retain_last(8).build();
    let mut slow = publisher.subscribe_now("t", live().buffer(0)).unwrap();
    let mut fast = publisher.subscribe_now("t", live().buffer(0)).unwrap();
    let mut got = Vec::new();
    for n in 1..=100 {
        publisher.publish_now("t", n);
        got.extend(drain(&mut fast));
    }
    assert_eq!(got, oks(1..=100));
    assert!(matches!(poll(&mut slow), Poll::Ready(Some(Err(_)))));
}

#[test]
fn dropping_a_subscription_unregisters_at_once() {
    let publisher = MemoryPublisher::<u8>::new();
    let a = publisher.subscribe_now("t", live()).unwrap();
    let b = publisher.subscribe_now("t", live()).unwrap();
    let c = publisher.subscribe_now("u", live()).unwrap();
    assert_eq!(publisher.subscriber_count("t"), 2);
    drop(a);
    assert_eq!(publisher.subscriber_count("t"), 1);
    drop(b);
    drop(c);
    assert_eq!(publisher.subscriber_count("t"), 0);
    assert_eq!(publisher.subscriber_count("u"), 0);
    assert_eq!(
        publisher.topic_count(),
        0,
        "nothing retained, nobody subscribed"
    );
}

#[test]
fn a_dropped_subscriber_is_never_woken_and_its_waker_is_let_go() {
    let publisher = MemoryPublisher::new();
    // Keeps the topic, and its list of parked subscribers, alive throughout.
    let mut keeper = publisher.subscribe_now("t", live()).unwrap();
    let keeper_wakes = Arc::new(CountingWaker(AtomicUsize::new(0)));
    let gone_wakes = Arc::new(CountingWaker(AtomicUsize::new(0)));
    let poll_with = |sub: &mut Subscription<u32>, wakes: &Arc<CountingWaker>| {
        let waker = Waker::from(wakes.clone());
        Pin::new(sub).poll_next(&mut Context::from_waker(&waker))
    };
    assert!(poll_with(&mut keeper, &keeper_wakes).is_pending());
    for _ in 0..1000 {
        let mut sub = publisher.subscribe_now("t", live()).unwrap();
        assert!(poll_with(&mut sub, &gone_wakes).is_pending());
    }
    assert_eq!(publisher.subscriber_count("t"), 1);
    assert_eq!(
        Arc::strong_count(&gone_wakes),
        1,
        "the dropped subscriptions' wakers are still held"
    );
    publisher.publish_now("t", 1);
    assert_eq!(gone_wakes.0.load(Ordering::SeqCst), 0);
    assert_eq!(keeper_wakes.0.load(Ordering::SeqCst), 1);
    assert_eq!(drain(&mut keeper), oks([1]));
}

#[test]
fn many_short_lived_topics_leave_no_topic_and_no_memory_behind() {
    let publisher = MemoryPublisher::builder().retain_last(0).build();
    // Topics open a thousand at a time, each with a parked subscriber, an event and a
    // subscriber that resumes from just before it; and as many published to with nobody
    // listening.
    let round = |round: u32| {
        let names: Vec<String> = (0..1000).map(|n| format!("room-{round}-{n}")).collect();
        let mut subs = Vec::new();
        for name in &names {
            let mut sub = publisher.subscribe_now(name, live()).unwrap();
            assert!(poll(&mut sub).is_pending());
            subs.push(sub);
        }
        for (name, sub) in names.iter().zip(&mut subs) {
            let id = publisher.publish_now(name, round).get();
            let mut resumed = publisher.subscribe_now(name, after(id - 1)).unwrap();
            assert_eq!(drain(&mut resumed), oks([id]));
            assert_eq!(drain(sub), oks([id]));
            publisher.publish_now(&format!("nobody-{name}"), round);
        }
        assert_eq!(publisher.topic_count(), 1000);
        drop(subs);
        assert_eq!(publisher.topic_count(), 0);
    };
    // The first round may leave what is reused, not leaked (the map's emptied root node).
    round(0);
    let before = held_bytes();
    for n in 1..=10 {
        round(n);
    }
    let grown = held_bytes() - before;
    assert!(
        grown < NO_LEAK,
        "10,000 topics came and went; {grown} bytes stayed"
    );
}

#[test]
fn topics_kept_only_for_their_retention_are_freed_once_it_expires() {
    let clock = HandClock::default();
    let now = Arc::clone(&clock.0);
    let publisher = MemoryPublisher::builder()
        .retain_for(Duration::from_secs(10), clock)
        .build();
    let warm = |n: u32| publisher.publish_now(&format!("warm-{n}"), n);
    warm(0);
    now.fetch_add(10_000, Ordering::Relaxed);
    publisher.sweep();
    let before = held_bytes();
    for round in 0..5u32 {
        for n in 0..2000 {
            for _ in 0..3 {
                publisher.publish_now(&format!("room-{n}"), round);
            }
        }
        assert_eq!(publisher.topic_count(), 2000, "retained events keep topics");
        now.fetch_add(10_000, Ordering::Relaxed);
        publisher.sweep();
        assert_eq!(publisher.topic_count(), 0);
    }
    let grown = held_bytes() - before;
    assert!(
        grown < NO_LEAK,
        "{grown} bytes stayed after every topic expired"
    );
}

#[test]
fn a_departed_large_buffer_gives_its_memory_back() {
    let publisher = MemoryPublisher::builder().retain_last(2).build();
    publisher.publish_now("t", 0u64);
    publisher.publish_now("t", 0u64);
    let before = held_bytes();
    let stalled = publisher.subscribe_now("t", live().buffer(50_000)).unwrap();
    for n in 0..50_000u64 {
        publisher.publish_now("t", n);
    }
    assert_eq!(publisher.retained("t"), 50_000);
    drop(stalled);
    assert_eq!(publisher.retained("t"), 2);
    let grown = held_bytes() - before;
    assert!(grown < NO_LEAK, "{grown} bytes still held for 2 events");
}

#[test]
fn a_recreated_topic_keeps_growing_ids_and_an_old_id_resumes_as_a_gap() {
    let publisher = MemoryPublisher::builder().retain_last(0).build();
    let mut sub = publisher.subscribe_now("t", live()).unwrap();
    let first = publisher.publish_now("t", 1);
    assert_eq!(drain(&mut sub), oks([first.get()]));
    drop(sub);
    assert_eq!(publisher.topic_count(), 0);
    for _ in 0..3 {
        publisher.publish_now("t", 2); // nobody listens: these go nowhere
    }
    let mut sub = publisher
        .subscribe_now("t", live().resume_after(first))
        .unwrap();
    let third = publisher.publish_now("t", 3);
    assert!(third.get() > first.get() + 3, "ids never repeat on a topic");
    let Poll::Ready(Some(Err(gap))) = poll(&mut sub) else {
        panic!("events after the resume point were lost: that must show");
    };
    assert_eq!(gap.kind(), GapKind::Expired);
    assert_eq!(gap.missed(), None, "how many were this topic's is unknown");
}

#[test]
fn time_based_retention_forgets_old_events() {
    let clock = HandClock::default();
    let now = Arc::clone(&clock.0);
    let publisher = MemoryPublisher::builder()
        .retain_for(Duration::from_secs(10), clock)
        .build();
    publisher.publish_now("t", 1);
    now.store(5_000, Ordering::Relaxed);
    publisher.publish_now("t", 2);
    now.store(10_000, Ordering::Relaxed);
    let mut sub = publisher
        .subscribe_now("t", after(0).on_gap(GapPolicy::Skip))
        .unwrap();
    assert_eq!(drain(&mut sub), [Err(GapKind::Expired), Ok(2)]);
    drop(sub);
    now.store(15_000, Ordering::Relaxed);
    publisher.sweep();
    assert_eq!(
        publisher.topic_count(),
        0,
        "a quiet topic is freed by sweep"
    );
}

#[test]
fn time_based_retention_never_takes_what_a_live_buffer_covers() {
    let clock = HandClock::default();
    let now = Arc::clone(&clock.0);
    let publisher = MemoryPublisher::builder()
        .retain_for(Duration::from_millis(1), clock)
        .build();
    let mut sub = publisher.subscribe_now("t", live().buffer(3)).unwrap();
    for n in 1..=3 {
        publisher.publish_now("t", n);
        now.fetch_add(100, Ordering::Relaxed);
    }
    publisher.sweep();
    assert_eq!(drain(&mut sub), oks(1..=3));
}

#[test]
fn subscriptions_drain_then_end_when_the_last_publisher_handle_drops() {
    let publisher = MemoryPublisher::new();
    let other = publisher.clone();
    let mut sub = publisher.subscribe_now("t", live()).unwrap();
    publisher.publish_now("t", 1);
    drop(publisher);
    assert_eq!(drain(&mut sub), oks([1]), "a clone is still alive");
    other.publish_now("t", 2);
    drop(other);
    assert_eq!(drain(&mut sub), oks([2]));
    assert!(matches!(poll(&mut sub), Poll::Ready(None)));
}

#[test]
fn a_waiting_subscriber_is_woken_by_a_publish_from_another_thread() {
    let publisher = MemoryPublisher::new();
    // A buffer for the whole run: this test is about waking, not about keeping up.
    let sub = publisher.subscribe_now("t", live().buffer(10_000)).unwrap();
    let sender = publisher.clone();
    let thread = std::thread::spawn(move || {
        for n in 0..10_000u32 {
            sender.publish_now("t", n);
        }
    });
    let got: Vec<u32> = block_on(sub.take(10_000).map(|e| *e.unwrap()).collect());
    thread.join().unwrap();
    assert_eq!(got, (0..10_000).collect::<Vec<_>>());
}

/// A waker that counts its wakes.
struct CountingWaker(AtomicUsize);

impl std::task::Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_subscriber_polled_with_a_new_waker_is_woken_through_it() {
    let publisher = MemoryPublisher::new();
    let mut sub = publisher.subscribe_now("t", live()).unwrap();
    let (first, second) = (
        Arc::new(CountingWaker(AtomicUsize::new(0))),
        Arc::new(CountingWaker(AtomicUsize::new(0))),
    );
    let poll_with = |sub: &mut Subscription<u32>, waker: &Arc<CountingWaker>| {
        let waker = Waker::from(waker.clone());
        Pin::new(sub).poll_next(&mut Context::from_waker(&waker))
    };
    assert!(poll_with(&mut sub, &first).is_pending());
    // The task moved (or a select! polled it): the new waker must replace the old one.
    assert!(poll_with(&mut sub, &second).is_pending());
    publisher.publish_now("t", 1);
    assert_eq!(first.0.load(Ordering::SeqCst), 0);
    assert_eq!(second.0.load(Ordering::SeqCst), 1);
    assert!(matches!(
        poll_with(&mut sub, &second),
        Poll::Ready(Some(Ok(_)))
    ));
    // Caught up by that read, it is parked already: the next publish wakes it.
    publisher.publish_now("t", 2);
    assert_eq!(second.0.load(Ordering::SeqCst), 2);
}

#[test]
fn every_subscriber_on_every_thread_receives_every_event_in_order() {
    const EVENTS: u32 = 20_000;
    let publisher = MemoryPublisher::new();
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let subs: Vec<_> = (0..8)
                .map(|_| {
                    let options = live().buffer(EVENTS as usize);
                    publisher.subscribe_now("t", options).unwrap()
                })
                .collect();
            std::thread::spawn(move || {
                let each = subs.into_iter().map(|sub| {
                    sub.take(EVENTS as usize)
                        .map(|e| *e.unwrap())
                        .collect::<Vec<u32>>()
                });
                block_on(futures::future::join_all(each))
            })
        })
        .collect();
    for n in 0..EVENTS {
        publisher.publish_now("t", n);
        if n % 64 == 0 {
            std::thread::yield_now(); // let readers catch up and park, to exercise waking
        }
    }
    for reader in readers {
        for got in reader.join().unwrap() {
            assert_eq!(got, (0..EVENTS).collect::<Vec<_>>());
        }
    }
    assert_eq!(publisher.subscriber_count("t"), 0);
}

#[test]
fn racing_publish_during_subscribe_gives_no_gap_and_no_duplicate() {
    const ROUNDS: usize = 2_000;
    // The producer stays at most AHEAD events past what the reader has seen, and retention
    // covers more than that: any gap or duplicate is the race's fault, not retention's.
    const AHEAD: u64 = 1_000;
    let publisher = MemoryPublisher::builder().retain_last(4_096).build();
    let head = Arc::new(AtomicU64::new(0));
    let seen = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let (publisher, head, seen, stop) =
            (publisher.clone(), head.clone(), seen.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Acquire) {
                if head.load(Ordering::Acquire) < seen.load(Ordering::Acquire) + AHEAD {
                    n += 1;
                    let id = publisher.publish_now("t", n);
                    head.store(id.get(), Ordering::Release);
                } else {
                    std::thread::yield_now();
                }
            }
        })
    };
    let read_20 = |sub: &mut Subscription<u64>| -> Vec<u64> {
        block_on(sub.take(20).map(|e| e.unwrap().id().get()).collect())
    };
    for _ in 0..ROUNDS {
        // Resume from what the client saw last, while publishes keep landing.
        let last = head.load(Ordering::Acquire);
        seen.store(last, Ordering::Release);
        let mut sub = publisher.subscribe_now("t", after(last)).unwrap();
        let got = read_20(&mut sub);
        assert_eq!(
            got,
            (last + 1..=last + 20).collect::<Vec<_>>(),
            "resumed after {last}"
        );

        // A live subscriber gets a contiguous run of events published after it came.
        let before = head.load(Ordering::Acquire);
        let mut sub = publisher.subscribe_now("t", live()).unwrap();
        seen.store(head.load(Ordering::Acquire), Ordering::Release);
        let got = read_20(&mut sub);
        assert!(
            got[0] > before,
            "got event {} published before it came",
            got[0]
        );
        assert_eq!(got, (got[0]..got[0] + 20).collect::<Vec<_>>());
    }
    stop.store(true, Ordering::Release);
    producer.join().unwrap();
}

#[test]
fn resumes_racing_a_nonstop_publisher_replay_each_event_once() {
    // The test above reads 20 events per resume, so most of its time goes to reading; this one
    // resumes as often as it can while another thread publishes without pause, to land
    // publishes inside the subscribe itself. Whatever lands there must come exactly once: the
    // replay and the live part join with no duplicate and no hole.
    const RESUMES: usize = 2_000;
    // The producer stays at most this far past the reader's resume point, well within
    // retention, so a gap or a duplicate can only be the race's fault.
    const AHEAD: u64 = 512;
    let publisher = MemoryPublisher::builder().retain_last(4_096).build();
    let head = Arc::new(AtomicU64::new(0));
    let seen = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let (publisher, head, seen, stop) =
            (publisher.clone(), head.clone(), seen.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Acquire) {
                if head.load(Ordering::Acquire) < seen.load(Ordering::Acquire) + AHEAD {
                    let id = publisher.publish_now("t", ());
                    head.store(id.get(), Ordering::Release);
                } else {
                    std::thread::yield_now();
                }
            }
        })
    };
    for _ in 0..RESUMES {
        // Let the producer go on, then wait until it is seen publishing, so that it is running
        // right now, not descheduled, while this subscribe runs.
        let moved_from = head.load(Ordering::Acquire);
        seen.store(moved_from, Ordering::Release);
        let mut spins = 0u32;
        while head.load(Ordering::Acquire) == moved_from {
            // On a shared core, spinning would only wait for preemption: let the producer in.
            spins += 1;
            if spins % 256 == 0 {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
        let last = head.load(Ordering::Acquire);
        let mut sub = publisher.subscribe_now("t", after(last)).unwrap();
        // What is ready at once: the replay, then what went live since. A bounded look: the
        // producer may keep adding.
        let mut got = Vec::new();
        while got.len() < 40 {
            match poll(&mut sub) {
                Poll::Ready(Some(item)) => {
                    got.push(item.map(|e| e.id().get()).map_err(|g| g.kind()))
                }
                _ => break,
            }
        }
        let want = oks(last + 1..=last + got.len() as u64);
        assert_eq!(got, want, "resumed after {last}");
    }
    stop.store(true, Ordering::Release);
    producer.join().unwrap();
}

#[test]
fn fan_out_to_10000_subscribers_serializes_each_event_once() {
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    struct Counted;
    impl serde::Serialize for Counted {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            CALLS.fetch_add(1, Ordering::Relaxed);
            s.serialize_str("payload")
        }
    }

    let publisher = MemoryPublisher::new();
    let mut subs: Vec<_> = (0..10_000)
        .map(|_| publisher.subscribe_now("t", live()).unwrap())
        .collect();
    publisher.publish_now("t", Counted);
    for sub in &mut subs {
        let Poll::Ready(Some(Ok(event))) = poll(sub) else {
            panic!("every subscriber has the event");
        };
        let frame = serde_json::to_string(&serde_json::json!({ "json": event.clone() }))
            .unwrap_or_default();
        assert_eq!(serde_json::to_string(&event).unwrap(), "\"payload\"");
        assert_eq!(frame, r#"{"json":"payload"}"#);
    }
    assert_eq!(CALLS.load(Ordering::Relaxed), 1);
}

#[test]
fn published_events_become_tracked_events_with_their_id() {
    let publisher = MemoryPublisher::new();
    let mut sub = publisher.subscribe_now("t", live()).unwrap();
    let id = publisher.publish_now("t", String::from("hi"));
    let Poll::Ready(Some(Ok(event))) = poll(&mut sub) else {
        panic!("expected the event");
    };
    let event = event.into_event();
    assert_eq!(event.id().unwrap().as_str(), id.to_string());
    assert_eq!(event.data().as_str(), "hi");
}

#[test]
fn the_publisher_trait_publishes_and_subscribes() {
    async fn roundtrip<P: Publisher<u32>>(publisher: &P) -> Vec<u32> {
        let first = publisher.publish("t", 1).await.unwrap();
        let options = live().resume_after(first);
        let sub = publisher.subscribe("t", options).await.unwrap();
        publisher.publish("t", 2).await.unwrap();
        publisher.publish("t", 3).await.unwrap();
        sub.take(2).map(|e| *e.unwrap().data()).collect().await
    }
    assert_eq!(block_on(roundtrip(&MemoryPublisher::new())), [2, 3]);
}

#[test]
fn publisher_and_subscription_can_cross_threads() {
    fn send_sync<T: Send + Sync + Clone>() {}
    fn send_unpin<T: Send + Unpin + 'static>() {}
    send_sync::<MemoryPublisher<String>>();
    send_unpin::<Subscription<String>>();
    send_sync::<Published<String>>();
}

/// A clock moved by hand, in milliseconds: what retention by age reads. Its sleeps never end.
#[derive(Clone, Debug, Default)]
struct HandClock(Arc<AtomicU64>);

impl outer_core::rt::Timer for HandClock {
    fn sleep(&self, _: Duration) -> outer_core::rt::Sleep {
        Box::pin(std::future::pending())
    }
    fn now(&self) -> Duration {
        Duration::from_millis(self.0.load(Ordering::Relaxed))
    }
}
