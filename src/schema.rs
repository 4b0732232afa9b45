//! The column type model of the data contract, and what is derived from it: Arrow schemas and
//! DuckDB DDL. Table declarations (`tables`) are written in these terms only.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};

/// A documented column type (see the data contract's type table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// INTEGER → BIGINT / Int64
    Int,
    /// STRING → VARCHAR / Utf8
    Text,
    /// BOOLEAN → BOOLEAN / Boolean
    Bool,
    /// DATE-TIME → TIMESTAMPTZ / Timestamp(µs, "UTC")
    Timestamp,
    /// OBJECT → STRUCT / Struct
    Struct(&'static [StructField]),
    /// ARRAY → LIST / List
    List(&'static ColumnType),
}

/// A field of a STRUCT column. Its API key is the camelCase of `name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StructField {
    pub name: &'static str,
    pub ty: ColumnType,
}

pub const fn field(name: &'static str, ty: ColumnType) -> StructField {
    StructField { name, ty }
}

/// Arrow's conventional name for list items; DuckDB and Parquet readers accept it.
const LIST_ITEM: &str = "item";

pub const UTC: &str = "UTC";

impl ColumnType {
    pub fn arrow(&self) -> DataType {
        match self {
            ColumnType::Int => DataType::Int64,
            ColumnType::Text => DataType::Utf8,
            ColumnType::Bool => DataType::Boolean,
            ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())),
            ColumnType::Struct(fields) => DataType::Struct(struct_fields(fields)),
            ColumnType::List(item) => {
                DataType::List(Arc::new(Field::new(LIST_ITEM, item.arrow(), true)))
            }
        }
    }

    pub fn duckdb(&self) -> String {
        match self {
            ColumnType::Int => "BIGINT".into(),
            ColumnType::Text => "VARCHAR".into(),
            ColumnType::Bool => "BOOLEAN".into(),
            ColumnType::Timestamp => "TIMESTAMPTZ".into(),
            ColumnType::Struct(fields) => {
                let inner: Vec<String> = fields
                    .iter()
                    .map(|f| format!("{} {}", quote_ident(f.name), f.ty.duckdb()))
                    .collect();
                format!("STRUCT({})", inner.join(", "))
            }
            ColumnType::List(item) => format!("{}[]", item.duckdb()),
        }
    }
}

fn struct_fields(fields: &[StructField]) -> Fields {
    fields
        .iter()
        .map(|f| Field::new(f.name, f.ty.arrow(), true))
        .collect::<Vec<_>>()
        .into()
}

/// Double-quoted SQL identifier; `order` and `to` are keywords and stay column names.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A named, typed column of a table schema (after selection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaColumn {
    pub name: String,
    pub ty: ColumnType,
    /// Nullable in DuckDB (primary-key columns are not).
    pub nullable: bool,
}

/// Arrow schema for a list of columns.
pub fn arrow_schema(columns: &[SchemaColumn]) -> SchemaRef {
    Arc::new(Schema::new(
        columns
            .iter()
            .map(|c| Field::new(&c.name, c.ty.arrow(), true))
            .collect::<Vec<_>>(),
    ))
}

/// `CREATE TABLE IF NOT EXISTS` with the primary key.
pub fn create_table_sql(table: &str, columns: &[SchemaColumn], primary_key: &[&str]) -> String {
    let mut parts: Vec<String> = columns
        .iter()
        .map(|c| {
            let not_null = if c.nullable { "" } else { " NOT NULL" };
            format!("  {} {}{}", quote_ident(&c.name), c.ty.duckdb(), not_null)
        })
        .collect();
    if !primary_key.is_empty() {
        let pk: Vec<String> = primary_key.iter().map(|k| quote_ident(k)).collect();
        parts.push(format!("  PRIMARY KEY ({})", pk.join(", ")));
    }
    format!(
        "CREATE TABLE IF NOT EXISTS {} (\n{}\n)",
        quote_ident(table),
        parts.join(",\n")
    )
}

/// camelCase of a snake_case name: the API's spelling of a contract column.
pub fn camel_case(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for ch in snake.chars() {
        if ch == '_' {
            upper = !out.is_empty();
        } else if upper {
            out.extend(ch.to_uppercase());
            upper = false;
        } else {
            out.push(ch);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PERSON: ColumnType = ColumnType::Struct(&[
        field("id", ColumnType::Int),
        field("photo_url", ColumnType::Text),
    ]);

    #[test]
    fn camel_case_matches_api_spelling() {
        assert_eq!(camel_case("photo_url"), "photoUrl");
        assert_eq!(camel_case("customer_waiting_since"), "customerWaitingSince");
        assert_eq!(camel_case("id"), "id");
        assert_eq!(camel_case("_extra"), "extra");
    }

    #[test]
    fn duckdb_types_follow_the_contract() {
        assert_eq!(PERSON.duckdb(), "STRUCT(\"id\" BIGINT, \"photo_url\" VARCHAR)");
        assert_eq!(ColumnType::List(&PERSON).duckdb(), format!("{}[]", PERSON.duckdb()));
        assert_eq!(ColumnType::Timestamp.duckdb(), "TIMESTAMPTZ");
    }

    #[test]
    fn arrow_types_follow_the_contract() {
        assert_eq!(
            ColumnType::Timestamp.arrow(),
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        );
        let DataType::List(item) = ColumnType::List(&ColumnType::Text).arrow() else {
            panic!("list expected")
        };
        assert_eq!(item.data_type(), &DataType::Utf8);
    }

    #[test]
    fn keywords_are_quoted_in_ddl() {
        let cols = vec![
            SchemaColumn { name: "id".into(), ty: ColumnType::Int, nullable: false },
            SchemaColumn { name: "order".into(), ty: ColumnType::Int, nullable: true },
        ];
        let sql = create_table_sql("t", &cols, &["id"]);
        assert!(sql.contains("\"order\" BIGINT"), "{sql}");
        assert!(sql.contains("PRIMARY KEY (\"id\")"), "{sql}");
    }
}
