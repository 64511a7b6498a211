//! A subscription: a stream of a topic's events for one subscriber, caught up from Redis where
//! it must be (a resume, or after falling behind its buffer) and fed by the topic's shared
//! reader otherwise. Not the reader itself: see `topic`.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use async_channel::Receiver;
use futures_core::Stream;
use outer_core::publisher::{GapKind, GapPolicy, Published};
use outer_core::rt::Sleep;
use serde::de::DeserializeOwned;

use crate::error::{Gap, RecvError};
use crate::id::StreamId;
use crate::stream::{self, Page};
use crate::topic::{lock, Item, Registration, Topic};
use crate::Inner;

type Fetch = Pin<Box<dyn Future<Output = redis::RedisResult<Page>> + Send>>;

/// A subscription to one topic of a [`RedisPublisher`](crate::RedisPublisher): a [`Stream`]
/// of its events, each `Ok(`[`Published`]`)` with its stream id, with an `Err(`[`RecvError`]`)`
/// wherever events could not be delivered.
///
/// It first catches up from Redis (everything after its last event id, read page by page),
/// then takes live events from the topic's shared reader through a buffer of its own. If it
/// falls further behind than that buffer, it does not lose events: it catches up from Redis
/// again, and only reports a [`Gap`] (as [`GapKind::Lagged`]) if the stream trimmed them
/// first. It never yields an id twice or out of order. Dropping it unsubscribes at once; it
/// ends after a gap under [`GapPolicy::End`], or once the publisher's last handle is dropped.
///
/// ```no_run
/// use futures::StreamExt;
/// use outer_core::publisher::SubscribeOptions;
/// use outer_redis::{RedisPublisher, StreamId};
///
/// # async fn run() -> Result<(), outer_redis::Error> {
/// let publisher =
///     RedisPublisher::<String>::builder("redis://127.0.0.1:6379").build(outer_tokio::TokioRuntime)?;
/// let last = StreamId::parse("1700000000000-0@3fa9c2d1")?; // a client's Last-Event-ID
/// let mut sub = publisher
///     .subscribe("chat", SubscribeOptions::new().resume_after(last))
///     .await?;
/// while let Some(event) = sub.next().await {
///     match event {
///         Ok(event) => println!("{} {}", event.id(), *event),
///         Err(err) => eprintln!("{err}"),
///     }
/// }
/// # Ok(())
/// # }
/// ```
pub struct Subscription<T> {
    inner: Arc<Inner<T>>,
    topic: Arc<Topic<T>>,
    slot: u64,
    /// Boxed: a receiver is not `Unpin` (it may hold a registered listener).
    rx: Pin<Box<Receiver<Item<T>>>>,
    overflow: Arc<AtomicBool>,
    buffer: usize,
    on_gap: GapPolicy,
    /// The id of the last event yielded (or the resume point): only later ones are yielded.
    cursor: StreamId,
    catch_up: Option<CatchUp>,
    /// Items taken (from a page or the buffer) and not yet yielded: at most one page.
    ready: VecDeque<Item<T>>,
    registered: bool,
}

/// Reading from Redis what the reader will not deliver: the entries after `from`, up to the
/// position the subscriber (re)joined the reader at.
struct CatchUp {
    from: StreamId,
    upto: StreamId,
    /// Read at least once even if there is nothing to read: a resume point is judged.
    judge: bool,
    /// Catching up after falling behind: a gap here is `Lagged`.
    lagged: bool,
    fetch: Option<Fetch>,
    pause: Option<Sleep>,
    backoff: Duration,
}

