//! A topic's stream in Redis: the few commands the publisher sends, what their replies mean, and
//! when a read has lost events. No state and no fan-out here; `topic` and `subscription` do that.
//!
//! Every read is `XRANGE key <from> <to> COUNT n` and `XINFO STREAM key` at one instant (see
//! [`Atomic`]): the entries and the stream's bookkeeping together, so judging whether events
//! after `from` were trimmed cannot race a concurrent `XADD ... MAXLEN`. The range starts *at* `from`, inclusive:
//! if `from` itself is still there, nothing after it was trimmed (trimming eats from the front).
//!
//! Each stream has an epoch (see [`Epoch`]) in a key beside it, `{<key>}:epoch` (the hash tag
//! puts both keys in one slot of a Redis Cluster): a publish sets it if it is not there and
//! adds the entry in one step, and a read returns it with the entries. Both keys live and die
//! together (a restart without persistence, a failover, a flush lose both), so a stream Redis
//! lost comes back with a new epoch, and a resume point from the lost history, or from another
//! deployment, is told apart from this stream's.

use std::sync::LazyLock;
use std::time::Duration;

use outer_core::publisher::GapKind;
use redis::aio::ConnectionLike;
use redis::{Cmd, ErrorKind, RedisError, RedisResult, Value};

use crate::id::{Epoch, StreamId};

/// The field each entry keeps its JSON in. One short field: Redis stores field names per entry
/// unless they repeat, so this costs nothing after the first entry of a node.
const FIELD: &str = "d";

/// Adds an entry and returns its id and the stream's epoch, setting the epoch first if the
/// stream has none (new, lost, or written before epochs). KEYS: the stream, its epoch key;
/// ARGV: retention, JSON, and the epoch to start.
static ADD_SCRIPT: LazyLock<Lua> = LazyLock::new(|| {
    Lua::new(
        r"
local epoch = redis.call('GET', KEYS[2])
if not epoch then
  epoch = ARGV[3]
  redis.call('SET', KEYS[2], epoch)
end
return {redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'd', ARGV[2]), epoch}
",
    )
});

/// How a read's (or a publish's) commands are made one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Atomic {
    /// `MULTI`/`EXEC`: the cheaper (a script costs the server several times a plain command),
    /// for a connection to the one node that serves the key.
    Transaction,
    /// One script: for the cluster connection, which follows a redirect for a command but not
    /// inside a transaction (redis 1.8 returns the aborted `EXEC`), and for a reader that must
    /// send `ASKING` before each command (a transaction would take it for `MULTI` alone).
    Script,
}

/// Reads entries, the stream's bookkeeping and its epoch at one instant. KEYS: the stream, its
/// epoch key; ARGV: the range's start and end, and the most entries. No `XINFO` reply (nil)
/// when there is no stream.
static READ_SCRIPT: LazyLock<Lua> = LazyLock::new(|| {
    Lua::new(
        r"
local range = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[2], 'COUNT', ARGV[3])
local info = false
if redis.call('EXISTS', KEYS[1]) == 1 then
  info = redis.call('XINFO', 'STREAM', KEYS[1])
end
return {range, info, redis.call('GET', KEYS[2])}
",
    )
});

/// A Lua script, sent by its hash (`EVALSHA`) and, where the server does not have it yet
/// (`NOSCRIPT`: a restarted server, a promoted replica), by its text (`EVAL`, which also caches
/// it there). Not `redis::Script`: it answers `NOSCRIPT` by loading the script on every node of
/// a cluster, which fails while any node is down; `EVAL` goes to the key's node alone.
pub(crate) struct Lua {
    source: &'static str,
    hash: String,
}

impl Lua {
    fn new(source: &'static str) -> Self {
        Self {
            source,
            hash: redis::Script::new(source).get_hash().to_owned(),
        }
    }

    /// Loads the script on the node at the other end of `conn` (a plain connection), so that
    /// running it there never needs a second try.
    async fn load<C: ConnectionLike>(&self, conn: &mut C) -> RedisResult<()> {
        redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(self.source)
            .query_async::<Value>(conn)
            .await
            .map(drop)
    }

