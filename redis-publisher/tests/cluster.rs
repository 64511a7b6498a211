//! The publisher on a real Redis Cluster (three masters with a replica each, six redis-server
//! processes; see `outer_redis::testing::RedisCluster`), on tokio, smol and monoio: topics spread over
//! the shards with one reader each on its shard's master; a master killed and its replica
//! promoted loses nothing that reached the replica, for live subscribers and resumes alike; a
//! shard lost with its data is an explicit `Unknown` gap there and nowhere else; a topic whose
//! slot moves to another shard (`ASK` during the move, `MOVED` after) goes on without a gap.
//!
//! One cluster at a time (they are six processes each). No timing assertions: deadlines only
//! turn a hang into a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use futures::StreamExt;
use outer_core::publisher::{GapKind, GapPolicy, SubscribeOptions};
use outer_redis::testing::RedisCluster;
use outer_redis::{Error, RecvError, RedisPublisher, StreamId};

/// One cluster at a time: six processes each, and failovers that wait on timeouts.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

mod support;
use support::{publish_retrying, take, until, within, OnMonoio, OnSmol, OnTokio, Rt, Runtime};

/// A cluster whose other shards keep serving while one is down.
fn cluster() -> RedisCluster {
    RedisCluster::start_with_args(&["--cluster-require-full-coverage", "no"])
        .expect("start a Redis Cluster")
}

fn publisher(cluster: &RedisCluster, runtime: Runtime) -> RedisPublisher<u32> {
    RedisPublisher::builder(cluster.cluster_url())
        .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200))
        .build(runtime)
        .unwrap()
}

/// A topic for each master: the first names (`t0`, `t1`, ...) whose keys fall on each.
fn topic_per_master(
    cluster: &RedisCluster,
    publisher: &RedisPublisher<u32>,
) -> BTreeMap<u16, String> {
    let mut topics = BTreeMap::new();
    for n in 0.. {
        let topic = format!("t{n}");
        let master = cluster.master_for_key(&publisher.key(&topic)).unwrap();
        topics.entry(master).or_insert(topic);
        if topics.len() == 3 {
            return topics;
        }
    }
    unreachable!()
}

async fn publish_all(
    publisher: &RedisPublisher<u32>,
    topic: &str,
    values: std::ops::Range<u32>,
) -> Vec<StreamId> {
    let mut ids = Vec::new();
    for value in values {
        ids.push(publish_retrying(publisher, topic, value).await);
    }
    ids
}

fn resume(id: StreamId) -> SubscribeOptions {
    SubscribeOptions::new().resume_after(id)
}

/// The names of the readers connected to the node on `port`.
fn readers_on(cluster: &RedisCluster, port: u16) -> Vec<String> {
    let list: String = cluster
        .query(port, redis::cmd("CLIENT").arg("LIST"))
        .unwrap();
    let mut names: Vec<String> = list
        .lines()
        .filter_map(|line| line.split(' ').find_map(|f| f.strip_prefix("name=")))
        .filter(|name| name.starts_with("outer-reader:"))
        .map(str::to_owned)
        .collect();
    names.sort();
    names
}

fn a_single_server_url_to_a_cluster_node_says_to_use_a_cluster_url<R: Rt>() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let cluster = cluster();
    R::run(|runtime| async move {
        let single = RedisPublisher::<u32>::builder(cluster.url())
            .build(runtime)
            .unwrap();
        // Some topic lives on another node than the one the URL names.
        let mut redirected = None;
        for n in 0..16 {
            if let Err(err) = single.publish(&format!("t{n}"), 1).await {
                redirected = Some(err);
                break;
            }
        }
        match redirected {
            Some(Error::Unavailable(why)) => assert!(why.contains("redis+cluster://"), "{why}"),
            other => panic!("expected a pointer to the cluster URL, got {other:?}"),
        }
    });
}

fn topics_spread_over_the_shards_with_one_reader_each_on_its_master<R: Rt>() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let cluster = cluster();
    R::run(|runtime| async move {
        let a = publisher(&cluster, runtime.clone());
        let b = publisher(&cluster, runtime);
        let topics = topic_per_master(&cluster, &a);
        for (master, topic) in &topics {
            let mut live = a.subscribe(topic, SubscribeOptions::new()).await.unwrap();
            let ids = publish_all(&b, topic, 0..5).await;
            assert_eq!(
                take(&mut live, 5).await,
                ids.iter().copied().zip(0..).collect::<Vec<_>>()
            );
            // Resumed on the other instance: the rest, exactly.
            let mut resumed = b.subscribe(topic, resume(ids[1])).await.unwrap();
            assert_eq!(
                take(&mut resumed, 3).await,
                ids[2..].iter().copied().zip(2..).collect::<Vec<_>>()
            );
            // Both instances read the topic from its own master, one reader each.
            let name = format!("outer-reader:{topic}");
            until("one reader per instance on the topic's master", || {
                readers_on(&cluster, *master) == [name.clone(), name.clone()]
            })
            .await;
            drop((live, resumed));
        }
        until("the readers to stop", || {
            (a.reader_count(), b.reader_count()) == (0, 0)
        })
        .await;
    });
}

