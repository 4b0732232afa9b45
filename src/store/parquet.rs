//! The Parquet lake folder: one hive-style folder per table, partitioned by the month of a
//! column that never changes for a record (`created_at_month=2024-06/`), small tables as one file.
//!
//! Partitions are rewritten from DuckDB — the committed truth — whenever a commit marked them
//! stale, so each holds exactly the table's current rows. A partition file is written aside and
//! renamed over the old one: readers never see half a file. A crash between a DuckDB commit and
//! the rewrite leaves the partition marked stale, and the next run rewrites it.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use super::ddl::{DIRTY_TABLE, partition_sql, quote_ident};
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

impl Tx<'_> {
    /// Stale partitions of a table, as recorded by commits.
    fn dirty_partitions(&self, table: &Table) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.conn.prepare(&format!("SELECT partition_value FROM {DIRTY_TABLE} WHERE table_name = ? ORDER BY 1")).map_err(db(table.name))?;
        let values = stmt.query_map([table.name], |r| r.get::<_, String>(0)).map_err(db(table.name))?.collect::<Result<Vec<_>, _>>().map_err(db(table.name))?;
        Ok(values)
    }

    /// Rewrites every stale partition of `table` from DuckDB and clears its stale marks.
    /// Returns the number of partitions written.
    pub fn export_dirty(&self, lake: &ParquetFolder, table: &Table, schema: &SchemaRef) -> Result<u64, StoreError> {
        let dirty = self.dirty_partitions(table)?;
        for value in &dirty {
            self.write_partition(lake, table, schema, value)?;
            self.conn
                .execute(&format!("DELETE FROM {DIRTY_TABLE} WHERE table_name = ? AND partition_value = ?"), duckdb::params![table.name, value])
                .map_err(db(table.name))?;
        }
        Ok(dirty.len() as u64)
    }

    fn write_partition(&self, lake: &ParquetFolder, table: &Table, schema: &SchemaRef, value: &str) -> Result<(), StoreError> {
        let columns: Vec<String> = schema.fields().iter().map(|f| quote_ident(f.name())).collect();
        let order: Vec<String> = table.primary_key.iter().map(|k| quote_ident(k)).collect();
        let sql = format!(
            "SELECT {} FROM {} WHERE {} = ? ORDER BY {}",
            columns.join(", "),
            quote_ident(table.name),
            partition_sql(table),
            order.join(", ")
        );
        let mut stmt = self.conn.prepare(&sql).map_err(db(table.name))?;
        let batches: Vec<RecordBatch> = stmt.query_arrow([value]).map_err(db(table.name))?.collect();
        let dir = lake.partition_dir(table, value);
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        // A partition that lost its last row goes away (an unpartitioned table keeps an empty file).
        if rows == 0 && table.partition_month_of.is_some() {
            if dir.exists() {
                fs::remove_dir_all(&dir).map_err(|e| StoreError::LakeIo { path: dir.display().to_string(), reason: e.to_string() })?;
            }
            return Ok(());
        }
        let converted = batches.into_iter().map(|b| conform(&b, schema));
        write_file(&dir, table.name, schema, converted)
    }

    /// Rewrites the integration log's day partitions that hold events of `run_id`
    /// (`helpscout_log/day=YYYY-MM-DD/data.parquet`), each from all of that day's events.
    pub fn export_log(&self, lake: &ParquetFolder, run_id: &str) -> Result<u64, StoreError> {
        let day = "strftime(make_timestamp(epoch_us(\"timestamp\")), '%Y-%m-%d')";
        let mut stmt = self.conn.prepare(&format!("SELECT DISTINCT {day} FROM {LOG_TABLE} WHERE run_id = ? ORDER BY 1")).map_err(db(LOG_TABLE))?;
        let days: Vec<String> = stmt.query_map([run_id], |r| r.get(0)).map_err(db(LOG_TABLE))?.collect::<Result<_, _>>().map_err(db(LOG_TABLE))?;
        for d in &days {
            let mut stmt = self.conn.prepare(&format!("SELECT * FROM {LOG_TABLE} WHERE {day} = ? ORDER BY event_id")).map_err(db(LOG_TABLE))?;
            let batches: Vec<RecordBatch> = stmt.query_arrow([d]).map_err(db(LOG_TABLE))?.collect();
            let Some(schema) = batches.first().map(RecordBatch::schema) else { continue };
            let dir = lake.table_dir(LOG_TABLE).join(format!("day={d}"));
            write_file(&dir, LOG_TABLE, &schema, batches.into_iter().map(Ok))?;
        }
        Ok(days.len() as u64)
    }
}

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

/// Writes one partition file aside, flushes it, renames it over `dir/data.parquet`.
fn write_file(
    dir: &Path,
    table: &str,
    schema: &SchemaRef,
    batches: impl Iterator<Item = Result<RecordBatch, String>>,
) -> Result<(), StoreError> {
    let io = |e: std::io::Error| StoreError::LakeIo { path: dir.display().to_string(), reason: e.to_string() };
    let encode = |reason: String| StoreError::LakeEncode { table: table.into(), reason };
    fs::create_dir_all(dir).map_err(io)?;
    let path = dir.join(DATA_FILE);
    let tmp = crate::fsutil::aside(&path);
    let file = fs::File::create(&tmp).map_err(io)?;
    let props = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
    let mut writer = ArrowWriter::try_new(file, schema.clone(), Some(props)).map_err(|e| encode(e.to_string()))?;
    for batch in batches {
        writer.write(&batch.map_err(encode)?).map_err(|e| encode(e.to_string()))?;
    }
    let file = writer.into_inner().map_err(|e| encode(e.to_string()))?;
    file.sync_all().map_err(io)?;
    crate::fsutil::commit_aside(&tmp, &path).map_err(io)
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
