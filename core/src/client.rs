//! The client's logic, without I/O: following a subscription across its connections.
//!
//! A [`Resumer`] remembers the last event id and the server's `retry:` delay, and when the
//! connection ends says whether to reconnect (after how long, resuming after which id) or give
//! up with a typed error. Dropped connections, 5xx errors and inactivity reconnect; 4xx errors
//! end the subscription. A [`Subscription`] wraps it with the SSE decoder and oRPC's frames:
//! bytes in, typed events out, and an inactivity deadline. Time and randomness come in as
//! arguments, so every rule is testable without sockets or sleeps. `outer-http`'s client drives
//! it over hyper; this module does no I/O and names no runtime.

mod subscription;

pub use subscription::{Head, Step, Subscription};

use alloc::string::String;
use core::time::Duration;

use crate::error::{ErrorCode, RpcError};
use crate::event::EventId;

/// How a client retries a subscription whose connection ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The first delay when the server gave none (`retry:`).
    pub initial_delay: Duration,
    /// The delay doubles after each failed attempt in a row, up to this.
    pub max_delay: Duration,
    /// Spread each backoff delay over [½·delay, delay], so clients cut off together do not all
    /// come back at once. A delay the server set with `retry:` is kept as it is.
    pub jitter: bool,
    /// Give up after this many reconnects in a row without an event. `None`: never.
    pub max_attempts: Option<u32>,
    /// Reconnect when neither an event nor a keep-alive arrived for this long. `None`: never.
    pub inactivity_timeout: Option<Duration>,
}

impl Default for RetryPolicy {
    /// 1 s doubling to 30 s with jitter, at most 10 attempts in a row, and an inactivity timeout
    /// of 3 oRPC keep-alive intervals (15 s).
    fn default() -> Self {
        Self {
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
            jitter: true,
            max_attempts: Some(10),
            inactivity_timeout: Some(Duration::from_secs(15)),
        }
    }
}

/// Why a subscription's connection ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Ended {
    /// The connection closed (or could not be made) without an end frame.
    Dropped,
    /// Nothing arrived within the inactivity timeout.
    Inactive,
    /// The server sent an error, in the stream or as the response status.
    Error(RpcError),
}

/// What to do next.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Connect again after `delay`, sending `last_event_id` to resume.
    Reconnect {
        /// How long to wait first.
        delay: Duration,
        /// The id to resume after, if any event carried one.
        last_event_id: Option<EventId>,
    },
    /// Stop and report this error to the caller.
    GiveUp(RpcError),
}

/// Tracks one subscription across its connections.
///
/// ```
/// use core::time::Duration;
/// use outer_core::client::{Decision, Ended, Resumer, RetryPolicy};
/// use outer_core::{ErrorCode, EventId, RpcError};
///
/// let mut resumer = Resumer::new(RetryPolicy { jitter: false, ..RetryPolicy::default() });
/// resumer.on_event(Some(&EventId::new("7").unwrap()), Some(500));
/// // A dropped connection: reconnect after the server's retry, resuming after 7.
/// assert_eq!(
///     resumer.on_end(Ended::Dropped, 0),
///     Decision::Reconnect { delay: Duration::from_millis(500), last_event_id: Some(EventId::new("7").unwrap()) },
/// );
/// // A 4xx: give up with it.
/// let bad = RpcError::new(ErrorCode::BAD_REQUEST, "nope");
/// assert_eq!(resumer.on_end(Ended::Error(bad.clone()), 0), Decision::GiveUp(bad));
/// ```
#[derive(Clone, Debug)]
pub struct Resumer {
    policy: RetryPolicy,
    last_event_id: Option<EventId>,
    server_retry: Option<Duration>,
    failures: u32,
}

impl Resumer {
    /// A subscription that has seen nothing yet.
    pub fn new(policy: RetryPolicy) -> Self {
        Self {
            policy,
            last_event_id: None,
            server_retry: None,
            failures: 0,
        }
    }

    /// Starts from an id the caller already has (a subscription resumed across restarts).
    pub fn resuming_after(mut self, last_event_id: Option<EventId>) -> Self {
        self.last_event_id = last_event_id;
        self
    }

