//! A published event as every subscriber receives it: its id and data shared by all of them,
//! serialized to JSON at most once, and framed for each protocol at most once, however many
//! subscribers send it. Not a wire format.

use alloc::borrow::ToOwned;
use alloc::boxed::Box;
use alloc::string::{String, ToString};
use core::fmt;
use core::ops::Deref;

use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

use super::SeqId;
use crate::error::RpcError;
use crate::event::{Event, EventId};
use crate::procedure::{output_error, Issue, SharedEvent};
use crate::sync::{Arc, OnceLock};

/// One published event: its id and its data, which every subscriber shares through one `Arc`.
///
/// It derefs to the data. Its [`Serialize`] impl turns the data into JSON the first time any
/// subscriber serializes it and hands the same bytes to every other subscriber, so a fan-out to
/// 10,000 streams runs `T::serialize` once. A subscription's stream sends it as one
/// [`SharedEvent`] ([`shared_event`](Published::shared_event)), made by the first subscriber and
/// cloned (one `Arc`) by the others, so each protocol's SSE frame for it is written once too and
/// every stream hands the same bytes to its socket. [`into_event`](Published::into_event) makes
/// it the tracked [`Event`] a streaming handler yields.
///
/// ```
/// use outer_core::publisher::{Published, SeqId};
/// let event = Published::new(SeqId::new(7), vec![1, 2]);
/// let copy = event.clone(); // shares the data, copies nothing
/// assert_eq!(copy.len(), 2);
/// assert_eq!(serde_json::to_string(&event).unwrap(), "[1,2]");
/// let tracked = copy.into_event();
/// assert_eq!(tracked.id().unwrap().as_str(), "7");
/// ```
pub struct Published<T, I = SeqId> {
    id: I,
    shared: Arc<Shared<T>>,
}

struct Shared<T> {
    data: T,
    /// The JSON of `data`, made by the first serialization. An error is kept as its message so
    /// every subscriber sees the same outcome without serializing again.
    json: OnceLock<Result<Box<RawValue>, String>>,
    /// The JSON of `data` with the id as its first field, made by the first [`WithIds`]
    /// stream that sends it.
    json_with_id: OnceLock<Result<Box<RawValue>, String>>,
    /// The event every subscription's stream sends: `data`'s JSON (copied from `json`: once per
    /// publish, not per subscriber) with the id, and the frames the protocols make of it.
    shared: OnceLock<Result<SharedEvent, String>>,
    /// The same for [`WithIds`] streams, whose data is `json_with_id`.
    shared_with_id: OnceLock<Result<SharedEvent, String>>,
}

impl<T, I> Published<T, I> {
    /// Wraps data under an id. Publishers call this once per publish; clones share it.
    pub fn new(id: I, data: T) -> Self {
        Self {
            id,
            shared: Arc::new(Shared {
                data,
                json: OnceLock::new(),
                json_with_id: OnceLock::new(),
                shared: OnceLock::new(),
                shared_with_id: OnceLock::new(),
            }),
        }
    }

    /// The id the publisher assigned.
    pub fn id(&self) -> &I {
        &self.id
    }

    /// The data.
    pub fn data(&self) -> &T {
        &self.shared.data
    }

    /// Makes the tracked event a streaming handler yields: this value, with its id as the SSE
    /// id, so a client that reconnects sends it back as `Last-Event-ID`.
    ///
    /// Use this rather than `.into()`: the blanket `Event::from` makes an event without an id.
    pub fn into_event(self) -> Event<Self>
    where
        I: Clone + Into<EventId>,
    {
        let id: EventId = self.id.clone().into();
        let mut event = Event::new(self);
        // An EventId is already checked, so setting it cannot fail.
        let _ = event.meta_mut().set_id(id);
        event
    }
}

impl<T: Serialize, I> Published<T, I> {
    /// The JSON of the data, made once for every clone.
    fn data_json(&self) -> Result<&RawValue, &str> {
        self.shared
            .json
            .get_or_init(|| {
                serde_json::value::to_raw_value(&self.shared.data).map_err(|err| err.to_string())
            })
            .as_deref()
            .map_err(String::as_str)
    }

