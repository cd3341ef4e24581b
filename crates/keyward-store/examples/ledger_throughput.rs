//! Measures ledger write throughput on SQLite: each call is one admission transaction
//! (pending row + reservation in a tenant budget) and one settlement transaction, as the
//! gateway does. Run: `cargo run --release -p keyward-store --example ledger_throughput`.
#![expect(clippy::unwrap_used, reason = "a measurement tool: fail loudly")]
#![expect(clippy::print_stdout, reason = "prints its measurement")]

use std::collections::BTreeMap;
use std::time::Instant;

use keyward_core::{BudgetPeriod, CredentialId, ProviderId, RequestId, TenantId, Timestamp};
use keyward_store::{
    BudgetRecord, BudgetScopeKind, CallStatus, PendingCall, Settlement, Store, TenantRecord,
};

const CALLS: usize = 20_000;
const WRITERS: usize = 32;

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("sqlite://{}", dir.path().join("kw.db").display()))
        .await
        .unwrap();
    let tenant = TenantId::generate();
    store
        .insert_tenant(&TenantRecord {
            id: tenant,
            name: "bench".into(),
            created_at: Timestamp::now(),
        })
        .await
        .unwrap();
    let now = Timestamp::now();
    store
        .put_budget(&BudgetRecord {
            id: keyward_core::BudgetId::generate(),
            tenant_id: tenant,
            scope_kind: BudgetScopeKind::Tenant,
            scope_id: String::new(),
            period: BudgetPeriod::Month,
            hard_limit_micro_usd: Some(i64::MAX / 2),
            soft_limit_micro_usd: None,
            created_at: now,
            updated_at: now,
        })
        .await
        .unwrap();
    let started = Instant::now();
    let mut writers = tokio::task::JoinSet::new();
    for _ in 0..WRITERS {
        let store = store.clone();
        writers.spawn(async move {
            for _ in 0..CALLS / WRITERS {
                let call = PendingCall {
                    request_id: RequestId::generate(),
                    created_at: Timestamp::now(),
                    tenant_id: tenant,
                    key_id: None,
                    department_id: None,
                    credential_id: CredentialId::generate(),
                    credential_label: "bench".into(),
                    provider: ProviderId::OpenAi,
                    endpoint: "chat.completions",
                    model_requested: "gpt-4o-mini".into(),
                    stream: false,
                    tags: BTreeMap::new(),
                    fallback_of: None,
                    reserved_micro_usd: 100,
                    priced: true,
                    unbounded_input: None,
                };
                store.admit_call(&call).await.unwrap();
                let settlement = Settlement {
                    status: Some(CallStatus::Ok),
                    input_tokens: Some(10),
                    output_tokens: Some(10),
                    cost_micro_usd: Some(8),
                    budget_charge_micro_usd: 8,
                    ..Settlement::default()
                };
                store
                    .settle_call(call.request_id, &settlement, Timestamp::now())
                    .await
                    .unwrap();
            }
        });
    }
    while let Some(done) = writers.join_next().await {
        done.unwrap();
    }
    let elapsed = started.elapsed();
    let calls = (CALLS / WRITERS) * WRITERS;
    println!(
        "{calls} calls (admit + settle, {WRITERS} concurrent writers) in {:.2} s: {:.0} calls/s, {:.0} ledger writes/s",
        elapsed.as_secs_f64(),
        calls as f64 / elapsed.as_secs_f64(),
        2.0 * calls as f64 / elapsed.as_secs_f64()
    );
}
