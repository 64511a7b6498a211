//! Deliveries per second through the Redis publisher against the in-memory one, on the same
//! workload: one topic, N subscribers on one instance, E events published through the
//! `Publisher` trait; every subscriber must receive all E, in id order.
//!
//! - `sequential`: each publish awaited before the next (a handler publishing per request).
//! - `pipelined`: up to 64 publishes in flight at once (many requests publishing together; on
//!   Redis they share the multiplexed command connection).
//!
//! Both publishers get a buffer and a retention of E per subscriber, so nobody lags and nothing
//! is trimmed. Timed: from the first publish to the last subscriber's last event (subscriptions
//! set up before). Deliveries = N × E. Each case runs `RUNS` times; the median is printed.
//! Redis is a throwaway `redis-server` on loopback started by the bench (AOF off: this measures
//! the publisher, not the disk), so it needs Debian's `redis-server` on the `PATH`.
//!
//! Run: `cargo bench -p outer-redis --bench deliveries`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use futures::StreamExt;
use outer_core::publisher::{MemoryPublisher, Publisher, SubscribeOptions};
use outer_redis::testing::RedisServer;
use outer_redis::RedisPublisher;

/// (subscribers, events per run).
const SIZES: [(usize, usize); 3] = [(1, 5_000), (10, 2_000), (100, 500)];
/// (name, publishes in flight).
const MODES: [(&str, usize); 2] = [("sequential", 1), ("pipelined", 64)];
const RUNS: usize = 5;

/// One run: subscribes `subscribers` times, publishes `events` with `in_flight` publishes at
/// most at once, and returns the time until every subscriber has all of them.
async fn run<P>(
    publisher: &P,
    topic: &str,
    subscribers: usize,
    events: usize,
    in_flight: usize,
) -> Duration
where
    P: Publisher<u64> + Clone + 'static,
{
    let options = SubscribeOptions::new().buffer(events);
    let mut subs = Vec::with_capacity(subscribers);
    for _ in 0..subscribers {
        subs.push(publisher.subscribe(topic, options.clone()).await.unwrap());
    }
    let readers: Vec<_> = subs
        .into_iter()
        .map(|mut sub| {
            tokio::spawn(async move {
                let mut last = None;
                for _ in 0..events {
                    match sub.next().await {
                        Some(Ok(event)) => {
                            let id = event.id().clone();
                            assert!(last.as_ref().is_none_or(|last| *last < id), "out of order");
                            last = Some(id);
                        }
                        other => panic!(
                            "subscriber got {:?}",
                            other.map(|r| r.map(|e| e.id().clone()))
                        ),
                    }
                }
            })
        })
        .collect();
    let start = Instant::now();
    futures::stream::iter(0..events as u64)
        .map(|n| {
            let publisher = publisher.clone();
            let topic = topic.to_owned();
            async move { publisher.publish(&topic, n).await.unwrap() }
        })
        .buffer_unordered(in_flight)
        .for_each(|_| async {})
        .await;
    for reader in readers {
        reader.await.unwrap();
    }
    start.elapsed()
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() {
    // `cargo test --benches` runs benches with `--bench` absent: do one tiny pass only.
    let quick = !std::env::args().any(|arg| arg == "--bench");
    let (rt, runtime) = support::tokio_runtime(2);
    let redis = RedisServer::start().expect("start redis-server");
    redis
        .query::<()>(redis::cmd("CONFIG").arg("SET").arg("appendonly").arg("no"))
        .unwrap();
    println!(
        "{:<10} {:<12} {:>12} {:>16} {:>16} {:>7}",
        "mode", "N x E", "publisher", "median", "deliveries/s", "ratio"
    );
    let mut round = 0;
    for (mode, in_flight) in MODES {
        for (subscribers, events) in SIZES {
            let (events, runs) = if quick { (20, 1) } else { (events, RUNS) };
            let mut memory_times = Vec::new();
            let mut redis_times = Vec::new();
            for _ in 0..runs {
                round += 1;
                let topic = format!("bench{round}");
                let memory: MemoryPublisher<u64> = MemoryPublisher::builder()
                    .retain_last(events)
                    .max_buffer(events)
                    .build();
                memory_times.push(rt.block_on(run(
                    &memory,
                    &topic,
                    subscribers,
                    events,
                    in_flight,
                )));
                let on_redis: RedisPublisher<u64> = RedisPublisher::builder(redis.url())
                    .retain_last(events)
                    .max_buffer(events)
                    .build(runtime.clone())
                    .unwrap();
                redis_times.push(rt.block_on(run(
                    &on_redis,
                    &topic,
                    subscribers,
                    events,
                    in_flight,
                )));
                redis
                    .query::<()>(redis::cmd("DEL").arg(on_redis.key(&topic)))
                    .unwrap();
            }
            let deliveries = (subscribers * events) as f64;
            let memory = median(memory_times);
            let on_redis = median(redis_times);
            let rate = |time: Duration| deliveries / time.as_secs_f64();
            let size = format!("{subscribers}x{events}");
            println!(
                "{mode:<10} {size:<12} {:>12} {:>16?} {:>16.0} {:>7}",
                "memory",
                memory,
                rate(memory),
                ""
            );
            println!(
                "{mode:<10} {size:<12} {:>12} {:>16?} {:>16.0} {:>6.1}x",
                "redis",
                on_redis,
                rate(on_redis),
                rate(memory) / rate(on_redis)
            );
        }
    }
}
