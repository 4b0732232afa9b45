//! Query results as data: columns and typed cells, for the one renderer (text, CSV, JSON).

use duckdb::types::{TimeUnit, Value};

use super::{Reader, StoreError, db};

/// A query's result, cell by cell.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Grid {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    /// A number kept in its decimal spelling.
    Decimal(String),
    Text(String),
}

impl Cell {
    pub fn from_value(v: Value) -> Cell {
        match v {
            Value::Null => Cell::Null,
            Value::Boolean(b) => Cell::Bool(b),
            Value::TinyInt(i) => Cell::Int(i.into()),
            Value::SmallInt(i) => Cell::Int(i.into()),
            Value::Int(i) => Cell::Int(i.into()),
            Value::BigInt(i) => Cell::Int(i.into()),
            Value::HugeInt(i) => Cell::Int(i),
            Value::UTinyInt(i) => Cell::Int(i.into()),
            Value::USmallInt(i) => Cell::Int(i.into()),
            Value::UInt(i) => Cell::Int(i.into()),
            Value::UBigInt(i) => Cell::Int(i.into()),
            Value::Float(f) => Cell::Float(f.into()),
            Value::Double(f) => Cell::Float(f),
            Value::Decimal(d) => Cell::Decimal(d.to_string()),
            Value::Text(s) => Cell::Text(s),
            Value::Enum(s) => Cell::Text(s),
            Value::Date32(days) => Cell::Text(
                chrono::NaiveDate::from_num_days_from_ce_opt(days + 719_163)
                    .map(|d| d.to_string())
                    .unwrap_or_else(|| days.to_string()),
            ),
            Value::Timestamp(unit, v) => {
                let micros = match unit {
                    TimeUnit::Second => v.saturating_mul(1_000_000),
                    TimeUnit::Millisecond => v.saturating_mul(1_000),
                    TimeUnit::Microsecond => v,
                    TimeUnit::Nanosecond => v / 1_000,
                };
                Cell::Text(
                    chrono::DateTime::from_timestamp_micros(micros)
                        .map(|t| t.naive_utc().format("%Y-%m-%d %H:%M:%S").to_string())
                        .unwrap_or_else(|| micros.to_string()),
                )
            }
            other => Cell::Text(format!("{other:?}")),
        }
    }

    pub fn is_number(&self) -> bool {
        matches!(self, Cell::Int(_) | Cell::Float(_) | Cell::Decimal(_))
    }

    pub fn plain(&self) -> String {
        match self {
            Cell::Null => String::new(),
            Cell::Bool(b) => b.to_string(),
            Cell::Int(i) => i.to_string(),
            Cell::Float(f) => fmt_float(*f),
            Cell::Decimal(d) => d.clone(),
            Cell::Text(s) => s.clone(),
        }
    }

    pub fn json(&self) -> serde_json::Value {
        match self {
            Cell::Null => serde_json::Value::Null,
            Cell::Bool(b) => (*b).into(),
            Cell::Int(i) => i64::try_from(*i).map(Into::into).unwrap_or_else(|_| i.to_string().into()),
            Cell::Float(f) => serde_json::Number::from_f64(*f).map(serde_json::Value::Number).unwrap_or(serde_json::Value::Null),
            Cell::Decimal(d) => d
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(serde_json::Value::Number)
                .unwrap_or_else(|| d.clone().into()),
            Cell::Text(s) => s.clone().into(),
        }
    }
}

/// 40 → "40.0", 57.14 → "57.14": a float always shows it is one.
pub fn fmt_float(f: f64) -> String {
    if f.is_finite() && f.fract() == 0.0 { format!("{f:.1}") } else { f.to_string() }
}

pub fn fmt_json_number(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Number(n) if n.is_f64() => fmt_float(n.as_f64().unwrap_or_default()),
        serde_json::Value::Null => "n/a".into(),
        other => other.to_string().trim_matches('"').to_string(),
    }
}

