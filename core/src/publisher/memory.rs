//! The in-process publisher: topics in a map, each a shared ring of recent events that its
//! subscribers read with a cursor. Not shared between processes; see the `Publisher` trait.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use core::fmt;
use core::marker::PhantomData;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};
use core::time::Duration;

use futures_core::Stream;

use super::topic::{Evicted, Retention, Topic, TopicState, Wakers};
use super::{
    Gap, GapKind, GapPolicy, Published, Publisher, SeqId, SubscribeError, SubscribeOptions,
};
use crate::event::EventId;
use crate::rt::Timer;
use crate::sync::{arc_dyn, Arc, AtomicUsize, Mutex, Ordering};

/// Events a subscription copies out per lock: enough to make the lock cheap per event, few enough
/// that a subscriber holds little the ring has already let go of.
const BATCH: usize = 32;

/// The largest id [`MemoryPublisherBuilder::ids_after`] accepts: it leaves 2^63 ids to assign,
/// more than any process publishes, so the sequence can never wrap around.
const MAX_IDS_AFTER: u64 = u64::MAX >> 1;

/// An in-process [`Publisher`]: fans events out to subscribers in this process and keeps recent
/// events per topic for resume.
///
/// - **Ids**: a [`SeqId`] per topic, growing by one per publish, starting at 1.
/// - **Retention**: each topic keeps its last 1024 events (see [`builder`](Self::builder) for
///   other counts and for an age limit). More precisely it keeps a *window* of the last
///   `max(retention, largest buffer of a live subscriber)` events; the ring that holds it is
///   shared by all subscribers, who each hold only a cursor into it.
/// - **Resume**: subscribing with a last event id replays the window after it, then goes live.
///   Both happen under the topic's lock, so a publish racing the subscribe is delivered exactly
///   once. A resume point no longer in the window, or never assigned, yields a [`Gap`].
/// - **Slow subscribers**: a subscriber may fall behind by the whole window (at least its
///   `buffer`). Past that its next event has left the window: it gets a [`Gap`] and, by
///   [`GapPolicy`], ends or skips ahead. The publisher never waits for anyone, and memory per
///   topic stays within the window.
/// - **Cleanup**: dropping a subscription unregisters it at once; a topic with no subscriber
///   and no event retained is removed from the map. Ids of a topic removed and created again
///   keep growing: a resume point from its earlier life yields a [`Gap`], never a wrong replay.
/// - **Closing**: when the last clone of the publisher is dropped, subscriptions deliver what
///   the window still holds for them and end.
///
/// ```
/// use futures::{executor::block_on, StreamExt};
/// use outer_core::publisher::{GapKind, MemoryPublisher, SeqId, SubscribeOptions};
///
/// let publisher = MemoryPublisher::builder().retain_last(2).build();
/// let mut live = publisher.subscribe_now("scores", SubscribeOptions::new()).unwrap();
/// for score in [10, 20, 30] {
///     publisher.publish_now("scores", score);
/// }
/// assert_eq!(publisher.subscriber_count("scores"), 1);
///
/// let got: Vec<i32> = block_on(live.by_ref().take(3).map(|e| *e.unwrap()).collect());
/// assert_eq!(got, [10, 20, 30]);
/// drop(live);
/// assert_eq!(publisher.subscriber_count("scores"), 0);
///
/// // With no subscriber's buffer to cover more, only the last two are kept: resuming from
/// // the start is a gap, said out loud.
/// let mut late = publisher
///     .subscribe_now("scores", SubscribeOptions::new().resume_after(SeqId::new(0)))
///     .unwrap();
/// let gap = block_on(late.next()).unwrap().unwrap_err();
/// assert_eq!((gap.kind(), gap.missed()), (GapKind::Expired, Some(1)));
/// ```
pub struct MemoryPublisher<T> {
    inner: Arc<Inner<T>>,
}

struct Inner<T> {
    retention: Retention,
    clock: Option<Arc<dyn Timer>>,
    max_buffer: usize,
    topics: Mutex<Topics<T>>,
    /// Clones of the publisher alive; subscriptions don't count. At zero, topics close.
    handles: AtomicUsize,
}

