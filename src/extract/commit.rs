//! Commits of extracted rows: chunks of a listing (parent rows upserted, each listed parent's
//! children replaced), written on a blocking thread while the next chunk is fetched; and whole
//! replacements (a table's or some parents' rows replaced by what this run listed).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow::array::RecordBatch;

use serde_json::Value;

use super::SyncError;
use super::census::Span;
use super::context::{Appendable, Ledger, Run};
use crate::catalog::Table;
use crate::convert::{Row, TableConverter};
use crate::store::{Scope, StoreError, Tx, Warehouse, WindowStats};

/// Rows gathered for one commit: parent rows by key, child rows per parent id.
pub(crate) struct Chunk {
    pub rows: Vec<Row>,
    index: HashMap<String, usize>,
    /// Parents whose children this chunk replaces.
    pub parent_ids: Vec<i64>,
    pub children: BTreeMap<&'static str, (&'static Table, BTreeMap<i64, Vec<Row>>)>,
}

impl Chunk {
    pub fn new() -> Self {
        Chunk { rows: Vec::new(), index: HashMap::new(), parent_ids: Vec::new(), children: BTreeMap::new() }
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Adds a row; a later copy of the same key (offset paging repeats rows) replaces the earlier.
    pub fn push(&mut self, key: String, row: Row, id: Option<i64>) {
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

    /// The parent's children replace what is held for it; the parent row itself is not stored.
    pub fn push_parent_only(&mut self, id: i64) {
        if !self.parent_ids.contains(&id) {
            self.parent_ids.push(id);
        }
    }

    pub fn set_children(&mut self, child: &'static Table, parent_id: i64, rows: Vec<Row>) {
        self.children.entry(child.name).or_insert_with(|| (child, BTreeMap::new())).1.insert(parent_id, rows);
    }
}

/// The id column of a converted row.
pub(crate) fn row_id(row: &Row) -> Option<i64> {
    row.get("id").and_then(Value::as_i64)
}

/// A chunk being written on a blocking thread: its merge candidates and commit windows.
pub(crate) struct PendingCommit(tokio::task::JoinHandle<Result<(Vec<i64>, WindowStats), SyncError>>);

/// One chunk's rows as Arrow batches: the parent's (when stored) and each child table's.
struct Batches {
    parent: Option<RecordBatch>,
    children: Vec<(&'static Table, RecordBatch)>,
}

/// Commits one chunk: parent rows upserted (with their log events), each listed parent's
/// children replaced. Returns parents that lost children to another parent (merge candidates).
/// Into tables that are still `appendable` the chunk is appended instead; when one of its keys
/// turns out to be held already, that commit rolls back and the chunk is upserted.
#[allow(clippy::too_many_arguments)]
fn commit_chunk(
    store: &Warehouse,
    windows: &mut WindowStats,
    converters: &HashMap<&'static Table, Arc<TableConverter>>,
    appendable: &Appendable,
    table: &'static Table,
    chunk: Chunk,
    store_parent: bool,
    run_id: &str,
) -> Result<Vec<i64>, SyncError> {
    if chunk.rows.is_empty() && chunk.parent_ids.is_empty() {
        return Ok(vec![]);
    }
    let parent = if store_parent { Some(converters[table].batch(&chunk.rows)?) } else { None };
    drop(chunk.rows);
    let mut children = Vec::new();
    for (child, per_parent) in chunk.children.into_values() {
        let rows: Vec<Row> = per_parent.into_values().flatten().collect();
        children.push((child, converters[child].batch(&rows)?));
    }
    let batches = Batches { parent, children };
    // Appending skips replacing children, so the parent must be stored: its own key proves
    // that none of its children were written before.
    let written: Vec<&'static Table> = std::iter::once(table).chain(batches.children.iter().map(|(c, _)| *c)).collect();
    if store_parent && appendable.all(&written) {
        match store.commit(windows, |tx| append_chunk(tx, table, &batches, run_id)) {
            Ok(()) => return Ok(vec![]),
            Err(StoreError::KeysAlreadyHeld { table: held }) => {
                tracing::debug!(table = held, "a row listed twice in this run: upserting from now on");
                appendable.remove(&written);
            }
            Err(e) => return Err(e.into()),
        }
    }
    upsert_chunk(store, windows, table, batches, &chunk.parent_ids, run_id)
}

/// A chunk appended to tables that hold none of its keys: every row is new.
fn append_chunk(tx: &mut Tx<'_>, table: &'static Table, batches: &Batches, run_id: &str) -> Result<(), StoreError> {
    let parent = batches.parent.iter().map(|b| (table, b));
    for (t, batch) in parent.chain(batches.children.iter().map(|(c, b)| (*c, b))) {
        let stage = tx.stage(t, vec![batch.clone()])?;
        tx.append_row_events(&stage, run_id)?;
        tx.append_new(&stage)?;
    }
    Ok(())
}

fn upsert_chunk(store: &Warehouse, windows: &mut WindowStats, table: &'static Table, batches: Batches, parent_ids: &[i64], run_id: &str) -> Result<Vec<i64>, SyncError> {
    let losing = store.commit(windows, |tx| {
        // Rows received again unchanged are not written again (their lake slices stay as they are).
        if let Some(batch) = batches.parent {
            let stage = tx.stage(table, vec![batch])?;
            tx.append_row_events(&stage, run_id)?;
            tx.drop_unchanged(&stage)?;
            tx.upsert(&stage)?;
        }
        let mut losing = Vec::new();
        for (child, batch) in batches.children {
            let stage = tx.stage(child, vec![batch])?;
            losing.extend(tx.parents_losing_children(&stage)?);
            let unchanged = tx.drop_unchanged(&stage)?;
            tx.delete_children(child, parent_ids, Some(&unchanged))?;
            tx.upsert(&stage)?;
        }
        losing.retain(|id| !parent_ids.contains(id));
        Ok::<_, StoreError>(losing)
    })?;
    Ok(losing)
}

impl Run<'_> {
    /// Starts writing one chunk on a blocking thread (Arrow batches, then one DuckDB commit).
    pub fn spawn_commit(&self, table: &'static Table, chunk: Chunk) -> PendingCommit {
        let store_parent = self.selected(table);
        let converters: HashMap<&'static Table, Arc<TableConverter>> = self
            .converters
            .iter()
            .filter(|(t, _)| **t == table || chunk.children.contains_key(t.name))
            .map(|(t, conv)| (*t, Arc::clone(conv)))
            .collect();
        let store = self.store.clone();
        let run_id = self.stamp.run_id.clone();
        let appendable = Arc::clone(&self.appendable);
        PendingCommit(tokio::task::spawn_blocking(move || {
            let mut windows = WindowStats::default();
            let losing = commit_chunk(&store, &mut windows, &converters, &appendable, table, chunk, store_parent, &run_id)?;
            Ok((losing, windows))
        }))
    }
}

impl Ledger {
    /// Waits for a chunk handed to `spawn_commit`; returns its merge candidates.
    pub async fn finish_commit(&mut self, pending: PendingCommit) -> Result<Vec<i64>, SyncError> {
        let (losing, windows) = pending.0.await.map_err(|e| SyncError::Internal(format!("a chunk's commit stopped: {e}")))??;
        self.windows.absorb(windows);
        Ok(losing)
    }

    /// Replaces the rows held in a span of `column` (whole seconds) with `rows`, listed again
    /// for that span. Returns how many fewer rows the span holds now.
    pub fn replace_span(&mut self, run: &Run<'_>, table: &'static Table, column: &str, span: Span, rows: Vec<Row>) -> Result<u64, SyncError> {
        let batch = run.converter(table).batch(&rows)?;
        let run_id = &run.stamp.run_id;
        self.commit(&run.store, |tx| {
            let dropped = tx.delete_time_span(table, column, span.from, span.to)?;
            let inserted = rewrite(tx, table, batch, run_id)?;
            Ok(dropped.saturating_sub(inserted))
        })
    }

    /// Upserts rows and deletes the table's (or the listed parents') rows this run did not see;
    /// the bookmarks commit with them. Returns the rows removed.
    pub fn replace_rows(&mut self, run: &Run<'_>, table: &'static Table, rows: Vec<Row>, parents: Option<&[i64]>) -> Result<u64, SyncError> {
        let batch = run.converter(table).batch(&rows)?;
        drop(rows);
        let run_id = &run.stamp.run_id;
        self.commit(&run.store, |tx| {
            rewrite(tx, table, batch, run_id)?;
            remove_unwritten(tx, run, table, parents)
        })
    }

    /// Upserts rows, every one written again (with this run's id, unlike a listing's chunks,
    /// which keep rows that did not change): `remove_unwritten` then removes the rest.
    pub fn upsert_rows(&mut self, run: &Run<'_>, table: &'static Table, rows: Vec<Row>) -> Result<(), SyncError> {
        let batch = run.converter(table).batch(&rows)?;
        drop(rows);
        let run_id = &run.stamp.run_id;
        self.commit(&run.store, |tx| rewrite(tx, table, batch, run_id).map(|_| ()))
    }

    /// Deletes the table's rows this run did not write, after its rows were committed chunk by
    /// chunk (`upsert_rows`); the bookmarks commit with it. Returns the rows removed.
    pub fn remove_unwritten(&mut self, run: &Run<'_>, table: &'static Table) -> Result<u64, SyncError> {
        self.commit(&run.store, |tx| remove_unwritten(tx, run, table, None))
    }
}

/// Stages rows and upserts every one of them (none kept as unchanged), with their log events.
fn rewrite(tx: &mut Tx<'_>, table: &'static Table, batch: RecordBatch, run_id: &str) -> Result<u64, StoreError> {
    let stage = tx.stage(table, vec![batch])?;
    tx.append_row_events(&stage, run_id)?;
    tx.upsert(&stage)
}

/// Deletes the table's (or the listed parents') rows this run did not write, and the rows of
/// parents that are gone where the parents are held; commits the table's bookmarks.
fn remove_unwritten(tx: &mut Tx<'_>, run: &Run<'_>, table: &'static Table, parents: Option<&[i64]>) -> Result<u64, StoreError> {
    let run_id = &run.stamp.run_id;
    let mut removed = tx.delete_not_written_by(table, run_id, parents)?;
    if table.parent().is_some_and(|p| run.selected(p)) {
        removed += tx.delete_orphans(table)?;
    }
    let cursor = match table.cursor() {
        Some(c) => tx.max_of(table, c)?,
        None => None,
    };
    let scopes: Vec<Scope> = match parents {
        Some(ids) => ids.iter().map(|id| Scope::Parent(*id)).collect(),
        None => vec![Scope::Cursor],
    };
    scopes.into_iter().try_for_each(|scope| tx.set_bookmark(table, scope, cursor, run_id))?;
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(id: i64, subject: &str) -> Row {
        json!({"id": id, "subject": subject}).as_object().unwrap().clone()
    }

    #[test]
    fn a_repeated_key_replaces_the_earlier_row_and_is_counted_once() {
        let mut chunk = Chunk::new();
        chunk.push("1".into(), row(1, "old"), Some(1));
        chunk.push("2".into(), row(2, "b"), Some(2));
        chunk.push("1".into(), row(1, "new"), Some(1));
        assert_eq!(chunk.len(), 2);
        assert_eq!(chunk.rows[0]["subject"], "new");
        assert_eq!(chunk.parent_ids, [1, 2]);
        chunk.push_parent_only(2);
        chunk.push_parent_only(3);
        assert_eq!(chunk.parent_ids, [1, 2, 3]);
        assert_eq!(row_id(&chunk.rows[1]), Some(2));
    }
}

#[cfg(test)]
mod append_tests {
    use super::*;
    use crate::catalog::{CONVERSATIONS, CONVERSATION_THREADS};
    use crate::convert::RunStamp;
    use serde_json::json;

    /// A backfill's chunk appended, then a chunk that lists one of its conversations again
    /// (changed, with a new thread): the second falls back to the upsert.
    #[test]
    fn a_row_listed_twice_in_a_backfill_is_upserted_once_and_logged_as_one_change() {
        let dir = tempfile::tempdir().unwrap();
        let store = Warehouse::new(dir.path().join("t.duckdb"));
        let stamp = RunStamp { run_id: "r1".into(), extracted_at: chrono::Utc::now() };
        let converters: HashMap<&'static Table, Arc<TableConverter>> = [&CONVERSATIONS, &CONVERSATION_THREADS]
            .into_iter()
            .map(|t| (t, Arc::new(TableConverter::new(t, None))))
            .collect();
        let tables: Vec<_> = converters.iter().map(|(t, c)| (*t, c.schema_columns().to_vec())).collect();
        let appendable = Appendable::default();
        let mut windows = WindowStats::default();
        store
            .commit(&mut windows, |tx| {
                tx.ensure_tables(&tables)?;
                tx.ensure_log()?;
                appendable.set(tx.empty_tables(&[&CONVERSATIONS, &CONVERSATION_THREADS])?);
                Ok::<_, StoreError>(())
            })
            .unwrap();
        let chunk = |conversations: &[(i64, &str, &[i64])]| {
            let mut chunk = Chunk::new();
            for (id, subject, threads) in conversations {
                let record = json!({"id": id, "number": id, "subject": subject, "createdAt": "2024-06-03T12:00:00Z", "userUpdatedAt": "2024-06-04T12:00:00Z"});
                chunk.push(id.to_string(), converters[&CONVERSATIONS].row(&record, None, &stamp).unwrap(), Some(*id));
                let rows = threads
                    .iter()
                    .map(|t| converters[&CONVERSATION_THREADS].row(&json!({"id": t, "type": "customer", "createdAt": "2024-06-03T12:00:00Z"}), Some(*id), &stamp).unwrap())
                    .collect();
                chunk.set_children(&CONVERSATION_THREADS, *id, rows);
            }
            chunk
        };
        let commit = |chunk: Chunk, windows: &mut WindowStats| commit_chunk(&store, windows, &converters, &appendable, &CONVERSATIONS, chunk, true, "r1").unwrap();
        commit(chunk(&[(1, "one", &[11]), (2, "two", &[21])]), &mut windows);
        assert!(appendable.all(&[&CONVERSATIONS, &CONVERSATION_THREADS]), "the first chunk was appended");
        {
            // Appended rows mark their partitions stale whole, not each row.
            let conn = duckdb::Connection::open(&store.path).unwrap();
            let marks = |sql: &str| -> String { conn.query_row(sql, [], |r| r.get::<_, String>(0)).unwrap() };
            assert_eq!(marks("SELECT count(*)::VARCHAR FROM _helpscout_stale_rows"), "0");
            assert_eq!(marks("SELECT string_agg(table_name || ' ' || partition_value, ', ' ORDER BY table_name) FROM _helpscout_dirty_partitions"), "conversation_threads 2024-06, conversations 2024-06");
        }
        commit(chunk(&[(2, "two, again", &[21, 22]), (3, "three", &[31])]), &mut windows);
        assert!(!appendable.all(&[&CONVERSATIONS]), "a key held already ends appending for the run");
        commit(chunk(&[(4, "four", &[41])]), &mut windows);

        let conn = duckdb::Connection::open(&store.path).unwrap();
        let query = |sql: &str| -> String { conn.query_row(sql, [], |r| r.get::<_, String>(0)).unwrap() };
        assert_eq!(query("SELECT string_agg(id || ':' || subject, ' ' ORDER BY id) FROM conversations"), "1:one 2:two, again 3:three 4:four");
        assert_eq!(query("SELECT string_agg(id || '>' || conversation_id, ' ' ORDER BY id) FROM conversation_threads"), "11>1 21>2 22>2 31>3 41>4");
        assert_eq!(
            query("SELECT string_agg(conversation_id || ' ' || event_type, ', ' ORDER BY event_id) FROM helpscout_log WHERE table_name = 'conversations'"),
            "1 Ticket Created, 2 Ticket Created, 2 Conversation Updated, 3 Ticket Created, 4 Ticket Created"
        );
    }
}
