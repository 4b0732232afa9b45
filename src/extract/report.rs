//! What a run reports: per table and for the run, with a typed cause when it failed.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::catalog::log::Status;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Success,
    /// Some tables failed; the others are complete.
    Partial,
    /// The run stopped; committed tables are complete, the rest untouched.
    Failed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Success => "success",
            RunStatus::Partial => "partial",
            RunStatus::Failed => "failed",
        }
    }
}

/// Why something failed, as far as its fix is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureCause {
    /// The API refused the credentials: the configuration must change.
    Credentials,
    /// The API could not be reached.
    Network,
    /// The API answered with an error or with data that cannot be read.
    Api,
    /// Some records could not be synced; `retry` re-attempts them.
    Records,
    /// The outputs (DuckDB file, lake, state folder) could not be written.
    Storage,
    Internal,
}

#[derive(Debug, Clone, Serialize)]
pub struct TableReport {
    pub table: &'static str,
    pub status: Status,
    /// How the table was synced ("full", or what the sync does for it).
    pub method: &'static str,
    /// Rows received from the API and committed (children count under their own table).
    pub rows: u64,
    pub removed: u64,
    pub requests: u64,
    pub duration_ms: u64,
    pub error: Option<String>,
    pub failure_cause: Option<FailureCause>,
    /// Why the table was not synced although nothing failed (the plan refuses it), with the fix.
    pub unavailable: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SyncReport {
    pub run_id: String,
    pub status: RunStatus,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub duckdb: String,
    /// Where the lake is (a folder or s3://bucket/prefix), and its format.
    pub parquet: String,
    pub lake: &'static str,
    pub tables: Vec<TableReport>,
    pub requests: u64,
    pub rate_limited: u64,
    pub lowest_rate_limit_remaining: Option<i64>,
    pub commits: u64,
    pub longest_commit_window_ms: u64,
    pub parquet_partitions_written: u64,
    /// Bytes of the Parquet files the run wrote.
    pub parquet_bytes_written: u64,
    /// Why the run stopped (status Failed).
    pub error: Option<String>,
    pub failure_cause: Option<FailureCause>,
}
