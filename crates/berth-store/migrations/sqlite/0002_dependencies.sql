-- What uses an integration (projects whose builds named it, environments, pipeline resources,
-- subscription images, runtimes). Delete is refused while any remain.
CREATE TABLE integration_dependencies (
    integration_id TEXT NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
    kind           TEXT NOT NULL,
    name           TEXT NOT NULL,
    recorded_at    TEXT NOT NULL,
    PRIMARY KEY (integration_id, kind, name)
);

-- Environments: named sets of integrations a subscription's pipelines use; each holds its
-- integrations as dependencies of kind 'environment'.
CREATE TABLE environments (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    name_key        TEXT NOT NULL UNIQUE,
    subscription_id TEXT NOT NULL REFERENCES subscriptions(id),
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    created_by      TEXT NOT NULL,
    updated_by      TEXT NOT NULL,
    version         BIGINT NOT NULL
);
