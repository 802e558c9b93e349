//! A small migration runner shared by both backends: each backend takes its own lock (SQLite's
//! write lock, a PostgreSQL advisory lock) and runs every pending script in one transaction, so a
//! second replica starting at the same moment waits and then finds nothing left to do.

use sha2::{Digest, Sha256};

use crate::StoreError;

#[derive(Debug)]
pub(crate) struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

pub(crate) const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS berth_migrations (
    version  BIGINT PRIMARY KEY,
    name     TEXT NOT NULL,
    checksum TEXT NOT NULL
)";

pub(crate) fn checksum(sql: &str) -> String {
    berth_files::hex(&Sha256::digest(sql.as_bytes()))
}

/// Checks what is applied against what this build ships and returns what remains to run.
pub(crate) fn pending<'m>(
    applied: &[(i64, String)],
    shipped: &'m [Migration],
) -> Result<Vec<&'m Migration>, StoreError> {
    let newest = shipped.iter().map(|m| m.version).max().unwrap_or(0);
    for (version, sum) in applied {
        match shipped.iter().find(|m| m.version == *version) {
            None if *version > newest => {
                return Err(StoreError::Migration(format!(
                    "the database is at schema version {version}, newer than this Berth knows ({newest}); upgrade Berth"
                )));
            }
            None => {
                return Err(StoreError::Migration(format!(
                    "the database has migration {version}, which this Berth does not ship"
                )));
            }
            Some(m) if checksum(m.sql) != *sum => {
                return Err(StoreError::Migration(format!(
                    "migration {version} ({}) was changed after it was applied",
                    m.name
                )));
            }
            Some(_) => {}
        }
    }
    Ok(shipped
        .iter()
        .filter(|m| !applied.iter().any(|(v, _)| *v == m.version))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &[Migration] = &[
        Migration {
            version: 1,
            name: "init",
            sql: "CREATE TABLE a (x INT)",
        },
        Migration {
            version: 2,
            name: "more",
            sql: "CREATE TABLE b (x INT)",
        },
    ];

    #[test]
    fn plans_only_what_is_missing_and_refuses_drift() {
        assert_eq!(pending(&[], SHIPPED).unwrap().len(), 2);
        let one = (1, checksum(SHIPPED[0].sql));
        assert_eq!(
            pending(std::slice::from_ref(&one), SHIPPED).unwrap()[0].version,
            2
        );
        assert!(pending(&[(1, "x".into())], SHIPPED).is_err());
        let e = pending(&[one, (9, "x".into())], SHIPPED).unwrap_err();
        assert!(e.to_string().contains("newer"), "{e}");
    }
}
