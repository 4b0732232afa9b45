//! How a table's files are published, once the export knows which slices to rewrite.
//!
//! A partition is cut in slices by a start key (the partition column in µs, or a block of the
//! log's event ids); each slice is held by one or more files whose names carry their start.
//! Hive Parquet replaces a slice's files in place (`data.parquet`, `data-{start}.parquet`);
//! Delta writes new files (`part-{start}_{nonce}.parquet`) and commits their adds and the
//! removes of the files they replace in one version of the table's log.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use super::Files;
use crate::store::StoreError;

/// The start key of a partition's first slice.
pub const FIRST: i64 = i64::MIN;

/// One partition of a lake table: its folder key and, when partitioned, its column and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// The table's folder under the lake's root.
    pub table: String,
    /// The hive partition column and the value (`created_at_month`, `2024-06`).
    pub by: Option<(String, String)>,
}

impl Partition {
    /// The partition's folder key (`conversations/created_at_month=2024-06`).
    pub fn key(&self) -> String {
        match &self.by {
            Some((column, value)) => format!("{}/{column}={value}", self.table),
            None => self.table.clone(),
        }
    }
}

/// What a table's export does to the lake's files; `finish` makes it visible (Delta) or
/// reports what is (hive, whose writes are visible as they land).
pub trait Publisher {
    /// The files holding `[from, to)` of `partition` are replaced by `pieces` (each with its
    /// start key). No piece: the slice is gone. Returns the bytes written.
    fn replace(&mut self, partition: &Partition, from: i64, to: Option<i64>, pieces: Pieces<'_>) -> Result<u64, StoreError>;
    /// Files of `partition` that belong to none of the slices starting at `kept` go (left by an
    /// export that did not commit).
    fn sweep(&mut self, partition: &Partition, kept: &[i64]) -> Result<(), StoreError>;
    /// Every file of `partition` goes.
    fn drop_partition(&mut self, partition: &Partition) -> Result<(), StoreError>;
    /// Publishes what was replaced. Delta returns the table's new version (None: nothing to
    /// commit).
    fn finish(self: Box<Self>) -> Result<Option<i64>, StoreError>;
}

/// The pieces of a slice, each with where it starts, produced one at a time (read from DuckDB
/// as they are written, so that a backfill's whole partition is never in memory at once).
pub type Pieces<'a> = Box<dyn Iterator<Item = Result<(i64, RecordBatch), StoreError>> + 'a>;

/// Pieces already in memory.
pub fn pieces(held: Vec<(i64, RecordBatch)>) -> Pieces<'static> {
    Box::new(held.into_iter().map(Ok))
}

/// Encodes batches as one Parquet file (snappy) in memory: a slice is at most a few thousand
/// rows, a block of the log a few megabytes.
pub fn encode(table: &str, schema: &SchemaRef, batches: impl IntoIterator<Item = RecordBatch>) -> Result<Vec<u8>, StoreError> {
    encode_with(table, schema, batches, false)
}

/// `encode`, leaving out the Arrow schema that readers of plain Parquet use for the exact types
/// (`skip_arrow_metadata`: a Delta table's schema is in its log).
pub fn encode_with(table: &str, schema: &SchemaRef, batches: impl IntoIterator<Item = RecordBatch>, skip_arrow_metadata: bool) -> Result<Vec<u8>, StoreError> {
    let encode = |e: parquet::errors::ParquetError| StoreError::LakeEncode { table: table.into(), reason: e.to_string() };
    let props = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
    let options = parquet::arrow::arrow_writer::ArrowWriterOptions::new().with_properties(props).with_skip_arrow_metadata(skip_arrow_metadata);
    let mut writer = ArrowWriter::try_new_with_options(Vec::new(), schema.clone(), options).map_err(encode)?;
    for batch in batches {
        writer.write(&batch).map_err(encode)?;
    }
    writer.into_inner().map_err(encode)
}

/// Hive Parquet: `data.parquet` for a partition's first slice, `data-{start}.parquet` for the
/// others, each put whole over the previous one.
pub struct Hive<'a> {
    pub files: &'a Files,
    pub schema: SchemaRef,
}

/// The hive file of the slice starting at `start`.
pub fn hive_file(start: i64) -> String {
    if start == FIRST { super::DATA_FILE.to_string() } else { format!("data-{start}.parquet") }
}

/// The start key in a hive file's name (`data.parquet` → FIRST); None for other files.
fn hive_start(name: &str) -> Option<i64> {
    if name == super::DATA_FILE {
        return Some(FIRST);
    }
    name.strip_prefix("data-")?.strip_suffix(".parquet")?.parse().ok()
}

impl Publisher for Hive<'_> {
    fn replace(&mut self, partition: &Partition, from: i64, _to: Option<i64>, pieces: Pieces<'_>) -> Result<u64, StoreError> {
        let dir = partition.key();
        let mut pieces = pieces.peekable();
        if pieces.peek().is_none() {
            self.files.delete(&format!("{dir}/{}", hive_file(from)))?;
            return Ok(0);
        }
        let mut bytes = 0;
        for piece in pieces {
            let (start, batch) = piece?;
            let body = encode(&partition.table, &self.schema, [batch])?;
            bytes += body.len() as u64;
            self.files.put(&format!("{dir}/{}", hive_file(start)), body)?;
        }
        Ok(bytes)
    }

    fn sweep(&mut self, partition: &Partition, kept: &[i64]) -> Result<(), StoreError> {
        let dir = partition.key();
        for object in self.files.list(&dir)? {
            let name = object.key.rsplit('/').next().unwrap_or_default();
            // Only files directly in the partition's folder (an unpartitioned table's folder
            // holds nothing else either).
            if object.key.len() != dir.len() + 1 + name.len() {
                continue;
            }
            if hive_start(name).is_some_and(|s| !kept.contains(&s)) {
                self.files.delete(&object.key)?;
            }
        }
        Ok(())
    }

    fn drop_partition(&mut self, partition: &Partition) -> Result<(), StoreError> {
        self.files.delete_prefix(&partition.key())
    }

    fn finish(self: Box<Self>) -> Result<Option<i64>, StoreError> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hive_names_carry_their_slice_start() {
        assert_eq!(hive_file(FIRST), "data.parquet");
        assert_eq!(hive_start(&hive_file(FIRST)), Some(FIRST));
        assert_eq!(hive_start(&hive_file(1_717_200_000_000_000)), Some(1_717_200_000_000_000));
        assert_eq!(hive_start(&hive_file(-5)), Some(-5));
        assert_eq!(hive_start("part-0_x.parquet"), None);
        let p = Partition { table: "threads".into(), by: Some(("created_at_month".into(), "2024-06".into())) };
        assert_eq!(p.key(), "threads/created_at_month=2024-06");
        assert_eq!(Partition { table: "users".into(), by: None }.key(), "users");
    }
}
