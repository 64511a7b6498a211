//! What can go wrong between a publisher and a subscriber: a request it cannot serve
//! ([`SubscribeError`]) and events a subscription can no longer deliver ([`Gap`]).

use alloc::string::ToString;
// What ts-rs's derive expands to names the std prelude's items, which this no_std crate lacks.
#[cfg(feature = "typescript")]
use alloc::{format, string::String};
use core::fmt;

use super::{MalformedId, SeqId};
use crate::error::{ErrorCode, RpcError};

/// A subscribe request the publisher refuses.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubscribeError {
    /// The last event id is not one this publisher could have sent. Answered as `BAD_REQUEST`.
    MalformedId(MalformedId),
}

impl fmt::Display for SubscribeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MalformedId(err) => fmt::Display::fmt(err, f),
        }
    }
}

impl core::error::Error for SubscribeError {}

impl From<MalformedId> for SubscribeError {
    fn from(err: MalformedId) -> Self {
        Self::MalformedId(err)
    }
}

impl crate::error::IntoRpcError for SubscribeError {
    fn into_rpc_error(self) -> RpcError {
        RpcError::new(ErrorCode::BAD_REQUEST, self.to_string())
    }
}

/// Events a subscription cannot deliver: it says so instead of skipping them in silence.
///
/// A subscription yields a gap as an `Err` item. Under [`GapPolicy::End`](super::GapPolicy)
/// the stream ends after it; under [`GapPolicy::Skip`](super::GapPolicy) it goes on from
/// [`next_id`](Gap::next_id), the oldest event still retained.
///
/// The client cannot fill a gap by resuming (the events are gone), so the usual answer is to
/// have it refetch its state and subscribe again without a last event id. Returned from a
/// handler, a gap becomes `PRECONDITION_FAILED` (412): a client error, since retrying with the
/// same last event id meets the same gap.
///
/// One type for every publisher, generic over its ids: the in-memory publisher's is
/// `Gap<SeqId>` (the default), `outer-redis`'s `Gap<StreamId>`, so a handler treats them alike
/// and clients see the same `data` from both.
///
/// ```
/// use outer_core::publisher::{Gap, GapKind, SeqId};
/// let gap = Gap::new(GapKind::Expired, SeqId::new(3), Some(SeqId::new(9)), Some(5), true);
/// let error = outer_core::RpcError::from(gap);
/// assert_eq!(error.status(), 412);
/// assert_eq!(error.data().unwrap()["gap"], "expired");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gap<Id = SeqId> {
    kind: GapKind,
    last_id: Id,
    next_id: Option<Id>,
    missed: Option<u64>,
    ends: bool,
}

/// Why a [`Gap`] happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum GapKind {
    /// The resume point is older than what the topic retains.
    Expired,
    /// The resume point is newer than any id this publisher assigned on the topic: it comes
    /// from another life of the publisher (a restart) or of the topic, so what the client
    /// missed is unknown.
    Unknown,
    /// The subscriber fell so far behind that its next event left the topic's window.
    Lagged,
}

impl GapKind {
    /// The kind's name in the `gap` field of the error a client receives (`"expired"`,
    /// `"unknown"` or `"lagged"`): one spelling for every publisher.
    ///
    /// ```
    /// use outer_core::publisher::GapKind;
    /// assert_eq!(GapKind::Lagged.as_str(), "lagged");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            GapKind::Expired => "expired",
            GapKind::Unknown => "unknown",
            GapKind::Lagged => "lagged",
        }
    }
}

impl<Id: Clone> Gap<Id> {
    /// A gap of `kind` after `last_id`, going on (if at all) at `next_id`, with `missed` events
    /// lost when known, and whether the subscription ends with it. For publishers.
    pub fn new(
        kind: GapKind,
        last_id: Id,
        next_id: Option<Id>,
        missed: Option<u64>,
        ends: bool,
    ) -> Self {
        Self {
            kind,
            last_id,
            next_id,
            missed,
            ends,
        }
    }

    /// Why it happened.
    pub fn kind(&self) -> GapKind {
        self.kind
    }

