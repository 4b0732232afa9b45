//! The Parquet lake folder: one hive-style folder per table, partitioned by the month of a
//! column that never changes for a record (`created_at_month=2024-06/`), small tables as one file.
//!
//! Partitions are rewritten from DuckDB — the committed truth — whenever a commit marked them
//! stale, so each holds exactly the table's current rows. A partition file is written aside and
//! renamed over the old one: readers never see half a file. A crash between a DuckDB commit and
//! the rewrite leaves the partition marked stale, and the next run rewrites it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use super::ddl::{DIRTY_TABLE, SLICES_TABLE, STALE_ROWS_TABLE, quote_ident};
use super::log::LOG_TABLE;
use super::{StoreError, Tx};
use crate::catalog::Table;

fn db(table: &str) -> impl Fn(duckdb::Error) -> StoreError + '_ {
    move |source| StoreError::Db { doing: format!("reading {table} for the lake"), source }
}

#[derive(Debug, Clone)]
pub struct ParquetFolder {
    pub root: PathBuf,
}

/// Name of the hive partition key derived from a column.
pub fn partition_key(column: &str) -> String {
    format!("{column}_month")
}

/// The name of every data file (one per partition).
pub const DATA_FILE: &str = "data.parquet";

impl ParquetFolder {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        ParquetFolder { root: root.into() }
    }

    pub fn table_dir(&self, table: &str) -> PathBuf {
        self.root.join(table)
    }

    fn partition_dir(&self, table: &Table, value: &str) -> PathBuf {
        match table.partition_month_of {
            Some(col) => self.table_dir(table.name).join(format!("{}={}", partition_key(col), value)),
            None => self.table_dir(table.name),
        }
    }

    /// Files currently in a table's folder (for tests and `status`).
    pub fn files(&self, table: &str) -> Vec<PathBuf> {
        let mut out = Vec::new();
        collect(&self.table_dir(table), &mut out);
        out.sort();
        out
    }

    /// Removes a table's folder (`reset`).
    pub fn remove_table(&self, table: &Table) -> Result<(), StoreError> {
        let dir = self.table_dir(table.name);
        if dir.exists() {
            fs::remove_dir_all(&dir).map_err(|e| StoreError::LakeIo { path: dir.display().to_string(), reason: e.to_string() })?;
        }
        Ok(())
    }
}

/// A slice is cut in pieces of this many rows once it holds more than twice as many: a
/// changed row rewrites at most a few thousand rows, whatever the account's size.
pub const SLICE_ROWS: usize = 1_000;

/// What one export commit did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Exported {
    pub partitions: u64,
    pub files: u64,
    pub bytes: u64,
    /// Stale slices remain (the commit's time budget ran out).
    pub more: bool,
}

/// The file of the slice starting at `start`: `data.parquet` for the first, so that a
/// partition of one slice looks as it always did.
fn slice_file(start: i64) -> String {
    if start == i64::MIN { DATA_FILE.to_string() } else { format!("data-{start}.parquet") }
}

/// The epoch-microsecond bounds of a month partition (`2024-06`), `[first, next)`.
fn month_bounds(value: &str) -> Option<(i64, i64)> {
    let (y, m) = value.split_once('-')?;
    let (y, m): (i32, u32) = (y.parse().ok()?, m.parse().ok()?);
    let first = chrono::NaiveDate::from_ymd_opt(y, m, 1)?;
    let next = if m == 12 { chrono::NaiveDate::from_ymd_opt(y + 1, 1, 1)? } else { chrono::NaiveDate::from_ymd_opt(y, m + 1, 1)? };
    let us = |d: chrono::NaiveDate| d.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp_micros());
    Some((us(first)?, us(next)?))
}

/// Where to cut `keys` (sorted) into pieces of about `SLICE_ROWS`: the row indexes that start a
/// piece after the first, never between two equal keys. Nothing when the slice is small enough.
pub(crate) fn cuts(keys: &[i64]) -> Vec<usize> {
    if keys.len() <= 2 * SLICE_ROWS {
        return vec![];
    }
    let mut out = Vec::new();
    let mut i = SLICE_ROWS;
    while i < keys.len() {
        // Move to the first row of a new key.
        while i < keys.len() && keys[i] == keys[i - 1] {
            i += 1;
        }
        if i >= keys.len() || keys.len() - i < SLICE_ROWS / 2 {
            break;
        }
        out.push(i);
        i += SLICE_ROWS;
    }
    out
}

