//! The piece of an event stream a framing writes into: text, and bytes shared with other streams.
//! It exists so that a published event's frame, encoded once, reaches every subscriber's socket
//! without a copy; it is not a general rope.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use bytes::Bytes;

use crate::sse::SseBuf;

/// What an [`SseBody`](super::SseBody) hands out next, as a [`Framing`](super::Framing) writes
/// it: text ([`push_str`](Chunk::push_str)) and shared bytes ([`push_shared`](Chunk::push_shared)).
///
/// A chunk that is exactly one shared piece (one published event, the common case for a live
/// stream) goes out as those very bytes: a reference count, no copy. Anything more is joined
/// once, into one buffer, when it is written: the socket gets one contiguous chunk either way.
/// Joining rather than keeping a list of pieces costs a copy of the shared bytes when several
/// events go out together, which is a stream catching up: a vectored write would save it, at
/// the price of a list per chunk on every stream.
///
/// It is an [`SseBuf`], so an [`EventWriter`](crate::sse::EventWriter) writes straight into it.
///
/// ```
/// use bytes::Bytes;
/// use outer_core::protocol::Chunk;
/// let frame = Bytes::from("data: 1\n\n");
/// let mut alone = Chunk::new();
/// alone.push_shared(frame.clone());
/// assert_eq!(alone.into_bytes().as_ptr(), frame.as_ptr()); // the same bytes
///
/// let mut joined = Chunk::new();
/// joined.push_str(": \n\n");
/// joined.push_shared(frame);
/// assert_eq!(joined.into_bytes(), ": \n\ndata: 1\n\n");
/// ```
#[derive(Default)]
pub struct Chunk {
    /// Everything written so far, once it is more than one shared piece.
    buf: Vec<u8>,
    /// The one shared piece, while nothing else has been written.
    shared: Option<Bytes>,
    /// The room `buf` gets when it is first written (see [`Chunk::room`]).
    room: usize,
}

impl Chunk {
    /// An empty chunk.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty chunk with room for `bytes` of text, made now.
    pub fn with_capacity(bytes: usize) -> Self {
        Self {
            buf: Vec::with_capacity(bytes),
            ..Self::default()
        }
    }

    /// Asks for `bytes` of room, made when the chunk is first written as text or joined: a
    /// chunk that stays one shared piece allocates nothing.
    pub(crate) fn room(&mut self, bytes: usize) {
        self.room = bytes;
    }

    /// Whether the chunk has room set aside or written (as a `String`'s capacity would say).
    pub(crate) fn has_room(&self) -> bool {
        self.room != 0 || self.buf.capacity() != 0
    }

    /// Appends text.
    pub fn push_str(&mut self, text: &str) {
        self.join(text.len());
        self.buf.extend_from_slice(text.as_bytes());
    }

    /// Appends bytes shared with other streams: kept as they are when they are all the chunk
    /// holds, copied in otherwise. They must be UTF-8, as all of an event stream is.
    pub fn push_shared(&mut self, bytes: Bytes) {
        if self.shared.is_none() && self.buf.is_empty() {
            self.shared = Some(bytes);
            return;
        }
        self.join(bytes.len());
        self.buf.extend_from_slice(&bytes);
    }

    /// Moves the shared piece, if any, into `buf`, with room for `more` bytes after it.
    fn join(&mut self, more: usize) {
        let shared = self.shared.take();
        let held = shared.as_ref().map_or(0, Bytes::len);
        if self.buf.capacity() == 0 {
            self.buf.reserve(self.room.max(held + more));
        }
        if let Some(shared) = shared {
            self.buf.extend_from_slice(&shared);
        }
    }

    /// The length in bytes.
    pub fn len(&self) -> usize {
        match &self.shared {
            Some(shared) => shared.len(),
            None => self.buf.len(),
        }
    }

    /// Whether nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The chunk's bytes: the shared piece itself when it is all there is, else the joined
    /// buffer (moved, not copied).
    pub fn into_bytes(self) -> Bytes {
        match self.shared {
            Some(shared) => shared,
            None => Bytes::from(self.buf),
        }
    }

    /// The chunk as text: for tests and tools ([`orpc::encode_frames`](super::orpc::encode_frames)).
    pub fn into_string(self) -> String {
        let bytes = match self.shared {
            Some(shared) => Vec::from(shared),
            None => self.buf,
        };
        // Everything pushed is text, or shared bytes a framing wrote as text.
        String::from_utf8(bytes)
            .unwrap_or_else(|err| String::from_utf8_lossy(err.as_bytes()).into_owned())
    }
}

impl SseBuf for Chunk {
    fn push_str(&mut self, text: &str) {
        Chunk::push_str(self, text);
    }

    fn len(&self) -> usize {
        Chunk::len(self)
    }

    fn truncate(&mut self, len: usize) {
        if len < self.len() {
            self.join(0);
            self.buf.truncate(len);
        }
    }
}

impl fmt::Debug for Chunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chunk")
            .field("len", &self.len())
            .field("shared", &self.shared.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sse::EventWriter;

    #[test]
    fn one_shared_piece_goes_out_as_it_is_and_more_are_joined_once() {
        let a = Bytes::from_static(b"a");
        let mut one = Chunk::new();
        one.room(256);
        one.push_shared(a.clone());
        assert_eq!(one.len(), 1);
        assert_eq!(one.into_bytes().as_ptr(), a.as_ptr());

        let mut two = Chunk::new();
        two.push_shared(a.clone());
        two.push_shared(Bytes::from_static(b"b"));
        two.push_str("c");
        assert_eq!(two.len(), 3);
        assert_eq!(two.into_string(), "abc");
    }

    #[test]
    fn a_refused_field_rolls_back_a_shared_piece_too() {
        let mut chunk = Chunk::new();
        chunk.push_shared(Bytes::from_static(b"data: 1\n\n"));
        assert!(EventWriter::new(&mut chunk).id("a\nb").finish().is_err());
        assert_eq!(chunk.into_string(), "data: 1\n\n");
    }
}
