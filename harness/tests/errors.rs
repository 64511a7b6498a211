//! Error propagation in memory, in both protocols (see `outer_harness::properties`): a stream
//! fails once, at a random point, with a random error. A 4xx ends the subscription with
//! exactly that error and no reconnect; a 5xx (the handler's own, or an output that fails
//! validation) makes the client reconnect and resume, missing nothing; an input that does not
//! decode is refused with BAD_REQUEST naming the failing field.

use outer_harness::properties::{
    bad_input_strategy, check_bad_input, check_errors, counter, failure_strategy, Failure, COUNT,
};
use outer_harness::{cases, Protocol, Session};
use proptest::prelude::*;
use serde_json::json;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(2000)))]

    #[test]
    fn a_4xx_ends_the_stream_with_that_error_and_a_5xx_resumes(
        protocol in proptest::sample::select(&Protocol::ALL[..]),
        failure in failure_strategy(),
        fail_at in 1u64..=COUNT + 1,
        chunks in proptest::collection::vec(1usize..64, 1..8),
    ) {
        let input = json!({ "fail_at": fail_at });
        let mut session = Session::new(counter(failure.clone()).into(), protocol, "count", Some(input));
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
        check_errors(protocol, &failure, fail_at, session.seen(), session.finished(), session.connections())?;
    }

    #[test]
    fn an_input_that_does_not_decode_is_refused_naming_the_field(
        protocol in proptest::sample::select(&Protocol::ALL[..]),
        bad in bad_input_strategy(),
    ) {
        let mut session = Session::new(counter(Failure::InvalidOutput).into(), protocol, "count", Some(bad));
        session.connect();
        session.pump_all();
        check_bad_input(protocol, session.seen(), session.finished(), session.connections())?;
    }
}
