//! Where a sync writes: the DuckDB file, the lake folder, and the tool's private state beside
//! them (the run lock, the rotated refresh token).

use std::path::{Path, PathBuf};

use super::StoreError;

/// Where things are written. Read-only commands need nothing else.
#[derive(Debug, Clone)]
pub struct Outputs {
    pub dir: PathBuf,
    pub duckdb: PathBuf,
    pub parquet: PathBuf,
}

impl Outputs {
    pub fn under(dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        Outputs { duckdb: dir.join("helpscout.duckdb"), parquet: dir.join("parquet"), dir }
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
        let state_dir = self.state_dir();
        std::fs::create_dir_all(&state_dir).map_err(|e| StoreError::StateDir { path: state_dir.display().to_string(), reason: e.to_string() })?;
        let path = state_dir.join("deliver.lock");
        let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(|e| StoreError::StateDir { path: path.display().to_string(), reason: e.to_string() })?;
        Ok(file.try_lock().ok().map(|()| RunLock(file)))
    }

    /// Takes the outputs' exclusive lock: one writer (sync, retry, reset) at a time.
    pub fn lock(&self) -> Result<RunLock, StoreError> {
        let state_dir = self.state_dir();
        let unwritable = |path: &Path, e: std::io::Error| StoreError::StateDir { path: path.display().to_string(), reason: e.to_string() };
        std::fs::create_dir_all(&state_dir).map_err(|e| unwritable(&state_dir, e))?;
        let path = state_dir.join("sync.lock");
        let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(|e| unwritable(&path, e))?;
        match file.try_lock() {
            Ok(()) => Ok(RunLock(file)),
            Err(_) => Err(StoreError::AlreadyRunning { path: self.dir.display().to_string(), lock: path.display().to_string() }),
        }
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
        assert_eq!(outputs.token_store().parent(), Some(outputs.state_dir().as_path()));
    }
}
