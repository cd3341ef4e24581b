//! Repository behaviour: tenant scoping, uniqueness, paging, status rules, compare-and-swap of
//! sealed values and the re-wrap lease.

use std::collections::BTreeMap;

use keyward_core::{CredentialId, KeyVersion, ProviderId, SealedSecret, TenantId, Timestamp};
use keyward_store::{
    CredentialRecord, CredentialStatus, PageRequest, RewrapJob, RewrapState, Store, StoreError,
    TenantRecord,
};

struct TestStore {
    store: Store,
}

async fn store(db: &keyward_test_db::TestDb) -> TestStore {
    TestStore {
        store: Store::open(db.url()).await.unwrap(),
    }
}

async fn tenant(store: &Store, name: &str) -> TenantId {
    let tenant = TenantRecord {
        id: TenantId::generate(),
        name: name.into(),
        created_at: Timestamp::now(),
    };
    store.insert_tenant(&tenant).await.unwrap();
    tenant.id
}

/// A call without budgets, as the gateway admits one.
fn pending_call(
    tenant: TenantId,
    request_id: keyward_core::RequestId,
) -> keyward_store::PendingCall {
    keyward_store::PendingCall {
        request_id,
        created_at: Timestamp::now(),
        tenant_id: tenant,
        key_id: None,
        department_id: None,
        credential_id: CredentialId::generate(),
        credential_label: "c".into(),
        provider: ProviderId::OpenAi,
        endpoint: "/v1/chat/completions",
        model_requested: "gpt-4o-mini".into(),
        stream: false,
        tags: BTreeMap::new(),
        fallback_of: None,
        reserved_micro_usd: 0,
        priced: true,
        unbounded_input: None,
    }
}

fn sealed(blob: &str, version: u32) -> SealedSecret {
    SealedSecret {
        blob: blob.into(),
        key_version: KeyVersion::new(version).unwrap(),
    }
}

fn credential(tenant: TenantId, label: &str) -> CredentialRecord {
    CredentialRecord {
        id: CredentialId::generate(),
        tenant_id: tenant,
        label: label.into(),
        provider: ProviderId::OpenAi,
        options: BTreeMap::from([("organization".into(), "org-1".into())]),
        secret: Some(sealed("AAAA", 1)),
        secret_ref: None,
        fingerprint: "sk-…abcd".into(),
        status: CredentialStatus::Active,
        created_at: Timestamp::now(),
        rotated_at: None,
        status_changed_at: Timestamp::now(),
    }
}

keyward_test_db::on_both_backends! {
async fn wrapped_data_keys_references_and_the_deployment_id_round_trip(db) {
    let test = store(&db).await;
    let store = &test.store;
    assert_eq!(store.highest_key_version().await.unwrap(), None);
    let first = store.deployment_id("dep-a").await.unwrap();
    assert_eq!(first, "dep-a");
    assert_eq!(store.deployment_id("dep-b").await.unwrap(), "dep-a", "created once");
    let key = |version: u32, wrapped: &str| keyward_store::WrappedDataKeyRecord {
        version: KeyVersion::new(version).unwrap(),
        wrapper: "aws-kms:alias/keyward".into(),
        wrapped: wrapped.into(),
        created_at: Timestamp::from_unix_millis(1_700_000_000_000),
    };
    assert!(store.insert_wrapped_data_key(&key(2, "AQID")).await.unwrap());
    assert!(!store.insert_wrapped_data_key(&key(2, "BBBB")).await.unwrap(), "a taken version is refused");
    store.register_master_key(KeyVersion::new(3).unwrap(), "00", Timestamp::now()).await.unwrap();
    assert_eq!(store.highest_key_version().await.unwrap().map(KeyVersion::get), Some(3));
    assert_eq!(store.wrapped_data_keys().await.unwrap(), vec![key(2, "AQID")]);

    let acme = tenant(store, "acme").await;
    let mut record = credential(acme, "held-in-vault");
    record.secret = None;
    record.secret_ref = Some("vault://secret/acme/openai#api_key".into());
    store.insert_credential(&record).await.unwrap();
    let read = store.credential(acme, record.id).await.unwrap().unwrap();
    assert_eq!(read.secret_ref.as_deref(), Some("vault://secret/acme/openai#api_key"));
    assert!(read.secret.is_none());
    // Rotating to a sealed secret replaces the reference.
    store.rotate_credential_secret(acme, record.id, &sealed("BBBB", 1), "sk-…wxyz", Timestamp::now()).await.unwrap();
    let read = store.credential(acme, record.id).await.unwrap().unwrap();
    assert!(read.secret_ref.is_none());
    assert!(read.secret.is_some());
}
}

