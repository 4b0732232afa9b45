//! DDL derived from the catalog: contract tables with their primary keys, the tool's own
//! tables, the join-key catalog, and the tombstones of tables whose records can vanish.

use duckdb::params;

use super::{StoreError, Tx, db};
use crate::catalog::{self, ColumnType, JOIN_KEYS, SchemaColumn, Table};

pub(super) const STATE_TABLE: &str = "_helpscout_state";
pub(super) const RUNS_TABLE: &str = "_helpscout_runs";
pub(super) const DIRTY_TABLE: &str = "_helpscout_dirty_partitions";
/// Rows whose lake slice is stale: the slice key (the partition column in epoch microseconds)
/// of each changed row, per partition.
pub(crate) const STALE_ROWS_TABLE: &str = "_helpscout_stale_rows";
/// The files of each lake partition: slices of the partition column, each `[slice_start,
/// next slice_start)`, the first starting at the smallest BIGINT.
pub(super) const SLICES_TABLE: &str = "_helpscout_lake_slices";
pub(super) const JOIN_KEYS_TABLE: &str = "_helpscout_join_keys";
/// Which lake each table's slices were exported to, and the Delta version holding them.
pub(super) const LAKE_TABLES: &str = "_helpscout_lake_tables";
/// The integration log (declared in `log.rs`; named here with the other tables the lake
/// export reads, so that the export need not import the log's writer).
pub const LOG_TABLE: &str = "helpscout_log";

/// Stale lake slices (also created with the log: the outbox's copy of log rows marks them in a
/// file no sync has prepared yet).
pub(super) const STALE_ROWS_DDL: &str = "CREATE TABLE IF NOT EXISTS _helpscout_stale_rows (
  table_name VARCHAR NOT NULL,
  partition_value VARCHAR NOT NULL,
  at_us BIGINT NOT NULL
);";

/// The tool's own tables.
const INTERNAL_DDL: &str = r#"
CREATE TABLE IF NOT EXISTS _helpscout_state (
  table_name VARCHAR NOT NULL,
  scope VARCHAR NOT NULL,
  bookmark TIMESTAMPTZ,
  last_run_id VARCHAR,
  last_synced_at TIMESTAMPTZ,
  PRIMARY KEY (table_name, scope)
);
CREATE TABLE IF NOT EXISTS _helpscout_runs (
  run_id VARCHAR PRIMARY KEY,
  started_at TIMESTAMPTZ,
  finished_at TIMESTAMPTZ,
  status VARCHAR,
  report VARCHAR
);
CREATE TABLE IF NOT EXISTS _helpscout_dirty_partitions (
  table_name VARCHAR NOT NULL,
  partition_value VARCHAR NOT NULL,
  PRIMARY KEY (table_name, partition_value)
);
CREATE TABLE IF NOT EXISTS _helpscout_lake_slices (
  table_name VARCHAR NOT NULL,
  partition_value VARCHAR NOT NULL,
  slice_start BIGINT NOT NULL,
  rows BIGINT NOT NULL,
  PRIMARY KEY (table_name, partition_value, slice_start)
);
CREATE TABLE IF NOT EXISTS _helpscout_lake_tables (
  table_name VARCHAR PRIMARY KEY,
  lake VARCHAR NOT NULL,
  delta_version BIGINT,
  exported_at TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS _helpscout_join_keys (
  join_key VARCHAR PRIMARY KEY,
  left_table VARCHAR,
  right_table VARCHAR,
  documented BOOLEAN
);
"#;

/// Double-quoted SQL identifier; `order` and `to` are keywords and stay column names.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A string literal.
pub(super) fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// The DuckDB type of a contract type.
pub fn duckdb_type(ty: &ColumnType) -> String {
    match ty {
        ColumnType::Int => "BIGINT".into(),
        ColumnType::Text => "VARCHAR".into(),
        ColumnType::Bool => "BOOLEAN".into(),
        ColumnType::Timestamp => "TIMESTAMPTZ".into(),
        ColumnType::Struct(fields) => {
            let inner: Vec<String> = fields.iter().map(|f| format!("{} {}", quote_ident(f.name), duckdb_type(&f.ty))).collect();
            format!("STRUCT({})", inner.join(", "))
        }
        ColumnType::List(item) => format!("{}[]", duckdb_type(item)),
    }
}

/// `CREATE TABLE IF NOT EXISTS`, the primary key's columns NOT NULL. The key is kept unique by
/// the writes (`Tx::stage`, `upsert`, `append_new`), not declared as a PRIMARY KEY: DuckDB
/// holds such an index in memory whole once a commit touches the table and rewrites it whole at
/// every checkpoint: at five million keys it took 90 MB, a commit 73 ms instead of 18 and
/// closing the file 68–273 ms instead of 5.
fn create_table_sql(table: &str, columns: &[SchemaColumn], primary_key: &[&str]) -> String {
    let parts: Vec<String> = columns
        .iter()
        .map(|c| {
            let nullable = c.nullable && !primary_key.contains(&c.name.as_str());
            format!("  {} {}{}", quote_ident(&c.name), duckdb_type(&c.ty), if nullable { "" } else { " NOT NULL" })
        })
        .collect();
    format!("CREATE TABLE IF NOT EXISTS {} (\n{}\n)", quote_ident(table), parts.join(",\n"))
}

fn tombstones_sql(tombstones: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {} (id BIGINT PRIMARY KEY, reason VARCHAR, merged_into BIGINT, detected_at TIMESTAMPTZ, run_id VARCHAR)",
        quote_ident(tombstones)
    )
}

