//! The client suite (outer-harness) on monoio: the Rust client over real loopback HTTP against
//! the chat example and the Node reference server, on each of monoio's drivers.

use std::future::Future;
use std::sync::Arc;

use outer_core::rt::Timer;
use outer_core::App;
use outer_examples::chat::{self, Chat, ChatCtx};
use outer_harness::client_suite::ClientRuntime;
use outer_monoio::testing::{Epoll, IoUring};
use outer_monoio::{Driver, MonoioTransport};

struct OnIoUring;

impl ClientRuntime for OnIoUring {
    type Server = IoUring;
    type Transport = MonoioTransport;

    fn block_on<F: Future>(future: F) -> F::Output {
        IoUring::driver()
            .block_on(future)
            .expect("a monoio runtime")
    }

    type Ctx = ChatCtx;

    fn chat(timer: Arc<dyn Timer>) -> App<ChatCtx> {
        chat::app(Chat::new(), timer)
    }
}

struct OnEpoll;

impl ClientRuntime for OnEpoll {
    type Server = Epoll;
    type Transport = MonoioTransport;

    fn block_on<F: Future>(future: F) -> F::Output {
        Driver::Epoll.block_on(future).expect("a monoio runtime")
    }

    type Ctx = ChatCtx;

    fn chat(timer: Arc<dyn Timer>) -> App<ChatCtx> {
        chat::app(Chat::new(), timer)
    }
}

mod io_uring {
    outer_harness::client_suite!(super::OnIoUring);
}

mod epoll {
    outer_harness::client_suite!(super::OnEpoll);
}
