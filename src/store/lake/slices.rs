//! Which slices of the lake to rewrite: a commit records the slice key of every row it changes
//! (`_helpscout_stale_rows`), the export rewrites those slices from DuckDB — the committed
//! truth — and hands the files to the lake's publisher, then clears the marks in the same
//! DuckDB transaction. A crash before that commit leaves the marks, and the next run rewrites
//! the same slices again.
//!
//! Tables are partitioned by the month of a column that never changes for a record
//! (`created_at_month=2024-06/`); small tables are one partition.

use std::collections::{BTreeMap, BTreeSet};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use std::sync::Arc;

use super::publish::{FIRST, Partition, Piece, Publisher, Segment, SliceFile, conform, patch, pieces, slice_columns};
use super::{Lake, LakeFormat};
use crate::store::ddl::{DIRTY_TABLE, LAKE_TABLES, LOG_TABLE, SLICES_TABLE, STALE_ROWS_TABLE, literal, partition_sql, quote_ident};
use crate::store::{StoreError, Tx};
use crate::catalog::Table;

fn db(table: &str) -> impl Fn(duckdb::Error) -> StoreError + '_ {
    move |source| StoreError::Db { doing: format!("reading {table} for the lake"), source }
}

/// Name of the hive partition key derived from a column.
pub fn partition_key(column: &str) -> String {
    format!("{column}_month")
}

/// The name of the first slice's file of a hive partition.
pub const DATA_FILE: &str = "data.parquet";

/// The partition of `table` holding `value`.
fn partition(table: &Table, value: &str) -> Partition {
    Partition { table: table.name.to_string(), by: table.partition_month_of.map(|c| (partition_key(c), value.to_string())) }
}

/// A slice is cut in pieces of this many rows once it holds more than twice as many: a
/// changed row rewrites at most a few thousand rows, whatever the account's size.
pub const SLICE_ROWS: usize = 1_000;

/// How many pieces of a slice one read from DuckDB fetches: a few megabytes at the most.
const PIECES_PER_READ: usize = 8;

