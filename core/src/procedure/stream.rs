//! What a subscription's setup may resolve to: anything that becomes a stream of events.
//!
//! [`IntoEventStream`] is implemented by [`EventIterator`] (a handler written like a
//! generator, with a return value), by the publishers' subscriptions (each event goes out
//! with the publisher's id as its SSE id, as a [`Frame::Shared`]: its JSON and each protocol's
//! bytes made once for every subscriber), and by
//! [`Events`], which [`events`] makes from any `Stream` of events.

use core::fmt;
use core::pin::Pin;
use core::task::{Context, Poll};

use futures_core::Stream;
use serde::Serialize;

use super::builder::failed_output;
use super::{encode_output, Frame, FrameStream, Issue, Json};
use crate::error::RpcError;
use crate::event::Event;
#[cfg(feature = "publisher")]
use crate::event::EventId;
use crate::iterator::EventIterator;
#[cfg(feature = "publisher")]
use crate::publisher::Published;
use crate::sync::{arc_dyn, Arc};

/// A check every output of a procedure passes before it is sent
/// ([`TypedProcedure::validate_output`](super::TypedProcedure::validate_output)).
pub struct OutputCheck<T: ?Sized>(Arc<CheckFn<T>>);

type CheckFn<T> = dyn Fn(&T) -> Result<(), Issue> + Send + Sync;

impl<T: ?Sized> OutputCheck<T> {
    /// Wraps a check.
    pub fn new(check: impl Fn(&T) -> Result<(), Issue> + Send + Sync + 'static) -> Self {
        Self(arc_dyn!(check => CheckFn<T>))
    }

    /// Runs the check: a failure is 500 `Output validation failed`, with the issue.
    pub fn check(&self, value: &T) -> Result<(), RpcError> {
        (self.0)(value).map_err(failed_output)
    }
}

impl<T: ?Sized> Clone for OutputCheck<T> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<T: ?Sized> fmt::Debug for OutputCheck<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OutputCheck")
    }
}

/// What a subscription's setup resolves to: a stream of events, typed by the data of each.
///
/// The `Item` is the procedure's output type: a publisher subscription's is the published
/// data, not the wrapper it travels in.
pub trait IntoEventStream: Send + 'static {
    /// The data of each event.
    type Item;
    /// What the stream returns when it ends: an [`EventIterator`]'s return value, `()` for a
    /// stream that ends without one (sent as `null`).
    type Return;
    /// Whether every event carries an id (a publisher's streams do), so that clients may type
    /// each as tracked; `false` when some may not (an [`EventIterator`], [`events`]).
    const TRACKED: bool = false;

    /// The stream, erased into frames: each event's data serialized once and checked by
    /// `check`, then one last frame (the return value, or the error that ended it).
    fn into_frames(self, check: Option<OutputCheck<Self::Item>>) -> FrameStream;
}

/// One item of a stream a subscription sends: an event, or the error that ends the stream.
///
/// Implemented for [`Event<T>`], `Result<Event<T>, E>`, and the publishers' items
/// ([`Published`], `Result<Published<T, Id>, E>`), which keep their publisher id as the SSE
/// id and become a [`Frame::Shared`]: their JSON, and each protocol's bytes, are made once for
/// every subscriber.
pub trait StreamItem {
    /// The data of the event.
    type Data;

    /// The event's frame, ready for the wire ([`Frame::Event`] or [`Frame::Shared`]), or the
    /// error that ends the stream.
    fn into_frame(self, check: Option<&OutputCheck<Self::Data>>) -> Result<Frame, RpcError>;
}

impl<T: Serialize> StreamItem for Event<T> {
    type Data = T;

    fn into_frame(self, check: Option<&OutputCheck<T>>) -> Result<Frame, RpcError> {
        if let Some(check) = check {
            check.check(self.data())?;
        }
        let (data, meta) = self.into_parts();
        Ok(Frame::Event(Event::with_meta(encode_output(&data)?, meta)))
    }
}

impl<T: Serialize, E: Into<RpcError>> StreamItem for Result<Event<T>, E> {
    type Data = T;

    fn into_frame(self, check: Option<&OutputCheck<T>>) -> Result<Frame, RpcError> {
        self.map_err(Into::into)?.into_frame(check)
    }
}

