//! How a table's files are published, once the export knows which slices to rewrite.
//!
//! A partition is cut in slices by a start key (the partition column in µs, or a block of the
//! log's event ids); each slice is held by one or more files whose names carry their start.
//! Hive Parquet replaces a slice's files in place (`data.parquet`, `data-{start}.parquet`);
//! Delta writes new files (`part-{start}_{nonce}.parquet`) and commits their adds and the
//! removes of the files they replace in one version of the table's log.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::SchemaRef;
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use parquet::arrow::arrow_writer::{ArrowWriterOptions, compute_leaves};
use parquet::basic::Compression;
use parquet::column::writer::ColumnCloseResult;
use parquet::file::metadata::{KeyValue, ParquetMetaDataReader};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::statistics::Statistics;
use parquet::schema::types::ColumnDescPtr;

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
    /// The file holding the slice starting at `from`, when this format rewrites a slice as one
    /// file in place and can patch it (hive); None otherwise, or when there is none.
    fn base(&self, _partition: &Partition, _from: i64) -> Result<Option<Bytes>, StoreError> {
        Ok(None)
    }
    /// `replace` with one file already encoded (a patch of the `base`), holding the slice whole.
    fn replace_encoded(&mut self, partition: &Partition, from: i64, body: Vec<u8>) -> Result<u64, StoreError>;
    /// Every file of `partition` goes.
    fn drop_partition(&mut self, partition: &Partition) -> Result<(), StoreError>;
    /// Publishes what was replaced. Delta returns the table's new version (None: nothing to
    /// commit).
    fn finish(self: Box<Self>) -> Result<Option<i64>, StoreError>;
}

/// One piece of a slice: a slice of its own from `start` to `end` (the next piece's start, or
/// the slice's end), and its rows.
pub struct Piece {
    pub start: i64,
    pub end: Option<i64>,
    pub rows: RecordBatch,
}

/// The pieces of a slice, produced one at a time (read from DuckDB as they are written, so
/// that a backfill's whole partition is never in memory at once).
pub type Pieces<'a> = Box<dyn Iterator<Item = Result<Piece, StoreError>> + 'a>;

/// Pieces already in memory, each with its start, of a slice ending at `to`.
pub fn pieces(held: Vec<(i64, RecordBatch)>, to: Option<i64>) -> Pieces<'static> {
    let ends: Vec<Option<i64>> = held.iter().skip(1).map(|(start, _)| Some(*start)).chain([to]).collect();
    Box::new(held.into_iter().zip(ends).map(|((start, rows), end)| Ok(Piece { start, end, rows })))
}

/// Encodes batches as one Parquet file (snappy) in memory: a slice is at most a few thousand
/// rows, a block of the log a few megabytes.
pub fn encode(table: &str, schema: &SchemaRef, batches: impl IntoIterator<Item = RecordBatch>) -> Result<Vec<u8>, StoreError> {
    encode_with(table, schema, batches, false)
}

/// `encode`, leaving out the Arrow schema that readers of plain Parquet use for the exact types
/// (`skip_arrow_metadata`: a Delta table's schema is in its log).
pub fn encode_with(table: &str, schema: &SchemaRef, batches: impl IntoIterator<Item = RecordBatch>, skip_arrow_metadata: bool) -> Result<Vec<u8>, StoreError> {
    let encode = encode_error(table);
    let props = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
    let options = parquet::arrow::arrow_writer::ArrowWriterOptions::new().with_properties(props).with_skip_arrow_metadata(skip_arrow_metadata);
    let mut writer = ArrowWriter::try_new_with_options(Vec::new(), schema.clone(), options).map_err(&encode)?;
    for batch in batches {
        writer.write(&batch).map_err(&encode)?;
    }
    writer.into_inner().map_err(&encode)
}

/// Rows per row group of a slice file: a refresh re-encodes only the groups its changed rows
/// fall in and copies the others byte for byte (`patch`). Smaller groups encode less per
/// change but make every file larger (per-chunk metadata, less to compress together): at 512
/// the lake is about 1.14x what whole-slice groups take (1.4x at 256, 1.9x at 128).
pub const FILE_GROUP_ROWS: usize = 512;

/// The key-value entry of a slice file naming where its slice ends (the next slice's start;
/// `end`: the partition's end). A file is patched only for the slice it was written for: an
/// export that did not commit may have cut the slice anew.
const SLICE_TO_KEY: &str = "helpscout_etl.slice_to";

fn slice_to_text(to: Option<i64>) -> String {
    to.map_or_else(|| "end".to_string(), |t| t.to_string())
}

