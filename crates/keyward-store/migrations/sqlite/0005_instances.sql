-- Every running Keyward process (server replica or CLI command) registers here and, while it
-- serves, refreshes heartbeat_at. A pending ledger row names the instance that wrote it, so a
-- replica marks `interrupted` only the rows of instances that are gone (process no longer
-- alive on the same host, or heartbeat stale) — never another live replica's calls in flight.
CREATE TABLE instances (
    id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL
);

ALTER TABLE ledger ADD COLUMN instance_id TEXT;
CREATE INDEX ledger_pending_by_instance ON ledger (status, instance_id);