#[cfg(feature = "publisher")]
impl<T: Serialize, Id: Clone + Into<EventId>> StreamItem for Published<T, Id> {
    type Data = T;

    fn into_frame(self, check: Option<&OutputCheck<T>>) -> Result<Frame, RpcError> {
        // The check runs per subscriber: it is the procedure's, and two procedures may send
        // one publish with different checks.
        if let Some(check) = check {
            check.check(self.data())?;
        }
        // The first subscriber makes the shared event; the others take a clone of it.
        Ok(Frame::Shared(self.shared_event()?))
    }
}

#[cfg(feature = "publisher")]
impl<T: Serialize, Id: Clone + Into<EventId>, E: Into<RpcError>> StreamItem
    for Result<Published<T, Id>, E>
{
    type Data = T;

    fn into_frame(self, check: Option<&OutputCheck<T>>) -> Result<Frame, RpcError> {
        self.map_err(Into::into)?.into_frame(check)
    }
}

/// Makes any `Stream` of events a subscription's stream: items are [`Event`]s, `Result`s of
/// them, or a publisher's items (see [`StreamItem`]). An `Err` item ends the stream with that
/// error; the stream's end is a return value of `null`.
///
/// ```
/// use outer_core::{events, procedure, Event};
/// let ticks = procedure::<()>().subscription(|_| async {
///     let ticks = futures::stream::iter((1..=3).map(Event::new));
///     Ok(events(ticks))
/// });
/// # let _ = ticks;
/// ```
pub fn events<S>(stream: S) -> Events<S>
where
    S: Stream + Send + 'static,
    S::Item: StreamItem,
{
    Events(stream)
}

/// A `Stream` of events as a subscription's stream: see [`events`].
#[derive(Debug)]
pub struct Events<S>(S);

impl<S> IntoEventStream for Events<S>
where
    S: Stream + Send + 'static,
    S::Item: StreamItem,
    <S::Item as StreamItem>::Data: 'static,
{
    type Item = <S::Item as StreamItem>::Data;
    type Return = ();

    fn into_frames(self, check: Option<OutputCheck<Self::Item>>) -> FrameStream {
        item_frames(
            alloc::boxed::Box::pin(self.0),
            check,
            StreamItem::into_frame,
        )
    }
}

/// How one item of a stream becomes the event frame it sends, given the procedure's output check.
pub(crate) type ToFrame<I, D> = fn(I, Option<&OutputCheck<D>>) -> Result<Frame, RpcError>;

/// The frames of a stream of items: each item made an event by `to_frame` (an `Err` ends the
/// stream with it), and `null` as the return value when the items end. One shape for
/// [`events`] and the publishers' `with_ids`, which differ only in how an item is written.
pub(crate) fn item_frames<S, D>(
    items: S,
    check: Option<OutputCheck<D>>,
    to_frame: ToFrame<S::Item, D>,
) -> FrameStream
where
    S: Stream + Unpin + Send + 'static,
    D: 'static,
{
    FrameStream::new(ItemFrames {
        items: Some(items),
        check,
        to_frame,
    })
}

struct ItemFrames<S: Stream, D> {
    items: Option<S>,
    check: Option<OutputCheck<D>>,
    to_frame: ToFrame<S::Item, D>,
}

impl<S: Stream + Unpin, D> Stream for ItemFrames<S, D> {
    type Item = Frame;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Frame>> {
        let this = &mut *self;
        let Some(items) = this.items.as_mut() else {
            return Poll::Ready(None);
        };
        let frame = match Pin::new(items).poll_next(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Some(item)) => match (this.to_frame)(item, this.check.as_ref()) {
                Ok(event) => return Poll::Ready(Some(event)),
                Err(error) => Frame::Error(error),
            },
            Poll::Ready(None) => Frame::Done(null()),
        };
        // Over: drop the source now, so its cleanup (an unsubscribe) runs before the last
        // frame is even written.
        this.items = None;
        Poll::Ready(Some(frame))
    }
}

fn null() -> Json {
    // "null" is valid JSON, so this cannot fail; the fallback keeps the core free of unwraps.
    serde_json::value::to_raw_value(&serde_json::Value::Null)
        .unwrap_or_else(|_| alloc::boxed::Box::<serde_json::value::RawValue>::default())
}

