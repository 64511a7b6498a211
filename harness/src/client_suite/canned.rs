//! A loopback HTTP server that answers each path with fixed bytes: for the input no real server
//! sends (malformed JSON, oversized lines and bodies, a server that never answers), so a test
//! can show the client turns it into a clear error. It keeps the last request to each path, so
//! a test can see what the client sent. Blocking std sockets, a thread per connection.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;

/// What a path is answered with.
#[derive(Clone, Debug)]
pub enum Answer {
    /// These bytes (head and body), then the connection closes.
    Bytes(Vec<u8>),
    /// Nothing, until the client goes away.
    Hang,
}

impl Answer {
    /// A response whose body runs until the connection closes.
    pub fn until_close(status: &str, content_type: &str, body: impl AsRef<[u8]>) -> Self {
        let mut bytes = format!(
            "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\nconnection: close\r\n\r\n"
        )
        .into_bytes();
        bytes.extend_from_slice(body.as_ref());
        Answer::Bytes(bytes)
    }
}

/// A running canned server.
#[derive(Debug)]
pub struct Canned {
    addr: SocketAddr,
    requests: Arc<Mutex<Requests>>,
}

/// What came for each path: how many requests, and the last one's bytes.
#[derive(Debug, Default)]
struct Requests {
    count: HashMap<String, usize>,
    last: HashMap<String, Vec<u8>>,
}

impl Canned {
    /// Serves `routes` (path, answer) on a fresh loopback port; other paths get a 404.
    pub fn start(routes: Vec<(&str, Answer)>) -> Self {
        let routes: Arc<HashMap<String, Answer>> = Arc::new(
            routes
                .into_iter()
                .map(|(path, answer)| (path.to_owned(), answer))
                .collect(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the canned server");
        let addr = listener.local_addr().expect("its address");
        let requests = Arc::new(Mutex::new(Requests::default()));
        let counting = Arc::clone(&requests);
        // The thread ends with the test process; the listener is only ever used by tests.
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let routes = Arc::clone(&routes);
                let counting = Arc::clone(&counting);
                thread::spawn(move || answer(stream, &routes, &counting));
            }
        });
        Self { addr, requests }
    }

    /// `http://addr/rpc`, the base URL for a client.
    pub fn base(&self) -> String {
        format!("http://{}/rpc", self.addr)
    }

    /// How many requests came for `path`.
    pub fn requests(&self, path: &str) -> usize {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .count
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// The last request for `path` as it arrived: its head, the blank line, and its body (as
    /// long as its `content-length` said).
    pub fn last_request(&self, path: &str) -> Option<Vec<u8>> {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .last
            .get(path)
            .cloned()
    }
}

fn answer(mut stream: TcpStream, routes: &HashMap<String, Answer>, requests: &Mutex<Requests>) {
    let Some((path, request)) = read_request(&mut stream) else {
        return;
    };
    {
        let mut requests = requests.lock().unwrap_or_else(PoisonError::into_inner);
        *requests.count.entry(path.clone()).or_default() += 1;
        requests.last.insert(path.clone(), request);
    }
    match routes.get(&path) {
        Some(Answer::Bytes(bytes)) => {
            let _ = stream.write_all(bytes);
            let _ = stream.shutdown(Shutdown::Write);
            drain(&mut stream);
        }
        Some(Answer::Hang) => drain(&mut stream),
        None => {
            let _ = stream.write_all(
                b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            );
        }
    }
}

/// Reads a request's head and its content-length body; returns its path and its bytes.
fn read_request(stream: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 64 * 1024 || stream.read(&mut byte).ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let length = text
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).ok()?;
    let path = text.split(' ').nth(1).map(str::to_owned)?;
    head.extend_from_slice(&body);
    Some((path, head))
}

/// Reads until the client closes.
fn drain(stream: &mut TcpStream) {
    let mut buf = [0u8; 4096];
    while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
}