struct Topics<T> {
    map: BTreeMap<Arc<str>, Arc<Topic<T>>>,
    /// The highest id given out by any topic no longer in the map. A topic (re)created starts
    /// above it, so a topic's ids only grow even across its removal, and an old id can't pass
    /// for a new one. One number for all topics: remembering each removed topic would cost the
    /// memory its removal is meant to free.
    high_water: u64,
    closed: bool,
}

/// Configures a [`MemoryPublisher`].
///
/// ```
/// use std::time::Duration;
/// use outer_core::publisher::MemoryPublisher;
/// use outer_core::rt::Timer;
///
/// // `runtime`: your adapter's (`outer_tokio::TokioRuntime`, `outer_smol::SmolRuntime`).
/// fn publisher(runtime: impl Timer) -> MemoryPublisher<String> {
///     MemoryPublisher::builder()
///         .retain_last(10_000)
///         .retain_for(Duration::from_secs(300), runtime)
///         .build()
/// }
/// # let _ = |runtime: std::sync::Arc<dyn Timer>| publisher(runtime);
/// ```
pub struct MemoryPublisherBuilder<T> {
    retain_last: usize,
    retain_for: Option<(u64, Arc<dyn Timer>)>,
    max_buffer: usize,
    ids_after: u64,
    // The builder holds no T; `fn() -> T` keeps it Send and Sync whatever T is.
    data: PhantomData<fn() -> T>,
}

impl<T> MemoryPublisherBuilder<T> {
    /// Each topic keeps at most this many recent events for resume (default 1024). 0 keeps
    /// none: subscribers still get what their buffers cover, but a resume is a gap.
    pub fn retain_last(mut self, events: usize) -> Self {
        self.retain_last = events;
        self
    }

    /// Each topic also forgets events once they are `max_age` old, by `timer`'s clock
    /// ([`Timer::now`]): the runtime's.
    ///
    /// Events are forgotten when the topic is next published to or subscribed to, or by
    /// [`MemoryPublisher::sweep`]; call that from a timer if quiet topics should be freed too.
    pub fn retain_for(mut self, max_age: Duration, timer: impl Timer) -> Self {
        // A u64 of milliseconds covers 584 million years: saturating is only for form's sake.
        let millis = u64::try_from(max_age.as_millis()).unwrap_or(u64::MAX);
        self.retain_for = Some((millis, arc_dyn!(timer => dyn Timer)));
        self
    }

    /// Caps the buffer a subscriber may ask for (default 65,536): a topic's window, and so its
    /// memory, never exceeds the larger of this and `retain_last`. A buffer is at least 1 event
    /// whatever this says.
    pub fn max_buffer(mut self, events: usize) -> Self {
        self.max_buffer = events;
        self
    }

    /// Every id this publisher assigns is greater than `id`. Seeding it from a wall clock (e.g.
    /// Unix milliseconds × 1000) at start-up keeps ids growing across restarts, so a client's
    /// id from before a restart reads as older, not as a valid position in the new numbering.
    ///
    /// Values above 2^63 − 1 are taken as 2^63 − 1, so that ids can never run out and wrap.
    pub fn ids_after(mut self, id: u64) -> Self {
        self.ids_after = id.min(MAX_IDS_AFTER);
        self
    }

    /// Builds the publisher.
    pub fn build(self) -> MemoryPublisher<T> {
        let (max_age, clock) = match self.retain_for {
            Some((max_age, clock)) => (Some(max_age), Some(clock)),
            None => (None, None),
        };
        MemoryPublisher {
            inner: Arc::new(Inner {
                retention: Retention {
                    last: self.retain_last,
                    max_age,
                },
                clock,
                max_buffer: self.max_buffer,
                topics: Mutex::new(Topics {
                    map: BTreeMap::new(),
                    high_water: self.ids_after,
                    closed: false,
                }),
                handles: AtomicUsize::new(1),
            }),
        }
    }
}

