//! The load run: N subscribers on their own connections (SSE responses, or WebSockets for the
//! `-ws` protocols; for the `-h2` protocols SSE responses over HTTP/2, on their own connections
//! or several streams to a connection), a publisher, and what they measure.
//!
//! A run goes: sample the server's RSS; connect the N subscribers (at most `connect_concurrency`
//! at a time) and time it; wait `settle` and sample the RSS again (idle subscribers); post
//! warm-up events until every subscriber has received one (so every subscription is live);
//! then the *load* phase and the optional *paced* phase. Each post's title carries its phase and
//! its send time (nanoseconds since the run's epoch, in this process), so each subscriber
//! measures publish-to-receive latency on its own.
//!
//! The load phase posts as fast as a window allows, from `publishers` connections at once: post
//! `k` waits until every subscriber has received post `k - window`. That keeps every server
//! within its per-subscriber buffers (oRPC's drops beyond 100, tokio's broadcast lags), so
//! deliveries per second compare like with like and nothing is dropped. The paced phase posts at
//! a fixed rate below capacity, for latency.

use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use outer_core::sse::SseDecoder;
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{Notify, Semaphore};

use crate::histogram::Histogram;
use crate::http::{self, parse_head, read_more, Connection, Dechunker, Head, HttpError, Url};
use crate::http2;
use crate::procfs;
use crate::protocol::{parse_stamp, stamped_title, Protocol};
use crate::ws;

/// Completion counters per post id, modulo this: must exceed any window.
const RING: u64 = 1 << 14;

/// Subscriber connections per source address under [`Sources::Auto`]: below the ~28,000 ports
/// of Linux's default ephemeral range (32768-60999), with room for what else is connected.
pub const CONNECTIONS_PER_SOURCE: usize = 25_000;

/// The local addresses subscribers connect from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Sources {
    /// The kernel's choice, unless the subscribers need more connections than
    /// [`CONNECTIONS_PER_SOURCE`] and the server is on IPv4 loopback: then
    /// `ceil(connections / CONNECTIONS_PER_SOURCE)` addresses from 127.0.0.2 up.
    #[default]
    Auto,
    /// These, in turn (subscriber connection `i` from `list[i % len]`); none: the kernel's
    /// choice.
    List(Vec<IpAddr>),
}

impl Sources {
    /// The addresses `connections` subscriber connections to `server` come from (none: the
    /// kernel's choice).
    ///
    /// ```
    /// use outer_bench::load::Sources;
    /// let local = "127.0.0.1:3000".parse().unwrap();
    /// assert!(Sources::Auto.resolve(local, 25_000).is_empty());
    /// assert_eq!(Sources::Auto.resolve(local, 100_000).len(), 4);
    /// assert_eq!(Sources::Auto.resolve(local, 100_001).len(), 5);
    /// assert!(Sources::Auto.resolve("10.0.0.1:3000".parse().unwrap(), 100_000).is_empty());
    /// ```
    pub fn resolve(&self, server: SocketAddr, connections: usize) -> Vec<IpAddr> {
        match self {
            Self::List(list) => list.clone(),
            Self::Auto if connections > CONNECTIONS_PER_SOURCE && server.ip().is_loopback() => {
                match server.ip() {
                    IpAddr::V4(_) => loopback_sources(connections.div_ceil(CONNECTIONS_PER_SOURCE)),
                    // IPv6 has one loopback address.
                    IpAddr::V6(_) => Vec::new(),
                }
            }
            Self::Auto => Vec::new(),
        }
    }
}

impl std::str::FromStr for Sources {
    type Err = String;

    /// `auto`, `none`, a count `K` (K loopback addresses from 127.0.0.2 up), or addresses
    /// separated by commas.
    ///
    /// ```
    /// use outer_bench::load::Sources;
    /// let ip = |text: &str| text.parse().unwrap();
    /// assert_eq!("auto".parse(), Ok(Sources::Auto));
    /// assert_eq!("none".parse(), Ok(Sources::List(vec![])));
    /// assert_eq!("2".parse(), Ok(Sources::List(vec![ip("127.0.0.2"), ip("127.0.0.3")])));
    /// assert_eq!("10.0.0.1,10.0.0.2".parse(), Ok(Sources::List(vec![ip("10.0.0.1"), ip("10.0.0.2")])));
    /// assert!("127.0.0.2,nowhere".parse::<Sources>().is_err());
    /// ```
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "auto" => return Ok(Self::Auto),
            "none" | "0" => return Ok(Self::List(Vec::new())),
            _ => {}
        }
        if let Ok(count) = text.parse::<usize>() {
            return Ok(Self::List(loopback_sources(count)));
        }
        text.split(',')
            .map(|one| {
                one.trim()
                    .parse()
                    .map_err(|_| format!("{one}: not an IP address"))
            })
            .collect::<Result<_, _>>()
            .map(Self::List)
    }
}

/// `count` loopback addresses from 127.0.0.2 up (127.0.0.1 stays the publishers').
fn loopback_sources(count: usize) -> Vec<IpAddr> {
    let first = u32::from(Ipv4Addr::new(127, 0, 0, 2));
    (0..count.min(1 << 23))
        .map(|i| IpAddr::V4(Ipv4Addr::from(first + i as u32)))
        .collect()
}