impl<T> Subscription<T>
where
    T: DeserializeOwned + Send + Sync + 'static,
{
    pub(crate) fn new(
        inner: Arc<Inner<T>>,
        topic: Arc<Topic<T>>,
        registration: Registration<T>,
        resume: Option<StreamId>,
        buffer: usize,
        on_gap: GapPolicy,
    ) -> Self {
        let live_from = registration.live_from;
        let backoff = inner.config.backoff.0;
        let catch_up = resume.map(|from| CatchUp {
            from,
            upto: live_from,
            judge: true,
            lagged: false,
            fetch: None,
            pause: None,
            backoff,
        });
        Self {
            inner,
            topic,
            slot: registration.slot,
            rx: Box::pin(registration.rx),
            overflow: registration.overflow,
            buffer,
            on_gap,
            cursor: resume.unwrap_or(live_from),
            catch_up,
            ready: VecDeque::new(),
            registered: true,
        }
    }

    /// The topic subscribed to.
    pub fn topic(&self) -> &str {
        &self.topic.name
    }

    /// The id of the last event yielded, or the resume point before the first.
    pub fn last_id(&self) -> StreamId {
        self.cursor
    }

    /// Decides what an item becomes for this subscriber: an event or error to yield, or
    /// nothing (an id already yielded, a gap that does not concern it).
    fn accept(&mut self, item: Item<T>) -> Option<Result<Published<T, StreamId>, RecvError>> {
        match item {
            Item::Event(event) => {
                if event.id().position() <= self.cursor.position() {
                    return None;
                }
                self.cursor = *event.id();
                Some(Ok(event))
            }
            Item::Undecodable { id, reason } => {
                if id.position() <= self.cursor.position() {
                    return None;
                }
                self.cursor = id;
                Some(Err(RecvError::Undecodable {
                    id,
                    reason: reason.to_string(),
                }))
            }
            Item::Gap {
                kind, until, next, ..
            } => {
                // The reader's gap may lie wholly before this subscriber's position (it resumed
                // after events this instance had not read yet): then nothing was lost to it.
                if kind != GapKind::Unknown
                    && until.is_some_and(|until| until.position() <= self.cursor.position())
                {
                    return None;
                }
                let ends = self.on_gap == GapPolicy::End;
                let gap = Gap::new(kind, self.cursor, next, None, ends);
                if ends {
                    self.end();
                } else if kind == GapKind::Unknown {
                    // Another life of the stream: its ids start over.
                    self.cursor = StreamId::ZERO;
                }
                Some(Err(RecvError::Gap(gap)))
            }
        }
    }

    /// Takes a caught-up page into `ready` and says where the catch-up goes next.
    fn take_page(&mut self, page: Page) {
        let Some(catch_up) = self.catch_up.as_mut() else {
            return;
        };
        let complete = page.complete || page.entries.is_empty();
        let from = catch_up.from;
        let mut page = page;
        if catch_up.lagged && page.gap == Some(GapKind::Expired) {
            page.gap = Some(GapKind::Lagged);
        }
        let unknown = page.gap == Some(GapKind::Unknown);
        let (items, position) = Item::from_page(from, page, false);
        catch_up.from = position;
        self.ready.extend(items);
        if unknown && self.on_gap == GapPolicy::Skip {
            // Read the new life of the stream from its start, up to where the reader is.
            catch_up.from = StreamId::ZERO;
        } else if complete {
            self.catch_up = None;
        }
    }

    /// Rejoins the reader after falling behind: a fresh buffer from its current position, and a
    /// catch-up from Redis for everything between this subscriber's last event and there.
    fn rejoin(&mut self) {
        let rejoined = lock(&self.topic.state).rejoin(self.slot, self.buffer);
        match rejoined {
            Some((rx, live_from)) => {
                self.rx = Box::pin(rx);
                self.catch_up = Some(CatchUp {
                    from: self.cursor,
                    upto: live_from,
                    judge: false,
                    lagged: true,
                    fetch: None,
                    pause: None,
                    backoff: self.inner.config.backoff.0,
                });
            }
            None => self.end(),
        }
    }

    /// Leaves the topic: nothing more is yielded.
    fn end(&mut self) {
        self.ready.clear();
        self.catch_up = None;
        if self.registered {
            self.registered = false;
            self.inner.leave(&self.topic, self.slot);
        }
    }
}

