//! Handlers whose futures are not `Send` (they hold an `Rc` across an await on monoio's own
//! timer), served on monoio with no `unsafe`: `outer_http::local::local` binds each to the
//! thread that runs it. Answers and events are checked through the monoio client, on both
//! drivers; and the client connects by host name.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use futures_util::StreamExt;
use outer_core::{event_iterator, procedure, tracked, Router};
use outer_harness::conformance::{Adapter, RunningServer};
use outer_http::local::local;
use outer_monoio::testing::{Epoll, IoUring};
use outer_monoio::{Client, Driver, ServerConfig};

fn router() -> Router<()> {
    let os = procedure::<()>();
    Router::new()
        .route(
            "double",
            os.input::<u64>().query(|req| {
                local(async move {
                    let n = Rc::new(req.input); // held across the await: not Send
                    monoio::time::sleep(Duration::from_millis(5)).await;
                    Ok(*n * 2)
                })
            }),
        )
        .route(
            "ticks",
            os.subscription(|_| async {
                Ok(event_iterator(|mut emit| {
                    local(async move {
                        let count = Rc::new(Cell::new(0u64));
                        for _ in 0..3 {
                            monoio::time::sleep(Duration::from_millis(2)).await;
                            count.set(count.get() + 1);
                            emit.send(tracked(count.get(), count.get())?).await?;
                        }
                        Ok(count.get())
                    })
                }))
            }),
        )
}

fn serves_handlers_that_are_not_send<A: Adapter>(driver: Driver) {
    let server = A::start(outer_monoio::service(router(), ServerConfig::default()));
    let client = Client::new(&format!("http://{}/rpc", server.addr())).unwrap();
    let (doubled, ticks, returned) = driver
        .block_on(async {
            let doubled = client.call::<u64>("double", &21).await.unwrap();
            let mut ticks = client.subscribe::<u64>("ticks", &());
            let mut seen = Vec::new();
            while let Some(event) = ticks.next().await {
                let event = event.unwrap();
                seen.push((event.id().map(|id| id.as_str().to_owned()), *event.data()));
            }
            let returned = ticks.returned::<u64>().transpose().unwrap();
            (doubled, seen, returned)
        })
        .unwrap();
    assert_eq!(doubled, 42);
    let expected: Vec<_> = (1..=3).map(|n| (Some(n.to_string()), n)).collect();
    assert_eq!(ticks, expected);
    assert_eq!(returned, Some(3));
}

#[test]
fn handlers_that_are_not_send_are_served_on_io_uring() {
    serves_handlers_that_are_not_send::<IoUring>(IoUring::driver());
}

#[test]
fn handlers_that_are_not_send_are_served_on_epoll() {
    serves_handlers_that_are_not_send::<Epoll>(Driver::Epoll);
}

/// The client reaches a server by name, resolved off the runtime's thread.
#[test]
fn the_client_connects_by_host_name() {
    let server = Epoll::start(outer_monoio::service(router(), ServerConfig::default()));
    let client = Client::new(&format!("http://localhost:{}/rpc", server.addr().port())).unwrap();
    let doubled = Driver::Epoll
        .block_on(client.call::<u64>("double", &4))
        .unwrap()
        .unwrap();
    assert_eq!(doubled, 8);
}
