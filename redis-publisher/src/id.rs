//! The id of an event in a Redis stream, `<milliseconds>-<sequence>`, as the event's SSE id.
//! Not a general Redis id parser: it reads back exactly the form this crate writes.

use std::fmt;
use std::str::FromStr;

use outer_core::event::{IntoEventId, MetaError};
use outer_core::EventId;

/// The id Redis gave an event when it was added to its topic's stream: `1700000000000-0` is the
/// first event added in millisecond 1700000000000.
///
/// Ids only grow on a stream, across every server instance that publishes to it, and survive a
/// Redis restart with persistence: that is what lets a client resume on any instance. The text
/// form is the SSE `id:` a client sends back as `Last-Event-ID`; [`StreamId::parse`] reads
/// exactly that form (two decimal numbers without leading zeros, joined by `-`) and nothing
/// else, so a foreign or mangled id is refused rather than read as some other position.
///
/// ```
/// use outer_redis::StreamId;
/// let id = StreamId::parse("1700000000000-3").unwrap();
/// assert_eq!((id.millis(), id.seq()), (1700000000000, 3));
/// assert_eq!(id.to_string(), "1700000000000-3");
/// assert!(id < StreamId::new(1700000000001, 0));
/// assert!(StreamId::parse("0000000000000001").is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StreamId {
    millis: u64,
    seq: u64,
}

impl StreamId {
    /// `0-0`: before every event. Resuming after it replays everything the stream retains.
    pub const ZERO: StreamId = StreamId { millis: 0, seq: 0 };

    /// The id with these parts.
    pub const fn new(millis: u64, seq: u64) -> Self {
        Self { millis, seq }
    }

    /// The millisecond part: when Redis added the event, by its clock.
    pub const fn millis(self) -> u64 {
        self.millis
    }

    /// The sequence number within that millisecond.
    pub const fn seq(self) -> u64 {
        self.seq
    }

    /// Reads the text form, `<millis>-<seq>`.
    pub fn parse(text: &str) -> Result<Self, MalformedStreamId> {
        let malformed = |reason| MalformedStreamId {
            text: text.chars().take(64).collect(),
            reason,
        };
        let Some((millis, seq)) = text.split_once('-') else {
            return Err(malformed("it must be two numbers joined by '-'"));
        };
        let millis = number(millis).map_err(malformed)?;
        let seq = number(seq).map_err(malformed)?;
        Ok(Self { millis, seq })
    }
}

/// One part of the text form: decimal digits, no sign, no leading zero, within a `u64`.
fn number(part: &str) -> Result<u64, &'static str> {
    if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
        return Err("each part must be decimal digits");
    }
    if part.len() > 1 && part.starts_with('0') {
        return Err("a part must not start with 0");
    }
    part.parse()
        .map_err(|_| "a part must fit in 64 bits (at most 18446744073709551615)")
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.millis, self.seq)
    }
}

impl fmt::Debug for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StreamId({self})")
    }
}

/// As its text form, a JSON string (`"1732000000000-0"`): the id a client sees in the data
/// reads the same as the SSE id.
impl serde::Serialize for StreamId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A string in TypeScript, as it serializes.
#[cfg(feature = "typescript")]
impl ts_rs::TS for StreamId {
    type WithoutGenerics = Self;
    type OptionInnerType = Self;

    fn name(_: &ts_rs::Config) -> String {
        String::from("string")
    }

    fn inline(cfg: &ts_rs::Config) -> String {
        Self::name(cfg)
    }
}

impl<'de> serde::Deserialize<'de> for StreamId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl FromStr for StreamId {
    type Err = MalformedStreamId;
    fn from_str(text: &str) -> Result<Self, MalformedStreamId> {
        Self::parse(text)
    }
}

impl From<StreamId> for EventId {
    fn from(id: StreamId) -> Self {
        // Digits and '-' are never CR, LF or NUL, so the check cannot fail; the fallback only
        // spares a panic path and is never taken.
        EventId::new(id.to_string()).unwrap_or_else(|_| EventId::from(id.millis))
    }
}

impl IntoEventId for StreamId {
    fn into_event_id(self) -> Result<EventId, MetaError> {
        Ok(self.into())
    }
}

/// A last event id that is not the text form of a [`StreamId`]. Answered as `BAD_REQUEST`.
///
/// ```
/// let err = outer_redis::StreamId::parse("12-x").unwrap_err();
/// assert_eq!(err.text(), "12-x");
/// assert!(err.to_string().contains("decimal digits"), "{err}");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MalformedStreamId {
    text: String,
    reason: &'static str,
}

impl MalformedStreamId {
    /// The id as received (cut to its first 64 characters: it comes from a client).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Why it was refused.
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}

impl fmt::Display for MalformedStreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "malformed last event id {:?}: {} (expected a Redis stream id such as \
             \"1700000000000-0\", as this server sent it)",
            self.text, self.reason
        )
    }
}

impl std::error::Error for MalformedStreamId {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_round_trips_and_orders_like_redis() {
        let ids = [
            StreamId::ZERO,
            StreamId::new(0, 1),
            StreamId::new(1, 0),
            StreamId::new(1700000000000, 9),
            StreamId::new(1700000000000, 10),
            StreamId::new(u64::MAX, u64::MAX),
        ];
        for pair in ids.windows(2) {
            assert!(pair[0] < pair[1], "{pair:?}");
        }
        for id in ids {
            assert_eq!(StreamId::parse(&id.to_string()), Ok(id));
        }
        assert_eq!(EventId::from(StreamId::new(5, 2)).as_str(), "5-2");
    }

    #[test]
    fn anything_but_the_written_form_is_refused_with_a_reason() {
        for bad in [
            "",
            "17",
            "-1",
            "1-",
            "1--2",
            "+1-2",
            "01-2",
            "1-02",
            "1-2 ",
            "1-x",
            "0000000000000001",
            "18446744073709551616-0",
            "é-1",
        ] {
            let err = StreamId::parse(bad).unwrap_err();
            assert_eq!(err.text(), bad);
            assert!(err.to_string().contains("malformed last event id"), "{err}");
        }
        assert_eq!(
            StreamId::parse(&"9".repeat(500)).unwrap_err().text().len(),
            64
        );
    }
}
