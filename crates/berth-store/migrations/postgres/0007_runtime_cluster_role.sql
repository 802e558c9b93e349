-- The IAM role a runtime's cluster assumes integration roles as (Test connection checks that
-- each integration role it is shared with trusts it); NULL when not recorded.
ALTER TABLE runtimes ADD COLUMN cluster_role_arn TEXT;
