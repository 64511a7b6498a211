//! Publishers: fan one event out to every subscriber of a topic, with retention for resume.
//!
//! [`Publisher`] is the interface a streaming handler codes against; [`MemoryPublisher`] is the
//! in-process one (a Redis-backed one can implement the same trait). Not a message queue: there
//! are no acknowledgements and nothing outlives the process.
//!
//! The memory publisher's rules, in short (details on [`MemoryPublisher`]):
//!
//! - **Ids**: each publish gets a [`SeqId`], one more than the topic's previous id. Its text form
//!   (the number in decimal, as apps number their rows) parses back; any other last event id is
//!   refused as [`SubscribeError::MalformedId`] (`BAD_REQUEST`).
//! - **Sharing**: an event is stored once per publish, in one `Arc`, however many subscribers
//!   read it, serialized to JSON at most once ([`Published`]), and framed at most once per
//!   protocol: every subscriber's stream sends the same bytes
//!   ([`SharedEvent`](crate::procedure::SharedEvent)), so a subscriber's work per event is a
//!   cursor in the topic and two reference counts.
//! - **Retention**: each topic keeps its last K events (default 1024,
//!   [`retain_last`](MemoryPublisherBuilder::retain_last)) and, if asked, only those younger
//!   than T ([`retain_for`](MemoryPublisherBuilder::retain_for)). A subscription with a last
//!   event id replays every retained event after it, then continues live, with no gap and no
//!   duplicate even when publishes race the subscribe. A resume point older than what is
//!   retained, or never assigned, is reported as a [`Gap`], never skipped in silence.
//! - **Slow consumers**: a subscriber can fall behind by its `buffer` (at least; default
//!   [`DEFAULT_BUFFER`], capped by [`max_buffer`](MemoryPublisherBuilder::max_buffer)) or by
//!   the topic's retention, whichever is larger. Past that the publisher does not wait, grow,
//!   or slow the others: the subscriber's next item is a [`Gap`] saying how many events it
//!   lost, then, by its [`GapPolicy`], it ends (the default) or goes on from the oldest event
//!   still retained (drop-oldest, with a marker). Memory per topic stays within
//!   `max(retain_last, max_buffer)` events, plus at most 32 per subscriber that it has taken
//!   from the topic and not yet yielded.
//! - **Cleanup**: dropping a subscription unregisters it at once, and
//!   [`subscriber_count`](MemoryPublisher::subscriber_count) drops with it. A topic with no
//!   subscriber and no retained event is removed, so short-lived topics cost nothing once done
//!   (with `retain_last(0)`, a topic lives only while someone is subscribed). Retained events
//!   do keep their topic: with count-only retention a topic that ever got an event keeps its
//!   last K; add `retain_for` and call [`sweep`](MemoryPublisher::sweep) from a timer to free
//!   quiet topics.
//!
//! Both publishers, this one and `outer-redis`'s, answer the same calls with the same types:
//! the [`Publisher`] trait's. A router written against it runs on either unchanged.
//!
//! ```
//! use futures::{executor::block_on, StreamExt};
//! use outer_core::publisher::{MemoryPublisher, Publisher, SubscribeOptions};
//!
//! block_on(async {
//!     let publisher = MemoryPublisher::new();
//!     let first = publisher.publish("chat", "hello").await?;
//!
//!     // A client that saw `first` reconnects: it gets what came after, then live events.
//!     let mut sub = publisher
//!         .subscribe("chat", SubscribeOptions::new().resume_after(first))
//!         .await?;
//!     publisher.publish("chat", "world").await?;
//!     let event = sub.next().await.unwrap().unwrap();
//!     assert_eq!(*event, "world");
//!     assert_eq!(event.id().to_string(), "2");
//!     // A subscription is a subscription's stream as it is: a handler returns it, and each
//!     // event goes out with the publisher's id as its SSE id.
//!     Ok::<_, outer_core::RpcError>(())
//! })
//! .unwrap();
//! ```

use core::fmt;
use core::future::Future;

use futures_core::Stream;

use crate::error::IntoRpcError;
use crate::event::EventId;
use crate::procedure::IntoEventStream;

mod backfill;
mod error;
mod id;
mod memory;
mod published;
mod topic;
mod with_ids;

pub use backfill::{backfilled, AsGap, Backfilled};
pub use error::{Gap, GapData, GapKind, SubscribeError};
pub use id::{MalformedId, SeqId};
pub use memory::{MemoryPublisher, MemoryPublisherBuilder, Subscription};
pub use published::Published;
pub use with_ids::{with_ids, WithId, WithIds};

/// How many events a subscriber may fall behind, at least, before it has a [`Gap`], unless
/// the subscriber asks otherwise. oRPC's default buffer is the same size.
pub const DEFAULT_BUFFER: usize = 100;

