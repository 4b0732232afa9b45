//! Typed bookmarks. A table has a cursor (table-wide or per parent record) and may have
//! markers: the end of the report window last read, the time of the last check for removed
//! records. Each commits in the transaction of the data it covers.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use duckdb::params;

use super::ddl::{STATE_TABLE, literal};
use super::{StoreError, Tx, db};
use crate::catalog::{self, Table};

/// What a bookmark row of a table stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// The table's cursor: everything up to it is held (a whole-list table keeps the marker
    /// without a value: it was read completely).
    Cursor,
    /// A per-parent table's cursor for one parent record.
    Parent(i64),
    /// A windowed report: the end of the window last read.
    WindowEnd,
    /// When the list was last compared with the rows held to notice removals.
    RemovalCheck,
    /// Since when the account's plan has refused the table's list (HTTP 403).
    Unavailable,
}

impl Scope {
    /// How the scope is spelled in the state table.
    pub(super) fn key(self) -> String {
        match self {
            Scope::Cursor => String::new(),
            Scope::Parent(id) => format!("parent:{id}"),
            Scope::WindowEnd => "window-end".into(),
            Scope::RemovalCheck => "removal-check".into(),
            Scope::Unavailable => "unavailable".into(),
        }
    }

    fn parse(key: &str) -> Option<Scope> {
        match key {
            "" => Some(Scope::Cursor),
            "window-end" => Some(Scope::WindowEnd),
            "removal-check" => Some(Scope::RemovalCheck),
            "unavailable" => Some(Scope::Unavailable),
            other => other.strip_prefix("parent:")?.parse().ok().map(Scope::Parent),
        }
    }

    /// The SQL condition on the `scope` column for markers (which `status` leaves out).
    pub(super) fn markers_sql() -> String {
        format!("scope IN ({}, {}, {})", literal(&Scope::WindowEnd.key()), literal(&Scope::RemovalCheck.key()), literal(&Scope::Unavailable.key()))
    }
}

/// Every bookmark with a value, read at the start of a run.
#[derive(Debug, Default, Clone)]
pub struct Bookmarks(HashMap<(&'static Table, Scope), DateTime<Utc>>);

impl Bookmarks {
    pub fn get(&self, table: &'static Table, scope: Scope) -> Option<DateTime<Utc>> {
        self.0.get(&(table, scope)).copied()
    }

    /// Remembers a bookmark the run committed (to the microsecond, as the file keeps it).
    pub fn set(&mut self, table: &'static Table, scope: Scope, at: DateTime<Utc>) {
        let at = DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap_or(at);
        self.0.insert((table, scope), at);
    }
}

impl Tx<'_> {
    /// Moves a bookmark in this transaction (`None`: the marker of a table read whole).
    pub fn set_bookmark(&self, table: &Table, scope: Scope, at: Option<DateTime<Utc>>, run_id: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                &format!("INSERT OR REPLACE INTO {STATE_TABLE} VALUES (?, ?, make_timestamp(?::BIGINT)::TIMESTAMPTZ, ?, now())"),
                params![table.name, scope.key(), at.map(|t| t.timestamp_micros()), run_id],
            )
            .map(|_| ())
            .map_err(db("saving a bookmark"))
    }

    /// Forgets a bookmark in this transaction.
    pub fn clear_bookmark(&self, table: &Table, scope: Scope) -> Result<(), StoreError> {
        self.conn
            .execute(&format!("DELETE FROM {STATE_TABLE} WHERE table_name = ? AND scope = ?"), params![table.name, scope.key()])
            .map(|_| ())
            .map_err(db("clearing a bookmark"))
    }

    /// Every bookmark with a value (rows of tables the catalog no longer knows are left out).
    pub fn bookmarks(&self) -> Result<Bookmarks, StoreError> {
        let doing = "reading bookmarks";
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT table_name, scope, epoch_us(bookmark) FROM {STATE_TABLE} WHERE bookmark IS NOT NULL"))
            .map_err(db(doing))?;
        let rows: Vec<(String, String, i64)> =
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).map_err(db(doing))?.collect::<Result<_, _>>().map_err(db(doing))?;
        let mut bookmarks = Bookmarks::default();
        for (name, scope, micros) in rows {
            if let (Some(table), Some(scope), Some(at)) = (catalog::by_name(&name), Scope::parse(&scope), DateTime::from_timestamp_micros(micros)) {
                bookmarks.set(table, scope, at);
            }
        }
        Ok(bookmarks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_spelled_and_read_back_alike() {
        for scope in [Scope::Cursor, Scope::Parent(42), Scope::WindowEnd, Scope::RemovalCheck, Scope::Unavailable] {
            assert_eq!(Scope::parse(&scope.key()), Some(scope));
        }
        assert_eq!(Scope::parse("parent:x"), None);
    }
}
