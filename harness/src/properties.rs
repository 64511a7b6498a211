//! The properties Outer promises, as routers to run and checks of what a client saw: the same
//! ones run in memory ([`Session`](crate::Session), thousands of cases) and over real loopback
//! HTTP on each adapter ([`conformance::properties`](crate::conformance::properties), fewer).
//!
//! - Resume: for any schedule of publishes, disconnects and reconnects, a consumer receives the
//!   events published after its start point, in order, without loss or duplicate, each with
//!   the id its publish returned, or ends with an explicit gap (412) where retention was
//!   exceeded ([`check_resume`]). [`feed`] forwards any [`Publisher`], so the same check holds
//!   the in-memory publisher and `outer-redis`'s to it.
//! - Cancellation: a client that goes away leaves no handler, subscription or timer behind
//!   ([`Live`] counts handlers).
//! - Errors: a 4xx ends the stream with exactly that error; a 5xx resumes ([`check_errors`]).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use outer_core::procedure::Issue;
use outer_core::publisher::{Publisher, SubscribeOptions};
use outer_core::rt::Timer;
use outer_core::{event_iterator, procedure, tracked, ErrorCode, Event, EventId, Router, RpcError};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::{Protocol, Seen};

/// The topic the [`feed`] router forwards.
pub const TOPIC: &str = "t";

/// Counts live handlers: [`Live::enter`] adds one and the guard's Drop removes it, so the
/// count returning to zero shows every handler's cleanup ran.
#[derive(Clone, Debug, Default)]
pub struct Live(Arc<AtomicUsize>);

/// Held by a running handler; dropping it is the handler's `finally`.
#[derive(Debug)]
pub struct LiveGuard(Live);

impl Live {
    /// Marks a handler as running until the guard drops.
    pub fn enter(&self) -> LiveGuard {
        self.0.fetch_add(1, Ordering::SeqCst);
        LiveGuard(self.clone())
    }