/// A topic-based publisher: what a streaming handler needs to fan events out and to resume a
/// client where it left off.
///
/// Implementations assign each event an id that grows on its topic, keep some recent events for
/// resume, and deliver to each subscription every event after its resume point, in order, or
/// an explicit gap: never a silent skip.
///
/// A router is written once over any publisher, generic over `P: Publisher<T>`: the same
/// source serves the memory publisher in tests and `outer-redis`'s in production. Generic
/// rather than `dyn`: the trait's methods are `async` and its types associated, so it is not
/// object-safe, and a generic costs no box per event.
///
/// ```
/// use outer_core::publisher::{MemoryPublisher, Publisher, SubscribeOptions};
/// use outer_core::{procedure, Router};
///
/// fn router<P: Publisher<String> + Clone + 'static>(publisher: P) -> Router<()> {
///     let os = procedure::<()>();
///     let (posts, live) = (publisher.clone(), publisher);
///     Router::new()
///         .route("post", os.input::<String>().mutation(move |req| {
///             let posts = posts.clone();
///             async move { Ok(posts.publish("posts", req.input).await?) }
///         }))
///         .route("live", os.subscription(move |req| {
///             let live = live.clone();
///             async move {
///                 let options = SubscribeOptions::new().last_event_id(req.last_event_id);
///                 // The subscription is the stream: each post goes out with its id.
///                 Ok(live.subscribe("posts", options).await?)
///             }
///         }))
/// }
/// let router = router(MemoryPublisher::new());
/// assert_eq!(router.paths().collect::<Vec<_>>(), ["live", "post"]);
/// ```
pub trait Publisher<T>: Send + Sync {
    /// The id assigned to each event (e.g. [`SeqId`]; a Redis stream's `1700000000000-0`).
    type Id: Clone
        + Ord
        + fmt::Display
        + fmt::Debug
        + Into<EventId>
        + serde::Serialize
        + crate::procedure::Shape
        + Send
        + Sync
        + 'static;
    /// Why a publish or a subscribe failed (a malformed last event id, a network error).
    type Error: IntoRpcError + fmt::Debug + fmt::Display + Send + 'static;
    /// What a subscription yields instead of events it cannot deliver (e.g. [`Gap`]).
    type StreamError: IntoRpcError + AsGap<Self::Id> + fmt::Debug + fmt::Display + Send + 'static;
    /// The stream of events a subscription yields. Dropping it unsubscribes.
    /// It is also a subscription's stream as it is ([`IntoEventStream`]): a handler returns
    /// it, and each event goes out with the publisher's id as its SSE id.
    type Subscription: Stream<Item = Result<Published<T, Self::Id>, Self::StreamError>>
        + IntoEventStream<Item = T>
        + Send
        + Unpin
        + 'static;

    /// Publishes `data` on `topic` to every current subscriber and returns the id it got.
    fn publish(
        &self,
        topic: &str,
        data: T,
    ) -> impl Future<Output = Result<Self::Id, Self::Error>> + Send;

    /// Subscribes to `topic`: first every retained event after `options.last_event_id` (if
    /// any), then live events, with nothing lost or repeated in between.
    fn subscribe(
        &self,
        topic: &str,
        options: SubscribeOptions,
    ) -> impl Future<Output = Result<Self::Subscription, Self::Error>> + Send;
}

/// How a subscription starts and how it treats a [`Gap`].
///
/// The fields are public so a handler can fill them in one expression; the methods chain.
///
/// ```
/// use outer_core::publisher::{GapPolicy, SubscribeOptions};
/// let last_event_id = Some(outer_core::EventId::new("42").unwrap());
/// let options = SubscribeOptions {
///     last_event_id,
///     ..SubscribeOptions::new().buffer(1000).on_gap(GapPolicy::Skip)
/// };
/// assert_eq!(options.buffer, 1000);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscribeOptions {
    /// Resume after this id: the client's `Last-Event-ID`, as a handler receives it
    /// ([`Request::last_event_id`](crate::Request::last_event_id)). `None`, or an empty id (SSE's
    /// "no id"), subscribes to live events only.
    pub last_event_id: Option<EventId>,
    /// How many events the subscriber may fall behind, at least, before it has a gap, whatever
    /// the topic's retention (the publisher may cap it; 0 counts as 1). Default
    /// [`DEFAULT_BUFFER`].
    pub buffer: usize,
    /// What happens at a gap. Default [`GapPolicy::End`].
    pub on_gap: GapPolicy,
}

impl SubscribeOptions {
    /// Live events only, the default buffer, [`GapPolicy::End`].
    pub fn new() -> Self {
        Self {
            last_event_id: None,
            buffer: DEFAULT_BUFFER,
            on_gap: GapPolicy::End,
        }
    }

    /// Resumes after the event with this id: a publisher's own id ([`SeqId`], a Redis stream
    /// id), or the client's `Last-Event-ID` as an [`EventId`].
    pub fn resume_after(mut self, last_event_id: impl Into<EventId>) -> Self {
        self.last_event_id = Some(last_event_id.into());
        self
    }

    /// Resumes after `last_event_id` when there is one, as a handler receives it
    /// ([`Request::last_event_id`](crate::Request::last_event_id)); with `None`, live events
    /// only.
    ///
    /// ```
    /// use outer_core::publisher::SubscribeOptions;
    /// let client_sent = outer_core::EventId::new("7").ok();
    /// let options = SubscribeOptions::new().last_event_id(client_sent);
    /// assert_eq!(options.last_event_id.unwrap().as_str(), "7");
    /// ```
    pub fn last_event_id(mut self, last_event_id: Option<EventId>) -> Self {
        self.last_event_id = last_event_id;
        self
    }

    /// Sets how far behind the subscriber may fall, at least, before it has a gap.
    pub fn buffer(mut self, events: usize) -> Self {
        self.buffer = events;
        self
    }

    /// Sets what happens at a gap.
    pub fn on_gap(mut self, policy: GapPolicy) -> Self {
        self.on_gap = policy;
        self
    }
}

impl Default for SubscribeOptions {
    fn default() -> Self {
        Self::new()
    }
}

/// What a subscription does when it cannot deliver the next event: the resume point is no
/// longer retained, or it fell behind so far that its next event left the topic's window.
///
/// Either way it first yields the [`Gap`] as an `Err` item: nothing is skipped in silence.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GapPolicy {
    /// Yield the gap, then end. A handler that forwards it (`event?`) ends the stream with an
    /// error the client can turn into "refetch". The default.
    #[default]
    End,
    /// Yield the gap, then go on from the oldest event still retained: drop-oldest with a
    /// marker. For handlers that can tell their client to catch up in-band.
    Skip,
}