/// What each SSE subscriber reads into: sized as the read buffer each had of its own before,
/// so that reads come as they did.
const READ_BYTES: usize = 8192;

thread_local! {
    /// The buffer the SSE subscribers on this thread read into, one at a time: their decoders
    /// keep what a read leaves unfinished, so none needs a buffer of its own between reads (at
    /// 100,000 subscribers, 8 KiB each would be 800 MB).
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_BYTES].into_boxed_slice());
}

/// What to run.
#[derive(Clone, Debug)]
pub struct Config {
    /// The server's base URL for the protocol (`http://127.0.0.1:3000/rpc`).
    pub url: Url,
    /// The protocol spoken.
    pub protocol: Protocol,
    /// A name for the server in the report.
    pub label: String,
    /// How many subscribers, one connection each (for the `-h2` protocols, one stream each, on
    /// connections of [`Config::streams_per_connection`]).
    pub subscribers: usize,
    /// For the `-h2` protocols: subscribers' streams on each HTTP/2 connection (1: a connection
    /// each, as over HTTP/1.1; 100: multiplexed, as a browser's page or a gateway does).
    pub streams_per_connection: usize,
    /// The load phase ends after this many posts (if set)...
    pub events: Option<u64>,
    /// ...or after this long (if set), whichever comes first.
    pub duration: Option<Duration>,
    /// Posts per second in the load phase; 0: as fast as the window allows.
    pub rate: f64,
    /// Posts in flight at once, each on its own keep-alive connection: more than one keeps a
    /// server's fan-out, not a post's round trip, the limit at small N.
    pub publishers: usize,
    /// At most this many posts not yet received by every subscriber.
    pub window: u64,
    /// Posts per second in the paced phase.
    pub paced_rate: f64,
    /// How long the paced phase lasts; zero skips it.
    pub paced_duration: Duration,
    /// Subscribers connecting at once.
    pub connect_concurrency: usize,
    /// A subscriber not connected (response head read) this long after the run began counts
    /// as failed to connect, and the run goes on with those that did.
    pub connect_timeout: Duration,
    /// The server's process id, for its RSS and CPU time.
    pub server_pid: Option<u32>,
    /// The length of each post's title, in bytes.
    pub title_len: usize,
    /// How long subscribers sit idle before the RSS is sampled.
    pub settle: Duration,
    /// How long the publisher waits for one post to reach every subscriber before it counts a
    /// stall and goes on (a lost event never completes).
    pub stall: Duration,
    /// Post over WebSocket (the protocol's `post.create` call frame, one socket per publisher)
    /// rather than HTTP: for servers that take calls over WebSocket only, like the reference
    /// servers in `tests/fixtures/reference-ws`. Off by default: the figures compare fan-out,
    /// with posts made the same way for SSE and WebSocket subscribers.
    pub post_over_websocket: bool,
    /// The local addresses the subscribers connect from (the publishers connect from the
    /// kernel's choice).
    pub source_addresses: Sources,
}

impl Config {
    /// A configuration with the defaults for everything but the target.
    pub fn new(url: Url, protocol: Protocol, subscribers: usize) -> Self {
        Self {
            url,
            protocol,
            label: String::from("server"),
            subscribers,
            streams_per_connection: 1,
            events: None,
            duration: Some(Duration::from_secs(10)),
            rate: 0.0,
            publishers: 4,
            window: 32,
            paced_rate: 0.0,
            paced_duration: Duration::ZERO,
            connect_concurrency: 256,
            connect_timeout: Duration::from_secs(120),
            server_pid: None,
            title_len: 80,
            settle: Duration::from_secs(1),
            stall: Duration::from_secs(5),
            post_over_websocket: false,
            source_addresses: Sources::Auto,
        }
    }
}

/// One phase's figures.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PhaseReport {
    /// Posts published.
    pub events: u64,
    /// Events received, summed over subscribers.
    pub deliveries: u64,
    /// From the first post to the last delivery, in seconds.
    pub seconds: f64,
    /// From the first post to the end of the phase (the last post complete), over which the
    /// CPU time was measured.
    pub wall_seconds: f64,
    /// Publish-to-receive latency, microseconds: p50, p99, max.
    pub latency_us: [f64; 3],
    /// Posts that did not reach every subscriber within the stall timeout.
    pub stalls: u64,
    /// CPU time over wall time of this process (1.0 = one core busy).
    pub generator_cores: f64,
    /// The same for the server, when its pid is known.
    pub server_cores: Option<f64>,
    /// The part of `server_cores` spent in the kernel (system calls: mostly socket writes).
    pub server_system_cores: Option<f64>,
}

impl PhaseReport {
    /// Deliveries per second.
    pub fn deliveries_per_second(&self) -> f64 {
        if self.seconds > 0.0 {
            self.deliveries as f64 / self.seconds
        } else {
            0.0
        }
    }

    /// CPU time per delivery in microseconds, for a process that used `cores` over the phase's
    /// wall time: a cost that competing load on the machine barely moves, unlike rates.
    pub fn cpu_per_delivery(&self, cores: Option<f64>) -> f64 {
        match cores {
            Some(cores) if self.deliveries > 0 => {
                cores * self.wall_seconds * 1e6 / self.deliveries as f64
            }
            _ => 0.0,
        }
    }

