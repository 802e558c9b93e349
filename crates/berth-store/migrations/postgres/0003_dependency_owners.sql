-- A dependency now names its owner by foreign key: a project (its hub entries, pipeline
-- resources and custom CI image) or an environment. Deleting the owner deletes what it recorded,
-- instead of the store parsing the owner back out of a formatted name. Rows whose owner no
-- longer exists pinned their integration for nothing and are dropped.
ALTER TABLE integration_dependencies
    ADD COLUMN project_id TEXT REFERENCES projects(id) ON DELETE CASCADE,
    ADD COLUMN environment_id TEXT REFERENCES environments(id) ON DELETE CASCADE;

UPDATE integration_dependencies d SET project_id = p.id
FROM projects p
WHERE (d.kind = 'project' AND d.name = p.name)
   OR (d.kind = 'pipeline_resource' AND substr(d.name, 1, length(p.name) + 1) = p.name || ':')
   OR (d.kind = 'subscription_image'
       AND substr(d.name, 1, length(p.name) + 13) = p.name || ' pre_ci_boot ');

UPDATE integration_dependencies d SET environment_id = e.id
FROM environments e
WHERE d.kind = 'environment' AND d.name = e.name;

DELETE FROM integration_dependencies WHERE project_id IS NULL AND environment_id IS NULL;

ALTER TABLE integration_dependencies
    ADD CONSTRAINT integration_dependencies_kind
        CHECK (kind IN ('project', 'subscription_image', 'pipeline_resource', 'environment')),
    ADD CONSTRAINT integration_dependencies_owner CHECK (
        (kind = 'environment') = (environment_id IS NOT NULL)
        AND (kind = 'environment') = (project_id IS NULL)
    );
CREATE INDEX integration_dependencies_project ON integration_dependencies(project_id);
CREATE INDEX integration_dependencies_environment ON integration_dependencies(environment_id);