    /// The subscriber's position before the gap: its last event id, or the id of the last event
    /// it received before it fell behind.
    pub fn last_id(&self) -> Id {
        self.last_id.clone()
    }

    /// The oldest id still retained, where the subscription goes on under `GapPolicy::Skip`,
    /// when the publisher knows it (the in-memory one always does).
    pub fn next_id(&self) -> Option<Id> {
        self.next_id.clone()
    }

    /// How many events were lost, when the publisher knows. `None` for [`GapKind::Unknown`] and
    /// for a resume point from an earlier life of the topic.
    pub fn missed(&self) -> Option<u64> {
        self.missed
    }

    /// Whether the subscription ends after this gap (`GapPolicy::End`).
    pub fn ends_subscription(&self) -> bool {
        self.ends
    }
}

impl<Id: fmt::Display> fmt::Display for Gap<Id> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let missed = match self.missed {
            Some(n) => alloc::format!("{n} events"),
            None => "an unknown number of events".to_string(),
        };
        match self.kind {
            GapKind::Expired => write!(
                f,
                "cannot resume after event {}: {missed} after it are no longer retained",
                self.last_id
            ),
            GapKind::Unknown => write!(
                f,
                "cannot resume after event {}: it was never given out here (the server \
                 restarted, the topic was reset, or its store lost its data)",
                self.last_id
            ),
            GapKind::Lagged => write!(
                f,
                "the subscriber fell behind after event {} and {missed} were dropped",
                self.last_id
            ),
        }?;
        f.write_str("; refetch and subscribe again without a last event id")
    }
}

impl<Id: fmt::Display + fmt::Debug> core::error::Error for Gap<Id> {}

/// The `data` of the error a [`Gap`] becomes (412 `PRECONDITION_FAILED`): what a client reads
/// to decide how to start over. A procedure that may end with a gap declares it
/// (`.declares::<GapData>(ErrorCode::PRECONDITION_FAILED)`), and its oRPC clients get it typed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct GapData {
    /// Why the events cannot be delivered.
    pub gap: GapKind,
    /// The subscriber's position before the gap, as its id's text.
    pub last_event_id: alloc::string::String,
    /// Where the subscription goes on, if it does: the oldest id still retained.
    pub next_event_id: Option<alloc::string::String>,
    /// How many events were lost, when the publisher knows.
    pub missed: Option<u64>,
}

impl<Id: fmt::Display> crate::error::IntoRpcError for Gap<Id> {
    fn into_rpc_error(self) -> RpcError {
        let data = GapData {
            gap: self.kind,
            last_event_id: self.last_id.to_string(),
            next_event_id: self.next_id.as_ref().map(ToString::to_string),
            missed: self.missed,
        };
        let message = self.to_string();
        let error = RpcError::new(ErrorCode::PRECONDITION_FAILED, message);
        match serde_json::to_value(&data) {
            Ok(data) => error.with_data(data),
            // Strings, numbers and null always serialize.
            Err(_) => error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_id_is_a_bad_request() {
        let err = SubscribeError::from(SeqId::parse("nope").unwrap_err());
        let rpc = RpcError::from(err);
        assert_eq!(rpc.code(), "BAD_REQUEST");
        assert!(rpc.message().contains("\"nope\""), "{}", rpc.message());
    }

    #[test]
    fn a_gap_tells_the_client_what_was_lost_and_what_to_do() {
        let gap = Gap::new(
            GapKind::Lagged,
            SeqId::new(4),
            Some(SeqId::new(9)),
            Some(4),
            true,
        );
        let rpc = RpcError::from(gap);
        assert_eq!((rpc.code(), rpc.status()), ("PRECONDITION_FAILED", 412));
        assert!(!rpc.is_retryable());
        assert!(rpc.message().contains("refetch"), "{}", rpc.message());
        let data = rpc.data().unwrap();
        assert_eq!(data["gap"], "lagged");
        assert_eq!(data["missed"], 4);
        assert_eq!(data["nextEventId"], "9");
    }
}
