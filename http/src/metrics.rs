//! What Outer's servers record, through the [`metrics`](https://docs.rs/metrics) facade: every
//! metric, its type, its labels and what it counts. Not an exporter: install the recorder you
//! want (Prometheus, OpenTelemetry, StatsD) and these appear in it; with none installed,
//! recording is a no-op that costs an atomic load.
//!
//! ```
//! // Any recorder of the `metrics` ecosystem; the chat example installs Prometheus's
//! // (`metrics-exporter-prometheus`) and answers `GET /metrics` with its text.
//! assert_eq!(outer_http::metrics::CALLS_TOTAL, "outer_calls_total");
//! ```
//!
//! # The metrics
//!
//! | name | type | labels | what it counts |
//! |---|---|---|---|
//! | `outer_connections_open` | gauge | | connections open on Outer's own servers (`outer_tokio::serve`, `outer_smol::serve`, `outer_monoio::serve`); not under axum, whose server owns them |
//! | `outer_streams_open` | gauge | `transport` | event streams open now: SSE responses (`sse`) and WebSocket subscriptions (`websocket`), the streams [`ServerConfig::max_streams`](crate::ServerConfig::max_streams) bounds |
//! | `outer_deliveries_total` | counter | `protocol`, `transport` | events handed to clients' connections |
//! | `outer_delivered_bytes_total` | counter | `protocol`, `transport` | bytes of event streams handed to connections: the events with their framing, and each stream's opening, keep-alive and closing frames (over SSE the body's bytes, before chunked encoding; over WebSocket the text of each message) |
//! | `outer_resumes_total` | counter | `protocol` | calls that came with a last event id: subscriptions resuming |
//! | `outer_gaps_total` | counter | `kind` | streams that ended with a publisher's gap: `expired`, `unknown` or `lagged` (`outer_core::publisher::GapKind`). `kind="lagged"` counts the subscribers that fell so far behind that events were lost to them |
//! | `outer_publish_to_write_seconds` | histogram | `protocol` | over SSE, for each chunk that carries events on a sampled stream (one in [`LATENCY_SAMPLE`]: the first, then every sixteenth): from the wake that made its first event ready (for a publisher's subscription, the publish) to the chunk being handed to the connection |
//! | `outer_streams_behind` | gauge | `transport` | lagging subscribers: SSE streams whose last chunk filled up (64 KiB) with more events ready, so their client reads slower than the events come (`outer_core::protocol::SseBody::is_behind`); one that catches up leaves it. It is seen as the stream is written, so a client that has stopped reading altogether counts once its connection takes bytes again; those that fall so far behind that their publisher drops events end with `outer_gaps_total{kind="lagged"}` |
//! | `outer_calls_total` | counter | `procedure`, `protocol`, `code` | calls, once each, by how they ended (below) |
//!
//! Labels: `protocol` is `orpc` or `trpc`; `transport` is `sse` or `websocket`; `procedure` is
//! the dotted path (`post.live`) of a procedure the router serves, and `<unknown>` for any other
//! (a client cannot grow the label set); `code` is `OK` or the error's code (`NOT_FOUND`,
//! `BAD_REQUEST`, ...).
//!
//! # How a call is counted
//!
//! A query or mutation counts when it is answered: `OK`, or the error's code. A subscription
//! refused before its stream opens (unknown procedure, context, middleware, input, setup, the
//! stream limit) counts then, with the refusal's code. One whose stream opened counts when the
//! stream ends, by how it ended, as gRPC counts its streaming calls:
//!
//! - `OK`: it returned (its handler's return value went out);
//! - the error's code: it ended with an error, e.g. `PRECONDITION_FAILED` for a gap;
//! - `SERVICE_UNAVAILABLE`: the server cut it (shutdown, the stream's deadline, an abort);
//! - `CLIENT_CLOSED_REQUEST`: the client stopped it or went away first.
//!
//! So a long-lived subscription appears in `outer_calls_total` only once it ends; the ones open
//! now are `outer_streams_open`.
//!
//! # What it costs
//!
//! Every handle a stream uses (its counters, its gauge, its histogram) is made once when the
//! stream opens; a delivery then adds one counter increment (two over SSE, where a chunk may
//! carry several events and its bytes are counted once), and over SSE a clock read per chunk
//! that a publish woke. A unary call makes its counter's key (one registry look-up).
//!
//! # Where gaps and lag are seen
//!
//! At the stream, not in the publisher: a gap counts when it ends a client's stream (as
//! `PRECONDITION_FAILED` with `data.gap`), whatever the publisher (memory, Redis, yours). That
//! keeps `outer-core` free of any metrics dependency (it stays `no_std`), and counts what
//! clients actually lost: a gap the app fills from its own store (`backfilled`, as the chat's
//! archive does) loses nothing and is not counted.

