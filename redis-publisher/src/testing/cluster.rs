//! A throwaway Redis Cluster for tests: three masters with one replica each, six `redis-server`
//! child processes on free loopback ports, each with its data and its cluster config
//! (`nodes.conf`) in a temporary folder of its own. A test can kill a master and see its replica
//! promoted, kill a whole shard, and bring nodes back with their data, without it, or as brand-new
//! nodes. Behind the `testing` feature.
//!
//! Needs Debian's `redis-server` and `redis-cli` (`apt-get install redis-server`, which brings
//! both) on the `PATH`; without them, [`RedisCluster::start`] fails with an error that says so.
//!
//! How the shard of a key comes back after both its nodes died:
//! - [`RedisCluster::restart_node`]: with its data (AOF, written on every command) and its
//!   `nodes.conf`, as a crashed machine reboots.
//! - [`RedisCluster::restart_node_empty`]: without its data but with its `nodes.conf`, as a Redis
//!   without persistence comes back: Redis writes `nodes.conf` on every change of the cluster's
//!   configuration whatever the persistence settings, so the node keeps its id and, if no one
//!   took them over, its slots; the cluster is whole again at once, with the shard's keys gone.
//! - [`RedisCluster::replace_node`]: a new machine (no data, no `nodes.conf`). Such a node has a
//!   new id and knows no cluster; the rest of the cluster still gives the slots to the dead
//!   node's id, and a node refuses `CLUSTER ADDSLOTS` for slots it knows to be owned. So the new
//!   node claims the slots *before* it meets anyone, with a config epoch above the cluster's
//!   (`CLUSTER SET-CONFIG-EPOCH`, allowed only on a node that knows no other), and then
//!   `CLUSTER MEET`s the cluster: the higher epoch wins the slots over the dead node's claim.
//!   The dead id is then `CLUSTER FORGET`-ten on every node. If its shard still has a master, the
//!   new node joins as its replica instead (`CLUSTER MEET` + `CLUSTER REPLICATE`).
//!
//! With Redis's default `cluster-require-full-coverage yes`, a cluster with a shard down answers
//! `CLUSTERDOWN` for every key, not only the dead shard's; start the cluster with
//! `--cluster-require-full-coverage no` ([`RedisCluster::start_with_args`]) to keep the other
//! shards serving.

use std::fs::File;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long a node may take to accept connections before its start counts as failed.
const START_DEADLINE: Duration = Duration::from_secs(15);

/// How long `redis-cli --cluster create` may take.
const CREATE_DEADLINE: Duration = Duration::from_secs(60);

/// How long the cluster may take to settle after a change (creation, failover, restart): well
/// above a failover's 1–3 s with the node timeout below, so that only a hang fails.
const SETTLE_DEADLINE: Duration = Duration::from_secs(30);

/// How long one admin command may take on one node.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// `--cluster-node-timeout`: how long a node may be unreachable before it counts as failing.
/// Small, so that a replica takes over a killed master in 1–3 s.
const NODE_TIMEOUT_MS: &str = "1000";

/// A node's cluster bus listens on its port + 10000.
const BUS_OFFSET: u16 = 10_000;

/// The slots of a Redis Cluster.
const SLOTS: u16 = 16_384;

/// Three masters, one replica each.
const NODES: usize = 6;

/// A Redis Cluster of six `redis-server` child processes: three masters with one replica each.
/// Dropping it kills the servers and removes their data.
///
/// ```no_run
/// use outer_redis::testing::RedisCluster;
/// let mut cluster = RedisCluster::start().unwrap();
/// let seeds = cluster.urls(); // for redis::cluster::ClusterClient::new(seeds)
/// let promoted = cluster.kill_master_for_key("topic").unwrap(); // its replica took over
/// assert_eq!(cluster.master_for_key("topic").unwrap(), promoted);
/// ```
#[derive(Debug)]
pub struct RedisCluster {
    root: PathBuf,
    nodes: Vec<Node>,
    /// The slot ranges of each shard, as `redis-cli --cluster create` dealt them out.
    shards: Vec<Vec<(u16, u16)>>,
    /// Passed to every node, on every (re)start.
    extra_args: Vec<String>,
}

