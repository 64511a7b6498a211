//! A [`Publisher`] on Redis Streams, so that many server instances share topics and a client
//! resumes on any of them.
//!
//! Each topic is a Redis stream (`outer:<topic>` by default). [`publish`](RedisPublisher::publish)
//! is `XADD ... MAXLEN ~ n`, and the event's id is the stream id Redis gives it with the
//! stream's [`Epoch`] (`1700000000000-0@3fa9c2d1`), the same on every instance. A client that
//! was subscribed through instance A and reconnects to instance B with its `Last-Event-ID` gets
//! everything after it, then live events, with no gap and no duplicate.
//!
//! - **One read per topic and instance.** Subscribers of a topic on one instance share one
//!   background reader (one Redis connection doing a blocking `XREAD`), which fans each entry out
//!   to them through bounded buffers: the Redis load grows with topics and instances, not
//!   subscribers.
//! - **Resume.** A subscriber that resumes reads what it missed from Redis (`XRANGE`, page by
//!   page), up to where it joined the reader, then takes live events: no gap, no overlap.
//! - **Gaps, never silent.** A resume point older than what the stream retains yields a [`Gap`]
//!   (412 from a handler), as does one the stream never gave out: after its last id, between
//!   two of its entries, or from another history of it (Redis lost the stream, or another
//!   deployment), which its [`Epoch`] tells apart. A malformed one is a 400.
//! - **Slow subscribers.** One that falls behind its buffer catches up from Redis rather than
//!   losing events; only if the stream trimmed them first does it get a gap.
//! - **Reconnect.** When Redis drops, readers and catch-ups reconnect with backoff and go on
//!   from the last id they delivered, so nothing published meanwhile is lost (Redis must keep
//!   its data across a restart: AOF or RDB persistence). A publish, a subscribe or a catch-up
//!   read that finds its connection broken (Redis restarted since) reconnects in place and runs
//!   again, waiting for Redis up to [`reconnect_wait`](RedisPublisherBuilder::reconnect_wait),
//!   rather than failing with `Unavailable` (503) on the first try.
//! - **Redis Cluster.** With a `redis+cluster://host1:port1,host2:port2` URL, topics spread
//!   over the cluster's shards by their keys' slots. Publishes and catch-ups go through one
//!   cluster connection, which follows `MOVED` and `ASK` (as scripts there: a redirect would
//!   abort a transaction); each topic's reader connects to its
//!   slot's master and finds it again after a failover or when the slot moves. Resume and gaps
//!   are the same as on one server: a shard that failed over keeps what reached its replica,
//!   and a shard that lost its data starts a new epoch, so resuming there is a gap.
//! - **Runtimes.** Tokio, smol or monoio: pass the adapter's runtime (`outer_tokio::TokioRuntime`,
//!   `outer_smol::SmolRuntime`, `outer_monoio::MonoioRuntime`, or any
//!   [`outer_core::rt::Runtime`]). monoio spawns only on its own threads, so give it
//!   `MonoioRuntime` only where every subscribe happens on a monoio thread; a publisher shared
//!   with other threads takes `SmolRuntime` (the chat on monoio does). The publisher runs one
//!   background task per topic (the shared blocking read) and sleeps between reconnects, both
//!   the runtime's job. The redis crate is built with both its `tokio-comp` and `smol-comp`
//!   features; at each connect it looks for a current tokio runtime and uses tokio's sockets
//!   there, and async-io's everywhere else (async-io runs its own reactor thread, so those
//!   sockets work under any executor, monoio's included). So one build of this crate serves
//!   every runtime.
//!
//! ```no_run
//! use futures::StreamExt;
//! use outer_core::publisher::SubscribeOptions;
//! use outer_redis::RedisPublisher;
//!
//! # async fn run() -> Result<(), outer_redis::Error> {
//! let publisher = RedisPublisher::<String>::builder("redis://127.0.0.1:6379")
//!     .retain_last(10_000)
//!     .build(outer_tokio::TokioRuntime)?;
//!
//! let mut live = publisher.subscribe("chat", SubscribeOptions::new()).await?;
//! let id = publisher.publish("chat", "hello".to_string()).await?;
//! let event = live.next().await.unwrap().unwrap();
//! assert_eq!((*event.id(), event.as_str()), (id, "hello"));
//!
//! // On any instance, later: everything after `id`, then live events.
//! let resumed = publisher
//!     .subscribe("chat", SubscribeOptions::new().resume_after(id))
//!     .await?;
//! # drop(resumed);
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use outer_core::publisher::{Publisher, SubscribeOptions};
use outer_core::rt::Runtime;
use outer_core::EventId;
use serde::de::DeserializeOwned;
use serde::Serialize;

