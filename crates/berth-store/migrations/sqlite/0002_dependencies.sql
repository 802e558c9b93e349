-- What uses an integration (projects whose builds named it, environments, pipeline resources,
-- subscription images, runtimes). Delete is refused while any remain.
CREATE TABLE integration_dependencies (
    integration_id TEXT NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
    kind           TEXT NOT NULL,
    name           TEXT NOT NULL,
    recorded_at    TEXT NOT NULL,
    PRIMARY KEY (integration_id, kind, name)
);
