-- Key custody outside Keyward (#8).
--
-- Data keys of envelope master-key sources (aws-kms:, vault-transit:) are stored here only
-- wrapped by the key manager, under an encryption context naming this deployment and the
-- version: a dump of this table opens nothing without the manager. `wrapper` is the source
-- that wrapped it (e.g. `aws-kms:arn:aws:kms:…`).
CREATE TABLE wrapped_data_keys (
    version INTEGER PRIMARY KEY,
    wrapper TEXT NOT NULL,
    wrapped TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- One row: this deployment's id, created on first start; part of every wrapping context.
CREATE TABLE deployment (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    id TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- A credential may reference a secret held in an external manager (vault://, aws-sm://,
-- azure-kv://) instead of holding a sealed one; the secret itself never enters this database.
ALTER TABLE credentials ADD COLUMN secret_ref TEXT;
