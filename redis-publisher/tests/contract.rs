//! The publisher contract on a real redis-server (one per test, on a free port, killed with the
//! test), on tokio, smol and monoio: replay then live with no gap or duplicate, however publishes
//! race the subscribe; gaps said out loud; malformed ids refused; one reader per topic; drop
//! unsubscribes; slow subscribers catch up; a Redis restart and a change of instance lose and
//! repeat nothing; a subscription is a procedure's stream as it is, its setup errors statuses;
//! a trimmed gap filled from a store.
//!
//! No timing assertions: deadlines only turn a hang into a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use outer_core::procedure::{Call, Frame, FrameStream, Reply};
use outer_core::publisher::{backfilled, GapKind, GapPolicy, Publisher, SubscribeOptions};
use outer_core::rt::Timer;
use outer_core::{procedure, EventId, Router, RpcError};
use outer_redis::testing::RedisServer;
use outer_redis::{Epoch, Error, RecvError, RedisPublisher, StreamId};

mod support;
use support::{publish_retrying, take, until, within, OnMonoio, OnSmol, OnTokio, Rt, Runtime};

fn redis() -> RedisServer {
    RedisServer::start().expect("start redis-server")
}

fn publisher(redis: &RedisServer, runtime: Runtime) -> RedisPublisher<u32> {
    RedisPublisher::builder(redis.url())
        .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200))
        .build(runtime)
        .unwrap()
}

async fn publish_all(
    publisher: &RedisPublisher<u32>,
    topic: &str,
    values: impl IntoIterator<Item = u32>,
) -> Vec<StreamId> {
    let mut ids = Vec::new();
    for value in values {
        ids.push(publisher.publish(topic, value).await.unwrap());
    }
    ids
}

/// The entries `key` holds, as `XRANGE key - +` returns them, each id with the stream's epoch
/// (kept beside it, in `{key}:epoch`), and their fields.
fn held(redis: &RedisServer, key: &str) -> Vec<(StreamId, Vec<(String, String)>)> {
    let raw: Vec<(String, Vec<(String, String)>)> = redis
        .query(redis::cmd("XRANGE").arg(key).arg("-").arg("+"))
        .unwrap();
    let epoch: String = redis
        .query(redis::cmd("GET").arg(format!("{{{key}}}:epoch")))
        .unwrap();
    let epoch = Epoch::parse(&epoch).unwrap();
    raw.into_iter()
        .map(|(id, fields)| (StreamId::parse(&id).unwrap().with_epoch(epoch), fields))
        .collect()
}

fn resume(id: StreamId) -> SubscribeOptions {
    SubscribeOptions::new().resume_after(id)
}

fn readers(redis: &RedisServer) -> Vec<String> {
    let mut names: Vec<String> = redis
        .client_names()
        .unwrap()
        .into_iter()
        .filter(|name| name.starts_with("outer-reader:"))
        .collect();
    names.sort();
    names
}

fn publish_is_xadd_with_approximate_retention_and_stream_ids<R: Rt>() {
    let redis = redis();
    R::run(|runtime| async move {
        let publisher = RedisPublisher::<u32>::builder(redis.url())
            .retain_last(50)
            .build(runtime)
            .unwrap();
        let ids = publish_all(&publisher, "kept", 0..400).await;
        // The ids returned are the stream's own, in order, with each entry's JSON and the
        // stream's epoch, one for the whole history.
        let held = held(&redis, &publisher.key("kept"));
        let held_ids: Vec<StreamId> = held.iter().map(|(id, _)| *id).collect();
        assert_eq!(held_ids, ids[ids.len() - held.len()..]);
        let epoch = ids[0].epoch().expect("an epoch");
        assert!(ids.iter().all(|id| id.epoch() == Some(epoch)), "{ids:?}");
        let (_, fields) = held.last().unwrap();
        assert_eq!(fields, &[("d".to_string(), "399".to_string())]);
        // `MAXLEN ~ 50`: at least 50 kept, and trimmed by whole nodes (100 entries), so well
        // under the 400 published.
        let length: usize = redis
            .query(redis::cmd("XLEN").arg(publisher.key("kept")))
            .unwrap();
        assert!((50..=150).contains(&length), "{length} entries kept");
    });
}

