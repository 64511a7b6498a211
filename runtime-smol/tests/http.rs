//! The loopback HTTP suite (outer_http::testing) on smol: every scenario over a real socket.

use outer_smol::testing::Smol;

outer_http::http_suite!(Smol);