/// Hive's name for the partition of rows whose partition column is null.
pub(super) const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// The partition a row belongs to, as SQL over the table's columns ('' for unpartitioned tables).
/// Computed from epoch microseconds so that no time-zone setting can move a row's month.
pub(super) fn partition_sql(table: &Table) -> String {
    match table.partition_month_of {
        Some(col) => format!("coalesce(strftime(make_timestamp(epoch_us({})), '%Y-%m'), '{NULL_PARTITION}')", quote_ident(col)),
        None => "''".to_string(),
    }
}

impl Tx<'_> {
    /// Creates the tool's tables and the given contract tables; fails clearly when an existing
    /// table has other columns than this configuration expects.
    pub fn ensure_tables(&self, tables: &[(&'static Table, Vec<SchemaColumn>)]) -> Result<(), StoreError> {
        self.conn.execute_batch(&format!("{STALE_ROWS_DDL}\n{INTERNAL_DDL}")).map_err(db("creating the tool's tables"))?;
        for join in JOIN_KEYS {
            self.conn
                .execute(
                    &format!("INSERT OR IGNORE INTO {JOIN_KEYS_TABLE} VALUES (?, ?, ?, ?)"),
                    params![join.text(), join.left.0.name, join.right.0.name, join.documented],
                )
                .map_err(db("cataloguing the join keys"))?;
        }
        for removals in catalog::ALL.iter().filter_map(|t| t.removals) {
            self.conn.execute_batch(&tombstones_sql(removals.tombstones)).map_err(db("creating the tombstones"))?;
        }
        for (table, columns) in tables {
            let expected: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
            let found = self.column_names(table)?;
            if found.is_empty() {
                self.conn
                    .execute_batch(&create_table_sql(table.name, columns, table.primary_key))
                    .map_err(db(format!("creating table {}", table.name)))?;
            } else if found != expected {
                return Err(StoreError::SchemaMismatch {
                    table: table.name.to_string(),
                    path: self.path.display().to_string(),
                    found: found.join(", "),
                    expected: expected.join(", "),
                });
            }
        }
        Ok(())
    }

    /// The columns a contract table has in the file (empty when it does not exist).
    pub(super) fn column_names(&self, table: &Table) -> Result<Vec<String>, StoreError> {
        if let Some(found) = self.columns.borrow().get(table.name) {
            return Ok(found.clone());
        }
        let doing = "reading the table's columns";
        let mut stmt = self
            .conn
            .prepare("SELECT column_name FROM information_schema.columns WHERE table_schema = 'main' AND table_name = ? ORDER BY ordinal_position")
            .map_err(db(doing))?;
        let names: Vec<String> = stmt.query_map([table.name], |r| r.get::<_, String>(0)).map_err(db(doing))?.collect::<Result<Vec<_>, _>>().map_err(db(doing))?;
        // A table not created yet is asked again.
        if !names.is_empty() {
            self.columns.borrow_mut().insert(table.name.to_string(), names.clone());
        }
        Ok(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::types::field;

    #[test]
    fn duckdb_types_follow_the_contract() {
        const PERSON: ColumnType = ColumnType::Struct(&[field("id", ColumnType::Int), field("photo_url", ColumnType::Text)]);
        assert_eq!(duckdb_type(&PERSON), "STRUCT(\"id\" BIGINT, \"photo_url\" VARCHAR)");
        assert_eq!(duckdb_type(&ColumnType::List(&PERSON)), format!("{}[]", duckdb_type(&PERSON)));
        assert_eq!(duckdb_type(&ColumnType::Timestamp), "TIMESTAMPTZ");
    }

    #[test]
    fn keywords_are_quoted_in_ddl() {
        let cols = vec![
            SchemaColumn { name: "id".into(), ty: ColumnType::Int, nullable: false },
            SchemaColumn { name: "order".into(), ty: ColumnType::Int, nullable: true },
        ];
        let sql = create_table_sql("t", &cols, &["order"]);
        assert!(sql.contains("\"order\" BIGINT NOT NULL") && sql.contains("\"id\" BIGINT NOT NULL"), "a key column is NOT NULL: {sql}");
        assert!(!sql.contains("PRIMARY KEY"), "no index the checkpoint rewrites whole: {sql}");
        assert_eq!(literal("it's"), "'it''s'");
    }
}
