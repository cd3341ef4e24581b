//! Master keys: fail-fast startup on a wrong or missing key, and online rotation under load
//! with zero failed opens.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use keyward_domain::{Actor, DomainError, RewrapState, VersionState};
use tokio_util::sync::CancellationToken;

use crate::{open, TestDomain};

#[tokio::test]
async fn a_different_key_under_a_recorded_version_refuses_to_start() {
    let test = TestDomain::new().await;
    let acme = test.tenant("acme").await;
    test.openai_credential(&acme, "main", "sk-0123456789abcdefghij")
        .await;
    // The operator points Keyward at a freshly generated keyring by mistake.
    let key_path = test.dir.path().join("master.key");
    std::fs::remove_file(&key_path).unwrap();
    let err = open(&test.dir).await.unwrap_err();
    assert!(
        matches!(err, DomainError::MasterKeyMismatch { .. }),
        "{err}"
    );
    let message = err.to_string();
    assert!(message.contains("version 1"), "{message}");
    assert!(
        message.contains(&key_path.display().to_string()),
        "{message}"
    );
}

#[tokio::test]
async fn a_keyring_missing_a_version_in_use_refuses_to_start() {
    let test = TestDomain::new().await;
    let acme = test.tenant("acme").await;
    test.keyward
        .rotate_master_key(&Actor::Operator)
        .await
        .unwrap();
    // Sealed under version 2 now, then version 2 is dropped from the file.
    test.openai_credential(&acme, "main", "sk-0123456789abcdefghij")
        .await;
    let key_path = test.dir.path().join("master.key");
    let text = std::fs::read_to_string(&key_path).unwrap();
    let first_line: String = text.lines().next().unwrap().to_owned() + "\n";
    std::fs::write(&key_path, first_line).unwrap();
    let err = open(&test.dir).await.unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, DomainError::MasterKeyMissing { .. }),
        "{message}"
    );
    assert!(message.contains("version 2"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotation_under_traffic_rewraps_every_row_with_zero_failed_opens() {
    let test = TestDomain::new().await;
    let acme = test.tenant("acme").await;
    let mut ids = Vec::new();
    for index in 0..150 {
        let secret = format!("sk-rotation-test-{index:04}-abcdefgh");
        ids.push((
            test.openai_credential(&acme, &format!("c{index}"), &secret)
                .await
                .id,
            secret,
        ));
    }
    let ids = Arc::new(ids);
    let stop = CancellationToken::new();
    let opens = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let mut readers = tokio::task::JoinSet::new();
    for reader in 0..8 {
        let keyward = test.keyward.clone();
        let (ids, stop, opens, failures) =
            (ids.clone(), stop.clone(), opens.clone(), failures.clone());
        readers.spawn(async move {
            let mut index = reader;
            while !stop.is_cancelled() {
                let (id, expected) = &ids[index % ids.len()];
                match keyward.open_credential_secret(&acme, *id).await {
                    Ok(opened)
                        if opened.secret.as_ref().map(|s| s.expose_secret())
                            == Some(expected.as_str()) => {}
                    _ => {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
                opens.fetch_add(1, Ordering::Relaxed);
                index += 7;
            }
        });
    }

    let status = test
        .keyward
        .rotate_master_key(&Actor::Operator)
        .await
        .unwrap();
    assert_eq!(status.primary.get(), 2);
    // A second server process on the same files runs the re-wrap, as the leased runner.
    let runner = open(&test.dir).await.unwrap();
    let worked = runner
        .run_key_maintenance("runner-1", &stop.child_token())
        .await
        .unwrap();
    assert!(worked);
    stop.cancel();
    while let Some(reader) = readers.join_next().await {
        reader.unwrap();
    }

    assert!(
        opens.load(Ordering::Relaxed) > 100,
        "the readers must really have run"
    );
    assert_eq!(failures.load(Ordering::Relaxed), 0);
    let status = test
        .keyward
        .master_key_status(&Actor::Operator)
        .await
        .unwrap();
    assert_eq!(status.rewrap.state, Some(RewrapState::Done));
    assert_eq!((status.rewrap.done, status.rewrap.total), (150, 150));
    let v1 = &status.versions[0];
    assert_eq!(
        (v1.version.get(), v1.state, v1.rows),
        (1, VersionState::DecryptOnly, 0)
    );
    let v2 = &status.versions[1];
    assert_eq!(
        (v2.version.get(), v2.state, v2.rows),
        (2, VersionState::Primary, 150)
    );
}

#[tokio::test]
async fn only_the_operator_sees_or_rotates_master_keys() {
    let test = TestDomain::new().await;
    let acme = test.tenant("acme").await;
    let admin = Actor::TenantAdmin {
        tenant: acme.tenant(),
        key: keyward_core::PlatformKeyId::generate(),
    };
    assert_eq!(
        test.keyward
            .master_key_status(&admin)
            .await
            .unwrap_err()
            .code()
            .as_str(),
        "forbidden"
    );
    assert_eq!(
        test.keyward
            .rotate_master_key(&admin)
            .await
            .unwrap_err()
            .code()
            .as_str(),
        "forbidden"
    );
}
