//! Credentials: validation, tenant isolation, rotation, and what is stored.

use std::collections::BTreeMap;

use keyward_core::secret::ProviderSecret;
use keyward_domain::{Actor, CredentialInput, CredentialStatus, DomainError, PageRequest};

use crate::{openai_input, TestDomain};

#[tokio::test]
async fn a_tenant_admin_cannot_reach_another_tenants_credential() {
    let test = TestDomain::new().await;
    let acme = test.tenant("acme").await;
    let globex = test.tenant("globex").await;
    let credential = test
        .openai_credential(&acme, "main", "sk-acme-0123456789abcdef")
        .await;
    let globex_admin = Actor::TenantAdmin {
        tenant: globex.tenant(),
        key: keyward_core::PlatformKeyId::generate(),
    };
    // Asking for acme's tenant is "not found", the same as for a tenant that does not exist.
    let err = test
        .keyward
        .scope(&globex_admin, acme.tenant())
        .await
        .unwrap_err();
    assert!(matches!(err, DomainError::NotFound { what: "tenant" }));
    let missing = test
        .keyward
        .scope(&globex_admin, keyward_core::TenantId::generate())
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), missing.to_string());
    // Inside its own scope, acme's credential id does not exist.
    let own = test
        .keyward
        .scope(&globex_admin, globex.tenant())
        .await
        .unwrap();
    let err = test
        .keyward
        .credential(&own, credential.id)
        .await
        .unwrap_err();
    assert!(matches!(err, DomainError::NotFound { what: "credential" }));
    assert!(test
        .keyward
        .open_credential_secret(&own, credential.id)
        .await
        .is_err());
}

#[tokio::test]
async fn secrets_open_only_for_their_row_and_rotation_takes_effect_at_once() {
    let test = TestDomain::new().await;
    let acme = test.tenant("acme").await;
    let credential = test
        .openai_credential(&acme, "main", "sk-first-0123456789abcd")
        .await;
    assert_eq!(
        credential.fingerprint, "sk-…cd",
        "23 characters: a two-character tail"
    );
    let opened = test
        .keyward
        .open_credential_secret(&acme, credential.id)
        .await
        .unwrap();
    assert_eq!(
        opened.secret.unwrap().expose_secret(),
        "sk-first-0123456789abcd"
    );

    test.keyward
        .set_credential_enabled(&acme, credential.id, false)
        .await
        .unwrap();
    let rotated = test
        .keyward
        .rotate_credential(
            &acme,
            credential.id,
            ProviderSecret::new("sk-second-987654321wxyz".into()),
        )
        .await
        .unwrap();
    assert_eq!(rotated.fingerprint, "sk-…yz");
    assert_eq!(
        rotated.status,
        CredentialStatus::Disabled,
        "rotation keeps a disabled credential disabled"
    );
    let opened = test
        .keyward
        .open_credential_secret(&acme, credential.id)
        .await
        .unwrap();
    assert_eq!(
        opened.secret.unwrap().expose_secret(),
        "sk-second-987654321wxyz"
    );
}

#[tokio::test]
async fn a_blob_copied_onto_another_row_is_credential_unreadable() {
    let test = TestDomain::new().await;
    let acme = test.tenant("acme").await;
    let globex = test.tenant("globex").await;
    let victim = test
        .openai_credential(&acme, "main", "sk-acme-secret-000000001")
        .await;
    let attacker = test
        .openai_credential(&globex, "main", "sk-globex-secret-00000002")
        .await;
    // Someone with database access copies acme's blob onto globex's row.
    let pool = sqlx_pool(&test.db_url()).await;
    sqlx_copy_blob(&pool, &victim.id.to_string(), &attacker.id.to_string()).await;
    let err = test
        .keyward
        .open_credential_secret(&globex, attacker.id)
        .await
        .unwrap_err();
    assert_eq!(err.code().as_str(), "credential_unreadable");
    assert!(!err.to_string().contains("sk-acme"), "{err}");
}

async fn sqlx_pool(url: &str) -> sqlx::SqlitePool {
    sqlx::SqlitePool::connect(url).await.unwrap()
}