fn replay_then_live_has_no_gap_and_no_duplicate<R: Rt>() {
    let redis = redis();
    R::run(|runtime| async move {
        let publisher = publisher(&redis, runtime);
        let ids = publish_all(&publisher, "t", 1..=5).await;
        let mut live = publisher
            .subscribe("t", SubscribeOptions::new())
            .await
            .unwrap();
        let mut resumed = publisher.subscribe("t", resume(ids[1])).await.unwrap();
        let later = publish_all(&publisher, "t", 6..=7).await;
        let got = take(&mut resumed, 5).await;
        assert_eq!(got.iter().map(|e| e.1).collect::<Vec<_>>(), [3, 4, 5, 6, 7]);
        assert_eq!(got[0].0, ids[2]);
        assert_eq!(got[4].0, later[1]);
        let got = take(&mut live, 2).await;
        assert_eq!(got, [(later[0], 6), (later[1], 7)]);
        // Through the trait, as a handler sees it.
        let mut all = Publisher::subscribe(&publisher, "t", resume(StreamId::ZERO))
            .await
            .unwrap();
        assert_eq!(
            take(&mut all, 7)
                .await
                .iter()
                .map(|e| e.1)
                .collect::<Vec<_>>(),
            [1, 2, 3, 4, 5, 6, 7]
        );
    });
}

fn resumes_racing_publishes_miss_nothing_and_repeat_nothing<R: Rt>() {
    let redis = redis();
    R::run(|runtime| async move {
        const TOTAL: u32 = 300;
        let publisher = publisher(&redis, runtime);
        let first = publish_all(&publisher, "race", [0]).await;
        let ids = std::sync::Arc::new(std::sync::Mutex::new(first));
        let writer = {
            let publisher = publisher.clone();
            let ids = std::sync::Arc::clone(&ids);
            async move {
                for value in 1..TOTAL {
                    let id = publisher.publish("race", value).await.unwrap();
                    ids.lock().unwrap().push(id);
                }
            }
        };
        let readers = async {
            let mut subs = Vec::new();
            // Subscribe again and again while the writer publishes, each resuming after the
            // latest id known so far, or live only.
            for round in 0..20 {
                let known = ids.lock().unwrap().clone();
                let resume_at = known.len() - 1 - (round % 3).min(known.len() - 1);
                let sub = if round % 4 == 3 {
                    publisher
                        .subscribe("race", SubscribeOptions::new())
                        .await
                        .unwrap()
                } else {
                    publisher
                        .subscribe("race", resume(known[resume_at]))
                        .await
                        .unwrap()
                };
                subs.push((sub, (round % 4 != 3).then_some(known[resume_at])));
                outer_smol::SmolRuntime
                    .sleep(Duration::from_millis(3))
                    .await;
            }
            subs
        };
        let ((), subs) = futures::join!(writer, readers);
        let ids = ids.lock().unwrap().clone();
        assert_eq!(ids.len(), TOTAL as usize);
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        for (mut sub, resumed_after) in subs {
            let start = match resumed_after {
                Some(after) => ids.iter().position(|id| *id == after).unwrap() + 1,
                None => {
                    // Live only: it starts somewhere, then misses nothing.
                    let (id, _) = take(&mut sub, 1).await[0];
                    ids.iter().position(|known| *known == id).unwrap() + 1
                }
            };
            let got = take(&mut sub, ids.len() - start).await;
            let expected: Vec<(StreamId, u32)> =
                (start..ids.len()).map(|i| (ids[i], i as u32)).collect();
            assert_eq!(got, expected, "resumed after {resumed_after:?}");
        }
    });
}

fn a_resume_point_trimmed_away_is_an_expired_gap<R: Rt>() {
    let redis = redis();
    R::run(|runtime| async move {
        let publisher = RedisPublisher::<u32>::builder(redis.url())
            .retain_last(1)
            .build(runtime)
            .unwrap();
        // `MAXLEN ~` trims whole nodes of 100 entries: publish enough to trim some.
        let ids = publish_all(&publisher, "old", 0..350).await;
        let oldest = held(&redis, &publisher.key("old"))[0].0;
        assert!(oldest > ids[0], "the stream was not trimmed");

        let mut ended = publisher.subscribe("old", resume(ids[0])).await.unwrap();
        match within("the gap", ended.next()).await {
            Some(Err(RecvError::Gap(gap))) => {
                assert_eq!(gap.kind(), GapKind::Expired);
                assert_eq!(gap.last_id(), ids[0]);
                assert_eq!(gap.next_id(), Some(oldest));
                assert!(gap.ends_subscription());
                let rpc = RpcError::from(RecvError::Gap(gap));
                assert_eq!(rpc.status(), 412);
            }
            other => panic!("expected a gap, got {other:?}"),
        }
        assert!(within("the end", ended.next()).await.is_none());

        let mut skips = publisher
            .subscribe("old", resume(ids[0]).on_gap(GapPolicy::Skip))
            .await
            .unwrap();
        assert!(matches!(
            within("the gap", skips.next()).await,
            Some(Err(RecvError::Gap(_)))
        ));
        let first = take(&mut skips, 1).await[0];
        assert_eq!(first.0, oldest);
        let index = ids.iter().position(|id| *id == oldest).unwrap();
        let rest = take(&mut skips, ids.len() - index - 1).await;
        assert_eq!(rest.last().unwrap().0, *ids.last().unwrap());
    });
}

