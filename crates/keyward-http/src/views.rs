//! The JSON shapes of Keyward's admin objects, shared by the admin API and the CLI's
//! `--format json`, so both print the same document. No view has a field that could hold a
//! secret: credentials show a fingerprint, platform keys a prefix (the issued key appears only
//! in [`IssuedKeyView`], once).

use std::collections::BTreeMap;

use keyward_core::Timestamp;
use keyward_domain::{
    CredentialRecord, DepartmentRecord, IssuedPlatformKey, MasterKeyStatus, PlatformKeyRecord,
    TenantRecord,
};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct TenantView {
    pub id: String,
    pub name: String,
    pub created_at: String,
}

impl From<TenantRecord> for TenantView {
    fn from(tenant: TenantRecord) -> Self {
        Self {
            id: tenant.id.to_string(),
            name: tenant.name,
            created_at: tenant.created_at.to_rfc3339(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct DepartmentView {
    pub id: String,
    pub name: String,
    pub models: Option<Vec<String>>,
    pub created_at: String,
}

impl From<DepartmentRecord> for DepartmentView {
    fn from(department: DepartmentRecord) -> Self {
        Self {
            id: department.id.to_string(),
            name: department.name,
            models: department.models,
            created_at: department.created_at.to_rfc3339(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct CredentialView {
    pub id: String,
    pub label: String,
    pub provider: String,
    /// A hint such as `sk-…a1B9`; the secret itself is never shown again.
    pub fingerprint: String,
    /// `active`, `disabled` or `rejected_by_provider`.
    pub status: String,
    pub options: BTreeMap<String, String>,
    pub created_at: String,
    pub rotated_at: Option<String>,
    pub status_changed_at: String,
}

impl From<CredentialRecord> for CredentialView {
    fn from(credential: CredentialRecord) -> Self {
        Self {
            id: credential.id.to_string(),
            label: credential.label,
            provider: credential.provider.as_str().to_owned(),
            fingerprint: credential.fingerprint,
            status: credential.status.as_str().to_owned(),
            options: credential.options,
            created_at: credential.created_at.to_rfc3339(),
            rotated_at: credential.rotated_at.map(|at| at.to_rfc3339()),
            status_changed_at: credential.status_changed_at.to_rfc3339(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct KeyView {
    pub id: String,
    pub name: Option<String>,
    pub role: String,
    /// The first characters of the key, to recognise it.
    pub prefix: String,
    pub models: Option<Vec<String>>,
    pub department_id: Option<String>,
    /// `active`, `revoked` or `expired`.
    pub status: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
    pub created_at: String,
}

impl From<PlatformKeyRecord> for KeyView {
    fn from(key: PlatformKeyRecord) -> Self {
        let status = if key.revoked_at.is_some() {
            "revoked"
        } else if key.expires_at.is_some_and(|at| at <= Timestamp::now()) {
            "expired"
        } else {
            "active"
        };
        Self {
            id: key.id.to_string(),
            name: key.name,
            role: key.role.as_str().to_owned(),
            prefix: key.display_prefix,
            models: key.models,
            department_id: key.department_id.map(|id| id.to_string()),
            status: status.to_owned(),
            expires_at: key.expires_at.map(|at| at.to_rfc3339()),
            revoked_at: key.revoked_at.map(|at| at.to_rfc3339()),
            created_at: key.created_at.to_rfc3339(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct MasterKeyView {
    /// The version that seals new secrets.
    pub primary: u32,
    pub versions: Vec<VersionView>,
    pub rewrap: RewrapView,
}

#[derive(Serialize, ToSchema)]
pub struct VersionView {
    pub version: u32,
    /// `primary`, `decrypt-only`, `retired` or `missing`.
    pub state: String,
    /// Sealed values still on this version; remove a version from the keyring only at 0.
    pub rows: u64,
    /// Public key check value identifying the key.
    pub check_value: String,
}

#[derive(Serialize, ToSchema)]
pub struct RewrapView {
    /// `pending`, `running`, `done`, `failed`, or null if no rotation ever ran.
    pub state: Option<String>,
    pub done: u64,
    pub total: u64,
    pub failed: u64,
}

impl From<MasterKeyStatus> for MasterKeyView {
    fn from(status: MasterKeyStatus) -> Self {
        Self {
            primary: status.primary.get(),
            versions: status
                .versions
                .into_iter()
                .map(|version| VersionView {
                    version: version.version.get(),
                    state: version.state.as_str().to_owned(),
                    rows: version.rows,
                    check_value: version.check_value,
                })
                .collect(),
            rewrap: RewrapView {
                state: status.rewrap.state.map(|state| state.as_str().to_owned()),
                done: status.rewrap.done,
                total: status.rewrap.total,
                failed: status.rewrap.failed,
            },
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct IssuedKeyView {
    /// The platform key. Shown this once; Keyward keeps only its hash.
    pub key: String,
    #[serde(flatten)]
    pub details: KeyView,
}

impl From<IssuedPlatformKey> for IssuedKeyView {
    fn from(issued: IssuedPlatformKey) -> Self {
        Self {
            key: issued.key.expose_secret().to_owned(),
            details: issued.record.into(),
        }
    }
}
