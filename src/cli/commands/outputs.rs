//! `status`, `reset` and `views`: reading, resetting and completing what syncs wrote.

use std::io::Write;

use crate::catalog::{self, Table};
use crate::cli::args::{OutputArgs, ResetArgs, VacuumArgs};
use crate::cli::config::{self, table_named};
use crate::cli::exit::Exit;
use crate::cli::render;
use crate::store::{self, Cell, Grid, Lake, Warehouse};

pub fn status(args: &OutputArgs, out: &mut dyn Write) -> anyhow::Result<Exit> {
    let outputs = config::load_outputs(args.config.as_deref(), &args.overrides())?;
    // A lake that cannot be opened (S3 settings missing here) leaves its file counts empty.
    let lake = Lake::open(&outputs.lake, &store::lake::process_env).ok();
    let status = Warehouse::new(&outputs.duckdb).read()?.status(lake.as_ref())?;
    if args.json {
        write!(out, "{}", render::json(&status))?;
        return Ok(Exit::Success);
    }
    writeln!(out, "DuckDB: {}", status.duckdb)?;
    writeln!(out, "Lake: {} ({})", outputs.lake.location, outputs.lake.format.name())?;
    match &status.last_run {
        Some(r) => writeln!(
            out,
            "Last run: {} started {} finished {} — {}",
            r.run_id,
            r.started_at.as_deref().unwrap_or("?"),
            r.finished_at.as_deref().unwrap_or("(not finished)"),
            r.status.as_deref().unwrap_or("?")
        )?,
        None => writeln!(out, "Last run: none")?,
    }
    let text = |s: &Option<String>| s.clone().map(Cell::Text).unwrap_or(Cell::Null);
    let grid = Grid {
        columns: ["table", "rows", "sync reads", "bookmark", "last synced", "parquet files"].map(String::from).to_vec(),
        rows: status
            .tables
            .iter()
            .map(|t| {
                vec![
                    Cell::Text(t.table.into()),
                    t.rows.map(|r| Cell::Int(r.into())).unwrap_or(Cell::Null),
                    Cell::Text(if t.unavailable_since.is_some() { "unavailable on this plan".into() } else { t.sync.into() }),
                    text(&t.bookmark),
                    text(&t.last_synced_at),
                    t.parquet_files.map(|n| Cell::Int(n as i128)).unwrap_or(Cell::Null),
                ]
            })
            .collect(),
    };
    write!(out, "{}", render::text(&grid))?;
    for t in status.tables.iter().filter(|t| t.unavailable_since.is_some()) {
        writeln!(
            out,
            "{} is not available on this Help Scout plan (refused with HTTP 403 since {}): syncs skip it without failing; leave it out of `[sync] tables` (or `--tables`) to stop asking.",
            t.table,
            t.unavailable_since.as_deref().unwrap_or("?")
        )?;
    }
    Ok(Exit::Success)
}

/// The tables a reset names, with the embedded children their parent's listing brings.
fn reset_set(names: &[String]) -> Result<Vec<&'static Table>, config::ConfigError> {
    let mut chosen: Vec<&'static Table> = Vec::new();
    for name in names {
        if name == "all" {
            return Ok(catalog::ALL.to_vec());
        }
        chosen.push(table_named(name)?);
    }
    for table in chosen.clone() {
        for child in table.embedded_children() {
            if !chosen.contains(&child) {
                chosen.push(child);
            }
        }
    }
    Ok(chosen)
}

pub fn reset(args: &ResetArgs, out: &mut dyn Write) -> anyhow::Result<Exit> {
    let outputs = config::load_outputs(args.output.config.as_deref(), &args.output.overrides())?;
    let tables = reset_set(&args.tables)?;
    store::reset(&outputs, &tables)?;
    let names: Vec<&str> = tables.iter().map(|t| t.name).collect();
    writeln!(out, "Reset {}: the next sync reloads {}.", names.join(", "), if names.len() == 1 { "it" } else { "them" })?;
    Ok(Exit::Success)
}

pub fn vacuum(args: &VacuumArgs, out: &mut dyn Write) -> anyhow::Result<Exit> {
    let outputs = config::load_outputs(args.output.config.as_deref(), &args.output.overrides())?;
    if outputs.lake.format == store::LakeFormat::Parquet {
        writeln!(out, "The lake at {} is hive Parquet, whose files are replaced in place: there is nothing to vacuum.", outputs.lake.location)?;
        return Ok(Exit::Success);
    }
    // No sync writes while files go (a sync's new files are also protected by their age).
    let _lock = outputs.lock()?;
    let lake = Lake::open(&outputs.lake, &store::lake::process_env)?;
    let mut tables: Vec<&str> = catalog::ALL.iter().map(|t| t.name).collect();
    tables.push(store::LOG_TABLE);
    let done = lake.vacuum(&tables, args.retain)?;
    if args.output.json {
        write!(out, "{}", render::json(&done))?;
        return Ok(Exit::Success);
    }
    let grid = Grid {
        columns: ["table", "version", "oldest kept version", "files kept", "files deleted", "MB deleted"].map(String::from).to_vec(),
        rows: done
            .iter()
            .map(|v| {
                vec![
                    Cell::Text(v.table.clone()),
                    Cell::Int(v.version.into()),
                    Cell::Int(v.oldest_kept_version.into()),
                    Cell::Int(v.files_kept.into()),
                    Cell::Int(v.files_deleted.into()),
                    Cell::Float(v.bytes_deleted as f64 / 1e6),
                ]
            })
            .collect(),
    };
    write!(out, "{}", render::text(&grid))?;
    let deleted: u64 = done.iter().map(|v| v.files_deleted).sum();
    writeln!(out, "Deleted {deleted} files no snapshot of the last {} needs.", humantime::format_duration(args.retain))?;
    Ok(Exit::Success)
}

pub fn views(args: &OutputArgs, out: &mut dyn Write) -> anyhow::Result<Exit> {
    let outputs = config::load_outputs(args.config.as_deref(), &args.overrides())?;
    let statuses = Warehouse::new(&outputs.duckdb).install_views()?;
    for s in statuses.iter().filter(|s| !s.installed) {
        eprintln!("note: {} ({}) not installed: {}", s.file, s.objects.join(", "), s.note.as_deref().unwrap_or(""));
    }
    writeln!(out, "Installed {} view files into {}.", statuses.iter().filter(|s| s.installed).count(), outputs.duckdb.display())?;
    Ok(Exit::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reset_takes_embedded_children_with_their_parent() {
        let names = |v: &[&str]| reset_set(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap().iter().map(|t| t.name).collect::<Vec<_>>();
        assert_eq!(names(&["conversations"]), ["conversations", "conversation_threads"]);
        assert_eq!(names(&["users"]), ["users"]);
        assert_eq!(names(&["all"]).len(), 11);
        assert!(reset_set(&["tickets".to_string()]).is_err());
    }
}
