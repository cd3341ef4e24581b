//! Platform keys: issued once, stored as a hash, refused when revoked, expired or altered.

use keyward_domain::{Actor, DomainError, PlatformKeyInput};

use crate::TestDomain;

#[tokio::test]
async fn issued_keys_authenticate_until_revoked() {
    let test = TestDomain::new().await;
    let acme = test.tenant("acme").await;
    let issued = test
        .keyward
        .issue_platform_key(
            &acme,
            PlatformKeyInput {
                role: Some("admin".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let key = issued.key.expose_secret().to_owned();
    assert!(key.starts_with("kw_") && key.len() == 58, "{key}");
    assert_ne!(issued.record.key_hash, key);
    assert!(matches!(
        test.keyward.authenticate_platform_key(&key).await.unwrap(),
        Actor::TenantAdmin { tenant, .. } if tenant == acme.tenant()
    ));
    // One changed character in the secret part is refused.
    let mut altered = key.clone().into_bytes();
    let last = altered.len() - 1;
    altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    assert!(matches!(
        test.keyward.authenticate_platform_key(&altered).await,
        Err(DomainError::InvalidPlatformKey)
    ));
    for garbage in ["", "kw_", "Bearer kw_x", &"kw_".repeat(30)] {
        assert!(test
            .keyward
            .authenticate_platform_key(garbage)
            .await
            .is_err());
    }
    test.keyward
        .revoke_platform_key(&acme, issued.record.id)
        .await
        .unwrap();
    assert!(matches!(
        test.keyward.authenticate_platform_key(&key).await,
        Err(DomainError::InvalidPlatformKey)
    ));
}

#[tokio::test]
async fn member_keys_carry_department_and_allow_list_and_cannot_administer() {
    let test = TestDomain::new().await;
    let acme = test.tenant("acme").await;
    test.keyward
        .create_department(
            &acme,
            keyward_domain::DepartmentInput {
                name: "research".into(),
                models: Some(vec!["gpt-4o".into()]),
            },
        )
        .await
        .unwrap();
    let issued = test
        .keyward
        .issue_platform_key(
            &acme,
            PlatformKeyInput {
                department: Some("research".into()),
                models: Some(vec!["gpt-4o-mini".into()]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let actor = test
        .keyward
        .authenticate_platform_key(issued.key.expose_secret())
        .await
        .unwrap();
    let Actor::Member {
        department, models, ..
    } = &actor
    else {
        panic!("expected a member actor");
    };
    assert!(department.is_some());
    assert_eq!(models.as_deref(), Some(&["gpt-4o-mini".to_owned()][..]));
    let err = test.keyward.scope(&actor, acme.tenant()).await.unwrap_err();
    assert_eq!(err.code().as_str(), "forbidden");

    let err = test
        .keyward
        .issue_platform_key(
            &acme,
            PlatformKeyInput {
                department: Some("sales".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("department"), "{err}");
}

#[tokio::test]
async fn expired_keys_are_refused() {
    let test = TestDomain::new().await;
    let acme = test.tenant("acme").await;
    let past = PlatformKeyInput {
        expires_at: Some("2020-01-01T00:00:00Z".into()),
        ..Default::default()
    };
    assert!(test.keyward.issue_platform_key(&acme, past).await.is_err());
    let in_an_hour = keyward_core::Timestamp::from_unix_millis(
        keyward_core::Timestamp::now().unix_millis() + 3_600_000,
    );
    let expiring = || PlatformKeyInput {
        expires_at: Some(in_an_hour.to_rfc3339()),
        ..Default::default()
    };
    let valid = test
        .keyward
        .issue_platform_key(&acme, expiring())
        .await
        .unwrap();
    assert!(test
        .keyward
        .authenticate_platform_key(valid.key.expose_secret())
        .await
        .is_ok());
    // Time passing is the database's expiry moving behind the clock: the wall clock that
    // decides expiry cannot be paused, and no test waits on it. The key was never
    // authenticated, so no cached record hides the change.
    let lapsed = test
        .keyward
        .issue_platform_key(&acme, expiring())
        .await
        .unwrap();
    let a_moment_ago = keyward_core::Timestamp::now().unix_millis() - 1;
    let pool = sqlx::SqlitePool::connect(&test.db_url()).await.unwrap();
    let moved = sqlx::query("UPDATE platform_keys SET expires_at = ? WHERE id = ?")
        .bind(a_moment_ago)
        .bind(lapsed.record.id.to_string())
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(moved.rows_affected(), 1);
    assert!(test
        .keyward
        .authenticate_platform_key(lapsed.key.expose_secret())
        .await
        .is_err());
}
