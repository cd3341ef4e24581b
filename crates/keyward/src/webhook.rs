//! Delivers alerts to the operator's webhook: one JSON POST per alert, signed with
//! HMAC-SHA256, retried with exponential backoff.
//!
//! Invariants:
//! - Delivery runs on its own task, fed by a bounded queue: a slow or dead receiver never
//!   blocks or fails a model call.
//! - The signature covers the timestamp and the exact body bytes:
//!   `x-keyward-signature: t=UNIX,v1=hex(HMAC-SHA256(secret, "UNIX.BODY"))`, so a receiver
//!   can reject forgeries and replays. The secret is never logged.
//! - A delivery is retried on any transport error or non-2xx answer, at most
//!   [`ATTEMPTS`] times; `x-keyward-delivery` (the alert id) stays the same across retries.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use keyward_core::secret::AdminToken;
use keyward_domain::{Alert, AlertReceiver};
use sha2::Sha256;
use tokio_util::sync::CancellationToken;

/// Tries per alert.
pub const ATTEMPTS: u32 = 5;

pub struct WebhookSender {
    url: String,
    secret: Arc<AdminToken>,
    client: reqwest::Client,
    first_backoff: Duration,
}

/// `t=UNIX,v1=HEX` for `body` sent at `unix`.
pub fn signature(secret: &AdminToken, unix: u64, body: &[u8]) -> String {
    let digest = secret.with_bytes(|key| {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(unix.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes()
    });
    format!("t={unix},v1={}", hex::encode(digest))
}

impl WebhookSender {
    pub fn new(
        url: String,
        secret: Arc<AdminToken>,
        first_backoff: Duration,
    ) -> anyhow::Result<Self> {
        #[expect(
            clippy::disallowed_methods,
            reason = "the operator's own alert endpoint, often internal: no SSRF guard, but no redirects and no proxy either"
        )]
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(Self {
            url,
            secret,
            client,
            first_backoff,
        })
    }

    /// Delivers alerts until the queue closes or `stop` is cancelled.
    pub async fn run(self, mut alerts: AlertReceiver, stop: CancellationToken) {
        loop {
            let alert = tokio::select! {
                () = stop.cancelled() => return,
                alert = alerts.recv() => match alert {
                    Some(alert) => alert,
                    None => return,
                },
            };
            tokio::select! {
                () = stop.cancelled() => return,
                () = self.deliver(&alert) => {}
            }
        }
    }

    async fn deliver(&self, alert: &Alert) {
        let Ok(body) = serde_json::to_vec(alert) else {
            return;
        };
        let mut backoff = self.first_backoff;
        for attempt in 1..=ATTEMPTS {
            let unix = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.as_secs());
            let sent = self
                .client
                .post(&self.url)
                .header("content-type", "application/json")
                .header("x-keyward-event", alert.event)
                .header("x-keyward-delivery", &alert.id)
                .header("x-keyward-signature", signature(&self.secret, unix, &body))
                .body(body.clone())
                .send()
                .await;
            match sent {
                Ok(response) if response.status().is_success() => {
                    tracing::info!(event = alert.event, delivery = %alert.id, attempt, "alert delivered");
                    return;
                }
                Ok(response) => {
                    tracing::warn!(event = alert.event, delivery = %alert.id, attempt, status = response.status().as_u16(), "alert webhook refused the delivery");
                }
                Err(err) => {
                    tracing::warn!(event = alert.event, delivery = %alert.id, attempt, error = %err.without_url(), "alert webhook unreachable");
                }
            }
            if attempt < ATTEMPTS {
                tokio::time::sleep(backoff).await;
                backoff = backoff.saturating_mul(2);
            }
        }
        tracing::error!(event = alert.event, delivery = %alert.id, "alert not delivered after {ATTEMPTS} attempts; it remains in the audit log");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Computed independently: python3 -c "import hmac,hashlib;
        // print(hmac.new(b'Jefe',b'1.what do ya want for nothing?',hashlib.sha256).hexdigest())"
        let secret = AdminToken::new("Jefe".to_owned());
        assert_eq!(
            signature(&secret, 1, b"what do ya want for nothing?"),
            "t=1,v1=a9049465ce89cfb8e9aac62333abda66f80e3403f51f57f6bae3c3a4485eca38"
        );
        assert_ne!(
            signature(&secret, 2, b"what do ya want for nothing?"),
            "t=2,v1=a9049465ce89cfb8e9aac62333abda66f80e3403f51f57f6bae3c3a4485eca38"
        );
    }
}
