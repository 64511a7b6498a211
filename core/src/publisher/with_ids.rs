//! Events whose data carries their id, as apps send rows: `{"id":7,"title":"hi"}` with SSE
//! `id: 7`, the JSON made once per event however many subscribers send it.

use futures_core::Stream;
use serde::ser::{Error as _, SerializeMap};
use serde::{Serialize, Serializer};

use super::Published;
use crate::error::{ErrorCode, RpcError};
use crate::event::EventId;
use crate::procedure::{item_frames, Frame, FrameStream, IntoEventStream, OutputCheck};

/// Data with its id as a field: what a [`with_ids`] stream sends for each event. Serializes as
/// the data's object with `"id"` first.
///
/// ```
/// use outer_core::publisher::WithId;
/// #[derive(serde::Serialize)] struct Post { title: &'static str }
/// let post = WithId { id: 7, data: Post { title: "hi" } };
/// assert_eq!(serde_json::to_string(&post).unwrap(), r#"{"id":7,"title":"hi"}"#);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WithId<T, Id> {
    /// The publisher's id for the event.
    pub id: Id,
    /// What was published.
    pub data: T,
}

impl<T: Serialize, Id: Serialize> Serialize for WithId<T, Id> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Through a JSON value: the data's fields are only known once it is serialized.
        let serde_json::Value::Object(fields) =
            serde_json::to_value(&self.data).map_err(S::Error::custom)?
        else {
            return Err(S::Error::custom(
                "the data of an event with an id field must be an object",
            ));
        };
        let mut map = serializer.serialize_map(Some(fields.len() + 1))?;
        map.serialize_entry("id", &self.id)?;
        for (key, value) in fields.iter().filter(|(key, _)| *key != "id") {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// The data's object with `id` first: `{ id: number } & Post` in TypeScript.
#[cfg(feature = "typescript")]
impl<T: ts_rs::TS, Id: ts_rs::TS> ts_rs::TS for WithId<T, Id> {
    type WithoutGenerics = Self;
    type OptionInnerType = Self;

    fn name(cfg: &ts_rs::Config) -> alloc::string::String {
        alloc::format!("{{ id: {} }} & {}", Id::name(cfg), T::name(cfg))
    }

    fn inline(cfg: &ts_rs::Config) -> alloc::string::String {
        Self::name(cfg)
    }

    fn visit_dependencies(v: &mut impl ts_rs::TypeVisitor)
    where
        Self: 'static,
    {
        v.visit::<T>();
        v.visit::<Id>();
    }
}

/// Sends a subscription's events (a publisher's, or [`backfilled`](super::backfilled)) with
/// each one's id in its data as well as in its SSE id: `{"id":7,"title":"hi"}`, the shape an
/// app's rows have. The data must serialize as an object. Like the events themselves, the JSON,
/// and each protocol's frame of it, is made once per event, not once per subscriber.
///
/// The stream is `Unpin`, as subscriptions and [`Backfilled`](super::Backfilled) are, so it
/// is held as it is, without a box per subscriber (`Box::pin` one that is not).
///
/// ```
/// use outer_core::publisher::{with_ids, MemoryPublisher, Publisher, SubscribeOptions};
/// use outer_core::procedure;
///
/// #[derive(Clone, serde::Serialize)] struct Post { title: String }
/// let publisher: MemoryPublisher<Post> = MemoryPublisher::new();
/// let live = procedure::<()>().subscription(move |req| {
///     let publisher = publisher.clone();
///     async move {
///         let options = SubscribeOptions::new().last_event_id(req.last_event_id);
///         Ok(with_ids(publisher.subscribe("posts", options).await?))
///     }
/// });
/// # let _ = live;
/// ```
pub fn with_ids<S, T, Id, E>(stream: S) -> WithIds<S>
where
    S: Stream<Item = Result<Published<T, Id>, E>> + Unpin + Send + 'static,
{
    WithIds(stream)
}

/// A stream whose events carry their ids in their data: see [`with_ids`].
#[derive(Debug)]
pub struct WithIds<S>(S);

impl<S, T, Id, E> IntoEventStream for WithIds<S>
where
    S: Stream<Item = Result<Published<T, Id>, E>> + Unpin + Send + 'static,
    T: Serialize + Clone + Send + Sync + 'static,
    Id: Serialize + Clone + Into<EventId> + Send + Sync + 'static,
    E: Into<RpcError>,
{
    type Item = WithId<T, Id>;
    type Return = ();
    const TRACKED: bool = true;

    fn into_frames(self, check: Option<OutputCheck<WithId<T, Id>>>) -> FrameStream {
        // Held as it is (it is `Unpin`): no box per subscriber.
        item_frames(self.0, check, frame)
    }
}

/// The event for one item: the data's JSON with its id first and the publisher's id as the SSE
/// id, shared by every subscriber (made once per event, as are the protocols' frames of it).
fn frame<T, Id, E>(
    item: Result<Published<T, Id>, E>,
    check: Option<&OutputCheck<WithId<T, Id>>>,
) -> Result<Frame, RpcError>
where
    T: Serialize + Clone,
    Id: Serialize + Clone + Into<EventId>,
    E: Into<RpcError>,
{
    let published = item.map_err(Into::into)?;
    if let Some(check) = check {
        check.check(&WithId {
            id: published.id().clone(),
            data: published.data().clone(),
        })?;
    }
    let event = published
        .shared_event_with_id()
        .map_err(|message| RpcError::new(ErrorCode::INTERNAL_SERVER_ERROR, message))?;
    Ok(Frame::Shared(event))
}
