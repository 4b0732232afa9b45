//! Opening the DuckDB file: for one commit at a time (waiting while a reader holds it), or
//! read-only for the commands that only look.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use duckdb::Connection;

use super::{StoreError, db};

/// One commit at a time within this process, and the connection a sync keeps between its
/// commits. DuckDB's file lock is a POSIX record lock, which keeps other processes out but not
/// another connection of the same process: two writers here (a page's retry or the outbox's log
/// copy beside a sync) would both append to the WAL, so every writer and every in-process
/// reader goes through this gate, and the kept connection is closed before anything else opens
/// the file. One kept connection per file at the most.
static COMMIT_GATE: Mutex<Vec<Held>> = Mutex::new(Vec::new());

/// A connection kept open across consecutive commits of a sync: opening the file, warming its
/// cache and checkpointing on close cost more than a small commit. It is closed as soon as no
/// commit follows within the warehouse's `keep_open` time, and before a commit that, with the
/// checkpoint on closing after it, would end past `MAX_HOLD`: other processes get the file
/// between a sync's bursts of commits, and within about a second at the most.
struct Held {
    path: PathBuf,
    conn: Connection,
    opened: Instant,
    /// Distinguishes this connection and its latest commit from later ones, for its timer.
    generation: u64,
    commits: u64,
    /// How long its latest commit took: the next one is expected to take about as long.
    last: Duration,
    /// Column lists of contract tables read through this connection (they never change while
    /// it is held: the tool alters no table, and it holds the file).
    columns: RefCell<HashMap<String, Vec<String>>>,
}

/// How long a sync keeps the file open across commits, the checkpoint on closing included
/// (a commit window as other processes see it), before it lets go.
const MAX_HOLD: Duration = Duration::from_millis(750);

/// How long the recent closes of each file took (DuckDB checkpoints then). A checkpoint
/// rewrites each table's last, partly filled row group, so its cost saws up and down between
/// closes (a large backfill's customers: 50 to 270 ms after the same half second of commits):
/// the next close is expected to take as long as the longest of the last `RECENT_CLOSES`, and
/// is counted in the hold.
static CLOSES: Mutex<Vec<(PathBuf, std::collections::VecDeque<Duration>)>> = Mutex::new(Vec::new());

const RECENT_CLOSES: usize = 16;

fn expected_close(path: &Path) -> Duration {
    let closes = CLOSES.lock().unwrap_or_else(|e| e.into_inner());
    closes.iter().find(|(p, _)| p == path).and_then(|(_, recent)| recent.iter().max().copied()).unwrap_or_default()
}

fn record_close(path: &Path, took: Duration) {
    let mut closes = CLOSES.lock().unwrap_or_else(|e| e.into_inner());
    let i = match closes.iter().position(|(p, _)| p == path) {
        Some(i) => i,
        None => {
            closes.push((path.to_path_buf(), Default::default()));
            closes.len() - 1
        }
    };
    let recent = &mut closes[i].1;
    if recent.len() == RECENT_CLOSES {
        recent.pop_front();
    }
    recent.push_back(took);
}

/// How long a sync's kept connection waits for the next commit.
pub const SYNC_IDLE: Duration = Duration::from_millis(40);

/// The longest time each file was held open, across commits, since it was last asked.
static LONGEST_HOLD: Mutex<Vec<(PathBuf, Duration)>> = Mutex::new(Vec::new());

fn record_hold(path: &Path, held: Duration) {
    let mut holds = LONGEST_HOLD.lock().unwrap_or_else(|e| e.into_inner());
    match holds.iter_mut().find(|(p, _)| p == path) {
        Some((_, longest)) => *longest = (*longest).max(held),
        None => holds.push((path.to_path_buf(), held)),
    }
}

/// Closes the connection kept for `path` (DuckDB checkpoints then), when `which` it is (any
/// when None), recording how long the file was held.
fn close_held(kept: &mut Vec<Held>, path: &Path, which: Option<(u64, u64)>) {
    let Some(i) = kept.iter().position(|h| h.path == path && which.is_none_or(|w| (h.generation, h.commits) == w)) else { return };
    let held = kept.swap_remove(i);
    let (opened, commits) = (held.opened, held.commits);
    let closing = Instant::now();
    drop(held);
    record_close(path, closing.elapsed());
    let stretch = opened.elapsed();
    if stretch > LONG_COMMIT {
        tracing::debug!(ms = stretch.as_millis() as u64, commits, "the file was held long (commits and the checkpoint on closing)");
    }
    record_hold(path, stretch);
}

static GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn gate() -> std::sync::MutexGuard<'static, Vec<Held>> {
    COMMIT_GATE.lock().unwrap_or_else(|e| e.into_inner())
}

/// The memory DuckDB may use for a commit (it spills beside the file beyond it). What
/// it holds there is mostly a cache of the blocks it read, which a commit's comparisons with
/// the held rows fill as the file grows. A 200k-conversation refresh peaked at 220 MiB with
/// 256 MB and at 174 MiB with 64 MB, and was no slower; a 1M one at 195 MiB (benches/README.md).
const WRITER_MEMORY: &str = "SET memory_limit = '64MB'";

/// Rows per row group of the tables a commit writes (DuckDB's default is 122,880). Each
/// checkpoint rewrites a table's last, partly filled row group: with the default, a backfill's
/// checkpoint grew to over a second as a thread table's group filled (bodies included); with
/// groups of this size it stays a fraction of that, at any account size.
const ROW_GROUP_ROWS: usize = 16_384;

/// The name the file is attached under in a writer's connection (which it is made the default of).
const ATTACHED: &str = "warehouse";

/// A connection for commits: the file attached with `ROW_GROUP_ROWS`, DuckDB's memory capped.
fn open_writer(path: &Path) -> Result<Connection, duckdb::Error> {
    let conn = Connection::open_in_memory()?;
    let file = path.to_string_lossy().replace('\'', "''");
    conn.execute_batch(&format!("ATTACH '{file}' AS {ATTACHED} (ROW_GROUP_SIZE {ROW_GROUP_ROWS}); USE {ATTACHED};"))?;
    // DuckDB caches what it reads up to most of the machine's memory; a sync needs little of
    // it, and its peak memory must not grow with the account.
    conn.execute_batch(WRITER_MEMORY)?;
    // What does not fit spills beside the file (`<file>.tmp`, as DuckDB does for a file it
    // opens itself), not into `.tmp` under the working folder, its default for this in-memory
    // connection.
    conn.execute_batch(&format!("SET temp_directory = '{file}.tmp'"))?;
    Ok(conn)
}

/// Commits longer than this are logged at debug level, with where they were made.
const LONG_COMMIT: Duration = Duration::from_millis(300);

/// How long a reader waits for a commit in progress before it says so.
const READ_WAIT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone)]
pub struct Warehouse {
    pub path: PathBuf,
    /// How long to wait for a reader to let go of the file before a commit.
    pub lock_timeout: Duration,
    /// Keep the connection open for the next commit this long (a sync: `SYNC_IDLE`), within
    /// `MAX_HOLD` in all; `release` closes it. None: closed after every commit.
    pub keep_open: Option<Duration>,
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
    /// Column lists already read in this connection.
    pub(super) columns: &'a RefCell<HashMap<String, Vec<String>>>,
}

/// A read-only view of the file (for `status`, `log`, `report`, the web page).
pub struct Reader {
    pub(super) conn: Connection,
    pub(super) path: PathBuf,
}

