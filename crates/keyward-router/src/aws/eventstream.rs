//! AWS event-stream framing (`application/vnd.amazon.eventstream`): each message is
//! `total_len u32 | headers_len u32 | prelude_crc u32 | headers | payload | message_crc u32`,
//! CRC-32 (IEEE) over the prelude and over everything before the message CRC.
//!
//! Invariant: untrusted bytes are decoded incrementally with bounds (16 MiB per message,
//! 128 KiB of headers — the service's long-standing limits) and checksums; a bad frame is an
//! error, never a panic or an unbounded buffer.

use bytes::{Buf, BufMut, Bytes, BytesMut};

const PRELUDE_LEN: usize = 12;
const MIN_MESSAGE_LEN: usize = PRELUDE_LEN + 4;
pub const MAX_MESSAGE_LEN: usize = 16 * 1024 * 1024;
pub const MAX_HEADERS_LEN: usize = 128 * 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderValue {
    Bool(bool),
    Byte(i8),
    Short(i16),
    Int(i32),
    Long(i64),
    Bytes(Bytes),
    String(String),
    /// Milliseconds since the Unix epoch.
    Timestamp(i64),
    Uuid([u8; 16]),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub headers: Vec<(String, HeaderValue)>,
    pub payload: Bytes,
}

impl Message {
    /// A string header, e.g. `:event-type`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|(key, value)| match value {
            HeaderValue::String(text) if key == name => Some(text.as_str()),
            _ => None,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("event-stream message of {len} bytes is outside 16 bytes to 16 MiB")]
    BadLength { len: usize },
    #[error("event-stream headers of {len} bytes exceed the message or the 128 KiB limit")]
    BadHeadersLength { len: usize },
    #[error("event-stream prelude checksum mismatch")]
    PreludeCrc,
    #[error("event-stream message checksum mismatch")]
    MessageCrc,
    #[error("event-stream header is malformed: {0}")]
    Header(&'static str),
}

/// Decodes messages from a byte stream arriving in arbitrary chunks.
#[derive(Default)]
pub struct Decoder {
    buffer: BytesMut,
    /// An error found after messages that were returned first; reported on the next push.
    failed: Option<FrameError>,
}

impl Decoder {
    /// Messages completed by `chunk`. A bad frame is an error; messages decoded before it in
    /// the same chunk are returned first and the error follows on the next call.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<Message>, FrameError> {
        if let Some(error) = self.failed.clone() {
            return Err(error);
        }
        self.buffer.extend_from_slice(chunk);
        let mut messages = Vec::new();
        match self.decode_into(&mut messages) {
            Ok(()) => Ok(messages),
            Err(error) if messages.is_empty() => {
                self.failed = Some(error.clone());
                Err(error)
            }
            Err(error) => {
                self.failed = Some(error);
                Ok(messages)
            }
        }
    }

    fn decode_into(&mut self, messages: &mut Vec<Message>) -> Result<(), FrameError> {
        while self.buffer.len() >= PRELUDE_LEN {
            let total = u32::from_be_bytes([
                self.buffer[0],
                self.buffer[1],
                self.buffer[2],
                self.buffer[3],
            ]) as usize;
            let headers_len = u32::from_be_bytes([
                self.buffer[4],
                self.buffer[5],
                self.buffer[6],
                self.buffer[7],
            ]) as usize;
            let prelude_crc = u32::from_be_bytes([
                self.buffer[8],
                self.buffer[9],
                self.buffer[10],
                self.buffer[11],
            ]);
            if crc32fast::hash(&self.buffer[..8]) != prelude_crc {
                return Err(FrameError::PreludeCrc);
            }
            if !(MIN_MESSAGE_LEN..=MAX_MESSAGE_LEN).contains(&total) {
                return Err(FrameError::BadLength { len: total });
            }
            if headers_len > MAX_HEADERS_LEN || headers_len > total - MIN_MESSAGE_LEN {
                return Err(FrameError::BadHeadersLength { len: headers_len });
            }
            if self.buffer.len() < total {
                break;
            }
            let frame = self.buffer.split_to(total).freeze();
            let message_crc = u32::from_be_bytes([
                frame[total - 4],
                frame[total - 3],
                frame[total - 2],
                frame[total - 1],
            ]);
            if crc32fast::hash(&frame[..total - 4]) != message_crc {
                return Err(FrameError::MessageCrc);
            }
            let headers = parse_headers(frame.slice(PRELUDE_LEN..PRELUDE_LEN + headers_len))?;
            let payload = frame.slice(PRELUDE_LEN + headers_len..total - 4);
            messages.push(Message { headers, payload });
        }
        Ok(())
    }
}

