-- Per-key request and token limits shared by every replica (PostgreSQL): one token bucket per
-- (platform key, limit kind) that replicas lease slices from and return debt to, so a key
-- limited to N per minute gets N per minute however many replicas serve it. `level` may go
-- negative (tokens charged after the call); `updated_at` is the database's clock in ms.
CREATE TABLE rate_buckets (
    key_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    level DOUBLE PRECISION NOT NULL,
    capacity BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (key_id, kind)
);
