-- GitOps: the shared configuration repository (one per Berth, its push password sealed like
-- every other secret), each integration's sync state with the change waiting to be pushed, and
-- the files Berth last pushed for each integration: the ledger a restart compares the database
-- against, so a change that reached the database but not the repository is found and pushed.
CREATE TABLE gitops_settings (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    repo         TEXT NOT NULL,
    username     TEXT,
    key_id       TEXT,
    nonce        BYTEA,
    ciphertext   BYTEA,
    account_cert TEXT,
    namespace    TEXT NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    updated_by   TEXT NOT NULL,
    version      BIGINT NOT NULL,
    CHECK ((key_id IS NULL) = (ciphertext IS NULL))
);

CREATE TABLE gitops_sync (
    name_key        TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('PENDING', 'SYNCING', 'SYNCED', 'OUT_OF_SYNC')),
    message         TEXT NOT NULL,
    reason          TEXT,
    attempts        BIGINT NOT NULL,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    commit_id       TEXT,
    updated_at      TIMESTAMPTZ NOT NULL
);

CREATE TABLE gitops_files (
    path     TEXT PRIMARY KEY,
    name_key TEXT NOT NULL,
    sha256   TEXT NOT NULL,
    tag      TEXT NOT NULL
);
CREATE INDEX gitops_files_name ON gitops_files(name_key);

-- A runtime's own namespace for its resources; NULL uses the repository's.
ALTER TABLE runtimes ADD COLUMN namespace TEXT;
