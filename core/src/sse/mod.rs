//! Server-Sent Events: an encoder and an incremental decoder (WHATWG event-stream rules).