impl<T> Default for MemoryPublisherBuilder<T> {
    fn default() -> Self {
        Self {
            retain_last: 1024,
            retain_for: None,
            max_buffer: 1 << 16,
            ids_after: 0,
            data: PhantomData,
        }
    }
}

impl<T> fmt::Debug for MemoryPublisherBuilder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryPublisherBuilder")
            .field("retain_last", &self.retain_last)
            .field("retain_for_ms", &self.retain_for.as_ref().map(|(ms, _)| ms))
            .field("max_buffer", &self.max_buffer)
            .field("ids_after", &self.ids_after)
            .finish()
    }
}

impl<T> MemoryPublisher<T> {
    /// A publisher that keeps the last 1024 events of each topic.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// Configures one.
    pub fn builder() -> MemoryPublisherBuilder<T> {
        MemoryPublisherBuilder::default()
    }

    /// Publishes `data` on `topic` and returns its id. Never waits: a subscriber too slow to
    /// keep up finds out from a [`Gap`], not by slowing this down.
    pub fn publish_now(&self, topic: &str, mut data: T) -> SeqId {
        let inner = &*self.inner;
        let now = inner.now();
        loop {
            let found = inner.topics.with(|topics| match topics.map.get(topic) {
                Some(found) => Ok(Arc::clone(found)),
                None if inner.retention.last == 0 => {
                    // Nobody listens and nothing is kept: the event goes nowhere, and a topic
                    // made only to be removed again would cost two allocations.
                    topics.high_water += 1;
                    Err(SeqId::new(topics.high_water))
                }
                None => Ok(topics.create(topic)),
            });
            let topic = match found {
                Ok(topic) => topic,
                Err(id) => return id,
            };
            let mut dead = Evicted::new();
            let published = topic.state.with(|state| {
                if state.removed {
                    // Removed between the map lookup and this lock: look it up again.
                    return Err(data);
                }
                let id = state.push(data, now.unwrap_or(0));
                state.evict(inner.retention, now, &mut dead);
                Ok((id, topic.take_waiting(state), state.is_idle()))
            });
            let (id, waiting, idle) = match published {
                Ok(published) => published,
                Err(back) => {
                    data = back;
                    continue;
                }
            };
            waiting.wake();
            if idle {
                inner.remove_if_idle(&topic);
            }
            return id;
        }
    }

    /// Subscribes to `topic`. With `options.last_event_id`, the subscription first replays every
    /// retained event after it, then goes live; without one it starts with the next publish.
    ///
    /// Fails only if the last event id is not a [`SeqId`]; a well-formed one that cannot be
    /// resumed from shows up as a [`Gap`] in the stream.
    pub fn subscribe_now(
        &self,
        topic: &str,
        options: SubscribeOptions,
    ) -> Result<Subscription<T>, SubscribeError> {
        let resume = match options.last_event_id.as_ref().map(EventId::as_str) {
            // SSE's empty id means "no id": the client has nothing to resume from.
            None | Some("") => None,
            Some(text) => Some(SeqId::parse(text)?.get()),
        };
        let inner = &self.inner;
        // At least one event: with none, even a subscriber that keeps up would lag on every
        // publish, since it reads after the publish, never during it.
        let buffer = options.buffer.min(inner.max_buffer).max(1);
        let ends = options.on_gap == GapPolicy::End;
        let now = inner.now();
        loop {
            let topic = inner.topics.with(|topics| match topics.map.get(topic) {
                Some(found) => Arc::clone(found),
                None => topics.create(topic),
            });
            let mut dead = Evicted::new();
            let registered = topic.state.with(|state| {
                if state.removed {
                    return None;
                }
                // Forget expired events first, so a resume is judged against what is really
                // kept.
                state.evict(inner.retention, now, &mut dead);
                let slot = state.register(buffer);
                Some((slot, resume_point(state, resume, ends)))
            });
            let Some((slot, (cursor, gap))) = registered else {
                continue;
            };
            return Ok(Subscription {
                inner: Arc::clone(inner),
                topic,
                slot,
                buffer,
                cursor,
                local: VecDeque::new(),
                on_gap: options.on_gap,
                gap,
                parked: None,
                registered: true,
            });
        }
    }

