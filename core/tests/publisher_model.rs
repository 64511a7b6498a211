//! A model check of the memory publisher: any interleaving of publishes, subscribes (live, resumed,
//! resumed from an id never assigned, malformed), drops and slow reads across several topics.
//!
//! The model is the list of events each topic was given. Every item a subscriber yields is
//! checked against it: events come in publish order from just after the resume point, with no
//! duplicate and no hole except where a gap says exactly what it skipped, and a gap only where
//! retention and the subscriber's buffer could not cover it. A subscriber that reports nothing
//! more must have everything, and must be woken by the next publish on its topic (each polls
//! with a waker that counts, sometimes a new one, as when a task moves). Subscriber counts
//! match after every step and end at zero once every subscription is dropped.
// A test that unwraps fails loudly at the line that broke, which is what a test is for.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use futures::Stream;
use outer_core::publisher::{
    GapKind, GapPolicy, MemoryPublisher, SeqId, SubscribeError, SubscribeOptions, Subscription,
};
use proptest::prelude::*;

const TOPICS: [&str; 3] = ["a", "b", "c"];

#[derive(Clone, Debug)]
enum Resume {
    Live,
    /// This many events back from the topic's newest.
    Back(u64),
    /// This far past the newest id any topic got: from a restarted publisher, say.
    Ahead(u64),
    Malformed,
}

#[derive(Clone, Debug)]
enum Op {
    Publish {
        topic: usize,
    },
    Subscribe {
        topic: usize,
        resume: Resume,
        buffer: usize,
        skip: bool,
    },
    /// Poll a live subscriber up to `max` times: a small `max`, or none for a while, is a slow
    /// consumer. With `new_task`, it polls with a new waker from now on.
    Read {
        sub: usize,
        max: usize,
        new_task: bool,
    },
    Drop {
        sub: usize,
    },
}

fn resume() -> impl Strategy<Value = Resume> {
    prop_oneof![
        3 => Just(Resume::Live),
        3 => (0..12u64).prop_map(Resume::Back),
        1 => (1..4u64).prop_map(Resume::Ahead),
        1 => Just(Resume::Malformed),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0..TOPICS.len()).prop_map(|topic| Op::Publish { topic }),
        2 => (0..TOPICS.len(), resume(), 0..8usize, any::<bool>())
            .prop_map(|(topic, resume, buffer, skip)| Op::Subscribe { topic, resume, buffer, skip }),
        4 => (any::<prop::sample::Index>(), 1..6usize, prop::bool::weighted(0.2))
            .prop_map(|(sub, max, new_task)| Op::Read { sub: sub.index(1 << 16), max, new_task }),
        1 => any::<prop::sample::Index>().prop_map(|sub| Op::Drop { sub: sub.index(1 << 16) }),
    ]
}

/// A waker that counts its wakes.
#[derive(Default)]
struct Wakes(AtomicUsize);

impl Wake for Wakes {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl Wakes {
    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

struct Sub {
    topic: usize,
    stream: Option<Subscription<u32>>,
    /// The waker it polls with, and its count when it last returned `Pending`.
    wakes: Arc<Wakes>,
    /// Returned `Pending` and not woken since: the next publish on its topic must wake it.
    waiting: Option<usize>,
    /// Index in the topic's log of the next event this subscriber must get.
    next: usize,
    /// The id a gap must name as the subscriber's position, when the model knows it.
    last: Option<u64>,
    resumed_from: Option<u64>,
    /// Events after the resume point when it subscribed.
    pending_at_subscribe: usize,
    /// The topic's newest id when it subscribed.
    newest_at_subscribe: Option<u64>,
    /// Resumed from an id past any the publisher assigned: the first item must say so.
    expect_unknown: bool,
    /// The buffer in effect: as asked, but at least 1.
    buffer: usize,
    skip: bool,
    /// Has yielded anything yet: gaps about the resume point come first.
    started: bool,
    ended: bool,
}

impl Sub {
    fn registered(&self) -> bool {
        self.stream.is_some() && !self.ended
    }
}

struct Model {
    retain: usize,
    publisher: MemoryPublisher<u32>,
    /// Per topic: (id, data) of every publish, in order.
    log: [Vec<(u64, u32)>; 3],
    /// The newest id any publish returned.
    newest: u64,
    subs: Vec<Sub>,
    counter: u32,
}

impl Model {
    fn new(retain: usize) -> Self {
        Self {
            retain,
            publisher: MemoryPublisher::builder().retain_last(retain).build(),
            log: Default::default(),
            newest: 0,
            subs: Vec::new(),
            counter: 0,
        }
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Publish { topic } => self.publish(topic),
            Op::Subscribe {
                topic,
                resume,
                buffer,
                skip,
            } => self.subscribe(topic, resume, buffer, skip),
            Op::Read { sub, max, new_task } => {
                let live: Vec<usize> = self.live_subs();
                if !live.is_empty() {
                    let index = live[sub % live.len()];
                    if new_task {
                        let sub = &mut self.subs[index];
                        sub.wakes = Arc::default();
                        sub.waiting = None;
                    }
                    self.read(index, max);
                }
            }
            Op::Drop { sub } => {
                let live = self.live_subs();
                if !live.is_empty() {
                    self.subs[live[sub % live.len()]].stream = None;
                }
            }
        }
        self.check_counts_and_memory();
    }

