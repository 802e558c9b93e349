-- A dependency now names its owner by foreign key: a project (its hub entries, pipeline
-- resources and custom CI image) or an environment. Deleting the owner deletes what it recorded,
-- instead of the store parsing the owner back out of a formatted name. SQLite cannot add table
-- constraints to an existing table, so the table is rebuilt; rows whose owner no longer exists
-- pinned their integration for nothing and are dropped.
CREATE TABLE integration_dependencies_v3 (
    integration_id TEXT NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
    kind           TEXT NOT NULL
                   CHECK (kind IN ('project', 'subscription_image', 'pipeline_resource', 'environment')),
    name           TEXT NOT NULL,
    project_id     TEXT REFERENCES projects(id) ON DELETE CASCADE,
    environment_id TEXT REFERENCES environments(id) ON DELETE CASCADE,
    recorded_at    TEXT NOT NULL,
    PRIMARY KEY (integration_id, kind, name),
    CHECK ((kind = 'environment') = (environment_id IS NOT NULL)),
    CHECK ((kind = 'environment') = (project_id IS NULL))
);

INSERT INTO integration_dependencies_v3
    (integration_id, kind, name, project_id, environment_id, recorded_at)
SELECT d.integration_id, d.kind, d.name, p.id, e.id, d.recorded_at
FROM integration_dependencies d
LEFT JOIN projects p ON
       (d.kind = 'project' AND d.name = p.name)
    OR (d.kind = 'pipeline_resource' AND substr(d.name, 1, length(p.name) + 1) = p.name || ':')
    OR (d.kind = 'subscription_image'
        AND substr(d.name, 1, length(p.name) + 13) = p.name || ' pre_ci_boot ')
LEFT JOIN environments e ON d.kind = 'environment' AND d.name = e.name
WHERE p.id IS NOT NULL OR e.id IS NOT NULL;

DROP TABLE integration_dependencies;
ALTER TABLE integration_dependencies_v3 RENAME TO integration_dependencies;
CREATE INDEX integration_dependencies_project ON integration_dependencies(project_id);
CREATE INDEX integration_dependencies_environment ON integration_dependencies(environment_id);
