//! One Outer scenario and one heap probe, written once for a microcontroller and for the host.
//!
//! [`run`] serves a subscription from a [`MemoryPublisher`] over oRPC and tRPC, live and
//! resumed from a `Last-Event-ID`, and writes the bytes a server would send. The board
//! (`embedded/board`, QEMU's Cortex-M3) and the host must write the same bytes:
//! `tests/qemu.rs` checks they do. [`footprint`] measures what a topic costs on the heap, per
//! subscriber, per stream and per retained event, reading the caller's allocator.
//!
//! No I/O, no clock, no executor: the publisher is in memory and no timer is given, so every
//! future here is ready when polled (see [`block_on`]). What a board must provide is only a
//! global allocator and a `critical-section` implementation.
//!
//! ```
//! let mut out = Vec::new();
//! outer_embedded_scenario::run(&mut out);
//! let text = String::from_utf8(out).unwrap();
//! assert!(text.starts_with("== orpc live: 200 text/event-stream\n"));
//! ```
#![no_std]

extern crate alloc;

// Links the host's critical-section implementation (see Cargo.toml); a board links its own.
#[cfg(not(target_os = "none"))]
use critical_section as _;

use alloc::vec::Vec;
use core::fmt;
use core::future::Future;
use core::pin::{pin, Pin};
use core::sync::atomic::{AtomicUsize, Ordering};
use core::task::{Context, Poll, Waker};

use futures_core::Stream;
use outer_core::protocol::orpc::{self, OrpcOptions};
use outer_core::protocol::trpc::{self, TrpcOptions};
use outer_core::protocol::{Body, HttpResponse, SseBody};
use outer_core::publisher::{MemoryPublisher, SubscribeOptions, Subscription};
use outer_core::{procedure, App, RequestHead, Router};
use serde::Serialize;

/// The topic readings are published on.
pub const TOPIC: &str = "readings";

/// A sensor reading: what the board publishes and its clients subscribe to. Small and fixed in
/// size, so a retained event's cost is the publisher's, not the payload's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Reading {
    /// Which sensor.
    pub sensor: u8,
    /// Its temperature, in thousandths of a degree Celsius.
    pub millicelsius: i32,
}

/// The `n`th reading the scenario publishes (from 1): deterministic, so host and board agree.
pub fn reading(n: u32) -> Reading {
    Reading {
        sensor: (n % 3) as u8,
        millicelsius: 21_000 + 125 * n as i32,
    }
}

/// The router the scenario serves: `readings.live`, every reading on [`TOPIC`] after the
/// client's `Last-Event-ID` (without one, from now on), each with the publisher's id as its
/// SSE id.
pub fn router(publisher: MemoryPublisher<Reading>) -> Router<()> {
    let os = procedure::<()>();
    let live = os.subscription(move |req| {
        let options = SubscribeOptions::new().last_event_id(req.last_event_id);
        // Subscribed here, before the stream opens: what is published once `handle` has
        // answered is never missed.
        let subscribed = publisher.subscribe_now(TOPIC, options);
        async move { Ok(subscribed?) }
    });
    Router::new().nest("readings", Router::new().route("live", live))
}

/// The id the resumed streams send back as `Last-Event-ID`.
pub const RESUME_AFTER: u32 = 2;

