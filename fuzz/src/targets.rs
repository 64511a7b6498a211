//! The bodies of the fuzz targets: each takes the fuzzer's bytes and checks properties of
//! outer-core on them, panicking when one fails. They are plain functions with no fuzzing
//! dependency, so libFuzzer (`fuzz_targets/*.rs`) and the stable corpus replay
//! (`core/tests/fuzz_corpora.rs`, which includes this very file) run the same code.
//!
//! Only outer-core, futures, serde and serde_json are used here: the replay test sees exactly
//! those crates.

use std::borrow::Cow;
use std::time::Duration;

use futures::executor::block_on;
use futures::StreamExt;
use outer_core::client::{parse_last_event_id, Decision, Ended, Resumer, RetryPolicy};
use outer_core::procedure::{Frame, Issue, Json};
use outer_core::protocol::orpc::{self, ClientFrame, OrpcOptions, OrpcVersion};
use outer_core::protocol::trpc::{self, TrpcOptions};
use outer_core::protocol::{orpc_ws, trpc_ws};
use outer_core::protocol::{Body, HttpResponse};
use outer_core::publisher::SeqId;
use outer_core::router::check_path;
use outer_core::sse::{DecodeError, EventWriter, Limits, SseDecoder, SseEvent};
use outer_core::{
    event_iterator, procedure, tracked, App, ErrorCode, Event, EventId, ProcedureKind, RequestHead,
    Router, RpcError,
};
use serde::Deserialize;
use serde_json::{json, Value};

/// A target's body: bytes in, a panic when a property fails.
pub type Target = fn(&[u8]);

/// Every target by name, as `fuzz/Cargo.toml` lists them and `fuzz/corpus/<name>/` holds them.
pub const ALL: &[(&str, Target)] = &[
    ("sse_decoder", sse_decoder),
    ("orpc_request", orpc_request),
    ("orpc_client", orpc_client),
    ("trpc_request", trpc_request),
    ("last_event_id", last_event_id),
    ("rpc_handle", rpc_handle),
    ("ws_messages", ws_messages),
];

// ---------------------------------------------------------------------------------------------
// sse_decoder

/// The SSE decoder, fed arbitrary bytes.
///
/// Input: one byte of knobs (low nibble: the line limit, high nibble: the event limit, 0 meaning
/// the default), one byte that picks where to cut the stream, then the stream.
///
/// Properties:
/// - the same stream decodes to the same events and errors, in the same order, with the same
///   last event id and retry, whether it arrives whole, cut in two at any point, in pseudo-random
///   chunks or one byte at a time;
/// - every call makes progress, and `Ok(None)` means the chunk was used up;
/// - no event holds more than the limits allow;
/// - it decodes exactly as `limited_model` below, a line-by-line reading of the raw bytes that
///   applies the limits as documented: a line over `max_line` or data over `max_event` is an
///   error, the event is dropped (its id with it, a `retry` already read kept) and lines are
///   skipped up to the next blank one;
/// - a stream that raised no error decodes exactly as a plain reading of the WHATWG rules does
///   (`reference` below: decode the whole stream as text first, then split lines, apply fields);
/// - after `finish`, the same stream again gives the same events and leaves the same state;
/// - every decoded event written back out with `SseEvent::write_to` decodes to itself;
/// - an event built from the input's text either is refused for a CR, LF or NUL where one cannot
///   go (leaving the buffer as it was) or decodes back to itself.
pub fn sse_decoder(data: &[u8]) {
    let [knobs, cut, stream @ ..] = data else {
        return;
    };
    let limits = limits_from(*knobs);
    let whole = decode_chunks(limits, [stream]);

    let cut = usize::from(*cut) * stream.len() / 255;
    let (a, b) = stream.split_at(cut);
    assert_eq!(decode_chunks(limits, [a, b]), whole, "cut at {cut}");
    assert_eq!(
        decode_chunks(limits, stream.chunks(1)),
        whole,
        "one byte at a time"
    );
    assert_eq!(
        decode_chunks(limits, random_chunks(stream, cut as u64 ^ 0x9e37)),
        whole,
        "random chunks"
    );

    for event in whole.outcomes.iter().flatten() {
        assert!(
            event.data.len() <= limits.max_event,
            "data over the event limit: {} > {}",
            event.data.len(),
            limits.max_event
        );
        // A line's bytes may each become a 3-byte U+FFFD, hence the factor 3.
        let line_text = limits.max_line.saturating_mul(3);
        assert!(event.event == "message" || event.event.len() <= line_text);
        assert!(event.id.as_ref().is_none_or(|id| id.len() <= line_text));
        assert!(
            !event.event.is_empty(),
            "an event without type is `message`"
        );
    }

    assert_eq!(
        whole,
        limited_model(stream, limits),
        "differs from the byte model"
    );
    if whole.outcomes.iter().all(Result::is_ok) {
        assert_eq!(whole, reference(stream), "differs from the WHATWG reading");
    }

    // finish() rearms the decoder for a new stream, keeping only the last id and retry.
    let mut decoder = SseDecoder::with_limits(limits);
    let first = feed(&mut decoder, [stream]);
    decoder.finish();
    let second = feed(&mut decoder, [stream]);
    assert_eq!(first, second, "the same stream after finish()");
    assert_eq!(decoder.last_event_id(), whole.last_event_id);
    assert_eq!(decoder.retry(), whole.retry);

    for event in whole.outcomes.iter().flatten() {
        let mut buf = Vec::new();
        event
            .write_to(&mut buf)
            .expect("a decoded event can always be written");
        let again = decode_chunks(UNLIMITED, [&buf[..]]);
        assert_eq!(again.outcomes, [Ok(event.clone())], "{:?}", lossy(&buf));
    }

    encode_then_decode(&lossy(stream), *knobs);
}

/// No limit at all: for decoding what the encoder wrote.
const UNLIMITED: Limits = Limits {
    max_line: usize::MAX,
    max_event: usize::MAX,
};

fn limits_from(knobs: u8) -> Limits {
    let line = usize::from(knobs & 0x0f);
    let event = usize::from(knobs >> 4);
    Limits {
        max_line: if line == 0 {
            Limits::DEFAULT.max_line
        } else {
            (line - 1) * 3
        },
        max_event: if event == 0 {
            Limits::DEFAULT.max_event
        } else {
            (event - 1) * 5
        },
    }
}

/// What decoding a stream produced: every event and error in order, and the state left.
#[derive(Debug, PartialEq)]
struct Decoded {
    outcomes: Vec<Result<SseEvent, DecodeError>>,
    last_event_id: String,
    retry: Option<u64>,
}

fn decode_chunks<'a>(limits: Limits, chunks: impl IntoIterator<Item = &'a [u8]>) -> Decoded {
    let mut decoder = SseDecoder::with_limits(limits);
    let outcomes = feed(&mut decoder, chunks);
    assert_eq!(decoder.limits(), limits);
    Decoded {
        outcomes,
        last_event_id: decoder.last_event_id().to_owned(),
        retry: decoder.retry(),
    }
}

/// Feeds chunks in order, going on after errors, and checks every call made progress.
fn feed<'a>(
    decoder: &mut SseDecoder,
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> Vec<Result<SseEvent, DecodeError>> {
    let mut outcomes = Vec::new();
    for chunk in chunks {
        let mut input = chunk;
        loop {
            let before = input.len();
            match decoder.next_event(&mut input) {
                Ok(None) => {
                    assert!(input.is_empty(), "Ok(None) before the chunk was used up");
                    break;
                }
                outcome => {
                    assert!(input.len() < before, "a call consumed nothing: {outcome:?}");
                    outcomes.push(outcome.map(|event| event.expect("matched above")));
                }
            }
        }
    }
    outcomes
}

/// Cuts `bytes` into chunks of 0 to 15 bytes, sizes from a xorshift seeded by `seed`.
fn random_chunks(bytes: &[u8], seed: u64) -> Vec<&[u8]> {
    let mut state = seed | 1;
    let mut rest = bytes;
    let mut chunks = Vec::new();
    while !rest.is_empty() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let size = usize::try_from(state % 16).unwrap_or(1).min(rest.len());
        let (chunk, tail) = rest.split_at(size);
        chunks.push(chunk);
        rest = tail;
    }
    chunks
}

