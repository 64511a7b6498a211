//! The id of an event in a Redis stream, `<milliseconds>-<sequence>@<epoch>`, as the event's
//! SSE id. Not a general Redis id parser: it reads back exactly the form this crate writes.

use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use outer_core::event::{IntoEventId, MetaError};
use outer_core::EventId;

/// Which life of a topic's stream an event belongs to: a random tag set when the stream gets
/// its first entry, kept in a key beside it (`{<stream key>}:epoch`, one Redis Cluster slot
/// with the stream), and written after `@` in every [`StreamId`] read from it.
///
/// The stream and its epoch key are written in one step and lost together, so a stream that
/// Redis lost (a restart without persistence, a failover to a replica that never got it, a
/// flush) starts again with a new epoch, and so does the same topic in another Redis
/// deployment. An id of another epoch is from another history: resuming from it is a
/// [`GapKind::Unknown`](outer_core::publisher::GapKind) gap, never a silent jump to whatever
/// the new stream holds at that position.
///
/// ```
/// use outer_redis::Epoch;
/// let epoch = Epoch::parse("00c0ffee").unwrap();
/// assert_eq!(epoch.get(), 0xc0ffee);
/// assert_eq!(epoch.to_string(), "00c0ffee");
/// assert!(Epoch::parse("C0FFEE").is_err()); // exactly 8 lowercase hex digits
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Epoch(u32);

impl Epoch {
    /// The epoch with this value.
    pub const fn new(value: u32) -> Self {
        Self(value)
    }

    /// Its value.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// A fresh epoch for a stream that starts a new history. Random, so that two histories of
    /// one topic (or two deployments) share an epoch with a chance of one in four billion; and
    /// even then an id resumes only if the stream holds the entry it names.
    pub(crate) fn fresh() -> Self {
        // std's hasher keys are random per process and per `RandomState`: enough randomness for
        // a tag that only tells histories apart, without a crate for it.
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos());
        let hash = RandomState::new().hash_one(nanos);
        Self((hash ^ (hash >> 32)) as u32)
    }

    /// Reads the text form: exactly 8 lowercase hexadecimal digits.
    pub fn parse(text: &str) -> Result<Self, MalformedStreamId> {
        parse_epoch(text).map_err(|reason| MalformedStreamId::new(text, reason))
    }
}

fn parse_epoch(text: &str) -> Result<Epoch, &'static str> {
    let hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
    if text.len() != 8 || !text.bytes().all(hex) {
        return Err("the epoch after '@' must be 8 lowercase hexadecimal digits");
    }
    u32::from_str_radix(text, 16)
        .map(Epoch)
        .map_err(|_| "the epoch after '@' must be 8 lowercase hexadecimal digits")
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

impl fmt::Debug for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Epoch({self})")
    }
}

/// The id Redis gave an event when it was added to its topic's stream, with the stream's
/// [`Epoch`]: `1700000000000-0@3fa9c2d1` is the first event added in millisecond
/// 1700000000000, in the history tagged `3fa9c2d1`.
///
/// Ids only grow on a stream, across every server instance that publishes to it, and survive a
/// Redis restart with persistence: that is what lets a client resume on any instance. The epoch
/// is what lets a client tell that Redis lost the history it read from (see [`Epoch`]). The
/// text form is the SSE `id:` a client sends back as `Last-Event-ID`; [`StreamId::parse`]
/// reads exactly that form (two decimal numbers without leading zeros, joined by `-`, then `@`
/// and the epoch) and nothing else, so a foreign or mangled id is refused rather than read as
/// some other position. Without `@epoch` (as outer-redis 0.1 wrote ids), an id is judged by
/// its position alone: it resumes from an entry the stream still holds.
///
/// Ids of one stream order by position; the epoch only breaks ties between histories.
///
/// ```
/// use outer_redis::{Epoch, StreamId};
/// let id = StreamId::parse("1700000000000-3@3fa9c2d1").unwrap();
/// assert_eq!((id.millis(), id.seq()), (1700000000000, 3));
/// assert_eq!(id.epoch(), Some(Epoch::new(0x3fa9c2d1)));
/// assert_eq!(id.to_string(), "1700000000000-3@3fa9c2d1");
/// assert!(id < StreamId::new(1700000000001, 0));
/// assert!(StreamId::parse("0000000000000001").is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StreamId {
    millis: u64,
    seq: u64,
    epoch: Option<Epoch>,
}