mod backend;
mod error;
mod id;
mod stream;
mod subscription;
mod topic;

#[cfg(feature = "testing")]
pub mod testing;

pub use error::{Error, Gap, RecvError};
pub use id::{Epoch, MalformedStreamId, StreamId};
pub use subscription::Subscription;

use backend::{Backend, Connection, Timeouts};
use topic::{lock, Registration, Topic};

/// A [`Publisher`] whose topics are Redis streams shared by every instance that uses the same
/// Redis. See the [crate docs](crate) for how it works.
///
/// Cloning it is cheap and shares everything. When the last clone is dropped, its readers stop
/// and its subscriptions end once they have yielded what they had buffered.
///
/// ```no_run
/// use outer_redis::RedisPublisher;
/// # fn run() -> Result<(), outer_redis::Error> {
/// let publisher: RedisPublisher<serde_json::Value> =
///     RedisPublisher::builder("redis://127.0.0.1:6379").build(outer_smol::SmolRuntime)?;
/// # Ok(())
/// # }
/// ```
pub struct RedisPublisher<T> {
    inner: Arc<Inner<T>>,
}

/// Configures a [`RedisPublisher`].
///
/// ```
/// use std::time::Duration;
/// use outer_redis::RedisPublisher;
///
/// let publisher = RedisPublisher::<String>::builder("redis://127.0.0.1:6379/0")
///     .key_prefix("myapp:events:")
///     .retain_last(100_000)
///     .reconnect_backoff(Duration::from_millis(100), Duration::from_secs(5))
///     .build(outer_smol::SmolRuntime)
///     .unwrap(); // connects lazily: nothing is sent yet
/// assert_eq!(publisher.key("posts"), "myapp:events:posts");
/// ```
pub struct RedisPublisherBuilder<T> {
    url: String,
    config: Config,
    data: PhantomData<fn() -> T>,
}

#[derive(Clone, Debug)]
pub(crate) struct Config {
    prefix: String,
    pub(crate) retain: usize,
    pub(crate) max_buffer: usize,
    /// Entries per read, for the reader and for a catch-up page.
    pub(crate) page: usize,
    /// How long the reader's `XREAD` blocks before it asks again.
    pub(crate) block: Duration,
    /// How long a reply may take (on top of `block` for the reader's wait).
    pub(crate) response_timeout: Duration,
    /// Reconnect backoff: first and longest wait.
    pub(crate) backoff: (Duration, Duration),
    /// How long a command waits for Redis to come back before it fails.
    pub(crate) reconnect_wait: Duration,
}

impl Config {
    fn timeouts(&self) -> Timeouts {
        Timeouts {
            response: self.response_timeout,
            backoff: self.backoff,
        }
    }
}

pub(crate) struct Inner<T> {
    pub(crate) backend: Backend,
    pub(crate) runtime: Arc<dyn Runtime>,
    pub(crate) config: Config,
    /// The connection for publishes and catch-ups (multiplexed: shared by all of them).
    commands: Mutex<Option<Connection>>,
    topics: Mutex<HashMap<Arc<str>, Arc<Topic<T>>>>,
    /// Readers running now.
    pub(crate) readers: Arc<AtomicUsize>,
    /// Clones of the publisher alive; subscriptions don't count.
    handles: AtomicUsize,
    pub(crate) closed: AtomicBool,
}