async fn sqlx_copy_blob(pool: &sqlx::SqlitePool, from: &str, to: &str) {
    sqlx::query(
        "UPDATE credentials SET (secret_blob, secret_key_version) =
         (SELECT secret_blob, secret_key_version FROM credentials WHERE id = $1) WHERE id = $2",
    )
    .bind(from)
    .bind(to)
    .execute(pool)
    .await
    .unwrap();
}

#[tokio::test]
async fn bad_credential_input_is_refused_with_the_field_named() {
    let test = TestDomain::new().await;
    let acme = test.tenant("acme").await;
    let canary = "sk-canary-input-7e1d9";
    let cases: Vec<(CredentialInput, &str)> = vec![
        (
            CredentialInput {
                provider: "openia".into(),
                ..openai_input("x", canary)
            },
            "provider",
        ),
        (openai_input("bad/label", canary), "label"),
        (
            CredentialInput {
                secret: None,
                ..openai_input("x", canary)
            },
            "secret",
        ),
        (openai_input("x", "sk-canary input 7e1d9"), "secret"),
        (
            CredentialInput {
                base_url: Some("http://169.254.169.254/v1".into()),
                ..openai_input("x", canary)
            },
            "base_url",
        ),
        (
            CredentialInput {
                options: BTreeMap::from([("region".into(), "us-east-1".into())]),
                ..openai_input("x", canary)
            },
            "options.region",
        ),
        (
            CredentialInput {
                provider: "bedrock".into(),
                ..openai_input("x", canary)
            },
            "options.region",
        ),
        (
            CredentialInput {
                provider: "azure-openai".into(),
                options: BTreeMap::from([("api_version".into(), "2024-10-21".into())]),
                ..openai_input("x", canary)
            },
            "options.resource",
        ),
    ];
    for (input, field) in cases {
        let err = test
            .keyward
            .connect_credential(&acme, input)
            .await
            .unwrap_err();
        match &err {
            DomainError::InvalidInput { field: named, .. } => assert_eq!(named, field, "{err}"),
            other => panic!("expected invalid input on {field}, got {other}"),
        }
        assert!(!err.to_string().contains("canary"), "{err}");
    }
    test.openai_credential(&acme, "dup", "sk-0123456789abcdefgh")
        .await;
    let err = test
        .keyward
        .connect_credential(&acme, openai_input("dup", "sk-0123456789abcdefgh"))
        .await
        .unwrap_err();
    assert_eq!(err.code().as_str(), "conflict");
    let page = test
        .keyward
        .credentials(&acme, &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
}

#[tokio::test]
async fn provider_specific_credentials_connect() {
    let test = TestDomain::new().await;
    let acme = test.tenant("acme").await;
    let bedrock = test
        .keyward
        .connect_credential(
            &acme,
            CredentialInput {
                provider: "bedrock".into(),
                options: BTreeMap::from([("region".into(), "eu-central-1".into())]),
                ..openai_input(
                    "aws",
                    "AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                )
            },
        )
        .await
        .unwrap();
    assert_eq!(bedrock.fingerprint, "AKIA…MPLE");
    let azure = test
        .keyward
        .connect_credential(
            &acme,
            CredentialInput {
                provider: "azure-openai".into(),
                options: BTreeMap::from([
                    ("resource".into(), "acme-east".into()),
                    ("api_version".into(), "2024-10-21".into()),
                    (
                        "deployments".into(),
                        "gpt-4o=prod-4o,text-embedding-3-small=emb".into(),
                    ),
                ]),
                ..openai_input("azure", "0123456789abcdef0123456789abcdef")
            },
        )
        .await
        .unwrap();
    assert_eq!(azure.options["resource"], "acme-east");
    let ollama = test
        .keyward
        .connect_credential(
            &acme,
            CredentialInput {
                provider: "openai-compatible".into(),
                secret: None,
                base_url: Some("https://gpu-box.example.com/v1/".into()),
                ..openai_input("ollama", "unused")
            },
        )
        .await
        .unwrap();
    assert_eq!(ollama.options["base_url"], "https://gpu-box.example.com/v1");
    assert!(ollama.secret.is_none());
    assert!(test
        .keyward
        .open_credential_secret(&acme, ollama.id)
        .await
        .unwrap()
        .secret
        .is_none());
}
