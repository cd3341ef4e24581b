-- Chat connectors (SPEC "Chat connectors"): a tenant's own Teams bot or Google Chat app. The
-- Teams app password is sealed like a credential's secret (or referenced in a key manager).
CREATE TABLE connectors (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    model TEXT NOT NULL,
    knowledge_base_id TEXT,
    app_id TEXT NOT NULL,
    secret_blob TEXT,
    secret_key_version BIGINT,
    secret_ref TEXT,
    -- active | disabled
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (tenant_id, name)
);
CREATE INDEX connectors_sealed ON connectors (secret_key_version);

-- Who belongs to a department: `aad:TENANT/OBJECT`, `email:ADDRESS` or `domain:NAME`, unique
-- per tenant (one identity or domain maps to one department).
CREATE TABLE department_members (
    tenant_id TEXT NOT NULL,
    department_id TEXT NOT NULL,
    identity TEXT NOT NULL,
    PRIMARY KEY (tenant_id, identity)
);
CREATE INDEX department_members_by_department ON department_members (department_id);

-- Activities already answered, so a replayed activity is answered once.
CREATE TABLE connector_activities (
    connector_id TEXT NOT NULL,
    activity_id TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (connector_id, activity_id)
);