impl Tx<'_> {
    fn strings(&self, sql: &str, params: &[&dyn duckdb::ToSql], table: &str) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.conn.prepare(sql).map_err(db(table))?;
        let values = stmt.query_map(params, |r| r.get::<_, String>(0)).map_err(db(table))?.collect::<Result<Vec<_>, _>>().map_err(db(table))?;
        Ok(values)
    }

    /// (text, number) rows of a query about one table.
    fn keyed_longs(&self, sql: &str, table: &str) -> Result<Vec<(String, i64)>, StoreError> {
        let mut stmt = self.conn.prepare(sql).map_err(db(table))?;
        let rows = stmt.query_map([table], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))).map_err(db(table))?.collect::<Result<Vec<_>, _>>().map_err(db(table))?;
        Ok(rows)
    }

    fn longs(&self, sql: &str, params: &[&dyn duckdb::ToSql], table: &str) -> Result<Vec<i64>, StoreError> {
        let mut stmt = self.conn.prepare(sql).map_err(db(table))?;
        let values = stmt.query_map(params, |r| r.get::<_, i64>(0)).map_err(db(table))?.collect::<Result<Vec<_>, _>>().map_err(db(table))?;
        Ok(values)
    }

    /// Rewrites stale slices of `table` from DuckDB — only the slices holding changed rows —
    /// and clears their marks, until none is left or `budget` has passed (at least one slice is
    /// written). Commit after each call: the marks and the slice list move with the files.
    pub fn export_stale(&self, lake: &ParquetFolder, table: &Table, schema: &SchemaRef, budget: std::time::Duration) -> Result<Exported, StoreError> {
        let started = std::time::Instant::now();
        let name = table.name;
        let mut done = Exported::default();
        // What is stale, and the slices held, read once for the whole table.
        let mut marks: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        for (value, at) in self.keyed_longs(&format!("SELECT DISTINCT partition_value, at_us FROM {STALE_ROWS_TABLE} WHERE table_name = ? ORDER BY 1, 2"), name)? {
            marks.entry(value).or_default().push(at);
        }
        let wholes: BTreeSet<String> = self.strings(&format!("SELECT partition_value FROM {DIRTY_TABLE} WHERE table_name = ?"), &[&name], name)?.into_iter().collect();
        let mut slices: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        for (value, start) in self.keyed_longs(&format!("SELECT partition_value, slice_start FROM {SLICES_TABLE} WHERE table_name = ? ORDER BY 1, 2"), name)? {
            slices.entry(value).or_default().push(start);
        }
        let partitions: BTreeSet<String> = marks.keys().cloned().chain(wholes.iter().cloned()).collect();
        for value in partitions {
            if started.elapsed() >= budget && done.files > 0 {
                done.more = true;
                break;
            }
            let mut starts = slices.remove(&value).unwrap_or_default();
            if starts.first() != Some(&i64::MIN) {
                starts.insert(0, i64::MIN);
            }
            // A whole-partition mark (unpartitioned tables, files of older versions) stales every slice.
            let whole = wholes.contains(&value);
            let mut stale: Vec<usize> = if whole {
                (0..starts.len()).collect()
            } else {
                let keys = marks.remove(&value).unwrap_or_default();
                let mut idx: Vec<usize> = keys.iter().map(|k| starts.partition_point(|s| s <= k).saturating_sub(1)).collect();
                idx.dedup();
                idx
            };
            stale.sort_unstable();
            stale.dedup();
            let mut written = 0;
            let mut ranges = Vec::new();
            for &i in &stale {
                if started.elapsed() >= budget && done.files > 0 {
                    break;
                }
                let (from, to) = (starts[i], starts.get(i + 1).copied());
                done.bytes += self.write_slice(lake, table, schema, &value, from, to)?;
                done.files += 1;
                written += 1;
                ranges.push((from, to));
            }
            // Every stale slice written: every mark of the partition goes, in one statement.
            if written == stale.len() {
                ranges = vec![(i64::MIN, None)];
            }
            for (from, to) in ranges {
                let lower = if from == i64::MIN { String::new() } else { format!(" AND at_us >= {from}") };
                let upper = to.map_or(String::new(), |t| format!(" AND at_us < {t}"));
                self.conn
                    .execute(&format!("DELETE FROM {STALE_ROWS_TABLE} WHERE table_name = ? AND partition_value = ?{lower}{upper}"), duckdb::params![name, value])
                    .map_err(db(name))?;
            }
            if whole {
                // The slices not written yet keep the whole mark as marks of their own.
                for &i in &stale[written..] {
                    self.conn.execute(&format!("INSERT INTO {STALE_ROWS_TABLE} VALUES (?, ?, ?)"), duckdb::params![name, value, starts[i]]).map_err(db(name))?;
                }
                self.conn.execute(&format!("DELETE FROM {DIRTY_TABLE} WHERE table_name = ? AND partition_value = ?"), duckdb::params![name, value]).map_err(db(name))?;
            }
            if written < stale.len() {
                done.more = true;
                break;
            }
            self.sweep_partition(lake, table, &value)?;
            done.partitions += 1;
        }
        Ok(done)
    }

    /// Rewrites the slice `[from, to)` of one partition from DuckDB, cut in pieces when it grew
    /// too large, and records its pieces. Returns the bytes written.
    fn write_slice(&self, lake: &ParquetFolder, table: &Table, schema: &SchemaRef, value: &str, from: i64, to: Option<i64>) -> Result<u64, StoreError> {
        let columns: Vec<String> = schema.fields().iter().map(|f| quote_ident(f.name())).collect();
        let mut filter = Vec::new();
        let mut order: Vec<String> = Vec::new();
        let key = table.partition_month_of;
        if let Some(col) = key {
            let c = quote_ident(col);
            order.push(c.clone());
            match month_bounds(value) {
                Some((first, next)) => {
                    let lo = from.max(first);
                    let hi = to.map_or(next, |t| t.min(next));
                    filter.push(format!("{c} >= make_timestamp({lo}::BIGINT)::TIMESTAMPTZ AND {c} < make_timestamp({hi}::BIGINT)::TIMESTAMPTZ"));
                }
                None => filter.push(format!("{c} IS NULL")),
            }
        }
        order.extend(table.primary_key.iter().map(|k| quote_ident(k)));
        let sql = format!(
            "SELECT {} FROM {} WHERE {} ORDER BY {}",
            columns.join(", "),
            quote_ident(table.name),
            if filter.is_empty() { "true".to_string() } else { filter.join(" AND ") },
            order.join(", ")
        );
        let mut stmt = self.conn.prepare(&sql).map_err(db(table.name))?;
        let batches: Vec<RecordBatch> = stmt.query_arrow([]).map_err(db(table.name))?.collect();
        let batch = arrow::compute::concat_batches(&stmt_schema(&batches, schema), &batches).map_err(|e| StoreError::LakeEncode { table: table.name.into(), reason: e.to_string() })?;
        let batch = conform(&batch, schema).map_err(|reason| StoreError::LakeEncode { table: table.name.into(), reason })?;
        let dir = lake.partition_dir(table, value);
        let name = table.name;
        self.conn
            .execute(&format!("DELETE FROM {SLICES_TABLE} WHERE table_name = ? AND partition_value = ? AND slice_start = ?"), duckdb::params![name, value, from])
            .map_err(db(name))?;
        // An empty slice goes, unless it is the partition's first (which stays, possibly empty).
        if batch.num_rows() == 0 && from != i64::MIN {
            remove_file(&dir.join(slice_file(from)))?;
            return Ok(0);
        }
        let keys: Vec<i64> = match key {
            Some(col) => {
                let array = batch.column(schema.index_of(col).map_err(|e| StoreError::LakeEncode { table: name.into(), reason: e.to_string() })?);
                let micros = arrow::compute::cast(array, &arrow::datatypes::DataType::Int64).map_err(|e| StoreError::LakeEncode { table: name.into(), reason: e.to_string() })?;
                let micros = micros.as_any().downcast_ref::<arrow::array::Int64Array>().expect("cast to Int64");
                (0..micros.len()).map(|i| if arrow::array::Array::is_null(micros, i) { i64::MIN } else { micros.value(i) }).collect()
            }
            None => vec![],
        };
        let mut bounds = vec![0];
        bounds.extend(cuts(&keys));
        bounds.push(batch.num_rows());
        let mut bytes = 0;
        for w in bounds.windows(2) {
            let (a, b) = (w[0], w[1]);
            let start = if a == 0 { from } else { keys[a] };
            let piece = batch.slice(a, b - a);
            bytes += write_file(&dir, &slice_file(start), table.name, schema, std::iter::once(Ok(piece)))?;
            self.conn
                .execute(&format!("INSERT INTO {SLICES_TABLE} VALUES (?, ?, ?, ?)"), duckdb::params![name, value, start, (b - a) as i64])
                .map_err(db(name))?;
        }
        Ok(bytes)
    }

    /// Removes files of a partition that its slice list does not name (left by an interrupted
    /// export), and the partition's folder when it holds no row.
    fn sweep_partition(&self, lake: &ParquetFolder, table: &Table, value: &str) -> Result<(), StoreError> {
        let name = table.name;
        let dir = lake.partition_dir(table, value);
        let rows: Vec<i64> = self.longs(&format!("SELECT rows FROM {SLICES_TABLE} WHERE table_name = ? AND partition_value = ? ORDER BY slice_start"), &[&name, &value], name)?;
        if table.partition_month_of.is_some() && rows.iter().sum::<i64>() == 0 {
            self.conn.execute(&format!("DELETE FROM {SLICES_TABLE} WHERE table_name = ? AND partition_value = ?"), duckdb::params![name, value]).map_err(db(name))?;
            if dir.exists() {
                fs::remove_dir_all(&dir).map_err(|e| StoreError::LakeIo { path: dir.display().to_string(), reason: e.to_string() })?;
            }
            return Ok(());
        }
        let named: Vec<String> = self
            .longs(&format!("SELECT slice_start FROM {SLICES_TABLE} WHERE table_name = ? AND partition_value = ?"), &[&name, &value], name)?
            .into_iter()
            .map(slice_file)
            .collect();
        let Ok(entries) = fs::read_dir(&dir) else { return Ok(()) };
        for entry in entries.flatten() {
            let file = entry.file_name().to_string_lossy().into_owned();
            if file.starts_with("data") && file.ends_with(".parquet") && !named.contains(&file) {
                remove_file(&entry.path())?;
            }
        }
        Ok(())
    }

    /// Rewrites the integration log's files that hold events of `run_id`: each day partition
    /// (`helpscout_log/day=YYYY-MM-DD/`) is cut in files of `LOG_BLOCK` event ids
    /// (`data-{block}.parquet`), so a run rewrites the blocks its events fall in, not the day.
    /// Returns the bytes written.
    pub fn export_log(&self, lake: &ParquetFolder, run_id: &str) -> Result<u64, StoreError> {
        let day = "strftime(make_timestamp(epoch_us(\"timestamp\")), '%Y-%m-%d')";
        let block = format!("event_id // {LOG_BLOCK}");
        let mut stmt = self.conn.prepare(&format!("SELECT DISTINCT {day}, {block} FROM {LOG_TABLE} WHERE run_id = ? ORDER BY 1, 2")).map_err(db(LOG_TABLE))?;
        let mut blocks: Vec<(String, i64)> = stmt.query_map([run_id], |r| Ok((r.get(0)?, r.get(1)?))).map_err(db(LOG_TABLE))?.collect::<Result<_, _>>().map_err(db(LOG_TABLE))?;
        // A day written whole by an earlier version is cut in blocks at once.
        let whole_days: Vec<String> = blocks.iter().map(|b| b.0.clone()).filter(|d| lake.table_dir(LOG_TABLE).join(format!("day={d}")).join(DATA_FILE).exists()).collect();
        for d in whole_days.iter().collect::<std::collections::BTreeSet<_>>() {
            let mut stmt = self.conn.prepare(&format!("SELECT DISTINCT {block} FROM {LOG_TABLE} WHERE {day} = ?")).map_err(db(LOG_TABLE))?;
            let all: Vec<i64> = stmt.query_map([d], |r| r.get(0)).map_err(db(LOG_TABLE))?.collect::<Result<_, _>>().map_err(db(LOG_TABLE))?;
            blocks.extend(all.into_iter().map(|b| (d.to_string(), b)));
        }
        blocks.sort();
        blocks.dedup();
        let mut bytes = 0;
        for (d, b) in &blocks {
            let lo = b * LOG_BLOCK;
            let mut stmt = self
                .conn
                .prepare(&format!("SELECT * FROM {LOG_TABLE} WHERE event_id >= ? AND event_id < ? AND {day} = ? ORDER BY event_id"))
                .map_err(db(LOG_TABLE))?;
            let batches: Vec<RecordBatch> = stmt.query_arrow(duckdb::params![lo, lo + LOG_BLOCK, d]).map_err(db(LOG_TABLE))?.collect();
            let Some(schema) = batches.first().map(RecordBatch::schema) else { continue };
            let dir = lake.table_dir(LOG_TABLE).join(format!("day={d}"));
            bytes += write_file(&dir, &format!("data-{b}.parquet"), LOG_TABLE, &schema, batches.into_iter().map(Ok))?;
        }
        for d in whole_days {
            remove_file(&lake.table_dir(LOG_TABLE).join(format!("day={d}")).join(DATA_FILE))?;
        }
        Ok(bytes)
    }
}

