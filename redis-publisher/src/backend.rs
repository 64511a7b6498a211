//! Where Redis is: one server, or a Redis Cluster (Valkey's too) known by its seed nodes; the
//! URL that says which, and the two kinds of connection the publisher opens to it. Not what is
//! sent on them: that is `stream`'s.
//!
//! - The **command connection** (publishes, catch-up reads, where a reader starts) is shared by
//!   every call: one multiplexed connection to a single server, or the redis crate's cluster
//!   connection, which routes each command by its key's slot and follows `MOVED` and `ASK`.
//!   Every command the publisher sends names exactly one key (its topic's stream), so no
//!   command spans slots.
//! - A **reader connection** is a topic's own, because its reads block: a plain connection to
//!   the server, or to the master that owns the topic's slot. That master is found by asking
//!   any seed for the key and following its redirect, and found again whenever the reader's
//!   connection breaks or answers with a redirect (a failover, a slot moved to another shard).

use std::fmt;
use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{
    AsyncConnectionConfig, Client, Cmd, ConnectionAddr, ConnectionInfo, IntoConnectionInfo,
    Pipeline, RedisError, RedisFuture, RedisResult, Value,
};

/// The scheme of a Redis Cluster URL: `redis+cluster://host1:port1,host2:port2`. The redis
/// crate knows no URL for a cluster (it takes a list of seeds), and a lone seed is also a valid
/// single-server URL, so the scheme says it rather than a guess.
const CLUSTER_SCHEMES: [(&str, &str); 4] = [
    ("redis+cluster://", "redis://"),
    ("rediss+cluster://", "rediss://"),
    ("valkey+cluster://", "valkey://"),
    ("valkeys+cluster://", "valkeys://"),
];

/// How many redirects a reader follows to find its topic's master before it backs off: a
/// slot moves at most once at a time (from its master to the importing one).
const MOST_HOPS: usize = 4;

/// One Redis server, or a cluster.
// One per publisher: the size of its larger variant costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Backend {
    Single(Client),
    Cluster {
        client: ClusterClient,
        /// The seed nodes, from the URL: where a reader starts looking for its master, and the
        /// credentials and database for the connections it opens to any node.
        seeds: Vec<ConnectionInfo>,
    },
}

/// Timeouts and retries for the connections, from the publisher's configuration.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timeouts {
    /// How long a reply may take.
    pub(crate) response: Duration,
    /// The reconnect backoff's first and longest wait.
    pub(crate) backoff: (Duration, Duration),
}

/// How long opening a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

impl Backend {
    /// Reads `url`: `redis://` (or `rediss://`, `valkey://`, `redis+unix://`...) for one server,
    /// `redis+cluster://[user:password@]host1:port1,host2:port2[/db]` for a cluster. Connects
    /// to nothing yet.
    pub(crate) fn open(url: &str, timeouts: Timeouts) -> RedisResult<Self> {
        let Some(seeds) = cluster_seeds(url)? else {
            return Client::open(url).map(Backend::Single);
        };
        let seeds = seeds
            .iter()
            .map(|seed| seed.as_str().into_connection_info())
            .collect::<RedisResult<Vec<_>>>()?;
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        // The crate's defaults wait up to minutes on a dead shard (16 retries, waits of 1.28 s
        // growing to 655 s) and have no response timeout at all: bound both by ours, so that a
        // command fails in about `response` and the publisher's own reconnect wait takes over.
        let client = ClusterClient::builder(seeds.clone())
            .retries(6)
            .min_retry_wait(millis(timeouts.backoff.0).max(1))
            .max_retry_wait(millis(timeouts.backoff.1).max(2))
            .connection_timeout(CONNECT_TIMEOUT)
            .response_timeout(timeouts.response)
            // Without an overall timeout, a command whose attempt timed out can wait for the
            // next command to be sent before it is retried (redis 1.8).
            .overall_response_timeout(Some(timeouts.response))
            .build()?;
        Ok(Backend::Cluster { client, seeds })
    }

    /// A new command connection.
    pub(crate) async fn command_connection(&self, timeouts: Timeouts) -> RedisResult<Connection> {
        match self {
            Backend::Single(client) => connect(client, timeouts.response)
                .await
                .map(Connection::Single),
            Backend::Cluster { client, .. } => {
                client.get_async_connection().await.map(Connection::Cluster)
            }
        }
    }

