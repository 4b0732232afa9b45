//! The DuckDB file: contract tables with primary keys, and the tool's own tables (bookmarks,
//! runs, Parquet partitions awaiting export, the join-key catalog, conversation tombstones).
//!
//! The file is opened only for a commit and closed right after, so that analysts can open it
//! read-only between commits. Every commit is one transaction holding data, bookmarks, log rows
//! and the list of Parquet partitions it made stale.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use duckdb::{Connection, params};

use crate::schema::{SchemaColumn, create_table_sql, quote_ident};
use crate::tables::{JOIN_KEYS, DOCUMENTED_JOIN_KEYS, Table, join_tables};

#[derive(Debug, thiserror::Error)]
pub enum WarehouseError {
    #[error("{path} is not a DuckDB database ({reason}); point `output.duckdb` at a new file or at a database this tool wrote.")]
    NotADatabase { path: String, reason: String },
    #[error("The DuckDB file {path} stayed locked by another process for {waited:?} (an open DuckDB session?); close it and run again.")]
    Locked { path: String, waited: Duration },
    #[error("Cannot create the DuckDB file {path}: {reason}; choose a writable `output.dir`.")]
    Unwritable { path: String, reason: String },
    #[error("Table {table} in {path} has columns [{found}] but this configuration expects [{expected}]; run `helpscout-etl reset {table}` to rebuild it.")]
    SchemaMismatch { table: String, path: String, found: String, expected: String },
    #[error("DuckDB error while {doing}: {source}")]
    Db { doing: String, source: duckdb::Error },
}

fn db(doing: impl Into<String>) -> impl FnOnce(duckdb::Error) -> WarehouseError {
    let doing = doing.into();
    move |source| WarehouseError::Db { doing, source }
}

pub const STATE_TABLE: &str = "_helpscout_state";
pub const RUNS_TABLE: &str = "_helpscout_runs";
pub const DIRTY_TABLE: &str = "_helpscout_dirty_partitions";
pub const JOIN_KEYS_TABLE: &str = "_helpscout_join_keys";
pub const TOMBSTONES_TABLE: &str = "_helpscout_conversation_tombstones";

/// Bookmark scope marking when a table's list was last checked for removed records
/// (not a cursor: `status` leaves it out).
pub const REMOVAL_CHECK_SCOPE: &str = "removal-check";
/// Bookmark scope of a windowed report: the end of the window last read.
pub const WINDOW_END_SCOPE: &str = "window-end";

/// The key of a bookmark in `Tx::bookmarks`.
pub fn bookmark_key(table: &str, scope: &str) -> (String, String) {
    (table.to_string(), scope.to_string())
}

/// The tool's own tables.
const INTERNAL_DDL: &str = r#"
CREATE TABLE IF NOT EXISTS _helpscout_state (
  table_name VARCHAR NOT NULL,
  scope VARCHAR NOT NULL,
  bookmark TIMESTAMPTZ,
  last_run_id VARCHAR,
  last_synced_at TIMESTAMPTZ,
  PRIMARY KEY (table_name, scope)
);
CREATE TABLE IF NOT EXISTS _helpscout_runs (
  run_id VARCHAR PRIMARY KEY,
  started_at TIMESTAMPTZ,
  finished_at TIMESTAMPTZ,
  status VARCHAR,
  report VARCHAR
);
CREATE TABLE IF NOT EXISTS _helpscout_dirty_partitions (
  table_name VARCHAR NOT NULL,
  partition_value VARCHAR NOT NULL,
  PRIMARY KEY (table_name, partition_value)
);
CREATE TABLE IF NOT EXISTS _helpscout_join_keys (
  join_key VARCHAR PRIMARY KEY,
  left_table VARCHAR,
  right_table VARCHAR,
  documented BOOLEAN
);
CREATE TABLE IF NOT EXISTS _helpscout_conversation_tombstones (
  id BIGINT PRIMARY KEY,
  reason VARCHAR,
  merged_into BIGINT,
  detected_at TIMESTAMPTZ,
  run_id VARCHAR
);
"#;

/// The partition a row belongs to, as SQL over the table's columns ('' for unpartitioned tables).
/// Computed from epoch microseconds so that no time-zone setting can move a row's month.
pub fn partition_sql(table: &Table) -> String {
    match table.partition_month_of {
        Some(col) => format!(
            "coalesce(strftime(make_timestamp(epoch_us({})), '%Y-%m'), '{}')",
            quote_ident(col),
            NULL_PARTITION
        ),
        None => "''".to_string(),
    }
}

/// Hive's name for the partition of rows whose partition column is null.
pub const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

#[derive(Debug, Clone)]
pub struct Warehouse {
    pub path: PathBuf,
    /// How long to wait for a reader to let go of the file before a commit.
    pub lock_timeout: Duration,
}