/// What one export commit did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Exported {
    pub partitions: u64,
    pub files: u64,
    pub bytes: u64,
    /// Stale slices remain (the commit's time budget ran out).
    pub more: bool,
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

    /// Makes `lake` the one `table` is exported to. A table exported to another lake before (or
    /// to none) is marked stale whole, so the new lake gets all of it; a hive lake on local disk
    /// met with no record is the folder earlier versions wrote, taken as it is. Returns whether
    /// the table is new to the lake.
    fn claim_lake(&self, lake: &Lake, table: &str, partitioned_by: Option<&Table>) -> Result<bool, StoreError> {
        let identity = lake.spec.identity();
        let held: Option<String> = self
            .conn
            .query_row(&format!("SELECT lake FROM {LAKE_TABLES} WHERE table_name = ?"), [table], |r| r.get(0))
            .map(Some)
            .or_else(|e| if matches!(e, duckdb::Error::QueryReturnedNoRows) { Ok(None) } else { Err(e) })
            .map_err(db(table))?;
        if held.as_deref() == Some(identity.as_str()) {
            return Ok(false);
        }
        let adopt = held.is_none() && lake.spec.format == LakeFormat::Parquet && lake.spec.location.local().is_some();
        self.conn
            .execute(&format!("INSERT OR REPLACE INTO {LAKE_TABLES} VALUES (?, ?, NULL, now())"), duckdb::params![table, identity])
            .map_err(db(table))?;
        if adopt {
            return Ok(false);
        }
        if let Some(t) = partitioned_by {
            for internal in [SLICES_TABLE, STALE_ROWS_TABLE] {
                self.conn.execute(&format!("DELETE FROM {internal} WHERE table_name = ?"), [table]).map_err(db(table))?;
            }
            self.conn
                .execute_batch(&format!("INSERT OR IGNORE INTO {DIRTY_TABLE} SELECT DISTINCT {}, {} FROM {}", literal(table), partition_sql(t), quote_ident(table)))
                .map_err(db(table))?;
        }
        Ok(true)
    }

    /// Records the Delta version that holds what this transaction exported of `table`.
    fn record_lake_version(&self, table: &str, version: i64) -> Result<(), StoreError> {
        self.conn
            .execute(&format!("UPDATE {LAKE_TABLES} SET delta_version = ?, exported_at = now() WHERE table_name = ?"), duckdb::params![version, table])
            .map(|_| ())
            .map_err(db(table))
    }

    /// Rewrites stale slices of `table` from DuckDB — only the slices holding changed rows —
    /// and clears their marks, until none is left or `budget` has passed (at least one slice is
    /// written). Commit after each call: the marks and the slice list move with the files, and a
    /// Delta table's new version is recorded with them.
    pub fn export_stale(&self, lake: &Lake, table: &Table, schema: &SchemaRef, budget: std::time::Duration) -> Result<Exported, StoreError> {
        let started = std::time::Instant::now();
        let name = table.name;
        let mut done = Exported::default();
        self.claim_lake(lake, name, Some(table))?;
        // What is stale, and the slices held, read once for the whole table. The row marks of
        // a partition stale whole are not read: a backfill's export would otherwise hold one
        // per row of the table (a million threads at 200,000 conversations) in memory at once.
        let wholes: BTreeSet<String> = self.strings(&format!("SELECT partition_value FROM {DIRTY_TABLE} WHERE table_name = ?"), &[&name], name)?.into_iter().collect();
        let mut marks: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        let marked = format!(
            "SELECT DISTINCT s.partition_value, s.at_us FROM {STALE_ROWS_TABLE} s WHERE s.table_name = ? \
             AND NOT EXISTS (SELECT 1 FROM {DIRTY_TABLE} d WHERE d.table_name = s.table_name AND d.partition_value = s.partition_value) ORDER BY 1, 2"
        );
        for (value, at) in self.keyed_longs(&marked, name)? {
            marks.entry(value).or_default().push(at);
        }
        let partitions: BTreeSet<String> = marks.keys().cloned().chain(wholes.iter().cloned()).collect();
        if partitions.is_empty() {
            return Ok(done);
        }
        let mut book = SliceBook::default();
        for (value, start, rows) in self.slice_rows(name)? {
            book.held.entry(value).or_default().insert(start, rows);
        }
        // Every stale slice, in the order they are written.
        let mut plans = Vec::new();
        for value in partitions {
            let keys = marks.remove(&value).unwrap_or_default();
            let mut starts: Vec<i64> = book.held.get(&value).map(|s| s.keys().copied().collect()).unwrap_or_default();
            if starts.first() != Some(&FIRST) {
                starts.insert(0, FIRST);
            }
            // A whole-partition mark (unpartitioned tables, files of older versions) stales every slice.
            let whole = wholes.contains(&value);
            let mut stale: Vec<usize> = if whole {
                (0..starts.len()).collect()
            } else {
                let mut idx: Vec<usize> = keys.iter().map(|k| starts.partition_point(|s| s <= k).saturating_sub(1)).collect();
                idx.dedup();
                idx
            };
            stale.sort_unstable();
            stale.dedup();
            let marks = if whole { Vec::new() } else { keys };
            plans.push(PartitionPlan { value, starts, stale, whole, marks });
        }
        let mut prefetch = Prefetch::plan(table, &plans, &book);
        let mut publisher = lake.publisher(name, table.partition_month_of.map(partition_key), schema, table.partition_month_of.is_some())?;
        for PartitionPlan { value, starts, stale, whole, .. } in plans {
            if started.elapsed() >= budget && done.files > 0 {
                done.more = true;
                break;
            }
            let mut written = 0;
            let mut ranges = Vec::new();
            for &i in &stale {
                if started.elapsed() >= budget && done.files > 0 {
                    break;
                }
                let (from, to) = (starts[i], starts.get(i + 1).copied());
                // Rewrites so far added starts only before `to`: this slice's count is as held.
                let held = book.rows(&value, from);
                let read = prefetch.take(self, publisher.as_ref(), table, schema, &value, from)?;
                let (bytes, pieces) = self.write_slice(publisher.as_mut(), table, schema, &value, from, to, held, read)?;
                book.rewrite(&value, from, pieces);
                done.bytes += bytes;
                done.files += 1;
                written += 1;
                ranges.push((from, to));
            }
            // Every stale slice written: every mark of the partition goes.
            if written == stale.len() {
                ranges = vec![(FIRST, None)];
            }
            for (from, to) in ranges {
                book.clear_marks(&value, from, to);
            }
            if whole {
                // The slices not written yet keep the whole mark as marks of their own.
                book.marked.extend(stale[written..].iter().map(|&i| (value.clone(), starts[i])));
                book.whole_cleared.push(value.clone());
            }
            if written < stale.len() {
                done.more = true;
                break;
            }
            book.sweep(publisher.as_mut(), table, &value)?;
            done.partitions += 1;
        }
        self.record_book(name, &book)?;
        if let Some(version) = publisher.finish()? {
            self.record_lake_version(name, version)?;
        }
        Ok(done)
    }

    /// Inserts `rows` (SQL value tuples) into `into`, a few thousand per statement at the most
    /// (a backfill at a million conversations).
    fn insert_values(&self, into: &str, rows: &[String], table: &str) -> Result<(), StoreError> {
        for chunk in rows.chunks(2_000) {
            self.conn.execute(&format!("INSERT INTO {into} VALUES {}", chunk.join(", ")), []).map_err(db(table))?;
        }
        Ok(())
    }

    /// Writes back what an export changed of the slice list and the marks, in a few
    /// statements: the rewritten partitions' slices anew, every cleared mark at once, and the
    /// marks a whole partition's slices keep when the budget ended before them.
    fn record_book(&self, name: &str, book: &SliceBook) -> Result<(), StoreError> {
        let table = literal(name);
        let values = |rows: Vec<String>, into: &str| self.insert_values(into, &rows, name);
        let within = |partitions: &mut dyn Iterator<Item = &String>| partitions.map(|v| literal(v)).collect::<Vec<_>>().join(", ");
        if !book.cleared.is_empty() {
            self.conn
                .execute(&format!("DELETE FROM {STALE_ROWS_TABLE} WHERE table_name = {table} AND ({})", book.cleared.join(" OR ")), [])
                .map_err(db(name))?;
        }
        // Outside every cleared range: they are the starts of slices not written.
        values(book.marked.iter().map(|(v, at)| format!("({table}, {}, {at})", literal(v))).collect(), STALE_ROWS_TABLE)?;
        if !book.whole_cleared.is_empty() {
            self.conn
                .execute(&format!("DELETE FROM {DIRTY_TABLE} WHERE table_name = {table} AND partition_value IN ({})", within(&mut book.whole_cleared.iter())), [])
                .map_err(db(name))?;
        }
        if !book.touched.is_empty() {
            self.conn
                .execute(&format!("DELETE FROM {SLICES_TABLE} WHERE table_name = {table} AND partition_value IN ({})", within(&mut book.touched.iter())), [])
                .map_err(db(name))?;
        }
        let table = &table;
        let slices = book
            .touched
            .iter()
            .filter_map(|v| book.held.get(v).map(|slices| (v, slices)))
            .flat_map(|(v, slices)| slices.iter().map(move |(start, rows)| format!("({table}, {}, {start}, {rows})", literal(v))))
            .collect();
        values(slices, SLICES_TABLE)
    }

    /// Rewrites the slice `[from, to)` of one partition from DuckDB, cut in pieces when it grew
    /// too large, and records its pieces. Returns the bytes written. The slice's keys are read
    /// first, then each piece's rows as it is written: a backfill's partition (the whole month
    /// is one slice then) never sits in memory at once, whatever the account's size.
    /// A slice last written with at most twice `SLICE_ROWS` rows (`held`, a refresh's) is read
    /// in one query instead; the others (a new partition's, a grown one's) key first.
    /// `read`: the slice's rows when a `Prefetch` read them already — only its changed row
    /// groups' when the slice's file can be patched. Returns the bytes written and the pieces
    /// now holding the slice (start, rows), for the slice list.
    #[allow(clippy::too_many_arguments)]
    fn write_slice(&self, publisher: &mut dyn Publisher, table: &Table, schema: &SchemaRef, value: &str, from: i64, to: Option<i64>, held: Option<i64>, read: Option<Prefetched>) -> Result<(u64, Vec<(i64, usize)>), StoreError> {
        let name = table.name;
        let read = match read {
            Some(Prefetched { rows, patch: Some(plan) }) => match plan.segments(rows, schema, table)? {
                // Still one slice, not empty: the file is patched.
                Some((segments, total)) if total > 0 && total <= 2 * SLICE_ROWS => {
                    let body = patch(name, schema, &plan.base, segments, to)?;
                    return Ok((publisher.replace_encoded(&partition(table, value), from, body)?, vec![(from, total)]));
                }
                // It grew past a slice or emptied: written whole from DuckDB.
                _ => None,
            },
            Some(Prefetched { rows, patch: None }) => Some(rows),
            None => None,
        };
        let (columns, order) = select_parts(table, schema);
        let key = table.partition_month_of.map(quote_ident);
        let filter = match (&key, slice_bounds(value, from, to)) {
            (Some(c), Some((lo, hi))) => range_sql(c, lo, hi),
            (Some(c), None) => format!("{c} IS NULL"),
            (None, _) => "true".to_string(),
        };
        let table_sql = quote_ident(name);
        let select = format!("SELECT {columns} FROM {table_sql} WHERE {filter}");
        let whole = match (read, held) {
            (Some(batch), _) => Some(batch),
            (None, Some(n)) if n as usize <= 2 * SLICE_ROWS => Some(self.read_batch(&format!("{select} ORDER BY {order}"), name, schema)?),
            _ => None,
        };
        let keys: Vec<i64> = match (&whole, table.partition_month_of) {
            (Some(batch), Some(col)) => key_micros(batch, schema, col, name)?,
            (Some(batch), None) => vec![FIRST; batch.num_rows()],
            (None, _) => self.slice_keys(&key, &table_sql, &filter, &order, name)?,
        };
        let part = partition(table, value);
        // An empty slice goes, unless it is the partition's first (which stays, possibly empty).
        if keys.is_empty() && from != FIRST {
            return Ok((publisher.replace(&part, from, to, pieces(vec![], to))?, vec![]));
        }
        let mut bounds = vec![0];
        bounds.extend(cuts(&keys));
        bounds.push(keys.len());
        let mut starts = Vec::new();
        for w in bounds.windows(2) {
            let (a, b) = (w[0], w[1]);
            let start = if a == 0 { from } else { keys[a] };
            starts.push((start, b - a));
        }
        if let Some(batch) = whole {
            let mut offset = 0;
            let held: Vec<_> = starts
                .iter()
                .map(|&(start, rows)| {
                    let piece = batch.slice(offset, rows);
                    offset += rows;
                    (start, piece)
                })
                .collect();
            return Ok((publisher.replace(&part, from, to, pieces(held, to))?, starts));
        }
        // Pieces are read PIECES_PER_READ at a time (each read scans the table's key column).
        // Cuts never fall between equal keys: a group is exactly the rows of its key range.
        let mut reads = Vec::new();
        for (g, group) in bounds.windows(2).collect::<Vec<_>>().chunks(PIECES_PER_READ).enumerate() {
            let (a, b) = (group[0][0], group[group.len() - 1][1]);
            let mut range = String::new();
            if let Some(c) = key.as_ref().filter(|_| bounds.len() > 2) {
                if a > 0 {
                    range.push_str(&format!(" AND {c} >= make_timestamp({}::BIGINT)::TIMESTAMPTZ", keys[a]));
                }
                if b < keys.len() {
                    range.push_str(&format!(" AND {c} < make_timestamp({}::BIGINT)::TIMESTAMPTZ", keys[b]));
                }
            }
            let sql = format!("SELECT {columns} FROM {table_sql} WHERE {filter}{range} ORDER BY {order}");
            let first = g * PIECES_PER_READ;
            let ends = (first..first + group.len()).map(|i| starts.get(i + 1).map_or(to, |(next, _)| Some(*next)));
            reads.push((sql, starts[first..first + group.len()].iter().zip(ends).map(|(&(start, rows), end)| (start, end, rows)).collect()));
        }
        let read = move |(sql, group): (String, Vec<(i64, Option<i64>, usize)>)| -> Vec<Result<Piece, StoreError>> {
            match self.read_batch(&sql, name, schema) {
                Ok(batch) => {
                    let mut offset = 0;
                    group
                        .into_iter()
                        .map(|(start, end, rows)| {
                            let piece = batch.slice(offset.min(batch.num_rows()), rows.min(batch.num_rows().saturating_sub(offset)));
                            offset += rows;
                            Ok(Piece { start, end, rows: piece })
                        })
                        .collect()
                }
                Err(e) => vec![Err(e)],
            }
        };
        Ok((publisher.replace(&part, from, to, Box::new(reads.into_iter().flat_map(read)))?, starts))
    }

    /// Every slice of a table: partition, start, rows when last written.
    fn slice_rows(&self, table: &str) -> Result<Vec<(String, i64, i64)>, StoreError> {
        let mut stmt = self.conn.prepare(&format!("SELECT partition_value, slice_start, rows FROM {SLICES_TABLE} WHERE table_name = ? ORDER BY 1, 2")).map_err(db(table))?;
        let rows = stmt.query_map([table], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).map_err(db(table))?.collect::<Result<Vec<_>, _>>().map_err(db(table))?;
        Ok(rows)
    }

    /// The keys of a slice's rows in order (all `FIRST` in an unpartitioned table).
    fn slice_keys(&self, key: &Option<String>, table_sql: &str, filter: &str, order: &str, name: &str) -> Result<Vec<i64>, StoreError> {
        match key {
            Some(c) => self.longs(&format!("SELECT coalesce(epoch_us({c}), CAST({FIRST} AS BIGINT)) FROM {table_sql} WHERE {filter} ORDER BY {order}"), &[], name),
            None => {
                let n: i64 = self.conn.query_row(&format!("SELECT count(*) FROM {table_sql}"), [], |r| r.get(0)).map_err(db(name))?;
                Ok(vec![FIRST; n as usize])
            }
        }
    }

    /// The rows a query selects, as one batch of the table's schema.
    fn read_batch(&self, sql: &str, name: &str, schema: &SchemaRef) -> Result<RecordBatch, StoreError> {
        let mut stmt = self.conn.prepare(sql).map_err(db(name))?;
        let batches: Vec<RecordBatch> = stmt.query_arrow([]).map_err(db(name))?.collect();
        let batch = arrow::compute::concat_batches(&stmt_schema(&batches, schema), &batches).map_err(|e| StoreError::LakeEncode { table: name.into(), reason: e.to_string() })?;
        conform(&batch, schema).map_err(|reason| StoreError::LakeEncode { table: name.into(), reason })
    }

    /// Rewrites the integration log's files that hold events of `run_id`: each day partition
    /// (`helpscout_log/day=YYYY-MM-DD/`) is cut in files of `LOG_BLOCK` event ids
    /// (`data-{block}.parquet`), so a run rewrites the blocks its events fall in, not the day.
    /// Stops once `budget` has passed (after one block at least): the blocks not written yet
    /// are marked stale, and `more` asks for another commit with `run_id` None, which writes
    /// the marked blocks. A backfill's log (hundreds of thousands of events) so never holds the
    /// file for one long commit, and a crash between the commits leaves the marks behind.
    pub fn export_log(&self, lake: &Lake, run_id: Option<&str>, budget: std::time::Duration) -> Result<Exported, StoreError> {
        let started = std::time::Instant::now();
        let mut done = Exported::default();
        let day = LOG_DAY_SQL;
        let block = format!("event_id // {LOG_BLOCK}");
        // The run's own events, and the blocks other writers (the outbox's copy, retries) or an
        // earlier commit whose budget ran out marked.
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT DISTINCT {day}, {block} FROM {LOG_TABLE} WHERE run_id = ? UNION SELECT partition_value, at_us FROM {STALE_ROWS_TABLE} WHERE table_name = '{LOG_TABLE}' ORDER BY 1, 2"
            ))
            .map_err(db(LOG_TABLE))?;
        let mut blocks: Vec<(String, i64)> = stmt.query_map([run_id], |r| Ok((r.get(0)?, r.get(1)?))).map_err(db(LOG_TABLE))?.collect::<Result<_, _>>().map_err(db(LOG_TABLE))?;
        self.conn.execute(&format!("DELETE FROM {STALE_ROWS_TABLE} WHERE table_name = ?"), [LOG_TABLE]).map_err(db(LOG_TABLE))?;
        if self.claim_lake(lake, LOG_TABLE, None)? {
            // New to this lake: every day of the log goes there.
            let mut stmt = self.conn.prepare(&format!("SELECT DISTINCT {day}, {block} FROM {LOG_TABLE} ORDER BY 1, 2")).map_err(db(LOG_TABLE))?;
            blocks = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).map_err(db(LOG_TABLE))?.collect::<Result<_, _>>().map_err(db(LOG_TABLE))?;
        }
        if blocks.is_empty() {
            return Ok(done);
        }
        let schema = self.conn.prepare(&format!("SELECT * FROM {LOG_TABLE} LIMIT 0")).map_err(db(LOG_TABLE))?.query_arrow([]).map_err(db(LOG_TABLE))?.get_schema();
        let mut publisher = lake.publisher(LOG_TABLE, Some("day".into()), &schema, false)?;
        let day_of = |d: &str| Partition { table: LOG_TABLE.into(), by: Some(("day".into(), d.to_string())) };
        // A day written whole by an earlier version (hive `data.parquet`) is cut in blocks at once.
        let whole_days: BTreeSet<String> = blocks.iter().map(|b| b.0.clone()).filter(|d| lake.holds_whole_day(&day_of(d))).collect();
        for d in &whole_days {
            let mut stmt = self.conn.prepare(&format!("SELECT DISTINCT {block} FROM {LOG_TABLE} WHERE {day} = ?")).map_err(db(LOG_TABLE))?;
            let all: Vec<i64> = stmt.query_map([d], |r| r.get(0)).map_err(db(LOG_TABLE))?.collect::<Result<_, _>>().map_err(db(LOG_TABLE))?;
            blocks.extend(all.into_iter().map(|b| (d.to_string(), b)));
        }
        blocks.sort();
        blocks.dedup();
        let mut written = 0;
        for (d, b) in &blocks {
            if started.elapsed() >= budget && written > 0 {
                break;
            }
            let lo = b * LOG_BLOCK;
            let mut stmt = self
                .conn
                .prepare(&format!("SELECT * FROM {LOG_TABLE} WHERE event_id >= ? AND event_id < ? AND {day} = ? ORDER BY event_id"))
                .map_err(db(LOG_TABLE))?;
            let batches: Vec<RecordBatch> = stmt.query_arrow(duckdb::params![lo, lo + LOG_BLOCK, d]).map_err(db(LOG_TABLE))?.collect();
            let batch = arrow::compute::concat_batches(&schema, &batches).map_err(|e| StoreError::LakeEncode { table: LOG_TABLE.into(), reason: e.to_string() })?;
            // A block whose rows all moved to another day goes.
            let pieces = if batch.num_rows() == 0 { vec![] } else { vec![(*b, batch)] };
            done.bytes += publisher.replace(&day_of(d), *b, Some(b + 1), super::publish::pieces(pieces, Some(b + 1)))?;
            done.files += 1;
            written += 1;
        }
        let left = &blocks[written..];
        if !left.is_empty() {
            let marks: Vec<String> = left.iter().map(|(d, b)| format!("({}, {}, {b})", literal(LOG_TABLE), literal(d))).collect();
            self.insert_values(STALE_ROWS_TABLE, &marks, LOG_TABLE)?;
            done.more = true;
        }
        // A whole day's old file goes once every block of the day is written.
        for d in whole_days.into_iter().filter(|d| !left.iter().any(|(l, _)| l == d)) {
            publisher.replace(&day_of(&d), FIRST, Some(FIRST + 1), pieces(vec![], Some(FIRST + 1)))?;
        }
        done.partitions = blocks[..written].iter().map(|(d, _)| d).collect::<BTreeSet<_>>().len() as u64;
        if let Some(version) = publisher.finish()? {
            self.record_lake_version(LOG_TABLE, version)?;
        }
        Ok(done)
    }
}