fn lossy(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

/// The UTF-8 byte order mark an event stream may start with.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The decoder's documented behaviour, limits included, as a plain loop over whole lines of
/// raw bytes: a second reading to compare the incremental decoder with.
fn limited_model(stream: &[u8], limits: Limits) -> Decoded {
    // A stream that so far is only the start of a BOM may still become one: its bytes are
    // not line text yet, so no line (and no line limit) applies to them until the next byte.
    if stream.len() < BOM.len() && BOM.starts_with(stream) {
        return Decoded {
            outcomes: Vec::new(),
            last_event_id: String::new(),
            retry: None,
        };
    }
    let mut rest = stream.strip_prefix(BOM).unwrap_or(stream);
    let mut outcomes = Vec::new();
    let mut last_event_id = String::new();
    let mut retry = None;
    let mut skipping = false;

    let mut data = String::new();
    let mut event_type = String::new();
    let mut id: Option<String> = None;
    let mut event_retry = None;

    loop {
        let (line, complete) = match rest.iter().position(|b| matches!(b, b'\r' | b'\n')) {
            Some(end) => {
                let line = &rest[..end];
                let after = &rest[end..];
                rest = after.strip_prefix(b"\r\n").unwrap_or(&after[1..]);
                (line, true)
            }
            None => (std::mem::take(&mut rest), false),
        };
        if skipping {
            skipping = !(complete && line.is_empty());
        } else if line.len() > limits.max_line {
            outcomes.push(Err(DecodeError::LineTooLong {
                limit: limits.max_line,
            }));
            skipping = true;
        } else if !complete {
            // A last line without its end is kept for a next chunk that never comes.
        } else if line.is_empty() {
            if let Some(id) = &id {
                last_event_id.clone_from(id);
            }
            if !data.is_empty() {
                data.pop();
                outcomes.push(Ok(SseEvent {
                    event: if event_type.is_empty() {
                        "message".into()
                    } else {
                        event_type.clone()
                    },
                    data: data.clone(),
                    id: id.clone(),
                    retry: event_retry,
                }));
            }
        } else if line[0] != b':' {
            let (name, value) = match line.iter().position(|b| *b == b':') {
                Some(colon) => {
                    let value = &line[colon + 1..];
                    (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
                }
                None => (line, &b""[..]),
            };
            match name {
                b"data" => {
                    let size = data.len() + lossy(value).len();
                    if size > limits.max_event {
                        outcomes.push(Err(DecodeError::EventTooLarge {
                            limit: limits.max_event,
                            size,
                        }));
                        skipping = true;
                    } else {
                        data.push_str(&lossy(value));
                        data.push('\n');
                    }
                }
                b"event" => event_type = lossy(value).into_owned(),
                b"id" if !value.contains(&0) => id = Some(lossy(value).into_owned()),
                b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                    if let Ok(millis) = lossy(value).parse::<u64>() {
                        retry = Some(millis);
                        event_retry = Some(millis);
                    }
                }
                _ => {}
            }
        }
        // The event ends at its blank line, or is dropped on an error.
        if skipping || (complete && line.is_empty()) {
            data.clear();
            event_type.clear();
            id = None;
            event_retry = None;
        }
        if rest.is_empty() {
            break;
        }
    }
    Decoded {
        outcomes,
        last_event_id,
        retry,
    }
}

/// The event-stream rules read as plainly as possible: decode the whole stream as UTF-8 (BOM
/// dropped, invalid bytes replaced), split it into lines at CRLF, CR or LF, apply each line.
/// No limits, no chunks: the model the decoder must agree with when no limit is hit.
fn reference(stream: &[u8]) -> Decoded {
    let text = lossy(stream);
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(&text);
    let mut events = Vec::new();
    let mut last_event_id = String::new();
    let mut retry = None;

    let mut data = String::new();
    let mut event_type = String::new();
    let mut id: Option<String> = None;
    let mut event_retry = None;

    let mut rest = text;
    // Only lines with a line end count: a last line without one never completes.
    while let Some(end) = rest.find(['\r', '\n']) {
        let line = &rest[..end];
        let after = &rest[end..];
        rest = after.strip_prefix("\r\n").unwrap_or(&after[1..]);
        if line.is_empty() {
            if let Some(id) = &id {
                last_event_id.clone_from(id);
            }
            if !data.is_empty() {
                data.pop();
                events.push(SseEvent {
                    event: if event_type.is_empty() {
                        "message".into()
                    } else {
                        event_type.clone()
                    },
                    data: std::mem::take(&mut data),
                    id: id.clone(),
                    retry: event_retry,
                });
            }
            data.clear();
            event_type.clear();
            id = None;
            event_retry = None;
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (name, value) = match line.split_once(':') {
            Some((name, value)) => (name, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match name {
            "data" => {
                data.push_str(value);
                data.push('\n');
            }
            "event" => event_type = value.into(),
            "id" if !value.contains('\0') => id = Some(value.into()),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                if let Ok(millis) = value.parse::<u64>() {
                    retry = Some(millis);
                    event_retry = Some(millis);
                }
            }
            _ => {}
        }
    }
    Decoded {
        outcomes: events.into_iter().map(Ok).collect(),
        last_event_id,
        retry,
    }
}

/// Builds an event from thirds of `text` (type, id, data) and writes it.
fn encode_then_decode(text: &str, knobs: u8) {
    let chars: Vec<char> = text.chars().collect();
    let third = chars.len() / 3;
    let event_type: String = chars[..third].iter().collect();
    let id: String = chars[third..2 * third].iter().collect();
    let data: String = chars[2 * third..].iter().collect();
    let mut event = SseEvent::new(data.clone()).with_event(event_type.clone());
    if knobs & 1 == 1 {
        event = event.with_id(id.clone());
    }
    if knobs & 2 == 2 {
        event = event.with_retry(u64::from(knobs) << 20);
    }
    let mut buf = b": before\n\n".to_vec();
    let written = event.write_to(&mut buf);
    let bad_type = event_type.contains(['\r', '\n']);
    let bad_id = event.id.is_some() && id.contains(['\r', '\n', '\0']);
    match written {
        Err(err) => {
            assert!(bad_type || bad_id, "refused without cause: {err}");
            assert_eq!(buf, b": before\n\n", "a refused event left bytes behind");
        }
        Ok(()) => {
            assert!(!bad_type && !bad_id, "wrote a field that breaks its line");
            let decoded = decode_chunks(UNLIMITED, [&buf[..]]);
            let expected = SseEvent {
                event: if event_type.is_empty() {
                    "message".into()
                } else {
                    event_type
                },
                // The encoder splits data at CRLF, CR and LF; the reader joins with LF.
                data: data.replace("\r\n", "\n").replace('\r', "\n"),
                id: event.id.clone(),
                retry: event.retry,
            };
            assert_eq!(decoded.outcomes, [Ok(expected)]);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A request in text form, shared by the request targets.

/// An HTTP request written as text, easy to write by hand and to mutate:
///
/// ```text
/// POST /post/live?query
/// last-event-id: 7
///
/// {"json":{}}
/// ```
///
/// Head lines end in LF (a CR before it is dropped); header names end at the first `:` and one
/// space after it is dropped; the body is every byte after the first empty line.
#[derive(Debug)]
struct HttpInput {
    head: RequestHead,
    route: String,
    query: String,
    body: Vec<u8>,
}

fn parse_http(data: &[u8]) -> HttpInput {
    let (head, body) = split_head(data);
    let text = lossy(head);
    let mut lines = text
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line));
    let first = lines.next().unwrap_or_default();
    let (method, target) = first.split_once(' ').unwrap_or((first, ""));
    let (route, query) = target.split_once('?').unwrap_or((target, ""));
    let mut head = RequestHead::new(method, route);
    head.query = query.into();
    head.headers = lines
        .map(|line| match line.split_once(':') {
            Some((name, value)) => (name.into(), value.strip_prefix(' ').unwrap_or(value).into()),
            None => (line.into(), String::new()),
        })
        .collect();
    HttpInput {
        head,
        route: route.into(),
        query: query.into(),
        body: body.to_vec(),
    }
}

/// Splits at the first empty line (LF LF or LF CR LF).
fn split_head(data: &[u8]) -> (&[u8], &[u8]) {
    for (i, _) in data.iter().enumerate().filter(|(_, b)| **b == b'\n') {
        let rest = &data[i + 1..];
        if rest.first() == Some(&b'\n') {
            return (&data[..i], &rest[1..]);
        }
        if rest.starts_with(b"\r\n") {
            return (&data[..i], &rest[2..]);
        }
    }
    (data, &[])
}

/// A client's mistake: 4xx, with a code and a message.
fn assert_client_error(error: &RpcError, what: &str) {
    assert!(
        (400..500).contains(&error.status()),
        "{what}: bad input answered {} ({error})",
        error.status()
    );
    assert!(!error.code().is_empty(), "{what}: no code");
    assert!(!error.message().is_empty(), "{what}: no message");
}

/// What a resume id sent as text means: the rules of `EventId::from_resume`, written out again
/// so the properties do not lean on the code they check. Empty text is no id (as no header is);
/// text holding CR, LF or NUL is refused with a 400, in both protocols, never dropped; anything
/// else is the id, byte for byte.
#[derive(Clone, Debug, PartialEq)]
enum Resume {
    None,
    Id(String),
    Invalid,
}

impl Resume {
    fn of(text: Option<&str>) -> Self {
        match text {
            None | Some("") => Resume::None,
            Some(text) if text.contains(['\r', '\n', '\0']) => Resume::Invalid,
            Some(text) => Resume::Id(text.into()),
        }
    }

    /// The id the handler gets and the stream's first tagged event carries.
    fn id(&self) -> Option<&str> {
        match self {
            Resume::Id(id) => Some(id),
            Resume::None | Resume::Invalid => None,
        }
    }
}

/// tRPC's resume id from the request itself: the first of the `Last-Event-ID` header, the
/// query's `lastEventId` and its `Last-Event-Id` that was sent and is not empty (an empty one
/// lets the next place speak).
fn trpc_request_resume(request: &HttpInput) -> Resume {
    let pairs = query_pairs(&request.query);
    // A key sent twice: the last one counts, as for `input`.
    let last = |key: &str| {
        pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    for place in [
        request.head.header("last-event-id"),
        last("lastEventId"),
        last("Last-Event-Id"),
    ] {
        let resume = Resume::of(place);
        if resume != Resume::None {
            return resume;
        }
    }
    Resume::None
}

/// The `lastEventId` of a tRPC input object: absent, `null` and `""` are no id, a string is read
/// as a resume id, any other JSON is refused (400).
fn input_resume(input: Option<&Value>) -> Resume {
    match input
        .and_then(Value::as_object)
        .and_then(|map| map.get("lastEventId"))
    {
        None | Some(Value::Null) => Resume::None,
        Some(Value::String(id)) => Resume::of(Some(id)),
        Some(_) => Resume::Invalid,
    }
}

/// The resume id a tRPC subscription call runs with: the request's, else its input's.
fn trpc_call_resume(request: &Resume, input: Option<&Value>) -> Resume {
    match request {
        Resume::None => input_resume(input),
        other => other.clone(),
    }
}

/// A query string read as `application/x-www-form-urlencoded`, written out again: pairs split
/// at `&` (empty ones skipped), key and value at the first `=`, `+` is a space, then `%XX`
/// escapes are decoded (invalid UTF-8 becomes U+FFFD).
fn query_pairs(query: &str) -> Vec<(String, String)> {
    let decode = |text: &str| percent_decoded(&text.replace('+', " "));
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key), decode(value))
        })
        .collect()
}

/// Every byte but ASCII letters and digits as `%XX`: safe in a query, read back by
/// [`query_pairs`].
fn percent_encoded(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A copy of the head, for a second request (the handlers take theirs by value). The heads
/// made here carry no extensions.
fn copy_head(head: &RequestHead) -> RequestHead {
    let mut copy = RequestHead::new(head.method.as_str(), head.path.as_str());
    copy.query = head.query.clone();
    copy.headers = head.headers.clone();
    copy.peer = head.peer;
    copy
}

/// The head without any header called `name` (in any case).
fn without_header(head: &RequestHead, name: &str) -> RequestHead {
    let mut copy = copy_head(head);
    copy.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    copy
}

/// The 400 an invalid resume id is answered with: `BAD_REQUEST`, saying which id.
fn assert_resume_refusal(error: &RpcError, what: &str) {
    assert_eq!(
        (error.status(), error.code()),
        (400, "BAD_REQUEST"),
        "{what}: an invalid resume id answered {error}"
    );
    let said = format!("{} {:?}", error.message(), error.data());
    assert!(
        said.contains("lastEventId") || said.contains("last-event-id"),
        "{what}: the refusal does not name the id: {said}"
    );
}

/// JSON values equal up to the last bits of floats (serde_json's default float parsing is not
/// guaranteed to round-trip the last digit).
fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x == y
                || matches!((x.as_f64(), y.as_f64()), (Some(p), Some(q))
                    if (p - q).abs() <= 4.0 * f64::EPSILON * p.abs().max(q.abs()))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_json(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

fn parse_json(bytes: &[u8], what: &str) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|err| panic!("{what} is not JSON ({err}): {:?}", lossy(bytes)))
}

// ---------------------------------------------------------------------------------------------
// orpc_request

/// oRPC request decoding, in both versions: `decode_request` and the `{json, meta}` envelope of
/// `decode_body`.
///
/// Input: a request in the text form of [`parse_http`]; the route is the path under `/rpc`.
///
/// Properties, for version 1 and version 2 alike:
/// - never a panic; a refusal is a 4xx `RpcError` with a code and a message, never a 5xx;
/// - an accepted request was a POST (version 1) or, in version 2, anything a browser did not
///   mark as made outside script (`sec-fetch-mode` absent, `cors` or `same-origin`); its
///   procedure path is valid and is the route with `/` turned into `.`; its input is what
///   `decode_body` reads from the body (from `?data=` for a version 2 GET);
/// - the `Last-Event-ID` header only ever adds the resume id or a 400: an empty header is no
///   id, a valid one is the call's id byte for byte, one with CR, LF or NUL refuses a request
///   that would be taken without it (400 `BAD_REQUEST` naming `last-event-id`), never dropped;
/// - an input read from a body goes back out with `encode_call` and reads back the same;
/// - without meta, the input is the envelope's `json` member;
/// - the error body of a refusal is oRPC's JSON shape with the same status, and the client's
///   `decode_error` reads the same error back.
pub fn orpc_request(data: &[u8]) {
    let request = parse_http(data);
    for version in [OrpcVersion::V1, OrpcVersion::V2] {
        orpc_request_in(version, &request);
    }
}

fn orpc_request_in(version: OrpcVersion, request: &HttpInput) {
    let route = request.route.as_str();
    let sent = Resume::of(request.head.header("last-event-id"));
    let bare = version.decode_request(
        &without_header(&request.head, "last-event-id"),
        route,
        &request.body,
    );
    let get = request.head.method.eq_ignore_ascii_case("GET");
    match version.decode_request(&request.head, route, &request.body) {
        Ok(call) => {
            match version {
                OrpcVersion::V1 => assert!(request.head.method.eq_ignore_ascii_case("POST")),
                OrpcVersion::V2 => {
                    let mode = request.head.header("sec-fetch-mode");
                    assert!(
                        mode.is_none_or(|m| ["cors", "same-origin"]
                            .iter()
                            .any(|ok| m.eq_ignore_ascii_case(ok))),
                        "the CSRF guard let {mode:?} through"
                    );
                }
            }
            assert!(check_path(&call.path).is_ok(), "path {:?}", call.path);
            assert_eq!(
                call.path.replace('.', "/"),
                route.strip_prefix('/').unwrap_or(route)
            );
            assert_ne!(sent, Resume::Invalid, "an invalid resume id was dropped");
            assert_eq!(
                call.last_event_id.as_ref().map(EventId::as_str),
                sent.id(),
                "the resume id"
            );
            let without_id = orpc::OrpcCall {
                last_event_id: None,
                ..call.clone()
            };
            assert_eq!(bare, Ok(without_id), "the header changed more than the id");
            if !(get && version == OrpcVersion::V2) {
                assert_eq!(Ok(call.input), version.decode_body(&request.body));
            }
        }
        Err(error) => {
            assert_client_error(&error, "decode_request");
            check_orpc_error_body(version, &error);
            match (&sent, &bare) {
                (Resume::Invalid, Ok(_)) => assert_resume_refusal(&error, "oRPC Last-Event-ID"),
                (Resume::Invalid, Err(_)) => {}
                (_, bare) => assert_eq!(bare, &Err(error), "a valid or empty id refused"),
            }
        }
    }

    match version.decode_body(&request.body) {
        Ok(input) => {
            if let Some(input) = &input {
                let body = version.encode_call(Some(input));
                let again = version
                    .decode_body(body.as_bytes())
                    .expect("an encoded call decodes")
                    .expect("an encoded call has input");
                assert!(same_json(input, &again), "{input} came back as {again}");
            }
            let envelope: Option<Value> = serde_json::from_slice(&request.body).ok();
            if let Some(Value::Object(envelope)) = envelope {
                let meta_is_empty = match envelope.get("meta") {
                    None | Some(Value::Null) => true,
                    Some(Value::Array(entries)) => entries.is_empty(),
                    Some(_) => false,
                };
                if meta_is_empty {
                    assert_eq!(input.as_ref(), envelope.get("json"));
                }
            }
        }
        Err(error) => {
            assert_client_error(&error, "decode_body");
            check_orpc_error_body(version, &error);
        }
    }
}

/// An error goes out as oRPC's JSON (version 1 with its status, version 2 with `inferable` and
/// the status only in HTTP's) and the client reads the same error back.
fn check_orpc_error_body(version: OrpcVersion, error: &RpcError) {
    let response = version.error_response(error);
    assert_eq!(response.status, error.status());
    let Body::Full(body) = &response.body else {
        panic!("an error answered with a stream");
    };
    let value = parse_json(body, "an oRPC error body");
    match version {
        OrpcVersion::V1 => assert_eq!(value["json"]["status"], json!(error.status())),
        OrpcVersion::V2 => {
            assert_eq!(value["json"].get("status"), None);
            assert_eq!(value["json"]["inferable"], json!(error.is_defined()));
        }
    }
    assert_eq!(value["json"]["code"], json!(error.code()));
    let back = orpc::decode_error(error.status(), body);
    assert_eq!(back.code(), error.code());
    assert_eq!(back.status(), error.status());
    assert_eq!(back.message(), error.message());
    assert_eq!(back.is_defined(), error.is_defined());
    match (back.data(), error.data()) {
        (Some(a), Some(b)) => assert!(same_json(a, b)),
        (a, b) => assert_eq!(a, b),
    }
}

// ---------------------------------------------------------------------------------------------
// orpc_client

/// The client side of oRPC: reading answers and event streams the server sent.
///
/// Input: bytes read three ways — as an answer body under a range of statuses, as an SSE stream
/// whose events `decode_event` reads, and (as text) as the fields of frames to encode and read
/// back.
///
/// Properties:
/// - `decode_answer` never panics; a 2xx gives the body's input or a 400; any other status
///   gives an error whose status is an error status (400-599), the response's own when the body
///   is not an oRPC error;
/// - `decode_event` on a decoded stream gives a frame for `message`, `done` and `error`, nothing
///   for other types, and refuses only with 400 (the envelope), never 5xx;
/// - frames written by `encode_frames` (`message` with id, retry and comments, then `done` or
///   `error`) decode back to the same frames.
pub fn orpc_client(data: &[u8]) {
    for version in [OrpcVersion::V1, OrpcVersion::V2] {
        orpc_client_in(version, data);
    }
}

fn orpc_client_in(version: OrpcVersion, data: &[u8]) {
    let end = match version {
        OrpcVersion::V1 => "done",
        OrpcVersion::V2 => "close",
    };
    let kinds = ["message", end, "error"];
    for status in [
        200, 204, 299, 0, 100, 302, 400, 404, 418, 500, 503, 599, 600, 999,
    ] {
        match version.decode_answer(status, data) {
            Ok(value) => {
                assert!((200..300).contains(&status));
                let body = version
                    .decode_body(data)
                    .expect("Ok answer from a valid body");
                assert_eq!(value, body.unwrap_or(Value::Null));
            }
            Err(error) => {
                assert!((400..600).contains(&error.status()), "{error}");
                if (200..300).contains(&status) {
                    assert_eq!(error.status(), 400);
                } else if (400..600).contains(&status) {
                    let is_orpc_error = serde_json::from_slice::<Value>(data)
                        .ok()
                        .is_some_and(|v| v.get("json").is_some());
                    if !is_orpc_error {
                        assert_eq!(error.status(), status);
                    }
                }
            }
        }
    }

    let mut decoder = orpc_decoder(version, Limits::DEFAULT);
    for event in feed(&mut decoder, [data]).into_iter().flatten() {
        match version.decode_event(&event) {
            Ok(Some(frame)) => {
                assert!(kinds.contains(&event.event.as_str()));
                if let ClientFrame::Message(message) = &frame {
                    assert_eq!(message.id().map(EventId::as_str), event.id.as_deref());
                    assert_eq!(message.meta().retry(), event.retry);
                }
            }
            Ok(None) => assert!(!kinds.contains(&event.event.as_str())),
            Err(error) => assert_eq!(error.status(), 400, "{error}"),
        }
    }

    frames_round_trip(version, &lossy(data));
}

/// The decoder an oRPC client of `version` reads with: version 2's also hands out typed events
/// without data (its `close` for a procedure that returned nothing).
fn orpc_decoder(version: OrpcVersion, limits: Limits) -> SseDecoder {
    SseDecoder::with_limits(limits).dispatch_dataless(version == OrpcVersion::V2)
}

fn frames_round_trip(version: OrpcVersion, text: &str) {
    // The value: the text itself if it is JSON, else the text as a JSON string.
    let value: Value = serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.into()));
    let line: String = text
        .chars()
        .filter(|c| !matches!(c, '\r' | '\n' | '\0'))
        .take(40)
        .collect();
    let retry = u64::try_from(text.len())
        .unwrap_or(u64::MAX)
        .saturating_mul(977);
    let event = Event::new(raw(&value))
        .with_id(line.as_str())
        .expect("CR, LF and NUL were filtered out")
        .with_retry(retry)
        .with_comment(line.as_str())
        .expect("CR, LF and NUL were filtered out");
    let plain = Event::new(raw(&value));
    let error = RpcError::custom(line.clone(), text)
        .with_status(400 + (text.len() % 200) as u16)
        .defined(text.len() % 2 == 0)
        .with_data(value.clone());
    for last in [Frame::Done(raw(&value)), Frame::Error(error.clone())] {
        let frames = vec![
            Frame::Event(event.clone()),
            Frame::Event(plain.clone()),
            last,
        ];
        let wire = version.encode_frames(frames);
        let mut decoder = orpc_decoder(version, UNLIMITED);
        let got: Vec<ClientFrame> = feed(&mut decoder, [wire.as_bytes()])
            .into_iter()
            .map(|event| {
                let event = event.expect("no limits");
                version
                    .decode_event(&event)
                    .expect("our own frames decode")
                    .expect("our own frames are oRPC's")
            })
            .collect();
        assert_eq!(got.len(), 3, "{wire:?}");
        for frame in &got[..2] {
            let ClientFrame::Message(message) = frame else {
                panic!("expected a message: {frame:?}");
            };
            assert!(same_json(message.data(), &value), "{wire:?}");
        }
        let ClientFrame::Message(first) = &got[0] else {
            unreachable!()
        };
        assert_eq!(first.id().map(EventId::as_str), Some(line.as_str()));
        assert_eq!(first.meta().retry(), Some(retry));
        assert_eq!(
            decoder.last_event_id(),
            line,
            "the id a client resumes from"
        );
        match &got[2] {
            ClientFrame::Done(done) => assert!(same_json(done, &value)),
            ClientFrame::Error(back) => {
                // Version 2's error events carry no status: the client takes the code's own.
                let status = match version {
                    OrpcVersion::V1 => error.status(),
                    OrpcVersion::V2 => RpcError::custom(error.code(), "").status(),
                };
                assert_eq!(
                    (
                        back.code(),
                        back.status(),
                        back.message(),
                        back.is_defined()
                    ),
                    (error.code(), status, error.message(), error.is_defined())
                );
                assert!(same_json(back.data().expect("data"), &value));
            }
            other => panic!("expected the end frame: {other:?}"),
        }
    }
}

