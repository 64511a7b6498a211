//! The cost of the one thing every SSE server must do per delivery: write an event to a
//! subscriber's socket. No HTTP, no runtime on the writing side, no framing: a thread writes a
//! fixed payload to N loopback TCP connections in turn with blocking `write` calls, while a
//! reader thread (a current-thread tokio runtime with one task per connection, like the load
//! generator) drains them. What this measures bounds every server on the same machine: a post
//! to N subscribers takes at least N times the cost of one write from the core that writes it.
//!
//! Two things vary. `paced` posts wait between one another, so each write finds its reader
//! asleep and wakes it, as in the load generator's paced phase; back to back, readers stay
//! busy. `events_per_write` joins that many events into one write, as a server that gathers an
//! SSE stream's waiting events into one chunk does under load.
//!
//! ```text
//! cargo run --release -p outer-bench --bin write_floor -- --sockets 1000 --posts 200 --rate 20
//! ```

use std::io::{self, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use crate::histogram::Histogram;

/// What to write, how often, to how many.
#[derive(Clone, Debug)]
pub struct Config {
    /// Connections, one per subscriber.
    pub sockets: usize,
    /// Posts: each one is a write to every socket.
    pub posts: u64,
    /// Bytes per event (an oRPC post event of the chat example is about 150).
    pub event_bytes: usize,
    /// Events joined into each write.
    pub events_per_write: usize,
    /// Posts per second; 0: back to back.
    pub rate: u64,
    /// The CPUs the writer and the reader run on (Linux), as `(writer, reader)`.
    pub pin: Option<(usize, usize)>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            sockets: 1000,
            posts: 100,
            event_bytes: 150,
            events_per_write: 1,
            rate: 20,
            pin: None,
        }
    }
}

/// What a run measured.
#[derive(Debug)]
pub struct Report {
    /// Writes made (`sockets * posts`).
    pub writes: u64,
    /// Bytes the reader received: every byte written, or the run failed.
    pub bytes_read: u64,
    /// The writer thread's CPU time per write, in µs (user + system).
    pub writer_cpu_us_per_write: f64,
    /// The reader thread's CPU time per write it drained, in µs.
    pub reader_cpu_us_per_write: f64,
    /// Wall time per post, from the first socket's write to the last's, in nanoseconds.
    pub post_ns: Histogram,
}

impl Report {
    /// One line for a person.
    pub fn summary(&self, config: &Config) -> String {
        format!(
            "{} sockets, {} posts, {} B x {} per write, {}: writer {:.2} µs CPU per write, \
             reader {:.2}; one post to all: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            config.sockets,
            config.posts,
            config.event_bytes,
            config.events_per_write,
            match config.rate {
                0 => "back to back".to_string(),
                rate => format!("{rate} posts/s"),
            },
            self.writer_cpu_us_per_write,
            self.reader_cpu_us_per_write,
            self.post_ns.quantile(0.5) as f64 / 1e6,
            self.post_ns.quantile(0.99) as f64 / 1e6,
            self.post_ns.max() as f64 / 1e6,
        )
    }
}