    /// How many subscriptions to `topic` are alive now.
    pub fn subscriber_count(&self, topic: &str) -> usize {
        self.inner
            .find(topic)
            .map_or(0, |t| t.state.with(|state| state.subscribers()))
    }

    /// How many events `topic` holds now (its retention and its subscribers' buffers).
    pub fn retained(&self, topic: &str) -> usize {
        self.inner
            .find(topic)
            .map_or(0, |t| t.state.with(|state| state.retained()))
    }

    /// How many topics exist: those with a subscriber or a retained event. For leak tests and
    /// metrics.
    pub fn topic_count(&self) -> usize {
        self.inner.topics.with(|topics| topics.map.len())
    }

    /// Forgets events older than the configured age on every topic and removes topics left
    /// empty. Without [`retain_for`](MemoryPublisherBuilder::retain_for) there is nothing to
    /// do: empty topics are removed as soon as they empty.
    pub fn sweep(&self) {
        let Some(now) = self.inner.now() else {
            return;
        };
        let topics: Vec<_> = self
            .inner
            .topics
            .with(|topics| topics.map.values().cloned().collect());
        for topic in topics {
            let mut dead = Evicted::new();
            let idle = topic.state.with(|state| {
                state.evict(self.inner.retention, Some(now), &mut dead);
                state.is_idle()
            });
            if idle {
                self.inner.remove_if_idle(&topic);
            }
        }
    }
}

/// Where a new subscription starts, and the gap it must report first, if any.
fn resume_point<T>(state: &TopicState<T>, resume: Option<u64>, ends: bool) -> (u64, Option<Gap>) {
    let (front, next) = (state.front(), state.next());
    let Some(last) = resume else {
        return (next, None);
    };
    if last >= next {
        let gap = Gap::new(
            GapKind::Unknown,
            SeqId::new(last),
            Some(SeqId::new(front)),
            None,
            ends,
        );
        return (front, Some(gap));
    }
    // last < next, so last + 1 cannot overflow.
    if last + 1 < front {
        // Below `first` the ids belong to an earlier life of the topic (or to other topics):
        // how many of them were this topic's is not known.
        let missed = (last + 1 >= state.first()).then(|| front - (last + 1));
        let gap = Gap::new(
            GapKind::Expired,
            SeqId::new(last),
            Some(SeqId::new(front)),
            missed,
            ends,
        );
        return (front, Some(gap));
    }
    (last + 1, None)
}

impl<T> Inner<T> {
    fn now(&self) -> Option<u64> {
        // Milliseconds in a u64 last 584 million years.
        self.clock
            .as_ref()
            .map(|clock| u64::try_from(clock.now().as_millis()).unwrap_or(u64::MAX))
    }

    fn find(&self, topic: &str) -> Option<Arc<Topic<T>>> {
        self.topics.with(|topics| topics.map.get(topic).cloned())
    }

    /// Removes `topic` from the map if it is still idle: checked under both locks (map first,
    /// the order everywhere), so a publish or subscribe that got in first keeps it.
    fn remove_if_idle(&self, topic: &Arc<Topic<T>>) {
        self.topics.with(|topics| {
            let removed = topic.state.with(|state| {
                if state.removed || !state.is_idle() {
                    return false;
                }
                state.removed = true;
                topics.high_water = topics.high_water.max(state.next() - 1);
                true
            });
            if removed
                && topics
                    .map
                    .get(&*topic.name)
                    .is_some_and(|found| Arc::ptr_eq(found, topic))
            {
                topics.map.remove(&*topic.name);
            }
        });
    }

    fn close(&self) {
        let waiting: Vec<_> = self.topics.with(|topics| {
            topics.closed = true;
            topics
                .map
                .values()
                .map(|topic| {
                    topic.state.with(|state| {
                        state.closed = true;
                        topic.take_waiting(state)
                    })
                })
                .collect()
        });
        waiting.into_iter().for_each(Wakers::wake);
    }
}