use std::borrow::Cow;

use ::metrics::{counter, gauge, histogram, Counter, Gauge, Histogram};
use outer_core::protocol::StreamEnd;
use outer_core::{ErrorCode, RpcError};

use crate::shutdown::Shutdown;

/// Gauge: connections open on Outer's own servers.
pub const CONNECTIONS_OPEN: &str = "outer_connections_open";
/// Gauge `{transport}`: event streams open (SSE responses, WebSocket subscriptions).
pub const STREAMS_OPEN: &str = "outer_streams_open";
/// Counter `{protocol, transport}`: events handed to connections.
pub const DELIVERIES_TOTAL: &str = "outer_deliveries_total";
/// Counter `{protocol, transport}`: bytes of event streams handed to connections.
pub const DELIVERED_BYTES_TOTAL: &str = "outer_delivered_bytes_total";
/// Counter `{protocol}`: calls that came with a last event id.
pub const RESUMES_TOTAL: &str = "outer_resumes_total";
/// Counter `{kind}`: streams ended by a publisher's gap, by its kind.
pub const GAPS_TOTAL: &str = "outer_gaps_total";
/// Histogram `{protocol}`, seconds: from the publish that woke an SSE stream to its chunk being
/// handed to the connection.
pub const PUBLISH_TO_WRITE_SECONDS: &str = "outer_publish_to_write_seconds";

/// Gauge: event streams behind their events now, whose client reads slower than they come.
pub const STREAMS_BEHIND: &str = "outer_streams_behind";

/// One event stream in this many is timed for [`PUBLISH_TO_WRITE_SECONDS`]. Timing a stream
/// costs two clock reads and a histogram sample per chunk, about 6% of a delivery's
/// instructions (BENCHMARKS.md, "The metrics' cost per delivery"); a sample of the streams
/// gives the same distribution for a sixteenth of that.
pub const LATENCY_SAMPLE: u32 = 16;

/// Whether the stream opening now is one of the timed ones: the first, then every
/// [`LATENCY_SAMPLE`]th.
pub(crate) fn time_this_stream() -> bool {
    static OPENED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    OPENED.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % LATENCY_SAMPLE == 0
}
/// Counter `{procedure, protocol, code}`: calls, by how they ended.
pub const CALLS_TOTAL: &str = "outer_calls_total";

/// The `procedure` label of a path the router does not serve.
pub const UNKNOWN_PROCEDURE: &str = "<unknown>";

/// The `code` label of a call that succeeded.
pub const OK: &str = "OK";

/// How a stream reaches its client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transport {
    Sse,
    WebSocket,
}

impl Transport {
    fn label(self) -> &'static str {
        match self {
            Transport::Sse => "sse",
            Transport::WebSocket => "websocket",
        }
    }
}

/// The gauge of open connections, for the accept loop's count.
pub(crate) fn connections_open() -> Gauge {
    gauge!(CONNECTIONS_OPEN)
}

/// The gauge of open streams on `transport`.
pub(crate) fn streams_open(transport: Transport) -> Gauge {
    gauge!(STREAMS_OPEN, "transport" => transport.label())
}

/// An error code as a label: the known codes' names are static, so only an app's own codes
/// (which it writes, so they are few) cost an allocation.
fn code_label(error: &RpcError) -> Cow<'static, str> {
    match ErrorCode::lookup(error.code()) {
        Some(code) => Cow::Borrowed(code.name),
        None => Cow::Owned(error.code().to_owned()),
    }
}

