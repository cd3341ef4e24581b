//! Secret references: where a credential's secret is held instead of Keyward's database.
//!
//! - `vault://MOUNT/PATH#FIELD` — a string field of a Vault / OpenBao KV v2 secret;
//! - `aws-sm://SECRET_ID[#JSON_FIELD]` — an AWS Secrets Manager secret (name or ARN), whole or
//!   one string field of its JSON;
//! - `azure-kv://VAULT/NAME` — an Azure Key Vault secret's current version.
//!
//! A reference names a place, not a secret: it may be shown, stored and logged.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretReference {
    Vault {
        mount: String,
        path: String,
        field: String,
    },
    AwsSecretsManager {
        secret_id: String,
        json_field: Option<String>,
    },
    AzureKeyVault {
        vault: String,
        name: String,
    },
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ReferenceError(pub &'static str);

const LONGEST: usize = 2048;

fn plain_segment(text: &str) -> bool {
    !text.is_empty()
        && text != "."
        && text != ".."
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@' | '+' | '='))
}

impl SecretReference {
    /// Whether text is written as a reference at all (for choosing between secret and ref).
    pub fn looks_like_reference(text: &str) -> bool {
        ["vault://", "aws-sm://", "azure-kv://"]
            .iter()
            .any(|scheme| text.starts_with(scheme))
    }

    pub fn parse(text: &str) -> Result<Self, ReferenceError> {
        if text.len() > LONGEST || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ReferenceError(
                "a reference is at most 2048 characters, without spaces",
            ));
        }
        if let Some(rest) = text.strip_prefix("vault://") {
            return Self::parse_vault(rest);
        }
        if let Some(rest) = text.strip_prefix("aws-sm://") {
            return Self::parse_aws_secrets_manager(rest);
        }
        if let Some(rest) = text.strip_prefix("azure-kv://") {
            return Self::parse_azure_key_vault(rest);
        }
        Err(ReferenceError(
            "a secret reference starts with vault://, aws-sm:// or azure-kv://",
        ))
    }

    /// `MOUNT/PATH#FIELD` of a `vault://` reference.
    fn parse_vault(rest: &str) -> Result<Self, ReferenceError> {
        let (location, field) = rest.split_once('#').ok_or(ReferenceError(
            "write vault://MOUNT/PATH#FIELD (the field of the KV v2 secret holding the key)",
        ))?;
        let (mount, path) = location.split_once('/').ok_or(ReferenceError(
            "write vault://MOUNT/PATH#FIELD, e.g. vault://secret/acme/openai#api_key",
        ))?;
        if !plain_segment(mount) || !path.split('/').all(plain_segment) || !plain_segment(field) {
            return Err(ReferenceError(
                "vault:// mount, path segments and field use letters, digits and - _ . @ + = only",
            ));
        }
        Ok(Self::Vault {
            mount: mount.to_owned(),
            path: path.to_owned(),
            field: field.to_owned(),
        })
    }

    /// `SECRET_ID[#JSON_FIELD]` of an `aws-sm://` reference.
    fn parse_aws_secrets_manager(rest: &str) -> Result<Self, ReferenceError> {
        let (secret_id, json_field) = match rest.split_once('#') {
            Some((id, field)) => (id, Some(field)),
            None => (rest, None),
        };
        // A name (`/_+=.@-` besides letters and digits, per Secrets Manager) or a full ARN
        // `arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:NAME`.
        let name_ok = |name: &str| {
            !name.is_empty()
                && name.len() <= 512
                && name.chars().all(|c| {
                    c.is_ascii_alphanumeric()
                        || matches!(c, '/' | '_' | '+' | '=' | '.' | '@' | '-')
                })
        };
        let id_ok = if secret_id.starts_with("arn:") {
            let parts: Vec<&str> = secret_id.splitn(7, ':').collect();
            parts.len() == 7
                && parts[1].chars().all(|c| c.is_ascii_lowercase() || c == '-')
                && parts[2] == "secretsmanager"
                && crate::aws::is_region_name(parts[3])
                && parts[4].len() == 12
                && parts[4].chars().all(|c| c.is_ascii_digit())
                && parts[5] == "secret"
                && name_ok(parts[6])
        } else {
            name_ok(secret_id)
        };
        if !id_ok || json_field.is_some_and(|field| !plain_segment(field)) {
            return Err(ReferenceError(
                "write aws-sm://SECRET_ID[#JSON_FIELD], SECRET_ID a secret name or ARN",
            ));
        }
        Ok(Self::AwsSecretsManager {
            secret_id: secret_id.to_owned(),
            json_field: json_field.map(str::to_owned),
        })
    }

    /// `VAULT/NAME` of an `azure-kv://` reference.
    fn parse_azure_key_vault(rest: &str) -> Result<Self, ReferenceError> {
        let (vault, name) = rest.split_once('/').ok_or(ReferenceError(
            "write azure-kv://VAULT/NAME, e.g. azure-kv://acme-keys/openai-key",
        ))?;
        let vault_ok = (3..=24).contains(&vault.len())
            && vault.starts_with(|c: char| c.is_ascii_alphabetic())
            && vault.ends_with(|c: char| c.is_ascii_alphanumeric())
            && !vault.contains("--")
            && vault.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        let name_ok = (1..=127).contains(&name.len())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !vault_ok || !name_ok {
            return Err(ReferenceError(
                "azure-kv:// vault names are 3-24 letters, digits and single hyphens starting with a letter; secret names 1-127 letters, digits and hyphens",
            ));
        }
        Ok(Self::AzureKeyVault {
            vault: vault.to_owned(),
            name: name.to_owned(),
        })
    }

    /// Which manager holds it, for messages.
    pub fn manager(&self) -> &'static str {
        match self {
            Self::Vault { .. } => "Vault",
            Self::AwsSecretsManager { .. } => "AWS Secrets Manager",
            Self::AzureKeyVault { .. } => "Azure Key Vault",
        }
    }
}

impl fmt::Display for SecretReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Vault { mount, path, field } => write!(f, "vault://{mount}/{path}#{field}"),
            Self::AwsSecretsManager {
                secret_id,
                json_field: Some(field),
            } => write!(f, "aws-sm://{secret_id}#{field}"),
            Self::AwsSecretsManager { secret_id, .. } => write!(f, "aws-sm://{secret_id}"),
            Self::AzureKeyVault { vault, name } => write!(f, "azure-kv://{vault}/{name}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_forms_parse_and_print_back() {
        for text in [
            "vault://secret/acme/openai#api_key",
            "aws-sm://prod/acme/openai",
            "aws-sm://arn:aws:secretsmanager:eu-west-1:123456789012:secret:acme-AbCdEf#key",
            "azure-kv://acme-keys/openai-key",
        ] {
            assert_eq!(SecretReference::parse(text).unwrap().to_string(), text);
        }
    }

    #[test]
    fn malformed_references_are_refused_with_the_expected_form() {
        for text in [
            "vault://secret/acme/openai",
            "vault://secret#f",
            "vault://secret/../sys#f",
            "vault://secret/a b#f",
            "aws-sm://",
            "aws-sm://name#a/b",
            "aws-sm://arn:aws:secretsmanager:x@evil.example/:1:secret:y",
            "aws-sm://arn:aws:kms:eu-west-1:123456789012:secret:y",
            "aws-sm://no:colons",
            "azure-kv://ab/name",
            "azure-kv://1vault/name",
            "azure-kv://vault--x/name",
            "azure-kv://vault/na_me",
            "s3://bucket/key",
            "sk-not-a-reference",
        ] {
            assert!(SecretReference::parse(text).is_err(), "{text}");
        }
    }
}
