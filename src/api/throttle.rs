//! Requests spaced to the plan's rate limit: the configured one, or the lower one the API's
//! `X-RateLimit-Limit-Minute` header reports, so that a normal run never sees a 429.
//!
//! The limit is the account's, shared by every process that uses it. Processes on the same
//! outputs (a cron `sync` beside `serve` delivering tickets) share one schedule of request
//! slots in a small file under a lock: each request takes the next free slot, so together they
//! stay under the limit and neither can starve the other (a request waits at most for the
//! slots already taken, a handful).

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

pub struct Throttle {
    limiter: Mutex<Arc<DefaultDirectRateLimiter>>,
    limit: AtomicU32,
    window: Duration,
    /// The schedule shared with other processes on the same outputs.
    shared: Option<std::path::PathBuf>,
}

impl Throttle {
    pub fn new(limit: u32, window: Duration) -> Self {
        Throttle { limiter: Mutex::new(Arc::new(RateLimiter::direct(quota(limit, window)))), limit: AtomicU32::new(limit), window, shared: None }
    }

    /// Shares the schedule with other processes through this file.
    pub fn shared(mut self, path: std::path::PathBuf) -> Self {
        self.shared = Some(path);
        self
    }

    /// Waits for this request's turn.
    pub async fn ready(&self) {
        if let Some(path) = &self.shared {
            let gaps = Gaps { alone: self.spacing(), shared: shared_spacing(self.limit(), self.window), window: self.window };
            match take_slot(path, std::process::id(), gaps) {
                Ok(wait) => {
                    if !wait.is_zero() {
                        tokio::time::sleep(wait).await;
                    }
                    return;
                }
                // An unusable file (a read-only state folder): this process spaces alone.
                Err(e) => tracing::debug!(error = %e, "the shared request schedule is unusable"),
            }
        }
        let limiter = Arc::clone(&self.limiter.lock().unwrap_or_else(|e| e.into_inner()));
        limiter.until_ready().await;
    }

    /// The limit requests are spaced to now.
    pub fn limit(&self) -> u32 {
        self.limit.load(Relaxed)
    }

    /// The time between two requests at the current limit.
    pub fn spacing(&self) -> Duration {
        spacing(self.limit(), self.window)
    }

    /// The account's real limit is lower than configured: space requests by it from now on.
    pub fn adopt(&self, limit: i64) {
        let Ok(limit) = u32::try_from(limit) else { return };
        if limit == 0 || limit >= self.limit.load(Relaxed) {
            return;
        }
        self.limit.store(limit, Relaxed);
        tracing::info!(limit, "the API reports a lower rate limit than configured; following it");
        *self.limiter.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(RateLimiter::direct(quota(limit, self.window)));
    }
}

/// The gap after a slot: the plan's own while this process is the only one taking slots, with
/// headroom while another took one within the last window.
#[derive(Debug, Clone, Copy)]
struct Gaps {
    alone: Duration,
    shared: Duration,
    window: Duration,
}

/// Takes the next free slot of the shared schedule: returns how long to wait for it. The file
/// holds the next free slot's time (microseconds since the epoch), the process that took the
/// last slot, and until when another process counts as sharing; it is read and moved under an
/// exclusive lock.
fn take_slot(path: &std::path::Path, pid: u32, gaps: Gaps) -> std::io::Result<Duration> {
    take_slot_at(path, pid, gaps, || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_micros() as u64)
}

/// `take_slot` with the clock given (microseconds since the epoch, read under the lock).
fn take_slot_at(path: &std::path::Path, pid: u32, gaps: Gaps, clock: impl FnOnce() -> u64) -> std::io::Result<Duration> {
    use std::io::{Read, Seek, SeekFrom, Write};
    let open = || std::fs::OpenOptions::new().create(true).truncate(false).read(true).write(true).open(path);
    let mut file = match open() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(path.parent().unwrap_or(std::path::Path::new(".")))?;
            open()?
        }
        other => other?,
    };
    file.lock()?;
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    let now = clock();
    let mut fields = text.split_whitespace().map(|v| v.parse::<u64>().unwrap_or(0));
    let (next_free, last_pid, mut shared_until) = (fields.next().unwrap_or(0), fields.next().unwrap_or(0), fields.next().unwrap_or(0));
    if last_pid != 0 && last_pid != u64::from(pid) {
        shared_until = now + gaps.window.as_micros() as u64;
    }
    let gap = if now < shared_until { gaps.shared } else { gaps.alone };
    // A schedule far ahead of now is stale (a clock change): start again from now.
    let slot = if next_free > now + 3_600_000_000 { now } else { next_free.max(now) };
    let after = slot + gap.as_micros() as u64;
    file.seek(SeekFrom::Start(0))?;
    file.set_len(0)?;
    file.write_all(format!("{after} {pid} {shared_until}").as_bytes())?;
    file.unlock()?;
    Ok(Duration::from_micros(slot - now))
}