/// Event ids per file of a day of the integration log in the lake.
pub const LOG_BLOCK: i64 = 20_000;

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "parquet") {
            out.push(path);
        }
    }
}

/// The schema of what DuckDB returned (the contract's when it returned no batch).
fn stmt_schema(batches: &[RecordBatch], schema: &SchemaRef) -> SchemaRef {
    batches.first().map(RecordBatch::schema).unwrap_or_else(|| Arc::clone(schema))
}

fn remove_file(path: &Path) -> Result<(), StoreError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StoreError::LakeIo { path: path.display().to_string(), reason: e.to_string() }),
    }
}

/// Writes one file aside, flushes it, renames it over `dir/file`. Returns its size.
fn write_file(
    dir: &Path,
    file_name: &str,
    table: &str,
    schema: &SchemaRef,
    batches: impl Iterator<Item = Result<RecordBatch, String>>,
) -> Result<u64, StoreError> {
    let io = |e: std::io::Error| StoreError::LakeIo { path: dir.display().to_string(), reason: e.to_string() };
    let encode = |reason: String| StoreError::LakeEncode { table: table.into(), reason };
    fs::create_dir_all(dir).map_err(io)?;
    let path = dir.join(file_name);
    let tmp = crate::fsutil::aside(&path);
    let file = fs::File::create(&tmp).map_err(io)?;
    let props = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
    let mut writer = ArrowWriter::try_new(file, schema.clone(), Some(props)).map_err(|e| encode(e.to_string()))?;
    for batch in batches {
        writer.write(&batch.map_err(encode)?).map_err(|e| encode(e.to_string()))?;
    }
    let file = writer.into_inner().map_err(|e| encode(e.to_string()))?;
    file.sync_all().map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    crate::fsutil::commit_aside(&tmp, &path).map_err(io)?;
    Ok(size)
}

