//! The two halves of a run's state: what stays fixed (`Run`: settings, client, store,
//! converters) and what it accumulates as it goes (`Ledger`: bookmarks, listed ids, failures,
//! usage). Strategies read the first and write the second.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use super::progress::Observer;
use super::settings::SyncSettings;
use super::SyncError;
use crate::api::{ApiError, Client, Listing, Page};
use crate::catalog::log::{Purpose, RecordFailure, RequestRecord};
use crate::catalog::{self, Table};
use crate::convert::{RunStamp, TableConverter};
use crate::store::{Bookmarks, EXPORT_BUDGET, Lake, Outputs, Scope, StoreError, Tx, Warehouse, WindowStats};

/// What stays fixed for a run.
pub(crate) struct Run<'a> {
    pub settings: &'a SyncSettings,
    pub outputs: &'a Outputs,
    pub client: Arc<Client>,
    pub store: Warehouse,
    pub lake: Lake,
    pub stamp: RunStamp,
    /// Selected tables, and parents listed for their selected embedded children.
    pub converters: HashMap<&'static Table, Arc<TableConverter>>,
    pub observer: &'a dyn Observer,
    /// Tables whose chunks are appended rather than upserted (set when the run starts).
    pub appendable: Arc<Appendable>,
}

/// Tables that held no row when the run began (a backfill's) and have not met a row listed
/// twice since: their chunks are appended, with no comparison against what they hold.
#[derive(Default)]
pub(crate) struct Appendable(Mutex<HashSet<&'static Table>>);

impl Appendable {
    pub fn set(&self, tables: Vec<&'static Table>) {
        *self.lock() = tables.into_iter().collect();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<&'static Table>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn all(&self, tables: &[&'static Table]) -> bool {
        let set = self.lock();
        tables.iter().all(|t| set.contains(t))
    }

    pub fn remove(&self, tables: &[&'static Table]) {
        let mut set = self.lock();
        tables.iter().for_each(|t| {
            set.remove(t);
        });
    }
}

/// API usage over a run.
#[derive(Debug, Default)]
pub(crate) struct RunUsage {
    pub requests: u64,
    pub rate_limited: u64,
    pub lowest_remaining: Option<i64>,
}

impl RunUsage {
    /// Counts the API requests among `records`; returns how many there were.
    pub fn note(&mut self, records: &[RequestRecord]) -> u64 {
        let api: Vec<&RequestRecord> = records.iter().filter(|r| r.purpose == Purpose::Api).collect();
        self.requests += api.len() as u64;
        self.rate_limited += api.iter().filter(|r| r.status == Some(429)).count() as u64;
        for rem in api.iter().filter_map(|r| r.rate_limit_remaining) {
            self.lowest_remaining = Some(self.lowest_remaining.map_or(rem, |l| l.min(rem)));
        }
        api.len() as u64
    }
}

/// What a run accumulates.
#[derive(Default)]
pub(crate) struct Ledger {
    pub bookmarks: Bookmarks,
    /// Ids listed in this run, per parent table (children are listed per parent).
    pub listed: HashMap<&'static Table, Vec<i64>>,
    /// Records that could not be synced, per table.
    pub failures: HashMap<&'static Table, Vec<RecordFailure>>,
    pub windows: WindowStats,
    pub usage: RunUsage,
    pub partitions_written: u64,
    pub bytes_written: u64,
}

/// What a strategy did to a table.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Synced {
    /// Rows received and committed.
    pub rows: u64,
    /// Rows removed because they vanished upstream.
    pub removed: u64,
}

fn new_run_id(now: DateTime<Utc>) -> String {
    format!("{}-{:08x}", now.format("%Y%m%dT%H%M%SZ"), rand::random::<u32>())
}

impl<'a> Run<'a> {
    pub fn new(outputs: &'a Outputs, settings: &'a SyncSettings, client: Arc<Client>, lake: Lake, observer: &'a dyn Observer) -> Self {
        let now = Utc::now();
        let mut store = Warehouse::new(&outputs.duckdb);
        store.lock_timeout = settings.lock_timeout;
        store.keep_open = Some(crate::store::SYNC_IDLE);
        let mut converters = HashMap::new();
        for table in catalog::ALL.iter().copied() {
            let choice = settings.choice(table);
            // Parents of selected embedded children are listed even when not selected themselves.
            if choice.is_some() || table.embedded_children().any(|c| settings.selected(c)) {
                let columns = choice.and_then(|c| c.columns.as_deref());
                converters.insert(table, Arc::new(TableConverter::new(table, columns)));
            }
        }
        Run {
            settings,
            outputs,
            client,
            store,
            lake,
            stamp: RunStamp { run_id: new_run_id(now), extracted_at: now },
            converters,
            observer,
            appendable: Arc::default(),
        }
    }

    pub fn selected(&self, table: &Table) -> bool {
        self.settings.selected(table)
    }

