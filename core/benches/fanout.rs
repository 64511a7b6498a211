//! In-process fan-out: one publisher sends E events to N subscriber tasks, each of which must
//! receive all of them, in order. MemoryPublisher beside tokio::sync::broadcast and
//! async-broadcast on the same workload.
//!
//! Fair by construction:
//! - the same events: each carries one shared payload behind one `Arc` (`Published` holds one;
//!   the channels are given `Arc<Payload>`), allocated once per publish, never cloned per
//!   subscriber;
//! - the same capacity: 1024 events per subscriber (our buffer and retention, the channels'
//!   capacity), so nobody lags and every subscriber delivers exactly E events, checked in order;
//! - the same consumption pattern: a single-threaded tokio runtime, the publisher a task that
//!   sends a batch then yields, so every woken subscriber drains the batch before the next one.
//!   `live` sends one event per batch (each event wakes every subscriber: realtime fan-out),
//!   `burst` 100 (subscribers read backlogs). 100 stays under tokio's cooperative budget (128
//!   operations per poll), past which a tokio::sync::broadcast receiver yields mid-batch, falls
//!   behind a publisher that never waits, and lags;
//! - the same publish semantics: none of the three waits for subscribers (async-broadcast's
//!   `try_broadcast`, never full here, rather than its back-pressured `broadcast`).
//!
//! Timed: from the first publish to the last subscriber's last event, subscriptions and tasks set
//! up before. Throughput is deliveries (N × E) per second.
//! Run: `cargo bench -p outer-core --bench fanout`.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use futures::StreamExt;
use outer_core::publisher::{MemoryPublisher, SubscribeOptions};
use tokio::runtime::Runtime;

/// (subscribers, events). Each run delivers 200,000 to 2,000,000 events: big enough that set-up
/// noise vanishes, small enough that the whole bench takes about five minutes on 2 cores.
const SIZES: [(usize, usize); 3] = [(1, 200_000), (100, 20_000), (10_000, 200)];

/// (name, events per batch).
const REGIMES: [(&str, usize); 2] = [("live", 1), ("burst", 100)];

/// Events a subscriber may fall behind: more than a batch, so nobody lags.
const CAPACITY: usize = 1024;

#[derive(Debug)]
struct Payload {
    seq: usize,
    _text: &'static str,
}

fn payload(seq: usize) -> Payload {
    Payload {
        seq,
        _text: "a chat message of a realistic, if modest, length",
    }
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap_or_else(|err| panic!("tokio runtime: {err}"))
}

/// Spawns the subscribers, lets each run to its first wait, then publishes `events` in batches of
/// `batch` and waits until every subscriber has received all of them. Returns the time from the
/// first publish to the last delivery.
///
/// Runs as a spawned task, not as `block_on`'s own future: tokio polls that one ahead of the run
/// queue, so its yield would not let every subscriber drain the batch first.
fn fan_out<F, P>(
    rt: &Runtime,
    subscribers: Vec<F>,
    events: usize,
    batch: usize,
    publish: P,
) -> Duration
where
    F: Future<Output = usize> + Send + 'static,
    P: FnMut(usize) + Send + 'static,
{
    let run = async move {
        let mut publish = publish;
        let tasks: Vec<_> = subscribers.into_iter().map(tokio::spawn).collect();
        // A yield wakes this task behind every task already queued: all subscribers wait now.
        tokio::task::yield_now().await;
        let start = Instant::now();
        for seq in 0..events {
            publish(seq);
            if (seq + 1) % batch == 0 {
                tokio::task::yield_now().await;
            }
        }
        for task in tasks {
            let received = task.await.unwrap_or_else(|err| panic!("{err}"));
            assert_eq!(received, events, "a subscriber missed events");
        }
        let elapsed = start.elapsed();
        drop(publish);
        elapsed
    };
    rt.block_on(async { tokio::spawn(run).await })
        .unwrap_or_else(|err| panic!("{err}"))
}

