//! Serving on an executor of the caller's own instead of smol's global one.

use std::sync::Arc;

use outer_harness::conformance::{router, Probe};
use outer_harness::loopback::post;
use outer_smol::{serve_on, service, ServerConfig};

#[test]
fn serve_on_runs_the_server_on_the_given_executor() {
    let executor = Arc::new(smol::Executor::new());
    let (stop, stopped) = async_channel::bounded::<()>(1);
    let runner = {
        let executor = Arc::clone(&executor);
        // The executor serves only while someone runs it: here, a thread of the test's.
        std::thread::spawn(move || smol::block_on(executor.run(stopped.recv())))
    };
    let probe = Arc::new(Probe::default());
    let server = smol::block_on(async {
        let listener = async_net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        serve_on(
            Arc::clone(&executor),
            listener,
            service(router(&probe), ServerConfig::default()),
        )
        .unwrap()
    });
    let mut ping = post(server.local_addr(), "/rpc/ping", r#"{"json":{"n":1}}"#);
    assert_eq!(ping.status, 200);
    assert_eq!(ping.read_to_end().0, r#"{"json":{"n":1}}"#);
    assert!(smol::block_on(server.shutdown()));
    stop.send_blocking(()).unwrap();
    runner.join().unwrap().unwrap();
}
