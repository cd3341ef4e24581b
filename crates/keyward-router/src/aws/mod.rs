//! AWS wire pieces for the Bedrock provider: SigV4 request signing (shared with the key
//! managers, so it lives in `keyward_core::sigv4`) and the binary event-stream framing of
//! ConverseStream. Written from AWS's specification and checked
//! against the vectors in `docs/providers/bedrock.md` (signatures verified with `aws-sigv4`,
//! frames recorded from real Bedrock responses). Used by `provider::bedrock`.

pub mod eventstream;
pub use keyward_core::sigv4;