impl CatchUp {
    /// The next page from Redis, retrying with backoff while Redis cannot be reached. `None`
    /// when there is nothing left to read.
    fn poll_page<T>(
        &mut self,
        cx: &mut Context<'_>,
        inner: &Arc<Inner<T>>,
        key: &Arc<str>,
    ) -> Poll<Option<Page>>
    where
        T: Send + Sync + 'static,
    {
        loop {
            if let Some(pause) = self.pause.as_mut() {
                ready!(pause.as_mut().poll(cx));
                self.pause = None;
            }
            if inner.closed.load(Ordering::Acquire) {
                return Poll::Ready(None);
            }
            let fetch = match self.fetch.as_mut() {
                Some(fetch) => fetch,
                None => {
                    if self.from.position() >= self.upto.position() && !self.judge {
                        return Poll::Ready(None);
                    }
                    let inner = Arc::clone(inner);
                    let key = Arc::clone(key);
                    let (from, upto, count) = (self.from, self.upto, inner.config.page);
                    self.fetch.insert(Box::pin(async move {
                        inner
                            .command(|mut conn| {
                                let key = &key;
                                async move {
                                    let atomic = conn.atomic();
                                    stream::read(&mut conn, atomic, key, from, Some(upto), count)
                                        .await
                                }
                            })
                            .await
                    }))
                }
            };
            let result = ready!(fetch.as_mut().poll(cx));
            self.fetch = None;
            match result {
                Ok(page) => {
                    self.judge = false;
                    self.backoff = inner.config.backoff.0;
                    return Poll::Ready(Some(page));
                }
                Err(err) => {
                    tracing::warn!(error = %err, retry_in = ?self.backoff,
                        "catching a subscriber up from Redis failed; retrying");
                    self.pause = Some(inner.runtime.sleep(self.backoff));
                    self.backoff = (self.backoff * 2).min(inner.config.backoff.1);
                }
            }
        }
    }
}

/// A subscription is a subscription's stream as it is: each event goes out with its stream id
/// as its SSE id, as a shared event ([`Frame::Shared`](outer_core::procedure::Frame::Shared)):
/// its JSON, and each protocol's SSE frame of it, made once for every subscriber in the process.
impl<T> outer_core::IntoEventStream for Subscription<T>
where
    T: serde::Serialize + DeserializeOwned + Send + Sync + 'static,
{
    type Item = T;
    type Return = ();
    const TRACKED: bool = true;

    fn into_frames(
        self,
        check: Option<outer_core::procedure::OutputCheck<T>>,
    ) -> outer_core::procedure::FrameStream {
        outer_core::events(self).into_frames(check)
    }
}

impl<T> Stream for Subscription<T>
where
    T: DeserializeOwned + Send + Sync + 'static,
{
    type Item = Result<Published<T, StreamId>, RecvError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // A handler that loops on answers that are always ready yields after a budget (see
        // `outer_core::coop`), as with the memory publisher.
        let this = self.get_mut();
        outer_core::coop::poll_spending(cx, |cx| this.poll_answer(cx))
    }
}

impl<T> Subscription<T>
where
    T: DeserializeOwned + Send + Sync + 'static,
{
    /// The next event or error, without the budget.
    fn poll_answer(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Published<T, StreamId>, RecvError>>> {
        let this = self;
        loop {
            if let Some(item) = this.ready.pop_front() {
                match this.accept(item) {
                    Some(out) => return Poll::Ready(Some(out)),
                    None => continue,
                }
            }
            if !this.registered {
                return Poll::Ready(None);
            }
            if let Some(catch_up) = this.catch_up.as_mut() {
                match ready!(catch_up.poll_page(cx, &this.inner, &this.topic.key)) {
                    Some(page) => this.take_page(page),
                    None => this.catch_up = None,
                }
                continue;
            }
            match this.rx.as_mut().poll_next(cx) {
                Poll::Ready(Some(item)) => this.ready.push_back(item),
                // The publisher closed and the buffer is drained.
                Poll::Ready(None) => this.end(),
                Poll::Pending => {
                    // The reader marks an overflow only when the buffer is full, so once it is
                    // drained (Pending) the mark, if any, is already visible.
                    if this.overflow.load(Ordering::Acquire) {
                        this.rejoin();
                        continue;
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}

impl<T> Drop for Subscription<T> {
    fn drop(&mut self) {
        if self.registered {
            self.registered = false;
            self.inner.leave(&self.topic, self.slot);
        }
    }
}

impl<T> fmt::Debug for Subscription<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("topic", &self.topic.name)
            .field("last_id", &self.cursor)
            .field("catching_up", &self.catch_up.is_some())
            .field("ended", &!self.registered)
            .finish()
    }
}
