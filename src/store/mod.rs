//! The store: the DuckDB file (the committed truth) with a private connection, the lake
//! derived from it, the tool's own tables (bookmarks, runs, stale partitions, join keys,
//! tombstones), the integration log, and the bundled views. All SQL lives here.
//!
//! The file is opened only for a commit and closed right after, so that analysts can open it
//! read-only between commits. Every commit is one transaction holding data, bookmarks, log rows
//! and the list of lake partitions it made stale.

mod bookmarks;
mod ddl;
pub mod grid;
mod log;
mod log_page;
mod log_query;
mod outbox;
mod outputs;
pub mod lake;
mod reports;
mod rows;
mod runs;
mod views;
mod warehouse;

use std::time::Duration;

pub use bookmarks::{Bookmarks, Scope};
pub use ddl::{duckdb_type, quote_ident};
pub use grid::{Cell, Grid};
pub use log_page::{FailureGroup, HourOutcome, LogRow};
pub use log_query::{Cursor, LogFilter, PendingRetry, Summary};
pub use outbox::{DeliveryState, OutboundEvent, Outbox, OutboxCounts, Queue, Queued, Received, submission_source_id};
pub use outputs::{Outputs, RunLock};
pub use lake::{DATA_FILE, EXPORT_BUDGET, Lake, LakeFormat, LakeLocation, LakeSpec, Vacuumed, partition_key};
pub use log::LOG_TABLE;
pub use reports::{HappinessBy, ProductivityBy, UsageBy};
pub use runs::{LastRun, StatusReport, TableStatus, reset};
pub use views::{VIEWS, ViewFileStatus, ObjectKind, objects};
pub use warehouse::{Reader, SYNC_IDLE, Tx, Warehouse, WindowStats};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path} is not a DuckDB database ({reason}); point `output.duckdb` at a new file or at a database this tool wrote.")]
    NotADatabase { path: String, reason: String },
    #[error("{path} holds no helpscout-etl data yet: run `helpscout-etl sync` first.")]
    NoData { path: String },
    #[error("A sync is committing to {path} right now; try again in a moment.")]
    Busy { path: String },
    #[error("The DuckDB file {path} stayed locked by another process for {waited:?} (an open DuckDB session?); close it and run again.")]
    Locked { path: String, waited: Duration },
    #[error("Cannot create the DuckDB file {path}: {reason}; choose a writable `output.dir`.")]
    Unwritable { path: String, reason: String },
    #[error("Table {table} in {path} has columns [{found}] but this configuration expects [{expected}]; run `helpscout-etl reset {table}` to rebuild it.")]
    SchemaMismatch { table: String, path: String, found: String, expected: String },
    #[error("DuckDB error while {doing}: {source}")]
    Db { doing: String, source: duckdb::Error },
    #[error("Cannot write the lake at {path}: {reason}; check that `output.lake_uri` is writable (and, for S3, the bucket and the AWS_* settings).")]
    LakeIo { path: String, reason: String },
    #[error("The lake's S3 settings cannot be used: {reason}")]
    LakeConfig { reason: String },
    #[error("Another writer committed version {version} of the Delta table {table} while this sync was writing it; only one helpscout-etl may write a lake: stop the other one (or give each its own `output.lake_uri`) and run again.")]
    LakeConflict { table: String, version: i64 },
    #[error("The Delta table {table} cannot be read or written: {reason}")]
    Delta { table: String, reason: String },
    #[error("Writing Parquet for {table} failed: {reason}")]
    LakeEncode { table: String, reason: String },
    #[error("Another sync is already writing to {path}; wait for it to finish (its lock is {lock}).")]
    AlreadyRunning { path: String, lock: String },
    #[error("Cannot create the state folder {path}: {reason}; choose a writable `output.dir`.")]
    StateDir { path: String, reason: String },
    #[error("The outbox {path} cannot be used: {reason}; check that the state folder is writable and on a local disk.")]
    Outbox { path: String, reason: String },
    /// A commit meant to append new rows found some of their keys held already; the caller
    /// rolls it back and upserts instead (it never reaches a user).
    #[error("Table {table} already holds some of the rows being appended as new.")]
    KeysAlreadyHeld { table: String },
    #[error("The view {view} is not installed in {path}: {reason}")]
    ViewMissing { view: String, path: String, reason: String },
}

/// Maps a DuckDB error to what it was doing.
pub(crate) fn db(doing: impl Into<String>) -> impl FnOnce(duckdb::Error) -> StoreError {
    let doing = doing.into();
    move |source| StoreError::Db { doing, source }
}
