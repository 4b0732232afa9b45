//! helpscout-etl: replicate a Help Scout account into DuckDB and hive-partitioned Parquet.
//!
//! Dependencies run one way: `cli` → `sync` → {`client`, `tables`, `convert`} → `schema` →
//! `sinks`. The `simulator` is a faithful stand-in for the Help Scout Mailbox API 2.0, used by
//! the tests, the benches and the demo.

pub mod cli;
pub mod client;
pub mod config;
pub mod convert;
pub mod demo;
pub mod fsutil;
pub mod integration_log;
pub mod log_command;
pub mod progress;
pub mod retry;
pub mod report;
pub mod schema;
pub mod simulator;
pub mod status;
pub mod sinks;
pub mod sync;
pub mod tables;
pub mod views;
