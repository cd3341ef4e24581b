-- Web console sessions: the SHA-256 of the session cookie's value (never the value itself), who
-- signed in (tenant and key for a tenant admin; both NULL for the operator), and the times the
-- idle and absolute expiries are measured from (Unix milliseconds).
CREATE TABLE console_sessions (
    token_hash TEXT PRIMARY KEY,
    tenant_id TEXT,
    key_id TEXT,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL
);
CREATE INDEX console_sessions_by_created ON console_sessions (created_at);
