-- Image resources of a project (the tag of a repository that the project's pipelines follow),
-- their immutable versions (one per digest a tag moved to), the digest each followed tag is at
-- now (so polling, a CI post and a push event that see the same push record one version), the
-- push events already taken (replays are refused), and the hash of each resource's event secret.
CREATE TABLE image_resources (
    id                TEXT PRIMARY KEY,
    project_id        TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name              TEXT NOT NULL,
    name_key          TEXT NOT NULL,
    integration       TEXT NOT NULL,
    source_name       TEXT NOT NULL,
    tag               TEXT NOT NULL,
    poll_seconds      INTEGER NOT NULL,
    next_poll_at      TEXT NOT NULL,
    poll_failures     INTEGER NOT NULL,
    last_error        TEXT,
    event_secret_hash TEXT,
    last_version      INTEGER NOT NULL,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    created_by        TEXT NOT NULL,
    updated_by        TEXT NOT NULL,
    version           INTEGER NOT NULL,
    UNIQUE (project_id, name_key)
);
CREATE INDEX image_resources_due ON image_resources(next_poll_at) WHERE poll_seconds > 0;

CREATE TABLE image_versions (
    resource_id    TEXT NOT NULL REFERENCES image_resources(id) ON DELETE CASCADE,
    version_number INTEGER NOT NULL,
    version_name   TEXT NOT NULL,
    digest         TEXT NOT NULL,
    source         TEXT NOT NULL CHECK (source IN ('poll', 'post', 'webhook')),
    pushed_at      TEXT NOT NULL,
    properties     TEXT NOT NULL,
    PRIMARY KEY (resource_id, version_number)
);

CREATE TABLE image_heads (
    resource_id    TEXT NOT NULL REFERENCES image_resources(id) ON DELETE CASCADE,
    version_name   TEXT NOT NULL,
    digest         TEXT NOT NULL,
    PRIMARY KEY (resource_id, version_name)
);

CREATE TABLE image_events (
    resource_id TEXT NOT NULL REFERENCES image_resources(id) ON DELETE CASCADE,
    event_id    TEXT NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (resource_id, event_id)
);

-- Where a new version is announced (a CI system's "run this pipeline" webhook), with the HMAC
-- secret each announcement is signed with (sealed like every other secret), and one delivery
-- per trigger and version, queued in the transaction that records the version.
CREATE TABLE image_triggers (
    id          TEXT PRIMARY KEY,
    resource_id TEXT NOT NULL REFERENCES image_resources(id) ON DELETE CASCADE,
    url         TEXT NOT NULL,
    key_id      TEXT NOT NULL,
    nonce       BLOB NOT NULL,
    ciphertext  BLOB NOT NULL,
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    UNIQUE (resource_id, url)
);

CREATE TABLE trigger_deliveries (
    trigger_id      TEXT NOT NULL REFERENCES image_triggers(id) ON DELETE CASCADE,
    version_number  INTEGER NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('PENDING', 'DELIVERED', 'FAILED')),
    attempts        INTEGER NOT NULL,
    last_status     INTEGER,
    last_error      TEXT,
    next_attempt_at TEXT NOT NULL,
    delivered_at    TEXT,
    PRIMARY KEY (trigger_id, version_number)
);
CREATE INDEX trigger_deliveries_due ON trigger_deliveries(next_attempt_at) WHERE state = 'PENDING';

-- What CI builds reported about the images they made, by digest, with the issue keys found in
-- their git facts (one row per key, for the issue filter).
CREATE TABLE image_reports (
    id          TEXT PRIMARY KEY,
    project_id  TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    digest      TEXT NOT NULL,
    repository  TEXT NOT NULL,
    tag         TEXT,
    media_type  TEXT NOT NULL,
    size        INTEGER NOT NULL,
    platforms   TEXT NOT NULL,
    created     TEXT,
    integration TEXT NOT NULL,
    git         TEXT NOT NULL,
    commit_sha  TEXT,
    issues      TEXT NOT NULL,
    reported_at TEXT NOT NULL,
    reported_by TEXT NOT NULL
);
CREATE INDEX image_reports_digest ON image_reports(digest);
CREATE INDEX image_reports_repository ON image_reports(repository, tag);
CREATE INDEX image_reports_commit ON image_reports(commit_sha);
CREATE INDEX image_versions_digest ON image_versions(digest);

CREATE TABLE image_report_issues (
    report_id TEXT NOT NULL REFERENCES image_reports(id) ON DELETE CASCADE,
    issue_key TEXT NOT NULL,
    PRIMARY KEY (report_id, issue_key)
);
CREATE INDEX image_report_issues_key ON image_report_issues(issue_key);
