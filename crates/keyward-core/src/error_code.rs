//! The error codes users see in `error.code`, with their HTTP status and the error `type` each
//! client-facing API shape uses. The `/v1` codes are SPEC's table; the admin-only codes are
//! documented in `docs/admin-api.md`.

/// One error code. `as_str()` is the only spelling of each code in the code base.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    InvalidPlatformKey,
    ModelNotAllowed,
    ModelUnpriced,
    NoCredential,
    CredentialDisabled,
    ProviderCredentialRejected,
    BudgetExceeded,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
    InvalidRequest,
    CredentialUnreadable,
    LedgerUnavailable,
    EgressBlocked,
    // Admin API.
    Unauthenticated,
    Forbidden,
    NotFound,
    Conflict,
    ServiceUnavailable,
    Internal,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 20] = [
        Self::InvalidPlatformKey,
        Self::ModelNotAllowed,
        Self::ModelUnpriced,
        Self::NoCredential,
        Self::CredentialDisabled,
        Self::ProviderCredentialRejected,
        Self::BudgetExceeded,
        Self::RateLimited,
        Self::UpstreamError,
        Self::UpstreamTimeout,
        Self::InvalidRequest,
        Self::CredentialUnreadable,
        Self::LedgerUnavailable,
        Self::EgressBlocked,
        Self::Unauthenticated,
        Self::Forbidden,
        Self::NotFound,
        Self::Conflict,
        Self::ServiceUnavailable,
        Self::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidPlatformKey => "invalid_platform_key",
            Self::ModelNotAllowed => "model_not_allowed",
            Self::ModelUnpriced => "model_unpriced",
            Self::NoCredential => "no_credential",
            Self::CredentialDisabled => "credential_disabled",
            Self::ProviderCredentialRejected => "provider_credential_rejected",
            Self::BudgetExceeded => "budget_exceeded",
            Self::RateLimited => "rate_limited",
            Self::UpstreamError => "upstream_error",
            Self::UpstreamTimeout => "upstream_timeout",
            Self::InvalidRequest => "invalid_request",
            Self::CredentialUnreadable => "credential_unreadable",
            Self::LedgerUnavailable => "ledger_unavailable",
            Self::EgressBlocked => "egress_blocked",
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::Conflict => "conflict",
            Self::ServiceUnavailable => "service_unavailable",
            Self::Internal => "internal_error",
        }
    }

    pub fn http_status(self) -> u16 {
        match self {
            Self::InvalidPlatformKey | Self::Unauthenticated => 401,
            Self::ModelNotAllowed
            | Self::ModelUnpriced
            | Self::CredentialDisabled
            | Self::Forbidden => 403,
            Self::NoCredential | Self::InvalidRequest => 400,
            Self::NotFound => 404,
            Self::Conflict => 409,
            Self::ProviderCredentialRejected => 424,
            Self::BudgetExceeded | Self::RateLimited => 429,
            Self::UpstreamError | Self::EgressBlocked => 502,
            Self::UpstreamTimeout => 504,
            Self::CredentialUnreadable | Self::LedgerUnavailable | Self::ServiceUnavailable => 503,
            Self::Internal => 500,
        }
    }

    /// The `error.type` of OpenAI's error shape.
    pub fn openai_type(self) -> &'static str {
        match self {
            Self::BudgetExceeded => "insufficient_quota",
            _ => status_type(self.http_status()),
        }
    }

    /// The `error.type` of Anthropic's error shape, by status as SPEC lists it.
    pub fn anthropic_type(self) -> &'static str {
        status_type(self.http_status())
    }
}

fn status_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        409 => "conflict_error",
        429 => "rate_limit_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_codes_have_spec_statuses() {
        let expected = [
            ("invalid_platform_key", 401),
            ("model_not_allowed", 403),
            ("model_unpriced", 403),
            ("no_credential", 400),
            ("credential_disabled", 403),
            ("provider_credential_rejected", 424),
            ("budget_exceeded", 429),
            ("upstream_error", 502),
            ("upstream_timeout", 504),
            ("invalid_request", 400),
            ("credential_unreadable", 503),
            ("ledger_unavailable", 503),
            ("egress_blocked", 502),
        ];
        for (code, status) in expected {
            let found = ErrorCode::ALL
                .iter()
                .find(|candidate| candidate.as_str() == code)
                .unwrap_or_else(|| panic!("SPEC code {code} is missing"));
            assert_eq!(found.http_status(), status, "{code}");
        }
        assert_eq!(
            ErrorCode::BudgetExceeded.openai_type(),
            "insufficient_quota"
        );
        assert_eq!(
            ErrorCode::InvalidRequest.anthropic_type(),
            "invalid_request_error"
        );
        assert_eq!(ErrorCode::UpstreamTimeout.anthropic_type(), "api_error");
    }

    #[test]
    fn codes_are_unique() {
        let mut names: Vec<_> = ErrorCode::ALL.iter().map(|code| code.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ErrorCode::ALL.len());
    }
}
