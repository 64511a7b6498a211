//! The harness's resume property over loopback HTTP on `RedisPublisher<u64>` and a real
//! redis-server (one per test), on tokio, smol and monoio: for any schedule of publishes, reads,
//! client disconnects (between events and mid-event), server-side aborts and reconnect delays,
//! the consumer gets every event after its start point once, in order, each with the stream id
//! its publish returned, or ends at an explicit gap (412) where the stream's retention was
//! exceeded; and every handler and subscription is gone after it.
//!
//! Each case gets a fresh publisher with a key prefix of its own, so cases share no stream.
//! Retention is the property's (1 to 11 events), with Redis's stream nodes made small so that
//! `MAXLEN ~` trims near it: some cases outrun it and must end at a gap, others resume across a
//! disconnect from what the stream kept. Both must happen, or the run proved nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use outer_harness::conformance::properties::{
    resume_over_loopback_with, PublisherUnderTest, ResumeTally,
};
use outer_harness::conformance::Adapter;
use outer_harness::loopback_cases;
use outer_monoio::testing::IoUring as Monoio;
use outer_redis::testing::RedisServer;
use outer_redis::RedisPublisher;
use outer_smol::testing::Smol;
use outer_tokio::testing::Tokio;

mod support;

/// Cases per runtime unless `OUTER_LOOPBACK_CASES` says otherwise. About one case in seven
/// meets a gap and one in five resumes in full (measured over 500 cases on each runtime), so at
/// 150 a run without both is a one-in-a-billion chance; far fewer cases can fail the
/// non-vacuity check by chance. A case takes about 25 ms.
const CASES: u32 = 150;

/// Runs the property on adapter `A`, with publishers whose readers run on `runtime`, against
/// `redis`; fails unless some cases ended at a gap and some resumed in full.
fn resume_property<A: Adapter>(redis: &RedisServer, runtime: support::Runtime) -> ResumeTally {
    // A stream is a list of nodes that `MAXLEN ~` trims whole; at the default 100 entries a
    // node, no case publishes enough for a trim, so no case could meet a gap.
    redis
        .query::<()>(
            redis::cmd("CONFIG")
                .arg("SET")
                .arg("stream-node-max-entries")
                .arg(2),
        )
        .unwrap();
    let url = redis.url();
    let case = AtomicUsize::new(0);
    let tally = resume_over_loopback_with::<A, _>(loopback_cases(CASES), |retain| {
        let prefix = format!("resume-{}:", case.fetch_add(1, Ordering::Relaxed));
        let publisher = RedisPublisher::<u64>::builder(url.as_str())
            .key_prefix(prefix)
            .retain_last(retain)
            .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200))
            .build(runtime.clone())
            .unwrap();
        PublisherUnderTest::new(publisher, RedisPublisher::subscriber_count)
    });
    // Not vacuous: retention was outrun, and resumed across, each in some case.
    assert!(
        tally.gaps > 0,
        "no case met a gap (too few cases?): {tally:?}"
    );
    assert!(
        tally.caught_up > 0,
        "no case resumed in full (too few cases?): {tally:?}"
    );
    tally
}

#[test]
fn resume_over_loopback_on_redis_is_exact_or_an_explicit_gap_on_tokio() {
    let redis = RedisServer::start().expect("start redis-server");
    // The publishers' readers run here; each case's server runs on a runtime of its own.
    let (_rt, runtime) = support::tokio_runtime(1);
    let tally = resume_property::<Tokio>(&redis, runtime);
    eprintln!("tokio: {tally:?}");
}

#[test]
fn resume_over_loopback_on_redis_is_exact_or_an_explicit_gap_on_smol() {
    let redis = RedisServer::start().expect("start redis-server");
    let tally = resume_property::<Smol>(&redis, support::smol_runtime());
    eprintln!("smol: {tally:?}");
}

#[test]
fn resume_over_loopback_on_redis_is_exact_or_an_explicit_gap_on_monoio() {
    let redis = RedisServer::start().expect("start redis-server");
    // Each case's server runs on a monoio thread of its own, and so do the handlers that
    // subscribe; the publishers' readers run on smol's executor, which any thread can reach
    // (monoio's spawn works only on a monoio thread, and the test thread publishes too).
    let tally = resume_property::<Monoio>(&redis, support::smol_runtime());
    eprintln!("monoio: {tally:?}");
}
