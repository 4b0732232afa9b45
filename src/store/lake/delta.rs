//! Delta Lake tables, written with `delta_kernel`: each export of a table is one version of its
//! log, adding the files it wrote and removing the files they replace, so a reader sees the
//! previous snapshot or the new one, never a mix.
//!
//! Files are never overwritten (`part-{slice start}_{nonce}.parquet`): a replaced file stays
//! for the snapshots that still name it, until `vacuum`. The commit is a put-if-absent of the
//! next log entry; a writer that finds it taken stops (another writer is at work) unless the
//! entry is its own (a retried request), which the transaction id in it tells.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Field, Schema, SchemaRef};
use delta_kernel::committer::FileSystemCommitter;
use delta_kernel::engine::arrow_conversion::{TryFromArrow, TryIntoArrow};
use delta_kernel::engine::arrow_data::ArrowEngineData;
use delta_kernel::expressions::Scalar;
use delta_kernel::schema::{DataType as KernelType, StructType};
use delta_kernel::snapshot::SnapshotRef;
use delta_kernel::transaction::create_table::create_table;
use delta_kernel::transaction::data_layout::DataLayout;
use delta_kernel::transaction::{CommitResult, Transaction, UpdateTableOperation};
use delta_kernel::{FileMeta, FilteredEngineData, KernelError, Snapshot};
use delta_kernel_default_engine::executor::tokio::TokioMultiThreadExecutor;
use delta_kernel_default_engine::parquet::DataFileMetadata;
use delta_kernel_default_engine::stats::FileStatsAccumulator;
use delta_kernel_default_engine::{DefaultEngine, DefaultEngineBuilder, build_add_file_metadata};
use object_store::{ObjectStore, ObjectStoreExt};

use super::Files;
use super::files::{block_on, lake_runtime};
use super::publish::{FIRST, Partition, Piece, Pieces, Publisher, encode_with};
use crate::store::StoreError;

/// A checkpoint every so many versions (Delta's default interval), so readers replay few
/// log entries.
const CHECKPOINT_EVERY: u64 = 10;

const ENGINE_INFO: &str = concat!("helpscout-etl/", env!("CARGO_PKG_VERSION"));

/// The value of a partition column that holds no value (as in hive folders).
const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// The kernel's engine over the lake's object store, and this writer's identity.
pub struct DeltaEngine {
    engine: Arc<DefaultEngine<TokioMultiThreadExecutor>>,
    store: Arc<dyn ObjectStore>,
    /// The transaction id this process writes into each version (`helpscout-etl-{random}`),
    /// to know its own commit again.
    writer: String,
    commits: AtomicU64,
    /// Tables seen to exist, whose log need not be listed before a snapshot is read.
    known: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl std::fmt::Debug for DeltaEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeltaEngine").field("writer", &self.writer).finish()
    }
}

/// Runs kernel calls outside any async runtime: the kernel blocks on its own runtime, which a
/// caller on another runtime's thread (a test's, the CLI's) must not do itself.
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| match s.spawn(f).join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

fn delta_error(table: &str) -> impl Fn(KernelError) -> StoreError + '_ {
    move |e| StoreError::Delta { table: table.into(), reason: e.to_string() }
}

impl DeltaEngine {
    pub fn new(files: &Files) -> Result<Self, StoreError> {
        let store = files.root_store()?;
        let executor = Arc::new(TokioMultiThreadExecutor::new(lake_runtime().handle().clone()));
        let engine = Arc::new(DefaultEngineBuilder::new(Arc::clone(&store)).with_task_executor(executor).build());
        Ok(DeltaEngine { engine, store, writer: format!("helpscout-etl-{:016x}", rand::random::<u64>()), commits: AtomicU64::new(0), known: Default::default() })
    }

    /// The table's latest snapshot, or None when no table is there yet.
    fn snapshot(&self, files: &Files, table: &str, url: &url::Url) -> Result<Option<SnapshotRef>, StoreError> {
        let known = |t: &str| self.known.lock().unwrap_or_else(|e| e.into_inner()).contains(t);
        // No log at all is a table to create (asked once, so that the kernel is not asked to
        // read what is not there).
        if !known(table) {
            if files.list(&format!("{table}/_delta_log"))?.is_empty() {
                return Ok(None);
            }
            self.known.lock().unwrap_or_else(|e| e.into_inner()).insert(table.to_string());
        }
        let engine = &self.engine;
        off_runtime(|| Snapshot::builder_for(url.as_str()).build(engine.as_ref())).map(Some).map_err(delta_error(table))
    }
}