    fn to_json(&self) -> serde_json::Value {
        json!({
            "events": self.events,
            "deliveries": self.deliveries,
            "seconds": round(self.seconds, 3),
            "deliveries_per_s": round(self.deliveries_per_second(), 0),
            "events_per_s": round(self.events as f64 / self.seconds.max(1e-9), 1),
            "latency_us": { "p50": round(self.latency_us[0], 1), "p99": round(self.latency_us[1], 1), "max": round(self.latency_us[2], 1) },
            "stalls": self.stalls,
            "generator_cores": round(self.generator_cores, 2),
            "server_cores": self.server_cores.map(|c| round(c, 2)),
            "generator_cpu_us_per_delivery": round(self.cpu_per_delivery(Some(self.generator_cores)), 2),
            "server_cpu_us_per_delivery": self.server_cores.map(|c| round(self.cpu_per_delivery(Some(c)), 2)),
            "server_system_cpu_us_per_delivery": self.server_system_cores.map(|c| round(self.cpu_per_delivery(Some(c)), 2)),
        })
    }
}

/// A run's figures.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// The server's name.
    pub label: String,
    /// The protocol spoken.
    pub protocol: String,
    /// Subscribers asked for.
    pub subscribers: usize,
    /// Subscribers that connected.
    pub connected: usize,
    /// Streams per HTTP/2 connection, for the `-h2` protocols.
    pub streams_per_connection: Option<usize>,
    /// Connections posting at once in the load phase (on a first-in-first-out executor each
    /// gets about one turn per round of subscriber writes, so this bounds posts per round).
    pub publishers: usize,
    /// The machine's 1-minute load average when the run started (other work competes for the
    /// cores above about 0.1 plus what the run itself adds).
    pub load_average: Option<f64>,
    /// Seconds to connect them all (up to the response head of each).
    pub connect_seconds: f64,
    /// The server's RSS before any subscriber, KiB.
    pub rss_before_kib: Option<u64>,
    /// The server's RSS with every subscriber connected and idle, KiB.
    pub rss_idle_kib: Option<u64>,
    /// The server's RSS after the run, KiB.
    pub rss_after_kib: Option<u64>,
    /// The generator's own RSS with every subscriber connected and idle, KiB.
    pub generator_rss_idle_kib: Option<u64>,
    /// Source addresses the subscribers connected from (0: the kernel's choice, one address).
    pub source_addresses: usize,
    /// Events missing from a subscriber's sequence of ids (after its first), summed.
    pub lost: u64,
    /// Events that came with an id at or below one already seen, summed.
    pub out_of_order: u64,
    /// Streams that ended or failed before the run did.
    pub ended_early: u64,
    /// The load phase.
    pub load: PhaseReport,
    /// The paced phase, with its rate, if run.
    pub paced: Option<(f64, PhaseReport)>,
}

impl Report {
    /// Server RSS per idle subscriber, bytes.
    pub fn rss_per_idle_subscriber(&self) -> Option<f64> {
        let (before, idle) = (self.rss_before_kib?, self.rss_idle_kib?);
        (self.connected > 0)
            .then(|| (idle.saturating_sub(before) * 1024) as f64 / self.connected as f64)
    }

    /// The report as one JSON line.
    pub fn to_json(&self) -> String {
        json!({
            "label": self.label,
            "protocol": self.protocol,
            "subscribers": self.subscribers,
            "connected": self.connected,
            "streams_per_connection": self.streams_per_connection,
            "publishers": self.publishers,
            "load_average": self.load_average,
            "connect_s": round(self.connect_seconds, 3),
            "rss_before_kib": self.rss_before_kib,
            "rss_idle_kib": self.rss_idle_kib,
            "rss_after_kib": self.rss_after_kib,
            "rss_per_idle_subscriber_bytes": self.rss_per_idle_subscriber().map(|b| round(b, 0)),
            "generator_rss_idle_kib": self.generator_rss_idle_kib,
            "source_addresses": self.source_addresses,
            "lost": self.lost,
            "out_of_order": self.out_of_order,
            "ended_early": self.ended_early,
            "load": self.load.to_json(),
            "paced": self.paced.as_ref().map(|(rate, phase)| {
                let mut value = phase.to_json();
                value["rate"] = json!(rate);
                value
            }),
        })
        .to_string()
    }

