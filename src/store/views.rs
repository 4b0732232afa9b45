//! The bundled SQL views (`sql/*.sql`), installed into the DuckDB file by every sync.
//!
//! Tables that are missing (left out of `tables`) or columns that were deselected must not break
//! a sync, and a failed statement would abort the sync's transaction. So each file is first
//! tried on a scratch in-memory database holding empty copies of the file's tables (same columns,
//! same types) and the views installed before it; a file that does not compile there is skipped:
//! the objects it would define are dropped (a stale view never outlives its tables) and the
//! reason is recorded in `_helpscout_views` (one row per file: installed or not, and why).
//!
//! Time zones: the bundled engine has no ICU extension while analysts' DuckDB usually has one,
//! with a local TimeZone. The views therefore never truncate or format a TIMESTAMPTZ directly:
//! they bucket `make_timestamp(epoch_us(ts))` (a naive UTC TIMESTAMP) and measure windows in
//! epoch microseconds against `now()`, which gives the same UTC answer in both.

use duckdb::{Connection, params};
use serde::Serialize;

use super::ddl::quote_ident;
use super::{StoreError, Tx, Warehouse, db};

/// (name, SQL) of every bundled view file, in dependency order.
pub const VIEWS: &[(&str, &str)] = &[
    ("010_log_summary.sql", include_str!("../../sql/010_log_summary.sql")),
    ("020_integration_health.sql", include_str!("../../sql/020_integration_health.sql")),
    ("030_api_usage.sql", include_str!("../../sql/030_api_usage.sql")),
    ("040_happiness_ratings.sql", include_str!("../../sql/040_happiness_ratings.sql")),
    ("041_happiness_reports.sql", include_str!("../../sql/041_happiness_reports.sql")),
    ("042_happiness_by_team.sql", include_str!("../../sql/042_happiness_by_team.sql")),
    ("043_happiness_comments.sql", include_str!("../../sql/043_happiness_comments.sql")),
    ("050_threads_enriched.sql", include_str!("../../sql/050_threads_enriched.sql")),
    ("060_conversations_enriched.sql", include_str!("../../sql/060_conversations_enriched.sql")),
    ("061_conversation_custom_fields.sql", include_str!("../../sql/061_conversation_custom_fields.sql")),
    ("070_form_repeat_submitters.sql", include_str!("../../sql/070_form_repeat_submitters.sql")),
    ("071_form_duplicate_tickets.sql", include_str!("../../sql/071_form_duplicate_tickets.sql")),
    ("080_conversation_metrics.sql", include_str!("../../sql/080_conversation_metrics.sql")),
    ("081_productivity.sql", include_str!("../../sql/081_productivity.sql")),
    ("082_busiest_times.sql", include_str!("../../sql/082_busiest_times.sql")),
    ("083_channel_metrics.sql", include_str!("../../sql/083_channel_metrics.sql")),
    ("084_tag_trends.sql", include_str!("../../sql/084_tag_trends.sql")),
];

/// One row per view file: whether the last install put it in, and why not.
pub(super) const VIEWS_TABLE: &str = "_helpscout_views";

const VIEWS_TABLE_DDL: &str = r#"
CREATE TABLE IF NOT EXISTS _helpscout_views (
  view_file VARCHAR,
  objects VARCHAR,
  installed BOOLEAN,
  note VARCHAR,
  checked_at TIMESTAMPTZ
);
"#;

/// What a view file defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ObjectKind {
    View,
    /// A scalar macro.
    Macro,
    /// A table macro (`CREATE MACRO … AS TABLE`).
    TableMacro,
}

/// The objects a view file defines, in order: every `CREATE OR REPLACE VIEW name` and
/// `CREATE OR REPLACE MACRO name(…) [AS TABLE]` that starts a line.
pub fn objects(sql: &str) -> Vec<(ObjectKind, String)> {
    let lines: Vec<&str> = sql.lines().collect();
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let upper = line.trim_start().to_uppercase();
        let (kind, rest) = if let Some(rest) = upper.strip_prefix("CREATE OR REPLACE VIEW ") {
            (ObjectKind::View, rest)
        } else if let Some(rest) = upper.strip_prefix("CREATE OR REPLACE MACRO ") {
            // The body starts on this line or the next: `AS TABLE` there makes a table macro.
            let head = format!("{} {}", upper, lines.get(i + 1).map(|l| l.to_uppercase()).unwrap_or_default());
            let kind = if head.contains(" AS TABLE") { ObjectKind::TableMacro } else { ObjectKind::Macro };
            (kind, rest)
        } else {
            continue;
        };
        let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        // Keep the file's spelling (names are lower-case in the files).
        found.push((kind, name.to_lowercase()));
    }
    found
}

/// The outcome of installing one view file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ViewFileStatus {
    pub file: String,
    pub objects: Vec<String>,
    pub installed: bool,
    /// Why the file was skipped (the first line of DuckDB's message).
    pub note: Option<String>,
}

impl Tx<'_> {
    /// Installs every view file that compiles against the file's tables (see the module notes),
    /// and says which files were skipped and why.
    pub fn install_views(&self) -> Result<Vec<ViewFileStatus>, StoreError> {
        install(self)
    }
}

impl Warehouse {
    /// `helpscout-etl views`: installs the views into an existing file, in one transaction.
    pub fn install_views(&self) -> Result<Vec<ViewFileStatus>, StoreError> {
        self.commit(&mut Default::default(), |tx| {
            tx.ensure_log()?;
            tx.install_views()
        })
    }
}