/// Where a file of ours sits: its partition value and its slice start (from its name).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Placed {
    partition: Option<String>,
    /// None: not a name this tool writes.
    start: Option<i64>,
}

/// The slice start in a file name `part-{start|first}_{nonce}.parquet`.
fn start_of(path: &str) -> Option<i64> {
    let name = path.rsplit('/').next()?;
    let start = name.strip_prefix("part-")?.split_once('_')?.0;
    if start == "first" { Some(FIRST) } else { start.parse().ok() }
}

fn file_name(start: i64, nonce: &str) -> String {
    let start = if start == FIRST { "first".to_string() } else { start.to_string() };
    format!("part-{start}_{nonce}.parquet")
}

/// A batch of the snapshot's file rows (as the kernel's scan gives them), with which to remove.
struct ScanRows {
    data: RecordBatch,
    placed: Vec<Option<Placed>>,
    remove: Vec<bool>,
}

/// One export of a table as one Delta commit.
pub struct DeltaPublisher<'a> {
    files: &'a Files,
    delta: &'a DeltaEngine,
    table: String,
    partition_column: Option<String>,
    txn: Option<Transaction>,
    files_now: Vec<ScanRows>,
    adds: usize,
    removes: usize,
    nonce: String,
    written: u64,
}

/// The Delta schema of a table: the files' columns and the partition column (a string).
fn table_schema(table: &str, schema: &SchemaRef, partition_column: Option<&str>) -> Result<StructType, StoreError> {
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    if let Some(column) = partition_column {
        fields.push(Field::new(column, arrow::datatypes::DataType::Utf8, true));
    }
    StructType::try_from_arrow(&Schema::new(fields)).map_err(|e| StoreError::Delta { table: table.into(), reason: e.to_string() })
}

impl<'a> DeltaPublisher<'a> {
    pub fn open(files: &'a Files, delta: &'a DeltaEngine, table: &str, partition_column: Option<String>, schema: &SchemaRef) -> Result<Self, StoreError> {
        let url = files.url(table)?;
        let wanted = table_schema(table, schema, partition_column.as_deref())?;
        let engine = &delta.engine;
        let snapshot = match delta.snapshot(files, table, &url)? {
            Some(s) => s,
            None => {
                if let Some(dir) = files.location().local() {
                    std::fs::create_dir_all(dir.join(table)).map_err(|e| StoreError::LakeIo { path: files.describe(table), reason: e.to_string() })?;
                }
                let layout = partition_column.as_ref().map_or(DataLayout::None, |c| DataLayout::partitioned([c.as_str()]));
                let created = off_runtime(|| {
                    create_table(url.as_str(), Arc::new(wanted.clone()), ENGINE_INFO, true)
                        .with_data_layout(layout)
                        .build(engine.as_ref(), Box::new(FileSystemCommitter::new()))?
                        .commit(engine.as_ref())
                });
                match created.map_err(delta_error(table))? {
                    CommitResult::Committed(_) | CommitResult::Conflicted(_) => {}
                    CommitResult::Retryable(r) => return Err(StoreError::Delta { table: table.into(), reason: r.error.to_string() }),
                }
                delta.snapshot(files, table, &url)?.ok_or_else(|| StoreError::Delta { table: table.into(), reason: "the table was created but cannot be read back".into() })?
            }
        };
        if snapshot.schema().as_ref() != &wanted {
            return Err(StoreError::Delta {
                table: table.into(),
                reason: format!("its columns differ from this configuration's; run `helpscout-etl reset {table}` to rebuild it (or restore the columns under [tables.{table}])"),
            });
        }
        let files_now = current_rows(engine.as_ref(), &snapshot, partition_column.as_deref(), table)?;
        let txn = off_runtime(|| snapshot.clone().update_table(UpdateTableOperation::Write, ENGINE_INFO, true).build(engine.as_ref(), Box::new(FileSystemCommitter::new())))
            .map_err(delta_error(table))?;
        let n = delta.commits.fetch_add(1, Ordering::Relaxed);
        Ok(DeltaPublisher {
            files,
            delta,
            table: table.into(),
            partition_column,
            txn: Some(txn),
            files_now,
            adds: 0,
            removes: 0,
            nonce: format!("{}-{n}", &delta.writer["helpscout-etl-".len()..]),
            written: 0,
        })
    }

