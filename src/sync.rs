//! One sync run: every selected table extracted, converted and committed, bookmarks last.
//!
//! - Lists the API can filter by modification (`modifiedSince`) are read from a cursor taken
//!   from the SERVER's clock at the start of the previous run, minus an overlap: the records carry
//!   no modification time of their own, and rows the server returns are never dropped.
//! - Lists it cannot filter are read whole and replace the table's rows (per parent for
//!   children), which also removes what was deleted upstream.
//! - Embedded children (conversation threads) are committed with their parent, their set
//!   replaced, refetched from their own endpoint where the embedded list is incomplete.
//! - Data, log events and the bookmark of a table commit in one DuckDB transaction; large tables
//!   commit in chunks and move their bookmark only with the last one.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, SecondsFormat, Utc};
use futures::StreamExt;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::client::{Client, ClientError, ErrorAction, Page, RequestRecord};
use crate::config::{Method, Settings, TableChoice};
use crate::convert::{ConvertError, Row, RunStamp, TableConverter};
use crate::integration_log::{self, LogEvent, RecordFailure, Status, event};
use crate::progress::Progress;
use crate::sinks::duckdb::{REMOVAL_CHECK_SCOPE, RUNS_TABLE, WINDOW_END_SCOPE, WindowStats, Warehouse, WarehouseError, bookmark_key};
use crate::sinks::parquet::{ParquetError, ParquetFolder};
use crate::tables::{self, Origin, Replication, Table};

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Warehouse(#[from] WarehouseError),
    #[error(transparent)]
    Parquet(#[from] ParquetError),
    #[error(transparent)]
    Convert(#[from] ConvertError),
    #[error("Another sync is already writing to {path}; wait for it to finish (its lock is {lock}).")]
    AlreadyRunning { path: String, lock: String },
    #[error("Cannot create the state folder {path}: {reason}; choose a writable `output.dir`.")]
    StateDir { path: String, reason: String },
    #[error("internal error: {0}; please report it with the output of `helpscout-etl log --status Error`.")]
    Internal(String),
    #[error("{failed} {table} record(s) could not be synced (`helpscout-etl log --status Failed --table {table}` lists them); the table's bookmark stays put and `helpscout-etl retry` re-attempts them.")]
    RecordsFailed { table: &'static str, failed: usize },
}

impl SyncError {
    /// Whether the rest of the run can go on after this table failed.
    fn is_fatal(&self) -> bool {
        match self {
            SyncError::Client(e) => matches!(e, ClientError::Auth(_) | ClientError::Unreachable { .. } | ClientError::TokenStore { .. }),
            SyncError::Warehouse(_) | SyncError::Parquet(_) | SyncError::Internal(_) | SyncError::AlreadyRunning { .. } | SyncError::StateDir { .. } => true,
            SyncError::Convert(_) | SyncError::RecordsFailed { .. } => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Success,
    /// Some tables failed; the others are complete.
    Partial,
    /// The run stopped; committed tables are complete, the rest untouched.
    Failed,
}

#[derive(Debug, Clone, Serialize)]
pub struct TableReport {
    pub table: String,
    pub status: Status,
    pub method: &'static str,
    /// Rows received from the API and committed (children count under their own table).
    pub rows: u64,
    pub removed: u64,
    pub requests: u64,
    pub duration_ms: u64,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SyncReport {
    pub run_id: String,
    pub status: RunStatus,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub duckdb: String,
    pub parquet: String,
    pub tables: Vec<TableReport>,
    pub requests: u64,
    pub rate_limited: u64,
    pub lowest_rate_limit_remaining: Option<i64>,
    pub commits: u64,
    pub longest_commit_window_ms: u64,
    pub parquet_partitions_written: u64,
    pub error: Option<String>,
}

/// Runs one sync. Fatal problems before any work (lock, state folder) are errors; everything
/// after is reported in the `SyncReport` (status Partial or Failed).
pub async fn run(settings: &Settings, progress: &Progress) -> Result<SyncReport, SyncError> {
    let state_dir = settings.outputs.state_dir();
    std::fs::create_dir_all(&state_dir).map_err(|e| SyncError::StateDir {
        path: state_dir.display().to_string(),
        reason: e.to_string(),
    })?;
    let _lock = RunLock::acquire(&state_dir, &settings.outputs.dir.display().to_string())?;
    let client = Client::new(settings.client.clone())?;
    let mut run = Run::new(settings, client, progress);
    run.execute().await
}

/// An exclusive lock on the outputs, released by the OS if the process dies.
struct RunLock(#[allow(dead_code)] std::fs::File);

impl RunLock {
    fn acquire(state_dir: &std::path::Path, shown: &str) -> Result<Self, SyncError> {
        let path = state_dir.join("sync.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| SyncError::StateDir { path: path.display().to_string(), reason: e.to_string() })?;
        match file.try_lock() {
            Ok(()) => Ok(RunLock(file)),
            Err(_) => Err(SyncError::AlreadyRunning { path: shown.to_string(), lock: path.display().to_string() }),
        }
    }
}

struct Run<'a> {
    settings: &'a Settings,
    client: Arc<Client>,
    progress: &'a Progress,
    warehouse: Warehouse,
    parquet: ParquetFolder,
    stamp: RunStamp,
    converters: HashMap<&'static str, Arc<TableConverter>>,
    windows: WindowStats,
    bookmarks: HashMap<(String, String), i64>,
    /// Ids listed in this run, per parent table (children are listed per parent).
    listed_ids: HashMap<&'static str, Vec<i64>>,
    tables_synced: HashSet<&'static str>,
    requests: u64,
    rate_limited: u64,
    lowest_remaining: Option<i64>,
    partitions_written: u64,
    /// Records that could not be synced, per table.
    failures: HashMap<&'static str, Vec<RecordFailure>>,
}

/// A child list refetched for the record at an index of a page.
type Refetched = (usize, &'static Table, i64, Result<Vec<Value>, ClientError>);

/// Client errors after which nothing else can succeed either.
fn stops_everything(e: &ClientError) -> bool {
    matches!(e, ClientError::Auth(_) | ClientError::Unreachable { .. } | ClientError::TokenStore { .. })
}

/// Rows gathered for one commit: parent rows by key, child rows per parent id.
struct Chunk {
    rows: Vec<Row>,
    index: HashMap<String, usize>,
    parent_ids: Vec<i64>,
    children: BTreeMap<&'static str, BTreeMap<i64, Vec<Row>>>,
}

impl Chunk {
    fn new() -> Self {
        Chunk { rows: Vec::new(), index: HashMap::new(), parent_ids: Vec::new(), children: BTreeMap::new() }
    }

    fn len(&self) -> usize {
        self.rows.len()
    }

    /// Adds a row; a later copy of the same key (offset paging repeats rows) replaces the earlier.
    fn push(&mut self, key: String, row: Row, id: Option<i64>) {
        match self.index.get(&key) {
            Some(&i) => self.rows[i] = row,
            None => {
                self.index.insert(key, self.rows.len());
                self.rows.push(row);
                if let Some(id) = id {
                    self.parent_ids.push(id);
                }
            }
        }
    }
}

/// A chunk being written by `Run::spawn_commit`: its merge candidates and commit window.
type PendingCommit = tokio::task::JoinHandle<Result<(Vec<i64>, WindowStats), SyncError>>;

/// Commits one chunk: parent rows upserted, each listed parent's children replaced.
/// Returns parents that lost children to another parent (merge candidates).
fn commit_chunk(
    warehouse: &Warehouse,
    windows: &mut WindowStats,
    converters: &HashMap<&'static str, Arc<TableConverter>>,
    table: &'static Table,
    chunk: Chunk,
    store_parent: bool,
    run_id: &str,
) -> Result<Vec<i64>, SyncError> {
    if chunk.rows.is_empty() && chunk.parent_ids.is_empty() {
        return Ok(vec![]);
    }
    let parent_batch = if store_parent { Some(converters[table.name].batch(&chunk.rows)?) } else { None };
    drop(chunk.rows);
    let mut child_batches = Vec::new();
    for (name, per_parent) in chunk.children {
        let rows: Vec<Row> = per_parent.into_values().flatten().collect();
        let child = tables::by_name(name).expect("declared table");
        child_batches.push((child, converters[name].batch(&rows)?));
    }
    let parent_ids = chunk.parent_ids;
    let losing = warehouse.commit(windows, |tx| {
        if let Some(batch) = parent_batch {
            let stage = tx.stage(table, vec![batch])?;
            tx.append_row_events(table, &stage, run_id)?;
            tx.upsert(table, &stage)?;
        }
        let mut losing = Vec::new();
        for (child, batch) in child_batches {
            let stage = tx.stage(child, vec![batch])?;
            losing.extend(tx.parents_losing_children(child, &stage)?);
            tx.delete_children(child, &parent_ids)?;
            tx.upsert(child, &stage)?;
        }
        losing.retain(|id| !parent_ids.contains(id));
        Ok::<_, WarehouseError>(losing)
    })?;
    Ok(losing)
}

fn row_id(row: &Row) -> Option<i64> {
    row.get("id").and_then(Value::as_i64)
}

/// The API's date format for query parameters.
pub fn api_date(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn new_run_id(now: DateTime<Utc>) -> String {
    format!("{}-{:08x}", now.format("%Y%m%dT%H%M%SZ"), rand::random::<u32>())
}

impl<'a> Run<'a> {
    fn new(settings: &'a Settings, client: Arc<Client>, progress: &'a Progress) -> Self {
        let now = Utc::now();
        let mut warehouse = Warehouse::new(&settings.outputs.duckdb);
        warehouse.lock_timeout = settings.lock_timeout;
        let selected: Vec<&'static Table> = settings.tables.iter().map(|c| c.table).collect();
        let mut converters = HashMap::new();
        // Parents of selected embedded children are listed even when not selected themselves.
        for table in tables::ALL {
            let choice = settings.tables.iter().find(|c| c.table.name == table.name);
            let needed = choice.is_some()
                || selected.iter().any(|t| matches!(t.origin, Origin::Embedded { parent, .. } if parent == table.name));
            if needed {
                let children: Vec<&Table> = tables::ALL
                    .iter()
                    .copied()
                    .filter(|c| crate::convert::embedded_in(c, table.name))
                    .collect();
                let columns = choice.and_then(|c| c.columns.as_deref());
                converters.insert(table.name, Arc::new(TableConverter::new(table, columns, &children)));
            }
        }
        Run {
            settings,
            client,
            progress,
            warehouse,
            parquet: ParquetFolder::new(&settings.outputs.parquet),
            stamp: RunStamp { run_id: new_run_id(now), extracted_at: now },
            converters,
            windows: WindowStats::default(),
            bookmarks: HashMap::new(),
            listed_ids: HashMap::new(),
            tables_synced: HashSet::new(),
            requests: 0,
            rate_limited: 0,
            lowest_remaining: None,
            partitions_written: 0,
            failures: HashMap::new(),
        }
    }

    fn selected(&self, table: &str) -> Option<&'a TableChoice> {
        self.settings.tables.iter().find(|c| c.table.name == table)
    }

    fn converter(&self, table: &str) -> &TableConverter {
        &self.converters[table]
    }

    /// A scoped bookmark of `table`, as a time.
    fn bookmark_at(&self, table: &str, scope: &str) -> Option<DateTime<Utc>> {
        self.bookmarks.get(&bookmark_key(table, scope)).and_then(|us| DateTime::from_timestamp_micros(*us))
    }

    /// Whether `table`'s periodic whole pass (the removal scan, the whole report) is due at `now`
    /// of the server's clock: at most once per `removal_check`.
    fn whole_pass_due(&self, table: &Table, now: DateTime<Utc>) -> bool {
        let interval = chrono::Duration::from_std(self.settings.removal_check).unwrap_or_default();
        self.bookmark_at(table.name, REMOVAL_CHECK_SCOPE).is_none_or(|last| now - last >= interval)
    }

    /// Commits `at` under each of `scopes` for `table`, then remembers it.
    fn mark(&mut self, table: &Table, scopes: &[&str], at: DateTime<Utc>) -> Result<(), SyncError> {
        let (run_id, micros) = (self.stamp.run_id.clone(), at.timestamp_micros());
        self.warehouse.commit(&mut self.windows, |tx| {
            scopes.iter().try_for_each(|scope| tx.set_bookmark(table.name, scope, Some(micros), &run_id))
        })?;
        for scope in scopes {
            self.bookmarks.insert(bookmark_key(table.name, scope), micros);
        }
        Ok(())
    }

    async fn execute(&mut self) -> Result<SyncReport, SyncError> {
        let started_at = self.stamp.extracted_at;
        self.prepare()?;
        // Partitions left stale by an interrupted run are rewritten first.
        for table in tables::ALL {
            if self.converters.contains_key(table.name) && self.selected(table.name).is_some() {
                self.export_parquet(table)?;
            }
        }

        let mut reports = Vec::new();
        let mut fatal: Option<String> = None;
        let choices: Vec<&TableChoice> = self.settings.tables.iter().collect();
        for choice in choices {
            let table = choice.table;
            // Embedded children are committed with their parent.
            if let Origin::Embedded { parent, .. } = table.origin
                && self.settings.tables.iter().any(|c| c.table.name == parent)
            {
                continue;
            }
            if let Some(reason) = &fatal {
                reports.push(self.skipped(table, reason));
                continue;
            }
            self.progress.table_started(table.name);
            let started = Instant::now();
            let outcome = self.sync_table(choice).await;
            let records = self.client.take_records();
            let requests_now = self.note_requests(&records);
            let mut report = TableReport {
                table: table.name.to_string(),
                status: Status::Success,
                method: method_name(choice),
                rows: 0,
                removed: 0,
                requests: requests_now,
                duration_ms: 0,
                error: None,
            };
            // Records that failed are retried one by one; anything else retries the table.
            let mut retry_table = false;
            match outcome {
                Ok((rows, removed)) => {
                    report.rows = rows;
                    report.removed = removed;
                }
                Err(e) => {
                    retry_table = !matches!(e, SyncError::RecordsFailed { .. });
                    report.status = Status::Failed;
                    report.error = Some(e.to_string());
                    if e.is_fatal() {
                        fatal = Some(e.to_string());
                    }
                }
            }
            report.duration_ms = started.elapsed().as_millis() as u64;
            // The table's closing record: its outcome, requests and log events.
            let mut events = integration_log::events_from_requests(&records, Some(table.name));
            events.push(table_event(&report, retry_table));
            let run_id = self.stamp.run_id.clone();
            let failures = self.failures.remove(table.name).unwrap_or_default();
            let logged = self.warehouse.commit(&mut self.windows, |tx| {
                tx.append_requests(&run_id, Some(table.name), &records)?;
                tx.append_events(&run_id, &events)?;
                tx.append_record_failures(table, &failures, &run_id)
            });
            if let Err(e) = logged {
                fatal.get_or_insert(e.to_string());
            }
            self.progress.table_finished(&report);
            reports.push(report);
        }

        let status = if fatal.is_some() {
            RunStatus::Failed
        } else if reports.iter().any(|r| r.status == Status::Failed) {
            RunStatus::Partial
        } else {
            RunStatus::Success
        };
        let mut report = SyncReport {
            run_id: self.stamp.run_id.clone(),
            status,
            started_at,
            finished_at: Utc::now(),
            duckdb: self.settings.outputs.duckdb.display().to_string(),
            parquet: self.settings.outputs.parquet.display().to_string(),
            tables: reports,
            requests: self.requests,
            rate_limited: self.rate_limited,
            lowest_rate_limit_remaining: self.lowest_remaining,
            commits: 0,
            longest_commit_window_ms: 0,
            parquet_partitions_written: self.partitions_written,
            error: fatal,
        };
        let run_id = self.stamp.run_id.clone();
        let finished = self.warehouse.commit(&mut self.windows, |tx| {
            tx.conn
                .execute(
                    &format!("UPDATE {RUNS_TABLE} SET finished_at = now(), status = ?, report = ? WHERE run_id = ?"),
                    duckdb::params![
                        format!("{:?}", report.status).to_lowercase(),
                        serde_json::to_string(&report).unwrap_or_default(),
                        run_id
                    ],
                )
                .map(|_| ())
                .map_err(|source| WarehouseError::Db { doing: "recording the run".into(), source })
        });
        if let Err(e) = finished {
            report.status = RunStatus::Failed;
            report.error.get_or_insert(e.to_string());
        }
        // The log, beside the tables in the Parquet folder.
        let folder = &self.parquet;
        let exported = self.warehouse.commit(&mut self.windows, |tx| folder.export_log(tx.conn, &run_id).map_err(SyncError::from));
        if let Err(e) = exported {
            report.status = RunStatus::Failed;
            report.error.get_or_insert(e.to_string());
        }
        report.commits = self.windows.commits;
        report.longest_commit_window_ms = self.windows.longest.as_millis() as u64;
        Ok(report)
    }

    fn skipped(&self, table: &Table, reason: &str) -> TableReport {
        TableReport {
            table: table.name.to_string(),
            status: Status::Failed,
            method: "skipped",
            rows: 0,
            removed: 0,
            requests: 0,
            duration_ms: 0,
            error: Some(format!("not synced: the run stopped earlier ({reason})")),
        }
    }

    fn note_requests(&mut self, records: &[RequestRecord]) -> u64 {
        let api: Vec<&RequestRecord> = records.iter().filter(|r| r.method == "GET").collect();
        self.requests += api.len() as u64;
        self.rate_limited += api.iter().filter(|r| r.status == Some(429)).count() as u64;
        for r in &api {
            if let Some(rem) = r.rate_limit_remaining {
                self.lowest_remaining = Some(self.lowest_remaining.map_or(rem, |l| l.min(rem)));
            }
        }
        api.len() as u64
    }

    /// Creates the tables, reads the bookmarks and records the run's start.
    fn prepare(&mut self) -> Result<(), SyncError> {
        let mut tables: Vec<(&'static Table, Vec<crate::schema::SchemaColumn>)> = Vec::new();
        for table in tables::ALL {
            if let (Some(conv), Some(_)) = (self.converters.get(table.name), self.selected(table.name)) {
                tables.push((table, conv.schema_columns().to_vec()));
            }
        }
        let run_id = self.stamp.run_id.clone();
        let started = self.stamp.extracted_at;
        let bookmarks = self.warehouse.commit(&mut self.windows, |tx| {
            tx.ensure_tables(&tables)?;
            tx.execute_batch(integration_log::DDL, "creating the integration log")?;
            crate::views::install(tx)?;
            tx.conn
                .execute(
                    &format!("INSERT INTO {RUNS_TABLE} VALUES (?, make_timestamp(?::BIGINT)::TIMESTAMPTZ, NULL, 'running', NULL)"),
                    duckdb::params![run_id, started.timestamp_micros()],
                )
                .map_err(|source| WarehouseError::Db { doing: "recording the run".into(), source })?;
            tx.bookmarks()
        })?;
        self.bookmarks = bookmarks;
        Ok(())
    }

    async fn sync_table(&mut self, choice: &TableChoice) -> Result<(u64, u64), SyncError> {
        let table = choice.table;
        let result = match table.origin {
            Origin::List if table.server_incremental() => {
                let full = choice.method == Method::Full;
                let (rows, mut removed) = self.sync_modified(table, full).await?;
                if !full {
                    removed += self.check_removals(table).await?;
                }
                (rows, removed)
            }
            Origin::List => self.sync_whole(table, choice.method == Method::Full).await?,
            Origin::PerParent { parent } => self.sync_per_parent(table, parent).await?,
            // Selected without its parent: list the parent, store only the children.
            Origin::Embedded { parent, .. } => {
                let parent = tables::by_name(parent).expect("declared parent");
                self.sync_modified(parent, choice.method == Method::Full).await?
            }
        };
        self.tables_synced.insert(table.name);
        self.export_parquet(table)?;
        for child in tables::ALL.iter().filter(|c| crate::convert::embedded_in(c, table.name)) {
            if self.selected(child.name).is_some() {
                self.export_parquet(child)?;
            }
        }
        Ok(result)
    }

    fn export_parquet(&mut self, table: &'static Table) -> Result<(), SyncError> {
        let schema = self.converter(table.name).schema();
        let folder = &self.parquet;
        let written = self
            .warehouse
            .commit(&mut self.windows, |tx| folder.export_dirty(tx.conn, table, &schema).map_err(SyncError::from))?;
        self.partitions_written += written as u64;
        Ok(())
    }

    fn url_for(&self, table: &Table, parent_id: Option<i64>, extra: &[(&str, String)]) -> String {
        let mut path = table.request.path.to_string();
        if let Some(id) = parent_id {
            path = path.replace("{parent_id}", &id.to_string());
        }
        let mut url = url::Url::parse(&self.client.url(&path)).expect("base URL was validated");
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in table.request.params {
                q.append_pair(k, v);
            }
            for (k, v) in extra {
                q.append_pair(k, v);
            }
        }
        let s = url.to_string();
        s.strip_suffix('?').map(String::from).unwrap_or(s)
    }

    /// Spawns the listing of `url`; pages arrive in order on the returned channel.
    fn spawn_listing(&self, url: String, table: &'static Table) -> mpsc::Receiver<Result<Page, ClientError>> {
        let (tx, rx) = mpsc::channel(self.settings.client.concurrency.max(1) * 2);
        let client = Arc::clone(&self.client);
        tokio::spawn(async move {
            let mut sender = tx.clone();
            let result = client.list_pages(&url, table.list_key, table.paging, &mut sender).await;
            if let Err(e) = result {
                let _ = tx.send(Err(e)).await;
            }
        });
        rx
    }

    /// Lists a table the API filters by modification time (or all of it, for a full refresh),
    /// with its embedded children. Returns (rows, removed).
    async fn sync_modified(&mut self, table: &'static Table, full: bool) -> Result<(u64, u64), SyncError> {
        let scope = "";
        let cursor = if full {
            None
        } else {
            Some(self.bookmark_at(table.name, scope).unwrap_or(self.settings.start_date))
        };
        let overlap = chrono::Duration::from_std(self.settings.overlap).unwrap_or_default();
        let mut rows = 0u64;
        let mut seen: HashSet<i64> = HashSet::new();
        let mut bookmark: Option<DateTime<Utc>> = None;
        let mut losing: Vec<i64> = Vec::new();
        let mut pass_cursor = cursor;
        // Offset paging newest-first repeats rows when others change meanwhile, never skips
        // old ones; what changed during the pass is read again from the pass's own start.
        for pass in 0..3 {
            let extra: Vec<(&str, String)> = match (table.request.modified_since, pass_cursor) {
                (Some(param), Some(c)) => vec![(param, api_date(c))],
                _ => vec![],
            };
            let url = self.url_for(table, None, &extra);
            let (pass_rows, repeats, server_date, pass_losing) = self.list_into_chunks(table, &url, &mut seen).await?;
            rows += pass_rows;
            losing.extend(pass_losing);
            let start = server_date.unwrap_or(self.stamp.extracted_at);
            bookmark.get_or_insert(start - overlap);
            if repeats == 0 || full {
                break;
            }
            pass_cursor = Some(start - overlap);
            tracing::info!(table = table.name, repeats, pass, "rows moved while paging; reading the changes again");
        }
        let mut removed = 0;
        if full {
            removed += self.remove_unseen(table).await?;
        }
        removed += self.resolve_removals(table, losing).await?;
        if let Some(failed) = self.failures.get(table.name).map(Vec::len).filter(|n| *n > 0) {
            return Err(SyncError::RecordsFailed { table: table.name, failed });
        }
        // The bookmark moves only once everything up to it is committed.
        let run_id = self.stamp.run_id.clone();
        let value = bookmark.map(|b| b.timestamp_micros());
        let selected = self.selected(table.name).is_some();
        self.warehouse.commit(&mut self.windows, |tx| {
            if selected {
                tx.set_bookmark(table.name, scope, value, &run_id)?;
            }
            for child in tables::ALL.iter().filter(|c| crate::convert::embedded_in(c, table.name)) {
                tx.set_bookmark(child.name, scope, value, &run_id)?;
            }
            Ok::<_, WarehouseError>(())
        })?;
        if let Some(v) = value {
            self.bookmarks.insert(bookmark_key(table.name, scope), v);
        }
        self.listed_ids.insert(table.name, seen.into_iter().collect());
        Ok((rows, removed))
    }

    /// Reads a listing page by page, committing every `chunk_rows` parents.
    /// Returns (rows, repeated rows, server date of the first page, parents losing children).
    async fn list_into_chunks(
        &mut self,
        table: &'static Table,
        url: &str,
        seen: &mut HashSet<i64>,
    ) -> Result<(u64, u64, Option<DateTime<Utc>>, Vec<i64>), SyncError> {
        let mut pages = self.spawn_listing(url.to_string(), table);
        let mut chunk = Chunk::new();
        let mut rows = 0u64;
        let mut repeats = 0u64;
        let mut first_date = None;
        let mut losing = Vec::new();
        let mut pass_seen: HashSet<i64> = HashSet::new();
        // One chunk is written while the next is fetched and converted.
        let mut writing: Option<PendingCommit> = None;
        let listed: Result<(), SyncError> = async {
            while let Some(page) = pages.recv().await {
                let page = page?;
                tracing::debug!(n = page.items.len(), "DIAG page");
                if first_date.is_none() {
                    first_date = page.server_date;
                }
                rows += page.items.len() as u64;
                self.gather(table, page.items, &mut chunk, &mut pass_seen, &mut repeats).await?;
                let (requests, remaining) = self.client.live();
                self.progress.rows(table.name, rows, requests, remaining);
                tracing::debug!(rows, "DIAG gathered");
                if chunk.len() >= self.settings.chunk_rows {
                    if let Some(previous) = writing.take() {
                        losing.extend(self.finish_commit(previous).await?);
                    }
                    writing = Some(self.spawn_commit(table, std::mem::replace(&mut chunk, Chunk::new())));
                }
            }
            Ok(())
        }
        .await;
        // A chunk already handed over is written (or fails) before anything else happens.
        let written = match writing.take() {
            Some(previous) => self.finish_commit(previous).await,
            None => Ok(vec![]),
        };
        listed?;
        losing.extend(written?);
        losing.extend(self.finish_commit(self.spawn_commit(table, chunk)).await?);
        seen.extend(pass_seen);
        Ok((rows, repeats, first_date, losing))
    }

    /// Converts a page's records (and their children, refetched where incomplete) into `chunk`.
    async fn gather(
        &mut self,
        table: &'static Table,
        mut items: Vec<Value>,
        chunk: &mut Chunk,
        seen: &mut HashSet<i64>,
        repeats: &mut u64,
    ) -> Result<(), SyncError> {
        let children: Vec<&'static Table> = tables::ALL
            .iter()
            .copied()
            .filter(|c| crate::convert::embedded_in(c, table.name) && self.selected(c.name).is_some())
            .collect();
        // Children to refetch, fetched concurrently across the page.
        let mut refetch: Vec<(usize, &'static Table, i64)> = Vec::new();
        let mut embedded: Vec<Vec<(&'static Table, Vec<Value>)>> = Vec::with_capacity(items.len());
        for (i, record) in items.iter_mut().enumerate() {
            let mut lists = Vec::new();
            for child in &children {
                // Moved out, not copied: the parent's converter ignores its embedded children.
                let list = match record.get_mut("_embedded").and_then(|e| e.get_mut(child.list_key)).map(Value::take) {
                    Some(Value::Array(list)) => list,
                    _ => Vec::new(),
                };
                if let Origin::Embedded { refetch: rule, .. } = child.origin {
                    let expected = record.get(rule.count_field).and_then(Value::as_u64);
                    let (field, value) = rule.always_when;
                    let truncated = record.get(field).and_then(Value::as_str) == Some(value);
                    if (truncated || expected.is_some_and(|n| (list.len() as u64) < n))
                        && let Some(id) = record.get("id").and_then(Value::as_i64)
                    {
                        refetch.push((i, child, id));
                    }
                }
                lists.push((*child, list));
            }
            embedded.push(lists);
        }
        let client = Arc::clone(&self.client);
        let fetched: Vec<Refetched> =
            futures::stream::iter(refetch.into_iter().map(|(i, child, id)| {
                let client = Arc::clone(&client);
                let url = self.url_for(child, Some(id), &[]);
                async move {
                    let mut all = Vec::new();
                    let result = client.list_pages(&url, child.list_key, child.paging, &mut all).await.map(|_| all);
                    (i, child, id, result)
                }
            }))
            .buffer_unordered(self.settings.client.concurrency.max(1))
            .collect()
            .await;
        let mut gone: HashSet<usize> = HashSet::new();
        for (i, child, id, result) in fetched {
            match result {
                Ok(list) => {
                    if let Some(slot) = embedded[i].iter_mut().find(|(c, _)| c.name == child.name) {
                        slot.1 = list;
                    }
                }
                // Removed between the listing and the refetch: not stored; noticed next run.
                Err(e) if e.action() == ErrorAction::Skip => {
                    gone.insert(i);
                }
                Err(e) if stops_everything(&e) => return Err(e.into()),
                // This record only: logged for a retry, the rest of the page goes on.
                Err(e) => {
                    self.failures.entry(table.name).or_default().push(RecordFailure {
                        id: Some(id),
                        error: format!("its {} could not be read: {e}", child.name),
                        http_status: e.http_status(),
                        request: None,
                    });
                    gone.insert(i);
                }
            }
        }

        let store_parent = self.selected(table.name).is_some();
        for (i, record) in items.iter().enumerate() {
            if gone.contains(&i) {
                continue;
            }
            let row = match self.converter(table.name).row(record, None, &self.stamp) {
                Ok(row) => row,
                Err(e) => {
                    let id = record.get("id").and_then(Value::as_i64);
                    self.failures.entry(table.name).or_default().push(RecordFailure { id, error: e.to_string(), http_status: None, request: None });
                    continue;
                }
            };
            let id = row_id(&row);
            if let Some(id) = id
                && !seen.insert(id)
            {
                *repeats += 1;
            }
            let mut child_rows = Vec::new();
            let mut broken = None;
            for (child, list) in &embedded[i] {
                let conv = self.converter(child.name);
                match list.iter().map(|r| conv.row(r, id, &self.stamp)).collect::<Result<Vec<_>, _>>() {
                    Ok(rows) => child_rows.push((child.name, rows)),
                    Err(e) => broken = Some(e),
                }
            }
            // A record with an unreadable child is not stored half: it is retried whole.
            if let Some(e) = broken {
                self.failures.entry(table.name).or_default().push(RecordFailure { id, error: e.to_string(), http_status: None, request: None });
                continue;
            }
            if let Some(id) = id {
                for (name, rows) in child_rows {
                    chunk.children.entry(name).or_default().insert(id, rows);
                }
            }
            let key = self.converter(table.name).key_of(&row);
            if store_parent {
                chunk.push(key, row, id);
            } else if let Some(id) = id {
                // Only the children are wanted; the parent id still scopes their replacement.
                if !chunk.parent_ids.contains(&id) {
                    chunk.parent_ids.push(id);
                }
            }
        }
        Ok(())
    }

    /// Starts writing one chunk on a blocking thread (Arrow batches, then one DuckDB commit).
    fn spawn_commit(&self, table: &'static Table, chunk: Chunk) -> PendingCommit {
        let store_parent = self.selected(table.name).is_some();
        let converters: HashMap<&'static str, Arc<TableConverter>> = self
            .converters
            .iter()
            .filter(|(name, _)| **name == table.name || chunk.children.contains_key(*name))
            .map(|(name, conv)| (*name, Arc::clone(conv)))
            .collect();
        let warehouse = self.warehouse.clone();
        let run_id = self.stamp.run_id.clone();
        tokio::task::spawn_blocking(move || {
            let mut windows = WindowStats::default();
            let losing = commit_chunk(&warehouse, &mut windows, &converters, table, chunk, store_parent, &run_id)?;
            Ok((losing, windows))
        })
    }

    /// Waits for a chunk handed to `spawn_commit`; returns its merge candidates.
    async fn finish_commit(&mut self, pending: PendingCommit) -> Result<Vec<i64>, SyncError> {
        let (losing, windows) = pending.await.map_err(|e| SyncError::Internal(format!("a chunk's commit stopped: {e}")))??;
        self.windows.absorb(windows);
        Ok(losing)
    }

    /// After a full listing: rows not listed in this run were removed upstream.
    async fn remove_unseen(&mut self, table: &'static Table) -> Result<u64, SyncError> {
        let run_id = self.stamp.run_id.clone();
        let sql = format!(
            "SELECT id FROM {} WHERE _run_id IS DISTINCT FROM '{}' ORDER BY id",
            crate::schema::quote_ident(table.name),
            run_id
        );
        if self.selected(table.name).is_none() {
            return Ok(0);
        }
        let unseen = self.warehouse.commit(&mut self.windows, |tx| tx.ids(&sql))?;
        self.resolve_removals(table, unseen).await
    }

    /// Confirms candidates with the table's probe (301 merged, 404 deleted) and removes them
    /// with their children, leaving a tombstone and a log event. Returns the number removed.
    async fn resolve_removals(&mut self, table: &'static Table, candidates: Vec<i64>) -> Result<u64, SyncError> {
        let (Some(_), Some(record_path)) = (table.removals, table.record_path) else { return Ok(0) };
        if candidates.is_empty() || self.selected(table.name).is_none() {
            return Ok(0);
        }
        let mut candidates = candidates;
        candidates.sort_unstable();
        candidates.dedup();
        let client = Arc::clone(&self.client);
        let probes: Vec<(i64, Result<(), ClientError>)> = futures::stream::iter(candidates.into_iter().map(|id| {
            let client = Arc::clone(&client);
            let path = record_path.replace("{id}", &id.to_string());
            async move { (id, client.get(&path).await.map(|_| ())) }
        }))
        .buffer_unordered(self.settings.client.concurrency.max(1))
        .collect()
        .await;
        let mut removed: Vec<(i64, &'static str, Option<i64>)> = Vec::new();
        for (id, result) in probes {
            match result {
                Ok(()) => {}
                Err(ClientError::Moved { location, .. }) => {
                    let target = location.trim_end_matches('/').rsplit('/').next().and_then(|s| s.parse().ok());
                    removed.push((id, "merged", target));
                }
                Err(ClientError::NotFound { .. }) => removed.push((id, "deleted", None)),
                Err(e) => return Err(e.into()),
            }
        }
        if removed.is_empty() {
            return Ok(0);
        }
        let run_id = self.stamp.run_id.clone();
        let children: Vec<&'static Table> = tables::ALL
            .iter()
            .copied()
            .filter(|c| c.parent() == Some(table.name) && self.selected(c.name).is_some())
            .collect();
        let ids: Vec<i64> = removed.iter().map(|r| r.0).collect();
        let events: Vec<LogEvent> = removed
            .iter()
            .map(|(id, reason, target)| {
                let (kind, details) = match (reason, target) {
                    (&"merged", Some(t)) => (event::CONVERSATION_MERGED, format!("Merged into conversation {t}; removed from {}", table.name)),
                    (&"merged", None) => (event::CONVERSATION_MERGED, format!("Merged; removed from {}", table.name)),
                    _ => (event::CONVERSATION_DELETED, format!("Deleted in Help Scout; removed from {}", table.name)),
                };
                let mut e = LogEvent::new(kind, Status::Success, details).table(table.name);
                e.conversation_id = Some(*id);
                e
            })
            .collect();
        self.warehouse.commit(&mut self.windows, |tx| {
            for child in &children {
                tx.delete_children(child, &ids)?;
            }
            tx.delete_ids(table, &ids)?;
            for (id, reason, target) in &removed {
                tx.tombstone(*id, reason, *target, &run_id)?;
            }
            tx.append_events(&run_id, &events)
        })?;
        Ok(removed.len() as u64)
    }

    /// A list by modification time cannot show removals: the unfiltered list's size can.
    /// When more rows are held than the API counts, a scan of the list's ids finds the missing
    /// ones, which are then confirmed one by one (a row that moved during the scan is kept).
    async fn check_removals(&mut self, table: &'static Table) -> Result<u64, SyncError> {
        let Some(removals) = table.removals else { return Ok(0) };
        if self.selected(table.name).is_none() {
            return Ok(0);
        }
        // At most once per `removal_check` of the server's clock (merges are noticed anyway).
        let now = self.client.server_now().unwrap_or_else(Utc::now);
        if !self.whole_pass_due(table, now) {
            return Ok(0);
        }
        let mut url = url::Url::parse(&self.url_for(table, None, &[])).expect("a valid URL");
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| !removals.scan_omits.contains(&k.as_ref()))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        url.query_pairs_mut().clear().extend_pairs(kept);
        let url = url.to_string();
        let live = self.client.page(&url, table.list_key, table.paging).await?.total_elements;
        let held_sql = format!("SELECT id FROM {} ORDER BY id", crate::schema::quote_ident(table.name));
        let held = self.warehouse.commit(&mut self.windows, |tx| tx.ids(&held_sql))?;
        let Some(live) = live else { return Ok(0) };
        if held.len() as u64 <= live {
            self.mark(table, &[REMOVAL_CHECK_SCOPE], now)?;
            return Ok(0);
        }
        tracing::info!(table = table.name, held = held.len(), live, "rows held that the API no longer lists; scanning ids");
        let mut listed = crate::client::IdCollector::default();
        self.client.list_pages(&url, table.list_key, table.paging, &mut listed).await?;
        let missing: Vec<i64> = held.into_iter().filter(|id| !listed.0.contains(id)).collect();
        let removed = self.resolve_removals(table, missing).await?;
        self.mark(table, &[REMOVAL_CHECK_SCOPE], now)?;
        Ok(removed)
    }

    /// A list fetched whole: its rows replace the table's.
    async fn sync_whole(&mut self, table: &'static Table, full: bool) -> Result<(u64, u64), SyncError> {
        let mut extra = Vec::new();
        // A windowed report is read whole at most once per `removal_check` of the server's
        // clock (what changed or vanished in it is replaced then); in between, only the window
        // since the last one's end (less the overlap) is read and merged.
        let mut window = None;
        if let Some((start, end)) = table.request.window {
            let now = self.client.server_now().unwrap_or_else(Utc::now);
            let overlap = chrono::Duration::from_std(self.settings.overlap).unwrap_or_default();
            let since = match self.bookmark_at(table.name, WINDOW_END_SCOPE) {
                Some(last_end) if !full && !self.whole_pass_due(table, now) => Some((last_end - overlap).max(self.settings.start_date)),
                _ => None,
            };
            extra.push((start, api_date(since.unwrap_or(self.settings.start_date))));
            extra.push((end, api_date(now + chrono::Duration::seconds(1))));
            window = Some((since.is_none(), now));
        }
        let url = self.url_for(table, None, &extra);
        let mut items = Vec::new();
        self.client.list_pages(&url, table.list_key, table.paging, &mut items).await?;
        let conv = self.converter(table.name);
        let mut chunk = Chunk::new();
        for record in &items {
            let row = conv.row(record, None, &self.stamp)?;
            let id = row_id(&row);
            chunk.push(conv.key_of(&row), row, id);
        }
        self.listed_ids.insert(table.name, chunk.parent_ids.clone());
        let rows = chunk.len() as u64;
        let removed = match window {
            Some((false, _)) => {
                self.finish_commit(self.spawn_commit(table, chunk)).await?;
                0
            }
            _ => self.replace_rows(table, chunk.rows, None)?,
        };
        match window {
            Some((true, end)) => self.mark(table, &[WINDOW_END_SCOPE, REMOVAL_CHECK_SCOPE], end)?,
            Some((false, end)) => self.mark(table, &[WINDOW_END_SCOPE], end)?,
            None => {}
        }
        Ok((rows, removed))
    }

    /// One list per parent record; each parent's rows replace that parent's.
    async fn sync_per_parent(&mut self, table: &'static Table, parent: &'static str) -> Result<(u64, u64), SyncError> {
        let parent_ids = match self.listed_ids.get(parent) {
            Some(ids) => ids.clone(),
            None => {
                let parent_table = tables::by_name(parent).expect("declared parent");
                let url = self.url_for(parent_table, None, &[]);
                let mut records: Vec<Value> = Vec::new();
                self.client.list_pages(&url, parent_table.list_key, parent_table.paging, &mut records).await?;
                let ids: Vec<i64> = records.iter().filter_map(|r| r.get("id").and_then(Value::as_i64)).collect();
                self.listed_ids.insert(parent, ids.clone());
                ids
            }
        };
        let client = Arc::clone(&self.client);
        let lists: Vec<(i64, Result<Vec<Value>, ClientError>)> =
            futures::stream::iter(parent_ids.iter().map(|&id| {
                let client = Arc::clone(&client);
                let url = self.url_for(table, Some(id), &[]);
                async move {
                    let mut all = Vec::new();
                    let r = client.list_pages(&url, table.list_key, table.paging, &mut all).await.map(|_| all);
                    (id, r)
                }
            }))
            .buffered(self.settings.client.concurrency.max(1))
            .collect()
            .await;
        let conv = self.converter(table.name);
        let mut rows = Vec::new();
        let mut listed = Vec::new();
        let mut failures = Vec::new();
        for (id, result) in lists {
            match result {
                Ok(items) => {
                    listed.push(id);
                    for record in &items {
                        rows.push(conv.row(record, Some(id), &self.stamp)?);
                    }
                }
                // A parent gone since it was listed keeps its previous rows until it is seen gone.
                Err(e) if e.action() == ErrorAction::Skip => failures.push((id, e)),
                Err(e) => return Err(e.into()),
            }
        }
        let mut chunk = Chunk::new();
        for row in rows {
            chunk.push(conv.key_of(&row), row, None);
        }
        let count = chunk.len() as u64;
        let removed = self.replace_rows(table, chunk.rows, Some(&listed))?;
        if let Some((id, e)) = failures.into_iter().next() {
            let parent_label = singular(parent);
            return Err(SyncError::Client(ClientError::Rejected {
                path: format!("{parent_label} {id}"),
                status: e.http_status().unwrap_or(0),
                message: if e.http_status() == Some(404) {
                    format!("{} not found", capitalise(parent_label))
                } else {
                    e.to_string()
                },
            }));
        }
        Ok((count, removed))
    }

    /// Upserts rows and deletes the table's (or the listed parents') rows this run did not see;
    /// the bookmark commits with them.
    fn replace_rows(&mut self, table: &'static Table, rows: Vec<Row>, parents: Option<&[i64]>) -> Result<u64, SyncError> {
        let batch = self.converter(table.name).batch(&rows)?;
        let run_id = self.stamp.run_id.clone();
        let cursor = match table.replication {
            Replication::Incremental { cursor } => Some(cursor),
            Replication::FullTable => None,
        };
        let removed = self.warehouse.commit(&mut self.windows, |tx| {
            let stage = tx.stage(table, vec![batch])?;
            tx.append_row_events(table, &stage, &run_id)?;
            tx.upsert(table, &stage)?;
            let mut removed = tx.delete_not_written_by(table, &run_id, parents)? as u64;
            removed += tx.delete_orphans(table)? as u64;
            let bookmark = match cursor {
                Some(c) => tx.max_micros(table.name, c)?,
                None => None,
            };
            for scope in parents.unwrap_or(&[]).iter().map(|p| format!("parent:{p}")).chain(parents.is_none().then(String::new)) {
                tx.set_bookmark(table.name, &scope, bookmark, &run_id)?;
            }
            Ok::<_, WarehouseError>(removed)
        })?;
        Ok(removed)
    }
}

/// What became of one record a retry re-fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordOutcome {
    Synced,
    /// Merged or deleted upstream: removed (and tombstoned) here.
    Removed,
    Failed(String),
}

/// Re-fetches single records of `table` (its `record_path`) with their embedded children and
/// commits them as a sync would, under the same lock. The table's bookmark is left alone: the
/// next sync re-reads its window anyway.
pub async fn retry_records(settings: &Settings, table: &'static Table, ids: &[i64]) -> Result<Vec<(i64, RecordOutcome)>, SyncError> {
    let Some(record_path) = table.record_path else {
        return Ok(ids.iter().map(|id| (*id, RecordOutcome::Failed(format!("{} records cannot be fetched one by one", table.name)))).collect());
    };
    let state_dir = settings.outputs.state_dir();
    std::fs::create_dir_all(&state_dir).map_err(|e| SyncError::StateDir { path: state_dir.display().to_string(), reason: e.to_string() })?;
    let _lock = RunLock::acquire(&state_dir, &settings.outputs.dir.display().to_string())?;
    let client = Client::new(settings.client.clone())?;
    let progress = Progress::Quiet;
    let mut run = Run::new(settings, client, &progress);
    run.prepare()?;
    let mut outcomes = Vec::new();
    for &id in ids {
        let path = record_path.replace("{id}", &id.to_string());
        let outcome = match run.client.get(&path).await {
            Ok(response) => {
                let mut chunk = Chunk::new();
                let mut seen = HashSet::new();
                let mut repeats = 0;
                run.gather(table, vec![response.body], &mut chunk, &mut seen, &mut repeats).await?;
                match run.failures.remove(table.name).and_then(|f| f.into_iter().next()) {
                    Some(failure) => RecordOutcome::Failed(failure.error),
                    None if chunk.len() == 0 && run.selected(table.name).is_some() => RecordOutcome::Failed("the record could not be read".into()),
                    None => {
                        let losing = run.finish_commit(run.spawn_commit(table, chunk)).await?;
                        run.resolve_removals(table, losing).await?;
                        RecordOutcome::Synced
                    }
                }
            }
            Err(ClientError::Moved { .. } | ClientError::NotFound { .. }) => {
                run.resolve_removals(table, vec![id]).await?;
                RecordOutcome::Removed
            }
            Err(e) if stops_everything(&e) => return Err(e.into()),
            Err(e) => RecordOutcome::Failed(e.to_string()),
        };
        outcomes.push((id, outcome));
    }
    run.export_parquet(table)?;
    for child in tables::ALL.iter().filter(|c| crate::convert::embedded_in(c, table.name)) {
        if run.selected(child.name).is_some() {
            run.export_parquet(child)?;
        }
    }
    let records = run.client.take_records();
    let run_id = run.stamp.run_id.clone();
    let events = integration_log::events_from_requests(&records, Some(table.name));
    run.warehouse.commit(&mut run.windows, |tx| {
        tx.append_requests(&run_id, Some(table.name), &records)?;
        tx.append_events(&run_id, &events)
    })?;
    Ok(outcomes)
}

/// One record of a table, in words (`mailboxes` → `mailbox`).
fn singular(table: &str) -> &str {
    table.strip_suffix("xes").map(|_| &table[..table.len() - 2]).unwrap_or_else(|| table.strip_suffix('s').unwrap_or(table))
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
}

fn method_name(choice: &TableChoice) -> &'static str {
    match (choice.method, choice.table.server_incremental() || matches!(choice.table.origin, Origin::Embedded { .. })) {
        (Method::Full, _) => "full",
        (Method::Incremental, true) => "incremental",
        (Method::Incremental, false) => "whole list",
    }
}

fn table_event(report: &TableReport, retry_table: bool) -> LogEvent {
    let details = format!(
        "{} rows received, {} removed, {} API requests ({})",
        report.rows, report.removed, report.requests, report.method
    );
    let mut e = LogEvent::new(event::TABLE_SYNCED, report.status, details).table(&report.table);
    e.duration_ms = Some(report.duration_ms);
    if let Some(err) = &report.error {
        e.error_message = Some(err.clone());
        if retry_table {
            e.retry_target = Some(serde_json::json!({ "table": report.table }).to_string());
        }
    }
    e
}

#[cfg(test)]
mod tests {
    #[test]
    fn singular_names_read_right() {
        assert_eq!(super::singular("mailboxes"), "mailbox");
        assert_eq!(super::singular("teams"), "team");
        assert_eq!(super::singular("conversations"), "conversation");
    }
}
