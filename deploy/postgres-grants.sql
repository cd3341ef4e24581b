-- Least privilege for Keyward on PostgreSQL. Run as the schema owner (keyward_owner) after
-- Keyward has migrated the database once with the owner's URL (first start, and every upgrade).
-- Replicas then run as keyward_app, which can read and write rows but not change the schema,
-- edit or erase the audit log, or delete ledger rows.
GRANT USAGE ON SCHEMA public TO keyward_app;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO keyward_app;
GRANT INSERT, UPDATE ON tenants, departments, credentials, platform_keys, master_keys,
    rewrap_jobs, routes, ledger, budgets, budget_windows, tenant_prices, instances,
    wrapped_data_keys, deployment, rate_buckets
    TO keyward_app;
-- The audit log and the ledger are append-only for the runtime role (the ledger's rows are
-- updated when calls settle, never deleted).
GRANT INSERT ON audit_log TO keyward_app;
-- Deleting a credential (its ciphertext) and forgetting an instance that is gone.
GRANT DELETE ON credentials, instances TO keyward_app;
