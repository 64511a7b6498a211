//! What the generator's tests share: a small run, and what every such run must report.

use std::time::Duration;

use outer_bench::http::Url;
use outer_bench::load::{Config, Report};
use outer_bench::protocol::Protocol;

/// Three subscribers, 40 posts a few at a time, then a short paced phase.
pub fn small(url: &str, protocol: Protocol) -> Config {
    let mut config = Config::new(Url::parse(url).unwrap(), protocol, 3);
    config.events = Some(40);
    config.duration = None;
    config.window = 4;
    config.paced_rate = 200.0;
    config.paced_duration = Duration::from_millis(100);
    config.settle = Duration::ZERO;
    config
}

/// Every post of a [`small`] run reached every subscriber, in order, with no stall.
pub fn assert_every_post_delivered(report: &Report) {
    assert_eq!(report.connected, 3);
    assert_eq!(report.load.events, 40);
    assert_eq!(report.load.deliveries, 3 * 40, "{}", report.to_human());
    let (_, paced) = report.paced.as_ref().unwrap();
    assert_eq!(paced.deliveries, 3 * paced.events);
    assert_eq!(report.lost + report.out_of_order + report.ended_early, 0);
    assert_eq!(report.load.stalls, 0);
}
