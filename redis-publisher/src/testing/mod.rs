//! A throwaway `redis-server` for tests and benches: a child process on a free loopback port,
//! with its data in a temporary folder of its own, that a test can kill and start again on the
//! same port with its data (AOF, written on every command). Behind the `testing` feature.
//!
//! Needs Debian's `redis-server` (`apt-get install redis-server`) on the `PATH`; without it,
//! [`RedisServer::start`] fails with an error that says so.

mod cluster;
pub use cluster::RedisCluster;

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long a server may take to accept connections before its start counts as failed.
const START_DEADLINE: Duration = Duration::from_secs(15);

/// A `redis-server` child process. Dropping it kills the server and removes its data.
///
/// ```no_run
/// use outer_redis::testing::RedisServer;
/// let mut redis = RedisServer::start().unwrap();
/// let url = redis.url(); // redis://127.0.0.1:<port>
/// redis.kill();
/// redis.restart().unwrap(); // same port, same data
/// ```
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server on a free port with an empty data folder and waits until it answers.
    pub fn start() -> io::Result<Self> {
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "outer-redis-{}-{}",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)?;
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
            .local_addr()?
            .port();
        let mut server = Self {
            port,
            dir,
            child: None,
        };
        server.restart()?;
        Ok(server)
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server at once (SIGKILL), as a crash does; its data stays on disk.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server (again) on the same port with the data it had, and waits until it
    /// answers. Kills the running one first, if any.
    pub fn restart(&mut self) -> io::Result<()> {
        self.kill();
        self.spawn()
    }

    /// Kills the server and starts it again on the same port with no data, as a Redis without
    /// persistence comes back after a crash: every stream and its history are gone.
    pub fn restart_empty(&mut self) -> io::Result<()> {
        self.kill();
        for entry in std::fs::read_dir(&self.dir)? {
            let path = entry?.path();
            if path.is_dir() {
                std::fs::remove_dir_all(&path)?;
            } else if path.file_name().is_some_and(|name| name != "redis.log") {
                std::fs::remove_file(&path)?;
            }
        }
        self.spawn()
    }

    fn spawn(&mut self) -> io::Result<()> {
        let log = self.dir.join("redis.log");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(&self.dir)
            // Every write reaches the disk before Redis answers it, so a kill loses nothing
            // that was acknowledged.
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .args(["--save", ""])
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|err| {
                if err.kind() == io::ErrorKind::NotFound {
                    io::Error::new(
                        err.kind(),
                        "redis-server is not installed: the Redis tests and benches need it \
                         (apt-get install redis-server)",
                    )
                } else {
                    err
                }
            })?;
        self.child = Some(child);
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let start = Instant::now();
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    self.child = None;
                    return Err(io::Error::other(format!(
                        "redis-server exited with {status} on port {}: {}",
                        self.port,
                        std::fs::read_to_string(&log).unwrap_or_default()
                    )));
                }
            }
            if ready(addr) {
                return Ok(());
            }
            if start.elapsed() > START_DEADLINE {
                self.kill();
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("redis-server did not answer on port {} in time", self.port),
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The names of the clients connected now (`CLIENT LIST`), empty for unnamed ones.
    pub fn client_names(&self) -> io::Result<Vec<String>> {
        let list: String = self
            .query(redis::cmd("CLIENT").arg("LIST"))
            .map_err(io::Error::other)?;
        Ok(list
            .lines()
            .filter_map(|line| {
                line.split(' ')
                    .find_map(|field| field.strip_prefix("name="))
                    .map(str::to_owned)
            })
            .collect())
    }

    /// Runs one command on a connection of its own.
    pub fn query<V: redis::FromRedisValue>(&self, cmd: &mut redis::Cmd) -> redis::RedisResult<V> {
        let client = redis::Client::open(self.url())?;
        let mut conn = client.get_connection_with_timeout(Duration::from_secs(5))?;
        cmd.query(&mut conn)
    }
}

/// Whether Redis answers `PING` on `addr`.
pub(crate) fn ready(addr: SocketAddr) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut reply = [0u8; 7];
    // While loading its data, Redis answers -LOADING: not ready yet.
    stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
