//! What can go wrong: a request the publisher cannot serve ([`Error`]) and what a subscription
//! yields instead of events it cannot deliver ([`RecvError`], mostly a [`Gap`]).

use std::fmt;

use outer_core::publisher::GapKind;
use outer_core::{ErrorCode, RpcError};

use crate::id::{MalformedStreamId, StreamId};

/// Why a publish or a subscribe failed.
///
/// ```
/// use outer_core::RpcError;
/// use outer_redis::{Error, StreamId};
///
/// let err = Error::from(StreamId::parse("nope").unwrap_err());
/// let rpc = RpcError::from(err);
/// assert_eq!((rpc.code(), rpc.status()), ("BAD_REQUEST", 400));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The last event id is not a stream id this publisher could have sent. Answered as
    /// `BAD_REQUEST` (400).
    MalformedId(MalformedStreamId),
    /// Redis could not be reached or refused the command. Answered as `SERVICE_UNAVAILABLE`
    /// (503), which clients retry. A publish that fails this way may still have been stored
    /// (when the connection dropped after Redis took it): retrying it can publish it twice.
    Unavailable(String),
    /// The data could not be written as JSON. Answered as `INTERNAL_SERVER_ERROR` (500).
    Encode(String),
}

impl Error {
    pub(crate) fn unavailable(err: &redis::RedisError) -> Self {
        Self::Unavailable(err.to_string())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MalformedId(err) => fmt::Display::fmt(err, f),
            Self::Unavailable(why) => write!(f, "Redis is unavailable: {why}"),
            Self::Encode(why) => write!(f, "cannot write the event as JSON: {why}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<MalformedStreamId> for Error {
    fn from(err: MalformedStreamId) -> Self {
        Self::MalformedId(err)
    }
}

impl From<Error> for RpcError {
    fn from(err: Error) -> Self {
        let code = match err {
            Error::MalformedId(_) => ErrorCode::BAD_REQUEST,
            Error::Unavailable(_) => ErrorCode::SERVICE_UNAVAILABLE,
            Error::Encode(_) => ErrorCode::INTERNAL_SERVER_ERROR,
        };
        RpcError::new(code, err.to_string())
    }
}

/// Events a subscription cannot deliver: it says so instead of skipping them in silence. The
/// same contract as the in-memory publisher's [`Gap`](outer_core::publisher::Gap), with
/// stream ids.
///
/// - [`GapKind::Expired`]: the resume point is older than what the stream retains (its
///   `MAXLEN` trimmed events after it).
/// - [`GapKind::Unknown`]: the resume point is newer than any id the stream ever gave out: it
///   comes from another stream (the key was deleted, or Redis lost its data in a restart).
/// - [`GapKind::Lagged`]: the subscriber fell so far behind that the stream trimmed its next
///   events before it read them.
///
/// Under [`GapPolicy::End`](outer_core::publisher::GapPolicy) the subscription ends after it;
/// under `Skip` it goes on from the oldest event retained. Returned from a handler it becomes
/// `PRECONDITION_FAILED` (412), with the same `data` as the in-memory publisher's gap.
///
/// ```
/// # use outer_redis::{Gap, StreamId};
/// fn tell(gap: &Gap) -> String {
///     format!("lost what came after {}", gap.last_id())
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gap {
    kind: GapKind,
    last_id: StreamId,
    next_id: Option<StreamId>,
    ends: bool,
}

impl Gap {
    pub(crate) fn new(
        kind: GapKind,
        last_id: StreamId,
        next_id: Option<StreamId>,
        ends: bool,
    ) -> Self {
        Self {
            kind,
            last_id,
            next_id,
            ends,
        }
    }

    /// Why it happened.
    pub fn kind(&self) -> GapKind {
        self.kind
    }

    /// The subscriber's position before the gap: its last event id, or the id of the last event
    /// it received before it fell behind.
    pub fn last_id(&self) -> StreamId {
        self.last_id
    }

    /// The oldest id still retained, where a `Skip` subscription goes on, when known.
    pub fn next_id(&self) -> Option<StreamId> {
        self.next_id
    }

    /// How many events were lost: Redis does not record which ids it trimmed, so never known.
    pub fn missed(&self) -> Option<u64> {
        None
    }

    /// Whether the subscription ends after this gap (`GapPolicy::End`).
    pub fn ends_subscription(&self) -> bool {
        self.ends
    }
}

impl fmt::Display for Gap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            GapKind::Unknown => write!(
                f,
                "cannot resume after event {}: the stream never gave out that id (it was \
                 deleted, or Redis lost its data)",
                self.last_id
            ),
            GapKind::Lagged => write!(
                f,
                "the subscriber fell behind after event {} and the stream trimmed what followed",
                self.last_id
            ),
            _ => write!(
                f,
                "cannot resume after event {}: events after it are no longer retained",
                self.last_id
            ),
        }?;
        f.write_str("; refetch and subscribe again without a last event id")
    }
}

