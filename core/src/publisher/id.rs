//! The id the memory publisher gives each event: a per-topic sequence number, written as the
//! number. Not a general id type: other publishers bring their own.

use alloc::string::String;
use core::fmt;
use core::str::FromStr;

use crate::event::EventId;

/// The most digits a `u64` has in decimal.
const MAX_DIGITS: usize = 20;

/// The id [`MemoryPublisher`](super::MemoryPublisher) assigns to a published event: a `u64`
/// that only grows on a topic (the first event of a fresh publisher is 1).
///
/// Its text form, the SSE `id:` a client sends back as `Last-Event-ID`, is the number in
/// decimal, as apps number their rows (a chat's post 7 goes out as `id: 7`), and it serializes
/// as a JSON number, so the id an app puts in its data and the SSE id read the same.
/// [`SeqId::parse`] accepts exactly that form (no sign, no leading zero, no space), so a
/// foreign or mangled id is refused rather than read as some other position, and each id has
/// one text.
///
/// ```
/// use outer_core::publisher::SeqId;
/// let id = SeqId::new(42);
/// assert_eq!(id.to_string(), "42");
/// assert_eq!(SeqId::parse("42").unwrap(), id);
/// assert_eq!(serde_json::to_string(&id).unwrap(), "42");
/// assert!(SeqId::parse("042").is_err());
/// assert!(SeqId::parse("+42").is_err());
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

    /// Reads the text form: the number in decimal, without sign or leading zero.
    pub fn parse(text: &str) -> Result<Self, MalformedId> {
        let malformed = |reason| MalformedId {
            text: excerpt(text),
            reason,
        };
        if text.is_empty() || text.len() > MAX_DIGITS {
            return Err(malformed("it must be 1 to 20 digits long"));
        }
        if !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(malformed("it must hold only the digits 0-9"));
        }
        if text.len() > 1 && text.starts_with('0') {
            return Err(malformed("it must not start with 0"));
        }
        // Digits only, so the one way to fail is a number past u64::MAX.
        text.parse::<u64>()
            .map(Self)
            .map_err(|_| malformed("it is larger than any id"))
    }
}

impl fmt::Display for SeqId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for SeqId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SeqId({})", self.0)
    }
}

impl serde::Serialize for SeqId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.0)
    }
}

/// A JSON number in TypeScript, as it serializes.
#[cfg(feature = "typescript")]
impl ts_rs::TS for SeqId {
    type WithoutGenerics = Self;
    type OptionInnerType = Self;

    fn name(_: &ts_rs::Config) -> String {
        String::from("number")
    }

    fn inline(cfg: &ts_rs::Config) -> String {
        Self::name(cfg)
    }
}

impl<'de> serde::Deserialize<'de> for SeqId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        u64::deserialize(deserializer).map(Self)
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
        // The same text as an integer's id.
        EventId::from(id.0)
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
            "malformed last event id {:?}: {} (expected a decimal number without leading zeros, as this server sent it)",
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
            assert_eq!(text, seq.to_string());
            assert_eq!(SeqId::parse(&text), Ok(SeqId::new(seq)), "{text}");
        }
    }

    #[test]
    fn malformed_ids_are_refused_with_a_reason() {
        for bad in [
            "",
            "2a",
            "042",
            "-1",
            "+1",
            " 42",
            "0x2a",
            "18446744073709551616",
            "4é",
        ] {
            let err = SeqId::parse(bad).unwrap_err();
            assert_eq!(err.text(), bad);
            assert!(err.to_string().contains("malformed last event id"), "{err}");
        }
        let long = "9".repeat(1000);
        assert_eq!(SeqId::parse(&long).unwrap_err().text().len(), 64);
    }

    #[test]
    fn event_ids_carry_the_text_form() {
        assert_eq!(EventId::from(SeqId::new(3)).as_str(), "3");
    }
}