impl<T> RedisPublisherBuilder<T> {
    /// Streams are named `prefix + topic` (default prefix `outer:`).
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.config.prefix = prefix.into();
        self
    }

    /// Each stream keeps about this many recent events for resume (default 10,000): `XADD`
    /// trims it with `MAXLEN ~`, which keeps at least this many and may keep a little more.
    /// At least 1.
    pub fn retain_last(mut self, events: usize) -> Self {
        self.config.retain = events.max(1);
        self
    }

    /// Caps the buffer a subscriber may ask for (default 65,536 events).
    pub fn max_buffer(mut self, events: usize) -> Self {
        self.config.max_buffer = events.max(1);
        self
    }

    /// How long to wait before reconnecting to Redis at first, and at most (the wait doubles
    /// after each failure). Default 50 ms and 2 s.
    pub fn reconnect_backoff(mut self, first: Duration, longest: Duration) -> Self {
        self.config.backoff = (first, longest.max(first));
        self
    }

    /// How long a publish, a subscribe or a catch-up read waits for its connection to Redis to
    /// be opened again when it finds it broken (a Redis restart, a failover) before it fails
    /// with [`Error::Unavailable`] (default 2 s). It reconnects at once, then with the
    /// [`reconnect_backoff`](Self::reconnect_backoff) waits in between.
    pub fn reconnect_wait(mut self, wait: Duration) -> Self {
        self.config.reconnect_wait = wait;
        self
    }

    /// How long a Redis reply may take before the connection counts as broken (default 5 s).
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.config.response_timeout = timeout;
        self
    }

    /// Builds the publisher on `runtime` (the adapter's: `outer_tokio::TokioRuntime`,
    /// `outer_smol::SmolRuntime`; an `Arc<dyn Runtime>` is one too), which runs its readers
    /// and times its reconnects. It connects lazily, on the first publish or subscribe; fails
    /// only if the URL is not a Redis URL.
    pub fn build(self, runtime: impl Runtime) -> Result<RedisPublisher<T>, Error> {
        let backend = Backend::open(&self.url, self.config.timeouts())
            .map_err(|err| Error::Unavailable(format!("invalid Redis URL: {err}")))?;
        Ok(RedisPublisher {
            inner: Arc::new(Inner {
                backend,
                runtime: Arc::new(runtime),
                config: self.config,
                commands: Mutex::new(None),
                topics: Mutex::new(HashMap::new()),
                readers: Arc::new(AtomicUsize::new(0)),
                handles: AtomicUsize::new(1),
                closed: AtomicBool::new(false),
            }),
        })
    }
}

impl<T> fmt::Debug for RedisPublisherBuilder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisPublisherBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<T> RedisPublisher<T> {
    /// Configures a publisher on the Redis at `url`: one server with `redis://host:port/db` (or
    /// `rediss://`, `valkey://`, `redis+unix://`: see the redis crate), a Redis Cluster (or a
    /// Valkey one) with `redis+cluster://[user:password@]host1:port1,host2:port2[/db]`, any of
    /// its nodes as seeds (`rediss+cluster://` for TLS). A single-server URL that reaches a
    /// cluster node fails its calls with an error that says to use the cluster URL.
    pub fn builder(url: impl Into<String>) -> RedisPublisherBuilder<T> {
        RedisPublisherBuilder {
            url: url.into(),
            config: Config {
                prefix: "outer:".into(),
                retain: 10_000,
                max_buffer: 1 << 16,
                page: 256,
                block: Duration::from_secs(5),
                response_timeout: Duration::from_secs(5),
                backoff: (Duration::from_millis(50), Duration::from_secs(2)),
                reconnect_wait: Duration::from_secs(2),
            },
            data: PhantomData,
        }
    }

    /// The Redis key of `topic`'s stream.
    pub fn key(&self, topic: &str) -> String {
        self.inner.key(topic)
    }

    /// How many subscriptions to `topic` are alive on this instance.
    pub fn subscriber_count(&self, topic: &str) -> usize {
        let topics = lock(&self.inner.topics);
        topics
            .get(topic)
            .map_or(0, |topic| lock(&topic.state).subscribers())
    }

    /// How many background readers run now: one per topic with a subscriber on this instance,
    /// each with one Redis connection (named `outer-reader:<topic>` in `CLIENT LIST`).
    pub fn reader_count(&self) -> usize {
        self.inner.readers.load(Ordering::Relaxed)
    }

