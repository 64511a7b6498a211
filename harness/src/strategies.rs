//! Proptest strategies: schedules of what happens to a subscription, for model tests.

use proptest::prelude::*;

/// One step of a schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// The server publishes one event.
    Publish,
    /// Up to this many bytes travel from server to client.
    Deliver(usize),
    /// The connection is cut (bytes in flight are lost).
    Cut,
    /// The client connects again, resuming after its last event id.
    Reconnect,
}

/// A step, weighted so that publishes and deliveries dominate and cuts interrupt them.
pub fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => Just(Step::Publish),
        4 => (0usize..200).prop_map(Step::Deliver),
        1 => Just(Step::Cut),
        1 => Just(Step::Reconnect),
    ]
}

/// A schedule of up to `max` steps.
pub fn schedule(max: usize) -> impl Strategy<Value = Vec<Step>> {
    proptest::collection::vec(step(), 0..max)
}
