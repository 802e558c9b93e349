-- Berth schema, SQLite flavour. Names are unique case-insensitively through name_key.
CREATE TABLE subscriptions (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    name_key    TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    updated_by  TEXT NOT NULL,
    version     INTEGER NOT NULL
);

CREATE TABLE projects (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    name_key        TEXT NOT NULL UNIQUE,
    subscription_id TEXT NOT NULL REFERENCES subscriptions(id),
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    created_by      TEXT NOT NULL,
    updated_by      TEXT NOT NULL,
    version         INTEGER NOT NULL
);
CREATE INDEX projects_subscription ON projects(subscription_id);

CREATE TABLE runtimes (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    name_key     TEXT NOT NULL UNIQUE,
    sealing_cert TEXT,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    updated_by   TEXT NOT NULL,
    version      INTEGER NOT NULL
);

CREATE TABLE integrations (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    name_key     TEXT NOT NULL UNIQUE,
    type         TEXT NOT NULL,
    master_type  TEXT NOT NULL,
    config       TEXT NOT NULL,
    runtimes_all BOOLEAN NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    updated_by   TEXT NOT NULL,
    version      INTEGER NOT NULL
);
CREATE INDEX integrations_type ON integrations(type, name_key);

CREATE TABLE integration_subscriptions (
    integration_id  TEXT NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
    subscription_id TEXT NOT NULL REFERENCES subscriptions(id),
    PRIMARY KEY (integration_id, subscription_id)
);
CREATE INDEX integration_subscriptions_sub ON integration_subscriptions(subscription_id);

CREATE TABLE integration_runtimes (
    integration_id TEXT NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
    runtime_id     TEXT NOT NULL REFERENCES runtimes(id),
    PRIMARY KEY (integration_id, runtime_id)
);
CREATE INDEX integration_runtimes_rt ON integration_runtimes(runtime_id);

CREATE TABLE integration_secrets (
    integration_id TEXT NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
    field          TEXT NOT NULL,
    key_id         TEXT NOT NULL,
    nonce          BLOB NOT NULL,
    ciphertext     BLOB NOT NULL,
    PRIMARY KEY (integration_id, field)
);

CREATE TABLE sealing_keys (
    key_id     TEXT PRIMARY KEY,
    created_at TEXT NOT NULL
);

CREATE TABLE api_tokens (
    id              TEXT PRIMARY KEY,
    secret_hash     BLOB NOT NULL,
    role            TEXT NOT NULL,
    subscription_id TEXT REFERENCES subscriptions(id) ON DELETE CASCADE,
    description     TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    created_by      TEXT NOT NULL
);
-- At most one admin token: first-start bootstrap on several replicas cannot mint two.
CREATE UNIQUE INDEX api_tokens_one_admin ON api_tokens(role) WHERE role = 'admin';

-- Grows with every committed write; readers compare it to decide whether a cache is current.
CREATE TABLE berth_generation (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    generation BIGINT NOT NULL
);
INSERT INTO berth_generation (id, generation) VALUES (1, 0);