/// Measured length of the longest time the file was held open by this process.
#[derive(Debug, Default, Clone, Copy)]
pub struct WindowStats {
    pub commits: u64,
    pub longest: Duration,
    pub total: Duration,
}

impl WindowStats {
    /// Adds the commits another thread made for the same run.
    pub fn absorb(&mut self, other: WindowStats) {
        self.commits += other.commits;
        self.total += other.total;
        self.longest = self.longest.max(other.longest);
    }
}

impl Warehouse {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Warehouse { path: path.into(), lock_timeout: Duration::from_secs(120) }
    }

    /// Opens the file for writing, waiting while another process holds it.
    pub fn connect(&self) -> Result<Connection, WarehouseError> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| WarehouseError::Unwritable {
                path: self.path.display().to_string(),
                reason: e.to_string(),
            })?;
        }
        let started = Instant::now();
        let mut pause = Duration::from_millis(20);
        loop {
            match Connection::open(&self.path) {
                Ok(conn) => return Ok(conn),
                Err(e) => {
                    let reason = e.to_string();
                    if is_lock_conflict(&reason) {
                        if started.elapsed() >= self.lock_timeout {
                            return Err(WarehouseError::Locked {
                                path: self.path.display().to_string(),
                                waited: self.lock_timeout,
                            });
                        }
                        std::thread::sleep(pause);
                        pause = (pause * 2).min(Duration::from_millis(500));
                        continue;
                    }
                    return Err(classify_open_error(&self.path, reason));
                }
            }
        }
    }

    /// Opens the file read-only (for `status`, `log`, `report`).
    pub fn connect_read_only(&self) -> Result<Connection, WarehouseError> {
        if !self.path.exists() {
            return Err(WarehouseError::NotADatabase {
                path: self.path.display().to_string(),
                reason: "the file does not exist yet: run `helpscout-etl sync` first".into(),
            });
        }
        let config = duckdb::Config::default()
            .access_mode(duckdb::AccessMode::ReadOnly)
            .map_err(db("configuring a read-only connection"))?;
        Connection::open_with_flags(&self.path, config).map_err(|e| classify_open_error(&self.path, e.to_string()))
    }

    /// Runs `f` in one transaction on a freshly opened connection; the file is closed after.
    pub fn commit<T, E: From<WarehouseError>>(
        &self,
        stats: &mut WindowStats,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let started = Instant::now();
        let mut conn = self.connect()?;
        let result = {
            let txn = conn.transaction().map_err(db("starting a transaction"))?;
            let mut tx = Tx { conn: &txn, path: &self.path };
            let value = f(&mut tx)?;
            txn.commit().map_err(db("committing"))?;
            value
        };
        drop(conn);
        let held = started.elapsed();
        stats.commits += 1;
        stats.total += held;
        stats.longest = stats.longest.max(held);
        Ok(result)
    }
}

fn is_lock_conflict(reason: &str) -> bool {
    let r = reason.to_lowercase();
    r.contains("could not set lock") || r.contains("conflicting lock")
}

fn classify_open_error(path: &Path, reason: String) -> WarehouseError {
    let lower = reason.to_lowercase();
    if lower.contains("not a valid duckdb database") || lower.contains("unable to open database") && path.is_file() || lower.contains("invalid") && lower.contains("header") {
        WarehouseError::NotADatabase { path: path.display().to_string(), reason }
    } else if lower.contains("permission denied") || lower.contains("read-only file system") || lower.contains("cannot open file") {
        WarehouseError::Unwritable { path: path.display().to_string(), reason }
    } else {
        WarehouseError::NotADatabase { path: path.display().to_string(), reason }
    }
}

/// What one commit does, statement by statement, inside its transaction.
pub struct Tx<'a> {
    pub conn: &'a Connection,
    path: &'a Path,
}