impl<T> Topics<T> {
    fn create(&mut self, name: &str) -> Arc<Topic<T>> {
        let topic = Arc::new(Topic::new(name, self.high_water + 1));
        if self.closed {
            // Unreachable while a handle exists to call this; kept so a closed publisher can
            // never hand out a subscription that waits forever.
            topic.state.with(|state| state.closed = true);
        }
        self.map.insert(Arc::clone(&topic.name), Arc::clone(&topic));
        topic
    }
}

impl<T> Default for MemoryPublisher<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Clone for MemoryPublisher<T> {
    fn clone(&self) -> Self {
        self.inner.handles.fetch_add(1, Ordering::Relaxed);
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T> Drop for MemoryPublisher<T> {
    fn drop(&mut self) {
        if self.inner.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.inner.close();
        }
    }
}

impl<T> fmt::Debug for MemoryPublisher<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryPublisher")
            .field("retain_last", &self.inner.retention.last)
            .field("retain_for_ms", &self.inner.retention.max_age)
            .field("topics", &self.topic_count())
            .finish()
    }
}

impl<T: serde::Serialize + Send + Sync + 'static> Publisher<T> for MemoryPublisher<T> {
    type Id = SeqId;
    /// Only subscribe fails, and only on a malformed last event id; publish never does.
    type Error = SubscribeError;
    type StreamError = Gap;
    type Subscription = Subscription<T>;

    async fn publish(&self, topic: &str, data: T) -> Result<SeqId, SubscribeError> {
        Ok(MemoryPublisher::publish_now(self, topic, data))
    }

    async fn subscribe(
        &self,
        topic: &str,
        options: SubscribeOptions,
    ) -> Result<Subscription<T>, SubscribeError> {
        MemoryPublisher::subscribe_now(self, topic, options)
    }
}

/// A subscription to one topic of a [`MemoryPublisher`]: a [`Stream`] of its events, each
/// `Ok(`[`Published`]`)`, with an `Err(`[`Gap`]`)` wherever events could not be delivered.
///
/// It is a cursor into the topic's shared ring plus a few events copied out at a time, so
/// subscribers cost little however many there are. Dropping it unsubscribes at once. It ends
/// after a gap under [`GapPolicy::End`], or once the publisher's last handle is dropped.
///
/// ```
/// use futures::{executor::block_on, StreamExt};
/// use outer_core::publisher::{MemoryPublisher, SubscribeOptions};
///
/// let publisher = MemoryPublisher::new();
/// let sub = publisher.subscribe_now("t", SubscribeOptions::new()).unwrap();
/// publisher.publish_now("t", 'a');
/// publisher.publish_now("t", 'b');
/// drop(publisher);
/// let ids: Vec<String> = block_on(sub.map(|e| e.unwrap().id().to_string()).collect());
/// assert_eq!(ids, ["1", "2"]);
/// ```
pub struct Subscription<T> {
    inner: Arc<Inner<T>>,
    topic: Arc<Topic<T>>,
    slot: usize,
    buffer: usize,
    /// The id of the next event to take from the ring.
    cursor: u64,
    /// Events taken from the ring, not yet yielded.
    local: VecDeque<Published<T>>,
    on_gap: GapPolicy,
    /// A gap found at subscribe time, yielded first.
    gap: Option<Gap>,
    /// The epoch it parked in and the waker it parked with, while that parking may still hold.
    parked: Option<(u64, Waker)>,
    registered: bool,
}

impl<T> Subscription<T> {
    /// The topic subscribed to.
    pub fn topic(&self) -> &str {
        &self.topic.name
    }

    /// Leaves the topic: once ended, a subscription no longer counts or holds events back.
    fn unregister(&mut self) {
        if !self.registered {
            return;
        }
        self.registered = false;
        // Read the clock before locking: it is user code, which must not run under the lock.
        let now = self.inner.now();
        let mut dead = Evicted::new();
        let idle = self.topic.state.with(|state| {
            state.release(self.slot, self.buffer);
            // Its buffer may have been what kept old events: the window may shrink now.
            state.evict(self.inner.retention, now, &mut dead);
            state.is_idle()
        });
        if idle {
            self.inner.remove_if_idle(&self.topic);
        }
    }
}

