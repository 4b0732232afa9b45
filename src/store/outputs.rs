//! Where a sync writes: the DuckDB file, the lake, and the tool's private state beside
//! them (the run lock, the rotated refresh token).

use std::path::{Path, PathBuf};

use super::StoreError;
use super::lake::{LakeFormat, LakeLocation, LakeSpec};

/// Where things are written. Read-only commands need nothing else.
#[derive(Debug, Clone)]
pub struct Outputs {
    pub dir: PathBuf,
    pub duckdb: PathBuf,
    pub lake: LakeSpec,
}

impl Outputs {
    pub fn under(dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        let lake = LakeSpec { format: LakeFormat::Parquet, location: LakeLocation::Local(dir.join("parquet")) };
        Outputs { duckdb: dir.join("helpscout.duckdb"), lake, dir }
    }

    /// The lake's default place for its format: `OUTPUT/parquet` or `OUTPUT/delta`.
    pub fn default_lake(&self, format: LakeFormat) -> LakeSpec {
        LakeSpec { format, location: LakeLocation::Local(self.dir.join(format.name())) }
    }

    /// The tool's private state (lock, rotated refresh token), beside the DuckDB file.
    pub fn state_dir(&self) -> PathBuf {
        let parent = self.duckdb.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        parent.join(".helpscout-etl")
    }

    /// The rotated refresh token's file (0600).
    pub fn token_store(&self) -> PathBuf {
        self.state_dir().join("refresh-token.json")
    }

    /// The outbox of the To-HelpScout direction (submissions and customer records on their way).
    pub fn outbox(&self) -> PathBuf {
        self.state_dir().join("outbox.sqlite")
    }

    /// Takes the delivery lock: one process sends the outbox at a time (`serve` or `push`).
    pub fn delivery_lock(&self) -> Result<Option<RunLock>, StoreError> {
        Ok(self.try_lock_file("deliver.lock")?.ok())
    }

    /// Takes the outputs' exclusive lock: one writer (sync, retry, reset) at a time.
    pub fn lock(&self) -> Result<RunLock, StoreError> {
        self.try_lock_file("sync.lock")?
            .map_err(|path| StoreError::AlreadyRunning { path: self.dir.display().to_string(), lock: path.display().to_string() })
    }

    /// A lock file in the state folder: held, or (the inner error) where another holder has it.
    fn try_lock_file(&self, name: &str) -> Result<Result<RunLock, PathBuf>, StoreError> {
        let state_dir = self.state_dir();
        let unwritable = |path: &Path, e: std::io::Error| StoreError::StateDir { path: path.display().to_string(), reason: e.to_string() };
        std::fs::create_dir_all(&state_dir).map_err(|e| unwritable(&state_dir, e))?;
        let path = state_dir.join(name);
        let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(|e| unwritable(&path, e))?;
        Ok(match file.try_lock() {
            Ok(()) => Ok(RunLock(file)),
            Err(_) => Err(path),
        })
    }
}

/// The outputs' exclusive lock, released when dropped or by the OS if the process dies.
pub struct RunLock(#[allow(dead_code)] std::fs::File);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_writer_at_a_time_and_the_lock_goes_with_its_holder() {
        let dir = tempfile::tempdir().unwrap();
        let outputs = Outputs::under(dir.path().join("out"));
        let held = outputs.lock().unwrap();
        assert!(matches!(outputs.lock(), Err(StoreError::AlreadyRunning { .. })));
        drop(held);
        assert!(outputs.lock().is_ok());
        // The delivery lock is its own: held by one sender, the next is told so (None).
        let sending = outputs.delivery_lock().unwrap().expect("free");
        assert!(outputs.delivery_lock().unwrap().is_none());
        assert!(outputs.lock().is_ok(), "a sync is not kept out by a delivery");
        drop(sending);
        assert!(outputs.delivery_lock().unwrap().is_some());
        assert_eq!(outputs.token_store().parent(), Some(outputs.state_dir().as_path()));
    }
}