impl Tx<'_> {
    pub fn execute_batch(&self, sql: &str, doing: &str) -> Result<(), WarehouseError> {
        self.conn.execute_batch(sql).map_err(db(doing))
    }

    /// Creates the tool's tables and the given contract tables; fails clearly when an existing
    /// table has other columns than this configuration expects.
    pub fn ensure_tables(&self, tables: &[(&'static Table, Vec<SchemaColumn>)]) -> Result<(), WarehouseError> {
        self.execute_batch(INTERNAL_DDL, "creating the tool's tables")?;
        for (i, join) in JOIN_KEYS.iter().enumerate() {
            let (left, right) = join_tables(join);
            self.conn
                .execute(
                    &format!("INSERT OR IGNORE INTO {JOIN_KEYS_TABLE} VALUES (?, ?, ?, ?)"),
                    params![join, left, right, i < DOCUMENTED_JOIN_KEYS],
                )
                .map_err(db("cataloguing the join keys"))?;
        }
        for (table, columns) in tables {
            let expected: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
            let found = self.column_names(table.name)?;
            if found.is_empty() {
                self.execute_batch(&create_table_sql(table.name, columns, table.primary_key), &format!("creating table {}", table.name))?;
            } else if found != expected {
                return Err(WarehouseError::SchemaMismatch {
                    table: table.name.to_string(),
                    path: self.path.display().to_string(),
                    found: found.join(", "),
                    expected: expected.join(", "),
                });
            }
        }
        Ok(())
    }

    pub fn column_names(&self, table: &str) -> Result<Vec<String>, WarehouseError> {
        let mut stmt = self
            .conn
            .prepare("SELECT column_name FROM information_schema.columns WHERE table_schema = 'main' AND table_name = ? ORDER BY ordinal_position")
            .map_err(db("reading the table's columns"))?;
        let names = stmt
            .query_map([table], |r| r.get::<_, String>(0))
            .map_err(db("reading the table's columns"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db("reading the table's columns"))?;
        Ok(names)
    }

    /// Stages batches in a temporary table named after `table`; returns its name.
    pub fn stage(&self, table: &Table, batches: Vec<RecordBatch>) -> Result<String, WarehouseError> {
        let stage = format!("_stage_{}", table.name);
        self.execute_batch(
            &format!(
                "CREATE OR REPLACE TEMP TABLE {} AS SELECT * FROM {} WHERE false",
                quote_ident(&stage),
                quote_ident(table.name)
            ),
            "creating a staging table",
        )?;
        let mut appender = self
            .conn
            .appender_to_catalog_and_db(&stage, "temp", "main")
            .map_err(db("opening the staging appender"))?;
        for batch in batches {
            if batch.num_rows() > 0 {
                appender.append_record_batch(batch).map_err(db(format!("staging rows of {}", table.name)))?;
            }
        }
        appender.flush().map_err(db("flushing staged rows"))?;
        Ok(stage)
    }

    /// Records the partitions of the rows a `WHERE` clause selects as needing a Parquet rewrite.
    fn mark_dirty(&self, table: &Table, from: &str, filter: &str) -> Result<(), WarehouseError> {
        self.execute_batch(
            &format!(
                "INSERT OR IGNORE INTO {DIRTY_TABLE} SELECT DISTINCT '{}', {} FROM {} WHERE {}",
                table.name,
                partition_sql(table),
                from,
                filter
            ),
            "recording stale Parquet partitions",
        )
    }

    fn delete_where(&self, table: &Table, filter: &str) -> Result<usize, WarehouseError> {
        let target = quote_ident(table.name);
        self.mark_dirty(table, &target, filter)?;
        self.conn
            .execute(&format!("DELETE FROM {target} WHERE {filter}"), [])
            .map_err(db(format!("deleting rows of {}", table.name)))
    }

    fn key_match(table: &Table, stage: &str) -> String {
        let cols: Vec<String> = table.primary_key.iter().map(|k| quote_ident(k)).collect();
        format!("({}) IN (SELECT {} FROM {})", cols.join(", "), cols.join(", "), quote_ident(stage))
    }

    /// Replaces rows by primary key with the staged ones (insert new, overwrite existing).
    pub fn upsert(&self, table: &Table, stage: &str) -> Result<usize, WarehouseError> {
        self.delete_where(table, &Self::key_match(table, stage))?;
        self.mark_dirty(table, &quote_ident(stage), "true")?;
        self.conn
            .execute(&format!("INSERT INTO {} SELECT * FROM {}", quote_ident(table.name), quote_ident(stage)), [])
            .map_err(db(format!("inserting rows of {}", table.name)))
    }

    /// Removes every child row of the given parents (their set is about to be replaced).
    pub fn delete_children(&self, child: &Table, parent_ids: &[i64]) -> Result<usize, WarehouseError> {
        let Some(key) = child.parent_key else { return Ok(0) };
        if parent_ids.is_empty() {
            return Ok(0);
        }
        self.delete_where(child, &format!("{} IN ({})", quote_ident(key), id_list(parent_ids)))
    }

    /// Parents that lose children to the staged rows (a child now listed under another parent).
    pub fn parents_losing_children(&self, child: &Table, stage: &str) -> Result<Vec<i64>, WarehouseError> {
        let Some(key) = child.parent_key else { return Ok(vec![]) };
        let key = quote_ident(key);
        let sql = format!(
            "SELECT DISTINCT t.{key} FROM {} t JOIN {} s USING ({}) WHERE t.{key} <> s.{key} ORDER BY 1",
            quote_ident(child.name),
            quote_ident(stage),
            child.primary_key.iter().map(|k| quote_ident(k)).collect::<Vec<_>>().join(", ")
        );
        self.ids(&sql)
    }

    /// Deletes the table's rows (within `scope_parents` when given) that this run did not write.
    pub fn delete_not_written_by(&self, table: &Table, run_id: &str, scope_parents: Option<&[i64]>) -> Result<usize, WarehouseError> {
        let mut filter = format!("_run_id IS DISTINCT FROM '{}'", run_id.replace('\'', "''"));
        if let (Some(parents), Some(key)) = (scope_parents, table.parent_key) {
            if parents.is_empty() {
                return Ok(0);
            }
            filter.push_str(&format!(" AND {} IN ({})", quote_ident(key), id_list(parents)));
        }
        self.delete_where(table, &filter)
    }

    /// Deletes rows whose parent no longer exists.
    pub fn delete_orphans(&self, child: &Table) -> Result<usize, WarehouseError> {
        let (Some(key), Some(parent)) = (child.parent_key, child.parent()) else { return Ok(0) };
        self.delete_where(
            child,
            &format!("{} NOT IN (SELECT id FROM {})", quote_ident(key), quote_ident(parent)),
        )
    }

    pub fn delete_ids(&self, table: &Table, ids: &[i64]) -> Result<usize, WarehouseError> {
        if ids.is_empty() {
            return Ok(0);
        }
        self.delete_where(table, &format!("id IN ({})", id_list(ids)))
    }

    pub fn ids(&self, sql: &str) -> Result<Vec<i64>, WarehouseError> {
        let mut stmt = self.conn.prepare(sql).map_err(db("reading ids"))?;
        let ids = stmt
            .query_map([], |r| r.get::<_, i64>(0))
            .map_err(db("reading ids"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db("reading ids"))?;
        Ok(ids)
    }

    pub fn bookmark(&self, table: &str, scope: &str) -> Result<Option<i64>, WarehouseError> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT epoch_us(bookmark) FROM {STATE_TABLE} WHERE table_name = ? AND scope = ?"))
            .map_err(db("reading a bookmark"))?;
        let mut rows = stmt.query(params![table, scope]).map_err(db("reading a bookmark"))?;
        match rows.next().map_err(db("reading a bookmark"))? {
            Some(row) => row.get::<_, Option<i64>>(0).map_err(db("reading a bookmark")),
            None => Ok(None),
        }
    }

    /// Moves a bookmark (µs since epoch; None keeps a full-table marker) in this transaction.
    pub fn set_bookmark(&self, table: &str, scope: &str, bookmark_us: Option<i64>, run_id: &str) -> Result<(), WarehouseError> {
        self.conn
            .execute(
                &format!(
                    "INSERT OR REPLACE INTO {STATE_TABLE} VALUES (?, ?, make_timestamp(?::BIGINT)::TIMESTAMPTZ, ?, now())"
                ),
                params![table, scope, bookmark_us, run_id],
            )
            .map(|_| ())
            .map_err(db("saving a bookmark"))
    }

    /// Every bookmark, keyed by `bookmark_key`, in µs since the epoch.
    pub fn bookmarks(&self) -> Result<std::collections::HashMap<(String, String), i64>, WarehouseError> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT table_name, scope, epoch_us(bookmark) FROM {STATE_TABLE} WHERE bookmark IS NOT NULL"))
            .map_err(db("reading bookmarks"))?;
        let rows = stmt
            .query_map([], |r| Ok(((r.get::<_, String>(0)?, r.get::<_, String>(1)?), r.get::<_, i64>(2)?)))
            .map_err(db("reading bookmarks"))?
            .collect::<Result<_, _>>()
            .map_err(db("reading bookmarks"))?;
        Ok(rows)
    }

    /// The latest value of a timestamp column, in µs since the epoch.
    pub fn max_micros(&self, table: &str, column: &str) -> Result<Option<i64>, WarehouseError> {
        self.conn
            .query_row(&format!("SELECT epoch_us(max({})) FROM {}", quote_ident(column), quote_ident(table)), [], |r| r.get(0))
            .map_err(db("reading a cursor"))
    }

    pub fn tombstone(&self, id: i64, reason: &str, merged_into: Option<i64>, run_id: &str) -> Result<(), WarehouseError> {
        self.conn
            .execute(
                &format!("INSERT OR REPLACE INTO {TOMBSTONES_TABLE} VALUES (?, ?, ?, now(), ?)"),
                params![id, reason, merged_into, run_id],
            )
            .map(|_| ())
            .map_err(db("recording a removed conversation"))
    }
}

fn id_list(ids: &[i64]) -> String {
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
}