    /// The JSON of the data with `"id"` as its first field (`{"id":7,"title":"hi"}`), made
    /// once for every clone: what [`with_ids`](super::with_ids) sends. The data must serialize as an object.
    pub fn json_with_id(&self) -> Result<&RawValue, &str>
    where
        I: Serialize,
    {
        self.shared
            .json_with_id
            .get_or_init(|| {
                let data = self.data_json().map_err(String::from)?.get();
                let body = data.strip_prefix('{').ok_or_else(|| {
                    String::from("the data of an event with an id field must be an object")
                })?;
                let id = serde_json::to_string(&self.id).map_err(|err| err.to_string())?;
                // serde_json writes no whitespace: `{}` is the one empty object.
                let separator = if body == "}" { "" } else { "," };
                let json = alloc::format!("{{\"id\":{id}{separator}{body}");
                RawValue::from_string(json).map_err(|err| err.to_string())
            })
            .as_deref()
            .map_err(String::as_str)
    }
}

impl<T: Serialize, I: Clone + Into<EventId>> Published<T, I> {
    /// The event a subscription's stream sends for this publish: the data's JSON with the id,
    /// made by the first subscriber to ask and shared (one `Arc`) with every other, along with
    /// the frames each protocol writes of it ([`SharedEvent::encoded`]). An error (data serde
    /// cannot write) is the same output error for every subscriber.
    ///
    /// ```
    /// use outer_core::publisher::{Published, SeqId};
    /// let post = Published::new(SeqId::new(7), "hi");
    /// let (a, b) = (post.clone().shared_event().unwrap(), post.shared_event().unwrap());
    /// assert!(a.ptr_eq(&b));
    /// assert_eq!((a.data().get(), a.id().unwrap().as_str()), ("\"hi\"", "7"));
    /// ```
    pub fn shared_event(&self) -> Result<SharedEvent, RpcError> {
        let json = || Ok(self.data_json().map_err(String::from)?.to_owned());
        self.shared_with(&self.shared.shared, json)
            .map_err(|message| output_error(&[Issue::new(message)]))
    }

    /// [`shared_event`](Self::shared_event) with the data's JSON from
    /// [`json_with_id`](Self::json_with_id): what [`with_ids`](super::with_ids) sends. The
    /// error is `json_with_id`'s message.
    pub(super) fn shared_event_with_id(&self) -> Result<SharedEvent, &str>
    where
        I: Serialize,
    {
        let json = || Ok(self.json_with_id().map_err(String::from)?.to_owned());
        self.shared_with(&self.shared.shared_with_id, json)
    }

    fn shared_with<'a>(
        &'a self,
        cell: &'a OnceLock<Result<SharedEvent, String>>,
        json: impl FnOnce() -> Result<Box<RawValue>, String>,
    ) -> Result<SharedEvent, &'a str> {
        match cell.get_or_init(|| {
            let id: EventId = self.id.clone().into();
            Ok(SharedEvent::new(json()?, Some(id)))
        }) {
            Ok(event) => Ok(event.clone()),
            Err(message) => Err(message),
        }
    }
}

impl<T, I: Clone> Clone for Published<T, I> {
    fn clone(&self) -> Self {
        Self {
            id: self.id.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T, I> Deref for Published<T, I> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.shared.data
    }
}

impl<T: fmt::Debug, I: fmt::Debug> fmt::Debug for Published<T, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Published")
            .field("id", &self.id)
            .field("data", &self.shared.data)
            .finish()
    }
}

impl<T: PartialEq, I: PartialEq> PartialEq for Published<T, I> {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id && self.shared.data == other.shared.data
    }
}

impl<T: Serialize, I> Serialize for Published<T, I> {
    /// Serializes the data. For serde_json's serializers (what Outer's wire formats use) the
    /// JSON is made once per event and reused; other formats serialize the data directly.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if !writes_json::<S>() {
            return self.shared.data.serialize(serializer);
        }
        match self.data_json() {
            Ok(raw) => raw.serialize(serializer),
            Err(message) => Err(serde::ser::Error::custom(message)),
        }
    }
}

