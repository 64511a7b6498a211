//! One oRPC subscription as a client follows it across its connections, without I/O.
//!
//! The driver (an HTTP client) opens connections and moves bytes; [`Subscription`] turns the
//! bytes into typed events, keeps the id to resume after, watches for inactivity and decides
//! what ends a connection: reconnect after a delay, finish with the return value, or fail with
//! a typed error. It never reads a clock or a random source: `now` and a seed come in. It reads
//! oRPC 1's streams, or oRPC 2's ([`Subscription::with_version`]).

use alloc::format;
use alloc::string::String;
use core::fmt;
use core::marker::PhantomData;
use core::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{Decision, Ended, Resumer, RetryPolicy};
use crate::error::{ErrorCode, RpcError};
use crate::event::{Event, EventId};
use crate::protocol::orpc::{self, ClientFrame, OrpcVersion};
use crate::sse::{Limits, SseDecoder};

/// What to do with a response's body, once its head arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Head {
    /// An event stream: feed its bytes to [`Subscription::on_bytes`].
    Events,
    /// Anything else: read the body (within a limit of yours) and hand it to
    /// [`Subscription::on_refused`].
    Refused,
}

/// What the driver does next.
#[derive(Clone, Debug, PartialEq)]
pub enum Step<T> {
    /// An event for the caller, with its id and retry.
    Event(Event<T>),
    /// This connection is over: close it, wait this long, then [`connect`](Subscription::connect)
    /// again.
    Reconnect(Duration),
    /// The procedure returned this value (`null` for nothing), in oRPC 1's `done` or oRPC 2's
    /// `close`: the subscription is over.
    Done(Value),
    /// The subscription is over with this error: a 4xx from the server, input the server should
    /// never send, or too many failed attempts in a row.
    Failed(RpcError),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Between connections: before the first, or after a [`Step::Reconnect`].
    Idle,
    /// A request is out; its answer has not been read.
    Connecting,
    /// Reading an event stream.
    Streaming,
    /// Done or failed: nothing more happens.
    Finished,
}

/// The client side of one oRPC subscription, across as many connections as it takes.
///
/// A driver loops: [`connect`](Self::connect) (send the request with the `last-event-id` it
/// returns), [`on_response`](Self::on_response) with the answer's head, then
/// [`on_bytes`](Self::on_bytes) with the body as it arrives, [`on_closed`](Self::on_closed) if
/// the connection ends, and [`handle_timeout`](Self::handle_timeout) once
/// [`poll_timeout`](Self::poll_timeout)'s instant has passed. Each returns [`Step`]s. `now` is
/// any monotonic clock's reading, as a duration since a start of the caller's choosing.
///
/// Bad input from the server (a line or event over the [`Limits`], data that is not oRPC's
/// JSON or not a `T`) fails the subscription with a `BAD_GATEWAY` error that says what was
/// wrong: reconnecting would only read the same bytes again.
///
/// ```
/// use core::time::Duration;
/// use outer_core::client::{Head, RetryPolicy, Step, Subscription};
/// use outer_core::sse::Limits;
///
/// let policy = RetryPolicy { jitter: false, ..RetryPolicy::default() };
/// let mut sub = Subscription::<u32>::new(policy, Limits::default(), 7);
/// assert_eq!(sub.connect(), None); // the first request resumes after nothing
/// let now = Duration::ZERO;
/// assert_eq!(sub.on_response(200, Some("text/event-stream"), now), Head::Events);
///
/// let mut bytes: &[u8] = b": \n\nevent: message\nid: 1\ndata: {\"json\":5}\n\n";
/// let Some(Step::Event(event)) = sub.on_bytes(&mut bytes, now) else { panic!() };
/// assert_eq!((*event.data(), event.id().unwrap().as_str()), (5, "1"));
///
/// // The connection drops: reconnect after the backoff, resuming after id 1.
/// assert_eq!(sub.on_closed(), Some(Step::Reconnect(Duration::from_secs(1))));
/// assert_eq!(sub.connect().map(|id| id.as_str()), Some("1"));
/// ```
pub struct Subscription<T> {
    resumer: Resumer,
    decoder: SseDecoder,
    random: SplitMix64,
    phase: Phase,
    /// When the stream counts as inactive, while streaming with an inactivity timeout.
    inactive_at: Option<Duration>,
    connections: u32,
    version: OrpcVersion,
    _data: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for Subscription<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("phase", &self.phase)
            .field("version", &self.version)
            .field("last_event_id", &self.resumer.last_event_id())
            .field("connections", &self.connections)
            .field("inactive_at", &self.inactive_at)
            .finish()
    }
}