    /// Handlers running now.
    pub fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        (self.0).0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A router with one subscription, `live`, that forwards [`TOPIC`] of `publisher`, resuming
/// after the client's last id. It waits `setup` on `timer` before subscribing (an auth lookup,
/// say) and `pace` after each event, so cancellation can strike in either wait. A resume point
/// older than retention ends it with the publisher's 412, so the client refetches instead of
/// missing events in silence.
///
/// Any [`Publisher`] of `u64` serves: the in-memory one, `outer-redis`'s. Each event goes out
/// with the publisher's id as its SSE id (`Into<EventId>`, as the trait asks), and the
/// publisher's errors as its own statuses (a malformed id 400, a gap 412, an outage 503).
pub fn feed<P>(
    publisher: &P,
    live: &Live,
    timer: Option<Arc<dyn Timer>>,
    setup: Duration,
    pace: Duration,
) -> Router<()>
where
    P: Publisher<u64> + Clone + 'static,
{
    let (publisher, live) = (publisher.clone(), live.clone());
    let os = procedure::<()>();
    Router::new().route(
        "live",
        os.input::<Option<Value>>().subscription(move |req| {
            let (publisher, live, timer) = (publisher.clone(), live.clone(), timer.clone());
            // The waits stay in the stream, not the setup: the in-memory session answers the
            // setup at once, and cancellation is to strike in either wait.
            async move {
                Ok(event_iterator(move |mut emit| async move {
                    let _guard = live.enter();
                    if let Some(timer) = &timer {
                        timer.sleep(setup).await;
                    }
                    let options = SubscribeOptions {
                        last_event_id: req.last_event_id.clone(),
                        ..SubscribeOptions::new()
                    };
                    let mut events = publisher.subscribe(TOPIC, options).await?;
                    while let Some(next) = futures::StreamExt::next(&mut events).await {
                        let published = next?;
                        let id: EventId = published.id().clone().into();
                        emit.send(tracked(id, *published.data())?).await?;
                        if let Some(timer) = &timer {
                            timer.sleep(pace).await;
                        }
                    }
                    Ok(())
                }))
            }
        }),
    )
}

/// Checks what a consumer of [`feed`] received against what was published: exactly
/// `published[start..]`, in order, each event with the id its publish returned; or, if it gave
/// up, a 412 gap after a prefix of it, with no other error seen (but the retryable 503s of
/// streams the server cut).
///
/// `published` is every publish on [`TOPIC`], in order: the id the publisher returned (as the
/// SSE id it becomes, `id.into()`) and the value. The ids are whatever the publisher gives
/// out (the memory publisher's `1, 2, 3`, a Redis stream's `1700000000000-0@3fa9c2d1`), so no
/// shape of id is assumed: each event must carry exactly the id its value was published with.
pub fn check_resume(
    published: &[(EventId, u64)],
    start: usize,
    seen: &[Seen],
    finished: Option<&Result<(), RpcError>>,
) -> Result<(), TestCaseError> {
    let expected: Vec<(Option<&str>, u64)> = published[start.min(published.len())..]
        .iter()
        .map(|(id, n)| (Some(id.as_str()), *n))
        .collect();
    let received: Vec<(Option<&str>, u64)> = seen
        .iter()
        .filter_map(|s| match s {
            Seen::Event(e) => Some(e),
            _ => None,
        })
        .map(|e: &Event<Value>| {
            let n = e.data().as_u64().unwrap_or(u64::MAX);
            (e.id().map(EventId::as_str), n)
        })
        .collect();
    match finished {
        // The only way to stop short is an explicit gap: what arrived is still a prefix of
        // what was published, in order, without duplicates, each with its publisher's id.
        Some(Err(gap)) => {
            prop_assert_eq!(gap.status(), 412, "gave up with {}", gap);
            prop_assert!(received.len() < expected.len());
            prop_assert_eq!(&received[..], &expected[..received.len()]);
        }
        Some(Ok(())) => prop_assert!(false, "the live stream never returns"),
        None => prop_assert_eq!(received, expected),
    }
    let errors: Vec<&Seen> = seen
        .iter()
        .filter(|s| matches!(s, Seen::Error(e) if e.status() != 503))
        .collect();
    // 503 is the retryable "interrupted" a server sends when it cuts a stream itself.
    prop_assert!(errors.len() <= 1, "at most the one gap: {:?}", errors);
    Ok(())
}

/// How many events the [`counter`] router yields.
pub const COUNT: u64 = 6;

/// The input of [`counter`].
#[derive(Clone, Debug, Deserialize)]
pub struct CounterInput {
    /// The event whose turn it is when the failure strikes (1-based; past [`COUNT`]: never).
    pub fail_at: u64,
}

/// How [`counter`] fails.
#[derive(Clone, Debug)]
pub enum Failure {
    /// The handler returns this error.
    Handler(RpcError),
    /// The handler yields a value its output validator refuses.
    InvalidOutput,
}

/// A router with one subscription, `count`: `{n}` tracked with id `n` for each `n` after the
/// last id up to [`COUNT`], then the return value `{done: true}`. The first connection to reach
/// `fail_at` fails there as `failure` says; later ones go through. Its output validator
/// refuses a non-positive `n`.
pub fn counter(failure: Failure) -> Router<()> {
    let failed = Arc::new(AtomicBool::new(false));
    Router::new().route(
        "count",
        procedure::<()>()
            .input::<CounterInput>()
            .subscription(move |req| {
                let (failure, failed) = (failure.clone(), failed.clone());
                let start = req
                    .last_event_id
                    .as_ref()
                    .and_then(|id| id.as_str().parse::<u64>().ok())
                    // Saturating: a resume id past COUNT, even u64::MAX, leaves nothing to send.
                    .map_or(1, |last| last.saturating_add(1));
                async move {
                    Ok(event_iterator(move |mut emit| async move {
                        for n in start..=COUNT {
                            if n == req.input.fail_at && !failed.swap(true, Ordering::SeqCst) {
                                match failure {
                                    Failure::Handler(error) => return Err(error),
                                    Failure::InvalidOutput => {
                                        emit.send(tracked(n, json!({ "n": -1 }))?).await?;
                                    }
                                }
                            }
                            emit.send(tracked(n, json!({ "n": n }))?).await?;
                        }
                        Ok(json!({ "done": true }))
                    }))
                }
            })
            .validate_output(|value| match value["n"].as_i64() {
                Some(n) if n > 0 => Ok(()),
                _ => Err(Issue::new("n must be positive").at("n")),
            }),
    )
}

/// Any error of the shared code table, with a message and sometimes data.
pub fn error_strategy() -> impl Strategy<Value = RpcError> {
    let code = proptest::sample::select(ErrorCode::ALL);
    let data = proptest::option::of(
        (any::<u8>(), "[a-z]{0,6}").prop_map(|(n, s)| json!({ "n": n, "why": s })),
    );
    (code, "[a-zA-Z ]{0,12}", data).prop_map(|(code, message, data)| {
        let error = RpcError::new(code, message);
        match data {
            Some(data) => error.with_data(data),
            None => error,
        }
    })
}

/// A [`Failure`]: mostly handler errors of every kind, sometimes an invalid output.
pub fn failure_strategy() -> impl Strategy<Value = Failure> {
    prop_oneof![
        4 => error_strategy().prop_map(Failure::Handler),
        1 => Just(Failure::InvalidOutput),
    ]
}

/// Checks what a consumer of [`counter`] saw, once it finished: with no failure, every event
/// and the end on one connection; after a 4xx, exactly that error (code, status, message, and
/// in oRPC its data: tRPC's wire has no room for it), after the events before it, with no
/// reconnect; after a 5xx, the error once, then every event exactly once, in order, and the
/// end, on a second connection.
pub fn check_errors(
    protocol: Protocol,
    failure: &Failure,
    fail_at: u64,
    seen: &[Seen],
    finished: Option<&Result<(), RpcError>>,
    connections: usize,
) -> Result<(), TestCaseError> {
    let numbers: Vec<u64> = seen
        .iter()
        .filter_map(|s| match s {
            Seen::Event(e) => Some(e.data()["n"].as_u64().unwrap_or(0)),
            _ => None,
        })
        .collect();
    let errors: Vec<&RpcError> = seen
        .iter()
        .filter_map(|s| match s {
            Seen::Error(e) => Some(e),
            _ => None,
        })
        .collect();
    let expected = match (failure, fail_at <= COUNT) {
        (_, false) => None,
        (Failure::Handler(error), true) => Some(error.clone()),
        (Failure::InvalidOutput, true) => Some(RpcError::new(
            ErrorCode::INTERNAL_SERVER_ERROR,
            "Output validation failed",
        )),
    };
    match expected {
        None => {
            prop_assert!(errors.is_empty(), "{:?}", errors);
            prop_assert_eq!(numbers, (1..=COUNT).collect::<Vec<_>>());
            prop_assert_eq!(connections, 1);
            prop_assert_eq!(finished, Some(&Ok(())));
        }
        Some(expected) if !expected.is_retryable() => {
            let Some(Err(got)) = finished else {
                return Err(TestCaseError::fail("a 4xx must end the session with it"));
            };
            prop_assert_eq!(got.code(), expected.code());
            prop_assert_eq!(got.status(), expected.status());
            prop_assert_eq!(got.message(), expected.message());
            if protocol == Protocol::Orpc {
                prop_assert_eq!(got.data(), expected.data());
            }
            prop_assert_eq!(numbers, (1..fail_at).collect::<Vec<_>>());
            prop_assert_eq!(connections, 1, "no reconnect after a 4xx");
        }
        Some(expected) => {
            prop_assert_eq!(errors.len(), 1, "{:?}", errors);
            prop_assert_eq!(errors[0].code(), expected.code());
            prop_assert_eq!(errors[0].status(), expected.status());
            prop_assert_eq!(errors[0].message(), expected.message());
            prop_assert_eq!(finished, Some(&Ok(())));
            prop_assert_eq!(numbers, (1..=COUNT).collect::<Vec<_>>());
            prop_assert_eq!(connections, 2);
        }
    }
    if protocol == Protocol::Orpc && finished == Some(&Ok(())) {
        prop_assert_eq!(seen.last(), Some(&Seen::Done(json!({ "done": true }))));
    }
    Ok(())
}

/// Inputs that do not decode as [`CounterInput`].
pub fn bad_input_strategy() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!({ "fail_at": "seven" })),
        Just(json!({ "fail_at": -1 })),
        Just(json!({ "fail_at": 1.5 })),
        Just(json!({ "fail_at": null })),
        Just(json!({ "fail_at": [1] })),
        Just(json!({ "n": 1 })),
    ]
}

