//! Caps no client can talk around (#23): the output ceiling a call is reserved for is the one
//! the provider is sent, whatever spellings the client mixes; a call without one is sent the
//! default it was reserved for; a ceiling no model has is refused before anything is reserved.

use reqwest::Method;
use serde_json::{json, Value};

use crate::ledger::setup;

/// A tenant cap with room for 50 output tokens at the exact rate ($1,000 per million).
async fn capped(overrides: &[(&str, &str)]) -> crate::ledger::Setup {
    let setup = setup(overrides).await;
    setup.set_exact_rate().await;
    setup
        .admin(
            Method::PUT,
            "/budgets",
            Some(json!({"scope": "tenant", "period": "day", "hard_limit_usd": "0.05"})),
        )
        .await;
    setup
}

async fn messages(setup: &crate::ledger::Setup, body: Value) -> (u16, Value) {
    let response = setup
        .app
        .with_key(&setup.key, Method::POST, "/v1/messages")
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_messages_call_is_reserved_for_the_ceiling_the_provider_is_sent() {
    let setup = capped(&[]).await;
    // Anthropic's field says 100,000; an OpenAI spelling beside it says 1. The provider (an
    // OpenAI credential, by translation) would be sent 100,000: that is what is reserved.
    let (status, answer) = messages(
        &setup,
        json!({"model": "team-openai/gpt-4o-mini", "max_tokens": 100_000, "max_completion_tokens": 1,
               "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(status, 429, "{answer}");
    assert_eq!(answer["error"]["code"], "budget_exceeded", "{answer}");
    assert_eq!(setup.app.mock.calls(&setup.secret), 0);
    // Within the cap, the same mix is answered in full: the upstream cap was max_tokens.
    let (status, answer) = messages(
        &setup,
        json!({"model": "team-openai/gpt-4o-mini", "max_tokens": 40, "max_completion_tokens": 1,
               "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["usage"]["output_tokens"], 6, "{answer}");
    assert_eq!(answer["stop_reason"], "end_turn", "{answer}");
}

#[tokio::test]
async fn a_call_without_a_ceiling_is_sent_the_default_it_was_reserved_for() {
    let setup = setup(&[("KEYWARD_LEDGER_DEFAULT_MAX_OUTPUT_TOKENS", "3")]).await;
    let response = setup
        .app
        .with_key(&setup.key, Method::POST, "/v1/chat/completions")
        .json(&json!({"model": "team-openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    // The mock answers six words unless capped: it was sent the default of 3.
    assert_eq!(answer["usage"]["completion_tokens"], 3, "{answer}");
    assert_eq!(answer["choices"][0]["finish_reason"], "length", "{answer}");
}

#[tokio::test]
async fn a_ceiling_no_model_has_is_refused_naming_the_field() {
    let setup = setup(&[]).await;
    for (path, field, body) in [
        (
            "/v1/chat/completions",
            "max_completion_tokens",
            json!({"model": "team-openai/gpt-4o-mini", "max_completion_tokens": u64::MAX,
                   "messages": [{"role": "user", "content": "hi"}]}),
        ),
        (
            "/v1/messages",
            "max_tokens",
            json!({"model": "team-openai/gpt-4o-mini", "max_tokens": 1_000_001,
                   "messages": [{"role": "user", "content": "hi"}]}),
        ),
        (
            "/v1/chat/completions",
            "max_tokens",
            json!({"model": "team-openai/gpt-4o-mini", "max_tokens": -5,
                   "messages": [{"role": "user", "content": "hi"}]}),
        ),
    ] {
        let response = setup
            .app
            .with_key(&setup.key, Method::POST, path)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{path} {field}");
        let answer: Value = response.json().await.unwrap();
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(field), "{message}");
        assert!(message.contains("1000000"), "{message}");
    }
    assert_eq!(setup.app.mock.total_calls(), 0);
}