fn parse_headers(mut bytes: Bytes) -> Result<Vec<(String, HeaderValue)>, FrameError> {
    let mut headers = Vec::new();
    let need = |bytes: &Bytes, n: usize| {
        if bytes.remaining() < n {
            Err(FrameError::Header("truncated"))
        } else {
            Ok(())
        }
    };
    while bytes.has_remaining() {
        let name_len = usize::from(bytes.get_u8());
        need(&bytes, name_len + 1)?;
        let name = String::from_utf8(bytes.split_to(name_len).to_vec())
            .map_err(|_| FrameError::Header("name is not UTF-8"))?;
        let value = match bytes.get_u8() {
            0 => HeaderValue::Bool(true),
            1 => HeaderValue::Bool(false),
            2 => {
                need(&bytes, 1)?;
                HeaderValue::Byte(bytes.get_i8())
            }
            3 => {
                need(&bytes, 2)?;
                HeaderValue::Short(bytes.get_i16())
            }
            4 => {
                need(&bytes, 4)?;
                HeaderValue::Int(bytes.get_i32())
            }
            kind @ (5 | 8) => {
                need(&bytes, 8)?;
                let value = bytes.get_i64();
                if kind == 5 {
                    HeaderValue::Long(value)
                } else {
                    HeaderValue::Timestamp(value)
                }
            }
            kind @ (6 | 7) => {
                need(&bytes, 2)?;
                let len = usize::from(bytes.get_u16());
                need(&bytes, len)?;
                let value = bytes.split_to(len);
                if kind == 6 {
                    HeaderValue::Bytes(value)
                } else {
                    HeaderValue::String(
                        String::from_utf8(value.to_vec())
                            .map_err(|_| FrameError::Header("string value is not UTF-8"))?,
                    )
                }
            }
            9 => {
                need(&bytes, 16)?;
                let mut uuid = [0u8; 16];
                bytes.copy_to_slice(&mut uuid);
                HeaderValue::Uuid(uuid)
            }
            _ => return Err(FrameError::Header("unknown value type")),
        };
        headers.push((name, value));
    }
    Ok(headers)
}

