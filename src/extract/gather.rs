//! A page of parent records → rows of a chunk: each record converted, its embedded children
//! moved out and converted, and refetched from their own endpoint (concurrently across the
//! page) where the embedded list is incomplete. A record that cannot be read whole is left out
//! and logged for a retry; the rest of the page goes on.

use std::collections::HashSet;

use futures::StreamExt;
use serde_json::Value;

use super::SyncError;
use super::commit::{Chunk, row_id};
use super::context::{Ledger, Run};
use crate::api::{Action, ApiError};
use crate::catalog::log::RecordFailure;
use crate::catalog::{Origin, Table};

/// A child list refetched for the record at an index of a page.
struct Refetched {
    index: usize,
    child: &'static Table,
    parent_id: i64,
    result: Result<Vec<Value>, ApiError>,
}

/// Whether a parent record's embedded list of `child` may be incomplete.
fn needs_refetch(child: &Table, record: &Value, embedded: usize) -> bool {
    let Origin::Embedded { refetch, .. } = child.origin else { return false };
    let expected = record.get(refetch.count_field).and_then(Value::as_u64);
    let (field, value) = refetch.always_when;
    let truncated = record.get(field).and_then(Value::as_str) == Some(value);
    truncated || expected.is_some_and(|n| (embedded as u64) < n)
}

/// Converts a page's records (and their children) into `chunk`. `seen` holds the ids of this
/// pass; a record seen before counts as a repeat (the list moved while it was paged).
pub(crate) async fn gather(
    run: &Run<'_>,
    ledger: &mut Ledger,
    table: &'static Table,
    mut items: Vec<Value>,
    chunk: &mut Chunk,
    seen: &mut HashSet<i64>,
    repeats: &mut u64,
) -> Result<(), SyncError> {
    let children = run.selected_embedded(table);
    let mut refetch: Vec<(usize, &'static Table, i64)> = Vec::new();
    let mut embedded: Vec<Vec<(&'static Table, Vec<Value>)>> = Vec::with_capacity(items.len());
    for (i, record) in items.iter_mut().enumerate() {
        let mut lists = Vec::with_capacity(children.len());
        for child in &children {
            // Moved out, not copied: the parent's converter ignores its embedded children.
            let list = match record.get_mut("_embedded").and_then(|e| e.get_mut(child.list_key)).map(Value::take) {
                Some(Value::Array(list)) => list,
                _ => Vec::new(),
            };
            if needs_refetch(child, record, list.len())
                && let Some(id) = record.get("id").and_then(Value::as_i64)
            {
                refetch.push((i, child, id));
            }
            lists.push((*child, list));
        }
        embedded.push(lists);
    }
    let fetched: Vec<Refetched> = futures::stream::iter(refetch.into_iter().map(|(index, child, parent_id)| {
        let url = run.url_for(child, Some(parent_id), &[]);
        async move { Refetched { index, child, parent_id, result: run.list_all(child, &url).await } }
    }))
    .buffer_unordered(run.concurrency())
    .collect()
    .await;
    let mut left_out: HashSet<usize> = HashSet::new();
    for Refetched { index, child, parent_id, result } in fetched {
        match result {
            Ok(list) => {
                if let Some(slot) = embedded[index].iter_mut().find(|(c, _)| *c == child) {
                    slot.1 = list;
                }
            }
            Err(e) => match e.action() {
                // Removed between the listing and the refetch: not stored; noticed next run.
                Action::Gone | Action::Moved | Action::Forbidden => {
                    left_out.insert(index);
                }
                Action::FailRun => return Err(e.into()),
                // This record only: logged for a retry, the rest of the page goes on.
                Action::Retry | Action::FailTable => {
                    ledger.failed(table, RecordFailure { id: Some(parent_id), error: format!("its {} could not be read: {e}", child.name), http_status: e.http_status() });
                    left_out.insert(index);
                }
            },
        }
    }

    let store_parent = run.selected(table);
    let conv = run.converter(table);
    for (i, record) in items.iter().enumerate() {
        if left_out.contains(&i) {
            continue;
        }
        let row = match conv.row(record, None, &run.stamp) {
            Ok(row) => row,
            Err(e) => {
                let id = record.get("id").and_then(Value::as_i64);
                ledger.failed(table, RecordFailure { id, error: e.to_string(), http_status: None });
                continue;
            }
        };
        let id = row_id(&row);
        if let Some(id) = id
            && !seen.insert(id)
        {
            *repeats += 1;
        }
        let mut child_rows = Vec::with_capacity(children.len());
        let mut broken = None;
        for (child, list) in &embedded[i] {
            let child_conv = run.converter(child);
            match list.iter().map(|r| child_conv.row(r, id, &run.stamp)).collect::<Result<Vec<_>, _>>() {
                Ok(rows) => child_rows.push((*child, rows)),
                Err(e) => broken = Some(e),
            }
        }
        // A record with an unreadable child is not stored half: it is retried whole.
        if let Some(e) = broken {
            ledger.failed(table, RecordFailure { id, error: e.to_string(), http_status: None });
            continue;
        }
        if let Some(id) = id {
            for (child, rows) in child_rows {
                chunk.set_children(child, id, rows);
            }
        }
        if store_parent {
            chunk.push(conv.key_of(&row), row, id);
        } else if let Some(id) = id {
            // Only the children are wanted; the parent id still scopes their replacement.
            chunk.push_parent_only(id);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::CONVERSATION_THREADS;
    use serde_json::json;

    #[test]
    fn embedded_children_are_refetched_when_the_list_is_short_or_always_truncated() {
        let email = json!({"id": 1, "type": "email", "threads": 3});
        assert!(!needs_refetch(&CONVERSATION_THREADS, &email, 3));
        assert!(needs_refetch(&CONVERSATION_THREADS, &email, 2));
        let chat = json!({"id": 2, "type": "chat", "threads": 1});
        assert!(needs_refetch(&CONVERSATION_THREADS, &chat, 1), "chats embed only their newest threads");
        assert!(!needs_refetch(&crate::catalog::CUSTOMERS, &email, 0), "not an embedded table");
    }
}
