//! Writing SSE events: fields go out in the order the caller writes them, because oRPC and tRPC
//! order them differently and their clients were checked against those exact bytes.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use memchr::{memchr2, memchr3};

/// A buffer the encoder appends to: `String` and `Vec<u8>` out of the box.
///
/// Implement it for your own byte buffer if neither fits; the encoder only ever appends text,
/// and after a refused field rolls the buffer back to a length it read earlier.
pub trait SseBuf {
    /// Appends `text`.
    fn push_str(&mut self, text: &str);
    /// The length in bytes, used to roll back a refused event.
    fn len(&self) -> usize;
    /// True when the buffer holds nothing.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Shortens the buffer to `len` bytes, a length that [`SseBuf::len`] returned before.
    fn truncate(&mut self, len: usize);
}

impl SseBuf for String {
    fn push_str(&mut self, text: &str) {
        String::push_str(self, text);
    }
    fn len(&self) -> usize {
        String::len(self)
    }
    fn truncate(&mut self, len: usize) {
        // `len` was read from this buffer before the encoder appended whole `&str`s to it, so it
        // lies on a char boundary and this cannot panic.
        String::truncate(self, len);
    }
}

impl SseBuf for Vec<u8> {
    fn push_str(&mut self, text: &str) {
        self.extend_from_slice(text.as_bytes());
    }
    fn len(&self) -> usize {
        Vec::len(self)
    }
    fn truncate(&mut self, len: usize) {
        Vec::truncate(self, len);
    }
}

/// A field the encoder refused because it would break the line it travels in.
///
/// ```
/// use outer_core::sse::EventWriter;
/// let mut buf = String::new();
/// let err = EventWriter::new(&mut buf).id("a\nb").data("x").finish().unwrap_err();
/// assert_eq!(err.field(), "id");
/// assert_eq!(err.to_string(), "an SSE `id` field must not contain LF");
/// assert!(buf.is_empty(), "a refused event leaves nothing behind");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncodeError {
    field: &'static str,
    found: char,
}

impl EncodeError {
    /// The refused field: `event` or `id`.
    pub fn field(&self) -> &'static str {
        self.field
    }

    /// The character that cannot appear in it: CR, LF or (in an id) NUL.
    pub fn found(&self) -> char {
        self.found
    }
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.found {
            '\r' => "CR",
            '\n' => "LF",
            _ => "NUL",
        };
        write!(f, "an SSE `{}` field must not contain {name}", self.field)
    }
}

impl core::error::Error for EncodeError {}

/// Writes one event into a buffer, field by field, in the order of the calls.
///
/// Each call appends its line(s) at once; [`finish`](EventWriter::finish) appends the blank
/// line that ends the event and reports whether a field was refused. A refused field (an event
/// type with CR or LF, an id with CR, LF or NUL) turns the following calls into no-ops and makes
/// `finish` roll the buffer back to what it held before [`EventWriter::new`], so a half-written
/// event never reaches the wire.
///
/// ```
/// use outer_core::sse::EventWriter;
/// use outer_core::EventId;
///
/// // oRPC: comments first, then event, retry, id, data.
/// let mut orpc = String::new();
/// let id = EventId::from(3u32);
/// EventWriter::new(&mut orpc).event("message").retry(1000).id(&id).data("{}").finish()?;
/// assert_eq!(orpc, "event: message\nretry: 1000\nid: 3\ndata: {}\n\n");
///
/// // tRPC: data before id, and one more blank line after every event.
/// let mut trpc = Vec::new();
/// EventWriter::new(&mut trpc).data("{\"n\":1}").id("1").finish_with_blank_line()?;
/// assert_eq!(trpc, b"data: {\"n\":1}\nid: 1\n\n\n");
///
/// // oRPC's keep-alive: a lone empty comment.
/// let mut ping = String::new();
/// EventWriter::new(&mut ping).comment("").finish()?;
/// assert_eq!(ping, ": \n\n");
/// # Ok::<(), outer_core::sse::EncodeError>(())
/// ```
#[derive(Debug)]
#[must_use = "an event is complete only once `finish` writes its blank line"]
pub struct EventWriter<'a, B: SseBuf + ?Sized> {
    buf: &'a mut B,
    start: usize,
    error: Option<EncodeError>,
}

impl<'a, B: SseBuf + ?Sized> EventWriter<'a, B> {
    /// Starts an event at the end of `buf`.
    pub fn new(buf: &'a mut B) -> Self {
        let start = buf.len();
        Self {
            buf,
            start,
            error: None,
        }
    }

