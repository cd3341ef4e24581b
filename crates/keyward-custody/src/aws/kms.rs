//! `aws-kms:KEY_ID`: data keys from KMS `GenerateDataKey` (AES-256), unwrapped with `Decrypt`,
//! both under the encryption context of [`WrapContext`] — KMS refuses to decrypt with any
//! other context, so a wrapped key is bound to this deployment and version.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use keyward_core::secret::MasterKeyMaterial;
use keyward_vault::{KeyWrapper, NewDataKey, SourceFuture, VaultError, WrapContext};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::{AwsClient, AwsFault, KMS, MANAGER};
use crate::CustodyError;

#[derive(Debug)]
pub struct KmsWrapper {
    aws: Arc<AwsClient>,
    key_id: String,
}

impl KmsWrapper {
    pub fn new(aws: Arc<AwsClient>, key_id: impl Into<String>) -> Self {
        Self {
            aws,
            key_id: key_id.into(),
        }
    }

    fn vault_error(&self, err: CustodyError) -> VaultError {
        err.at_source(self.location())
    }

    fn fault(
        &self,
        permission: &str,
        version: keyward_core::KeyVersion,
        fault: AwsFault,
    ) -> CustodyError {
        let key = &self.key_id;
        let detail = if fault.message.is_empty() {
            format!(" ({})", fault.kind)
        } else {
            format!(" ({}: {})", fault.kind, fault.message)
        };
        match fault.kind.as_str() {
            "AccessDeniedException" => CustodyError::Denied {
                manager: "AWS KMS",
                permission: permission.to_owned(),
                resource: format!("key {key} (master key version {version})"),
                detail: format!("{detail}; if the permission is granted, the data key was wrapped under another KMS key"),
            },
            "NotFoundException" => CustodyError::NotFound {
                manager: "AWS KMS",
                resource: format!("key {key}"),
                detail: format!("{detail}; check the key id, alias and region"),
            },
            "DisabledException" | "KMSInvalidStateException" => CustodyError::Refused {
                manager: "AWS KMS",
                action: permission.to_owned(),
                resource: format!("key {key}"),
                detail: format!("the key is disabled or pending deletion{detail}; enable it (cancel the deletion) to let Keyward start"),
            },
            "InvalidCiphertextException" | "IncorrectKeyException" => CustodyError::Refused {
                manager: "AWS KMS",
                action: permission.to_owned(),
                resource: format!("the data key of master key version {version}"),
                detail: format!("it was not wrapped by key {key} for this deployment and version{detail}; the database may come from another deployment, or the wrapped key was altered"),
            },
            _ => CustodyError::Refused {
                manager: "AWS KMS",
                action: permission.to_owned(),
                resource: format!("key {key}"),
                detail: format!("HTTP {}{detail}", fault.status),
            },
        }
    }

    async fn call<T: for<'de> Deserialize<'de>>(
        &self,
        operation: &str,
        permission: &str,
        version: keyward_core::KeyVersion,
        body: serde_json::Value,
    ) -> Result<T, CustodyError> {
        let region = self.aws.region_for(&self.key_id)?;
        match self.aws.call(KMS, operation, &region, &body).await? {
            Ok(answer) => crate::error::decode(
                &answer,
                MANAGER,
                format!("KMS {operation}"),
                "missing or mistyped fields",
            ),
            Err(fault) => Err(self.fault(permission, version, fault)),
        }
    }
}

fn context_map(context: &WrapContext) -> BTreeMap<&'static str, String> {
    context.pairs().into_iter().collect()
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Plaintext {
    plaintext: Zeroizing<String>,
}

fn material(plaintext: &Plaintext) -> Option<MasterKeyMaterial> {
    let bytes = Zeroizing::new(STANDARD.decode(plaintext.plaintext.as_bytes()).ok()?);
    let array: [u8; 32] = bytes.as_slice().try_into().ok()?;
    Some(MasterKeyMaterial::new(Box::new(array)))
}

impl KeyWrapper for KmsWrapper {
    fn location(&self) -> String {
        format!("aws-kms:{}", self.key_id)
    }

    fn generate(&self, context: WrapContext) -> SourceFuture<'_, NewDataKey> {
        Box::pin(async move {
            #[derive(Deserialize)]
            #[serde(rename_all = "PascalCase")]
            struct Generated {
                ciphertext_blob: String,
                #[serde(flatten)]
                plaintext: Plaintext,
            }
            let generated: Generated = self
                .call(
                    "GenerateDataKey",
                    "kms:GenerateDataKey",
                    context.version,
                    serde_json::json!({
                        "KeyId": self.key_id,
                        "KeySpec": "AES_256",
                        "EncryptionContext": context_map(&context),
                    }),
                )
                .await
                .map_err(|err| self.vault_error(err))?;
            let material = material(&generated.plaintext).ok_or_else(|| {
                self.vault_error(CustodyError::Malformed {
                    manager: MANAGER,
                    action: "KMS GenerateDataKey".into(),
                    reason: "Plaintext is not 32 bytes of base64".into(),
                })
            })?;
            Ok(NewDataKey {
                material,
                wrapped: generated.ciphertext_blob,
            })
        })
    }

    fn unwrap(&self, wrapped: String, context: WrapContext) -> SourceFuture<'_, MasterKeyMaterial> {
        Box::pin(async move {
            let opened: Plaintext = self
                .call(
                    "Decrypt",
                    "kms:Decrypt",
                    context.version,
                    serde_json::json!({
                        "CiphertextBlob": wrapped,
                        "KeyId": self.key_id,
                        "EncryptionContext": context_map(&context),
                    }),
                )
                .await
                .map_err(|err| self.vault_error(err))?;
            material(&opened).ok_or_else(|| {
                self.vault_error(CustodyError::Malformed {
                    manager: MANAGER,
                    action: "KMS Decrypt".into(),
                    reason: "Plaintext is not 32 bytes of base64".into(),
                })
            })
        })
    }
}
