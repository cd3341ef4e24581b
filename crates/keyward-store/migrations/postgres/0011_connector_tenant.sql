-- A single-tenant Teams bot gets its Bot Connector token from its own Entra tenant's endpoint:
-- the tenant id (a GUID or a verified domain), or NULL for a multi-tenant bot.
ALTER TABLE connectors ADD COLUMN app_tenant_id TEXT;
