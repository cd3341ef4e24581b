//! The chat platforms' signing keys, fetched through the egress guard and kept in memory:
//! refreshed after an hour, or at once for a key id the cached set lacks — but at most every
//! thirty seconds, so forged key ids cannot make Keyward hammer the platform. A set that cannot
//! be fetched fails closed (no request is accepted without a published key).

use std::sync::Arc;
use std::time::{Duration, Instant};

use keyward_connectors::KeySet;
use tokio::sync::Mutex;

use super::message::ConnectorRefusal;
use crate::Keyward;

const MAX_AGE: Duration = Duration::from_secs(3600);
const MIN_REFRESH: Duration = Duration::from_secs(30);

struct Cached {
    keys: Arc<KeySet>,
    fetched: Instant,
}

/// The keys of each platform.
#[derive(Default)]
pub(crate) struct PlatformKeys {
    google_chat: Mutex<Option<Cached>>,
}

impl Keyward {
    /// Google Chat's keys, fresh enough to hold `kid` if the platform publishes it.
    pub(crate) async fn google_chat_keys(
        &self,
        kid: &str,
    ) -> Result<Arc<KeySet>, ConnectorRefusal> {
        let mut cached = self.platform_keys.google_chat.lock().await;
        if let Some(current) = cached.as_ref() {
            let age = current.fetched.elapsed();
            let usable = age < MAX_AGE && (current.keys.get(kid).is_some() || age < MIN_REFRESH);
            if usable {
                return Ok(current.keys.clone());
            }
        }
        let url = &self.connectors.google_chat_certs_url;
        let fetched = match self.router.fetch_document(url).await {
            Ok((200, body)) => KeySet::from_x509_map(&body).map_err(|err| {
                tracing::error!(url = %url, error = %err, "Google Chat's certificates cannot be read; requests are refused");
                ConnectorRefusal::KeysUnavailable
            }),
            Ok((status, _)) => {
                tracing::error!(url = %url, status, "Google Chat's certificates cannot be fetched; requests are refused");
                Err(ConnectorRefusal::KeysUnavailable)
            }
            Err(err) => {
                tracing::error!(url = %url, error = %err, "Google Chat's certificates cannot be fetched; requests are refused");
                Err(ConnectorRefusal::KeysUnavailable)
            }
        };
        match fetched {
            Ok(keys) => {
                let keys = Arc::new(keys);
                *cached = Some(Cached {
                    keys: keys.clone(),
                    fetched: Instant::now(),
                });
                Ok(keys)
            }
            // A set fetched recently enough still verifies what it can.
            Err(refusal) => match cached.as_ref() {
                Some(current) if current.fetched.elapsed() < MAX_AGE * 24 => {
                    Ok(current.keys.clone())
                }
                _ => Err(refusal),
            },
        }
    }
}
