//! An event shared by every stream that sends it: its JSON and id made once, and each
//! protocol's bytes for it encoded by the first stream that writes it, then handed to the others
//! as a pointer. What differs between subscribers (a tRPC stream's last id, a WebSocket's call
//! id) stays with the stream; only what is the same for all of them lives here.

use alloc::string::String;
use core::fmt;

use bytes::Bytes;
use serde_json::value::RawValue;

use super::Json;
use crate::event::{Event, EventId};
use crate::sync::{Arc, OnceLock};

/// One event, as every subscriber of a topic sends it: the data's JSON and the id, made once per
/// publish, and the SSE frame of each protocol, encoded the first time a stream of that protocol
/// writes it and shared by every other (see [`encoded`](SharedEvent::encoded)).
///
/// Cloning it clones one `Arc`. A publisher's subscriptions yield it as
/// [`Frame::Shared`](super::Frame::Shared), so that a fan-out to 10,000 streams of one protocol
/// writes the event's bytes once and hands each stream a reference to them.
///
/// The encodings sit in a small fixed table keyed by [`Encoding`], not a map: looking one up is
/// an index, and a table of empty cells costs a few words per event. A framing that is not one
/// of the known encodings writes the event from [`data`](SharedEvent::data) and
/// [`id`](SharedEvent::id) itself, per stream.
///
/// ```
/// use outer_core::procedure::{Encoding, SharedEvent};
/// let data = serde_json::value::to_raw_value(&[1, 2]).unwrap();
/// let event = SharedEvent::new(data, Some(outer_core::EventId::from(7u64)));
/// let copy = event.clone(); // one Arc, nothing copied
/// let first = event.encoded(Encoding::OrpcSse, |out| out.push_str("made once"));
/// let again = copy.encoded(Encoding::OrpcSse, |_| unreachable!("already made"));
/// assert_eq!(first.as_ptr(), again.as_ptr());
/// assert_eq!(copy.data().get(), "[1,2]");
/// ```
#[derive(Clone)]
pub struct SharedEvent(Arc<Inner>);

struct Inner {
    data: Json,
    id: Option<EventId>,
    encoded: [OnceLock<Bytes>; Encoding::COUNT],
    /// How many times each encoding was written: what the tests count.
    #[cfg(test)]
    encodes: [core::sync::atomic::AtomicUsize; Encoding::COUNT],
}

/// A wire encoding of an event that is the same for every stream of a protocol, and so is made
/// once per [`SharedEvent`]: the key of [`SharedEvent::encoded`].
///
/// Only the SSE framings are here: a WebSocket message carries its call's id, which differs
/// from one subscriber to the next, so there is nothing whole to share.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Encoding {
    /// oRPC's SSE `message` event, with its id.
    OrpcSse,
    /// tRPC's SSE data event, with its id.
    TrpcSse,
}

impl Encoding {
    const COUNT: usize = 2;

    fn index(self) -> usize {
        self as usize
    }
}

impl SharedEvent {
    /// An event to share: its data's JSON and its id.
    pub fn new(data: Json, id: Option<EventId>) -> Self {
        Self(Arc::new(Inner {
            data,
            id,
            encoded: [OnceLock::new(), OnceLock::new()],
            #[cfg(test)]
            encodes: Default::default(),
        }))
    }

    /// The data, as JSON.
    pub fn data(&self) -> &RawValue {
        &self.0.data
    }

    /// The id, which every stream sends as the SSE id.
    pub fn id(&self) -> Option<&EventId> {
        self.0.id.as_ref()
    }

    /// The event's bytes in `encoding`: written by `encode` the first time any clone asks, and
    /// the same bytes (one allocation, shared by reference count) ever after. Two streams that
    /// race on the first write may both run `encode` where there is no `std` (one result is
    /// kept); with `std` the second waits for the first.
    pub fn encoded(&self, encoding: Encoding, encode: impl FnOnce(&mut String)) -> Bytes {
        self.0.encoded[encoding.index()]
            .get_or_init(|| {
                #[cfg(test)]
                self.0.encodes[encoding.index()]
                    .fetch_add(1, core::sync::atomic::Ordering::Relaxed);
                // Room for the JSON and a line or two of framing around it.
                let mut out = String::with_capacity(self.0.data.get().len() + 64);
                encode(&mut out);
                Bytes::from(out)
            })
            .clone()
    }

    /// The event as a plain [`Event`], its JSON copied: for code that wants one shape of event
    /// whatever the stream (tests, tools).
    pub fn to_event(&self) -> Event<Json> {
        let mut event = Event::new(self.0.data.clone());
        if let Some(id) = &self.0.id {
            // An EventId is checked already, so setting it cannot fail.
            let _ = event.meta_mut().set_id(id.clone());
        }
        event
    }

    /// How many times `encoding` was written for this event.
    #[cfg(test)]
    pub(crate) fn encodes(&self, encoding: Encoding) -> usize {
        self.0.encodes[encoding.index()].load(core::sync::atomic::Ordering::Relaxed)
    }

    /// Whether two handles share one event.
    pub fn ptr_eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl fmt::Debug for SharedEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedEvent")
            .field("id", &self.0.id)
            .field("data", &self.0.data)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_encoding_is_made_once_and_shared_by_every_clone() {
        let event = SharedEvent::new(
            serde_json::value::to_raw_value(&1).unwrap(),
            Some(EventId::from(1u64)),
        );
        let mut runs = 0;
        let clones: alloc::vec::Vec<_> = (0..5).map(|_| event.clone()).collect();
        let orpc: alloc::vec::Vec<Bytes> = clones
            .iter()
            .map(|e| {
                e.encoded(Encoding::OrpcSse, |out| {
                    runs += 1;
                    out.push('o');
                })
            })
            .collect();
        assert_eq!(runs, 1);
        assert!(orpc.iter().all(|b| b.as_ptr() == orpc[0].as_ptr()));
        let trpc = event.encoded(Encoding::TrpcSse, |out| out.push('t'));
        assert_eq!((&orpc[0][..], &trpc[..]), (&b"o"[..], &b"t"[..]));
        assert_eq!(event.to_event().id().unwrap().as_str(), "1");
    }
}
