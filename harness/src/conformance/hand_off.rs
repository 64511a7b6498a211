//! HTTP/1.1 event streams written by Outer's own writer once hyper has handed their sockets
//! back (`outer_http::server`, module `hand_off`): what the client sees of the framing, of the
//! connection after a stream, of pipelined requests and of a stream the server cuts.

use std::io::Write;

use super::*;

const PING: &[u8] = b"POST /rpc/ping HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
                      content-length: 16\r\n\r\n{\"json\":{\"n\":7}}";
const GATED: &[u8] = b"POST /rpc/gated HTTP/1.1\r\nhost: test\r\ncontent-length: 0\r\n\r\n";

/// The whole of `gated`'s stream once its gate is open.
fn gated_body() -> &'static str {
    ": \n\n\
     event: message\nid: 1\ndata: {\"json\":{\"n\":1}}\n\n\
     event: message\nid: 2\ndata: {\"json\":{\"n\":2}}\n\n\
     event: done\ndata: {\"json\":\"end\"}\n\n"
}

/// A stream is chunked and says nothing of closing (undici takes the close of a response that
/// says `connection: close` for its clean end); once it ends, its connection answers the next
/// request.
pub fn a_connection_serves_the_next_request_after_its_stream_ends<R: Adapter>() {
    let (server, probe) = start::<R>(quiet_config());
    probe.gate.trigger();
    let mut stream = send(server.addr(), GATED);
    assert_eq!(stream.status, 200);
    assert_eq!(stream.header("transfer-encoding"), Some("chunked"));
    assert_eq!(stream.header("connection"), None);
    assert!(stream.header("date").is_some(), "{:?}", stream.headers);
    assert_eq!(stream.read_to_end(), (gated_body(), End::Clean));
    let mut socket = stream.into_stream();
    for _ in 0..2 {
        socket.write_all(PING).unwrap();
        let mut answer = read_response(socket);
        assert_eq!(answer.status, 200);
        assert_eq!(answer.read_to_end(), (r#"{"json":{"n":7}}"#, End::Clean));
        socket = answer.into_stream();
    }
    // And another stream on it.
    socket.write_all(GATED).unwrap();
    let mut again = read_response(socket);
    assert_eq!(again.read_to_end(), (gated_body(), End::Clean));
    wait_until("the streams to close", || server.active_streams() == 0);
}

/// Responses pipelined before a stream reach the client first, whole, and the stream after
/// them: the writer takes the socket only once hyper has flushed what it buffered. The first
/// answer is larger than loopback's socket buffers take while the client does not read (Linux
/// lets a sender's buffer grow to 4 MiB), so hyper still holds answers when the stream's
/// request arrives.
pub fn responses_pipelined_before_a_stream_arrive_whole_and_first<R: Adapter>() {
    let mut config = quiet_config();
    config.max_body_bytes = 16 << 20;
    let (server, probe) = start::<R>(config);
    probe.gate.trigger();
    let big = format!(r#"{{"json":{{"s":"{}"}}}}"#, "x".repeat(10 << 20));
    let mut all = format!(
        "POST /rpc/ping HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n{big}",
        big.len()
    )
    .into_bytes();
    all.extend_from_slice(PING);
    all.extend_from_slice(GATED);
    let socket = open(server.addr(), &all);
    // Time for the server to answer all three while this client reads nothing.
    std::thread::sleep(Duration::from_millis(300));
    let mut first = read_response(socket);
    assert_eq!(first.status, 200);
    let (text, end) = first.read_to_end();
    assert_eq!((text.len(), end), (big.len(), End::Clean));
    assert!(text == big, "the first answer came back changed");
    let mut second = first.next_response();
    assert_eq!(second.read_to_end(), (r#"{"json":{"n":7}}"#, End::Clean));
    let mut stream = second.next_response();
    assert_eq!(stream.status, 200);
    assert_eq!(stream.read_to_end(), (gated_body(), End::Clean));
    wait_until("the stream to close", || server.active_streams() == 0);
}

/// A request pipelined behind a stream is never answered out of turn or read as part of
/// anything: the stream is written whole, then the connection closes.
pub fn a_request_pipelined_behind_a_stream_closes_the_connection_after_it<R: Adapter>() {
    let (server, probe) = start::<R>(quiet_config());
    let mut both = GATED.to_vec();
    both.extend_from_slice(PING);
    let mut stream = send(server.addr(), &both);
    stream.read_until("id: 1\n");
    probe.gate.trigger();
    assert_eq!(stream.read_to_end(), (gated_body(), End::Clean));
    assert!(closed_by_server(stream.into_stream()));
    wait_until("the stream to close", || server.active_streams() == 0);
}

/// A client that asks to close gets its stream whole, then the close.
pub fn a_stream_asked_to_close_closes_its_connection_after_it<R: Adapter>() {
    let (server, probe) = start::<R>(quiet_config());
    probe.gate.trigger();
    let request = b"POST /rpc/gated HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\
                    content-length: 0\r\n\r\n";
    let mut stream = send(server.addr(), request);
    assert_eq!(stream.read_to_end(), (gated_body(), End::Clean));
    assert!(closed_by_server(stream.into_stream()));
    wait_until("the stream to close", || server.active_streams() == 0);
}

/// `abort_streams` cuts a stream as a network failure would: no last chunk, the handler
/// dropped. Connections opened afterwards are served.
pub fn abort_streams_cuts_http1_streams_without_their_last_chunk<R: Adapter>() {
    let probe = Arc::new(Probe::default());
    let service = OuterService::new(router(&probe), quiet_config(), R::timer());
    let server = R::start(service.clone());
    let mut stream = post(server.addr(), "/rpc/silent", "");
    stream.read_until(": \n\n");
    wait_until("the handler to start", || {
        probe.started.load(Ordering::SeqCst) == 1
    });
    service.abort_streams();
    assert_eq!(stream.read_to_end(), (": \n\n", End::Cut));
    wait_until("the handler's cleanup", || {
        probe.cleanups.load(Ordering::SeqCst) == 1
    });
    wait_until("the stream to close", || server.active_streams() == 0);
    let mut answer = send(server.addr(), PING);
    assert_eq!(answer.read_to_end(), (r#"{"json":{"n":7}}"#, End::Clean));
}

/// A client that keeps sending after its request is read and ignored, then no longer read:
/// its stream goes on, and the server's memory does not grow with what it sends.
pub fn bytes_sent_after_a_stream_request_are_ignored<R: Adapter>() {
    let (server, probe) = start::<R>(quiet_config());
    let mut stream = send(server.addr(), GATED);
    stream.read_until("id: 1\n");
    let mut socket = stream.into_stream();
    // More than the writer reads (64 KiB) and more than the socket buffers: the writes stop
    // being accepted at some point, which must not stop the stream.
    socket
        .set_write_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let junk = vec![b'x'; 16 * 1024];
    for _ in 0..64 {
        if socket.write_all(&junk).is_err() {
            break;
        }
    }
    probe.gate.trigger();
    let mut rest = read_response_body(socket);
    assert!(rest.contains("id: 2\n"), "{rest:?}");
    rest.clear();
    wait_until("the stream to close", || server.active_streams() == 0);
}

/// The rest of a chunked body on `socket`, chunk sizes included, until the server closes.
fn read_response_body(mut socket: TcpStream) -> String {
    use std::io::Read;
    let mut bytes = Vec::new();
    let _ = socket.read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}