/// Small row groups with statistics per column chunk (their key ranges are what `patch` goes
/// by) and no page index (a copied chunk's would have to be carried along).
fn slice_options(to: Option<i64>) -> ArrowWriterOptions {
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(FILE_GROUP_ROWS))
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_offset_index_disabled(true)
        .set_key_value_metadata(Some(vec![KeyValue::new(SLICE_TO_KEY.to_string(), slice_to_text(to))]))
        .build();
    ArrowWriterOptions::new().with_properties(props)
}

fn encode_error(table: &str) -> impl Fn(parquet::errors::ParquetError) -> StoreError + '_ {
    move |e| StoreError::LakeEncode { table: table.into(), reason: e.to_string() }
}

/// Encodes the rows of the slice ending at `to` as one hive slice file.
pub fn encode_slice(table: &str, schema: &SchemaRef, batch: &RecordBatch, to: Option<i64>) -> Result<Vec<u8>, StoreError> {
    let mut writer = ArrowWriter::try_new_with_options(Vec::new(), schema.clone(), slice_options(to)).map_err(encode_error(table))?;
    writer.write(batch).map_err(encode_error(table))?;
    writer.into_inner().map_err(encode_error(table))
}

/// A slice file read back to be patched: its row groups' key ranges and rows.
pub struct SliceFile {
    body: Bytes,
    /// Its metadata, with the Arrow schema it was written from.
    reader: ArrowReaderMetadata,
    /// Per row group: the smallest and largest key, and the rows.
    pub groups: Vec<(i64, i64, usize)>,
}

/// The Parquet columns a slice file of `schema` has, as its writer lays them out: what a file
/// must have to be patched (computed once per export, not per file).
pub fn slice_columns(schema: &SchemaRef) -> Option<Vec<ColumnDescPtr>> {
    let (writer, _) = ArrowWriter::try_new_with_options(Vec::new(), schema.clone(), slice_options(None)).and_then(ArrowWriter::into_serialized_writer).ok()?;
    Some(writer.schema_descr().columns().to_vec())
}

impl SliceFile {
    /// The file of the slice ending at `to`, keyed by `key_column`; None when it cannot be
    /// patched (written for another slice or by an older version, with other `columns` than
    /// `slice_columns`, or without the key's statistics): the slice is then written whole.
    pub fn read(body: Bytes, columns: &[ColumnDescPtr], key_column: &str, to: Option<i64>) -> Option<Self> {
        let meta = ParquetMetaDataReader::new().parse_and_finish(&body).ok()?;
        let file = meta.file_metadata();
        let written_for = file.key_value_metadata()?.iter().find(|kv| kv.key == SLICE_TO_KEY)?.value.clone()?;
        if written_for != slice_to_text(to) {
            return None;
        }
        if file.schema_descr().columns() != columns {
            return None;
        }
        let leaf = file.schema_descr().columns().iter().position(|c| c.path().parts() == [key_column])?;
        let mut groups = Vec::with_capacity(meta.num_row_groups());
        for group in meta.row_groups() {
            let Some(Statistics::Int64(stats)) = group.column(leaf).statistics() else { return None };
            groups.push((*stats.min_opt()?, *stats.max_opt()?, usize::try_from(group.num_rows()).ok()?));
        }
        let reader = ArrowReaderMetadata::try_new(Arc::new(meta), ArrowReaderOptions::new()).ok()?;
        Some(SliceFile { body, reader, groups })
    }

    /// The rows of row groups `[a, b)`, decoded into `schema` (the file's own: it was written
    /// from it).
    pub fn rows(&self, a: usize, b: usize, schema: &SchemaRef) -> Result<RecordBatch, String> {
        let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(self.body.clone(), self.reader.clone())
            .with_row_groups((a..b).collect())
            .with_batch_size(8_192)
            .build()
            .map_err(|e| e.to_string())?;
        let batches = reader.collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string())?;
        let batches = batches.iter().map(|b| conform(b, schema)).collect::<Result<Vec<_>, _>>()?;
        arrow::compute::concat_batches(schema, &batches).map_err(|e| e.to_string())
    }
}

/// One part of a patched slice file, in key order: a row group of the base as it is, or rows
/// encoded anew (in groups of `FILE_GROUP_ROWS`).
pub enum Segment {
    Copy(usize),
    Rows(RecordBatch),
}