    /// A new connection of its own for `key`'s reader, with `timeout` for each reply (its
    /// blocking reads included): to the server, or to the master of `key`'s slot.
    pub(crate) async fn reader_connection(
        &self,
        key: &str,
        timeout: Duration,
    ) -> RedisResult<ReaderConnection> {
        match self {
            Backend::Single(client) => Ok(ReaderConnection {
                conn: connect(client, timeout).await?,
                asking: false,
            }),
            Backend::Cluster { seeds, .. } => master_connection(seeds, key, timeout).await,
        }
    }
}

impl fmt::Debug for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Backend::Single(client) => write!(f, "{}", client.get_connection_info().addr()),
            Backend::Cluster { seeds, .. } => {
                let addrs: Vec<String> = seeds.iter().map(|s| s.addr().to_string()).collect();
                write!(f, "cluster {}", addrs.join(","))
            }
        }
    }
}

/// The seeds of a cluster URL as single-node URLs (`None` for any other URL):
/// `redis+cluster://user:pw@a:1,b:2/0?protocol=resp3` gives `redis://user:pw@a:1/0?...` and
/// `redis://user:pw@b:2/0?...`.
fn cluster_seeds(url: &str) -> RedisResult<Option<Vec<String>>> {
    let Some((scheme, rest)) = CLUSTER_SCHEMES
        .iter()
        .find_map(|(cluster, single)| url.strip_prefix(cluster).map(|rest| (*single, rest)))
    else {
        return Ok(None);
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => (format!("{userinfo}@"), hosts),
        None => (String::new(), authority),
    };
    let seeds: Vec<String> = hosts
        .split(',')
        .filter(|host| !host.is_empty())
        .map(|host| format!("{scheme}{userinfo}{host}{tail}"))
        .collect();
    if seeds.is_empty() {
        return Err(RedisError::from((
            redis::ErrorKind::InvalidClientConfig,
            "a Redis Cluster URL names at least one node",
            "redis+cluster://host1:port1,host2:port2".to_string(),
        )));
    }
    Ok(Some(seeds))
}

/// Opens a multiplexed connection with these timeouts. Redis picks tokio's or async-io's
/// sockets by the caller's context (see `runtime`).
async fn connect(
    client: &Client,
    response_timeout: Duration,
) -> RedisResult<MultiplexedConnection> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(response_timeout));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

/// A connection to the master of `key`'s slot: asks each seed in turn for the key and follows
/// its redirects (`MOVED` to the slot's master; `ASK` to the master the slot is moving to,
/// which then answers for the key only after `ASKING`).
async fn master_connection(
    seeds: &[ConnectionInfo],
    key: &str,
    timeout: Duration,
) -> RedisResult<ReaderConnection> {
    let mut failure = None;
    for seed in seeds {
        let mut node = seed.clone();
        let mut asking = false;
        for _ in 0..MOST_HOPS {
            let mut reader = match connect(&Client::open(node.clone())?, timeout).await {
                Ok(conn) => ReaderConnection { conn, asking },
                Err(err) => {
                    failure = Some(err);
                    break;
                }
            };
            // Any command on the key: only the node serving its slot answers it. (Sent alone,
            // not in a pipeline, whose errors would hide the redirect.)
            let probe = match reader.ask().await {
                Ok(()) => {
                    redis::cmd("EXISTS")
                        .arg(key)
                        .query_async::<Value>(&mut reader.conn)
                        .await
                }
                Err(err) => Err(err),
            };
            match probe {
                Ok(_) => return Ok(reader),
                Err(err) => match redirect(&err, seed) {
                    Some((to, ask)) => {
                        node = to;
                        asking = ask;
                    }
                    None => {
                        failure = Some(err);
                        break;
                    }
                },
            }
        }
    }
    Err(failure.unwrap_or_else(|| {
        RedisError::from((
            redis::ErrorKind::Io,
            "no Redis Cluster node serves the key",
            key.chars().take(128).collect::<String>(),
        ))
    }))
}

/// Where a `MOVED` or `ASK` sends the command, with the seed's credentials and database, and
/// whether it was an `ASK`.
pub(crate) fn redirect(err: &RedisError, seed: &ConnectionInfo) -> Option<(ConnectionInfo, bool)> {
    let (node, _slot) = err.redirect_node()?;
    let (host, port) = node.rsplit_once(':')?;
    let port = port.parse().ok()?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let addr = match seed.addr() {
        ConnectionAddr::TcpTls {
            insecure,
            tls_params,
            ..
        } => ConnectionAddr::TcpTls {
            host,
            port,
            insecure: *insecure,
            tls_params: tls_params.clone(),
        },
        _ => ConnectionAddr::Tcp(host, port),
    };
    let ask = err.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::Ask);
    Some((seed.clone().set_addr(addr), ask))
}