/// The selected columns of an export read, and its order (partition column, then key).
fn select_parts(table: &Table, schema: &SchemaRef) -> (String, String) {
    let columns: Vec<String> = schema.fields().iter().map(|f| quote_ident(f.name())).collect();
    let order: Vec<String> = table.partition_month_of.into_iter().chain(table.primary_key.iter().copied()).map(quote_ident).collect();
    (columns.join(", "), order.join(", "))
}

/// The epoch-microsecond range `[lo, hi)` of the slice `[from, to)` of a month partition.
fn slice_bounds(value: &str, from: i64, to: Option<i64>) -> Option<(i64, i64)> {
    let (first, next) = month_bounds(value)?;
    Some((from.max(first), to.map_or(next, |t| t.min(next))))
}

fn range_sql(column: &str, lo: i64, hi: i64) -> String {
    format!("{column} >= make_timestamp({lo}::BIGINT)::TIMESTAMPTZ AND {column} < make_timestamp({hi}::BIGINT)::TIMESTAMPTZ")
}

/// The partition column of `batch` as epoch microseconds (`FIRST` where null).
fn key_micros(batch: &RecordBatch, schema: &SchemaRef, column: &str, name: &str) -> Result<Vec<i64>, StoreError> {
    let encode = |reason: String| StoreError::LakeEncode { table: name.into(), reason };
    let array = batch.column(schema.index_of(column).map_err(|e| encode(e.to_string()))?);
    let micros = arrow::compute::cast(array, &arrow::datatypes::DataType::Int64).map_err(|e| encode(e.to_string()))?;
    let micros = micros.as_any().downcast_ref::<arrow::array::Int64Array>().expect("cast to Int64");
    Ok((0..micros.len()).map(|i| if arrow::array::Array::is_null(micros, i) { FIRST } else { micros.value(i) }).collect())
}