impl<T: DeserializeOwned> Subscription<T> {
    /// A subscription that has not connected yet, reading oRPC 1's streams. `limits` bound
    /// what one SSE line and one event may hold; `seed` seeds the jitter of the retry delays
    /// (the same seed, the same delays), so pass a random one outside tests.
    pub fn new(policy: RetryPolicy, limits: Limits, seed: u64) -> Self {
        Self {
            resumer: Resumer::new(policy),
            decoder: SseDecoder::with_limits(limits),
            random: SplitMix64(seed),
            phase: Phase::Idle,
            inactive_at: None,
            connections: 0,
            version: OrpcVersion::V1,
            _data: PhantomData,
        }
    }

    /// Reads the streams of this version of oRPC (set it before connecting). Version 2 ends a
    /// stream with `close` (version 1 with `done`, which version 2 skips, as `@orpc/client` 2
    /// does), writes `undefined` as an event without data (`null` here), names its meta types,
    /// and sends errors without a `status` (their code's own stands in).
    ///
    /// ```
    /// use core::time::Duration;
    /// use outer_core::client::{Head, RetryPolicy, Step, Subscription};
    /// use outer_core::protocol::orpc::OrpcVersion;
    /// use outer_core::sse::Limits;
    ///
    /// let mut sub = Subscription::<u32>::new(RetryPolicy::default(), Limits::default(), 7)
    ///     .with_version(OrpcVersion::V2);
    /// sub.connect();
    /// assert_eq!(sub.on_response(200, Some("text/event-stream"), Duration::ZERO), Head::Events);
    /// // A procedure that returned `undefined`: `close` with no data.
    /// let mut bytes: &[u8] = b": \n\nevent: close\n\n";
    /// assert_eq!(sub.on_bytes(&mut bytes, Duration::ZERO), Some(Step::Done(serde_json::Value::Null)));
    /// ```
    pub fn with_version(mut self, version: OrpcVersion) -> Self {
        self.version = version;
        self.decoder =
            core::mem::take(&mut self.decoder).dispatch_dataless(version == OrpcVersion::V2);
        self
    }

    /// The version of oRPC whose streams it reads.
    pub fn version(&self) -> OrpcVersion {
        self.version
    }

    /// Starts from an id the caller already has, e.g. kept across a restart: the first request
    /// resumes after it.
    ///
    /// ```
    /// use outer_core::client::{RetryPolicy, Subscription};
    /// use outer_core::{sse::Limits, EventId};
    /// let mut sub = Subscription::<u32>::new(RetryPolicy::default(), Limits::default(), 0)
    ///     .resuming_after(Some(EventId::from(41u64)));
    /// assert_eq!(sub.connect().map(|id| id.as_str()), Some("41"));
    /// ```
    pub fn resuming_after(mut self, last_event_id: Option<EventId>) -> Self {
        self.resumer = self.resumer.resuming_after(last_event_id);
        self
    }

    /// Starts a connection: returns the id to send in `last-event-id`, if any. Call it first,
    /// and after each [`Step::Reconnect`] once its delay has passed.
    pub fn connect(&mut self) -> Option<&EventId> {
        if self.phase != Phase::Finished {
            self.phase = Phase::Connecting;
            self.connections = self.connections.saturating_add(1);
            self.decoder.finish();
            self.inactive_at = None;
        }
        self.resumer.last_event_id()
    }

