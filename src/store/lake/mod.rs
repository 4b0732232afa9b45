//! The lake: the tables and the integration log exported from DuckDB (the committed truth),
//! as hive-partitioned Parquet or as Delta Lake tables, on local disk or S3-compatible storage.
//!
//! Two concerns, one type each: where the objects live (`Files`: a local folder or a bucket)
//! and how a table's files are published (`Publisher`: hive Parquet replaces files in place,
//! Delta adds new files and removes replaced ones in one commit of the table's log). The export
//! (`slices.rs`) decides which slices to rewrite and knows neither.

mod delta;
mod files;
pub mod publish;
mod slices;

use std::fmt;
use std::path::PathBuf;

use arrow::datatypes::SchemaRef;

pub use files::{Env, Files, Listed, process_env};
pub use delta::Vacuumed;
pub use publish::{FIRST, Partition, Pieces, Publisher, pieces};
pub use slices::{DATA_FILE, Exported, LOG_BLOCK, LOG_DAY_SQL, SLICE_ROWS, partition_key};

use crate::store::StoreError;
use publish::Hive;

/// How long one lake export commit keeps writing files before it commits and leaves the rest
/// to another: readers of the DuckDB file get in between, whatever the size of the export.
pub const EXPORT_BUDGET: std::time::Duration = std::time::Duration::from_millis(300);

/// How the lake publishes tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LakeFormat {
    /// Hive-style Parquet folders: what every reader lists and reads directly.
    #[default]
    Parquet,
    /// Delta Lake tables: one consistent snapshot per table, time travel, one writer detected.
    Delta,
}

impl LakeFormat {
    pub const ALL: [LakeFormat; 2] = [LakeFormat::Parquet, LakeFormat::Delta];

    pub fn name(self) -> &'static str {
        match self {
            LakeFormat::Parquet => "parquet",
            LakeFormat::Delta => "delta",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name().eq_ignore_ascii_case(s.trim()))
    }
}

/// Where the lake lives.
#[derive(Clone, PartialEq, Eq)]
pub enum LakeLocation {
    Local(PathBuf),
    /// A bucket of S3 or of an S3-compatible store, and the prefix inside it (no slashes at
    /// either end; empty for the bucket's root).
    S3 { bucket: String, prefix: String },
}

impl fmt::Debug for LakeLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for LakeLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LakeLocation::Local(p) => write!(f, "{}", p.display()),
            LakeLocation::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            LakeLocation::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

impl LakeLocation {
    /// `s3://bucket/prefix`, `file:///path` or a plain path. Other schemes are refused with the
    /// sentence to show.
    pub fn parse(uri: &str) -> Result<Self, String> {
        let uri = uri.trim();
        if uri.is_empty() {
            return Err("`output.lake_uri` is empty; give a folder or s3://bucket/prefix.".into());
        }
        if let Some(rest) = uri.strip_prefix("s3://").or_else(|| uri.strip_prefix("s3a://")) {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let valid = !bucket.is_empty() && bucket.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
            if !valid {
                return Err(format!("`{uri}` names no valid bucket; write it as s3://bucket/prefix (bucket names are lowercase letters, digits, dots and hyphens)."));
            }
            return Ok(LakeLocation::S3 { bucket: bucket.into(), prefix: prefix.trim_matches('/').into() });
        }
        if let Some(path) = uri.strip_prefix("file://") {
            return Ok(LakeLocation::Local(PathBuf::from(path)));
        }
        if let Some((scheme, _)) = uri.split_once("://") {
            return Err(format!("`{scheme}://` lakes are not supported; give a local folder or s3://bucket/prefix (S3-compatible stores take AWS_ENDPOINT_URL)."));
        }
        Ok(LakeLocation::Local(PathBuf::from(uri)))
    }

    /// The local folder, when the lake is on local disk.
    pub fn local(&self) -> Option<&std::path::Path> {
        match self {
            LakeLocation::Local(p) => Some(p),
            LakeLocation::S3 { .. } => None,
        }
    }
}

/// What the lake is and where: all a command needs to open it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LakeSpec {
    pub format: LakeFormat,
    pub location: LakeLocation,
}

impl LakeSpec {
    /// What identifies the lake in the DuckDB state: a different one is exported whole.
    pub fn identity(&self) -> String {
        format!("{}:{}", self.format.name(), self.location)
    }
}

