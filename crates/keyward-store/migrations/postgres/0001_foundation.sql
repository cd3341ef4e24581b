-- Foundation schema. Portable SQL only (the PostgreSQL migrations mirror this file): TEXT ids
-- (UUIDv7), BIGINT unix milliseconds, JSON text for small lists, no booleans.

CREATE TABLE tenants (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE departments (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    name TEXT NOT NULL,
    models TEXT,
    created_at BIGINT NOT NULL,
    UNIQUE (tenant_id, name)
);

-- secret_blob is base64(nonce || ciphertext || tag) sealed with master key secret_key_version;
-- it is NULL only for keyless self-hosted endpoints. No column ever holds plaintext.
CREATE TABLE credentials (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    label TEXT NOT NULL,
    provider TEXT NOT NULL,
    options TEXT NOT NULL,
    secret_blob TEXT,
    secret_key_version BIGINT,
    fingerprint TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    rotated_at BIGINT,
    status_changed_at BIGINT NOT NULL,
    UNIQUE (tenant_id, label)
);
CREATE INDEX credentials_by_key_version ON credentials (secret_key_version, id);

-- Only the SHA-256 of a platform key is kept; `lookup` is a non-secret 72-bit prefix used to
-- find the row, after which the hash is compared in constant time.
CREATE TABLE platform_keys (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    lookup TEXT NOT NULL UNIQUE,
    key_hash TEXT NOT NULL,
    display_prefix TEXT NOT NULL,
    name TEXT,
    role TEXT NOT NULL,
    models TEXT,
    department_id TEXT REFERENCES departments (id),
    expires_at BIGINT,
    revoked_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX platform_keys_by_tenant ON platform_keys (tenant_id, id);

-- The key check value of every master-key version that ever sealed a row here, so a server
-- started with a different key fails at startup.
CREATE TABLE master_keys (
    version BIGINT PRIMARY KEY,
    check_value TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE rewrap_jobs (
    id TEXT PRIMARY KEY,
    target_version BIGINT NOT NULL,
    state TEXT NOT NULL,
    done BIGINT NOT NULL,
    total BIGINT NOT NULL,
    failed BIGINT NOT NULL,
    lease_owner TEXT,
    lease_expires_at BIGINT,
    created_at BIGINT NOT NULL,
    finished_at BIGINT
);
