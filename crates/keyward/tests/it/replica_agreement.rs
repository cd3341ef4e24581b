//! What every replica of one deployment must agree on, three replicas on the PostgreSQL the
//! test script starts (#27): per-key limits counted once for all of them, a provider's
//! rejection of a key, a master-key rotation under traffic, a department's allow-list, and
//! `ledger.mode = best_effort` when the ledger cannot record.

use std::time::{Duration, Instant};

use keyward_test_db::TestDb;
use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{captured_logs, TestApp};
use crate::ledger::{setup, six_token_call, Setup};

/// Three servers on one fresh PostgreSQL database, sharing a mock provider.
async fn three_replicas(extra: &[(&str, &str)]) -> Option<(TestDb, Setup)> {
    let db = TestDb::postgres().await?;
    let mut overrides = vec![("KEYWARD_STORE_URL", db.url())];
    overrides.extend_from_slice(extra);
    let setup = setup(&overrides).await.with_replicas(2, &overrides).await;
    Some((db, setup))
}

fn replicas(setup: &Setup) -> [&TestApp; 3] {
    [&setup.app, &setup.replicas[0], &setup.replicas[1]]
}

async fn call(app: &TestApp, key: &str, body: &Value) -> u16 {
    app.with_key(key, Method::POST, "/v1/chat/completions")
        .json(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn issue(setup: &Setup, body: Value) -> String {
    let issued = setup.admin(Method::POST, "/keys", Some(body)).await;
    issued["key"].as_str().unwrap().to_owned()
}

/// A key limited to 30 requests a minute gets at most 30 (plus one slice per replica, and
/// what the bucket refills while the test runs) however the calls are spread, and every
/// admitted call is one the mock provider saw.
#[tokio::test]
async fn a_per_key_limit_holds_across_two_and_three_replicas() {
    for count in [2, 3] {
        let Some(db) = TestDb::postgres().await else {
            return;
        };
        let overrides = [("KEYWARD_STORE_URL", db.url())];
        let setup = setup(&overrides)
            .await
            .with_replicas(count - 1, &overrides)
            .await;
        let key = issue(&setup, json!({"role": "member", "rpm_limit": 30})).await;
        let apps: Vec<&TestApp> = std::iter::once(&setup.app).chain(&setup.replicas).collect();
        let before = setup.app.mock.calls(&setup.secret);
        let started = Instant::now();
        let mut admitted = 0_u64;
        let mut refused = 0_u64;
        for index in 0..60 {
            match call(apps[index % count], &key, &six_token_call()).await {
                200 => admitted += 1,
                429 => refused += 1,
                status => panic!("unexpected {status}"),
            }
        }
        // 30 a minute: half a request refills every second.
        let refilled = (started.elapsed().as_secs_f64() / 2.0).ceil() as u64;
        let slices = count as u64;
        assert!(
            admitted <= 30 + slices + refilled,
            "{count} replicas admitted {admitted} of 60"
        );
        assert!(
            admitted >= 30 - slices,
            "{count} replicas admitted only {admitted}"
        );
        assert_eq!(admitted + refused, 60);
        assert_eq!(
            setup.app.mock.calls(&setup.secret) - before,
            admitted,
            "the provider saw exactly the admitted calls"
        );
        eprintln!("{count} replicas: {admitted} of 60 admitted under rpm 30");

        // 100 tokens a minute; each call uses 11 (5 in, 6 out), charged when it ends. The
        // last call admitted may overdraw by its own tokens (as on one process).
        let key = issue(&setup, json!({"role": "member", "tpm_limit": 100})).await;
        let before = setup.app.mock.calls(&setup.secret);
        let started = Instant::now();
        let mut admitted = 0_u64;
        for index in 0..40 {
            if call(apps[index % count], &key, &six_token_call()).await == 200 {
                admitted += 1;
            }
        }
        let refilled = (started.elapsed().as_secs_f64() * 100.0 / 60.0).ceil() as u64;
        assert!(
            admitted * 11 <= 100 + 11 + slices + refilled,
            "{count} replicas admitted {admitted} calls of 11 tokens under tpm 100"
        );
        assert!(
            admitted >= 8,
            "{count} replicas admitted only {admitted} under tpm 100"
        );
        assert_eq!(setup.app.mock.calls(&setup.secret) - before, admitted);
        eprintln!("{count} replicas: {admitted} calls of 11 tokens admitted under tpm 100");
    }
}

/// PostgreSQL restarting while replicas hold leased slices: the bucket's state survives in
/// the database, calls are refused while it is away, and no limit is doubled after.
#[tokio::test]
async fn a_database_restart_while_slices_are_leased_never_doubles_a_limit() {
    let Some((db, pg_ctl)) = TestDb::fault_postgres().await else {
        return;
    };
    let overrides = [("KEYWARD_STORE_URL", db.url())];
    let setup = setup(&overrides).await.with_replicas(1, &overrides).await;
    let key = issue(&setup, json!({"role": "member", "rpm_limit": 10})).await;
    let apps = [&setup.app, &setup.replicas[0]];
    let mut admitted = 0;
    for index in 0..6 {
        if call(apps[index % 2], &key, &six_token_call()).await == 200 {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 6);
    let pg = |action: &str| {
        let output = std::process::Command::new(&pg_ctl)
            .arg(action)
            .output()
            .unwrap();
        assert!(output.status.success(), "pg_ctl {action}");
    };
    pg("stop");
    for app in apps {
        assert_eq!(call(app, &key, &six_token_call()).await, 503);
    }
    pg("start");
    let back = Instant::now();
    while setup
        .app
        .request(Method::GET, "/readyz")
        .send()
        .await
        .unwrap()
        .status()
        != 200
    {
        assert!(back.elapsed() < Duration::from_secs(15));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for index in 0..20 {
        if call(apps[index % 2], &key, &six_token_call()).await == 200 {
            admitted += 1;
        }
    }
    // 10 a minute, one slice per replica, and a sixth of a request per second refilled.
    let refilled = (back.elapsed().as_secs_f64() / 6.0).ceil() as u64 + 1;
    assert!(
        admitted <= 10 + 2 + refilled,
        "{admitted} admitted under rpm 10"
    );
    eprintln!("{admitted} admitted under rpm 10 across a database restart");
}

#[tokio::test]
async fn a_key_rejected_on_one_replica_fails_fast_on_the_others() {
    let Some((_db, setup)) = three_replicas(&[]).await else {
        return;
    };
    let [a, b, c] = replicas(&setup);
    for app in [a, b, c] {
        assert_eq!(call(app, &setup.key, &six_token_call()).await, 200);
    }
    setup.app.mock.revoke(&setup.secret);
    assert_eq!(call(a, &setup.key, &six_token_call()).await, 424);
    let rejected_at = Instant::now();
    // Within a second every replica refuses before any upstream byte (it may first call the
    // provider once more while its cached record is younger than 500 ms: that call is refused
    // by the provider and answers 424 too).
    for app in [b, c] {
        loop {
            let seen = setup.app.mock.calls(&setup.secret);
            let status = call(app, &setup.key, &six_token_call()).await;
            assert_eq!(status, 424);
            if setup.app.mock.calls(&setup.secret) == seen {
                break;
            }
            assert!(
                rejected_at.elapsed() < Duration::from_secs(1),
                "a second after the rejection, a replica still calls the provider"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    eprintln!(
        "rejection seen everywhere after {} ms",
        rejected_at.elapsed().as_millis()
    );
    // Parked everywhere: no replica calls the provider with the refused key again.
    let seen = setup.app.mock.calls(&setup.secret);
    for app in [a, b, c] {
        assert_eq!(call(app, &setup.key, &six_token_call()).await, 424);
    }
    assert_eq!(setup.app.mock.calls(&setup.secret), seen);
}

#[tokio::test]
async fn a_master_key_rotation_under_steady_traffic_fails_no_call() {
    let Some((_db, setup)) = three_replicas(&[]).await else {
        return;
    };
    for index in 0..30 {
        setup
            .app
            .connect_openai(
                &setup.tenant,
                &format!("r{index}"),
                &format!("sk-rotation-traffic-{index}-0123456789"),
            )
            .await;
    }
    let rotated = setup.replicas[1]
        .operator(Method::POST, "/admin/v1/masterkey/rotate")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(rotated.status(), 202);
    // Calls on every replica, one after another, until the re-wrap is done (and a few more).
    let mut statuses = Vec::new();
    let started = Instant::now();
    loop {
        for app in replicas(&setup) {
            statuses.push(call(app, &setup.key, &six_token_call()).await);
        }
        let status = setup.app.operator_get("/admin/v1/masterkey").await;
        if status["rewrap"]["state"] == "done" {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{status}");
    }
    for app in replicas(&setup) {
        statuses.push(call(app, &setup.key, &six_token_call()).await);
    }
    assert!(statuses.iter().all(|status| *status == 200), "{statuses:?}");
    eprintln!("{} calls during the rotation, all answered", statuses.len());
}

#[tokio::test]
async fn a_departments_allow_list_is_enforced_on_every_replica() {
    let Some((_db, setup)) = three_replicas(&[]).await else {
        return;
    };
    setup
        .admin(
            Method::POST,
            "/departments",
            Some(json!({"name": "support", "models": ["gpt-4o-mini"]})),
        )
        .await;
    let key = issue(&setup, json!({"role": "member", "department": "support"})).await;
    let allowed = six_token_call();
    let mut refused = six_token_call();
    refused["model"] = json!("team-openai/gpt-4o");
    for app in replicas(&setup) {
        assert_eq!(call(app, &key, &allowed).await, 200);
        let before = setup.app.mock.total_calls();
        let response = app
            .with_key(&key, Method::POST, "/v1/chat/completions")
            .json(&refused)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "model_not_allowed", "{body}");
        assert_eq!(
            setup.app.mock.total_calls(),
            before,
            "refused before any upstream call"
        );
    }
}

/// Runs `sql` on the test database as its owner.
fn psql(db: &TestDb, sql: &str) {
    let output = std::process::Command::new("psql")
        .args([db.url(), "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `best_effort`, as documented: a call goes upstream even when its ledger row cannot be
/// written, the gap is logged and counted; `strict` refuses the same call with no upstream
/// byte. The ledger "cannot record" because its table is away while the rest of the database
/// answers.
#[tokio::test]
async fn best_effort_calls_when_the_ledger_cannot_record_and_strict_refuses() {
    let Some((db, setup)) = three_replicas(&[("KEYWARD_LEDGER_MODE", "best_effort")]).await else {
        return;
    };
    let strict = setup.app.sibling(&[("KEYWARD_STORE_URL", db.url())]).await;
    for app in replicas(&setup) {
        assert_eq!(call(app, &setup.key, &six_token_call()).await, 200);
    }
    assert_eq!(call(&strict, &setup.key, &six_token_call()).await, 200);
    psql(&db, "ALTER TABLE ledger RENAME TO ledger_away");
    let before = setup.app.mock.calls(&setup.secret);
    for app in replicas(&setup) {
        assert_eq!(call(app, &setup.key, &six_token_call()).await, 200);
    }
    assert_eq!(setup.app.mock.calls(&setup.secret) - before, 3);
    let response = strict
        .with_key(&setup.key, Method::POST, "/v1/chat/completions")
        .json(&six_token_call())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "ledger_unavailable", "{body}");
    assert_eq!(
        setup.app.mock.calls(&setup.secret) - before,
        3,
        "strict sent nothing"
    );
    assert!(captured_logs().contains("calling anyway (best_effort)"));
    let failures = setup
        .app
        .metric("keyward_ledger_write_failures_total")
        .await;
    assert!(failures >= 1, "{failures}");
    psql(&db, "ALTER TABLE ledger_away RENAME TO ledger");
    assert_eq!(call(&strict, &setup.key, &six_token_call()).await, 200);
}
