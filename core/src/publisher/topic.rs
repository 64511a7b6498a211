//! One topic of the memory publisher: the window of recent events all its subscribers read from,
//! and the wakers of those waiting. Plain data under the topic's lock; no locking or waking here.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use core::mem;
use core::task::Waker;

use super::{Published, SeqId};
use crate::sync::{Arc, Mutex};

/// How long a topic keeps its events for resume, whether or not anyone is subscribed.
#[derive(Clone, Copy, Debug)]
pub(super) struct Retention {
    /// Keep at most this many events.
    pub(super) last: usize,
    /// And only those younger than this many milliseconds.
    pub(super) max_age: Option<u64>,
}

/// A topic: its name (the map's key, shared) and its state behind its own lock, so topics never
/// contend with each other.
pub(super) struct Topic<T> {
    pub(super) name: Arc<str>,
    pub(super) state: Mutex<TopicState<T>>,
    /// `TopicState::epoch`, readable without the lock: a parked subscriber that sees it
    /// unchanged knows nothing was published since it parked, and waits without locking.
    /// Targets without 64-bit atomics (32-bit microcontrollers) read it under the lock instead:
    /// there the lock is a short critical section, and an emulated 64-bit atomic would be a
    /// lock too.
    #[cfg(target_has_atomic = "64")]
    epoch: core::sync::atomic::AtomicU64,
}

