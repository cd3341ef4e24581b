-- `ledger_by_status (status)` is a prefix of `ledger_pending_by_instance (status, instance_id)`,
-- which serves every query on status (the sweep of pending rows). Each call inserts into and
-- settles through every index of the ledger, so the redundant one cost a page write on both
-- commits of every call.
DROP INDEX IF EXISTS ledger_by_status;
