//! The router's part in retrieval: an embedding request Keyward builds from chunk text, the
//! vectors read out of the provider's answer, the last user message of a chat request (what a
//! knowledge base is searched for), and the numbered sources added to it as a system message.
//!
//! Invariants:
//! - Text goes in and out as [`BodyText`] only; errors name counts and fields, never text.
//! - Sources added to a request grow its size by their bytes, so budgets reserve for them.

use base64::Engine;
use keyward_core::BodyText;
use serde_json::{Map, Value};

use crate::{CompletionBody, PromptBody, Surface};

/// An embeddings answer that does not have the vectors that were asked for.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EmbeddingShapeError {
    #[error("the provider's embeddings answer is not the OpenAI list shape (`data[].embedding`)")]
    NotAList,
    #[error("the provider returned {got} embeddings for {expected} inputs")]
    Count { expected: usize, got: usize },
    #[error("embedding {index} is not an array of numbers or base64 floats")]
    BadVector { index: usize },
    #[error("embedding {index} has {got} dimensions where the others have {expected}")]
    Dimensions {
        index: usize,
        expected: usize,
        got: usize,
    },
}

impl PromptBody {
    /// An OpenAI-shaped embeddings request for `inputs` (floats, in input order).
    pub fn embeddings_request(model: &str, inputs: &[&BodyText]) -> Self {
        let mut json = Map::new();
        json.insert("model".into(), Value::from(model));
        json.insert(
            "input".into(),
            Value::Array(
                inputs
                    .iter()
                    .map(|input| Value::from(input.expose()))
                    .collect(),
            ),
        );
        json.insert("encoding_format".into(), Value::from("float"));
        Self::from_json(json)
    }