    /// The policy.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// The id to send as `Last-Event-ID` on the next connection.
    pub fn last_event_id(&self) -> Option<&EventId> {
        self.last_event_id.as_ref()
    }

    /// Records an event: its id (if it had one) and the server's `retry:` (if sent). An event
    /// proves the connection works, so the run of failures starts over. An empty id forgets the
    /// last one, as SSE's rules say: the next connection then sends none.
    pub fn on_event(&mut self, id: Option<&EventId>, retry_ms: Option<u64>) {
        if let Some(id) = id {
            self.last_event_id = (!id.as_str().is_empty()).then(|| id.clone());
        }
        if let Some(ms) = retry_ms {
            self.server_retry = Some(Duration::from_millis(ms));
        }
        self.failures = 0;
    }

    /// Decides what follows the end of a connection. `random` is any random number (used only
    /// for jitter), so the caller chooses the source and tests can fix it.
    ///
    /// `max_attempts` counts reconnects in a row without an event: with `Some(2)`, the third
    /// failure in a row gives up, with the error that ended the last connection.
    pub fn on_end(&mut self, ended: Ended, random: u64) -> Decision {
        if let Ended::Error(error) = &ended {
            if !error.is_retryable() {
                return Decision::GiveUp(error.clone());
            }
        }
        self.failures = self.failures.saturating_add(1);
        if let Some(max) = self.policy.max_attempts {
            if self.failures > max {
                let cause = match ended {
                    Ended::Error(error) => error,
                    Ended::Dropped => RpcError::new(
                        ErrorCode::SERVICE_UNAVAILABLE,
                        "the connection kept dropping",
                    ),
                    Ended::Inactive => RpcError::new(
                        ErrorCode::GATEWAY_TIMEOUT,
                        "the server stopped sending events and keep-alives",
                    ),
                };
                return Decision::GiveUp(cause);
            }
        }
        Decision::Reconnect {
            delay: self.delay(random),
            last_event_id: self.last_event_id.clone(),
        }
    }

    /// The delay before the next attempt: the server's `retry:` as it is when it sent one (as
    /// the browser's EventSource and oRPC's retry plugin do), else the backoff for this many
    /// failures in a row, capped and jittered.
    fn delay(&self, random: u64) -> Duration {
        if let Some(retry) = self.server_retry {
            return retry;
        }
        let doublings = self.failures.saturating_sub(1).min(31);
        let base = self
            .policy
            .initial_delay
            .checked_mul(1u32 << doublings)
            .unwrap_or(self.policy.max_delay)
            .min(self.policy.max_delay);
        if !self.policy.jitter || base.is_zero() {
            return base;
        }
        // Anywhere in [base/2, base]: a spread without ever waiting longer than the base.
        let half = base / 2;
        let span = u64::try_from((base - half).as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(random % span.saturating_add(1))
    }
}

/// Reads a `Last-Event-ID`-style string back into an id, refusing line breaks and NUL.
pub fn parse_last_event_id(text: &str) -> Option<EventId> {
    EventId::new(String::from(text)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            jitter: false,
            max_attempts: Some(3),
            inactivity_timeout: None,
        }
    }

    fn id(text: &str) -> EventId {
        EventId::new(text).unwrap()
    }