fn raw(value: &Value) -> Json {
    serde_json::value::to_raw_value(value).expect("a Value always serializes")
}

// ---------------------------------------------------------------------------------------------
// trpc_request

/// tRPC request decoding: path (percent-encoded, `,` for batches), query string (`input`,
/// `batch`, `lastEventId`), body, method and content type.
///
/// Input: a request in the text form of [`parse_http`]; the route is the path under `/trpc`.
///
/// Properties:
/// - never a panic; a refusal is a 4xx with a code and a message, never a 5xx, and its error
///   body is tRPC's shape (`error.data.httpStatus` = the status, `error.code` its JSON-RPC code);
/// - an accepted request has the head's method, 1 to `MAX_BATCH` calls (exactly 1 unless it is
///   a batch) whose paths, joined with `,`, give back the decoded route;
/// - the request's resume id is the first non-empty one of the `Last-Event-ID` header, the
///   query's `lastEventId` and its `Last-Event-Id` (an empty one is no id); when that one holds
///   CR, LF or NUL, a GET or POST is refused with 400 `BAD_REQUEST` naming `lastEventId`, never
///   taken without its id;
/// - a GET without `input` has no input;
/// - `merge_last_event_id` takes `lastEventId` out of the input and never leaves an empty
///   object behind; the request's id wins; else the input's `lastEventId` counts: absent,
///   `null` or `""` is no id, a valid string is the id, one with CR, LF or NUL or any other
///   JSON is a 400 naming `lastEventId`.
pub fn trpc_request(data: &[u8]) {
    let request = parse_http(data);
    let sent = trpc_request_resume(&request);
    let get_or_post = ["GET", "POST"]
        .iter()
        .any(|m| request.head.method.eq_ignore_ascii_case(m));
    match trpc::decode_request(&request.head, &request.route, &request.query, &request.body) {
        Ok(decoded) => {
            let method = match decoded.method {
                trpc::Method::Get => "GET",
                trpc::Method::Post => "POST",
            };
            assert!(request.head.method.eq_ignore_ascii_case(method));
            let count = decoded.calls.len();
            assert!((1..=trpc::MAX_BATCH).contains(&count));
            assert!(decoded.batch || count == 1);
            let paths: Vec<&str> = decoded.calls.iter().map(|c| c.path.as_str()).collect();
            let route = request.route.strip_prefix('/').unwrap_or(&request.route);
            assert_eq!(paths.join(","), percent_decoded(route));
            assert_ne!(sent, Resume::Invalid, "an invalid resume id was dropped");
            assert_eq!(
                decoded.last_event_id.as_ref().map(EventId::as_str),
                sent.id(),
                "the request's resume id"
            );
            let no_input_key = !request.query.contains("input") && !request.query.contains('%');
            if decoded.method == trpc::Method::Get && no_input_key {
                assert!(decoded.calls.iter().all(|c| c.input.is_none()));
            }
            if let Some(raw) = raw_trpc_input(&request, decoded.method) {
                for (i, call) in decoded.calls.iter().enumerate() {
                    let expected = match (&raw, decoded.batch) {
                        (Some(value), false) => Some(value.clone()),
                        (Some(value), true) => value.get(i.to_string()).cloned(),
                        (None, _) => None,
                    };
                    assert_eq!(call.input, expected, "input of call {i}");
                }
            }
            for call in decoded.calls {
                let had_object = matches!(&call.input, Some(Value::Object(_)));
                let expected = trpc_call_resume(&sent, call.input.as_ref());
                let merged =
                    trpc::merge_last_event_id(call.input.clone(), decoded.last_event_id.clone());
                let (input, id) = match merged {
                    Ok(merged) => merged,
                    Err(error) => {
                        assert_eq!(expected, Resume::Invalid, "refused: {error}");
                        assert_resume_refusal(&error, "tRPC input lastEventId");
                        continue;
                    }
                };
                assert_ne!(
                    expected,
                    Resume::Invalid,
                    "an invalid lastEventId was dropped"
                );
                assert_eq!(id.as_ref().map(EventId::as_str), expected.id());
                match input {
                    Some(Value::Object(map)) => {
                        assert!(!map.contains_key("lastEventId"));
                        assert!(!map.is_empty());
                    }
                    other if !had_object => assert_eq!(other, call.input),
                    other => assert_eq!(other, None),
                }
            }
        }
        Err(failure) => {
            assert_client_error(&failure.error, "trpc::decode_request");
            if get_or_post && sent == Resume::Invalid {
                assert_resume_refusal(&failure.error, "tRPC request resume id");
            }
            let response = trpc::error_response(&failure.error, failure.path.as_deref());
            assert_eq!(response.status, failure.error.status());
            let Body::Full(body) = &response.body else {
                panic!("an error answered with a stream");
            };
            check_trpc_error(&parse_json(body, "a tRPC error")["error"], &failure.error);
        }
    }
}

