//! A topic's stream in Redis: the few commands the publisher sends, what their replies mean, and
//! when a read has lost events. No state and no fan-out here; `topic` and `subscription` do that.
//!
//! Every read is `MULTI; XRANGE key <from> <to> COUNT n; XINFO STREAM key; EXEC`: the entries
//! and the stream's bookkeeping from one instant, so judging whether events after `from` were
//! trimmed cannot race a concurrent `XADD ... MAXLEN`. The range starts *at* `from`, inclusive:
//! if `from` itself is still there, nothing after it was trimmed (trimming eats from the front).

use std::time::Duration;

use outer_core::publisher::GapKind;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, ErrorKind, RedisError, RedisResult, Value};

use crate::id::StreamId;

/// The field each entry keeps its JSON in. One short field: Redis stores field names per entry
/// unless they repeat, so this costs nothing after the first entry of a node.
const FIELD: &str = "d";

/// One entry as read: its id and its JSON, or why it has none.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) id: StreamId,
    pub(crate) json: Result<Vec<u8>, String>,
}

/// What `XINFO STREAM` says about a stream, as far as gaps go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Info {
    /// The last id the stream gave out (deleted or not).
    pub(crate) last_generated: StreamId,
    /// The oldest entry still held.
    pub(crate) first: Option<StreamId>,
    /// Entries held now.
    pub(crate) length: u64,
    /// Entries ever added (Redis 7+).
    pub(crate) entries_added: Option<u64>,
    /// The highest id removed by `XDEL` (Redis 7+; trimming does not move it).
    pub(crate) max_deleted: Option<StreamId>,
}

/// One read: entries after `from` (at most `count`), and whether events between `from` and
/// them are lost.
#[derive(Debug)]
pub(crate) struct Page {
    pub(crate) entries: Vec<Entry>,
    pub(crate) gap: Option<GapKind>,
    /// The stream then; `None` when it did not exist.
    pub(crate) info: Option<Info>,
    /// Nothing more in the range: the read reached its end.
    pub(crate) complete: bool,
}

/// Opens a connection with these timeouts. Redis picks tokio's or async-io's sockets by the
/// caller's context (see `runtime`).
pub(crate) async fn connect(
    client: &Client,
    response_timeout: Duration,
) -> RedisResult<MultiplexedConnection> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(response_timeout));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

/// `XADD key MAXLEN ~ retain * d <json>`: appends an entry and returns the id Redis gave it.
pub(crate) async fn add(
    conn: &mut MultiplexedConnection,
    key: &str,
    retain: usize,
    json: &[u8],
) -> RedisResult<StreamId> {
    let reply: Value = redis::cmd("XADD")
        .arg(key)
        .arg("MAXLEN")
        .arg("~")
        .arg(retain)
        .arg("*")
        .arg(FIELD)
        .arg(json)
        .query_async(conn)
        .await?;
    text(&reply)
        .and_then(|id| StreamId::parse(id).ok())
        .ok_or_else(|| unexpected("XADD", &reply))
}

/// The last id the stream gave out, `0-0` when there is no stream: where a reader starts.
pub(crate) async fn last_id(conn: &mut MultiplexedConnection, key: &str) -> RedisResult<StreamId> {
    let reply: Value = redis::cmd("XINFO")
        .arg("STREAM")
        .arg(key)
        .query_async(conn)
        .await
        .or_else(|err| no_such_key(&err).then_some(Value::Nil).ok_or(err))?;
    Ok(parse_info(&reply)?.map_or(StreamId::ZERO, |info| info.last_generated))
}

/// `XREAD COUNT 1 BLOCK ms STREAMS key from`: waits until the stream has an entry after `from`,
/// or `block` passes. Only a wake-up: the entries are then read with [`read`], which can tell
/// whether any were trimmed first.
pub(crate) async fn wait(
    conn: &mut MultiplexedConnection,
    key: &str,
    from: StreamId,
    block: Duration,
) -> RedisResult<()> {
    let millis = u64::try_from(block.as_millis()).unwrap_or(u64::MAX).max(1);
    let _: Value = redis::cmd("XREAD")
        .arg("COUNT")
        .arg(1)
        .arg("BLOCK")
        .arg(millis)
        .arg("STREAMS")
        .arg(key)
        .arg(from.to_string())
        .query_async(conn)
        .await?;
    Ok(())
}

