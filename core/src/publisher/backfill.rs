//! A subscription whose gaps a store fills: the usual shape of a live feed that resumes
//! (a chat's posts, an order's updates) when the publisher keeps less than the store.

use alloc::string::String;
use alloc::vec::Vec;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

use futures_core::Stream;
use serde::Serialize;

use super::{GapPolicy, Published, Publisher, SubscribeOptions};
use crate::error::RpcError;
use crate::event::{Event, EventId};
use crate::iterator::{event_iterator, EventIterator};
use crate::procedure::{events, FrameStream, IntoEventStream, OutputCheck};

/// What a subscription yields instead of an event, seen as a gap where it is one: the trait
/// a [`Publisher::StreamError`] implements so code over any publisher can tell a gap (which
/// a store may fill) from other failures.
pub trait AsGap<Id> {
    /// The gap, if this is one.
    fn as_gap(&self) -> Option<&super::Gap<Id>>;
}

impl<Id> AsGap<Id> for super::Gap<Id> {
    fn as_gap(&self) -> Option<&super::Gap<Id>> {
        Some(self)
    }
}

/// Subscribes to `topic` from `options.last_event_id`, and fills every gap the publisher
/// reports (the resume point is older than it keeps, the subscriber fell too far behind)
/// from `store`, then goes live again: the client misses nothing the store has.
///
/// `store(after)` answers the events after id `after`, oldest first, a page at a time; it
/// is asked again after each page until it answers none, and each page is asked for only
/// once the client has taken the one before, so a client far behind holds one page, not the
/// store. A gap the store cannot fill (it has nothing after that point either: an id never
/// given out, say) ends the stream with the gap's error, 412 `PRECONDITION_FAILED`.
///
/// Errors other than gaps (an entry a subscription cannot read) are skipped, as the
/// subscription itself goes on past them.
///
/// The first subscribe happens here, so a malformed resume id refuses the call before its
/// stream opens (its error is the publisher's, as an [`RpcError`], ready for `?` in a
/// handler). Gaps always end the subscription they end in (`on_gap` is set to
/// [`GapPolicy::End`]): the store, not a skip, fills them.
///
/// ```
/// use futures::{executor::block_on, StreamExt};
/// use outer_core::publisher::{backfilled, MemoryPublisher, Publisher, SeqId, SubscribeOptions};
///
/// // Keeps one event; the store keeps them all.
/// let publisher = MemoryPublisher::builder().retain_last(1).build();
/// let store: Vec<(SeqId, &str)> = ["a", "b", "c"]
///     .into_iter()
///     .map(|post| (publisher.publish_now("posts", post), post))
///     .collect();
/// let page = move |after: SeqId| {
///     let page: Vec<_> = store.iter().filter(|(id, _)| *id > after).take(2).cloned().collect();
///     async move { Ok(page) }
/// };
/// block_on(async {
///     let options = SubscribeOptions::new().resume_after(SeqId::new(0));
///     let feed = backfilled(publisher.clone(), "posts", options, page).await.unwrap();
///     let got: Vec<&str> = feed.take(3).map(|post| *post.unwrap()).collect().await;
///     assert_eq!(got, ["a", "b", "c"]);
/// });
/// ```
pub async fn backfilled<P, T, S, Fut>(
    publisher: P,
    topic: &str,
    options: SubscribeOptions,
    store: S,
) -> Result<Backfilled<T, P::Id>, RpcError>
where
    P: Publisher<T> + 'static,
    P::StreamError: AsGap<P::Id>,
    T: Send + Sync + 'static,
    S: Fn(P::Id) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Vec<(P::Id, T)>, RpcError>> + Send + 'static,
{
    let options = options.on_gap(GapPolicy::End);
    // Used in place by the stream below (not moved into a second local), so the stream's
    // state holds one subscription, not two: it is kept per subscriber.
    let mut live = publisher.subscribe(topic, options.clone()).await?;
    let topic = String::from(topic);
    let events = event_iterator(move |mut emit| async move {
        loop {
            // Live (or replayed by the publisher) until a gap, or the publisher ends.
            let gap = loop {
                match futures_next(&mut live).await {
                    Some(Ok(published)) => emit.send(Event::new(published)).await?,
                    Some(Err(error)) => match error.as_gap() {
                        Some(gap) => break (gap.last_id(), error),
                        // Not a gap: an entry the subscription could not read (another
                        // program's, on Redis). The subscription goes on past it, and so does
                        // the stream: ending it would have clients resume into it again.
                        None => continue,
                    },
                    None => return Ok(()),
                }
            };
            drop(live);
            let (mut last, error) = gap;
            let mut filled = false;
            loop {
                let page = store(last.clone()).await?;
                if page.is_empty() {
                    break;
                }
                filled = true;
                for (id, data) in page {
                    last = id.clone();
                    emit.send(Event::new(Published::new(id, data))).await?;
                }
            }
            if !filled {
                // Neither the publisher nor the store has what comes next.
                return Err(error.into());
            }
            let resume = SubscribeOptions {
                last_event_id: Some(last.into()),
                ..options.clone()
            };
            live = publisher.subscribe(&topic, resume).await?;
        }
    });
    Ok(Backfilled(events))
}

/// `Stream::next` without futures-util.
fn futures_next<S: Stream + Unpin>(stream: &mut S) -> impl Future<Output = Option<S::Item>> + '_ {
    core::future::poll_fn(move |cx| Pin::new(&mut *stream).poll_next(cx))
}

/// The stream [`backfilled`] makes: the publisher's events, and the store's in its gaps,
/// each with its id. A subscription's stream as it is; as a `Stream` it yields each event as
/// a [`Published`], or the error that ends it.
pub struct Backfilled<T, Id>(EventIterator<Published<T, Id>>);

impl<T, Id> core::fmt::Debug for Backfilled<T, Id> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Backfilled")
    }
}

impl<T, Id> Stream for Backfilled<T, Id> {
    type Item = Result<Published<T, Id>, RpcError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.0)
            .poll_next(cx)
            .map(|item| item.map(|event| event.map(Event::into_data)))
    }
}

impl<T, Id> IntoEventStream for Backfilled<T, Id>
where
    T: Serialize + Send + Sync + 'static,
    Id: Clone + Into<EventId> + Send + Sync + 'static,
{
    type Item = T;
    type Return = ();
    const TRACKED: bool = true;

    fn into_frames(self, check: Option<OutputCheck<T>>) -> FrameStream {
        events(self).into_frames(check)
    }
}