fn a_failover_loses_nothing_that_reached_the_replica<R: Rt>() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut cluster = cluster();
    R::run(|runtime| async move {
        let publisher = publisher(&cluster, runtime);
        let topics = topic_per_master(&cluster, &publisher);
        let (&master, topic) = topics.iter().next().unwrap();
        let mut live = publisher
            .subscribe(topic, SubscribeOptions::new())
            .await
            .unwrap();
        let before = publish_all(&publisher, topic, 0..10).await;
        assert_eq!(take(&mut live, 4).await.last().unwrap().0, before[3]);
        let mut resumed = publisher.subscribe(topic, resume(before[1])).await.unwrap();
        cluster.wait_replicated(&publisher.key(topic)).unwrap();

        let promoted = cluster.kill_master_for_key(&publisher.key(topic)).unwrap();
        assert_ne!(promoted, master);
        let after = publish_all(&publisher, topic, 10..20).await;
        let all: Vec<StreamId> = before.iter().chain(&after).copied().collect();
        assert_eq!(
            take(&mut live, 16).await,
            all[4..].iter().copied().zip(4..).collect::<Vec<_>>()
        );
        assert_eq!(
            take(&mut resumed, 18).await,
            all[2..].iter().copied().zip(2..).collect::<Vec<_>>()
        );
        // A new resume after the failover, from an id given out before it: exact.
        let mut late = publisher.subscribe(topic, resume(before[7])).await.unwrap();
        assert_eq!(
            take(&mut late, 12).await,
            all[8..].iter().copied().zip(8..).collect::<Vec<_>>()
        );
        // The reader moved to the promoted master.
        let name = format!("outer-reader:{topic}");
        until("the reader on the promoted master", || {
            readers_on(&cluster, promoted) == [name.clone()]
        })
        .await;
    });
}

fn a_shard_lost_with_its_data_is_an_unknown_gap_there_and_nowhere_else<R: Rt>() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut cluster = cluster();
    R::run(|runtime| async move {
        let publisher = publisher(&cluster, runtime);
        let topics: Vec<String> = topic_per_master(&cluster, &publisher)
            .into_values()
            .collect();
        let (lost, kept) = (&topics[0], &topics[1]);
        let mut live = publisher
            .subscribe(lost, SubscribeOptions::new().on_gap(GapPolicy::Skip))
            .await
            .unwrap();
        let lost_ids = publish_all(&publisher, lost, 0..3).await;
        let kept_ids = publish_all(&publisher, kept, 0..3).await;
        assert_eq!(take(&mut live, 3).await.last().unwrap().0, lost_ids[2]);

        // The shard of `lost` dies whole and comes back without its data.
        let (master, replica) = cluster
            .kill_master_and_replica_for_key(&publisher.key(lost))
            .unwrap();
        cluster.restart_node_empty(master).unwrap();
        cluster.restart_node_empty(replica).unwrap();
        let new = publish_retrying(&publisher, lost, 3).await;
        assert_ne!(
            new.epoch(),
            lost_ids[0].epoch(),
            "a new history, a new epoch"
        );

        for id in &lost_ids {
            let mut sub = publisher.subscribe(lost, resume(*id)).await.unwrap();
            match within("the gap", sub.next()).await {
                Some(Err(RecvError::Gap(gap))) => {
                    assert_eq!((gap.kind(), gap.last_id()), (GapKind::Unknown, *id))
                }
                other => panic!("expected a gap after {id}, got {other:?}"),
            }
        }
        match within("the live gap", live.next()).await {
            Some(Err(RecvError::Gap(gap))) => assert_eq!(gap.kind(), GapKind::Unknown),
            other => panic!("expected a gap, got {other:?}"),
        }
        assert_eq!(take(&mut live, 1).await, [(new, 3)]);
        // The other shards kept theirs: exact resume.
        let mut sub = publisher
            .subscribe(kept, resume(kept_ids[0]))
            .await
            .unwrap();
        assert_eq!(
            take(&mut sub, 2).await,
            [(kept_ids[1], 1), (kept_ids[2], 2)]
        );
    });
}

