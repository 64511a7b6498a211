//! Wire protocols as pure functions, and the protocol-neutral pieces they share.
//!
//! A protocol turns an HTTP request's parts into a call, and a call's answer into an HTTP
//! response: a status, headers, and either a whole body or an event stream. The adapters move
//! these over sockets; nothing here does I/O. [`SseBody`] drives an event stream: it writes the
//! protocol's opening bytes, each frame as it comes, keep-alives after silence, and ends at a
//! deadline or on shutdown, dropping the handler so its cleanup runs.
//!
//! A publisher's event reaches its streams as a [`Frame::Shared`]: each protocol's framing
//! encodes it once, into bytes every stream of that protocol shares
//! ([`SharedEvent::encoded`](crate::procedure::SharedEvent::encoded)), and a [`Chunk`] that
//! holds just that frame goes out as those bytes. Per subscriber, an event then costs a
//! reference count, not a copy of its JSON and a frame written again.

use alloc::borrow::Cow;
use alloc::boxed::Box;
use alloc::vec::Vec;
use bytes::Bytes;
use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};
use core::time::Duration;
use futures_core::Stream;

use crate::error::RpcError;
use crate::procedure::{Frame, FrameStream};
use crate::rt::{Sleep, Timer};
use crate::sync::{Arc, AtomicBool, Mutex, Ordering, Wake};

mod chunk;
#[cfg(feature = "orpc")]
pub mod orpc;
#[cfg(feature = "orpc")]
pub mod orpc_ws;
#[cfg(feature = "trpc")]
pub mod trpc;
#[cfg(feature = "trpc")]
pub mod trpc_ws;

pub use chunk::Chunk;

/// An HTTP response, before an adapter writes it.
#[derive(Debug)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Header names (lower case) and values.
    pub headers: Vec<(&'static str, Cow<'static, str>)>,
    /// The body.
    pub body: Body,
}

impl HttpResponse {
    /// A response with a whole JSON body.
    pub fn json(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: alloc::vec![("content-type", Cow::Borrowed("application/json"))],
            body: Body::Full(body.into()),
        }
    }

    /// The value of header `name`, if set.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }
}

/// A response body: whole, or an event stream written as it happens.
pub enum Body {
    /// All of it at once.
    Full(Vec<u8>),
    /// Server-Sent Events, chunk by chunk.
    Events(SseBody),
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Body::Full(bytes) => f.debug_tuple("Full").field(&bytes.len()).finish(),
            Body::Events(_) => f.write_str("Events"),
        }
    }
}

/// One call as a protocol answered it: which procedure, whether it resumed, and how it was
/// answered. The protocols' `handle_observed` report each call of a request (a tRPC batch has
/// several) so that an adapter can count them without decoding anything twice; a stream's own
/// end is its body's ([`SseBody::end`]).
///
/// ```
/// use outer_core::protocol::{Answer, Answered};
/// let answered = Answered { procedure: Some("post.live"), resumed: true, answer: Answer::Stream };
/// assert!(matches!(answered.answer, Answer::Stream));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Answered<'a> {
    /// The procedure's dotted path, when the router serves one there; `None` for a path it
    /// does not serve or a request too malformed to name one (so that what a client makes up
    /// never becomes a name an adapter keeps).
    pub procedure: Option<&'a str>,
    /// Whether the call came with a last event id: a subscription resuming.
    pub resumed: bool,
    /// How it was answered.
    pub answer: Answer<'a>,
}

/// How a call was answered (see [`Answered`]).
#[derive(Clone, Copy, Debug)]
pub enum Answer<'a> {
    /// With a value.
    Value,
    /// With an event stream, now open.
    Stream,
    /// With this error, before any stream opened.
    Error(&'a RpcError),
}

/// How an event stream ended (see [`SseBody::end`]).
#[derive(Clone, Debug)]
pub enum StreamEnd {
    /// With the handler's return value.
    Returned,
    /// With the error that ended it; a publisher's gap is `PRECONDITION_FAILED` with the gap's
    /// kind in `data.gap`.
    Failed(RpcError),
    /// Cut short by the server: its deadline or its shutdown.
    Interrupted,
}

/// How a protocol writes an event stream, into the [`Chunk`] its body hands out next.
///
/// A [`Frame::Shared`] is the same for every stream of a topic: a framing whose bytes for it do
/// not depend on the stream writes them once, with
/// [`SharedEvent::encoded`](crate::procedure::SharedEvent::encoded), and pushes them with
/// [`Chunk::push_shared`]. One that does not know the event's [`Encoding`](crate::procedure::Encoding)
/// writes it from its data and id, as it would a [`Frame::Event`].
///
/// ```
/// use outer_core::procedure::Frame;
/// use outer_core::protocol::{Chunk, Framing};
///
/// /// Each event's data on a line.
/// struct Lines;
/// impl Framing for Lines {
///     fn open(&mut self, _: &mut Chunk) {}
///     fn frame(&mut self, frame: Frame, out: &mut Chunk) {
///         if let Some(data) = frame.event_data() {
///             out.push_str(data.get());
///             out.push_str("\n");
///         }
///     }
///     fn keep_alive(&mut self, out: &mut Chunk) {
///         out.push_str("\n");
///     }
/// }
/// ```
pub trait Framing: Send + 'static {
    /// Bytes sent as soon as the stream opens, so the headers reach the client at once.
    fn open(&mut self, out: &mut Chunk);
    /// One frame: an event, the return value, or the error.
    fn frame(&mut self, frame: Frame, out: &mut Chunk);
    /// A keep-alive after a silence.
    fn keep_alive(&mut self, out: &mut Chunk);
    /// The stream is being cut short (deadline or shutdown) and the client should reconnect and
    /// resume. Nothing by default: a clean end is enough where clients reconnect on their own
    /// (EventSource, tRPC). oRPC's client takes a clean end for a finished stream, so its
    /// framing writes a retryable error here.
    fn interrupted(&mut self, out: &mut Chunk) {
        let _ = out;
    }
}

