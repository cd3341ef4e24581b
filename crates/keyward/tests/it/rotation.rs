//! Rotation as a security team runs it from its key manager: write the new key into Vault,
//! AWS Secrets Manager or Azure Key Vault, revoke the old one at the provider, nothing else.
//! Keyward must refetch before it parks the credential, retry the call on the new value, and
//! park only when the manager's value is refused too (#27).

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::custody::{
    aws_call, aws_env, bao_kv_put, chat, connect, key_managers, refs, relay, unique,
};
use crate::fake_azure::FakeAzure;
use crate::harness::{captured_logs, contains, TestApp};

/// `calls` chat calls through `label`, `parallel` at a time; their statuses.
async fn calls(app: &TestApp, key: &str, label: &str, calls: usize, parallel: usize) -> Vec<u16> {
    let mut statuses = Vec::with_capacity(calls);
    for batch in 0..calls.div_ceil(parallel) {
        let mut running = tokio::task::JoinSet::new();
        for _ in 0..parallel.min(calls - batch * parallel) {
            let request = app
                .with_key(key, Method::POST, "/v1/chat/completions")
                .json(&json!({"model": format!("{label}/gpt-4o-mini"), "messages": [{"role": "user", "content": "hi"}]}));
            running.spawn(async move { request.send().await.unwrap().status().as_u16() });
        }
        statuses.extend(running.join_all().await);
    }
    statuses
}

async fn status_of(app: &TestApp, tenant: &str, label: &str) -> String {
    app.credentials(tenant)
        .await
        .iter()
        .find(|credential| credential["label"] == label)
        .map(|credential| credential["status"].as_str().unwrap().to_owned())
        .unwrap()
}

async fn refetches_audited(app: &TestApp, tenant: &str) -> usize {
    let audit = app
        .operator_get(&format!("/admin/v1/tenants/{tenant}/audit?limit=500"))
        .await;
    audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry["action"] == "credential.reference_refetched")
        .count()
}

/// Tenant `acme` on a deployment reading Azure Key Vault at `vault_origin` (the fake's own
/// origin, or a relay in front of it), a credential `z` referencing `acme-keys/openai-key`
/// (which holds `old`), and a member key whose first call has cached `old`.
struct AzureDeployment {
    app: TestApp,
    tenant: String,
    member: String,
}

const REFERENCE: &str = "azure-kv://acme-keys/openai-key";

async fn azure_deployment(azure: &FakeAzure, vault_origin: &str, old: &str) -> AzureDeployment {
    azure.set("acme-keys", "openai-key", old);
    let vault_url = format!("{vault_origin}/{{vault}}");
    let app = TestApp::spawn_with_env(
        &[("KEYWARD_SECRETS_AZURE_VAULT_URL", &vault_url)],
        &refs(&azure.env()),
    )
    .await;
    let tenant = app.create_tenant("acme").await;
    connect(&app, &tenant, "z", json!({ "secret_ref": REFERENCE })).await;
    let (_, member) = app.issue_key(&tenant, "member").await;
    assert_eq!(chat(&app, &member, "z").await.0, 200);
    AzureDeployment {
        app,
        tenant,
        member,
    }
}

#[tokio::test]
async fn a_rotation_done_in_vault_or_secrets_manager_costs_no_failed_call() {
    let Some(km) = key_managers() else { return };
    let path = unique("rotate");
    let (vault_old, vault_new) = ("sk-rot-vault-old-0000000001", "sk-rot-vault-new-0000000002");
    let (aws_old, aws_new) = ("sk-rot-aws-old-00000000001", "sk-rot-aws-new-00000000002");
    bao_kv_put(
        &km,
        &format!("{path}/openai"),
        json!({"api_key": vault_old}),
    )
    .await;
    let secret_name = unique("keyward/rotate/openai");
    aws_call(
        &km,
        keyward_custody::aws::SECRETS_MANAGER,
        "CreateSecret",
        json!({"Name": secret_name, "SecretString": aws_old}),
    )
    .await
    .unwrap();
    let mut env = aws_env(&km.moto);
    env.extend([
        ("VAULT_ADDR".to_owned(), km.bao.clone()),
        ("VAULT_TOKEN".to_owned(), km.bao_token.clone()),
    ]);
    // The default cache TTL (60 s): the rotation is picked up by the refetch, not by expiry.
    let app = TestApp::spawn_with_env(&[], &refs(&env)).await;
    let tenant = app.create_tenant("acme").await;
    let vault_ref = format!("vault://secret/{path}/openai#api_key");
    connect(&app, &tenant, "v", json!({ "secret_ref": vault_ref })).await;
    connect(
        &app,
        &tenant,
        "a",
        json!({ "secret_ref": format!("aws-sm://{secret_name}") }),
    )
    .await;
    let (_, member) = app.issue_key(&tenant, "member").await;
    for label in ["v", "a"] {
        assert_eq!(chat(&app, &member, label).await.0, 200);
    }

    // The runbook: write the new key into the manager, then revoke the old one.
    bao_kv_put(
        &km,
        &format!("{path}/openai"),
        json!({"api_key": vault_new}),
    )
    .await;
    aws_call(
        &km,
        keyward_custody::aws::SECRETS_MANAGER,
        "PutSecretValue",
        json!({"SecretId": secret_name, "SecretString": aws_new}),
    )
    .await
    .unwrap();
    app.mock.revoke(vault_old);
    app.mock.revoke(aws_old);

    for (label, new, old) in [("v", vault_new, vault_old), ("a", aws_new, aws_old)] {
        let statuses = calls(&app, &member, label, 50, 10).await;
        assert!(
            statuses.iter().all(|status| *status == 200),
            "{label}: {statuses:?}"
        );
        assert_eq!(status_of(&app, &tenant, label).await, "active", "{label}");
        assert_eq!(
            app.mock.calls(new),
            50,
            "{label}: every call ended on the new key"
        );
        // The first call was on the old key; the rejected calls after it (at most one batch
        // that was in flight together) each had its row and a retry.
        let rejected = app.mock.calls(old) - 1;
        assert!(
            (1..=10).contains(&rejected),
            "{label}: {rejected} rejected calls"
        );
    }
    assert!(refetches_audited(&app, &tenant).await >= 2);
    let everything = [captured_logs().into_bytes(), app.database_bytes()].concat();
    for secret in [vault_old, vault_new, aws_old, aws_new] {
        assert!(!contains(&everything, secret), "{secret} leaked");
    }
}

