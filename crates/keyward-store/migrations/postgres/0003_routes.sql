-- Routes: a bare model name a tenant's apps may call, served by an ordered list of
-- (credential, model) targets; later targets are the tenant's configured fallbacks.
CREATE TABLE routes (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    model TEXT NOT NULL,
    targets TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, model)
);
