//! Associated data: what a ciphertext is bound to. Each part is written as a 4-byte big-endian
//! length followed by its bytes, so no two different bindings encode to the same bytes.

use keyward_core::{KeyVersion, TenantId};

/// Version of the AAD layout and blob format; bump it if either changes.
const FORMAT_VERSION: &str = "keyward-seal-v1";

/// The row a sealed value belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowBinding {
    pub tenant: TenantId,
    /// The id of the row (e.g. a credential id).
    pub record: String,
    /// The column, e.g. `credential.secret`.
    pub field: &'static str,
}

impl RowBinding {
    pub(crate) fn associated_data(&self, key_version: KeyVersion) -> Vec<u8> {
        let tenant = self.tenant.to_string();
        let version = key_version.to_string();
        let parts: [&[u8]; 5] = [
            FORMAT_VERSION.as_bytes(),
            tenant.as_bytes(),
            self.record.as_bytes(),
            self.field.as_bytes(),
            version.as_bytes(),
        ];
        let mut bytes = Vec::with_capacity(parts.iter().map(|part| part.len() + 4).sum());
        for part in parts {
            let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
            bytes.extend_from_slice(&len.to_be_bytes());
            bytes.extend_from_slice(part);
        }
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_prefixes_keep_bindings_apart() {
        let tenant = TenantId::generate();
        let version = KeyVersion::new(1).unwrap();
        let first = RowBinding {
            tenant,
            record: "ab".into(),
            field: "c",
        };
        let second = RowBinding {
            tenant,
            record: "a".into(),
            field: "bc",
        };
        assert_ne!(
            first.associated_data(version),
            second.associated_data(version)
        );
        assert_ne!(
            first.associated_data(version),
            first.associated_data(version.next().unwrap())
        );
    }
}
