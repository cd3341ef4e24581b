//! Chat platforms: the documents a connector fetches (OpenID metadata, signing keys), the
//! token requests and replies it sends, the question turned into a chat request, and the
//! answer's text read back. Every fetch passes
//! the egress guard and the response-size limit like a provider call.

use keyward_core::secret::ProviderSecret;
use keyward_core::BodyText;
use serde_json::{json, Map, Value};

use crate::{CompletionBody, PromptBody, Router, RouterError};

impl Router {
    /// `GET url` through the egress guard: the status and the (bounded) body.
    pub async fn fetch_document(&self, url: &str) -> Result<(u16, Vec<u8>), RouterError> {
        let url = platform_url(url)?;
        self.egress.check_literal(&url)?;
        let request = self.egress.client.get(url);
        let response = self
            .within_first_byte_budget(request.send())
            .await?
            .map_err(|err| self.egress.classify(&err))?;
        let status = response.status().as_u16();
        let body = self.read_bounded(response).await?;
        Ok((status, body.to_vec()))
    }
}

impl Router {
    /// An OAuth client-credentials token request (`POST url`, form-encoded) for `client_id`
    /// with its `secret`: the status and the (bounded) body.
    pub async fn request_token(
        &self,
        url: &str,
        client_id: &str,
        secret: &ProviderSecret,
        scope: &str,
    ) -> Result<(u16, Vec<u8>), RouterError> {
        let url = platform_url(url)?;
        self.egress.check_literal(&url)?;
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "client_credentials")
            .append_pair("client_id", client_id)
            .append_pair("client_secret", secret.expose_secret())
            .append_pair("scope", scope)
            .finish();
        let request = self
            .egress
            .client
            .post(url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(form);
        let response = self
            .within_first_byte_budget(request.send())
            .await?
            .map_err(|err| self.egress.classify(&err))?;
        let status = response.status().as_u16();
        let body = self.read_bounded(response).await?;
        Ok((status, body.to_vec()))
    }

    /// Posts a chat reply (Bot Framework "Send and receive messages": `type`, `text`,
    /// `replyToId`, and `conversation`, `from` = the bot, `recipient` = the user) with a bearer
    /// token; returns the platform's status.
    pub async fn post_chat_reply(
        &self,
        url: &str,
        token: &ProviderSecret,
        to: &ReplyTo<'_>,
        text: &BodyText,
    ) -> Result<u16, RouterError> {
        let url = platform_url(url)?;
        self.egress.check_literal(&url)?;
        let mut body = json!({"type": "message", "textFormat": "markdown", "replyToId": to.activity_id,
                              "conversation": {"id": to.conversation_id}, "text": text.expose()});
        if let Some(bot) = to.bot_id {
            body["from"] = json!({"id": bot});
        }
        if let Some(user) = to.user_id {
            body["recipient"] = json!({"id": user});
        }
        let request = self
            .egress
            .client
            .post(url)
            .bearer_auth(token.expose_secret())
            .json(&body);
        let response = self
            .within_first_byte_budget(request.send())
            .await?
            .map_err(|err| self.egress.classify(&err))?;
        let status = response.status().as_u16();
        // Drain (bounded) so the connection can be reused; the body is not needed.
        let _ = self.read_bounded(response).await;
        Ok(status)
    }
}

/// Who a reply goes to: the activity it answers, its conversation, the bot (the activity's
/// recipient) and the user (its sender).
pub struct ReplyTo<'a> {
    pub activity_id: &'a str,
    pub conversation_id: &'a str,
    pub bot_id: Option<&'a str>,
    pub user_id: Option<&'a str>,
}

fn platform_url(url: &str) -> Result<url::Url, RouterError> {
    url::Url::parse(url).map_err(|_| RouterError::BadBaseUrl {
        reason: "a chat platform's URL is not a URL",
    })
}

impl PromptBody {
    /// An OpenAI-shaped chat request asking `question` of `model`.
    pub fn chat_request(model: &str, question: &BodyText) -> Self {
        let mut body = Map::new();
        body.insert("model".into(), Value::from(model));
        body.insert(
            "messages".into(),
            json!([{"role": "user", "content": question.expose()}]),
        );
        Self::from_json(body)
    }
}

impl CompletionBody {
    /// The assistant's text of an OpenAI-shaped chat completion.
    pub fn assistant_text(&self) -> Option<BodyText> {
        let json: Value = serde_json::from_slice(self.bytes()).ok()?;
        let text = json
            .get("choices")?
            .get(0)?
            .get("message")?
            .get("content")?
            .as_str()?;
        Some(BodyText::new(text.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_question_becomes_a_chat_request_and_the_answer_text_comes_back() {
        let request = PromptBody::chat_request("team/gpt-4o-mini", &BodyText::new("Hi?".into()));
        assert_eq!(request.json()["messages"][0]["content"], "Hi?");
        assert!(request.last_user_text().is_some());
        let answer = CompletionBody::new(bytes::Bytes::from_static(
            br#"{"choices":[{"message":{"role":"assistant","content":"Hello."}}]}"#,
        ));
        assert_eq!(answer.assistant_text().unwrap().expose(), "Hello.");
        assert!(CompletionBody::new(bytes::Bytes::from_static(b"{}"))
            .assistant_text()
            .is_none());
    }
}