/// The slice list of a table's partitions as an export rewrites them, kept in memory and written
/// back at its end (`record_book`): a statement per slice and per partition cost about a
/// millisecond each to parse and plan, several hundred of them in a refresh.
#[derive(Default)]
struct SliceBook {
    /// Partition → slice start → rows: as held, then as rewritten.
    held: BTreeMap<String, BTreeMap<i64, i64>>,
    /// Partitions whose slices changed (absent from `held`: the partition is gone).
    touched: BTreeSet<String>,
    /// The marks cleared, as SQL conditions on `_helpscout_stale_rows`.
    cleared: Vec<String>,
    /// Marks to add: (partition, slice start) of a whole partition's slices not written yet.
    marked: Vec<(String, i64)>,
    /// Partitions whose whole-partition mark (`_helpscout_dirty_partitions`) goes.
    whole_cleared: Vec<String>,
}

impl SliceBook {
    /// The rows of the slice starting at `from`, when the list holds it.
    fn rows(&self, value: &str, from: i64) -> Option<i64> {
        self.held.get(value).and_then(|slices| slices.get(&from)).copied()
    }

    /// Removes files of a partition that its slice list does not name (left by an interrupted
    /// export), and the whole partition when it holds no row.
    fn sweep(&mut self, publisher: &mut dyn Publisher, table: &Table, value: &str) -> Result<(), StoreError> {
        let part = partition(table, value);
        let slices = self.held.get(value);
        if table.partition_month_of.is_some() && slices.is_none_or(|s| s.values().sum::<i64>() == 0) {
            self.held.remove(value);
            self.touched.insert(value.to_string());
            return publisher.drop_partition(&part);
        }
        let kept: Vec<i64> = slices.map(|s| s.keys().copied().collect()).unwrap_or_default();
        publisher.sweep(&part, &kept)
    }

    /// The slice starting at `from` is now held by `pieces` (none: it is gone).
    fn rewrite(&mut self, value: &str, from: i64, pieces: Vec<(i64, usize)>) {
        let slices = self.held.entry(value.to_string()).or_default();
        slices.remove(&from);
        slices.extend(pieces.into_iter().map(|(start, rows)| (start, rows as i64)));
        self.touched.insert(value.to_string());
    }

    /// The marks of `[from, to)` of partition `value` go.
    fn clear_marks(&mut self, value: &str, from: i64, to: Option<i64>) {
        let lower = if from == FIRST { String::new() } else { format!(" AND at_us >= {from}") };
        let upper = to.map_or(String::new(), |t| format!(" AND at_us < {t}"));
        self.cleared.push(format!("(partition_value = {}{lower}{upper})", literal(value)));
    }
}

/// Slices one read from DuckDB fetches together, at the most (and about `GROUP_ROWS` rows).
const GROUP_SLICES: usize = 32;
const GROUP_ROWS: i64 = 16 * SLICE_ROWS as i64;

/// One partition's stale slices, as an export plans them.
struct PartitionPlan {
    value: String,
    /// Every slice's start, in order (the first is `FIRST`).
    starts: Vec<i64>,
    /// Indexes into `starts` of the slices to rewrite, in order.
    stale: Vec<usize>,
    /// Every slice is stale (a whole-partition mark): no changed keys to go by.
    whole: bool,
    /// The changed rows' keys, sorted (empty when `whole`).
    marks: Vec<i64>,
}

/// A planned slice of a `Prefetch`.
struct Planned {
    value: String,
    from: i64,
    to: Option<i64>,
    /// The slice's `[lo, hi)` in epoch microseconds.
    bounds: (i64, i64),
    /// Rows held when last written.
    rows: i64,
    /// The changed rows' keys within the slice.
    marks: Vec<i64>,
}

/// The rows a `Prefetch` read for one slice: all of them, or only those of the changed row
/// groups of the slice's file (`patch`).
struct Prefetched {
    rows: RecordBatch,
    patch: Option<SlicePatch>,
}

/// How a slice's file is patched: the runs of its row groups that changed rows fall in are
/// encoded again (their marked keys' rows read from DuckDB, the others decoded from the file),
/// the other groups are copied.
struct SlicePatch {
    base: SliceFile,
    /// Row groups `[a, b)` of the base and the key range `[lo, hi)` they cover.
    runs: Vec<(usize, usize, i64, i64)>,
    /// The slice's marked keys, sorted: only their rows are read from DuckDB; every other row
    /// of a run is as the base holds it (a row that changed has a mark at its key).
    marks: Vec<i64>,
}

impl SlicePatch {
    /// Which row groups of `base` the `marks` fall in, widened to every group sharing a key
    /// with a neighbour (a key's rows are then all inside a run or all outside). None when the
    /// file does not fit the slice `bounds`, when every group changed (nothing to copy), or
    /// when rows without a key changed. `marks` are sorted and distinct (as the export reads them).
    fn plan(base: SliceFile, bounds: (i64, i64), marks: &[i64]) -> Option<Self> {
        let groups = &base.groups;
        let n = groups.len();
        let fits = groups.iter().all(|(min, max, _)| bounds.0 <= *min && min <= max && *max < bounds.1)
            && groups.windows(2).all(|w| w[0].1 <= w[1].0);
        if n == 0 || !fits || marks.is_empty() || marks.contains(&FIRST) {
            return None;
        }
        // Group g covers [start g, start g+1): the first from the slice's lower bound.
        let starts: Vec<i64> = (0..n).map(|g| if g == 0 { bounds.0 } else { groups[g].0 }).collect();
        let mut dirty = vec![false; n];
        for k in marks {
            dirty[starts.partition_point(|s| s <= k).saturating_sub(1)] = true;
        }
        let shares = |g: usize| groups[g - 1].1 == groups[g].0;
        for g in 1..n {
            dirty[g] |= dirty[g - 1] && shares(g);
        }
        for g in (1..n).rev() {
            dirty[g - 1] |= dirty[g] && shares(g);
        }
        if dirty.iter().all(|d| *d) {
            return None;
        }
        let mut runs = Vec::new();
        let mut g = 0;
        while g < n {
            if !dirty[g] {
                g += 1;
                continue;
            }
            let a = g;
            while g < n && dirty[g] {
                g += 1;
            }
            runs.push((a, g, starts[a], starts.get(g).copied().unwrap_or(bounds.1)));
        }
        Some(SlicePatch { base, runs, marks: marks.to_vec() })
    }