    /// The report as a line for people.
    pub fn to_human(&self) -> String {
        let l = &self.load;
        let mut line = format!(
            "{} {}{} N={} (connected {}): connect {:.2} s{}, RSS/idle sub {}{}; load: {:.0} deliveries/s ({} posts in {:.1} s), latency p50 {:.2} ms p99 {:.2} ms max {:.2} ms, CPU server {} gen {:.2} cores, {} / {:.2} µs per delivery",
            self.label,
            self.protocol,
            self.streams_per_connection
                .filter(|&k| k > 1)
                .map_or(String::new(), |k| format!(" ({k} streams per connection)")),
            self.subscribers,
            self.connected,
            self.connect_seconds,
            match self.source_addresses {
                0 => String::new(),
                k => format!(" from {k} source addresses"),
            },
            self.rss_per_idle_subscriber()
                .map_or("?".into(), |b| format!("{:.1} KiB", b / 1024.0)),
            self.generator_rss_idle_kib
                .map_or(String::new(), |kib| format!(" (generator {:.0} MiB)", kib as f64 / 1024.0)),
            l.deliveries_per_second(),
            l.events,
            l.seconds,
            l.latency_us[0] / 1000.0,
            l.latency_us[1] / 1000.0,
            l.latency_us[2] / 1000.0,
            l.server_cores.map_or("?".into(), |c| format!("{c:.2}")),
            l.generator_cores,
            l.server_cores
                .map_or("?".into(), |c| format!("{:.2}", l.cpu_per_delivery(Some(c)))),
            l.cpu_per_delivery(Some(l.generator_cores)),
        );
        if let Some((rate, p)) = &self.paced {
            line.push_str(&format!(
                "; paced {rate}/s: p50 {:.2} ms p99 {:.2} ms max {:.2} ms, server {} µs CPU per delivery ({} in the kernel)",
                p.latency_us[0] / 1000.0,
                p.latency_us[1] / 1000.0,
                p.latency_us[2] / 1000.0,
                p.server_cores
                    .map_or("?".into(), |c| format!("{:.2}", p.cpu_per_delivery(Some(c)))),
                p.server_system_cores
                    .map_or("?".into(), |c| format!("{:.2}", p.cpu_per_delivery(Some(c)))),
            ));
        }
        if self.lost + self.out_of_order + self.ended_early + l.stalls > 0 {
            line.push_str(&format!(
                "; LOST {} out-of-order {} ended-early {} stalls {}",
                self.lost, self.out_of_order, self.ended_early, l.stalls
            ));
        }
        line
    }
}

fn round(value: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (value * scale).round() / scale
}

/// The phases a post can belong to, as its title says.
const WARM_UP: u8 = 0;
const LOAD: u8 = 1;
const PACED: u8 = 2;

#[derive(Debug, Default)]
struct PhaseStats {
    latency: Histogram,
    deliveries: AtomicU64,
    /// Nanoseconds since the epoch of the latest delivery.
    last: AtomicU64,
}

/// What the subscribers and the publisher share.
#[derive(Debug)]
struct Shared {
    protocol: Protocol,
    epoch: Instant,
    /// Subscribers that connected: the count a post must reach to be complete.
    subscribers: AtomicU32,
    /// Per post id (mod RING): subscribers that received it.
    received: Box<[AtomicU32]>,
    /// Poked when a post becomes complete.
    completed: Notify,
    /// Subscribers that have received a post.
    ready: AtomicUsize,
    /// Subscribers done connecting, either way.
    settled: AtomicUsize,
    connect_failures: AtomicUsize,
    first_error: std::sync::Mutex<Option<String>>,
    /// Poked when a subscriber settles or the last one becomes ready.
    poke: Notify,
    phases: [PhaseStats; 3],
    lost: AtomicU64,
    out_of_order: AtomicU64,
    ended_early: AtomicU64,
}