/// The input a tRPC request carries, read again without the decoder: a POST's JSON body (none
/// when the body is blank), or a GET's last `input=` in a query that needs no unescaping.
/// `None` when this plain reading does not apply (a GET query with `%` or `+`).
fn raw_trpc_input(request: &HttpInput, method: trpc::Method) -> Option<Option<Value>> {
    match method {
        trpc::Method::Post => {
            if request.body.iter().all(u8::is_ascii_whitespace) {
                Some(None)
            } else {
                Some(Some(parse_json(&request.body, "an accepted tRPC body")))
            }
        }
        trpc::Method::Get => {
            if request.query.contains(['%', '+']) {
                return None;
            }
            let text = request
                .query
                .rsplit('&')
                .find_map(|pair| pair.strip_prefix("input="));
            Some(text.map(|text| parse_json(text.as_bytes(), "an accepted tRPC query input")))
        }
    }
}

/// The error shape `{message, code, data: {code, httpStatus, path?}}`.
fn check_trpc_error(shape: &Value, error: &RpcError) {
    assert_eq!(
        shape["data"]["httpStatus"],
        json!(error.status()),
        "{shape}"
    );
    assert_eq!(shape["data"]["code"], json!(error.code()));
    assert_eq!(shape["code"], json!(error.jsonrpc_code()));
    assert!(shape["message"].is_string());
}

