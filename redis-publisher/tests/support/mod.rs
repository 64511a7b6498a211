//! What the Redis tests and benches share: running a test on tokio, smol or monoio with a
//! publisher runtime for it, and the waits that turn a hang into a failure.
// Each test binary uses a part of it.
#![allow(dead_code)]

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use outer_core::rt::Timer;
use outer_redis::{Error, RedisPublisher, StreamId, Subscription};

/// The publishers' runtime in these tests: the adapter's, shared.
pub type Runtime = Arc<dyn outer_core::rt::Runtime>;

/// How long any one wait may take before the test fails as hung.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// A runtime the tests run on.
pub trait Rt {
    /// Runs `test` to completion with a publisher runtime (spawner and timer) on this runtime.
    fn run<F: Future<Output = ()>>(test: impl FnOnce(Runtime) -> F);
}

pub struct OnTokio;
pub struct OnSmol;
pub struct OnMonoio;

impl Rt for OnTokio {
    fn run<F: Future<Output = ()>>(test: impl FnOnce(Runtime) -> F) {
        let (rt, runtime) = tokio_runtime(2);
        rt.block_on(test(runtime));
    }
}

impl Rt for OnSmol {
    fn run<F: Future<Output = ()>>(test: impl FnOnce(Runtime) -> F) {
        smol::block_on(test(smol_runtime()));
    }
}

/// The test on a monoio thread (io_uring where the machine has it), with monoio's runtime for
/// the publisher: its readers are spawned on the thread that first subscribes, this one.
impl Rt for OnMonoio {
    fn run<F: Future<Output = ()>>(test: impl FnOnce(Runtime) -> F) {
        let driver = outer_monoio::testing::IoUring::driver();
        driver
            .block_on(test(Arc::new(outer_monoio::MonoioRuntime)))
            .unwrap();
    }
}

/// A multi-threaded tokio runtime with `workers` threads, and a publisher runtime that spawns
/// on it.
pub fn tokio_runtime(workers: usize) -> (tokio::runtime::Runtime, Runtime) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap();
    let runtime: Runtime = Arc::new(outer_tokio::TokioHandle(rt.handle().clone()));
    (rt, runtime)
}

/// A publisher runtime on smol's global executor.
pub fn smol_runtime() -> Runtime {
    Arc::new(outer_smol::SmolRuntime)
}

/// `future`, or a failure naming `what` after [`DEADLINE`].
pub async fn within<F: Future>(what: &str, future: F) -> F::Output {
    let sleep = outer_smol::SmolRuntime.sleep(DEADLINE);
    match futures::future::select(std::pin::pin!(future), sleep).await {
        futures::future::Either::Left((out, _)) => out,
        futures::future::Either::Right(_) => panic!("still waiting for {what}"),
    }
}

/// Polls `done` until it holds, failing after [`DEADLINE`].
pub async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < DEADLINE, "still waiting for {what}");
        outer_smol::SmolRuntime
            .sleep(Duration::from_millis(10))
            .await;
    }
}

/// The next `n` events, failing on anything else.
pub async fn take(sub: &mut Subscription<u32>, n: usize) -> Vec<(StreamId, u32)> {
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        match within("an event", sub.next()).await {
            Some(Ok(event)) => got.push((*event.id(), *event)),
            other => panic!("expected event {} of {n}, got {other:?}", got.len() + 1),
        }
    }
    got
}

/// Publishes, retrying while Redis (or the topic's shard) is away, as a client retries a 503.
pub async fn publish_retrying(
    publisher: &RedisPublisher<u32>,
    topic: &str,
    value: u32,
) -> StreamId {
    let start = Instant::now();
    loop {
        match publisher.publish(topic, value).await {
            Ok(id) => return id,
            Err(Error::Unavailable(why)) => {
                assert!(start.elapsed() < DEADLINE, "Redis stayed away: {why}");
                outer_smol::SmolRuntime
                    .sleep(Duration::from_millis(20))
                    .await;
            }
            Err(other) => panic!("{other}"),
        }
    }
}

/// Runs each test on every runtime: `mod on_tokio`, `mod on_smol` and `mod on_monoio` with a
/// `#[test]` each.
#[macro_export]
macro_rules! on_every_runtime {
    ($($test:ident),* $(,)?) => {
        mod on_tokio {
            $(#[test] fn $test() { super::$test::<super::OnTokio>() })*
        }
        mod on_smol {
            $(#[test] fn $test() { super::$test::<super::OnSmol>() })*
        }
        mod on_monoio {
            $(#[test] fn $test() { super::$test::<super::OnMonoio>() })*
        }
    };
}
