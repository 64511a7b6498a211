//! `SmolIo`, the hyper I/O adapter, on real loopback sockets: bodies larger than one read,
//! data arriving after the adapter went idle, end of stream, writes that outrun the peer.

use std::future::poll_fn;
use std::io::{IoSlice, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::pin::Pin;
use std::sync::mpsc;
use std::task::Poll;
use std::thread;

use hyper::rt::{Read as _, ReadBuf, Write as _};
use outer_smol::SmolIo;

/// A connected pair: the adapter on one end, a blocking std socket (the peer) on the other.
fn pair() -> (SmolIo, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let io = smol::block_on(async_net::TcpStream::connect(addr)).unwrap();
    let (peer, _) = listener.accept().unwrap();
    (SmolIo::new(io), peer)
}

/// One `poll_read` to completion into `buf`; returns the bytes read (0 at end of stream).
async fn read_some(io: &mut SmolIo, buf: &mut [u8]) -> usize {
    let mut read_buf = ReadBuf::new(buf);
    poll_fn(|cx| Pin::new(&mut *io).poll_read(cx, read_buf.unfilled()))
        .await
        .unwrap();
    read_buf.filled().len()
}

/// Reads until end of stream, through a buffer of `capacity` bytes.
async fn read_to_end(io: &mut SmolIo, capacity: usize) -> Vec<u8> {
    let mut all = Vec::new();
    let mut buf = vec![0; capacity];
    loop {
        match read_some(io, &mut buf).await {
            0 => return all,
            n => all.extend_from_slice(&buf[..n]),
        }
    }
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

#[test]
fn reads_a_body_larger_than_the_buffer_and_then_end_of_stream() {
    let (mut io, mut peer) = pair();
    let body = pattern(3 * 1024 * 1024 + 17);
    let sent = body.clone();
    let writer = thread::spawn(move || {
        peer.write_all(&sent).unwrap();
        // Dropping the peer closes the connection: the reader must see end of stream.
    });
    // A buffer larger than the adapter's read slice, so reads are both bounded and full.
    let got = smol::block_on(read_to_end(&mut io, 64 * 1024));
    writer.join().unwrap();
    assert_eq!(got.len(), body.len());
    assert!(got == body, "bytes differ");
}

#[test]
fn wakes_when_data_arrives_after_going_idle() {
    let (mut io, mut peer) = pair();
    let (idle_tx, idle_rx) = mpsc::channel::<()>();
    let writer = thread::spawn(move || {
        // Write only once the reader has found nothing and returned Pending.
        idle_rx.recv().unwrap();
        peer.write_all(b"late").unwrap();
        idle_rx.recv().unwrap();
        peer.write_all(b" and later").unwrap();
        peer
    });
    let mut buf = [0u8; 64];
    let mut got = Vec::new();
    smol::block_on(async {
        for expected in [&b"late"[..], &b"late and later"[..]] {
            let mut read_buf = ReadBuf::new(&mut buf);
            let mut signalled = false;
            poll_fn(|cx| {
                let poll = Pin::new(&mut io).poll_read(cx, read_buf.unfilled());
                if poll.is_pending() && !signalled {
                    signalled = true;
                    idle_tx.send(()).unwrap();
                }
                match poll {
                    Poll::Ready(Ok(())) if read_buf.filled().is_empty() => {
                        panic!("end of stream while the peer is open")
                    }
                    other => other,
                }
            })
            .await
            .unwrap();
            assert!(signalled, "the read should have waited for the peer");
            got.extend_from_slice(read_buf.filled());
            assert_eq!(got, expected);
        }
    });
    let peer = writer.join().unwrap();
    drop(peer);
    assert_eq!(smol::block_on(read_some(&mut io, &mut buf)), 0);
}

#[test]
fn peer_closing_mid_body_gives_the_bytes_sent_then_end_of_stream() {
    let (mut io, mut peer) = pair();
    peer.write_all(b"partial bo").unwrap();
    drop(peer);
    let got = smol::block_on(read_to_end(&mut io, 4));
    assert_eq!(got, b"partial bo");
    // Reading again after the end keeps answering end of stream rather than waiting.
    let mut buf = [0u8; 8];
    assert_eq!(smol::block_on(read_some(&mut io, &mut buf)), 0);
}

#[test]
fn vectored_writes_larger_than_the_socket_buffers_arrive_whole() {
    let (mut io, mut peer) = pair();
    assert!(io.is_write_vectored());
    let head = pattern(1000);
    let tail = pattern(16 * 1024 * 1024);
    let expected: Vec<u8> = head.iter().chain(&tail).copied().collect();
    // The peer starts reading only after the writer has had to wait for it.
    let (blocked_tx, blocked_rx) = mpsc::channel::<()>();
    let reader = thread::spawn(move || {
        blocked_rx.recv().unwrap();
        let mut got = Vec::new();
        peer.read_to_end(&mut got).unwrap();
        got
    });
    smol::block_on(async {
        let mut written = 0;
        let mut signalled = false;
        while written < expected.len() {
            let (a, b) = if written < head.len() {
                (&head[written..], &tail[..])
            } else {
                (&[][..], &tail[written - head.len()..])
            };
            let slices = [IoSlice::new(a), IoSlice::new(b)];
            written += poll_fn(|cx| {
                let poll = Pin::new(&mut io).poll_write_vectored(cx, &slices);
                if poll.is_pending() && !signalled {
                    signalled = true;
                    blocked_tx.send(()).unwrap();
                }
                poll
            })
            .await
            .unwrap();
        }
        assert!(signalled, "16 MiB should have filled the socket buffers");
        poll_fn(|cx| Pin::new(&mut io).poll_flush(cx))
            .await
            .unwrap();
        // Shutting down the write side is what ends the peer's read_to_end.
        poll_fn(|cx| Pin::new(&mut io).poll_shutdown(cx))
            .await
            .unwrap();
    });
    let got = reader.join().unwrap();
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "bytes differ");
}
