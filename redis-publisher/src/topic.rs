//! One topic on one instance: its subscribers' bounded buffers, and the one background reader
//! that reads the topic's stream and fans each entry out to all of them. Not the catch-up of a
//! single subscriber from Redis: that is `subscription`'s.
//!
//! The reader and every registration share the topic's lock. The reader moves the topic's
//! `position` (the id of the last entry it read) and fans out the entries up to it in one
//! critical section; a subscriber registers in one too, and learns that position: it will get
//! every entry after it from the reader, and reads the ones up to it from Redis itself. So the
//! handover between a subscriber's catch-up and the live fan-out has no gap and no overlap,
//! however the two race.

use std::collections::HashMap;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_channel::{Receiver, Sender, TrySendError};
use outer_core::publisher::{GapKind, Published};
use serde::de::DeserializeOwned;

use crate::backend::ReaderConnection;
use crate::id::StreamId;
use crate::stream::{self, Page};
use crate::Inner;

/// Locks, ignoring poisoning: every critical section here leaves the state consistent at each
/// step, so a panic elsewhere cannot leave it half-changed.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the reader hands each subscriber.
pub(crate) enum Item<T> {
    Event(Published<T, StreamId>),
    /// Entries lost after the reader's position: up to `until` (the next entry read, or the stream's last id)
    /// for the shared reader's gaps, which concern only subscribers not yet past it; `None` for
    /// a subscriber's own.
    Gap {
        kind: GapKind,
        until: Option<StreamId>,
        next: Option<StreamId>,
    },
    Undecodable {
        id: StreamId,
        reason: Arc<str>,
    },
}

impl<T> Clone for Item<T> {
    fn clone(&self) -> Self {
        match self {
            Item::Event(event) => Item::Event(event.clone()),
            Item::Gap { kind, until, next } => Item::Gap {
                kind: *kind,
                until: *until,
                next: *next,
            },
            Item::Undecodable { id, reason } => Item::Undecodable {
                id: *id,
                reason: Arc::clone(reason),
            },
        }
    }
}

impl<T> Item<T> {
    /// Turns a page read after `from` into items: a gap first (if any), then each entry,
    /// decoded once for every subscriber. Returns them with the position after the page.
    ///
    /// For the shared reader (`shared`), a gap also says up to where events were lost, so that
    /// a subscriber already past that point can ignore it, and after a gap with nothing read
    /// the position jumps to the stream's last id (or back to the start of a new life of the
    /// stream). For one subscriber's catch-up, the gap is its own and the position stays.
    pub(crate) fn from_page(from: StreamId, page: Page, shared: bool) -> (Vec<Self>, StreamId)
    where
        T: DeserializeOwned,
    {
        let mut items = Vec::with_capacity(page.entries.len() + 1);
        let mut position = from;
        if let Some(mut kind) = page.gap {
            if shared && kind == GapKind::Expired {
                // The reader itself fell behind the retention: its subscribers lagged.
                kind = GapKind::Lagged;
            }
            let next = page.entries.first().map(|entry| entry.id);
            let last_generated = page.info.map_or(from, |info| info.last_generated);
            let until = next.unwrap_or(last_generated).max(from);
            items.push(Item::Gap {
                kind,
                until: shared.then_some(until),
                next,
            });
            if shared {
                position = match kind {
                    GapKind::Unknown => StreamId::ZERO,
                    _ => until,
                };
            }
        }
        for entry in page.entries {
            position = entry.id;
            let decoded = entry
                .json
                .and_then(|json| serde_json::from_slice::<T>(&json).map_err(|e| e.to_string()));
            items.push(match decoded {
                Ok(data) => Item::Event(Published::new(entry.id, data)),
                Err(reason) => Item::Undecodable {
                    id: entry.id,
                    reason: reason.into(),
                },
            });
        }
        (items, position)
    }
}

/// One topic of one publisher instance.
pub(crate) struct Topic<T> {
    pub(crate) name: Arc<str>,
    pub(crate) key: Arc<str>,
    pub(crate) state: Mutex<TopicState<T>>,
}

