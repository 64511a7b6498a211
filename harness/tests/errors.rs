//! Error propagation, as a property over the whole stack in memory, in both protocols. A
//! stream fails once, at a random point, with a random error:
//!
//! - a 4xx ends the subscription with exactly that error on the client (code, status, message,
//!   and for oRPC its data; tRPC's wire has no room for custom data), after the events before
//!   it, and the client does not reconnect;
//! - a 5xx (the handler's own, or an output that fails validation) makes the client reconnect
//!   and resume: in the end it has every event exactly once, in order, and the return value;
//! - an input that does not decode is refused with BAD_REQUEST naming the failing field.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use outer_core::procedure::Issue;
use outer_core::{
    event_iterator, subscription, tracked, App, ErrorCode, Request, Router, RpcError,
};
use outer_harness::{cases, Protocol, Seen, Session};
use proptest::prelude::*;
use serde::Deserialize;
use serde_json::{json, Value};

const COUNT: u64 = 6;

#[derive(Deserialize)]
struct Input {
    /// The event whose turn it is when the failure strikes (1-based; past COUNT: never).
    fail_at: u64,
}

#[derive(Clone, Debug)]
enum Failure {
    /// The handler returns this error.
    Handler(RpcError),
    /// The handler yields a value its output validator refuses.
    InvalidOutput,
}

/// `count` yields {n} tracked with id n for n after the last id up to COUNT, then returns
/// {done: true}. The first connection to reach `fail_at` fails there; later ones go through.
fn app(failure: Failure) -> App<()> {
    let failed = Arc::new(AtomicBool::new(false));
    Router::new()
        .route(
            "count",
            subscription(move |req: Request<(), Input>| {
                let (failure, failed) = (failure.clone(), failed.clone());
                let start = req
                    .last_event_id
                    .as_ref()
                    .and_then(|id| id.as_str().parse::<u64>().ok())
                    .map_or(1, |last| last + 1);
                event_iterator(move |mut emit| async move {
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
                    Ok::<_, RpcError>(json!({ "done": true }))
                })
            })
            .validate_output(|value: &Value| match value["n"].as_i64() {
                Some(n) if n > 0 => Ok(()),
                _ => Err(Issue::new("n must be positive").at("n")),
            }),
        )
        .into()
}

fn error_strategy() -> impl Strategy<Value = RpcError> {
    let code = proptest::sample::select(ErrorCode::ALL);
    let message = "[a-zA-Z ]{0,12}";
    let data = proptest::option::of(
        (any::<u8>(), "[a-z]{0,6}").prop_map(|(n, s)| json!({ "n": n, "why": s })),
    );
    (code, message, data).prop_map(|(code, message, data)| {
        let error = RpcError::new(code, message);
        match data {
            Some(data) => error.with_data(data),
            None => error,
        }
    })
}

fn failure_strategy() -> impl Strategy<Value = Failure> {
    prop_oneof![
        4 => error_strategy().prop_map(Failure::Handler),
        1 => Just(Failure::InvalidOutput),
    ]
}

fn numbers(session: &Session<()>) -> Vec<u64> {
    session
        .events()
        .map(|e| e.data()["n"].as_u64().unwrap_or(0))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(1000)))]

    #[test]
    fn a_4xx_ends_the_stream_with_that_error_and_a_5xx_resumes(
        protocol in proptest::sample::select(&Protocol::ALL[..]),
        failure in failure_strategy(),
        fail_at in 1u64..=COUNT + 1,
        chunks in proptest::collection::vec(1usize..64, 1..8),
    ) {
        let mut session = Session::new(app(failure.clone()), protocol, "count", Some(json!({ "fail_at": fail_at })));
        // Deliver in the given chunk sizes, reconnecting whenever the client would.
        let mut rounds = 0;
        while session.finished().is_none() {
            rounds += 1;
            prop_assert!(rounds < 10_000, "no end after {} rounds", rounds);
            if !session.is_connected() {
                session.connect();
            }
            session.pump(chunks[rounds % chunks.len()]);
        }
        let strikes = fail_at <= COUNT;
        let expected_error = match (&failure, strikes) {
            (_, false) => None,
            (Failure::Handler(error), true) => Some(error.clone()),
            (Failure::InvalidOutput, true) => Some(RpcError::from_code(ErrorCode::INTERNAL_SERVER_ERROR)),
        };
        let errors: Vec<&RpcError> = session.seen().iter().filter_map(|s| match s {
            Seen::Error(e) => Some(e),
            _ => None,
        }).collect();
        match expected_error {
            None => {
                prop_assert!(errors.is_empty());
                prop_assert_eq!(numbers(&session), (1..=COUNT).collect::<Vec<_>>());
                prop_assert_eq!(session.connections(), 1);
            }
            Some(expected) if expected.status() < 500 => {
                // Given up with exactly that error, after the events before it.
                let Some(Err(got)) = session.finished() else {
                    return Err(TestCaseError::fail("a 4xx must end the session with it"));
                };
                prop_assert_eq!(got.code(), expected.code());
                prop_assert_eq!(got.status(), expected.status());
                prop_assert_eq!(got.message(), expected.message());
                if protocol == Protocol::Orpc {
                    prop_assert_eq!(got.data(), expected.data());
                }
                prop_assert_eq!(numbers(&session), (1..fail_at).collect::<Vec<_>>());
                prop_assert_eq!(session.connections(), 1, "no reconnect after a 4xx");
            }
            Some(expected) => {
                // Seen once, then resumed: every event once, in order, and the end.
                prop_assert_eq!(errors.len(), 1);
                prop_assert_eq!(errors[0].code(), expected.code());
                prop_assert_eq!(errors[0].status(), expected.status());
                if matches!(failure, Failure::InvalidOutput) {
                    prop_assert_eq!(errors[0].message(), "Output validation failed");
                }
                prop_assert_eq!(session.finished(), Some(&Ok(())));
                prop_assert_eq!(numbers(&session), (1..=COUNT).collect::<Vec<_>>());
                prop_assert_eq!(session.connections(), 2);
            }
        }
        if protocol == Protocol::Orpc && session.finished() == Some(&Ok(())) {
            prop_assert_eq!(session.seen().last(), Some(&Seen::Done(json!({ "done": true }))));
        }
    }

    #[test]
    fn an_input_that_does_not_decode_is_refused_naming_the_field(
        protocol in proptest::sample::select(&Protocol::ALL[..]),
        bad in prop_oneof![
            Just(json!("seven")),
            Just(json!(-1)),
            Just(json!(1.5)),
            Just(json!(null)),
            Just(json!([1])),
            Just(json!({ "n": 1 })),
        ],
    ) {
        let mut session = Session::new(
            app(Failure::InvalidOutput),
            protocol,
            "count",
            Some(json!({ "fail_at": bad })),
        );
        session.connect();
        session.pump_all();
        let Some(Err(error)) = session.finished() else {
            return Err(TestCaseError::fail("a bad input must end the session"));
        };
        prop_assert_eq!((error.code(), error.status()), ("BAD_REQUEST", 400));
        prop_assert_eq!(session.events().count(), 0);
        prop_assert_eq!(session.connections(), 1);
        match protocol {
            // oRPC carries the issues as data, each with its path.
            Protocol::Orpc => {
                let path = &error.data().expect("issues")["issues"][0]["path"];
                prop_assert_eq!(path, &json!(["fail_at"]));
            }
            // tRPC has only the message: it lists the issues, as zod's does.
            Protocol::Trpc => prop_assert!(error.message().contains("fail_at"), "{}", error.message()),
        }
    }
}
