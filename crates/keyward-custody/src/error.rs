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

impl CustodyError {
    /// This error as the vault's error for the master-key source at `source_location`.
    pub fn at_source(self, source_location: String) -> keyward_vault::VaultError {
        keyward_vault::VaultError::KeyManager {
            source_location,
            message: self.to_string(),
        }
    }
}

/// Decodes a manager's JSON answer; one that does not have the documented shape is
/// `Malformed`, saying what was `expected` (never quoting the answer: it may hold a secret).
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    body: &[u8],
    manager: &'static str,
    action: impl Into<String>,
    expected: &str,
) -> Result<T, CustodyError> {
    serde_json::from_slice(body).map_err(|_| CustodyError::Malformed {
        manager,
        action: action.into(),
        reason: expected.to_owned(),
    })
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
