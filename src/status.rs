//! `status`, `reset` and the table catalog: reading and resetting what syncs wrote.

use std::fmt::Write as _;

use anyhow::Context;
use serde::Serialize;

use crate::config::{Outputs, table_named};
use crate::schema::quote_ident;
use crate::sinks::duckdb::{DIRTY_TABLE, REMOVAL_CHECK_SCOPE, RUNS_TABLE, STATE_TABLE, Warehouse};
use crate::sinks::parquet::ParquetFolder;
use crate::tables::{self, Origin, Replication};

#[derive(Debug, Serialize)]
pub struct TableStatus {
    pub table: String,
    pub rows: Option<i64>,
    pub bookmark: Option<String>,
    pub last_synced_at: Option<String>,
    pub parquet_files: usize,
}

#[derive(Debug, Serialize)]
pub struct Status {
    pub duckdb: String,
    pub last_run: Option<LastRun>,
    pub tables: Vec<TableStatus>,
}

#[derive(Debug, Serialize)]
pub struct LastRun {
    pub run_id: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub status: Option<String>,
}

pub fn status(outputs: &Outputs) -> anyhow::Result<Status> {
    let conn = Warehouse::new(&outputs.duckdb).connect_read_only()?;
    let parquet = ParquetFolder::new(&outputs.parquet);
    let existing: Vec<String> = {
        let mut stmt = conn.prepare("SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'")?;
        stmt.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?
    };
    if !existing.iter().any(|t| t == STATE_TABLE) {
        anyhow::bail!("{} holds no helpscout-etl data yet: run `helpscout-etl sync` first.", outputs.duckdb.display());
    }
    let mut tables = Vec::new();
    for table in tables::ALL {
        let rows = if existing.iter().any(|t| t == table.name) {
            Some(conn.query_row(&format!("SELECT count(*) FROM {}", quote_ident(table.name)), [], |r| r.get(0))?)
        } else {
            None
        };
        let (bookmark, synced) = conn
            .query_row(
                &format!(
                    "SELECT strftime(max(bookmark)::TIMESTAMP, '%Y-%m-%dT%H:%M:%SZ'), strftime(max(last_synced_at)::TIMESTAMP, '%Y-%m-%dT%H:%M:%SZ') FROM {STATE_TABLE} WHERE table_name = ? AND scope <> '{REMOVAL_CHECK_SCOPE}'"
                ),
                [table.name],
                |r| Ok((r.get::<_, Option<String>>(0)?, r.get::<_, Option<String>>(1)?)),
            )
            .context("reading bookmarks")?;
        tables.push(TableStatus {
            table: table.name.to_string(),
            rows,
            bookmark,
            last_synced_at: synced,
            parquet_files: parquet.files(table.name).len(),
        });
    }
    let last_run = conn
        .query_row(
            &format!(
                "SELECT run_id, strftime(started_at::TIMESTAMP, '%Y-%m-%dT%H:%M:%SZ'), strftime(finished_at::TIMESTAMP, '%Y-%m-%dT%H:%M:%SZ'), status FROM {RUNS_TABLE} ORDER BY started_at DESC LIMIT 1"
            ),
            [],
            |r| Ok(LastRun { run_id: r.get(0)?, started_at: r.get(1)?, finished_at: r.get(2)?, status: r.get(3)? }),
        )
        .ok();
    Ok(Status { duckdb: outputs.duckdb.display().to_string(), last_run, tables })
}

pub fn print_status(outputs: &Outputs, json: bool) -> anyhow::Result<()> {
    let s = status(outputs)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(());
    }
    println!("DuckDB: {}", s.duckdb);
    match &s.last_run {
        Some(r) => println!(
            "Last run: {} started {} finished {} — {}",
            r.run_id,
            r.started_at.as_deref().unwrap_or("?"),
            r.finished_at.as_deref().unwrap_or("(not finished)"),
            r.status.as_deref().unwrap_or("?")
        ),
        None => println!("Last run: none"),
    }
    println!("{:<26} {:>9} {:<22} {:<22} {:>8}", "table", "rows", "bookmark", "last synced", "parquet");
    for t in &s.tables {
        println!(
            "{:<26} {:>9} {:<22} {:<22} {:>8}",
            t.table,
            t.rows.map(|r| r.to_string()).unwrap_or_else(|| "-".into()),
            t.bookmark.as_deref().unwrap_or("-"),
            t.last_synced_at.as_deref().unwrap_or("-"),
            t.parquet_files
        );
    }
    Ok(())
}

