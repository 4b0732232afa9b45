//! Rows of the contract tables: staged through Arrow, upserted by primary key, replaced per
//! parent, removed; each change records the lake partitions it makes stale.

use arrow::array::RecordBatch;
use chrono::{DateTime, Utc};
use duckdb::params;

use super::ddl::{DIRTY_TABLE, STALE_ROWS_TABLE, literal, partition_sql, quote_ident};
use super::{StoreError, Tx, db};
use crate::catalog::{Removal, Table};

/// The keys of staged rows the table already held as they were (a temporary table).
pub struct Unchanged {
    name: String,
}

/// Rows staged for one table in the current transaction.
pub struct Stage {
    pub(super) table: &'static Table,
    pub(super) name: String,
    /// The rows the table held under the staged keys when they were staged (a temporary
    /// table); None when it held none of them. The commit's comparisons read these few rows:
    /// with no index, each comparison with the table itself scanned all of it, bodies included.
    pub(super) held: Option<String>,
}

fn id_list(ids: &[i64]) -> String {
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
}

impl Tx<'_> {
    /// Stages batches in a temporary table shaped like `table`.
    pub fn stage(&self, table: &'static Table, batches: Vec<RecordBatch>) -> Result<Stage, StoreError> {
        let stage = format!("_stage_{}", table.name);
        self.conn
            .execute_batch(&format!("CREATE OR REPLACE TEMP TABLE {} AS SELECT * FROM {} WHERE false", quote_ident(&stage), quote_ident(table.name)))
            .map_err(db("creating a staging table"))?;
        let mut appender = self.conn.appender_to_catalog_and_db(&stage, "temp", "main").map_err(db("opening the staging appender"))?;
        for batch in batches {
            if batch.num_rows() > 0 {
                appender.append_record_batch(batch).map_err(db(format!("staging rows of {}", table.name)))?;
            }
        }
        appender.flush().map_err(db("flushing staged rows"))?;
        drop(appender);
        self.staged(table, stage)
    }

    /// The temporary table `name` of rows for `table` as a stage: one row per key, and the
    /// rows the table holds under those keys read.
    fn staged(&self, table: &'static Table, name: String) -> Result<Stage, StoreError> {
        let mut stage = Stage { table, name, held: None };
        self.keep_last_of_each_key(&stage)?;
        stage.held = self.read_held(&stage)?;
        Ok(stage)
    }

    /// Copies the rows the table holds under the staged keys into a temporary table: one
    /// read of the table, whose key range DuckDB pushes into the scan (a backfill's new keys
    /// lie past the held row groups, which it skips).
    fn read_held(&self, stage: &Stage) -> Result<Option<String>, StoreError> {
        let table = stage.table;
        let keys = key_list(table);
        let held = quote_ident(&format!("_held_{}", table.name));
        let doing = format!("reading held rows of {}", table.name);
        self.conn
            .execute_batch(&format!(
                "CREATE OR REPLACE TEMP TABLE {held} AS SELECT * FROM {} WHERE ({keys}) IN (SELECT {keys} FROM {})",
                quote_ident(table.name),
                quote_ident(&stage.name)
            ))
            .map_err(db(&doing))?;
        let any: bool = self.conn.query_row(&format!("SELECT EXISTS (SELECT 1 FROM {held})"), [], |r| r.get(0)).map_err(db(doing))?;
        Ok(any.then_some(held))
    }

    /// Keeps one staged row per primary key, the last staged: the tables declare no PRIMARY KEY
    /// (see `ddl::create_table_sql`), so a key staged twice (a thread listed under two
    /// conversations of one chunk while it moves) would otherwise be written twice.
    fn keep_last_of_each_key(&self, stage: &Stage) -> Result<(), StoreError> {
        let keys = key_list(stage.table);
        if keys.is_empty() {
            return Ok(());
        }
        let staged = quote_ident(&stage.name);
        let doubled: bool = self
            .conn
            .query_row(&format!("SELECT count(*) > count(DISTINCT ({keys})) FROM {staged}"), [], |r| r.get(0))
            .map_err(db(format!("checking staged keys of {}", stage.table.name)))?;
        if doubled {
            self.conn
                .execute(&format!("DELETE FROM {staged} WHERE rowid NOT IN (SELECT max(rowid) FROM {staged} GROUP BY {keys})"), [])
                .map_err(db(format!("checking staged keys of {}", stage.table.name)))?;
        }
        Ok(())
    }

    /// Records the rows a `WHERE` clause selects as needing a lake rewrite: their slice keys
    /// in partitioned tables (only their slices are rewritten), the whole file otherwise.
    fn mark_dirty(&self, table: &Table, from: &str, filter: &str) -> Result<(), StoreError> {
        let sql = match table.partition_month_of {
            Some(col) => format!(
                "INSERT INTO {STALE_ROWS_TABLE} SELECT DISTINCT {}, {}, coalesce(epoch_us({}), CAST({} AS BIGINT)) FROM {from} WHERE {filter}",
                literal(table.name),
                partition_sql(table),
                quote_ident(col),
                i64::MIN
            ),
            None => format!("INSERT OR IGNORE INTO {DIRTY_TABLE} SELECT DISTINCT {}, {} FROM {from} WHERE {filter}", literal(table.name), partition_sql(table)),
        };
        self.conn.execute_batch(&sql).map_err(db("recording stale lake partitions"))
    }

    pub(super) fn delete_where(&self, table: &Table, filter: &str) -> Result<u64, StoreError> {
        let target = quote_ident(table.name);
        self.mark_dirty(table, &target, filter)?;
        let n = self.conn.execute(&format!("DELETE FROM {target} WHERE {filter}"), []).map_err(db(format!("deleting rows of {}", table.name)))?;
        Ok(n as u64)
    }

    /// Replaces rows by primary key with the staged ones (insert new, overwrite existing).
    pub fn upsert(&self, stage: &Stage) -> Result<u64, StoreError> {
        let table = stage.table;
        let keys = key_list(table);
        let staged = quote_ident(&stage.name);
        if let Some(held) = &stage.held {
            // The replaced rows' old slices are marked from the held copy; the delete reads
            // only the table's key columns.
            let replaced = format!("({keys}) IN (SELECT {keys} FROM {staged})");
            self.mark_dirty(table, held, &replaced)?;
            self.conn
                .execute(&format!("DELETE FROM {} WHERE {replaced}", quote_ident(table.name)), [])
                .map_err(db(format!("deleting rows of {}", table.name)))?;
        }
        self.mark_dirty(table, &staged, "true")?;
        let n = self
            .conn
            .execute(&format!("INSERT INTO {} SELECT * FROM {staged}", quote_ident(table.name)), [])
            .map_err(db(format!("inserting rows of {}", table.name)))?;
        Ok(n as u64)
    }

    /// Appends the rows of a stage to a table that holds none of their keys: no comparison, no
    /// deletion. When the table holds any of the keys after all (a row listed twice in a run),
    /// nothing is written and the commit fails with `KeysAlreadyHeld`, for the caller to roll
    /// back and upsert instead (the stage found them held).
    pub fn append_new(&self, stage: &Stage) -> Result<(), StoreError> {
        let table = stage.table;
        let staged_name = quote_ident(&stage.name);
        let target = quote_ident(table.name);
        if stage.held.is_some() {
            return Err(StoreError::KeysAlreadyHeld { table: table.name.to_string() });
        }
        self.conn
            .execute(&format!("INSERT INTO {target} SELECT * FROM {staged_name}"), [])
            .map_err(db(format!("appending rows of {}", table.name)))?;
        // The table held none of these rows' keys: their partitions are rewritten whole, one
        // mark each rather than one per row (a backfill's million threads, read back at once by
        // its export).
        self.conn
            .execute_batch(&format!("INSERT OR IGNORE INTO {DIRTY_TABLE} SELECT DISTINCT {}, {} FROM {staged_name}", literal(table.name), partition_sql(table)))
            .map_err(db("recording stale lake partitions"))
    }

    /// Takes out of the stage the rows the table already holds exactly as staged (every
    /// column but when and by which run it was written): writing them again would change
    /// nothing but make their lake slices stale. Returns their keys, for `delete_children`.
    pub fn drop_unchanged(&self, stage: &Stage) -> Result<Unchanged, StoreError> {
        let table = stage.table;
        let keys = key_list(table);
        let cols: Vec<String> = self
            .column_names(table)?
            .into_iter()
            .filter(|c| c != crate::catalog::META_EXTRACTED_AT && c != crate::catalog::META_RUN_ID)
            .map(|c| quote_ident(&c))
            .collect();
        let cols = cols.join(", ");
        let staged = quote_ident(&stage.name);
        let unchanged = quote_ident(&format!("_unchanged_{}", table.name));
        let same = match &stage.held {
            Some(held) => format!("SELECT {keys} FROM (SELECT {cols} FROM {staged} INTERSECT SELECT {cols} FROM {held})"),
            None => format!("SELECT {keys} FROM {staged} WHERE false"),
        };
        self.conn
            .execute_batch(&format!("CREATE OR REPLACE TEMP TABLE {unchanged} AS {same};"))
            .map_err(db(format!("comparing staged rows of {}", table.name)))?;
        self.conn
            .execute(&format!("DELETE FROM {staged} WHERE ({keys}) IN (SELECT {keys} FROM {unchanged})"), [])
            .map_err(db(format!("comparing staged rows of {}", table.name)))?;
        Ok(Unchanged { name: unchanged })
    }

    /// Removes the child rows of the given parents that are about to be replaced: all of them,
    /// or all but those `drop_unchanged` found staged as they are.
    pub fn delete_children(&self, child: &Table, parent_ids: &[i64], keep: Option<&Unchanged>) -> Result<u64, StoreError> {
        let Some(key) = child.parent_key else { return Ok(0) };
        if parent_ids.is_empty() {
            return Ok(0);
        }
        let mut filter = format!("{} IN ({})", quote_ident(key), id_list(parent_ids));
        if let Some(keep) = keep {
            filter.push_str(&format!(" AND ({k}) NOT IN (SELECT {k} FROM {})", keep.name, k = key_list(child)));
        }
        self.delete_where(child, &filter)
    }

    /// Parents that lose children to the staged rows (a child now listed under another parent).
    pub fn parents_losing_children(&self, stage: &Stage) -> Result<Vec<i64>, StoreError> {
        let child = stage.table;
        let (Some(key), Some(held)) = (child.parent_key, &stage.held) else { return Ok(vec![]) };
        let key = quote_ident(key);
        self.ids(&format!(
            "SELECT DISTINCT t.{key} FROM {held} t JOIN {} s USING ({}) WHERE t.{key} <> s.{key} ORDER BY 1",
            quote_ident(&stage.name),
            key_list(child)
        ))
    }

    /// Deletes the table's rows (within `scope_parents` when given) that this run did not write.
    pub fn delete_not_written_by(&self, table: &Table, run_id: &str, scope_parents: Option<&[i64]>) -> Result<u64, StoreError> {
        let mut filter = format!("_run_id IS DISTINCT FROM {}", literal(run_id));
        if let (Some(parents), Some(key)) = (scope_parents, table.parent_key) {
            if parents.is_empty() {
                return Ok(0);
            }
            filter.push_str(&format!(" AND {} IN ({})", quote_ident(key), id_list(parents)));
        }
        self.delete_where(table, &filter)
    }

    /// Deletes rows whose parent no longer exists.
    pub fn delete_orphans(&self, child: &Table) -> Result<u64, StoreError> {
        let (Some(key), Some(parent)) = (child.parent_key, child.parent()) else { return Ok(0) };
        self.delete_where(child, &format!("{} NOT IN (SELECT id FROM {})", quote_ident(key), quote_ident(parent.name)))
    }

    pub fn delete_ids(&self, table: &Table, ids: &[i64]) -> Result<u64, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        self.delete_where(table, &format!("id IN ({})", id_list(ids)))
    }

    fn ids(&self, sql: &str) -> Result<Vec<i64>, StoreError> {
        let mut stmt = self.conn.prepare(sql).map_err(db("reading ids"))?;
        let ids = stmt.query_map([], |r| r.get::<_, i64>(0)).map_err(db("reading ids"))?.collect::<Result<Vec<_>, _>>().map_err(db("reading ids"))?;
        Ok(ids)
    }

    /// The whole seconds of an immutable time column and the id of every row holding one,
    /// sorted by time then id: what a census compares the API's counts with.
    pub fn held_times(&self, table: &Table, column: &str, id_column: Option<&str>) -> Result<Vec<(i64, i64)>, StoreError> {
        let col = quote_ident(column);
        let id = id_column.map_or("0".to_string(), quote_ident);
        let sql = format!("SELECT CAST(floor(epoch_us({col}) / 1000000) AS BIGINT) AS s, {id} FROM {} WHERE {col} IS NOT NULL ORDER BY 1, 2", quote_ident(table.name));
        let mut stmt = self.conn.prepare(&sql).map_err(db("reading held times"))?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))).map_err(db("reading held times"))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(db("reading held times"))
    }

    /// Deletes the rows whose `column` falls in `[from, to)` (whole seconds; `None` unbounded).
    pub fn delete_time_span(&self, table: &Table, column: &str, from: Option<i64>, to: Option<i64>) -> Result<u64, StoreError> {
        let col = quote_ident(column);
        let mut filter = format!("{col} IS NOT NULL");
        if let Some(f) = from {
            filter.push_str(&format!(" AND epoch_us({col}) >= {}", f.saturating_mul(1_000_000)));
        }
        if let Some(t) = to {
            filter.push_str(&format!(" AND epoch_us({col}) < {}", t.saturating_mul(1_000_000)));
        }
        self.delete_where(table, &filter)
    }

    /// Points the rows whose `column` holds `from` at `to` instead (a merged record's
    /// referrers), through a stage so that a row already present under `to` is replaced.
    pub fn repoint(&self, table: &'static Table, column: &str, from: i64, to: i64) -> Result<u64, StoreError> {
        let name = format!("_stage_{}", table.name);
        let col = quote_ident(column);
        self.conn
            .execute_batch(&format!(
                "CREATE OR REPLACE TEMP TABLE {} AS SELECT * REPLACE (CAST({to} AS BIGINT) AS {col}) FROM {} WHERE {col} = {from}",
                quote_ident(&name),
                quote_ident(table.name)
            ))
            .map_err(db(format!("repointing rows of {}", table.name)))?;
        self.delete_where(table, &format!("{col} = {from}"))?;
        let stage = self.staged(table, name)?;
        self.upsert(&stage)
    }

    /// Deletes the rows whose `column` holds one of `ids` (a deleted record's referrers).
    pub fn delete_referring(&self, table: &Table, column: &str, ids: &[i64]) -> Result<u64, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        self.delete_where(table, &format!("{} IN ({})", quote_ident(column), id_list(ids)))
    }

    /// Every id the table holds, in order.
    pub fn held_ids(&self, table: &Table) -> Result<Vec<i64>, StoreError> {
        self.ids(&format!("SELECT id FROM {} ORDER BY id", quote_ident(table.name)))
    }

    /// Those of `tables` that hold no row (a backfill's, which chunks may append to).
    pub fn empty_tables(&self, tables: &[&'static Table]) -> Result<Vec<&'static Table>, StoreError> {
        let mut empty = Vec::new();
        for table in tables {
            let any: bool = self
                .conn
                .query_row(&format!("SELECT EXISTS (SELECT 1 FROM {})", quote_ident(table.name)), [], |r| r.get(0))
                .map_err(db(format!("looking into {}", table.name)))?;
            if !any {
                empty.push(*table);
            }
        }
        Ok(empty)
    }

    /// Whether the table holds a row with this id.
    pub fn holds_id(&self, table: &Table, id: i64) -> Result<bool, StoreError> {
        let n: i64 = self
            .conn
            .query_row(&format!("SELECT count(*) FROM {} WHERE id = ?", quote_ident(table.name)), [id], |r| r.get(0))
            .map_err(db("looking a record up"))?;
        Ok(n > 0)
    }

    /// The latest value of the table's cursor column.
    pub fn max_of(&self, table: &Table, column: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let micros: Option<i64> = self
            .conn
            .query_row(&format!("SELECT epoch_us(max({})) FROM {}", quote_ident(column), quote_ident(table.name)), [], |r| r.get(0))
            .map_err(db("reading a cursor"))?;
        Ok(micros.and_then(DateTime::from_timestamp_micros))
    }

    /// Remembers a removed record of a table that declares tombstones.
    pub fn tombstone(&self, table: &Table, id: i64, removal: Removal, run_id: &str) -> Result<(), StoreError> {
        let Some(removals) = table.removals else { return Ok(()) };
        let (reason, merged_into) = match removal {
            Removal::Merged { into } => ("merged", into),
            Removal::Deleted => ("deleted", None),
        };
        self.conn
            .execute(&format!("INSERT OR REPLACE INTO {} VALUES (?, ?, ?, now(), ?)", quote_ident(removals.tombstones)), params![id, reason, merged_into, run_id])
            .map(|_| ())
            .map_err(db(format!("recording a removed {}", table.noun)))
    }
}

/// A table's primary-key columns, quoted and comma-separated, as the key comparisons use them.
fn key_list(table: &Table) -> String {
    table.primary_key.iter().map(|k| quote_ident(k)).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod repoint_tests {
    use crate::catalog::HAPPINESS_RATINGS_REPORT as RATINGS;
    use crate::convert::{RunStamp, TableConverter};
    use crate::store::Warehouse;

    #[test]
    fn a_merged_records_referrers_move_to_the_survivor_and_one_it_already_holds_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let w = Warehouse::new(dir.path().join("t.duckdb"));
        let conv = TableConverter::new(&RATINGS, None);
        let stamp = RunStamp { run_id: "r".into(), extracted_at: chrono::Utc::now() };
        let rating = |conversation: i64, customer: i64, comment: &str| {
            let record = serde_json::json!({"id": conversation, "ratingCreatedAt": "2024-06-01T10:00:00Z", "ratingCustomerId": customer, "ratingComments": comment});
            conv.row(&record, None, &stamp).unwrap()
        };
        let rows = vec![rating(1, 5, "from the merged one"), rating(1, 6, "moves"), rating(2, 5, "the survivor's")];
        let count = |sql: &str| -> i64 { w.read().unwrap().conn.query_row(sql, [], |r| r.get(0)).unwrap() };
        w.commit(&mut Default::default(), |tx| {
            tx.ensure_tables(&[(&RATINGS, conv.schema_columns().to_vec())])?;
            let stage = tx.stage(&RATINGS, vec![conv.batch(&rows).unwrap()])?;
            tx.upsert(&stage)?;
            tx.repoint(&RATINGS, "conversation_id", 1, 2)
        })
        .unwrap();
        assert_eq!(count("SELECT count(*) FROM happiness_ratings_report WHERE conversation_id = 1"), 0);
        assert_eq!(count("SELECT count(*) FROM happiness_ratings_report WHERE conversation_id = 2"), 2, "one row per key");
        assert_eq!(count("SELECT count(*) FROM happiness_ratings_report WHERE rating_comments = 'moves'"), 1);
    }
}

#[cfg(test)]
mod key_tests {
    use crate::catalog::CONVERSATIONS;
    use crate::convert::{RunStamp, TableConverter};
    use crate::store::{StoreError, Warehouse};

    fn rows(conv: &TableConverter, rows: &[(i64, &str)]) -> arrow::record_batch::RecordBatch {
        let stamp = RunStamp { run_id: "r".into(), extracted_at: chrono::Utc::now() };
        let rows: Vec<_> = rows.iter().map(|(id, subject)| conv.row(&serde_json::json!({"id": id, "subject": subject, "createdAt": "2024-06-01T10:00:00Z"}), None, &stamp).unwrap()).collect();
        conv.batch(&rows).unwrap()
    }

    fn held(w: &Warehouse) -> Vec<(i64, String)> {
        let r = w.read().unwrap();
        let mut stmt = r.conn.prepare("SELECT id, subject FROM conversations ORDER BY id, subject").unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().collect::<Result<_, _>>().unwrap()
    }

    #[test]
    fn a_key_staged_twice_is_written_once_as_last_staged_by_upsert_and_by_append() {
        let dir = tempfile::tempdir().unwrap();
        let w = Warehouse::new(dir.path().join("t.duckdb"));
        let conv = TableConverter::new(&CONVERSATIONS, None);
        w.commit(&mut Default::default(), |tx| {
            tx.ensure_tables(&[(&CONVERSATIONS, conv.schema_columns().to_vec())])?;
            let stage = tx.stage(&CONVERSATIONS, vec![rows(&conv, &[(1, "first"), (2, "two"), (1, "second")])])?;
            tx.append_new(&stage)
        })
        .unwrap();
        assert_eq!(held(&w), vec![(1, "second".to_string()), (2, "two".to_string())]);
        w.commit(&mut Default::default(), |tx| {
            let stage = tx.stage(&CONVERSATIONS, vec![rows(&conv, &[(2, "a"), (3, "three"), (2, "b")])])?;
            tx.upsert(&stage)
        })
        .unwrap();
        assert_eq!(held(&w), vec![(1, "second".to_string()), (2, "b".to_string()), (3, "three".to_string())]);
    }

    #[test]
    fn a_table_an_earlier_version_made_with_a_primary_key_still_takes_appends_and_upserts() {
        let dir = tempfile::tempdir().unwrap();
        let w = Warehouse::new(dir.path().join("t.duckdb"));
        let conv = TableConverter::new(&CONVERSATIONS, None);
        w.commit(&mut Default::default(), |tx| {
            tx.ensure_tables(&[(&CONVERSATIONS, conv.schema_columns().to_vec())])?;
            tx.conn.execute_batch("ALTER TABLE conversations ADD PRIMARY KEY (id)").map_err(crate::store::db("declaring the old key"))?;
            let stage = tx.stage(&CONVERSATIONS, vec![rows(&conv, &[(1, "one"), (2, "two")])])?;
            tx.append_new(&stage)
        })
        .unwrap();
        w.commit(&mut Default::default(), |tx| {
            let stage = tx.stage(&CONVERSATIONS, vec![rows(&conv, &[(2, "b"), (3, "three")])])?;
            tx.upsert(&stage).map(|_| ())
        })
        .unwrap();
        assert_eq!(held(&w), vec![(1, "one".to_string()), (2, "b".to_string()), (3, "three".to_string())]);
        let declared: i64 = w.read().unwrap().conn.query_row("SELECT count(*) FROM duckdb_constraints() WHERE table_name = 'conversations' AND constraint_type = 'PRIMARY KEY'", [], |r| r.get(0)).unwrap();
        assert_eq!(declared, 1, "the old key is still declared, and was in the way of neither write");
    }

    #[test]
    fn appending_a_key_the_table_holds_writes_nothing_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let w = Warehouse::new(dir.path().join("t.duckdb"));
        let conv = TableConverter::new(&CONVERSATIONS, None);
        let append = |batch| {
            w.commit(&mut Default::default(), |tx| {
                tx.ensure_tables(&[(&CONVERSATIONS, conv.schema_columns().to_vec())])?;
                let stage = tx.stage(&CONVERSATIONS, vec![batch])?;
                tx.append_new(&stage)
            })
        };
        append(rows(&conv, &[(1, "one"), (2, "two")])).unwrap();
        let err = append(rows(&conv, &[(3, "three"), (2, "again")])).unwrap_err();
        assert!(matches!(err, StoreError::KeysAlreadyHeld { ref table } if table == "conversations"), "{err:?}");
        assert_eq!(held(&w), vec![(1, "one".to_string()), (2, "two".to_string())], "the refused chunk wrote nothing");
        append(rows(&conv, &[(3, "three")])).unwrap();
        assert_eq!(held(&w).len(), 3);
    }
}
