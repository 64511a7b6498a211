//! What the encoder writes, the decoder reads back: whatever the events, the field order, the
//! protocol's framing, and however the bytes are cut into chunks on the way.
// A test that unwraps fails loudly at the line that broke, which is what a test is for.

use outer_core::sse::{DecodeError, EventWriter, Limits, SseDecoder, SseEvent};
use proptest::prelude::*;
use proptest::sample::Index;

/// Text that is mostly ordinary but often holds CR, LF, CRLF, multi-byte chars, spaces and `:`.
fn text(max: usize) -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => any::<char>().prop_map(String::from),
        1 => Just("\r".to_owned()),
        1 => Just("\n".to_owned()),
        1 => Just("\r\n".to_owned()),
        1 => Just(" ".to_owned()),
        1 => Just(":".to_owned()),
        1 => Just("é😀".to_owned()),
    ];
    prop::collection::vec(piece, 0..max).prop_map(|pieces| pieces.concat())
}

/// Text that fits on one line: what an event type may be (an id, also without NUL).
fn line(max: usize, nul_ok: bool) -> impl Strategy<Value = String> {
    text(max).prop_map(move |t| {
        t.chars()
            .filter(|c| !matches!(c, '\r' | '\n') && (nul_ok || *c != '\0'))
            .collect()
    })
}

#[derive(Clone, Debug)]
struct Case {
    event: SseEvent,
    comments: Vec<String>,
    /// The order of the fields event, retry, id, data.
    order: Vec<u8>,
    /// tRPC's extra blank line after the event.
    extra_blank_line: bool,
    /// A keep-alive comment event before this one.
    keep_alive_before: bool,
}

fn case() -> impl Strategy<Value = Case> {
    (
        line(8, true),
        text(40),
        prop::option::of(line(8, false)),
        prop::option::of(any::<u64>()),
        prop::collection::vec(text(8), 0..3),
        Just(vec![0u8, 1, 2, 3]).prop_shuffle(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(event, data, id, retry, comments, order, extra_blank_line, keep_alive_before)| Case {
                event: SseEvent {
                    event,
                    data,
                    id,
                    retry,
                },
                comments,
                order,
                extra_blank_line,
                keep_alive_before,
            },
        )
}

fn encode(cases: &[Case], bom: bool) -> Vec<u8> {
    let mut wire = Vec::new();
    if bom {
        wire.extend_from_slice("\u{FEFF}".as_bytes());
    }
    for case in cases {
        if case.keep_alive_before {
            EventWriter::new(&mut wire).comment("").finish().unwrap();
        }
        let mut writer = EventWriter::new(&mut wire);
        for comment in &case.comments {
            writer = writer.comment(comment);
        }
        let event = &case.event;
        for field in &case.order {
            writer = match field {
                0 if event.event.is_empty() => writer,
                0 => writer.event(&event.event),
                1 => match event.retry {
                    Some(millis) => writer.retry(millis),
                    None => writer,
                },
                2 => match &event.id {
                    Some(id) => writer.id(id),
                    None => writer,
                },
                _ => writer.data(&event.data),
            };
        }
        if case.extra_blank_line {
            writer.finish_with_blank_line().unwrap();
        } else {
            writer.finish().unwrap();
        }
    }
    wire
}

/// What the decoder must give back for an event: line breaks as LF, no type as `message`.
fn expected(event: &SseEvent) -> SseEvent {
    let data = event.data.replace("\r\n", "\n").replace('\r', "\n");
    let name = match event.event.as_str() {
        "" => "message".to_owned(),
        name => name.to_owned(),
    };
    SseEvent {
        event: name,
        data,
        id: event.id.clone(),
        retry: event.retry,
    }
}

/// Cuts `bytes` at the given places (in any order, repeats allowed).
fn chunks<'a>(bytes: &'a [u8], cuts: &[Index]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
    at.push(0);
    at.push(bytes.len());
    at.sort_unstable();
    at.windows(2).map(|w| &bytes[w[0]..w[1]]).collect()
}

/// Every event and error the decoder gives for these chunks, going on after errors.
fn decode_all(decoder: &mut SseDecoder, chunks: &[&[u8]]) -> Vec<Result<SseEvent, DecodeError>> {
    let mut out = Vec::new();
    for chunk in chunks {
        let mut input = *chunk;
        loop {
            match decoder.next_event(&mut input) {
                Ok(Some(event)) => out.push(Ok(event)),
                Ok(None) => break,
                Err(e) => out.push(Err(e)),
            }
        }
        assert!(input.is_empty(), "Ok(None) means the chunk was used up");
    }
    decoder.finish();
    out
}

/// Bytes that mean something to an SSE parser, and a few that break UTF-8.
fn wire_byte() -> impl Strategy<Value = u8> {
    prop::sample::select(
        b"data:eventidretry 0123456789\r\n\r\n\n\n:\0\xEF\xBB\xBF\xC3\xA9\xFF\xF0\x9F\x98\x80x"
            .to_vec(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn encoded_events_decode_back_whatever_the_chunking(
        cases in prop::collection::vec(case(), 0..8),
        bom in any::<bool>(),
        cuts in prop::collection::vec(any::<Index>(), 0..24),
        bytewise in prop::bool::weighted(0.1),
    ) {
        let wire = encode(&cases, bom);
        let pieces = if bytewise { wire.chunks(1).collect() } else { chunks(&wire, &cuts) };
        let mut decoder = SseDecoder::new();
        let got = decode_all(&mut decoder, &pieces);
        let want: Vec<_> = cases.iter().map(|c| Ok(expected(&c.event))).collect();
        prop_assert_eq!(got, want);

        let last_id = cases.iter().rev().find_map(|c| c.event.id.clone()).unwrap_or_default();
        prop_assert_eq!(decoder.last_event_id(), last_id.as_str());
        let last_retry = cases.iter().rev().find_map(|c| c.event.retry);
        prop_assert_eq!(decoder.retry(), last_retry);
    }

    #[test]
    fn any_bytes_decode_the_same_whatever_the_chunking(
        bytes in prop::collection::vec(wire_byte(), 0..300),
        cuts in prop::collection::vec(any::<Index>(), 0..24),
        max_line in 1usize..24,
        max_event in 0usize..24,
    ) {
        let limits = Limits { max_line, max_event };
        let mut whole = SseDecoder::with_limits(limits);
        let mut cut = SseDecoder::with_limits(limits);
        let mut bytewise = SseDecoder::with_limits(limits);
        let expected = decode_all(&mut whole, &[&bytes]);
        prop_assert_eq!(&decode_all(&mut cut, &chunks(&bytes, &cuts)), &expected);
        prop_assert_eq!(&decode_all(&mut bytewise, &bytes.chunks(1).collect::<Vec<_>>()), &expected);
        prop_assert_eq!(cut.last_event_id(), whole.last_event_id());
        prop_assert_eq!(bytewise.retry(), whole.retry());
        for event in expected.iter().flatten() {
            prop_assert!(event.data.len() <= max_event);
        }
    }
}