    /// The rows to read from DuckDB, as an SQL condition on `column`: those of the marked keys.
    fn filter(&self, column: &str) -> String {
        let keys: Vec<String> = self.marks.iter().map(|k| format!("make_timestamp({k}::BIGINT)::TIMESTAMPTZ")).collect();
        format!("({column} IN ({}))", keys.join(", "))
    }

    /// A run's rows: the base's rows of its groups but those of marked keys, and `fresh`
    /// (DuckDB's rows of the marked keys in the run's range), in the export's order.
    fn run_rows(&self, (a, b): (usize, usize), fresh: RecordBatch, schema: &SchemaRef, table: &Table, column: &str) -> Result<RecordBatch, StoreError> {
        let encode = |reason: String| StoreError::LakeEncode { table: table.name.into(), reason };
        let base = self.base.rows(a, b, schema).map_err(encode)?;
        let keep: arrow::array::BooleanArray = key_micros(&base, schema, column, table.name)?.iter().map(|k| Some(self.marks.binary_search(k).is_err())).collect();
        let kept = arrow::compute::filter_record_batch(&base, &keep).map_err(|e| encode(e.to_string()))?;
        let rows = arrow::compute::concat_batches(schema, [&kept, &fresh]).map_err(|e| encode(e.to_string()))?;
        // DuckDB's ORDER BY: the partition column, then the key, nulls last.
        let order = arrow::compute::SortOptions { descending: false, nulls_first: false };
        let columns = std::iter::once(column).chain(table.primary_key.iter().copied());
        let sort: Vec<arrow::compute::SortColumn> = columns
            .map(|c| Ok(arrow::compute::SortColumn { values: Arc::clone(rows.column(schema.index_of(c).map_err(|e| encode(e.to_string()))?)), options: Some(order) }))
            .collect::<Result<_, StoreError>>()?;
        let indices = arrow::compute::lexsort_to_indices(&sort, None).map_err(|e| encode(e.to_string()))?;
        arrow::compute::take_record_batch(&rows, &indices).map_err(|e| encode(e.to_string()))
    }

    /// The new file's segments from the marked keys' `rows` (read in key order), and its rows.
    fn segments(&self, rows: RecordBatch, schema: &SchemaRef, table: &Table) -> Result<Option<(Vec<Segment>, usize)>, StoreError> {
        let Some(column) = table.partition_month_of else { return Ok(None) };
        let keys = key_micros(&rows, schema, column, table.name)?;
        let mut segments = Vec::new();
        let mut total = 0;
        let mut runs = self.runs.iter().peekable();
        let mut g = 0;
        while g < self.base.groups.len() {
            match runs.peek() {
                Some(&&(a, b, lo, hi)) if a == g => {
                    let (x, y) = (keys.partition_point(|k| *k < lo), keys.partition_point(|k| *k < hi));
                    let run = self.run_rows((a, b), rows.slice(x, y - x), schema, table, column)?;
                    if run.num_rows() > 0 {
                        total += run.num_rows();
                        segments.push(Segment::Rows(run));
                    }
                    runs.next();
                    g = b;
                }
                _ => {
                    segments.push(Segment::Copy(g));
                    total += self.base.groups[g].2;
                    g += 1;
                }
            }
        }
        Ok(Some((segments, total)))
    }
}

/// The stale small slices of one export (a refresh's: at most twice `SLICE_ROWS` rows when last
/// written), read from DuckDB a group at a time in one query each rather than one query per
/// slice: at 200,000 conversations a refresh rewrites about a hundred of them, and each query
/// costs its planning and a scan of the table's zone maps whatever it returns. Where the
/// publisher offers a slice's file, only the rows of its marked keys are read: the other rows
/// of the row groups they fall in are decoded from the file.
struct Prefetch {
    /// In the order the slices are written.
    slices: Vec<Planned>,
    index: BTreeMap<(String, i64), usize>,
    read: BTreeMap<usize, Prefetched>,
    /// What a patchable file's columns are (`slice_columns`), once the first file is read.
    columns: Option<Option<Vec<parquet::schema::types::ColumnDescPtr>>>,
}

impl Prefetch {
    fn plan(table: &Table, plans: &[PartitionPlan], book: &SliceBook) -> Self {
        let mut slices = Vec::new();
        if table.partition_month_of.is_some() {
            for plan in plans {
                for &i in &plan.stale {
                    let (from, to) = (plan.starts[i], plan.starts.get(i + 1).copied());
                    let held = book.rows(&plan.value, from);
                    if let (Some(rows), Some(bounds)) = (held.filter(|n| *n as usize <= 2 * SLICE_ROWS), slice_bounds(&plan.value, from, to)) {
                        let within = |k: &&i64| **k >= from && to.is_none_or(|t| **k < t);
                        let marks = plan.marks.iter().filter(within).copied().collect();
                        slices.push(Planned { value: plan.value.clone(), from, to, bounds, rows, marks });
                    }
                }
            }
        }
        let index = slices.iter().enumerate().map(|(i, p)| ((p.value.clone(), p.from), i)).collect();
        Prefetch { slices, index, read: BTreeMap::new(), columns: None }
    }

    /// The rows of the slice starting at `from` in partition `value`, when it is one of the
    /// planned; read with the slices planned after it, up to a group's size.
    fn take(&mut self, tx: &Tx<'_>, publisher: &dyn Publisher, table: &Table, schema: &SchemaRef, value: &str, from: i64) -> Result<Option<Prefetched>, StoreError> {
        let Some(&first) = self.index.get(&(value.to_string(), from)) else { return Ok(None) };
        if let Some(read) = self.read.remove(&first) {
            return Ok(Some(read));
        }
        let column = table.partition_month_of.expect("only partitioned tables are prefetched");
        let mut end = first;
        let mut rows = 0;
        while end < self.slices.len() && end - first < GROUP_SLICES && (end == first || rows < GROUP_ROWS) {
            rows += self.slices[end].rows;
            end += 1;
        }
        let c = quote_ident(column);
        let mut filter = Vec::new();
        let mut patches = Vec::new();
        for planned in &self.slices[first..end] {
            let base = match planned.marks.is_empty() {
                true => None,
                false => publisher.base(&partition(table, &planned.value), planned.from)?,
            };
            let columns = base.as_ref().and_then(|_| self.columns.get_or_insert_with(|| slice_columns(schema)).as_deref());
            let plan = base.zip(columns).and_then(|(body, columns)| SliceFile::read(body, columns, column, planned.to)).and_then(|file| SlicePatch::plan(file, planned.bounds, &planned.marks));
            match &plan {
                Some(p) => filter.push(p.filter(&c)),
                None => filter.push(format!("({})", range_sql(&c, planned.bounds.0, planned.bounds.1))),
            }
            patches.push(plan);
        }
        let (columns, order) = select_parts(table, schema);
        let sql = format!("SELECT {columns} FROM {} WHERE {} ORDER BY {order}", quote_ident(table.name), filter.join(" OR "));
        let batch = tx.read_batch(&sql, table.name, schema)?;
        // Slices are disjoint ranges of the sort key: each one's rows are one run of the batch.
        let keys = key_micros(&batch, schema, column, table.name)?;
        for (i, patch) in patches.into_iter().enumerate() {
            let (lo, hi) = self.slices[first + i].bounds;
            let (a, b) = (keys.partition_point(|k| *k < lo), keys.partition_point(|k| *k < hi));
            self.read.insert(first + i, Prefetched { rows: batch.slice(a, b - a), patch });
        }
        Ok(self.read.remove(&first))
    }
}