/// Drops the tables' rows and bookmarks (one transaction), then their Parquet folders.
/// Embedded children go with their parent, whose listing brings them.
pub fn reset(outputs: &Outputs, names: &[String]) -> anyhow::Result<Vec<String>> {
    let mut chosen: Vec<&'static tables::Table> = Vec::new();
    for name in names {
        if name == "all" {
            chosen = tables::ALL.to_vec();
            break;
        }
        chosen.push(table_named(name)?);
    }
    for table in chosen.clone() {
        for child in tables::ALL {
            if matches!(child.origin, Origin::Embedded { parent, .. } if parent == table.name) && !chosen.iter().any(|c| c.name == child.name) {
                chosen.push(child);
            }
        }
    }
    let state_dir = outputs.state_dir();
    std::fs::create_dir_all(&state_dir)?;
    let lock = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(state_dir.join("sync.lock"))?;
    if lock.try_lock().is_err() {
        anyhow::bail!("A sync is running on {}; reset it after the sync finishes.", outputs.dir.display());
    }
    let warehouse = Warehouse::new(&outputs.duckdb);
    let mut stats = Default::default();
    warehouse.commit(&mut stats, |tx| {
        for table in &chosen {
            tx.execute_batch(
                &format!(
                    "DROP TABLE IF EXISTS {}; DELETE FROM {STATE_TABLE} WHERE table_name = '{name}'; DELETE FROM {DIRTY_TABLE} WHERE table_name = '{name}';",
                    quote_ident(table.name),
                    name = table.name
                ),
                &format!("resetting {}", table.name),
            )?;
        }
        Ok::<_, crate::sinks::duckdb::WarehouseError>(())
    })?;
    let parquet = ParquetFolder::new(&outputs.parquet);
    for table in &chosen {
        let dir = parquet.table_dir(table.name);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        }
    }
    Ok(chosen.iter().map(|t| t.name.to_string()).collect())
}

/// The Markdown table catalog, generated from the declarations (the README embeds it).
pub fn table_catalog() -> String {
    let mut out = String::new();
    let _ = writeln!(out, "| table | primary key | replication | source | Parquet partitions |");
    let _ = writeln!(out, "|---|---|---|---|---|");
    for t in tables::ALL {
        let replication = match t.replication {
            Replication::Incremental { cursor } => format!("incremental ({cursor})"),
            Replication::FullTable => "full table".into(),
        };
        let source = match t.origin {
            Origin::List => format!("`{}`", t.request.path),
            Origin::PerParent { parent } => format!("`{}` per {parent}", t.request.path),
            Origin::Embedded { parent, .. } => format!("embedded in {parent}; `{}`", t.request.path),
        };
        let partitions = t
            .partition_month_of
            .map(|c| format!("`{}=YYYY-MM`", crate::sinks::parquet::partition_key(c)))
            .unwrap_or_else(|| "one file".into());
        let _ = writeln!(out, "| `{}` | {} | {replication} | {source} | {partitions} |", t.name, t.primary_key.join(", "));
    }
    let _ = writeln!(out);
    for t in tables::ALL {
        let columns: Vec<String> = t.columns.iter().map(|c| format!("`{}` {}", c.name, c.ty.duckdb())).collect();
        let _ = writeln!(out, "- **{}** — {} Columns: {}.", t.name, t.description, columns.join(", "));
    }
    out
}

/// The catalog as data: each table's name, keys, partition key and contract columns.
pub fn table_catalog_json() -> serde_json::Value {
    serde_json::Value::Array(
        tables::ALL
            .iter()
            .map(|t| {
                serde_json::json!({
                    "name": t.name,
                    "primary_key": t.primary_key,
                    "partition_key": t.partition_month_of.map(crate::sinks::parquet::partition_key),
                    "columns": t.columns.iter().map(|c| serde_json::json!({"name": c.name, "duckdb": c.ty.duckdb()})).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_readme_catalog_is_the_generated_one() {
        let readme = include_str!("../README.md");
        let catalog = super::table_catalog();
        assert!(readme.contains(&catalog), "README.md is out of date: paste the output of `helpscout-etl tables`");
    }
}
