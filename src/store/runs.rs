//! Runs, and what syncs left behind: the runs table, `status`, `reset`.

use chrono::{DateTime, Utc};
use duckdb::params;
use serde::Serialize;

use super::bookmarks::Scope;
use super::ddl::{DIRTY_TABLE, LAKE_TABLES, RUNS_TABLE, SLICES_TABLE, STALE_ROWS_TABLE, STATE_TABLE, quote_ident};
use super::lake::Lake;
use super::{Outputs, Reader, StoreError, Tx, Warehouse, db};
use crate::catalog::{self, Table};

/// One table as the outputs hold it.
#[derive(Debug, Serialize)]
pub struct TableStatus {
    pub table: &'static str,
    /// What a sync does to bring it up to date.
    pub sync: &'static str,
    /// None when the table has not been created (not synced, or not selected).
    pub rows: Option<i64>,
    /// The latest cursor (markers of removal checks and report windows are left out).
    pub bookmark: Option<String>,
    pub last_synced_at: Option<String>,
    /// Data files of the table in the lake now (None: the lake could not be read).
    pub parquet_files: Option<usize>,
    /// Since when the account's plan has refused the table (HTTP 403); syncs skip it quietly.
    pub unavailable_since: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct LastRun {
    pub run_id: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub status: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct StatusReport {
    pub duckdb: String,
    pub last_run: Option<LastRun>,
    pub tables: Vec<TableStatus>,
}

impl Tx<'_> {
    /// Records the start of a run.
    pub fn start_run(&self, run_id: &str, started: DateTime<Utc>) -> Result<(), StoreError> {
        self.conn
            .execute(
                &format!("INSERT INTO {RUNS_TABLE} VALUES (?, make_timestamp(?::BIGINT)::TIMESTAMPTZ, NULL, 'running', NULL)"),
                params![run_id, started.timestamp_micros()],
            )
            .map(|_| ())
            .map_err(db("recording the run"))
    }

    /// Records how a run ended, with its report (JSON).
    pub fn finish_run(&self, run_id: &str, status: &str, report_json: &str) -> Result<(), StoreError> {
        self.conn
            .execute(&format!("UPDATE {RUNS_TABLE} SET finished_at = now(), status = ?, report = ? WHERE run_id = ?"), params![status, report_json, run_id])
            .map(|_| ())
            .map_err(db("recording the run"))
    }
}

const ISO: &str = "'%Y-%m-%dT%H:%M:%SZ'";

impl Reader {
    /// Bookmarks, last run and row counts per table.
    pub fn status(&self, lake: Option<&Lake>) -> Result<StatusReport, StoreError> {
        let existing = self.table_names()?;
        if !existing.iter().any(|t| t == STATE_TABLE) {
            return Err(StoreError::NoData { path: self.path.display().to_string() });
        }
        let mut tables = Vec::new();
        for table in catalog::ALL {
            let rows = if existing.iter().any(|t| t == table.name) {
                Some(
                    self.conn
                        .query_row(&format!("SELECT count(*) FROM {}", quote_ident(table.name)), [], |r| r.get(0))
                        .map_err(db(format!("counting the rows of {}", table.name)))?,
                )
            } else {
                None
            };
            let (bookmark, synced) = self
                .conn
                .query_row(
                    &format!(
                        "SELECT strftime(max(bookmark)::TIMESTAMP, {ISO}), strftime(max(last_synced_at)::TIMESTAMP, {ISO}) FROM {STATE_TABLE} WHERE table_name = ? AND NOT ({})",
                        Scope::markers_sql()
                    ),
                    [table.name],
                    |r| Ok((r.get::<_, Option<String>>(0)?, r.get::<_, Option<String>>(1)?)),
                )
                .map_err(db("reading bookmarks"))?;
            let unavailable_since = self
                .conn
                .query_row(
                    &format!("SELECT strftime(bookmark::TIMESTAMP, {ISO}) FROM {STATE_TABLE} WHERE table_name = ? AND scope = ?"),
                    [table.name, Scope::Unavailable.key().as_str()],
                    |r| r.get::<_, Option<String>>(0),
                )
                .ok()
                .flatten();
            tables.push(TableStatus {
                unavailable_since,
                table: table.name,
                sync: table.strategy().describe(),
                rows,
                bookmark,
                last_synced_at: synced,
                parquet_files: lake.and_then(|l| l.table_files(table.name).ok()),
            });
        }
        let last_run = self
            .conn
            .query_row(
                &format!("SELECT run_id, strftime(started_at::TIMESTAMP, {ISO}), strftime(finished_at::TIMESTAMP, {ISO}), status FROM {RUNS_TABLE} ORDER BY started_at DESC LIMIT 1"),
                [],
                |r| Ok(LastRun { run_id: r.get(0)?, started_at: r.get(1)?, finished_at: r.get(2)?, status: r.get(3)? }),
            )
            .ok();
        Ok(StatusReport { duckdb: self.path.display().to_string(), last_run, tables })
    }
}

/// Drops the tables' rows and bookmarks (one transaction), then their lake folders, under the
/// outputs' lock.
pub fn reset(outputs: &Outputs, tables: &[&'static Table]) -> Result<(), StoreError> {
    let _lock = outputs.lock()?;
    Warehouse::new(&outputs.duckdb).commit(&mut Default::default(), |tx| {
        tx.ensure_tables(&[])?;
        for table in tables {
            tx.conn
                .execute_batch(&format!("DROP TABLE IF EXISTS {}", quote_ident(table.name)))
                .map_err(db(format!("resetting {}", table.name)))?;
            for internal in [STATE_TABLE, DIRTY_TABLE, STALE_ROWS_TABLE, SLICES_TABLE, LAKE_TABLES] {
                tx.conn.execute(&format!("DELETE FROM {internal} WHERE table_name = ?"), [table.name]).map_err(db(format!("resetting {}", table.name)))?;
            }
        }
        Ok::<_, StoreError>(())
    })?;
    let lake = Lake::open(&outputs.lake, &super::lake::process_env)?;
    tables.iter().try_for_each(|t| lake.remove_table(t.name))
}
