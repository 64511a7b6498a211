//! The id the memory publisher gives each event: a per-topic sequence number with a text form
//! that sorts like the number. Not a general id type: other publishers bring their own.

use alloc::string::String;
use core::fmt;
use core::str::FromStr;

use crate::event::EventId;

/// The number of hex digits in the text form of a [`SeqId`]: enough for every `u64`.
const WIDTH: usize = 16;

/// The id [`MemoryPublisher`](super::MemoryPublisher) assigns to a published event: a `u64`
/// that only grows on a topic (the first event of a fresh publisher is 1).
///
/// Its text form, the SSE `id:` a client sends back as `Last-Event-ID`, is the number in
/// exactly 16 lowercase hex digits. Fixed width makes the strings sort in the same order as the
/// numbers, so logs, caches and other stores can order them without parsing; hex keeps every
/// `u64` in 16 characters. [`SeqId::parse`] accepts exactly that form and nothing else, so a
/// foreign or mangled id is refused rather than read as some other position.
///
/// ```
/// use outer_core::publisher::SeqId;
/// let id = SeqId::new(42);
/// assert_eq!(id.to_string(), "000000000000002a");
/// assert_eq!(SeqId::parse("000000000000002a").unwrap(), id);
/// assert!(SeqId::new(9).to_string() < SeqId::new(10).to_string());
/// assert!(SeqId::parse("42").is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SeqId(u64);

impl SeqId {
    /// The id with this sequence number.
    pub const fn new(seq: u64) -> Self {
        Self(seq)
    }

    /// The sequence number.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// Reads the text form: exactly 16 lowercase hex digits.
    pub fn parse(text: &str) -> Result<Self, MalformedId> {
        let malformed = |reason| MalformedId {
            text: excerpt(text),
            reason,
        };
        if text.len() != WIDTH {
            return Err(malformed("it must be exactly 16 characters long"));
        }
        let mut seq = 0u64;
        for byte in text.bytes() {
            let digit = match byte {
                b'0'..=b'9' => byte - b'0',
                b'a'..=b'f' => byte - b'a' + 10,
                _ => return Err(malformed("it must hold only the digits 0-9 and a-f")),
            };
            // Sixteen hex digits fill a u64 exactly, so the shift never drops a set bit.
            seq = (seq << 4) | u64::from(digit);
        }
        Ok(Self(seq))
    }
}

impl fmt::Display for SeqId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Debug for SeqId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SeqId({})", self.0)
    }
}

impl FromStr for SeqId {
    type Err = MalformedId;
    fn from_str(text: &str) -> Result<Self, MalformedId> {
        Self::parse(text)
    }
}

impl From<u64> for SeqId {
    fn from(seq: u64) -> Self {
        Self(seq)
    }
}

impl From<SeqId> for u64 {
    fn from(id: SeqId) -> Self {
        id.0
    }
}

impl From<SeqId> for EventId {
    fn from(id: SeqId) -> Self {
        use alloc::string::ToString;
        // Hex digits are never CR, LF or NUL, so the check cannot fail; the fallback only spares
        // a panic path and is never taken.
        EventId::new(id.to_string()).unwrap_or_else(|_| EventId::from(id.0))
    }
}

impl crate::event::IntoEventId for SeqId {
    fn into_event_id(self) -> Result<EventId, crate::event::MetaError> {
        Ok(self.into())
    }
}

/// A last event id that is not the text form of a [`SeqId`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MalformedId {
    text: String,
    reason: &'static str,
}

impl MalformedId {
    /// The id as received (cut to its first 64 characters: it comes from a client).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Why it was refused.
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}

impl fmt::Display for MalformedId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "malformed last event id {:?}: {} (expected 16 lowercase hex digits, as this server sent it)",
            self.text, self.reason
        )
    }
}

impl core::error::Error for MalformedId {}

/// The id is client input of any length: keep enough to recognise it in a log, no more.
fn excerpt(text: &str) -> String {
    text.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec::Vec;

    #[test]
    fn text_form_round_trips_at_the_edges() {
        for seq in [
            0,
            1,
            9,
            10,
            255,
            256,
            u64::from(u32::MAX),
            u64::MAX - 1,
            u64::MAX,
        ] {
            let text = SeqId::new(seq).to_string();
            assert_eq!(text.len(), 16);
            assert_eq!(SeqId::parse(&text), Ok(SeqId::new(seq)), "{text}");
        }
    }

    #[test]
    fn text_forms_sort_in_id_order() {
        let mut seqs: Vec<u64> = [300, 2, 17, 16, u64::MAX, 0, 1 << 40, 15].into();
        let mut texts: Vec<_> = seqs.iter().map(|s| SeqId::new(*s).to_string()).collect();
        seqs.sort_unstable();
        texts.sort();
        let parsed: Vec<u64> = texts
            .iter()
            .map(|t| SeqId::parse(t).unwrap().get())
            .collect();
        assert_eq!(parsed, seqs);
    }

    #[test]
    fn malformed_ids_are_refused_with_a_reason() {
        for bad in [
            "",
            "2a",
            "000000000000002A",
            "00000000000000-1",
            "0x00000000000002a",
            " 000000000000002a",
            "00000000000000é",
        ] {
            let err = SeqId::parse(bad).unwrap_err();
            assert_eq!(err.text(), bad);
            assert!(err.to_string().contains("malformed last event id"), "{err}");
        }
        let long = "f".repeat(1000);
        assert_eq!(SeqId::parse(&long).unwrap_err().text().len(), 64);
    }

    #[test]
    fn event_ids_carry_the_text_form() {
        assert_eq!(EventId::from(SeqId::new(3)).as_str(), "0000000000000003");
    }
}
