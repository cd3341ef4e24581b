//! The chat platforms' signing keys (Google's certificate map; Bot Framework's JWKS found
//! through its OpenID metadata), fetched through the egress guard and kept in memory:
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
    teams: Mutex<Option<Cached>>,
}

/// Which platform's keys.
#[derive(Clone, Copy)]
enum Platform {
    GoogleChat,
    Teams,
}

impl Keyward {
    /// Google Chat's keys, fresh enough to hold `kid` if the platform publishes it.
    pub(crate) async fn google_chat_keys(
        &self,
        kid: &str,
    ) -> Result<Arc<KeySet>, ConnectorRefusal> {
        self.platform_keys_for(Platform::GoogleChat, kid).await
    }

    /// Bot Framework's keys, fresh enough to hold `kid` if the platform publishes it.
    pub(crate) async fn teams_keys(&self, kid: &str) -> Result<Arc<KeySet>, ConnectorRefusal> {
        self.platform_keys_for(Platform::Teams, kid).await
    }

    async fn platform_keys_for(
        &self,
        platform: Platform,
        kid: &str,
    ) -> Result<Arc<KeySet>, ConnectorRefusal> {
        let slot = match platform {
            Platform::GoogleChat => &self.platform_keys.google_chat,
            Platform::Teams => &self.platform_keys.teams,
        };
        let mut cached = slot.lock().await;
        if let Some(current) = cached.as_ref() {
            let age = current.fetched.elapsed();
            let usable = age < MAX_AGE && (current.keys.get(kid).is_some() || age < MIN_REFRESH);
            if usable {
                return Ok(current.keys.clone());
            }
        }
        match self.fetch_platform_keys(platform).await {
            Ok(keys) => {
                let keys = Arc::new(keys);
                *cached = Some(Cached {
                    keys: keys.clone(),
                    fetched: Instant::now(),
                });
                Ok(keys)
            }
            // A set fetched within a day still verifies what it can.
            Err(refusal) => match cached.as_ref() {
                Some(current) if current.fetched.elapsed() < MAX_AGE * 24 => {
                    Ok(current.keys.clone())
                }
                _ => Err(refusal),
            },
        }
    }

    async fn fetch_platform_keys(&self, platform: Platform) -> Result<KeySet, ConnectorRefusal> {
        match platform {
            Platform::GoogleChat => {
                let body = self
                    .fetch_key_document(&self.connectors.google_chat_certs_url)
                    .await?;
                KeySet::from_x509_map(&body).map_err(|err| unreadable(&err))
            }
            Platform::Teams => {
                let metadata = self
                    .fetch_key_document(&self.connectors.teams_openid_metadata_url)
                    .await?;
                let jwks_uri = keyward_connectors::keys::jwks_uri(&metadata)
                    .map_err(|err| unreadable(&err))?;
                let body = self.fetch_key_document(&jwks_uri).await?;
                KeySet::from_jwks(&body).map_err(|err| unreadable(&err))
            }
        }
    }

    async fn fetch_key_document(&self, url: &str) -> Result<Vec<u8>, ConnectorRefusal> {
        match self.router.fetch_document(url).await {
            Ok((200, body)) => Ok(body),
            Ok((status, _)) => {
                tracing::error!(url = %url, status, "a chat platform's signing keys cannot be fetched; its requests are refused");
                Err(ConnectorRefusal::KeysUnavailable)
            }
            Err(err) => {
                tracing::error!(url = %url, error = %err, "a chat platform's signing keys cannot be fetched; its requests are refused");
                Err(ConnectorRefusal::KeysUnavailable)
            }
        }
    }
}

fn unreadable(err: &keyward_connectors::KeyError) -> ConnectorRefusal {
    tracing::error!(error = %err, "a chat platform's signing keys cannot be read; its requests are refused");
    ConnectorRefusal::KeysUnavailable
}
