//! The properties of [`crate::properties`] over real loopback HTTP on an adapter: the same
//! routers and checks as the in-memory runs, with real sockets, the adapter's own timer and
//! scheduling, disconnects from the client's side (between events and in the middle of one)
//! and from the server's (every stream aborted at once), and real reconnect delays. Each case
//! starts a server, so these run fewer cases ([`loopback_cases`]; `OUTER_LOOPBACK_CASES` runs
//! more), in both protocols.
//!
//! The resume property runs on the in-memory publisher here
//! ([`resume_over_loopback_misses_nothing`]) and on any other publisher of `u64` through
//! [`resume_over_loopback_with`], which `outer-redis` runs on a real redis-server.
//!
//! Cleanup bound: after a client goes away, its handler's Drop guard has run, its publisher
//! subscription is gone and the server counts no open stream within [`CLEANUP_BOUND`]. The
//! wait is a bound to fail by, not a measurement: the server notices a closed socket at once
//! (see BENCHMARKS.md for what was measured).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cell::Cell;
use std::time::{Duration, Instant};

use outer_core::publisher::{MemoryPublisher, Publisher};
use outer_core::EventId;
use outer_http::{OuterService, ServerConfig};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::json;

use super::{quiet_config, Adapter, RunningServer};
use crate::loopback::{LoopbackSession, Transport};
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

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
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
fn serve_feed<R: Adapter, P: Publisher<u64> + Clone + 'static>(
    publisher: &P,
    live: &Live,
    setup: Duration,
    pace: Duration,
) -> (R::Server, OuterService<()>) {
    let router = feed(publisher, live, Some(R::timer()), setup, pace);
    let service = OuterService::new(router, quiet_config(), R::timer());
    (R::start(service.clone()), service)
}

/// A publisher as the loopback resume property ([`resume_over_loopback_with`]) drives it: the
/// publisher, and how to count its subscriptions to a topic on this instance. The [`Publisher`]
/// trait has no such count; the property needs it to know when a consumer that starts live has
/// subscribed (only what is published after that is owed to it) and that every subscription is
/// gone once the consumer is.
///
/// The property publishes from its own blocking thread (`futures::executor::block_on` on
/// [`Publisher::publish`]), so the publisher's `publish` must make progress outside any runtime
/// (the memory publisher's and the Redis publisher's do); its subscriptions run in the
/// adapter's handlers.
///
/// ```
/// use outer_core::publisher::MemoryPublisher;
/// use outer_harness::conformance::properties::PublisherUnderTest;
///
/// let memory = MemoryPublisher::<u64>::builder().retain_last(8).build();
/// let under_test = PublisherUnderTest::new(memory, MemoryPublisher::subscriber_count);
/// assert_eq!(under_test.subscriber_count("t"), 0);
/// ```
pub struct PublisherUnderTest<P> {
    publisher: P,
    subscriber_count: CountSubscribers<P>,
}

/// Counts a publisher's live subscriptions to a topic.
type CountSubscribers<P> = Box<dyn Fn(&P, &str) -> usize>;

impl<P> PublisherUnderTest<P> {
    /// `publisher`, whose live subscriptions to a topic `subscriber_count` counts (usually the
    /// publisher's own method: `MemoryPublisher::subscriber_count`,
    /// `RedisPublisher::subscriber_count`).
    pub fn new(publisher: P, subscriber_count: impl Fn(&P, &str) -> usize + 'static) -> Self {
        Self {
            publisher,
            subscriber_count: Box::new(subscriber_count),
        }
    }

    /// The publisher.
    pub fn publisher(&self) -> &P {
        &self.publisher
    }

    /// Its live subscriptions to `topic`.
    pub fn subscriber_count(&self, topic: &str) -> usize {
        (self.subscriber_count)(&self.publisher, topic)
    }
}

impl PublisherUnderTest<MemoryPublisher<u64>> {
    /// A fresh in-memory publisher keeping the last `retain` events of each topic: what
    /// [`resume_over_loopback_misses_nothing`] runs on.
    pub fn memory(retain: usize) -> Self {
        Self::new(
            MemoryPublisher::builder().retain_last(retain).build(),
            MemoryPublisher::subscriber_count,
        )
    }
}