    /// The text of the last user message (text parts joined by newlines), if it has any.
    /// Same shape on chat completions and messages (`messages[]` with `role` and `content`).
    pub fn last_user_text(&self) -> Option<BodyText> {
        let messages = self.json().get("messages")?.as_array()?;
        let last = messages
            .iter()
            .rev()
            .find(|message| message.get("role").and_then(Value::as_str) == Some("user"))?;
        let text = match last.get("content")? {
            Value::String(text) => text.clone(),
            Value::Array(parts) => parts
                .iter()
                .filter(|part| part.get("type").and_then(Value::as_str) == Some("text"))
                .filter_map(|part| part.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("\n"),
            _ => return None,
        };
        let text = BodyText::new(text);
        (!text.is_blank()).then_some(text)
    }

    /// Gives the model `sources`: a system message before the conversation (OpenAI shape), or
    /// appended to `system` (Anthropic shape).
    pub fn add_sources(&mut self, surface: Surface, sources: &BodyText) {
        let added = sources.len() as u64 + 32;
        let json = self.json_mut(added);
        match surface {
            Surface::Messages => {
                let block = serde_json::json!({"type": "text", "text": sources.expose()});
                match json.remove("system") {
                    Some(Value::String(system)) if !system.is_empty() => {
                        let text = format!("{system}\n\n{}", sources.expose());
                        json.insert("system".into(), Value::from(text));
                    }
                    Some(Value::Array(mut blocks)) => {
                        blocks.push(block);
                        json.insert("system".into(), Value::Array(blocks));
                    }
                    _ => {
                        json.insert("system".into(), Value::from(sources.expose()));
                    }
                }
            }
            Surface::ChatCompletions | Surface::Responses | Surface::Embeddings => {
                let message = serde_json::json!({"role": "system", "content": sources.expose()});
                if let Some(Value::Array(messages)) = json.get_mut("messages") {
                    messages.insert(0, message);
                }
            }
        }
    }
}

impl CompletionBody {
    /// The vectors of an OpenAI-shaped embeddings answer, in input order, each checked to be
    /// numbers of one length.
    pub fn embedding_vectors(&self, expected: usize) -> Result<Vec<Vec<f32>>, EmbeddingShapeError> {
        let json: Value =
            serde_json::from_slice(self.bytes()).map_err(|_| EmbeddingShapeError::NotAList)?;
        let data = json
            .get("data")
            .and_then(Value::as_array)
            .ok_or(EmbeddingShapeError::NotAList)?;
        if data.len() != expected {
            return Err(EmbeddingShapeError::Count {
                expected,
                got: data.len(),
            });
        }
        let mut vectors: Vec<Option<Vec<f32>>> = vec![None; expected];
        for (position, item) in data.iter().enumerate() {
            let index = item
                .get("index")
                .and_then(Value::as_u64)
                .and_then(|index| usize::try_from(index).ok())
                .unwrap_or(position);
            let vector = item
                .get("embedding")
                .and_then(decode_vector)
                .ok_or(EmbeddingShapeError::BadVector { index })?;
            match vectors.get_mut(index) {
                Some(slot @ None) => *slot = Some(vector),
                _ => return Err(EmbeddingShapeError::BadVector { index }),
            }
        }
        let vectors: Vec<Vec<f32>> = vectors.into_iter().flatten().collect();
        let dimensions = vectors.first().map_or(0, Vec::len);
        for (index, vector) in vectors.iter().enumerate() {
            if vector.len() != dimensions || dimensions == 0 {
                return Err(EmbeddingShapeError::Dimensions {
                    index,
                    expected: dimensions,
                    got: vector.len(),
                });
            }
        }
        Ok(vectors)
    }
}

/// A vector as a JSON array of numbers, or base64 of little-endian `f32`s.
fn decode_vector(value: &Value) -> Option<Vec<f32>> {
    match value {
        Value::Array(numbers) => numbers
            .iter()
            .map(|number| number.as_f64().map(|number| number as f32))
            .collect(),
        Value::String(encoded) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .ok()?;
            (bytes.len() % 4 == 0).then(|| {
                bytes
                    .chunks_exact(4)
                    .map(|word| f32::from_le_bytes([word[0], word[1], word[2], word[3]]))
                    .collect()
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn body(json: &str) -> CompletionBody {
        CompletionBody::new(Bytes::from(json.to_owned()))
    }

    #[test]
    fn vectors_come_back_in_input_order_and_are_checked() {
        let answer = body(
            r#"{"data":[{"index":1,"embedding":[0.0,1.0]},{"index":0,"embedding":[1.0,0.0]}]}"#,
        );
        assert_eq!(
            answer.embedding_vectors(2).unwrap(),
            vec![vec![1.0, 0.0], vec![0.0, 1.0]]
        );
        assert_eq!(
            answer.embedding_vectors(3),
            Err(EmbeddingShapeError::Count {
                expected: 3,
                got: 2
            })
        );
        let short =
            body(r#"{"data":[{"index":0,"embedding":[1.0,0.0]},{"index":1,"embedding":[1.0]}]}"#);
        assert!(matches!(
            short.embedding_vectors(2),
            Err(EmbeddingShapeError::Dimensions { index: 1, .. })
        ));
        let encoded = base64::engine::general_purpose::STANDARD.encode(
            [1.5f32, -2.0]
                .iter()
                .flat_map(|value| value.to_le_bytes())
                .collect::<Vec<u8>>(),
        );
        let base64 = body(&format!(r#"{{"data":[{{"embedding":"{encoded}"}}]}}"#));
        assert_eq!(base64.embedding_vectors(1).unwrap(), vec![vec![1.5, -2.0]]);
        assert_eq!(
            body("[]").embedding_vectors(1),
            Err(EmbeddingShapeError::NotAList)
        );
    }

    #[test]
    fn sources_join_the_conversation_and_grow_the_reservation() {
        let sources = BodyText::new("[1] doc\\ntext".into());
        let mut chat = PromptBody::parse(
            br#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"q1"}]},{"role":"assistant","content":"a"},{"role":"user","content":"q2"}]}"#,
        )
        .unwrap();
        assert_eq!(chat.last_user_text().unwrap().expose(), "q2");
        let before = chat
            .route_request(Surface::ChatCompletions)
            .unwrap()
            .input_bytes;
        chat.add_sources(Surface::ChatCompletions, &sources);
        assert!(
            chat.route_request(Surface::ChatCompletions)
                .unwrap()
                .input_bytes
                > before + 10
        );
        assert_eq!(chat.json()["messages"][0]["role"], "system");

        let mut messages = PromptBody::parse(
            br#"{"model":"m","max_tokens":5,"system":"Be brief.","messages":[{"role":"user","content":"q"}]}"#,
        )
        .unwrap();
        messages.add_sources(Surface::Messages, &sources);
        let system = messages.json()["system"].as_str().unwrap();
        assert!(system.starts_with("Be brief.\n\n[1] doc"));
        let request = PromptBody::embeddings_request("m", &[&sources]);
        assert_eq!(request.json()["input"][0], "[1] doc\\ntext");
    }
}