/// Event ids per file of a day of the integration log in the lake.
pub const LOG_BLOCK: i64 = 20_000;

/// The day partition of a log row (UTC).
pub const LOG_DAY_SQL: &str = "strftime(make_timestamp(epoch_us(\"timestamp\")), '%Y-%m-%d')";

/// The schema of what DuckDB returned (the contract's when it returned no batch).
fn stmt_schema(batches: &[RecordBatch], schema: &SchemaRef) -> SchemaRef {
    batches.first().map(RecordBatch::schema).unwrap_or_else(|| Arc::clone(schema))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::path::PathBuf;
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

    /// A refresh's stale slices, in several partitions, read in one group: each file gets
    /// exactly the rows of its own slice, and slices left out of the group stay as they were.
    #[test]
    fn small_slices_read_together_are_split_back_into_their_own_files() {
        let dir = tempfile::tempdir().unwrap();
        let w = Warehouse::new(dir.path().join("t.duckdb"));
        let root = dir.path().join("parquet");
        let lake = Lake::local(LakeFormat::Parquet, &root);
        let conv = TableConverter::new(&CONVERSATIONS, None);
        let stamp = RunStamp { run_id: "r".into(), extracted_at: chrono::Utc::now() };
        let may = chrono::DateTime::parse_from_rfc3339("2024-05-31T00:00:00Z").unwrap().to_utc();
        // 10,000 conversations a minute apart from May into June (two partitions, ten slices).
        let rows = |ids: std::ops::Range<i64>, subject: &str| -> RecordBatch {
            let rows: Vec<_> = ids
                .map(|id| {
                    let created = (may + chrono::Duration::minutes(id)).format("%Y-%m-%dT%H:%M:%SZ").to_string();
                    conv.row(&serde_json::json!({"id": id, "number": id, "subject": subject, "createdAt": created}), None, &stamp).unwrap()
                })
                .collect();
            conv.batch(&rows).unwrap()
        };
        let mut windows = WindowStats::default();
        let write = |w: &Warehouse, windows: &mut WindowStats, batch: RecordBatch| {
            w.commit(windows, |tx| {
                tx.ensure_tables(&[(&CONVERSATIONS, conv.schema_columns().to_vec())])?;
                let stage = tx.stage(&CONVERSATIONS, vec![batch])?;
                tx.upsert(&stage)?;
                tx.export_stale(&lake, &CONVERSATIONS, &conv.schema(), Duration::from_secs(60))
            })
            .unwrap()
        };
        write(&w, &mut windows, rows(0..10_000, "first"));
        let contents = || -> BTreeMap<String, Vec<(i64, String)>> {
            let mut out = BTreeMap::new();
            for object in lake.files().list("conversations").unwrap() {
                let file = std::fs::File::open(root.join(&object.key)).unwrap();
                let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap();
                let held: &mut Vec<(i64, String)> = out.entry(object.key.clone()).or_default();
                for batch in reader {
                    let batch = batch.unwrap();
                    let ids = batch.column_by_name("id").unwrap().as_any().downcast_ref::<arrow::array::Int64Array>().unwrap().clone();
                    let subjects = arrow::compute::cast(batch.column_by_name("subject").unwrap(), &arrow::datatypes::DataType::Utf8).unwrap();
                    let subjects = subjects.as_any().downcast_ref::<arrow::array::StringArray>().unwrap();
                    held.extend(ids.iter().flatten().zip(subjects.iter().map(|s| s.unwrap_or_default().to_string())));
                }
            }
            out
        };
        let before = contents();
        assert!(before.len() >= 10, "{} files", before.len());
        // One row changed in three slices of two partitions: one read, three files rewritten.
        let changed: Vec<i64> = vec![1_500, 3_100, 8_200];
        let batches: Vec<RecordBatch> = changed.iter().map(|id| rows(*id..*id + 1, "changed")).collect();
        let batch = arrow::compute::concat_batches(&conv.schema(), &batches).unwrap();
        let done = write(&w, &mut windows, batch);
        assert_eq!(done.files, 3);
        let after = contents();
        assert_eq!(after.keys().collect::<Vec<_>>(), before.keys().collect::<Vec<_>>(), "the same slices");
        let mut rewritten = 0;
        for (file, held) in &after {
            let was = &before[file];
            let ids: Vec<i64> = held.iter().map(|(id, _)| *id).collect();
            assert_eq!(ids, was.iter().map(|(id, _)| *id).collect::<Vec<_>>(), "{file} holds its own rows, in order");
            let now_changed: Vec<i64> = held.iter().filter(|(_, s)| s == "changed").map(|(id, _)| *id).collect();
            if held != was {
                rewritten += 1;
                assert_eq!(now_changed.len(), 1, "{file}: {now_changed:?}");
                assert!(changed.contains(&now_changed[0]));
            }
        }
        assert_eq!(rewritten, 3);
    }

    /// Conversations created a second apart from the start of June 2024.
    pub(super) fn batch(conv: &TableConverter, ids: std::ops::Range<i64>, subject: &str) -> RecordBatch {
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
        let root = dir.path().join("parquet");
        let lake = Lake::local(LakeFormat::Parquet, &root);
        let local_files = |table: &str| -> Vec<PathBuf> { lake.files().list(table).unwrap().into_iter().map(|o| root.join(o.key)).collect() };
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
        let files = local_files("conversations");
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
        assert_eq!(rows(&local_files("conversations")), 5_000);

        // Exports with no time budget until none says more is stale (ten at the most).
        let drain = |w: &Warehouse, windows: &mut WindowStats| -> Vec<(u64, bool)> {
            let mut calls = Vec::new();
            while calls.last().is_none_or(|(_, more)| *more) && calls.len() < 10 {
                let e = w.commit(windows, |tx| tx.export_stale(&lake, &CONVERSATIONS, &schema, Duration::ZERO)).unwrap();
                calls.push((e.files, e.more));
            }
            calls
        };
        // With no time budget each commit writes one slice and says more are stale; the marks
        // of the slices not written yet survive between commits.
        upsert(&w, &mut windows, batch(&conv, 0..5_000, "all changed"));
        let calls = drain(&w, &mut windows);
        assert_eq!(calls, [(1, true), (1, true), (1, true), (1, true), (1, false)]);
        assert_eq!(rows(&local_files("conversations")), 5_000);

        // A whole-partition mark (files of an older version) ended by the budget: the slices not
        // written yet keep marks of their own, and the next commits write them.
        w.commit(&mut windows, |tx| tx.conn.execute(&format!("INSERT INTO {DIRTY_TABLE} VALUES ('conversations', '2024-06')"), []).map_err(db("test"))).unwrap();
        let calls = drain(&w, &mut windows);
        assert_eq!(calls, [(1, true), (1, true), (1, true), (1, true), (1, false)], "every slice of the whole mark written");
        assert_eq!(export(&w, &mut windows), Exported::default(), "no mark left");

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
        assert_eq!(rows(&local_files("conversations")), 5_000);

        // A slice that lost its rows goes; a partition that lost all goes with its folder.
        w.commit(&mut windows, |tx| tx.delete_where(&CONVERSATIONS, "id >= 1000 AND id < 2000")).unwrap();
        export(&w, &mut windows);
        assert_eq!((local_files("conversations").len(), rows(&local_files("conversations"))), (4, 4_000));
        let listed = |w: &Warehouse, windows: &mut WindowStats| w.commit(windows, |tx| tx.slice_rows("conversations")).unwrap();
        let list = listed(&w, &mut windows);
        assert_eq!((list.len(), list.iter().map(|(_, _, n)| n).sum::<i64>()), (4, 4_000), "the slice list names the files: {list:?}");
        w.commit(&mut windows, |tx| tx.delete_where(&CONVERSATIONS, "true")).unwrap();
        export(&w, &mut windows);
        assert!(local_files("conversations").is_empty());
        assert!(!root.join("conversations/created_at_month=2024-06").exists());
        assert_eq!(listed(&w, &mut windows), [], "a partition gone leaves nothing in the slice list");
    }
}

