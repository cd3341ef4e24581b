//! Integration tests of the domain against a real SQLite file and a real keyring file.
#![expect(
    clippy::unwrap_used,
    reason = "a failed setup step should fail the test loudly"
)]

mod credentials;
mod master_key;
mod platform_keys;

use std::sync::Arc;

use keyward_core::egress_policy::EgressPolicy;
use keyward_domain::{Actor, CredentialInput, Keyward, TenantScope};
use keyward_store::Store;
use keyward_vault::{FileSource, Vault};

pub struct TestDomain {
    pub dir: tempfile::TempDir,
    pub keyward: Keyward,
}

impl TestDomain {
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let keyward = open(&dir).await.unwrap();
        Self { dir, keyward }
    }

    pub fn db_url(&self) -> String {
        db_url(&self.dir)
    }

    pub async fn tenant(&self, name: &str) -> TenantScope {
        let tenant = self
            .keyward
            .create_tenant(&Actor::Operator, name)
            .await
            .unwrap();
        self.keyward
            .scope(&Actor::Operator, tenant.id)
            .await
            .unwrap()
    }

    pub async fn openai_credential(
        &self,
        scope: &TenantScope,
        label: &str,
        secret: &str,
    ) -> keyward_domain::CredentialRecord {
        self.keyward
            .connect_credential(scope, openai_input(label, secret))
            .await
            .unwrap()
    }
}

pub fn openai_input(label: &str, secret: &str) -> CredentialInput {
    CredentialInput {
        provider: "openai".into(),
        label: label.into(),
        secret: Some(keyward_core::secret::ProviderSecret::new(secret.into())),
        secret_ref: None,
        base_url: None,
        options: Default::default(),
    }
}

pub fn db_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("keyward.db").display())
}

/// Opens the domain the way `keyward serve` does: keyring file beside, database, startup check.
pub async fn open(dir: &tempfile::TempDir) -> Result<Keyward, keyward_domain::DomainError> {
    let source = Arc::new(FileSource::new(dir.path().join("master.key")));
    source.create_if_absent().unwrap();
    let vault = Arc::new(Vault::load(source).await.unwrap());
    let store = Store::open(&db_url(dir)).await.unwrap();
    let egress =
        keyward_router::EgressClient::new(&keyward_router::EgressConfig::default()).unwrap();
    Keyward::start(keyward_domain::Parts {
        store,
        vault,
        egress: EgressPolicy::default(),
        router: Arc::new(keyward_router::Router::new(egress, 1 << 20)),
        ledger_mode: keyward_domain::LedgerMode::Strict,
        prices: Arc::new(keyward_domain::PriceBook::shipped().unwrap()),
        default_max_output_tokens: 4096,
        alerts: None,
        secrets: Arc::new(keyward_custody::SecretResolver::new(
            keyward_custody::Managers {
                aws: keyward_custody::AwsClient::new(
                    keyward_custody::ManagerHttp::new().unwrap(),
                    Arc::new(|_| None),
                ),
                vault: None,
                azure: None,
            },
            std::time::Duration::from_secs(60),
        )),
        tenant_reference_prefixes: Vec::new(),
        connectors: keyward_domain::ConnectorsConfig {
            teams_openid_metadata_url: "https://login.botframework.com/v1/.well-known/openidconfiguration".to_owned(),
            teams_token_url: "https://login.microsoftonline.com/botframework.com/oauth2/v2.0/token".to_owned(),
            teams_tenant_token_url: "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token".to_owned(),
            teams_service_url_allow: vec!["smba.trafficmanager.net".to_owned()],
            google_chat_certs_url: "https://www.googleapis.com/service_accounts/v1/metadata/x509/chat@system.gserviceaccount.com".to_owned(),
        },
    })
    .await
}