    /// Writes `: text`, one comment line per line of `text` (split on CR, LF and CRLF).
    /// Readers ignore comments; an empty one makes a keep-alive.
    pub fn comment(self, text: &str) -> Self {
        self.lines(": ", text)
    }

    /// Writes `event: name`. Refused if `name` contains CR or LF.
    pub fn event(mut self, name: &str) -> Self {
        if self.error.is_none() {
            match find_line_break(name) {
                Some(at) => self.error = Some(refused("event", name, at)),
                None => self.field("event: ", name),
            }
        }
        self
    }

    /// Writes `retry: millis`: the delay a client waits before it reconnects.
    pub fn retry(self, millis: u64) -> Self {
        if self.error.is_none() {
            // Writing into an `SseBuf` cannot fail.
            let _ = fmt::write(
                &mut Adapter(&mut *self.buf),
                format_args!("retry: {millis}\n"),
            );
        }
        self
    }

    /// Writes `id: id`. Refused if `id` contains CR, LF or NUL (an [`EventId`] never does).
    /// An empty id is legal: it tells the client to forget the last one.
    ///
    /// [`EventId`]: crate::EventId
    pub fn id(mut self, id: impl AsRef<str>) -> Self {
        let id = id.as_ref();
        if self.error.is_none() {
            match find_line_break_or_nul(id) {
                Some(at) => self.error = Some(refused("id", id, at)),
                None => self.field("id: ", id),
            }
        }
        self
    }

    /// Writes `data: line` for each line of `text` (split on CR, LF and CRLF, so a reader gets
    /// the lines back joined with LF). Empty text still writes one `data: ` line. Calling it
    /// twice is the same as calling it once with the two texts joined by LF.
    pub fn data(self, text: &str) -> Self {
        self.lines("data: ", text)
    }

    /// Writes the `data:` lines of the text `parts` make when joined, as
    /// [`data`](EventWriter::data)`(&parts.concat())` would, without building that text when it
    /// is one line (a framing that wraps each event's JSON in an envelope writes it this way,
    /// once per event for a published one, once per stream for a handler's own).
    ///
    /// ```
    /// use outer_core::sse::EventWriter;
    /// let mut out = String::new();
    /// EventWriter::new(&mut out).data_parts(&["{\"json\":", "[1,2]", "}"]).finish()?;
    /// assert_eq!(out, "data: {\"json\":[1,2]}\n\n");
    /// let mut lines = String::new();
    /// EventWriter::new(&mut lines).data_parts(&["a\r", "\nb"]).finish()?;
    /// assert_eq!(lines, "data: a\ndata: b\n\n");
    /// # Ok::<(), outer_core::sse::EncodeError>(())
    /// ```
    pub fn data_parts(self, parts: &[&str]) -> Self {
        if self.error.is_some() {
            return self;
        }
        if parts.iter().any(|part| has_line_break(part)) {
            // Line breaks (rare in JSON, and a CRLF may straddle two parts): split the whole.
            return self.lines("data: ", &parts.concat());
        }
        self.buf.push_str("data: ");
        for part in parts {
            self.buf.push_str(part);
        }
        self.buf.push_str("\n");
        self
    }

    /// Ends the event with a blank line.
    pub fn finish(self) -> Result<(), EncodeError> {
        self.end("\n")
    }

    /// Ends the event with a blank line and adds one more, as tRPC does after every event.
    pub fn finish_with_blank_line(self) -> Result<(), EncodeError> {
        self.end("\n\n")
    }

    fn end(self, tail: &str) -> Result<(), EncodeError> {
        match self.error {
            Some(error) => {
                self.buf.truncate(self.start);
                Err(error)
            }
            None => {
                self.buf.push_str(tail);
                Ok(())
            }
        }
    }

    fn field(&mut self, prefix: &str, value: &str) {
        self.buf.push_str(prefix);
        self.buf.push_str(value);
        self.buf.push_str("\n");
    }

    fn lines(mut self, prefix: &str, text: &str) -> Self {
        if self.error.is_none() {
            let mut rest = text;
            while let Some(at) = find_line_break(rest) {
                // CR and LF are ASCII, so `at` and `at + 1` are char boundaries.
                let (line, tail) = rest.split_at(at);
                self.field(prefix, line);
                rest = match tail.strip_prefix("\r\n") {
                    Some(after) => after,
                    None => &tail[1..],
                };
            }
            self.field(prefix, rest);
        }
        self
    }
}