#[cfg(test)]
mod patch_tests {
    use super::*;
    use super::super::publish::{FILE_GROUP_ROWS, encode_slice, slice_columns};
    use crate::catalog::CONVERSATIONS;
    use crate::convert::{RunStamp, TableConverter};
    use crate::store::{Warehouse, WindowStats};
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    use std::time::Duration;

    #[test]
    fn a_mark_dirties_its_row_group_and_every_group_sharing_a_key_with_it() {
        let g = FILE_GROUP_ROWS as i64;
        let schema: SchemaRef = Arc::new(Schema::new(vec![Field::new("created_at", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false)]));
        // Groups of G rows; key G - 2 has rows at both ends of groups 0 and 1.
        let keys: Vec<i64> = (0..3 * g + 16).map(|i| if (g - 2..g + 2).contains(&i) { g - 2 } else { i }).collect();
        let column = arrow::array::TimestampMicrosecondArray::from(keys).with_timezone("UTC");
        let batch = RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(column)]).unwrap();
        let end = 10 * g;
        let body = bytes::Bytes::from(encode_slice("t", &schema, &batch, Some(end)).unwrap());
        let runs = |bounds: (i64, i64), marks: &[i64]| {
            let file = SliceFile::read(body.clone(), &slice_columns(&schema).unwrap(), "created_at", Some(end)).unwrap();
            SlicePatch::plan(file, bounds, marks).map(|p| p.runs)
        };
        assert_eq!(runs((0, end), &[2 * g + 5]), Some(vec![(2, 3, 2 * g, 3 * g)]));
        assert_eq!(runs((0, end), &[g + 5]), Some(vec![(0, 2, 0, 2 * g)]), "group 0 holds rows of key G - 2 too");
        assert_eq!(runs((0, end), &[3 * g + 5, 50]), Some(vec![(0, 2, 0, 2 * g), (3, 4, 3 * g, end)]), "the last group reaches the slice's end");
        assert_eq!(runs((0, end), &[50, g + 5, 2 * g + 5, end - 1]), None, "every group changed: nothing to copy");
        assert_eq!(runs((10, end), &[2 * g + 5]), None, "rows outside the slice: not its file");
    }

    #[test]
    fn a_refresh_encodes_only_the_row_groups_its_changes_fall_in_and_never_patches_another_slices_file() {
        let dir = tempfile::tempdir().unwrap();
        let w = Warehouse::new(dir.path().join("t.duckdb"));
        let root = dir.path().join("parquet");
        let lake = Lake::local(LakeFormat::Parquet, &root);
        let conv = TableConverter::new(&CONVERSATIONS, None);
        let schema = conv.schema();
        let stamp = RunStamp { run_id: "r".into(), extracted_at: chrono::Utc::now() };
        let june = chrono::DateTime::parse_from_rfc3339("2024-06-01T00:00:00Z").unwrap().to_utc();
        let batch = |ids: std::ops::Range<i64>, subject: &str| super::tests::batch(&conv, ids, subject);
        let mut windows = WindowStats::default();
        let mut commit = |f: &dyn Fn(&Tx<'_>) -> Result<(), StoreError>| -> Exported {
            w.commit(&mut windows, |tx| {
                tx.ensure_tables(&[(&CONVERSATIONS, conv.schema_columns().to_vec())])?;
                f(tx)?;
                tx.export_stale(&lake, &CONVERSATIONS, &schema, Duration::from_secs(60))
            })
            .unwrap()
        };
        let upsert = |b: RecordBatch| move |tx: &Tx<'_>| tx.upsert(&tx.stage(&CONVERSATIONS, vec![b.clone()])?).map(|_| ());
        // One slice of 2,000 rows (as large as a slice is written whole): four row groups.
        assert_eq!(commit(&upsert(batch(0..2_000, "first"))).files, 1);
        let file = root.join("conversations/created_at_month=2024-06/data.parquet");
        let read = || -> (Vec<usize>, Vec<(i64, String)>) {
            let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&file).unwrap()).unwrap();
            let groups = reader.metadata().row_groups().iter().map(|g| g.num_rows() as usize).collect();
            let mut rows = Vec::new();
            for b in reader.build().unwrap() {
                let b = b.unwrap();
                let ids = b.column_by_name("id").unwrap().as_any().downcast_ref::<arrow::array::Int64Array>().unwrap().clone();
                let subjects = arrow::compute::cast(b.column_by_name("subject").unwrap(), &DataType::Utf8).unwrap();
                let subjects = subjects.as_any().downcast_ref::<arrow::array::StringArray>().unwrap().clone();
                rows.extend(ids.iter().flatten().zip(subjects.iter().map(|s| s.unwrap_or_default().to_string())));
            }
            (groups, rows)
        };
        let held = |w: &Warehouse| -> Vec<(i64, String)> {
            let mut stats = WindowStats::default();
            let ids = w.commit(&mut stats, |tx| tx.longs("SELECT id FROM conversations ORDER BY created_at, id", &[], "t")).unwrap();
            let subjects = w.commit(&mut stats, |tx| tx.strings("SELECT coalesce(subject, '') FROM conversations ORDER BY created_at, id", &[], "t")).unwrap();
            ids.into_iter().zip(subjects).collect()
        };
        assert_eq!(FILE_GROUP_ROWS, 512, "the groups below");
        assert_eq!(read().0, [512, 512, 512, 464]);

        // A change and a new row in group 0, a deletion in group 2: those two encoded again
        // (group 0 now 513 rows, group 2 a row shorter), groups 1 and 3 copied as they were.
        let inserted = conv.row(&serde_json::json!({"id": 9_999, "number": 9_999, "subject": "new", "createdAt": "2024-06-01T00:01:40.500Z"}), None, &stamp).unwrap();
        let inserted = conv.batch(&[inserted]).unwrap();
        let change = |tx: &Tx<'_>| {
            upsert(batch(300..301, "changed"))(tx)?;
            tx.delete_where(&CONVERSATIONS, "id = 1200")?;
            upsert(inserted.clone())(tx)
        };
        assert_eq!(commit(&change).files, 1);
        let (groups, rows) = read();
        assert_eq!(groups, [512, 1, 512, 511, 464], "a whole rewrite would cut [512, 512, 512, 464]");
        assert_eq!(rows, held(&w), "the file holds what DuckDB holds, in order");

        // Keys several rows share: a row added at conversation 1,700's key (and 1,650 deleted,
        // so the slice stays one file), then conversation 1,700 changed: its key's rows come
        // from DuckDB, the rest of its group from the file.
        let created = (june + chrono::Duration::seconds(1_700)).format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let twin = |id: i64, subject: &str| conv.batch(&[conv.row(&serde_json::json!({"id": id, "number": id, "subject": subject, "createdAt": created}), None, &stamp).unwrap()]).unwrap();
        let add_twin = |tx: &Tx<'_>| {
            tx.delete_where(&CONVERSATIONS, "id = 1650")?;
            upsert(twin(9_000, "twin"))(tx)
        };
        assert_eq!(commit(&add_twin).files, 1);
        let after_twin = read();
        assert_eq!(after_twin.0, [512, 1, 512, 511, 464], "patched: only the last group changed");
        assert_eq!(after_twin.1, held(&w));
        assert_eq!(commit(&upsert(twin(1_700, "changed twin"))).files, 1);
        let (groups, rows) = read();
        assert_eq!(groups, after_twin.0);
        assert_eq!(rows, held(&w), "both rows of the shared key, once each, in order");
        let shared: Vec<_> = rows.iter().filter(|(id, _)| *id == 1_700 || *id == 9_000).cloned().collect();
        assert_eq!(shared, [(1_700, "changed twin".to_string()), (9_000, "twin".to_string())]);

        // The file as an export that did not commit left it: the slice's first 1,000 rows, cut
        // as a slice of its own. It is not patched: the slice is written whole from DuckDB.
        let first_half = w.commit(&mut WindowStats::default(), |tx| tx.read_batch("SELECT * FROM conversations ORDER BY created_at, id LIMIT 1000", "t", &schema)).unwrap();
        std::fs::write(&file, encode_slice("conversations", &schema, &first_half, Some(june.timestamp_micros() + 1_000_000_000)).unwrap()).unwrap();
        assert_eq!(commit(&upsert(batch(100..101, "again"))).files, 1);
        let (groups, rows) = read();
        assert_eq!(groups.iter().sum::<usize>(), 2_000);
        assert_eq!(rows, held(&w));
    }
}