fn an_id_the_stream_never_gave_out_is_an_unknown_gap<R: Rt>() {
    let redis = redis();
    R::run(|runtime| async move {
        let publisher = publisher(&redis, runtime);
        let ids = publish_all(&publisher, "t", [1, 2, 3]).await;
        let epoch = ids[0].epoch().unwrap();
        let other = Epoch::new(epoch.get().wrapping_add(1));
        let never_given_out = [
            // After the last one.
            StreamId::new(ids[2].millis() + 1_000_000, 0).with_epoch(epoch),
            // Inside the range: a position between two entries, with the right epoch.
            StreamId::new(ids[1].millis(), ids[1].seq() + 5).with_epoch(epoch),
            // Before the first, in a stream never trimmed.
            StreamId::new(ids[0].millis() - 1, 0).with_epoch(epoch),
            // An entry held, in another history.
            ids[1].with_epoch(other),
        ];
        for id in never_given_out {
            let mut sub = publisher.subscribe("t", resume(id)).await.unwrap();
            match within("the gap", sub.next()).await {
                Some(Err(RecvError::Gap(gap))) => {
                    assert_eq!(gap.kind(), GapKind::Unknown, "{id}");
                    assert_eq!(gap.last_id(), id);
                }
                other => panic!("expected a gap after {id}, got {other:?}"),
            }
            assert!(within("the end", sub.next()).await.is_none());
        }
        // The ids given out still resume exactly.
        let mut sub = publisher.subscribe("t", resume(ids[0])).await.unwrap();
        assert_eq!(take(&mut sub, 2).await, [(ids[1], 2), (ids[2], 3)]);
        // A topic that never existed knows no id but the start.
        let mut none = publisher.subscribe("never", resume(ids[0])).await.unwrap();
        assert!(
            matches!(within("the gap", none.next()).await, Some(Err(RecvError::Gap(g))) if g.kind() == GapKind::Unknown)
        );
        let mut start = publisher
            .subscribe("never", resume(StreamId::ZERO))
            .await
            .unwrap();
        let id = publisher.publish("never", 9).await.unwrap();
        assert_eq!(take(&mut start, 1).await, [(id, 9)]);
    });
}

fn a_malformed_id_is_a_bad_request<R: Rt>() {
    let redis = redis();
    R::run(|runtime| async move {
        let publisher = publisher(&redis, runtime);
        for bad in ["abc", "0000000000000001", "1-2-3", "-1-0"] {
            let err = publisher
                .subscribe(
                    "t",
                    SubscribeOptions::new().resume_after(EventId::new(bad).unwrap()),
                )
                .await
                .unwrap_err();
            assert!(matches!(err, Error::MalformedId(_)), "{err}");
            let rpc = RpcError::from(err);
            assert_eq!((rpc.code(), rpc.status()), ("BAD_REQUEST", 400), "{bad}");
            assert!(rpc.message().contains(bad), "{}", rpc.message());
        }
        // SSE's empty id means none: live only.
        let sub = publisher
            .subscribe(
                "t",
                SubscribeOptions::new().resume_after(EventId::new("").unwrap()),
            )
            .await;
        assert!(sub.is_ok());
    });
}

