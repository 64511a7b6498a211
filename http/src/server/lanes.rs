//! Event streams written from a few tasks rather than one task each: "lanes".
//!
//! Once hyper has handed an event stream's socket back ([`super::hand_off`]), its writer need
//! not stay in its connection's task. A publish to N subscribers would wake N connection tasks
//! through the executor, each to write one chunk; on an executor that runs tasks first in,
//! first out (smol's), a publisher's connection then waits behind all N for its next turn, so
//! posts arrive one per publisher connection per round of writes however fast the writes are.
//! An accept loop started with [`accept_loop_in_lanes`](super::accept_loop_in_lanes) instead
//! runs each stream's writer in one of a few lane tasks (one per core).
//! A publish wakes the streams inside their lane (an atomic push onto the lane's ready list, as
//! `FuturesUnordered` does), the lane is scheduled once, and it writes to its ready streams a
//! batch at a time, yielding to the executor between batches: the other tasks of the thread,
//! publishers among them, get a turn every batch whatever the executor's order.
//!
//! A lane's turn ends the way its runtime says ([`EndTurn`]). What matters is that the
//! publishers' connections, which wake on I/O, run before the lane's next turn: on smol waking
//! the lane again puts it behind them ([`end_turn_by_waking`]); tokio looks for I/O only every
//! 61 tasks or when nothing else is ready, so a lane woken again would run many turns before a
//! single post came in, and its adapter ends a turn with tokio's own yield, which waits for
//! that look. With it, lanes on tokio write 1.4 to 1.5 times as many events per second as a
//! task per stream at 1,000 subscribers (more events share each write; BENCHMARKS.md).
//!
//! Each stream's connection task stays, parked, for what the connection owns: its place under
//! the connection limit, its forced close at shutdown (which drops the writer in its lane), and
//! the socket back once a stream that ended whole leaves it fit for the next request.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

use futures_util::stream::FuturesUnordered;
use futures_util::task::AtomicWaker;
use futures_util::StreamExt;
use http_body::Body;

use super::hand_off::StreamWriter;
use crate::stack::BoxError;

/// Streams a lane polls per turn at most, before it lets the thread's other tasks run. Measured
/// on smol at 1,000 and 10,000 subscribers (BENCHMARKS.md): 16 led 64, 256 and 4,096.
const STREAMS_PER_TURN: usize = 16;

/// How a lane's task ends a turn that still has streams to write: it must arrange to be polled
/// again, after the thread's other ready tasks, and best after the runtime has looked for I/O
/// (the publishers' connections wake on I/O). Given by the runtime's adapter to
/// [`accept_loop_in_lanes`](super::accept_loop_in_lanes).
///
/// ```
/// use std::future::Future;
/// use std::task::Context;
/// // tokio's adapter: tokio's yield, which waits until tokio has looked for I/O.
/// fn yield_after_io(cx: &mut Context<'_>) {
///     let mut yielded = std::pin::pin!(tokio::task::yield_now());
///     let _ = yielded.as_mut().poll(cx);
/// }
/// let end_turn: outer_http::server::EndTurn = yield_after_io;
/// # let _ = end_turn;
/// ```
pub type EndTurn = fn(&mut Context<'_>);

/// Ends a lane's turn by waking its task again: on an executor that runs tasks first in, first
/// out (smol's), the lane then runs after every task already woken, I/O's among them.
pub fn end_turn_by_waking(cx: &mut Context<'_>) {
    cx.waker().wake_by_ref();
}

/// The lanes of one accept loop: a few tasks, spawned on first use, that write its connections'
/// event streams. Cheap to clone.
pub(crate) struct Lanes<I, B, E> {
    lanes: Arc<[Arc<Lane<I, B>>]>,
    next: Arc<AtomicUsize>,
    executor: E,
    end_turn: EndTurn,
}

impl<I, B, E: Clone> Clone for Lanes<I, B, E> {
    fn clone(&self) -> Self {
        Self {
            lanes: Arc::clone(&self.lanes),
            next: Arc::clone(&self.next),
            executor: self.executor.clone(),
            end_turn: self.end_turn,
        }
    }
}

impl<I, B, E> fmt::Debug for Lanes<I, B, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lanes")
            .field("lanes", &self.lanes.len())
            .finish_non_exhaustive()
    }
}

