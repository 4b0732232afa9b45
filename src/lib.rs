//! helpscout-etl: replicate a Help Scout account into DuckDB and hive-partitioned Parquet.
//!
//! Dependencies run one way: `cli` → `sync` → {`client`, `tables`, `state`} → `schema` → `sinks`.
//! The `simulator` is a faithful stand-in for the Help Scout Mailbox API 2.0 used by tests,
//! benches and the demo.

pub mod simulator;
