//! The one compare-and-swap of a sealed value, shared by every table that holds one
//! (credentials' secrets, connectors' app passwords, documents' names, chunks' text): the new
//! blob is written only over the exact blob and version that were read, so a concurrent
//! rotation or delete wins over a re-wrap.

use keyward_core::SealedSecret;

use crate::{Store, StoreError};

/// A table and its sealed columns. The SQL names come only from here.
#[derive(Clone, Copy)]
pub(crate) enum SealedColumn {
    Credential,
    Connector,
    Document,
    Chunk,
}

impl SealedColumn {
    fn sql(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Self::Credential => ("credentials", "secret_blob", "secret_key_version"),
            Self::Connector => ("connectors", "secret_blob", "secret_key_version"),
            Self::Document => ("kb_documents", "sealed_blob", "sealed_key_version"),
            Self::Chunk => ("kb_chunks", "sealed_blob", "sealed_key_version"),
        }
    }
}

impl Store {
    /// Writes `new` over row `id`'s sealed value only if it still holds `expected`; returns
    /// whether it wrote.
    pub(crate) async fn swap_sealed(
        &self,
        column: SealedColumn,
        id: &str,
        expected: &SealedSecret,
        new: &SealedSecret,
    ) -> Result<bool, StoreError> {
        let (table, blob, version) = column.sql();
        let result = sqlx::query(&format!(
            "UPDATE {table} SET {blob} = $1, {version} = $2
             WHERE id = $3 AND {blob} = $4 AND {version} = $5"
        ))
        .bind(&new.blob)
        .bind(i64::from(new.key_version.get()))
        .bind(id)
        .bind(&expected.blob)
        .bind(i64::from(expected.key_version.get()))
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }
}