pub(crate) struct TopicState<T> {
    /// The id of the last entry the reader fanned out (or where it started).
    position: StreamId,
    slots: HashMap<u64, Slot<T>>,
    next_slot: u64,
    /// Left the publisher's map (no subscriber left, or the publisher closed): the reader stops.
    pub(crate) removed: bool,
    /// The publisher's last handle is gone: subscriptions drain and end.
    pub(crate) closed: bool,
    /// Dropping it stops the reader.
    stop: Option<Sender<()>>,
}

struct Slot<T> {
    tx: Sender<Item<T>>,
    /// Set when the subscriber's buffer was full: the reader skips it until it rejoins.
    overflow: Arc<AtomicBool>,
}

/// A subscriber's place in a topic.
pub(crate) struct Registration<T> {
    pub(crate) slot: u64,
    pub(crate) rx: Receiver<Item<T>>,
    pub(crate) overflow: Arc<AtomicBool>,
    /// The reader delivers every entry after this id; the subscriber reads those up to it.
    pub(crate) live_from: StreamId,
}

impl<T> Topic<T> {
    /// A topic whose reader starts after `start`, and the receiver that tells it to stop.
    pub(crate) fn new(name: &str, key: String, start: StreamId) -> (Arc<Self>, Receiver<()>) {
        let (stop, stopped) = async_channel::bounded(1);
        let topic = Arc::new(Self {
            name: name.into(),
            key: key.into(),
            state: Mutex::new(TopicState {
                position: start,
                slots: HashMap::new(),
                next_slot: 0,
                removed: false,
                closed: false,
                stop: Some(stop),
            }),
        });
        (topic, stopped)
    }

    fn position(&self) -> StreamId {
        lock(&self.state).position
    }

    /// Fans `items` out to every subscriber keeping up and moves the position past them, in one
    /// critical section (see the module doc).
    fn deliver(&self, items: &[Item<T>], position: StreamId) {
        let mut state = lock(&self.state);
        if state.removed {
            return;
        }
        for slot in state.slots.values_mut() {
            if slot.overflow.load(Ordering::Relaxed) {
                continue;
            }
            for item in items {
                match slot.tx.try_send(item.clone()) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_) | TrySendError::Closed(_)) => {
                        // Too far behind for its buffer: it will catch up from Redis itself.
                        // Never wait for it: one slow subscriber must not hold up the others.
                        slot.overflow.store(true, Ordering::Release);
                        break;
                    }
                }
            }
        }
        state.position = position;
    }
}

impl<T> TopicState<T> {
    /// Adds a subscriber with a buffer of `buffer` events (at least 1).
    pub(crate) fn register(&mut self, buffer: usize) -> Registration<T> {
        let (tx, rx) = async_channel::bounded(buffer.max(1));
        let overflow = Arc::new(AtomicBool::new(false));
        let slot = self.next_slot;
        self.next_slot += 1;
        self.slots.insert(
            slot,
            Slot {
                tx,
                overflow: Arc::clone(&overflow),
            },
        );
        Registration {
            slot,
            rx,
            overflow,
            live_from: self.position,
        }
    }

    /// Gives an overflowed subscriber a fresh buffer from the current position on. `None` once
    /// the topic closed.
    pub(crate) fn rejoin(
        &mut self,
        slot: u64,
        buffer: usize,
    ) -> Option<(Receiver<Item<T>>, StreamId)> {
        if self.closed {
            return None;
        }
        let entry = self.slots.get_mut(&slot)?;
        let (tx, rx) = async_channel::bounded(buffer.max(1));
        entry.tx = tx;
        entry.overflow.store(false, Ordering::Release);
        Some((rx, self.position))
    }

    /// Removes a subscriber; returns whether none is left.
    pub(crate) fn release(&mut self, slot: u64) -> bool {
        self.slots.remove(&slot);
        self.slots.is_empty()
    }

    pub(crate) fn subscribers(&self) -> usize {
        self.slots.len()
    }

    /// Stops the reader (when the last subscriber leaves or the publisher closes).
    pub(crate) fn stop_reader(&mut self) {
        self.removed = true;
        self.stop = None;
    }