    fn partition_value<'p>(&self, partition: &'p Partition) -> Option<&'p str> {
        partition.by.as_ref().map(|(_, v)| v.as_str())
    }

    /// Marks for removal the current files of `partition` that `pick` selects by their start.
    fn remove_where(&mut self, partition: &Partition, pick: impl Fn(Option<i64>) -> bool) {
        let value = self.partition_value(partition).map(str::to_string);
        for rows in &mut self.files_now {
            for (i, placed) in rows.placed.iter().enumerate() {
                if let Some(p) = placed
                    && p.partition == value
                    && !rows.remove[i]
                    && pick(p.start)
                {
                    rows.remove[i] = true;
                    self.removes += 1;
                }
            }
        }
    }

    /// Writes one data file of `partition` and stages its add.
    fn add_file(&mut self, partition: &Partition, start: i64, batch: RecordBatch) -> Result<u64, StoreError> {
        let table = self.table.clone();
        let txn = self.txn.as_mut().expect("the transaction lives until finish");
        let state = txn.write_state().map_err(delta_error(&table))?;
        let mut builder = state.write_context_builder();
        if let (Some(column), Some(value)) = (&self.partition_column, self.partition_value(partition)) {
            let scalar = if value == NULL_PARTITION { Scalar::Null(KernelType::STRING) } else { Scalar::String(value.to_string()) };
            builder = builder.with_partition_values(HashMap::from([(column.clone(), scalar)]));
        }
        let ctx = builder.build().map_err(delta_error(&table))?;
        let physical: Schema = ctx.physical_data_schema().as_ref().try_into_arrow().map_err(|e| StoreError::Delta { table: table.clone(), reason: e.to_string() })?;
        let physical = Arc::new(physical);
        let batch = super::publish::conform(&batch, &physical).map_err(|reason| StoreError::LakeEncode { table: table.clone(), reason })?;
        let mut stats = FileStatsAccumulator::new(ctx.stats_columns(), ctx.physical_data_schema().as_ref());
        stats.merge(&batch).map_err(delta_error(&table))?;
        let body = encode_with(&table, &physical, [batch], true)?;
        let size = body.len() as u64;
        let url = ctx.write_dir().join(&file_name(start, &self.nonce)).map_err(|e| StoreError::Delta { table: table.clone(), reason: e.to_string() })?;
        let path = object_store::path::Path::from_url_path(url.path()).map_err(|e| StoreError::Delta { table: table.clone(), reason: e.to_string() })?;
        let store = Arc::clone(&self.delta.store);
        block_on(async move { store.put(&path, body.into()).await }).map_err(|e| StoreError::LakeIo { path: url.to_string(), reason: e.to_string() })?;
        self.files.record_write(size);
        let stats = stats.finish().map_err(delta_error(&table))?.ok_or_else(|| StoreError::Delta { table: table.clone(), reason: "no statistics for a written file".into() })?;
        let meta = DataFileMetadata::new(FileMeta::new(url, chrono::Utc::now().timestamp_millis(), size), stats);
        let add = build_add_file_metadata(meta, &ctx).map_err(delta_error(&table))?;
        self.txn.as_mut().expect("the transaction lives until finish").add_files(add);
        self.adds += 1;
        self.written += size;
        Ok(size)
    }
}