/// A slice file made of `base`'s row groups and new rows: the copied groups are spliced byte
/// for byte, only the new rows are encoded.
pub fn patch(table: &str, schema: &SchemaRef, base: &SliceFile, segments: Vec<Segment>, to: Option<i64>) -> Result<Vec<u8>, StoreError> {
    let fail = encode_error(table);
    let (mut writer, factory) = ArrowWriter::try_new_with_options(Vec::new(), schema.clone(), slice_options(to)).and_then(ArrowWriter::into_serialized_writer).map_err(&fail)?;
    let mut index = 0;
    for segment in segments {
        match segment {
            Segment::Copy(g) => {
                let group = base.reader.metadata().row_group(g);
                let mut out = writer.next_row_group().map_err(&fail)?;
                for column in group.columns() {
                    let close = ColumnCloseResult {
                        bytes_written: column.compressed_size() as u64,
                        rows_written: group.num_rows() as u64,
                        metadata: column.clone(),
                        bloom_filter: None,
                        column_index: None,
                        offset_index: None,
                    };
                    out.append_column(&base.body, close).map_err(&fail)?;
                }
                out.close().map_err(&fail)?;
                index += 1;
            }
            Segment::Rows(batch) => {
                for offset in (0..batch.num_rows()).step_by(FILE_GROUP_ROWS) {
                    let part = batch.slice(offset, FILE_GROUP_ROWS.min(batch.num_rows() - offset));
                    let mut columns = factory.create_column_writers(index).map_err(&fail)?;
                    let mut next = columns.iter_mut();
                    for (field, array) in schema.fields().iter().zip(part.columns()) {
                        for leaf in compute_leaves(field, array).map_err(&fail)? {
                            next.next().ok_or_else(|| StoreError::LakeEncode { table: table.into(), reason: "more leaves than columns".into() })?.write(&leaf).map_err(&fail)?;
                        }
                    }
                    let mut out = writer.next_row_group().map_err(&fail)?;
                    for column in columns {
                        column.close().map_err(&fail)?.append_to_row_group(&mut out).map_err(&fail)?;
                    }
                    out.close().map_err(&fail)?;
                    index += 1;
                }
            }
        }
    }
    writer.into_inner().map_err(&fail)
}

