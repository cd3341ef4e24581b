//! A Teams message: verified as Bot Framework documents it, answered asynchronously — `202` at
//! once, then the answer posted to the activity's `serviceUrl` with a client-credentials token
//! of the connector's own app (cached until shortly before it expires).
//!
//! Invariants: a `serviceUrl` whose host is not allow-listed is refused like a forged request
//! and never receives anything; an activity id is answered once (replays are acknowledged with
//! no model call); the app password is opened only for the token request.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use keyward_connectors::activity::TeamsActivity;
use keyward_connectors::verify::{self, VerifyError};
use keyward_core::secret::ProviderSecret;
use keyward_core::{BodyText, ConnectorId, Timestamp};
use keyward_store::{ConnectorKind, ConnectorRecord};
use keyward_vault::RowBinding;
use tokio::sync::Mutex;

use super::message::ConnectorRefusal;
use crate::{DomainError, Keyward};

/// The channel label of Teams.
const TEAMS: &str = "teams";
/// The scope of a token to call the Bot Connector.
const BOT_SCOPE: &str = "https://api.botframework.com/.default";
/// A token is renewed this long before it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(120);
/// The sealed field of a connector's app password.
pub(crate) const APP_SECRET_FIELD: &str = "connector.app_secret";

/// What Keyward does with a Teams activity.
pub enum TeamsAccepted {
    /// Answered later, by a reply to the conversation (`202`).
    Replying,
    /// Nothing to answer: not a message, no question, or a replay (`200`).
    Acknowledged,
}

/// A connector's token and when to stop using it.
type TokenSlot = Arc<Mutex<Option<(ProviderSecret, Instant)>>>;

/// Tokens of each connector's app, until shortly before they expire. One slot per connector:
/// a fetch holds only its connector's slot (one fetch at a time per app, others unaffected).
#[derive(Default)]
pub(crate) struct TeamsTokens {
    slots: std::sync::Mutex<HashMap<ConnectorId, TokenSlot>>,
}

impl TeamsTokens {
    fn slot(&self, connector: ConnectorId) -> TokenSlot {
        self.slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(connector)
            .or_default()
            .clone()
    }
}

pub(crate) fn app_secret_binding(connector: &ConnectorRecord) -> RowBinding {
    RowBinding {
        tenant: connector.tenant_id,
        record: connector.id.to_string(),
        field: APP_SECRET_FIELD,
    }
}

/// Whether `service_url`'s host is on the allow-list (`host` exact, `*.domain` for subdomains).
pub(crate) fn service_url_allowed(service_url: &str, allow: &[String]) -> bool {
    let Some(host) = url::Url::parse(service_url)
        .ok()
        .and_then(|url| url.host_str().map(str::to_ascii_lowercase))
    else {
        return false;
    };
    allow.iter().any(|allowed| {
        let allowed = allowed.to_ascii_lowercase();
        match allowed.strip_prefix("*.") {
            Some(domain) => host.ends_with(&format!(".{domain}")),
            None => host == allowed,
        }
    })
}