/// Checks an event is the next one due and counts it.
fn receive(received: &mut usize, payload: &Payload) {
    assert_eq!(payload.seq, *received, "out of order");
    *received += 1;
}

fn outer(rt: &Runtime, subscribers: usize, events: usize, batch: usize) -> Duration {
    let publisher: MemoryPublisher<Payload> =
        MemoryPublisher::builder().retain_last(CAPACITY).build();
    let options = SubscribeOptions::new().buffer(CAPACITY);
    let tasks: Vec<_> = (0..subscribers)
        .map(|_| {
            let mut sub = publisher
                .subscribe_now("t", options.clone())
                .unwrap_or_else(|err| panic!("{err}"));
            async move {
                let mut received = 0;
                while received < events {
                    match sub.next().await {
                        Some(Ok(event)) => receive(&mut received, &event),
                        other => panic!("subscriber got {other:?}"),
                    }
                }
                received
            }
        })
        .collect();
    fan_out(rt, tasks, events, batch, move |seq| {
        publisher.publish_now("t", payload(seq));
    })
}

fn tokio_broadcast(rt: &Runtime, subscribers: usize, events: usize, batch: usize) -> Duration {
    let (tx, _) = tokio::sync::broadcast::channel::<Arc<Payload>>(CAPACITY);
    let tasks: Vec<_> = (0..subscribers)
        .map(|_| {
            let mut rx = tx.subscribe();
            async move {
                let mut received = 0;
                while received < events {
                    match rx.recv().await {
                        Ok(event) => receive(&mut received, &event),
                        Err(err) => panic!("subscriber got {err}"),
                    }
                }
                received
            }
        })
        .collect();
    fan_out(rt, tasks, events, batch, move |seq| {
        let sent = tx.send(Arc::new(payload(seq)));
        assert!(sent.is_ok(), "there are subscribers");
    })
}

fn async_broadcast(rt: &Runtime, subscribers: usize, events: usize, batch: usize) -> Duration {
    let (tx, rx) = async_broadcast::broadcast::<Arc<Payload>>(CAPACITY);
    let tasks: Vec<_> = (0..subscribers)
        .map(|_| {
            let mut rx = rx.clone();
            async move {
                let mut received = 0;
                while received < events {
                    match rx.recv().await {
                        Ok(event) => receive(&mut received, &event),
                        Err(err) => panic!("subscriber got {err}"),
                    }
                }
                received
            }
        })
        .collect();
    // A receiver nobody reads would fill the channel; only the subscribers' remain.
    drop(rx);
    fan_out(rt, tasks, events, batch, move |seq| {
        let sent = tx.try_broadcast(Arc::new(payload(seq)));
        assert!(sent.is_ok(), "capacity covers every batch");
    })
}

type Run = fn(&Runtime, usize, usize, usize) -> Duration;

fn fanout(c: &mut Criterion) {
    let rt = runtime();
    let contenders: [(&str, Run); 3] = [
        ("outer", outer),
        ("tokio_broadcast", tokio_broadcast),
        ("async_broadcast", async_broadcast),
    ];
    for (regime, batch) in REGIMES {
        for (subscribers, events) in SIZES {
            let mut group = c.benchmark_group(format!("fanout_{regime}/{subscribers}"));
            group.throughput(Throughput::Elements((subscribers * events) as u64));
            group.sample_size(10);
            group.warm_up_time(Duration::from_secs(1));
            group.measurement_time(Duration::from_secs(5));
            for (name, run) in contenders {
                let id = BenchmarkId::new(name, format!("{subscribers}x{events}"));
                group.bench_function(id, |b| {
                    b.iter_custom(|iters| {
                        (0..iters)
                            .map(|_| run(&rt, subscribers, events, batch))
                            .sum()
                    })
                });
            }
            group.finish();
        }
    }
}

criterion_group!(benches, fanout);
criterion_main!(benches);
