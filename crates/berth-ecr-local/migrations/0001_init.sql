-- Local ECR metadata. Blob bytes live in content-addressed files; this holds what refers to them.
CREATE TABLE repositories (
    id             INTEGER PRIMARY KEY,
    registry_id    TEXT NOT NULL,
    region         TEXT NOT NULL,
    name           TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    tag_mutability TEXT NOT NULL,
    UNIQUE (registry_id, region, name)
);

CREATE TABLE blobs (
    digest TEXT PRIMARY KEY,
    size   INTEGER NOT NULL
);

-- A blob is "in" a repository once pushed or mounted there (ECR checks layers per repository).
CREATE TABLE repo_blobs (
    repo_id INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    digest  TEXT NOT NULL REFERENCES blobs(digest),
    PRIMARY KEY (repo_id, digest)
);

CREATE TABLE manifests (
    repo_id       INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    digest        TEXT NOT NULL,
    media_type    TEXT NOT NULL,
    artifact_type TEXT,
    subject       TEXT,
    body          BLOB NOT NULL,
    image_size    INTEGER NOT NULL,
    pushed_at     INTEGER NOT NULL,
    PRIMARY KEY (repo_id, digest)
);
CREATE INDEX manifests_subject ON manifests(repo_id, subject);

-- What a manifest references: blobs (config, layers) and child manifests (indexes).
CREATE TABLE manifest_refs (
    repo_id         INTEGER NOT NULL,
    manifest_digest TEXT NOT NULL,
    ref_digest      TEXT NOT NULL,
    PRIMARY KEY (repo_id, manifest_digest, ref_digest),
    FOREIGN KEY (repo_id, manifest_digest) REFERENCES manifests(repo_id, digest) ON DELETE CASCADE
);
CREATE INDEX manifest_refs_ref ON manifest_refs(repo_id, ref_digest);

CREATE TABLE tags (
    repo_id INTEGER NOT NULL,
    tag     TEXT NOT NULL,
    digest  TEXT NOT NULL,
    PRIMARY KEY (repo_id, tag),
    FOREIGN KEY (repo_id, digest) REFERENCES manifests(repo_id, digest) ON DELETE CASCADE
);

-- Temporary credentials issued by STS, so they outlive a restart until they expire. Their secret
-- is derived from the server key and never stored; the session token is kept as a hash.
CREATE TABLE sessions (
    access_key_id     TEXT PRIMARY KEY,
    token_hash        TEXT NOT NULL,
    role_name         TEXT NOT NULL,
    session_name      TEXT NOT NULL,
    expires_at        INTEGER NOT NULL
);