/// When an event stream sends keep-alives and when it ends on its own.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamTiming {
    /// Send a keep-alive after this long without an event. `None`: never.
    pub keep_alive: Option<Duration>,
    /// End the stream after this long, in a way that makes clients reconnect and resume (see
    /// [`Framing::interrupted`]). `None`: never.
    pub max_duration: Option<Duration>,
}

/// The most an [`SseBody`] gathers into one chunk from frames that are already waiting.
const MAX_CHUNK: usize = 64 * 1024;

/// How many bytes an [`SseBody`] hands out in a row, without once answering `Pending`, before it
/// yields. A stream whose frames are always ready (a fast counter, a long catch-up read by a fast
/// client) would otherwise keep its connection's task busy for as long as it lasts: hyper writes
/// while the body and the socket are ready, and smol, unlike tokio, has no budget of its own to
/// stop it. One full chunk per turn lets every other task on the thread run in between.
const YIELD_AFTER: usize = MAX_CHUNK;

/// The room a chunk starts with, at least (a small event fits) and at most (a big batch before
/// does not make every later chunk as big).
const MIN_CHUNK: usize = 256;
const MAX_HINT: usize = 4096;

/// An event stream's body: frames in, chunks of bytes out.
///
/// Frames that are ready together go out in one chunk; a frame that arrives alone goes out at
/// once, and when it is a published event, as the very bytes every other stream of its protocol
/// sends (see [`Chunk`]). Dropping the body drops the handler (the client went away).
pub struct SseBody {
    frames: Option<FrameStream>,
    framing: Box<dyn Framing>,
    timer: Option<Arc<dyn Timer>>,
    keep_alive: Option<Duration>,
    idle: Option<Sleep>,
    /// When the last chunk went out, by the timer's clock ([`Timer::now`]).
    last_sent: Duration,
    deadline: Option<Sleep>,
    shutdown: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    opened: bool,
    /// The length of the last chunk, which the next one starts with room for: a stream's
    /// events tend to be alike, and a buffer grown from empty to a 200-byte event reallocates
    /// five times, per subscriber per event. A chunk that is one shared frame makes no room.
    size_hint: usize,
    /// Whether the frames may have moved since they last said `Pending`, and the task to wake
    /// when they do.
    frames_wake: Arc<FramesWake>,
    /// The waker the frames are polled with: `frames_wake`'s, made once.
    frames_waker: Waker,
    /// Bytes handed out since the body last answered `Pending` (see [`YIELD_AFTER`]).
    streak: usize,
    /// The runtime's yield under way ([`Timer::yield_now`]), once the streak is long enough.
    yielding: Option<Sleep>,
    /// Events written so far: a field, not a callback, so counting costs an addition.
    events_sent: u64,
    /// The last chunk filled up with frames perhaps still ready: see [`SseBody::is_behind`].
    behind: bool,
    /// How the stream ended, once it has: boxed, as it is rare and the body is kept per stream.
    end: Option<Box<StreamEnd>>,
    /// When the frames that went into the last chunk woke the body, in nanoseconds by the
    /// timer's clock, 0 for never (see [`time_wakes`](SseBody::time_wakes)).
    woken_at: u64,
}

/// The waker an [`SseBody`] polls its frames with. It notes that the frames woke it before it
/// wakes the body's task, so a poll of the body that no frame woke skips the frames: hyper polls
/// a body again after every chunk it writes, and each needless poll would walk the handler, its
/// event iterator and its subscription only to hear `Pending` again (skipping them saved about
/// 600 of 9,000 user-space instructions per delivery: `bench/callgrind.sh`).
///
/// Written here rather than taken from futures-util (`FuturesUnordered` does the same per task):
/// the core does not depend on futures-util, and this is one flag and one waker.
#[derive(Debug)]
struct FramesWake {
    woken: AtomicBool,
    task: Mutex<Option<Waker>>,
    /// With [`SseBody::time_wakes`]: the clock that stamps the wake that finds the frames
    /// asleep, and that stamp (nanoseconds by the clock, 0 for none).
    clock: Option<Arc<dyn Timer>>,
    woken_at: portable_atomic::AtomicU64,
}

impl FramesWake {
    /// Woken to begin with: the first poll must look at the frames.
    fn new(clock: Option<Arc<dyn Timer>>) -> Arc<Self> {
        Arc::new(FramesWake {
            woken: AtomicBool::new(true),
            task: Mutex::new(None),
            clock,
            woken_at: portable_atomic::AtomicU64::new(0),
        })
    }

    /// Makes `waker` the one to wake, unless the one held already wakes the same task.
    fn register(&self, waker: &Waker) {
        self.task.with(|task| {
            if !task.as_ref().is_some_and(|held| held.will_wake(waker)) {
                *task = Some(waker.clone());
            }
        });
    }

