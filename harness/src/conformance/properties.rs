//! The properties of [`crate::properties`] over real loopback HTTP on an adapter: the same
//! routers and checks as the in-memory runs, with real sockets, the adapter's own timer and
//! scheduling, disconnects from the client's side (between events and in the middle of one)
//! and from the server's (every stream aborted at once), and real reconnect delays. Each case
//! starts a server, so these run fewer cases ([`loopback_cases`]; `OUTER_LOOPBACK_CASES` runs
//! more), in both protocols.
//!
//! Cleanup bound: after a client goes away, its handler's Drop guard has run, its publisher
//! subscription is gone and the server counts no open stream within [`CLEANUP_BOUND`]. The
//! wait is a bound to fail by, not a measurement: the server notices a closed socket at once
//! (see BENCHMARKS.md for what was measured).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use outer_core::publisher::MemoryPublisher;
use outer_http::{OuterService, ServerConfig};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::json;

use super::{quiet_config, Adapter, RunningServer};
use crate::loopback::LoopbackSession;
use crate::properties::{
    bad_input_strategy, check_bad_input, check_errors, check_resume, counter, failure_strategy,
    feed, Live, COUNT, TOPIC,
};
use crate::{loopback_cases, Protocol};

/// How long cleanup may take after a client goes away before a property fails.
pub const CLEANUP_BOUND: Duration = Duration::from_secs(2);

/// What happens next in a loopback resume or cancellation schedule.
#[derive(Clone, Debug)]
enum Step {
    /// The publisher publishes this many events.
    Publish(u8),
    /// The client reads up to this many of the events it is owed.
    Read(u8),
    /// The client disconnects between events.
    Disconnect,
    /// The client reads one piece and keeps this many of its bytes, then disconnects.
    DisconnectMidEvent(u8),
    /// The server aborts every open stream.
    ServerCut,
    /// The client reconnects (if it is not connected) after this many milliseconds.
    Reconnect(u8),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (1u8..4).prop_map(Step::Publish),
        3 => (1u8..5).prop_map(Step::Read),
        1 => Just(Step::Disconnect),
        1 => (0u8..60).prop_map(Step::DisconnectMidEvent),
        1 => Just(Step::ServerCut),
        2 => (0u8..20).prop_map(Step::Reconnect),
    ]
}

fn runner(default_cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases: loopback_cases(default_cases),
        // Each case holds sockets; shrinking a failure still runs many of them.
        max_shrink_iters: 256,
        failure_persistence: None,
        ..Config::default()
    })
}

/// Polls `done` until it holds, failing the case after [`CLEANUP_BOUND`].
fn within_bound(what: &str, mut done: impl FnMut() -> bool) -> Result<(), TestCaseError> {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > CLEANUP_BOUND {
            return Err(TestCaseError::fail(format!(
                "{what} not within {CLEANUP_BOUND:?}"
            )));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

/// A server on `R` for the [`feed`] router, and the service to abort its streams with.
fn serve_feed<R: Adapter>(
    publisher: &MemoryPublisher<u64>,
    live: &Live,
    setup: Duration,
    pace: Duration,
) -> (R::Server, OuterService<()>) {
    let router = feed(publisher, live, Some(R::timer()), setup, pace);
    let service = OuterService::new(router, quiet_config(), R::timer());
    (R::start(service.clone()), service)
}

/// A consumer over loopback, with the model of where it started: the last connection made
/// without a last event id starts live, so the test waits for its subscription before
/// publishing more.
struct Consumer<'a> {
    session: LoopbackSession,
    publisher: &'a MemoryPublisher<u64>,
    start: usize,
}

impl Consumer<'_> {
    fn connect(&mut self, published: usize) -> Result<(), TestCaseError> {
        let fresh = self.session.last_event_id().is_none();
        if fresh {
            // The last connection's handler must be gone first, or its subscription would
            // pass for the new one's.
            let publisher = self.publisher;
            within_bound("the last handler's subscription to go", || {
                publisher.subscriber_count(TOPIC) == 0
            })?;
        }
        self.session.connect();
        if fresh && self.session.is_connected() {
            self.start = published;
            let publisher = self.publisher;
            within_bound("the handler's subscription", || {
                publisher.subscriber_count(TOPIC) >= 1
            })?;
        }
        Ok(())
    }

    fn owed(&self, published: usize) -> usize {
        published
            .saturating_sub(self.start)
            .saturating_sub(self.session.events().count())
    }
}