/// Checks a refused input: BAD_REQUEST, no event, no reconnect, and the failing field named
/// (in oRPC's `data.issues`; in tRPC's message, which lists the issues as zod's does).
pub fn check_bad_input(
    protocol: Protocol,
    seen: &[Seen],
    finished: Option<&Result<(), RpcError>>,
    connections: usize,
) -> Result<(), TestCaseError> {
    let Some(Err(error)) = finished else {
        return Err(TestCaseError::fail("a bad input must end the session"));
    };
    prop_assert_eq!((error.code(), error.status()), ("BAD_REQUEST", 400));
    prop_assert!(!seen.iter().any(|s| matches!(s, Seen::Event(_))));
    prop_assert_eq!(connections, 1);
    match protocol {
        Protocol::Orpc => {
            // A wrong field is named by its path; a missing one by the message.
            let issue = error.data().map(|d| d["issues"][0].clone());
            let named = issue.as_ref().is_some_and(|issue| {
                issue["path"] == json!(["fail_at"])
                    || issue["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("fail_at"))
            });
            prop_assert!(named, "{:?}", issue);
        }
        Protocol::Trpc => prop_assert!(error.message().contains("fail_at"), "{}", error.message()),
    }
    Ok(())
}

/// How many cases a property runs: `PROPTEST_CASES` from the environment when set (run many
/// more with `PROPTEST_CASES=100000 cargo test -p outer-harness`), else `default`.
pub fn cases(default: u32) -> u32 {
    from_env("PROPTEST_CASES", default)
}

/// How many cases a property runs over loopback HTTP, where each case starts a server:
/// `OUTER_LOOPBACK_CASES` when set, else `default`.
pub fn loopback_cases(default: u32) -> u32 {
    from_env("OUTER_LOOPBACK_CASES", default)
}

fn from_env(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}