/// Runs the scenario and appends what the server sends to `out`, one labelled section per
/// response (`== orpc live: 200 text/event-stream`, then the body's bytes):
///
/// 1. Readings 1 to 3 are published with no one subscribed: the topic retains them.
/// 2. A live oRPC stream (`POST /rpc/readings/live`) and a live tRPC one
///    (`GET /trpc/readings.live`) open; readings 4 and 5 are published; each stream is read
///    until nothing more is ready (both events), then dropped: the client went away. A stream
///    never ends by itself: this is one of the two ways the scenario ends one.
/// 3. Two streams resume after id [`RESUME_AFTER`] (oRPC's `last-event-id` header, tRPC's
///    `lastEventId` in the input, as their clients send them): each replays 3, 4 and 5 from
///    the topic's retention, then gets reading 6 live.
/// 4. The publisher's last handle is dropped (with the app that held a clone): the topic
///    closes, and the resumed streams end with the protocol's end frame (oRPC `done`, tRPC
///    `return`). That is the other way.
///
/// Everything is polled with [`block_on`] and a no-op waker: no clock, no timer (no
/// keep-alives), no I/O.
pub fn run(out: &mut Vec<u8>) {
    let publisher = MemoryPublisher::builder().retain_last(16).build();
    let app = App::from(router(publisher.clone()));
    for n in 1..=3 {
        publisher.publish_now(TOPIC, reading(n));
    }

    let mut orpc_live = Section::open("orpc live", orpc_call(&app, None));
    let mut trpc_live = Section::open("trpc live", trpc_call(&app, None));
    for n in 4..=5 {
        publisher.publish_now(TOPIC, reading(n));
    }
    orpc_live.read();
    trpc_live.read();
    // The clients leave: dropping a body drops its handler and unsubscribes.
    orpc_live.close();
    trpc_live.close();

    let resume = Some(RESUME_AFTER);
    let mut orpc_resume = Section::open("orpc resume after 2", orpc_call(&app, resume));
    let mut trpc_resume = Section::open("trpc resume after 2", trpc_call(&app, resume));
    publisher.publish_now(TOPIC, reading(6));
    orpc_resume.read();
    trpc_resume.read();
    // The app's router holds the other handle: with both gone the topic closes.
    drop(app);
    drop(publisher);
    orpc_resume.read();
    trpc_resume.read();

    for section in [orpc_live, trpc_live, orpc_resume, trpc_resume] {
        section.write(out);
    }
}

/// `POST /rpc/readings/live`, with `last-event-id` when resuming.
fn orpc_call(app: &App<()>, resume_after: Option<u32>) -> HttpResponse {
    let mut head = RequestHead::new("POST", "/rpc/readings/live");
    if let Some(id) = resume_after {
        head = head.with_header("last-event-id", alloc::format!("{id}"));
    }
    let options = OrpcOptions::default();
    block_on(orpc::handle(
        app,
        head,
        "/readings/live",
        b"",
        &options,
        None,
    ))
}

/// `GET /trpc/readings.live`, with `lastEventId` in the input when resuming, as tRPC's
/// `httpSubscriptionLink` sends it.
fn trpc_call(app: &App<()>, resume_after: Option<u32>) -> HttpResponse {
    let query = match resume_after {
        // input={"lastEventId":"2"}, percent-encoded.
        Some(id) => alloc::format!("input=%7B%22lastEventId%22%3A%22{id}%22%7D"),
        None => alloc::string::String::new(),
    };
    let mut head = RequestHead::new("GET", "/trpc/readings.live");
    head.query = query.clone();
    let options = TrpcOptions::default();
    let answer = trpc::handle(app, head, "/readings.live", &query, b"", &options, None);
    block_on(answer)
}

/// One response of the scenario: its label, status line and the bytes read from its body.
struct Section {
    label: &'static str,
    status: u16,
    content_type: Option<alloc::string::String>,
    bytes: Vec<u8>,
    body: Option<SseBody>,
    ended: bool,
}

impl Section {
    /// Takes a response: a whole body is read at once, a stream is read until nothing more is
    /// ready.
    fn open(label: &'static str, response: HttpResponse) -> Self {
        let content_type = response.header("content-type").map(Into::into);
        let mut section = Self {
            label,
            status: response.status,
            content_type,
            bytes: Vec::new(),
            body: None,
            ended: false,
        };
        match response.body {
            Body::Full(bytes) => {
                section.bytes = bytes;
                section.ended = true;
            }
            Body::Events(body) => {
                section.body = Some(body);
                section.read();
            }
        }
        section
    }

    /// Reads what the stream has ready.
    fn read(&mut self) {
        if let Some(body) = self.body.as_mut() {
            if drain(body, |chunk| self.bytes.extend_from_slice(chunk)) {
                self.ended = true;
                self.body = None;
            }
        }
    }

    /// The client goes away.
    fn close(&mut self) {
        self.body = None;
    }

