//! A WebSocket under a hyper server of one's own on smol: the connection is hyper's, made
//! `with_upgrades()`, so the upgraded socket reaches the service through hyper's upgrade and runs
//! on the spawner `outer_smol::service` gave it (the path axum takes on tokio).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use outer_harness::conformance::{router, Probe};
use outer_harness::loopback::wait_until;
use outer_harness::websocket::WsClient;
use outer_smol::{service, ServerConfig, SmolIo};

#[test]
fn a_websocket_upgraded_by_a_hyper_server_of_ones_own_runs_on_the_spawner() {
    let probe = Arc::new(Probe::default());
    let outer = service(router(&probe), ServerConfig::default());
    let listener =
        smol::block_on(async_net::TcpListener::bind("127.0.0.1:0")).expect("a loopback port");
    let addr = listener.local_addr().unwrap();
    let serving = outer.clone();
    smol::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let service = serving.clone();
            smol::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(SmolIo::new(stream), service)
                    .with_upgrades()
                    .await;
            })
            .detach();
        }
    })
    .detach();

    let mut ws = WsClient::connect(addr, "/trpc");
    ws.send(r#"{"id":1,"method":"query","params":{"input":1,"path":"ping"}}"#);
    assert_eq!(
        ws.recv_text(),
        r#"{"id":1,"result":{"type":"data","data":1}}"#
    );
    ws.send(r#"{"id":2,"method":"subscription","params":{"path":"silent"}}"#);
    assert_eq!(ws.recv_text(), r#"{"id":2,"result":{"type":"started"}}"#);
    wait_until("the subscription to count", || outer.active_streams() == 1);
    ws.close();
    wait_until("the handler's cleanup", || {
        probe.cleanups.load(Ordering::SeqCst) == 1
    });
    // The handler's cleanup runs as its call is dropped, and the stream's place is given back
    // right after, on the socket's task: wait for it rather than read the count in between.
    wait_until("the stream's place to be given back", || {
        outer.active_streams() == 0
    });
}