    /// Runs the script on a stream's `key` and its epoch key, with the arguments `args` adds.
    async fn run<C: ConnectionLike>(
        &self,
        conn: &mut C,
        key: &str,
        args: impl Fn(&mut Cmd),
    ) -> RedisResult<Value> {
        let epoch = epoch_key(key);
        let mut by_hash = redis::cmd("EVALSHA");
        by_hash.arg(&self.hash).arg(2).arg(key).arg(&epoch);
        args(&mut by_hash);
        match by_hash.query_async(conn).await {
            Err(err) if err.kind() == ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                let mut by_text = redis::cmd("EVAL");
                by_text.arg(self.source).arg(2).arg(key).arg(&epoch);
                args(&mut by_text);
                by_text.query_async(conn).await
            }
            other => other,
        }
    }
}

/// One entry as read: its id (with the stream's epoch, once read) and its JSON, or why it has
/// none.
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
    /// The stream's epoch; `None` for a stream written before epochs and not published to since.
    pub(crate) epoch: Option<Epoch>,
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

/// The key that keeps the epoch of the stream at `key`, in the same Redis Cluster slot: the
/// key with its hash tag, if it has one (Redis hashes only what is between the first `{` and
/// the next `}`), or the whole key as the tag. (A key with a `}` and no tag before it cannot be
/// made a tag: in a cluster its publishes fail with `CROSSSLOT`; one server takes it.)
pub(crate) fn epoch_key(key: &str) -> String {
    let tagged = key
        .find('{')
        .and_then(|open| key[open + 1..].find('}'))
        .is_some_and(|len| len > 0);
    if tagged {
        format!("{key}:epoch")
    } else {
        format!("{{{key}}}:epoch")
    }
}

/// Readies a reader's own connection for [`read`]: on a node that must be told `ASKING` before
/// each command on the key (its slot is moving there), the second try after `NOSCRIPT` would
/// come without it.
pub(crate) async fn prepare_reader<C: ConnectionLike>(conn: &mut C) -> RedisResult<()> {
    READ_SCRIPT.load(conn).await
}

/// Appends an entry, `XADD key MAXLEN ~ retain * d <json>`, and returns the id Redis gave it
/// with the stream's epoch, which it sets first if there is none (see [`ADD_SCRIPT`]).
pub(crate) async fn add<C: ConnectionLike>(
    conn: &mut C,
    atomic: Atomic,
    key: &str,
    retain: usize,
    json: &[u8],
) -> RedisResult<StreamId> {
    let fresh = Epoch::fresh().to_string();
    let reply = match atomic {
        Atomic::Script => {
            ADD_SCRIPT
                .run(conn, key, |cmd| {
                    cmd.arg(retain).arg(json).arg(&fresh);
                })
                .await?
        }
        Atomic::Transaction => {
            // `SET .. NX GET` (Redis 7): the epoch there, or nil when it set the fresh one.
            let mut pipe = redis::pipe();
            pipe.atomic();
            pipe.cmd("XADD")
                .arg(key)
                .arg("MAXLEN")
                .arg("~")
                .arg(retain)
                .arg("*")
                .arg(FIELD)
                .arg(json);
            pipe.cmd("SET")
                .arg(epoch_key(key))
                .arg(&fresh)
                .arg("NX")
                .arg("GET");
            match pipe.query_async(conn).await? {
                Value::Array(mut parts) if parts.len() == 2 && parts[1] == Value::Nil => {
                    parts[1] = Value::BulkString(fresh.clone().into_bytes());
                    Value::Array(parts)
                }
                other => other,
            }
        }
    };
    let parsed = match &reply {
        Value::Array(parts) if parts.len() == 2 => text(&parts[0])
            .and_then(|id| StreamId::parse(id).ok())
            .zip(text(&parts[1]).and_then(|epoch| Epoch::parse(epoch).ok())),
        _ => None,
    };
    parsed
        .map(|(id, epoch)| id.with_epoch(epoch))
        .ok_or_else(|| unexpected("a publish", &reply))
}

