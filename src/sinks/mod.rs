//! Where rows land: the DuckDB file (the committed truth) and the Parquet folder derived from it.

pub mod duckdb;
pub mod parquet;