    /// The selected tables that arrive embedded in `table`'s records.
    pub fn selected_embedded(&self, table: &'static Table) -> Vec<&'static Table> {
        table.embedded_children().filter(|c| self.selected(c)).collect()
    }

    pub fn converter(&self, table: &Table) -> &TableConverter {
        &self.converters[table]
    }

    pub fn concurrency(&self) -> usize {
        self.settings.client.concurrency.max(1)
    }

    /// The list of a table (its list key and paging style).
    pub fn listing(table: &Table) -> Listing {
        Listing { list_key: table.list_key, paging: table.paging }
    }

    /// The URL that lists `table` (under a parent record), with extra query parameters.
    pub fn url_for(&self, table: &Table, parent_id: Option<i64>, extra: &[(&str, String)]) -> String {
        let mut path = table.request.path.to_string();
        if let Some(id) = parent_id {
            path = path.replace("{parent_id}", &id.to_string());
        }
        let mut url = url::Url::parse(&self.client.url(&path)).expect("base URL was validated");
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in table.request.params.iter().map(|(k, v)| (*k, v.to_string())).chain(extra.iter().map(|(k, v)| (*k, v.clone()))) {
                q.append_pair(k, &v);
            }
        }
        let s = url.to_string();
        s.strip_suffix('?').map(String::from).unwrap_or(s)
    }

    /// Spawns the listing of `url`; pages arrive in order on the returned channel.
    pub fn spawn_listing(&self, url: String, table: &'static Table) -> mpsc::Receiver<Result<Page, ApiError>> {
        let (tx, rx) = mpsc::channel(self.concurrency() * 2);
        let client = Arc::clone(&self.client);
        tokio::spawn(async move {
            let mut sender = tx.clone();
            if let Err(e) = Run::listing(table).all_pages(&client, &url, &mut sender).await {
                let _ = tx.send(Err(e)).await;
            }
        });
        rx
    }

    /// Every record of a list, collected.
    pub async fn list_all(&self, table: &'static Table, url: &str) -> Result<Vec<serde_json::Value>, ApiError> {
        let mut records = Vec::new();
        Run::listing(table).all_pages(&self.client, url, &mut records).await?;
        Ok(records)
    }

    /// The server's clock now (ours if it has not answered yet).
    pub fn server_now(&self) -> DateTime<Utc> {
        self.client.server_now().unwrap_or_else(Utc::now)
    }
}

impl Ledger {
    /// One transaction on the store, its window counted.
    #[track_caller]
    pub fn commit<T>(&mut self, store: &Warehouse, f: impl FnOnce(&mut Tx<'_>) -> Result<T, StoreError>) -> Result<T, SyncError> {
        Ok(store.commit(&mut self.windows, f)?)
    }

    /// Whether `table`'s removal check is due at `now` of the server's clock: every run, unless
    /// `removal_check` asks for at most once per interval.
    pub fn removal_check_due(&self, run: &Run<'_>, table: &'static Table, now: DateTime<Utc>) -> bool {
        let interval = chrono::Duration::from_std(run.settings.removal_check).unwrap_or_default();
        self.bookmarks.get(table, Scope::RemovalCheck).is_none_or(|last| now - last >= interval)
    }

    /// Commits `at` under each of `scopes` for `table`, then remembers it.
    pub fn mark(&mut self, run: &Run<'_>, table: &'static Table, scopes: &[Scope], at: DateTime<Utc>) -> Result<(), SyncError> {
        let run_id = &run.stamp.run_id;
        self.commit(&run.store, |tx| scopes.iter().try_for_each(|scope| tx.set_bookmark(table, *scope, Some(at), run_id)))?;
        for scope in scopes {
            self.bookmarks.set(table, *scope, at);
        }
        Ok(())
    }

    /// Rewrites the lake slices of `table` that commits made stale, in commits of at most
    /// about `EXPORT_BUDGET` each, so that readers of the DuckDB file get in between.
    pub fn export_lake(&mut self, run: &Run<'_>, table: &'static Table) -> Result<(), SyncError> {
        let schema = run.converter(table).schema();
        loop {
            let done = self.commit(&run.store, |tx| tx.export_stale(&run.lake, table, &schema, EXPORT_BUDGET))?;
            self.partitions_written += done.partitions;
            self.bytes_written += done.bytes;
            if !done.more {
                return Ok(());
            }
        }
    }

    /// Exports the log's new events to the lake in commits of about `EXPORT_BUDGET`, and runs
    /// `last` in the transaction of the last of them (the run recorded finished with its log
    /// written). Returns the bytes written.
    pub fn export_log(&mut self, run: &Run<'_>, last: impl Fn(&Tx<'_>) -> Result<(), StoreError>) -> Result<u64, SyncError> {
        let mut bytes = 0;
        // The first commit finds the run's blocks; those it leaves are marked for the next.
        let mut run_id = Some(run.stamp.run_id.as_str());
        loop {
            let done = self.commit(&run.store, |tx| {
                let done = tx.export_log(&run.lake, run_id, EXPORT_BUDGET)?;
                if !done.more {
                    last(tx)?;
                }
                Ok(done)
            })?;
            bytes += done.bytes;
            if !done.more {
                return Ok(bytes);
            }
            run_id = None;
        }
    }

    /// A record of `table` that could not be synced.
    pub fn failed(&mut self, table: &'static Table, failure: RecordFailure) {
        self.failures.entry(table).or_default().push(failure);
    }
}
