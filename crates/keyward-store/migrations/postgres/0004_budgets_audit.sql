-- Budgets, tenant price overrides, per-key rate limits and the audit log.

-- A spending cap for one scope and period. scope_id is '' for the tenant itself, else a
-- department or platform key id. Limits are integer micro-dollars; NULL means no such limit.
CREATE TABLE budgets (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    scope_kind TEXT NOT NULL,
    scope_id TEXT NOT NULL,
    period TEXT NOT NULL,
    hard_limit_micro_usd BIGINT,
    soft_limit_micro_usd BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (tenant_id, scope_kind, scope_id, period)
);

-- What a budget has spent in one window ('2026-11-23' for a day, '2026-11' for a month, 'total').
-- reserved is the worst-case cost of calls in flight; a call is admitted only by a conditional
-- UPDATE that keeps spent + reserved within the hard limit, in the transaction that writes its
-- ledger row. soft_alerted makes the soft-limit alert fire once per window.
CREATE TABLE budget_windows (
    budget_id TEXT NOT NULL REFERENCES budgets (id),
    window_start TEXT NOT NULL,
    spent_micro_usd BIGINT NOT NULL,
    reserved_micro_usd BIGINT NOT NULL,
    soft_alerted BIGINT NOT NULL,
    PRIMARY KEY (budget_id, window_start)
);

-- The reservation a pending call holds, and the budget windows that hold it (JSON
-- [[budget_id, window_start], …]); settling the row moves it to spent.
ALTER TABLE ledger ADD COLUMN reserved_micro_usd BIGINT;
ALTER TABLE ledger ADD COLUMN budget_windows TEXT;

-- A tenant's negotiated rates, in micro-dollars per million tokens; they take precedence over
-- the shipped price book from `effective` (YYYY-MM-DD) on.
CREATE TABLE tenant_prices (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    effective TEXT NOT NULL,
    input_micro_usd BIGINT NOT NULL,
    cached_input_micro_usd BIGINT,
    cache_write_micro_usd BIGINT,
    output_micro_usd BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, provider, model, effective)
);

-- Per platform key: requests and tokens per minute (NULL: unlimited).
ALTER TABLE platform_keys ADD COLUMN rpm_limit BIGINT;
ALTER TABLE platform_keys ADD COLUMN tpm_limit BIGINT;

-- Every admin action, append-only and hash-chained: hash = SHA-256 over prev_hash and the
-- entry's fields, so a changed or deleted entry breaks the chain (`keyward audit verify`).
CREATE TABLE audit_log (
    seq BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,
    tenant_id TEXT,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    outcome TEXT NOT NULL,
    details TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_log_by_tenant ON audit_log (tenant_id, seq);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END;
$$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
-- TRUNCATE bypasses row triggers: refuse it too.
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
CREATE INDEX ledger_by_tenant_request ON ledger (tenant_id, request_id);