/// A batch in `schema`'s types (DuckDB's Arrow output, a file's rows read back): list item
/// names, nullability.
pub(super) fn conform(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, String> {
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

/// Hive Parquet: `data.parquet` for a partition's first slice, `data-{start}.parquet` for the
/// others, each put whole over the previous one.
pub struct Hive<'a> {
    pub files: &'a Files,
    pub schema: SchemaRef,
    /// Its files are slices a refresh patches (a keyed table's): cut in `FILE_GROUP_ROWS`
    /// groups. The others (the log's blocks, unpartitioned tables) keep one group per file
    /// up to the writer's default, which compresses better.
    pub patchable: bool,
}

/// The hive file of the slice starting at `start`.
pub fn hive_file(start: i64) -> String {
    if start == FIRST { super::DATA_FILE.to_string() } else { format!("data-{start}.parquet") }
}

/// The key of the hive file of `partition`'s slice starting at `start`.
fn hive_key(partition: &Partition, start: i64) -> String {
    format!("{}/{}", partition.key(), hive_file(start))
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
        let mut pieces = pieces.peekable();
        if pieces.peek().is_none() {
            self.files.delete(&hive_key(partition, from))?;
            return Ok(0);
        }
        let mut bytes = 0;
        for piece in pieces {
            let Piece { start, end, rows } = piece?;
            let body = match self.patchable {
                true => encode_slice(&partition.table, &self.schema, &rows, end)?,
                false => encode(&partition.table, &self.schema, [rows])?,
            };
            bytes += body.len() as u64;
            self.files.put(&hive_key(partition, start), body)?;
        }
        Ok(bytes)
    }

    fn base(&self, partition: &Partition, from: i64) -> Result<Option<Bytes>, StoreError> {
        if !self.patchable {
            return Ok(None);
        }
        self.files.get(&hive_key(partition, from))
    }

    fn replace_encoded(&mut self, partition: &Partition, from: i64, body: Vec<u8>) -> Result<u64, StoreError> {
        let bytes = body.len() as u64;
        self.files.put(&hive_key(partition, from), body)?;
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
    use arrow::array::{Int64Array, StringArray, TimestampMicrosecondArray};
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    use std::sync::Arc;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("created_at", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
            Field::new("id", DataType::Int64, false),
            Field::new("subject", DataType::Utf8, true),
        ]))
    }

    fn rows(keys: &[i64], subject: &str) -> RecordBatch {
        let ids: Vec<i64> = (0..keys.len() as i64).collect();
        RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(TimestampMicrosecondArray::from(keys.to_vec()).with_timezone("UTC")),
                Arc::new(Int64Array::from(ids)),
                Arc::new(StringArray::from(vec![subject; keys.len()])),
            ],
        )
        .unwrap()
    }

    fn read_back(body: Vec<u8>) -> (Vec<usize>, Vec<String>) {
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(Bytes::from(body)).unwrap();
        let groups = reader.metadata().row_groups().iter().map(|g| g.num_rows() as usize).collect();
        let mut subjects = Vec::new();
        for batch in reader.build().unwrap() {
            let batch = batch.unwrap();
            let column = batch.column(2).as_any().downcast_ref::<StringArray>().unwrap().clone();
            subjects.extend(column.iter().map(|s| s.unwrap_or_default().to_string()));
        }
        (groups, subjects)
    }

    #[test]
    fn a_slice_file_knows_its_groups_key_ranges_and_is_patched_only_for_its_own_slice() {
        const G: usize = FILE_GROUP_ROWS;
        let g = G as i64;
        let keys: Vec<i64> = (0..2 * g + 44).map(|i| 1_000 + i).collect();
        let body = encode_slice("t", &schema(), &rows(&keys, "old"), Some(1_000_000)).unwrap();
        let columns = slice_columns(&schema()).unwrap();
        let file = SliceFile::read(Bytes::from(body.clone()), &columns, "created_at", Some(1_000_000)).expect("patchable");
        assert_eq!(file.groups, [(1_000, 999 + g, G), (1_000 + g, 999 + 2 * g, G), (1_000 + 2 * g, 1_043 + 2 * g, 44)]);
        // Written for another slice (an export that did not commit cut it anew), for another
        // schema, or by a version that named no slice: written whole instead.
        assert!(SliceFile::read(Bytes::from(body.clone()), &columns, "created_at", None).is_none());
        assert!(SliceFile::read(Bytes::from(body.clone()), &columns, "created_at", Some(4_000)).is_none());
        let other = Arc::new(Schema::new(schema().fields().iter().take(2).cloned().collect::<Vec<_>>()));
        assert!(SliceFile::read(Bytes::from(body.clone()), &slice_columns(&other).unwrap(), "created_at", Some(1_000_000)).is_none());
        let plain = encode("t", &schema(), [rows(&keys, "old")]).unwrap();
        assert!(SliceFile::read(Bytes::from(plain), &columns, "created_at", Some(1_000_000)).is_none());

        // Group 1 replaced by G + 2 new rows: groups 0 and 2 copied byte for byte around them.
        let new_rows = rows(&(0..g + 2).map(|i| 1_000 + g + i).collect::<Vec<_>>(), "new");
        let patched = patch("t", &schema(), &file, vec![Segment::Copy(0), Segment::Rows(new_rows), Segment::Copy(2)], Some(1_000_000)).unwrap();
        let (groups, subjects) = read_back(patched.clone());
        assert_eq!(groups, [G, G, 2, 44], "new rows in groups of FILE_GROUP_ROWS");
        let expected: Vec<String> = [("old", G), ("new", G + 2), ("old", 44)].iter().flat_map(|(s, n)| vec![s.to_string(); *n]).collect();
        assert_eq!(subjects, expected);
        let chunk = |body: &[u8], g: usize| -> Vec<Vec<u8>> {
            let meta = ParquetMetaDataReader::new().parse_and_finish(&Bytes::from(body.to_vec())).unwrap();
            meta.row_group(g).columns().iter().map(|c| {
                let (start, len) = c.byte_range();
                body[start as usize..(start + len) as usize].to_vec()
            }).collect()
        };
        assert_eq!(chunk(&patched, 0), chunk(&body, 0));
        assert_eq!(chunk(&patched, 3), chunk(&body, 2));
        let again = SliceFile::read(Bytes::from(patched), &columns, "created_at", Some(1_000_000)).expect("a patched file is patchable");
        assert_eq!(again.groups.len(), 4);
    }

    #[test]
    fn only_a_patchable_tables_files_are_cut_in_small_row_groups() {
        let dir = tempfile::tempdir().unwrap();
        let files = Files::open(&super::super::LakeLocation::Local(dir.path().to_path_buf()), &|_| None).unwrap();
        let part = Partition { table: "t".into(), by: None };
        let keys: Vec<i64> = (0..FILE_GROUP_ROWS as i64 + 10).collect();
        let groups = |patchable: bool| {
            let mut hive = Hive { files: &files, schema: schema(), patchable };
            hive.replace(&part, FIRST, None, pieces(vec![(FIRST, rows(&keys, "x"))], None)).unwrap();
            let body = files.get("t/data.parquet").unwrap().unwrap();
            (read_back(body.to_vec()).0, hive.base(&part, FIRST).unwrap().is_some())
        };
        assert_eq!(groups(true), (vec![FILE_GROUP_ROWS, 10], true));
        assert_eq!(groups(false), (vec![FILE_GROUP_ROWS + 10], false), "the log's blocks and small tables: one group, never patched");
    }

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
