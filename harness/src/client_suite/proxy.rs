//! A loopback TCP proxy that a test can cut: every connection through it closes at once, as a
//! network failure would, while the server behind it keeps running. It also tells when the
//! server has closed its side of every connection, which is how a test sees a server notice a
//! client that went away. Blocking std sockets and one thread per direction: no runtime.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;

/// A running proxy to one upstream address.
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    /// Both ends of every connection made so far, to cut them.
    links: Mutex<Vec<(TcpStream, TcpStream)>>,
    /// Connections whose upstream side the server has not closed yet.
    open: AtomicUsize,
    stop: AtomicBool,
}

impl Proxy {
    /// Listens on a fresh loopback port and forwards each connection to `upstream`.
    pub fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let shared = Arc::new(Shared::default());
        let accepting = Arc::clone(&shared);
        thread::spawn(move || {
            for client in listener.incoming() {
                if accepting.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                link(&accepting, client, server);
            }
        });
        Self { addr, shared }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes every connection made so far, both ends.
    pub fn cut(&self) {
        let links = std::mem::take(
            &mut *self
                .shared
                .links
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for (client, server) in links {
            let _ = client.shutdown(Shutdown::Both);
            let _ = server.shutdown(Shutdown::Both);
        }
    }

    /// Connections the server has not closed its side of.
    pub fn open_upstream(&self) -> usize {
        self.shared.open.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees `stop`.
        let _ = TcpStream::connect(self.addr);
        self.cut();
    }
}

fn link(shared: &Arc<Shared>, client: TcpStream, server: TcpStream) {
    let (Ok(client_read), Ok(server_read)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let (Ok(client_write), Ok(server_write)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    shared
        .links
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push((client, server));
    shared.open.fetch_add(1, Ordering::SeqCst);
    // Client to server: when the client closes, pass the close on as a half-close, the way the
    // server would see it without a proxy.
    thread::spawn(move || {
        copy(client_read, &server_write);
        let _ = server_write.shutdown(Shutdown::Write);
    });
    // Server to client: keeps reading until the server closes its side, even once the client
    // is gone, so that `open` counts what the server did.
    let counting = Arc::clone(shared);
    thread::spawn(move || {
        copy(server_read, &client_write);
        counting.open.fetch_sub(1, Ordering::SeqCst);
        let _ = client_write.shutdown(Shutdown::Both);
    });
}

/// Copies until `from` ends; once writing fails, keeps reading and drops the bytes.
fn copy(mut from: TcpStream, mut to: &TcpStream) {
    let mut buf = [0u8; 16 * 1024];
    let mut writable = true;
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if writable && to.write_all(&buf[..n]).is_err() {
                    writable = false;
                }
            }
        }
    }
}
