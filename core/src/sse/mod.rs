//! Server-Sent Events on the wire: an encoder that writes fields in whatever order a protocol
//! needs, and an incremental decoder that follows the WHATWG event-stream rules within bounded
//! memory. It knows nothing of oRPC or tRPC payloads (see the protocol modules), sockets or time.
//!
//! ```
//! use outer_core::sse::{EventWriter, SseDecoder, SseEvent};
//!
//! // Server side: fields go out in the order they are written (here oRPC's).
//! let mut wire = String::new();
//! EventWriter::new(&mut wire).event("message").id("1").data("{\"n\":1}").finish()?;
//! assert_eq!(wire, "event: message\nid: 1\ndata: {\"n\":1}\n\n");
//!
//! // Client side: feed bytes as they arrive, take events out as they complete.
//! let mut decoder = SseDecoder::new();
//! let mut input = wire.as_bytes();
//! let event = decoder.next_event(&mut input)?;
//! assert_eq!(event, Some(SseEvent::new("{\"n\":1}").with_id("1")));
//! assert_eq!(decoder.last_event_id(), "1");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod decode;
mod encode;

pub use decode::{DecodeError, Limits, SseDecoder};
pub use encode::{EncodeError, EventWriter, SseBuf};

use alloc::string::String;

/// One event as it travels in an SSE stream: what the decoder yields and what
/// [`SseEvent::write_to`] writes.
///
/// ```
/// use outer_core::sse::SseEvent;
/// let event = SseEvent::new("hi").with_event("greeting").with_id("7").with_retry(1000);
/// assert_eq!(event.event, "greeting");
/// assert_eq!(event.id.as_deref(), Some("7"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SseEvent {
    /// The event type; a stream that names none yields `message`.
    pub event: String,
    /// The data: several `data:` lines are joined with LF.
    pub data: String,
    /// The `id:` field of this very event, if it had one. The id a client resumes from persists
    /// across events: see [`SseDecoder::last_event_id`].
    pub id: Option<String>,
    /// The `retry:` field (reconnect delay in milliseconds) of this very event, if it had one.
    pub retry: Option<u64>,
}

impl SseEvent {
    /// A `message` event with this data and no id or retry.
    pub fn new(data: impl Into<String>) -> Self {
        Self {
            event: String::from("message"),
            data: data.into(),
            id: None,
            retry: None,
        }
    }

    /// Sets the event type.
    pub fn with_event(mut self, event: impl Into<String>) -> Self {
        self.event = event.into();
        self
    }

    /// Sets the id. It is checked when the event is written, not here.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Sets the reconnect delay in milliseconds.
    pub fn with_retry(mut self, millis: u64) -> Self {
        self.retry = Some(millis);
        self
    }

    /// Appends the event to `buf` in canonical order: `event`, `retry`, `id`, `data` (oRPC's
    /// order), then the blank line that ends it. An empty `event` writes no `event:` line (a
    /// reader takes it as `message`); the `data:` line is always written, even for empty data,
    /// since a reader drops an event that has none.
    ///
    /// On error (an event type with CR or LF, an id with CR, LF or NUL) `buf` is left as it was.
    ///
    /// ```
    /// use outer_core::sse::SseEvent;
    /// let mut buf = Vec::new();
    /// SseEvent::new("a\nb").with_id("9").with_retry(500).write_to(&mut buf)?;
    /// assert_eq!(buf, b"event: message\nretry: 500\nid: 9\ndata: a\ndata: b\n\n");
    /// # Ok::<(), outer_core::sse::EncodeError>(())
    /// ```
    pub fn write_to<B: SseBuf + ?Sized>(&self, buf: &mut B) -> Result<(), EncodeError> {
        let mut writer = EventWriter::new(buf);
        if !self.event.is_empty() {
            writer = writer.event(&self.event);
        }
        if let Some(millis) = self.retry {
            writer = writer.retry(millis);
        }
        if let Some(id) = &self.id {
            writer = writer.id(id);
        }
        writer.data(&self.data).finish()
    }
}
