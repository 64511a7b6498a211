//! The chat's `/metrics` after a scripted session: a subscriber connects, a post reaches it, it
//! goes away and resumes with its last event id, a resume from an id never given out meets a
//! gap, and calls fail. The values read back from the Prometheus text are the ones the script
//! caused: the chat runs as a process of its own, so its recorder is the process's and nothing
//! else records into it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use outer_harness::loopback::{post, send, wait_until, RawResponse};

#[path = "support/chat_process.rs"]
mod chat_process;
use chat_process::ChatProcess;

/// The metrics now, as `GET /metrics` answers them.
fn scrape(chat: &ChatProcess) -> Metrics {
    let request = b"GET /metrics HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n";
    let mut response = send(chat.addr, request);
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; version=0.0.4")
    );
    let (text, _) = response.read_to_end();
    Metrics::parse(text)
}

/// Prometheus text, read into samples: each series' name and labels, and its value.
#[derive(Debug)]
struct Metrics(BTreeMap<(String, BTreeMap<String, String>), f64>);

impl Metrics {
    fn parse(text: &str) -> Self {
        let mut samples = BTreeMap::new();
        for line in text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let (series, value) = line.rsplit_once(' ').expect("a sample line");
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => (name, labels.trim_end_matches('}')),
                None => (series, ""),
            };
            // The labels here never hold a comma or an escaped quote.
            let labels = labels
                .split(',')
                .filter(|l| !l.is_empty())
                .map(|label| {
                    let (key, value) = label.split_once('=').expect("a label");
                    (key.to_owned(), value.trim_matches('"').to_owned())
                })
                .collect();
            samples.insert((name.to_owned(), labels), value.parse().expect("a value"));
        }
        Self(samples)
    }

    /// The value of the series `name` with exactly `labels`; 0 for one never recorded.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.0
            .get(&(name.to_owned(), labels))
            .copied()
            .unwrap_or(0.0)
    }

    fn calls(&self, procedure: &str, protocol: &str, code: &str) -> f64 {
        let labels = [
            ("procedure", procedure),
            ("protocol", protocol),
            ("code", code),
        ];
        self.get("outer_calls_total", &labels)
    }
}

const ORPC_SSE: [(&str, &str); 2] = [("protocol", "orpc"), ("transport", "sse")];

/// Opens an oRPC event stream at `path` (`/rpc/post/live`), resuming after `last_event_id`.
fn subscribe(
    chat: &ChatProcess,
    path: &str,
    body: &str,
    last_event_id: Option<&str>,
) -> RawResponse {
    let resume = last_event_id.map_or(String::new(), |id| format!("last-event-id: {id}\r\n"));
    let request = format!(
        "POST {path} HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n{resume}\
         content-length: {}\r\n\r\n{body}",
        body.len()
    );
    let response = send(chat.addr, request.as_bytes());
    assert_eq!(response.status, 200, "{path} opens a stream");
    response
}

/// The events a stream's text holds.
fn events(text: &str) -> usize {
    text.matches("event: message\n").count()
}

/// Waits until the scraped metrics satisfy `holds`.
fn wait_for(chat: &ChatProcess, what: &str, holds: impl Fn(&Metrics) -> bool) {
    wait_until(what, || holds(&scrape(chat)));
}

