//! Department membership for chat users: `aad:TENANT/OBJECT` (a Teams user), `email:ADDRESS`
//! and `domain:NAME` (Google Chat users). An exact identity beats a domain; an identity or
//! domain belongs to one department of a tenant.

use keyward_core::{DepartmentId, TenantId};

use crate::{DomainError, Keyward, TenantScope};

/// The most identities one department may list.
const MAX_MEMBERS: usize = 10_000;

/// An identity in its canonical form, or why it is not one.
pub(crate) fn canonical(identity: &str) -> Result<String, String> {
    let identity = identity.trim();
    let ok = |kind: &str, value: &str| format!("{kind}:{value}");
    if let Some(rest) = identity.strip_prefix("aad:") {
        let valid = rest.split_once('/').is_some_and(|(tenant, object)| {
            !tenant.is_empty() && !object.is_empty() && !object.contains('/')
        });
        return valid
            .then(|| ok("aad", &rest.to_ascii_lowercase()))
            .ok_or_else(|| "aad:TENANT_ID/OBJECT_ID".to_owned());
    }
    if let Some(rest) = identity.strip_prefix("email:") {
        let valid = rest
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
        return valid
            .then(|| ok("email", &rest.to_ascii_lowercase()))
            .ok_or_else(|| "email:NAME@DOMAIN".to_owned());
    }
    if let Some(rest) = identity.strip_prefix("domain:") {
        let valid = rest.contains('.') && !rest.contains('@') && !rest.contains('/');
        return valid
            .then(|| ok("domain", &rest.to_ascii_lowercase()))
            .ok_or_else(|| "domain:NAME".to_owned());
    }
    Err("aad:TENANT_ID/OBJECT_ID, email:NAME@DOMAIN or domain:NAME".to_owned())
}

/// What to look up for a user, most specific first: the identity, then its email's domain.
pub(crate) fn candidates(identity: &str) -> Vec<String> {
    let mut found = vec![identity.to_ascii_lowercase()];
    if let Some((_, domain)) = identity
        .strip_prefix("email:")
        .and_then(|email| email.rsplit_once('@'))
    {
        found.push(format!("domain:{}", domain.to_ascii_lowercase()));
    }
    found
}

impl Keyward {
    /// A department of the scope's tenant by name or id.
    pub async fn department_reference(
        &self,
        scope: &TenantScope,
        department: &str,
    ) -> Result<DepartmentId, DomainError> {
        let found = match department.parse::<DepartmentId>() {
            Ok(id) => self.store.department(scope.tenant(), id).await?,
            Err(_) => {
                self.store
                    .department_by_name(scope.tenant(), department)
                    .await?
            }
        };
        found
            .map(|department| department.id)
            .ok_or(DomainError::NotFound { what: "department" })
    }

    /// Replaces a department's members (`PUT …/departments/{department}/members`).
    pub async fn set_department_members(
        &self,
        scope: &TenantScope,
        department: DepartmentId,
        identities: Vec<String>,
    ) -> Result<Vec<String>, DomainError> {
        self.store
            .department(scope.tenant(), department)
            .await?
            .ok_or(DomainError::NotFound { what: "department" })?;
        if identities.len() > MAX_MEMBERS {
            return Err(DomainError::invalid(
                "identities",
                "at most 10,000 identities per department",
            ));
        }
        let mut canonical_identities = Vec::with_capacity(identities.len());
        for (index, identity) in identities.iter().enumerate() {
            let identity = canonical(identity).map_err(|expected| {
                DomainError::invalid(format!("identities[{index}]"), format!("use {expected}"))
            })?;
            if !canonical_identities.contains(&identity) {
                canonical_identities.push(identity);
            }
        }
        self.store
            .set_department_members(scope.tenant(), department, &canonical_identities)
            .await
            .map_err(|err| match err {
                keyward_store::StoreError::Conflict { .. } => DomainError::Conflict {
                    what: "department member (another department of this tenant has it)",
                    field: "identity",
                },
                other => other.into(),
            })?;
        self.audit(
            scope,
            "department.members",
            &department.to_string(),
            serde_json::json!({"count": canonical_identities.len()}),
        )
        .await;
        Ok(canonical_identities)
    }

    pub async fn department_members(
        &self,
        scope: &TenantScope,
        department: DepartmentId,
    ) -> Result<Vec<String>, DomainError> {
        self.store
            .department(scope.tenant(), department)
            .await?
            .ok_or(DomainError::NotFound { what: "department" })?;
        Ok(self
            .store
            .department_members(scope.tenant(), department)
            .await?)
    }

    /// The department a chat user belongs to, if any.
    pub(crate) async fn member_department(
        &self,
        tenant: TenantId,
        identity: &str,
    ) -> Result<Option<DepartmentId>, DomainError> {
        Ok(self
            .store
            .department_of(tenant, &candidates(identity))
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_are_checked_and_made_canonical() {
        assert_eq!(
            canonical(" email:Alice@Corp.Example ").unwrap(),
            "email:alice@corp.example"
        );
        assert_eq!(
            canonical("domain:Corp.example").unwrap(),
            "domain:corp.example"
        );
        assert_eq!(canonical("aad:T1/O1").unwrap(), "aad:t1/o1");
        for bad in [
            "alice@corp.example",
            "email:alice",
            "aad:t1",
            "domain:corp",
            "aad:/x",
        ] {
            assert!(canonical(bad).is_err(), "{bad}");
        }
        assert_eq!(
            candidates("email:alice@corp.example"),
            ["email:alice@corp.example", "domain:corp.example"]
        );
        assert_eq!(candidates("aad:t/o"), ["aad:t/o"]);
    }
}
