//! Reconciliation end to end: ledger rows on the fixtures' days, the provider's export posted
//! to the admin API, every difference reported exactly.

use std::collections::BTreeMap;
use std::str::FromStr;

use keyward_core::id::{CredentialId, RequestId, TenantId};
use keyward_core::{ProviderId, Timestamp};
use keyward_store::{Admission, CallStatus, PendingCall, Settlement, Store};
use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::TestApp;

pub fn fixture(name: &str) -> String {
    let path = format!(
        "{}/../../fixtures/provider-exports/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap()
}

/// What a batch of calls adds up to.
#[derive(Clone, Copy, Default)]
pub struct Totals {
    pub input: u64,
    pub cached: u64,
    pub written: u64,
    pub output: u64,
    pub cost_micro_usd: i64,
}

/// Writes `calls` settled ledger rows at noon of `day` whose sums are `totals` (the last row
/// takes the remainders), as the gateway would have.
pub async fn seed_calls(
    store: &Store,
    tenant: &str,
    provider: ProviderId,
    day: &str,
    (requested, reported): (&str, Option<&str>),
    calls: u64,
    totals: Totals,
) {
    let at = Timestamp::parse_rfc3339(&format!("{day}T12:00:00Z")).unwrap();
    let share =
        |total: u64, index: u64| total / calls + if index == calls - 1 { total % calls } else { 0 };
    let calls_i64 = i64::try_from(calls).unwrap();
    for index in 0..calls {
        let index_i64 = i64::try_from(index).unwrap();
        let request_id = admit(store, tenant, provider, requested, at).await;
        let cost = totals.cost_micro_usd / calls_i64
            + if index_i64 == calls_i64 - 1 {
                totals.cost_micro_usd % calls_i64
            } else {
                0
            };
        let settlement = Settlement {
            status: Some(CallStatus::Ok),
            http_status: Some(200),
            model_reported: reported.map(str::to_owned),
            input_tokens: Some(share(totals.input, index)),
            cached_input_tokens: Some(share(totals.cached, index)),
            cache_write_tokens: Some(share(totals.written, index)),
            output_tokens: Some(share(totals.output, index)),
            cost_micro_usd: Some(cost),
            price_id: Some("test".to_owned()),
            ..Settlement::default()
        };
        assert!(
            store
                .settle_call(request_id, &settlement, at)
                .await
                .unwrap()
                .settled
        );
    }
}

/// A call whose client left before any usage arrived.
pub async fn seed_cancelled_call(
    store: &Store,
    tenant: &str,
    provider: ProviderId,
    day: &str,
    model: &str,
) {
    let at = Timestamp::parse_rfc3339(&format!("{day}T13:00:00Z")).unwrap();
    let request_id = admit(store, tenant, provider, model, at).await;
    let settlement = Settlement {
        status: Some(CallStatus::ClientCancelled),
        http_status: Some(200),
        ..Settlement::default()
    };
    store
        .settle_call(request_id, &settlement, at)
        .await
        .unwrap();
}

async fn admit(
    store: &Store,
    tenant: &str,
    provider: ProviderId,
    model: &str,
    at: Timestamp,
) -> RequestId {
    let request_id = RequestId::generate();
    let pending = PendingCall {
        request_id,
        created_at: at,
        tenant_id: TenantId::from_str(tenant).unwrap(),
        key_id: None,
        department_id: None,
        credential_id: CredentialId::generate(),
        credential_label: "seeded".to_owned(),
        provider,
        endpoint: "/v1/chat/completions",
        model_requested: model.to_owned(),
        stream: false,
        tags: BTreeMap::new(),
        fallback_of: None,
        reserved_micro_usd: 0,
        priced: true,
        unbounded_input: None,
    };
    assert!(matches!(
        store.admit_call(&pending).await.unwrap(),
        Admission::Admitted
    ));
    request_id
}

fn line<'a>(report: &'a Value, date: &str, model: &str) -> &'a Value {
    report["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|line| line["date"] == date && line["model"] == model)
        .unwrap_or_else(|| panic!("no line {date} {model} in {report:#}"))
}

