//! Reading SSE events from bytes as they arrive, by the WHATWG event-stream rules, in bounded
//! memory: the client side of a stream. It yields events; reconnecting is the caller's business.

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;
use core::{fmt, mem};

use memchr::{memchr, memchr2};

use super::SseEvent;

/// The UTF-8 byte order mark, skipped once at the start of a stream.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Data up to this size is copied out of the decoder's buffer, which keeps its capacity for the
/// next event (measured ~10% faster than moving it out and growing a new buffer each event);
/// larger data is moved out, so a rare big event does not pin its memory.
const COPY_OUT_MAX: usize = 4096;

/// How much one line and one event may hold, so a peer cannot make the decoder buffer without end.
///
/// ```
/// use outer_core::sse::{Limits, SseDecoder};
/// let small = Limits { max_line: 1024, ..Limits::default() };
/// let decoder = SseDecoder::with_limits(small);
/// assert_eq!(decoder.limits().max_event, 1024 * 1024);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The longest line, in bytes, without its line end. Default 64 KiB.
    pub max_line: usize,
    /// The largest data of one event, in bytes: its `data:` values joined with LF, after invalid
    /// UTF-8 was replaced. Default 1 MiB.
    pub max_event: usize,
}

impl Limits {
    /// 64 KiB per line, 1 MiB of data per event.
    pub const DEFAULT: Limits = Limits {
        max_line: 64 * 1024,
        max_event: 1024 * 1024,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A limit the input went over. The decoder skips the rest of that event and goes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// A line grew past [`Limits::max_line`] before its end was seen.
    LineTooLong {
        /// The limit, in bytes.
        limit: usize,
    },
    /// An event's data would have grown past [`Limits::max_event`].
    EventTooLarge {
        /// The limit, in bytes.
        limit: usize,
        /// The size the data would have reached with the refused line, in bytes.
        size: usize,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LineTooLong { limit } => {
                write!(f, "an SSE line is longer than the limit of {limit} bytes")
            }
            Self::EventTooLarge { limit, size } => write!(
                f,
                "an SSE event's data reached {size} bytes, over the limit of {limit} bytes"
            ),
        }
    }
}

impl core::error::Error for DecodeError {}

/// An incremental SSE decoder: bytes in, in chunks of any size, [`SseEvent`]s out.
///
/// Call [`next_event`](SseDecoder::next_event) with each chunk until it returns `Ok(None)`:
/// it consumes the chunk only up to the end of the next event and hands that event over, so
/// decoded events never queue up inside the decoder. Between calls it holds at most one partial
/// line (up to [`Limits::max_line`] bytes) and one partial event (up to [`Limits::max_event`]
/// bytes of data, plus an event type and an id of at most a line each), whatever the input and
/// however it is cut. Call [`finish`](SseDecoder::finish) at the end of the stream.
///
/// It follows the WHATWG event-stream rules: a leading UTF-8 BOM is skipped, lines end in CR, LF
/// or CRLF (also when CR and LF arrive in different chunks), `:` starts a comment, one space after
/// the field's colon is dropped, an event without `data` is not dispatched, invalid UTF-8 becomes
/// U+FFFD as in a browser.
///
/// **Errors**: going over a limit returns a [`DecodeError`]; the decoder then drops the event it
/// was reading and skips input up to the blank line that ends it (without buffering it), and
/// decodes normally from there. Nothing that event carried counts, its `id` included; a `retry`
/// read before the error still applies, as the rules apply it at once. To treat an error as
/// fatal, stop calling.
///
/// ```
/// use outer_core::sse::SseDecoder;
///
/// let mut decoder = SseDecoder::new();
/// let mut events = Vec::new();
/// for chunk in [&b"data: hel"[..], b"lo\r", b"\nid: 1\n\n: ping\n\nda", b"ta: bye\n\n"] {
///     let mut input = chunk;
///     while let Some(event) = decoder.next_event(&mut input)? {
///         events.push(event.data);
///     }
/// }
/// decoder.finish();
/// assert_eq!(events, ["hello", "bye"]);
/// assert_eq!(decoder.last_event_id(), "1");
/// # Ok::<(), outer_core::sse::DecodeError>(())
/// ```
#[derive(Clone, Debug)]
pub struct SseDecoder {
    limits: Limits,
    /// How many bytes of a BOM were seen at the stream start; `None` once past it.
    bom: Option<usize>,
    /// The previous chunk ended in CR: an LF starting the next one belongs to that line end.
    after_cr: bool,
    /// The start of a line whose end has not arrived yet (never while skipping).
    line: Vec<u8>,
    /// Skipping the rest of an event that went over a limit, up to its blank line.
    skipping: bool,
    /// While skipping: the current line has at least one byte, so its end is no blank line.
    skipped_line_has_bytes: bool,