    /// The answer's head arrived: a 2xx `text/event-stream` is read as events (and the
    /// inactivity clock starts at `now`); anything else is [`Head::Refused`].
    pub fn on_response(&mut self, status: u16, content_type: Option<&str>, now: Duration) -> Head {
        let is_stream = content_type.is_some_and(|ct| {
            ct.split(';')
                .next()
                .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("text/event-stream"))
        });
        if self.phase == Phase::Connecting && (200..300).contains(&status) && is_stream {
            self.phase = Phase::Streaming;
            self.touch(now);
            Head::Events
        } else {
            Head::Refused
        }
    }

    /// The body of an answer that was not an event stream: a 4xx fails with the error it
    /// carries (code, status, message and data as sent), a 5xx reconnects, and a 2xx (a
    /// unary procedure's value) fails, since the procedure is no subscription.
    pub fn on_refused(&mut self, status: u16, body: &[u8]) -> Step<T> {
        if self.phase != Phase::Connecting {
            return self.already_over();
        }
        if (200..400).contains(&status) {
            return self.fail(RpcError::new(
                ErrorCode::BAD_GATEWAY,
                format!(
                    "the server answered HTTP {status} without an event stream: \
                     is the procedure a subscription?"
                ),
            ));
        }
        self.end(Ended::Error(orpc::decode_error(status, body)))
    }

    /// Reads `input` up to the end of the next frame and returns what it means, advancing
    /// `input` past what it read; `None` once `input` is used up. Any bytes, keep-alive comments
    /// included, restart the inactivity clock. After a step other than [`Step::Event`], the
    /// rest of this connection's bytes are ignored.
    pub fn on_bytes(&mut self, input: &mut &[u8], now: Duration) -> Option<Step<T>> {
        if self.phase != Phase::Streaming {
            *input = &[];
            return None;
        }
        if !input.is_empty() {
            self.touch(now);
        }
        loop {
            let event = match self.decoder.next_event(input) {
                Ok(Some(event)) => event,
                Ok(None) => return None,
                Err(limit) => {
                    return Some(self.fail(bad_input(format!(
                        "the event stream broke a limit: {limit}"
                    ))));
                }
            };
            let frame = match self.version.decode_event(&event) {
                Ok(Some(frame)) => frame,
                // Not an oRPC event type: the rules say to ignore it.
                Ok(None) => continue,
                Err(error) => {
                    let reason = reason(&error);
                    return Some(self.fail(bad_input(format!(
                        "the server sent a `{}` event that is not oRPC's JSON: {reason}",
                        event.event
                    ))));
                }
            };
            return Some(match frame {
                ClientFrame::Message(message) => {
                    let (data, meta) = message.into_parts();
                    match serde_json::from_value::<T>(data) {
                        Ok(data) => {
                            self.resumer.on_event(meta.id(), meta.retry());
                            Step::Event(Event::with_meta(data, meta))
                        }
                        Err(err) => {
                            let id = meta.id().map(EventId::as_str).unwrap_or("none");
                            self.fail(bad_input(format!(
                                "event (id {id}) does not have the expected type: {err}"
                            )))
                        }
                    }
                }
                ClientFrame::Done(value) => {
                    self.finish();
                    Step::Done(value)
                }
                ClientFrame::Error(error) => self.end(Ended::Error(error)),
            });
        }
    }

    /// The connection ended (closed, reset, refused, or timed out before its answer) without
    /// an end (`done`, `close`) or an error frame: reconnect, or fail after too many attempts.
    /// `None` when this connection's end was already decided.
    pub fn on_closed(&mut self) -> Option<Step<T>> {
        matches!(self.phase, Phase::Connecting | Phase::Streaming).then(|| self.end(Ended::Dropped))
    }

    /// When the stream counts as inactive if nothing arrives before: call
    /// [`handle_timeout`](Self::handle_timeout) then. `None` when nothing is timed.
    pub fn poll_timeout(&self) -> Option<Duration> {
        match self.phase {
            Phase::Streaming => self.inactive_at,
            _ => None,
        }
    }

    /// Checks the inactivity deadline against `now`: past it, the connection is over (reconnect
    /// or fail); before it, `None`.
    pub fn handle_timeout(&mut self, now: Duration) -> Option<Step<T>> {
        let due = self.poll_timeout().is_some_and(|at| now >= at);
        due.then(|| self.end(Ended::Inactive))
    }

    /// The id the next connection resumes after.
    pub fn last_event_id(&self) -> Option<&EventId> {
        self.resumer.last_event_id()
    }

    /// How many connections were started, the first included.
    pub fn connections(&self) -> u32 {
        self.connections
    }

    /// True once done or failed.
    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Finished
    }

    fn touch(&mut self, now: Duration) {
        self.inactive_at = self
            .resumer
            .policy()
            .inactivity_timeout
            .map(|timeout| now.saturating_add(timeout));
    }

    fn end(&mut self, ended: Ended) -> Step<T> {
        self.decoder.finish();
        self.inactive_at = None;
        match self.resumer.on_end(ended, self.random.next()) {
            Decision::Reconnect { delay, .. } => {
                self.phase = Phase::Idle;
                Step::Reconnect(delay)
            }
            Decision::GiveUp(error) => self.fail(error),
        }
    }

    fn fail(&mut self, error: RpcError) -> Step<T> {
        self.finish();
        Step::Failed(error)
    }

    fn finish(&mut self) {
        self.phase = Phase::Finished;
        self.inactive_at = None;
        self.decoder.finish();
    }

    fn already_over(&self) -> Step<T> {
        Step::Failed(RpcError::new(
            ErrorCode::INTERNAL_SERVER_ERROR,
            "the client was driven out of order: this connection was already over",
        ))
    }
}