#[tokio::test]
async fn the_api_lists_every_difference_between_the_ledger_and_openais_export() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("reconciled").await;
    let store = app.store().await;
    let openai = ProviderId::OpenAi;
    let mini = ("gpt-4o-mini", Some("gpt-4o-mini-2024-07-18"));
    // 2026-09-01: both models exactly as OpenAI reports them; gpt-4.1 called by its alias
    // with no snapshot reported, which must still meet OpenAI's dated name.
    let day1_mini = Totals {
        input: 120_000,
        cached: 40_000,
        output: 15_000,
        cost_micro_usd: 24_000,
        ..Totals::default()
    };
    seed_calls(&store, &tenant, openai, "2026-09-01", mini, 60, day1_mini).await;
    let day1_41 = Totals {
        input: 50_000,
        cached: 10_240,
        output: 6_000,
        cost_micro_usd: 132_640,
        ..Totals::default()
    };
    seed_calls(
        &store,
        &tenant,
        openai,
        "2026-09-01",
        ("gpt-4.1", None),
        12,
        day1_41,
    )
    .await;
    // 2026-09-02: one gpt-4o-mini call's usage never reached the ledger (the client left).
    let day2_mini = Totals {
        input: 88_000,
        cached: 30_720,
        output: 10_800,
        cost_micro_usd: 17_596,
        ..Totals::default()
    };
    seed_calls(&store, &tenant, openai, "2026-09-02", mini, 44, day2_mini).await;
    seed_cancelled_call(&store, &tenant, openai, "2026-09-02", "gpt-4o-mini").await;
    let day2_41 = Totals {
        input: 20_000,
        output: 2_500,
        cost_micro_usd: 60_000,
        ..Totals::default()
    };
    seed_calls(
        &store,
        &tenant,
        openai,
        "2026-09-02",
        ("gpt-4.1-2025-04-14", None),
        5,
        day2_41,
    )
    .await;
    // A model OpenAI has no record of.
    let stray = Totals {
        input: 10,
        output: 5,
        cost_micro_usd: 7,
        ..Totals::default()
    };
    seed_calls(
        &store,
        &tenant,
        openai,
        "2026-09-02",
        ("gpt-4o", None),
        1,
        stray,
    )
    .await;
    // Not compared: another provider, and a day outside the export.
    seed_calls(
        &store,
        &tenant,
        ProviderId::Anthropic,
        "2026-09-01",
        ("claude-sonnet-4-5", None),
        3,
        stray,
    )
    .await;
    seed_calls(&store, &tenant, openai, "2026-09-03", mini, 2, stray).await;

    let usage: Value = serde_json::from_str(&fixture("openai-usage-completions.json")).unwrap();
    let response = app
        .operator(
            Method::POST,
            &format!("/admin/v1/tenants/{tenant}/reconciliations"),
        )
        .json(&json!({
            "provider": "openai",
            // One export as a JSON document, one as a file's text.
            "exports": [usage, fixture("openai-costs.json")],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["from"], "2026-09-01");
    assert_eq!(report["to"], "2026-09-02");
    assert_eq!(report["lines"], 5, "{report:#}");
    assert_eq!(report["differing_lines"], 2);
    for (date, model) in [
        ("2026-09-01", "gpt-4o-mini"),
        ("2026-09-01", "gpt-4.1"),
        ("2026-09-02", "gpt-4.1"),
    ] {
        let matched = line(&report, date, model);
        assert_eq!(matched["status"], "match", "{matched:#}");
        assert_eq!(matched["differences"], json!([]));
    }
    let gap = line(&report, "2026-09-02", "gpt-4o-mini");
    assert_eq!(gap["status"], "differs");
    assert_eq!(
        gap["differences"],
        json!([
            {"field": "requests", "keyward": 44, "provider": 45, "delta": -1},
            {"field": "input_tokens", "keyward": 88_000, "provider": 90_000, "delta": -2_000},
            {"field": "output_tokens", "keyward": 10_800, "provider": 11_000, "delta": -200},
            {"field": "cost_usd", "keyward": "0.017596", "provider": "0.017796", "delta": "-0.000200"},
        ])
    );
    assert_eq!(gap["keyward"]["calls_without_usage"], 1);
    assert_eq!(gap["provider"]["models"], json!(["gpt-4o-mini-2024-07-18"]));
    let stray_line = line(&report, "2026-09-02", "gpt-4o");
    assert_eq!(stray_line["status"], "only_in_keyward");
    assert_eq!(stray_line["provider"], Value::Null);
    assert_eq!(
        report["unattributed"],
        json!([{"date": "2026-09-02", "description": "web search tool calls", "cost_usd": "0.010000"}])
    );
    assert_eq!(report["provider_cost_usd"], "0.234436");
    assert_eq!(report["keyward_cost_usd"], "0.234243");

    // The run is in the audit log, without the export's content.
    let audit: Value = app
        .operator(Method::GET, &format!("/admin/v1/tenants/{tenant}/audit"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entry = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["action"] == "reconciliation.run")
        .unwrap();
    assert_eq!(entry["details"]["differing_lines"], 2);

    // Wrong provider for the file, and an unknown provider: clear 400s.
    for (body, param) in [
        (
            json!({"provider": "anthropic", "exports": [fixture("openai-costs.json")]}),
            "exports[0]",
        ),
        (
            json!({"provider": "groq", "exports": [fixture("openai-costs.json")]}),
            "provider",
        ),
        (json!({"provider": "openai", "exports": []}), "exports"),
    ] {
        let response = app
            .operator(
                Method::POST,
                &format!("/admin/v1/tenants/{tenant}/reconciliations"),
            )
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400);
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["param"], param, "{error:#}");
    }
}
