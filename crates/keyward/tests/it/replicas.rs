//! Several replicas on one PostgreSQL database: budgets that hold across them, admin changes
//! that reach every replica at once, calls in flight that no other replica interrupts, and a
//! database outage that refuses calls and heals by itself.

use std::time::{Duration, Instant};

use keyward_core::{CredentialId, ProviderId, RequestId, TenantId, Timestamp};
use keyward_store::{CallStatus, InstanceRecord, PendingCall};
use keyward_test_db::TestDb;
use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::TestApp;
use crate::ledger::{a_cap_that_fits_37_calls_admits_exactly_37_of_200, setup, six_token_call};

#[tokio::test]
async fn a_hard_cap_holds_across_three_replicas_on_postgresql() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let overrides = [("KEYWARD_STORE_URL", db.url())];
    let setup = setup(&overrides).await.with_replicas(2, &overrides).await;
    a_cap_that_fits_37_calls_admits_exactly_37_of_200(setup).await;
}

/// Calls `request` on `app` until it answers `expected`, up to one second; the delay.
async fn delay_until(expected: u16, request: impl Fn() -> reqwest::RequestBuilder) -> Duration {
    let start = Instant::now();
    loop {
        let status = request().send().await.unwrap().status().as_u16();
        if status == expected {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "still {status} after one second, expected {expected}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn admin_changes_on_one_replica_take_effect_on_the_others_at_once() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let overrides = [("KEYWARD_STORE_URL", db.url())];
    let setup = setup(&overrides).await.with_replicas(2, &overrides).await;
    let (a, b, c) = (&setup.app, &setup.replicas[0], &setup.replicas[1]);
    let tenant = setup.tenant.clone();
    let chat = |app: &TestApp, key: &str| {
        app.with_key(key, Method::POST, "/v1/chat/completions")
            .json(&six_token_call())
    };
    for app in [a, b, c] {
        assert_eq!(chat(app, &setup.key).send().await.unwrap().status(), 200);
    }
    let mut delays = Vec::new();

    // A key revoked on A is refused by B and C.
    let keys: Value = setup.admin(Method::GET, "/keys", None).await;
    let key_id = keys["data"][0]["id"].as_str().unwrap().to_owned();
    a.operator(
        Method::POST,
        &format!("/admin/v1/tenants/{tenant}/keys/{key_id}/revoke"),
    )
    .send()
    .await
    .unwrap();
    for app in [b, c] {
        delays.push((
            "key revoked",
            delay_until(401, || chat(app, &setup.key)).await,
        ));
    }

    // A credential disabled on B is refused by A and C; enabled again, it serves.
    let (_, key) = b.issue_key(&tenant, "member").await;
    let credentials: Value = setup.admin(Method::GET, "/credentials", None).await;
    let credential = credentials["data"][0]["id"].as_str().unwrap().to_owned();
    let path = format!("/admin/v1/tenants/{tenant}/credentials/{credential}");
    b.operator(Method::POST, &format!("{path}/disable"))
        .send()
        .await
        .unwrap();
    for app in [a, c] {
        delays.push((
            "credential disabled",
            delay_until(403, || chat(app, &key)).await,
        ));
    }
    b.operator(Method::POST, &format!("{path}/enable"))
        .send()
        .await
        .unwrap();
    delays.push((
        "credential enabled",
        delay_until(200, || chat(a, &key)).await,
    ));

    // A hard budget of zero set on C refuses calls on A.
    c.operator(Method::PUT, &format!("/admin/v1/tenants/{tenant}/budgets"))
        .json(&json!({"scope": "tenant", "period": "day", "hard_limit_usd": "0"}))
        .send()
        .await
        .unwrap();
    setup.set_exact_rate().await;
    delays.push(("budget set", delay_until(429, || chat(a, &key)).await));
    c.operator(Method::PUT, &format!("/admin/v1/tenants/{tenant}/budgets"))
        .json(&json!({"scope": "tenant", "period": "day", "hard_limit_usd": "100"}))
        .send()
        .await
        .unwrap();

    // A master-key version added on A, and a credential rotated under it on A: B opens it.
    let rotated = a
        .operator(Method::POST, "/admin/v1/masterkey/rotate")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(rotated.status(), 202, "{}", rotated.text().await.unwrap());
    let response = a
        .operator(Method::POST, &format!("{path}/rotate"))
        .json(&json!({"secret": setup.secret}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    delays.push((
        "master key version added",
        delay_until(200, || chat(b, &key)).await,
    ));

    for (change, delay) in &delays {
        eprintln!("propagation: {change}: {} µs", delay.as_micros());
    }
}

#[tokio::test]
async fn replicas_interrupt_only_the_calls_of_instances_that_are_gone() {
    for db in [Some(TestDb::sqlite()), TestDb::postgres().await]
        .into_iter()
        .flatten()
    {
        let first = TestApp::spawn_with(&[("KEYWARD_STORE_URL", db.url())]).await;
        let tenant = first.create_tenant("acme").await;
        let store = first.store().await;
        let now = Timestamp::now();
        let host = keyward_domain::instance::host_name();
        // A process of this host that no longer exists, and a live replica on another host.
        let gone = InstanceRecord {
            id: format!("gone-{}", RequestId::generate()),
            host: host.clone(),
            pid: 4_194_305,
            started_at: now,
            heartbeat_at: now,
        };
        let live = InstanceRecord {
            id: format!("live-{}", RequestId::generate()),
            host: "another-host".to_owned(),
            pid: 1,
            started_at: now,
            heartbeat_at: now,
        };
        // Another container with the same hostname: its pids are not this namespace's, so a
        // pid missing here says nothing about it (#23). Its heartbeat is fresh: it is alive.
        let twin = InstanceRecord {
            id: format!("twin-{}", RequestId::generate()),
            host: host.split(' ').next().unwrap().to_owned(),
            pid: 4_194_305,
            started_at: now,
            heartbeat_at: now,
        };
        let mut rows = Vec::new();
        for instance in [&gone, &live, &twin] {
            store.register_instance(instance).await.unwrap();
            let request_id = RequestId::generate();
            let pending = PendingCall {
                request_id,
                created_at: now,
                tenant_id: tenant.parse::<TenantId>().unwrap(),
                key_id: None,
                department_id: None,
                credential_id: CredentialId::generate(),
                credential_label: "x".to_owned(),
                provider: ProviderId::OpenAi,
                endpoint: "/v1/chat/completions",
                model_requested: "gpt-4o-mini".to_owned(),
                stream: true,
                tags: Default::default(),
                fallback_of: None,
                reserved_micro_usd: 0,
                priced: true,
                unbounded_input: None,
            };
            store
                .for_instance(&instance.id)
                .admit_call(&pending)
                .await
                .unwrap();
            rows.push(request_id);
        }
        // A replica starting now sweeps: the dead process's call is interrupted, the live
        // replica's call in flight is left alone.
        let _second = first.sibling(&[("KEYWARD_STORE_URL", db.url())]).await;
        let tenant_id = tenant.parse::<TenantId>().unwrap();
        let status = |row: RequestId| {
            let store = store.clone();
            async move { store.call(tenant_id, row).await.unwrap().unwrap().status }
        };
        assert_eq!(
            status(rows[0]).await,
            CallStatus::Interrupted,
            "{}",
            db.url()
        );
        assert_eq!(status(rows[1]).await, CallStatus::Pending, "{}", db.url());
        assert_eq!(
            status(rows[2]).await,
            CallStatus::Pending,
            "{}: the twin container",
            db.url()
        );
        let instances: Vec<String> = store
            .instances()
            .await
            .unwrap()
            .into_iter()
            .map(|instance| instance.id)
            .collect();
        assert!(!instances.contains(&gone.id));
        assert!(instances.contains(&live.id));
        assert!(instances.contains(&twin.id));
    }
}

#[tokio::test]
async fn a_database_outage_refuses_calls_and_heals_by_itself() {
    let Some((db, pg_ctl)) = TestDb::fault_postgres().await else {
        return;
    };
    let setup = setup(&[("KEYWARD_STORE_URL", db.url())]).await;
    let app = &setup.app;
    assert_eq!(setup.chat(&six_token_call()).await.status(), 200);
    let ready = || async {
        app.request(Method::GET, "/readyz")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(ready().await, 200);

    let pg = |action: &str| {
        let status = std::process::Command::new(&pg_ctl)
            .arg(action)
            .output()
            .unwrap();
        assert!(
            status.status.success(),
            "pg_ctl {action}: {}",
            String::from_utf8_lossy(&status.stderr)
        );
    };
    pg("stop");
    assert_eq!(ready().await, 503);
    let refused = setup.chat(&six_token_call()).await;
    assert_eq!(refused.status(), 503);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "ledger_unavailable", "{body}");
    // Nothing went upstream unrecorded.
    assert_eq!(app.mock.calls(&setup.secret), 1);

    pg("start");
    let start = Instant::now();
    while ready().await != 200 {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "not ready 15 s after the database returned"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "ready again {} ms after PostgreSQL started",
        start.elapsed().as_millis()
    );
    assert_eq!(setup.chat(&six_token_call()).await.status(), 200);
    assert_eq!(app.mock.calls(&setup.secret), 2);
}

#[tokio::test]
async fn one_rewrap_runs_once_across_three_replicas() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let overrides = [("KEYWARD_STORE_URL", db.url())];
    let setup = setup(&overrides).await.with_replicas(2, &overrides).await;
    for index in 0..40 {
        setup
            .app
            .connect_openai(
                &setup.tenant,
                &format!("c{index}"),
                &format!("sk-rewrap-{index}-0123456789abcdef"),
            )
            .await;
    }
    let started = setup.replicas[1]
        .operator(Method::POST, "/admin/v1/masterkey/rotate")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 202);
    // Every replica's maintenance loop competes for the job; the lease lets one work it.
    let status = setup
        .app
        .master_key_status_when(Duration::from_secs(30), |status| {
            status["rewrap"]["state"] == "done"
        })
        .await;
    assert_eq!(status["rewrap"]["state"], "done", "{status}");
    // 41 credentials (the setup's and 40 more), each re-sealed exactly once.
    assert_eq!(status["rewrap"]["done"], 41, "{status}");
    assert_eq!(status["rewrap"]["total"], 41, "{status}");
    assert_eq!(status["rewrap"]["failed"], 0, "{status}");
    assert_eq!(status["versions"][0]["rows"], 0, "{status}");
    assert_eq!(status["versions"][1]["rows"], 41, "{status}");
    // Every replica still opens every credential.
    for app in [&setup.app, &setup.replicas[0], &setup.replicas[1]] {
        assert_eq!(
            app.with_key(&setup.key, Method::POST, "/v1/chat/completions")
                .json(&six_token_call())
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
}

/// A call that finishes after its row was marked `interrupted` (its replica judged gone during a
/// long pause) still records what it used on that row: nothing the provider bills is lost (#23).
#[tokio::test]
async fn a_call_that_ends_after_its_row_was_interrupted_records_its_usage() {
    let setup = setup(&[]).await;
    let response = setup
        .app
        .with_key(&setup.key, Method::POST, "/v1/chat/completions")
        .json(
            &json!({"model": "team-openai/mock-slow-stream", "stream": true,
                      "messages": [{"role": "user", "content": "Hello there, mock!"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let request_id: RequestId = response.headers()["x-keyward-request-id"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    // Another replica judges this one gone mid-call and marks its pending rows interrupted.
    let store = setup.app.store().await;
    let own: Vec<String> = store
        .instances()
        .await
        .unwrap()
        .into_iter()
        .map(|instance| instance.id)
        .collect();
    assert_eq!(
        store
            .interrupt_pending_calls(&own, false, Timestamp::now())
            .await
            .unwrap(),
        1
    );
    // The stream goes on to its end; its settlement finds the row interrupted.
    let text = response.text().await.unwrap();
    assert!(text.contains("[DONE]"));
    let tenant: TenantId = setup.tenant.parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let row = store.call(tenant, request_id).await.unwrap().unwrap();
        assert_eq!(row.status, CallStatus::Interrupted);
        if row.output_tokens.is_some() {
            assert_eq!((row.input_tokens, row.output_tokens), (Some(5), Some(6)));
            break;
        }
        assert!(Instant::now() < deadline, "the late usage was not recorded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