    fn live_subs(&self) -> Vec<usize> {
        (0..self.subs.len())
            .filter(|i| self.subs[*i].stream.is_some())
            .collect()
    }

    fn publish(&mut self, topic: usize) {
        self.counter += 1;
        let id = self
            .publisher
            .publish_now(TOPICS[topic], self.counter)
            .get();
        if let Some((previous, _)) = self.log[topic].last() {
            assert!(
                id > *previous,
                "ids must grow on a topic: {previous} then {id}"
            );
            if self.retain > 0 {
                // A topic that keeps events is never removed: its ids are consecutive.
                assert_eq!(id, previous + 1, "ids on a kept topic grow by one");
            }
        }
        for sub in &mut self.subs {
            if sub.topic != topic || sub.stream.is_none() {
                continue;
            }
            if let Some(seen) = sub.waiting.take() {
                assert!(
                    sub.wakes.count() > seen,
                    "a waiting subscriber was not woken by a publish on its topic"
                );
            }
        }
        self.newest = self.newest.max(id);
        self.log[topic].push((id, self.counter));
    }

    fn subscribe(&mut self, topic: usize, resume: Resume, buffer: usize, skip: bool) {
        let log = &self.log[topic];
        let newest_here = log.last().map_or(0, |(id, _)| *id);
        let resumed_from = match resume {
            Resume::Live => None,
            Resume::Back(back) => Some(newest_here.saturating_sub(back)),
            Resume::Ahead(ahead) => Some(self.newest + ahead),
            Resume::Malformed => {
                let options = SubscribeOptions::new()
                    .resume_after(outer_core::EventId::new("not-an-id").unwrap());
                let err = self
                    .publisher
                    .subscribe_now(TOPICS[topic], options)
                    .unwrap_err();
                assert!(matches!(err, SubscribeError::MalformedId(_)));
                let registered = self
                    .subs
                    .iter()
                    .filter(|s| s.topic == topic && s.registered());
                assert_eq!(
                    self.publisher.subscriber_count(TOPICS[topic]),
                    registered.count(),
                    "a refused subscribe registers nothing"
                );
                return;
            }
        };
        let policy = if skip {
            GapPolicy::Skip
        } else {
            GapPolicy::End
        };
        let mut options = SubscribeOptions::new().buffer(buffer).on_gap(policy);
        if let Some(last) = resumed_from {
            options = options.resume_after(SeqId::new(last));
        }
        let stream = self
            .publisher
            .subscribe_now(TOPICS[topic], options)
            .unwrap();
        let next = match resumed_from {
            Some(last) => log.partition_point(|(id, _)| *id <= last),
            None => log.len(),
        };
        self.subs.push(Sub {
            topic,
            stream: Some(stream),
            wakes: Arc::default(),
            waiting: None,
            next,
            last: resumed_from,
            resumed_from,
            pending_at_subscribe: log.len() - next,
            newest_at_subscribe: log.last().map(|(id, _)| *id),
            expect_unknown: resumed_from.is_some_and(|last| last > self.newest),
            buffer: buffer.max(1),
            skip,
            started: false,
            ended: false,
        });
    }

