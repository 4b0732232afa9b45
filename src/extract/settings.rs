//! How to sync: the API client's settings, what to extract and how.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::api::ClientConfig;
use crate::catalog::Table;

/// Replication chosen for a table in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Only what changed since the table's bookmark (or the whole list where the API cannot
    /// filter it).
    Incremental,
    /// Everything, finding what was removed upstream.
    Full,
}

#[derive(Debug, Clone)]
pub struct TableChoice {
    pub table: &'static Table,
    pub method: Method,
    /// The columns to keep (None: all); keys, cursors and partition columns always stay.
    pub columns: Option<Vec<String>>,
}

/// Everything a sync needs besides where it writes, resolved and validated.
#[derive(Debug, Clone)]
pub struct SyncSettings {
    pub client: ClientConfig,
    /// Earliest time a first run extracts.
    pub start_date: DateTime<Utc>,
    /// The selected tables, parents before their children.
    pub tables: Vec<TableChoice>,
    /// How far before the previous run's start a refresh reads again (clock skew, late writes).
    pub overlap: Duration,
    /// Parent records per commit.
    pub chunk_rows: usize,
    /// How long a commit waits for a reader to let go of the DuckDB file.
    pub lock_timeout: Duration,
    /// How often a list's size is compared with the rows held, to notice removals.
    pub removal_check: Duration,
}

impl SyncSettings {
    /// The choice made for a table, if it is selected.
    pub fn choice(&self, table: &Table) -> Option<&TableChoice> {
        self.tables.iter().find(|c| c.table == table)
    }

    pub fn selected(&self, table: &Table) -> bool {
        self.choice(table).is_some()
    }
}