impl Keyward {
    /// `POST /connectors/{id}/messages` from Teams.
    pub async fn teams_message(
        &self,
        connector: ConnectorRecord,
        bearer: Option<&str>,
        body: &[u8],
    ) -> Result<TeamsAccepted, ConnectorRefusal> {
        let refuse = |reason: &'static str, refusal: ConnectorRefusal| {
            self.metrics.record_connector_refused(TEAMS, reason);
            refusal
        };
        let activity = TeamsActivity::parse(body).map_err(|_| {
            refuse(
                "malformed",
                ConnectorRefusal::Malformed("Bot Framework activity"),
            )
        })?;
        let token = bearer.ok_or_else(|| {
            refuse(
                "missing",
                ConnectorRefusal::Unverified(VerifyError::Missing),
            )
        })?;
        let kid = verify::key_id(token)
            .map_err(|err| refuse(err.reason(), ConnectorRefusal::Unverified(err)))?;
        let keys = self
            .teams_keys(&kid)
            .await
            .map_err(|refusal| refuse("keys_unavailable", refusal))?;
        verify::teams(
            token,
            &keys,
            &connector.app_id,
            &activity.channel_id,
            &activity.service_url,
        )
        .map_err(|err| refuse(err.reason(), ConnectorRefusal::Unverified(err)))?;
        if !service_url_allowed(
            &activity.service_url,
            &self.connectors.teams_service_url_allow,
        ) {
            return Err(refuse(
                "service_url_not_allowed",
                ConnectorRefusal::Unverified(VerifyError::ServiceUrl),
            ));
        }
        if !connector.active {
            return Err(refuse("disabled", ConnectorRefusal::Disabled));
        }
        if activity.kind != "message" {
            return Ok(TeamsAccepted::Acknowledged);
        }
        let first = self
            .store
            .record_activity(connector.id, &activity.id, Timestamp::now())
            .await
            .map_err(DomainError::from)?;
        if !first {
            self.metrics.record_connector_refused(TEAMS, "replay");
            return Ok(TeamsAccepted::Acknowledged);
        }
        let keyward = self.clone();
        self.tasks
            .spawn(async move { keyward.reply_in_teams(connector, activity).await });
        Ok(TeamsAccepted::Replying)
    }

    /// Answers the activity and posts the answer to its conversation.
    async fn reply_in_teams(&self, connector: ConnectorRecord, activity: TeamsActivity) {
        let text = match (&activity.identity, activity.question) {
            (None, _) => BodyText::new(super::message::NO_DEPARTMENT.to_owned()),
            (Some(_), None) => BodyText::new(super::message::NO_QUESTION.to_owned()),
            (Some(identity), Some(question)) => {
                match self.answer(&connector, TEAMS, identity, question).await {
                    Ok(text) => text,
                    Err(err) => {
                        tracing::error!(connector = %connector.id, error = %err, "a Teams question could not be answered");
                        BodyText::new(super::message::FAILED.to_owned())
                    }
                }
            }
        };
        let url = format!(
            "{}/v3/conversations/{}/activities/{}",
            activity.service_url.trim_end_matches('/'),
            utf8_percent(&activity.conversation_id),
            utf8_percent(&activity.id)
        );
        let token = match self.teams_token(&connector).await {
            Ok(token) => token,
            Err(err) => {
                tracing::error!(connector = %connector.id, error = %err, "no token for the Teams app; the reply was not sent");
                return;
            }
        };
        let to = keyward_router::platform::ReplyTo {
            activity_id: &activity.id,
            conversation_id: &activity.conversation_id,
            bot_id: activity.recipient_id.as_deref(),
            user_id: activity.from_id.as_deref(),
        };
        match self.router.post_chat_reply(&url, &token, &to, &text).await {
            Ok(status) if (200..300).contains(&status) => {}
            Ok(status) => {
                tracing::warn!(connector = %connector.id, status, "Teams refused the reply")
            }
            Err(err) => {
                tracing::warn!(connector = %connector.id, error = %err, "the reply could not be sent to Teams")
            }
        }
    }

    /// The Teams app password: opened from its sealed row, or fetched from the key manager its
    /// reference names (cached at most `secrets.cache_ttl`, like a credential's).
    async fn teams_app_password(
        &self,
        connector: &ConnectorRecord,
    ) -> Result<ProviderSecret, DomainError> {
        if let Some(sealed) = &connector.secret {
            return Ok(self
                .vault
                .open_secret(sealed, &app_secret_binding(connector))
                .await?);
        }
        let Some(text) = connector.secret_ref.as_deref() else {
            return Err(DomainError::invalid(
                "app_secret",
                "the Teams connector has no app password; create it again with `app_secret` or `app_secret_ref`",
            ));
        };
        let unreadable = |detail: String| {
            tracing::error!(connector = %connector.id, reference = text, error = %detail, "the Teams app password cannot be fetched");
            DomainError::invalid(
                "app_secret_ref",
                format!("the Teams app password at {text} cannot be read; the operator has the details in the logs"),
            )
        };
        let reference = keyward_custody::SecretReference::parse(text)
            .map_err(|err| unreadable(err.to_string()))?;
        let value = self
            .secrets
            .resolve(&reference, false)
            .await
            .map_err(|err| unreadable(err.to_string()))?;
        Ok(ProviderSecret::new(value.as_str().to_owned()))
    }

    /// A Bot Connector token for the connector's app, from the cache or the token endpoint.
    async fn teams_token(
        &self,
        connector: &ConnectorRecord,
    ) -> Result<ProviderSecret, DomainError> {
        let slot = self.teams_tokens.slot(connector.id);
        let mut cached = slot.lock().await;
        if let Some((token, until)) = cached.as_ref() {
            if Instant::now() < *until {
                return Ok(ProviderSecret::new(token.expose_secret().to_owned()));
            }
        }
        let secret = self.teams_app_password(connector).await?;
        // A single-tenant bot's token comes from its own tenant; a multi-tenant bot's from
        // Bot Framework's.
        let token_url = match &connector.app_tenant_id {
            Some(tenant) => self
                .connectors
                .teams_tenant_token_url
                .replace("{tenant}", tenant),
            None => self.connectors.teams_token_url.clone(),
        };
        let (status, body) = self
            .router
            .request_token(&token_url, &connector.app_id, &secret, BOT_SCOPE)
            .await?;
        drop(secret);
        let answer: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let token = answer
            .get("access_token")
            .and_then(serde_json::Value::as_str);
        if status != 200 {
            // A password changed in its manager is read again for the next token.
            if let Some(reference) = connector
                .secret_ref
                .as_deref()
                .and_then(|text| keyward_custody::SecretReference::parse(text).ok())
            {
                self.secrets.forget(&reference).await;
            }
        }
        let (200, Some(token)) = (status, token) else {
            return Err(DomainError::UpstreamFailed {
                status,
                label: format!("Teams token endpoint for connector {}", connector.name),
            });
        };
        let lifetime = answer
            .get("expires_in")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(3600);
        let until = Instant::now() + Duration::from_secs(lifetime).saturating_sub(TOKEN_MARGIN);
        *cached = Some((ProviderSecret::new(token.to_owned()), until));
        Ok(ProviderSecret::new(token.to_owned()))
    }

    /// Routes a verified request by the connector's kind.
    pub async fn connector_message(
        &self,
        id: &str,
        bearer: Option<&str>,
        body: &[u8],
    ) -> Result<super::ChatResponse, ConnectorRefusal> {
        let connector = match id.parse::<ConnectorId>() {
            Ok(id) => self.store.connector(id).await.map_err(DomainError::from)?,
            Err(_) => None,
        };
        let Some(connector) = connector else {
            self.metrics
                .record_connector_refused("unknown", "unknown_connector");
            return Err(ConnectorRefusal::NotFound);
        };
        match connector.kind {
            ConnectorKind::GoogleChat => self
                .google_chat_message(connector, bearer, body)
                .await
                .map(super::ChatResponse::GoogleChat),
            ConnectorKind::Teams => self
                .teams_message(connector, bearer, body)
                .await
                .map(super::ChatResponse::Teams),
        }
    }
}

/// Percent-encodes an id for a URL path segment (conversation ids contain `:` and `;`).
fn utf8_percent(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}
