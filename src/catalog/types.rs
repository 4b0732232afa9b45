//! The column type model of the data contract and the Arrow schema derived from it. Table
//! declarations are written in these terms only; the store derives its DDL from the same types.

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
            ColumnType::List(item) => DataType::List(Arc::new(Field::new(LIST_ITEM, item.arrow(), true))),
        }
    }

    /// The member of a struct type, by name.
    pub fn member(&self, name: &str) -> Option<&'static StructField> {
        match self {
            ColumnType::Struct(fields) => fields.iter().find(|f| f.name == name),
            _ => None,
        }
    }
}

fn struct_fields(fields: &[StructField]) -> Fields {
    fields.iter().map(|f| Field::new(f.name, f.ty.arrow(), true)).collect::<Vec<_>>().into()
}

/// A named, typed column of a table schema (after column selection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaColumn {
    pub name: String,
    pub ty: ColumnType,
    /// Nullable in the store (primary-key columns are not).
    pub nullable: bool,
}

/// Arrow schema for a list of columns.
pub fn arrow_schema(columns: &[SchemaColumn]) -> SchemaRef {
    Arc::new(Schema::new(columns.iter().map(|c| Field::new(&c.name, c.ty.arrow(), true)).collect::<Vec<_>>()))
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

    #[test]
    fn camel_case_matches_api_spelling() {
        assert_eq!(camel_case("photo_url"), "photoUrl");
        assert_eq!(camel_case("customer_waiting_since"), "customerWaitingSince");
        assert_eq!(camel_case("id"), "id");
        assert_eq!(camel_case("_extra"), "extra");
    }

    #[test]
    fn arrow_types_follow_the_contract() {
        assert_eq!(ColumnType::Timestamp.arrow(), DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())));
        let DataType::List(item) = ColumnType::List(&ColumnType::Text).arrow() else { panic!("list expected") };
        assert_eq!(item.data_type(), &DataType::Utf8);
        const PERSON: ColumnType = ColumnType::Struct(&[field("id", ColumnType::Int), field("photo_url", ColumnType::Text)]);
        assert_eq!(PERSON.member("photo_url").map(|f| f.ty), Some(ColumnType::Text));
        assert!(PERSON.member("email").is_none());
    }
}