/// Counts one call of `procedure` (`None`: a path the router does not serve) that ended with
/// `code`.
fn count_call(procedure: Option<&str>, protocol: &'static str, code: Cow<'static, str>) {
    let procedure = procedure.unwrap_or(UNKNOWN_PROCEDURE).to_owned();
    counter!(CALLS_TOTAL, "procedure" => procedure, "protocol" => protocol, "code" => code)
        .increment(1);
}

/// Counts a call answered at once: with a value (`error` is `None`) or refused with `error`.
pub(crate) fn answered(
    procedure: Option<&str>,
    protocol: &'static str,
    resumed: bool,
    error: Option<&RpcError>,
) {
    if resumed {
        counter!(RESUMES_TOTAL, "protocol" => protocol).increment(1);
    }
    let code = error.map_or(Cow::Borrowed(OK), code_label);
    count_call(procedure, protocol, code);
}

/// The kind of the publisher's gap that `error` reports, if it is one: the `gap` of a
/// `PRECONDITION_FAILED`'s data, read from the error as every publisher writes it
/// (`outer_core::publisher::GapData`).
fn gap_kind(error: &RpcError) -> Option<&'static str> {
    if error.code() != ErrorCode::PRECONDITION_FAILED.name {
        return None;
    }
    // The label comes from this fixed list, never from the data itself.
    match error.data()?.get("gap")?.as_str()? {
        "expired" => Some("expired"),
        "unknown" => Some("unknown"),
        "lagged" => Some("lagged"),
        _ => None,
    }
}

/// One open stream's handles, made once when it opens, and the call it counts when it ends.
pub(crate) struct StreamMetrics {
    deliveries: Counter,
    bytes: Counter,
    latency: Histogram,
    behind: Gauge,
    /// Counted in `behind` now.
    is_behind: bool,
    procedure: String,
    protocol: &'static str,
    shutdown: Shutdown,
    ended: bool,
}

impl StreamMetrics {
    /// The handles of a stream of `procedure` that just opened (and, if it resumed, counts the
    /// resume).
    pub(crate) fn open(
        procedure: &str,
        protocol: &'static str,
        transport: Transport,
        resumed: bool,
        shutdown: &Shutdown,
    ) -> Self {
        if resumed {
            counter!(RESUMES_TOTAL, "protocol" => protocol).increment(1);
        }
        let labels = [("protocol", protocol), ("transport", transport.label())];
        Self {
            deliveries: counter!(DELIVERIES_TOTAL, &labels),
            bytes: counter!(DELIVERED_BYTES_TOTAL, &labels),
            latency: histogram!(PUBLISH_TO_WRITE_SECONDS, "protocol" => protocol),
            behind: gauge!(STREAMS_BEHIND, "transport" => transport.label()),
            is_behind: false,
            procedure: procedure.to_owned(),
            protocol,
            shutdown: shutdown.clone(),
            ended: false,
        }
    }

    /// `events` events went out.
    pub(crate) fn delivered(&self, events: u64) {
        self.deliveries.increment(events);
    }

    /// `bytes` of the stream went out.
    pub(crate) fn wrote(&self, bytes: usize) {
        self.bytes.increment(bytes as u64);
    }

    /// A chunk went out `latency` after the publish that made its events ready.
    pub(crate) fn waited(&self, latency: std::time::Duration) {
        self.latency.record(latency.as_secs_f64());
    }

    /// Whether the stream is behind its events now.
    pub(crate) fn behind(&mut self, behind: bool) {
        if behind != self.is_behind {
            self.is_behind = behind;
            if behind {
                self.behind.increment(1.0);
            } else {
                self.behind.decrement(1.0);
            }
        }
    }

    /// The stream ended as `end` says; `None`: it was dropped before its end.
    pub(crate) fn ended(&mut self, end: Option<&StreamEnd>) {
        if let Some(StreamEnd::Failed(error)) = end {
            return self.failed(error);
        }
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        let code = match end {
            Some(StreamEnd::Returned) => Cow::Borrowed(OK),
            Some(StreamEnd::Failed(_)) => return,
            Some(StreamEnd::Interrupted) => Cow::Borrowed(ErrorCode::SERVICE_UNAVAILABLE.name),
            // Dropped open: the server cut it if it is shutting down (past the grace period),
            // else the client stopped it or went away.
            None if self.shutdown.is_triggered() => {
                Cow::Borrowed(ErrorCode::SERVICE_UNAVAILABLE.name)
            }
            None => Cow::Borrowed(ErrorCode::CLIENT_CLOSED_REQUEST.name),
        };
        count_call(Some(&self.procedure), self.protocol, code);
    }

