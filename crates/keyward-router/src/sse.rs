//! Incremental Server-Sent Events parsing that keeps each event's raw bytes, so events can be
//! forwarded exactly as the provider sent them (or dropped) as soon as they are complete.
//! Bounded: an event that grows past [`MAX_EVENT_BYTES`] without ending is an error, not an
//! ever-growing buffer.

use bytes::{Bytes, BytesMut};

/// Largest single event accepted from a provider.
pub(crate) const MAX_EVENT_BYTES: usize = 4 * 1024 * 1024;

pub(crate) struct SseEvent {
    /// The event exactly as received, blank-line terminator included.
    pub raw: Bytes,
    /// The `event:` field, if any.
    pub name: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) struct EventTooLarge;

#[derive(Default)]
pub(crate) struct SseParser {
    buffer: BytesMut,
    /// Where the unfinished last line of `buffer` starts, and how far it was scanned: a push
    /// scans only new bytes (rescanning made an event arriving in tiny chunks quadratic).
    resume: (usize, usize),
}

impl SseParser {
    /// Adds bytes and returns every event they complete.
    pub(crate) fn push(&mut self, chunk: &[u8]) -> Result<Vec<SseEvent>, EventTooLarge> {
        self.buffer.extend_from_slice(chunk);
        let mut events = Vec::new();
        loop {
            match event_end(&self.buffer, self.resume) {
                Ok(end) => {
                    let raw = self.buffer.split_to(end).freeze();
                    events.push(parse(raw));
                    self.resume = (0, 0);
                }
                Err(resume) => {
                    self.resume = resume;
                    break;
                }
            }
        }
        if self.buffer.len() > MAX_EVENT_BYTES {
            return Err(EventTooLarge);
        }
        Ok(events)
    }

    /// Bytes of an unfinished event left when the stream ended.
    pub(crate) fn take_rest(&mut self) -> Bytes {
        self.resume = (0, 0);
        self.buffer.split().freeze()
    }
}

/// Scans from `line_start` (the start of a line) for the blank line that ends an event:
/// `Ok(end)` is the index just past it; `Err((line_start, scanned))` says where the
/// unfinished last line starts and how far it was scanned, so the next push scans only new
/// bytes (each byte once, not once per push, even for one long line). A
/// trailing `\r` waits for the next byte, which decides whether it is half of `\r\n`.
fn event_end(
    buffer: &[u8],
    (mut line_start, from): (usize, usize),
) -> Result<usize, (usize, usize)> {
    // Bytes between `line_start` and `from` were scanned before and hold no line break.
    let mut index = from.max(line_start);
    while index < buffer.len() {
        let line_end = match buffer[index] {
            b'\n' => Some(index + 1),
            b'\r' => match buffer.get(index + 1) {
                Some(b'\n') => Some(index + 2),
                Some(_) => Some(index + 1),
                None => return Err((line_start, index)),
            },
            _ => None,
        };
        match line_end {
            Some(end) if index == line_start => return Ok(end),
            Some(end) => {
                line_start = end;
                index = end;
            }
            None => index += 1,
        }
    }
    Err((line_start, buffer.len()))
}

fn parse(raw: Bytes) -> SseEvent {
    let text = String::from_utf8_lossy(&raw);
    let mut name = None;
    let mut data: Vec<&str> = Vec::new();
    for line in text.split(['\n', '\r']) {
        if let Some(value) = line.strip_prefix("data:") {
            data.push(value.strip_prefix(' ').unwrap_or(value));
        } else if let Some(value) = line.strip_prefix("event:") {
            name = Some(value.trim().to_owned());
        }
    }
    let data = data.join("\n");
    SseEvent { raw, name, data }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const STREAM: &str = "event: message_start\ndata: {\"a\":1}\n\n: comment\n\ndata: line one\ndata: line two\n\nevent: x\r\ndata: crlf\r\n\r\ndata: [DONE]\n\n";

    fn names_and_data(events: &[SseEvent]) -> Vec<(Option<String>, String)> {
        events
            .iter()
            .map(|event| (event.name.clone(), event.data.clone()))
            .collect()
    }

    #[test]
    fn events_split_on_blank_lines_and_keep_raw_bytes() {
        let mut parser = SseParser::default();
        let events = parser.push(STREAM.as_bytes()).unwrap();
        let raw: Vec<u8> = events.iter().flat_map(|event| event.raw.to_vec()).collect();
        assert_eq!(raw, STREAM.as_bytes());
        assert_eq!(
            names_and_data(&events),
            vec![
                (Some("message_start".into()), "{\"a\":1}".into()),
                (None, String::new()),
                (None, "line one\nline two".into()),
                (Some("x".into()), "crlf".into()),
                (None, "[DONE]".into()),
            ]
        );
    }

    // Resumed scanning (each push scans only new bytes; the review of session 1 found every
    // push rescanning the buffer) must still find the end of one long line sent in pieces.
    #[test]
    fn a_long_event_in_small_chunks_parses_whole() {
        let mut parser = SseParser::default();
        let line = [b"data: ".as_slice(), &[b'x'; 1024 * 1024], b"\n\n"].concat();
        let mut events = Vec::new();
        for chunk in line.chunks(64) {
            events.extend(parser.push(chunk).unwrap());
            assert!(
                parser.resume.1 <= parser.buffer.len(),
                "the scan never runs ahead of the data"
            );
        }
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data.len(), 1024 * 1024);
    }

    #[test]
    fn an_endless_event_is_refused() {
        let mut parser = SseParser::default();
        let chunk = vec![b'x'; 1024 * 1024];
        let mut result = Ok(Vec::new());
        for _ in 0..5 {
            result = parser.push(&chunk);
        }
        assert_eq!(result.err(), Some(EventTooLarge));
    }

    proptest! {
        #[test]
        fn any_chunking_gives_the_same_events(cuts in proptest::collection::vec(0..STREAM.len(), 0..12)) {
            let mut cuts = cuts;
            cuts.sort_unstable();
            cuts.dedup();
            let mut parser = SseParser::default();
            let mut events = Vec::new();
            let mut start = 0;
            for cut in cuts.into_iter().chain([STREAM.len()]) {
                events.extend(parser.push(&STREAM.as_bytes()[start..cut]).unwrap());
                start = cut;
            }
            let mut whole = SseParser::default();
            let expected = whole.push(STREAM.as_bytes()).unwrap();
            prop_assert_eq!(names_and_data(&events), names_and_data(&expected));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut parser = SseParser::default();
            let _ = parser.push(&bytes);
            let _ = parser.take_rest();
        }
    }
}