/// Resume over loopback: any schedule of publishes, reads, client disconnects (between events
/// and mid-event), server-side aborts and reconnect delays, with bounded retention; the
/// consumer gets every event after its start point once, in order, or an explicit gap.
pub fn resume_over_loopback_misses_nothing<R: Adapter>() {
    let strategy = (
        proptest::sample::select(&Protocol::ALL[..]),
        1usize..12,
        proptest::collection::vec(step(), 0..24),
    );
    runner(12)
        .run(&strategy, |(protocol, retain, steps)| {
            let publisher = MemoryPublisher::builder().retain_last(retain).build();
            let live = Live::default();
            let (server, service) =
                serve_feed::<R>(&publisher, &live, Duration::ZERO, Duration::ZERO);
            let mut consumer = Consumer {
                session: LoopbackSession::new(server.addr(), protocol, "live", None),
                publisher: &publisher,
                start: 0,
            };
            let mut published: Vec<u64> = Vec::new();
            consumer.connect(0)?;
            for step in &steps {
                if consumer.session.finished().is_some() {
                    break;
                }
                match *step {
                    Step::Publish(n) => {
                        for _ in 0..n {
                            let next = published.len() as u64;
                            publisher.publish_now(TOPIC, next);
                            published.push(next);
                        }
                    }
                    Step::Read(n) => {
                        if consumer.session.is_connected() {
                            let owed = consumer.owed(published.len()).min(usize::from(n));
                            consumer.session.read_events(owed);
                        }
                    }
                    Step::Disconnect => consumer.session.disconnect(),
                    Step::DisconnectMidEvent(keep) => {
                        // Only where an event is on its way, so the read does not wait.
                        if consumer.owed(published.len()) > 0 {
                            consumer.session.disconnect_mid_read(usize::from(keep));
                        }
                    }
                    Step::ServerCut => {
                        service.abort_streams();
                        consumer.session.read_to_end();
                    }
                    Step::Reconnect(ms) => {
                        if !consumer.session.is_connected() {
                            std::thread::sleep(Duration::from_millis(u64::from(ms)));
                            consumer.connect(published.len())?;
                        }
                    }
                }
            }
            // In the end the client catches up: connect if it can, and take what it is owed.
            if consumer.session.finished().is_none() {
                if !consumer.session.is_connected() {
                    consumer.connect(published.len())?;
                }
                let owed = consumer.owed(published.len());
                consumer.session.read_events(owed);
            }
            check_resume(
                &published,
                consumer.start,
                consumer.session.seen(),
                consumer.session.finished(),
            )?;
            consumer.session.disconnect();
            within_bound("cleanup", || {
                live.count() == 0
                    && publisher.subscriber_count(TOPIC) == 0
                    && server.active_streams() == 0
            })?;
            Ok(())
        })
        .unwrap_or_else(|failure| panic!("{failure}"));
}

/// Cancellation over loopback: a client that goes away after any schedule (before the handler
/// has subscribed, before the first event, mid-stream, mid-event, between a server cut and its
/// reconnect) leaves no handler, no subscription and no open stream, within [`CLEANUP_BOUND`].
pub fn cancellation_over_loopback_leaves_nothing<R: Adapter>() {
    let strategy = (
        proptest::sample::select(&Protocol::ALL[..]),
        0u64..20,
        0u64..5,
        proptest::collection::vec(step(), 0..12),
    );
    runner(12)
        .run(&strategy, |(protocol, setup, pace, steps)| {
            let publisher = MemoryPublisher::builder().retain_last(64).build();
            let live = Live::default();
            let (server, service) = serve_feed::<R>(
                &publisher,
                &live,
                Duration::from_millis(setup),
                Duration::from_millis(pace),
            );
            let mut session = LoopbackSession::new(server.addr(), protocol, "live", None);
            session.connect();
            let mut published = 0usize;
            for step in &steps {
                match *step {
                    Step::Publish(n) => {
                        for _ in 0..n {
                            publisher.publish_now(TOPIC, published as u64);
                            published += 1;
                        }
                    }
                    // Reads wait only for what the handler has certainly yielded: with a setup
                    // wait, none may be owed yet, so reading is left to the timing.
                    Step::Read(_) => {}
                    Step::Disconnect | Step::DisconnectMidEvent(_) => session.disconnect(),
                    Step::ServerCut => {
                        service.abort_streams();
                        session.read_to_end();
                    }
                    Step::Reconnect(ms) => {
                        if !session.is_connected() {
                            std::thread::sleep(Duration::from_millis(u64::from(ms)));
                            session.connect();
                        }
                    }
                }
                prop_assert!(live.count() <= 2, "handlers pile up: {}", live.count());
            }
            drop(session);
            within_bound(
                "every handler's cleanup, subscription and stream to go",
                || {
                    live.count() == 0
                        && publisher.subscriber_count(TOPIC) == 0
                        && server.active_streams() == 0
                },
            )?;
            Ok(())
        })
        .unwrap_or_else(|failure| panic!("{failure}"));
}

/// Errors over loopback: a random error at a random point; a 4xx ends the stream with exactly
/// that error, a 5xx resumes; a bad input is refused naming its field; in both protocols.
pub fn errors_over_loopback_propagate<R: Adapter>() {
    let strategy = (
        proptest::sample::select(&Protocol::ALL[..]),
        failure_strategy(),
        1u64..=COUNT + 1,
        proptest::option::weighted(0.2, bad_input_strategy()),
    );
    runner(16)
        .run(&strategy, |(protocol, failure, fail_at, bad_input)| {
            let router = counter(failure.clone());
            let service = OuterService::new(router, ServerConfig::default(), R::timer());
            let server = R::start(service);
            let input = bad_input
                .clone()
                .unwrap_or_else(|| json!({ "fail_at": fail_at }));
            let mut session = LoopbackSession::new(server.addr(), protocol, "count", Some(input));
            let mut rounds = 0;
            while session.finished().is_none() {
                rounds += 1;
                prop_assert!(rounds < 10, "no end after {} connections", rounds);
                session.connect();
                session.read_to_end();
            }
            match bad_input {
                Some(_) => check_bad_input(
                    protocol,
                    session.seen(),
                    session.finished(),
                    session.connections(),
                )?,
                None => check_errors(
                    protocol,
                    &failure,
                    fail_at,
                    session.seen(),
                    session.finished(),
                    session.connections(),
                )?,
            }
            session.disconnect();
            within_bound("the streams to close", || server.active_streams() == 0)?;
            Ok(())
        })
        .unwrap_or_else(|failure| panic!("{failure}"));
}