/// Below this length a text is searched byte by byte: memchr's set-up costs more than it saves
/// on the short fields every event has (`message`, an id, an envelope's `{"json":`).
const SHORT: usize = 32;

/// Where `text`'s first CR or LF is.
fn find_line_break(text: &str) -> Option<usize> {
    if text.len() < SHORT {
        text.bytes().position(|b| b == b'\r' || b == b'\n')
    } else {
        memchr2(b'\r', b'\n', text.as_bytes())
    }
}

/// Where `text`'s first CR, LF or NUL is.
fn find_line_break_or_nul(text: &str) -> Option<usize> {
    if text.len() < SHORT {
        text.bytes()
            .position(|b| b == b'\r' || b == b'\n' || b == b'\0')
    } else {
        memchr3(b'\r', b'\n', b'\0', text.as_bytes())
    }
}

fn has_line_break(text: &str) -> bool {
    find_line_break(text).is_some()
}

fn refused(field: &'static str, text: &str, at: usize) -> EncodeError {
    // `at` indexes an ASCII byte (CR, LF or NUL), which is that char.
    let found = char::from(text.as_bytes()[at]);
    EncodeError { field, found }
}

/// Lets `format_args!` write straight into an [`SseBuf`], with no temporary string.
struct Adapter<'b, B: SseBuf + ?Sized>(&'b mut B);