/// An error for input a server should never send.
fn bad_input(message: String) -> RpcError {
    RpcError::new(ErrorCode::BAD_GATEWAY, message)
}

/// The reason inside a decoding error: its `data.reason` when it has one, else its message.
fn reason(error: &RpcError) -> &str {
    error
        .data()
        .and_then(|data| data.get("reason"))
        .and_then(Value::as_str)
        .unwrap_or(error.message())
}

/// SplitMix64: eight lines for jitter instead of a random-number crate in a no_std core.
#[derive(Clone, Debug)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use serde::Deserialize;
    use serde_json::json;

    const SSE: &str = "text/event-stream";

    #[derive(Debug, PartialEq, Deserialize)]
    struct Tick {
        n: u64,
    }

    fn policy() -> RetryPolicy {
        RetryPolicy {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            jitter: false,
            max_attempts: Some(3),
            inactivity_timeout: Some(Duration::from_secs(10)),
        }
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn streaming(policy: RetryPolicy) -> Subscription<Tick> {
        let mut sub = Subscription::new(policy, Limits::default(), 1);
        sub.connect();
        assert_eq!(sub.on_response(200, Some(SSE), secs(0)), Head::Events);
        sub
    }

    /// Every step `bytes` produce, read in one go.
    fn feed(sub: &mut Subscription<Tick>, bytes: &str, now: Duration) -> Vec<Step<Tick>> {
        let mut input = bytes.as_bytes();
        let mut steps = Vec::new();
        while let Some(step) = sub.on_bytes(&mut input, now) {
            steps.push(step);
        }
        steps
    }

    fn ticks(steps: &[Step<Tick>]) -> Vec<u64> {
        steps
            .iter()
            .filter_map(|s| match s {
                Step::Event(e) => Some(e.data().n),
                _ => None,
            })
            .collect()
    }

    fn message(id: u64, n: u64) -> alloc::string::String {
        format!("event: message\nretry: 50\nid: {id}\ndata: {{\"json\":{{\"n\":{n}}}}}\n\n")
    }

    #[test]
    fn events_are_typed_and_a_drop_resumes_after_the_last_id_with_the_servers_retry() {
        let mut sub = streaming(policy());
        let steps = feed(
            &mut sub,
            &(String::from(": \n\n") + &message(1, 1) + &message(2, 2)),
            secs(0),
        );
        assert_eq!(ticks(&steps), [1, 2]);
        let Step::Event(event) = &steps[1] else {
            panic!()
        };
        assert_eq!(event.meta().retry(), Some(50));
        // A partial event is dropped with the connection, never half-delivered.
        assert!(feed(&mut sub, "event: message\nid: 3\ndata: {\"json\":", secs(0)).is_empty());
        assert_eq!(
            sub.on_closed(),
            Some(Step::Reconnect(Duration::from_millis(50)))
        );
        assert_eq!(sub.on_closed(), None, "decided once");
        assert_eq!(sub.connect().map(EventId::as_str), Some("2"));
        sub.on_response(200, Some(SSE), secs(1));
        assert_eq!(ticks(&feed(&mut sub, &message(3, 3), secs(1))), [3]);
        assert_eq!(sub.connections(), 2);
    }

    #[test]
    fn done_finishes_with_the_return_value() {
        let mut sub = streaming(policy());
        let steps = feed(
            &mut sub,
            "event: done\ndata: {\"json\":{\"done\":true}}\n\nevent: message\ndata: {\"json\":{\"n\":9}}\n\n",
            secs(0),
        );
        assert_eq!(steps, [Step::Done(json!({"done": true}))]);
        assert!(sub.is_finished());
        assert_eq!(sub.on_closed(), None);
        // oRPC writes an undefined return value as empty data.
        let mut sub = streaming(policy());
        assert_eq!(
            feed(&mut sub, "event: done\ndata: \n\n", secs(0)),
            [Step::Done(Value::Null)]
        );
    }

    #[test]
    fn an_error_event_4xx_fails_with_everything_intact_and_5xx_reconnects() {
        let mut sub = streaming(policy());
        let steps = feed(
            &mut sub,
            "event: error\ndata: {\"json\":{\"defined\":false,\"code\":\"BAD_REQUEST\",\"status\":400,\"message\":\"nope\",\"data\":{\"why\":\"x\"}}}\n\n",
            secs(0),
        );
        let [Step::Failed(error)] = &steps[..] else {
            panic!("{steps:?}")
        };
        assert_eq!(
            (error.code(), error.status(), error.message()),
            ("BAD_REQUEST", 400, "nope")
        );
        assert_eq!(error.data(), Some(&json!({"why": "x"})));

        let mut sub = streaming(policy());
        let steps = feed(
            &mut sub,
            "event: error\ndata: {\"json\":{\"code\":\"INTERNAL_SERVER_ERROR\",\"status\":500,\"message\":\"boom\"}}\n\n",
            secs(0),
        );
        assert_eq!(steps, [Step::Reconnect(Duration::from_millis(100))]);
        assert!(!sub.is_finished());
    }

    #[test]
    fn refusals_4xx_fail_5xx_reconnect_and_2xx_values_are_no_stream() {
        let mut sub = Subscription::<Tick>::new(policy(), Limits::default(), 1);
        sub.connect();
        assert_eq!(
            sub.on_response(503, Some("application/json"), secs(0)),
            Head::Refused
        );
        assert_eq!(
            sub.on_refused(503, b"busy"),
            Step::Reconnect(Duration::from_millis(100))
        );
        sub.connect();
        assert_eq!(
            sub.on_response(400, Some("application/json"), secs(0)),
            Head::Refused
        );
        let body = br#"{"json":{"defined":false,"code":"BAD_REQUEST","status":400,"message":"Input validation failed","data":{"issues":[]}}}"#;
        match sub.on_refused(400, body) {
            Step::Failed(error) => {
                assert_eq!(error.message(), "Input validation failed");
                assert_eq!(error.data(), Some(&json!({"issues": []})));
            }
            other => panic!("{other:?}"),
        }

        let mut sub = Subscription::<Tick>::new(policy(), Limits::default(), 1);
        sub.connect();
        assert_eq!(
            sub.on_response(200, Some("application/json"), secs(0)),
            Head::Refused
        );
        assert!(
            matches!(sub.on_refused(200, br#"{"json":1}"#), Step::Failed(e) if e.code() == "BAD_GATEWAY")
        );
    }

    #[test]
    fn bytes_of_any_kind_hold_off_inactivity_and_silence_reconnects() {
        let mut sub = streaming(policy());
        assert_eq!(sub.poll_timeout(), Some(secs(10)));
        assert_eq!(sub.handle_timeout(secs(9)), None);
        // A keep-alive comment is activity.
        assert!(feed(&mut sub, ": \n\n", secs(9)).is_empty());
        assert_eq!(sub.poll_timeout(), Some(secs(19)));
        assert_eq!(sub.handle_timeout(secs(10)), None);
        assert_eq!(
            sub.handle_timeout(secs(19)),
            Some(Step::Reconnect(Duration::from_millis(100)))
        );
        assert_eq!(
            sub.poll_timeout(),
            None,
            "nothing is timed between connections"
        );

        let mut none = streaming(RetryPolicy {
            inactivity_timeout: None,
            ..policy()
        });
        assert_eq!(none.poll_timeout(), None);
        assert_eq!(none.handle_timeout(secs(1_000_000)), None);
    }

    #[test]
    fn failures_in_a_row_give_up_after_max_attempts_and_an_event_starts_over() {
        let mut sub = Subscription::<Tick>::new(policy(), Limits::default(), 1);
        let mut delays = Vec::new();
        for attempt in 0.. {
            assert!(attempt < 10, "never gave up: {delays:?}");
            sub.connect();
            match sub.on_closed() {
                Some(Step::Reconnect(delay)) => delays.push(delay.as_millis()),
                Some(Step::Failed(error)) => {
                    assert_eq!(error.status(), 503);
                    break;
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(delays, [100, 200, 400]);
        assert_eq!(sub.connections(), 4);
        assert!(sub.is_finished());

        // Two failures, then a connection that delivers an event: the count starts over, so
        // three more failures in a row are retried (from the initial delay) before giving up.
        let mut sub = Subscription::<Tick>::new(policy(), Limits::default(), 1);
        for _ in 0..2 {
            sub.connect();
            assert!(matches!(sub.on_closed(), Some(Step::Reconnect(_))));
        }
        sub.connect();
        sub.on_response(200, Some(SSE), secs(0));
        assert_eq!(
            ticks(&feed(&mut sub, "data: {\"json\":{\"n\":1}}\n\n", secs(0))),
            [1]
        );
        let mut delays = Vec::new();
        for attempt in 0.. {
            assert!(attempt < 10, "never gave up: {delays:?}");
            match sub.on_closed() {
                Some(Step::Reconnect(delay)) => delays.push(delay.as_millis()),
                Some(Step::Failed(_)) => break,
                other => panic!("{other:?}"),
            }
            sub.connect();
        }
        assert_eq!(delays, [100, 200, 400]);
    }

    #[test]
    fn jitter_comes_from_the_seed_alone() {
        let jittered = RetryPolicy {
            jitter: true,
            max_attempts: None,
            ..policy()
        };
        let delays = |seed| {
            let mut sub = Subscription::<Tick>::new(jittered.clone(), Limits::default(), seed);
            (0..8)
                .map(|_| {
                    sub.connect();
                    match sub.on_closed() {
                        Some(Step::Reconnect(d)) => d,
                        other => panic!("{other:?}"),
                    }
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(delays(5), delays(5));
        assert_ne!(delays(5), delays(6));
        let base = [100, 200, 400, 800, 1000, 1000, 1000, 1000];
        for (delay, base) in delays(5).into_iter().zip(base) {
            let base = Duration::from_millis(base);
            assert!(delay >= base / 2 && delay <= base, "{delay:?} for {base:?}");
        }
    }

    #[test]
    fn bad_input_fails_with_a_clear_error_and_no_reconnect() {
        let cases = [
            ("event: message\ndata: {not json\n\n", "not oRPC's JSON"),
            (
                "event: message\ndata: {\"json\":{\"n\":\"x\"}}\n\n",
                "expected type",
            ),
            ("event: error\ndata: [1\n\n", "not oRPC's JSON"),
        ];
        for (bytes, why) in cases {
            let mut sub = streaming(policy());
            match &feed(&mut sub, bytes, secs(0))[..] {
                [Step::Failed(error)] => {
                    assert_eq!(error.code(), "BAD_GATEWAY");
                    assert!(error.message().contains(why), "{}", error.message());
                }
                other => panic!("{bytes}: {other:?}"),
            }
            assert!(sub.is_finished());
        }

        let small = Limits {
            max_line: 64,
            max_event: 128,
        };
        for bytes in [
            format!("data: {}\n\n", "x".repeat(100)),
            format!("{}\n\n", "data: xxxxxxxxxx\n".repeat(20)),
        ] {
            let mut sub = Subscription::<Tick>::new(policy(), small, 1);
            sub.connect();
            sub.on_response(200, Some("text/event-stream; charset=utf-8"), secs(0));
            let mut input = bytes.as_bytes();
            match sub.on_bytes(&mut input, secs(0)) {
                Some(Step::Failed(error)) => assert!(error.message().contains("limit"), "{error}"),
                other => panic!("{other:?}"),
            }
        }
    }

    fn streaming_v2<U: DeserializeOwned>() -> Subscription<U> {
        let mut sub =
            Subscription::new(policy(), Limits::default(), 1).with_version(OrpcVersion::V2);
        assert_eq!(sub.version(), OrpcVersion::V2);
        sub.connect();
        assert_eq!(sub.on_response(200, Some(SSE), secs(0)), Head::Events);
        sub
    }

    fn feed_any<U: DeserializeOwned>(sub: &mut Subscription<U>, bytes: &str) -> Vec<Step<U>> {
        let mut input = bytes.as_bytes();
        let mut steps = Vec::new();
        while let Some(step) = sub.on_bytes(&mut input, secs(0)) {
            steps.push(step);
        }
        steps
    }

    /// The bytes of `tests/fixtures/reference/orpc-v2/counter.http` and `finite.http`.
    #[test]
    fn v2_close_finishes_with_its_value_or_null_without_data() {
        let mut sub = streaming_v2::<Tick>();
        let steps = feed_any(
            &mut sub,
            ": \n\nevent: message\nretry: 1000\nid: 1\ndata: {\"json\":{\"n\":1}}\n\n\
             event: close\ndata: {\"json\":{\"done\":true}}\n\n",
        );
        assert_eq!(ticks(&steps), [1]);
        assert_eq!(steps[1], Step::Done(json!({"done": true})));
        assert!(sub.is_finished());

        // `finite` returned `undefined`: a close event with no data line at all.
        let mut sub = streaming_v2::<Tick>();
        let steps = feed_any(
            &mut sub,
            ": \n\nevent: message\ndata: {\"json\":{\"n\":1}}\n\nevent: close\n\n",
        );
        assert_eq!(ticks(&steps), [1]);
        assert_eq!(steps[1], Step::Done(Value::Null));
        assert_eq!(sub.on_closed(), None, "the stream is over, not dropped");

        // Version 1 does not know `close`, and version 2 not `done`: skipped, so the clean end
        // that follows is a drop (reconnect), never a return value from the wrong version.
        let mut v1 = streaming(policy());
        assert!(feed(&mut v1, "event: close\ndata: {\"json\":1}\n\n", secs(0)).is_empty());
        let mut v2 = streaming_v2::<Tick>();
        assert!(feed_any(&mut v2, "event: done\ndata: {\"json\":1}\n\n").is_empty());
        for closed in [v1.on_closed(), v2.on_closed()] {
            assert_eq!(closed, Some(Step::Reconnect(Duration::from_millis(100))));
        }
    }

    #[test]
    fn v2_undefined_events_are_null_and_meta_types_are_names() {
        let mut sub = streaming_v2::<Option<Tick>>();
        let steps = feed_any(
            &mut sub,
            "event: message\nid: 4\n\nevent: message\nid: 5\ndata: {\"json\":{\"n\":\"5\"},\"meta\":[[\"bigint\",\"n\"]]}\n\n",
        );
        let [Step::Event(undefined), Step::Event(five)] = &steps[..] else {
            panic!("{steps:?}")
        };
        assert_eq!(
            (undefined.data(), undefined.id().map(EventId::as_str)),
            (&None, Some("4"))
        );
        assert_eq!(five.data(), &Some(Tick { n: 5 }));
        assert_eq!(sub.last_event_id().map(EventId::as_str), Some("5"));
    }

    /// `orpc-v2/failing.http` and `failing5xx.http`: no `status` in the body, the code's own.
    #[test]
    fn v2_errors_without_status_take_their_codes_and_the_http_status() {
        let mut sub = streaming_v2::<Tick>();
        let steps = feed_any(
            &mut sub,
            "event: error\ndata: {\"json\":{\"defined\":false,\"inferable\":false,\"code\":\"BAD_REQUEST\",\"message\":\"nope\",\"data\":{\"why\":\"x\"}}}\n\n",
        );
        let [Step::Failed(error)] = &steps[..] else {
            panic!("{steps:?}")
        };
        assert_eq!(
            (error.code(), error.status(), error.message()),
            ("BAD_REQUEST", 400, "nope")
        );
        assert_eq!(error.data(), Some(&json!({"why": "x"})));

        let mut sub = streaming_v2::<Tick>();
        let steps = feed_any(
            &mut sub,
            "event: error\ndata: {\"json\":{\"defined\":false,\"inferable\":false,\"code\":\"INTERNAL_SERVER_ERROR\",\"message\":\"boom\"}}\n\n",
        );
        assert_eq!(steps, [Step::Reconnect(Duration::from_millis(100))]);

        // A refusal: the HTTP status stands in for the missing one.
        let mut sub =
            Subscription::<Tick>::new(policy(), Limits::default(), 1).with_version(OrpcVersion::V2);
        sub.connect();
        sub.on_response(409, Some("application/json"), secs(0));
        let body =
            br#"{"json":{"defined":true,"inferable":true,"code":"CONFLICT","message":"taken"}}"#;
        match sub.on_refused(409, body) {
            Step::Failed(error) => {
                assert_eq!((error.code(), error.status()), ("CONFLICT", 409));
                assert!(error.is_defined());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn events_of_other_types_are_ignored() {
        let mut sub = streaming(policy());
        let steps = feed(
            &mut sub,
            &(String::from("event: ping\ndata: x\n\n") + &message(1, 1)),
            secs(0),
        );
        assert_eq!(ticks(&steps), [1]);
    }
}