#[tokio::test]
async fn a_flood_of_calls_rejected_at_the_rotation_costs_the_manager_one_fetch() {
    let azure = FakeAzure::start().await;
    let (old, new) = ("sk-rot-azure-old-000000001", "sk-rot-azure-new-000000002");
    let AzureDeployment {
        app,
        tenant,
        member,
    } = azure_deployment(&azure, &azure.origin, old).await;
    assert_eq!(azure.secret_requests(), 1);

    azure.set("acme-keys", "openai-key", new);
    app.mock.revoke(old);
    let statuses = calls(&app, &member, "z", 20, 20).await;
    assert!(statuses.iter().all(|status| *status == 200), "{statuses:?}");
    assert_eq!(
        azure.secret_requests(),
        2,
        "20 calls rejected together refetched the secret once"
    );
    assert_eq!(app.mock.calls(new), 20);
    assert_eq!(status_of(&app, &tenant, "z").await, "active");
}

#[tokio::test]
async fn a_refetch_that_fails_parks_nothing_and_an_unchanged_value_parks_the_credential() {
    let azure = FakeAzure::start().await;
    let old = "sk-rot-azure-kept-00000001";
    let AzureDeployment {
        app,
        tenant,
        member,
    } = azure_deployment(&azure, &azure.origin, old).await;
    let reference = REFERENCE;
    app.mock.revoke(old);

    // The secret is gone from the manager, then holds an empty value: the call names the
    // reference, and the credential is not parked on a failed read.
    for broken in [None, Some("")] {
        match broken {
            None => azure.remove("acme-keys", "openai-key"),
            Some(value) => azure.set("acme-keys", "openai-key", value),
        }
        let (status, answer) = chat(&app, &member, "z").await;
        assert_eq!(status, 503, "{answer}");
        assert_eq!(answer["error"]["code"], "credential_unreadable", "{answer}");
        assert!(answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains(reference));
        assert_eq!(status_of(&app, &tenant, "z").await, "active");
    }

    // The manager still holds the refused value: the provider's verdict stands.
    azure.set("acme-keys", "openai-key", old);
    let (status, answer) = chat(&app, &member, "z").await;
    assert_eq!(status, 424, "{answer}");
    assert_eq!(answer["error"]["code"], "provider_credential_rejected");
    assert_eq!(status_of(&app, &tenant, "z").await, "rejected_by_provider");
    // Parked: the next call fails before any upstream byte.
    let before = app.mock.total_calls();
    assert_eq!(chat(&app, &member, "z").await.0, 424);
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(app.mock.total_calls(), before);
}

#[tokio::test]
async fn a_key_manager_that_is_down_when_the_provider_rejects_the_key_parks_nothing() {
    let azure = FakeAzure::start().await;
    let (old, new) = ("sk-rot-azure-down-old-0001", "sk-rot-azure-down-new-0002");
    // Key Vault is reached through a relay that can be cut (Entra ID stays up).
    let (vault_origin, cut) = relay(azure.origin.clone()).await;
    let AzureDeployment {
        app,
        tenant,
        member,
    } = azure_deployment(&azure, &vault_origin, old).await;
    let reference = REFERENCE;

    azure.set("acme-keys", "openai-key", new);
    app.mock.revoke(old);
    cut.send(()).unwrap();
    let (status, answer) = chat(&app, &member, "z").await;
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["error"]["code"], "credential_unreadable", "{answer}");
    assert!(answer["error"]["message"]
        .as_str()
        .unwrap()
        .contains(reference));
    assert_eq!(status_of(&app, &tenant, "z").await, "active");
    assert_eq!(app.mock.calls(new), 0);
}

/// The ledger keeps both calls of a retried rotation: the rejected one and its retry, linked.
#[tokio::test]
async fn the_rejected_call_and_its_retry_each_have_a_ledger_row() {
    let azure = FakeAzure::start().await;
    let (old, new) = ("sk-rot-azure-row-old-00001", "sk-rot-azure-row-new-00002");
    let AzureDeployment {
        app,
        tenant,
        member,
    } = azure_deployment(&azure, &azure.origin, old).await;
    azure.set("acme-keys", "openai-key", new);
    app.mock.revoke(old);
    let response = app
        .with_key(&member, Method::POST, "/v1/chat/completions")
        .json(&json!({"model": "z/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let request_id = response.headers()["x-keyward-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let usage: Value = app
        .operator_get(&format!("/admin/v1/tenants/{tenant}/usage?format=json"))
        .await;
    let rows = usage["data"].as_array().unwrap();
    let first = rows
        .iter()
        .find(|row| row["request_id"] == request_id.as_str())
        .unwrap();
    assert_eq!(first["status"], "provider_error");
    let retry = rows
        .iter()
        .find(|row| row["fallback_of"] == request_id.as_str())
        .unwrap();
    assert_eq!(retry["status"], "ok");
}