/// The file rows of a snapshot, each placed by its partition value and start.
fn current_rows(engine: &DefaultEngine<TokioMultiThreadExecutor>, snapshot: &SnapshotRef, partition_column: Option<&str>, table: &str) -> Result<Vec<ScanRows>, StoreError> {
    let scan = snapshot.clone().scan_builder().build().map_err(delta_error(table))?;
    let metadata: Vec<_> = off_runtime(|| scan.scan_metadata(engine).map(|it| it.collect::<Vec<_>>())).map_err(delta_error(table))?;
    let mut out = Vec::new();
    for item in metadata {
        let (data, selected) = item.map_err(delta_error(table))?.scan_files.into_parts();
        let data = ArrowEngineData::try_from_engine_data(data).map_err(delta_error(table))?.record_batch().clone();
        let paths = data.column_by_name("path").map(|c| arrow::compute::cast(c, &arrow::datatypes::DataType::Utf8)).transpose().map_err(|e| StoreError::Delta { table: table.into(), reason: e.to_string() })?;
        let values = data
            .column_by_name("fileConstantValues")
            .and_then(|c| c.as_struct_opt())
            .and_then(|s| s.column_by_name("partitionValues"))
            .and_then(|c| c.as_map_opt())
            .cloned();
        let mut placed = Vec::with_capacity(data.num_rows());
        for i in 0..data.num_rows() {
            let live = selected.get(i).copied().unwrap_or(true);
            let path = paths.as_ref().and_then(|p| if p.is_null(i) { None } else { Some(p.as_string::<i32>().value(i).to_string()) });
            let (Some(path), true) = (path, live) else {
                placed.push(None);
                continue;
            };
            let partition = match (partition_column, &values) {
                (Some(column), Some(map)) if !map.is_null(i) => {
                    let entry = map.value(i);
                    let (k, v) = (entry.column(0).as_string::<i32>(), entry.column(1).as_string::<i32>());
                    (0..entry.len()).find(|&j| k.value(j) == column).map(|j| if v.is_null(j) { NULL_PARTITION.to_string() } else { v.value(j).to_string() })
                }
                _ => None,
            };
            placed.push(Some(Placed { partition, start: start_of(&path) }));
        }
        let remove = vec![false; data.num_rows()];
        out.push(ScanRows { data, placed, remove });
    }
    Ok(out)
}

/// The paths of the data files in a table's current snapshot (empty when there is no table).
pub fn current_files(files: &Files, delta: &DeltaEngine, table: &str) -> Result<Vec<String>, StoreError> {
    let url = files.url(table)?;
    let Some(snapshot) = delta.snapshot(files, table, &url)? else { return Ok(vec![]) };
    current_files_of(delta.engine.as_ref(), &snapshot, table)
}

/// What `vacuum` did to one table.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Vacuumed {
    pub table: String,
    /// The table's latest version, and the oldest one readers may still travel to.
    pub version: i64,
    pub oldest_kept_version: i64,
    pub files_kept: u64,
    pub files_deleted: u64,
    pub bytes_deleted: u64,
}

/// The version of a log entry's key (`…/_delta_log/00000000000000000012.json`).
fn commit_version(key: &str) -> Option<u64> {
    let name = key.rsplit('/').next()?;
    let digits = name.strip_suffix(".json")?;
    (digits.len() == 20).then(|| digits.parse().ok()).flatten()
}

/// The files added by one log entry (its `add` actions' paths, as written: URI-encoded and
/// relative to the table).
fn added_paths(entry: &[u8]) -> Vec<String> {
    entry
        .split(|b| *b == b'\n')
        .filter_map(|line| serde_json::from_slice::<serde_json::Value>(line).ok())
        .filter_map(|action| action.get("add")?.get("path")?.as_str().map(str::to_string))
        .collect()
}