/// Percent-decoding, written out again so the property does not lean on the code it checks:
/// `%XX` becomes that byte, anything else stays; invalid UTF-8 becomes U+FFFD.
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ---------------------------------------------------------------------------------------------
// last_event_id

/// Last-event-id handling from end to end: the memory publisher's `SeqId` text form, the
/// `EventId` checks, the id travelling in an SSE `id:` line, the oRPC header, and the client's
/// `Resumer` keeping it across reconnects.
///
/// Input: bytes read as an id (text), as two `u64`s (the first 16 bytes), and as a policy (4
/// bytes) followed by a script of events and connection ends for a `Resumer`.
///
/// Properties:
/// - `SeqId::parse` accepts exactly the decimal numbers up to `u64::MAX` without a sign or a
///   leading zero, and then `format(parse(s)) == s`; anything else gets an error quoting (at
///   most 64 characters of) the input and a reason;
/// - `parse(format(n)) == n`, the text form is `n` in decimal (and the same in JSON, as a
///   number), and two ids compare as their text forms do, shorter first;
/// - `EventId::new` accepts exactly the strings without CR, LF or NUL, unchanged;
/// - a valid id written in an `id:` line is read back by the decoder byte for byte;
/// - sent back to resume (`EventId::from_resume`, the oRPC `last-event-id` header, and tRPC's
///   header, query `lastEventId` / `Last-Event-Id` and input `lastEventId`), an empty id is no
///   id, a valid one is taken as is, an invalid one is refused with 400 `BAD_REQUEST` naming
///   the id, in both protocols;
/// - the `Resumer`: its last id is always the last valid id received (none after an empty
///   one); a reconnect resumes from it; a 4xx gives up at once with that error; it gives up
///   exactly when the failures in a row pass `max_attempts`; every delay is the server's `retry`
///   exactly, or else the capped backoff, which jitter only ever shortens, to no less than half.
pub fn last_event_id(data: &[u8]) {
    let text = lossy(data);
    check_seq_id_text(&text);
    check_event_id_text(&text);

    if let Some((a, b)) = data.get(..8).zip(data.get(8..16)) {
        let a = u64::from_le_bytes(a.try_into().expect("8 bytes"));
        let b = u64::from_le_bytes(b.try_into().expect("8 bytes"));
        let (ta, tb) = (SeqId::new(a).to_string(), SeqId::new(b).to_string());
        assert_eq!(ta, a.to_string());
        assert_eq!(serde_json::to_string(&SeqId::new(a)).ok(), Some(ta.clone()));
        // Decimal without leading zeros: a longer text is a larger id.
        assert_eq!(
            (ta.len(), &ta).cmp(&(tb.len(), &tb)),
            a.cmp(&b),
            "{ta} vs {tb}"
        );
        assert_eq!(SeqId::parse(&ta), Ok(SeqId::new(a)));
        assert_eq!(ta.parse::<SeqId>().map(SeqId::get), Ok(a));
        assert_eq!(EventId::from(SeqId::new(b)).as_str(), tb);
    }

    run_resumer(data);
}

fn check_seq_id_text(text: &str) {
    // Read digit by digit, not with `str::parse` (which takes a `+` sign): 1 to 20 ASCII
    // digits, no leading zero unless the number is 0, and no more than u64::MAX.
    let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    let no_leading_zero = text == "0" || !text.starts_with('0');
    let fits = digits
        && text.len() <= 20
        && text
            .bytes()
            .try_fold(0u64, |n, b| {
                n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
            })
            .is_some();
    let canonical = digits && no_leading_zero && fits;
    match SeqId::parse(text) {
        Ok(id) => {
            assert!(canonical, "accepted {text:?}");
            assert_eq!(id.to_string(), text);
        }
        Err(err) => {
            assert!(!canonical, "refused {text:?}: {err}");
            let quoted: String = text.chars().take(64).collect();
            assert_eq!(err.text(), quoted);
            assert!(!err.reason().is_empty());
            assert!(err.to_string().starts_with("malformed last event id"));
        }
    }
}

fn check_event_id_text(text: &str) {
    let valid = !text.contains(['\r', '\n', '\0']);
    match EventId::new(text) {
        Ok(id) => {
            assert!(valid, "accepted {text:?}");
            assert_eq!(id.as_str(), text);
            assert_eq!(id.to_string(), text);
            assert_eq!(parse_last_event_id(text), Some(id.clone()));

            // Written by a server, read by a client.
            let mut wire = String::new();
            EventWriter::new(&mut wire)
                .id(&id)
                .data("x")
                .finish()
                .expect("a valid id is written");
            let mut decoder = SseDecoder::with_limits(UNLIMITED);
            let events = feed(&mut decoder, [wire.as_bytes()]);
            assert_eq!(events.len(), 1);
            assert_eq!(decoder.last_event_id(), text);

            // Sent back to resume: an empty id is no id, in both protocols and every place.
            let resume = (!text.is_empty()).then_some(id);
            assert_eq!(EventId::from_resume(text), Ok(resume.clone()));
            let head = RequestHead::new("POST", "/rpc/ping").with_header("Last-Event-ID", text);
            let call = orpc::decode_request(&head, "/ping", b"").expect("a valid id is taken");
            assert_eq!(call.last_event_id, resume);
            for outcome in trpc_resume_ways(text) {
                assert_eq!(outcome, Ok(resume.clone()), "tRPC with {text:?}");
            }
        }
        Err(_) => {
            assert!(!valid, "refused {text:?}");
            assert!(EventId::from_resume(text).is_err());
            for outcome in trpc_resume_ways(text) {
                let error = outcome.expect_err("an invalid tRPC resume id is refused");
                assert_resume_refusal(&error, "tRPC resume id");
            }
            assert_eq!(parse_last_event_id(text), None);
            let mut wire = String::new();
            assert!(EventWriter::new(&mut wire)
                .id(text)
                .data("x")
                .finish()
                .is_err());
            assert!(wire.is_empty());
            let head = RequestHead::new("POST", "/rpc/ping").with_header("last-event-id", text);
            let error = orpc::decode_request(&head, "/ping", b"").expect_err("refused");
            assert_eq!(error.status(), 400);
        }
    }
}

/// The resume id a tRPC subscription runs with when `text` is sent in each place a client can
/// put it: the `Last-Event-ID` header, the query's `lastEventId` and `Last-Event-Id`, and the
/// input's `lastEventId`.
fn trpc_resume_ways(text: &str) -> Vec<Result<Option<EventId>, RpcError>> {
    let get = |headers: Vec<(String, String)>| {
        let mut head = RequestHead::new("GET", "/trpc/resume");
        head.headers = headers;
        head
    };
    let run = |head: RequestHead, query: String| {
        let decoded =
            trpc::decode_request(&head, "/resume", &query, b"").map_err(|failure| failure.error)?;
        let input = decoded.calls.into_iter().next().and_then(|call| call.input);
        trpc::merge_last_event_id(input, decoded.last_event_id).map(|(_, id)| id)
    };
    let encoded = percent_encoded(text);
    let input = percent_encoded(&json!({ "lastEventId": text }).to_string());
    vec![
        run(
            get(vec![("Last-Event-ID".into(), text.into())]),
            String::new(),
        ),
        run(get(Vec::new()), format!("lastEventId={encoded}")),
        run(get(Vec::new()), format!("Last-Event-Id={encoded}")),
        run(get(Vec::new()), format!("input={input}")),
    ]
}

/// Reads bytes one at a time, then zeros.
struct Script<'a>(&'a [u8]);

impl Script<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&first, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(first)
    }

    fn u64(&mut self, bytes: usize) -> u64 {
        (0..bytes).fold(0, |acc, _| (acc << 8) | u64::from(self.byte().unwrap_or(0)))
    }

    fn take(&mut self, n: usize) -> &[u8] {
        let (taken, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        taken
    }
}

fn run_resumer(data: &[u8]) {
    let mut script = Script(data);
    let policy = RetryPolicy {
        initial_delay: Duration::from_millis(script.u64(1) * 7),
        max_delay: Duration::from_millis(script.u64(1) * 100),
        jitter: script.u64(1) & 1 == 1,
        max_attempts: match script.byte().unwrap_or(0) {
            0 => None,
            n => Some(u32::from(n % 16)),
        },
        inactivity_timeout: None,
    };
    let mut resumer = Resumer::new(policy.clone());
    assert_eq!(resumer.policy(), &policy);

    // The model: what the resumer must remember.
    let mut last: Option<EventId> = None;
    let mut server_retry: Option<Duration> = None;
    let mut failures: u32 = 0;

    while let Some(op) = script.byte() {
        match op % 6 {
            0 => {
                let seq = script.u64(8);
                let id = EventId::from(SeqId::new(seq));
                assert_eq!(SeqId::parse(id.as_str()).map(SeqId::get), Ok(seq));
                resumer.on_event(Some(&id), None);
                last = Some(id);
                failures = 0;
            }
            1 => {
                let len = usize::from(script.byte().unwrap_or(0) % 24);
                let text = lossy(script.take(len)).into_owned();
                match EventId::new(text.as_str()) {
                    Ok(id) => {
                        resumer.on_event(Some(&id), None);
                        // An empty id forgets the resume point, as SSE's rules say.
                        last = (!id.as_str().is_empty()).then_some(id);
                    }
                    // A client drops an id it could not send back.
                    Err(_) => {
                        assert!(text.contains(['\r', '\n', '\0']));
                        resumer.on_event(None, None);
                    }
                }
                failures = 0;
            }
            2 => {
                let millis = script.u64(3);
                resumer.on_event(None, Some(millis));
                server_retry = Some(Duration::from_millis(millis));
                failures = 0;
            }
            end => {
                let ended = match end {
                    3 => Ended::Dropped,
                    4 => Ended::Inactive,
                    _ => {
                        let status = 400 + u16::from(script.byte().unwrap_or(0)) % 200;
                        Ended::Error(RpcError::custom("SCRIPTED", "scripted").with_status(status))
                    }
                };
                let random = script.u64(8);
                let decision = resumer.on_end(ended.clone(), random);
                check_decision(
                    &policy,
                    &ended,
                    &decision,
                    &last,
                    server_retry,
                    &mut failures,
                );
            }
        }
        assert_eq!(resumer.last_event_id(), last.as_ref());
    }
}

