//! The simulated clock: the configured start time, plus explicit advances, plus the real
//! time elapsed since the simulator started.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Instant;

use super::dates::Ts;

#[derive(Debug)]
pub struct SimClock {
    start_ms: i64,
    offset_ms: AtomicI64,
    started: Instant,
}

impl SimClock {
    pub fn new(start_ts: Ts) -> SimClock {
        SimClock {
            start_ms: start_ts * 1000,
            offset_ms: AtomicI64::new(0),
            started: Instant::now(),
        }
    }

    /// Milliseconds since the epoch on the simulated clock.
    pub fn now_ms(&self) -> i64 {
        self.start_ms
            + self.offset_ms.load(Ordering::SeqCst)
            + self.started.elapsed().as_millis() as i64
    }

    /// Whole seconds on the simulated clock (stored timestamps have second precision).
    pub fn now_ts(&self) -> Ts {
        self.now_ms().div_euclid(1000)
    }

    pub fn advance_ms(&self, ms: i64) {
        self.offset_ms.fetch_add(ms, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advances_and_never_goes_back() {
        let c = SimClock::new(1_000_000);
        let a = c.now_ms();
        assert!(a >= 1_000_000_000);
        c.advance_ms(3_600_000);
        assert!(c.now_ms() >= a + 3_600_000);
        assert!(c.now_ts() >= 1_003_600);
    }
}