/// Deletes the files of `table` that no snapshot within `retain` needs: those of the snapshot
/// current at the start of the retention, and every file added since, are kept; so is every
/// file written within the retention (a writer's file not committed yet). The log is kept.
pub fn vacuum(files: &Files, delta: &DeltaEngine, table: &str, retain: std::time::Duration, now: chrono::DateTime<chrono::Utc>) -> Result<Option<Vacuumed>, StoreError> {
    let url = files.url(table)?;
    let Some(latest) = delta.snapshot(files, table, &url)? else { return Ok(None) };
    let cutoff = now - chrono::Duration::from_std(retain).unwrap_or(chrono::Duration::MAX);
    let log_prefix = format!("{table}/_delta_log");
    let entries: Vec<(u64, super::Listed)> = files.list(&log_prefix)?.into_iter().filter_map(|o| commit_version(&o.key).map(|v| (v, o))).collect();
    // The snapshot a reader asking for the retention's start gets: the newest committed by then.
    let oldest = entries.iter().filter(|(_, o)| o.modified <= cutoff).map(|(v, _)| *v).max().or_else(|| entries.iter().map(|(v, _)| *v).min()).unwrap_or(latest.version());
    let engine = &delta.engine;
    let base = off_runtime(|| Snapshot::builder_for(url.as_str()).at_version(oldest).build(engine.as_ref())).map_err(delta_error(table))?;
    let mut needed: std::collections::HashSet<String> = current_files_of(engine.as_ref(), &base, table)?.into_iter().collect();
    for (version, object) in entries.iter().filter(|(v, _)| *v > oldest) {
        let store = Arc::clone(&delta.store);
        let path = object_store::path::Path::from_url_path(url.join(&format!("_delta_log/{version:020}.json")).map_err(|e| StoreError::Delta { table: table.into(), reason: e.to_string() })?.path())
            .map_err(|e| StoreError::Delta { table: table.into(), reason: e.to_string() })?;
        let body = block_on(async move { store.get(&path).await?.bytes().await }).map_err(|e| StoreError::LakeIo { path: files.describe(&object.key), reason: e.to_string() })?;
        needed.extend(added_paths(&body));
    }
    // Compare as object keys: a log path is URI-encoded and relative to the table.
    let key_of = |path: &str| -> Option<String> {
        let joined = url.join(path).ok()?;
        let store_path = object_store::path::Path::from_url_path(joined.path()).ok()?;
        let root = object_store::path::Path::from_url_path(url.path()).ok()?;
        let rest = store_path.as_ref().strip_prefix(root.as_ref())?.trim_start_matches('/').to_string();
        Some(format!("{table}/{rest}"))
    };
    let needed: std::collections::HashSet<String> = needed.iter().filter_map(|p| key_of(p)).collect();
    let mut done = Vacuumed { table: table.into(), version: latest.version() as i64, oldest_kept_version: oldest as i64, ..Default::default() };
    for object in files.list(table)? {
        if object.key.starts_with(&format!("{log_prefix}/")) {
            continue;
        }
        if needed.contains(&object.key) || object.modified > cutoff {
            done.files_kept += 1;
            continue;
        }
        files.delete(&object.key)?;
        done.files_deleted += 1;
        done.bytes_deleted += object.size;
    }
    Ok(Some(done))
}

/// The paths of the data files of one snapshot.
fn current_files_of(engine: &DefaultEngine<TokioMultiThreadExecutor>, snapshot: &SnapshotRef, table: &str) -> Result<Vec<String>, StoreError> {
    let scan = snapshot.clone().scan_builder().build().map_err(delta_error(table))?;
    let metadata: Vec<_> = off_runtime(|| scan.scan_metadata(engine).map(|it| it.collect::<Vec<_>>())).map_err(delta_error(table))?;
    let mut out = Vec::new();
    for item in metadata {
        fn push(out: &mut Vec<String>, f: delta_kernel::scan::state::ScanFile) {
            out.push(f.path);
        }
        out = item.map_err(delta_error(table))?.visit_scan_files(out, push).map_err(delta_error(table))?;
    }
    Ok(out)
}