/// Reads up to `count` entries after `from` and up to `to` (to the end with `None`), and judges
/// whether events between `from` and them were lost. See the module doc.
pub(crate) async fn read(
    conn: &mut MultiplexedConnection,
    key: &str,
    from: StreamId,
    to: Option<StreamId>,
    count: usize,
) -> RedisResult<Page> {
    let end = match to {
        // `to` may be below `from` (a client resuming after what this instance has read): the
        // range is then just `from`, read only to learn whether it is still there.
        Some(to) => to.max(from).to_string(),
        None => "+".to_string(),
    };
    let asked = count.saturating_add(1);
    let mut pipe = redis::pipe();
    pipe.atomic().ignore_errors();
    pipe.cmd("XRANGE")
        .arg(key)
        .arg(from.to_string())
        .arg(end)
        .arg("COUNT")
        .arg(asked);
    pipe.cmd("XINFO").arg("STREAM").arg(key);
    let reply: Value = pipe.query_async(conn).await?;
    let (range, info) = match &reply {
        Value::Array(parts) if parts.len() == 2 => (&parts[0], &parts[1]),
        other => return Err(unexpected("MULTI/EXEC", other)),
    };
    let info = match info {
        Value::ServerError(err) => {
            let err = RedisError::from(err.clone());
            if !no_such_key(&err) {
                return Err(err);
            }
            None
        }
        other => parse_info(other)?,
    };
    let raw = match range {
        Value::ServerError(err) => return Err(RedisError::from(err.clone())),
        Value::Array(raw) => raw,
        other => return Err(unexpected("XRANGE", other)),
    };
    let mut entries = Vec::with_capacity(raw.len());
    for item in raw {
        entries.push(parse_entry(item)?);
    }
    let complete = raw.len() < asked;
    let present = entries.first().is_some_and(|e| e.id == from);
    if present {
        entries.remove(0);
    }
    if let Some(to) = to {
        entries.retain(|e| e.id <= to);
    }
    let next = entries.first().map(|e| e.id);
    Ok(Page {
        gap: judge(from, present, info.as_ref(), next),
        entries,
        info,
        complete,
    })
}

/// Whether events after `from` are lost, given whether `from` is still in the stream, what the
/// stream says about itself, and the first entry read after `from` (if any).
///
/// - No stream at all: only `0-0` is a position in it; any other is from another life.
/// - `from` after the last id ever given out: from another life of the stream (deleted, or
///   Redis restarted without its data): unknown.
/// - An entry removed by `XDEL` between `from` and the next one read: lost.
/// - `from` still there: trimming, which eats from the front, took nothing after it.
/// - Nothing ever removed (Redis 7 counts additions): nothing lost.
/// - `from` gone and before the oldest entry held (before the last id, if none is held): events
///   after it may have been trimmed. Redis does not record which ids it trimmed, so this is
///   reported even when the trimmed one was `from` alone: a gap is never silent, at the cost
///   of a rare false one at the very edge of the retention.
pub(crate) fn judge(
    from: StreamId,
    present: bool,
    info: Option<&Info>,
    next: Option<StreamId>,
) -> Option<GapKind> {
    let Some(info) = info else {
        return (from != StreamId::ZERO).then_some(GapKind::Unknown);
    };
    if from > info.last_generated {
        return Some(GapKind::Unknown);
    }
    if let Some(deleted) = info.max_deleted {
        if deleted > from && next.is_none_or(|next| deleted < next) {
            return Some(GapKind::Expired);
        }
    }
    if present {
        return None;
    }
    if info.entries_added == Some(info.length) {
        return None;
    }
    let oldest = info.first.unwrap_or(info.last_generated);
    (from < oldest).then_some(GapKind::Expired)
}

/// One `XRANGE` item: `[id, [field, value, ...]]`.
fn parse_entry(item: &Value) -> RedisResult<Entry> {
    let Value::Array(parts) = item else {
        return Err(unexpected("XRANGE entry", item));
    };
    let id = parts
        .first()
        .and_then(text)
        .and_then(|id| StreamId::parse(id).ok())
        .ok_or_else(|| unexpected("XRANGE entry id", item))?;
    let fields = match parts.get(1) {
        Some(Value::Array(fields)) => fields.as_slice(),
        _ => &[],
    };
    let json = fields
        .chunks(2)
        .find(|pair| pair.first().and_then(text) == Some(FIELD))
        .and_then(|pair| match pair.get(1) {
            Some(Value::BulkString(bytes)) => Some(bytes.clone()),
            _ => None,
        })
        .ok_or_else(|| format!("it has no {FIELD:?} field holding JSON"));
    Ok(Entry { id, json })
}