/// One lane: the streams handed to it and not yet taken in, and its task's waker.
struct Lane<I, B> {
    arriving: Mutex<Vec<Delegated<I, B>>>,
    waker: AtomicWaker,
    started: AtomicBool,
    /// Set once the accept loop and every connection of it are gone: the lane ends once empty.
    closed: AtomicBool,
    /// Streams polled in this turn of the lane's task (see [`STREAMS_PER_TURN`]).
    polled: AtomicUsize,
}

impl<I, B, E> Lanes<I, B, E>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
    B: Body + 'static,
    B::Error: Into<BoxError>,
    E: hyper::rt::Executor<LaneTask<I, B>> + Clone,
{
    /// `count` lanes (at least one), spawned on `executor` when first needed, ending their turns
    /// with `end_turn`.
    pub(crate) fn new(count: usize, executor: E, end_turn: EndTurn) -> Self {
        let lanes = (0..count.max(1))
            .map(|_| {
                Arc::new(Lane {
                    arriving: Mutex::new(Vec::new()),
                    waker: AtomicWaker::new(),
                    started: AtomicBool::new(false),
                    closed: AtomicBool::new(false),
                    polled: AtomicUsize::new(0),
                })
            })
            .collect();
        Self {
            lanes,
            next: Arc::new(AtomicUsize::new(0)),
            executor,
            end_turn,
        }
    }

    /// Hands `writer` to a lane; the link tells how it ended and gives the socket back.
    pub(crate) fn run(&self, writer: StreamWriter<I, B>) -> Link<I> {
        let shared = Arc::new(Shared {
            cancelled: AtomicBool::new(false),
            ended: Mutex::new(None),
            connection: AtomicWaker::new(),
            stream: AtomicWaker::new(),
        });
        let index = self.next.fetch_add(1, Ordering::Relaxed) % self.lanes.len();
        let lane = &self.lanes[index];
        lane.arriving
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Delegated {
                writer: Some(writer),
                shared: Arc::clone(&shared),
                lane: Arc::clone(lane),
            });
        if !lane.started.swap(true, Ordering::AcqRel) {
            self.executor.execute(LaneTask {
                lane: Arc::clone(lane),
                streams: FuturesUnordered::new(),
                turn: Arc::default(),
                end_turn: self.end_turn,
            });
        }
        lane.waker.wake();
        Link(shared)
    }

    /// Closes the lanes when dropped (the accept loop is done): they end once their last
    /// stream has.
    pub(crate) fn closer(&self) -> Closer<I, B> {
        Closer(Arc::clone(&self.lanes))
    }
}

/// See [`Lanes::closer`].
pub(crate) struct Closer<I, B>(Arc<[Arc<Lane<I, B>>]>);

impl<I, B> Drop for Closer<I, B> {
    fn drop(&mut self) {
        for lane in self.0.iter() {
            lane.closed.store(true, Ordering::Release);
            lane.waker.wake();
        }
    }
}

/// A lane's task: every stream handed to the lane, polled as each wakes.
pub struct LaneTask<I, B> {
    lane: Arc<Lane<I, B>>,
    streams: FuturesUnordered<Delegated<I, B>>,
    turn: Arc<TurnWaker>,
    end_turn: EndTurn,
}

/// The waker a lane polls its streams with. `FuturesUnordered` ends a turn by waking its task
/// itself, during the poll; that wake is noted here instead, so that the lane ends the turn
/// the runtime's way ([`EndTurn`]). A wake from elsewhere (a publish, a socket) goes to the
/// task as usual, whenever it comes.
#[derive(Default)]
struct TurnWaker {
    task: AtomicWaker,
    /// Set while the lane polls its streams.
    polling: AtomicBool,
    /// A wake came while `polling`.
    woken: AtomicBool,
}

