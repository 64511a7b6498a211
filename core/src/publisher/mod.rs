//! Publishers: fan one event out to every subscriber of a topic, with retention for resume.
