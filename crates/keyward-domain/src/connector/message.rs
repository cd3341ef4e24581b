//! An incoming chat request: verified, mapped to the user's department, answered from the
//! department's knowledge bases on the tenant's key.
//!
//! Invariants: nothing of the body is read before the token verified, and nothing of it is
//! logged; no model call for a request that failed a check, a user in no department, an
//! event that is not a message, or a replay.

use std::collections::BTreeMap;

use keyward_connectors::activity::GoogleChatEvent;
use keyward_connectors::verify::{self, VerifyError};
use keyward_core::{BodyText, RequestId};
use keyward_router::{ClientHeaders, PromptBody, Surface};
use keyward_store::ConnectorRecord;
use sha2::{Digest, Sha256};

use crate::inference::{Caller, KnowledgeRequest};
use crate::{CallContext, DomainError, InferenceReply, Keyward};

/// The channel label of Google Chat.
const GOOGLE_CHAT: &str = "google-chat";
/// What a person in no department is told.
pub(crate) const NO_DEPARTMENT: &str = "You are not set up to use this assistant yet: ask your administrator to add you to a department.";

/// What someone who sent no words is told.
pub(crate) const NO_QUESTION: &str =
    "Ask me a question in words, and I will answer from your department's documents.";
/// What someone is told when the answer failed for a reason they cannot act on.
pub(crate) const FAILED: &str = "The assistant could not answer right now; try again later.";

/// What goes back to the platform.
pub enum ChatAnswer {
    /// A reply in the conversation.
    Text(BodyText),
    /// Acknowledged, nothing to say (an event that is not a question).
    Nothing,
}

/// Why a request was not answered.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorRefusal {
    #[error("no such connector")]
    NotFound,
    #[error("the connector is disabled")]
    Disabled,
    #[error("the request's token was refused: {0}")]
    Unverified(VerifyError),
    #[error("the chat platform's signing keys cannot be fetched; the request was refused")]
    KeysUnavailable,
    #[error("the request body is not a {0}")]
    Malformed(&'static str),
    #[error(transparent)]
    Domain(#[from] DomainError),
}

/// The `end_user` tag: a stable hash of the identity, never the identity.
fn end_user(connector: &ConnectorRecord, identity: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(b"keyward end_user v1\0");
    hash.update(connector.tenant_id.to_string().as_bytes());
    hash.update([0]);
    hash.update(identity.as_bytes());
    hex::encode(&hash.finalize()[..12])
}

/// A person-readable reply for an error they can act on.
fn readable(error: &DomainError) -> Option<&'static str> {
    Some(match error {
        DomainError::BudgetExceeded(_) => {
            "Your department's budget for the assistant is used up; ask your administrator."
        }
        DomainError::ProviderCredentialRejected { .. } | DomainError::CredentialDisabled { .. } => {
            "The assistant's model access is not working right now; ask your administrator."
        }
        DomainError::ModelNotAllowed { .. } | DomainError::ModelUnpriced { .. } => {
            "Your department may not use the assistant's model; ask your administrator."
        }
        DomainError::RateLimited(_) => "Too many questions at once; try again in a minute.",
        _ => return None,
    })
}

