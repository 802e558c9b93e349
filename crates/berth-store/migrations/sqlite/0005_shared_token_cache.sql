-- The broker's second cache level, shared by every replica (used on PostgreSQL only: SQLite is one process): registry tokens sealed like other
-- secrets (never in the clear), one row per (integration, version, region), reused until half
-- the token's life has passed. Deleting the integration deletes its tokens.
CREATE TABLE registry_token_cache (
    cache_key      TEXT PRIMARY KEY,
    integration_id TEXT NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
    key_id         TEXT NOT NULL,
    nonce          BLOB NOT NULL,
    ciphertext     BLOB NOT NULL,
    refresh_at     TEXT NOT NULL
);
CREATE INDEX registry_token_cache_integration ON registry_token_cache(integration_id);