impl Shared {
    fn now(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    fn slot(&self, id: u64) -> &AtomicU32 {
        &self.received[(id % RING) as usize]
    }

    fn is_complete(&self, id: u64) -> bool {
        self.slot(id).load(Ordering::Acquire) >= self.subscribers.load(Ordering::Relaxed)
    }

    /// Waits until post `id` has reached every subscriber; false after `stall`.
    async fn wait_complete(&self, id: u64, stall: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + stall;
        while !self.is_complete(id) {
            if tokio::time::timeout_at(deadline, self.completed.notified())
                .await
                .is_err()
            {
                return self.is_complete(id);
            }
        }
        true
    }
}

/// One subscriber's count of what it received, whatever the transport.
#[derive(Debug, Default)]
struct Tally {
    last_id: Option<u64>,
}

impl Tally {
    /// Counts post `id`, received at `now`, whose title carried `stamp`.
    fn receive(
        &mut self,
        shared: &Shared,
        now: u64,
        id: u64,
        stamp: impl FnOnce() -> Option<(u8, u64)>,
    ) {
        match self.last_id {
            None => {
                if shared.ready.fetch_add(1, Ordering::Relaxed) + 1
                    == shared.subscribers.load(Ordering::Relaxed) as usize
                {
                    shared.poke.notify_one();
                }
            }
            Some(last) if id == last + 1 => {}
            Some(last) if id > last => {
                shared.lost.fetch_add(id - last - 1, Ordering::Relaxed);
            }
            Some(_) => {
                // A repeat or a step back: counted, but neither a delivery nor a
                // completion (it would let the publisher run ahead of a real receipt).
                shared.out_of_order.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        self.last_id = Some(id);
        let Some((phase, sent)) = stamp() else {
            return;
        };
        if phase == WARM_UP || usize::from(phase) >= shared.phases.len() {
            return;
        }
        let stats = &shared.phases[usize::from(phase)];
        stats.latency.record(now.saturating_sub(sent));
        stats.deliveries.fetch_add(1, Ordering::Relaxed);
        stats.last.fetch_max(now, Ordering::Relaxed);
        let have = shared.slot(id).fetch_add(1, Ordering::AcqRel) + 1;
        if have == shared.subscribers.load(Ordering::Relaxed) {
            shared.completed.notify_one();
        }
    }
}

/// One SSE subscriber's stream state.
struct Reader {
    chunked: bool,
    dechunker: Dechunker,
    decoder: SseDecoder,
    tally: Tally,
}

impl Reader {
    fn feed(&mut self, shared: &Shared, mut input: &[u8]) -> Result<(), HttpError> {
        if !self.chunked {
            return self.decode(shared, input);
        }
        while let Some(piece) = self.dechunker.next_piece(&mut input)? {
            self.decode(shared, piece)?;
        }
        Ok(())
    }

    fn decode(&mut self, shared: &Shared, mut input: &[u8]) -> Result<(), HttpError> {
        while let Some(event) = self
            .decoder
            .next_event(&mut input)
            .map_err(|err| HttpError(format!("SSE: {err}")))?
        {
            if !shared.protocol.is_post(&event.event) {
                continue;
            }
            let now = shared.now();
            let Some(id) = event.id.as_deref().and_then(|id| id.parse::<u64>().ok()) else {
                return Err(HttpError(format!(
                    "a post event without a numeric id: {event:?}"
                )));
            };
            self.tally
                .receive(shared, now, id, || parse_stamp(event.data.as_bytes()));
        }
        Ok(())
    }
}

/// How subscribers open their `post.live` stream.
#[derive(Debug)]
enum Subscribe {
    /// Send this HTTP request and read the SSE response.
    Sse(Vec<u8>),
    /// Open a WebSocket to this URL and subscribe on it.
    Ws { url: String, protocol: Protocol },
    /// Open a stream with this request on the pool's HTTP/2 connection for the subscriber, and
    /// read the SSE response.
    H2 {
        pool: http2::Pool,
        subscription: http2::Subscription,
    },
}

/// An open `post.live` stream.
enum Opened {
    /// The connection, what was read of it and where the body starts.
    Sse(TcpStream, Vec<u8>, Head, usize),
    Ws(Box<ws::Socket>),
    H2(h2::RecvStream),
}

/// Opens subscriber `index`'s `post.live` stream, up to its response head (SSE) or the server's
/// word that the subscription began (WebSocket).
async fn connect(
    addr: SocketAddr,
    source: Option<IpAddr>,
    index: usize,
    how: &Subscribe,
    gate: &Semaphore,
) -> Result<Opened, HttpError> {
    // Held until the head arrives: bounds the connects in flight (the listen backlog).
    let _permit = gate
        .acquire()
        .await
        .map_err(|_| HttpError("the connect gate closed".into()))?;
    if let Subscribe::H2 { pool, subscription } = how {
        return Ok(Opened::H2(pool.subscribe(index, subscription).await?));
    }
    let mut stream = http::connect(addr, source).await?;
    stream.set_nodelay(true)?;
    let request = match how {
        Subscribe::Sse(request) => request,
        Subscribe::Ws { url, protocol } => {
            return Ok(Opened::Ws(Box::new(
                ws::subscribe(stream, url, *protocol).await?,
            )))
        }
        Subscribe::H2 { .. } => unreachable!("opened above"),
    };
    stream.write_all(request).await?;
    let mut buf = Vec::with_capacity(8192);
    let (head, start) = loop {
        if let Some(found) = parse_head(&buf)? {
            break found;
        }
        if read_more(&mut stream, &mut buf).await? == 0 {
            return Err(HttpError("closed before the response head".into()));
        }
    };
    if head.status != 200 {
        return Err(HttpError(format!(
            "post.live answered {}: {}",
            head.status,
            String::from_utf8_lossy(&buf[start..])
        )));
    }
    Ok(Opened::Sse(stream, buf, head, start))
}

/// Reads a stream until it fails or ends (which is an error: the run ends it by aborting).
async fn read_stream(
    shared: &Shared,
    stream: TcpStream,
    buf: Vec<u8>,
    head: Head,
    start: usize,
) -> Result<(), HttpError> {
    let mut reader = Reader {
        chunked: head.chunked,
        dechunker: Dechunker::new(),
        decoder: SseDecoder::new(),
        tally: Tally::default(),
    };
    reader.feed(shared, &buf[start..])?;
    drop(buf);
    loop {
        stream.readable().await?;
        // What `read` does (wait until readable, then read what is there), into the thread's
        // buffer: no await while it is borrowed.
        SCRATCH.with_borrow_mut(|scratch| match stream.try_read(scratch) {
            Ok(0) => Err(HttpError("the stream ended".into())),
            Ok(read) => reader.feed(shared, &scratch[..read]),
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => Ok(()),
            Err(err) => Err(err.into()),
        })?;
    }
}

/// Reads an HTTP/2 stream's SSE body until it fails or ends (an error, as for [`read_stream`]).
async fn read_h2(shared: &Shared, mut stream: h2::RecvStream) -> Result<(), HttpError> {
    let mut reader = Reader {
        // HTTP/2 frames the body itself: no chunked coding.
        chunked: false,
        dechunker: Dechunker::new(),
        decoder: SseDecoder::new(),
        tally: Tally::default(),
    };
    while let Some(data) = http2::next(&mut stream).await? {
        reader.feed(shared, &data)?;
    }
    Err(HttpError("the stream ended".into()))
}

/// Reads a subscription's WebSocket until it fails or ends (an error, as for [`read_stream`]).
async fn read_socket(shared: &Shared, mut socket: Box<ws::Socket>) -> Result<(), HttpError> {
    let mut tally = Tally::default();
    loop {
        match ws::next(&mut socket, shared.protocol).await? {
            ws::Frame::Post {
                request: ws::SUBSCRIPTION,
                id,
                stamp,
            } => tally.receive(shared, shared.now(), id, || stamp),
            ws::Frame::End {
                request: None | Some(ws::SUBSCRIPTION),
                text,
            } => return Err(HttpError(format!("post.live ended: {text}"))),
            _ => {}
        }
    }
}

/// One subscriber: connects, then reads until aborted.
async fn subscriber(
    shared: Arc<Shared>,
    addr: SocketAddr,
    source: Option<IpAddr>,
    index: usize,
    how: Arc<Subscribe>,
    gate: Arc<Semaphore>,
    deadline: tokio::time::Instant,
) {
    // Boxed: the task keeps the reading's state, not the larger connecting's, once connected.
    let connecting = Box::pin(connect(addr, source, index, &how, &gate));
    let opened = match tokio::time::timeout_at(deadline, connecting).await {
        Ok(opened) => opened,
        Err(_) => Err(HttpError("not connected before the connect timeout".into())),
    };
    shared.settled.fetch_add(1, Ordering::Relaxed);
    let result = match opened {
        Ok(opened) => {
            shared.poke.notify_one();
            let result = match opened {
                Opened::Sse(stream, buf, head, start) => {
                    read_stream(&shared, stream, buf, head, start).await
                }
                Opened::Ws(socket) => read_socket(&shared, socket).await,
                Opened::H2(stream) => read_h2(&shared, stream).await,
            };
            if result.is_err() {
                shared.ended_early.fetch_add(1, Ordering::Relaxed);
            }
            result
        }
        Err(err) => {
            shared.connect_failures.fetch_add(1, Ordering::Relaxed);
            shared.poke.notify_one();
            Err(err)
        }
    };
    if let Err(err) = result {
        let mut first = shared.first_error.lock().unwrap_or_else(|e| e.into_inner());
        first.get_or_insert_with(|| err.to_string());
    }
}

/// Runs the load described by `config` and reports what it measured. Call it inside a tokio
/// runtime (with time and I/O enabled).
pub async fn run(config: &Config) -> Result<Report, HttpError> {
    let addr = config.url.resolve().await?;
    let n = config.subscribers;
    let shared = Arc::new(Shared {
        protocol: config.protocol,
        epoch: Instant::now(),
        subscribers: AtomicU32::new(u32::try_from(n).unwrap_or(u32::MAX)),
        received: (0..RING).map(|_| AtomicU32::new(0)).collect(),
        completed: Notify::new(),
        ready: AtomicUsize::new(0),
        settled: AtomicUsize::new(0),
        connect_failures: AtomicUsize::new(0),
        first_error: std::sync::Mutex::new(None),
        poke: Notify::new(),
        phases: Default::default(),
        lost: AtomicU64::new(0),
        out_of_order: AtomicU64::new(0),
        ended_early: AtomicU64::new(0),
    });
    let pid = config.server_pid;
    let load_average = procfs::load_average();
    let rss_before = pid.and_then(procfs::rss_kib);

    // Connect.
    let connections = if config.protocol.is_http2() {
        n.div_ceil(config.streams_per_connection.max(1))
    } else {
        n
    };
    let sources = config.source_addresses.resolve(addr, connections);
    let how = Arc::new(if config.protocol.is_websocket() {
        Subscribe::Ws {
            url: ws::url(&config.url),
            protocol: config.protocol,
        }
    } else if config.protocol.is_http2() {
        Subscribe::H2 {
            pool: http2::Pool::new(addr, n, config.streams_per_connection)
                .with_sources(sources.clone()),
            subscription: http2::Subscription::new(config.protocol, &config.url)?,
        }
    } else {
        Subscribe::Sse(config.protocol.subscribe_request(&config.url))
    });
    let gate = Arc::new(Semaphore::new(config.connect_concurrency.max(1)));
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + config.connect_timeout;
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..n {
        // HTTP/2 subscribers take their connection's source from the pool.
        let source = (!sources.is_empty() && !config.protocol.is_http2())
            .then(|| sources[index % sources.len()]);
        tasks.spawn(subscriber(
            Arc::clone(&shared),
            addr,
            source,
            index,
            Arc::clone(&how),
            Arc::clone(&gate),
            deadline,
        ));
    }
    while shared.settled.load(Ordering::Relaxed) < n {
        shared.poke.notified().await;
    }
    let connect_seconds = started.elapsed().as_secs_f64();
    let failed = shared.connect_failures.load(Ordering::Relaxed);
    let connected = n - failed;
    let first_error = || {
        shared
            .first_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_default()
    };
    if connected == 0 {
        return Err(HttpError(format!(
            "no subscriber connected: {}",
            first_error()
        )));
    }
    shared
        .subscribers
        .store(connected as u32, Ordering::Relaxed);
    if failed > 0 {
        eprintln!(
            "load: {failed} of {n} subscribers failed to connect, first: {}",
            first_error()
        );
    }
    tokio::time::sleep(config.settle).await;
    let rss_idle = pid.and_then(procfs::rss_kib);
    let generator_rss_idle = procfs::rss_kib(std::process::id());

    // Warm up: until every subscriber has received a post, its subscription may not be live.
    let mut publisher = Publisher {
        conns: (0..config.publishers.max(1))
            .map(|_| {
                if config.post_over_websocket {
                    Poster::Ws(Box::new(ws::Caller::new(
                        addr,
                        &config.url,
                        config.protocol,
                    )))
                } else {
                    Poster::Http(Connection::new(addr))
                }
            })
            .collect(),
        shared: Arc::clone(&shared),
        config: config.clone(),
        next_id: 0,
    };
    let warm_deadline = Instant::now() + Duration::from_secs(60) + config.settle;
    while shared.ready.load(Ordering::Relaxed) < connected {
        if Instant::now() > warm_deadline {
            return Err(HttpError(format!(
                "after a minute of warm-up posts only {} of {connected} subscribers received one",
                shared.ready.load(Ordering::Relaxed)
            )));
        }
        publisher.post(WARM_UP).await?;
        // Another post only once this one has stopped reaching subscribers: a slow server must
        // not be buried under warm-up posts before the run begins.
        let mut seen = shared.ready.load(Ordering::Relaxed);
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let now = shared.ready.load(Ordering::Relaxed);
            if now >= connected || now == seen {
                break;
            }
            seen = now;
        }
    }
    // Let warm-up posts in flight arrive, so the load phase starts from quiet.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let load = publisher
        .phase(LOAD, config.events, config.duration, config.rate)
        .await?;
    let paced = if config.paced_duration > Duration::ZERO && config.paced_rate > 0.0 {
        let phase = publisher
            .phase(PACED, None, Some(config.paced_duration), config.paced_rate)
            .await?;
        Some((config.paced_rate, phase))
    } else {
        None
    };
    let rss_after = pid.and_then(procfs::rss_kib);
    tasks.abort_all();
    Ok(Report {
        label: config.label.clone(),
        protocol: config.protocol.to_string(),
        subscribers: n,
        connected,
        streams_per_connection: config
            .protocol
            .is_http2()
            .then_some(config.streams_per_connection.max(1)),
        publishers: publisher.conns.len(),
        load_average,
        connect_seconds,
        rss_before_kib: rss_before,
        rss_idle_kib: rss_idle,
        rss_after_kib: rss_after,
        generator_rss_idle_kib: generator_rss_idle,
        source_addresses: sources.len(),
        lost: shared.lost.load(Ordering::Relaxed),
        out_of_order: shared.out_of_order.load(Ordering::Relaxed),
        ended_early: shared.ended_early.load(Ordering::Relaxed),
        load,
        paced,
    })
}

/// One connection a publisher posts on.
#[derive(Debug)]
enum Poster {
    /// A keep-alive HTTP connection.
    Http(Connection),
    /// A WebSocket ([`Config::post_over_websocket`]).
    Ws(Box<ws::Caller>),
}

struct Publisher {
    /// One keep-alive connection per concurrent post.
    conns: Vec<Poster>,
    shared: Arc<Shared>,
    config: Config,
    /// The id the next post will get (0 before the first answer).
    next_id: u64,
}

/// What a phase's publishing connections share: the count of posts issued so far.
#[derive(Debug, Default)]
struct Issuer {
    issued: u64,
    stalls: u64,
    stopped: bool,
}

impl Publisher {
    fn post_title(&self, phase: u8) -> String {
        stamped_title(phase, self.shared.now(), self.config.title_len)
    }

