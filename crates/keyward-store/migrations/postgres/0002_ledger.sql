-- The usage ledger: one row per upstream call, committed as `pending` before the first byte
-- goes upstream and settled when the call ends. Metadata only: no prompt, no completion.
-- key_id is NULL for calls the operator or a tenant admin made (credential verification).
CREATE TABLE ledger (
    request_id TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    tenant_id TEXT NOT NULL,
    key_id TEXT,
    department_id TEXT,
    credential_id TEXT NOT NULL,
    credential_label TEXT NOT NULL,
    provider TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    model_requested TEXT NOT NULL,
    model_reported TEXT,
    provider_request_id TEXT,
    status TEXT NOT NULL,
    http_status BIGINT,
    stream BIGINT NOT NULL,
    input_tokens BIGINT,
    cached_input_tokens BIGINT,
    cache_write_tokens BIGINT,
    output_tokens BIGINT,
    reasoning_tokens BIGINT,
    cost_micro_usd BIGINT,
    price_id TEXT,
    latency_ms BIGINT,
    ttfb_ms BIGINT,
    tags TEXT NOT NULL,
    fallback_of TEXT,
    settled_at BIGINT
);
CREATE INDEX ledger_by_tenant_time ON ledger (tenant_id, created_at);
CREATE INDEX ledger_by_status ON ledger (status);
