//! The one renderer: a grid of cells as aligned text, CSV or JSON; values as pretty JSON.

use serde::Serialize;

use crate::store::{Cell, Grid};

/// Aligned columns: numbers to the right, text to the left; long text cut at 60 characters.
pub fn text(grid: &Grid) -> String {
    const WIDEST: usize = 60;
    if grid.rows.is_empty() {
        return "(no rows)\n".into();
    }
    let cells: Vec<Vec<String>> = grid
        .rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|c| {
                    let s: String = c.plain().split_whitespace().collect::<Vec<_>>().join(" ");
                    if s.chars().count() > WIDEST { s.chars().take(WIDEST - 1).collect::<String>() + "…" } else { s }
                })
                .collect()
        })
        .collect();
    let numeric: Vec<bool> = (0..grid.columns.len())
        .map(|i| grid.rows.iter().any(|r| r[i].is_number()) && grid.rows.iter().all(|r| r[i].is_number() || r[i] == Cell::Null))
        .collect();
    let widths: Vec<usize> = (0..grid.columns.len())
        .map(|i| cells.iter().map(|r| r[i].chars().count()).chain([grid.columns[i].chars().count()]).max().unwrap_or(0))
        .collect();
    let line = |values: Vec<&str>| -> String {
        let parts: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let pad = " ".repeat(widths[i].saturating_sub(v.chars().count()));
                if numeric[i] { format!("{pad}{v}") } else { format!("{v}{pad}") }
            })
            .collect();
        parts.join("  ").trim_end().to_string() + "\n"
    };
    let rules: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    let mut out = line(grid.columns.iter().map(String::as_str).collect());
    out += &line(rules.iter().map(String::as_str).collect());
    for row in &cells {
        out += &line(row.iter().map(String::as_str).collect());
    }
    out
}

/// RFC 4180 CSV with a header row.
pub fn csv(grid: &Grid) -> String {
    let mut w = csv::WriterBuilder::new().terminator(csv::Terminator::Any(b'\n')).from_writer(Vec::new());
    // Writing into memory cannot fail.
    let _ = w.write_record(&grid.columns);
    for row in &grid.rows {
        let _ = w.write_record(row.iter().map(Cell::plain));
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// Pretty JSON of any value, with a final newline.
pub fn json(value: &impl Serialize) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}")) + "\n"
}

/// The rows of a grid as a JSON array of objects.
pub fn grid_json(grid: &Grid) -> String {
    json(&grid.json_rows())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_tables_align_numbers_right_and_floats_show_a_decimal() {
        let grid = Grid {
            columns: vec!["name".into(), "score".into(), "n".into()],
            rows: vec![
                vec![Cell::Text("Support".into()), Cell::Float(40.0), Cell::Int(5)],
                vec![Cell::Text("Billing ·1".into()), Cell::Float(-12.5), Cell::Null],
            ],
        };
        assert_eq!(text(&grid), "name        score  n\n----------  -----  -\nSupport      40.0  5\nBilling ·1  -12.5\n");
        assert_eq!(csv(&grid), "name,score,n\nSupport,40.0,5\nBilling ·1,-12.5,\n");
        assert_eq!(grid.json_rows()[0]["score"], serde_json::json!(40.0));
        assert!(grid_json(&grid).starts_with("[\n"));
    }

    #[test]
    fn csv_quotes_what_needs_quoting_and_long_text_is_cut() {
        let grid = Grid { columns: vec!["c".into()], rows: vec![vec![Cell::Text("a, \"b\"\nc".into())]] };
        assert_eq!(csv(&grid), "c\n\"a, \"\"b\"\"\nc\"\n");
        let long = Grid { columns: vec!["c".into()], rows: vec![vec![Cell::Text("x".repeat(100))]] };
        assert!(text(&long).lines().nth(2).unwrap().ends_with('…'));
    }
}
