//! A key the provider rejected: the credential is parked (`rejected_by_provider`) — unless it
//! is held by reference and its manager now holds another value, as when a security team
//! writes the new key into Vault / AWS Secrets Manager / Azure Key Vault and then revokes the
//! old one at the provider. Then the call is retried once on the new value and the credential
//! stays `active`.
//!
//! Invariants:
//! - A credential is marked only when the provider refused the secret it holds now: a sealed
//!   secret not rotated meanwhile (the store compares the blob), or a reference whose manager
//!   still holds the refused value, or whose fresh value was refused too.
//! - A manager that cannot be read during the refetch (down, empty or malformed value, a
//!   field gone) fails the call with `credential_unreadable` naming the reference; the
//!   credential is not parked on the strength of a failed read.
//! - One fetch per reference serves every call rejected at once
//!   (`SecretResolver::refetch_since`), so a rotation under load costs the manager one request.
//! - The retry is an upstream call of its own: its own ledger row, linked to the request's
//!   first row by `fallback_of`.
//! - Every refetch is in the audit log with ids only (no value, no digest).

use std::time::Instant;

use keyward_core::RequestId;
use subtle::ConstantTimeEq;

use super::attempt::{secret_digest, AttemptResult, AttemptRow, OpenedTarget, Sent, UsedSecret};
use super::targets::Attempt;
use super::Call;
use crate::credential::Freshness;
use crate::{ActorName, DomainError, Keyward};

impl Keyward {
    /// Decides what a rejection of `used` means for the credential, retrying once on a value
    /// its manager holds now.
    pub(super) async fn key_rejected(
        &self,
        call: &Call,
        attempt: &Attempt,
        row: AttemptRow,
        used: UsedSecret,
    ) -> Result<AttemptResult, DomainError> {
        let credential = &attempt.credential;
        let Some(used_digest) = used.digest else {
            self.mark_rejected(credential, used.sealed.as_ref()).await;
            return Ok(rejected(attempt));
        };
        let refetch_started = Instant::now();
        let refetched = match self
            .open_credential_record(
                credential.clone(),
                Freshness::RefetchSince(used.obtained_at),
            )
            .await
        {
            Ok(refetched) => refetched,
            // Logged where it was created, naming the reference; the credential stays active.
            Err(unreadable) => return Ok(AttemptResult::Failed(unreadable)),
        };
        let changed = refetched
            .secret
            .as_ref()
            .is_some_and(|secret| !bool::from(secret_digest(secret).ct_eq(&used_digest)));
        self.append_audit(
            Some(credential.tenant_id),
            ActorName::System,
            "credential.reference_refetched",
            &credential.id.to_string(),
            "ok",
            serde_json::json!({"request_id": row.request_id.to_string(), "value_changed": changed}),
        )
        .await;
        if !changed {
            tracing::warn!(credential = %credential.id, "the provider rejected the key and its manager still holds the same value");
            self.mark_rejected(credential, None).await;
            return Ok(rejected(attempt));
        }
        tracing::info!(request_id = %row.request_id, credential = %credential.id, "the provider rejected the key; its manager holds a new one, retrying once");
        if call.client_gone() {
            // Nobody waits for an answer: the credential stays active for the next call.
            return Ok(rejected(attempt));
        }
        let retry = AttemptRow {
            request_id: RequestId::generate(),
            fallback_of: Some(row.fallback_of.unwrap_or(row.request_id)),
        };
        let opened = OpenedTarget {
            credential: refetched,
            obtained_at: refetch_started,
        };
        match self.send_once(call, attempt, retry, opened).await? {
            Sent::Answered(result) => Ok(result),
            Sent::KeyRejected(_) => {
                tracing::warn!(credential = %credential.id, "the provider rejected the manager's new value too");
                self.mark_rejected(credential, None).await;
                Ok(rejected(attempt))
            }
        }
    }
}

fn rejected(attempt: &Attempt) -> AttemptResult {
    AttemptResult::Failed(DomainError::ProviderCredentialRejected {
        label: attempt.credential.label.clone(),
    })
}