    fn wake_task(&self) {
        if let Some(clock) = &self.clock {
            // Only the first wake since the body last looked: a publish that finds the body
            // already woken adds nothing, and the stamp is the oldest event's. Two wakes racing
            // here both stamp, a few nanoseconds apart.
            if !self.woken.load(Ordering::Relaxed) {
                let now = u64::try_from(clock.now().as_nanos())
                    .unwrap_or(u64::MAX)
                    .max(1);
                self.woken_at.store(now, Ordering::Relaxed);
            }
        }
        // The flag after the stamp, the task before: the task this wakes must find both.
        self.woken.store(true, Ordering::Release);
        // Woken outside the lock: a waker may run code that wakes this one again.
        let task = self.task.with(|task| task.clone());
        if let Some(task) = task {
            task.wake();
        }
    }
}

// `alloc`'s `Wake` takes `self: Arc<Self>`; `portable-atomic-util`'s takes `this` (its `Arc`
// cannot be a receiver on stable).
#[cfg(target_has_atomic = "ptr")]
impl Wake for FramesWake {
    fn wake(self: Arc<Self>) {
        self.wake_task();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wake_task();
    }
}

#[cfg(not(target_has_atomic = "ptr"))]
impl Wake for FramesWake {
    fn wake(this: Arc<Self>) {
        this.wake_task();
    }

    fn wake_by_ref(this: &Arc<Self>) {
        this.wake_task();
    }
}

impl fmt::Debug for SseBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SseBody")
            .field("open", &self.frames.is_some())
            .field("keep_alive", &self.keep_alive)
            .finish()
    }
}

impl SseBody {
    /// A body that writes `frames` with `framing`. Timing needs a timer; without one, no
    /// keep-alives are sent and there is no deadline.
    pub fn new(
        frames: FrameStream,
        framing: impl Framing,
        timing: &StreamTiming,
        timer: Option<Arc<dyn Timer>>,
    ) -> Self {
        let deadline = match (&timer, timing.max_duration) {
            (Some(timer), Some(limit)) => Some(timer.sleep(limit)),
            _ => None,
        };
        let frames_wake = FramesWake::new(None);
        Self {
            frames: Some(frames),
            framing: Box::new(framing),
            keep_alive: timing.keep_alive.filter(|_| timer.is_some()),
            timer,
            idle: None,
            last_sent: Duration::ZERO,
            deadline,
            shutdown: None,
            opened: false,
            size_hint: 0,
            frames_waker: Waker::from(Arc::clone(&frames_wake)),
            frames_wake,
            streak: 0,
            yielding: None,
            events_sent: 0,
            behind: false,
            end: None,
            woken_at: 0,
        }
    }

    /// Stamps, by the timer's clock, each wake that finds the stream waiting for its frames,
    /// so that [`woken_at`](Self::woken_at) tells when the events of a chunk became ready: for
    /// a publisher's subscription, the publish that woke it. Costs a clock read per such wake,
    /// on the waking thread; without a timer it does nothing.
    pub fn time_wakes(mut self) -> Self {
        if self.timer.is_some() && !self.opened {
            self.frames_wake = FramesWake::new(self.timer.clone());
            self.frames_waker = Waker::from(Arc::clone(&self.frames_wake));
        }
        self
    }

    /// Whether the stream is behind its events: the last chunk it handed out filled up
    /// (64 KiB) while more frames were perhaps ready. A stream whose client reads slower than
    /// its events come stays behind; one that catches up is not. An adapter counts its lagging
    /// subscribers with it.
    pub fn is_behind(&self) -> bool {
        self.behind
    }

    /// How many events the stream has handed out so far, in the chunks returned until now.
    pub fn events_sent(&self) -> u64 {
        self.events_sent
    }

    /// How the stream ended, once it has (`None` while open, and for a stream dropped open).
    pub fn end(&self) -> Option<&StreamEnd> {
        self.end.as_deref()
    }

    /// With [`time_wakes`](Self::time_wakes): when (by the timer's clock) the wake that made the
    /// last chunk's events ready happened. `None` for a chunk whose events were ready without a
    /// wake (a catch-up read on, the first poll) or that holds none.
    pub fn woken_at(&self) -> Option<Duration> {
        (self.woken_at != 0).then(|| Duration::from_nanos(self.woken_at))
    }

    /// Ends the stream between two events when `signal` completes: for a graceful shutdown. The
    /// framing's [`Framing::interrupted`] is written instead of an end frame, so clients
    /// reconnect (elsewhere) and resume.
    pub fn end_on(mut self, signal: impl Future<Output = ()> + Send + 'static) -> Self {
        self.shutdown = Some(Box::pin(signal));
        self
    }

    fn close(&mut self) {
        // Dropping the frames drops the handler: its cleanup runs now.
        self.frames = None;
        self.idle = None;
        self.deadline = None;
        self.shutdown = None;
    }

    /// Starts the silence over: a chunk just went out. A sleep already armed stays, and
    /// [`poll_keep_alive`](Self::poll_keep_alive) makes up the difference when it fires: an
    /// event records only the time it went out, so the keep-alive sleep is armed once per
    /// interval, not once per event.
    fn reset_idle(&mut self) {
        let (Some(timer), Some(every)) = (&self.timer, self.keep_alive) else {
            self.idle = None;
            return;
        };
        self.last_sent = timer.now();
        if self.idle.is_none() {
            self.idle = Some(timer.sleep(every));
        }
    }