impl StreamId {
    /// `0-0`: before every event. Resuming after it replays everything the stream retains.
    pub const ZERO: StreamId = StreamId {
        millis: 0,
        seq: 0,
        epoch: None,
    };

    /// The id with these parts and no epoch.
    pub const fn new(millis: u64, seq: u64) -> Self {
        Self {
            millis,
            seq,
            epoch: None,
        }
    }

    /// The same position in the history tagged `epoch`.
    pub const fn with_epoch(self, epoch: Epoch) -> Self {
        Self {
            epoch: Some(epoch),
            ..self
        }
    }

    /// The millisecond part: when Redis added the event, by its clock.
    pub const fn millis(self) -> u64 {
        self.millis
    }

    /// The sequence number within that millisecond.
    pub const fn seq(self) -> u64 {
        self.seq
    }

    /// The history it belongs to; `None` for an entry written before epochs.
    pub const fn epoch(self) -> Option<Epoch> {
        self.epoch
    }

    /// The position alone, for comparing ids of possibly different histories.
    pub(crate) const fn position(self) -> (u64, u64) {
        (self.millis, self.seq)
    }

    /// `0-0`, whatever the epoch: before every event of every history.
    pub(crate) const fn is_start(self) -> bool {
        self.millis == 0 && self.seq == 0
    }

    /// The id as Redis writes it, `<millis>-<seq>`, for commands.
    pub(crate) fn redis(self) -> String {
        format!("{}-{}", self.millis, self.seq)
    }

    /// Reads the text form, `<millis>-<seq>@<epoch>` or `<millis>-<seq>`.
    pub fn parse(text: &str) -> Result<Self, MalformedStreamId> {
        let malformed = |reason| MalformedStreamId::new(text, reason);
        let (position, epoch) = match text.split_once('@') {
            Some((position, epoch)) => (position, Some(parse_epoch(epoch).map_err(malformed)?)),
            None => (text, None),
        };
        let Some((millis, seq)) = position.split_once('-') else {
            return Err(malformed("it must be two numbers joined by '-'"));
        };
        let millis = number(millis).map_err(malformed)?;
        let seq = number(seq).map_err(malformed)?;
        Ok(Self { millis, seq, epoch })
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
        write!(f, "{}-{}", self.millis, self.seq)?;
        match self.epoch {
            Some(epoch) => write!(f, "@{epoch}"),
            None => Ok(()),
        }
    }
}

impl fmt::Debug for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StreamId({self})")
    }
}

/// As its text form, a JSON string (`"1732000000000-0@3fa9c2d1"`): the id a client sees in the data
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
        // Digits, hex, '-' and '@' are never CR, LF or NUL, so the check cannot fail; the fallback only
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
    fn new(text: &str, reason: &'static str) -> Self {
        Self {
            text: text.chars().take(64).collect(),
            reason,
        }
    }

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
             \"1700000000000-0@3fa9c2d1\", as this server sent it)",
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
            StreamId::new(1700000000000, 10).with_epoch(Epoch::new(7)),
            StreamId::new(1700000000000, 11).with_epoch(Epoch::new(0)),
            StreamId::new(u64::MAX, u64::MAX),
        ];
        for pair in ids.windows(2) {
            assert!(pair[0] < pair[1], "{pair:?}");
        }
        for id in ids {
            assert_eq!(StreamId::parse(&id.to_string()), Ok(id));
        }
        assert_eq!(EventId::from(StreamId::new(5, 2)).as_str(), "5-2");
        let tagged = StreamId::new(5, 2).with_epoch(Epoch::new(0xa1));
        assert_eq!(EventId::from(tagged).as_str(), "5-2@000000a1");
        assert_eq!(tagged.redis(), "5-2");
        assert_ne!(tagged, StreamId::new(5, 2));
        assert_eq!(tagged.position(), StreamId::new(5, 2).position());
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
            "1-2@",
            "1-2@abc",
            "1-2@0000000g",
            "1-2@ABCDEF01",
            "1-2@000000001",
            "1-2@00000001@00000001",
            "@00000001",
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

    #[test]
    fn fresh_epochs_differ() {
        let epochs: std::collections::HashSet<Epoch> = (0..64).map(|_| Epoch::fresh()).collect();
        assert!(epochs.len() > 60, "{epochs:?}");
    }
}
