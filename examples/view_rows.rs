//! The rows of a query as the bundled DuckDB engine computes them, every cell as text (JSON
//! array of arrays, NULL as null), for the interop check (`tests/interop/run.py`) to compare
//! with DuckDB's Python package and CLI.
//!
//! `cargo run --example view_rows -- FILE.duckdb "SELECT …"`

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, path, sql] = args.as_slice() else {
        eprintln!("usage: view_rows FILE.duckdb SQL");
        std::process::exit(2);
    };
    let config = duckdb::Config::default().access_mode(duckdb::AccessMode::ReadOnly).expect("read-only mode");
    let conn = duckdb::Connection::open_with_flags(path, config).unwrap_or_else(|e| {
        eprintln!("cannot open {path}: {e}");
        std::process::exit(1)
    });
    let wrapped = format!("SELECT COLUMNS(*)::VARCHAR FROM ({sql})");
    let mut stmt = conn.prepare(&wrapped).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1)
    });
    let mut rows = stmt.query([]).expect("the query runs");
    let n = rows.as_ref().map(|s| s.column_count()).unwrap_or(0);
    let mut out: Vec<Vec<Option<String>>> = Vec::new();
    while let Some(row) = rows.next().expect("a row") {
        out.push((0..n).map(|i| row.get::<_, Option<String>>(i).expect("a text cell")).collect());
    }
    println!("{}", serde_json::to_string(&out).expect("JSON"));
}