impl<T> Stream for Subscription<T> {
    type Item = Result<Published<T>, Gap>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // A handler that subscribes again on every gap would otherwise loop without end inside
        // one poll: the budget makes it yield (see `crate::coop`).
        let this = self.get_mut();
        crate::coop::poll_spending(cx, |cx| this.poll_answer(cx))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let more = if self.registered || self.gap.is_some() {
            None
        } else {
            Some(self.local.len())
        };
        (self.local.len(), more)
    }
}

impl<T> Subscription<T> {
    /// The next event or gap, without the budget.
    fn poll_answer(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Published<T>, Gap>>> {
        let this = self;
        if let Some(event) = this.local.pop_front() {
            return Poll::Ready(Some(Ok(event)));
        }
        if let Some(gap) = this.gap.take() {
            if gap.ends_subscription() {
                this.unregister();
            }
            return Poll::Ready(Some(Err(gap)));
        }
        if !this.registered {
            return Poll::Ready(None);
        }
        if let Some((epoch, waker)) = &this.parked {
            if this.topic.still_parked(*epoch) && waker.will_wake(cx.waker()) {
                // Nothing new and the same task to wake: no need to take the lock.
                return Poll::Pending;
            }
        }
        let waker = cx.waker();
        let read = this.topic.state.with(|state| {
            let front = state.front();
            if this.cursor < front {
                return Read::Lagged { front };
            }
            if this.cursor < state.next() {
                this.cursor += state.copy_into(this.cursor, BATCH, &mut this.local);
                if this.cursor == state.next() && !state.closed {
                    // Caught up: park now, in the same lock, so that asking again once these
                    // events are yielded needs no lock unless something was published meanwhile.
                    let epoch = state.park(this.slot, waker);
                    remember_parking(&mut this.parked, epoch, waker);
                }
                return Read::Copied;
            }
            if state.closed {
                return Read::Closed;
            }
            Read::Parked {
                epoch: state.park(this.slot, waker),
            }
        });
        match read {
            Read::Lagged { front } => {
                let ends = this.on_gap == GapPolicy::End;
                let gap = Gap::new(
                    GapKind::Lagged,
                    SeqId::new(this.cursor.saturating_sub(1)),
                    Some(SeqId::new(front)),
                    Some(front - this.cursor),
                    ends,
                );
                if ends {
                    this.unregister();
                } else {
                    this.cursor = front;
                }
                Poll::Ready(Some(Err(gap)))
            }
            Read::Copied => Poll::Ready(this.local.pop_front().map(Ok)),
            Read::Closed => {
                this.unregister();
                Poll::Ready(None)
            }
            Read::Parked { epoch } => {
                remember_parking(&mut this.parked, epoch, waker);
                Poll::Pending
            }
        }
    }
}

/// What one look at the topic under its lock found, acted on after the lock.
enum Read {
    /// The ring moved past the cursor: events were lost, the ring now starts at `front`.
    Lagged { front: u64 },
    /// Events were copied into the local batch.
    Copied,
    /// Caught up with a closed topic: the end.
    Closed,
    /// Caught up and parked until the next publish.
    Parked { epoch: u64 },
}

/// Notes where a subscription parked, for `Subscription::parked`.
fn remember_parking(parked: &mut Option<(u64, Waker)>, epoch: u64, waker: &Waker) {
    match parked {
        // Same task as last time: keep the clone we have rather than make another.
        Some((parked_in, known)) if known.will_wake(waker) => *parked_in = epoch,
        _ => *parked = Some((epoch, waker.clone())),
    }
}

impl<T> Drop for Subscription<T> {
    fn drop(&mut self) {
        self.unregister();
    }
}

impl<T> fmt::Debug for Subscription<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("topic", &self.topic.name)
            .field("next_id", &SeqId::new(self.cursor))
            .field("buffered", &self.local.len())
            .field("ended", &!self.registered)
            .finish()
    }
}