/// A reader's connection, and whether each command on it must be preceded by `ASKING` (its
/// topic's slot is moving to this node, which has the key already).
pub(crate) struct ReaderConnection {
    pub(crate) conn: MultiplexedConnection,
    pub(crate) asking: bool,
}

impl ReaderConnection {
    /// How a read is made atomic on it: a transaction, unless the slot is moving here and each
    /// command needs its `ASKING` (see `stream::Atomic`).
    pub(crate) fn atomic(&self) -> crate::stream::Atomic {
        if self.asking {
            crate::stream::Atomic::Script
        } else {
            crate::stream::Atomic::Transaction
        }
    }

    /// Sends `ASKING` if the next command needs it. Nothing else is sent on this connection
    /// meanwhile: it is the reader's alone, and the reader sends one command at a time.
    pub(crate) async fn ask(&mut self) -> RedisResult<()> {
        if self.asking {
            redis::cmd("ASKING")
                .query_async::<Value>(&mut self.conn)
                .await?;
        }
        Ok(())
    }
}

/// The command connection: one server's, or the cluster's. Cheap to clone (both share their
/// sockets).
#[derive(Clone)]
pub(crate) enum Connection {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl Connection {
    /// How a read is made atomic on it (see `stream::Atomic`).
    pub(crate) fn atomic(&self) -> crate::stream::Atomic {
        match self {
            Connection::Single(_) => crate::stream::Atomic::Transaction,
            Connection::Cluster(_) => crate::stream::Atomic::Script,
        }
    }
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Single(conn) => conn.req_packed_command(cmd),
            Connection::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            Connection::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(conn) => conn.get_db(),
            Connection::Cluster(conn) => conn.get_db(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_url_names_its_seeds_with_the_same_credentials_and_database() {
        assert_eq!(cluster_seeds("redis://127.0.0.1:6379").unwrap(), None);
        assert_eq!(
            cluster_seeds("redis+cluster://u:p@10.0.0.1:7000,10.0.0.2:7001/2?protocol=resp3")
                .unwrap(),
            Some(vec![
                "redis://u:p@10.0.0.1:7000/2?protocol=resp3".to_string(),
                "redis://u:p@10.0.0.2:7001/2?protocol=resp3".to_string(),
            ])
        );
        assert_eq!(
            cluster_seeds("valkey+cluster://a:1").unwrap(),
            Some(vec!["valkey://a:1".to_string()])
        );
        assert!(cluster_seeds("redis+cluster://").is_err());
        let timeouts = Timeouts {
            response: Duration::from_secs(1),
            backoff: (Duration::from_millis(50), Duration::from_secs(1)),
        };
        assert!(matches!(
            Backend::open("redis+cluster://127.0.0.1:7000,127.0.0.1:7001", timeouts),
            Ok(Backend::Cluster { ref seeds, .. }) if seeds.len() == 2
        ));
        assert!(Backend::open("redis+cluster://not a host:x", timeouts).is_err());
    }

    fn server_error(reply: &str) -> RedisError {
        match redis::parse_redis_value(format!("-{reply}\r\n").as_bytes()).unwrap() {
            Value::ServerError(err) => err.into(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_redirect_goes_to_the_node_named_with_the_seeds_credentials() {
        let seed = "redis://user:pw@127.0.0.1:7000/3"
            .into_connection_info()
            .unwrap();
        let (moved, ask) = redirect(&server_error("MOVED 3999 10.0.0.2:7002"), &seed).unwrap();
        assert!(!ask);
        assert_eq!(moved.addr(), &ConnectionAddr::Tcp("10.0.0.2".into(), 7002));
        let settings = moved.redis_settings();
        assert_eq!(
            (settings.username(), settings.password(), settings.db()),
            (Some("user"), Some("pw"), 3)
        );
        let (asked, ask) = redirect(&server_error("ASK 3999 10.0.0.3:7003"), &seed).unwrap();
        assert!(ask);
        assert_eq!(asked.addr(), &ConnectionAddr::Tcp("10.0.0.3".into(), 7003));
        assert!(redirect(&server_error("CLUSTERDOWN The cluster is down"), &seed).is_none());
    }
}