    fn write(self, out: &mut Vec<u8>) {
        let content_type = self.content_type.as_deref().unwrap_or("-");
        let header = alloc::format!("== {}: {} {}\n", self.label, self.status, content_type);
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(&self.bytes);
        let end = if self.ended {
            "== end of stream\n"
        } else {
            "== client left\n"
        };
        out.extend_from_slice(end.as_bytes());
    }
}

/// Hands every chunk `body` has ready to `sink`, as a server writes them to its socket; `true`
/// once the stream has ended.
///
/// "Ready" is until the first `Pending`. A body may also answer `Pending` to let other tasks
/// run (after 64 KiB in a row, or once a subscription spent its budget of 128 events): far more
/// than any stream here sends between two reads.
fn drain(body: &mut SseBody, mut sink: impl FnMut(&[u8])) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        match Pin::new(&mut *body).poll_next(&mut cx) {
            Poll::Ready(Some(chunk)) => sink(&chunk),
            Poll::Ready(None) => return true,
            Poll::Pending => return false,
        }
    }
}

/// How many times [`block_on`] polls before it gives up: a future here may answer `Pending`
/// once or twice to yield (and wakes itself to be polled again), never more.
const MAX_POLLS: usize = 16;

/// Runs a future that waits on nothing to its end, polling it with a no-op waker.
///
/// Hand-written rather than taken from a crate: `futures`' and `pollster`'s `block_on` park a
/// thread, so need std, and a no_std executor (embassy's) brings a runtime of its own, with its
/// timers and interrupts. Nothing here ever waits (the publisher is in memory, no timer is
/// given), so polling in a loop is all it takes. A future still pending after 16 polls waits
/// for something that will never come here: a bug in the scenario, and a panic (on the board,
/// an exit with failure).
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..MAX_POLLS {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
    panic!("a future of the scenario waited on something: nothing here should ever wait")
}

/// Bytes in use and their high-water mark, kept by the binary's counting global allocator
/// (the board's over `embedded-alloc`, the host's over the system's): it calls
/// [`grew`](Self::grew) and [`shrank`](Self::shrank), and [`footprint`] resets and reads the
/// mark around each step. Bytes are those asked for, not the allocator's own overhead.
#[derive(Debug, Default)]
pub struct HeapMeter {
    in_use: AtomicUsize,
    peak: AtomicUsize,
}

impl HeapMeter {
    /// Nothing counted yet.
    pub const fn new() -> Self {
        Self {
            in_use: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        }
    }

    /// `bytes` were allocated.
    pub fn grew(&self, bytes: usize) {
        let now = self.in_use.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.peak.fetch_max(now, Ordering::Relaxed);
    }

    /// `bytes` were freed.
    pub fn shrank(&self, bytes: usize) {
        self.in_use.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// Bytes allocated now.
    pub fn in_use(&self) -> usize {
        self.in_use.load(Ordering::Relaxed)
    }

    /// The most bytes allocated at once since the last [`reset_peak`](Self::reset_peak).
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    /// Starts a new high-water mark from what is allocated now.
    pub fn reset_peak(&self) {
        self.peak.store(self.in_use(), Ordering::Relaxed);
    }
}

/// One heap figure: what was measured and how many bytes it took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Figure {
    /// A name without spaces, e.g. `subscribers_10_peak`.
    pub name: &'static str,
    /// Bytes.
    pub bytes: usize,
}

impl fmt::Display for Figure {
    /// `name bytes`: one line of the footprint binaries' output, without the newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.name, self.bytes)
    }
}