    /// Ends every subscription once it has drained its buffer.
    pub(crate) fn close(&mut self) {
        self.closed = true;
        self.stop_reader();
        for slot in self.slots.values() {
            slot.tx.close();
        }
    }
}

/// Counts a running reader for as long as it lives.
struct Running(Arc<AtomicUsize>);

impl Running {
    fn new(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(count))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Starts the topic's reader on the application's runtime. It runs until `stopped` says so
/// (the topic's last subscriber left, or the publisher closed).
pub(crate) fn start_reader<T>(inner: &Arc<Inner<T>>, topic: &Arc<Topic<T>>, stopped: Receiver<()>)
where
    T: DeserializeOwned + Send + Sync + 'static,
{
    let running = Running::new(&inner.readers);
    let runtime = Arc::clone(&inner.runtime);
    let inner = Arc::clone(inner);
    let topic = Arc::clone(topic);
    let task = async move {
        let _running = running;
        let reading = pin!(read(inner, topic));
        let stop = pin!(stopped.recv());
        // Whichever ends first: the read loop never ends by itself, so this is the stop. The
        // reader's connection is dropped with it, which closes it.
        futures_util::future::select(reading, stop).await;
    };
    runtime.spawn(Box::pin(task));
}

/// The reader: read what follows the position, fan it out, wait for more; on any Redis error
/// drop the connection, back off, reconnect and go on from the same position, so nothing
/// published meanwhile is lost.
async fn read<T>(inner: Arc<Inner<T>>, topic: Arc<Topic<T>>)
where
    T: DeserializeOwned + Send + Sync + 'static,
{
    let config = &inner.config;
    let mut conn: Option<ReaderConnection> = None;
    let mut backoff = config.backoff.0;
    loop {
        let result = async {
            let conn = match &mut conn {
                Some(conn) => conn,
                None => conn.insert(reader_connection(&inner, &topic.name, &topic.key).await?),
            };
            let from = topic.position();
            conn.ask().await?;
            let atomic = conn.atomic();
            let page =
                stream::read(&mut conn.conn, atomic, &topic.key, from, None, config.page).await?;
            if page.entries.is_empty() && page.gap.is_none() {
                conn.ask().await?;
                stream::wait(&mut conn.conn, &topic.key, from, config.block).await?;
            } else {
                let (items, position) = Item::from_page(from, page, true);
                topic.deliver(&items, position);
            }
            Ok::<_, redis::RedisError>(())
        }
        .await;
        match result {
            Ok(()) => backoff = config.backoff.0,
            Err(err) => {
                tracing::warn!(topic = %topic.name, error = %err, retry_in = ?backoff,
                    "reading the topic's Redis stream failed; reconnecting");
                conn = None;
                inner.runtime.sleep(backoff).await;
                backoff = (backoff * 2).min(config.backoff.1);
            }
        }
    }
}

/// The reader's own connection (a blocking read would hold up anything else sent on it), to
/// the server or to the master of the topic's slot, named after the topic so that `CLIENT
/// LIST` shows one per topic and instance.
async fn reader_connection<T>(
    inner: &Inner<T>,
    topic: &str,
    key: &str,
) -> redis::RedisResult<ReaderConnection> {
    // Allow for the blocking read on top of the usual reply time.
    let timeout = inner.config.block + inner.config.response_timeout;
    let mut reader = inner.backend.reader_connection(key, timeout).await?;
    stream::prepare_reader(&mut reader.conn).await?;
    let name: String = format!("outer-reader:{topic}")
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .take(128)
        .collect();
    let named: redis::RedisResult<redis::Value> = redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg(name)
        .query_async(&mut reader.conn)
        .await;
    match named {
        // The name is only for people reading `CLIENT LIST`: a server that refuses it (an ACL
        // without `client`) still serves the reader.
        Err(err) if !stream::broken(&err) => {
            tracing::debug!(error = %err, "Redis refused CLIENT SETNAME for a reader");
        }
        Err(err) => return Err(err),
        Ok(_) => {}
    }
    Ok(reader)
}