fn check_decision(
    policy: &RetryPolicy,
    ended: &Ended,
    decision: &Decision,
    last: &Option<EventId>,
    server_retry: Option<Duration>,
    failures: &mut u32,
) {
    if let Ended::Error(error) = ended {
        if error.status() < 500 {
            assert_eq!(decision, &Decision::GiveUp(error.clone()), "a 4xx ends it");
            return;
        }
    }
    *failures = failures.saturating_add(1);
    if policy.max_attempts.is_some_and(|max| *failures > max) {
        let Decision::GiveUp(error) = decision else {
            panic!("reconnected after {failures} failures in a row: {decision:?}");
        };
        let expected = match ended {
            Ended::Error(cause) => cause.status(),
            Ended::Dropped => 503,
            Ended::Inactive => 504,
        };
        assert_eq!(error.status(), expected);
        return;
    }
    let Decision::Reconnect {
        delay,
        last_event_id,
    } = decision
    else {
        panic!("gave up after {failures} failures: {decision:?}");
    };
    assert_eq!(last_event_id, last, "a reconnect resumes from the last id");
    if let Some(retry) = server_retry {
        assert_eq!(*delay, retry, "the server's retry is kept as it is");
        return;
    }
    let doublings = (*failures - 1).min(31);
    let base = policy
        .initial_delay
        .checked_mul(1 << doublings)
        .unwrap_or(policy.max_delay)
        .min(policy.max_delay);
    if policy.jitter {
        assert!(
            *delay <= base && *delay >= base / 2,
            "{delay:?} outside [{:?}, {base:?}]",
            base / 2
        );
    } else {
        assert_eq!(*delay, base);
    }
}

// ---------------------------------------------------------------------------------------------
// rpc_handle

#[derive(Clone, Debug)]
struct Ctx {
    user: Option<String>,
}

#[derive(Deserialize)]
struct Ping {
    n: i64,
}

#[derive(Deserialize)]
struct NewPost {
    title: String,
}

#[derive(Deserialize)]
struct Range {
    from: u64,
    to: u64,
}

/// The router the whole-request target calls: a query, mutations, subscriptions, a procedure
/// that answers 4xx and two that fail with 5xx (their paths hold `boom`). The context builder
/// refuses `authorization: deny` with 401.
fn fuzz_app() -> App<Ctx> {
    let os = procedure::<Ctx>();
    let live = os
        .input::<Range>()
        .validate_input(|range| {
            if range.from <= range.to && range.to - range.from < 8 {
                Ok(())
            } else {
                Err(Issue::new("from..=to must hold at most 8 ids").at("to"))
            }
        })
        .subscription(|req| async move {
            let start = req
                .last_event_id
                .and_then(|id| id.as_str().parse::<u64>().ok())
                .map_or(req.input.from, |n| n.saturating_add(1));
            let to = req.input.to;
            Ok(event_iterator(move |mut emit| async move {
                for n in start..=to {
                    emit.send(tracked(n, json!({ "n": n }))?).await?;
                }
                Ok(json!({ "done": true }))
            }))
        });
    // Echoes the resume id back as an event id, then an event without id.
    let resume = os.input::<Value>().subscription(|req| async move {
        let id = req.last_event_id;
        Ok(event_iterator(move |mut emit| async move {
            if let Some(id) = id {
                emit.send(Event::new(json!("resumed")).with_id(id)?).await?;
            }
            emit.send(Event::new(json!("plain"))).await?;
            Ok(())
        }))
    });
    let boom_live = os.input::<Value>().subscription(|_| async {
        Ok(event_iterator(|mut emit| async move {
            emit.send_value(json!(1)).await?;
            Err::<(), _>(RpcError::internal("boom"))
        }))
    });
    let router = Router::new()
        .route(
            "ping",
            os.input::<Ping>()
                .query(|req| async move { Ok(json!({ "n": req.input.n, "user": req.ctx.user })) }),
        )
        .route("nothing", os.query(|_| async { Ok(()) }))
        .route(
            "echo",
            os.input::<Value>()
                .mutation(|req| async move { Ok(req.input) }),
        )
        .route(
            "post.create",
            os.input::<NewPost>()
                .validate_input(|post| {
                    if post.title.is_empty() {
                        Err(Issue::new("empty title").at("title"))
                    } else {
                        Ok(())
                    }
                })
                .mutation(|req| async move { Ok(json!({ "id": 1, "title": req.input.title })) }),
        )
        .route("post.live", live)
        .route("resume", resume)
        .route(
            "conflict",
            os.input::<Value>()
                .query(|_| async { Err::<(), _>(RpcError::new(ErrorCode::CONFLICT, "taken")) }),
        )
        .route(
            "boom",
            os.input::<Value>()
                .query(|_| async { Err::<(), _>(RpcError::internal("boom")) }),
        )
        .route("boom_live", boom_live);
    App::new(router, |head: RequestHead| async move {
        match head.header("authorization") {
            Some("deny") => Err(RpcError::from_code(ErrorCode::UNAUTHORIZED)),
            user => Ok(Ctx {
                user: user.map(String::from),
            }),
        }
    })
}

/// A whole request through `orpc::handle` and `trpc::handle` on a small router.
///
/// Input: a request in the text form of [`parse_http`]; a `/rpc` or `/trpc` prefix on the route
/// is dropped, and the request goes to both protocols.
///
/// Properties, for both protocols:
/// - never a panic; the status is 2xx or 4xx unless a procedure that fails on purpose (`boom`)
///   was called;
/// - a whole body is the protocol's JSON: oRPC's `{json}` envelope or error (whose `status` is
///   the response's); tRPC's `result` or `error` per call, an array of one per call for a
///   batch, with the status the calls' statuses imply (all the same: that one, else 207);
/// - an event stream opens with the protocol's first bytes, holds only the protocol's events,
///   each readable by the client code, and ends with exactly one end frame (`done`/`error`,
///   `return`/`serialized-error`), nothing after it;
/// - resume ids follow one rule in both protocols (`Resume`): an empty one is no id; one with
///   CR, LF or NUL is a 400 `BAD_REQUEST` naming it, never dropped (oRPC: a `Last-Event-ID`
///   header on a request taken without it; tRPC: the request's id on any GET or POST, the
///   input's `lastEventId`, also any non-string, on a subscription); a valid, non-empty one
///   reaches `resume` unchanged and comes back in the `id:` of its first event, and without
///   one that first event has no id;
/// - a context that refuses (`authorization: deny`) runs nothing: oRPC answers 401 for any
///   procedure it reaches;
/// - tRPC: a subscription alone answers a stream unless it is refused before the stream opens:
///   its resume id (400), or, on a GET, its context (401) or its input (400, `post.live`'s
///   range read by `setup_refusal`), each with that status and tRPC's error body naming the
///   path (a POST streams its 405 as tRPC does); a subscription inside a batch is refused
///   with 400 `BAD_REQUEST` ("cannot be batched");
/// - `echo` answers exactly the input the request carried (in each call of a batch).
pub fn rpc_handle(data: &[u8]) {
    let request = parse_http(data);
    let route = request
        .route
        .strip_prefix("/trpc")
        .or_else(|| request.route.strip_prefix("/rpc"))
        .unwrap_or(&request.route);
    let app = fuzz_app();
    let may_fail = route.contains("boom") || percent_decoded(route).contains("boom");

    let options = OrpcOptions::default();
    let response = block_on(orpc::handle(
        &app,
        copy_head(&request.head),
        route,
        &request.body,
        &options,
        None,
    ));
    check_orpc_response(&app, response, &request, route, may_fail);

    let options = TrpcOptions::default();
    let response = block_on(trpc::handle(
        &app,
        copy_head(&request.head),
        route,
        &request.query,
        &request.body,
        &options,
        None,
    ));
    check_trpc_response(&app, response, &request, route, may_fail);
}

fn is_subscription(app: &App<Ctx>, path: &str) -> bool {
    app.router()
        .get(path)
        .is_some_and(|procedure| procedure.kind() == ProcedureKind::Subscription)
}

fn check_status(status: u16, may_fail: bool) {
    assert!(
        (200..300).contains(&status) || (400..500).contains(&status) || may_fail,
        "status {status}"
    );
}