/// The shared schedule leaves a tenth of the limit unused: requests of several processes that a
/// busy machine delays past their slot then still fit in the window they arrive in.
fn shared_spacing(limit: u32, window: Duration) -> Duration {
    spacing((limit - limit / 10).max(2), window)
}

/// Spacing requests by window/(limit−1) never puts more than `limit` in any window.
fn spacing(limit: u32, window: Duration) -> Duration {
    (window / limit.saturating_sub(1).max(1)).max(Duration::from_micros(1))
}

fn quota(limit: u32, window: Duration) -> Quota {
    Quota::with_period(spacing(limit, window)).expect("a non-zero period").allow_burst(NonZeroU32::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spacing_never_lets_more_than_the_limit_start_in_a_window() {
        for (limit, window) in [(400, Duration::from_secs(60)), (200, Duration::from_secs(60)), (12, Duration::from_secs(1)), (2, Duration::from_millis(10))] {
            let gap = spacing(limit, window);
            // Starts at 0, gap, 2·gap, …: the (limit+1)-th start falls outside any window of length `window`.
            // Strictly: a window/limit spacing would fit limit+1 starts in a closed window.
            assert!(gap * limit > window, "{limit}/{window:?}: {} starts fit in a window", limit + 1);
            // …and the limit itself is reachable (no needless slowness: within one gap of the window).
            assert!(gap * (limit - 1) <= window, "{limit}/{window:?}: slower than the plan allows");
        }
        assert_eq!(spacing(1, Duration::from_secs(1)), Duration::from_secs(1));
        assert_eq!(spacing(0, Duration::ZERO), Duration::from_micros(1));
    }

    #[test]
    fn processes_sharing_a_schedule_take_consecutive_slots() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("schedule");
        let gaps = Gaps { alone: Duration::from_millis(100), shared: Duration::from_millis(150), window: Duration::from_secs(60) };
        // The clock stands still at `T`: the waits are exact, however busy the machine.
        const T: u64 = 1_800_000_000_000_000;
        let take = |pid: u32| take_slot_at(&path, pid, gaps, || T).unwrap();
        let ms = |m: u64| Duration::from_millis(m);
        // One process alone: its waits grow by the plan's gap.
        let alone: Vec<Duration> = (0..3).map(|_| take(1)).collect();
        assert_eq!(alone, [ms(0), ms(100), ms(200)]);
        // A second process takes slots too: from now on both leave headroom.
        let shared: Vec<Duration> = [2, 1, 2, 1].iter().map(|pid| take(*pid)).collect();
        assert_eq!(shared, [ms(300), ms(450), ms(600), ms(750)]);
        // A stale schedule far in the future is reset.
        std::fs::write(&path, format!("{} 1 0", u64::MAX)).unwrap();
        assert_eq!(take(1), ms(0));
        // `take_slot` reads the real clock: an empty schedule's first slot is now.
        std::fs::write(&path, "").unwrap();
        assert_eq!(take_slot(&path, 1, gaps).unwrap(), ms(0));
        // Shared, a tenth of the limit is headroom.
        assert_eq!(shared_spacing(400, Duration::from_secs(60)), spacing(360, Duration::from_secs(60)));
        assert_eq!(shared_spacing(2, Duration::from_secs(1)), spacing(2, Duration::from_secs(1)));
    }

    #[test]
    fn a_lower_reported_limit_is_adopted_and_a_higher_one_ignored() {
        let t = Throttle::new(400, Duration::from_secs(60));
        t.adopt(800);
        assert_eq!(t.limit(), 400);
        t.adopt(12);
        assert_eq!(t.limit(), 12);
        assert_eq!(t.spacing(), spacing(12, Duration::from_secs(60)));
        t.adopt(0);
        assert_eq!(t.limit(), 12);
    }
}