impl Warehouse {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Warehouse { path: path.into(), lock_timeout: Duration::from_secs(120), keep_open: None }
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
            match open_writer(&self.path) {
                Ok(conn) => return Ok(conn),
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
        // An in-process reader waits for a commit in progress, and the connection a sync keeps
        // is closed first: two instances of the same file in one process must not meet.
        {
            close_held(&mut gate(), &self.path, None);
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

    /// Runs `f` in one transaction, on the connection kept from the previous commit (when a
    /// commit as long as that one still ends within `MAX_HOLD`) or a fresh one; the file is
    /// closed after unless `keep_open`.
    #[track_caller]
    pub fn commit<T, E: From<StoreError>>(&self, stats: &mut WindowStats, f: impl FnOnce(&mut Tx<'_>) -> Result<T, E>) -> Result<T, E> {
        let mut kept = gate();
        let started = Instant::now();
        // Reused only when another commit like the last, and the close after it, still end
        // within MAX_HOLD.
        let reuse = kept.iter().any(|h| h.path == self.path && h.opened.elapsed() + h.last + expected_close(&self.path) < MAX_HOLD);
        if !reuse {
            close_held(&mut kept, &self.path, None);
            let conn = self.connect()?;
            let generation = GENERATION.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            kept.push(Held { path: self.path.clone(), conn, opened: started, generation, commits: 0, last: Duration::ZERO, columns: RefCell::new(HashMap::new()) });
        }
        let opened = started.elapsed();
        let held = kept.iter_mut().find(|h| h.path == self.path).expect("a connection was just opened");
        held.commits += 1;
        let outcome = (|| {
            let txn = held.conn.transaction().map_err(db("starting a transaction"))?;
            let mut tx = Tx { conn: &txn, path: &self.path, columns: &held.columns };
            let value = f(&mut tx)?;
            let worked = started.elapsed();
            txn.commit().map_err(db("committing"))?;
            Ok::<(T, Duration), E>((value, worked))
        })();
        let spent = started.elapsed();
        held.last = spent - opened;
        let closing = expected_close(&self.path);
        // A failed commit leaves nothing cached behind; a kept connection is let go in time.
        let (since_open, generation, commits) = (held.opened.elapsed(), held.generation, held.commits);
        let idle = self.keep_open.filter(|_| outcome.is_ok() && since_open + closing < MAX_HOLD);
        if let Some(idle) = idle {
            // Closed by this timer unless another commit has used it meanwhile.
            let wait = idle.min(MAX_HOLD - since_open - closing);
            let path = self.path.clone();
            std::thread::spawn(move || {
                std::thread::sleep(wait);
                close_held(&mut gate(), &path, Some((generation, commits)));
            });
        } else {
            close_held(&mut kept, &self.path, None);
        }
        drop(kept);
        let (value, worked) = outcome?;
        tracing::trace!(at = %std::panic::Location::caller(), opened_ms = opened.as_millis() as u64, worked_ms = worked.as_millis() as u64, committed_ms = spent.as_millis() as u64, kept = idle.is_some(), "commit phases");
        if spent > LONG_COMMIT {
            tracing::debug!(ms = spent.as_millis() as u64, at = %std::panic::Location::caller(), "a long commit");
        }
        stats.commits += 1;
        stats.total += spent;
        stats.longest = stats.longest.max(spent);
        Ok(value)
    }

    /// Closes the connection kept across commits, and returns the longest time the file was
    /// held open at a stretch since the last call (a commit window, as other processes see it).
    pub fn release(&self) -> Duration {
        close_held(&mut gate(), &self.path, None);
        let mut holds = LONGEST_HOLD.lock().unwrap_or_else(|e| e.into_inner());
        match holds.iter().position(|(p, _)| *p == self.path) {
            Some(i) => holds.swap_remove(i).1,
            None => Duration::ZERO,
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The generation of the connection kept for `path`, if one is.
    fn kept(path: &Path) -> Option<u64> {
        gate().iter().find(|h| h.path == path).map(|h| h.generation)
    }

    #[test]
    fn a_commit_spills_beside_the_file_within_its_memory_cap() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("it's.duckdb");
        let conn = open_writer(&path).unwrap();
        let setting = |name: &str| -> String { conn.query_row(&format!("SELECT current_setting('{name}')"), [], |r| r.get(0)).unwrap() };
        assert_eq!(setting("temp_directory"), format!("{}.tmp", path.display()), "not `.tmp` under the working folder");
        assert_eq!(setting("memory_limit"), "61.0 MiB", "64 MB");
    }

    #[test]
    fn a_kept_connection_serves_the_next_commit_and_gives_way_to_a_reader_and_to_release() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Warehouse::new(dir.path().join("kept.duckdb"));
        // An idle time no test run reaches: only MAX_HOLD, a reader or release closes it.
        w.keep_open = Some(Duration::from_secs(3600));
        let mut stats = WindowStats::default();
        w.commit(&mut stats, |tx| tx.conn.execute_batch("CREATE TABLE t (n BIGINT)").map_err(db("creating"))).unwrap();
        let first = kept(&w.path).expect("kept after the first commit");
        w.commit(&mut stats, |tx| tx.conn.execute_batch("INSERT INTO t VALUES (1)").map_err(db("inserting"))).unwrap();
        assert_eq!(kept(&w.path), Some(first), "the second commit ran on the same connection");
        assert_eq!(stats.commits, 2);
        // An in-process reader closes it first, and sees every commit.
        let reader = w.read().unwrap();
        assert_eq!(kept(&w.path), None);
        let n: i64 = reader.conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 1);
        drop(reader);
        // A failed commit is not kept; the next one opens afresh and is kept again.
        let failed = w.commit(&mut stats, |tx| tx.conn.execute_batch("INSERT INTO nowhere VALUES (2)").map_err(db("inserting")));
        assert!(failed.is_err());
        assert_eq!(kept(&w.path), None, "a failed commit's connection is closed");
        w.commit(&mut stats, |tx| tx.conn.execute_batch("INSERT INTO t VALUES (2)").map_err(db("inserting"))).unwrap();
        assert!(kept(&w.path).is_some_and(|g| g != first));
        // Release closes it and reports the longest stretch the file was held, once.
        let held = w.release();
        assert_eq!(kept(&w.path), None);
        assert!(held > Duration::ZERO && held < Duration::from_secs(5), "{held:?}");
        assert_eq!(w.release(), Duration::ZERO, "asked once");
    }

    /// What keeps a large backfill's checkpoints short: rows a writer adds go in groups of
    /// `ROW_GROUP_ROWS`, not DuckDB's 122,880.
    #[test]
    fn a_writer_adds_rows_in_row_groups_of_row_group_rows() {
        let dir = tempfile::tempdir().unwrap();
        let w = Warehouse::new(dir.path().join("groups.duckdb"));
        let rows = 3 * ROW_GROUP_ROWS;
        w.commit(&mut WindowStats::default(), |tx| {
            tx.conn.execute_batch(&format!("CREATE TABLE t AS SELECT range AS n FROM range({rows})")).map_err(db("filling"))
        })
        .unwrap();
        let reader = w.read().unwrap();
        let groups: i64 = reader.conn.query_row("SELECT count(DISTINCT row_group_id) FROM pragma_storage_info('t')", [], |r| r.get(0)).unwrap();
        assert_eq!(groups, 3);
    }

    /// What bounds a commit window: a connection is kept for another commit only when that
    /// commit and the checkpoint on closing after it (as long as the longest recent close) end
    /// within MAX_HOLD.
    #[test]
    fn a_connection_is_not_kept_when_its_close_would_end_past_max_hold() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Warehouse::new(dir.path().join("close.duckdb"));
        w.keep_open = Some(Duration::from_secs(3600));
        let mut stats = WindowStats::default();
        w.commit(&mut stats, |tx| tx.conn.execute_batch("CREATE TABLE t (n BIGINT)").map_err(db("creating"))).unwrap();
        let first = kept(&w.path).expect("kept");
        // A recent close took the whole hold: the kept connection is let go before the next
        // commit, and that commit's own connection is closed right after it.
        record_close(&w.path, MAX_HOLD);
        w.commit(&mut stats, |tx| tx.conn.execute_batch("INSERT INTO t VALUES (1)").map_err(db("inserting"))).unwrap();
        assert_eq!(kept(&w.path), None, "closed after its commit");
        // Once the long close is no longer among the recent ones, connections are kept again.
        for _ in 0..RECENT_CLOSES {
            record_close(&w.path, Duration::ZERO);
        }
        w.commit(&mut stats, |tx| tx.conn.execute_batch("INSERT INTO t VALUES (2)").map_err(db("inserting"))).unwrap();
        let again = kept(&w.path).expect("kept again");
        assert_ne!(again, first);
        w.commit(&mut stats, |tx| tx.conn.execute_batch("INSERT INTO t VALUES (3)").map_err(db("inserting"))).unwrap();
        assert_eq!(kept(&w.path), Some(again));
        w.release();
    }

    #[test]
    fn without_keep_open_every_commit_closes_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let w = Warehouse::new(dir.path().join("closed.duckdb"));
        w.commit(&mut WindowStats::default(), |tx| tx.conn.execute_batch("CREATE TABLE t (n BIGINT)").map_err(db("creating"))).unwrap();
        assert_eq!(kept(&w.path), None);
    }
}