/// Measures the heap a [`MemoryPublisher`] topic costs, each figure taken from a fresh
/// publisher and measured from what was in use before it (every step frees all it took):
///
/// - `subscribers_{1,10,100}_peak`: the high-water mark while a topic has that many live
///   subscriptions (`subscribe_now`, each polled once to `Pending`, so parked with its waker),
///   publisher included; `per_subscriber` is the step from 10 to 100, divided by 90.
/// - `orpc_streams_{1,10}_peak`: the same with whole oRPC streams, as a server holds one per
///   client (the app, the handler, its subscription, the SSE body), each opened with
///   `orpc::handle` and read until pending; `per_orpc_stream` is the step from 1 to 10, by 9.
/// - `retained_{1,100}_events`: bytes in use once that many readings were published with no
///   one subscribed (retention 100); `per_retained_event` is the step, by 99.
/// - `retained_100_sent_events`: the same 100 once an oRPC stream has sent them (and closed):
///   each keeps the JSON it was sent as, made once for all its subscribers.
///
/// `meter` reads the caller's allocator. The figures are collected in a vector reserved before
/// the first measurement, so collecting them never shows in them.
pub fn footprint(meter: &HeapMeter) -> Vec<Figure> {
    let mut figures = Vec::with_capacity(16);
    let mut figure = |name, bytes| figures.push(Figure { name, bytes });

    let subscribers = [1, 10, 100].map(|n| measure_peak(meter, || subscribers(n)));
    figure("subscribers_1_peak", subscribers[0]);
    figure("subscribers_10_peak", subscribers[1]);
    figure("subscribers_100_peak", subscribers[2]);
    figure(
        "per_subscriber",
        subscribers[2].saturating_sub(subscribers[1]) / 90,
    );

    let streams = [1, 10].map(|n| measure_peak(meter, || orpc_streams(n)));
    figure("orpc_streams_1_peak", streams[0]);
    figure("orpc_streams_10_peak", streams[1]);
    figure("per_orpc_stream", streams[1].saturating_sub(streams[0]) / 9);

    let retained = [1, 100].map(|n| measure_in_use(meter, || retained_events(n, false)));
    figure("retained_1_events", retained[0]);
    figure("retained_100_events", retained[1]);
    figure(
        "per_retained_event",
        retained[1].saturating_sub(retained[0]) / 99,
    );
    let sent = measure_in_use(meter, || retained_events(100, true));
    figure("retained_100_sent_events", sent);
    figures
}

/// The high-water mark of the heap, above what was in use before, while `step` runs and
/// until what it returns is dropped.
fn measure_peak<T>(meter: &HeapMeter, step: impl FnOnce() -> T) -> usize {
    let before = meter.in_use();
    meter.reset_peak();
    drop(step());
    meter.peak().saturating_sub(before)
}

/// The heap in use, above what was in use before, once `step` has run and while what it
/// returns is alive.
fn measure_in_use<T>(meter: &HeapMeter, step: impl FnOnce() -> T) -> usize {
    let before = meter.in_use();
    let held = step();
    let bytes = meter.in_use().saturating_sub(before);
    drop(held);
    bytes
}

/// A publisher with `n` subscriptions to [`TOPIC`], each polled once to `Pending`.
fn subscribers(n: usize) -> (MemoryPublisher<Reading>, Vec<Subscription<Reading>>) {
    let publisher = MemoryPublisher::new();
    let mut subscriptions = Vec::with_capacity(n);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..n {
        let options = SubscribeOptions::new();
        // A memory subscribe fails only on a malformed last event id, and there is none.
        let Ok(mut subscription) = publisher.subscribe_now(TOPIC, options) else {
            unreachable!("a subscribe without a last event id never fails")
        };
        let polled = Pin::new(&mut subscription).poll_next(&mut cx);
        debug_assert!(polled.is_pending(), "nothing was published yet");
        subscriptions.push(subscription);
    }
    (publisher, subscriptions)
}

/// `n` oRPC streams of `readings.live` open on one app, each read until pending.
fn orpc_streams(n: usize) -> (MemoryPublisher<Reading>, App<()>, Vec<SseBody>) {
    let publisher = MemoryPublisher::new();
    let app = App::from(router(publisher.clone()));
    let mut bodies = Vec::with_capacity(n);
    for _ in 0..n {
        if let Body::Events(mut body) = orpc_call(&app, None).body {
            drain(&mut body, |_| {});
            bodies.push(body);
        }
    }
    (publisher, app, bodies)
}

