//! What Keyward reads from a platform's request: a Bot Framework activity (Teams) or a Google
//! Chat interaction event. Only the fields the answer needs are read; the message text becomes
//! `BodyText` at once.

use keyward_core::BodyText;
use serde::Deserialize;
use serde_json::Value;

/// A request body that is not the platform's documented shape.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ActivityError {
    #[error("the body is not a {what} (JSON with `{field}`)")]
    Shape {
        what: &'static str,
        field: &'static str,
    },
}

/// A Bot Framework activity.
pub struct TeamsActivity {
    /// `message`, `conversationUpdate`, `typing`, `messageReaction`, …
    pub kind: String,
    pub id: String,
    pub channel_id: String,
    pub service_url: String,
    pub conversation_id: String,
    /// The sender's channel id (`from.id`) and the bot's (`recipient.id`), for the reply.
    pub from_id: Option<String>,
    pub recipient_id: Option<String>,
    /// `aad:{channelData.tenant.id}/{from.aadObjectId}` when both are present.
    pub identity: Option<String>,
    /// The message text without `<at>` mentions, if any text is left.
    pub question: Option<BodyText>,
}

/// A Google Chat interaction event.
pub struct GoogleChatEvent {
    /// `MESSAGE`, `ADDED_TO_SPACE`, `REMOVED_FROM_SPACE`, `CARD_CLICKED`, …
    pub kind: String,
    /// `email:{user.email}`.
    pub identity: Option<String>,
    /// `message.argumentText` (the text without the app's mention), else `message.text`.
    pub question: Option<BodyText>,
}

fn text_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(value, |value, key| value.get(key))
        .and_then(Value::as_str)
}

/// Removes `<at>…</at>` mentions (Teams puts the bot's name in the text that way).
fn without_mentions(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("<at>") {
        out.push_str(&rest[..start]);
        match rest[start..].find("</at>") {
            Some(end) => rest = &rest[start + end + "</at>".len()..],
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

fn question(text: Option<&str>) -> Option<BodyText> {
    let text = BodyText::new(text?.trim().to_owned());
    (!text.is_blank()).then_some(text)
}

impl TeamsActivity {
    pub fn parse(body: &[u8]) -> Result<Self, ActivityError> {
        let shape = |field| ActivityError::Shape {
            what: "Bot Framework activity",
            field,
        };
        let value: Value = serde_json::from_slice(body).map_err(|_| shape("type"))?;
        let field = |path: &[&str], name: &'static str| {
            text_at(&value, path)
                .map(str::to_owned)
                .ok_or_else(|| shape(name))
        };
        let identity = match (
            text_at(&value, &["channelData", "tenant", "id"]),
            text_at(&value, &["from", "aadObjectId"]),
        ) {
            (Some(tenant), Some(object)) => Some(format!("aad:{tenant}/{object}")),
            _ => None,
        };
        let question = question(text_at(&value, &["text"]).map(without_mentions).as_deref());
        Ok(Self {
            kind: field(&["type"], "type")?,
            id: field(&["id"], "id")?,
            channel_id: field(&["channelId"], "channelId")?,
            service_url: field(&["serviceUrl"], "serviceUrl")?,
            conversation_id: field(&["conversation", "id"], "conversation.id")?,
            from_id: text_at(&value, &["from", "id"]).map(str::to_owned),
            recipient_id: text_at(&value, &["recipient", "id"]).map(str::to_owned),
            identity,
            question,
        })
    }
}

#[derive(Deserialize)]
struct RawEvent {
    #[serde(rename = "type")]
    kind: Option<String>,
}

impl GoogleChatEvent {
    pub fn parse(body: &[u8]) -> Result<Self, ActivityError> {
        let shape = |field| ActivityError::Shape {
            what: "Google Chat event",
            field,
        };
        let value: Value = serde_json::from_slice(body).map_err(|_| shape("type"))?;
        let raw: RawEvent = serde_json::from_value(value.clone()).map_err(|_| shape("type"))?;
        let kind = raw.kind.ok_or_else(|| shape("type"))?;
        let identity = text_at(&value, &["user", "email"])
            .map(|email| format!("email:{}", email.to_ascii_lowercase()));
        let text = text_at(&value, &["message", "argumentText"])
            .or_else(|| text_at(&value, &["message", "text"]));
        Ok(Self {
            kind,
            identity,
            question: question(text),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_teams_message_gives_identity_and_question_without_mentions() {
        let activity = TeamsActivity::parse(
            br#"{"type":"message","id":"a1","channelId":"msteams",
            "serviceUrl":"https://smba.trafficmanager.net/emea/","conversation":{"id":"c1"},
            "from":{"id":"29:x","aadObjectId":"obj-1"},"channelData":{"tenant":{"id":"ten-1"}},
            "text":"<at>Keyward</at> How long is parental leave?"}"#,
        )
        .unwrap();
        assert_eq!(activity.identity.as_deref(), Some("aad:ten-1/obj-1"));
        assert_eq!(
            activity.question.unwrap().expose(),
            "How long is parental leave?"
        );
        let mention_only = TeamsActivity::parse(
            br#"{"type":"message","id":"a2","channelId":"msteams",
            "serviceUrl":"https://x/","conversation":{"id":"c1"},"text":"<at>Keyward</at> "}"#,
        )
        .unwrap();
        assert!(mention_only.question.is_none());
        assert!(mention_only.identity.is_none());
        assert_eq!(
            TeamsActivity::parse(br#"{"type":"message"}"#).err(),
            Some(ActivityError::Shape {
                what: "Bot Framework activity",
                field: "id"
            })
        );
        assert!(TeamsActivity::parse(b"not json").is_err());
    }

    #[test]
    fn a_google_chat_message_prefers_the_text_without_the_mention() {
        let event = GoogleChatEvent::parse(br#"{"type":"MESSAGE","user":{"email":"Alice@Corp.example"},
            "message":{"text":"@Keyward what is the per diem?","argumentText":" what is the per diem?"}}"#).unwrap();
        assert_eq!(event.identity.as_deref(), Some("email:alice@corp.example"));
        assert_eq!(event.question.unwrap().expose(), "what is the per diem?");
        let added =
            GoogleChatEvent::parse(br#"{"type":"ADDED_TO_SPACE","user":{"email":"a@b.c"}}"#)
                .unwrap();
        assert!(added.question.is_none());
    }
}
