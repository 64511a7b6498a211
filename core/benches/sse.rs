//! SSE codec throughput: encoding, and decoding next to eventsource-stream on the same bytes.
//!
//! Input: 10,000 events of ~200-byte JSON (an oRPC-style envelope, mostly ASCII), a third with
//! ids, some with retry, a tenth pretty-printed over several lines, a keep-alive comment every
//! 100 events; decoders get it in 4 KiB chunks. Run: `cargo bench -p outer-core --bench sse`.

use std::convert::Infallible;
use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use eventsource_stream::Eventsource;
use futures::StreamExt;
use outer_core::sse::{EventWriter, SseDecoder, SseEvent};

const EVENTS: usize = 10_000;
const CHUNK: usize = 4096;

/// A fixed pseudo-random sequence, so every run measures the same input.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

fn events() -> Vec<SseEvent> {
    // Mostly ASCII, as JSON payloads are, with some accents and an emoji.
    let words = [
        "realtime",
        "stream",
        "event",
        "resume",
        "cursor",
        "lorem",
        "ipsum",
        "dolor",
        "sit",
        "amet",
        "consectetur",
        "adipiscing",
        "elit",
        "sed",
        "do",
        "eiusmod",
        "tempor",
        "café",
        "naïve",
        "🙂",
    ];
    let mut rng = Lcg(7);
    (0..EVENTS)
        .map(|n| {
            let mut text = String::new();
            while text.len() < 90 {
                text.push_str(words[rng.next(words.len() as u64) as usize]);
                text.push(' ');
            }
            let (nl, indent) = if n % 10 == 0 { ("\n", "  ") } else { ("", "") };
            let data = format!(
                "{{\"json\":{{{nl}{indent}\"id\":{n},{nl}{indent}\"user\":\"user-{}\",{nl}{indent}\
                 \"text\":\"{}\",{nl}{indent}\"tags\":[\"a\",\"b\"],\"ts\":{}{nl}}}}}",
                rng.next(1000),
                text.trim_end(),
                1_700_000_000_000u64 + rng.next(1_000_000),
            );
            let mut event = SseEvent::new(data);
            if n % 3 == 0 {
                event = event.with_id(n.to_string());
            }
            if n % 250 == 0 {
                event = event.with_retry(1000);
            }
            event
        })
        .collect()
}

fn encode(events: &[SseEvent], buf: &mut Vec<u8>) {
    for (n, event) in events.iter().enumerate() {
        if n % 100 == 0 {
            let _ = EventWriter::new(&mut *buf).comment("").finish();
        }
        let _ = event.write_to(&mut *buf);
    }
}

fn decode_outer(chunks: &[Bytes]) -> usize {
    let mut decoder = SseDecoder::new();
    let mut count = 0;
    for chunk in chunks {
        let mut input = &chunk[..];
        while let Ok(Some(event)) = decoder.next_event(&mut input) {
            black_box(event);
            count += 1;
        }
    }
    decoder.finish();
    count
}

fn decode_eventsource_stream(chunks: &[Bytes]) -> usize {
    let stream = futures::stream::iter(chunks.iter().cloned().map(Ok::<_, Infallible>));
    futures::executor::block_on(stream.eventsource().fold(0, |count, event| async move {
        black_box(event.ok());
        count + 1
    }))
}

/// Both decoders give back what was encoded, so they are timed doing the same work.
fn same_output(events: &[SseEvent], chunks: &[Bytes]) {
    let stream = futures::stream::iter(chunks.iter().cloned().map(Ok::<_, Infallible>));
    let theirs: Vec<_> = futures::executor::block_on(stream.eventsource().collect::<Vec<_>>());
    assert_eq!(theirs.len(), events.len());
    for (ours, theirs) in events.iter().zip(theirs) {
        let theirs = theirs.expect("eventsource-stream decodes the input");
        assert_eq!((&ours.event, &ours.data), (&theirs.event, &theirs.data));
    }
}

fn bench(c: &mut Criterion) {
    let events = events();
    let mut wire = Vec::new();
    encode(&events, &mut wire);
    let chunks: Vec<Bytes> = wire.chunks(CHUNK).map(Bytes::copy_from_slice).collect();
    assert_eq!(decode_outer(&chunks), EVENTS);
    assert_eq!(decode_eventsource_stream(&chunks), EVENTS);
    same_output(&events, &chunks);
    eprintln!("input: {EVENTS} events, {} bytes", wire.len());

    let mut group = c.benchmark_group("sse");
    group.throughput(Throughput::Bytes(wire.len() as u64));
    group.bench_function("encode/outer", |b| {
        let mut buf = Vec::with_capacity(wire.len());
        b.iter(|| {
            buf.clear();
            encode(black_box(&events), &mut buf);
            black_box(buf.len())
        })
    });
    group.bench_function("decode/outer", |b| {
        b.iter(|| decode_outer(black_box(&chunks)))
    });
    group.bench_function("decode/eventsource-stream", |b| {
        b.iter(|| decode_eventsource_stream(black_box(&chunks)))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(6));
    targets = bench
}
criterion_main!(benches);
