//! Rows into domain values, once for both backends: each conversion reads columns by name
//! through [`Columns`], which any sqlx row whose backend decodes these types provides.

use berth_core::{Integration, Meta, ProjectName, RuntimeScope};
use sqlx::{ColumnIndex, Decode, Row, Type};
use time::OffsetDateTime;

use crate::sql::{parse_config, split_fields, split_names, stored_name};
use crate::{Project, Runtime, StoreError, Subscription, TokenInfo, TokenRole};

/// A row's columns by name, decoded as the store's few column types.
pub(crate) trait Columns {
    fn text(&self, column: &str) -> Result<String, StoreError>;
    fn maybe_text(&self, column: &str) -> Result<Option<String>, StoreError>;
    fn int(&self, column: &str) -> Result<i64, StoreError>;
    fn flag(&self, column: &str) -> Result<bool, StoreError>;
    fn time(&self, column: &str) -> Result<OffsetDateTime, StoreError>;
    fn maybe_int(&self, column: &str) -> Result<Option<i64>, StoreError>;
    fn maybe_time(&self, column: &str) -> Result<Option<OffsetDateTime>, StoreError>;
}

impl<R> Columns for R
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> bool: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> OffsetDateTime: Decode<'r, R::Database> + Type<R::Database>,
{
    fn text(&self, column: &str) -> Result<String, StoreError> {
        Ok(self.try_get(column)?)
    }
    fn maybe_text(&self, column: &str) -> Result<Option<String>, StoreError> {
        Ok(self.try_get(column)?)
    }
    fn int(&self, column: &str) -> Result<i64, StoreError> {
        Ok(self.try_get(column)?)
    }
    fn flag(&self, column: &str) -> Result<bool, StoreError> {
        Ok(self.try_get(column)?)
    }
    fn time(&self, column: &str) -> Result<OffsetDateTime, StoreError> {
        Ok(self.try_get(column)?)
    }
    fn maybe_int(&self, column: &str) -> Result<Option<i64>, StoreError> {
        Ok(self.try_get(column)?)
    }
    fn maybe_time(&self, column: &str) -> Result<Option<OffsetDateTime>, StoreError> {
        Ok(self.try_get(column)?)
    }
}

pub(crate) fn read_meta(row: &impl Columns) -> Result<Meta, StoreError> {
    Ok(Meta {
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
        created_by: row.text("created_by")?,
        updated_by: row.text("updated_by")?,
        version: row.int("version")?,
    })
}

/// A row of the integration select (`sql::integration_select!`).
pub(crate) fn read_integration(row: &impl Columns) -> Result<Integration, StoreError> {
    Ok(Integration {
        id: row.text("id")?,
        name: stored_name(&row.text("name")?)?,
        config: parse_config(&row.text("config")?)?,
        subscriptions: split_names(row.maybe_text("subs")?)?,
        runtimes: if row.flag("runtimes_all")? {
            RuntimeScope::All
        } else {
            RuntimeScope::Selected(split_names(row.maybe_text("rts")?)?)
        },
        secrets_set: split_fields(row.maybe_text("secret_fields")?),
        meta: read_meta(row)?,
    })
}

/// A row of `statements::TOKEN_BY_ID` or `TOKENS`.
pub(crate) fn read_token(row: &impl Columns) -> Result<TokenInfo, StoreError> {
    Ok(TokenInfo {
        id: row.text("id")?,
        role: read_role(row)?,
        description: row.text("description")?,
        created_at: row.time("created_at")?,
        created_by: row.text("created_by")?,
    })
}

/// The `role` column with its `subscription` name, as tokens and users store them.
pub(crate) fn read_role(row: &impl Columns) -> Result<TokenRole, StoreError> {
    let role = row.text("role")?;
    match (role.as_str(), row.maybe_text("subscription")?) {
        ("admin", _) => Ok(TokenRole::Admin),
        ("subscription", Some(s)) => Ok(TokenRole::Subscription(stored_name(&s)?)),
        (other, _) => Err(StoreError::Corrupt(format!("role '{other}'"))),
    }
}

pub(crate) fn read_subscription(row: &impl Columns) -> Result<Subscription, StoreError> {
    Ok(Subscription {
        id: row.text("id")?,
        name: stored_name(&row.text("name")?)?,
        meta: read_meta(row)?,
    })
}

/// A project row joined with its subscription's name (`subscription`).
pub(crate) fn read_project(row: &impl Columns) -> Result<Project, StoreError> {
    Ok(Project {
        id: row.text("id")?,
        name: ProjectName::parse("name", &row.text("name")?)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        subscription: stored_name(&row.text("subscription")?)?,
        meta: read_meta(row)?,
    })
}

pub(crate) fn read_runtime(row: &impl Columns) -> Result<Runtime, StoreError> {
    Ok(Runtime {
        id: row.text("id")?,
        name: stored_name(&row.text("name")?)?,
        sealing_cert: row.maybe_text("sealing_cert")?,
        namespace: row.maybe_text("namespace")?,
        cluster_role_arn: row.maybe_text("cluster_role_arn")?,
        meta: read_meta(row)?,
    })
}
