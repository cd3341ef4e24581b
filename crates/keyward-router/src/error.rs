//! Router errors. They name providers, statuses, limits and positions — never body text or
//! secrets.

use keyward_core::ErrorCode;

#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error("{0}")]
    Body(#[from] crate::BodyError),
    #[error("the credential's base_url resolves to {address}, which the egress policy refuses; the operator can allow it with egress.allow_private")]
    EgressBlocked { address: String },
    #[error("the provider did not answer within {seconds} s")]
    Timeout { seconds: u64 },
    #[error("cannot reach the provider: {reason}")]
    Connect { reason: String },
    #[error("the provider's response is larger than {limit} bytes")]
    ResponseTooLarge { limit: usize },
    #[error("the credential's base_url is not usable: {reason}")]
    BadBaseUrl { reason: &'static str },
    #[error("the stored secret cannot be sent as an HTTP header (it holds characters headers cannot carry); rotate the credential")]
    BadSecret,
    #[error("the credential has no secret, but {provider} needs one")]
    MissingSecret { provider: &'static str },
    #[error("{surface} calls cannot go to a {provider} credential yet")]
    Unsupported {
        surface: &'static str,
        provider: &'static str,
    },
}

impl RouterError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Body(_) => ErrorCode::InvalidRequest,
            Self::EgressBlocked { .. } => ErrorCode::EgressBlocked,
            Self::Timeout { .. } => ErrorCode::UpstreamTimeout,
            Self::Unsupported { .. } => ErrorCode::NoCredential,
            Self::Connect { .. }
            | Self::ResponseTooLarge { .. }
            | Self::BadBaseUrl { .. }
            | Self::BadSecret
            | Self::MissingSecret { .. } => ErrorCode::UpstreamError,
        }
    }
}