impl<T> Topic<T> {
    pub(super) fn new(name: &str, first: u64) -> Self {
        Self {
            name: Arc::from(name),
            state: Mutex::new(TopicState::new(first)),
            #[cfg(target_has_atomic = "64")]
            epoch: core::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Takes every parked subscriber's waker (see `TopicState::take_waiting`) and publishes the
    /// new epoch, so subscribers parked in the old one stop trusting their parking.
    pub(super) fn take_waiting(&self, state: &mut TopicState<T>) -> Wakers {
        let wakers = state.take_waiting();
        // Release: a subscriber that sees the new epoch also sees what was published.
        #[cfg(target_has_atomic = "64")]
        self.epoch
            .store(state.epoch, core::sync::atomic::Ordering::Release);
        wakers
    }

    /// Whether a subscriber parked in `epoch` is still parked: nothing was published and the
    /// topic did not close since. If it reads a stale epoch, the wake that follows the change
    /// is still to come, so waiting is safe.
    pub(super) fn still_parked(&self, epoch: u64) -> bool {
        #[cfg(target_has_atomic = "64")]
        return self.epoch.load(core::sync::atomic::Ordering::Acquire) == epoch;
        #[cfg(not(target_has_atomic = "64"))]
        return self.state.with(|state| state.epoch == epoch);
    }
}

/// Events evicted under the lock, dropped after it: dropping the last reference runs the data's
/// `Drop`, which is user code and must not run while the topic is locked.
pub(super) struct Evicted<T> {
    // Never read: holding them until this is dropped is the whole job.
    _one: Option<Published<T>>,
    _more: Vec<Published<T>>,
}

impl<T> Evicted<T> {
    pub(super) fn new() -> Self {
        Self {
            _one: None,
            _more: Vec::new(),
        }
    }

    fn push(&mut self, event: Published<T>) {
        // Steady state evicts one event per publish: keep that case free of allocation.
        match self._one {
            None => self._one = Some(event),
            Some(_) => self._more.push(event),
        }
    }
}

struct Entry<T> {
    event: Published<T>,
    /// When it was published, by the publisher's clock (0 without time-based retention).
    at: u64,
}

/// A subscriber's place in the topic: only what the publisher needs to wake it. Its cursor lives
/// in the subscription itself, which alone moves it.
#[derive(Clone, Copy)]
struct Slot {
    /// `TopicState::epoch` when the subscriber last parked; any other value means not parked.
    parked_in: u64,
    /// Its index in `waiting` while parked.
    pos: usize,
}

const NOT_PARKED: u64 = u64::MAX;

/// Up to this many wakers leave the lock in a stack array rather than a `Vec`.
const FEW: usize = 8;

/// Wakers taken under the lock, to wake after it.
pub(super) enum Wakers {
    None,
    Few([Option<Waker>; FEW]),
    Many(Vec<(usize, Waker)>),
}

impl Wakers {
    pub(super) fn wake(self) {
        match self {
            Wakers::None => {}
            Wakers::Few(few) => few.into_iter().flatten().for_each(Waker::wake),
            Wakers::Many(many) => many.into_iter().for_each(|(_, waker)| waker.wake()),
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        match self {
            Wakers::None => 0,
            Wakers::Few(few) => few.iter().flatten().count(),
            Wakers::Many(many) => many.len(),
        }
    }
}

/// The state of one topic.
///
/// The ring is both the retention and every subscriber's buffer: an event is stored once however
/// many subscribers there are, and a subscriber is only a cursor into the ring. The ring keeps the
/// last `max(retention, largest live buffer)` events (fewer once events outlive `max_age`, but
/// never fewer than the largest live buffer), so a subscriber within its buffer always finds its
/// next event, and one that falls further behind notices (its cursor is before the front).
pub(super) struct TopicState<T> {
    ring: VecDeque<Entry<T>>,
    /// The id the next publish gets.
    next: u64,
    /// The first id of this life of the topic: ids below it belong to an earlier one.
    first: u64,
    slots: Vec<Slot>,
    free: Vec<usize>,
    live: usize,
    /// Parked subscribers: slot and waker. A publish takes the whole list in O(1).
    waiting: Vec<(usize, Waker)>,
    /// Bumped each time `waiting` is taken, which unparks every slot at once.
    epoch: u64,
    /// Live subscribers' buffers: size to count.
    buffers: BTreeMap<usize, usize>,
    /// The largest live buffer (0 with no subscriber), cached from `buffers`.
    floor: usize,
    /// Set when the topic left the publisher's map: whoever still holds it must look it up again.
    pub(super) removed: bool,
    /// Set when the last publisher handle is gone: subscribers drain and end.
    pub(super) closed: bool,
}

impl<T> TopicState<T> {
    fn new(first: u64) -> Self {
        Self {
            ring: VecDeque::new(),
            next: first,
            first,
            slots: Vec::new(),
            free: Vec::new(),
            live: 0,
            waiting: Vec::new(),
            epoch: 0,
            buffers: BTreeMap::new(),
            floor: 0,
            removed: false,
            closed: false,
        }
    }

    /// The oldest id still held (the next id when nothing is).
    pub(super) fn front(&self) -> u64 {
        self.ring.front().map_or(self.next, |e| e.event.id().get())
    }

    pub(super) fn next(&self) -> u64 {
        self.next
    }

    pub(super) fn first(&self) -> u64 {
        self.first
    }

    pub(super) fn subscribers(&self) -> usize {
        self.live
    }

    pub(super) fn retained(&self) -> usize {
        self.ring.len()
    }

    /// Nobody subscribed and nothing held: the topic can go.
    pub(super) fn is_idle(&self) -> bool {
        self.live == 0 && self.ring.is_empty()
    }

    /// Appends an event and returns its id.
    pub(super) fn push(&mut self, data: T, at: u64) -> SeqId {
        let id = SeqId::new(self.next);
        // Ids start at most at 2^63 (`ids_after` is capped there): no process publishes enough
        // to overflow.
        self.next += 1;
        self.ring.push_back(Entry {
            event: Published::new(id, data),
            at,
        });
        id
    }

    /// Drops what neither retention nor a live subscriber's buffer still covers.
    pub(super) fn evict(&mut self, retention: Retention, now: Option<u64>, dead: &mut Evicted<T>) {
        let cap = retention.last.max(self.floor);
        while self.ring.len() > cap {
            if let Some(entry) = self.ring.pop_front() {
                dead.push(entry.event);
            }
        }
        if let (Some(max_age), Some(now)) = (retention.max_age, now) {
            while self.ring.len() > self.floor {
                match self.ring.front() {
                    Some(entry) if now.saturating_sub(entry.at) >= max_age => {
                        if let Some(entry) = self.ring.pop_front() {
                            dead.push(entry.event);
                        }
                    }
                    _ => break,
                }
            }
        }
        // Give memory back once a big buffer's subscriber has gone; the 4x slack keeps a ring
        // that grows and shrinks around one size from reallocating back and forth.
        if self.ring.capacity() > 64 && self.ring.len() < self.ring.capacity() / 4 {
            self.ring.shrink_to(self.ring.len() * 2);
        }
    }

    /// Takes every parked subscriber's waker, to wake once the lock is released.
    fn take_waiting(&mut self) -> Wakers {
        if self.waiting.is_empty() {
            return Wakers::None;
        }
        self.epoch += 1;
        if self.waiting.len() <= FEW {
            // The usual case: a few subscribers keeping up. A stack array carries them out and
            // the list keeps its memory, so parking and waking allocate nothing.
            let mut few: [Option<Waker>; FEW] = Default::default();
            for (place, (_, waker)) in few.iter_mut().zip(self.waiting.drain(..)) {
                *place = Some(waker);
            }
            return Wakers::Few(few);
        }
        // Many: hand the list over whole (O(1) under the lock) and leave one of the same size
        // for them to park in again.
        let capacity = self.waiting.len();
        Wakers::Many(mem::replace(
            &mut self.waiting,
            Vec::with_capacity(capacity),
        ))
    }

    /// Copies up to `max` events from id `cursor` on (`front() <= cursor < next()`) and returns
    /// how many. Batching lets a subscriber take the lock once for many events.
    pub(super) fn copy_into(
        &self,
        cursor: u64,
        max: usize,
        out: &mut VecDeque<Published<T>>,
    ) -> u64 {
        // cursor lies in front()..next(), so the offset is below ring.len() and fits a usize.
        let start = (cursor - self.front()) as usize;
        let end = self.ring.len().min(start.saturating_add(max));
        out.extend(self.ring.range(start..end).map(|e| e.event.clone()));
        (end - start) as u64
    }

    /// Adds a subscriber with this buffer and returns its slot.
    pub(super) fn register(&mut self, buffer: usize) -> usize {
        let slot = Slot {
            parked_in: NOT_PARKED,
            pos: 0,
        };
        let index = match self.free.pop() {
            Some(index) => {
                self.slots[index] = slot;
                index
            }
            None => {
                self.slots.push(slot);
                self.slots.len() - 1
            }
        };
        self.live += 1;
        *self.buffers.entry(buffer).or_insert(0) += 1;
        self.floor = self.floor.max(buffer);
        index
    }

    /// Removes the subscriber in `slot`, registered with `buffer`, and its waker if parked.
    pub(super) fn release(&mut self, slot: usize, buffer: usize) {
        // Invariant: `slot` came from `register` and is released once, so it indexes a live slot.
        let Slot { parked_in, pos } = self.slots[slot];
        if parked_in == self.epoch {
            self.waiting.swap_remove(pos);
            if let Some((moved, _)) = self.waiting.get(pos) {
                self.slots[*moved].pos = pos;
            }
        }
        self.slots[slot].parked_in = NOT_PARKED;
        self.free.push(slot);
        self.live -= 1;
        if let Some(count) = self.buffers.get_mut(&buffer) {
            *count -= 1;
            if *count == 0 {
                self.buffers.remove(&buffer);
                self.floor = self.buffers.last_key_value().map_or(0, |(size, _)| *size);
            }
        }
        if self.live == 0 {
            // The slot table only grows while subscribers come and go; empty, it can go.
            self.slots = Vec::new();
            self.free = Vec::new();
            self.waiting = Vec::new();
        }
    }

    /// Parks the subscriber in `slot` until the next publish (or close); returns the epoch it is
    /// parked in.
    pub(super) fn park(&mut self, slot: usize, waker: &Waker) -> u64 {
        // Invariant: only a registered subscription parks, with the slot `register` gave it.
        let entry = &mut self.slots[slot];
        if entry.parked_in == self.epoch {
            let parked = &mut self.waiting[entry.pos].1;
            if !parked.will_wake(waker) {
                parked.clone_from(waker);
            }
        } else {
            entry.parked_in = self.epoch;
            entry.pos = self.waiting.len();
            self.waiting.push((slot, waker.clone()));
        }
        self.epoch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEEP_3: Retention = Retention {
        last: 3,
        max_age: None,
    };

    fn ids(state: &TopicState<u32>) -> Vec<u64> {
        state.ring.iter().map(|e| e.event.id().get()).collect()
    }

    fn publish(state: &mut TopicState<u32>, n: u32, retention: Retention, now: u64) {
        state.push(n, now);
        state.evict(retention, Some(now), &mut Evicted::new());
    }

    #[test]
    fn the_window_is_the_larger_of_retention_and_the_largest_live_buffer() {
        let mut state = TopicState::new(1);
        for n in 0..5 {
            publish(&mut state, n, KEEP_3, 0);
        }
        assert_eq!(ids(&state), [3, 4, 5]);
        let big = state.register(5);
        let small = state.register(1);
        for n in 0..5 {
            publish(&mut state, n, KEEP_3, 0);
        }
        assert_eq!(ids(&state), [6, 7, 8, 9, 10]);
        state.release(big, 5);
        publish(&mut state, 0, KEEP_3, 0);
        assert_eq!(ids(&state), [9, 10, 11]);
        state.release(small, 1);
        assert!(state.subscribers() == 0 && !state.is_idle());
    }

    #[test]
    fn age_expires_events_but_never_inside_a_live_buffer() {
        let retention = Retention {
            last: 10,
            max_age: Some(100),
        };
        let mut state = TopicState::new(1);
        let slot = state.register(2);
        for n in 0..4 {
            publish(&mut state, n, retention, 0);
        }
        state.evict(retention, Some(99), &mut Evicted::new());
        assert_eq!(ids(&state), [1, 2, 3, 4]);
        state.evict(retention, Some(100), &mut Evicted::new());
        assert_eq!(ids(&state), [3, 4]);
        state.release(slot, 2);
        state.evict(retention, Some(100), &mut Evicted::new());
        assert!(state.is_idle());
        assert_eq!(state.front(), 5, "an empty ring's front is the next id");
    }

    #[test]
    fn parked_wakers_are_taken_once_and_released_subscribers_leave_the_list() {
        let mut state = TopicState::<u32>::new(1);
        let a = state.register(0);
        let b = state.register(0);
        let c = state.register(0);
        let waker = Waker::noop();
        for slot in [a, b, c, a] {
            state.park(slot, waker);
        }
        assert_eq!(state.waiting.len(), 3, "parking twice keeps one waker");
        state.release(a, 0);
        assert_eq!(state.waiting.len(), 2);
        assert_eq!(
            state.slots[c].pos, 0,
            "the moved entry's slot knows its new place"
        );
        assert_eq!(state.take_waiting().len(), 2);
        state.park(b, waker);
        state.release(c, 0);
        assert_eq!(state.take_waiting().len(), 1);
        assert_eq!(state.take_waiting().len(), 0);
    }

    #[test]
    fn many_parked_wakers_leave_the_lock_whole() {
        let mut state = TopicState::<u32>::new(1);
        let slots: Vec<usize> = (0..100).map(|_| state.register(0)).collect();
        for slot in &slots {
            state.park(*slot, Waker::noop());
        }
        assert_eq!(state.take_waiting().len(), 100);
        state.park(slots[7], Waker::noop());
        assert_eq!(
            state.take_waiting().len(),
            1,
            "every slot was unparked by the take"
        );
    }
}