fn install(tx: &Tx<'_>) -> Result<Vec<ViewFileStatus>, StoreError> {
    let scratch = Scratch::mirror(tx.conn)?;
    let mut statuses = Vec::new();
    for (file, sql) in VIEWS {
        let defined = objects(sql);
        let names: Vec<String> = defined.iter().map(|(_, n)| n.clone()).collect();
        match scratch.try_install(sql) {
            Ok(()) => {
                tx.conn.execute_batch(sql).map_err(db(format!("installing the view file {file}")))?;
                statuses.push(ViewFileStatus { file: file.to_string(), objects: names, installed: true, note: None });
            }
            Err(reason) => {
                for (kind, name) in &defined {
                    drop_if_exists(tx.conn, *kind, name)?;
                }
                statuses.push(ViewFileStatus {
                    file: file.to_string(),
                    objects: names,
                    installed: false,
                    note: Some(format!("skipped: {reason}")),
                });
            }
        }
    }
    record(tx.conn, &statuses)?;
    Ok(statuses)
}

fn drop_if_exists(conn: &Connection, kind: ObjectKind, name: &str) -> Result<(), StoreError> {
    let doing = "dropping a view that can no longer be installed";
    let (exists_sql, drop) = match kind {
        ObjectKind::View => (
            "SELECT count(*) FROM duckdb_views() WHERE database_name = current_database() AND schema_name = 'main' AND view_name = ? AND NOT internal",
            "DROP VIEW",
        ),
        ObjectKind::Macro => (
            "SELECT count(*) FROM duckdb_functions() WHERE database_name = current_database() AND schema_name = 'main' AND function_name = ? AND function_type = 'macro' AND NOT internal",
            "DROP MACRO",
        ),
        ObjectKind::TableMacro => (
            "SELECT count(*) FROM duckdb_functions() WHERE database_name = current_database() AND schema_name = 'main' AND function_name = ? AND function_type = 'table_macro' AND NOT internal",
            "DROP MACRO TABLE",
        ),
    };
    let n: i64 = conn.query_row(exists_sql, [name], |r| r.get(0)).map_err(db(doing))?;
    if n > 0 {
        conn.execute_batch(&format!("{drop} IF EXISTS {}", quote_ident(name))).map_err(db(doing))?;
    }
    Ok(())
}

fn record(conn: &Connection, statuses: &[ViewFileStatus]) -> Result<(), StoreError> {
    let doing = "recording which views are installed";
    conn.execute_batch(VIEWS_TABLE_DDL).map_err(db(doing))?;
    conn.execute_batch(&format!("DELETE FROM {VIEWS_TABLE}")).map_err(db(doing))?;
    let mut stmt = conn
        .prepare(&format!("INSERT INTO {VIEWS_TABLE} VALUES (?, ?, ?, ?, now())"))
        .map_err(db(doing))?;
    for s in statuses {
        stmt.execute(params![s.file, s.objects.join(", "), s.installed, s.note]).map_err(db(doing))?;
    }
    Ok(())
}

/// An in-memory database with empty tables shaped like the real file's `main` tables.
struct Scratch {
    conn: Connection,
}

impl Scratch {
    fn mirror(real: &Connection) -> Result<Scratch, StoreError> {
        let doing = "reading the tables' shapes for the views";
        let mut stmt = real
            .prepare(
                "SELECT c.table_name, c.column_name, c.data_type \
                 FROM duckdb_columns() c \
                 JOIN duckdb_tables() t ON t.database_name = c.database_name AND t.schema_name = c.schema_name AND t.table_name = c.table_name \
                 WHERE c.database_name = current_database() AND c.schema_name = 'main' AND NOT t.temporary AND NOT t.internal \
                 ORDER BY c.table_name, c.column_index",
            )
            .map_err(db(doing))?;
        let columns: Vec<(String, String, String)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(db(doing))?
            .collect::<Result<_, _>>()
            .map_err(db(doing))?;
        let conn = Connection::open_in_memory().map_err(db("opening a scratch database"))?;
        let mut tables: Vec<(String, Vec<String>)> = Vec::new();
        for (table, column, ty) in columns {
            let def = format!("{} {}", quote_ident(&column), ty);
            match tables.last_mut() {
                Some((t, defs)) if *t == table => defs.push(def),
                _ => tables.push((table, vec![def])),
            }
        }
        for (table, defs) in tables {
            // A table whose types cannot be spelled again (a user's own exotic table) is left
            // out: a view over it is then skipped, never the sync.
            let _ = conn.execute_batch(&format!("CREATE TABLE {} ({})", quote_ident(&table), defs.join(", ")));
        }
        Ok(Scratch { conn })
    }

    /// Installs the file in the scratch database (autocommit), or says why it cannot be.
    fn try_install(&self, sql: &str) -> Result<(), String> {
        self.conn.execute_batch(sql).map_err(|e| {
            let message = e.to_string();
            message.lines().next().unwrap_or("").trim().to_string()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_is_listed_once_in_order_and_defines_objects() {
        let mut on_disk: Vec<String> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/sql"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        on_disk.sort();
        let listed: Vec<String> = VIEWS.iter().map(|(n, _)| n.to_string()).collect();
        assert_eq!(listed, on_disk, "VIEWS lists every sql/*.sql file, in file-name order");
        for (name, sql) in VIEWS {
            assert!(!objects(sql).is_empty(), "{name} defines something");
        }
    }

    #[test]
    fn objects_are_parsed_with_their_kind() {
        let all: Vec<(ObjectKind, String)> = VIEWS.iter().flat_map(|(_, sql)| objects(sql)).collect();
        assert!(all.contains(&(ObjectKind::TableMacro, "log_summary".into())));
        assert!(all.contains(&(ObjectKind::Macro, "happiness_score".into())));
        assert!(all.contains(&(ObjectKind::View, "integration_health".into())));
        let names: std::collections::HashSet<&String> = all.iter().map(|(_, n)| n).collect();
        assert_eq!(names.len(), all.len(), "no object defined twice");
    }
}