    /// Checks that Redis answers (`PING`): for a health check or a start-up check.
    pub async fn ping(&self) -> Result<(), Error> {
        let mut conn = self
            .inner
            .command_connection()
            .await
            .map_err(|err| Error::unavailable(&err))?;
        redis::cmd("PING")
            .query_async::<redis::Value>(&mut conn)
            .await
            .map(drop)
            .map_err(|err| {
                self.inner.command_failed(&err);
                Error::unavailable(&err)
            })
    }
}

impl<T> RedisPublisher<T>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    /// Publishes `data` on `topic` (`XADD`, trimming the stream to about its retention) and
    /// returns the id Redis gave it. Every subscriber of the topic, on every instance, gets it.
    ///
    /// Fails with [`Error::Unavailable`] when Redis cannot be reached (the connection is opened
    /// again on the next call) and [`Error::Encode`] when `data` cannot be written as JSON.
    pub async fn publish(&self, topic: &str, data: T) -> Result<StreamId, Error> {
        let json = serde_json::to_vec(&data).map_err(|err| Error::Encode(err.to_string()))?;
        let key = self.inner.key(topic);
        let retain = self.inner.config.retain;
        self.inner
            .command(|mut conn| {
                let (key, json) = (&key, &json);
                async move {
                    let atomic = conn.atomic();
                    stream::add(&mut conn, atomic, key, retain, json).await
                }
            })
            .await
            .map_err(|err| Error::unavailable(&err))
    }

    /// Subscribes to `topic`. With `options.last_event_id`, the subscription first yields every
    /// retained event after it (from Redis), then live events; without one, only events from
    /// now on. See [`Subscription`].
    ///
    /// Fails with [`Error::MalformedId`] if the last event id is not a stream id, and with
    /// [`Error::Unavailable`] if this is the topic's first subscriber on this instance and Redis
    /// cannot be reached. A well-formed id that cannot be resumed from is a [`Gap`] in the
    /// stream.
    pub async fn subscribe(
        &self,
        topic: &str,
        options: SubscribeOptions,
    ) -> Result<Subscription<T>, Error> {
        let resume = match options.last_event_id.as_ref().map(EventId::as_str) {
            // SSE's empty id means "no id": the client has nothing to resume from.
            None | Some("") => None,
            Some(text) => Some(StreamId::parse(text)?),
        };
        let buffer = options.buffer.clamp(1, self.inner.config.max_buffer);
        let (topic, registration) = self.inner.join(topic, buffer).await?;
        Ok(Subscription::new(
            Arc::clone(&self.inner),
            topic,
            registration,
            resume,
            buffer,
            options.on_gap,
        ))
    }
}

impl<T> Inner<T> {
    fn key(&self, topic: &str) -> String {
        format!("{}{topic}", self.config.prefix)
    }

    /// The shared command connection, opened if there is none.
    pub(crate) async fn command_connection(&self) -> redis::RedisResult<Connection> {
        let cached = lock(&self.commands).clone();
        if let Some(conn) = cached {
            return Ok(conn);
        }
        let conn = self
            .backend
            .command_connection(self.config.timeouts())
            .await?;
        // Two callers may have connected at once: keep the first, drop the other.
        Ok(lock(&self.commands).get_or_insert(conn).clone())
    }

    /// Runs a command on the command connection. When the connection turns out broken before
    /// Redis answered (the usual sign: Redis restarted, or failed over, since it was opened),
    /// it opens a new one and runs the command again, at once and then with backoff, for up
    /// to `reconnect_wait`; a caller sees an error only if Redis stays away that long.
    ///
    /// A timeout is not retried: Redis may have run the command, and a publish run twice would
    /// be two posts.
    pub(crate) async fn command<R, F, Fut>(&self, mut run: F) -> redis::RedisResult<R>
    where
        F: FnMut(Connection) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<R>>,
    {
        let mut waited = Duration::ZERO;
        let mut pause = Duration::ZERO;
        loop {
            let attempt = match self.command_connection().await {
                Ok(conn) => run(conn).await,
                Err(err) => Err(err),
            };
            let err = match attempt {
                Ok(value) => return Ok(value),
                Err(err) => err,
            };
            self.command_failed(&err);
            let retry = stream::broken(&err) && !err.is_timeout();
            if !retry || waited >= self.config.reconnect_wait {
                return Err(err);
            }
            if !pause.is_zero() {
                let nap = pause.min(self.config.reconnect_wait - waited);
                self.runtime.sleep(nap).await;
                waited += nap;
            }
            pause = (pause * 2).clamp(self.config.backoff.0, self.config.backoff.1);
        }
    }