fn subscribers_of_a_topic_share_one_reader<R: Rt>() {
    let redis = redis();
    R::run(|runtime| async move {
        let publisher = publisher(&redis, runtime);
        let mut subs = Vec::new();
        for n in 0..25 {
            let topic = if n < 20 { "a" } else { "b" };
            subs.push(
                publisher
                    .subscribe(topic, SubscribeOptions::new())
                    .await
                    .unwrap(),
            );
        }
        let a = publisher.publish("a", 1).await.unwrap();
        let b = publisher.publish("b", 2).await.unwrap();
        for (n, sub) in subs.iter_mut().enumerate() {
            let expected = if n < 20 { (a, 1) } else { (b, 2) };
            assert_eq!(take(sub, 1).await, [expected]);
        }
        // Every subscriber got its event, so whatever reads for it is connected now: Redis
        // sees one reading connection per topic, not one per subscriber.
        assert_eq!(readers(&redis), ["outer-reader:a", "outer-reader:b"]);
        assert_eq!(publisher.reader_count(), 2);
        assert_eq!(
            (
                publisher.subscriber_count("a"),
                publisher.subscriber_count("b")
            ),
            (20, 5)
        );
        // And the commands (publish, catch-up) share one more connection, whatever the number
        // of subscribers: besides the readers, only it and the `CLIENT LIST` query's own (an
        // earlier query's may take a moment to close).
        until("only the command connection besides the readers", || {
            let others = redis
                .client_names()
                .unwrap()
                .iter()
                .filter(|name| !name.starts_with("outer-reader:"))
                .count();
            others == 2
        })
        .await;
    });
}

fn dropping_the_last_subscription_stops_the_topics_reader<R: Rt>() {
    let redis = redis();
    R::run(|runtime| async move {
        let publisher = publisher(&redis, runtime);
        let first = publisher
            .subscribe("t", SubscribeOptions::new())
            .await
            .unwrap();
        let second = publisher
            .subscribe("t", SubscribeOptions::new())
            .await
            .unwrap();
        until("the reader connected", || readers(&redis).len() == 1).await;
        drop(first);
        assert_eq!(publisher.subscriber_count("t"), 1);
        assert_eq!(publisher.reader_count(), 1);
        drop(second);
        assert_eq!(publisher.subscriber_count("t"), 0);
        until("the reader stopped", || publisher.reader_count() == 0).await;
        until("its connection closed", || readers(&redis).is_empty()).await;
        // A new subscriber starts a new reader.
        let mut again = publisher
            .subscribe("t", SubscribeOptions::new())
            .await
            .unwrap();
        let id = publisher.publish("t", 5).await.unwrap();
        assert_eq!(take(&mut again, 1).await, [(id, 5)]);
        assert_eq!(publisher.reader_count(), 1);
    });
}

fn a_subscriber_behind_its_buffer_catches_up_from_redis<R: Rt>() {
    let redis = redis();
    R::run(|runtime| async move {
        let publisher = publisher(&redis, runtime);
        let mut slow = publisher
            .subscribe("t", SubscribeOptions::new().buffer(2))
            .await
            .unwrap();
        let mut fast = publisher
            .subscribe("t", SubscribeOptions::new())
            .await
            .unwrap();
        let ids = publish_all(&publisher, "t", 0..200).await;
        // `fast` reads them all first: the reader certainly went past `slow`'s buffer.
        assert_eq!(take(&mut fast, 200).await.last().unwrap().0, ids[199]);
        let got = take(&mut slow, 200).await;
        let expected: Vec<_> = ids.iter().copied().zip(0..).collect();
        assert_eq!(got, expected);
        let later = publisher.publish("t", 200).await.unwrap();
        assert_eq!(take(&mut slow, 1).await, [(later, 200)]);
    });
}