    /// Sends one `post.create` of `title` on `conn` and returns the new post's id.
    async fn call(&self, conn: &mut Poster, title: &str) -> Result<u64, HttpError> {
        let conn = match conn {
            Poster::Http(conn) => conn,
            Poster::Ws(caller) => return caller.create(title).await,
        };
        let request = self
            .config
            .protocol
            .publish_request(&self.config.url, title);
        let (status, body) = conn.call(&request).await?;
        if status != 200 {
            return Err(HttpError(format!(
                "post.create answered {status}: {}",
                String::from_utf8_lossy(&body)
            )));
        }
        self.config.protocol.created_id(&body)
    }

    /// Posts one event of `phase`, stamped now, on the first connection, and waits for its
    /// answer (the warm-up, where ids are learned one by one).
    async fn post(&mut self, phase: u8) -> Result<(), HttpError> {
        if self.next_id > 0 {
            // The slot last held post `next_id - RING`, complete long ago (RING > window).
            self.shared.slot(self.next_id).store(0, Ordering::Release);
        }
        let title = self.post_title(phase);
        let mut conn = self.conns.swap_remove(0);
        let answer = self.call(&mut conn, &title).await;
        self.conns.push(conn);
        let id = answer?;
        if self.next_id > 0 && id != self.next_id {
            return Err(HttpError(format!(
                "post.create gave id {id} where {} was next: is another client posting?",
                self.next_id
            )));
        }
        self.next_id = id + 1;
        Ok(())
    }

