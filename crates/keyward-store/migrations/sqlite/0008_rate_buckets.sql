-- Per-key request and token limits shared by every replica: one token bucket per (platform
-- key, limit kind) that replicas lease slices from. Used on PostgreSQL only (a SQLite store
-- has one process, which limits in memory); the table exists so both schemas stay the same.
CREATE TABLE rate_buckets (
    key_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    level REAL NOT NULL,
    capacity BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (key_id, kind)
);
