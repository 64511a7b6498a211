//! `testing::RedisCluster` on real redis-server processes, driven by the redis crate's cluster
//! client: writes land on the master that owns their slot; a killed master's replica takes over
//! with the writes it acknowledged (`WAIT 1`); a shard whose nodes all died fails its keys until
//! a node comes back, empty (`restart_node_empty`, `replace_node`) or with its data
//! (`restart_node`); the cluster client works on tokio and on smol.
//!
//! No timing assertions: deadlines only turn a hang into a failure. The tests take turns: six
//! nodes each, with a 1 s node timeout, are enough load for a 2-core machine.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use outer_redis::testing::RedisCluster;
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;

/// How long any one wait may take before the test fails as hung.
const DEADLINE: Duration = Duration::from_secs(60);

/// One cluster at a time.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn on_tokio<F: Future<Output = ()>>(test: F) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(test);
}

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    let deadline = async {
        smol::Timer::after(DEADLINE).await;
        panic!("{what}: still waiting after {DEADLINE:?}");
    };
    futures::future::select(std::pin::pin!(future), std::pin::pin!(deadline))
        .await
        .factor_first()
        .0
}

/// A client whose commands give up after a few retries: a dead shard fails them in a few
/// seconds rather than after the default 16 retries of 1.3 s and more each.
fn client(cluster: &RedisCluster) -> ClusterClient {
    ClusterClient::builder(cluster.urls())
        .retries(5)
        .min_retry_wait(100)
        .max_retry_wait(1_000)
        .connection_timeout(Duration::from_secs(1))
        .response_timeout(Duration::from_secs(5))
        .overall_response_timeout(Some(Duration::from_secs(20)))
        .build()
        .unwrap()
}

async fn connect(cluster: &RedisCluster) -> ClusterConnection {
    within("connecting", client(cluster).get_async_connection())
        .await
        .unwrap()
}

/// A key on each of the three shards, with the port of its master.
fn keys_on_each_shard(cluster: &RedisCluster) -> Vec<(String, u16)> {
    let mut keys: Vec<(String, u16)> = Vec::new();
    for n in 0..1000 {
        let key = format!("topic-{n}");
        let master = cluster.master_for_key(&key).unwrap();
        if keys.iter().all(|(_, port)| *port != master) {
            keys.push((key, master));
        }
        if keys.len() == 3 {
            return keys;
        }
    }
    panic!("found no keys on three shards: {keys:?}");
}

async fn get(conn: &mut ClusterConnection, key: &str) -> redis::RedisResult<Option<String>> {
    within(
        &format!("GET {key}"),
        redis::cmd("GET").arg(key).query_async(conn),
    )
    .await
}

/// `SET key value` then `WAIT 1` on the same connection (one pipeline, routed by the key), and
/// checks that a replica acknowledged it.
async fn set_replicated(conn: &mut ClusterConnection, key: &str, value: &str) {
    let (replicas,): (i64,) = within(
        &format!("SET {key} + WAIT"),
        redis::pipe()
            .cmd("SET")
            .arg(key)
            .arg(value)
            .ignore()
            .cmd("WAIT")
            .arg(1)
            .arg(10_000)
            .query_async(conn),
    )
    .await
    .unwrap();
    assert_eq!(replicas, 1, "no replica acknowledged SET {key}");
}

fn direct_get(cluster: &RedisCluster, port: u16, key: &str) -> Option<String> {
    cluster
        .query(port, redis::cmd("GET").arg(key))
        .unwrap_or_else(|err| panic!("GET {key} on port {port}: {err}"))
}

fn role(cluster: &RedisCluster, port: u16) -> String {
    let info: String = cluster
        .query(port, redis::cmd("INFO").arg("replication"))
        .unwrap();
    let field = |name: &str| {
        info.lines()
            .find_map(|line| line.strip_prefix(name))
            .unwrap_or("")
            .trim()
            .to_owned()
    };
    match field("role:").as_str() {
        "slave" => format!("replica of {}", field("master_port:")),
        other => other.to_owned(),
    }
}

#[test]
fn writes_land_on_the_master_of_their_slot_and_survive_its_failover() {
    let _serial = serial();
    let mut cluster = RedisCluster::start().unwrap();
    let keys = keys_on_each_shard(&cluster);
    on_tokio(async {
        let mut conn = connect(&cluster).await;
        for (key, master) in &keys {
            set_replicated(&mut conn, key, "v1").await;
            assert_eq!(direct_get(&cluster, *master, key).as_deref(), Some("v1"));
        }

        let (key, old) = &keys[0];
        let new = cluster.kill_master_for_key(key).unwrap();
        assert_ne!(new, *old);
        assert_eq!(cluster.master_for_key(key).unwrap(), new);
        // The replica had it before the kill (`WAIT 1`), so the promoted one serves it.
        assert_eq!(direct_get(&cluster, new, key).as_deref(), Some("v1"));

        // The client that knew the old master follows the failover.
        assert_eq!(get(&mut conn, key).await.unwrap().as_deref(), Some("v1"));
        within("SET after failover", async {
            redis::cmd("SET")
                .arg(key)
                .arg("v2")
                .query_async::<()>(&mut conn)
                .await
        })
        .await
        .unwrap();
        assert_eq!(direct_get(&cluster, new, key).as_deref(), Some("v2"));
        for (other, _) in &keys[1..] {
            assert_eq!(get(&mut conn, other).await.unwrap().as_deref(), Some("v1"));
        }

        // The old master comes back with its data as a replica of the new one, and catches up.
        cluster.restart_node(*old).unwrap();
        assert_eq!(cluster.master_for_key(key).unwrap(), new);
        assert_eq!(role(&cluster, *old), format!("replica of {new}"));
        set_replicated(&mut conn, key, "v3").await;
        assert_eq!(get(&mut conn, key).await.unwrap().as_deref(), Some("v3"));
    });
}

