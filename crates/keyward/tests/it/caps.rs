//! Caps no client can talk around (#23): the output ceiling a call is reserved for is the one
//! the provider is sent, whatever spellings the client mixes; a call without one is sent the
//! default it was reserved for; a ceiling no model has is refused before anything is reserved.

use reqwest::Method;
use serde_json::{json, Value};

use crate::ledger::setup;

/// A tenant rate for an OpenAI model, USD per million tokens.
async fn rate(setup: &crate::ledger::Setup, model: &str, input: &str, output: &str) {
    setup
        .admin(
            Method::PUT,
            "/prices",
            Some(json!({"provider": "openai", "model": model, "effective": "2020-01-01", "input": input, "output": output})),
        )
        .await;
}

/// A hard cap on the tenant, per UTC day.
async fn daily_cap(setup: &crate::ledger::Setup, usd: &str) {
    setup
        .admin(
            Method::PUT,
            "/budgets",
            Some(json!({"scope": "tenant", "period": "day", "hard_limit_usd": usd})),
        )
        .await;
}

/// The usage row of the one call made to `model`, once it has settled (streams settle when
/// they end).
async fn settled_row(setup: &crate::ledger::Setup, model: &str) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let rows = setup.admin(Method::GET, "/usage", None).await;
        let row = rows["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|row| row["model_requested"] == model)
            .cloned();
        if let Some(row) = row.filter(|row| row["status"] != "pending") {
            return row;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{model}: never settled"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A tenant cap with room for 50 output tokens at the exact rate ($1,000 per million).
async fn capped(overrides: &[(&str, &str)]) -> crate::ledger::Setup {
    let setup = setup(overrides).await;
    setup.set_exact_rate().await;
    daily_cap(&setup, "0.05").await;
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

/// A model without a price cannot be counted against a cap, so where a hard cap applies it is
/// refused (`model_unpriced`, SPEC) instead of passing the cap for free; a rate of 0 makes it
/// free on purpose, and without a hard cap it is admitted (and recorded without cost).
#[tokio::test]
async fn an_unpriced_model_is_refused_under_a_hard_cap_until_it_has_a_rate() {
    let setup = setup(&[]).await;
    let unpriced = json!({"model": "team-openai/ft:gpt-4o-mini:acme:2026", "max_tokens": 6,
                          "messages": [{"role": "user", "content": "hi"}]});
    let chat = |body: &Value| {
        setup
            .app
            .with_key(&setup.key, Method::POST, "/v1/chat/completions")
            .json(body)
            .send()
    };
    // No cap: admitted, recorded without a cost.
    assert_eq!(chat(&unpriced).await.unwrap().status(), 200);
    // A soft limit alone does not refuse anything.
    setup
        .admin(
            Method::PUT,
            "/budgets",
            Some(json!({"scope": "tenant", "period": "month", "soft_limit_usd": "1"})),
        )
        .await;
    assert_eq!(chat(&unpriced).await.unwrap().status(), 200);
    // A hard cap: refused before any upstream byte, naming the model and the fix.
    daily_cap(&setup, "100").await;
    let calls = setup.app.mock.calls(&setup.secret);
    let refused = chat(&unpriced).await.unwrap();
    assert_eq!(refused.status(), 403);
    let answer: Value = refused.json().await.unwrap();
    assert_eq!(answer["error"]["code"], "model_unpriced", "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("ft:gpt-4o-mini:acme:2026"), "{message}");
    assert!(message.contains("/prices"), "{message}");
    assert_eq!(setup.app.mock.calls(&setup.secret), calls);
    // A priced model is unaffected; a rate of 0 admits the unpriced one, free on purpose.
    assert_eq!(
        chat(&crate::ledger::six_token_call())
            .await
            .unwrap()
            .status(),
        200
    );
    rate(&setup, "ft:gpt-4o-mini:acme:2026", "0", "0").await;
    assert_eq!(chat(&unpriced).await.unwrap().status(), 200);
}

/// Streams `model` with `max_tokens`, checks that the client sees the stream break within
/// `seconds`, and returns the call's settled ledger row.
async fn broken_stream(
    setup: &crate::ledger::Setup,
    model: &str,
    max_tokens: u64,
    seconds: u64,
) -> Value {
    let response = setup
        .app
        .with_key(&setup.key, Method::POST, "/v1/chat/completions")
        .json(
            &json!({"model": model, "stream": true, "max_tokens": max_tokens,
                      "messages": [{"role": "user", "content": "hi"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let started = std::time::Instant::now();
    assert!(
        response.bytes().await.is_err(),
        "the client must see the break"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(seconds));
    settled_row(setup, model).await
}

/// A provider that streams tiny events without end is cut at `egress.max_stream_bytes`: the
/// client sees the break, the row settles as a provider failure, and the budget keeps the
/// call's whole reservation (#23 item 10).
#[tokio::test]
async fn an_endless_stream_is_cut_at_the_stream_budget_and_charged_its_reservation() {
    let setup = setup(&[("KEYWARD_EGRESS_MAX_STREAM_BYTES", "65536")]).await;
    rate(&setup, "mock-endless", "0", "1000").await;
    daily_cap(&setup, "100").await;
    let row = broken_stream(&setup, "team-openai/mock-endless", 50, 5).await;
    assert_eq!(row["status"], "provider_error", "{row}");
    let budgets = setup.admin(Method::GET, "/budgets", None).await;
    // 50 output tokens at 1,000 micro-dollars each: the whole reservation.
    assert_eq!(budgets["data"][0]["spent_usd"], "0.050000", "{budgets}");
}

/// Inputs whose tokens are not their bytes (#23 item 4): an image is reserved at its maximum
/// (a tiny data URL or a link would otherwise reserve a few bytes' worth), and a reference to
/// content the request does not carry is refused where a hard cap applies, naming the field.
#[tokio::test]
async fn images_are_reserved_at_their_maximum_and_references_are_refused_under_a_cap() {
    let setup = setup(&[]).await;
    // $1,000 per million tokens in and out: 1,000 micro-dollars a token.
    rate(&setup, "gpt-4o-mini", "1000", "1000").await;
    daily_cap(&setup, "5").await;
    let call = |path: &'static str, body: Value| {
        setup
            .app
            .with_key(&setup.key, Method::POST, path)
            .json(&body)
            .send()
    };
    let text = json!({"model": "team-openai/gpt-4o-mini", "max_tokens": 6,
                      "messages": [{"role": "user", "content": "What is in it?"}]});
    assert_eq!(
        call("/v1/chat/completions", text).await.unwrap().status(),
        200
    );
    // The same question about a linked image: 6,000 tokens reserved for it pass the $5 cap.
    let image = json!({"model": "team-openai/gpt-4o-mini", "max_tokens": 6,
                       "messages": [{"role": "user", "content": [
                           {"type": "text", "text": "What is in it?"},
                           {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}]});
    let refused = call("/v1/chat/completions", image).await.unwrap();
    assert_eq!(refused.status(), 429);
    let answer: Value = refused.json().await.unwrap();
    assert_eq!(answer["error"]["code"], "budget_exceeded", "{answer}");
    // A previous response brings in a conversation the request does not carry.
    let follow_up = json!({"model": "team-openai/gpt-4o-mini", "input": "and then?",
                           "previous_response_id": "resp_123"});
    let refused = call("/v1/responses", follow_up).await.unwrap();
    assert_eq!(refused.status(), 400);
    let answer: Value = refused.json().await.unwrap();
    assert_eq!(answer["error"]["code"], "invalid_request", "{answer}");
    assert!(answer["error"]["message"]
        .as_str()
        .unwrap()
        .contains("previous_response_id"));
    assert_eq!(
        setup.app.mock.calls(&setup.secret),
        1,
        "only the text call went upstream"
    );
}

/// A provider that sends its first event and then nothing: `egress.idle_timeout` ends the
/// stream, the client sees the break, and the row settles `timeout` with its reservation kept
/// (#23 item 10).
#[tokio::test]
async fn a_stream_that_goes_silent_settles_as_a_timeout() {
    let setup = setup(&[("KEYWARD_EGRESS_IDLE_TIMEOUT", "1s")]).await;
    rate(&setup, "mock-stall-stream", "0", "1000").await;
    daily_cap(&setup, "100").await;
    let row = broken_stream(&setup, "team-openai/mock-stall-stream", 20, 10).await;
    assert_eq!(row["status"], "timeout", "{row}");
    let budgets = setup.admin(Method::GET, "/budgets", None).await;
    assert_eq!(budgets["data"][0]["spent_usd"], "0.020000", "{budgets}");
}