#[derive(Debug)]
struct Node {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
    /// Its cluster node id; a node whose `nodes.conf` is wiped gets a new one.
    id: String,
    /// Which of `RedisCluster::shards` it was created in.
    shard: usize,
}

impl RedisCluster {
    /// Starts six nodes, makes them a cluster of three masters with one replica each, and waits
    /// until every node reports the cluster ok with every slot served and each replica in sync
    /// with its master.
    pub fn start() -> io::Result<Self> {
        Self::start_with_args(&[])
    }

    /// [`start`](Self::start), with `args` added to every node's `redis-server` command line,
    /// e.g. `&["--cluster-require-full-coverage", "no"]`.
    pub fn start_with_args(args: &[&str]) -> io::Result<Self> {
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let root = std::env::temp_dir().join(format!(
            "outer-redis-cluster-{}-{}",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        ));
        let mut cluster = Self {
            root,
            nodes: Vec::new(),
            shards: Vec::new(),
            extra_args: args.iter().map(|arg| (*arg).to_owned()).collect(),
        };
        // From here on, an error drops `cluster`, which kills whatever was started.
        for port in free_ports(NODES)? {
            let dir = cluster.root.join(port.to_string());
            std::fs::create_dir_all(&dir)?;
            cluster.nodes.push(Node {
                port,
                dir,
                child: None,
                id: String::new(),
                shard: 0,
            });
        }
        for index in 0..NODES {
            cluster.spawn(index)?;
        }
        cluster.create()?;
        for index in 0..NODES {
            let port = cluster.nodes[index].port;
            cluster.nodes[index].id = cluster.admin(port, &mut cluster_cmd(&["MYID"]))?;
        }
        cluster.wait_healthy()?;
        cluster.record_shards()?;
        Ok(cluster)
    }