/// Where a reader starts: the last id the stream gave out, with its epoch; `0-0` when there is
/// no stream.
pub(crate) async fn last_id<C: ConnectionLike>(
    conn: &mut C,
    atomic: Atomic,
    key: &str,
) -> RedisResult<StreamId> {
    // A read of nothing (the range 0-0 to 0-0) for the stream's bookkeeping alone.
    let page = read(conn, atomic, key, StreamId::ZERO, Some(StreamId::ZERO), 0).await?;
    Ok(page.info.map_or(StreamId::ZERO, |info| info.last_generated))
}

/// `XREAD COUNT 1 BLOCK ms STREAMS key from`: waits until the stream has an entry after `from`,
/// or `block` passes. Only a wake-up: the entries are then read with [`read`], which can tell
/// whether any were trimmed first.
pub(crate) async fn wait<C: ConnectionLike>(
    conn: &mut C,
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
        .arg(from.redis())
        .query_async(conn)
        .await?;
    Ok(())
}

/// Reads up to `count` entries after `from` and up to `to` (to the end with `None`), and judges
/// whether events between `from` and them were lost. See the module doc.
pub(crate) async fn read<C: ConnectionLike>(
    conn: &mut C,
    atomic: Atomic,
    key: &str,
    from: StreamId,
    to: Option<StreamId>,
    count: usize,
) -> RedisResult<Page> {
    let end = match to {
        // `to` may be below `from` (a client resuming after what this instance has read): the
        // range is then just `from`, read only to learn whether it is still there.
        Some(to) => to.max(from).redis(),
        None => "+".to_string(),
    };
    let asked = count.saturating_add(1);
    let reply = match atomic {
        Atomic::Script => {
            READ_SCRIPT
                .run(conn, key, |cmd| {
                    cmd.arg(from.redis()).arg(&end).arg(asked);
                })
                .await?
        }
        Atomic::Transaction => {
            let mut pipe = redis::pipe();
            // Errors in place of replies: `XINFO` fails on a key that does not exist.
            pipe.atomic().ignore_errors();
            pipe.cmd("XRANGE")
                .arg(key)
                .arg(from.redis())
                .arg(&end)
                .arg("COUNT")
                .arg(asked);
            pipe.cmd("XINFO").arg("STREAM").arg(key);
            pipe.cmd("GET").arg(epoch_key(key));
            match pipe.query_async::<Value>(conn).await? {
                Value::Array(mut parts) if parts.len() == 3 => {
                    if let Value::ServerError(err) = &parts[1] {
                        let err = RedisError::from(err.clone());
                        if !no_such_key(&err) {
                            return Err(err);
                        }
                        parts[1] = Value::Nil;
                    }
                    if let Some(Value::ServerError(err)) = parts
                        .iter()
                        .find(|part| matches!(part, Value::ServerError(_)))
                    {
                        return Err(RedisError::from(err.clone()));
                    }
                    Value::Array(parts)
                }
                other => return Err(unexpected("MULTI/EXEC", &other)),
            }
        }
    };
    let (range, info, epoch) = match &reply {
        Value::Array(parts) if parts.len() == 3 => (&parts[0], &parts[1], &parts[2]),
        other => return Err(unexpected("a read", other)),
    };
    let epoch = match epoch {
        Value::Nil => None,
        other => Some(
            text(other)
                .and_then(|epoch| Epoch::parse(epoch).ok())
                .ok_or_else(|| unexpected("the stream's epoch", other))?,
        ),
    };
    // Every entry held belongs to the stream's history: it carries the stream's epoch.
    let stamp = |id: StreamId| epoch.map_or(id, |epoch| id.with_epoch(epoch));
    let info = parse_info(info)?.map(|info| Info {
        epoch,
        first: info.first.map(stamp),
        last_generated: stamp(info.last_generated),
        ..info
    });
    let raw = match range {
        Value::Array(raw) => raw,
        other => return Err(unexpected("XRANGE", other)),
    };
    let mut entries = Vec::with_capacity(raw.len());
    for item in raw {
        let mut entry = parse_entry(item)?;
        entry.id = stamp(entry.id);
        entries.push(entry);
    }
    let complete = raw.len() < asked;
    let held = match entries.first() {
        Some(entry) if entry.id.position() == from.position() => {
            entries.remove(0);
            true
        }
        _ => false,
    };
    if let Some(to) = to {
        entries.retain(|e| e.id.position() <= to.position());
    }
    let next = entries.first().map(|e| e.id);
    Ok(Page {
        gap: judge(from, held, info.as_ref(), next),
        entries,
        info,
        complete,
    })
}