    /// One connection's share of a phase: takes the next post number from `issuer` (after
    /// the rate and the window allow it), posts it, and again, until the phase ends. Returns the
    /// largest id the server gave.
    #[allow(clippy::too_many_arguments)]
    async fn publish_on(
        &self,
        conn: &mut Poster,
        issuer: &tokio::sync::Mutex<Issuer>,
        phase: u8,
        base: u64,
        events: Option<u64>,
        duration: Option<Duration>,
        rate: f64,
        started: Instant,
    ) -> Result<u64, HttpError> {
        let shared = &self.shared;
        let window = self.config.window.clamp(1, RING / 2);
        let mut largest = 0;
        loop {
            let title = {
                let mut issuer = issuer.lock().await;
                if issuer.stopped {
                    break;
                }
                if rate > 0.0 {
                    let due = started + Duration::from_secs_f64(issuer.issued as f64 / rate);
                    tokio::time::sleep_until(due.into()).await;
                }
                if events.is_some_and(|m| issuer.issued >= m)
                    || duration.is_some_and(|d| started.elapsed() >= d)
                {
                    issuer.stopped = true;
                    break;
                }
                if issuer.issued >= window
                    && !shared
                        .wait_complete(base + issuer.issued - window, self.config.stall)
                        .await
                {
                    issuer.stalls += 1;
                }
                // Whatever order the server answers in, the ids it gives in this phase are
                // `base..base + issued`: the largest this post can get is cleared before it
                // goes. Its slot last held post `base + issued - RING`, complete long ago.
                shared
                    .slot(base + issuer.issued)
                    .store(0, Ordering::Release);
                issuer.issued += 1;
                self.post_title(phase)
            };
            let id = match self.call(conn, &title).await {
                Ok(id) => id,
                Err(err) => {
                    issuer.lock().await.stopped = true;
                    return Err(err);
                }
            };
            if id < base {
                issuer.lock().await.stopped = true;
                return Err(HttpError(format!(
                    "post.create gave id {id}, below this phase's first {base}"
                )));
            }
            largest = largest.max(id);
        }
        Ok(largest)
    }

