//! API records (JSON) → contract rows → Arrow record batches.
//!
//! Every table is converted by the same code, driven by its declaration: column sources, nested
//! struct fields (the API's camelCase keys), derived columns, parent ids. Fields the contract does
//! not know are kept, as JSON, in the `_extra` metadata column rather than dropped.

mod batch;
mod values;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::catalog::types::{arrow_schema, camel_case};
use crate::catalog::{Column, META_EXTRA, META_EXTRACTED_AT, META_RUN_ID, SchemaColumn, Source, Table};
use values::{PathRef, Plan, as_i64, convert_value, is_consumed, lookup, parse_timestamp, snippet};

#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("the API sent a {table} record that is not a JSON object: {snippet}")]
    NotAnObject { table: &'static str, snippet: String },
    #[error("the API sent a {table} record without its primary key `{key}`: {snippet}")]
    MissingKey { table: &'static str, key: &'static str, snippet: String },
    #[error("could not build Arrow data for table {table}: {source}")]
    Arrow { table: &'static str, source: arrow::error::ArrowError },
}

/// Values stamped on every row of a run.
#[derive(Debug, Clone)]
pub struct RunStamp {
    pub run_id: String,
    pub extracted_at: DateTime<Utc>,
}

/// Converts one table's API records into rows and batches of its (selected) schema.
pub struct TableConverter {
    pub table: &'static Table,
    columns: Vec<ColumnPlan>,
    schema_columns: Vec<SchemaColumn>,
    schema: SchemaRef,
    /// Top-level API keys consumed by a column (everything else goes to `_extra`), sorted.
    consumed: Vec<String>,
    /// Keys under `_embedded` consumed by a column or an embedded child table, sorted.
    consumed_embedded: Vec<String>,
}

/// A selected column with what its conversion needs worked out once, not per row.
struct ColumnPlan {
    column: &'static Column,
    /// The API key of a `Source::Api` column (camelCase of its name).
    api_key: String,
    plan: Plan,
}

/// A converted row: contract column name → JSON value Arrow can decode.
pub type Row = Map<String, Value>;

impl TableConverter {
    /// `selected`: the columns to keep (None: all). Primary and parent keys are always kept.
    pub fn new(table: &'static Table, selected: Option<&[String]>) -> Self {
        let keep = |c: &Column| {
            selected.is_none_or(|sel| sel.iter().any(|s| s == c.name))
                || table.primary_key.contains(&c.name)
                || table.parent_key == Some(c.name)
                || table.partition_month_of == Some(c.name)
                || table.cursor() == Some(c.name)
        };
        let columns: Vec<&'static Column> = table.columns.iter().filter(|c| keep(c)).collect();
        let mut schema_columns: Vec<SchemaColumn> = columns
            .iter()
            .map(|c| SchemaColumn {
                name: c.name.to_string(),
                ty: c.ty,
                nullable: !table.primary_key.contains(&c.name),
            })
            .collect();
        schema_columns.extend(crate::catalog::meta_columns());
        let schema = arrow_schema(&schema_columns);

        let mut consumed = vec!["_links".to_string()];
        let mut consumed_embedded = Vec::new();
        // All declared columns count as known, selected or not: deselected is not unknown.
        for c in table.columns {
            let paths: Vec<&str> = match c.source {
                Source::Api => vec![],
                Source::Path(p) | Source::Label(p, _) => vec![p],
                Source::LaterOf(a, b) => vec![a, b],
                Source::ParentId => continue,
            };
            if paths.is_empty() {
                consumed.push(camel_case(c.name));
            }
            for p in paths {
                match p.split_once('.') {
                    Some(("_embedded", rest)) => {
                        consumed_embedded.push(rest.split('.').next().unwrap_or(rest).to_string());
                    }
                    _ => {
                        consumed.push(p.split('.').next().unwrap_or(p).to_string());
                    }
                }
            }
        }
        for child in table.embedded_children() {
            consumed_embedded.push(child.list_key.to_string());
        }
        for keys in [&mut consumed, &mut consumed_embedded] {
            keys.sort();
            keys.dedup();
        }
        let columns = columns
            .into_iter()
            .map(|column| ColumnPlan { column, api_key: camel_case(column.name), plan: Plan::of(&column.ty) })
            .collect();
        TableConverter { table, columns, schema_columns, schema, consumed, consumed_embedded }
    }

    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    pub fn schema_columns(&self) -> &[SchemaColumn] {
        &self.schema_columns
    }

    /// One API record → one contract row.
    pub fn row(&self, record: &Value, parent_id: Option<i64>, stamp: &RunStamp) -> Result<Row, ConvertError> {
        let Value::Object(obj) = record else {
            return Err(ConvertError::NotAnObject { table: self.table.name, snippet: snippet(record) });
        };
        let mut extra = Map::new();
        let mut row = Map::with_capacity(self.columns.len() + 3);
        for ColumnPlan { column: c, api_key, plan } in &self.columns {
            let value = match c.source {
                Source::Api => {
                    let found = obj.get(api_key.as_str()).or_else(|| obj.get(c.name));
                    convert_value(found, plan, PathRef::Root(api_key), &mut extra)
                }
                Source::Path(p) => convert_value(lookup(obj, p), plan, PathRef::Root(p), &mut extra),
                Source::ParentId => parent_id.map(Value::from).unwrap_or(Value::Null),
                Source::LaterOf(a, b) => {
                    let ta = lookup(obj, a).and_then(parse_timestamp);
                    let tb = lookup(obj, b).and_then(parse_timestamp);
                    ta.max(tb).map(Value::from).unwrap_or(Value::Null)
                }
                Source::Label(p, labels) => lookup(obj, p)
                    .and_then(as_i64)
                    .and_then(|code| labels.iter().find(|(k, _)| *k == code))
                    .map(|(_, label)| Value::from(*label))
                    .unwrap_or(Value::Null),
            };
            row.insert(c.name.to_string(), value);
        }
        for key in self.table.primary_key {
            if row.get(*key).is_none_or(Value::is_null) {
                return Err(ConvertError::MissingKey { table: self.table.name, key, snippet: snippet(record) });
            }
        }
        for (key, value) in obj {
            if key == "_embedded" {
                if let Value::Object(embedded) = value {
                    for (k, v) in embedded {
                        if !is_consumed(&self.consumed_embedded, k) {
                            extra.insert(format!("_embedded.{k}"), v.clone());
                        }
                    }
                }
            } else if !is_consumed(&self.consumed, key) {
                extra.insert(key.clone(), value.clone());
            }
        }
        row.insert(META_EXTRACTED_AT.into(), Value::from(stamp.extracted_at.timestamp_micros()));
        row.insert(META_RUN_ID.into(), Value::from(stamp.run_id.clone()));
        row.insert(
            META_EXTRA.into(),
            if extra.is_empty() { Value::Null } else { Value::String(Value::Object(extra).to_string()) },
        );
        Ok(row)
    }

    /// Rows → one record batch of this table's schema.
    pub fn batch(&self, rows: &[Row]) -> Result<RecordBatch, ConvertError> {
        // Rows made by `row` hold exactly the JSON types of their columns: their arrays are built
        // directly. Anything else goes through arrow_json's decoder, which decides.
        match batch::direct_batch(&self.schema, rows) {
            Some(batch) => batch.map_err(|source| ConvertError::Arrow { table: self.table.name, source }),
            None => self.decoded_batch(rows),
        }
    }

    fn decoded_batch(&self, rows: &[Row]) -> Result<RecordBatch, ConvertError> {
        let arrow = |source| ConvertError::Arrow { table: self.table.name, source };
        let mut decoder = arrow_json::ReaderBuilder::new(self.schema.clone())
            .with_batch_size(rows.len().max(1))
            .build_decoder()
            .map_err(arrow)?;
        decoder.serialize(rows).map_err(arrow)?;
        Ok(decoder.flush().map_err(arrow)?.unwrap_or_else(|| RecordBatch::new_empty(self.schema.clone())))
    }

    /// The primary key of a converted row, as a string usable in a map.
    pub fn key_of(&self, row: &Row) -> String {
        let mut key = String::new();
        for k in self.table.primary_key {
            key.push_str(&row.get(*k).map(Value::to_string).unwrap_or_default());
            key.push('\u{1f}');
        }
        key
    }
}


#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{CONVERSATIONS, CONVERSATION_THREADS, CUSTOMERS, HAPPINESS_RATINGS_REPORT};
    use values::parse_api_timestamp;
    use arrow::array::{Array, AsArray, Int64Array};
    use arrow::datatypes::TimestampMicrosecondType;
    use serde_json::json;

    fn stamp() -> RunStamp {
        RunStamp { run_id: "run-1".into(), extracted_at: DateTime::from_timestamp(1_700_000_000, 0).unwrap() }
    }

    fn conversation() -> Value {
        json!({
            "id": 10, "number": 7, "threads": 2, "type": "email", "folderId": 3, "status": "active",
            "state": "published", "subject": "Ünïcode <script>", "mailboxId": 1,
            "primaryCustomer": {"id": 5, "type": "customer", "first": "Ana", "email": "a@x.io"},
            "createdAt": "2024-06-03T12:00:00Z", "userUpdatedAt": "2024-06-04T12:00:00Z",
            "customerWaitingSince": {"time": "2024-06-05T08:00:00Z", "friendly": "1 day", "latestReplyFrom": "customer"},
            "closedBy": 4, "tags": [{"id": 1, "color": "#fff", "tag": "vip"}], "cc": [], "bcc": ["b@x.io"],
            "customFields": [{"id": 9, "name": "Plan", "value": "2", "text": "Pro"}],
            "snooze": {"until": "2024-07-01T00:00:00Z"},
            "_links": {"web": {"href": "https://secure.helpscout.net/conversation/10/7"}},
            "_embedded": {"threads": [{"id": 1}]}
        })
    }

    #[test]
    fn conversation_row_follows_the_contract() {
        let conv = TableConverter::new(&CONVERSATIONS, None);
        let row = conv.row(&conversation(), None, &stamp()).unwrap();
        assert_eq!(row["primary_customer"]["id"], json!(5));
        assert_eq!(row["primary_customer"]["photo_url"], Value::Null);
        assert_eq!(row["closed_by"], json!(4));
        assert_eq!(row["customer_waiting_since"]["latest_reply_from"], json!("customer"));
        // updated_at: the later of userUpdatedAt and customerWaitingSince.time
        let expected = DateTime::parse_from_rfc3339("2024-06-05T08:00:00Z").unwrap().timestamp_micros();
        assert_eq!(row["updated_at"], json!(expected));
        assert_eq!(row["assignee"], Value::Null);
        // unknown fields kept, embedded children and links not
        let extra: Value = serde_json::from_str(row["_extra"].as_str().unwrap()).unwrap();
        assert_eq!(extra, json!({"snooze": {"until": "2024-07-01T00:00:00Z"}}));
    }

    #[test]
    fn batch_has_the_contract_schema() {
        let conv = TableConverter::new(&CONVERSATIONS, None);
        let row = conv.row(&conversation(), None, &stamp()).unwrap();
        let batch = conv.batch(&[row]).unwrap();
        assert_eq!(batch.num_rows(), 1);
        assert_eq!(batch.schema(), conv.schema());
        let ids = batch.column_by_name("id").unwrap().as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!(ids.value(0), 10);
        let created = batch.column_by_name("created_at").unwrap().as_primitive::<TimestampMicrosecondType>();
        assert_eq!(created.value(0), 1_717_416_000_000_000);
        let tags = batch.column_by_name("tags").unwrap().as_list::<i32>();
        assert_eq!(tags.value(0).len(), 1);
    }

    #[test]
    fn thread_gets_its_conversation_id_and_attachments() {
        let conv = TableConverter::new(&CONVERSATION_THREADS, None);
        let thread = json!({"id": 77, "type": "message", "createdAt": "2024-06-03T12:00:00Z",
            "to": ["c@x.io"], "_embedded": {"attachments": [{"id": 1, "filename": "a.png", "mimeType": "image/png", "width": 2, "height": 3, "size": 4, "state": "ok"}]}});
        let row = conv.row(&thread, Some(10), &stamp()).unwrap();
        assert_eq!(row["conversation_id"], json!(10));
        assert_eq!(row["to"], json!(["c@x.io"]));
        assert_eq!(row["attachments"][0]["mime_type"], json!("image/png"));
        let extra: Value = serde_json::from_str(row["_extra"].as_str().unwrap()).unwrap();
        assert_eq!(extra, json!({"_embedded.attachments.0.state": "ok"}));
        conv.batch(&[row]).unwrap();
    }

    #[test]
    fn customer_sub_objects_come_from_embedded() {
        let conv = TableConverter::new(&CUSTOMERS, None);
        let customer = json!({"id": 5, "firstName": "Ana", "createdAt": "2024-01-01T00:00:00Z",
            "_embedded": {"emails": [{"id": 1, "value": "a@x.io", "type": "work"}],
                          "social_profiles": [{"id": 2, "value": "ana", "type": "twitter"}],
                          "address": {"city": "Lyon", "postalCode": "69001", "lines": ["1 rue"]}}});
        let row = conv.row(&customer, None, &stamp()).unwrap();
        assert_eq!(row["first_name"], json!("Ana"));
        assert_eq!(row["emails"][0]["value"], json!("a@x.io"));
        assert_eq!(row["social_profiles"][0]["type"], json!("twitter"));
        assert_eq!(row["address"]["postal_code"], json!("69001"));
        assert_eq!(row["_extra"], Value::Null);
        conv.batch(&[row]).unwrap();
    }

    #[test]
    fn happiness_result_maps_its_odd_keys() {
        let conv = TableConverter::new(&HAPPINESS_RATINGS_REPORT, None);
        let result = json!({"id": 10, "number": 7, "threadid": 77, "ratingId": 3, "ratingCustomerId": 5,
            "ratingCreatedAt": "2024-06-03T12:00:00Z", "type": "email"});
        let row = conv.row(&result, None, &stamp()).unwrap();
        assert_eq!(row["conversation_id"], json!(10));
        assert_eq!(row["thread_id"], json!(77));
        assert_eq!(row["rating"], json!("not_good"));
        let extra: Value = serde_json::from_str(row["_extra"].as_str().unwrap()).unwrap();
        assert_eq!(extra, json!({"number": 7}));
    }

    #[test]
    fn values_of_the_wrong_type_are_kept_not_lost() {
        let conv = TableConverter::new(&CONVERSATIONS, None);
        let mut c = conversation();
        c["folderId"] = json!("not-a-number");
        c["number"] = json!("42");
        let row = conv.row(&c, None, &stamp()).unwrap();
        assert_eq!(row["folder_id"], Value::Null);
        assert_eq!(row["number"], json!(42));
        let extra: Value = serde_json::from_str(row["_extra"].as_str().unwrap()).unwrap();
        assert_eq!(extra["folderId"], json!("not-a-number"));
    }

    #[test]
    fn direct_batches_equal_arrow_json_decoding() {
        let conv = TableConverter::new(&CONVERSATIONS, None);
        let mut sparse = conversation();
        for key in ["primaryCustomer", "tags", "customFields", "bcc", "customerWaitingSince"] {
            sparse.as_object_mut().unwrap().remove(key);
        }
        sparse["id"] = json!(11);
        sparse["tags"] = json!([{"id": 2}, null]);
        let rows = vec![conv.row(&conversation(), None, &stamp()).unwrap(), conv.row(&sparse, None, &stamp()).unwrap()];
        assert_eq!(conv.batch(&rows).unwrap(), conv.decoded_batch(&rows).unwrap());
        assert_eq!(conv.batch(&[]).unwrap(), conv.decoded_batch(&[]).unwrap());
        let threads = TableConverter::new(&CONVERSATION_THREADS, None);
        let thread = json!({"id": 77, "type": "message", "createdAt": "2024-06-03T12:00:00Z", "to": ["c@x.io"],
            "_embedded": {"attachments": [{"id": 1, "filename": "a.png", "width": 2}]}});
        let rows = vec![threads.row(&thread, Some(10), &stamp()).unwrap()];
        assert_eq!(threads.batch(&rows).unwrap(), threads.decoded_batch(&rows).unwrap());
        let customers = TableConverter::new(&CUSTOMERS, None);
        let customer = json!({"id": 5, "_embedded": {"address": {"city": "Lyon", "lines": ["1 rue", "2e étage"]}}});
        let rows = vec![customers.row(&customer, None, &stamp()).unwrap()];
        assert_eq!(customers.batch(&rows).unwrap(), customers.decoded_batch(&rows).unwrap());
        // A row not made by `row` (a string where a number belongs) is left to arrow_json.
        let mut odd = rows[0].clone();
        odd.insert("id".into(), json!("5"));
        assert!(batch::direct_batch(&customers.schema(), std::slice::from_ref(&odd)).is_none());
    }

    #[test]
    fn api_timestamps_parse_like_rfc3339() {
        for s in ["2024-06-03T12:00:00Z", "1970-01-01T00:00:00Z", "2024-02-29T23:59:59Z", "0001-01-01T00:00:00Z"] {
            let general = DateTime::parse_from_rfc3339(s).unwrap().timestamp_micros();
            assert_eq!(parse_api_timestamp(s), Some(general), "{s}");
            assert_eq!(parse_timestamp(&json!(s)), Some(general), "{s}");
        }
        // Not the API's spelling: left to the general parser, which decides.
        for s in ["2024-06-03T12:00:00.5Z", "2024-06-03T14:00:00+02:00", "2024-06-03t12:00:00z", "2024-06-30T23:59:60Z"] {
            assert_eq!(parse_api_timestamp(s), None, "{s}");
            let general = DateTime::parse_from_rfc3339(s).ok().map(|t| t.timestamp_micros());
            assert_eq!(parse_timestamp(&json!(s)), general, "{s}");
        }
        for s in ["2023-02-29T00:00:00Z", "2024-13-01T00:00:00Z", "2024-06-03T24:00:00Z", "2024-06-0aT12:00:00Z", "+024-06-03T12:00:00Z"] {
            assert_eq!(parse_timestamp(&json!(s)), None, "{s}");
        }
    }

    #[test]
    fn records_without_a_key_or_not_objects_are_errors() {
        let conv = TableConverter::new(&CONVERSATIONS, None);
        assert!(matches!(conv.row(&json!({"number": 1}), None, &stamp()), Err(ConvertError::MissingKey { .. })));
        assert!(matches!(conv.row(&json!([1]), None, &stamp()), Err(ConvertError::NotAnObject { .. })));
    }

    #[test]
    fn column_selection_keeps_keys() {
        let sel = vec!["subject".to_string()];
        let conv = TableConverter::new(&CONVERSATIONS, Some(&sel));
        let names: Vec<_> = conv.schema_columns().iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["created_at", "id", "subject", "updated_at", "_extracted_at", "_run_id", "_extra"]);
        let row = conv.row(&conversation(), None, &stamp()).unwrap();
        let batch = conv.batch(&[row]).unwrap();
        assert!(batch.column_by_name("subject").unwrap().null_count() == 0);
    }
}