impl std::error::Error for Gap {}

impl From<Gap> for RpcError {
    fn from(gap: Gap) -> Self {
        let data = serde_json::json!({
            "gap": gap.kind.as_str(),
            "lastEventId": gap.last_id.to_string(),
            "nextEventId": gap.next_id.map(|id| id.to_string()),
            "missed": gap.missed(),
        });
        RpcError::new(ErrorCode::PRECONDITION_FAILED, gap.to_string()).with_data(data)
    }
}

/// What a [`Subscription`](crate::Subscription) yields instead of an event.
///
/// ```
/// use outer_core::RpcError;
/// # fn check(err: outer_redis::RecvError) {
/// match &err {
///     outer_redis::RecvError::Gap(gap) => eprintln!("gap after {}", gap.last_id()),
///     outer_redis::RecvError::Undecodable { id, .. } => eprintln!("skipping {id}"),
///     _ => {}
/// }
/// let answer = RpcError::from(err); // 412 for a gap, 500 for an undecodable entry
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecvError {
    /// Events that cannot be delivered.
    Gap(Gap),
    /// An entry of the stream that is not this publisher's JSON for `T` (written by another
    /// program, or by a version of the application with another `T`). The subscription goes on
    /// after it; a handler may skip it or end with it. Answered as `INTERNAL_SERVER_ERROR`.
    Undecodable {
        /// The entry's id.
        id: StreamId,
        /// What was wrong with it.
        reason: String,
    },
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Gap(gap) => fmt::Display::fmt(gap, f),
            Self::Undecodable { id, reason } => {
                write!(f, "event {id} in the stream cannot be read: {reason}")
            }
        }
    }
}

impl std::error::Error for RecvError {}

impl From<Gap> for RecvError {
    fn from(gap: Gap) -> Self {
        Self::Gap(gap)
    }
}

impl From<RecvError> for RpcError {
    fn from(err: RecvError) -> Self {
        match err {
            RecvError::Gap(gap) => gap.into(),
            RecvError::Undecodable { id, .. } => {
                RpcError::new(ErrorCode::INTERNAL_SERVER_ERROR, err.to_string())
                    .with_data(serde_json::json!({ "eventId": id.to_string() }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_has_the_status_a_client_can_act_on() {
        let malformed = Error::from(StreamId::parse("x").unwrap_err());
        assert_eq!(RpcError::from(malformed).status(), 400);
        let down = RpcError::from(Error::Unavailable("connection refused".into()));
        assert_eq!((down.code(), down.status()), ("SERVICE_UNAVAILABLE", 503));
        assert!(down.is_retryable());
        assert!(down.message().contains("connection refused"));
    }

    #[test]
    fn a_gap_carries_the_in_memory_publishers_data_shape() {
        let gap = Gap::new(
            GapKind::Expired,
            StreamId::new(5, 0),
            Some(StreamId::new(9, 1)),
            true,
        );
        let rpc = RpcError::from(RecvError::from(gap));
        assert_eq!((rpc.code(), rpc.status()), ("PRECONDITION_FAILED", 412));
        assert!(!rpc.is_retryable());
        let data = rpc.data().unwrap();
        assert_eq!(data["gap"], "expired");
        assert_eq!(data["lastEventId"], "5-0");
        assert_eq!(data["nextEventId"], "9-1");
        assert!(data["missed"].is_null());
        assert!(rpc.message().contains("refetch"), "{}", rpc.message());
    }
}
