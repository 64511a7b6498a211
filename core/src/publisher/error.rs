//! What can go wrong between a publisher and a subscriber: a request it cannot serve
//! ([`SubscribeError`]) and events a subscription can no longer deliver ([`Gap`]).

use alloc::string::ToString;
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

impl From<SubscribeError> for RpcError {
    fn from(err: SubscribeError) -> Self {
        RpcError::new(ErrorCode::BAD_REQUEST, err.to_string())
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
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gap {
    kind: GapKind,
    last_id: SeqId,
    next_id: SeqId,
    missed: Option<u64>,
    ends: bool,
}

/// Why a [`Gap`] happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

impl Gap {
    pub(crate) fn new(
        kind: GapKind,
        last_id: SeqId,
        next_id: SeqId,
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
    pub fn last_id(&self) -> SeqId {
        self.last_id
    }

    /// The oldest id still retained: where the subscription goes on under `GapPolicy::Skip`.
    pub fn next_id(&self) -> SeqId {
        self.next_id
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

impl fmt::Display for Gap {
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
                "cannot resume after event {}: this server never sent it (it restarted, or the topic was reset)",
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

impl core::error::Error for Gap {}

impl From<Gap> for RpcError {
    fn from(gap: Gap) -> Self {
        let data = serde_json::json!({
            "gap": gap.kind.as_str(),
            "lastEventId": gap.last_id.to_string(),
            "nextEventId": gap.next_id.to_string(),
            "missed": gap.missed,
        });
        RpcError::new(ErrorCode::PRECONDITION_FAILED, gap.to_string()).with_data(data)
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
        let gap = Gap::new(GapKind::Lagged, SeqId::new(4), SeqId::new(9), Some(4), true);
        let rpc = RpcError::from(gap);
        assert_eq!((rpc.code(), rpc.status()), ("PRECONDITION_FAILED", 412));
        assert!(!rpc.is_retryable());
        assert!(rpc.message().contains("refetch"), "{}", rpc.message());
        let data = rpc.data().unwrap();
        assert_eq!(data["gap"], "lagged");
        assert_eq!(data["missed"], 4);
        assert_eq!(data["nextEventId"], "0000000000000009");
    }
}
