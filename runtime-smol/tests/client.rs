//! The client suite (outer-harness) on smol: the Rust client over real loopback HTTP against
//! the chat example and the Node reference server.

use std::future::Future;
use std::sync::Arc;

use outer_core::rt::Timer;
use outer_core::Router;
use outer_examples::chat::{self, Chat};
use outer_harness::client_suite::ClientRuntime;

struct Smol;

impl ClientRuntime for Smol {
    type Server = outer_smol::testing::Smol;
    type Transport = outer_smol::SmolTransport;

    fn block_on<F: Future>(future: F) -> F::Output {
        smol::block_on(future)
    }

    fn chat(timer: Arc<dyn Timer>) -> Router<()> {
        chat::router(Chat::new(), timer)
    }
}

outer_harness::client_suite!(Smol);
