//! Seal/open properties of the vault: round trips, tamper evidence, row binding, typed errors
//! for malformed blobs, and reloading when another process rotates the keyring.

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use keyward_core::{KeyVersion, SealedSecret, TenantId};
use keyward_vault::{FileSource, MasterKeySource, RowBinding, Vault, VaultError};
use proptest::prelude::*;

struct Fixture {
    _dir: tempfile::TempDir,
    source: Arc<FileSource>,
    vault: Vault,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let source = Arc::new(FileSource::new(dir.path().join("master.key")));
    source.create_if_absent().unwrap();
    let vault = Vault::load(source.clone()).await.unwrap();
    Fixture {
        _dir: dir,
        source,
        vault,
    }
}

fn binding() -> RowBinding {
    RowBinding {
        tenant: TenantId::generate(),
        record: "0192f5c4-7b7e-7cc0-9d1e-5f3a2b1c0d4e".into(),
        field: "credential.secret",
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

proptest! {
    #[test]
    fn any_secret_round_trips(secret in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let rt = runtime();
        let fixture = rt.block_on(fixture());
        let binding = binding();
        let sealed = fixture.vault.seal(&secret, &binding).unwrap();
        let opened = rt.block_on(fixture.vault.open(&sealed, &binding)).unwrap();
        prop_assert_eq!(&*opened, &secret);
        // Layout: nonce(12) || ciphertext(len) || tag(16).
        prop_assert_eq!(STANDARD.decode(&sealed.blob).unwrap().len(), 12 + secret.len() + 16);
    }

    #[test]
    fn garbage_blobs_give_typed_errors(blob in ".{0,200}") {
        let rt = runtime();
        let fixture = rt.block_on(fixture());
        let sealed = SealedSecret { blob, key_version: KeyVersion::MIN };
        let err = rt.block_on(fixture.vault.open(&sealed, &binding())).unwrap_err();
        let typed = matches!(
            err,
            VaultError::BlobNotBase64 | VaultError::BlobTooShort { .. } | VaultError::OpenFailed { .. }
        );
        prop_assert!(typed, "unexpected error kind");
    }
}

#[tokio::test]
async fn every_single_bit_flip_fails_to_open() {
    let fixture = fixture().await;
    let binding = binding();
    let sealed = fixture
        .vault
        .seal(b"sk-test-bitflip-0123456789", &binding)
        .unwrap();
    let raw = STANDARD.decode(&sealed.blob).unwrap();
    for bit in 0..raw.len() * 8 {
        let mut flipped = raw.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        let tampered = SealedSecret {
            blob: STANDARD.encode(&flipped),
            key_version: sealed.key_version,
        };
        let err = fixture.vault.open(&tampered, &binding).await.unwrap_err();
        assert!(
            matches!(err, VaultError::OpenFailed { .. }),
            "bit {bit}: {err}"
        );
    }
}

#[tokio::test]
async fn a_blob_moved_to_another_row_does_not_open() {
    let fixture = fixture().await;
    let original = binding();
    let sealed = fixture
        .vault
        .seal(b"sk-tenant-a-secret", &original)
        .unwrap();
    let other_tenant = RowBinding {
        tenant: TenantId::generate(),
        ..original.clone()
    };
    let other_record = RowBinding {
        record: "0192f5c4-7b7e-7cc0-9d1e-000000000000".into(),
        ..original.clone()
    };
    let other_field = RowBinding {
        field: "chunk.text",
        ..original.clone()
    };
    for wrong in [other_tenant, other_record, other_field] {
        let err = fixture.vault.open(&sealed, &wrong).await.unwrap_err();
        assert!(matches!(err, VaultError::OpenFailed { .. }), "{wrong:?}");
    }
    assert!(fixture.vault.open(&sealed, &original).await.is_ok());
}

#[tokio::test]
async fn truncated_and_oversized_blobs_are_refused_with_typed_errors() {
    let fixture = fixture().await;
    let binding = binding();
    let sealed = fixture.vault.seal(b"sk-abc", &binding).unwrap();
    let raw = STANDARD.decode(&sealed.blob).unwrap();
    let open = |blob: String| {
        let sealed = SealedSecret {
            blob,
            key_version: KeyVersion::MIN,
        };
        let vault = &fixture.vault;
        let binding = binding.clone();
        async move { vault.open(&sealed, &binding).await.unwrap_err() }
    };
    assert!(matches!(
        open(STANDARD.encode(&raw[..27])).await,
        VaultError::BlobTooShort { len: 27 }
    ));
    assert!(matches!(
        open(STANDARD.encode(&raw[..raw.len() - 1])).await,
        VaultError::OpenFailed { .. }
    ));
    assert!(matches!(
        open(STANDARD.encode(vec![0u8; 64 * 1024])).await,
        VaultError::BlobTooLong { .. }
    ));
    assert!(matches!(
        open("not base64!".into()).await,
        VaultError::BlobNotBase64
    ));
    let too_long = vec![0u8; 17 * 1024];
    assert!(matches!(
        fixture.vault.seal(&too_long, &binding).unwrap_err(),
        VaultError::PlaintextTooLong { .. }
    ));
}

#[tokio::test]
async fn two_seals_of_the_same_secret_differ() {
    let fixture = fixture().await;
    let binding = binding();
    let first = fixture.vault.seal(b"sk-same", &binding).unwrap();
    let second = fixture.vault.seal(b"sk-same", &binding).unwrap();
    assert_ne!(first.blob[..16], second.blob[..16], "nonces must differ");
}

#[tokio::test(start_paused = true)]
async fn a_version_sealed_elsewhere_is_picked_up_by_reloading() {
    let fixture = fixture().await;
    let binding = binding();
    // Another process rotates: it appends version 2 and seals with it.
    let other = Vault::load(fixture.source.clone()).await.unwrap();
    other.prepare_rotation().await.unwrap();
    let sealed = other.seal(b"sk-rotated", &binding).unwrap();
    assert_eq!(sealed.key_version.get(), 2);
    // Past the least interval between reloads for an unknown version (250 ms).
    tokio::time::advance(std::time::Duration::from_millis(300)).await;
    let opened = fixture.vault.open(&sealed, &binding).await.unwrap();
    assert_eq!(&*opened, b"sk-rotated");
    assert_eq!(fixture.vault.keyring().primary().get(), 2);
}

#[tokio::test]
async fn a_missing_version_names_itself_and_the_source() {
    let fixture = fixture().await;
    let sealed = SealedSecret {
        blob: STANDARD.encode([0u8; 40]),
        key_version: KeyVersion::new(7).unwrap(),
    };
    let err = fixture.vault.open(&sealed, &binding()).await.unwrap_err();
    let message = err.to_string();
    assert!(message.contains("version 7"), "{message}");
    assert!(message.contains(&fixture.source.location()), "{message}");
}
