//! What the publisher needs from the application's async runtime: a way to start its
//! background readers, and a timer for reconnect backoff. Not an executor of its own.
//!
//! Why a seam and not a runtime feature: the publisher runs one background task per topic (the
//! shared blocking read) and must sleep between reconnects, and both are the runtime's job. The
//! redis crate is built with both its `tokio-comp` and `smol-comp` features; at each connect
//! it looks for a current tokio runtime and uses tokio's sockets there, and async-io's
//! everywhere else (async-io runs its own reactor thread, so those sockets work under any
//! executor). So connections opened from a task spawned on tokio use tokio, those opened from
//! smol use async-io, and one build of this crate serves both — the tests prove it on each.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use outer_core::rt::Timer;

/// A background task the publisher hands to [`Spawn`].
pub type Task = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Starts a task in the background and lets it run to completion (or until the runtime stops).
///
/// Any `Fn(Task)` is a spawner:
///
/// ```
/// use outer_redis::runtime::{Spawn, Task};
/// // tokio:
/// let on_tokio = |task: Task| {
///     tokio::spawn(task);
/// };
/// // smol:
/// let on_smol = |task: Task| smol::spawn(task).detach();
/// # fn is_spawn(_: impl Spawn) {}
/// # is_spawn(on_tokio);
/// # is_spawn(on_smol);
/// ```
pub trait Spawn: Send + Sync + 'static {
    /// Runs `task` in the background.
    fn spawn(&self, task: Task);
}

impl<F: Fn(Task) + Send + Sync + 'static> Spawn for F {
    fn spawn(&self, task: Task) {
        self(task)
    }
}

/// The application's runtime as the publisher sees it: a spawner and a timer.
///
/// ```
/// use outer_redis::Runtime;
///
/// let tokio = Runtime::new(|task| { tokio::spawn(task); }, outer_tokio::TokioTimer);
/// let smol = Runtime::new(|task| smol::spawn(task).detach(), outer_smol::SmolTimer);
/// ```
#[derive(Clone)]
pub struct Runtime {
    pub(crate) spawn: Arc<dyn Spawn>,
    pub(crate) timer: Arc<dyn Timer>,
}

impl Runtime {
    /// A runtime from a spawner and a timer.
    pub fn new(spawn: impl Spawn, timer: impl Timer) -> Self {
        Self {
            spawn: Arc::new(spawn),
            timer: Arc::new(timer),
        }
    }

    /// The same, from a timer already shared.
    pub fn with_shared_timer(spawn: impl Spawn, timer: Arc<dyn Timer>) -> Self {
        Self {
            spawn: Arc::new(spawn),
            timer,
        }
    }
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("timer", &self.timer)
            .finish_non_exhaustive()
    }
}