#[test]
fn a_dead_shard_fails_until_its_master_comes_back_empty() {
    let _serial = serial();
    let mut cluster = RedisCluster::start().unwrap();
    let keys = keys_on_each_shard(&cluster);
    on_tokio(async {
        let mut conn = connect(&cluster).await;
        for (key, _) in &keys {
            set_replicated(&mut conn, key, "v1").await;
        }

        let (key, _) = &keys[0];
        let (master, replica) = cluster.kill_master_and_replica_for_key(key).unwrap();
        assert_eq!(master, keys[0].1);
        // No node serves the slot: the client's retries run out. (With Redis's default
        // `cluster-require-full-coverage yes`, the other shards' keys fail too: CLUSTERDOWN.)
        let err = get(&mut conn, key).await.unwrap_err();
        assert!(
            cluster.master_for_key(key).is_err(),
            "a master serves {key} after: {err}"
        );

        cluster.restart_node_empty(master).unwrap();
        assert_eq!(cluster.master_for_key(key).unwrap(), master);
        // Back, and empty; the other shards kept their keys.
        assert_eq!(get(&mut conn, key).await.unwrap(), None);
        for (other, _) in &keys[1..] {
            assert_eq!(get(&mut conn, other).await.unwrap().as_deref(), Some("v1"));
        }

        // The replica comes back with its old data, and resyncs from the empty master.
        cluster.restart_node(replica).unwrap();
        assert_eq!(role(&cluster, replica), format!("replica of {master}"));
        let replica_keys: i64 = cluster.query(replica, &mut redis::cmd("DBSIZE")).unwrap();
        assert_eq!(replica_keys, 0);
        set_replicated(&mut conn, key, "v2").await;
        assert_eq!(get(&mut conn, key).await.unwrap().as_deref(), Some("v2"));
    });
}

#[test]
fn new_nodes_take_over_a_dead_shard_while_the_others_serve() {
    let _serial = serial();
    // So that the other shards serve while one is dead.
    let mut cluster =
        RedisCluster::start_with_args(&["--cluster-require-full-coverage", "no"]).unwrap();
    let keys = keys_on_each_shard(&cluster);
    on_tokio(async {
        let mut conn = connect(&cluster).await;
        for (key, _) in &keys {
            set_replicated(&mut conn, key, "v1").await;
        }

        let (key, _) = &keys[0];
        let (master, replica) = cluster.kill_master_and_replica_for_key(key).unwrap();
        for (other, _) in &keys[1..] {
            assert_eq!(get(&mut conn, other).await.unwrap().as_deref(), Some("v1"));
        }
        get(&mut conn, key).await.unwrap_err();

        // A new node (no data, no nodes.conf) on the master's port takes the slots over.
        cluster.replace_node(master).unwrap();
        assert_eq!(cluster.master_for_key(key).unwrap(), master);
        assert_eq!(get(&mut conn, key).await.unwrap(), None);

        // And a new node on the replica's port becomes its replica.
        cluster.replace_node(replica).unwrap();
        assert_eq!(role(&cluster, replica), format!("replica of {master}"));
        set_replicated(&mut conn, key, "v2").await;
        let replica_keys: i64 = cluster.query(replica, &mut redis::cmd("DBSIZE")).unwrap();
        assert_eq!(replica_keys, 1);
        for (other, _) in &keys[1..] {
            assert_eq!(get(&mut conn, other).await.unwrap().as_deref(), Some("v1"));
        }
    });
}

#[test]
fn the_cluster_client_runs_on_smol_too_and_takes_seeds_as_a_list() {
    let _serial = serial();
    let cluster = RedisCluster::start().unwrap();
    let keys = keys_on_each_shard(&cluster);

    // A comma-separated string is not a list of seeds to the redis crate: split it first.
    assert!(ClusterClient::new(vec![cluster.urls_joined()]).is_err());
    let joined = cluster.urls_joined();
    let client = ClusterClient::new(joined.split(',')).unwrap();

    // Off any tokio runtime, the redis crate takes async-io's sockets and smol's executor.
    smol::block_on(async {
        let mut conn = within("connecting on smol", client.get_async_connection())
            .await
            .unwrap();
        for (key, master) in &keys {
            set_replicated(&mut conn, key, "on smol").await;
            assert_eq!(
                direct_get(&cluster, *master, key).as_deref(),
                Some("on smol")
            );
            assert_eq!(
                get(&mut conn, key).await.unwrap().as_deref(),
                Some("on smol")
            );
        }
    });
}
