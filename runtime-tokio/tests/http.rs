//! The loopback HTTP suite (outer_http::testing) on tokio: every scenario over a real socket.

use outer_tokio::testing::Tokio;

outer_http::http_suite!(Tokio);
