//! In-process fan-out: one publisher task sends E events, N subscriber tasks each receive all of
//! them, on a tokio runtime with 2 worker threads. MemoryPublisher beside tokio::sync::broadcast
//! and async-broadcast on the same workload.
//!
//! Every implementation carries the same shared payload (an `Arc` per event: `Published` holds
//! one, the channels are given `Arc<Payload>`), and buffers hold all E events, so no subscriber
//! lags or waits on another and all deliver exactly N × E. Timed: from spawning the publisher to
//! the last subscriber's last event; subscribing and spawning the subscribers is set-up.
//! Throughput is deliveries per second.
//!
//! Two regimes: `burst`, the publisher sends as fast as it can (subscribers read backlogs), and
//! `paced`, the publisher yields to the scheduler after every event, so subscribers mostly
//! keep up and each event wakes them (realtime fan-out).
//! Run: `cargo bench -p outer-core --bench fanout`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use futures::StreamExt;
use outer_core::publisher::{MemoryPublisher, SubscribeOptions};
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

/// (subscribers, events per subscriber). Events stay at most 200,000, so every buffer fits
/// comfortably in memory and the figures measure fan-out rather than page faults.
const SIZES: [(usize, usize); 3] = [(1, 200_000), (100, 20_000), (10_000, 1_000)];

#[derive(Debug)]
struct Payload {
    seq: u64,
    _text: &'static str,
}

fn payload(seq: usize) -> Payload {
    Payload {
        seq: seq as u64,
        _text: "a chat message of a realistic, if modest, length",
    }
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|err| panic!("tokio runtime: {err}"))
}

async fn pace(paced: bool) {
    if paced {
        tokio::task::yield_now().await;
    }
}

/// Waits for every subscriber and checks each received all `events`.
async fn join_all(subscribers: Vec<JoinHandle<usize>>, events: usize) {
    for subscriber in subscribers {
        let received = subscriber.await.unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(received, events, "a subscriber missed events");
    }
}

async fn outer(subscribers: usize, events: usize, paced: bool) -> Duration {
    let publisher: MemoryPublisher<Payload> =
        MemoryPublisher::builder().retain_last(events).build();
    let options = SubscribeOptions::new().buffer(events);
    let tasks: Vec<_> = (0..subscribers)
        .map(|_| {
            let mut sub = publisher
                .subscribe("t", options.clone())
                .unwrap_or_else(|err| panic!("{err}"));
            tokio::spawn(async move {
                let mut received = 0;
                while received < events {
                    match sub.next().await {
                        Some(Ok(event)) => black_box(event.seq),
                        other => panic!("subscriber got {other:?}"),
                    };
                    received += 1;
                }
                received
            })
        })
        .collect();
    let start = Instant::now();
    tokio::spawn(async move {
        for seq in 0..events {
            publisher.publish("t", payload(seq));
            pace(paced).await;
        }
    });
    join_all(tasks, events).await;
    start.elapsed()
}

async fn tokio_broadcast(subscribers: usize, events: usize, paced: bool) -> Duration {
    let (tx, _) = tokio::sync::broadcast::channel::<Arc<Payload>>(events);
    let tasks: Vec<_> = (0..subscribers)
        .map(|_| {
            let mut rx = tx.subscribe();
            tokio::spawn(async move {
                let mut received = 0;
                while received < events {
                    match rx.recv().await {
                        Ok(event) => black_box(event.seq),
                        Err(err) => panic!("subscriber got {err}"),
                    };
                    received += 1;
                }
                received
            })
        })
        .collect();
    let start = Instant::now();
    tokio::spawn(async move {
        for seq in 0..events {
            let _ = tx.send(Arc::new(payload(seq)));
            pace(paced).await;
        }
    });
    join_all(tasks, events).await;
    start.elapsed()
}

async fn async_broadcast(subscribers: usize, events: usize, paced: bool) -> Duration {
    let (tx, rx) = async_broadcast::broadcast::<Arc<Payload>>(events);
    let tasks: Vec<_> = (0..subscribers)
        .map(|_| {
            let mut rx = rx.clone();
            tokio::spawn(async move {
                let mut received = 0;
                while received < events {
                    match rx.recv().await {
                        Ok(event) => black_box(event.seq),
                        Err(err) => panic!("subscriber got {err}"),
                    };
                    received += 1;
                }
                received
            })
        })
        .collect();
    // A receiver nobody reads would hold every message; only the subscribers' remain.
    drop(rx);
    let start = Instant::now();
    tokio::spawn(async move {
        for seq in 0..events {
            let sent = tx.broadcast(Arc::new(payload(seq))).await;
            assert!(sent.is_ok(), "capacity holds every event");
            pace(paced).await;
        }
    });
    join_all(tasks, events).await;
    start.elapsed()
}

fn fanout(c: &mut Criterion) {
    let rt = runtime();
    for (regime, paced) in [("burst", false), ("paced", true)] {
        for (subscribers, events) in SIZES {
            let mut group = c.benchmark_group(format!("fanout_{regime}/{subscribers}"));
            group.throughput(Throughput::Elements((subscribers * events) as u64));
            group.sample_size(10);
            group.measurement_time(Duration::from_secs(8));
            let id = |name: &str| BenchmarkId::new(name, format!("{subscribers}x{events}"));
            group.bench_function(id("outer"), |b| {
                b.iter_custom(|iters| {
                    (0..iters)
                        .map(|_| rt.block_on(outer(subscribers, events, paced)))
                        .sum()
                })
            });
            group.bench_function(id("tokio_broadcast"), |b| {
                b.iter_custom(|iters| {
                    (0..iters)
                        .map(|_| rt.block_on(tokio_broadcast(subscribers, events, paced)))
                        .sum()
                })
            });
            group.bench_function(id("async_broadcast"), |b| {
                b.iter_custom(|iters| {
                    (0..iters)
                        .map(|_| rt.block_on(async_broadcast(subscribers, events, paced)))
                        .sum()
                })
            });
            group.finish();
        }
    }
}

criterion_group!(benches, fanout);
criterion_main!(benches);