impl TurnWaker {
    /// Polls `poll` with this waker in place of `cx`'s; whether anything woke it meanwhile.
    fn poll_noting<T>(
        self: &Arc<Self>,
        cx: &Context<'_>,
        poll: impl FnOnce(&mut Context<'_>) -> T,
    ) -> (T, bool) {
        self.task.register(cx.waker());
        self.polling.store(true, Ordering::SeqCst);
        let waker = Waker::from(Arc::clone(self));
        let out = poll(&mut Context::from_waker(&waker));
        self.polling.store(false, Ordering::SeqCst);
        (out, self.woken.swap(false, Ordering::SeqCst))
    }
}

impl Wake for TurnWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.polling.load(Ordering::SeqCst) {
            self.woken.store(true, Ordering::SeqCst);
            // Still polling: the lane will see `woken` once done. If it finished meanwhile it
            // may have looked already: wake the task (at worst once too often).
            if self.polling.load(Ordering::SeqCst) {
                return;
            }
        }
        self.task.wake();
    }
}

impl<I, B> fmt::Debug for LaneTask<I, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LaneTask")
            .field("streams", &self.streams.len())
            .finish_non_exhaustive()
    }
}

impl<I, B> Future for LaneTask<I, B>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    B: Body,
    B::Error: Into<BoxError>,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // Every field is Unpin.
        let this = self.get_mut();
        this.lane.waker.register(cx.waker());
        let arrived = std::mem::take(
            &mut *this
                .lane
                .arriving
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        this.streams.extend(arrived);
        // A new turn. `FuturesUnordered` polls each woken stream once per call, and answers
        // `Pending` (waking this task) once two of them yielded: past the turn's budget, each
        // stream yields without running (`Delegated::poll`), so a turn ends there. A stream that
        // ended was polled too, so the budget bounds the streams that end in a turn as well.
        this.lane.polled.store(0, Ordering::Relaxed);
        let streams = &mut this.streams;
        let (ended, woken) = this.turn.poll_noting(cx, |cx| loop {
            match streams.poll_next_unpin(cx) {
                Poll::Ready(Some(())) => {}
                Poll::Ready(None) => break true,
                Poll::Pending => break false,
            }
        });
        if woken {
            // Streams are still ready (the turn's budget ran out), or one woke while polled.
            (this.end_turn)(cx);
            return Poll::Pending;
        }
        if ended && this.lane.closed.load(Ordering::Acquire) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// What a lane and a stream's connection share.
struct Shared<I> {
    /// Set by the connection when it is dropped (closed by force): the lane drops the stream.
    cancelled: AtomicBool,
    /// Set by the lane when the stream ends: the socket when it ended whole, else `None`.
    /// Boxed: an idle stream keeps this place, and most never fill it.
    ended: Mutex<Option<Option<Box<I>>>>,
    connection: AtomicWaker,
    stream: AtomicWaker,
}

/// A stream in its lane.
struct Delegated<I, B> {
    writer: Option<StreamWriter<I, B>>,
    shared: Arc<Shared<I>>,
    lane: Arc<Lane<I, B>>,
}

impl<I, B> Future for Delegated<I, B>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    B: Body,
    B::Error: Into<BoxError>,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // Every field is Unpin.
        let this = self.get_mut();
        if this.lane.polled.fetch_add(1, Ordering::Relaxed) >= STREAMS_PER_TURN {
            // The lane's turn is over: run in its next one.
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        this.shared.stream.register(cx.waker());
        let Some(writer) = this.writer.as_mut() else {
            return Poll::Ready(());
        };
        let ended = if this.shared.cancelled.load(Ordering::Acquire) {
            None
        } else {
            match Pin::new(writer).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(whole) => Some(whole),
            }
        };
        let writer = this.writer.take();
        let io = match (ended, writer) {
            (Some(true), Some(writer)) => Some(Box::new(writer.into_io())),
            _ => None,
        };
        *this
            .shared
            .ended
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(io);
        this.shared.connection.wake();
        Poll::Ready(())
    }
}