impl<P: std::fmt::Debug> std::fmt::Debug for PublisherUnderTest<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublisherUnderTest")
            .field("publisher", &self.publisher)
            .finish_non_exhaustive()
    }
}

/// What a run of [`resume_over_loopback_with`] went through, so a caller can show the run was
/// not vacuous: that retention was exceeded in some cases and resumed across in others.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResumeTally {
    /// Cases run, all passed.
    pub cases: usize,
    /// Cases that ended at an explicit gap (412): the consumer was further behind than the
    /// publisher retained.
    pub gaps: usize,
    /// Cases without a gap in which the consumer reconnected with its last event id at least
    /// once while owed events it had not received, and then got every one of them: resumes the
    /// publisher served from what it retained.
    pub caught_up: usize,
}

/// A consumer over loopback, with the model of where it started: the last connection made
/// without a last event id starts live, so the test waits for its subscription before
/// publishing more.
struct Consumer<'a, P> {
    session: LoopbackSession,
    publisher: &'a PublisherUnderTest<P>,
    start: usize,
    /// Reconnects with a last event id while events were owed.
    resumes: usize,
}

impl<P> Consumer<'_, P> {
    fn connect(&mut self, published: usize) -> Result<(), TestCaseError> {
        let fresh = self.session.last_event_id().is_none();
        if fresh {
            // The last connection's handler must be gone first, or its subscription would
            // pass for the new one's.
            let publisher = self.publisher;
            within_bound("the last handler's subscription to go", || {
                publisher.subscriber_count(TOPIC) == 0
            })?;
        } else if self.session.finished().is_none() && self.owed(published) > 0 {
            self.resumes += 1;
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

/// Publishes `n` on [`TOPIC`] from the test's thread and returns the id it got, as the SSE id
/// it becomes.
fn publish<P: Publisher<u64>>(publisher: &P, n: u64) -> Result<EventId, TestCaseError> {
    futures::executor::block_on(publisher.publish(TOPIC, n))
        .map(Into::into)
        .map_err(|err| TestCaseError::fail(format!("publishing {n} failed: {err}")))
}

/// Resume over loopback: any schedule of publishes, reads, client disconnects (between events
/// and mid-event), server-side aborts and reconnect delays, with bounded retention; the
/// consumer gets every event after its start point once, in order, or an explicit gap. Runs
/// on the in-memory publisher ([`PublisherUnderTest::memory`]); see
/// [`resume_over_loopback_with`] for another publisher.
pub fn resume_over_loopback_misses_nothing<R: Adapter>() {
    resume_over_loopback_with::<R, _>(loopback_cases(27), PublisherUnderTest::memory);
}

/// The resume property of [`resume_over_loopback_misses_nothing`] over loopback HTTP on `R`,
/// on the publisher `publisher` makes for each case, for `cases` cases (pass
/// [`loopback_cases`]`(default)` so `OUTER_LOOPBACK_CASES` can run more); panics with the
/// shrunk schedule on a failure.
///
/// `publisher(retain)` is called once per case and must return a publisher that shares nothing
/// with the other cases' (a fresh one, or one with a fresh key prefix: the cases check exact
/// ids on [`TOPIC`]) and that keeps about the last `retain` events of a topic (1 to 11, drawn
/// by the property): retention small enough that some schedules outrun it and must end at an
/// explicit gap. Its ids may take any shape: each event is checked against the id its publish
/// returned ([`check_resume`]).
///
/// Returns what the cases went through ([`ResumeTally`]), for the caller to assert that gaps
/// and full resumes both happened.
///
/// ```
/// use outer_harness::conformance::properties::{resume_over_loopback_with, PublisherUnderTest};
/// use outer_harness::conformance::Adapter;
/// use outer_harness::loopback_cases;
///
/// // In an adapter's tests, called with the adapter as `R`:
/// fn resume_is_exact_and_gaps_are_explicit<R: Adapter>() {
///     // A fresh publisher per case; for Redis, one with a fresh key prefix. About one case
///     // in ten meets a gap (one in seven on Redis), so 150 cases all but never miss one.
///     let fresh = PublisherUnderTest::memory;
///     let tally = resume_over_loopback_with::<R, _>(loopback_cases(150), fresh);
///     assert!(tally.gaps > 0 && tally.caught_up > 0, "vacuous: {tally:?}");
/// }
/// ```
pub fn resume_over_loopback_with<R, P>(
    cases: u32,
    publisher: impl Fn(usize) -> PublisherUnderTest<P>,
) -> ResumeTally
where
    R: Adapter,
    P: Publisher<u64> + Clone + 'static,
{
    let strategy = (
        proptest::sample::select(&Protocol::ALL[..]),
        proptest::sample::select(&Transport::ALL[..]),
        1usize..12,
        proptest::collection::vec(step(), 0..24),
    );
    // Counted only for cases that pass: a failing run panics with its shrunk case instead.
    let tally = Cell::new(ResumeTally::default());
    runner(cases)
        .run(&strategy, |(protocol, transport, retain, steps)| {
            let under_test = publisher(retain);
            let live = Live::default();
            let (server, service) = serve_feed::<R, P>(
                under_test.publisher(),
                &live,
                Duration::ZERO,
                Duration::ZERO,
            );
            let mut consumer = Consumer {
                session: LoopbackSession::new(server.addr(), protocol, "live", None)
                    .over(transport),
                publisher: &under_test,
                start: 0,
                resumes: 0,
            };
            let mut published: Vec<(EventId, u64)> = Vec::new();
            consumer.connect(0)?;
            for step in &steps {
                if consumer.session.finished().is_some() {
                    break;
                }
                match *step {
                    Step::Publish(n) => {
                        for _ in 0..n {
                            let next = published.len() as u64;
                            let id = publish(under_test.publisher(), next)?;
                            published.push((id, next));
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
            let gap = consumer.session.finished().is_some();
            let caught_up = !gap && consumer.resumes > 0;
            consumer.session.disconnect();
            within_bound("cleanup", || {
                live.count() == 0
                    && under_test.subscriber_count(TOPIC) == 0
                    && server.active_streams() == 0
            })?;
            let mut counts = tally.get();
            counts.cases += 1;
            counts.gaps += usize::from(gap);
            counts.caught_up += usize::from(caught_up);
            tally.set(counts);
            Ok(())
        })
        .unwrap_or_else(|failure| panic!("{failure}"));
    tally.get()
}

/// Cancellation over loopback: a client that goes away after any schedule (before the handler
/// has subscribed, before the first event, mid-stream, mid-event, between a server cut and its
/// reconnect) leaves no handler, no subscription and no open stream, within [`CLEANUP_BOUND`].
pub fn cancellation_over_loopback_leaves_nothing<R: Adapter>() {
    let strategy = (
        proptest::sample::select(&Protocol::ALL[..]),
        proptest::sample::select(&Transport::ALL[..]),
        0u64..20,
        0u64..5,
        proptest::collection::vec(step(), 0..12),
    );
    runner(loopback_cases(27))
        .run(&strategy, |(protocol, transport, setup, pace, steps)| {
            let publisher = MemoryPublisher::builder().retain_last(64).build();
            let live = Live::default();
            let (server, service) = serve_feed::<R, _>(
                &publisher,
                &live,
                Duration::from_millis(setup),
                Duration::from_millis(pace),
            );
            let mut session =
                LoopbackSession::new(server.addr(), protocol, "live", None).over(transport);
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
        proptest::sample::select(&Transport::ALL[..]),
        failure_strategy(),
        1u64..=COUNT + 1,
        proptest::option::weighted(0.2, bad_input_strategy()),
    );
    runner(loopback_cases(36))
        .run(
            &strategy,
            |(protocol, transport, failure, fail_at, bad_input)| {
                let router = counter(failure.clone());
                let service = OuterService::new(router, ServerConfig::default(), R::timer());
                let server = R::start(service);
                let input = bad_input
                    .clone()
                    .unwrap_or_else(|| json!({ "fail_at": fail_at }));
                let mut session =
                    LoopbackSession::new(server.addr(), protocol, "count", Some(input))
                        .over(transport);
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
            },
        )
        .unwrap_or_else(|failure| panic!("{failure}"));
}
