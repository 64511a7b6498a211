//! The client suite (outer-harness) on tokio: the Rust client over real loopback HTTP against
//! the chat example and the Node reference server.

use std::future::Future;
use std::sync::Arc;

use outer_core::rt::Timer;
use outer_core::App;
use outer_examples::chat::{self, Chat, ChatCtx};
use outer_harness::client_suite::ClientRuntime;

struct Tokio;

impl ClientRuntime for Tokio {
    type Server = outer_tokio::testing::Tokio;
    type Transport = outer_tokio::TokioTransport;

    fn block_on<F: Future>(future: F) -> F::Output {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        runtime.block_on(future)
    }

    type Ctx = ChatCtx;

    fn chat(timer: Arc<dyn Timer>) -> App<ChatCtx> {
        chat::app(Chat::new(), timer)
    }
}

outer_harness::client_suite!(Tokio);
