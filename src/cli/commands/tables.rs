//! `tables`: the table catalog, generated from the declarations (the README embeds it).

use std::fmt::Write as _;
use std::io::Write;

use crate::catalog::{self, Origin, Replication};
use crate::cli::exit::Exit;
use crate::cli::render;
use crate::store::{duckdb_type, partition_key};

pub fn run(json: bool, out: &mut dyn Write) -> anyhow::Result<Exit> {
    if json {
        write!(out, "{}", render::json(&catalog_json()))?;
    } else {
        write!(out, "{}", catalog_markdown())?;
    }
    Ok(Exit::Success)
}

/// The Markdown table catalog: the documented replication beside what a sync does.
pub fn catalog_markdown() -> String {
    let mut out = String::new();
    let _ = writeln!(out, "| table | primary key | documented replication | a sync reads | source | Parquet partitions |");
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    for t in catalog::ALL {
        let replication = match t.replication {
            Replication::Incremental { cursor } => format!("incremental ({cursor})"),
            Replication::FullTable => "full table".into(),
        };
        let source = match t.origin {
            Origin::List => format!("`{}`", t.request.path),
            Origin::PerParent { parent } => format!("`{}` per {}", t.request.path, parent.noun),
            Origin::Embedded { parent, .. } => format!("embedded in {}; `{}`", parent.name, t.request.path),
        };
        let partitions = t.partition_month_of.map(|c| format!("`{}=YYYY-MM`", partition_key(c))).unwrap_or_else(|| "one file".into());
        let _ = writeln!(
            out,
            "| `{}` | {} | {replication} | {} | {source} | {partitions} |",
            t.name,
            t.primary_key.join(", "),
            t.strategy().describe()
        );
    }
    let _ = writeln!(out);
    for t in catalog::ALL {
        let columns: Vec<String> = t.columns.iter().map(|c| format!("`{}` {}", c.name, duckdb_type(&c.ty))).collect();
        let _ = writeln!(out, "- **{}** — {} Columns: {}.", t.name, t.description, columns.join(", "));
    }
    out
}

/// The catalog as data: each table's name, keys, what a sync does, partition key and columns.
pub fn catalog_json() -> serde_json::Value {
    serde_json::Value::Array(
        catalog::ALL
            .iter()
            .map(|t| {
                serde_json::json!({
                    "name": t.name,
                    "primary_key": t.primary_key,
                    "sync": t.strategy().describe(),
                    "partition_key": t.partition_month_of.map(partition_key),
                    "columns": t.columns.iter().map(|c| serde_json::json!({"name": c.name, "duckdb": duckdb_type(&c.ty)})).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_readme_catalog_is_the_generated_one() {
        let readme = include_str!("../../../README.md");
        assert!(readme.contains(&super::catalog_markdown()), "README.md is out of date: paste the output of `helpscout-etl tables`");
    }
}