/// `XINFO STREAM`'s flat list of names and values (RESP2) or map (RESP3).
fn parse_info(reply: &Value) -> RedisResult<Option<Info>> {
    let pairs: Vec<(&Value, &Value)> = match reply {
        Value::Nil => return Ok(None),
        Value::Array(flat) => flat
            .chunks(2)
            .filter_map(|pair| Some((pair.first()?, pair.get(1)?)))
            .collect(),
        Value::Map(map) => map.iter().map(|(k, v)| (k, v)).collect(),
        other => return Err(unexpected("XINFO STREAM", other)),
    };
    let mut info = Info::default();
    let mut seen_last = false;
    for (name, value) in pairs {
        match text(name) {
            Some("last-generated-id") => {
                info.last_generated = text(value)
                    .and_then(|id| StreamId::parse(id).ok())
                    .ok_or_else(|| unexpected("XINFO last-generated-id", value))?;
                seen_last = true;
            }
            Some("max-deleted-entry-id") => {
                info.max_deleted = text(value).and_then(|id| StreamId::parse(id).ok());
            }
            Some("length") => info.length = integer(value).unwrap_or(0),
            Some("entries-added") => info.entries_added = integer(value),
            Some("first-entry") => {
                info.first = match value {
                    Value::Nil => None,
                    entry => Some(parse_entry(entry)?.id),
                };
            }
            _ => {}
        }
    }
    if !seen_last {
        return Err(unexpected("XINFO STREAM without last-generated-id", reply));
    }
    Ok(Some(info))
}

fn text(value: &Value) -> Option<&str> {
    match value {
        Value::BulkString(bytes) => std::str::from_utf8(bytes).ok(),
        Value::SimpleString(text) => Some(text),
        _ => None,
    }
}

fn integer(value: &Value) -> Option<u64> {
    match value {
        Value::Int(n) => u64::try_from(*n).ok(),
        other => text(other)?.parse().ok(),
    }
}

/// `XINFO` on a key that does not exist: the stream was never created (or was deleted).
fn no_such_key(err: &RedisError) -> bool {
    err.to_string().to_ascii_lowercase().contains("no such key")
}

fn unexpected(what: &'static str, reply: &Value) -> RedisError {
    let mut shown = format!("{reply:?}");
    if shown.len() > 200 {
        let mut cut = 200;
        while !shown.is_char_boundary(cut) {
            cut -= 1;
        }
        shown.truncate(cut);
    }
    RedisError::from((
        ErrorKind::UnexpectedReturnType,
        "unexpected reply from Redis",
        format!("{what}: {shown}"),
    ))
}

/// Whether `err` means the connection is no longer usable: drop it and open another.
pub(crate) fn broken(err: &RedisError) -> bool {
    err.is_io_error()
        || err.is_connection_dropped()
        || err.is_unrecoverable_error()
        || err.is_timeout()
        || err.is_connection_refusal()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(millis: u64) -> StreamId {
        StreamId::new(millis, 0)
    }

    fn info(first: Option<u64>, last: u64, length: u64, added: u64) -> Info {
        Info {
            last_generated: id(last),
            first: first.map(id),
            length,
            entries_added: Some(added),
            max_deleted: Some(StreamId::ZERO),
        }
    }

    #[test]
    fn without_a_stream_only_the_start_is_a_position() {
        assert_eq!(judge(StreamId::ZERO, false, None, None), None);
        assert_eq!(judge(id(5), false, None, None), Some(GapKind::Unknown));
    }

    #[test]
    fn an_id_the_stream_never_gave_out_is_unknown() {
        let stream = info(Some(1), 10, 10, 10);
        assert_eq!(
            judge(id(11), false, Some(&stream), None),
            Some(GapKind::Unknown)
        );
        assert_eq!(judge(id(10), true, Some(&stream), None), None);
    }

    #[test]
    fn a_position_still_held_or_a_stream_never_trimmed_loses_nothing() {
        let trimmed = info(Some(5), 10, 6, 10);
        assert_eq!(judge(id(5), true, Some(&trimmed), Some(id(6))), None);
        let whole = info(Some(1), 10, 10, 10);
        assert_eq!(
            judge(StreamId::ZERO, false, Some(&whole), Some(id(1))),
            None
        );
        assert_eq!(judge(id(3), false, Some(&whole), Some(id(4))), None);
    }

    #[test]
    fn a_position_trimmed_away_is_an_expired_gap() {
        let trimmed = info(Some(5), 10, 6, 10);
        assert_eq!(
            judge(id(2), false, Some(&trimmed), Some(id(5))),
            Some(GapKind::Expired)
        );
        assert_eq!(
            judge(StreamId::ZERO, false, Some(&trimmed), Some(id(5))),
            Some(GapKind::Expired)
        );
        // Emptied (XTRIM MAXLEN 0): lost unless the position was the very last id.
        let empty = info(None, 10, 0, 10);
        assert_eq!(
            judge(id(9), false, Some(&empty), None),
            Some(GapKind::Expired)
        );
        assert_eq!(judge(id(10), false, Some(&empty), None), None);
    }

    #[test]
    fn an_entry_deleted_right_after_the_position_is_lost() {
        let mut stream = info(Some(1), 10, 9, 10);
        stream.max_deleted = Some(id(6));
        assert_eq!(
            judge(id(5), true, Some(&stream), Some(id(7))),
            Some(GapKind::Expired)
        );
        assert_eq!(judge(id(6), false, Some(&stream), Some(id(7))), None);
        assert_eq!(judge(id(7), true, Some(&stream), Some(id(8))), None);
    }
}