#[cfg(test)]
mod piece_tests {
    use super::*;
    use crate::catalog::CONVERSATIONS;
    use crate::convert::{RunStamp, TableConverter};
    use crate::store::{Warehouse, WindowStats};
    use std::collections::BTreeSet;
    use std::time::Duration;

    /// A slice cut in more pieces than one read fetches: every row in exactly one file, each
    /// file holding one key range, in order.
    #[test]
    fn a_slice_read_in_several_groups_of_pieces_holds_every_row_once() {
        let dir = tempfile::tempdir().unwrap();
        let w = Warehouse::new(dir.path().join("t.duckdb"));
        let root = dir.path().join("parquet");
        let lake = Lake::local(LakeFormat::Parquet, &root);
        let conv = TableConverter::new(&CONVERSATIONS, None);
        let stamp = RunStamp { run_id: "r".into(), extracted_at: chrono::Utc::now() };
        let june = chrono::DateTime::parse_from_rfc3339("2024-06-01T00:00:00Z").unwrap().to_utc();
        let n = (PIECES_PER_READ * 2 + 3) * SLICE_ROWS;
        // Two conversations per second: equal keys, which a cut never separates.
        let rows: Vec<_> = (0..n as i64)
            .map(|id| {
                let created = (june + chrono::Duration::seconds(id / 2)).format("%Y-%m-%dT%H:%M:%SZ").to_string();
                conv.row(&serde_json::json!({"id": id, "number": id, "createdAt": created}), None, &stamp).unwrap()
            })
            .collect();
        let mut windows = WindowStats::default();
        w.commit(&mut windows, |tx| {
            tx.ensure_tables(&[(&CONVERSATIONS, conv.schema_columns().to_vec())])?;
            let stage = tx.stage(&CONVERSATIONS, vec![conv.batch(&rows).unwrap()])?;
            tx.upsert(&stage)?;
            tx.export_stale(&lake, &CONVERSATIONS, &conv.schema(), Duration::from_secs(60))
        })
        .unwrap();
        let files: Vec<_> = lake.files().list("conversations").unwrap().into_iter().map(|o| root.join(o.key)).collect();
        assert!(files.len() > PIECES_PER_READ * 2, "{} files", files.len());
        let mut seen = BTreeSet::new();
        for file in &files {
            let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(file).unwrap()).unwrap().build().unwrap();
            for batch in reader {
                let ids = batch.unwrap().column_by_name("id").unwrap().as_any().downcast_ref::<arrow::array::Int64Array>().unwrap().clone();
                for id in ids.iter().flatten() {
                    assert!(seen.insert(id), "{id} in two files");
                }
            }
        }
        assert_eq!(seen.len(), n);
        // Each piece is a slice of its own: a later refresh may patch its file only if the
        // file names the next piece's start as its end (the last: the partition's end).
        let columns = super::super::publish::slice_columns(&conv.schema()).unwrap();
        let starts: Vec<i64> = w.commit(&mut windows, |tx| tx.slice_rows("conversations")).unwrap().into_iter().map(|(_, start, _)| start).collect();
        assert_eq!(starts.len(), files.len());
        for (i, start) in starts.iter().enumerate() {
            let file = root.join("conversations/created_at_month=2024-06").join(super::super::publish::hive_file(*start));
            let body = bytes::Bytes::from(std::fs::read(&file).unwrap());
            assert!(SliceFile::read(body, &columns, "created_at", starts.get(i + 1).copied()).is_some(), "{} ends where the next begins", file.display());
        }
    }

    /// A log larger than a commit's budget goes to the lake over several commits: each writes
    /// one block at least and marks the rest, a commit that rolls back leaves the marks as
    /// they were, and in the end every event is in the lake exactly once.
    #[test]
    fn a_large_log_is_exported_over_several_commits_and_none_is_lost_or_doubled() {
        use parquet::file::reader::FileReader;
        let dir = tempfile::tempdir().unwrap();
        let w = Warehouse::new(dir.path().join("t.duckdb"));
        let root = dir.path().join("parquet");
        let lake = Lake::local(LakeFormat::Parquet, &root);
        let mut windows = WindowStats::default();
        // 3.5 blocks of events two seconds apart: over two days, so five (day, block) files.
        let events = 3 * LOG_BLOCK + LOG_BLOCK / 2;
        let files = w
            .commit(&mut windows, |tx| {
                tx.ensure_tables(&[])?;
                tx.ensure_log()?;
                tx.conn
                    .execute_batch(&format!(
                        "INSERT INTO {LOG_TABLE} (\"timestamp\", event_type, status, direction, run_id) \
                         SELECT make_timestamp(1796083200000000 + 2000000 * range)::TIMESTAMPTZ, 'Ticket Synced', 'Success', 'From HelpScout', 'r1' FROM range({events})"
                    ))
                    .map_err(db("test"))?;
                tx.longs(&format!("SELECT count(*) FROM (SELECT DISTINCT {LOG_DAY_SQL}, event_id // {LOG_BLOCK} FROM {LOG_TABLE})"), &[], "t")
            })
            .unwrap()[0];
        assert_eq!(files, 5);
        let marks = |w: &Warehouse, windows: &mut WindowStats| {
            w.commit(windows, |tx| tx.longs(&format!("SELECT count(*) FROM {STALE_ROWS_TABLE} WHERE table_name = '{LOG_TABLE}'"), &[], "t")).unwrap()[0]
        };
        // With no budget the first commit writes one block and marks the four others.
        let first = w.commit(&mut windows, |tx| tx.export_log(&lake, Some("r1"), Duration::ZERO)).unwrap();
        assert_eq!((first.files, first.more), (1, true));
        assert_eq!(marks(&w, &mut windows), 4);
        // A commit that fails after its export leaves the marks (and so the blocks) for the next.
        let failed = w.commit(&mut windows, |tx| {
            tx.export_log(&lake, None, Duration::ZERO)?;
            Err::<(), _>(StoreError::Busy { path: "test".into() })
        });
        assert!(failed.is_err());
        assert_eq!(marks(&w, &mut windows), 4);
        let mut commits = 1;
        loop {
            let next = w.commit(&mut windows, |tx| tx.export_log(&lake, None, Duration::ZERO)).unwrap();
            assert_eq!(next.files, 1);
            commits += 1;
            if !next.more {
                break;
            }
        }
        assert_eq!(commits, files);
        assert_eq!(marks(&w, &mut windows), 0);
        let written: Vec<std::path::PathBuf> = lake.files().list(LOG_TABLE).unwrap().into_iter().map(|o| root.join(o.key)).collect();
        assert_eq!(written.len() as i64, files);
        let rows: i64 = written.iter().map(|f| parquet::file::reader::SerializedFileReader::new(std::fs::File::open(f).unwrap()).unwrap().metadata().file_metadata().num_rows()).sum();
        assert_eq!(rows, events);
        // With time to spare, one commit writes every block of the run.
        let whole = w.commit(&mut windows, |tx| tx.export_log(&lake, Some("r1"), Duration::from_secs(60))).unwrap();
        assert_eq!((whole.files, whole.more), (5, false));
    }
}
