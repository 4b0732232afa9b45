//! Requests spaced to the plan's rate limit: the configured one, or the lower one the API's
//! `X-RateLimit-Limit-Minute` header reports, so that a normal run never sees a 429.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

pub struct Throttle {
    limiter: Mutex<Arc<DefaultDirectRateLimiter>>,
    limit: AtomicU32,
    window: Duration,
}

impl Throttle {
    pub fn new(limit: u32, window: Duration) -> Self {
        Throttle { limiter: Mutex::new(Arc::new(RateLimiter::direct(quota(limit, window)))), limit: AtomicU32::new(limit), window }
    }

    /// Waits for this request's turn.
    pub async fn ready(&self) {
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
