//! The client on monoio: typed calls, and subscriptions that reconnect and resume by themselves,
//! against any oRPC server (Outer's or oRPC's own).
//!
//! All of the client lives in `outer_http::client`; this module only opens TCP connections with
//! monoio ([`MonoioTransport`]). Poll the client's calls on a monoio runtime's thread: each
//! connection stays on the thread that opened it.
//!
//! ```no_run
//! use outer_monoio::{Client, Driver};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::new("http://127.0.0.1:3000/rpc")?;
//! let four = Driver::available().block_on(client.call::<u32>("double", &2))??;
//! # let _ = four;
//! # Ok(()) }
//! ```

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::sync::Arc;

use hyper_util::rt::TokioIo;
use monoio::io::IntoPollIo;
use outer_core::rt::Timer;
use outer_http::local::Local;

pub use outer_http::client::{Call, ConfigError, OrpcVersion, Subscription, Transport};

use crate::{MonoioIo, MonoioRuntime};

/// Opens the client's TCP connections with monoio, and times with [`MonoioRuntime`].
///
/// The client's calls are `Send` values, so that one client type serves every runtime; a
/// monoio connection is not, and travels in an [`outer_http::local::Local`], which checks that
/// it is used on the thread that opened it.
///
/// ```
/// use outer_http::client::ClientBuilder;
/// use outer_monoio::client::MonoioTransport;
/// let client = ClientBuilder::new("http://127.0.0.1:3000/rpc", MonoioTransport).build()?;
/// # Ok::<(), outer_monoio::client::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct MonoioTransport;

impl Transport for MonoioTransport {
    type Io = Local<MonoioIo>;

    fn connect(
        &self,
        host: &str,
        port: u16,
    ) -> Pin<Box<dyn Future<Output = io::Result<Self::Io>> + Send>> {
        let host = host.to_owned();
        Box::pin(Local::new(async move {
            let stream = connect(resolve(host, port).await?).await?;
            // Requests are small writes that must leave at once.
            stream.set_nodelay(true)?;
            Ok(Local::new(TokioIo::new(stream.into_poll_io()?)))
        }))
    }

    fn timer(&self) -> Arc<dyn Timer> {
        Arc::new(MonoioRuntime)
    }
}

/// The addresses of `host`: an IP address as it is, a name through the system's resolver on
/// `blocking`'s thread pool. (monoio's own `connect` resolves on the runtime's thread, which
/// would stall every connection of that thread while the resolver waits.)
async fn resolve(host: String, port: u16) -> io::Result<Vec<SocketAddr>> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    blocking::unblock(move || Ok((host.as_str(), port).to_socket_addrs()?.collect())).await
}

/// A connection to the first of `addrs` that answers (`localhost` may be `::1` first, with the
/// server on `127.0.0.1` only); the last error if none does.
async fn connect(addrs: Vec<SocketAddr>) -> io::Result<monoio::net::TcpStream> {
    let mut failed = io::Error::new(io::ErrorKind::NotFound, "the host has no address");
    for addr in addrs {
        match monoio::net::TcpStream::connect_addr(addr).await {
            Ok(stream) => return Ok(stream),
            Err(err) => failed = err,
        }
    }
    Err(failed)
}

/// A client on monoio: see `outer_http::client::Client` for its methods.
pub type Client = outer_http::client::Client<MonoioTransport>;

/// Settings for a [`Client`] on monoio, from `Client::builder(base_url)`.
pub type ClientBuilder = outer_http::client::ClientBuilder<MonoioTransport>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_tries_each_address_until_one_answers() {
        let live = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dead = {
            let gone = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            gone.local_addr().unwrap()
        };
        let live_addr = live.local_addr().unwrap();
        let peer = crate::Driver::Epoll
            .block_on(async { connect(vec![dead, live_addr]).await?.peer_addr() })
            .unwrap()
            .unwrap();
        assert_eq!(peer, live_addr);
        let refused = crate::Driver::Epoll
            .block_on(connect(vec![dead]))
            .unwrap()
            .unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
    }

    #[test]
    fn an_ip_address_is_not_looked_up() {
        let addrs = crate::Driver::Epoll
            .block_on(resolve("::1".to_owned(), 80))
            .unwrap()
            .unwrap();
        assert_eq!(addrs, [SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 1], 80))]);
    }
}
