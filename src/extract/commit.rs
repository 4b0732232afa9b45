//! Commits of extracted rows: chunks of a listing (parent rows upserted, each listed parent's
//! children replaced), written on a blocking thread while the next chunk is fetched; and whole
//! replacements (a table's or some parents' rows replaced by what this run listed).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::Value;

use super::SyncError;
use super::census::Span;
use super::context::{Ledger, Run};
use crate::catalog::Table;
use crate::convert::{Row, TableConverter};
use crate::store::{Scope, StoreError, Warehouse, WindowStats};

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

/// Commits one chunk: parent rows upserted (with their log events), each listed parent's
/// children replaced. Returns parents that lost children to another parent (merge candidates).
fn commit_chunk(
    store: &Warehouse,
    windows: &mut WindowStats,
    converters: &HashMap<&'static Table, Arc<TableConverter>>,
    table: &'static Table,
    chunk: Chunk,
    store_parent: bool,
    run_id: &str,
) -> Result<Vec<i64>, SyncError> {
    if chunk.rows.is_empty() && chunk.parent_ids.is_empty() {
        return Ok(vec![]);
    }
    let parent_batch = if store_parent { Some(converters[table].batch(&chunk.rows)?) } else { None };
    drop(chunk.rows);
    let mut child_batches = Vec::new();
    for (child, per_parent) in chunk.children.into_values() {
        let rows: Vec<Row> = per_parent.into_values().flatten().collect();
        child_batches.push((child, converters[child].batch(&rows)?));
    }
    let parent_ids = chunk.parent_ids;
    let losing = store.commit(windows, |tx| {
        // Rows received again unchanged are not written again (their lake slices stay as they are).
        if let Some(batch) = parent_batch {
            let stage = tx.stage(table, vec![batch])?;
            tx.append_row_events(&stage, run_id)?;
            tx.drop_unchanged(&stage)?;
            tx.upsert(&stage)?;
        }
        let mut losing = Vec::new();
        for (child, batch) in child_batches {
            let stage = tx.stage(child, vec![batch])?;
            losing.extend(tx.parents_losing_children(&stage)?);
            let unchanged = tx.drop_unchanged(&stage)?;
            tx.delete_children(child, &parent_ids, Some(&unchanged))?;
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
        PendingCommit(tokio::task::spawn_blocking(move || {
            let mut windows = WindowStats::default();
            let losing = commit_chunk(&store, &mut windows, &converters, table, chunk, store_parent, &run_id)?;
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
            let stage = tx.stage(table, vec![batch])?;
            tx.append_row_events(&stage, run_id)?;
            let inserted = tx.upsert(&stage)?;
            Ok(dropped.saturating_sub(inserted))
        })
    }

    /// Upserts rows and deletes the table's (or the listed parents') rows this run did not see;
    /// the bookmarks commit with them. Returns the rows removed.
    pub fn replace_rows(&mut self, run: &Run<'_>, table: &'static Table, rows: Vec<Row>, parents: Option<&[i64]>) -> Result<u64, SyncError> {
        let batch = run.converter(table).batch(&rows)?;
        let run_id = &run.stamp.run_id;
        // Rows of parents that are gone go too, where the parents are held.
        let orphans = table.parent().is_some_and(|p| run.selected(p));
        self.commit(&run.store, |tx| {
            let stage = tx.stage(table, vec![batch])?;
            tx.append_row_events(&stage, run_id)?;
            tx.upsert(&stage)?;
            let mut removed = tx.delete_not_written_by(table, run_id, parents)?;
            if orphans {
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
        })
    }
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