    /// Polls subscriber `index` up to `max` times, checking each item against the model.
    fn read(&mut self, index: usize, max: usize) {
        for _ in 0..max {
            let sub = &mut self.subs[index];
            let Some(stream) = sub.stream.as_mut() else {
                return;
            };
            let waker = Waker::from(Arc::clone(&sub.wakes));
            let polled = Pin::new(stream).poll_next(&mut Context::from_waker(&waker));
            let log = &self.log[sub.topic];
            if sub.expect_unknown && !sub.started {
                let unknown = matches!(&polled, Poll::Ready(Some(Err(gap))) if gap.kind() == GapKind::Unknown);
                assert!(
                    unknown,
                    "an id never assigned must be reported first: {polled:?}"
                );
            }
            match polled {
                Poll::Pending => {
                    assert!(!sub.ended, "an ended subscription must say so, not wait");
                    assert_eq!(
                        sub.next,
                        log.len(),
                        "waiting while events {:?} are due",
                        &log[sub.next..]
                    );
                    sub.waiting = Some(sub.wakes.count());
                    return;
                }
                Poll::Ready(None) => {
                    assert!(sub.ended, "ended without a gap saying why");
                    return;
                }
                Poll::Ready(Some(Ok(event))) => {
                    assert!(!sub.ended, "an event after the end");
                    let got = event.id().get();
                    let Some(&(want, data)) = log.get(sub.next) else {
                        panic!("got event {got}, but every event is already delivered");
                    };
                    assert_eq!(got, want, "out of order, duplicate or skipped in silence");
                    assert_eq!(*event, data);
                    sub.next += 1;
                    sub.last = Some(got);
                }
                Poll::Ready(Some(Err(gap))) => {
                    assert!(!sub.ended, "a gap after the end");
                    assert_eq!(gap.ends_subscription(), !sub.skip);
                    if let Some(last) = sub.last {
                        assert_eq!(gap.last_id().get(), last, "the gap names the position");
                    }
                    let to = log.partition_point(|(id, _)| *id < gap.next_id().unwrap().get());
                    match gap.kind() {
                        GapKind::Unknown => {
                            let resumed = sub.resumed_from.expect("only a resume can be unknown");
                            assert!(!sub.started, "a resume gap comes first");
                            assert!(
                                sub.newest_at_subscribe.is_none_or(|id| resumed > id),
                                "resume point {resumed} was assigned on this topic"
                            );
                            assert_eq!(gap.missed(), None);
                        }
                        GapKind::Expired => {
                            assert!(sub.resumed_from.is_some() && !sub.started);
                            assert!(to >= sub.next, "a gap never goes back");
                            if let Some(missed) = gap.missed() {
                                assert!(
                                    sub.pending_at_subscribe > self.retain,
                                    "{} events after the resume point, {} retained: no gap due",
                                    sub.pending_at_subscribe,
                                    self.retain
                                );
                                assert_eq!(missed, (to - sub.next) as u64, "missed count");
                            } else {
                                // The resume point is from before the topic's present life:
                                // only a topic that keeps nothing is ever removed and remade.
                                assert_eq!(self.retain, 0, "an unknown count on a kept topic");
                            }
                        }
                        GapKind::Lagged => {
                            assert!(to > sub.next, "a lag skips something");
                            assert_eq!(gap.missed(), Some((to - sub.next) as u64));
                            let behind = log.len() - sub.next;
                            assert!(
                                behind > self.retain.max(sub.buffer),
                                "lagged {behind} behind with retention {} and buffer {}",
                                self.retain,
                                sub.buffer
                            );
                        }
                        other => panic!("unexpected gap kind {other:?}"),
                    }
                    if gap.ends_subscription() {
                        sub.ended = true;
                    } else {
                        sub.next = to;
                        sub.last = Some(gap.next_id().unwrap().get() - 1);
                    }
                }
            }
            sub.started = true;
            sub.waiting = None;
        }
    }

    fn check_counts_and_memory(&self) {
        for (t, name) in TOPICS.iter().enumerate() {
            let registered = self.subs.iter().filter(|s| s.topic == t && s.registered());
            assert_eq!(
                self.publisher.subscriber_count(name),
                registered.clone().count(),
                "subscribers of {name}"
            );
            let window = registered.map(|s| s.buffer).fold(self.retain, usize::max);
            let retained = self.publisher.retained(name);
            assert!(retained <= window, "{name} holds {retained} > {window}");
            let kept = self.retain.min(self.log[t].len());
            assert!(
                retained >= kept,
                "{name} holds {retained}, must keep {kept}"
            );
        }
    }

    /// Reads every subscriber dry, then drops them all.
    fn finish(mut self) {
        for index in self.live_subs() {
            self.read(index, usize::MAX);
            let sub = &self.subs[index];
            assert!(sub.ended || sub.next == self.log[sub.topic].len());
        }
        for sub in &mut self.subs {
            sub.stream = None;
        }
        for name in TOPICS {
            assert_eq!(self.publisher.subscriber_count(name), 0);
        }
        let kept = self.log.iter().filter(|log| !log.is_empty()).count();
        let expected = if self.retain == 0 { 0 } else { kept };
        assert_eq!(self.publisher.topic_count(), expected, "topics left behind");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn every_subscriber_gets_exactly_the_events_after_its_resume_point_or_an_explicit_gap(
        retain in 0..6usize,
        ops in prop::collection::vec(op(), 1..150),
    ) {
        let mut model = Model::new(retain);
        for op in ops {
            model.apply(op);
        }
        model.finish();
    }
}
