//! Converted rows → one Arrow record batch, built array by array.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Int64Array, ListArray, RecordBatch, RecordBatchOptions, StringArray, StructArray,
    TimestampMicrosecondArray,
};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use arrow::error::ArrowError;
use serde_json::Value;

use super::Row;

static NULL: Value = Value::Null;

/// The batch of `rows`, built array by array; None when a value is not of its column's JSON
/// type (the caller then lets arrow_json decode the rows).
pub(super) fn direct_batch(schema: &SchemaRef, rows: &[Row]) -> Option<Result<RecordBatch, ArrowError>> {
    let mut columns = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let values: Vec<&Value> = rows.iter().map(|r| r.get(field.name()).unwrap_or(&NULL)).collect();
        match direct_array(field.data_type(), &values)? {
            Ok(array) => columns.push(array),
            Err(e) => return Some(Err(e)),
        }
    }
    let options = RecordBatchOptions::new().with_row_count(Some(rows.len()));
    Some(RecordBatch::try_new_with_options(schema.clone(), columns, &options))
}

fn direct_array(ty: &DataType, values: &[&Value]) -> Option<Result<ArrayRef, ArrowError>> {
    /// The values as `Option<T>`, or None if one is neither null nor a `T`.
    fn each<'v, T>(values: &[&'v Value], get: impl Fn(&'v Value) -> Option<T>) -> Option<Vec<Option<T>>> {
        values.iter().map(|v| if v.is_null() { Some(None) } else { get(v).map(Some) }).collect()
    }
    let array: ArrayRef = match ty {
        DataType::Int64 => Arc::new(Int64Array::from(each(values, Value::as_i64)?)),
        DataType::Utf8 => Arc::new(StringArray::from(each(values, Value::as_str)?)),
        DataType::Boolean => Arc::new(BooleanArray::from(each(values, Value::as_bool)?)),
        DataType::Timestamp(TimeUnit::Microsecond, tz) => {
            Arc::new(TimestampMicrosecondArray::from(each(values, Value::as_i64)?).with_timezone_opt(tz.clone()))
        }
        DataType::Struct(fields) => {
            if values.iter().any(|v| !v.is_null() && !v.is_object()) {
                return None;
            }
            let mut children = Vec::with_capacity(fields.len());
            for f in fields {
                let child: Vec<&Value> = values.iter().map(|v| v.get(f.name()).unwrap_or(&NULL)).collect();
                match direct_array(f.data_type(), &child)? {
                    Ok(array) => children.push(array),
                    Err(e) => return Some(Err(e)),
                }
            }
            let nulls = NullBuffer::from(values.iter().map(|v| v.is_object()).collect::<Vec<bool>>());
            match StructArray::try_new(fields.clone(), children, Some(nulls)) {
                Ok(array) => Arc::new(array),
                Err(e) => return Some(Err(e)),
            }
        }
        DataType::List(item) => {
            let mut offsets = Vec::with_capacity(values.len() + 1);
            offsets.push(0i32);
            let mut flat: Vec<&Value> = Vec::new();
            let mut valid = Vec::with_capacity(values.len());
            for v in values {
                match v {
                    Value::Array(items) => {
                        flat.extend(items.iter());
                        valid.push(true);
                    }
                    Value::Null => valid.push(false),
                    _ => return None,
                }
                offsets.push(i32::try_from(flat.len()).ok()?);
            }
            let child = match direct_array(item.data_type(), &flat)? {
                Ok(array) => array,
                Err(e) => return Some(Err(e)),
            };
            match ListArray::try_new(item.clone(), OffsetBuffer::new(offsets.into()), child, Some(NullBuffer::from(valid))) {
                Ok(array) => Arc::new(array),
                Err(e) => return Some(Err(e)),
            }
        }
        _ => return None,
    };
    Some(Ok(array))
}