impl Publisher for DeltaPublisher<'_> {
    fn replace(&mut self, partition: &Partition, from: i64, to: Option<i64>, pieces: Pieces<'_>) -> Result<u64, StoreError> {
        self.remove_where(partition, |start| start.is_some_and(|s| s >= from && to.is_none_or(|t| s < t)));
        let mut bytes = 0;
        for piece in pieces {
            let Piece { start, rows: batch, .. } = piece?;
            if batch.num_rows() > 0 {
                bytes += self.add_file(partition, start, batch)?;
            }
        }
        Ok(bytes)
    }

    fn replace_encoded(&mut self, _partition: &Partition, _from: i64, _body: Vec<u8>) -> Result<u64, StoreError> {
        // A Delta file's add action carries statistics of its rows: `base` is never offered.
        Err(StoreError::LakeEncode { table: self.table.clone(), reason: "a Delta table's slices are written from their rows, not patched".into() })
    }

    fn sweep(&mut self, partition: &Partition, kept: &[i64]) -> Result<(), StoreError> {
        // Files of no kept slice (or not named by this tool) would hold rows twice or rows gone.
        self.remove_where(partition, |start| start.is_none_or(|s| !kept.contains(&s)));
        Ok(())
    }

    fn drop_partition(&mut self, partition: &Partition) -> Result<(), StoreError> {
        self.remove_where(partition, |_| true);
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<Option<i64>, StoreError> {
        if self.adds == 0 && self.removes == 0 {
            return Ok(None);
        }
        let table = self.table.clone();
        let mut txn = self.txn.take().expect("the transaction lives until finish");
        for rows in std::mem::take(&mut self.files_now) {
            if rows.remove.contains(&true) {
                let data = Box::new(ArrowEngineData::new(rows.data));
                txn.remove_files(FilteredEngineData::try_new(data, rows.remove).map_err(delta_error(&table))?);
            }
        }
        let seq = self.delta.commits.fetch_add(1, Ordering::Relaxed) as i64;
        let txn = txn.with_transaction_id(self.delta.writer.clone(), seq);
        let engine = &self.delta.engine;
        let committed = off_runtime(|| txn.commit(engine.as_ref()));
        let url = self.files.url(&table)?;
        let ours = |delta: &DeltaEngine| -> Result<Option<i64>, StoreError> {
            // A conflict or a lost answer: the version may be ours all the same (a request
            // retried after it landed), which its transaction id tells.
            let Some(snapshot) = delta.snapshot(self.files, &table, &url)? else { return Ok(None) };
            let mine = off_runtime(|| snapshot.get_app_id_version(&delta.writer, delta.engine.as_ref())).map_err(delta_error(&table))?;
            Ok((mine == Some(seq)).then_some(snapshot.version() as i64))
        };
        match committed {
            Ok(CommitResult::Committed(done)) => {
                let version = done.commit_version() as i64;
                if done.post_commit_stats().commits_since_checkpoint >= CHECKPOINT_EVERY
                    && let Some(snapshot) = done.post_commit_snapshot()
                {
                    // A checkpoint that fails leaves readers replaying a few more entries: logged, not fatal.
                    if let Err(e) = off_runtime(|| snapshot.checkpoint(engine.as_ref(), None)) {
                        tracing::warn!(table = %table, error = %e, "the Delta checkpoint was not written");
                    }
                }
                Ok(Some(version))
            }
            Ok(CommitResult::Conflicted(conflict)) => match ours(self.delta)? {
                Some(version) => Ok(Some(version)),
                None => Err(StoreError::LakeConflict { table, version: conflict.conflict_version() as i64 }),
            },
            Ok(CommitResult::Retryable(retry)) => match ours(self.delta)? {
                Some(version) => Ok(Some(version)),
                None => Err(StoreError::Delta { table, reason: retry.error.to_string() }),
            },
            Err(e) => match ours(self.delta)? {
                Some(version) => Ok(Some(version)),
                None => Err(delta_error(&table)(e)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::lake::publish::pieces;

    #[test]
    fn file_names_carry_their_slice_start() {
        assert_eq!(start_of(&file_name(FIRST, "ab-1")), Some(FIRST));
        assert_eq!(start_of(&file_name(1_717_200_000_000_000, "ab-1")), Some(1_717_200_000_000_000));
        assert_eq!(start_of(&format!("created_at_month=2024-06/{}", file_name(-7, "x"))), Some(-7));
        assert_eq!(start_of("created_at_month=2024-06/0f1e.parquet"), None);
    }

    fn batch(ids: std::ops::Range<i64>) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("id", arrow::datatypes::DataType::Int64, false), Field::new("subject", arrow::datatypes::DataType::Utf8, true)]));
        let subjects: Vec<String> = ids.clone().map(|i| format!("s{i}")).collect();
        RecordBatch::try_new(schema, vec![Arc::new(arrow::array::Int64Array::from_iter_values(ids)), Arc::new(arrow::array::StringArray::from(subjects))]).unwrap()
    }

    /// The ids of the current snapshot of `t`.
    fn ids(lake: &super::super::Lake) -> Vec<i64> {
        let root = lake.files().location().local().unwrap().join("t");
        let mut out = Vec::new();
        for path in current_files(lake.files(), lake.delta.as_ref().unwrap(), "t").unwrap() {
            let file = std::fs::File::open(root.join(path)).unwrap();
            for b in parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap() {
                out.extend(b.unwrap().column(0).as_primitive::<arrow::datatypes::Int64Type>().values().iter().copied());
            }
        }
        out.sort();
        out
    }

    #[test]
    fn a_second_writer_is_stopped_by_the_commit_protocol_and_the_table_stays_whole() {
        use super::super::{Lake, LakeFormat};
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (Lake::local(LakeFormat::Delta, dir.path()), Lake::local(LakeFormat::Delta, dir.path()));
        let schema = batch(0..0).schema();
        let part = Partition { table: "t".into(), by: Some(("p".into(), "2024-06".into())) };
        let mut first = a.publisher("t", Some("p".into()), &schema, false).unwrap();
        first.replace(&part, FIRST, None, pieces(vec![(FIRST, batch(0..10))], None)).unwrap();
        let v1 = first.finish().unwrap().unwrap();
        assert_eq!(ids(&a), (0..10).collect::<Vec<_>>());

        // Both writers start from the same version; the one that commits second is stopped.
        let mut one = a.publisher("t", Some("p".into()), &schema, false).unwrap();
        let mut other = b.publisher("t", Some("p".into()), &schema, false).unwrap();
        one.replace(&part, FIRST, None, pieces(vec![(FIRST, batch(0..5))], None)).unwrap();
        other.replace(&part, FIRST, None, pieces(vec![(FIRST, batch(0..7))], None)).unwrap();
        assert_eq!(other.finish().unwrap(), Some(v1 + 1));
        match one.finish() {
            Err(StoreError::LakeConflict { table, version }) => assert_eq!((table.as_str(), version), ("t", v1 + 1)),
            other => panic!("expected a conflict, got {other:?}"),
        }
        assert!(StoreError::LakeConflict { table: "t".into(), version: 2 }.to_string().contains("only one helpscout-etl may write a lake"));
        assert_eq!(ids(&a), (0..7).collect::<Vec<_>>(), "the winner's snapshot, whole");

        // Nothing to publish: no version.
        let idle = a.publisher("t", Some("p".into()), &schema, false).unwrap();
        assert_eq!(idle.finish().unwrap(), None);
        // Other columns than the table's are refused with the fix.
        let wider = Arc::new(Schema::new(vec![Field::new("id", arrow::datatypes::DataType::Int64, false)]));
        let refused = a.publisher("t", Some("p".into()), &wider, false).err().unwrap().to_string();
        assert!(refused.contains("helpscout-etl reset t"), "{refused}");
    }

    #[test]
    fn every_tenth_version_leaves_a_checkpoint_and_vacuum_keeps_what_snapshots_need() {
        use super::super::{Lake, LakeFormat};
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::local(LakeFormat::Delta, dir.path());
        let schema = batch(0..0).schema();
        let part = Partition { table: "t".into(), by: None };
        let mut versions = Vec::new();
        for round in 0..12 {
            let mut p = lake.publisher("t", None, &schema, false).unwrap();
            p.replace(&part, FIRST, None, pieces(vec![(FIRST, batch(0..round + 1))], None)).unwrap();
            versions.push(p.finish().unwrap().unwrap());
        }
        assert_eq!(versions, (0..12).map(|v| v + 1).collect::<Vec<i64>>(), "version 0 creates the table");
        let log = dir.path().join("t/_delta_log");
        assert!(log.join("00000000000000000010.checkpoint.parquet").exists(), "a checkpoint at version 10");
        assert!(log.join("_last_checkpoint").exists());
        assert_eq!(ids(&lake), (0..12).collect::<Vec<_>>());
        // Each version replaced the one file: 12 written, 1 current; a long retention keeps
        // them all, none deletes all but the current.
        let kept = lake.vacuum(&["t", "absent"], std::time::Duration::from_secs(3600)).unwrap();
        assert_eq!((kept.len(), kept[0].files_deleted, kept[0].files_kept), (1, 0, 12));
        let swept = lake.vacuum(&["t"], std::time::Duration::ZERO).unwrap();
        assert_eq!((swept[0].files_deleted, swept[0].files_kept, swept[0].version), (11, 1, 12));
        assert_eq!(ids(&lake), (0..12).collect::<Vec<_>>(), "the current snapshot reads whole");
    }

    #[test]
    fn log_entries_are_known_by_their_twenty_digits_and_adds_by_their_paths() {
        assert_eq!(commit_version("t/_delta_log/00000000000000000012.json"), Some(12));
        assert_eq!(commit_version("t/_delta_log/00000000000000000010.checkpoint.parquet"), None);
        assert_eq!(commit_version("t/_delta_log/_last_checkpoint"), None);
        let entry = b"{\"commitInfo\":{}}\n{\"add\":{\"path\":\"d=1/part-first_a.parquet\"}}\n{\"remove\":{\"path\":\"d=1/old.parquet\"}}\n";
        assert_eq!(added_paths(entry), ["d=1/part-first_a.parquet"]);
    }
}