    /// The stream ended with `error`.
    pub(crate) fn failed(&mut self, error: &RpcError) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        if let Some(kind) = gap_kind(error) {
            counter!(GAPS_TOTAL, "kind" => kind).increment(1);
        }
        count_call(Some(&self.procedure), self.protocol, code_label(error));
    }

    /// The server cut the stream (an abort): counted as `SERVICE_UNAVAILABLE`.
    pub(crate) fn cut(&mut self) {
        self.ended(Some(&StreamEnd::Interrupted));
    }

    /// A counter of the stream's bytes, for a writer that makes its text elsewhere.
    pub(crate) fn bytes_counter(&self) -> Counter {
        self.bytes.clone()
    }
}

impl Drop for StreamMetrics {
    fn drop(&mut self) {
        self.behind(false);
        self.ended(None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_precondition_failed_with_a_known_gap_is_a_gap() {
        // What `RpcError::from(Gap)` makes, as every publisher reports a gap.
        let gap = RpcError::new(ErrorCode::PRECONDITION_FAILED, "cannot resume").with_data(
            serde_json::json!({"gap": "unknown", "lastEventId": "9", "nextEventId": null, "missed": null}),
        );
        assert_eq!(gap_kind(&gap), Some("unknown"));
        let made_up = RpcError::new(ErrorCode::PRECONDITION_FAILED, "x")
            .with_data(serde_json::json!({"gap": "anything a handler wrote"}));
        assert_eq!(gap_kind(&made_up), None);
        let other = RpcError::new(ErrorCode::BAD_REQUEST, "x")
            .with_data(serde_json::json!({"gap": "expired"}));
        assert_eq!(gap_kind(&other), None);
    }

    #[test]
    fn known_codes_are_static_labels_and_an_apps_own_code_is_kept() {
        let known = RpcError::new(ErrorCode::NOT_FOUND, "x");
        assert!(matches!(code_label(&known), Cow::Borrowed("NOT_FOUND")));
        let own = RpcError::new(
            ErrorCode {
                name: "OUT_OF_STOCK",
                status: 409,
                jsonrpc: -32009,
            },
            "x",
        );
        assert_eq!(code_label(&own), "OUT_OF_STOCK");
    }

    #[test]
    fn a_stream_counts_as_behind_until_it_catches_up_or_goes() {
        use metrics_util::debugging::{DebugValue, DebuggingRecorder};
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        // A snapshot takes what moved since the last one: the gauge is their sum.
        let total = std::cell::Cell::new(0.0);
        let behind = || {
            let moved = snapshotter
                .snapshot()
                .into_vec()
                .into_iter()
                .find(|(key, ..)| key.key().name() == STREAMS_BEHIND)
                .map(|(.., value)| match value {
                    DebugValue::Gauge(value) => value.into_inner(),
                    other => panic!("{other:?}"),
                });
            total.set(total.get() + moved.unwrap_or(0.0));
            Some(total.get())
        };
        let shutdown = Shutdown::new();
        let (mut first, mut second) = ::metrics::with_local_recorder(&recorder, || {
            let open =
                || StreamMetrics::open("post.live", "orpc", Transport::Sse, false, &shutdown);
            (open(), open())
        });
        first.behind(true);
        first.behind(true);
        second.behind(true);
        assert_eq!(
            behind(),
            Some(2.0),
            "each stream once, however often it is told"
        );
        first.behind(false);
        assert_eq!(behind(), Some(1.0), "caught up");
        drop(second);
        assert_eq!(
            behind(),
            Some(0.0),
            "a stream that goes while behind leaves the count"
        );
        drop(first);
        assert_eq!(behind(), Some(0.0));
    }
}
