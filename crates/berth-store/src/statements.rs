//! Every fixed SQL statement the store runs, by name. They are portable between SQLite and
//! PostgreSQL (`$n` parameters, `ON CONFLICT`, `LIKE … ESCAPE`), so one set serves both
//! backends; [`crate::sql`] runs them. What is assembled per backend or per query (the
//! integration select with its string aggregate, a page's filters) stays in `sql.rs`.

pub(crate) const UNLINK_SUBSCRIPTIONS: &str =
    "DELETE FROM integration_subscriptions WHERE integration_id = $1";

pub(crate) const LINK_SUBSCRIPTION: &str =
    "INSERT INTO integration_subscriptions (integration_id, subscription_id) VALUES ($1, $2)";

pub(crate) const UNLINK_RUNTIMES: &str =
    "DELETE FROM integration_runtimes WHERE integration_id = $1";

pub(crate) const LINK_RUNTIME: &str =
    "INSERT INTO integration_runtimes (integration_id, runtime_id) VALUES ($1, $2)";

pub(crate) const CLEAR_SECRET: &str =
    "DELETE FROM integration_secrets WHERE integration_id = $1 AND field = $2";

pub(crate) const COUNT_SEALING_KEY: &str = "SELECT COUNT(*) FROM sealing_keys WHERE key_id = $1";

pub(crate) const UPSERT_SECRET: &str = "INSERT INTO integration_secrets (integration_id, field, key_id, nonce, ciphertext) \
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (integration_id, field) DO UPDATE SET \
     key_id = excluded.key_id, nonce = excluded.nonce, ciphertext = excluded.ciphertext";

pub(crate) const BUMP_GENERATION: &str =
    "UPDATE berth_generation SET generation = generation + 1 WHERE id = 1";

pub(crate) const APPLIED_MIGRATIONS: &str = "SELECT version, checksum FROM berth_migrations";

pub(crate) const RECORD_MIGRATION: &str =
    "INSERT INTO berth_migrations (version, name, checksum) VALUES ($1, $2, $3)";

pub(crate) const SEALING_KEYS: &str = "SELECT key_id FROM sealing_keys";

pub(crate) const SECRET_KEY_IDS: &str = "SELECT DISTINCT key_id FROM integration_secrets";

pub(crate) const REGISTER_SEALING_KEY: &str =
    "INSERT INTO sealing_keys (key_id, created_at) VALUES ($1, $2)";

pub(crate) const GENERATION: &str = "SELECT generation FROM berth_generation WHERE id = 1";

pub(crate) const INSERT_INTEGRATION: &str = "INSERT INTO integrations (id, name, name_key, type, master_type, config, runtimes_all, \
     created_at, updated_at, created_by, updated_by, version) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $9, 1)";

pub(crate) const UPDATE_INTEGRATION: &str = "UPDATE integrations SET name = $1, name_key = $2, config = $3, runtimes_all = $4, \
     updated_at = $5, updated_by = $6, version = version + 1 WHERE id = $7";

pub(crate) const INTEGRATION_USERS_BY_NAME_KEY: &str = "SELECT d.kind, d.name FROM integration_dependencies d JOIN integrations i ON i.id = d.integration_id \
     WHERE i.name_key = $1 \
     UNION ALL SELECT 'runtime', r.name FROM integration_runtimes x JOIN integrations i ON i.id = x.integration_id \
     JOIN runtimes r ON r.id = x.runtime_id WHERE i.name_key = $1 \
     ORDER BY 1, 2 LIMIT 50";

pub(crate) const DELETE_INTEGRATION: &str = "DELETE FROM integrations WHERE name_key = $1";

pub(crate) const INTEGRATION_ID: &str = "SELECT id FROM integrations WHERE name_key = $1";

pub(crate) const SEALED_SECRETS: &str =
    "SELECT field, key_id, nonce, ciphertext FROM integration_secrets WHERE integration_id = $1";