    /// Forgets the command connection after an error that broke it; the next call reconnects.
    pub(crate) fn command_failed(&self, err: &redis::RedisError) {
        if stream::broken(err) {
            *lock(&self.commands) = None;
        }
    }

    /// Removes a subscriber; the last one of a topic stops its reader.
    pub(crate) fn leave(&self, topic: &Arc<Topic<T>>, slot: u64) {
        // Map first, then topic: the order everywhere.
        let mut topics = lock(&self.topics);
        let mut state = lock(&topic.state);
        if state.release(slot) && !state.removed {
            state.stop_reader();
            if topics
                .get(&topic.name)
                .is_some_and(|found| Arc::ptr_eq(found, topic))
            {
                topics.remove(&topic.name);
            }
        }
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let mut topics = lock(&self.topics);
        for (_, topic) in topics.drain() {
            lock(&topic.state).close();
        }
    }
}

impl<T> Inner<T>
where
    T: DeserializeOwned + Send + Sync + 'static,
{
    /// Registers a subscriber on `name`, creating the topic and starting its reader if this is
    /// its first subscriber here.
    async fn join(
        self: &Arc<Self>,
        name: &str,
        buffer: usize,
    ) -> Result<(Arc<Topic<T>>, Registration<T>), Error> {
        loop {
            if let Some(joined) = self.join_existing(name, buffer) {
                return Ok(joined);
            }
            // The reader starts after the stream's last id now: everything later is live.
            let key = self.key(name);
            let start = self
                .command(|mut conn| {
                    let key = &key;
                    async move {
                        let atomic = conn.atomic();
                        stream::last_id(&mut conn, atomic, key).await
                    }
                })
                .await
                .map_err(|err| Error::unavailable(&err))?;
            let mut topics = lock(&self.topics);
            if topics.contains_key(name) {
                // Another subscriber made it meanwhile: join theirs.
                continue;
            }
            let (topic, stopped) = Topic::new(name, key, start);
            let registration = lock(&topic.state).register(buffer);
            topics.insert(Arc::clone(&topic.name), Arc::clone(&topic));
            drop(topics);
            topic::start_reader(self, &topic, stopped);
            return Ok((topic, registration));
        }
    }

    fn join_existing(&self, name: &str, buffer: usize) -> Option<(Arc<Topic<T>>, Registration<T>)> {
        let topics = lock(&self.topics);
        let topic = Arc::clone(topics.get(name)?);
        let registration = lock(&topic.state).register(buffer);
        Some((topic, registration))
    }
}

impl<T> Clone for RedisPublisher<T> {
    fn clone(&self) -> Self {
        self.inner.handles.fetch_add(1, Ordering::Relaxed);
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T> Drop for RedisPublisher<T> {
    fn drop(&mut self) {
        if self.inner.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.inner.close();
        }
    }
}

impl<T> fmt::Debug for RedisPublisher<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisPublisher")
            .field("redis", &self.inner.backend)
            .field("config", &self.inner.config)
            .field("readers", &self.reader_count())
            .finish()
    }
}

impl<T> Publisher<T> for RedisPublisher<T>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    type Id = StreamId;
    type Error = Error;
    type StreamError = RecvError;
    type Subscription = Subscription<T>;

    async fn publish(&self, topic: &str, data: T) -> Result<StreamId, Error> {
        RedisPublisher::publish(self, topic, data).await
    }

    async fn subscribe(
        &self,
        topic: &str,
        options: SubscribeOptions,
    ) -> Result<Subscription<T>, Error> {
        RedisPublisher::subscribe(self, topic, options).await
    }
}