/// Seconds for reading: 45s, 12m, 3h 5m, 2d 4h (rounded down to the unit shown).
pub fn fmt_duration(seconds: f64) -> String {
    if !seconds.is_finite() {
        return "n/a".into();
    }
    let sign = if seconds < 0.0 { "-" } else { "" };
    let s = seconds.abs().round() as u64;
    let (d, h, m) = (s / 86_400, s % 86_400 / 3_600, s % 3_600 / 60);
    let text = match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, 0) => format!("{h}h"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, 0, _) => format!("{d}d"),
        (d, h, _) => format!("{d}d {h}h"),
    };
    format!("{sign}{text}")
}

impl Grid {
    /// The same grid with every `…_seconds` column shown as a readable duration (for text and
    /// pages; JSON and CSV keep the seconds).
    pub fn with_durations(&self) -> Grid {
        let timed: Vec<bool> = self.columns.iter().map(|c| c.ends_with("_seconds")).collect();
        Grid {
            columns: self.columns.iter().map(|c| c.strip_suffix("_seconds").unwrap_or(c).to_string()).collect(),
            rows: self
                .rows
                .iter()
                .map(|row| {
                    row.iter()
                        .zip(&timed)
                        .map(|(cell, timed)| match (cell, timed) {
                            (Cell::Int(i), true) => Cell::Text(fmt_duration(*i as f64)),
                            (Cell::Float(f), true) => Cell::Text(fmt_duration(*f)),
                            _ => cell.clone(),
                        })
                        .collect()
                })
                .collect(),
        }
    }

    /// The rows as JSON objects keyed by column.
    pub fn json_rows(&self) -> Vec<serde_json::Map<String, serde_json::Value>> {
        self.rows.iter().map(|row| self.columns.iter().cloned().zip(row.iter().map(Cell::json)).collect()).collect()
    }

    /// The cell of a row by column name.
    pub fn cell(&self, row: usize, column: &str) -> Option<&Cell> {
        let i = self.columns.iter().position(|c| c == column)?;
        self.rows.get(row)?.get(i)
    }
}

impl Reader {
    /// Runs a query and keeps every cell.
    pub(super) fn grid(&self, sql: &str, params: &[duckdb::types::Value], doing: &str) -> Result<Grid, StoreError> {
        let mut stmt = self.conn.prepare(sql).map_err(db(doing))?;
        let mut rows = stmt.query(duckdb::params_from_iter(params.iter())).map_err(db(doing))?;
        let columns: Vec<String> = rows.as_ref().map(|s| s.column_names()).unwrap_or_default();
        let mut grid = Grid { columns, rows: Vec::new() };
        while let Some(row) = rows.next().map_err(db(doing))? {
            let mut cells = Vec::with_capacity(grid.columns.len());
            for i in 0..grid.columns.len() {
                cells.push(Cell::from_value(row.get::<_, Value>(i).map_err(db(doing))?));
            }
            grid.rows.push(cells);
        }
        Ok(grid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_in_the_two_largest_units() {
        assert_eq!(fmt_duration(45.0), "45s");
        assert_eq!(fmt_duration(720.0), "12m");
        assert_eq!(fmt_duration(3.0 * 3600.0 + 5.0 * 60.0 + 59.0), "3h 5m");
        assert_eq!(fmt_duration(7200.0), "2h");
        assert_eq!(fmt_duration(2.0 * 86_400.0 + 4.0 * 3600.0 + 1.0), "2d 4h");
        assert_eq!(fmt_duration(86_400.0), "1d");
        assert_eq!(fmt_duration(-90.0), "-1m");
        let grid = Grid { columns: vec!["a".into(), "wait_seconds".into()], rows: vec![vec![Cell::Int(1), Cell::Float(90.5)], vec![Cell::Int(2), Cell::Null]] };
        let shown = grid.with_durations();
        assert_eq!(shown.columns, vec!["a", "wait"]);
        assert_eq!(shown.rows, vec![vec![Cell::Int(1), Cell::Text("1m".into())], vec![Cell::Int(2), Cell::Null]]);
    }
}
