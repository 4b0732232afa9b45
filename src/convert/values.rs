//! JSON values → the values of a declared column type; timestamps in the API's spelling.

use std::fmt;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::catalog::ColumnType;
use crate::catalog::types::camel_case;

/// How a value of a declared type is converted; struct fields carry their API keys.
pub(super) enum Plan {
    Int,
    Text,
    Bool,
    Timestamp,
    Struct(Vec<FieldPlan>),
    List(Box<Plan>),
}

pub(super) struct FieldPlan {
    name: &'static str,
    /// camelCase of `name`.
    key: String,
    plan: Plan,
}

impl Plan {
    pub(super) fn of(ty: &ColumnType) -> Plan {
        match ty {
            ColumnType::Int => Plan::Int,
            ColumnType::Text => Plan::Text,
            ColumnType::Bool => Plan::Bool,
            ColumnType::Timestamp => Plan::Timestamp,
            ColumnType::Struct(fields) => Plan::Struct(
                fields.iter().map(|f| FieldPlan { name: f.name, key: camel_case(f.name), plan: Plan::of(&f.ty) }).collect(),
            ),
            ColumnType::List(item) => Plan::List(Box::new(Plan::of(item))),
        }
    }
}

/// Where a value sits in the API record (`customerWaitingSince.time`, `tags.0.id`); spelled out
/// only when the value goes to `_extra`.
#[derive(Clone, Copy)]
pub(super) enum PathRef<'a> {
    Root(&'a str),
    Key(&'a PathRef<'a>, &'a str),
    Index(&'a PathRef<'a>, usize),
}

impl fmt::Display for PathRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathRef::Root(p) => f.write_str(p),
            PathRef::Key(parent, k) => write!(f, "{parent}.{k}"),
            PathRef::Index(parent, i) => write!(f, "{parent}.{i}"),
        }
    }
}


#[inline]
pub(super) fn lookup<'a>(obj: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut current = obj.get(parts.next()?)?;
    for part in parts {
        current = current.as_object()?.get(part)?;
    }
    Some(current)
}

#[inline]
pub(super) fn is_consumed(sorted: &[String], key: &str) -> bool {
    sorted.binary_search_by(|k| k.as_str().cmp(key)).is_ok()
}

/// Converts an API value to what Arrow decodes for `plan`. A value that cannot be represented
/// losslessly becomes null in its column and is kept verbatim in `_extra` under its path.
#[inline]
pub(super) fn convert_value(value: Option<&Value>, plan: &Plan, path: PathRef<'_>, extra: &mut Map<String, Value>) -> Value {
    let Some(value) = value else { return Value::Null };
    if value.is_null() {
        return Value::Null;
    }
    let converted = match plan {
        Plan::Int => as_i64(value).map(Value::from),
        Plan::Text => Some(match value {
            Value::String(_) => value.clone(),
            Value::Number(n) => Value::String(n.to_string()),
            Value::Bool(b) => Value::String(b.to_string()),
            other => Value::String(other.to_string()),
        }),
        Plan::Bool => match value {
            Value::Bool(_) => Some(value.clone()),
            Value::String(s) if s == "true" || s == "false" => Some(Value::Bool(s == "true")),
            Value::Number(n) if n.as_i64() == Some(0) || n.as_i64() == Some(1) => {
                Some(Value::Bool(n.as_i64() == Some(1)))
            }
            _ => None,
        },
        Plan::Timestamp => parse_timestamp(value).map(Value::from),
        Plan::Struct(fields) => match value {
            Value::Object(obj) => Some(convert_struct(obj, fields, path, extra)),
            _ => None,
        },
        Plan::List(item) => match value {
            Value::Array(items) => Some(Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| convert_value(Some(v), item, PathRef::Index(&path, i), extra))
                    .collect(),
            )),
            _ => None,
        },
    };
    converted.unwrap_or_else(|| {
        extra.insert(path.to_string(), value.clone());
        Value::Null
    })
}

#[inline]
fn convert_struct(obj: &Map<String, Value>, fields: &[FieldPlan], path: PathRef<'_>, extra: &mut Map<String, Value>) -> Value {
    let mut out = Map::new();
    let mut used = 0;
    for f in fields {
        let (found_key, value) = match obj.get(f.key.as_str()) {
            Some(v) => (f.key.as_str(), Some(v)),
            None => (f.name, obj.get(f.name)),
        };
        used += value.is_some() as usize;
        out.insert(f.name.to_string(), convert_value(value, &f.plan, PathRef::Key(&path, found_key), extra));
    }
    if used < obj.len() {
        for (k, v) in obj {
            let known = fields.iter().any(|f| f.name == k || f.key == *k);
            if !known {
                extra.insert(format!("{path}.{k}"), v.clone());
            }
        }
    }
    Value::Object(out)
}

#[inline]
pub(super) fn as_i64(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// RFC 3339 (the API's `2024-06-03T12:00:00Z`, with or without fractions or offsets) → µs since epoch.
#[inline]
pub(super) fn parse_timestamp(value: &Value) -> Option<i64> {
    let s = value.as_str()?;
    parse_api_timestamp(s)
        .or_else(|| DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc).timestamp_micros()))
}

/// The API's own spelling, `2024-06-03T12:00:00Z`, without the general parser; anything else
/// (fractions, offsets, leap seconds, invalid dates) is left to it.
#[inline]
pub(super) fn parse_api_timestamp(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' || b[19] != b'Z' {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<u32> {
        b[from..to].iter().try_fold(0u32, |n, &d| d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0')))
    };
    let date = chrono::NaiveDate::from_ymd_opt(num(0, 4)? as i32, num(5, 7)?, num(8, 10)?)?;
    let time = date.and_hms_opt(num(11, 13)?, num(14, 16)?, num(17, 19)?)?;
    Some(time.and_utc().timestamp_micros())
}

pub(super) fn snippet(value: &Value) -> String {
    let mut s = value.to_string();
    if s.len() > 200 {
        let cut = (0..=200).rev().find(|i| s.is_char_boundary(*i)).unwrap_or(0);
        s.truncate(cut);
        s.push('…');
    }
    s
}

