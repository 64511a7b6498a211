//! The decoder's limits hold: an over-long line and an over-large event are errors, and no input
//! makes it allocate past them. Memory is measured by a counting allocator, per thread, so the
//! other tests running beside these do not blur the figures.
// A test that unwraps fails loudly at the line that broke, which is what a test is for.

use counting_alloc::{peak_growth, Counting};
use outer_core::sse::{DecodeError, Limits, SseDecoder, SseEvent};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Feeds `total` bytes of `pattern`, in chunks of its size, collecting what comes out.
fn feed_repeated(
    decoder: &mut SseDecoder,
    pattern: &[u8],
    total: usize,
    out: &mut Vec<Result<SseEvent, DecodeError>>,
) {
    let mut fed = 0;
    while fed < total {
        let mut input = &pattern[..pattern.len().min(total - fed)];
        fed += input.len();
        loop {
            match decoder.next_event(&mut input) {
                Ok(Some(event)) => out.push(Ok(event)),
                Ok(None) => break,
                Err(e) => out.push(Err(e)),
            }
        }
    }
}

#[test]
fn ten_megabytes_without_a_line_break_stay_within_the_line_limit() {
    let limits = Limits::default();
    let chunk = vec![b'x'; 4096];
    let mut out = Vec::with_capacity(4);
    let mut decoder = SseDecoder::new();
    let grown = peak_growth(|| {
        feed_repeated(&mut decoder, b"data: ", 6, &mut out);
        feed_repeated(&mut decoder, &chunk, 10 << 20, &mut out);
    });
    assert_eq!(
        out,
        [Err(DecodeError::LineTooLong {
            limit: limits.max_line
        })]
    );
    assert!(
        grown <= limits.max_line + 1024,
        "the decoder grew by {grown} bytes for a {} byte line limit",
        limits.max_line
    );

    // The stream goes on: the long line's event is skipped, the next one comes through.
    let mut input: &[u8] = b"\ndata: also skipped\n\ndata: next\n\n";
    assert_eq!(
        decoder.next_event(&mut input),
        Ok(Some(SseEvent::new("next")))
    );
}

#[test]
fn ten_megabytes_of_data_lines_stay_within_the_event_limit() {
    let limits = Limits::default();
    // One event made of many short data lines and no blank line.
    let line = b"data: 0123456789012345678901234567890123456789012345678901234567\n";
    let pattern: Vec<u8> = line.iter().copied().cycle().take(line.len() * 64).collect();
    let mut out = Vec::with_capacity(4);
    let mut decoder = SseDecoder::new();
    let grown = peak_growth(|| feed_repeated(&mut decoder, &pattern, 10 << 20, &mut out));
    let [Err(DecodeError::EventTooLarge { limit, size })] = out[..] else {
        panic!("expected one EventTooLarge error, got {out:?}");
    };
    assert_eq!(limit, limits.max_event);
    assert!(size > limit);
    assert!(
        grown <= limits.max_event + 1 + 4096,
        "the decoder grew by {grown} bytes for a {limit} byte event limit"
    );
}

#[test]
fn many_small_events_in_one_chunk_come_out_one_at_a_time() {
    // The caller drains as it feeds: a chunk of 100k events costs one event's memory at a time.
    let stream = b"data: 0123456789\n\n".repeat(100_000);
    let mut decoder = SseDecoder::new();
    let mut input = &stream[..];
    let mut count = 0;
    let grown = peak_growth(|| {
        while let Some(event) = decoder.next_event(&mut input).unwrap() {
            assert_eq!(event.data, "0123456789");
            count += 1;
        }
    });
    assert_eq!(count, 100_000);
    assert!(grown < 1024, "grew by {grown} bytes");
}

#[test]
fn over_large_event_and_over_long_line_report_which_limit() {
    let limits = Limits {
        max_line: 32,
        max_event: 40,
    };
    let mut decoder = SseDecoder::with_limits(limits);
    let mut out = Vec::new();
    let stream = b"data: 0123456789012345678901234\ndata: 0123456789\ndata: 01234\n\n\
        data: 01234567890123456789012345678\n\ndata: fine\n\n";
    feed_repeated(&mut decoder, stream, stream.len(), &mut out);
    assert_eq!(
        out,
        [
            Err(DecodeError::EventTooLarge {
                limit: 40,
                size: 42
            }),
            Err(DecodeError::LineTooLong { limit: 32 }),
            Ok(SseEvent::new("fine")),
        ]
    );
}