/// Runs the measurement: connects, writes, waits until the reader has every byte.
pub fn run(config: &Config) -> io::Result<Report> {
    if config.sockets == 0 || config.events_per_write == 0 || config.event_bytes == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "sockets, event bytes and events per write must be at least 1",
        ));
    }
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let write_len = config.event_bytes * config.events_per_write;
    let expected = write_len as u64 * config.posts;
    let (sockets, reader_pin) = (config.sockets, config.pin.map(|(_, reader)| reader));
    let reader = std::thread::spawn(move || read_all(addr, sockets, expected, reader_pin));

    let mut streams = Vec::with_capacity(config.sockets);
    for _ in 0..config.sockets {
        let (stream, _) = listener.accept()?;
        // As every SSE server here does: an event must leave now, not wait for the next one.
        stream.set_nodelay(true)?;
        streams.push(stream);
    }
    if let Some((writer, _)) = config.pin {
        pin_current_thread(writer)?;
    }
    // SSE-looking bytes (`data: xxx...` and a blank line), exactly `event_bytes` long; what
    // they say does not matter to the kernel.
    let mut event: Vec<u8> = b"data: "
        .iter()
        .copied()
        .chain(std::iter::repeat(b'x'))
        .take(config.event_bytes)
        .collect();
    if let Some(end) = event.len().checked_sub(2) {
        event[end..].copy_from_slice(b"\n\n");
    }
    let payload = event.repeat(config.events_per_write);

    let post_ns = Histogram::new();
    let started = Instant::now();
    let cpu_before = thread_cpu();
    for post in 0..config.posts {
        if config.rate > 0 {
            let due = started + Duration::from_secs_f64(post as f64 / config.rate as f64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        let post_start = Instant::now();
        for stream in &mut streams {
            stream.write_all(&payload)?;
        }
        post_ns.record(
            post_start
                .elapsed()
                .as_nanos()
                .try_into()
                .unwrap_or(u64::MAX),
        );
    }
    let writer_cpu = thread_cpu().saturating_sub(cpu_before);
    let (bytes_read, reader_cpu) = reader
        .join()
        .map_err(|_| io::Error::other("the reader thread panicked"))??;
    let writes = config.sockets as u64 * config.posts;
    Ok(Report {
        writes,
        bytes_read,
        writer_cpu_us_per_write: writer_cpu.as_secs_f64() * 1e6 / writes.max(1) as f64,
        reader_cpu_us_per_write: reader_cpu.as_secs_f64() * 1e6 / writes.max(1) as f64,
        post_ns,
    })
}

/// The reader: connects `sockets` times, then drains each connection until it has had
/// `expected` bytes. Returns the bytes read in all and the thread's CPU time while reading.
fn read_all(
    addr: std::net::SocketAddr,
    sockets: usize,
    expected: u64,
    pin: Option<usize>,
) -> io::Result<(u64, Duration)> {
    let mut streams = Vec::with_capacity(sockets);
    for _ in 0..sockets {
        streams.push(TcpStream::connect(addr)?);
    }
    if let Some(cpu) = pin {
        pin_current_thread(cpu)?;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    let before = thread_cpu();
    let total = runtime.block_on(async move {
        let mut tasks = Vec::with_capacity(streams.len());
        for stream in streams {
            stream.set_nonblocking(true)?;
            let mut stream = tokio::net::TcpStream::from_std(stream)?;
            tasks.push(tokio::spawn(async move {
                use tokio::io::AsyncReadExt;
                let mut buf = vec![0u8; 64 * 1024];
                let mut got = 0u64;
                while got < expected {
                    match stream.read(&mut buf).await? {
                        0 => return Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
                        n => got += n as u64,
                    }
                }
                Ok::<u64, io::Error>(got)
            }));
        }
        let mut total = 0;
        for task in tasks {
            total += task.await.map_err(io::Error::other)??;
        }
        Ok::<u64, io::Error>(total)
    })?;
    Ok((total, thread_cpu().saturating_sub(before)))
}

/// This thread's CPU time (user + system). Zero where the platform does not say.
fn thread_cpu() -> Duration {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: getrusage only writes the struct it is given, which is plain data.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: a valid pointer to a rusage; RUSAGE_THREAD is this thread.
        if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) } == 0 {
            let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
            return Duration::from_micros(micros(usage.ru_utime) + micros(usage.ru_stime));
        }
    }
    Duration::ZERO
}

/// Runs the calling thread on `cpu` only (Linux); elsewhere an error.
fn pin_current_thread(cpu: usize) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: cpu_set_t is plain data; CPU_SET writes within it (it checks the index).
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        unsafe { libc::CPU_SET(cpu, &mut set) };
        // SAFETY: 0 is the calling thread; the set is valid for its size.
        let done = unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) };
        if done == 0 {
            return Ok(());
        }
        Err(io::Error::last_os_error())
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = cpu;
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "pinning threads is Linux-only here",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_written_is_read_and_each_post_is_timed() {
        let config = Config {
            sockets: 20,
            posts: 15,
            event_bytes: 100,
            events_per_write: 3,
            rate: 0,
            pin: None,
        };
        let report = run(&config).unwrap();
        assert_eq!(report.writes, 300);
        assert_eq!(report.bytes_read, 20 * 15 * 300);
        assert_eq!(report.post_ns.count(), 15);
        assert!(report.post_ns.max() > 0);
        assert!(report.summary(&config).contains("20 sockets, 15 posts"));
    }

    #[test]
    fn a_paced_run_takes_as_long_as_its_rate_says() {
        let config = Config {
            sockets: 2,
            posts: 5,
            rate: 50,
            ..Config::default()
        };
        let started = Instant::now();
        let report = run(&config).unwrap();
        // Posts 0..4 at 50/s: the last goes out 80 ms after the first.
        assert!(started.elapsed() >= Duration::from_millis(80));
        assert_eq!(report.bytes_read, 2 * 5 * 150);
    }

    #[test]
    fn events_of_any_size_are_written_whole() {
        for event_bytes in [1, 2, 7, 4096] {
            let config = Config {
                sockets: 1,
                posts: 3,
                event_bytes,
                events_per_write: 2,
                rate: 0,
                pin: None,
            };
            assert_eq!(run(&config).unwrap().bytes_read, 3 * 2 * event_bytes as u64);
        }
    }

    #[test]
    fn nothing_to_write_is_refused() {
        let config = Config {
            sockets: 0,
            ..Config::default()
        };
        assert_eq!(
            run(&config).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    }
}
