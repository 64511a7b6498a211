//! Events and their meta: the id a client resumes from, the reconnect delay it should use, and
//! comments. This is the value a streaming procedure yields; it says nothing about the wire.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// The id of an event, as a client sends it back in `Last-Event-ID` to resume.
///
/// Any string without CR, LF or NUL: those would break the SSE `id:` line, and a browser
/// ignores an id with NUL. Integers convert without fail.
///
/// ```
/// use outer_core::EventId;
/// assert_eq!(EventId::new("post-7").unwrap().as_str(), "post-7");
/// assert_eq!(EventId::from(42u64).as_str(), "42");
/// assert!(EventId::new("a\nb").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId(String);

impl EventId {
    /// Checks `id` and wraps it.
    pub fn new(id: impl Into<String>) -> Result<Self, MetaError> {
        let id = id.into();
        check_line("event id", &id)?;
        Ok(Self(id))
    }

    /// Reads a resume id as a request carries it (`Last-Event-ID`, tRPC's `lastEventId`).
    ///
    /// Empty text is no id at all: an event stream's empty `id:` clears the last id, and a
    /// browser then sends no header, so a client that sends an empty one means the same. CR, LF
    /// or NUL is an error, for the caller to answer 400.
    ///
    /// ```
    /// use outer_core::EventId;
    /// assert_eq!(EventId::from_resume("7").unwrap(), Some(EventId::from(7u32)));
    /// assert_eq!(EventId::from_resume("").unwrap(), None);
    /// assert!(EventId::from_resume("2\n").is_err());
    /// ```
    pub fn from_resume(text: &str) -> Result<Option<Self>, MetaError> {
        if text.is_empty() {
            Ok(None)
        } else {
            Self::new(text).map(Some)
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as an owned string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for EventId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

macro_rules! event_id_from_integer {
    ($($t:ty),*) => {$(
        impl From<$t> for EventId {
            fn from(n: $t) -> Self {
                use alloc::string::ToString;
                // Digits and a sign never contain CR, LF or NUL.
                Self(n.to_string())
            }
        }
    )*};
}
event_id_from_integer!(u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize);

impl TryFrom<String> for EventId {
    type Error = MetaError;
    fn try_from(id: String) -> Result<Self, MetaError> {
        Self::new(id)
    }
}

impl TryFrom<&str> for EventId {
    type Error = MetaError;
    fn try_from(id: &str) -> Result<Self, MetaError> {
        Self::new(id)
    }
}

/// Anything that can name an event: integers always, strings when they hold no CR, LF or NUL.
pub trait IntoEventId {
    /// Converts, or says why the text cannot be an id.
    fn into_event_id(self) -> Result<EventId, MetaError>;
}

impl IntoEventId for EventId {
    fn into_event_id(self) -> Result<EventId, MetaError> {
        Ok(self)
    }
}
impl IntoEventId for String {
    fn into_event_id(self) -> Result<EventId, MetaError> {
        EventId::new(self)
    }
}
impl IntoEventId for &str {
    fn into_event_id(self) -> Result<EventId, MetaError> {
        EventId::new(self)
    }
}
impl IntoEventId for &String {
    fn into_event_id(self) -> Result<EventId, MetaError> {
        EventId::new(self.as_str())
    }
}
macro_rules! into_event_id_from_integer {
    ($($t:ty),*) => {$(
        impl IntoEventId for $t {
            fn into_event_id(self) -> Result<EventId, MetaError> {
                Ok(EventId::from(self))
            }
        }
    )*};
}
into_event_id_from_integer!(u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize);

/// What an event carries besides its data: the equivalent of oRPC's `withEventMeta`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventMeta {
    id: Option<EventId>,
    retry: Option<u64>,
    comments: Vec<String>,
}

impl EventMeta {
    /// Meta with nothing set.
    pub const fn new() -> Self {
        Self {
            id: None,
            retry: None,
            comments: Vec::new(),
        }
    }

    /// The id a client resumes from.
    pub fn id(&self) -> Option<&EventId> {
        self.id.as_ref()
    }

    /// How long, in milliseconds, a client should wait before it reconnects.
    pub fn retry(&self) -> Option<u64> {
        self.retry
    }

    /// Comment lines sent before the event (ignored by clients; useful for debugging proxies).
    pub fn comments(&self) -> &[String] {
        &self.comments
    }

    /// True when no field is set.
    pub fn is_empty(&self) -> bool {
        self.id.is_none() && self.retry.is_none() && self.comments.is_empty()
    }

    /// Sets the id.
    pub fn set_id(&mut self, id: impl IntoEventId) -> Result<(), MetaError> {
        self.id = Some(id.into_event_id()?);
        Ok(())
    }

    /// Sets the reconnect delay in milliseconds.
    pub fn set_retry(&mut self, millis: u64) {
        self.retry = Some(millis);
    }

    /// Adds a comment. A comment must not contain CR, LF or NUL: it is one SSE line.
    pub fn push_comment(&mut self, comment: impl Into<String>) -> Result<(), MetaError> {
        let comment = comment.into();
        check_line("comment", &comment)?;
        self.comments.push(comment);
        Ok(())
    }

    /// Takes the id out, leaving none.
    pub fn take_id(&mut self) -> Option<EventId> {
        self.id.take()
    }
}

/// A value yielded by a streaming procedure, with its meta.
///
/// ```
/// use outer_core::{tracked, Event};
/// let event = tracked(3, "hello").unwrap().with_retry(1000);
/// assert_eq!(event.meta().id().unwrap().as_str(), "3");
/// assert_eq!(event.meta().retry(), Some(1000));
/// assert_eq!(*event.data(), "hello");
///
/// // A plain value is an event with no meta.
/// let plain: Event<i32> = 5.into();
/// assert!(plain.meta().is_empty());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Event<T> {
    data: T,
    meta: EventMeta,
}

impl<T> Event<T> {
    /// An event with no meta.
    pub const fn new(data: T) -> Self {
        Self {
            data,
            meta: EventMeta::new(),
        }
    }

