//! The audit log's chain under concurrent appends, its append-only triggers, and detection of
//! an entry changed or deleted behind Keyward's back.

use keyward_core::Timestamp;
use keyward_store::{verify_chain, NewAuditEntry, Store, GENESIS_HASH};

fn entry(action: String) -> NewAuditEntry {
    NewAuditEntry {
        at: Timestamp::now(),
        tenant_id: Some("t1".to_owned()),
        actor: "operator".to_owned(),
        action,
        target: "x".to_owned(),
        outcome: "ok".to_owned(),
        details: "{}".to_owned(),
    }
}

keyward_test_db::on_both_backends! {
async fn concurrent_appends_form_one_chain_and_tampering_breaks_it(db) {
    let url = db.url();
    let store = Store::open(url).await.unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for writer in 0..8 {
        let store = store.clone();
        tasks.spawn(async move {
            for n in 0..5 {
                store
                    .append_audit(&entry(format!("w{writer}.{n}")))
                    .await
                    .unwrap();
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let entries = store.audit_entries(None, 0, 1000).await.unwrap();
    assert_eq!(entries.len(), 40);
    assert_eq!(verify_chain((0, GENESIS_HASH), &entries), Ok(()));

    // The database refuses edits and deletions.
    sqlx::any::install_default_drivers();
    let raw = sqlx::AnyPool::connect(url).await.unwrap();
    let update = sqlx::query("UPDATE audit_log SET outcome = 'forbidden' WHERE seq = 7")
        .execute(&raw)
        .await;
    assert!(update.unwrap_err().to_string().contains("append-only"));
    let delete = sqlx::query("DELETE FROM audit_log WHERE seq = 9")
        .execute(&raw)
        .await;
    assert!(delete.is_err());

    // Someone with file access drops the triggers and edits an entry: the chain shows where.
    let on_table = if db.is_postgres() { " ON audit_log" } else { "" };
    sqlx::query(&format!("DROP TRIGGER audit_log_no_update{on_table}"))
        .execute(&raw)
        .await
        .unwrap();
    sqlx::query(&format!("DROP TRIGGER audit_log_no_delete{on_table}"))
        .execute(&raw)
        .await
        .unwrap();
    sqlx::query("UPDATE audit_log SET outcome = 'forbidden' WHERE seq = 7")
        .execute(&raw)
        .await
        .unwrap();
    let entries = store.audit_entries(None, 0, 1000).await.unwrap();
    assert_eq!(
        verify_chain((0, GENESIS_HASH), &entries).unwrap_err().seq,
        7
    );

    sqlx::query("UPDATE audit_log SET outcome = 'ok' WHERE seq = 7")
        .execute(&raw)
        .await
        .unwrap();
    sqlx::query("DELETE FROM audit_log WHERE seq = 9")
        .execute(&raw)
        .await
        .unwrap();
    let entries = store.audit_entries(None, 0, 1000).await.unwrap();
    assert_eq!(
        verify_chain((0, GENESIS_HASH), &entries).unwrap_err().seq,
        9
    );
}
}