/// Collects a streamed body; the handlers here all end on their own.
fn stream_text(response: HttpResponse) -> (Vec<String>, Vec<SseEvent>) {
    let Body::Events(body) = response.body else {
        unreachable!("checked by the caller")
    };
    let chunks: Vec<String> = block_on(body.collect::<Vec<_>>())
        .into_iter()
        .map(|chunk| String::from_utf8(chunk.into()).expect("an event stream is text"))
        .collect();
    let mut decoder = SseDecoder::with_limits(UNLIMITED);
    let events = feed(&mut decoder, chunks.iter().map(String::as_bytes))
        .into_iter()
        .map(|event| event.expect("no limits"))
        .collect();
    (chunks, events)
}

fn check_orpc_response(
    app: &App<Ctx>,
    response: HttpResponse,
    request: &HttpInput,
    route: &str,
    may_fail: bool,
) {
    check_status(response.status, may_fail);
    // A call the context refuses runs nothing, a stream least of all.
    let decoded = orpc::decode_request(&request.head, route, &request.body);
    if denied(request) && decoded.is_ok_and(|call| app.router().get(&call.path).is_some()) {
        assert_eq!(response.status, 401, "a denied context still ran the call");
    }
    let sent = Resume::of(request.head.header("last-event-id"));
    // A request that is taken without its invalid id must be refused for it.
    let refused_id = sent == Resume::Invalid
        && orpc::decode_request(
            &without_header(&request.head, "last-event-id"),
            route,
            &request.body,
        )
        .is_ok();
    if refused_id {
        assert_eq!(response.status, 400, "an invalid Last-Event-ID was dropped");
    }
    match &response.body {
        Body::Full(body) => {
            assert_eq!(response.header("content-type"), Some("application/json"));
            let value = parse_json(body, "an oRPC answer");
            if response.status == 200 {
                assert!(value == json!({}) || value.get("json").is_some(), "{value}");
                let call = orpc::decode_request(&request.head, route, &request.body)
                    .expect("a 200 answers a request that decoded");
                if call.path == "echo" {
                    check_echo(value.get("json"), call.input.as_ref());
                }
            } else {
                assert_eq!(value["json"]["status"], json!(response.status), "{value}");
                assert!(value["json"]["code"].is_string());
                assert!(value["json"]["message"].is_string());
                if refused_id {
                    assert_eq!(value["json"]["code"], json!("BAD_REQUEST"), "{value}");
                    let reason = value["json"]["data"]["reason"].as_str().unwrap_or_default();
                    assert!(reason.contains("last-event-id"), "{value}");
                }
            }
        }
        Body::Events(_) => {
            assert_eq!(response.status, 200);
            assert_eq!(response.header("content-type"), Some("text/event-stream"));
            let (chunks, events) = stream_text(response);
            // The opening comment first, with whatever the handler's first poll made ready.
            assert!(
                chunks
                    .first()
                    .is_some_and(|first| first.starts_with(": \n\n")),
                "{chunks:?}"
            );
            let frames: Vec<ClientFrame> = events
                .iter()
                .map(|event| {
                    orpc::decode_event(event)
                        .expect("our frames decode")
                        .expect("our frames are oRPC's")
                })
                .collect();
            let (last, messages) = frames.split_last().expect("an end frame");
            assert!(messages
                .iter()
                .all(|f| matches!(f, ClientFrame::Message(_))));
            match last {
                ClientFrame::Done(_) => {}
                ClientFrame::Error(error) => check_status(error.status(), may_fail),
                ClientFrame::Message(_) => panic!("the stream ended without an end frame"),
            }
            let ended_well = matches!(last, ClientFrame::Done(_));
            assert_ne!(
                sent,
                Resume::Invalid,
                "a stream despite an invalid Last-Event-ID"
            );
            if ended_well && route.trim_start_matches('/') == "resume" {
                let first_id = messages.first().and_then(|f| match f {
                    ClientFrame::Message(m) => m.id().map(EventId::as_str),
                    _ => None,
                });
                assert_eq!(first_id, sent.id(), "the resume id comes back");
            }
        }
    }
}

/// The request asks the context builder to refuse it (401).
fn denied(request: &HttpInput) -> bool {
    request.head.header("authorization") == Some("deny")
}

/// Why a lone tRPC subscription that got past its resume id is refused before its stream
/// opens, as `(status, code)`: the context first (middleware and context run before the input
/// is decoded), then the input. `input` is the call's, `lastEventId` taken out. A POST is not
/// called at all (it streams its 405), so only a GET gets here.
fn setup_refusal(
    request: &HttpInput,
    path: &str,
    input: Option<&Value>,
) -> Option<(u16, &'static str)> {
    if denied(request) {
        return Some((401, "UNAUTHORIZED"));
    }
    // `post.live` takes `{from, to}`, whole numbers from 0 with at most 8 ids between; the
    // other subscriptions take any JSON.
    let range = |key: &str| {
        input
            .and_then(|input| input.get(key))
            .and_then(Value::as_u64)
    };
    let valid = match (range("from"), range("to")) {
        (Some(from), Some(to)) => from <= to && to - from < 8,
        _ => false,
    };
    (path == "post.live" && !valid).then_some((400, "BAD_REQUEST"))
}

/// A tRPC input as the handler sees it: `lastEventId` taken out of an object, and an object
/// left empty by that is no input at all.
fn without_last_event_id(input: Option<&Value>) -> Option<Value> {
    match input {
        Some(Value::Object(map)) => {
            let mut map = map.clone();
            map.remove("lastEventId");
            (!map.is_empty()).then_some(Value::Object(map))
        }
        other => other.cloned(),
    }
}

/// `echo` answers its input: none for no input or `null` (both protocols leave the value out
/// for JavaScript's `undefined`), else the same JSON.
fn check_echo(answer: Option<&Value>, input: Option<&Value>) {
    match input.filter(|v| !v.is_null()) {
        None => assert_eq!(answer, None),
        Some(input) => {
            let answer = answer.expect("echo answers its input");
            assert!(same_json(answer, input), "echo {input} answered {answer}");
        }
    }
}

fn check_trpc_response(
    app: &App<Ctx>,
    response: HttpResponse,
    request: &HttpInput,
    route: &str,
    may_fail: bool,
) {
    check_status(response.status, may_fail);
    let decoded = trpc::decode_request(&request.head, route, &request.query, &request.body);
    let sent = trpc_request_resume(request);
    let get_or_post = ["GET", "POST"]
        .iter()
        .any(|m| request.head.method.eq_ignore_ascii_case(m));
    if get_or_post && sent == Resume::Invalid {
        assert_eq!(
            response.status, 400,
            "an invalid tRPC resume id was dropped"
        );
        assert!(decoded.is_err(), "an invalid tRPC resume id was taken");
    }
    // The resume id a lone subscription runs with; `None` when the request is not one.
    let subscription_resume = decoded.as_ref().ok().and_then(|decoded| {
        let call = &decoded.calls[0];
        (!decoded.batch && is_subscription(app, &call.path))
            .then(|| trpc_call_resume(&sent, call.input.as_ref()))
    });
    // What refuses a lone subscription GET before its stream, once its resume id is taken.
    let refusal = decoded.as_ref().ok().and_then(|decoded| {
        let call = &decoded.calls[0];
        let get = request.head.method.eq_ignore_ascii_case("GET");
        let taken = subscription_resume
            .as_ref()
            .is_some_and(|resume| *resume != Resume::Invalid);
        (taken && get)
            .then(|| {
                let input = without_last_event_id(call.input.as_ref());
                setup_refusal(request, &call.path, input.as_ref())
            })
            .flatten()
    });
    match &response.body {
        Body::Full(body) => {
            assert_eq!(response.header("content-type"), Some("application/json"));
            let value = parse_json(body, "a tRPC answer");
            let Ok(decoded) = decoded else {
                assert_eq!(value["error"]["data"]["httpStatus"], json!(response.status));
                if get_or_post && sent == Resume::Invalid {
                    check_resume_refusal_shape(&value["error"]);
                }
                return;
            };
            assert_eq!(
                decoded.last_event_id.as_ref().map(EventId::as_str),
                sent.id(),
                "the request's resume id"
            );
            if let Some(resume) = &subscription_resume {
                if resume == &Resume::Invalid {
                    assert_eq!(response.status, 400);
                    check_resume_refusal_shape(&value["error"]);
                } else {
                    // Refused in its setup: that status, in tRPC's error body, not a stream.
                    let Some((status, code)) = refusal else {
                        panic!("a subscription answered without a stream: {value}");
                    };
                    assert_eq!(response.status, status, "{value}");
                    let error = &value["error"];
                    assert_eq!(error["data"]["code"], json!(code), "{value}");
                    assert_eq!(
                        error["data"]["path"],
                        json!(decoded.calls[0].path),
                        "{value}"
                    );
                }
            }
            let answers = if decoded.batch {
                let items = value.as_array().expect("a batch answers an array");
                assert_eq!(items.len(), decoded.calls.len());
                items.clone()
            } else {
                vec![value]
            };
            let mut statuses = Vec::new();
            for (answer, call) in answers.iter().zip(&decoded.calls) {
                if decoded.batch && is_subscription(app, &call.path) {
                    let error = &answer["error"];
                    assert_eq!(error["data"]["httpStatus"], json!(400), "{answer}");
                    assert_eq!(error["data"]["code"], json!("BAD_REQUEST"), "{answer}");
                    let message = error["message"].as_str().unwrap_or_default();
                    assert!(message.contains("cannot be batched"), "{answer}");
                }
                match (answer.get("result"), answer.get("error")) {
                    (Some(result), None) => {
                        if call.path == "echo" {
                            check_echo(result.get("data"), call.input.as_ref());
                        }
                        statuses.push(200);
                    }
                    (None, Some(error)) => {
                        let status = error["data"]["httpStatus"]
                            .as_u64()
                            .expect("httpStatus is a number");
                        let status = u16::try_from(status).expect("a status fits u16");
                        check_status(status, may_fail);
                        statuses.push(status);
                    }
                    _ => panic!("neither result nor error: {answer}"),
                }
            }
            let expected = if statuses.iter().all(|s| *s == statuses[0]) {
                statuses[0]
            } else {
                207
            };
            assert_eq!(response.status, expected, "{answers:?}");
        }
        Body::Events(_) => {
            assert_eq!(response.status, 200);
            assert_eq!(response.header("content-type"), Some("text/event-stream"));
            let decoded = decoded.expect("a stream answers a request that decoded");
            assert!(!decoded.batch, "subscriptions are never batched");
            let resume = subscription_resume.expect("only a subscription streams");
            assert_ne!(
                resume,
                Resume::Invalid,
                "a stream despite an invalid resume id"
            );
            assert_eq!(refusal, None, "a stream despite a refused setup");
            let (_, events) = stream_text(response);
            let (first, rest) = events.split_first().expect("`connected` first");
            assert_eq!(first.event, "connected");
            let (last, middle) = rest.split_last().expect("an end event");
            match last.event.as_str() {
                "return" => {}
                "serialized-error" => {
                    let shape = parse_json(last.data.as_bytes(), "a serialized error");
                    let status = shape["data"]["httpStatus"].as_u64().expect("httpStatus");
                    check_status(u16::try_from(status).expect("fits u16"), may_fail);
                }
                other => panic!("the stream ended with {other:?}"),
            }
            for event in middle {
                match event.event.as_str() {
                    "message" => {
                        parse_json(event.data.as_bytes(), "an event's data");
                    }
                    "restore-id" => assert!(event.id.is_some()),
                    other => panic!("unexpected event {other:?} in a tRPC stream"),
                }
            }
            if decoded.calls[0].path == "resume" && last.event == "return" {
                // No id at all on the first event when none was sent (an empty `id:` would
                // be an id the client then sends back).
                let first = middle.first().expect("`resume` sends an event");
                assert_eq!(first.event, "message");
                assert_eq!(first.id.as_deref(), resume.id(), "the resume id comes back");
            }
        }
    }
}