/// Encodes a message with string headers (tests and tools).
pub fn encode(headers: &[(&str, &str)], payload: &[u8]) -> Bytes {
    let mut header_bytes = BytesMut::new();
    for (name, value) in headers {
        header_bytes.put_u8(u8::try_from(name.len()).unwrap_or(u8::MAX));
        header_bytes.put_slice(name.as_bytes());
        header_bytes.put_u8(7);
        header_bytes.put_u16(u16::try_from(value.len()).unwrap_or(u16::MAX));
        header_bytes.put_slice(value.as_bytes());
    }
    let total = PRELUDE_LEN + header_bytes.len() + payload.len() + 4;
    let mut frame = BytesMut::with_capacity(total);
    frame.put_u32(u32::try_from(total).unwrap_or(u32::MAX));
    frame.put_u32(u32::try_from(header_bytes.len()).unwrap_or(u32::MAX));
    let prelude_crc = crc32fast::hash(&frame[..8]);
    frame.put_u32(prelude_crc);
    frame.put_slice(&header_bytes);
    frame.put_slice(payload);
    let message_crc = crc32fast::hash(&frame);
    frame.put_u32(message_crc);
    frame.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Examples A–D of docs/providers/bedrock.md §5 (A and B match aws-smithy-eventstream's
    /// encoder byte for byte; C is a frame recorded from real Bedrock; D is a CRT vector).
    const EXAMPLE_A: &str = "0000009400000057b4ab9aee0b3a6576656e742d74797065070011636f6e74656e74426c6f636b44656c74610d3a636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e0d3a6d6573736167652d747970650700056576656e747b22636f6e74656e74426c6f636b496e646578223a302c2264656c7461223a7b2274657874223a224869227d7d1f944657";
    const EXAMPLE_B: &str = "000000b2000000613590d5d30f3a657863657074696f6e2d747970650700137468726f74746c696e67457863657074696f6e0d3a636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e0d3a6d6573736167652d74797065070009657863657074696f6e7b226d657373616765223a22546f6f206d616e792072657175657374732c20706c656173652077616974206265666f726520747279696e6720616761696e2e227de8ffb26a";
    const EXAMPLE_C: &str = "000000b2000000528a40b4c50b3a6576656e742d7479706507000c6d65737361676553746172740d3a636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e0d3a6d6573736167652d747970650700056576656e747b2270223a226162636465666768696a6b6c6d6e6f707172737475767778797a4142434445464748494a4b4c4d4e4f505152535455565758595a30222c22726f6c65223a22617373697374616e74227d40ff8268";
    const EXAMPLE_D: &str = "0000001d00000000fd528c5a7b27666f6f273a27626172277dc3653936";

    #[test]
    fn recorded_and_reference_frames_decode() {
        let mut decoder = Decoder::default();
        let stream = [
            hex(EXAMPLE_A),
            hex(EXAMPLE_B),
            hex(EXAMPLE_C),
            hex(EXAMPLE_D),
        ]
        .concat();
        let messages = decoder.push(&stream).unwrap();
        assert_eq!(messages.len(), 4);
        assert_eq!(messages[0].header(":event-type"), Some("contentBlockDelta"));
        assert_eq!(
            &messages[0].payload[..],
            br#"{"contentBlockIndex":0,"delta":{"text":"Hi"}}"#
        );
        assert_eq!(messages[1].header(":message-type"), Some("exception"));
        assert_eq!(
            messages[1].header(":exception-type"),
            Some("throttlingException")
        );
        assert_eq!(messages[2].header(":event-type"), Some("messageStart"));
        assert!(messages[3].headers.is_empty());
        assert_eq!(&messages[3].payload[..], b"{'foo':'bar'}");
    }

    #[test]
    fn the_encoder_reproduces_the_reference_frame() {
        let encoded = encode(
            &[
                (":event-type", "contentBlockDelta"),
                (":content-type", "application/json"),
                (":message-type", "event"),
            ],
            br#"{"contentBlockIndex":0,"delta":{"text":"Hi"}}"#,
        );
        assert_eq!(encoded.to_vec(), hex(EXAMPLE_A));
    }

    // Review of session 1: a metadata frame followed by a corrupt one in the same read lost
    // the metadata (and so the call's usage).
    #[test]
    fn good_messages_before_a_bad_frame_are_kept() {
        let mut stream = hex(EXAMPLE_A);
        let mut corrupt = hex(EXAMPLE_B);
        corrupt[100] ^= 1;
        stream.extend(corrupt);
        let mut decoder = Decoder::default();
        assert_eq!(decoder.push(&stream).unwrap().len(), 1);
        assert_eq!(decoder.push(&[]).unwrap_err(), FrameError::MessageCrc);
    }

    #[test]
    fn corrupted_frames_are_refused() {
        let good = hex(EXAMPLE_A);
        let mut prelude = good.clone();
        prelude[3] ^= 1;
        assert!(matches!(
            Decoder::default().push(&prelude),
            Err(FrameError::PreludeCrc)
        ));
        let mut body = good.clone();
        body[100] ^= 1;
        assert_eq!(
            Decoder::default().push(&body).unwrap_err(),
            FrameError::MessageCrc
        );
    }

    proptest! {
        #[test]
        fn any_chunking_decodes_the_same(cuts in proptest::collection::vec(0usize..520, 0..10)) {
            let stream = [hex(EXAMPLE_A), hex(EXAMPLE_B), hex(EXAMPLE_C)].concat();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|cut| cut % stream.len()).collect();
            cuts.sort_unstable();
            let mut decoder = Decoder::default();
            let mut messages = Vec::new();
            let mut start = 0;
            for cut in cuts.into_iter().chain([stream.len()]) {
                messages.extend(decoder.push(&stream[start..cut.max(start)]).unwrap());
                start = cut.max(start);
            }
            prop_assert_eq!(messages.len(), 3);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = Decoder::default().push(&bytes);
        }

        #[test]
        fn encode_then_decode_round_trips(payload in proptest::collection::vec(any::<u8>(), 0..300), value in "[a-zA-Z]{0,40}") {
            let frame = encode(&[(":event-type", &value)], &payload);
            let messages = Decoder::default().push(&frame).unwrap();
            prop_assert_eq!(messages.len(), 1);
            prop_assert_eq!(messages[0].header(":event-type"), Some(value.as_str()));
            prop_assert_eq!(&messages[0].payload[..], &payload[..]);
        }
    }
}
