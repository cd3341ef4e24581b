//! `aws-sm://SECRET_ID[#JSON_FIELD]`: `GetSecretValue` (the `AWSCURRENT` version), either the
//! whole `SecretString` or one string field of it when it is a JSON object.

use std::sync::Arc;

use serde::Deserialize;
use zeroize::Zeroizing;

use super::{AwsClient, MANAGER, SECRETS_MANAGER};
use crate::CustodyError;

pub async fn get_secret_string(
    aws: &Arc<AwsClient>,
    secret_id: &str,
) -> Result<Zeroizing<String>, CustodyError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Value {
        secret_string: Option<Zeroizing<String>>,
    }
    let region = aws.region_for(secret_id)?;
    let answer = aws
        .call(
            SECRETS_MANAGER,
            "GetSecretValue",
            &region,
            &serde_json::json!({"SecretId": secret_id}),
        )
        .await?;
    let body = match answer {
        Ok(body) => body,
        Err(fault) => {
            let detail = if fault.message.is_empty() {
                format!(" ({})", fault.kind)
            } else {
                format!(" ({}: {})", fault.kind, fault.message)
            };
            return Err(match fault.kind.as_str() {
                "ResourceNotFoundException" => CustodyError::NotFound {
                    manager: "AWS Secrets Manager",
                    resource: format!("secret {secret_id}"),
                    detail,
                },
                "AccessDeniedException" => CustodyError::Denied {
                    manager: "AWS Secrets Manager",
                    permission: "secretsmanager:GetSecretValue".into(),
                    resource: format!("secret {secret_id}"),
                    detail: format!("{detail}; with a customer-managed KMS key, kms:Decrypt on it is needed too"),
                },
                _ => CustodyError::Refused {
                    manager: "AWS Secrets Manager",
                    action: "secretsmanager:GetSecretValue".into(),
                    resource: format!("secret {secret_id}"),
                    detail: format!("HTTP {}{detail}", fault.status),
                },
            });
        }
    };
    let value: Value = crate::error::decode(
        &body,
        MANAGER,
        "Secrets Manager GetSecretValue",
        "not a JSON object",
    )?;
    value.secret_string.ok_or_else(|| CustodyError::Refused {
        manager: "AWS Secrets Manager",
        action: "secretsmanager:GetSecretValue".into(),
        resource: format!("secret {secret_id}"),
        detail: "the secret holds binary data; store the provider key as a string".into(),
    })
}