/// tRPC's `{message, data: {code, httpStatus}}` for a refused resume id.
fn check_resume_refusal_shape(shape: &Value) {
    assert_eq!(shape["data"]["httpStatus"], json!(400), "{shape}");
    assert_eq!(shape["data"]["code"], json!("BAD_REQUEST"), "{shape}");
    let message = shape["message"].as_str().unwrap_or_default();
    assert!(message.contains("lastEventId"), "{shape}");
}

// ---------------------------------------------------------------------------------------------
// ws_messages

/// Client messages over WebSocket, as a socket hands them to the core: tRPC's `wsLink` frames
/// and oRPC's websocket link messages.
///
/// Input: one byte that picks the protocol (low bit: 0 tRPC, 1 oRPC), then the text (read
/// lossily: a socket refuses a text frame that is not UTF-8 before the core sees it).
///
/// Properties:
/// - never a panic;
/// - tRPC: a frame that is a JSON array decodes to as many messages, at most `MAX_BATCH`, or is
///   one parse error; every answer the server would write (`started`, `data` with an id,
///   `stopped`, an error on the request, a refusal, a parse error) is JSON, echoes the
///   request's id exactly as sent (or `null`), and an error carries tRPC's shape with its code
///   and status; a request's input never keeps `lastEventId`, and its resume id is a valid one;
/// - tRPC connection params: accepted only from a JSON object, and then each is the string sent;
/// - oRPC: an answer to a request (a value, an error, the stream's opening, an event) is JSON
///   and echoes its id exactly; a call refused at decoding is a 4xx; an accepted call's path is
///   a valid procedure path; header names are lower case; an abort was `t: 4`.
pub fn ws_messages(data: &[u8]) {
    let Some((&knob, rest)) = data.split_first() else {
        return;
    };
    let text = lossy(rest);
    if knob & 1 == 0 {
        trpc_ws_message(&text);
    } else {
        orpc_ws_message(&text);
    }
}

fn trpc_ws_message(text: &str) {
    let sent = serde_json::from_str::<Value>(text).ok();
    match trpc_ws::decode(text) {
        Err(error) => {
            let frame = parse_json(error.frame().as_bytes(), "a parse error");
            assert_eq!(frame["id"], Value::Null);
            assert_eq!(frame["error"]["data"]["code"], "PARSE_ERROR");
            assert_eq!(frame["error"]["data"]["httpStatus"], 400);
            assert_eq!(frame["error"]["message"], error.message());
        }
        Ok(messages) => {
            match (&sent, text) {
                (_, trpc_ws::PING | trpc_ws::PONG) => assert_eq!(messages.len(), 1),
                (Some(Value::Array(sent)), _) => {
                    assert_eq!(messages.len(), sent.len());
                    assert!(sent.len() <= trpc::MAX_BATCH);
                }
                (Some(Value::Object(_)), _) => assert_eq!(messages.len(), 1),
                (other, _) => panic!("accepted {other:?} from {text:?}"),
            }
            let sent_ids: Vec<Value> = match &sent {
                Some(Value::Array(sent)) => sent.iter().map(|m| m["id"].clone()).collect(),
                Some(one) => vec![one["id"].clone()],
                None => Vec::new(),
            };
            for (i, message) in messages.into_iter().enumerate() {
                check_trpc_ws_message(message, sent_ids.get(i));
            }
        }
    }
    if let Ok(params) = trpc_ws::decode_connection_params(text) {
        assert!(
            matches!(sent, Some(Value::Object(_))),
            "params from {text:?}"
        );
        for (name, value) in params.iter().flat_map(|params| params.iter()) {
            let sent = sent.as_ref().and_then(|sent| sent["data"].get(name));
            assert_eq!(sent, Some(&json!(value)), "param {name} is the string sent");
        }
    }
}

fn check_trpc_ws_message(message: trpc_ws::ClientMessage, sent_id: Option<&Value>) {
    let echoes = |frame: &str, what: &str| {
        let frame = parse_json(frame.as_bytes(), what);
        assert_eq!(Some(&frame["id"]), sent_id, "{what} echoes the id");
        frame
    };
    match message {
        trpc_ws::ClientMessage::Ping | trpc_ws::ClientMessage::Pong => {}
        trpc_ws::ClientMessage::Stop(id) => {
            echoes(&trpc_ws::stopped(&id), "stopped");
        }
        trpc_ws::ClientMessage::Refused(frame) => {
            let frame = parse_json(frame.as_bytes(), "a refusal");
            let status = frame["error"]["data"]["httpStatus"].as_u64().unwrap_or(0);
            assert!(
                (400..500).contains(&status),
                "refused with {status}: {frame}"
            );
        }
        trpc_ws::ClientMessage::Request(request) => {
            echoes(&trpc_ws::started(&request.id), "started");
            let tracked = EventId::new("7").expect("a valid id");
            let data = echoes(
                &trpc_ws::data(&request.id, "[1]", Some(&tracked)),
                "tracked data",
            );
            assert_eq!(data["result"]["id"], "7");
            assert_eq!(data["result"]["data"], json!({"id": "7", "data": [1]}));
            let error = RpcError::new(ErrorCode::BAD_REQUEST, "nope");
            let refused = echoes(
                &trpc_ws::error(&request.id, &error, &request.path),
                "an error",
            );
            assert_eq!(refused["error"]["data"]["code"], "BAD_REQUEST");
            assert_eq!(refused["error"]["data"]["path"], request.path.as_str());
            if let Some(Value::Object(input)) = &request.input {
                assert!(!input.contains_key("lastEventId"), "{input:?}");
                assert!(!input.is_empty(), "an empty object left behind");
            }
            if let Some(id) = &request.last_event_id {
                assert!(EventId::new(id.as_str()).is_ok());
            }
        }
    }
}

fn orpc_ws_message(text: &str) {
    let Ok(message) = orpc_ws::decode(text) else {
        return;
    };
    let sent: Value = parse_json(text.as_bytes(), "an accepted message");
    let echoes = |frame: &str, what: &str| {
        let frame = parse_json(frame.as_bytes(), what);
        assert_eq!(frame["i"], sent["i"], "{what} echoes the id");
        frame
    };
    match message {
        orpc_ws::ClientMessage::Abort(id) => {
            assert_eq!(sent["t"].as_u64(), Some(4));
            echoes(&orpc_ws::not_found(&id), "not found");
        }
        orpc_ws::ClientMessage::ClientEvent(_) => assert_eq!(sent["t"].as_u64(), Some(3)),
        orpc_ws::ClientMessage::Request { id, call, headers } => {
            for (name, _) in &headers {
                assert_eq!(name, &name.to_ascii_lowercase());
            }
            echoes(&orpc_ws::stream_opened(&id), "the stream's opening");
            let value = orpc_ws::response(&id, 200, &orpc::value_body(&raw(&json!([1]))));
            assert_eq!(echoes(&value, "a value")["p"]["b"]["json"], json!([1]));
            let event = orpc_ws::event(&id, Frame::Event(tracked(3, raw(&json!(1))).unwrap()));
            assert_eq!(echoes(&event, "an event")["p"]["m"]["id"], "3");
            match call {
                Ok(call) => {
                    assert!(check_path(&call.path).is_ok(), "{:?}", call.path);
                }
                Err(error) => {
                    let status = error.status();
                    assert!((400..500).contains(&status), "refused with {status}");
                    let refused = echoes(&orpc_ws::error(&id, &error), "an error");
                    assert_eq!(refused["p"]["s"], status);
                }
            }
        }
    }
}
