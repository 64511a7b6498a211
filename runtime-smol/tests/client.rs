//! The client suite (outer-harness) on smol: the Rust client over real loopback HTTP against
//! the chat example and the Node reference server.

use std::future::Future;
use std::sync::Arc;

use outer_core::rt::Timer;
use outer_core::App;
use outer_examples::chat::{self, Chat, ChatCtx};
use outer_harness::client_suite::ClientRuntime;

struct Smol;

impl ClientRuntime for Smol {
    type Server = outer_smol::testing::Smol;
    type Transport = outer_smol::SmolTransport;

    fn block_on<F: Future>(future: F) -> F::Output {
        smol::block_on(future)
    }

    type Ctx = ChatCtx;

    fn chat(timer: Arc<dyn Timer>) -> App<ChatCtx> {
        chat::app(Chat::new(), timer)
    }
}

outer_harness::client_suite!(Smol);
