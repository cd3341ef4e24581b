//! PostgreSQL least privilege, as `docs/deployment.md` sets it up: the schema owner migrates;
//! the runtime role, granted `deploy/postgres-grants.sql`, runs Keyward but cannot change the
//! schema, edit the audit log or delete ledger rows.

use keyward_core::{TenantId, Timestamp};
use keyward_store::{NewAuditEntry, Store, TenantRecord};
use keyward_test_db::TestDb;
use sqlx::{Connection, Executor};

const GRANTS: &str = include_str!("../../../../deploy/postgres-grants.sql");

/// `url` with `user` as its user (the test server trusts loopback, so no password).
fn as_user(url: &str, user: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    format!("{scheme}://{user}@{host}")
}

#[tokio::test]
async fn a_runtime_role_without_schema_rights_runs_keyward_but_cannot_rewrite_history() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let suffix = &db.url()[db.url().rfind("kw_").unwrap() + 3..];
    let (owner, app) = (format!("kwo_{suffix}"), format!("kwa_{suffix}"));
    let mut admin = sqlx::PgConnection::connect(db.url()).await.unwrap();
    for statement in [
        format!("CREATE ROLE {owner} LOGIN"),
        format!("CREATE ROLE {app} LOGIN"),
        format!("ALTER SCHEMA public OWNER TO {owner}"),
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC".to_owned(),
    ] {
        admin.execute(statement.as_str()).await.unwrap();
    }

    // The owner migrates and grants; the runtime role starts without migrating anything.
    let owner_url = as_user(db.url(), &owner);
    Store::open(&owner_url).await.unwrap().close().await;
    let mut owner_connection = sqlx::PgConnection::connect(&owner_url).await.unwrap();
    owner_connection
        .execute(GRANTS.replace("keyward_app", &app).as_str())
        .await
        .unwrap();
    let store = Store::open(&as_user(db.url(), &app)).await.unwrap();
    store
        .insert_tenant(&TenantRecord {
            id: TenantId::generate(),
            name: "acme".into(),
            created_at: Timestamp::now(),
        })
        .await
        .unwrap();
    store
        .append_audit(&NewAuditEntry {
            at: Timestamp::now(),
            tenant_id: None,
            actor: "operator".into(),
            action: "tenant.create".into(),
            target: "acme".into(),
            outcome: "ok".into(),
            details: "{}".into(),
        })
        .await
        .unwrap();

    let mut runtime = sqlx::PgConnection::connect(&as_user(db.url(), &app))
        .await
        .unwrap();
    for forbidden in [
        "UPDATE audit_log SET outcome = 'x'",
        "DELETE FROM audit_log",
        "DELETE FROM ledger",
        "CREATE TABLE intruder (id TEXT)",
        "DROP TABLE tenants",
    ] {
        let refused = runtime.execute(forbidden).await.unwrap_err().to_string();
        assert!(
            refused.contains("permission denied") || refused.contains("must be owner"),
            "{forbidden}: {refused}"
        );
    }
}