    #[test]
    fn backoff_doubles_to_the_cap_and_an_event_starts_it_over() {
        let mut r = Resumer::new(RetryPolicy {
            max_attempts: None,
            ..policy()
        });
        let delays: alloc::vec::Vec<u128> = (0..6)
            .map(|_| match r.on_end(Ended::Dropped, 0) {
                Decision::Reconnect { delay, .. } => delay.as_millis(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
        r.on_event(None, None);
        assert_eq!(
            r.on_end(Ended::Dropped, 0),
            Decision::Reconnect {
                delay: Duration::from_millis(100),
                last_event_id: None
            }
        );
    }

    #[test]
    fn the_servers_retry_wins_over_the_backoff() {
        let mut r = Resumer::new(policy());
        r.on_event(Some(&id("4")), Some(1000));
        r.on_event(Some(&id("5")), None);
        assert_eq!(
            r.on_end(Ended::Inactive, 0),
            Decision::Reconnect {
                delay: Duration::from_millis(1000),
                last_event_id: Some(id("5"))
            }
        );
    }

    #[test]
    fn five_hundreds_reconnect_and_four_hundreds_give_up_with_the_error_intact() {
        let mut r = Resumer::new(policy());
        let boom = RpcError::new(ErrorCode::INTERNAL_SERVER_ERROR, "boom");
        assert!(matches!(
            r.on_end(Ended::Error(boom), 0),
            Decision::Reconnect { .. }
        ));
        let nope = RpcError::new(ErrorCode::BAD_REQUEST, "nope")
            .with_data(serde_json::json!({"why": "x"}));
        assert_eq!(
            r.on_end(Ended::Error(nope.clone()), 0),
            Decision::GiveUp(nope)
        );
    }

    #[test]
    fn too_many_failures_in_a_row_give_up_with_a_reason() {
        let mut r = Resumer::new(policy());
        for _ in 0..3 {
            assert!(matches!(
                r.on_end(Ended::Dropped, 0),
                Decision::Reconnect { .. }
            ));
        }
        match r.on_end(Ended::Dropped, 0) {
            Decision::GiveUp(err) => assert_eq!(err.status(), 503),
            other => panic!("{other:?}"),
        }

        // The give-up error is the last failure's: inactivity, or the server's 5xx as sent.
        let mut r = Resumer::new(policy());
        for _ in 0..3 {
            r.on_end(Ended::Inactive, 0);
        }
        match r.on_end(Ended::Inactive, 0) {
            Decision::GiveUp(err) => assert_eq!(err.code(), "GATEWAY_TIMEOUT"),
            other => panic!("{other:?}"),
        }
        let mut r = Resumer::new(policy());
        let boom =
            RpcError::new(ErrorCode::BAD_GATEWAY, "upstream").with_data(serde_json::json!(1));
        for _ in 0..3 {
            r.on_end(Ended::Error(boom.clone()), 0);
        }
        assert_eq!(
            r.on_end(Ended::Error(boom.clone()), 0),
            Decision::GiveUp(boom)
        );
    }

    #[test]
    fn jitter_stays_within_half_to_full_delay() {
        let mut r = Resumer::new(RetryPolicy {
            jitter: true,
            max_attempts: None,
            ..policy()
        });
        for random in [0, 1, 49_999_999, 50_000_000, u64::MAX] {
            r.failures = 0;
            match r.on_end(Ended::Dropped, random) {
                Decision::Reconnect { delay, .. } => {
                    assert!(
                        delay >= Duration::from_millis(50) && delay <= Duration::from_millis(100),
                        "{delay:?}"
                    );
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_resume_point_given_up_front_is_sent_on_the_first_reconnect() {
        let mut r = Resumer::new(policy()).resuming_after(Some(id("41")));
        assert_eq!(r.last_event_id(), Some(&id("41")));
        assert!(matches!(
            r.on_end(Ended::Dropped, 0),
            Decision::Reconnect { last_event_id: Some(ref i), .. } if i.as_str() == "41"
        ));
        assert!(parse_last_event_id("a\nb").is_none());
    }

    #[test]
    fn the_servers_retry_is_kept_exact_even_with_jitter() {
        let mut r = Resumer::new(RetryPolicy {
            jitter: true,
            ..policy()
        });
        r.on_event(Some(&id("1")), Some(700));
        for random in [0, 12_345, u64::MAX] {
            assert!(matches!(
                r.on_end(Ended::Dropped, random),
                Decision::Reconnect { delay, .. } if delay == Duration::from_millis(700)
            ));
        }
    }

    #[test]
    fn an_empty_id_forgets_the_resume_point() {
        let mut r = Resumer::new(policy());
        r.on_event(Some(&id("3")), None);
        r.on_event(Some(&id("")), None);
        assert_eq!(r.last_event_id(), None);
    }
}