/// A connection's hold on its stream in a lane: completes when the stream ends, with the socket
/// if it ended whole. Dropping it drops the stream in its lane.
pub(crate) struct Link<I>(Arc<Shared<I>>);

impl<I> Link<I> {
    /// `Ready(Some(io))` once the stream ended whole, `Ready(None)` once it was cut.
    pub(crate) fn poll_ended(&mut self, cx: &mut Context<'_>) -> Poll<Option<I>> {
        self.0.connection.register(cx.waker());
        match self
            .0
            .ended
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            Some(io) => Poll::Ready(io.map(|io| *io)),
            None => Poll::Pending,
        }
    }
}

impl<I> Drop for Link<I> {
    fn drop(&mut self) {
        self.0.cancelled.store(true, Ordering::Release);
        self.0.stream.wake();
    }
}

impl<I> fmt::Debug for Link<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Link").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http::Response;
    use http_body_util::StreamBody;
    use hyper_util::rt::TokioIo;
    use std::convert::Infallible;
    use std::future::poll_fn;
    use tokio::io::AsyncReadExt;

    /// Spawns on tokio, counting the lane tasks still alive.
    #[derive(Clone, Default)]
    struct Counting(Arc<AtomicUsize>);

    struct Alive<F>(F, Arc<AtomicUsize>);

    impl<F: Future + Unpin> Future for Alive<F> {
        type Output = F::Output;
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
            Pin::new(&mut self.0).poll(cx)
        }
    }

    impl<F> Drop for Alive<F> {
        fn drop(&mut self) {
            self.1.fetch_sub(1, Ordering::SeqCst);
        }
    }

    impl<F: Future<Output = ()> + Send + Unpin + 'static> hyper::rt::Executor<F> for Counting {
        fn execute(&self, task: F) {
            self.0.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(Alive(task, Arc::clone(&self.0)));
        }
    }

    /// A body of `chunks`, then the end if `ends`, else nothing more; `dropped` is set when it
    /// is dropped.
    fn body(
        chunks: &[&'static str],
        ends: bool,
        dropped: Arc<AtomicBool>,
    ) -> impl Body<Data = Bytes, Error = Infallible> + Send + Unpin + 'static {
        struct SetOnDrop(Arc<AtomicBool>);
        impl Drop for SetOnDrop {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let guard = SetOnDrop(dropped);
        let frames: Vec<_> = chunks
            .iter()
            .map(|c| Ok(http_body::Frame::data(Bytes::from_static(c.as_bytes()))))
            .collect();
        let tail = futures_util::stream::poll_fn(move |_| {
            let _ = &guard;
            if ends {
                Poll::Ready(None)
            } else {
                Poll::Pending
            }
        });
        StreamBody::new(futures_util::stream::iter(frames).chain(tail))
    }

    fn response<B>(body: B) -> Response<B> {
        Response::builder().header("date", "x").body(body).unwrap()
    }

    #[tokio::test]
    async fn a_lane_writes_streams_gives_whole_ones_back_drops_cut_ones_and_ends_when_closed() {
        let executor = Counting::default();
        let lanes = Lanes::new(2, executor.clone(), end_turn_by_waking);
        let closer = lanes.closer();

        // A stream that ends: written whole, its socket back.
        let (client, server) = tokio::io::duplex(4096);
        let dropped = Arc::new(AtomicBool::new(false));
        let writer = StreamWriter::new(
            TokioIo::new(server),
            response(body(&["a", "bc"], true, Arc::clone(&dropped))),
        );
        let mut link = lanes.run(writer);
        let io = poll_fn(|cx| link.poll_ended(cx)).await;
        assert!(
            io.is_some(),
            "a stream that ended whole gives its socket back"
        );
        drop(io);
        let mut written = String::new();
        let mut client = client;
        client.read_to_string(&mut written).await.unwrap();
        assert_eq!(
            written,
            "HTTP/1.1 200 OK\r\ndate: x\r\ntransfer-encoding: chunked\r\n\r\n\
             1\r\na\r\n2\r\nbc\r\n0\r\n\r\n"
        );
        assert!(dropped.load(Ordering::SeqCst));

        // A stream that never ends: dropping its link drops it in its lane.
        let (_client, server) = tokio::io::duplex(4096);
        let dropped = Arc::new(AtomicBool::new(false));
        let writer = StreamWriter::new(
            TokioIo::new(server),
            response(body(&["a"], false, Arc::clone(&dropped))),
        );
        let link = lanes.run(writer);
        tokio::task::yield_now().await;
        assert!(!dropped.load(Ordering::SeqCst));
        drop(link);
        for _ in 0..100 {
            if dropped.load(Ordering::SeqCst) {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert!(
            dropped.load(Ordering::SeqCst),
            "the cut stream's body was dropped"
        );

        // Two lanes were used; once closed and empty they end.
        assert_eq!(executor.0.load(Ordering::SeqCst), 2);
        drop(closer);
        for _ in 0..100 {
            if executor.0.load(Ordering::SeqCst) == 0 {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(executor.0.load(Ordering::SeqCst), 0, "the lane tasks ended");
    }

    static TURNS_ENDED: AtomicUsize = AtomicUsize::new(0);

    fn counting_end_turn(cx: &mut Context<'_>) {
        TURNS_ENDED.fetch_add(1, Ordering::SeqCst);
        cx.waker().wake_by_ref();
    }

    #[tokio::test]
    async fn a_lane_ends_each_full_turn_the_runtimes_way_and_writes_every_stream() {
        let lanes = Lanes::new(1, Counting::default(), counting_end_turn);
        let _closer = lanes.closer();
        // 40 streams ready at once: 16 a turn makes three turns, the first two ended by
        // `end_turn` rather than by a plain wake.
        let mut links = Vec::new();
        let mut clients = Vec::new();
        for _ in 0..40 {
            let (client, server) = tokio::io::duplex(4096);
            let writer = StreamWriter::new(
                TokioIo::new(server),
                response(body(&["a"], true, Arc::default())),
            );
            links.push(lanes.run(writer));
            clients.push(client);
        }
        for link in &mut links {
            assert!(poll_fn(|cx| link.poll_ended(cx)).await.is_some());
        }
        assert!(
            TURNS_ENDED.load(Ordering::SeqCst) >= 2,
            "turns ended: {}",
            TURNS_ENDED.load(Ordering::SeqCst)
        );
        drop(links);
        for mut client in clients {
            let mut written = String::new();
            client.read_to_string(&mut written).await.unwrap();
            assert!(written.ends_with("1\r\na\r\n0\r\n\r\n"), "{written:?}");
        }
    }

    /// Counts its wakes.
    #[derive(Default)]
    struct Wakes(AtomicUsize);

    impl Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_wake_during_a_turn_is_noted_for_the_lane_and_one_after_goes_to_its_task() {
        let task = Arc::new(Wakes::default());
        let task_waker = Waker::from(Arc::clone(&task));
        let cx = Context::from_waker(&task_waker);
        let turn = Arc::new(TurnWaker::default());

        let (_, woken) = turn.poll_noting(&cx, |cx| cx.waker().wake_by_ref());
        assert!(woken, "a wake during the turn is reported");
        assert_eq!(task.0.load(Ordering::SeqCst), 0, "and not passed on");

        // A waker kept from the turn (as a stream keeps it) wakes the task afterwards.
        let (kept, woken) = turn.poll_noting(&cx, |cx| cx.waker().clone());
        assert!(!woken);
        kept.wake();
        assert_eq!(task.0.load(Ordering::SeqCst), 1);
        let (_, woken) = turn.poll_noting(&cx, |_| ());
        assert!(
            !woken,
            "a wake after the turn is not reported to the next one"
        );
    }
}
