-- People who sign in to the web pages, their sessions, the failed sign-ins that throttle
-- guessing, and each integration's last connection test. All of it lives in the database, so
-- every replica sees the same sessions and the same throttle.
CREATE TABLE users (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    name_key        TEXT NOT NULL UNIQUE,
    -- An argon2id PHC string: the salt and parameters travel with the hash.
    password_hash   TEXT NOT NULL,
    role            TEXT NOT NULL CHECK (role IN ('admin', 'subscription')),
    subscription_id TEXT REFERENCES subscriptions(id) ON DELETE CASCADE,
    created_at      TEXT NOT NULL,
    created_by      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    updated_by      TEXT NOT NULL,
    version         BIGINT NOT NULL,
    CHECK ((role = 'subscription') = (subscription_id IS NOT NULL))
);

-- A session is found by the SHA-256 of its cookie's secret; the cookie itself is never stored.
-- It belongs to a user or to the API token it was opened with, and ends with either.
CREATE TABLE web_sessions (
    id_hash      BLOB PRIMARY KEY,
    user_id      TEXT REFERENCES users(id) ON DELETE CASCADE,
    token_id     TEXT REFERENCES api_tokens(id) ON DELETE CASCADE,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    CHECK ((user_id IS NULL) <> (token_id IS NULL))
);
CREATE INDEX web_sessions_expiry ON web_sessions(expires_at);

CREATE TABLE sign_in_failures (
    throttle_key TEXT NOT NULL,
    failed_at    TEXT NOT NULL
);
CREATE INDEX sign_in_failures_key ON sign_in_failures(throttle_key, failed_at);

CREATE TABLE connection_tests (
    integration_id TEXT PRIMARY KEY REFERENCES integrations(id) ON DELETE CASCADE,
    ok             BOOLEAN NOT NULL,
    summary        TEXT NOT NULL,
    tested_at      TEXT NOT NULL,
    tested_by      TEXT NOT NULL
);