/// Whether `S` is one of serde_json's serializers (or a reference to one), which write a
/// `RawValue` verbatim.
///
/// serde has no way to ask a serializer for its format, and any other format would write a
/// `RawValue` as a struct holding a string. The type name is the one signal available. Only the
/// outermost type counts: another format's serializer with a serde_json type among its
/// parameters must not pass, while a miss (a wrapper around serde_json's serializer) only costs
/// the caching, never correctness.
fn writes_json<S>() -> bool {
    let mut name = core::any::type_name::<S>();
    while let Some(rest) = name
        .strip_prefix("&mut ")
        .or_else(|| name.strip_prefix('&'))
    {
        name = rest;
    }
    name.starts_with("serde_json::")
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use core::sync::atomic::{AtomicUsize, Ordering};

    struct Counted<'a>(&'a AtomicUsize);

    impl Serialize for Counted<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            self.0.fetch_add(1, Ordering::Relaxed);
            serializer.serialize_str("counted")
        }
    }

    #[test]
    fn clones_share_one_serialization() {
        let calls = AtomicUsize::new(0);
        let event = Published::new(SeqId::new(1), Counted(&calls));
        for _ in 0..100 {
            let copy = event.clone();
            assert_eq!(serde_json::to_string(&copy).unwrap(), "\"counted\"");
            assert_eq!(serde_json::to_vec_pretty(&copy).unwrap(), b"\"counted\"");
        }
        assert_eq!(calls.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn nests_inside_other_json_and_converts_to_value() {
        let event = Published::new(SeqId::new(1), serde_json::json!({"n": 1, "s": "x"}));
        let envelope = serde_json::json!({ "json": serde_json::to_value(&event).unwrap() });
        assert_eq!(envelope.to_string(), r#"{"json":{"n":1,"s":"x"}}"#);
        #[derive(Serialize)]
        struct Envelope<'a> {
            json: &'a Published<serde_json::Value>,
        }
        let text = serde_json::to_string(&Envelope { json: &event }).unwrap();
        assert_eq!(text, r#"{"json":{"n":1,"s":"x"}}"#);
    }

    #[test]
    fn a_serialization_error_is_reported_to_every_subscriber() {
        let mut map = alloc::collections::BTreeMap::new();
        map.insert(alloc::vec![1u8], 1u8); // JSON object keys must be strings
        let event = Published::new(SeqId::new(1), map);
        assert!(serde_json::to_string(&event).is_err());
        assert!(serde_json::to_string(&event.clone()).is_err());
    }

    #[test]
    fn only_serde_json_serializers_get_the_cached_json() {
        assert!(writes_json::<&mut serde_json::Serializer<Vec<u8>>>());
        assert!(writes_json::<serde_json::value::Serializer>());
        assert!(!writes_json::<Vec<serde_json::Value>>());
        assert!(!writes_json::<&mut Wrapper<serde_json::Serializer<Vec<u8>>>>());
    }

    struct Wrapper<S>(S);

    struct CountedPost<'a>(&'a AtomicUsize);

    impl Serialize for CountedPost<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap;
            self.0.fetch_add(1, Ordering::Relaxed);
            let mut map = serializer.serialize_map(Some(1))?;
            map.serialize_entry("title", "hi")?;
            map.end()
        }
    }

    #[test]
    fn the_id_goes_first_into_the_data_once_for_every_clone() {
        let calls = AtomicUsize::new(0);
        let post = Published::new(SeqId::new(7), CountedPost(&calls));
        for _ in 0..3 {
            let copy = post.clone();
            assert_eq!(
                copy.json_with_id().unwrap().get(),
                r#"{"id":7,"title":"hi"}"#
            );
            assert_eq!(serde_json::to_string(&copy).unwrap(), r#"{"title":"hi"}"#);
        }
        assert_eq!(
            calls.load(Ordering::Relaxed),
            1,
            "the data was serialized more than once"
        );
        let empty = Published::new(SeqId::new(1), serde_json::json!({}));
        assert_eq!(empty.json_with_id().unwrap().get(), r#"{"id":1}"#);
        let number = Published::new(SeqId::new(1), 5);
        assert!(number
            .json_with_id()
            .unwrap_err()
            .contains("must be an object"));
    }

    #[test]
    fn into_event_sets_the_id() {
        let event = Published::new(SeqId::new(255), "x").into_event();
        assert_eq!(event.id().unwrap().as_str(), "255");
        assert_eq!(**event.data(), "x");
    }
}
