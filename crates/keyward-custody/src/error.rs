//! Errors of the key-manager clients. Messages name the manager, endpoint, key id or
//! reference, action and permission — never a secret, a token or a fetched value.

#[derive(Clone, Debug, thiserror::Error)]
pub enum CustodyError {
    #[error("{manager} at {endpoint} cannot be reached ({reason}); check the address and that this host may connect to it")]
    Unreachable {
        manager: &'static str,
        endpoint: String,
        reason: String,
    },
    #[error("{manager} denied {permission} on {resource}{detail}; grant Keyward's identity that permission")]
    Denied {
        manager: &'static str,
        permission: String,
        resource: String,
        detail: String,
    },
    #[error("{manager}: {resource} does not exist{detail}")]
    NotFound {
        manager: &'static str,
        resource: String,
        detail: String,
    },
    #[error("{manager} refused {action} on {resource}: {detail}")]
    Refused {
        manager: &'static str,
        action: String,
        resource: String,
        detail: String,
    },
    #[error("{manager}'s answer to {action} is not what its API documents ({reason})")]
    Malformed {
        manager: &'static str,
        action: String,
        reason: String,
    },
    #[error("{manager} is not configured: {hint}")]
    NotConfigured { manager: &'static str, hint: String },
}

/// A manager's own error text, shortened and stripped of control characters before it is put
/// in a message (it is untrusted input).
pub(crate) fn sanitize(detail: &str) -> String {
    let cleaned: String = detail
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let trimmed = cleaned.split_whitespace().collect::<Vec<_>>().join(" ");
    if trimmed.chars().count() > 240 {
        let cut: String = trimmed.chars().take(240).collect();
        format!("{cut}…")
    } else {
        trimmed
    }
}
