//! Identifier newtypes. Ids are UUIDv7 (time-ordered, so an id doubles as a stable list cursor)
//! and cross crate boundaries only as these types, never as bare strings.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The given text is not an id of the expected kind.
#[derive(Debug, thiserror::Error)]
#[error("`{kind}` ids are UUIDs such as 0192f5c4-7b7e-7cc0-9d1e-5f3a2b1c0d4e")]
pub struct ParseIdError {
    pub kind: &'static str,
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh, time-ordered id.
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }

            pub fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0.hyphenated())
            }
        }

        impl FromStr for $name {
            type Err = ParseIdError;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Uuid::try_parse(text).map(Self).map_err(|_| ParseIdError { kind: $kind })
            }
        }
    };
}

uuid_id!(
    /// A tenant: a company, department group or SaaS customer that owns credentials.
    TenantId,
    "tenant"
);
uuid_id!(
    /// A provider credential connected by a tenant.
    CredentialId,
    "credential"
);
uuid_id!(
    /// A `kw_` platform key issued by Keyward (the id, never the key itself).
    PlatformKeyId,
    "platform key"
);
uuid_id!(
    /// A department inside a tenant.
    DepartmentId,
    "department"
);
uuid_id!(
    /// A spending cap of a tenant, a department or a platform key.
    BudgetId,
    "budget"
);
uuid_id!(
    /// One client request; equal to the `x-keyward-request-id` header and the ledger row id.
    RequestId,
    "request"
);
uuid_id!(
    /// A knowledge base: a department's searchable documents.
    KnowledgeBaseId,
    "knowledge base"
);
uuid_id!(
    /// A document in a knowledge base.
    DocumentId,
    "document"
);
uuid_id!(
    /// One chunk of a document: the unit that is embedded, searched and cited.
    ChunkId,
    "chunk"
);
uuid_id!(
    /// A chat connector: a tenant's own Teams bot or Google Chat app.
    ConnectorId,
    "connector"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_text_and_reject_garbage() {
        let id = TenantId::generate();
        assert_eq!(id.to_string().parse::<TenantId>().unwrap(), id);
        let err = "not-an-id".parse::<CredentialId>().unwrap_err();
        assert_eq!(err.kind, "credential");
    }

    #[test]
    fn generated_ids_sort_by_creation() {
        let first = TenantId::generate();
        let second = TenantId::generate();
        assert!(first < second);
    }
}