/// Whether events after `from` are lost, given whether the stream still holds the entry at
/// `from`, what the stream says about itself (its epoch too), and the first entry read after
/// `from` (if any).
///
/// `0-0` is before everything: events after it are lost only if the stream removed some.
/// Any other `from`:
/// - no stream at all, or `from` after the last id the stream ever gave out, or `from` of
///   another epoch than the stream's: from another life of the stream (deleted, or Redis lost
///   it) or another deployment: unknown (an id without an epoch, from before epochs, is judged
///   by its position alone);
/// - `from` held: trimming, which eats from the front, took nothing after it; only an entry
///   removed by `XDEL` between `from` and the next one read is lost;
/// - `from` not held:
///   - it is the last id given out (the entry was deleted since): nothing came after it;
///   - the stream never removed anything (Redis 7 counts additions): it never gave `from` out:
///     unknown;
///   - before the oldest entry held: trimmed away, so events after it may be lost: expired.
///     Redis does not record which ids it trimmed, so this is reported even when the trimmed
///     one was `from` alone: a gap is never silent, at the cost of a rare false one at the very
///     edge of the retention;
///   - nothing held at all (emptied by hand): expired;
///   - between entries held: removed by `XDEL` if the highest deleted id is `from` (nothing
///     after it lost) or later (lost); otherwise never given out: unknown.
pub(crate) fn judge(
    from: StreamId,
    held: bool,
    info: Option<&Info>,
    next: Option<StreamId>,
) -> Option<GapKind> {
    let deleted_before_next = |info: &Info| {
        info.max_deleted.is_some_and(|deleted| {
            deleted.position() > from.position()
                && next.is_none_or(|next| deleted.position() < next.position())
        })
    };
    let Some(info) = info else {
        return (!from.is_start()).then_some(GapKind::Unknown);
    };
    let nothing_removed = info.entries_added == Some(info.length);
    if from.is_start() {
        if deleted_before_next(info) {
            return Some(GapKind::Expired);
        }
        return (!nothing_removed).then_some(GapKind::Expired);
    }
    let other_history = from.epoch().is_some() && from.epoch() != info.epoch;
    if other_history || from.position() > info.last_generated.position() {
        return Some(GapKind::Unknown);
    }
    if held {
        return deleted_before_next(info).then_some(GapKind::Expired);
    }
    if from.position() == info.last_generated.position() {
        return None;
    }
    if nothing_removed {
        return Some(GapKind::Unknown);
    }
    let Some(oldest) = info.first else {
        return Some(GapKind::Expired);
    };
    if from.position() < oldest.position() {
        return Some(GapKind::Expired);
    }
    match info.max_deleted.map(StreamId::position) {
        Some(deleted) if deleted == from.position() => None,
        Some(deleted) if deleted > from.position() => Some(GapKind::Expired),
        _ => Some(GapKind::Unknown),
    }
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

    const A: Epoch = Epoch::new(0xa);
    const B: Epoch = Epoch::new(0xb);

    /// Millisecond `millis` of epoch `A`.
    fn id(millis: u64) -> StreamId {
        StreamId::new(millis, 0).with_epoch(A)
    }

    /// A stream of epoch `A`.
    fn info(first: Option<u64>, last: u64, length: u64, added: u64) -> Info {
        Info {
            last_generated: id(last),
            first: first.map(id),
            epoch: Some(A),
            length,
            entries_added: Some(added),
            max_deleted: Some(StreamId::ZERO),
        }
    }

    #[test]
    fn the_epoch_key_shares_the_streams_cluster_slot() {
        assert_eq!(epoch_key("outer:chat"), "{outer:chat}:epoch");
        assert_eq!(epoch_key("outer:{room}:chat"), "outer:{room}:chat:epoch");
        // No tag (a `{` with no `}` after it): the whole key is hashed, so it becomes the tag.
        assert_eq!(epoch_key("a{b"), "{a{b}:epoch");
    }

    #[test]
    fn without_a_stream_only_the_start_is_a_position() {
        assert_eq!(judge(StreamId::ZERO, false, None, None), None);
        assert_eq!(judge(id(5), false, None, None), Some(GapKind::Unknown));
    }

    #[test]
    fn an_id_after_the_last_one_given_out_is_unknown() {
        let stream = info(Some(1), 10, 10, 10);
        assert_eq!(
            judge(id(11), false, Some(&stream), None),
            Some(GapKind::Unknown)
        );
        assert_eq!(judge(id(10), true, Some(&stream), None), None);
    }

    #[test]
    fn an_id_inside_the_range_that_was_never_given_out_is_unknown() {
        // Never trimmed: every id given out is held, so one that is not was made up.
        let whole = info(Some(1), 10, 10, 10);
        let made_up = StreamId::new(5, 7).with_epoch(A);
        assert_eq!(
            judge(made_up, false, Some(&whole), Some(id(6))),
            Some(GapKind::Unknown)
        );
        // Trimmed at the front: one between entries held was not given out either.
        let trimmed = info(Some(5), 10, 6, 10);
        assert_eq!(
            judge(made_up, false, Some(&trimmed), Some(id(6))),
            Some(GapKind::Unknown)
        );
    }

    #[test]
    fn an_id_of_another_epoch_is_unknown_wherever_it_points() {
        let stream = info(Some(5), 10, 6, 10);
        for (millis, held) in [(5, true), (7, true), (2, false), (10, true)] {
            let other = StreamId::new(millis, 0).with_epoch(B);
            assert_eq!(
                judge(other, held, Some(&stream), Some(id(millis + 1))),
                Some(GapKind::Unknown),
                "{other}"
            );
        }
        // A stream written before epochs (no epoch yet) knows none of them.
        let legacy = Info {
            epoch: None,
            ..stream
        };
        assert_eq!(
            judge(id(7), true, Some(&legacy), Some(id(8))),
            Some(GapKind::Unknown)
        );
    }

    #[test]
    fn an_id_from_before_epochs_is_judged_by_its_position() {
        let stream = info(Some(5), 10, 6, 10);
        let old = StreamId::new(7, 0);
        assert_eq!(judge(old, true, Some(&stream), Some(id(8))), None);
        assert_eq!(
            judge(StreamId::new(7, 1), false, Some(&stream), Some(id(8))),
            Some(GapKind::Unknown)
        );
        assert_eq!(
            judge(StreamId::new(2, 0), false, Some(&stream), Some(id(5))),
            Some(GapKind::Expired)
        );
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
        assert_eq!(judge(id(3), true, Some(&whole), Some(id(4))), None);
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
        let empty = Info {
            first: None,
            ..info(None, 10, 0, 10)
        };
        assert_eq!(
            judge(id(9), false, Some(&empty), None),
            Some(GapKind::Expired)
        );
        assert_eq!(judge(id(10), false, Some(&empty), None), None);
    }

    #[test]
    fn entries_deleted_after_the_position_are_lost_and_the_position_itself_is_not() {
        let mut stream = info(Some(1), 10, 9, 10);
        stream.max_deleted = Some(StreamId::new(6, 0));
        assert_eq!(
            judge(id(5), true, Some(&stream), Some(id(7))),
            Some(GapKind::Expired)
        );
        assert_eq!(judge(id(6), false, Some(&stream), Some(id(7))), None);
        assert_eq!(judge(id(7), true, Some(&stream), Some(id(8))), None);
        // Before the highest deleted id and not held: perhaps deleted, and others after it.
        stream.max_deleted = Some(StreamId::new(8, 0));
        assert_eq!(
            judge(id(6), false, Some(&stream), Some(id(7))),
            Some(GapKind::Expired)
        );
        // The last id given out, deleted since: nothing came after it.
        stream.max_deleted = Some(StreamId::new(10, 0));
        assert_eq!(judge(id(10), false, Some(&stream), None), None);
    }
}