#[test]
fn metrics_count_a_scripted_session_connect_post_resume_gap_and_errors() {
    let chat = ChatProcess::start(&[]);
    let streams_open = |m: &Metrics| m.get("outer_streams_open", &[("transport", "sse")]);
    // The scrape's own connection is open while it is answered.
    let connections = |m: &Metrics| m.get("outer_connections_open", &[]);
    wait_for(&chat, "only the scrape's connection", |m| {
        connections(m) == 1.0
    });

    // Connect: a live subscriber.
    let mut live = subscribe(&chat, "/rpc/post/live", "", None);
    live.read_chunk().expect("the stream's opening");
    wait_for(&chat, "the subscriber counted", |m| {
        streams_open(m) == 1.0 && connections(m) == 2.0
    });

    // Post: it reaches the subscriber, and its latency is measured from the publish.
    assert_eq!(chat.create("hello")["id"], 1);
    live.read_until("hello");
    let mut received_events = events(&live.text);
    let mut received_bytes = live.text.len();
    assert_eq!(received_events, 1);

    // Disconnect: the stream and its connection close; the call ends as the client's doing.
    live.disconnect();
    wait_for(&chat, "the subscriber gone", |m| {
        streams_open(m) == 0.0 && connections(m) == 1.0
    });
    let metrics = scrape(&chat);
    assert_eq!(
        metrics.calls("post.live", "orpc", "CLIENT_CLOSED_REQUEST"),
        1.0
    );
    assert_eq!(
        metrics.get(
            "outer_publish_to_write_seconds_count",
            &[("protocol", "orpc")]
        ),
        1.0,
        "the one live post was woken by its publish (a process's first stream is one of the \
         sampled ones, outer_http::metrics::LATENCY_SAMPLE)"
    );

    // Resume: a post made while away is replayed after the last event id.
    chat.create("while away");
    let mut resumed = subscribe(&chat, "/rpc/post/live", "", Some("1"));
    resumed.read_until("while away");
    received_events += events(&resumed.text);
    received_bytes += resumed.text.len();
    assert_eq!(
        scrape(&chat).get("outer_resumes_total", &[("protocol", "orpc")]),
        1.0
    );
    resumed.disconnect();
    wait_for(&chat, "the resumed subscriber gone", |m| {
        streams_open(m) == 0.0
    });

    // Gap: an id this chat never gave out ends the stream with the gap (412, data.gap).
    let mut gap = subscribe(&chat, "/rpc/post/live", "", Some("999"));
    let (text, _) = gap.read_to_end();
    assert!(text.contains("PRECONDITION_FAILED"), "{text}");
    received_bytes += text.len();

    // A stream that ends by itself: its every byte was read, so they must match exactly.
    let before = scrape(&chat);
    let input = r#"{"json":{"from":1,"to":3,"delayMs":0}}"#;
    let mut counter = subscribe(&chat, "/rpc/counter", input, None);
    let (text, _) = counter.read_to_end();
    let (counter_events, counter_bytes) = (events(text), text.len());
    assert_eq!(counter_events, 3, "{text}");
    received_events += counter_events;
    received_bytes += counter_bytes;

    // Errors: an unknown procedure, and a post without a title.
    assert_eq!(post(chat.addr, "/rpc/nope", "").status, 404);
    let blank = post(chat.addr, "/trpc/post.create", r#"{"title":" "}"#);
    assert_eq!(blank.status, 400);
    drop(blank);

    let after = scrape(&chat);
    assert_eq!(
        after.get("outer_deliveries_total", &ORPC_SSE)
            - before.get("outer_deliveries_total", &ORPC_SSE),
        counter_events as f64
    );
    assert_eq!(
        after.get("outer_delivered_bytes_total", &ORPC_SSE)
            - before.get("outer_delivered_bytes_total", &ORPC_SSE),
        counter_bytes as f64,
        "the counter's bytes, as the client read them"
    );
    assert_eq!(
        after.get("outer_deliveries_total", &ORPC_SSE),
        received_events as f64,
        "every event the client received, and no other"
    );
    // Over the streams cut by the client the server may have written a keep-alive (after 5 s
    // of silence) that the client never read.
    let bytes = after.get("outer_delivered_bytes_total", &ORPC_SSE);
    assert!(bytes >= received_bytes as f64, "{bytes} < {received_bytes}");
    assert!(
        bytes < (received_bytes + 2 * 64) as f64,
        "{bytes} vs {received_bytes}"
    );

    assert_eq!(
        after.get("outer_resumes_total", &[("protocol", "orpc")]),
        2.0
    );
    assert_eq!(after.get("outer_gaps_total", &[("kind", "unknown")]), 1.0);
    assert_eq!(after.get("outer_gaps_total", &[("kind", "expired")]), 0.0);
    assert_eq!(
        after.calls("post.live", "orpc", "CLIENT_CLOSED_REQUEST"),
        2.0
    );
    assert_eq!(after.calls("post.live", "orpc", "PRECONDITION_FAILED"), 1.0);
    assert_eq!(after.calls("counter", "orpc", "OK"), 1.0);
    assert_eq!(after.calls("post.create", "trpc", "OK"), 2.0);
    assert_eq!(after.calls("post.create", "trpc", "BAD_REQUEST"), 1.0);
    assert_eq!(after.calls("<unknown>", "orpc", "NOT_FOUND"), 1.0);
    assert_eq!(streams_open(&after), 0.0);

    // oRPC 2 at /rpc2 is counted under its own protocol, apart from oRPC 1's.
    let mut counter = subscribe(&chat, "/rpc2/counter", input, None);
    let (text, _) = counter.read_to_end();
    assert!(
        text.ends_with("event: close\ndata: {\"json\":{\"done\":true}}\n\n"),
        "{text}"
    );
    let v2 = scrape(&chat);
    let orpc2_sse = [("protocol", "orpc2"), ("transport", "sse")];
    assert_eq!(v2.get("outer_deliveries_total", &orpc2_sse), 3.0);
    assert_eq!(v2.calls("counter", "orpc2", "OK"), 1.0);
    assert_eq!(v2.calls("counter", "orpc", "OK"), 1.0);
}

#[test]
fn metrics_count_a_websocket_subscription_its_events_and_its_end() {
    use outer_harness::protocol::Protocol;
    use outer_harness::websocket::{subscribe_message, WsClient};

    let chat = ChatProcess::start(&[]);
    let ws_open = |m: &Metrics| m.get("outer_streams_open", &[("transport", "websocket")]);
    let trpc_ws = [("protocol", "trpc"), ("transport", "websocket")];

    let mut socket = WsClient::connect(chat.addr, "/trpc");
    socket.send(&subscribe_message(Protocol::Trpc, "post.live", None, None));
    let started = socket.recv_text();
    assert!(started.contains("started"), "{started}");
    wait_for(&chat, "the subscription counted", |m| ws_open(m) == 1.0);

    chat.create("over the socket");
    let data = socket.recv_text();
    assert!(data.contains("over the socket"), "{data}");
    wait_for(&chat, "the event counted", |m| {
        m.get("outer_deliveries_total", &trpc_ws) == 1.0
    });
    let bytes = scrape(&chat).get("outer_delivered_bytes_total", &trpc_ws);
    assert_eq!(bytes, (started.len() + data.len()) as f64);

    // A subscribe to a path the router does not serve: refused, with no name made up.
    socket.send(
        &serde_json::json!({"id": 2, "method": "subscription", "params": {"path": "nope"}})
            .to_string(),
    );
    let refusal = socket.recv_text();
    assert!(refusal.contains("NOT_FOUND"), "{refusal}");

    socket.close();
    wait_for(&chat, "the subscription gone", |m| ws_open(m) == 0.0);
    let metrics = scrape(&chat);
    assert_eq!(
        metrics.calls("post.live", "trpc", "CLIENT_CLOSED_REQUEST"),
        1.0
    );
    assert_eq!(metrics.calls("<unknown>", "trpc", "NOT_FOUND"), 1.0);
}