impl Keyward {
    /// `POST /connectors/{id}/messages` from Google Chat.
    pub(crate) async fn google_chat_message(
        &self,
        connector: ConnectorRecord,
        bearer: Option<&str>,
        body: &[u8],
    ) -> Result<ChatAnswer, ConnectorRefusal> {
        let refuse = |reason: &'static str, refusal: ConnectorRefusal| {
            self.metrics.record_connector_refused(GOOGLE_CHAT, reason);
            refusal
        };
        let token = bearer.ok_or_else(|| {
            refuse(
                "missing",
                ConnectorRefusal::Unverified(VerifyError::Missing),
            )
        })?;
        let kid = verify::key_id(token)
            .map_err(|err| refuse(err.reason(), ConnectorRefusal::Unverified(err)))?;
        let keys = self
            .google_chat_keys(&kid)
            .await
            .map_err(|refusal| refuse("keys_unavailable", refusal))?;
        verify::google_chat(token, &keys, &connector.app_id)
            .map_err(|err| refuse(err.reason(), ConnectorRefusal::Unverified(err)))?;
        if !connector.active {
            return Err(refuse("disabled", ConnectorRefusal::Disabled));
        }
        let event = GoogleChatEvent::parse(body)
            .map_err(|_| ConnectorRefusal::Malformed("Google Chat event"))?;
        if event.kind != "MESSAGE" {
            return Ok(ChatAnswer::Nothing);
        }
        let Some(identity) = event.identity else {
            return Ok(ChatAnswer::Text(BodyText::new(NO_DEPARTMENT.to_owned())));
        };
        let Some(question) = event.question else {
            return Ok(ChatAnswer::Text(BodyText::new(
                "Ask me a question in words, and I will answer from your department's documents."
                    .to_owned(),
            )));
        };
        Ok(ChatAnswer::Text(
            self.answer(&connector, GOOGLE_CHAT, &identity, question)
                .await?,
        ))
    }

    /// Answers `question` for `identity` with the connector's model and the department's
    /// knowledge bases, citing the documents by name.
    pub(crate) async fn answer(
        &self,
        connector: &ConnectorRecord,
        channel: &'static str,
        identity: &str,
        question: BodyText,
    ) -> Result<BodyText, ConnectorRefusal> {
        let tenant = connector.tenant_id;
        let Some(department) = self.member_department(tenant, identity).await? else {
            let details =
                serde_json::json!({"channel": channel, "end_user": end_user(connector, identity)});
            self.append_audit(
                Some(tenant),
                crate::ActorName::System,
                "connector.unknown_user",
                &connector.id.to_string(),
                "refused",
                details,
            )
            .await;
            return Ok(BodyText::new(NO_DEPARTMENT.to_owned()));
        };
        let department_models = self
            .store
            .department(tenant, department)
            .await
            .map_err(DomainError::from)?
            .and_then(|department| department.models);
        let caller = Caller::keyless(tenant, Some(department), department_models, false);
        let knowledge = self.connector_knowledge(connector, department).await?;
        let tags = BTreeMap::from([
            ("connector".to_owned(), connector.name.clone()),
            ("channel".to_owned(), channel.to_owned()),
            ("end_user".to_owned(), end_user(connector, identity)),
        ]);
        let context = CallContext {
            request_id: RequestId::generate(),
            tags,
            client_headers: ClientHeaders::default(),
            knowledge,
        };
        let prompt = PromptBody::chat_request(&connector.model, &question);
        match self
            .infer_for(caller, Surface::ChatCompletions, prompt, context)
            .await
        {
            Ok(reply) => Ok(reply_text(reply)),
            Err(error) => match readable(&error) {
                Some(text) => Ok(BodyText::new(text.to_owned())),
                None => Err(error.into()),
            },
        }
    }

    /// The knowledge bases a question of `department` is searched in: the connector's when the
    /// department owns it, else all of the department's; never another department's.
    async fn connector_knowledge(
        &self,
        connector: &ConnectorRecord,
        department: keyward_core::DepartmentId,
    ) -> Result<Option<KnowledgeRequest>, ConnectorRefusal> {
        let owned = self
            .store
            .knowledge_bases(connector.tenant_id, Some(department))
            .await
            .map_err(DomainError::from)?;
        let chosen: Vec<String> = match connector.knowledge_base_id {
            Some(kb) if owned.iter().any(|record| record.id == kb) => vec![kb.to_string()],
            _ => owned
                .iter()
                .take(8)
                .map(|record| record.id.to_string())
                .collect(),
        };
        Ok((!chosen.is_empty()).then_some(KnowledgeRequest {
            knowledge_bases: chosen,
            top_k: 5,
        }))
    }
}

/// The model's answer, with the cited documents' names in the chat's formatting.
fn reply_text(reply: InferenceReply) -> BodyText {
    let citations = reply.citations().map(|citations| {
        citations
            .documents
            .iter()
            .enumerate()
            .map(|(index, name)| format!("[{}] {}", index + 1, name.expose()))
            .collect::<Vec<_>>()
            .join("\n")
    });
    let text = match reply {
        InferenceReply::Complete {
            status: 200, body, ..
        } => body.assistant_text(),
        _ => None,
    };
    let mut answer = text.map_or_else(|| FAILED.to_owned(), |text| text.expose().to_owned());
    if let Some(sources) = citations.filter(|sources| !sources.is_empty()) {
        answer.push_str("\n\n*Sources*\n");
        answer.push_str(&sources);
    }
    BodyText::new(answer)
}