    // The event being read.
    event_type: String,
    /// WHATWG's data buffer: every `data` value followed by LF.
    data: String,
    id: Option<String>,
    event_retry: Option<u64>,

    // What persists across events.
    last_event_id: String,
    retry: Option<u64>,
    /// Also hand out an event that has an `event` field but no data (see
    /// [`dispatch_dataless`](SseDecoder::dispatch_dataless)).
    typed_without_data: bool,
}

impl Default for SseDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl SseDecoder {
    /// A decoder with the [default limits](Limits::DEFAULT).
    pub fn new() -> Self {
        Self::with_limits(Limits::DEFAULT)
    }

    /// A decoder with the given limits.
    pub fn with_limits(limits: Limits) -> Self {
        Self {
            limits,
            bom: Some(0),
            after_cr: false,
            line: Vec::new(),
            skipping: false,
            skipped_line_has_bytes: false,
            event_type: String::new(),
            data: String::new(),
            id: None,
            event_retry: None,
            last_event_id: String::new(),
            retry: None,
            typed_without_data: false,
        }
    }

    /// Whether to also hand out an event with an `event` field and no `data` line, its data
    /// empty, where the WHATWG rules drop it. oRPC 2's parser does: its server ends a stream
    /// whose procedure returned nothing with `event: close` and no data, and sends a `message`
    /// for an `undefined` value the same way. Events with neither a type nor data (comments,
    /// keep-alives) are still not handed out.
    ///
    /// ```
    /// use outer_core::sse::SseDecoder;
    ///
    /// let mut input = &b": \n\nevent: close\n\n"[..];
    /// let mut decoder = SseDecoder::new().dispatch_dataless(true);
    /// let close = decoder.next_event(&mut input)?.expect("the close event");
    /// assert_eq!((close.event.as_str(), close.data.as_str()), ("close", ""));
    ///
    /// let mut input = &b"event: close\n\n"[..];
    /// assert_eq!(SseDecoder::new().next_event(&mut input)?, None);
    /// # Ok::<(), outer_core::sse::DecodeError>(())
    /// ```
    pub fn dispatch_dataless(mut self, dispatch: bool) -> Self {
        self.typed_without_data = dispatch;
        self
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The id a client sends back in `Last-Event-ID` when it reconnects: the last `id` field of
    /// the last ended event (empty until one, or after an empty `id:`). It survives
    /// [`finish`](SseDecoder::finish), as it does across an `EventSource`'s reconnects.
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// The reconnect delay in milliseconds from the last valid `retry` field, if any.
    pub fn retry(&self) -> Option<u64> {
        self.retry
    }

    /// Sets the id to resume from, e.g. one kept from an earlier connection.
    pub fn set_last_event_id(&mut self, id: impl Into<String>) {
        self.last_event_id = id.into();
    }

    /// Reads `input` up to the end of the next event and returns it, advancing `input` past
    /// what it read. Returns `Ok(None)` when `input` is used up without completing an event:
    /// the decoder keeps the partial line and event for the next chunk.
    ///
    /// On a [`DecodeError`], `input` is advanced past the offending bytes and the decoder skips
    /// the rest of that event; call again to go on.
    ///
    /// ```
    /// use outer_core::sse::SseDecoder;
    /// let mut decoder = SseDecoder::new();
    /// let mut input: &[u8] = b"event: a\ndata: 1\n\nevent: b\ndata: 2\n\ndata: 3";
    /// assert_eq!(decoder.next_event(&mut input)?.unwrap().event, "a");
    /// assert_eq!(input, b"event: b\ndata: 2\n\ndata: 3");
    /// assert_eq!(decoder.next_event(&mut input)?.unwrap().event, "b");
    /// assert_eq!(decoder.next_event(&mut input)?, None);
    /// assert!(input.is_empty());
    /// # Ok::<(), outer_core::sse::DecodeError>(())
    /// ```
    pub fn next_event(&mut self, input: &mut &[u8]) -> Result<Option<SseEvent>, DecodeError> {
        loop {
            if input.is_empty() {
                return Ok(None);
            }
            if self.bom.is_some() && !self.skip_bom(input) {
                return Ok(None);
            }
            if mem::take(&mut self.after_cr) && input.first() == Some(&b'\n') {
                *input = &input[1..];
                continue;
            }
            let Some(end) = memchr2(b'\n', b'\r', input) else {
                let rest = mem::take(input);
                self.keep_partial(rest)?;
                return Ok(None);
            };
            let part = &input[..end];
            self.after_cr = input[end] == b'\r';
            *input = &input[end + 1..];
            if let Some(event) = self.end_line(part)? {
                return Ok(Some(event));
            }
        }
    }

    /// Ends the stream: drops a partial line and a partial event (the rules never dispatch an
    /// event whose blank line did not arrive) and makes the decoder ready for a new stream, BOM
    /// included. [`last_event_id`](SseDecoder::last_event_id) and
    /// [`retry`](SseDecoder::retry) are kept, for the reconnect.
    pub fn finish(&mut self) {
        self.bom = Some(0);
        self.after_cr = false;
        self.line.clear();
        self.skipping = false;
        self.skipped_line_has_bytes = false;
        self.reset_event();
    }

    /// Consumes the BOM's bytes from the front of `input`. Returns false when `input` ran out
    /// while they still matched, so the next chunk must be looked at first.
    fn skip_bom(&mut self, input: &mut &[u8]) -> bool {
        let mut seen = self.bom.unwrap_or(BOM.len());
        while seen < BOM.len() {
            match input.first() {
                None => {
                    self.bom = Some(seen);
                    return false;
                }
                Some(&byte) if byte == BOM[seen] => {
                    seen += 1;
                    *input = &input[1..];
                }
                Some(_) => {
                    // Not a BOM after all: its first bytes were the start of the first line.
                    self.line.extend_from_slice(&BOM[..seen]);
                    break;
                }
            }
        }
        self.bom = None;
        true
    }

    /// Keeps bytes of a line whose end has not arrived, within the line limit.
    fn keep_partial(&mut self, part: &[u8]) -> Result<(), DecodeError> {
        if self.skipping {
            self.skipped_line_has_bytes |= !part.is_empty();
            return Ok(());
        }
        if self.line.len() + part.len() > self.limits.max_line {
            // The rest of this line is skipped with its event: its end is then no blank line.
            self.start_skipping(true);
            return Err(DecodeError::LineTooLong {
                limit: self.limits.max_line,
            });
        }
        let more = room_for(
            self.line.len(),
            self.line.capacity(),
            part.len(),
            self.limits.max_line,
        );
        self.line.reserve_exact(more);
        self.line.extend_from_slice(part);
        Ok(())
    }

    /// Handles a line whose end was just seen; `part` is its tail in the current chunk.
    fn end_line(&mut self, part: &[u8]) -> Result<Option<SseEvent>, DecodeError> {
        if self.skipping {
            if !self.skipped_line_has_bytes && part.is_empty() {
                self.skipping = false;
            }
            self.skipped_line_has_bytes = false;
            return Ok(None);
        }
        if self.line.len() + part.len() > self.limits.max_line {
            self.start_skipping(false);
            return Err(DecodeError::LineTooLong {
                limit: self.limits.max_line,
            });
        }
        if self.line.is_empty() {
            // The common case: the whole line is in this chunk, read it in place.
            return self.line_complete(part);
        }
        let mut line = mem::take(&mut self.line);
        line.reserve_exact(room_for(
            line.len(),
            line.capacity(),
            part.len(),
            self.limits.max_line,
        ));
        line.extend_from_slice(part);
        let result = self.line_complete(&line);
        line.clear();
        self.line = line;
        result
    }

    /// Applies one line, by the WHATWG rules.
    fn line_complete(&mut self, line: &[u8]) -> Result<Option<SseEvent>, DecodeError> {
        if line.is_empty() {
            return Ok(self.dispatch());
        }
        let (name, value) = match memchr(b':', line) {
            Some(0) => return Ok(None),
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        // Invalid UTF-8 is replaced value by value, not over the whole stream: CR, LF, `:` and
        // space are ASCII and so always end an invalid sequence, which makes the U+FFFDs come
        // out exactly as a browser's stream decoder puts them.
        match name {
            b"data" => {
                let value = lossy(value);
                let size = self.data.len() + value.len();
                if size > self.limits.max_event {
                    self.start_skipping(false);
                    return Err(DecodeError::EventTooLarge {
                        limit: self.limits.max_event,
                        size,
                    });
                }
                // The buffer also holds the LF after the value, hence the limit + 1.
                let more = room_for(
                    self.data.len(),
                    self.data.capacity(),
                    value.len() + 1,
                    self.limits.max_event.saturating_add(1),
                );
                self.data.reserve_exact(more);
                self.data.push_str(&value);
                self.data.push('\n');
            }
            b"event" => {
                self.event_type.clear();
                self.event_type.push_str(&lossy(value));
            }
            b"id" if memchr(0, value).is_none() => {
                self.id = Some(lossy(value).into_owned());
            }
            b"retry" => {
                if let Some(millis) = parse_millis(value) {
                    self.retry = Some(millis);
                    self.event_retry = Some(millis);
                }
            }
            // Unknown fields, and an id holding NUL, are ignored.
            _ => {}
        }
        Ok(None)
    }

    /// The blank line: hands out the event, if it has data, and starts the next one.
    fn dispatch(&mut self) -> Option<SseEvent> {
        let id = self.id.take();
        if let Some(id) = &id {
            self.last_event_id.clone_from(id);
        }
        let retry = self.event_retry.take();
        // The data buffer ends in LF whenever it is not empty: drop that last one.
        let typed = self.typed_without_data && !self.event_type.is_empty();
        if self.data.pop().is_none() && !typed {
            self.event_type.clear();
            return None;
        }
        let data = if self.data.len() <= COPY_OUT_MAX {
            let copy = String::from(self.data.as_str());
            self.data.clear();
            copy
        } else {
            mem::take(&mut self.data)
        };
        let event = if self.event_type.is_empty() {
            String::from("message")
        } else {
            let copy = String::from(self.event_type.as_str());
            self.event_type.clear();
            copy
        };
        Some(SseEvent {
            event,
            data,
            id,
            retry,
        })
    }

    fn start_skipping(&mut self, mid_line: bool) {
        self.line.clear();
        self.skipping = true;
        self.skipped_line_has_bytes = mid_line;
        self.reset_event();
    }

    fn reset_event(&mut self) {
        self.event_type.clear();
        self.data.clear();
        self.id = None;
        self.event_retry = None;
    }
}

/// Text from bytes, invalid UTF-8 replaced by U+FFFD. Tries `from_utf8` first: on valid text,
/// which is nearly all input, it measured faster than `from_utf8_lossy`'s chunk-by-chunk walk.
fn lossy(bytes: &[u8]) -> Cow<'_, str> {
    match core::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// How much to reserve so `len + extra` bytes fit: doubling as usual, so appends stay amortised
/// O(1), but never past `max` in all, so a limit of N bytes costs at most N bytes of capacity.
fn room_for(len: usize, capacity: usize, extra: usize, max: usize) -> usize {
    let needed = len.saturating_add(extra);
    if needed <= capacity {
        return 0;
    }
    let target = capacity.saturating_mul(2).clamp(needed, max.max(needed));
    target - len
}

/// A `retry` value: ASCII digits only, at least one, fitting in a u64; anything else is ignored.
fn parse_millis(value: &[u8]) -> Option<u64> {
    if value.is_empty() {
        return None;
    }
    value.iter().try_fold(0u64, |acc, &byte| {
        let digit = char::from(byte).to_digit(10)?;
        acc.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    /// Decodes `chunks` in order and returns every event, panicking on errors.
    fn decode_chunks(decoder: &mut SseDecoder, chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut events = Vec::new();
        for chunk in chunks {
            let mut input = *chunk;
            while let Some(event) = decoder.next_event(&mut input).unwrap() {
                events.push(event);
            }
            assert!(input.is_empty());
        }
        events
    }

    fn decode(stream: &[u8]) -> Vec<SseEvent> {
        decode_chunks(&mut SseDecoder::new(), &[stream])
    }

    fn data_of(events: &[SseEvent]) -> Vec<&str> {
        events.iter().map(|e| e.data.as_str()).collect()
    }

    /// Every event and error, decoding one byte at a time and going on after errors.
    fn outcomes(decoder: &mut SseDecoder, stream: &[u8]) -> Vec<Result<SseEvent, DecodeError>> {
        let mut out = Vec::new();
        for byte in stream.chunks(1) {
            let mut input = byte;
            loop {
                match decoder.next_event(&mut input) {
                    Ok(Some(event)) => out.push(Ok(event)),
                    Ok(None) => break,
                    Err(e) => out.push(Err(e)),
                }
            }
        }
        out
    }

    #[test]
    fn bom_at_stream_start_is_skipped() {
        let events = decode(b"\xEF\xBB\xBFdata: a\n\n");
        assert_eq!(data_of(&events), ["a"]);
    }

    #[test]
    fn bom_split_across_chunks_is_skipped() {
        let mut decoder = SseDecoder::new();
        let events = decode_chunks(&mut decoder, &[b"\xEF", b"\xBB", b"\xBFdata: a\n\n"]);
        assert_eq!(data_of(&events), ["a"]);
    }

    #[test]
    fn bom_is_skipped_only_once() {
        // A second BOM is part of the field name, which is then unknown.
        let events = decode(b"\xEF\xBB\xBF\xEF\xBB\xBFdata: a\n\ndata: b\n\n");
        assert_eq!(data_of(&events), ["b"]);
        let events = decode(b"data: a\n\n\xEF\xBB\xBFdata: b\n\n");
        assert_eq!(data_of(&events), ["a"]);
    }

    #[test]
    fn incomplete_bom_is_kept_as_bytes_of_the_first_line() {
        let events = decode(b"\xEF\xBB: comment?\ndata: a\n\n");
        assert_eq!(data_of(&events), ["a"]);
        let events = decode(b"\xEF\xBBdata: a\n\n");
        assert!(events.is_empty(), "the field name is not `data`");
        let events = decode(b"\xEFdata:\n\ndata: b\n\n");
        assert_eq!(data_of(&events), ["b"]);
    }

    #[test]
    fn lf_cr_and_crlf_all_end_lines() {
        let events = decode(b"data: a\ndata: b\rdata: c\r\n\r\ndata: d\r\rdata: e\n\n");
        assert_eq!(data_of(&events), ["a\nb\nc", "d", "e"]);
    }

    #[test]
    fn crlf_split_across_chunks_is_one_line_end() {
        let mut decoder = SseDecoder::new();
        let events = decode_chunks(
            &mut decoder,
            &[b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"],
        );
        assert_eq!(data_of(&events), ["a\nb"]);
    }

    #[test]
    fn cr_at_chunk_end_dispatches_without_waiting_for_the_next_chunk() {
        let mut decoder = SseDecoder::new();
        let mut input: &[u8] = b"data: a\r\r";
        assert_eq!(decoder.next_event(&mut input).unwrap().unwrap().data, "a");
        // The LF that may follow is swallowed, a second one is a blank line.
        let events = decode_chunks(&mut decoder, &[b"\n", b"data: b\n\n"]);
        assert_eq!(data_of(&events), ["b"]);
    }

    #[test]
    fn cr_cr_is_two_line_ends() {
        assert_eq!(data_of(&decode(b"data: a\r\rdata: b\r\r")), ["a", "b"]);
    }

    #[test]
    fn comment_lines_are_ignored() {
        let events = decode(b": hello\ndata: a\n:\n: data: b\n\n: \n\n");
        assert_eq!(data_of(&events), ["a"]);
    }

    #[test]
    fn one_leading_space_of_value_is_stripped() {
        let events = decode(b"data:x\n\ndata: x\n\ndata:  x\n\ndata:\tx\n\n");
        assert_eq!(data_of(&events), ["x", "x", " x", "\tx"]);
    }

    #[test]
    fn value_runs_from_the_first_colon() {
        assert_eq!(data_of(&decode(b"data: a: b:c\n\n")), ["a: b:c"]);
    }

    #[test]
    fn line_without_colon_is_a_field_with_empty_value() {
        let events = decode(b"data\n\nevent\ndata\ndata\n\n");
        assert_eq!(events[0].data, "");
        assert_eq!(events[1].data, "\n");
        assert_eq!(events[1].event, "message");
    }

    #[test]
    fn data_lines_are_joined_with_lf() {
        assert_eq!(data_of(&decode(b"data: a\ndata:\ndata: c\n\n")), ["a\n\nc"]);
    }

    #[test]
    fn empty_data_line_dispatches_an_event_with_empty_data() {
        let events = decode(b"event: ping\ndata: \n\n");
        assert_eq!(events, [SseEvent::new("").with_event("ping")]);
    }

    #[test]
    fn event_type_defaults_to_message() {
        let events = decode(b"data: a\n\nevent:\ndata: b\n\nevent: x\ndata: c\n\n");
        let types: Vec<_> = events.iter().map(|e| e.event.as_str()).collect();
        assert_eq!(types, ["message", "message", "x"]);
    }

    #[test]
    fn later_event_field_wins() {
        assert_eq!(decode(b"event: a\nevent: b\ndata\n\n")[0].event, "b");
    }

    #[test]
    fn blank_line_without_data_dispatches_nothing_and_resets_event_type() {
        let events = decode(b"event: lost\n\ndata: a\n\n");
        assert_eq!(events, [SseEvent::new("a")]);
    }

    #[test]
    fn id_sets_last_event_id_which_persists() {
        let mut decoder = SseDecoder::new();
        let events = decode_chunks(&mut decoder, &[b"id: 1\ndata: a\n\ndata: b\n\n"]);
        assert_eq!(events[0].id.as_deref(), Some("1"));
        assert_eq!(events[1].id, None, "the event itself had no id");
        assert_eq!(decoder.last_event_id(), "1");
    }

    #[test]
    fn last_event_id_changes_at_the_blank_line() {
        let mut decoder = SseDecoder::new();
        decode_chunks(&mut decoder, &[b"id: 1\ndata: a\n\nid: 2\ndata: b\n"]);
        assert_eq!(decoder.last_event_id(), "1");
        decode_chunks(&mut decoder, &[b"\n"]);
        assert_eq!(decoder.last_event_id(), "2");
    }

    #[test]
    fn last_event_id_updates_even_without_data() {
        let mut decoder = SseDecoder::new();
        assert!(decode_chunks(&mut decoder, &[b"id: 5\n\n"]).is_empty());
        assert_eq!(decoder.last_event_id(), "5");
    }

    #[test]
    fn id_with_nul_is_ignored() {
        let mut decoder = SseDecoder::new();
        let events = decode_chunks(&mut decoder, &[b"id: 1\n\nid: 2\0\ndata: a\n\n"]);
        assert_eq!(events[0].id, None);
        assert_eq!(decoder.last_event_id(), "1");
    }

    #[test]
    fn empty_id_resets_last_event_id() {
        let mut decoder = SseDecoder::new();
        let events = decode_chunks(&mut decoder, &[b"id: 1\n\nid\ndata: a\n\n"]);
        assert_eq!(events[0].id.as_deref(), Some(""));
        assert_eq!(decoder.last_event_id(), "");
    }

    #[test]
    fn retry_with_only_digits_sets_reconnection_time() {
        let mut decoder = SseDecoder::new();
        let events = decode_chunks(&mut decoder, &[b"retry: 1500\ndata: a\n\ndata: b\n\n"]);
        assert_eq!(events[0].retry, Some(1500));
        assert_eq!(events[1].retry, None);
        assert_eq!(decoder.retry(), Some(1500));
    }

    #[test]
    fn retry_applies_even_without_data_or_blank_line() {
        let mut decoder = SseDecoder::new();
        decode_chunks(&mut decoder, &[b"retry: 7\n"]);
        assert_eq!(decoder.retry(), Some(7));
    }

    #[test]
    fn retry_that_is_not_all_digits_is_ignored() {
        for bad in [
            &b"retry: 1s"[..],
            b"retry: -1",
            b"retry: 1.5",
            b"retry:",
            b"retry:  1",
        ] {
            let mut decoder = SseDecoder::new();
            let mut stream = bad.to_vec();
            stream.extend_from_slice(b"\ndata: a\n\n");
            let events = decode_chunks(&mut decoder, &[&stream]);
            assert_eq!(events[0].retry, None, "{:?}", core::str::from_utf8(bad));
            assert_eq!(decoder.retry(), None);
        }
    }

    #[test]
    fn retry_too_big_for_u64_is_ignored() {
        let mut decoder = SseDecoder::new();
        decode_chunks(
            &mut decoder,
            &[b"retry: 5\nretry: 18446744073709551616\n\n"],
        );
        assert_eq!(decoder.retry(), Some(5));
        decode_chunks(&mut decoder, &[b"retry: 18446744073709551615\n\n"]);
        assert_eq!(decoder.retry(), Some(u64::MAX));
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let events = decode(b"foo: bar\nData: x\ndata: a\nDATA\n\n");
        assert_eq!(events, [SseEvent::new("a")]);
    }

    #[test]
    fn partial_event_at_end_of_stream_is_dropped() {
        let mut decoder = SseDecoder::new();
        assert!(decode_chunks(&mut decoder, &[b"id: 3\ndata: a\n"]).is_empty());
        decoder.finish();
        assert!(decode_chunks(&mut decoder, &[b"\n"]).is_empty());
        assert_eq!(
            decoder.last_event_id(),
            "",
            "the dropped event's id never counted"
        );
    }

    #[test]
    fn finish_keeps_last_event_id_and_retry_and_rearms_bom() {
        let mut decoder = SseDecoder::new();
        decode_chunks(
            &mut decoder,
            &[b"\xEF\xBB\xBFid: 4\nretry: 9\ndata: a\n\ndata: b"],
        );
        decoder.finish();
        assert_eq!((decoder.last_event_id(), decoder.retry()), ("4", Some(9)));
        let events = decode_chunks(&mut decoder, &[b"\xEF\xBB\xBFdata: c\n\n"]);
        assert_eq!(data_of(&events), ["c"]);
    }

    #[test]
    fn finish_forgets_a_pending_cr() {
        let mut decoder = SseDecoder::new();
        decode_chunks(&mut decoder, &[b"data: a\r"]);
        decoder.finish();
        // Had the CR been remembered, this LF would have been swallowed.
        assert!(decode_chunks(&mut decoder, &[b"\ndata: b\n\n"]).len() == 1);
    }

    #[test]
    fn invalid_utf8_is_replaced_like_a_browser_does() {
        let events = decode(b"data: a\xFFb\xE2\x82\n\n");
        assert_eq!(data_of(&events), ["a\u{FFFD}b\u{FFFD}"]);
        let events = decode(b"event: \xC3\ndata: \xF0\x9F\x98\n\n");
        assert_eq!(events[0].event, "\u{FFFD}");
        assert_eq!(events[0].data, "\u{FFFD}");
    }

    #[test]
    fn multibyte_char_split_across_chunks_is_kept_whole() {
        let bytes = "data: é€😀\n\n".as_bytes();
        for cut in 0..bytes.len() {
            let (a, b) = bytes.split_at(cut);
            let events = decode_chunks(&mut SseDecoder::new(), &[a, b]);
            assert_eq!(data_of(&events), ["é€😀"], "cut at {cut}");
        }
    }

    #[test]
    fn every_cut_of_a_stream_gives_the_same_events() {
        let stream =
            b"\xEF\xBB\xBF: hi\r\nevent: a\r\nid: 1\rdata: x\r\ndata: y\r\n\r\ndata: z\n\n";
        let whole = decode(stream);
        assert_eq!(whole.len(), 2);
        for cut in 0..stream.len() {
            let (a, b) = stream.split_at(cut);
            assert_eq!(
                decode_chunks(&mut SseDecoder::new(), &[a, b]),
                whole,
                "{cut}"
            );
        }
        let bytewise: Vec<_> = outcomes(&mut SseDecoder::new(), stream);
        assert_eq!(bytewise, whole.into_iter().map(Ok).collect::<Vec<_>>());
    }

    #[test]
    fn next_event_stops_right_after_each_event() {
        let mut decoder = SseDecoder::new();
        let mut input: &[u8] = b"data: 1\n\ndata: 2\n\n";
        assert_eq!(decoder.next_event(&mut input).unwrap().unwrap().data, "1");
        assert_eq!(input, b"data: 2\n\n");
    }

    #[test]
    fn trpc_stream_with_extra_blank_lines_decodes() {
        let stream = b"event: connected\ndata: {}\n\n\ndata: {\"n\":1}\nid: 1\n\n\n\
            event: ping\ndata: \n\n\nevent: return\ndata: \n\n\n";
        let mut decoder = SseDecoder::new();
        let events = decode_chunks(&mut decoder, &[stream]);
        assert_eq!(
            events,
            [
                SseEvent::new("{}").with_event("connected"),
                SseEvent::new("{\"n\":1}").with_id("1"),
                SseEvent::new("").with_event("ping"),
                SseEvent::new("").with_event("return"),
            ]
        );
        assert_eq!(decoder.last_event_id(), "1");
    }

    #[test]
    fn orpc_stream_decodes() {
        let stream = b": \n\nevent: message\nretry: 1000\nid: 3\ndata: {\"json\":{\"n\":3}}\n\n\
            : \n\nevent: done\ndata: {\"json\":{\"done\":true}}\n\n";
        let events = decode(stream);
        assert_eq!(
            events,
            [
                SseEvent::new("{\"json\":{\"n\":3}}")
                    .with_id("3")
                    .with_retry(1000),
                SseEvent::new("{\"json\":{\"done\":true}}").with_event("done"),
            ]
        );
    }

    #[test]
    fn dataless_named_events_are_dispatched_only_when_asked() {
        // oRPC 2: a `message` and a `close` for `undefined`, between comments and a lone id.
        let stream = b": \n\nevent: message\nid: 4\n\nid: 5\n\n: \n\nevent: close\n\ndata: x\n\n";
        assert_eq!(decode(stream), [SseEvent::new("x")]);
        let mut decoder = SseDecoder::new().dispatch_dataless(true);
        assert_eq!(
            decode_chunks(&mut decoder, &[stream]),
            [
                SseEvent::new("").with_event("message").with_id("4"),
                SseEvent::new("").with_event("close"),
                SseEvent::new("x"),
            ]
        );
        assert_eq!(decoder.last_event_id(), "5");
        // The type does not leak into the next event.
        let mut decoder = SseDecoder::new().dispatch_dataless(true);
        let events = decode_chunks(&mut decoder, &[b"event: close\n", b"\ndata: 1\n\n"]);
        assert_eq!(
            events,
            [SseEvent::new("").with_event("close"), SseEvent::new("1")]
        );
    }

    #[test]
    fn line_at_the_limit_is_accepted() {
        let limits = Limits {
            max_line: 8,
            max_event: 100,
        };
        let mut decoder = SseDecoder::with_limits(limits);
        let events = outcomes(&mut decoder, b"data: 12\n\n");
        assert_eq!(events, [Ok(SseEvent::new("12"))]);
    }

    #[test]
    fn overlong_line_is_an_error_and_decoding_resumes_after_its_event() {
        let limits = Limits {
            max_line: 8,
            max_event: 100,
        };
        let stream = b"data: a\n\nid: 1\ndata: 123\ndata: b\n\nid: 2\ndata: c\n\n";
        for chunked in [false, true] {
            let mut decoder = SseDecoder::with_limits(limits);
            let got = if chunked {
                outcomes(&mut decoder, stream)
            } else {
                let mut input = &stream[..];
                let mut got = Vec::new();
                while !input.is_empty() {
                    match decoder.next_event(&mut input) {
                        Ok(Some(event)) => got.push(Ok(event)),
                        Ok(None) => {}
                        Err(e) => got.push(Err(e)),
                    }
                }
                got
            };
            assert_eq!(
                got,
                [
                    Ok(SseEvent::new("a")),
                    Err(DecodeError::LineTooLong { limit: 8 }),
                    Ok(SseEvent::new("c").with_id("2")),
                ],
                "chunked: {chunked}"
            );
            assert_eq!(decoder.last_event_id(), "2");
        }
    }

    #[test]
    fn overlong_line_is_reported_before_its_end_arrives() {
        let mut decoder = SseDecoder::with_limits(Limits {
            max_line: 16,
            max_event: 100,
        });
        let mut input: &[u8] = &[b'x'; 17];
        let err = decoder.next_event(&mut input).unwrap_err();
        assert_eq!(err, DecodeError::LineTooLong { limit: 16 });
        assert_eq!(
            err.to_string(),
            "an SSE line is longer than the limit of 16 bytes"
        );
        assert!(input.is_empty());
        // The rest of the line is skipped quietly, without buffering, then the event's blank line.
        let rest = vec![b'y'; 1000];
        let mut input: &[u8] = &rest;
        assert_eq!(decoder.next_event(&mut input), Ok(None));
        let mut input: &[u8] = b"\ndata: dropped\n\ndata: kept\n\n";
        assert_eq!(
            decoder.next_event(&mut input).unwrap().unwrap().data,
            "kept"
        );
        assert_eq!(
            decoder.line.capacity(),
            0,
            "nothing of the long line was kept"
        );
    }

    #[test]
    fn overlong_line_ends_at_its_line_end_not_as_a_blank_line() {
        let mut decoder = SseDecoder::with_limits(Limits {
            max_line: 8,
            max_event: 100,
        });
        let got = outcomes(
            &mut decoder,
            b"data: long\ndata: same event\n\ndata: ok\n\n",
        );
        assert_eq!(
            got,
            [
                Err(DecodeError::LineTooLong { limit: 8 }),
                Ok(SseEvent::new("ok"))
            ]
        );
    }

    #[test]
    fn over_large_event_is_an_error_and_the_event_is_skipped() {
        let mut decoder = SseDecoder::with_limits(Limits {
            max_line: 100,
            max_event: 5,
        });
        let got = outcomes(
            &mut decoder,
            b"data: 12\ndata: 3\n\nid: 9\ndata: 12\ndata: 345\ndata: 6\n\ndata: ok\n\n",
        );
        assert_eq!(
            got,
            [
                Ok(SseEvent::new("12\n3")),
                Err(DecodeError::EventTooLarge { limit: 5, size: 6 }),
                Ok(SseEvent::new("ok")),
            ]
        );
        assert_eq!(
            decoder.last_event_id(),
            "",
            "the skipped event's id does not count"
        );
        let message = got[1].clone().unwrap_err().to_string();
        assert_eq!(
            message,
            "an SSE event's data reached 6 bytes, over the limit of 5 bytes"
        );
    }

    #[test]
    fn error_at_end_of_stream_then_finish_recovers() {
        let mut decoder = SseDecoder::with_limits(Limits {
            max_line: 4,
            max_event: 4,
        });
        let mut input: &[u8] = b"data: 12345";
        assert!(decoder.next_event(&mut input).is_err());
        decoder.finish();
        let events = decode_chunks(&mut decoder, &[b"data\n\n"]);
        assert_eq!(events, [SseEvent::new("")]);
    }

    #[test]
    fn big_data_is_moved_out_and_small_data_copied() {
        let mut stream = b"data: ".to_vec();
        stream.extend(core::iter::repeat_n(b'z', COPY_OUT_MAX + 1));
        stream.extend_from_slice(b"\n\ndata: small\n\n");
        let mut decoder = SseDecoder::new();
        let events = decode_chunks(&mut decoder, &[&stream]);
        assert_eq!(events[0].data.len(), COPY_OUT_MAX + 1);
        assert_eq!(events[1].data, "small");
        assert!(
            decoder.data.capacity() < COPY_OUT_MAX,
            "the big buffer left with its event"
        );
    }
}