/// A publisher retaining `n` readings on [`TOPIC`] (published with no one subscribed); with
/// `sent`, a stream has sent them all, then left.
fn retained_events(n: u32, sent: bool) -> MemoryPublisher<Reading> {
    let publisher = MemoryPublisher::builder().retain_last(100).build();
    if !sent {
        for i in 1..=n {
            publisher.publish_now(TOPIC, reading(i));
        }
        return publisher;
    }
    let app = App::from(router(publisher.clone()));
    if let Body::Events(mut body) = orpc_call(&app, None).body {
        for i in 1..=n {
            publisher.publish_now(TOPIC, reading(i));
        }
        // Sent and forgotten, a chunk at a time: only the events' JSON stays.
        drain(&mut body, |_| {});
    }
    publisher
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use alloc::string::{String, ToString};

    /// The scenario's output, split into its sections: label line, then body.
    fn sections() -> Vec<(String, String)> {
        let mut out = Vec::new();
        run(&mut out);
        let text = String::from_utf8(out).expect("the scenario writes UTF-8");
        let mut sections: Vec<(String, String)> = Vec::new();
        for line in text.split_inclusive('\n') {
            match line.strip_prefix("== ") {
                Some(label) if !label.starts_with("end of") && !label.starts_with("client") => {
                    sections.push((label.trim_end().into(), String::new()));
                }
                _ => sections.last_mut().expect("a label first").1.push_str(line),
            }
        }
        sections
    }

    fn ids(body: &str) -> Vec<&str> {
        body.lines()
            .filter_map(|l| l.strip_prefix("id: "))
            .collect()
    }

    #[test]
    fn live_streams_get_what_is_published_after_they_open_then_the_client_leaves() {
        let sections = sections();
        let (label, body) = &sections[0];
        assert_eq!(label, "orpc live: 200 text/event-stream");
        assert_eq!(ids(body), ["4", "5"]);
        assert!(
            body.starts_with(": \n\n"),
            "oRPC opens with a comment: {body}"
        );
        assert!(body.contains("event: message\n"), "{body}");
        assert!(
            body.contains(r#"data: {"json":{"sensor":1,"millicelsius":21500}}"#),
            "reading 4 as oRPC's envelope: {body}"
        );
        assert!(body.ends_with("== client left\n"), "{body}");

        let (label, body) = &sections[1];
        assert_eq!(label, "trpc live: 200 text/event-stream");
        assert_eq!(ids(body), ["4", "5"]);
        assert!(body.starts_with("event: connected\n"), "{body}");
        assert!(
            body.contains("data: {\"sensor\":2,\"millicelsius\":21625}\nid: 5\n"),
            "reading 5 as tRPC sends it, data then id: {body}"
        );
    }

    #[test]
    fn resuming_after_an_id_yields_exactly_the_events_after_it_in_both_framings() {
        let sections = sections();
        assert_eq!(sections.len(), 4);
        for (label, body) in &sections[2..] {
            assert!(label.contains("resume after 2"), "{label}");
            assert_eq!(ids(body), ["3", "4", "5", "6"], "{label}: {body}");
            assert!(body.ends_with("== end of stream\n"), "{label}: {body}");
        }
        let orpc = &sections[2].1;
        assert!(
            orpc.contains("event: done\n"),
            "oRPC ends with done: {orpc}"
        );
        let trpc = &sections[3].1;
        assert!(
            trpc.contains("event: return\n"),
            "tRPC ends with return: {trpc}"
        );
    }

    #[test]
    fn the_scenario_writes_the_same_bytes_every_run() {
        let (mut first, mut second) = (Vec::new(), Vec::new());
        run(&mut first);
        run(&mut second);
        assert_eq!(first, second);
    }

    #[test]
    fn the_footprint_names_every_figure_once() {
        // A meter no allocator feeds reads zero: the footprint's arithmetic must hold up (no
        // step may underflow).
        let figures = footprint(&HeapMeter::new());
        let names: Vec<&str> = figures.iter().map(|f| f.name).collect();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len());
        assert!(names.iter().all(|n| !n.contains(' ')));
        assert_eq!(figures[0].to_string(), "subscribers_1_peak 0");
    }
}
