//! What can go wrong: a request the publisher cannot serve ([`Error`]) and what a subscription
//! yields instead of events it cannot deliver ([`RecvError`], mostly a [`Gap`]).

use std::fmt;

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
        // A redirect reaches a caller only from a single-server connection to a cluster: alone,
        // or inside a transaction it aborted.
        let redirected = err.clone().into_server_errors().is_some_and(|errors| {
            errors.iter().any(|(_, err)| {
                matches!(
                    err.kind(),
                    Some(redis::ServerErrorKind::Moved | redis::ServerErrorKind::Ask)
                )
            })
        });
        if redirected {
            return Self::Unavailable(format!(
                "{err}: this Redis is a node of a Redis Cluster; connect with a cluster URL, \
                 redis+cluster://host1:port1,host2:port2"
            ));
        }
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

impl outer_core::IntoRpcError for Error {
    fn into_rpc_error(self) -> RpcError {
        let err = self;
        let code = match err {
            Error::MalformedId(_) => ErrorCode::BAD_REQUEST,
            Error::Unavailable(_) => ErrorCode::SERVICE_UNAVAILABLE,
            Error::Encode(_) => ErrorCode::INTERNAL_SERVER_ERROR,
        };
        RpcError::new(code, err.to_string())
    }
}

/// Events a subscription cannot deliver: the in-memory publisher's
/// [`Gap`](outer_core::publisher::Gap), with stream ids. One type for both, so handlers treat
/// them alike and clients get the same 412 `PRECONDITION_FAILED` with the same `data`.
///
/// - [`GapKind::Expired`](outer_core::publisher::GapKind): the resume point is older than what
///   the stream retains (its `MAXLEN` trimmed events after it).
/// - `GapKind::Unknown`: the stream never gave out the resume point: it is newer than any id
///   the stream gave out, or names no entry between the ones it holds, or names one of another
///   [`Epoch`](crate::Epoch): it comes from another history of the stream (the key was deleted,
///   Redis lost its data in a restart) or another deployment, or was made up. A live
///   subscription gets it too when Redis lost the stream under it.
/// - `GapKind::Lagged`: the subscriber fell so far behind that the stream trimmed its next
///   events before it read them.
///
/// Redis does not record which ids it trimmed, so [`missed`](outer_core::publisher::Gap::missed)
/// is never known here.
///
/// ```
/// # use outer_redis::{Gap, StreamId};
/// fn tell(gap: &Gap) -> String {
///     format!("lost what came after {}", gap.last_id())
/// }
/// ```
pub type Gap = outer_core::publisher::Gap<StreamId>;

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

impl outer_core::publisher::AsGap<StreamId> for RecvError {
    fn as_gap(&self) -> Option<&Gap> {
        match self {
            Self::Gap(gap) => Some(gap),
            Self::Undecodable { .. } => None,
        }
    }
}

impl From<Gap> for RecvError {
    fn from(gap: Gap) -> Self {
        Self::Gap(gap)
    }
}

impl outer_core::IntoRpcError for RecvError {
    fn into_rpc_error(self) -> RpcError {
        let err = self;
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
            outer_core::publisher::GapKind::Expired,
            StreamId::new(5, 0),
            Some(StreamId::new(9, 1)),
            None,
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