/// DuckDB's Arrow output → the contract schema (list item names, nullability).
fn conform(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, String> {
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(array, field)| {
            if array.data_type() == field.data_type() {
                Ok(array.clone())
            } else {
                arrow::compute::cast(array, field.data_type()).map_err(|e| format!("{}: {e}", field.name()))
            }
        })
        .collect::<Result<Vec<ArrayRef>, String>>()?;
    RecordBatch::try_new(Arc::clone(schema), columns).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::CONVERSATIONS;
    use crate::convert::{RunStamp, TableConverter};
    use crate::store::{Warehouse, WindowStats};
    use std::time::Duration;

    #[test]
    fn cuts_fall_every_slice_rows_and_never_between_equal_keys() {
        assert!(cuts(&(0..2_000).collect::<Vec<_>>()).is_empty(), "up to twice the size stays whole");
        assert_eq!(cuts(&(0..5_000).collect::<Vec<_>>()), [1_000, 2_000, 3_000, 4_000]);
        assert_eq!(cuts(&(0..4_300).collect::<Vec<_>>()), [1_000, 2_000, 3_000], "no piece below half the size");
        let mut keys: Vec<i64> = (0..2_500).collect();
        keys[1_000] = 999;
        keys[1_001] = 999;
        assert_eq!(cuts(&keys), [1_002]);
    }

    /// Conversations created a second apart from the start of June 2024.
    fn batch(conv: &TableConverter, ids: std::ops::Range<i64>, subject: &str) -> RecordBatch {
        let stamp = RunStamp { run_id: "r".into(), extracted_at: chrono::Utc::now() };
        let june = chrono::DateTime::parse_from_rfc3339("2024-06-01T00:00:00Z").unwrap().to_utc();
        let rows: Vec<_> = ids
            .map(|id| {
                let created = (june + chrono::Duration::seconds(id)).format("%Y-%m-%dT%H:%M:%SZ").to_string();
                conv.row(&serde_json::json!({"id": id, "number": id, "subject": subject, "createdAt": created}), None, &stamp).unwrap()
            })
            .collect();
        conv.batch(&rows).unwrap()
    }

    #[test]
    fn a_changed_row_rewrites_its_slice_only_and_an_interrupted_exports_files_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let w = Warehouse::new(dir.path().join("t.duckdb"));
        let lake = ParquetFolder::new(dir.path().join("parquet"));
        let conv = TableConverter::new(&CONVERSATIONS, None);
        let schema = conv.schema();
        let mut windows = WindowStats::default();
        let upsert = |w: &Warehouse, windows: &mut WindowStats, b: RecordBatch| {
            w.commit(windows, |tx| {
                tx.ensure_tables(&[(&CONVERSATIONS, conv.schema_columns().to_vec())])?;
                let stage = tx.stage(&CONVERSATIONS, vec![b])?;
                tx.upsert(&stage)
            })
            .unwrap()
        };
        let export = |w: &Warehouse, windows: &mut WindowStats| {
            let mut all = Exported::default();
            loop {
                let e = w.commit(windows, |tx| tx.export_stale(&lake, &CONVERSATIONS, &schema, Duration::from_secs(60))).unwrap();
                all.files += e.files;
                all.bytes += e.bytes;
                all.partitions += e.partitions;
                if !e.more {
                    return all;
                }
            }
        };
        upsert(&w, &mut windows, batch(&conv, 0..5_000, "first"));
        let first = export(&w, &mut windows);
        assert_eq!((first.partitions, first.files), (1, 1), "one slice written, then cut");
        let files = lake.files("conversations");
        assert_eq!(files.len(), 5, "{files:?}");
        let rows = |files: &[PathBuf]| -> i64 {
            use parquet::file::reader::FileReader;
            files.iter().map(|f| parquet::file::reader::SerializedFileReader::new(fs::File::open(f).unwrap()).unwrap().metadata().file_metadata().num_rows()).sum()
        };
        assert_eq!(rows(&files), 5_000);

        // One changed row: its slice of 1,000 rows is written, nothing else.
        upsert(&w, &mut windows, batch(&conv, 2_500..2_501, "changed"));
        let again = export(&w, &mut windows);
        assert_eq!(again.files, 1);
        assert!(again.bytes * 3 < first.bytes, "{} of {} bytes", again.bytes, first.bytes);
        assert_eq!(rows(&lake.files("conversations")), 5_000);

        // With no time budget each commit writes one slice and says more are stale; the marks
        // of the slices not written yet survive between commits.
        upsert(&w, &mut windows, batch(&conv, 0..5_000, "all changed"));
        let mut calls = Vec::new();
        loop {
            let e = w.commit(&mut windows, |tx| tx.export_stale(&lake, &CONVERSATIONS, &schema, Duration::ZERO)).unwrap();
            calls.push((e.files, e.more));
            if !e.more {
                break;
            }
        }
        assert_eq!(calls, [(1, true), (1, true), (1, true), (1, true), (1, false)]);
        assert_eq!(rows(&lake.files("conversations")), 5_000);

        // The same row received again unchanged is taken out of the stage: nothing to write.
        w.commit(&mut windows, |tx| {
            let stage = tx.stage(&CONVERSATIONS, vec![batch(&conv, 2_500..2_502, "changed")])?;
            tx.drop_unchanged(&stage)?;
            tx.upsert(&stage)
        })
        .unwrap();
        assert_eq!(export(&w, &mut windows).files, 1, "2,501 is new to its subject, 2,500 is not");
        w.commit(&mut windows, |tx| {
            let stage = tx.stage(&CONVERSATIONS, vec![batch(&conv, 2_500..2_502, "changed")])?;
            tx.drop_unchanged(&stage)?;
            tx.upsert(&stage)
        })
        .unwrap();
        assert_eq!(export(&w, &mut windows), Exported::default(), "received again as held: no slice is stale");

        // A file left by an export that did not commit goes when its partition is next written.
        let stray = files[0].parent().unwrap().join("data-1717200000000001.parquet");
        fs::copy(&files[1], &stray).unwrap();
        upsert(&w, &mut windows, batch(&conv, 10..11, "again"));
        export(&w, &mut windows);
        assert!(!stray.exists());
        assert_eq!(rows(&lake.files("conversations")), 5_000);

        // A slice that lost its rows goes; a partition that lost all goes with its folder.
        w.commit(&mut windows, |tx| tx.delete_where(&CONVERSATIONS, "id >= 1000 AND id < 2000")).unwrap();
        export(&w, &mut windows);
        assert_eq!((lake.files("conversations").len(), rows(&lake.files("conversations"))), (4, 4_000));
        w.commit(&mut windows, |tx| tx.delete_where(&CONVERSATIONS, "true")).unwrap();
        export(&w, &mut windows);
        assert!(lake.files("conversations").is_empty());
        assert!(!lake.table_dir("conversations").join("created_at_month=2024-06").exists());
    }
}