    /// The equivalent of oRPC's `withEventMeta(data, meta)`.
    pub fn with_meta(data: T, meta: EventMeta) -> Self {
        Self { data, meta }
    }

    /// Sets the id.
    pub fn with_id(mut self, id: impl IntoEventId) -> Result<Self, MetaError> {
        self.meta.set_id(id)?;
        Ok(self)
    }

    /// Sets the reconnect delay in milliseconds.
    pub fn with_retry(mut self, millis: u64) -> Self {
        self.meta.set_retry(millis);
        self
    }

    /// Adds a comment line.
    pub fn with_comment(mut self, comment: impl Into<String>) -> Result<Self, MetaError> {
        self.meta.push_comment(comment)?;
        Ok(self)
    }

    /// The data.
    pub fn data(&self) -> &T {
        &self.data
    }

    /// The equivalent of oRPC's `getEventMeta`.
    pub fn meta(&self) -> &EventMeta {
        &self.meta
    }

    /// The meta, to change in place.
    pub fn meta_mut(&mut self) -> &mut EventMeta {
        &mut self.meta
    }

    /// The id, if the event has one.
    pub fn id(&self) -> Option<&EventId> {
        self.meta.id()
    }

    /// Splits the event into its data and meta.
    pub fn into_parts(self) -> (T, EventMeta) {
        (self.data, self.meta)
    }

    /// The data, dropping the meta.
    pub fn into_data(self) -> T {
        self.data
    }

    /// Transforms the data, keeping the meta.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Event<U> {
        Event {
            data: f(self.data),
            meta: self.meta,
        }
    }
}

impl<T> From<T> for Event<T> {
    fn from(data: T) -> Self {
        Self::new(data)
    }
}

/// An event with an id, so a client that reconnects resumes after it: tRPC's `tracked(id, data)`.
///
/// ```
/// let event = outer_core::tracked("p-1", 10).unwrap();
/// assert_eq!(event.id().unwrap().as_str(), "p-1");
/// assert!(outer_core::tracked("bad\rid", 10).is_err());
/// ```
pub fn tracked<T>(id: impl IntoEventId, data: T) -> Result<Event<T>, MetaError> {
    Event::new(data).with_id(id)
}

/// A meta field that cannot be sent: it would break the SSE line it travels in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetaError {
    field: &'static str,
    found: char,
}

impl MetaError {
    /// Which field was refused ("event id" or "comment").
    pub fn field(&self) -> &'static str {
        self.field
    }
}

impl fmt::Display for MetaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.found {
            '\r' => "CR",
            '\n' => "LF",
            _ => "NUL",
        };
        write!(f, "an {} must not contain {name}", self.field)
    }
}

impl core::error::Error for MetaError {}

fn check_line(field: &'static str, text: &str) -> Result<(), MetaError> {
    match text.chars().find(|c| matches!(c, '\r' | '\n' | '\0')) {
        Some(found) => Err(MetaError { field, found }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn ids_with_line_breaks_or_nul_are_refused_with_the_reason() {
        for (bad, name) in [("a\rb", "CR"), ("a\nb", "LF"), ("a\0b", "NUL")] {
            let err = EventId::new(bad).unwrap_err();
            assert_eq!(
                err.to_string(),
                alloc::format!("an event id must not contain {name}")
            );
            assert!(tracked(bad, ()).is_err());
        }
        assert!(
            EventId::new("").is_ok(),
            "an empty id is legal SSE: it resets the last id"
        );
    }

    #[test]
    fn comments_are_single_lines() {
        let err = Event::new(1).with_comment("two\nlines").unwrap_err();
        assert_eq!(err.field(), "comment");
        let ok = Event::new(1).with_comment("fine").unwrap();
        assert_eq!(ok.meta().comments(), ["fine"]);
    }

    #[test]
    fn meta_travels_with_map_and_splits_off() {
        let event = tracked(7u32, 2).unwrap().with_retry(50).map(|n| n * 10);
        assert_eq!(*event.data(), 20);
        let (data, mut meta) = event.into_parts();
        assert_eq!(data, 20);
        assert_eq!(meta.retry(), Some(50));
        assert_eq!(meta.take_id().unwrap().as_str(), "7");
        assert!(meta.id().is_none());
    }

    #[test]
    fn negative_and_wide_integers_make_ids() {
        assert_eq!(EventId::from(-3i64).as_str(), "-3");
        assert_eq!(
            u128::MAX.into_event_id().unwrap().as_str(),
            "340282366920938463463374607431768211455"
        );
    }
}