    async fn phase(
        &mut self,
        phase: u8,
        events: Option<u64>,
        duration: Option<Duration>,
        rate: f64,
    ) -> Result<PhaseReport, HttpError> {
        let shared = Arc::clone(&self.shared);
        let gen_before = procfs::cpu_seconds(std::process::id());
        let server_before = self.config.server_pid.and_then(procfs::cpu_times);
        let started = Instant::now();
        let start_ns = shared.now();
        let base = self.next_id;
        let issuer = tokio::sync::Mutex::new(Issuer::default());
        let mut conns = std::mem::take(&mut self.conns);
        let results = futures::future::join_all(conns.iter_mut().map(|conn| {
            self.publish_on(conn, &issuer, phase, base, events, duration, rate, started)
        }))
        .await;
        self.conns = conns;
        let mut largest = 0;
        for result in results {
            largest = largest.max(result?);
        }
        let Issuer {
            issued, mut stalls, ..
        } = issuer.into_inner();
        if issued > 0 && largest != base + issued - 1 {
            return Err(HttpError(format!(
                "{issued} posts from id {base} got ids up to {largest}: is another client posting?"
            )));
        }
        self.next_id = base + issued;
        // The last posts in flight may complete in any order: wait for each, all within one
        // stall timeout (a server far behind must not hold the run for a stall per post).
        let tail = (self.config.window + self.conns.len() as u64).min(issued);
        let deadline = Instant::now() + self.config.stall;
        for id in base + issued - tail..base + issued {
            let left = deadline.saturating_duration_since(Instant::now());
            if !shared.wait_complete(id, left).await {
                stalls += 1;
            }
        }
        let wall = started.elapsed().as_secs_f64();
        let gen_after = procfs::cpu_seconds(std::process::id());
        let server_after = self.config.server_pid.and_then(procfs::cpu_times);
        let stats = &shared.phases[usize::from(phase)];
        let last = stats.last.load(Ordering::Relaxed);
        let q = |q: f64| stats.latency.quantile(q) as f64 / 1000.0;
        Ok(PhaseReport {
            events: issued,
            deliveries: stats.deliveries.load(Ordering::Relaxed),
            seconds: last.saturating_sub(start_ns) as f64 / 1e9,
            wall_seconds: wall,
            latency_us: [q(0.5), q(0.99), stats.latency.max() as f64 / 1000.0],
            stalls,
            generator_cores: match (gen_before, gen_after) {
                (Some(a), Some(b)) => (b - a) / wall,
                _ => 0.0,
            },
            server_cores: server_before
                .zip(server_after)
                .map(|(a, b)| (b.total() - a.total()) / wall),
            server_system_cores: server_before
                .zip(server_after)
                .map(|(a, b)| (b.system - a.system) / wall),
        })
    }
}
