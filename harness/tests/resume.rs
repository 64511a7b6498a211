//! Resume and cancellation, as properties over the whole stack in memory: a publisher with
//! bounded retention, a streaming handler forwarding it, oRPC framing, SSE bytes cut after any
//! byte, the client's decoder and resume logic. For any schedule of publishes, deliveries, cuts
//! and reconnects, the consumer receives exactly the events published after its start point,
//! in order, without duplicates, or an explicit gap (412) where retention was exceeded; and
//! every cut drops the handler and its subscription at once.
//!
//! The start point is the last connection made without a last event id: a client that was cut
//! off before it received any event has nothing to resume from and starts live again, as with
//! oRPC, tRPC and a browser's EventSource.

use outer_core::publisher::MemoryPublisher;
use outer_core::{App, EventId};
use outer_harness::properties::{check_resume, feed, Live, TOPIC};
use outer_harness::strategies::{schedule, Step};
use outer_harness::{cases, Protocol, Session};
use proptest::prelude::*;
use std::time::Duration;

fn app(publisher: &MemoryPublisher<u64>) -> App<()> {
    feed(
        publisher,
        &Live::default(),
        None,
        Duration::ZERO,
        Duration::ZERO,
    )
    .into()
}

fn run(protocol: Protocol, retain: usize, steps: &[Step]) -> Result<(), TestCaseError> {
    let publisher = MemoryPublisher::builder().retain_last(retain).build();
    let mut session = Session::new(app(&publisher), protocol, "live", None);
    let mut published = Vec::new();
    let mut start = 0;
    let mut connect = |session: &mut Session<()>, published: &Vec<(EventId, u64)>| {
        if session.last_event_id().is_none() && session.finished().is_none() {
            start = published.len();
        }
        session.connect();
    };
    connect(&mut session, &published);
    for step in steps {
        match step {
            Step::Publish => {
                let n = published.len() as u64;
                let id = publisher.publish_now(TOPIC, n);
                published.push((id.into(), n));
            }
            Step::Deliver(bytes) => {
                session.pump(*bytes);
            }
            Step::Cut => {
                session.cut();
                // The handler and its subscription are gone at once, not eventually.
                prop_assert_eq!(publisher.subscriber_count(TOPIC), 0);
            }
            Step::Reconnect => connect(&mut session, &published),
        }
    }
    // In the end the client catches up: connect if it can, and take everything.
    if session.finished().is_none() {
        if !session.is_connected() {
            connect(&mut session, &published);
        }
        session.pump_all();
    }
    check_resume(&published, start, session.seen(), session.finished())?;
    drop(session);
    prop_assert_eq!(publisher.subscriber_count(TOPIC), 0);
    prop_assert_eq!(publisher.topic_count() <= 1, true);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(2000)))]

    #[test]
    fn a_consumer_gets_every_event_once_in_order_or_an_explicit_gap(
        protocol in proptest::sample::select(&Protocol::ALL[..]),
        retain in 1usize..24,
        steps in schedule(80),
    ) {
        run(protocol, retain, &steps)?;
    }
}

#[test]
fn a_cut_in_the_middle_of_an_event_loses_nothing() {
    for protocol in Protocol::ALL {
        // Once the client holds an id, deliver the stream a byte at a time and cut after every
        // byte, again and again: each reconnect resumes at the right place.
        let publisher = MemoryPublisher::builder().retain_last(16).build();
        let mut session = Session::new(app(&publisher), protocol, "live", None);
        session.connect();
        publisher.publish_now(TOPIC, 0);
        session.pump_all();
        assert!(session.last_event_id().is_some(), "{protocol:?}");
        for n in 1..4u64 {
            publisher.publish_now(TOPIC, n);
        }
        for bytes in 1..200 {
            session.pump(bytes % 7 + 1);
            session.cut();
            assert_eq!(publisher.subscriber_count(TOPIC), 0, "{protocol:?}");
            session.connect();
        }
        session.pump_all();
        let received: Vec<u64> = session
            .events()
            .map(|e| e.data().as_u64().unwrap())
            .collect();
        assert_eq!(received, [0, 1, 2, 3], "{protocol:?}");
        assert_eq!(session.connections(), 200);
    }
}

#[test]
fn a_consumer_further_behind_than_retention_is_told_so() {
    for protocol in Protocol::ALL {
        let publisher = MemoryPublisher::builder().retain_last(2).build();
        let mut session = Session::new(app(&publisher), protocol, "live", None);
        session.connect();
        publisher.publish_now(TOPIC, 0);
        session.pump_all();
        session.cut();
        for n in 1..6u64 {
            publisher.publish_now(TOPIC, n);
        }
        session.connect();
        session.pump_all();
        match session.finished() {
            Some(Err(gap)) => {
                assert_eq!((gap.status(), gap.code()), (412, "PRECONDITION_FAILED"))
            }
            other => panic!("{protocol:?}: expected an explicit gap, got {other:?}"),
        }
        assert_eq!(publisher.subscriber_count(TOPIC), 0);
    }
}

#[test]
fn each_event_must_carry_the_id_its_publish_returned() {
    let publisher = MemoryPublisher::builder().retain_last(8).build();
    let mut session = Session::new(app(&publisher), Protocol::Orpc, "live", None);
    session.connect();
    let published: Vec<(EventId, u64)> = (0..3u64)
        .map(|n| (publisher.publish_now(TOPIC, n).into(), n))
        .collect();
    session.pump_all();
    assert!(check_resume(&published, 0, session.seen(), session.finished()).is_ok());
    // The same values under other ids, as a handler that renumbered them would send, fail.
    let renumbered: Vec<(EventId, u64)> = published
        .iter()
        .map(|(_, n)| (EventId::from(n + 100), *n))
        .collect();
    assert!(check_resume(&renumbered, 0, session.seen(), session.finished()).is_err());
}