    /// Whether a keep-alive is due: `keep_alive` has passed since the last chunk.
    fn poll_keep_alive(&mut self, cx: &mut Context<'_>) -> bool {
        let (Some(timer), Some(every)) = (&self.timer, self.keep_alive) else {
            return false;
        };
        while let Some(idle) = self.idle.as_mut() {
            if idle.as_mut().poll(cx).is_pending() {
                return false;
            }
            // Chunks went out after this sleep was armed: sleep what is left of the silence.
            let silence = timer.now().saturating_sub(self.last_sent);
            if silence >= every {
                self.idle = None;
                return true;
            }
            self.idle = Some(timer.sleep(every - silence));
        }
        false
    }
}

impl Stream for SseBody {
    type Item = Bytes;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let this = &mut *self;
        if this.streak >= YIELD_AFTER && this.frames.is_some() {
            // Let the other tasks of this thread run; come back right after them.
            let timer = &this.timer;
            let yielding = this.yielding.get_or_insert_with(|| {
                timer
                    .as_ref()
                    .and_then(|timer| timer.yield_now())
                    .unwrap_or_else(|| Box::pin(WakeOnce(false)))
            });
            if yielding.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            this.yielding = None;
            this.streak = 0;
        }
        // The handler runs inside this poll: give its publisher subscriptions a budget.
        let answer = crate::coop::budgeted(|| this.poll_chunk(cx));
        match &answer {
            Poll::Ready(Some(chunk)) => this.streak += chunk.len(),
            Poll::Ready(None) | Poll::Pending => this.streak = 0,
        }
        answer
    }
}

/// The yield of a runtime without one of its own ([`Timer::yield_now`] is `None`): the first
/// poll wakes the task and answers `Pending`, which puts it behind the others on a first-in,
/// first-out executor; the next completes.
struct WakeOnce(bool);