/// The opened lake: its objects and how its tables are published.
#[derive(Debug)]
pub struct Lake {
    pub spec: LakeSpec,
    files: Files,
    delta: Option<delta::DeltaEngine>,
}

impl Lake {
    /// Opens the lake `spec` names; S3 settings are read from `env`.
    pub fn open(spec: &LakeSpec, env: Env<'_>) -> Result<Self, StoreError> {
        let files = Files::open(&spec.location, env)?;
        let delta = match spec.format {
            LakeFormat::Delta => Some(delta::DeltaEngine::new(&files)?),
            LakeFormat::Parquet => None,
        };
        Ok(Lake { spec: spec.clone(), files, delta })
    }

    /// A local lake with the process's environment (tests, local folders).
    pub fn local(format: LakeFormat, dir: impl Into<PathBuf>) -> Self {
        let spec = LakeSpec { format, location: LakeLocation::Local(dir.into()) };
        Lake::open(&spec, &|_| None).expect("a local lake opens without settings")
    }

    pub fn files(&self) -> &Files {
        &self.files
    }

    /// The publisher of one table's export (`table` is its folder, `partition_column` the hive
    /// key, `schema` the files' columns).
    /// `patchable`: the table's slices are keyed, and a refresh may patch their files (hive).
    pub fn publisher(&self, table: &str, partition_column: Option<String>, schema: &SchemaRef, patchable: bool) -> Result<Box<dyn Publisher + '_>, StoreError> {
        Ok(match &self.delta {
            None => Box::new(Hive { files: &self.files, schema: schema.clone(), patchable }),
            Some(engine) => Box::new(delta::DeltaPublisher::open(&self.files, engine, table, partition_column, schema)?),
        })
    }

    /// Whether a partition is still one file written by an older version (the log's days were
    /// written whole before they were cut in blocks). Only local hive lakes had those.
    fn holds_whole_day(&self, partition: &Partition) -> bool {
        match (self.spec.format, &self.spec.location) {
            (LakeFormat::Parquet, LakeLocation::Local(root)) => root.join(partition.key()).join(DATA_FILE).exists(),
            _ => false,
        }
    }

    /// The data files a table has in the lake now (for `status`): those of its current
    /// snapshot for Delta.
    pub fn table_files(&self, table: &str) -> Result<usize, StoreError> {
        match &self.delta {
            None => Ok(self.files.list(table)?.iter().filter(|o| o.key.ends_with(".parquet")).count()),
            Some(engine) => delta::current_files(&self.files, engine, table).map(|f| f.len()),
        }
    }

    /// Deletes the Delta files of `tables` that no snapshot within `retain` needs (nothing to do
    /// for hive Parquet, whose files are replaced in place). Tables not in the lake are skipped.
    pub fn vacuum(&self, tables: &[&str], retain: std::time::Duration) -> Result<Vec<Vacuumed>, StoreError> {
        let Some(engine) = &self.delta else { return Ok(vec![]) };
        let now = chrono::Utc::now();
        let mut out = Vec::new();
        for table in tables {
            out.extend(delta::vacuum(&self.files, engine, table, retain, now)?);
        }
        Ok(out)
    }

    /// Removes a table from the lake (`reset`).
    pub fn remove_table(&self, table: &str) -> Result<(), StoreError> {
        self.files.delete_prefix(table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lake_uris_parse_to_a_folder_or_a_bucket_and_others_are_refused_with_the_fix() {
        assert_eq!(LakeLocation::parse("out/lake").unwrap(), LakeLocation::Local("out/lake".into()));
        assert_eq!(LakeLocation::parse("file:///tmp/lake").unwrap(), LakeLocation::Local("/tmp/lake".into()));
        assert_eq!(LakeLocation::parse("s3://my-bucket/a/b/").unwrap(), LakeLocation::S3 { bucket: "my-bucket".into(), prefix: "a/b".into() });
        assert_eq!(LakeLocation::parse("s3://my-bucket").unwrap().to_string(), "s3://my-bucket");
        assert!(LakeLocation::parse("gs://b/p").unwrap_err().contains("not supported"));
        assert!(LakeLocation::parse("s3://Bad_Bucket/p").unwrap_err().contains("s3://bucket/prefix"));
        assert!(LakeLocation::parse(" ").is_err());
        assert_eq!(LakeFormat::parse("Delta"), Some(LakeFormat::Delta));
        assert_eq!(LakeFormat::parse("iceberg"), None);
    }
}
