//! helpscout-etl: replicate a Help Scout account into DuckDB and hive-partitioned Parquet, with
//! every sync event in an integration log.
//!
//! The flow runs one way: `cli` → `web` → `extract` → {`api`, `convert`, `store`} → `catalog`
//! (`fsutil` sits below them all). `catalog` declares the 11 tables as data; `api` talks to
//! Help Scout and classifies every failure once; `convert` turns API records into Arrow;
//! `store` holds all SQL (the DuckDB file, the lake, the log, the views); `extract` runs a sync,
//! one strategy per way a table is listed; `cli` parses, configures, renders and exits. The
//! Help Scout simulator is its own crate (`helpscout-sim`), used by the tests, the benches and
//! the `demo` and `simulate` commands.

pub mod api;
pub mod catalog;
pub mod cli;
pub mod convert;
pub mod deliver;
pub mod extract;
pub mod fsutil;
pub mod store;
pub mod web;