impl<T, R> IntoEventStream for EventIterator<T, R>
where
    T: Serialize + Send + 'static,
    R: Serialize + Send + 'static,
{
    type Item = T;
    type Return = R;

    fn into_frames(self, check: Option<OutputCheck<T>>) -> FrameStream {
        FrameStream::new(IteratorFrames {
            events: Some(self),
            check,
        })
    }
}

/// Turns a typed [`EventIterator`] into frames: each event's data serialized once, the return
/// value as `Done`, a failure as `Error`; the handler is dropped as soon as the stream ends.
struct IteratorFrames<T, R> {
    events: Option<EventIterator<T, R>>,
    check: Option<OutputCheck<T>>,
}

impl<T, R> Unpin for IteratorFrames<T, R> {}

impl<T: Serialize, R: Serialize> Stream for IteratorFrames<T, R> {
    type Item = Frame;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Frame>> {
        let this = &mut *self;
        let Some(events) = this.events.as_mut() else {
            return Poll::Ready(None);
        };
        let frame = match Pin::new(&mut *events).poll_next(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Some(Ok(event))) => match event.into_frame(this.check.as_ref()) {
                Ok(event) => return Poll::Ready(Some(event)),
                Err(error) => Frame::Error(error),
            },
            Poll::Ready(Some(Err(error))) => Frame::Error(error),
            Poll::Ready(None) => match events.take_return() {
                Some(value) => match encode_output(&value) {
                    Ok(json) => Frame::Done(json),
                    Err(error) => Frame::Error(error),
                },
                // An iterator ends without a value only after an error it already yielded.
                None => Frame::Error(RpcError::internal("the event stream ended twice")),
            },
        };
        // The stream is over: drop the handler now so its cleanup runs before the last frame
        // is even written.
        this.events = None;
        Poll::Ready(Some(frame))
    }
}

#[cfg(feature = "publisher")]
impl<T: Serialize + Send + Sync + 'static> IntoEventStream for crate::publisher::Subscription<T> {
    type Item = T;
    type Return = ();
    const TRACKED: bool = true;

    fn into_frames(self, check: Option<OutputCheck<T>>) -> FrameStream {
        events(self).into_frames(check)
    }
}

impl<T, R> EventIterator<T, R> {
    /// Promises that every event this iterator sends has an id (made with
    /// [`tracked`](crate::tracked)), so that clients' types may say so: tRPC's then receive
    /// each event as `{ id, data }`. An event without one ends the stream with a 500 error,
    /// rather than reach a client typed to expect an id.
    ///
    /// ```
    /// use outer_core::{event_iterator, procedure, tracked};
    /// let counter = procedure::<()>().subscription(|_| async {
    ///     Ok(event_iterator(|mut emit| async move {
    ///         for n in 1..=3u32 {
    ///             emit.send(tracked(n, n)?).await?;
    ///         }
    ///         Ok(())
    ///     })
    ///     .tracked())
    /// });
    /// # let _ = counter;
    /// ```
    pub fn tracked(self) -> Tracked<T, R> {
        Tracked(self)
    }
}

/// An [`EventIterator`] whose every event has an id: see [`EventIterator::tracked`].
#[derive(Debug)]
pub struct Tracked<T, R>(EventIterator<T, R>);

impl<T, R> IntoEventStream for Tracked<T, R>
where
    T: Serialize + Send + 'static,
    R: Serialize + Send + 'static,
{
    type Item = T;
    type Return = R;
    const TRACKED: bool = true;

    fn into_frames(self, check: Option<OutputCheck<T>>) -> FrameStream {
        FrameStream::new(IdsRequired(Some(self.0.into_frames(check))))
    }
}

/// Frames that end with an error at the first event without an id.
struct IdsRequired(Option<FrameStream>);

impl Stream for IdsRequired {
    type Item = Frame;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Frame>> {
        let Some(frames) = self.0.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(frames).poll_next(cx) {
            Poll::Ready(Some(frame)) if frame.is_event() && frame.event_id().is_none() => {
                // Drop the handler now, as any stream that ends does.
                self.0 = None;
                Poll::Ready(Some(Frame::Error(RpcError::internal(
                    "an event of a tracked stream has no id",
                ))))
            }
            other => other,
        }
    }
}