/// Runs `CLUSTER <args>` on the node on `port`.
fn cluster_cmd(cluster: &RedisCluster, port: u16, args: &[&str]) {
    let mut cmd = redis::cmd("CLUSTER");
    for arg in args {
        cmd.arg(*arg);
    }
    let _: redis::Value = cluster.query(port, &mut cmd).unwrap();
}

fn a_topic_whose_slot_moves_to_another_shard_goes_on_without_a_gap<R: Rt>() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let cluster = cluster();
    R::run(|runtime| async move {
        let publisher = publisher(&cluster, runtime);
        let topics = topic_per_master(&cluster, &publisher);
        let mut masters = topics.iter();
        let (&source, topic) = masters.next().unwrap();
        let (&target, _) = masters.next().unwrap();
        let key = publisher.key(topic);
        let slot: u16 = cluster
            .query(source, redis::cmd("CLUSTER").arg("KEYSLOT").arg(&key))
            .unwrap();
        let id_of = |port: u16| -> String {
            cluster
                .query(port, redis::cmd("CLUSTER").arg("MYID"))
                .unwrap()
        };
        let (source_id, target_id) = (id_of(source), id_of(target));

        let mut live = publisher
            .subscribe(topic, SubscribeOptions::new())
            .await
            .unwrap();
        let mut ids = publish_all(&publisher, topic, 0..5).await;
        assert_eq!(take(&mut live, 5).await.last().unwrap().0, ids[4]);

        // The move, as `redis-cli --cluster reshard` does it: the target imports, the source
        // migrates, the key goes over; until the slot is handed over, the source answers ASK.
        let slot = slot.to_string();
        cluster_cmd(
            &cluster,
            target,
            &["SETSLOT", &slot, "IMPORTING", &source_id],
        );
        cluster_cmd(
            &cluster,
            source,
            &["SETSLOT", &slot, "MIGRATING", &target_id],
        );
        // Every key of the slot, as `reshard` moves them: the stream and its epoch key.
        let keys: Vec<String> = cluster
            .query(
                source,
                redis::cmd("CLUSTER")
                    .arg("GETKEYSINSLOT")
                    .arg(&slot)
                    .arg(100),
            )
            .unwrap();
        assert!(keys.contains(&key), "{keys:?}");
        let _: redis::Value = cluster
            .query(
                source,
                redis::cmd("MIGRATE")
                    .arg("127.0.0.1")
                    .arg(target)
                    .arg("")
                    .arg(0)
                    .arg(5_000)
                    .arg("KEYS")
                    .arg(&keys),
            )
            .unwrap();
        ids.extend(publish_all(&publisher, topic, 5..10).await);
        assert_eq!(take(&mut live, 5).await.last().unwrap().0, ids[9]);
        let mut resumed = publisher.subscribe(topic, resume(ids[2])).await.unwrap();
        assert_eq!(
            take(&mut resumed, 7).await,
            ids[3..].iter().copied().zip(3..).collect::<Vec<_>>()
        );

        // Handed over: every node says the target owns it; the source answers MOVED.
        for port in [target, source] {
            cluster_cmd(&cluster, port, &["SETSLOT", &slot, "NODE", &target_id]);
        }
        for port in topics.keys() {
            cluster_cmd(&cluster, *port, &["SETSLOT", &slot, "NODE", &target_id]);
        }
        ids.extend(publish_all(&publisher, topic, 10..15).await);
        assert_eq!(
            take(&mut live, 5).await,
            ids[10..].iter().copied().zip(10..).collect::<Vec<_>>()
        );
        assert_eq!(
            take(&mut resumed, 5).await,
            ids[10..].iter().copied().zip(10..).collect::<Vec<_>>()
        );
        let name = format!("outer-reader:{topic}");
        until("the reader on the new master", || {
            readers_on(&cluster, target) == [name.clone()]
        })
        .await;
        assert!(readers_on(&cluster, source).is_empty());
    });
}

on_every_runtime!(
    a_single_server_url_to_a_cluster_node_says_to_use_a_cluster_url,
    topics_spread_over_the_shards_with_one_reader_each_on_its_master,
    a_failover_loses_nothing_that_reached_the_replica,
    a_shard_lost_with_its_data_is_an_unknown_gap_there_and_nowhere_else,
    a_topic_whose_slot_moves_to_another_shard_goes_on_without_a_gap,
);
