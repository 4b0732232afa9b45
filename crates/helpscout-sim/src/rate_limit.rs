//! The per-account rate limit: a fixed window (60 s by default) with a request budget, writes
//! weighing 2, judged on the simulated clock.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed { remaining: u32 },
    Limited { retry_after_secs: u64 },
}

#[derive(Debug, Clone)]
pub struct RateLimiter {
    limit: u32,
    window_ms: i64,
    window_start_ms: Option<i64>,
    used: u32,
}

impl RateLimiter {
    pub fn new(limit: u32, window_ms: i64) -> RateLimiter {
        RateLimiter {
            limit,
            window_ms: window_ms.max(1),
            window_start_ms: None,
            used: 0,
        }
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }

    fn roll(&mut self, now_ms: i64) {
        match self.window_start_ms {
            Some(s) if now_ms < s + self.window_ms => {}
            _ => {
                self.window_start_ms = Some(now_ms);
                self.used = 0;
            }
        }
    }

    /// Budget left in the current window (without spending any).
    pub fn remaining(&mut self, now_ms: i64) -> u32 {
        self.roll(now_ms);
        self.limit.saturating_sub(self.used)
    }

    /// Spends `weight` if the window has room for it.
    pub fn check(&mut self, now_ms: i64, weight: u32) -> Decision {
        self.roll(now_ms);
        if self.used + weight <= self.limit {
            self.used += weight;
            Decision::Allowed {
                remaining: self.limit - self.used,
            }
        } else {
            Decision::Limited {
                retry_after_secs: self.retry_after(now_ms),
            }
        }
    }

    /// Whole seconds until the window refreshes, at least 1.
    pub fn retry_after(&self, now_ms: i64) -> u64 {
        let end = self.window_start_ms.unwrap_or(now_ms) + self.window_ms;
        let ms = (end - now_ms).max(0);
        ((ms + 999) / 1000).max(1) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_math() {
        let mut r = RateLimiter::new(5, 60_000);
        assert_eq!(r.check(1_000, 1), Decision::Allowed { remaining: 4 });
        assert_eq!(r.check(2_000, 2), Decision::Allowed { remaining: 2 });
        assert_eq!(r.check(3_000, 2), Decision::Allowed { remaining: 0 });
        assert_eq!(
            r.check(3_500, 1),
            Decision::Limited {
                retry_after_secs: 58
            }
        );
        assert_eq!(
            r.check(60_500, 1),
            Decision::Limited {
                retry_after_secs: 1
            }
        );
        assert_eq!(r.remaining(60_999), 0);
        // The window started at 1,000 ms: it refreshes at 61,000 ms.
        assert_eq!(r.check(61_000, 1), Decision::Allowed { remaining: 4 });
    }

    #[test]
    fn writes_do_not_fit_in_one_unit() {
        let mut r = RateLimiter::new(3, 1_000);
        assert_eq!(r.check(0, 2), Decision::Allowed { remaining: 1 });
        assert_eq!(
            r.check(1, 2),
            Decision::Limited {
                retry_after_secs: 1
            }
        );
        assert_eq!(r.check(2, 1), Decision::Allowed { remaining: 0 });
    }
}