impl<B: SseBuf + ?Sized> fmt::Write for Adapter<'_, B> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        self.0.push_str(text);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sse::SseEvent;
    use crate::EventId;
    use alloc::string::ToString;

    fn written(f: impl FnOnce(EventWriter<'_, String>) -> Result<(), EncodeError>) -> String {
        let mut buf = String::new();
        f(EventWriter::new(&mut buf)).unwrap();
        buf
    }

    #[test]
    fn fields_are_written_in_call_order() {
        let out = written(|w| {
            w.id("1")
                .data("x")
                .retry(5)
                .event("e")
                .comment("c")
                .finish()
        });
        assert_eq!(out, "id: 1\ndata: x\nretry: 5\nevent: e\n: c\n\n");
    }

    #[test]
    fn orpc_event_matches_the_capture_byte_for_byte() {
        let out = written(|w| {
            w.event("message")
                .retry(1000)
                .id(EventId::from(3u8))
                .data(r#"{"json":{"n":3}}"#)
                .finish()
        });
        assert_eq!(
            out,
            "event: message\nretry: 1000\nid: 3\ndata: {\"json\":{\"n\":3}}\n\n"
        );
        let done = written(|w| w.event("done").data("").finish());
        assert_eq!(done, "event: done\ndata: \n\n");
    }

    #[test]
    fn trpc_events_match_the_capture_byte_for_byte() {
        let tracked = written(|w| w.data(r#"{"n":1}"#).id("1").finish_with_blank_line());
        assert_eq!(tracked, "data: {\"n\":1}\nid: 1\n\n\n");
        let ping = written(|w| w.event("ping").data("").finish_with_blank_line());
        assert_eq!(ping, "event: ping\ndata: \n\n\n");
        let restore = written(|w| w.data("{}").id("").finish_with_blank_line());
        assert_eq!(restore, "data: {}\nid: \n\n\n");
    }

    #[test]
    fn keep_alive_comment_is_colon_space_and_blank_line() {
        assert_eq!(written(|w| w.comment("").finish()), ": \n\n");
    }

    #[test]
    fn comment_with_line_breaks_becomes_several_comment_lines() {
        let out = written(|w| w.comment("a\nb\r\nc\rd").event("x").finish());
        assert_eq!(out, ": a\n: b\n: c\n: d\nevent: x\n\n");
    }

    #[test]
    fn multi_line_data_is_split_on_cr_lf_and_crlf() {
        let out = written(|w| w.data("a\nb\r\nc\rd\n").finish());
        assert_eq!(out, "data: a\ndata: b\ndata: c\ndata: d\ndata: \n\n");
        let out = written(|w| w.data("\r\r\n").finish());
        assert_eq!(out, "data: \ndata: \ndata: \n\n");
    }

    #[test]
    fn empty_data_still_writes_a_data_line() {
        assert_eq!(written(|w| w.data("").finish()), "data: \n\n");
    }

    #[test]
    fn data_keeps_leading_spaces_after_the_one_separator_space() {
        assert_eq!(written(|w| w.data(" x").finish()), "data:  x\n\n");
    }

    #[test]
    fn event_name_with_line_break_is_refused_and_buffer_is_rolled_back() {
        let mut buf = String::from("earlier\n\n");
        let err = EventWriter::new(&mut buf)
            .comment("c")
            .event("a\rb")
            .data("x")
            .finish()
            .unwrap_err();
        assert_eq!((err.field(), err.found()), ("event", '\r'));
        assert_eq!(err.to_string(), "an SSE `event` field must not contain CR");
        assert_eq!(buf, "earlier\n\n");
    }

    #[test]
    fn id_with_cr_lf_or_nul_is_refused() {
        for (bad, found) in [("1\r", '\r'), ("\n1", '\n'), ("a\0b", '\0')] {
            let mut buf = Vec::new();
            let err = EventWriter::new(&mut buf)
                .id(bad)
                .data("x")
                .finish_with_blank_line()
                .unwrap_err();
            assert_eq!((err.field(), err.found()), ("id", found));
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn event_name_may_contain_nul() {
        assert_eq!(written(|w| w.event("a\0").finish()), "event: a\0\n\n");
    }

    #[test]
    fn retry_is_written_in_decimal_milliseconds() {
        assert_eq!(written(|w| w.retry(0).finish()), "retry: 0\n\n");
        let max = written(|w| w.retry(u64::MAX).finish());
        assert_eq!(max, "retry: 18446744073709551615\n\n");
    }

    #[test]
    fn sse_event_is_written_in_canonical_order() {
        let event = SseEvent::new("d")
            .with_event("e")
            .with_id("i")
            .with_retry(7);
        let mut buf = String::new();
        event.write_to(&mut buf).unwrap();
        assert_eq!(buf, "event: e\nretry: 7\nid: i\ndata: d\n\n");

        let mut buf = String::new();
        SseEvent::new("").with_event("").write_to(&mut buf).unwrap();
        assert_eq!(buf, "data: \n\n", "no event line for an empty type");

        let bad = SseEvent::new("d").with_id("x\ny");
        assert_eq!(bad.write_to(&mut buf).unwrap_err().field(), "id");
        assert_eq!(buf, "data: \n\n");
    }

    proptest::proptest! {
        /// Writing the parts is writing their concatenation, line breaks (CR, LF, CRLF, also
        /// one that straddles two parts) and all.
        #[test]
        fn data_parts_write_what_data_writes_for_the_joined_text(
            parts in proptest::collection::vec("[a\r\n{}\"é]{0,6}|[ax]{30,40}[\r\n]?[ax]{0,5}", 0..5)
        ) {
            let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
            let joined = written(|w| w.data(&parts.concat()).finish());
            let in_parts = written(|w| w.data_parts(&parts).finish());
            proptest::prop_assert_eq!(in_parts, joined);
        }
    }

    #[test]
    fn a_break_is_found_in_short_and_long_fields_alike() {
        for len in [0, 5, 31, 32, 33, 100] {
            let pad = "x".repeat(len);
            for bad in ["\r", "\n", "\0"] {
                let id = alloc::format!("{pad}{bad}y");
                let mut buf = String::new();
                let err = EventWriter::new(&mut buf).id(&id).data("d").finish();
                assert_eq!(
                    err.unwrap_err().found(),
                    bad.chars().next().unwrap(),
                    "{id:?}"
                );
                assert!(buf.is_empty());
            }
            for bad in ["\r", "\n"] {
                let name = alloc::format!("{pad}{bad}");
                let mut buf = String::new();
                let err = EventWriter::new(&mut buf).event(&name).data("d").finish();
                assert_eq!(err.unwrap_err().field(), "event", "{name:?}");
            }
            let name = alloc::format!("{pad}\0");
            assert!(EventWriter::new(&mut String::new())
                .event(&name)
                .finish()
                .is_ok());
            let lines = written(|w| w.data(&alloc::format!("{pad}\r\n{pad}")).finish());
            assert_eq!(lines, alloc::format!("data: {pad}\ndata: {pad}\n\n"));
        }
    }

    #[test]
    fn data_parts_after_a_refused_field_write_nothing() {
        let mut buf = String::from("kept");
        let result = EventWriter::new(&mut buf)
            .id("a\nb")
            .data_parts(&["x", "y"])
            .finish();
        assert!(result.is_err());
        assert_eq!(buf, "kept");
    }
}
