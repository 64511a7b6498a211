//! Cancellation cleanup, as a property over the whole stack in memory, in both protocols: a
//! client that goes away at any point (before the handler has subscribed, before the first
//! event, mid-stream, mid-event, between a cut and its reconnect) leaves nothing behind. At the
//! moment the connection is dropped, synchronously and with no further poll:
//!
//! - every handler's Drop guard has run (the `finally` of the seeds),
//! - the publisher has no subscriber left on the topic,
//! - no sleep is left on the clock (keep-alives, stream deadlines, the handler's own timers).
//!
//! The bound is zero polls: cleanup is the drop itself, not something a task does later.

use std::sync::Arc;
use std::time::Duration;

use outer_core::publisher::MemoryPublisher;
use outer_core::App;
use outer_harness::properties::{feed, Live, TOPIC};
use outer_harness::{cases, Protocol, Session, SimClock};
use proptest::prelude::*;

fn app(
    publisher: &MemoryPublisher<u64>,
    clock: &SimClock,
    live: &Live,
    setup: Duration,
    pace: Duration,
) -> App<()> {
    feed(publisher, live, Some(Arc::new(clock.clone())), setup, pace).into()
}

#[derive(Clone, Debug)]
enum Step {
    Publish,
    Deliver(usize),
    Advance(u64),
    Cut,
    Reconnect,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => Just(Step::Publish),
        3 => (0usize..120).prop_map(Step::Deliver),
        2 => (0u64..40).prop_map(Step::Advance),
        1 => Just(Step::Cut),
        1 => Just(Step::Reconnect),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(2000)))]

    #[test]
    fn a_client_gone_at_any_point_leaves_no_handler_subscription_or_timer(
        protocol in proptest::sample::select(&Protocol::ALL[..]),
        setup in 0u64..30,
        pace in 0u64..10,
        steps in proptest::collection::vec(step(), 0..60),
    ) {
        let clock = SimClock::new();
        let live = Live::default();
        let publisher = MemoryPublisher::builder().retain_last(8).build();
        let app = app(
            &publisher,
            &clock,
            &live,
            Duration::from_millis(setup),
            Duration::from_millis(pace),
        );
        let mut session =
            Session::new(app, protocol, "live", None).with_timer(Arc::new(clock.clone()));
        session.connect();
        for step in &steps {
            match step {
                Step::Publish => {
                    publisher.publish_now(TOPIC, 0);
                }
                Step::Deliver(bytes) => {
                    session.pump(*bytes);
                }
                Step::Advance(ms) => clock.advance(Duration::from_millis(*ms)),
                Step::Cut => {
                    session.cut();
                    prop_assert_eq!(live.count(), 0, "a cut leaves the handler running");
                    prop_assert_eq!(publisher.subscriber_count(TOPIC), 0);
                    prop_assert_eq!(clock.pending(), 0, "a cut leaves a sleep behind");
                }
                Step::Reconnect => session.connect(),
            }
            // While connected, one handler at most is alive, never one per past connection.
            prop_assert!(live.count() <= 1);
        }
        drop(session);
        prop_assert_eq!(live.count(), 0, "the handler outlived its client");
        prop_assert_eq!(publisher.subscriber_count(TOPIC), 0);
        prop_assert_eq!(publisher.topic_count() <= 1, true);
        prop_assert_eq!(clock.pending(), 0, "a sleep outlived its stream");
    }
}

#[test]
fn the_suite_sees_a_handler_that_is_alive() {
    // The property above is only worth something if the counters do move: a connected
    // handler past its setup shows up in each of them.
    for protocol in Protocol::ALL {
        let clock = SimClock::new();
        let live = Live::default();
        let publisher = MemoryPublisher::builder().retain_last(8).build();
        let app = app(
            &publisher,
            &clock,
            &live,
            Duration::from_millis(5),
            Duration::ZERO,
        );
        let mut session =
            Session::new(app, protocol, "live", None).with_timer(Arc::new(clock.clone()));
        session.connect();
        assert_eq!(live.count(), 1);
        assert_eq!(publisher.subscriber_count(TOPIC), 0, "still in setup");
        // The setup sleep, and the stream's keep-alive for tRPC's default ping.
        assert!(clock.pending() >= 1);
        clock.advance(Duration::from_millis(5));
        session.pump_all();
        assert_eq!(publisher.subscriber_count(TOPIC), 1);
        drop(session);
        assert_eq!(
            (
                live.count(),
                publisher.subscriber_count(TOPIC),
                clock.pending()
            ),
            (0, 0, 0)
        );
    }
}
