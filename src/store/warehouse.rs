//! Opening the DuckDB file: for one commit at a time (waiting while a reader holds it), or
//! read-only for the commands that only look.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use duckdb::Connection;

use super::{StoreError, db};

/// One commit at a time within this process. DuckDB's file lock is a POSIX record lock, which
/// keeps other processes out but not another connection of the same process: two writers here
/// (a page's retry or the outbox's log copy beside a sync) would both append to the WAL.
static COMMIT_GATE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The memory DuckDB may use for one commit (256 MB) (it spills to disk beyond it where it can).
const WRITER_MEMORY: &str = "SET memory_limit = '256MB'";

/// Commits longer than this are logged at debug level, with where they were made.
const LONG_COMMIT: Duration = Duration::from_millis(300);

/// How long a reader waits for a commit in progress before it says so.
const READ_WAIT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone)]
pub struct Warehouse {
    pub path: PathBuf,
    /// How long to wait for a reader to let go of the file before a commit.
    pub lock_timeout: Duration,
}

/// How long this process held the file open for its commits.
#[derive(Debug, Default, Clone, Copy)]
pub struct WindowStats {
    pub commits: u64,
    pub longest: Duration,
    pub total: Duration,
}

impl WindowStats {
    /// Adds the commits another thread made for the same run.
    pub fn absorb(&mut self, other: WindowStats) {
        self.commits += other.commits;
        self.total += other.total;
        self.longest = self.longest.max(other.longest);
    }
}

/// What one commit does, statement by statement, inside its transaction.
pub struct Tx<'a> {
    pub(super) conn: &'a Connection,
    pub(super) path: &'a Path,
}

/// A read-only view of the file (for `status`, `log`, `report`, the web page).
pub struct Reader {
    pub(super) conn: Connection,
    pub(super) path: PathBuf,
}

impl Warehouse {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Warehouse { path: path.into(), lock_timeout: Duration::from_secs(120) }
    }

    /// Opens the file for writing, waiting while another process holds it.
    fn connect(&self) -> Result<Connection, StoreError> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Unwritable { path: self.path.display().to_string(), reason: e.to_string() })?;
        }
        let started = Instant::now();
        let mut pause = Duration::from_millis(20);
        loop {
            match Connection::open(&self.path) {
                Ok(conn) => {
                    // DuckDB caches what it reads up to most of the machine's memory; a sync
                    // needs little of it, and its peak memory must not grow with the account.
                    conn.execute_batch(WRITER_MEMORY).map_err(db("limiting DuckDB's memory"))?;
                    return Ok(conn);
                }
                Err(e) => {
                    let reason = e.to_string();
                    if !is_lock_conflict(&reason) {
                        return Err(classify_open_error(&self.path, reason));
                    }
                    if started.elapsed() >= self.lock_timeout {
                        return Err(StoreError::Locked { path: self.path.display().to_string(), waited: self.lock_timeout });
                    }
                    // A reader holds the file: its query ends soon.
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(500));
                }
            }
        }
    }

    /// Opens the file read-only.
    pub fn read(&self) -> Result<Reader, StoreError> {
        if !self.path.exists() {
            return Err(StoreError::NotADatabase {
                path: self.path.display().to_string(),
                reason: "the file does not exist yet: run `helpscout-etl sync` first".into(),
            });
        }
        // A commit holds the file for well under a second: wait for it a little.
        let started = Instant::now();
        let mut pause = Duration::from_millis(10);
        loop {
            let config = duckdb::Config::default().access_mode(duckdb::AccessMode::ReadOnly).map_err(db("configuring a read-only connection"))?;
            match Connection::open_with_flags(&self.path, config) {
                Ok(conn) => return Ok(Reader { conn, path: self.path.clone() }),
                Err(e) if is_lock_conflict(&e.to_string()) && started.elapsed() < READ_WAIT => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(200));
                }
                Err(e) if is_lock_conflict(&e.to_string()) => return Err(StoreError::Busy { path: self.path.display().to_string() }),
                Err(e) => return Err(classify_open_error(&self.path, e.to_string())),
            }
        }
    }

    /// Runs `f` in one transaction on a freshly opened connection; the file is closed after.
    #[track_caller]
    pub fn commit<T, E: From<StoreError>>(&self, stats: &mut WindowStats, f: impl FnOnce(&mut Tx<'_>) -> Result<T, E>) -> Result<T, E> {
        let _gate = COMMIT_GATE.lock().unwrap_or_else(|e| e.into_inner());
        let started = Instant::now();
        let mut conn = self.connect()?;
        let opened = started.elapsed();
        let worked;
        let result = {
            let txn = conn.transaction().map_err(db("starting a transaction"))?;
            let mut tx = Tx { conn: &txn, path: &self.path };
            let value = f(&mut tx)?;
            worked = started.elapsed();
            txn.commit().map_err(db("committing"))?;
            value
        };
        let committed = started.elapsed();
        drop(conn);
        tracing::trace!(opened_ms = opened.as_millis() as u64, worked_ms = worked.as_millis() as u64, committed_ms = committed.as_millis() as u64, "commit phases");
        let held = started.elapsed();
        if held > LONG_COMMIT {
            tracing::debug!(ms = held.as_millis() as u64, at = %std::panic::Location::caller(), "a long commit");
        }
        stats.commits += 1;
        stats.total += held;
        stats.longest = stats.longest.max(held);
        Ok(result)
    }
}

impl Reader {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The names of the file's own tables (schema `main`).
    pub(super) fn table_names(&self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.conn.prepare("SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").map_err(db("listing tables"))?;
        let names = stmt.query_map([], |r| r.get(0)).map_err(db("listing tables"))?.collect::<Result<_, _>>().map_err(db("listing tables"))?;
        Ok(names)
    }
}

fn is_lock_conflict(reason: &str) -> bool {
    let r = reason.to_lowercase();
    r.contains("could not set lock") || r.contains("conflicting lock")
}

fn classify_open_error(path: &Path, reason: String) -> StoreError {
    let lower = reason.to_lowercase();
    let shown = path.display().to_string();
    if lower.contains("not a valid duckdb database") || lower.contains("unable to open database") && path.is_file() || lower.contains("invalid") && lower.contains("header") {
        StoreError::NotADatabase { path: shown, reason }
    } else if lower.contains("permission denied") || lower.contains("read-only file system") || lower.contains("cannot open file") {
        StoreError::Unwritable { path: shown, reason }
    } else {
        StoreError::NotADatabase { path: shown, reason }
    }
}
