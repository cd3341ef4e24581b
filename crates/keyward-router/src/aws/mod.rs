//! AWS wire pieces for the Bedrock provider: SigV4 request signing and the binary
//! event-stream framing of ConverseStream. Written from AWS's specification and checked
//! against the vectors in `docs/providers/bedrock.md` (signatures verified with `aws-sigv4`,
//! frames recorded from real Bedrock responses). Not wired to a provider yet (#4).

pub mod eventstream;
pub mod sigv4;
