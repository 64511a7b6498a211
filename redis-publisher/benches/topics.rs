//! Deliveries per second through the Redis publisher with its topics on one Redis, and on a
//! Redis Cluster of three shards (three masters with a replica each), for 1, 10 and 100
//! topics: one instance, 10 subscribers per topic, 2,000 events in all spread evenly over the
//! topics, 64 publishes in flight at once (round-robin over the topics). Every subscriber must
//! receive all of its topic's events, in id order. Timed from the first publish to the last
//! subscriber's last event; deliveries = 10 × 2,000. Each case runs `RUNS` times; the median is
//! printed, with publishes per second beside it.
//!
//! Redis is started by the bench on loopback (Debian's `redis-server` on the `PATH`), with AOF
//! off on every node: this measures the publisher and the topology, not the disk. Everything
//! runs on one machine, so the cluster's six processes share its cores with the bench: the
//! figures show what sharding costs and spreads here, not what three machines would give.
//!
//! Run: `cargo bench -p outer-redis --bench topics`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use futures::StreamExt;
use outer_core::publisher::SubscribeOptions;
use outer_redis::testing::{RedisCluster, RedisServer};
use outer_redis::RedisPublisher;

const TOPICS: [usize; 3] = [1, 10, 100];
const SUBSCRIBERS_PER_TOPIC: usize = 10;
const EVENTS: usize = 2_000;
const IN_FLIGHT: usize = 64;
const RUNS: usize = 5;

/// One run on `topics` fresh topics: subscribes, publishes, waits for every delivery.
async fn run(
    publisher: &RedisPublisher<u64>,
    round: usize,
    topics: usize,
    events: usize,
) -> Duration {
    let names: Vec<String> = (0..topics).map(|t| format!("bench{round}-{t}")).collect();
    let per_topic = events / topics;
    let options = SubscribeOptions::new().buffer(per_topic);
    let mut readers = Vec::new();
    for name in &names {
        for _ in 0..SUBSCRIBERS_PER_TOPIC {
            let mut sub = publisher.subscribe(name, options.clone()).await.unwrap();
            readers.push(tokio::spawn(async move {
                let mut last = None;
                for _ in 0..per_topic {
                    match sub.next().await {
                        Some(Ok(event)) => {
                            let id = *event.id();
                            assert!(last.is_none_or(|last| last < id), "out of order");
                            last = Some(id);
                        }
                        other => panic!("subscriber got {:?}", other.map(|r| r.map(|e| *e.id()))),
                    }
                }
            }));
        }
    }
    let start = Instant::now();
    futures::stream::iter(0..(per_topic * topics) as u64)
        .map(|n| {
            let publisher = publisher.clone();
            let topic = names[n as usize % topics].clone();
            async move { publisher.publish(&topic, n).await.unwrap() }
        })
        .buffer_unordered(IN_FLIGHT)
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
    let no_aof = ["--appendonly", "no"];
    let single = RedisServer::start().expect("start redis-server");
    single
        .query::<()>(redis::cmd("CONFIG").arg("SET").arg("appendonly").arg("no"))
        .unwrap();
    let cluster = RedisCluster::start_with_args(&no_aof).expect("start a Redis Cluster");
    let backends = [
        ("1 Redis", single.url()),
        ("cluster of 3", cluster.cluster_url()),
    ];
    println!(
        "{:<14} {:>6} {:>12} {:>14} {:>14} {:>12}",
        "redis", "topics", "N x E", "median", "deliveries/s", "publishes/s"
    );
    let mut round = 0;
    for topics in TOPICS {
        for (name, url) in &backends {
            let (events, runs) = if quick {
                (topics * 2, 1)
            } else {
                (EVENTS, RUNS)
            };
            let publisher: RedisPublisher<u64> = RedisPublisher::builder(url.clone())
                .retain_last(events)
                .max_buffer(events)
                .build(runtime.clone())
                .unwrap();
            let mut times = Vec::new();
            for _ in 0..runs {
                round += 1;
                times.push(rt.block_on(run(&publisher, round, topics, events)));
            }
            let time = median(times);
            let published = (events / topics * topics) as f64;
            let deliveries = published * SUBSCRIBERS_PER_TOPIC as f64;
            let size = format!("{}x{}", SUBSCRIBERS_PER_TOPIC * topics, events / topics);
            println!(
                "{name:<14} {topics:>6} {size:>12} {:>14?} {:>14.0} {:>12.0}",
                time,
                deliveries / time.as_secs_f64(),
                published / time.as_secs_f64()
            );
        }
    }
}