keyward_test_db::on_both_backends! {
async fn credentials_are_only_visible_to_their_tenant(db) {
    let test = store(&db).await;
    let acme = tenant(&test.store, "acme").await;
    let globex = tenant(&test.store, "globex").await;
    let record = credential(acme, "team-openai");
    test.store.insert_credential(&record).await.unwrap();

    assert!(test
        .store
        .credential(acme, record.id)
        .await
        .unwrap()
        .is_some());
    assert!(test
        .store
        .credential(globex, record.id)
        .await
        .unwrap()
        .is_none());
    assert!(!test
        .store
        .set_credential_status(
            globex,
            record.id,
            CredentialStatus::Disabled,
            Timestamp::now()
        )
        .await
        .unwrap());
    assert!(!test
        .store
        .delete_credential(globex, record.id)
        .await
        .unwrap());
    assert_eq!(
        test.store.credential_owner(record.id).await.unwrap(),
        Some(acme)
    );
    let loaded = test
        .store
        .credential(acme, record.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(loaded.options["organization"], "org-1");
    assert_eq!(loaded.secret, record.secret);
}

async fn labels_are_unique_per_tenant_only(db) {
    let test = store(&db).await;
    let acme = tenant(&test.store, "acme").await;
    let globex = tenant(&test.store, "globex").await;
    test.store
        .insert_credential(&credential(acme, "main"))
        .await
        .unwrap();
    let err = test
        .store
        .insert_credential(&credential(acme, "main"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { field: "label", .. }),
        "{err}"
    );
    test.store
        .insert_credential(&credential(globex, "main"))
        .await
        .unwrap();
    let err = test
        .store
        .insert_tenant(&TenantRecord {
            id: TenantId::generate(),
            name: "acme".into(),
            created_at: Timestamp::now(),
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { what: "tenant", .. }));
}

async fn rotation_reactivates_a_rejected_credential_but_not_a_disabled_one(db) {
    let test = store(&db).await;
    let acme = tenant(&test.store, "acme").await;
    let rejected = credential(acme, "rejected");
    let disabled = credential(acme, "disabled");
    for (record, status) in [
        (&rejected, CredentialStatus::RejectedByProvider),
        (&disabled, CredentialStatus::Disabled),
    ] {
        test.store.insert_credential(record).await.unwrap();
        test.store
            .set_credential_status(acme, record.id, status, Timestamp::now())
            .await
            .unwrap();
        assert!(test
            .store
            .rotate_credential_secret(
                acme,
                record.id,
                &sealed("BBBB", 2),
                "sk-…new1",
                Timestamp::now()
            )
            .await
            .unwrap());
    }
    let status = |id| {
        let store = test.store.clone();
        async move { store.credential(acme, id).await.unwrap().unwrap() }
    };
    let after = status(rejected.id).await;
    assert_eq!(after.status, CredentialStatus::Active);
    assert_eq!(after.secret, Some(sealed("BBBB", 2)));
    assert_eq!(after.fingerprint, "sk-…new1");
    assert!(after.rotated_at.is_some());
    assert_eq!(status(disabled.id).await.status, CredentialStatus::Disabled);
}

async fn swap_writes_only_over_the_expected_blob(db) {
    let test = store(&db).await;
    let acme = tenant(&test.store, "acme").await;
    let record = credential(acme, "main");
    test.store.insert_credential(&record).await.unwrap();
    let original = record.secret.clone().unwrap();
    // A tenant rotation lands first; the re-wrap's swap must not clobber it.
    test.store
        .rotate_credential_secret(
            acme,
            record.id,
            &sealed("ROTATED", 1),
            "fp",
            Timestamp::now(),
        )
        .await
        .unwrap();
    assert!(!test
        .store
        .swap_sealed_secret(record.id, &original, &sealed("REWRAPPED", 2))
        .await
        .unwrap());
    assert!(test
        .store
        .swap_sealed_secret(record.id, &sealed("ROTATED", 1), &sealed("REWRAPPED", 2))
        .await
        .unwrap());
    let counts = test.store.sealed_rows_by_version().await.unwrap();
    assert_eq!(counts, vec![(KeyVersion::new(2).unwrap(), 1)]);
    let candidates = test
        .store
        .rewrap_candidates(KeyVersion::new(3).unwrap(), None, 10)
        .await
        .unwrap();
    assert_eq!(candidates.len(), 1);
}

async fn pages_follow_the_cursor_without_gaps_or_repeats(db) {
    let test = store(&db).await;
    let mut created = Vec::new();
    for index in 0..7 {
        created.push(tenant(&test.store, &format!("tenant-{index}")).await);
    }
    let mut seen = Vec::new();
    let mut request = PageRequest {
        after: None,
        limit: 3,
    };
    loop {
        let page = test.store.tenants(&request).await.unwrap();
        seen.extend(page.items.iter().map(|tenant| tenant.id));
        match page.next_cursor {
            Some(cursor) => request.after = Some(cursor),
            None => break,
        }
    }
    assert_eq!(seen, created);
}

async fn only_one_runner_holds_a_rewrap_lease(db) {
    let test = store(&db).await;
    let now = Timestamp::now();
    let later = Timestamp::from_unix_millis(now.unix_millis() + 30_000);
    test.store
        .insert_rewrap_job(&RewrapJob {
            id: "job-1".into(),
            target_version: KeyVersion::new(2).unwrap(),
            state: RewrapState::Pending,
            done: 0,
            total: 0,
            failed: 0,
            created_at: now,
            finished_at: None,
        })
        .await
        .unwrap();
    let mut first = test
        .store
        .claim_rewrap_job("a", now, later)
        .await
        .unwrap()
        .unwrap();
    assert!(test
        .store
        .claim_rewrap_job("b", now, later)
        .await
        .unwrap()
        .is_none());
    // Runner b may take over once a's lease has run out, and then a can no longer write.
    let expired = Timestamp::from_unix_millis(later.unix_millis() + 1);
    let far = Timestamp::from_unix_millis(later.unix_millis() + 60_000);
    assert!(test
        .store
        .claim_rewrap_job("b", expired, far)
        .await
        .unwrap()
        .is_some());
    first.done = 5;
    assert!(!test
        .store
        .record_rewrap_progress(&first, "a", far)
        .await
        .unwrap());
}

// Regression (review of session 1): a 401 for a secret the tenant had just rotated away marked
// the new credential rejected; a 401 could also overwrite a disable.
async fn a_rejection_marks_only_an_active_credential_still_holding_that_secret(db) {
    let test = store(&db).await;
    let acme = tenant(&test.store, "acme").await;
    let record = credential(acme, "main");
    test.store.insert_credential(&record).await.unwrap();
    let old = record.secret.clone().unwrap();
    test.store
        .rotate_credential_secret(acme, record.id, &sealed("NEW", 1), "fp", Timestamp::now())
        .await
        .unwrap();
    assert!(!test
        .store
        .reject_credential(acme, record.id, Some(&old), Timestamp::now())
        .await
        .unwrap());
    let current = test
        .store
        .credential(acme, record.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(current.status, CredentialStatus::Active);

    test.store
        .set_credential_status(
            acme,
            record.id,
            CredentialStatus::Disabled,
            Timestamp::now(),
        )
        .await
        .unwrap();
    assert!(!test
        .store
        .reject_credential(acme, record.id, Some(&sealed("NEW", 1)), Timestamp::now())
        .await
        .unwrap());
    test.store
        .set_credential_status(acme, record.id, CredentialStatus::Active, Timestamp::now())
        .await
        .unwrap();
    assert!(test
        .store
        .reject_credential(acme, record.id, Some(&sealed("NEW", 1)), Timestamp::now())
        .await
        .unwrap());
    let current = test
        .store
        .credential(acme, record.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(current.status, CredentialStatus::RejectedByProvider);
}
}

keyward_test_db::on_both_backends! {
// Many admissions at once (on SQLite they share group-commit transactions): a failing one
// (a duplicate request id) is refused alone, every other row is committed.
async fn concurrent_admissions_commit_independently(db) {
    let test = store(&db).await;
    let acme = tenant(&test.store, "acme").await;
    let call = |request_id| pending_call(acme, request_id);
    let duplicate = keyward_core::RequestId::generate();
    test.store.admit_call(&call(duplicate)).await.unwrap();
    let mut admissions = tokio::task::JoinSet::new();
    for index in 0..101 {
        let store = test.store.clone();
        let id = if index == 50 { duplicate } else { keyward_core::RequestId::generate() };
        let pending = call(id);
        admissions.spawn(async move { (id, store.admit_call(&pending).await) });
    }
    let mut failed = Vec::new();
    while let Some(done) = admissions.join_next().await {
        let (id, result) = done.unwrap();
        match result {
            Ok(keyward_store::Admission::Admitted) => {
                assert!(test.store.call(acme, id).await.unwrap().is_some());
            }
            Ok(other) => panic!("unexpected {other:?}"),
            Err(_) => failed.push(id),
        }
    }
    assert_eq!(failed, vec![duplicate]);
    let rows = test
        .store
        .calls_between(acme, Timestamp::from_unix_millis(0), Timestamp::from_unix_millis(i64::MAX), None, 1000)
        .await
        .unwrap();
    assert_eq!(rows.len(), 101);
}
}

keyward_test_db::on_both_backends! {
// A budget of any scope (tenant, department, key) is reserved against and settled into: the
// one-statement admission and settlement PostgreSQL uses for calls without budgets must step
// aside for every call one applies to, and only for those.
async fn every_budget_scope_is_reserved_and_settled_and_unbudgeted_calls_pass(db) {
    use keyward_core::{BudgetPeriod, DepartmentId, PlatformKeyId, RequestId};
    use keyward_store::{Admission, BudgetRecord, BudgetScopeKind, Settlement, WindowSpend};

    let test = store(&db).await;
    let acme = tenant(&test.store, "acme").await;
    let department = DepartmentId::generate();
    let key = PlatformKeyId::generate();
    let budget = |scope_kind, scope_id: String, hard| BudgetRecord {
        id: keyward_core::BudgetId::generate(),
        tenant_id: acme,
        scope_kind,
        scope_id,
        period: BudgetPeriod::Total,
        hard_limit_micro_usd: Some(hard),
        soft_limit_micro_usd: None,
        created_at: Timestamp::now(),
        updated_at: Timestamp::now(),
    };
    let call = |department_id, key_id, reserved| keyward_store::PendingCall {
        department_id,
        key_id,
        reserved_micro_usd: reserved,
        priced: true,
        unbounded_input: None,
        ..pending_call(acme, RequestId::generate())
    };
    let settlement = |charge| Settlement {
        status: Some(keyward_store::CallStatus::Ok),
        budget_charge_micro_usd: charge,
        ..Settlement::default()
    };

    // No budget yet: admitted, settled once, and a second settlement finds nothing pending.
    let free = call(Some(department), Some(key), 1_000_000);
    assert!(matches!(test.store.admit_call(&free).await.unwrap(), Admission::Admitted));
    let settled = test.store.settle_call(free.request_id, &settlement(5), Timestamp::now()).await.unwrap();
    assert!(settled.settled);
    let again = test.store.settle_call(free.request_id, &settlement(5), Timestamp::now()).await.unwrap();
    assert!(!again.settled, "a settled row is not settled twice");

    for (scope_kind, scope_id, in_scope, out_of_scope) in [
        (BudgetScopeKind::Key, key.to_string(), call(None, Some(key), 1_000), call(None, Some(PlatformKeyId::generate()), 1_000)),
        (BudgetScopeKind::Department, department.to_string(), call(Some(department), None, 1_000), call(Some(DepartmentId::generate()), None, 1_000)),
        (BudgetScopeKind::Tenant, String::new(), call(None, None, 1_000), call(None, None, 1_000)),
    ] {
        // Budgets stay: the key's and the department's do not apply to the later scopes' calls.
        let name = scope_kind_name(scope_kind);
        let record = test.store.put_budget(&budget(scope_kind, scope_id.clone(), 100)).await.unwrap();
        let refused = test.store.admit_call(&in_scope).await.unwrap();
        assert!(matches!(refused, Admission::OverBudget { .. }), "{name} budget: {refused:?}");
        assert!(test.store.call(acme, in_scope.request_id).await.unwrap().is_none(), "{name}: refused, nothing written");
        if scope_kind != BudgetScopeKind::Tenant {
            assert!(matches!(test.store.admit_call(&out_of_scope).await.unwrap(), Admission::Admitted), "{name}: another {name} is not limited");
        }
        // With room, the call is reserved against, then its charge is settled into the window.
        test.store.put_budget(&budget(scope_kind, scope_id, 10_000)).await.unwrap();
        let window = BudgetPeriod::Total.window(Timestamp::now()).key;
        let fits = call(in_scope.department_id, in_scope.key_id, 1_000);
        assert!(matches!(test.store.admit_call(&fits).await.unwrap(), Admission::Admitted));
        assert_eq!(
            test.store.window_spend(record.id, &window).await.unwrap(),
            WindowSpend { spent_micro_usd: 0, reserved_micro_usd: 1_000 },
            "{name}: reserved"
        );
        let settled = test.store.settle_call(fits.request_id, &settlement(300), Timestamp::now()).await.unwrap();
        assert!(settled.settled);
        assert_eq!(
            test.store.window_spend(record.id, &window).await.unwrap(),
            WindowSpend { spent_micro_usd: 300, reserved_micro_usd: 0 },
            "{name}: the reservation became the charge"
        );
        // An unpriced call under the hard cap is refused, and nothing is written (#23).
        let unpriced = keyward_store::PendingCall { priced: false, ..call(fits.department_id, fits.key_id, 0) };
        let refused = test.store.admit_call(&unpriced).await.unwrap();
        assert!(matches!(refused, Admission::Unpriced { .. }), "{name}: {refused:?}");
        assert!(test.store.call(acme, unpriced.request_id).await.unwrap().is_none(), "{name}: nothing written");
        let unbounded = keyward_store::PendingCall { unbounded_input: Some("file_id"), ..call(fits.department_id, fits.key_id, 0) };
        let refused = test.store.admit_call(&unbounded).await.unwrap();
        assert!(matches!(refused, Admission::Unbounded { .. }), "{name}: {refused:?}");
    }
}
}

fn scope_kind_name(kind: keyward_store::BudgetScopeKind) -> &'static str {
    kind.as_str()
}

/// Under steady ledger writes a PASSIVE checkpoint never finds the WAL fully copied, and SQLite
/// only starts a WAL over on a fully copied one: without the checkpointer's brief pause of the
/// writer the WAL file would grow for as long as traffic lasts. With it, the WAL starts over
/// again and again while the writes go on: each restart writes a new salt into its header.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steady_ledger_writes_keep_restarting_the_sqlite_wal() {
    let db = keyward_test_db::TestDb::sqlite();
    let options = keyward_store::StoreOptions {
        wal_restart_frames: 64,
        ..keyward_store::StoreOptions::default()
    };
    let store = Store::open_with(db.url(), &options).await.unwrap();
    let acme = tenant(&store, "acme").await;
    let until = std::time::Instant::now() + std::time::Duration::from_millis(4_500);
    let mut writers = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let store = store.clone();
        writers.spawn(async move {
            let mut calls = 0_u64;
            while std::time::Instant::now() < until {
                let pending = pending_call(acme, keyward_core::RequestId::generate());
                store.admit_call(&pending).await.unwrap();
                let settlement = keyward_store::Settlement {
                    status: Some(keyward_store::CallStatus::Ok),
                    input_tokens: Some(7),
                    ..keyward_store::Settlement::default()
                };
                let settled = store
                    .settle_call(pending.request_id, &settlement, Timestamp::now())
                    .await
                    .unwrap();
                assert!(settled.settled);
                calls += 1;
            }
            calls
        });
    }
    let wal = db.dir().join("keyward.db-wal");
    let (mut restarts, mut salt) = (0, None);
    while std::time::Instant::now() < until {
        let header = std::fs::read(&wal).unwrap_or_default();
        if let Some(now) = header.get(16..24).map(<[u8]>::to_vec) {
            if salt.is_some() && salt.as_ref() != Some(&now) {
                restarts += 1;
            }
            salt = Some(now);
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let largest = std::fs::metadata(&wal).unwrap().len();
    let mut calls = 0;
    while let Some(done) = writers.join_next().await {
        calls += done.unwrap();
    }
    assert!(
        restarts >= 2,
        "the WAL restarted {restarts} times under {calls} calls (file {largest} bytes)"
    );
    let rows = store
        .calls_between(
            acme,
            Timestamp::from_unix_millis(0),
            Timestamp::from_unix_millis(i64::MAX),
            None,
            u32::MAX,
        )
        .await
        .unwrap();
    assert_eq!(rows.len() as u64, calls);
    assert!(rows.iter().all(|row| row.input_tokens == Some(7)));
    store.close().await;
}

/// A settlement records a call already made and paid for. When PostgreSQL has closed the
/// pool's connections (a restart, a failover, an operator ending sessions) and one still looks
/// idle and fresh, the settlement's first statement fails on it; the settlement is tried again
/// on a tested connection and lands.
#[tokio::test]
async fn a_settlement_lands_after_postgres_closed_the_pooled_connections() {
    use sqlx::{Connection, Executor};

    let Some(db) = keyward_test_db::TestDb::postgres().await else {
        return;
    };
    // A pool of one: the closed connection must be given back before another can be taken.
    let options = keyward_store::StoreOptions {
        max_connections: 1,
        ..keyward_store::StoreOptions::default()
    };
    let store = Store::open_with(db.url(), &options).await.unwrap();
    let acme = tenant(&store, "acme").await;
    let paid = pending_call(acme, keyward_core::RequestId::generate());
    store.admit_call(&paid).await.unwrap();

    // End every session of the store's pool from outside it, and wait until they are gone.
    let mut operator = sqlx::PgConnection::connect(db.url()).await.unwrap();
    let others =
        "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()";
    operator
        .execute(format!("SELECT pg_terminate_backend(pid) {others}").as_str())
        .await
        .unwrap();
    let started = std::time::Instant::now();
    loop {
        let left: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) {others}"))
            .fetch_one(&mut operator)
            .await
            .unwrap();
        if left == 0 {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{left} sessions left"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }

    let settlement = keyward_store::Settlement {
        status: Some(keyward_store::CallStatus::Ok),
        input_tokens: Some(11),
        output_tokens: Some(5),
        ..keyward_store::Settlement::default()
    };
    // The store's warnings, to see that the first attempt met a closed connection (one idle
    // for a second would have been tested and replaced before use: no retry to prove).
    let warnings = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer({
            let warnings = warnings.clone();
            move || warnings.clone()
        })
        .finish();
    let settled = {
        let _default = tracing::subscriber::set_default(subscriber);
        store
            .settle_call(paid.request_id, &settlement, Timestamp::now())
            .await
            .unwrap()
    };
    assert!(settled.settled);
    let warnings = warnings.text();
    assert!(
        warnings.contains("trying again on another connection"),
        "no retry logged: {warnings}"
    );
    let row = store.call(acme, paid.request_id).await.unwrap().unwrap();
    assert_eq!(row.status, keyward_store::CallStatus::Ok);
    assert_eq!((row.input_tokens, row.output_tokens), (Some(11), Some(5)));
    let _ = operator.close().await;
    store.close().await;
}

/// Log output gathered in memory.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        let bytes = self.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