pub(crate) const INSERT_SUBSCRIPTION: &str = "INSERT INTO subscriptions (id, name, name_key, created_at, updated_at, created_by, updated_by, version) \
     VALUES ($1, $2, $3, $4, $4, $5, $5, 1)";

pub(crate) const SUBSCRIPTION_BY_NAME_KEY: &str = "SELECT * FROM subscriptions WHERE name_key = $1";

pub(crate) const SUBSCRIPTIONS: &str = "SELECT * FROM subscriptions ORDER BY name_key";

pub(crate) const DELETE_SUBSCRIPTION_TOKENS: &str =
    "DELETE FROM api_tokens WHERE subscription_id = $1";

pub(crate) const DELETE_SUBSCRIPTION: &str = "DELETE FROM subscriptions WHERE id = $1";

pub(crate) const INSERT_PROJECT: &str = "INSERT INTO projects (id, name, name_key, subscription_id, created_at, updated_at, created_by, updated_by, version) \
     VALUES ($1, $2, $3, $4, $5, $5, $6, $6, 1)";

pub(crate) const PROJECT_BY_NAME_KEY: &str = "SELECT p.*, s.name AS subscription FROM projects p \
     JOIN subscriptions s ON s.id = p.subscription_id WHERE p.name_key = $1";

pub(crate) const PROJECTS: &str = "SELECT p.*, s.name AS subscription FROM projects p \
     JOIN subscriptions s ON s.id = p.subscription_id \
     WHERE ($1 IS NULL OR s.name_key = $1) ORDER BY p.name_key";

pub(crate) const DELETE_PROJECT: &str = "DELETE FROM projects WHERE name_key = $1";

pub(crate) const INSERT_ENVIRONMENT: &str = "INSERT INTO environments (id, name, name_key, subscription_id, created_at, updated_at, created_by, updated_by, version) \
     VALUES ($1, $2, $3, $4, $5, $5, $6, $6, 1)";

pub(crate) const ASSIGNED_INTEGRATION_ID: &str = "SELECT i.id FROM integrations i JOIN integration_subscriptions x ON x.integration_id = i.id \
     WHERE i.name_key = $1 AND x.subscription_id = $2";

pub(crate) const RECORD_ENVIRONMENT_DEPENDENCY: &str = "INSERT INTO integration_dependencies (integration_id, kind, name, environment_id, recorded_at) \
     VALUES ($1, 'environment', $2, $3, $4) ON CONFLICT DO NOTHING";

pub(crate) const ENVIRONMENTS: &str = "SELECT e.*, s.name AS subscription FROM environments e JOIN subscriptions s ON s.id = e.subscription_id \
     WHERE ($1 IS NULL OR s.name_key = $1) ORDER BY e.name_key";

pub(crate) const ENVIRONMENT_INTEGRATIONS: &str = "SELECT i.name FROM integration_dependencies d JOIN integrations i ON i.id = d.integration_id \
     WHERE d.environment_id = $1 ORDER BY i.name_key";

pub(crate) const DELETE_ENVIRONMENT: &str = "DELETE FROM environments WHERE name_key = $1";

pub(crate) const INSERT_RUNTIME: &str = "INSERT INTO runtimes (id, name, name_key, sealing_cert, created_at, updated_at, created_by, updated_by, version) \
     VALUES ($1, $2, $3, $4, $5, $5, $6, $6, 1)";

pub(crate) const RUNTIME_BY_NAME_KEY: &str = "SELECT * FROM runtimes WHERE name_key = $1";

pub(crate) const RUNTIMES: &str = "SELECT * FROM runtimes ORDER BY name_key";

pub(crate) const DELETE_RUNTIME: &str = "DELETE FROM runtimes WHERE id = $1";

pub(crate) const DELETE_TOKEN: &str = "DELETE FROM api_tokens WHERE id = $1";

pub(crate) const DELETE_ADMIN_TOKENS: &str = "DELETE FROM api_tokens WHERE role = 'admin'";