    /// `redis://127.0.0.1:<port>` of every node, masters and replicas, dead or alive: the seeds
    /// for `redis::cluster::ClusterClient::new`, which takes them as a list (it does not split a
    /// comma-separated string).
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(|node| url(node.port)).collect()
    }

    /// One node's URL: a cluster client finds the others from any one of them.
    pub fn url(&self) -> String {
        url(self.nodes[0].port)
    }

    /// Every node's URL joined with commas, `redis://127.0.0.1:<p1>,redis://127.0.0.1:<p2>,...`,
    /// as a command-line flag that takes several seeds would be given them.
    pub fn urls_joined(&self) -> String {
        self.urls().join(",")
    }

    /// The URL a [`RedisPublisher`](crate::RedisPublisher) (and `chat --redis`) takes for this
    /// cluster: `redis+cluster://127.0.0.1:<p1>,127.0.0.1:<p2>,...`, every node a seed.
    pub fn cluster_url(&self) -> String {
        let seeds: Vec<String> = self
            .nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port))
            .collect();
        format!("redis+cluster://{}", seeds.join(","))
    }

    /// The ports of the six nodes, running or not.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|node| node.port).collect()
    }

    /// The port of the running master that serves `key`'s slot now.
    pub fn master_for_key(&self, key: &str) -> io::Result<u16> {
        let slot = self.key_slot(key)?;
        for (_, view) in self.views()? {
            if let Some(owner) = view.iter().find(|entry| entry.serves(slot)) {
                if !owner.failed() && self.running_port_of(&owner.id).is_some() {
                    return Ok(owner.port);
                }
            }
        }
        Err(io::Error::other(format!(
            "no running master serves slot {slot} of key {key:?}"
        )))
    }

    /// Waits until every write so far to `key`'s shard reached its replica, so that a failover
    /// then loses none of it. `WAIT` counts only the writes of the connection it is sent on, so
    /// it follows a write of its own to the same slot (the `{key}` hash tag) on one connection:
    /// replication keeps order, so once the replica has that write it has every earlier one.
    pub fn wait_replicated(&self, key: &str) -> io::Result<()> {
        let port = self.master_for_key(key)?;
        let client = redis::Client::open(url(port)).map_err(io::Error::other)?;
        let mut conn = client
            .get_connection_with_timeout(COMMAND_TIMEOUT)
            .map_err(io::Error::other)?;
        let (acked,): (i64,) = redis::pipe()
            .cmd("SET")
            .arg(format!("{{{key}}}:replicated"))
            .arg(1)
            .ignore()
            .cmd("WAIT")
            .arg(1)
            .arg(10_000)
            .query(&mut conn)
            .map_err(|err| io::Error::other(format!("redis-server on port {port}: {err}")))?;
        if acked < 1 {
            return Err(io::Error::other(format!(
                "the replica of port {port} did not acknowledge within 10 s"
            )));
        }
        Ok(())
    }

    /// Kills the master of `key`'s slot at once (SIGKILL), waits until its replica has taken
    /// over (every running node reports the cluster ok and sees the slot served by a running
    /// master), and returns the new master's port.
    pub fn kill_master_for_key(&mut self, key: &str) -> io::Result<u16> {
        let slot = self.key_slot(key)?;
        let master = self.master_for_key(key)?;
        let master_id = self.node(master)?.id.clone();
        if self.running_replica_of(&master_id)?.is_none() {
            return Err(io::Error::other(format!(
                "the master on port {master} has no running replica to take over"
            )));
        }
        self.kill_node(master);
        self.wait_until(
            &format!("a replica of port {master} to take over slot {slot}"),
            |cluster| {
                let mut owners = Vec::new();
                for (port, view) in cluster.views()? {
                    if !cluster.info(port)?.contains("cluster_state:ok") {
                        return Ok(None);
                    }
                    match view.iter().find(|entry| entry.serves(slot)) {
                        Some(owner) if owner.id != master_id && !owner.failed() => {
                            owners.push(owner.port)
                        }
                        _ => return Ok(None),
                    }
                }
                Ok(match owners.split_first() {
                    Some((first, rest)) if rest.iter().all(|port| port == first) => Some(*first),
                    _ => None,
                })
            },
        )
    }

    /// Kills the master of `key`'s slot and its replica at once (SIGKILL): the shard is gone
    /// until one of them comes back. Waits until every running node sees the master as failed,
    /// and returns the ports of the master and of the replica.
    pub fn kill_master_and_replica_for_key(&mut self, key: &str) -> io::Result<(u16, u16)> {
        let master = self.master_for_key(key)?;
        let master_id = self.node(master)?.id.clone();
        let replica = self.running_replica_of(&master_id)?.ok_or_else(|| {
            io::Error::other(format!(
                "the master on port {master} has no running replica"
            ))
        })?;
        // The replica first, so that it cannot take over in between.
        self.kill_node(replica);
        self.kill_node(master);
        self.wait_until(
            &format!("the cluster to see port {master} as failed"),
            |cluster| {
                for (_, view) in cluster.views()? {
                    let failed = view.iter().any(|entry| {
                        entry.id == master_id && entry.flags.iter().any(|f| f == "fail")
                    });
                    if !failed {
                        return Ok(None);
                    }
                }
                Ok(Some(()))
            },
        )?;
        Ok((master, replica))
    }

    /// Kills the node on `port` at once (SIGKILL), as a crash does; its data and its
    /// `nodes.conf` stay on disk. Does not wait for the cluster to notice.
    pub fn kill_node(&mut self, port: u16) {
        if let Some(node) = self.nodes.iter_mut().find(|node| node.port == port) {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }

    /// Starts the node on `port` (again) with its data and its `nodes.conf`, and waits until the
    /// cluster is healthy again ([`wait_healthy`](Self::wait_healthy)). Kills the running one
    /// first, if any. A master that was replaced while it was down comes back as a replica of
    /// the node that took over.
    pub fn restart_node(&mut self, port: u16) -> io::Result<()> {
        let index = self.index(port)?;
        self.kill_node(port);
        self.spawn(index)?;
        self.wait_healthy()
    }

    /// Kills the node on `port` and starts it again with no data but with its `nodes.conf`, as a
    /// Redis without persistence comes back after a crash (see the module's doc), and waits until
    /// the cluster is healthy again. A master whose shard had no other node running serves its
    /// slots again, empty; a node whose shard has a running master resyncs from it. (A master
    /// restarted before its replica took over is still the master, and its replica resyncs from
    /// it: the shard's data is gone, which is why Redis advises against restarting a master
    /// without persistence automatically.)
    pub fn restart_node_empty(&mut self, port: u16) -> io::Result<()> {
        let index = self.index(port)?;
        self.kill_node(port);
        self.wipe(index, true)?;
        self.spawn(index)?;
        self.wait_healthy()
    }

    /// Kills the node on `port` and starts a brand-new node in its place: no data, no
    /// `nodes.conf`, a new id. If the shard it was in still has a running master, the new node
    /// becomes its replica; otherwise it takes over the shard's slots, empty. The old id is
    /// forgotten by the cluster. Waits until the cluster is healthy again. See the module's doc
    /// for how.
    ///
    /// A node of the same shard restarted with an old `nodes.conf` still believes in the
    /// forgotten id: bring the shard's other node back with `replace_node` too.
    pub fn replace_node(&mut self, port: u16) -> io::Result<()> {
        let index = self.index(port)?;
        let old_id = self.nodes[index].id.clone();
        let shard = self.nodes[index].shard;
        self.kill_node(port);
        self.wipe(index, false)?;
        self.spawn(index)?;
        let new_id: String = self.admin(port, &mut cluster_cmd(&["MYID"]))?;
        self.nodes[index].id = new_id.clone();
        let slots = self.shards[shard].clone();
        let first_slot = slots.first().map_or(0, |range| range.0);
        let others = self.running_ports_except(port);
        let Some(&seed) = others.first() else {
            return Err(io::Error::other(
                "no other node is running for the new node to join",
            ));
        };
        let views: Vec<_> = self
            .views()?
            .into_iter()
            .filter(|(p, _)| *p != port)
            .collect();
        let master = views.iter().find_map(|(_, view)| {
            view.iter()
                .find(|entry| entry.serves(first_slot))
                .filter(|owner| !owner.failed() && owner.id != old_id)
                .filter(|owner| self.running_port_of(&owner.id).is_some())
                .map(|owner| owner.id.clone())
        });
        match master {
            Some(master_id) => {
                self.admin::<()>(port, &mut meet(seed))?;
                // The new node must have heard of the master before it can replicate it.
                self.wait_until(
                    &format!("the new node on port {port} to replicate {master_id}"),
                    |cluster| {
                        Ok(cluster
                            .query::<()>(port, &mut cluster_cmd(&["REPLICATE", &master_id]))
                            .ok())
                    },
                )?;
            }
            None => {
                let mut epoch = 0u64;
                for &other in &others {
                    epoch = epoch.max(info_field(&self.info(other)?, "cluster_current_epoch"));
                }
                // Claimed before meeting anyone, with the highest epoch: see the module's doc.
                self.admin::<()>(
                    port,
                    &mut cluster_cmd(&["SET-CONFIG-EPOCH", &(epoch + 1).to_string()]),
                )?;
                let mut add = cluster_cmd(&["ADDSLOTS"]);
                for &(start, end) in &slots {
                    for slot in start..=end {
                        add.arg(slot);
                    }
                }
                self.admin::<()>(port, &mut add)?;
                self.admin::<()>(port, &mut meet(seed))?;
            }
        }
        // So that no node keeps the dead id around. A replica refuses to forget its own master
        // ("Can't forget my master!"): that one is down with its shard, so its view is moot.
        for other in others {
            let _ = self.query::<()>(other, &mut cluster_cmd(&["FORGET", &old_id]));
        }
        self.wait_healthy()
    }

    /// Waits until the running nodes agree on a healthy cluster: each reports `cluster_state:ok`
    /// with all 16384 slots served, each sees every running node (by its current id) connected,
    /// not failing, with the same role, master and slots as the others see, and each running
    /// replica of a running master has its replication link up (so `WAIT 1` can succeed).
    pub fn wait_healthy(&self) -> io::Result<()> {
        if self.running_ports_except(0).is_empty() {
            return Err(io::Error::other("no node of the cluster is running"));
        }
        self.wait_until("the cluster to be healthy", |cluster| cluster.healthy())
    }

    /// Runs one command on the node on `port`, on a connection of its own.
    pub fn query<V: redis::FromRedisValue>(
        &self,
        port: u16,
        cmd: &mut redis::Cmd,
    ) -> redis::RedisResult<V> {
        let client = redis::Client::open(url(port))?;
        let mut conn = client.get_connection_with_timeout(COMMAND_TIMEOUT)?;
        // So that a node that hangs fails the command instead of the test.
        conn.set_read_timeout(Some(COMMAND_TIMEOUT))?;
        conn.set_write_timeout(Some(COMMAND_TIMEOUT))?;
        cmd.query(&mut conn)
    }

    /// `query`, with the error as an `io::Error` that names the node.
    fn admin<V: redis::FromRedisValue>(&self, port: u16, cmd: &mut redis::Cmd) -> io::Result<V> {
        self.query(port, cmd)
            .map_err(|err| io::Error::other(format!("redis-server on port {port}: {err}")))
    }

    fn spawn(&mut self, index: usize) -> io::Result<()> {
        let node = &mut self.nodes[index];
        let log = node.dir.join("redis.log");
        let child = Command::new("redis-server")
            .args(["--port", &node.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(&node.dir)
            .args(["--cluster-enabled", "yes"])
            .arg("--cluster-config-file")
            .arg(node.dir.join("nodes.conf"))
            .args(["--cluster-node-timeout", NODE_TIMEOUT_MS])
            // Every write reaches the disk before Redis answers it, so a kill loses nothing
            // that was acknowledged.
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .args(["--save", ""])
            // A replica's first sync starts at once rather than after the default 5 s.
            .args(["--repl-diskless-sync-delay", "0"])
            .arg("--logfile")
            .arg(&log)
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|err| not_installed(err, "redis-server"))?;
        node.child = Some(child);
        let port = node.port;
        let start = Instant::now();
        loop {
            let node = &mut self.nodes[index];
            if let Some(child) = node.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    node.child = None;
                    return Err(io::Error::other(format!(
                        "redis-server exited with {status} on port {port}: {}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    )));
                }
            }
            if answers(port) {
                return Ok(());
            }
            if start.elapsed() > START_DEADLINE {
                self.kill_node(port);
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("redis-server did not answer on port {port} in time"),
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `redis-cli --cluster create` over the six nodes: three masters, one replica each.
    fn create(&self) -> io::Result<()> {
        let log_path = self.root.join("create.log");
        let log = File::create(&log_path)?;
        let mut child = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(
                self.nodes
                    .iter()
                    .map(|node| format!("127.0.0.1:{}", node.port)),
            )
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|err| not_installed(err, "redis-cli"))?;
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if start.elapsed() > CREATE_DEADLINE {
                let _ = child.kill();
                let _ = child.wait();
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "redis-cli --cluster create did not finish in time: {}",
                        std::fs::read_to_string(&log_path).unwrap_or_default()
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        if !status.success() {
            return Err(io::Error::other(format!(
                "redis-cli --cluster create exited with {status}: {}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            )));
        }
        Ok(())
    }

    /// Notes each shard's slots and which shard each node is in, from the settled cluster.
    fn record_shards(&mut self) -> io::Result<()> {
        let view =
            parse_nodes(&self.admin::<String>(self.nodes[0].port, &mut cluster_cmd(&["NODES"]))?);
        let mut masters: Vec<&Entry> = view
            .iter()
            .filter(|entry| !entry.slots.is_empty())
            .collect();
        masters.sort_by_key(|entry| entry.slots[0].0);
        if masters.len() != NODES / 2 {
            return Err(io::Error::other(format!(
                "expected {} masters with slots after redis-cli --cluster create, found {}",
                NODES / 2,
                masters.len()
            )));
        }
        self.shards = masters.iter().map(|entry| entry.slots.clone()).collect();
        for node in &mut self.nodes {
            let entry = view.iter().find(|entry| entry.id == node.id);
            let master_id = match entry {
                Some(entry) if entry.master.is_some() => entry.master.clone(),
                Some(entry) => Some(entry.id.clone()),
                None => None,
            };
            node.shard = master_id
                .and_then(|id| masters.iter().position(|master| master.id == id))
                .ok_or_else(|| {
                    io::Error::other(format!(
                        "the node on port {} is in no shard after redis-cli --cluster create",
                        node.port
                    ))
                })?;
        }
        Ok(())
    }

    /// Removes the node's data, and its `nodes.conf` too unless `keep_config`; keeps its log.
    fn wipe(&self, index: usize, keep_config: bool) -> io::Result<()> {
        for entry in std::fs::read_dir(&self.nodes[index].dir)? {
            let path = entry?.path();
            let name = path
                .file_name()
                .and_then(|name| name.to_str())
                .unwrap_or("");
            if name == "redis.log" || (keep_config && name == "nodes.conf") {
                continue;
            }
            if path.is_dir() {
                std::fs::remove_dir_all(&path)?;
            } else {
                std::fs::remove_file(&path)?;
            }
        }
        Ok(())
    }

    fn healthy(&self) -> io::Result<Option<()>> {
        let running: Vec<&Node> = self
            .nodes
            .iter()
            .filter(|node| node.child.is_some())
            .collect();
        let mut agreed: Option<Vec<Role>> = None;
        for (port, view) in self.views()? {
            let info = self.info(port)?;
            if !info.contains("cluster_state:ok")
                || info_field(&info, "cluster_slots_ok") != u64::from(SLOTS)
            {
                return Ok(None);
            }
            let mut roles = Vec::new();
            for node in &running {
                match view.iter().find(|entry| entry.id == node.id) {
                    Some(entry)
                        if entry.port == node.port && !entry.failed() && entry.connected =>
                    {
                        roles.push((entry.id.clone(), entry.master.clone(), entry.slots.clone()))
                    }
                    _ => return Ok(None),
                }
            }
            match &agreed {
                Some(agreed) if *agreed != roles => return Ok(None),
                _ => agreed = Some(roles),
            }
        }
        for (id, master, _) in agreed.unwrap_or_default() {
            let (Some(port), Some(master)) = (self.running_port_of(&id), master) else {
                continue;
            };
            if self.running_port_of(&master).is_some() {
                let replication: String =
                    self.admin(port, redis::cmd("INFO").arg("replication"))?;
                if !replication.contains("master_link_status:up") {
                    return Ok(None);
                }
            }
        }
        Ok(Some(()))
    }

    /// Calls `check` until it gives a value or the deadline passes. An error from `check` (a
    /// node that does not answer, say) counts as "not yet": the cluster may be moving.
    fn wait_until<T>(
        &self,
        what: &str,
        mut check: impl FnMut(&Self) -> io::Result<Option<T>>,
    ) -> io::Result<T> {
        let start = Instant::now();
        loop {
            let last = match check(self) {
                Ok(Some(value)) => return Ok(value),
                Ok(None) => String::new(),
                Err(err) => format!(" (last error: {err})"),
            };
            if start.elapsed() > SETTLE_DEADLINE {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "timed out waiting for {what}{last}; the nodes see: {}",
                        self.describe()
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What each running node says of the cluster, for error messages.
    fn describe(&self) -> String {
        let mut out = String::new();
        for port in self.running_ports_except(0) {
            let state = self
                .info(port)
                .map(|info| {
                    info.lines()
                        .find(|line| line.starts_with("cluster_state"))
                        .unwrap_or("")
                        .trim()
                        .to_owned()
                })
                .unwrap_or_else(|err| err.to_string());
            let nodes = self
                .admin::<String>(port, &mut cluster_cmd(&["NODES"]))
                .unwrap_or_else(|err| err.to_string());
            out.push_str(&format!("\n[port {port}: {state}]\n{}", nodes.trim_end()));
        }
        out
    }

    /// `CLUSTER NODES` of every running node, parsed, with the node's port.
    fn views(&self) -> io::Result<Vec<(u16, Vec<Entry>)>> {
        self.running_ports_except(0)
            .into_iter()
            .map(|port| {
                let nodes: String = self.admin(port, &mut cluster_cmd(&["NODES"]))?;
                Ok((port, parse_nodes(&nodes)))
            })
            .collect()
    }

    fn info(&self, port: u16) -> io::Result<String> {
        self.admin(port, &mut cluster_cmd(&["INFO"]))
    }

    fn key_slot(&self, key: &str) -> io::Result<u16> {
        let port = *self
            .running_ports_except(0)
            .first()
            .ok_or_else(|| io::Error::other("no node of the cluster is running"))?;
        self.admin(port, &mut cluster_cmd(&["KEYSLOT", key]))
    }

    fn running_replica_of(&self, master_id: &str) -> io::Result<Option<u16>> {
        for (_, view) in self.views()? {
            let replica = view
                .iter()
                .filter(|entry| entry.master.as_deref() == Some(master_id) && !entry.failed())
                .find_map(|entry| self.running_port_of(&entry.id));
            if replica.is_some() {
                return Ok(replica);
            }
        }
        Ok(None)
    }

    fn running_port_of(&self, id: &str) -> Option<u16> {
        self.nodes
            .iter()
            .find(|node| node.id == id && node.child.is_some())
            .map(|node| node.port)
    }

    fn running_ports_except(&self, port: u16) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|node| node.child.is_some() && node.port != port)
            .map(|node| node.port)
            .collect()
    }

    fn node(&self, port: u16) -> io::Result<&Node> {
        Ok(&self.nodes[self.index(port)?])
    }

    fn index(&self, port: u16) -> io::Result<usize> {
        self.nodes
            .iter()
            .position(|node| node.port == port)
            .ok_or_else(|| io::Error::other(format!("no node of the cluster is on port {port}")))
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for port in self.ports() {
            self.kill_node(port);
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// A node's place in the cluster as one node sees it: its id, its master's id (a replica's),
/// its slots.
type Role = (String, Option<String>, Vec<(u16, u16)>);

/// One line of `CLUSTER NODES`:
/// `<id> <ip:port@cport> <flags> <master> <ping-sent> <pong-recv> <epoch> <link> <slot>...`.
#[derive(Debug)]
struct Entry {
    id: String,
    /// 0 for a node whose address is unknown (`:0@0`, flag `noaddr`).
    port: u16,
    flags: Vec<String>,
    /// The id of its master, for a replica.
    master: Option<String>,
    connected: bool,
    slots: Vec<(u16, u16)>,
}

impl Entry {
    fn failed(&self) -> bool {
        self.flags
            .iter()
            .any(|flag| matches!(flag.as_str(), "fail" | "fail?" | "handshake" | "noaddr"))
    }

    fn serves(&self, slot: u16) -> bool {
        self.flags.iter().any(|flag| flag == "master")
            && self
                .slots
                .iter()
                .any(|&(start, end)| (start..=end).contains(&slot))
    }
}

fn parse_nodes(text: &str) -> Vec<Entry> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 8 {
                return None;
            }
            let port = fields[1]
                .split('@')
                .next()
                .and_then(|addr| addr.rsplit(':').next())
                .and_then(|port| port.parse().ok())
                .unwrap_or(0);
            let slots = fields[8..]
                .iter()
                // `[slot->-id]` and `[slot-<-id]` are slots being migrated: not served here.
                .filter(|slot| !slot.starts_with('['))
                .filter_map(|slot| match slot.split_once('-') {
                    Some((start, end)) => Some((start.parse().ok()?, end.parse().ok()?)),
                    None => slot.parse().ok().map(|slot| (slot, slot)),
                })
                .collect();
            Some(Entry {
                id: fields[0].to_owned(),
                port,
                flags: fields[2].split(',').map(str::to_owned).collect(),
                master: (fields[3] != "-").then(|| fields[3].to_owned()),
                connected: fields[7] == "connected",
                slots,
            })
        })
        .collect()
}

/// A number from `CLUSTER INFO`, 0 if absent.
fn info_field(info: &str, name: &str) -> u64 {
    info.lines()
        .find_map(|line| line.trim().strip_prefix(name)?.strip_prefix(':'))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0)
}

fn cluster_cmd(args: &[&str]) -> redis::Cmd {
    let mut cmd = redis::cmd("CLUSTER");
    for arg in args {
        cmd.arg(*arg);
    }
    cmd
}

fn meet(port: u16) -> redis::Cmd {
    let mut cmd = cluster_cmd(&["MEET", "127.0.0.1"]);
    cmd.arg(port);
    cmd
}

fn url(port: u16) -> String {
    format!("redis://127.0.0.1:{port}")
}

fn not_installed(err: io::Error, program: &str) -> io::Error {
    if err.kind() == io::ErrorKind::NotFound {
        io::Error::new(
            err.kind(),
            format!(
                "{program} is not installed: the Redis Cluster tests need redis-server and \
                 redis-cli (apt-get install redis-server)"
            ),
        )
    } else {
        err
    }
}

/// `count` ports that are free on 127.0.0.1 along with their bus ports (port + 10000).
///
/// Taken below Linux's ephemeral range (32768 and up), bus ports included, so that no outgoing
/// connection takes one between this check and the node's bind; spread by process id and a
/// counter, so that clusters started at once, in one test binary or several, pick apart.
fn free_ports(count: usize) -> io::Result<Vec<u16>> {
    const LOW: usize = 10_000;
    const SPAN: usize = 12_000;
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let offset = (std::process::id() as usize).wrapping_mul(613) % SPAN;
    // Held until all are found, so that no two of them are the same.
    let mut held = Vec::new();
    for _ in 0..SPAN {
        let port = (LOW + (offset + NEXT.fetch_add(1, Ordering::Relaxed)) % SPAN) as u16;
        let (Ok(node), Ok(bus)) = (
            TcpListener::bind((Ipv4Addr::LOCALHOST, port)),
            TcpListener::bind((Ipv4Addr::LOCALHOST, port + BUS_OFFSET)),
        ) else {
            continue;
        };
        held.push((port, node, bus));
        if held.len() == count {
            return Ok(held.into_iter().map(|(port, _, _)| port).collect());
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrNotAvailable,
        format!("found no {count} free ports with free bus ports (port + {BUS_OFFSET})"),
    ))
}

/// Whether a node answers `PING` on `port` (it does before it has joined a cluster).
fn answers(port: u16) -> bool {
    super::ready(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
}