impl Future for WakeOnce {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if core::mem::replace(&mut self.0, true) {
            Poll::Ready(())
        } else {
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

impl SseBody {
    /// The next chunk: the opening bytes, the frames that are ready, an interruption, a
    /// keep-alive, or the end.
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let this = self;
        if this.frames.is_none() {
            return Poll::Ready(None);
        }
        let mut out = Chunk::new();
        if !this.opened {
            // The opening bytes go out with what the handler's first poll makes ready, and only
            // after that poll: a handler that subscribes before its first await is subscribed
            // by the time its client sees the stream open, so a post made after that is never
            // missed.
            this.opened = true;
            this.framing.open(&mut out);
        }
        let ended = |s: &mut Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
                     cx: &mut Context<'_>| {
            s.as_mut().is_some_and(|f| f.as_mut().poll(cx).is_ready())
        };
        if ended(&mut this.shutdown, cx) || ended(&mut this.deadline, cx) {
            this.close();
            this.end = Some(Box::new(StreamEnd::Interrupted));
            this.framing.interrupted(&mut out);
            return Poll::Ready(if out.is_empty() {
                None
            } else {
                Some(out.into_bytes())
            });
        }
        let mut finished = false;
        // Registered before the flag is read: a frame that wakes in between is seen now, or
        // wakes this task for the next poll.
        this.frames_wake.register(cx.waker());
        let moved = this.frames_wake.woken.swap(false, Ordering::Acquire);
        this.woken_at = 0;
        let sent_before = this.events_sent;
        if let (true, Some(frames)) = (moved, this.frames.as_mut()) {
            // Untimed bodies skip the atomic: they never stamp.
            let stamp = match this.frames_wake.clock {
                Some(_) => this.frames_wake.woken_at.swap(0, Ordering::Relaxed),
                None => 0,
            };
            let mut frames_cx = Context::from_waker(&this.frames_waker);
            let mut pending = false;
            while out.len() < MAX_CHUNK {
                match Pin::new(&mut *frames).poll_next(&mut frames_cx) {
                    Poll::Ready(Some(frame)) => {
                        if !out.has_room() {
                            out.room(this.size_hint.clamp(MIN_CHUNK, MAX_HINT));
                        }
                        let last = match &frame {
                            Frame::Event(_) | Frame::Shared(_) => {
                                this.events_sent += 1;
                                false
                            }
                            Frame::Done(_) => {
                                this.end = Some(Box::new(StreamEnd::Returned));
                                true
                            }
                            Frame::Error(error) => {
                                this.end = Some(Box::new(StreamEnd::Failed(error.clone())));
                                true
                            }
                        };
                        this.framing.frame(frame, &mut out);
                        if last {
                            finished = true;
                            break;
                        }
                    }
                    Poll::Ready(None) => {
                        this.end
                            .get_or_insert_with(|| Box::new(StreamEnd::Returned));
                        finished = true;
                        break;
                    }
                    Poll::Pending => {
                        pending = true;
                        break;
                    }
                }
            }
            if !pending {
                // Stopped at a full chunk (or the end) with frames perhaps still ready and no
                // wake to come for them: look again next time.
                this.frames_wake.woken.store(true, Ordering::Relaxed);
            }
            this.behind = !pending && !finished;
            if stamp != 0 && this.events_sent > sent_before {
                this.woken_at = stamp;
            }
        }
        if finished {
            this.close();
            return Poll::Ready(if out.is_empty() {
                None
            } else {
                Some(out.into_bytes())
            });
        }
        if !out.is_empty() {
            this.size_hint = out.len();
            this.reset_idle();
            return Poll::Ready(Some(out.into_bytes()));
        }
        if this.poll_keep_alive(cx) {
            this.framing.keep_alive(&mut out);
            this.reset_idle();
            return Poll::Ready(Some(out.into_bytes()));
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procedure::{error_stream, Json};
    use crate::{Event, RpcError};
    use core::sync::atomic::{AtomicBool, Ordering};
    use futures::executor::block_on;
    use futures::StreamExt;

    /// Writes frames as short tags, to see what the body does with them.
    struct Tags;
    impl Framing for Tags {
        fn open(&mut self, out: &mut Chunk) {
            out.push_str("<open>");
        }
        fn frame(&mut self, frame: Frame, out: &mut Chunk) {
            match frame {
                Frame::Event(_) | Frame::Shared(_) => {
                    out.push_str("<e:");
                    out.push_str(frame.event_data().unwrap().get());
                    out.push_str(">");
                }
                Frame::Done(_) => out.push_str("<done>"),
                Frame::Error(_) => out.push_str("<error>"),
            }
        }
        fn keep_alive(&mut self, out: &mut Chunk) {
            out.push_str("<ka>");
        }
    }

    /// A timer whose sleeps end at once, moving its clock on by their length.
    #[derive(Debug, Default)]
    struct Instant(core::sync::atomic::AtomicU64);
    impl Timer for Instant {
        fn sleep(&self, duration: Duration) -> Sleep {
            self.0
                .fetch_add(duration.as_nanos() as u64, Ordering::SeqCst);
            Box::pin(core::future::ready(()))
        }
        fn now(&self) -> Duration {
            Duration::from_nanos(self.0.load(Ordering::SeqCst))
        }
    }

    fn json(n: u32) -> Json {
        serde_json::value::to_raw_value(&n).unwrap()
    }

    fn frames(items: Vec<Frame>) -> FrameStream {
        FrameStream::new(futures::stream::iter(items))
    }

    #[test]
    fn opens_with_the_frames_ready_at_once_and_ends_after_the_last_frame() {
        let body = SseBody::new(
            frames(alloc::vec![
                Frame::Event(Event::new(json(1))),
                Frame::Event(Event::new(json(2))),
                Frame::Done(json(0)),
            ]),
            Tags,
            &StreamTiming::default(),
            None,
        );
        let chunks: Vec<Bytes> = block_on(body.collect());
        // The opening waits for the handler's first poll, and takes what it made ready.
        assert_eq!(chunks, ["<open><e:1><e:2><done>"]);
    }

    #[test]
    fn a_body_counts_the_events_it_sent_and_says_how_it_ended() {
        let error = RpcError::new(crate::ErrorCode::BAD_REQUEST, "nope");
        let mut failed = SseBody::new(
            frames(alloc::vec![
                Frame::Event(Event::new(json(1))),
                Frame::Event(Event::new(json(2))),
                Frame::Error(error),
            ]),
            Tags,
            &StreamTiming::default(),
            None,
        );
        assert!(failed.end().is_none());
        let _: Vec<Bytes> = block_on(failed.by_ref().collect());
        assert_eq!(failed.events_sent(), 2);
        assert!(matches!(failed.end(), Some(StreamEnd::Failed(e)) if e.code() == "BAD_REQUEST"));

        let mut returned = SseBody::new(
            frames(alloc::vec![Frame::Done(json(0))]),
            Tags,
            &StreamTiming::default(),
            None,
        );
        let _: Vec<Bytes> = block_on(returned.by_ref().collect());
        assert_eq!(returned.events_sent(), 0);
        assert!(matches!(returned.end(), Some(StreamEnd::Returned)));

        let mut cut = SseBody::new(
            FrameStream::new(futures::stream::pending()),
            Tags,
            &StreamTiming::default(),
            None,
        )
        .end_on(core::future::ready(()));
        let _: Vec<Bytes> = block_on(cut.by_ref().collect());
        assert!(matches!(cut.end(), Some(StreamEnd::Interrupted)));
    }

    #[test]
    fn a_body_is_behind_while_its_chunks_fill_up_and_not_once_it_has_caught_up() {
        use futures::FutureExt;
        // More ready events than one chunk holds, then nothing more for now.
        let ready = (0..20_000).map(|n| Frame::Event(Event::new(json(n))));
        let stream = futures::stream::iter(ready).chain(futures::stream::pending());
        let mut body = SseBody::new(
            FrameStream::new(stream),
            Tags,
            &StreamTiming::default(),
            None,
        );
        assert!(!body.is_behind());
        let mut chunks = 0;
        // A body yields its thread after a full chunk (Pending, woken at once): polled again
        // until it is pending twice in a row, it has taken every ready event.
        let mut pending = 0;
        while pending < 2 {
            match body.next().now_or_never() {
                Some(Some(chunk)) => {
                    pending = 0;
                    chunks += 1;
                    if chunk.len() >= MAX_CHUNK {
                        assert!(body.is_behind(), "a full chunk with more ready");
                    }
                }
                Some(None) => panic!("the stream does not end"),
                None => pending += 1,
            }
        }
        assert!(chunks > 1, "the events took several chunks");
        assert_eq!(body.events_sent(), 20_000);
        assert!(
            !body.is_behind(),
            "caught up: the last poll found nothing ready"
        );
    }

    #[test]
    fn with_timed_wakes_a_chunk_tells_when_the_wake_that_readied_its_events_happened() {
        let clock = Arc::new(Instant::default());
        let (send, recv) = futures::channel::mpsc::unbounded::<Frame>();
        let timer: Arc<dyn Timer> = clock.clone();
        let mut body = SseBody::new(
            FrameStream::new(recv),
            Tags,
            &StreamTiming::default(),
            Some(timer),
        )
        .time_wakes();
        assert_eq!(poll_once(&mut body), Poll::Ready(Some("<open>".into())));
        assert_eq!(body.woken_at(), None, "nothing woke the opening");
        assert!(poll_once(&mut body).is_pending());
        clock.0.store(7_000, Ordering::SeqCst);
        send.unbounded_send(Frame::Event(Event::new(json(1))))
            .unwrap();
        // A second event before the body looks: the stamp stays the first one's.
        clock.0.store(9_000, Ordering::SeqCst);
        send.unbounded_send(Frame::Event(Event::new(json(2))))
            .unwrap();
        assert_eq!(poll_once(&mut body), Poll::Ready(Some("<e:1><e:2>".into())));
        assert_eq!(body.woken_at(), Some(Duration::from_nanos(7_000)));
        assert_eq!(body.events_sent(), 2);
    }

    #[test]
    fn a_silent_stream_gets_keep_alives_and_no_deadline_without_a_timer() {
        let mut body = SseBody::new(
            FrameStream::new(futures::stream::pending()),
            Tags,
            &StreamTiming {
                keep_alive: Some(Duration::from_secs(5)),
                max_duration: None,
            },
            Some(Arc::new(Instant::default())),
        );
        block_on(async {
            assert_eq!(body.next().await.unwrap(), "<open>");
            assert_eq!(body.next().await.unwrap(), "<ka>");
            assert_eq!(body.next().await.unwrap(), "<ka>");
        });
        let mut untimed = SseBody::new(
            FrameStream::new(futures::stream::pending()),
            Tags,
            &StreamTiming {
                keep_alive: Some(Duration::from_secs(5)),
                max_duration: Some(Duration::from_secs(1)),
            },
            None,
        );
        block_on(async { untimed.next().await });
        assert!(block_on(async { futures::poll!(untimed.next()) }).is_pending());
    }

    /// A hand-moved clock that counts the sleeps it makes. Tests poll by hand after moving it,
    /// so its sleeps need no waker.
    #[derive(Debug)]
    struct HandClock {
        now_ms: Arc<core::sync::atomic::AtomicU64>,
        sleeps: Arc<core::sync::atomic::AtomicUsize>,
    }
    impl Timer for HandClock {
        fn sleep(&self, duration: Duration) -> Sleep {
            self.sleeps.fetch_add(1, Ordering::SeqCst);
            let now = Arc::clone(&self.now_ms);
            let due = now.load(Ordering::SeqCst) + duration.as_millis() as u64;
            Box::pin(futures::future::poll_fn(move |_| {
                if now.load(Ordering::SeqCst) >= due {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            }))
        }
        fn now(&self) -> Duration {
            Duration::from_millis(self.now_ms.load(Ordering::SeqCst))
        }
    }

    /// Events at 1, 2, ... 100 ms, then silence: the keep-alive comes 5 s after the last event.
    /// Returns how many sleeps the body made.
    fn keep_alive_after_a_burst() -> usize {
        let clock = HandClock {
            now_ms: Arc::default(),
            sleeps: Arc::default(),
        };
        let (now_ms, sleeps) = (Arc::clone(&clock.now_ms), Arc::clone(&clock.sleeps));
        let (send, recv) = futures::channel::mpsc::unbounded::<Frame>();
        let mut body = SseBody::new(
            FrameStream::new(recv),
            Tags,
            &StreamTiming {
                keep_alive: Some(Duration::from_secs(5)),
                max_duration: None,
            },
            Some(Arc::new(clock)),
        );
        let poll = |body: &mut SseBody| match block_on(async { futures::poll!(body.next()) }) {
            Poll::Ready(chunk) => chunk,
            Poll::Pending => None,
        };
        assert_eq!(poll(&mut body).as_deref(), Some(&b"<open>"[..]));
        for n in 1..=100 {
            now_ms.store(n, Ordering::SeqCst);
            send.unbounded_send(Frame::Event(Event::new(json(n as u32))))
                .unwrap();
            assert_eq!(
                poll(&mut body),
                Some(Bytes::from(alloc::format!("<e:{n}>")))
            );
        }
        for quiet in [5_000, 5_099] {
            now_ms.store(quiet, Ordering::SeqCst);
            assert_eq!(
                poll(&mut body),
                None,
                "a keep-alive {quiet} ms in, too early"
            );
        }
        now_ms.store(5_100, Ordering::SeqCst);
        assert_eq!(poll(&mut body).as_deref(), Some(&b"<ka>"[..]));
        now_ms.store(10_099, Ordering::SeqCst);
        assert_eq!(poll(&mut body), None);
        now_ms.store(10_100, Ordering::SeqCst);
        assert_eq!(poll(&mut body).as_deref(), Some(&b"<ka>"[..]));
        sleeps.load(Ordering::SeqCst)
    }

    #[test]
    fn keep_alives_follow_the_last_event_by_the_interval() {
        // The events only note the time: the first sleep, its remainder, and one per
        // keep-alive, not one per event.
        assert_eq!(keep_alive_after_a_burst(), 4);
    }

    struct Cleanup(Arc<AtomicBool>);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    fn endless_with_cleanup(flag: &Arc<AtomicBool>) -> FrameStream {
        let guard = Cleanup(Arc::clone(flag));
        FrameStream::new(futures::stream::pending::<Frame>().map(move |f| {
            let _ = &guard;
            f
        }))
    }

    #[test]
    fn the_deadline_ends_the_stream_without_an_end_frame_and_drops_the_handler() {
        let cleaned = Arc::new(AtomicBool::new(false));
        let body = SseBody::new(
            endless_with_cleanup(&cleaned),
            Tags,
            &StreamTiming {
                keep_alive: None,
                max_duration: Some(Duration::from_secs(1)),
            },
            Some(Arc::new(Instant::default())),
        );
        let chunks: Vec<Bytes> = block_on(body.collect());
        assert_eq!(chunks, ["<open>"]);
        assert!(cleaned.load(Ordering::SeqCst));
    }

    struct Interrupting;
    impl Framing for Interrupting {
        fn open(&mut self, _: &mut Chunk) {}
        fn frame(&mut self, _: Frame, _: &mut Chunk) {}
        fn keep_alive(&mut self, _: &mut Chunk) {}
        fn interrupted(&mut self, out: &mut Chunk) {
            out.push_str("<cut>");
        }
    }

    #[test]
    fn an_interrupted_stream_ends_with_the_framings_interruption() {
        let cleaned = Arc::new(AtomicBool::new(false));
        let body = SseBody::new(
            endless_with_cleanup(&cleaned),
            Interrupting,
            &StreamTiming::default(),
            None,
        )
        .end_on(core::future::ready(()));
        let chunks: Vec<Bytes> = block_on(body.collect());
        assert_eq!(chunks, ["<cut>"]);
        assert!(cleaned.load(Ordering::SeqCst));
    }

    #[test]
    fn a_shutdown_signal_ends_the_stream_cleanly() {
        let cleaned = Arc::new(AtomicBool::new(false));
        let body = SseBody::new(
            endless_with_cleanup(&cleaned),
            Tags,
            &StreamTiming::default(),
            None,
        )
        .end_on(core::future::ready(()));
        let chunks: Vec<Bytes> = block_on(body.collect());
        assert_eq!(chunks, ["<open>"]);
        assert!(cleaned.load(Ordering::SeqCst));
    }

    #[test]
    fn an_error_before_the_first_event_is_written_inside_the_stream() {
        let body = SseBody::new(
            error_stream(RpcError::internal("x")),
            Tags,
            &StreamTiming::default(),
            None,
        );
        let chunks: Vec<Bytes> = block_on(body.collect());
        assert_eq!(chunks, ["<open><error>"]);
    }

    /// Counts the polls of the stream inside.
    struct Counted<S> {
        inner: S,
        polls: Arc<core::sync::atomic::AtomicUsize>,
    }
    impl<S: Stream<Item = Frame> + Unpin> Stream for Counted<S> {
        type Item = Frame;
        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Frame>> {
            self.polls.fetch_add(1, Ordering::SeqCst);
            Pin::new(&mut self.inner).poll_next(cx)
        }
    }

    fn poll_once(body: &mut SseBody) -> Poll<Option<Bytes>> {
        block_on(async { futures::poll!(body.next()) })
    }

    #[test]
    fn a_poll_that_no_frame_woke_leaves_the_frames_alone() {
        let polls = Arc::new(core::sync::atomic::AtomicUsize::new(0));
        let (send, recv) = futures::channel::mpsc::unbounded::<Frame>();
        let mut body = SseBody::new(
            FrameStream::new(Counted {
                inner: recv,
                polls: Arc::clone(&polls),
            }),
            Tags,
            &StreamTiming::default(),
            None,
        );
        assert_eq!(poll_once(&mut body), Poll::Ready(Some("<open>".into())));
        assert!(poll_once(&mut body).is_pending());
        let after_first_look = polls.load(Ordering::SeqCst);
        assert_eq!(after_first_look, 1);
        // As hyper does after each chunk: polled again, nothing sent, the frames not touched.
        for _ in 0..3 {
            assert!(poll_once(&mut body).is_pending());
        }
        assert_eq!(polls.load(Ordering::SeqCst), after_first_look);
        // A frame wakes the body: the next poll takes it (and hears Pending after it).
        send.unbounded_send(Frame::Event(Event::new(json(7))))
            .unwrap();
        assert_eq!(poll_once(&mut body), Poll::Ready(Some("<e:7>".into())));
        assert_eq!(polls.load(Ordering::SeqCst), after_first_look + 2);
        assert!(poll_once(&mut body).is_pending());
        assert_eq!(polls.load(Ordering::SeqCst), after_first_look + 2);
        // The end wakes it too.
        drop(send);
        assert_eq!(poll_once(&mut body), Poll::Ready(None));
    }

    #[test]
    fn frames_past_a_full_chunk_come_in_the_next_poll_with_no_wake() {
        // Always ready, never waking anyone: what the body does not take now, it must come back
        // for by itself.
        let title = "x".repeat(1000);
        let events = (0..200u32).map(move |n| {
            let data = serde_json::value::to_raw_value(&(n, title.as_str())).unwrap();
            Frame::Event(Event::new(data))
        });
        let mut body = SseBody::new(
            FrameStream::new(futures::stream::iter(events)),
            Tags,
            &StreamTiming::default(),
            None,
        );
        let woken = Arc::new(Woken(core::sync::atomic::AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&woken));
        let mut cx = Context::from_waker(&waker);
        let mut seen = 0;
        let mut chunks = 0;
        let mut full = 0;
        let mut yields = 0;
        for _ in 0..20 {
            match Pin::new(&mut body).poll_next(&mut cx) {
                Poll::Ready(Some(chunk)) => {
                    chunks += 1;
                    full += usize::from(chunk.len() >= MAX_CHUNK);
                    seen += core::str::from_utf8(&chunk).unwrap().matches("<e:").count();
                }
                Poll::Ready(None) => break,
                // After a full chunk the body yields its thread, and asks to run again at once.
                Poll::Pending => {
                    yields += 1;
                    let wakes = woken.0.load(Ordering::SeqCst);
                    assert_eq!(
                        wakes, yields,
                        "pending with {seen} of 200 events out and no wake"
                    );
                }
            }
        }
        assert_eq!(seen, 200);
        // 200 KB of events in chunks of at most 64 KiB (plus one event), with a yield after
        // each full one.
        assert!(chunks >= 4, "{chunks} chunks");
        assert_eq!(yields, full, "one yield per full chunk");
    }

    /// Counts its serializations.
    #[cfg(all(feature = "publisher", feature = "orpc", feature = "trpc"))]
    struct Serialized(Arc<core::sync::atomic::AtomicUsize>, u32);

    #[cfg(all(feature = "publisher", feature = "orpc", feature = "trpc"))]
    impl serde::Serialize for Serialized {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            self.0.fetch_add(1, Ordering::SeqCst);
            serializer.serialize_u32(self.1)
        }
    }

    #[cfg(all(feature = "publisher", feature = "orpc", feature = "trpc"))]
    #[test]
    fn every_subscriber_of_a_publish_sends_the_same_bytes_made_once_per_protocol() {
        use crate::procedure::{Encoding, IntoEventStream};
        use crate::protocol::orpc::OrpcFraming;
        use crate::protocol::trpc::{TrpcFraming, TrpcOptions};
        use crate::publisher::{MemoryPublisher, SubscribeOptions};

        const N: usize = 20;
        let publisher = MemoryPublisher::<Serialized>::new();
        let subscribe = || {
            publisher
                .subscribe_now("t", SubscribeOptions::new())
                .unwrap()
        };
        let timing = StreamTiming::default();
        let trpc = || TrpcFraming::new(&TrpcOptions::default(), "t", None);
        let mut orpc_bodies: Vec<SseBody> = (0..N)
            .map(|_| {
                SseBody::new(
                    subscribe().into_frames(None),
                    OrpcFraming::V1,
                    &timing,
                    None,
                )
            })
            .collect();
        let mut trpc_bodies: Vec<SseBody> = (0..N)
            .map(|_| SseBody::new(subscribe().into_frames(None), trpc(), &timing, None))
            .collect();
        for body in orpc_bodies.iter_mut().chain(&mut trpc_bodies) {
            assert!(
                matches!(poll_once(body), Poll::Ready(Some(_))),
                "the opening"
            );
            assert!(poll_once(body).is_pending());
        }
        // A subscriber of its own, to hold the published event and look into it.
        let mut watcher = subscribe();

        let serialized = Arc::new(core::sync::atomic::AtomicUsize::new(0));
        let id = publisher.publish_now("t", Serialized(Arc::clone(&serialized), 42));
        let chunks = |bodies: &mut Vec<SseBody>| -> Vec<Bytes> {
            bodies
                .iter_mut()
                .map(|body| match poll_once(body) {
                    Poll::Ready(Some(chunk)) => chunk,
                    other => panic!("expected the event's chunk, got {other:?}"),
                })
                .collect()
        };
        let orpc_chunks = chunks(&mut orpc_bodies);
        let trpc_chunks = chunks(&mut trpc_bodies);

        // One allocation per protocol, pointed to by every subscriber's chunk.
        for chunks in [&orpc_chunks, &trpc_chunks] {
            assert!(chunks.iter().all(|c| c.as_ptr() == chunks[0].as_ptr()));
        }
        assert_ne!(orpc_chunks[0].as_ptr(), trpc_chunks[0].as_ptr());
        // The data serialized once, each protocol's frame written once, for 2 * N streams.
        assert_eq!(serialized.load(Ordering::SeqCst), 1);
        let published = block_on(watcher.next()).unwrap().unwrap();
        let shared = published.shared_event().unwrap();
        assert_eq!(shared.encodes(Encoding::OrpcSse), 1);
        assert_eq!(shared.encodes(Encoding::TrpcSse), 1);

        // The bytes the old path wrote: a plain event, its JSON and id copied, framed per stream.
        let old = |framing: &mut dyn Framing| {
            let event = crate::tracked(id.get(), json(42)).unwrap();
            let mut out = Chunk::new();
            framing.frame(Frame::Event(event), &mut out);
            out.into_bytes()
        };
        assert_eq!(orpc_chunks[0], old(&mut OrpcFraming::default()));
        assert_eq!(trpc_chunks[0], old(&mut trpc()));
        assert_eq!(
            orpc_chunks[0],
            "event: message\nid: 1\ndata: {\"json\":42}\n\n"
        );
        assert_eq!(trpc_chunks[0], "data: 42\nid: 1\n\n\n");
    }

    #[cfg(feature = "trpc")]
    #[test]
    fn a_trpc_event_without_an_id_after_a_shared_one_restores_the_shared_id() {
        use crate::procedure::SharedEvent;
        use crate::protocol::trpc::{TrpcFraming, TrpcOptions};
        let mut framing = TrpcFraming::new(&TrpcOptions::default(), "t", None);
        let mut out = Chunk::new();
        let shared = SharedEvent::new(json(1), Some(crate::EventId::from(5u64)));
        framing.frame(Frame::Shared(shared), &mut out);
        framing.frame(Frame::Shared(SharedEvent::new(json(2), None)), &mut out);
        assert_eq!(
            out.into_string(),
            "data: 1\nid: 5\n\n\ndata: 2\nid: \n\n\nevent: restore-id\ndata: \nid: 5\n\n\n"
        );
    }

    /// Counts wake-ups.
    struct Woken(core::sync::atomic::AtomicUsize);

    impl Wake for Woken {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}
