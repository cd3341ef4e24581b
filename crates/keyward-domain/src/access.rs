//! Who is calling, and the one place that decides which tenant they may touch.

use keyward_core::{DepartmentId, PlatformKeyId, TenantId};

use crate::{DomainError, Keyward};

/// An authenticated caller.
#[derive(Clone, Debug)]
pub enum Actor {
    /// Holder of `KEYWARD_ADMIN_TOKEN` (or the local CLI): every tenant.
    Operator,
    /// A platform key with role `admin`: its own tenant only.
    TenantAdmin {
        tenant: TenantId,
        key: PlatformKeyId,
    },
    /// A platform key with role `member`: model calls only, no admin API.
    Member {
        tenant: TenantId,
        key: PlatformKeyId,
        department: Option<DepartmentId>,
        models: Option<Vec<String>>,
    },
}

/// Proof that an actor may act on one tenant, which exists. Only [`Keyward::scope`] makes one.
#[derive(Clone, Copy, Debug)]
pub struct TenantScope {
    tenant: TenantId,
}

impl TenantScope {
    /// The scope of an authenticated platform key's own tenant, for model calls.
    pub(crate) fn for_platform_key(tenant: TenantId) -> Self {
        Self { tenant }
    }

    pub fn tenant(&self) -> TenantId {
        self.tenant
    }
}

impl Actor {
    /// Operator-only operations (tenants, master keys).
    pub fn require_operator(&self) -> Result<(), DomainError> {
        match self {
            Self::Operator => Ok(()),
            Self::TenantAdmin { .. } => Err(DomainError::Forbidden(
                "this operation needs the operator token (KEYWARD_ADMIN_TOKEN); a tenant admin key manages only its own tenant",
            )),
            Self::Member { .. } => Err(member_forbidden()),
        }
    }
}

fn member_forbidden() -> DomainError {
    DomainError::Forbidden(
        "member platform keys can call models but not the admin API; use a tenant admin key",
    )
}

impl Keyward {
    /// Decides whether `actor` may act on `tenant`. A tenant admin naming another tenant gets
    /// `NotFound` — the same answer as for a tenant that does not exist — so ids cannot be
    /// probed across tenants.
    pub async fn scope(&self, actor: &Actor, tenant: TenantId) -> Result<TenantScope, DomainError> {
        let not_found = DomainError::NotFound { what: "tenant" };
        match actor {
            Actor::Member { .. } => return Err(member_forbidden()),
            Actor::TenantAdmin { tenant: own, .. } if *own != tenant => return Err(not_found),
            Actor::TenantAdmin { .. } | Actor::Operator => {}
        }
        match self.store.tenant(tenant).await? {
            Some(_) => Ok(TenantScope { tenant }),
            None => Err(not_found),
        }
    }
}