pub(crate) const INSERT_FIRST_ADMIN_TOKEN: &str = "INSERT INTO api_tokens (id, secret_hash, role, subscription_id, description, created_at, created_by) \
     VALUES ($1, $2, 'admin', NULL, 'admin token', $3, $4) ON CONFLICT DO NOTHING";

pub(crate) const ALL_SEALED_SECRETS: &str =
    "SELECT integration_id, field, key_id, nonce, ciphertext FROM integration_secrets";

pub(crate) const RESEAL_SECRET: &str = "UPDATE integration_secrets SET key_id = $1, nonce = $2, ciphertext = $3 \
     WHERE integration_id = $4 AND field = $5";

pub(crate) const FORGET_SEALING_KEYS: &str = "DELETE FROM sealing_keys";

pub(crate) const INSERT_TOKEN: &str = "INSERT INTO api_tokens (id, secret_hash, role, subscription_id, description, created_at, created_by) \
     VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// What a project's builds recorded (hub entries, pipeline resources, its custom CI image) is
/// owned by the project's row; `$1` is the project's id.
pub(crate) const RELEASE_PROJECT_DEPENDENCIES: &str =
    "DELETE FROM integration_dependencies WHERE project_id = $1";

/// `$1` is the project's name key.
pub(crate) const COUNT_PROJECT_DEPENDENCIES: &str = "SELECT COUNT(*) FROM integration_dependencies d \
     JOIN projects p ON p.id = d.project_id WHERE p.name_key = $1";

/// One dependency of a project's build; a repeat is a no-op.
pub(crate) const RECORD_PROJECT_DEPENDENCY: &str = "INSERT INTO integration_dependencies \
     (integration_id, kind, name, project_id, recorded_at) VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT DO NOTHING";

/// What uses an integration (`$1`, its id), as (kind, name): recorded dependencies and the
/// runtimes it is shared with.
pub(crate) const INTEGRATION_USERS: &str = "SELECT kind, name FROM integration_dependencies \
     WHERE integration_id = $1 \
     UNION ALL SELECT 'runtime', r.name FROM integration_runtimes x \
     JOIN runtimes r ON r.id = x.runtime_id WHERE x.integration_id = $1 ORDER BY 1, 2";

/// The columns of a token with its subscription's name.
macro_rules! token_select {
    () => {
        "SELECT t.id, t.role, t.description, t.created_at, t.created_by, \
         t.secret_hash, s.name AS subscription FROM api_tokens t \
         LEFT JOIN subscriptions s ON s.id = t.subscription_id"
    };
}

pub(crate) const TOKEN_BY_ID: &str = concat!(token_select!(), " WHERE t.id = $1");
pub(crate) const TOKENS: &str = concat!(token_select!(), " ORDER BY t.created_at, t.id");

pub(crate) const SUBSCRIPTION_ID: &str = "SELECT id FROM subscriptions WHERE name_key = $1";
pub(crate) const RUNTIME_ID: &str = "SELECT id FROM runtimes WHERE name_key = $1";
pub(crate) const PROJECT_ID: &str = "SELECT id FROM projects WHERE name_key = $1";

/// What keeps a subscription or a runtime from being deleted, 20 names at most of each.
pub(crate) const SUBSCRIPTION_INTEGRATIONS: &str = "SELECT i.name FROM integration_subscriptions x \
     JOIN integrations i ON i.id = x.integration_id \
     WHERE x.subscription_id = $1 ORDER BY i.name_key LIMIT 20";
pub(crate) const SUBSCRIPTION_PROJECTS: &str =
    "SELECT name FROM projects WHERE subscription_id = $1 ORDER BY name_key LIMIT 20";
pub(crate) const SUBSCRIPTION_ENVIRONMENTS: &str =
    "SELECT name FROM environments WHERE subscription_id = $1 ORDER BY name_key LIMIT 20";
pub(crate) const RUNTIME_INTEGRATIONS: &str = "SELECT i.name FROM integration_runtimes x \
     JOIN integrations i ON i.id = x.integration_id \
     WHERE x.runtime_id = $1 ORDER BY i.name_key LIMIT 20";
