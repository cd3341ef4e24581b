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
        limits: crate::KeyLimits,
    },
}

/// Who acted, as the audit log names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActorName {
    Operator,
    Key(PlatformKeyId),
    /// Keyward itself (alerts, background jobs).
    System,
}

impl std::fmt::Display for ActorName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Operator => f.write_str("operator"),
            Self::Key(key) => write!(f, "key:{key}"),
            Self::System => f.write_str("keyward"),
        }
    }
}

impl Actor {
    pub fn name(&self) -> ActorName {
        match self {
            Self::Operator => ActorName::Operator,
            Self::TenantAdmin { key, .. } | Self::Member { key, .. } => ActorName::Key(*key),
        }
    }
}

/// Proof that an actor may act on one tenant, which exists. Only [`Keyward::scope`] makes one.
#[derive(Clone, Copy, Debug)]
pub struct TenantScope {
    tenant: TenantId,
    actor: ActorName,
}

impl TenantScope {
    pub fn tenant(&self) -> TenantId {
        self.tenant
    }

    /// Who acts within this scope.
    pub fn actor(&self) -> ActorName {
        self.actor
    }

    /// Whether the operator (not a tenant's key) acts.
    pub fn is_operator(&self) -> bool {
        matches!(self.actor, ActorName::Operator)
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
            Some(_) => Ok(TenantScope {
                tenant,
                actor: actor.name(),
            }),
            None => Err(not_found),
        }
    }
}