fn a_subscriber_behind_the_retention_gets_a_lagged_gap<R: Rt>() {
    let redis = redis();
    R::run(|runtime| async move {
        let publisher = RedisPublisher::<u32>::builder(redis.url())
            .retain_last(200)
            .build(runtime)
            .unwrap();
        let mut slow = publisher
            .subscribe("t", SubscribeOptions::new().buffer(1))
            .await
            .unwrap();
        let mut fast = publisher
            .subscribe("t", SubscribeOptions::new())
            .await
            .unwrap();
        // In steps the reader keeps up with (the retention is what `slow` outruns, not it).
        let mut ids = Vec::new();
        for step in 0..50 {
            ids.extend(publish_all(&publisher, "t", step * 20..(step + 1) * 20).await);
            take(&mut fast, 20).await;
        }
        let mut seen = Vec::new();
        loop {
            match within("an event or the gap", slow.next()).await {
                Some(Ok(event)) => seen.push(*event.id()),
                Some(Err(RecvError::Gap(gap))) => {
                    assert_eq!(gap.kind(), GapKind::Lagged);
                    assert_eq!(Some(gap.last_id()), seen.last().copied());
                    break;
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(
            seen,
            ids[..seen.len()],
            "what came before the gap came in order"
        );
        assert!(within("the end", slow.next()).await.is_none());
    });
}

fn dropping_the_publisher_ends_its_subscriptions<R: Rt>() {
    let redis = redis();
    R::run(|runtime| async move {
        let publisher = publisher(&redis, runtime);
        let mut sub = publisher
            .subscribe("t", SubscribeOptions::new())
            .await
            .unwrap();
        let id = publisher.publish("t", 1).await.unwrap();
        assert_eq!(take(&mut sub, 1).await, [(id, 1)]);
        let readers = {
            let clone = publisher.clone();
            drop(publisher);
            // A clone keeps it open.
            assert_eq!(clone.reader_count(), 1);
            clone
        };
        drop(readers);
        assert!(within("the end", sub.next()).await.is_none());
    });
}

fn a_redis_restart_mid_stream_loses_and_repeats_nothing<R: Rt>() {
    let mut redis = redis();
    R::run(|runtime| async move {
        let publisher = publisher(&redis, runtime);
        let mut live = publisher
            .subscribe("t", SubscribeOptions::new())
            .await
            .unwrap();
        let before = publish_all(&publisher, "t", 0..10).await;
        assert_eq!(take(&mut live, 5).await.last().unwrap().0, before[4]);
        let mut resumed = publisher.subscribe("t", resume(before[2])).await.unwrap();

        redis.kill();
        // Published elsewhere while this instance cannot reach Redis? Nothing can be: Redis is
        // down. Publish right after it is back, before the reader has reconnected.
        redis.restart().unwrap();
        let mut after = Vec::new();
        for value in 10..20 {
            after.push(publish_retrying(&publisher, "t", value).await);
        }
        let all: Vec<StreamId> = before.iter().chain(&after).copied().collect();
        let got = take(&mut live, 15).await;
        assert_eq!(got, all[5..].iter().copied().zip(5..).collect::<Vec<_>>());
        let got = take(&mut resumed, 17).await;
        assert_eq!(got, all[3..].iter().copied().zip(3..).collect::<Vec<_>>());
        // Back to one reader connection.
        until("the reader reconnected", || readers(&redis).len() == 1).await;
    });
}

fn another_instance_resumes_where_the_first_left_off<R: Rt>() {
    let redis = redis();
    R::run(|runtime| async move {
        let a = publisher(&redis, runtime.clone());
        let b = publisher(&redis, runtime.clone());
        let elsewhere = publisher(&redis, runtime);
        let mut on_a = a.subscribe("t", SubscribeOptions::new()).await.unwrap();
        let ids = publish_all(&elsewhere, "t", 0..10).await;
        let seen = take(&mut on_a, 4).await;
        drop(on_a);
        drop(a);
        let last = seen.last().unwrap().0;
        let mut on_b = b.subscribe("t", resume(last)).await.unwrap();
        let more = publish_all(&elsewhere, "t", 10..12).await;
        let got = take(&mut on_b, 8).await;
        let all: Vec<_> = ids.iter().chain(&more).copied().collect();
        assert_eq!(got, all[4..].iter().copied().zip(4..).collect::<Vec<_>>());
    });
}

fn an_undecodable_entry_is_reported_and_the_stream_goes_on<R: Rt>() {
    let redis = redis();
    R::run(|runtime| async move {
        let publisher = publisher(&redis, runtime);
        let mut sub = publisher
            .subscribe("t", SubscribeOptions::new())
            .await
            .unwrap();
        let first = publisher.publish("t", 1).await.unwrap();
        let foreign: String = redis
            .query(
                redis::cmd("XADD")
                    .arg(publisher.key("t"))
                    .arg("*")
                    .arg("d")
                    .arg("not json"),
            )
            .unwrap();
        let last = publisher.publish("t", 3).await.unwrap();
        assert_eq!(take(&mut sub, 1).await, [(first, 1)]);
        match within("the bad entry", sub.next()).await {
            Some(Err(RecvError::Undecodable { id, .. })) => {
                let foreign = StreamId::parse(&foreign).unwrap();
                assert_eq!((id.millis(), id.seq()), (foreign.millis(), foreign.seq()));
                assert_eq!(id.epoch(), first.epoch(), "the stream's epoch");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(take(&mut sub, 1).await, [(last, 3)]);
    });
}

fn a_redis_that_lost_its_data_is_an_unknown_gap_never_a_silent_one<R: Rt>() {
    let mut redis = redis();
    R::run(|runtime| async move {
        let publisher = publisher(&redis, runtime);
        let mut live = publisher
            .subscribe("t", SubscribeOptions::new().on_gap(GapPolicy::Skip))
            .await
            .unwrap();
        let before = publish_all(&publisher, "t", 0..3).await;
        assert_eq!(take(&mut live, 3).await.last().unwrap().0, before[2]);

        // Redis comes back without persistence: the history is gone. One new post.
        redis.restart_empty().unwrap();
        let after = publish_retrying(&publisher, "t", 3).await;
        assert_ne!(
            after.epoch(),
            before[0].epoch(),
            "a new history, a new epoch"
        );
        assert!(after > before[2]);

        // Resuming from any id of the lost history: a gap, not the new post alone.
        for id in &before {
            let mut sub = publisher.subscribe("t", resume(*id)).await.unwrap();
            match within("the gap", sub.next()).await {
                Some(Err(RecvError::Gap(gap))) => {
                    assert_eq!((gap.kind(), gap.last_id()), (GapKind::Unknown, *id));
                    assert!(RpcError::from(RecvError::Gap(gap)).status() == 412);
                }
                other => panic!("expected a gap after {id}, got {other:?}"),
            }
            assert!(within("the end", sub.next()).await.is_none());
        }
        // A subscriber that skips gaps reads the new history from its start.
        let mut skips = publisher
            .subscribe("t", resume(before[1]).on_gap(GapPolicy::Skip))
            .await
            .unwrap();
        assert!(matches!(
            within("the gap", skips.next()).await,
            Some(Err(RecvError::Gap(gap))) if gap.kind() == GapKind::Unknown
        ));
        // It may be told twice: by its own resume, and by the topic's reader if that had not
        // yet seen the new history when this subscriber joined it. Then the new post.
        let first = loop {
            match within("the new post", skips.next()).await {
                Some(Err(RecvError::Gap(gap))) if gap.kind() == GapKind::Unknown => continue,
                other => break other,
            }
        };
        assert_eq!(
            first.map(|event| event.map(|event| (*event.id(), *event))),
            Some(Ok((after, 3)))
        );
        // The live subscriber is told too, then goes on with the new history.
        match within("the live gap", live.next()).await {
            Some(Err(RecvError::Gap(gap))) => assert_eq!(gap.kind(), GapKind::Unknown),
            other => panic!("expected a gap, got {other:?}"),
        }
        assert_eq!(take(&mut live, 1).await, [(after, 3)]);
        // And the new history's ids resume exactly.
        let next = publisher.publish("t", 4).await.unwrap();
        let mut sub = publisher.subscribe("t", resume(after)).await.unwrap();
        assert_eq!(take(&mut sub, 1).await, [(next, 4)]);
    });
}

fn an_id_from_another_deployment_is_an_unknown_gap<R: Rt>() {
    let (here, there) = (redis(), redis());
    R::run(|runtime| async move {
        let ours = publisher(&here, runtime.clone());
        let theirs = publisher(&there, runtime);
        let mine = publish_all(&ours, "t", 0..3).await;
        // The other deployment holds an entry at the very same position, in its own history.
        let foreign = theirs.publish("t", 7).await.unwrap();
        let _: String = here
            .query(
                redis::cmd("XADD")
                    .arg(ours.key("t"))
                    .arg(foreign.millis().max(mine[2].millis() + 1).to_string() + "-0")
                    .arg("d")
                    .arg("8")
                    .arg("e")
                    .arg(mine[0].epoch().unwrap().to_string()),
            )
            .unwrap();
        let same_position = StreamId::new(foreign.millis().max(mine[2].millis() + 1), 0)
            .with_epoch(foreign.epoch().unwrap());
        for id in [foreign, same_position] {
            let mut sub = ours.subscribe("t", resume(id)).await.unwrap();
            match within("the gap", sub.next()).await {
                Some(Err(RecvError::Gap(gap))) => assert_eq!(gap.kind(), GapKind::Unknown),
                other => panic!("expected a gap after {id}, got {other:?}"),
            }
        }
    });
}

fn ids_written_before_epochs_still_resume_from_their_entries<R: Rt>() {
    let redis = redis();
    R::run(|runtime| async move {
        let publisher = publisher(&redis, runtime);
        // Entries as outer-redis 0.1 wrote them: JSON only, no epoch; their ids have none.
        let mut legacy = Vec::new();
        for value in 0..3u32 {
            let id: String = redis
                .query(
                    redis::cmd("XADD")
                        .arg(publisher.key("t"))
                        .arg("*")
                        .arg("d")
                        .arg(value.to_string()),
                )
                .unwrap();
            legacy.push(StreamId::parse(&id).unwrap());
        }
        // The first publish since starts the stream's first epoch, which its older entries are
        // read with from then on: they are of the same history.
        let new = publish_all(&publisher, "t", 3..5).await;
        let epoch = new[0].epoch().expect("an epoch");
        let mut sub = publisher.subscribe("t", resume(legacy[0])).await.unwrap();
        let got = take(&mut sub, 4).await;
        let expected: Vec<(StreamId, u32)> = [
            legacy[1].with_epoch(epoch),
            legacy[2].with_epoch(epoch),
            new[0],
            new[1],
        ]
        .into_iter()
        .zip(1..)
        .collect();
        assert_eq!(got, expected);
        // And an id without an epoch naming an entry written since resumes too: it is judged by
        // its position alone.
        let bare = StreamId::new(new[0].millis(), new[0].seq());
        let mut sub = publisher.subscribe("t", resume(bare)).await.unwrap();
        assert_eq!(take(&mut sub, 1).await, [(new[1], 4)]);
        // A made-up id without an epoch is refused like any other.
        let made_up = StreamId::new(legacy[1].millis(), legacy[1].seq() + 9);
        let mut sub = publisher.subscribe("t", resume(made_up)).await.unwrap();
        assert!(matches!(
            within("the gap", sub.next()).await,
            Some(Err(RecvError::Gap(gap))) if gap.kind() == GapKind::Unknown
        ));
    });
}

/// The router a handler over this publisher makes: `live` is the topic's subscription as it
/// is, resumed after the client's last event id.
fn live_router(publisher: RedisPublisher<u32>) -> Router<()> {
    Router::new().route(
        "live",
        procedure::<()>().subscription(move |req| {
            let publisher = publisher.clone();
            let mut options = SubscribeOptions::new();
            options.last_event_id = req.last_event_id;
            async move { Ok(publisher.subscribe("t", options).await?) }
        }),
    )
}

/// Calls `live` after `last`: the stream, or the status that refused it before any stream.
async fn call_live(router: &Router<()>, last: Option<&str>) -> Result<FrameStream, u16> {
    let call = Call::new((), None).with_last_event_id(last.map(|id| EventId::new(id).unwrap()));
    match within("the call", router.call("live", call)).await {
        Ok(Reply::Stream(frames)) => Ok(frames),
        Ok(Reply::Value(_)) => panic!("live is a stream"),
        Err(err) => Err(err.status()),
    }
}

fn a_subscription_is_a_procedures_stream_and_its_setup_errors_are_statuses<R: Rt>() {
    let redis = redis();
    R::run(|runtime| async move {
        let publisher = publisher(&redis, runtime.clone());
        let router = live_router(publisher.clone());
        let ids = publish_all(&publisher, "t", [10, 20]).await;
        // Each event goes out with its stream id as its SSE id.
        let mut frames = call_live(&router, Some(&ids[0].to_string())).await.unwrap();
        // Shared: its JSON and frames made once for every subscriber in the process.
        match within("an event", frames.next()).await {
            Some(Frame::Shared(event)) => {
                assert_eq!(event.id().unwrap().as_str(), ids[1].to_string());
                assert_eq!(event.data().get(), "20");
            }
            other => panic!("expected an event, got {other:?}"),
        }
        // A stream id serializes as the string a client sends back.
        assert_eq!(
            serde_json::to_value(ids[1]).unwrap(),
            serde_json::Value::String(ids[1].to_string())
        );
        // Refused before any stream, with the status: a malformed id, a Redis that is away.
        assert_eq!(call_live(&router, Some("zzz")).await.unwrap_err(), 400);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let away = RedisPublisher::builder(format!("redis://127.0.0.1:{port}"))
            .build(runtime)
            .unwrap();
        assert_eq!(call_live(&live_router(away), None).await.unwrap_err(), 503);
    });
}

fn backfilled_fills_a_trimmed_gap_from_a_store_then_goes_live<R: Rt>() {
    let redis = redis();
    R::run(|runtime| async move {
        let publisher = RedisPublisher::<u32>::builder(redis.url())
            .retain_last(1)
            .build(runtime)
            .unwrap();
        // `MAXLEN ~` trims whole nodes of 100 entries: publish enough to trim some.
        let values: Vec<u32> = (0..350).collect();
        let ids = publish_all(&publisher, "kept", values.iter().copied()).await;
        let store: Arc<Vec<(StreamId, u32)>> = Arc::new(ids.iter().copied().zip(values).collect());
        let pages = move |after: StreamId| {
            let page = store.iter().filter(|(id, _)| *id > after).take(64);
            let page: Vec<_> = page.copied().collect();
            async move { Ok(page) }
        };
        let mut feed = backfilled(publisher.clone(), "kept", resume(ids[0]), pages)
            .await
            .unwrap();
        let mut got = Vec::new();
        while got.len() < 349 {
            match within("an event", feed.next()).await {
                Some(Ok(event)) => got.push((*event.id(), *event)),
                other => panic!("expected event {}, got {other:?}", got.len() + 1),
            }
        }
        let expected: Vec<(StreamId, u32)> = ids[1..].iter().copied().zip(1..350).collect();
        assert_eq!(
            got, expected,
            "every event after the resume point, once, in order"
        );
        let live = publisher.publish("kept", 1000).await.unwrap();
        match within("the live event", feed.next()).await {
            Some(Ok(event)) => assert_eq!((*event.id(), *event), (live, 1000)),
            other => panic!("expected the live event, got {other:?}"),
        }
    });
}

fn the_first_calls_after_a_redis_restart_reconnect_in_place<R: Rt>() {
    let mut redis = redis();
    R::run(|runtime| async move {
        let publisher = publisher(&redis, runtime);
        // Opens the command connection, which the restart then breaks.
        let first = publisher.publish("t", 1).await.unwrap();
        redis.restart().unwrap();
        // Not a 503 for the first caller after the restart: the publish reconnects in place.
        let second = publisher.publish("t", 2).await.unwrap();
        assert!(second > first);
        redis.restart().unwrap();
        // Nor for a topic's first subscriber, whose setup asks Redis for the stream's last id.
        let mut live = publisher
            .subscribe("u", SubscribeOptions::new())
            .await
            .unwrap();
        let id = publisher.publish("u", 3).await.unwrap();
        assert_eq!(take(&mut live, 1).await, [(id, 3)]);
        redis.restart().unwrap();
        // Nor for a catch-up read of a resumed subscription.
        let mut resumed = publisher.subscribe("t", resume(first)).await.unwrap();
        assert_eq!(take(&mut resumed, 1).await, [(second, 2)]);
    });
}

fn a_redis_that_stays_away_fails_the_call_after_the_reconnect_wait<R: Rt>() {
    let mut redis = redis();
    R::run(|runtime| async move {
        let publisher: RedisPublisher<u32> = RedisPublisher::builder(redis.url())
            .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(100))
            .reconnect_wait(Duration::from_millis(300))
            .build(runtime)
            .unwrap();
        publisher.publish("t", 1).await.unwrap();
        redis.kill();
        let started = Instant::now();
        match within("the publish to fail", publisher.publish("t", 2)).await {
            Err(Error::Unavailable(_)) => {}
            other => panic!("expected Unavailable, got {other:?}"),
        }
        // It waited for Redis (the wait is bounded), and no longer than asked, give or take.
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(250),
            "gave up after {waited:?}"
        );
        assert!(waited < Duration::from_secs(3), "waited {waited:?}");
    });
}

on_every_runtime!(
    publish_is_xadd_with_approximate_retention_and_stream_ids,
    replay_then_live_has_no_gap_and_no_duplicate,
    resumes_racing_publishes_miss_nothing_and_repeat_nothing,
    a_resume_point_trimmed_away_is_an_expired_gap,
    an_id_the_stream_never_gave_out_is_an_unknown_gap,
    a_malformed_id_is_a_bad_request,
    subscribers_of_a_topic_share_one_reader,
    dropping_the_last_subscription_stops_the_topics_reader,
    a_subscriber_behind_its_buffer_catches_up_from_redis,
    a_subscriber_behind_the_retention_gets_a_lagged_gap,
    dropping_the_publisher_ends_its_subscriptions,
    a_redis_restart_mid_stream_loses_and_repeats_nothing,
    another_instance_resumes_where_the_first_left_off,
    an_undecodable_entry_is_reported_and_the_stream_goes_on,
    a_redis_that_lost_its_data_is_an_unknown_gap_never_a_silent_one,
    an_id_from_another_deployment_is_an_unknown_gap,
    ids_written_before_epochs_still_resume_from_their_entries,
    a_subscription_is_a_procedures_stream_and_its_setup_errors_are_statuses,
    backfilled_fills_a_trimmed_gap_from_a_store_then_goes_live,
    the_first_calls_after_a_redis_restart_reconnect_in_place,
    a_redis_that_stays_away_fails_the_call_after_the_reconnect_wait,
);
