//! The one log limiter: at most `burst` lines per period, however fast the input. What it holds
//! back is counted, for the next line it lets through or for a summary once the period is over.
//! It decides, the caller logs; pure, given instants.

use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Throttle {
    period: Duration,
    burst: u32,
    /// When the current period began, if one has.
    window: Option<Instant>,
    /// Lines let through in the current period (a summary counts as one).
    logged: u32,
    held_back: u64,
}

impl Throttle {
    /// At most one line per `period`.
    pub const fn new(period: Duration) -> Self {
        Throttle::with_burst(1, period)
    }

    /// At most `burst` lines per `period`.
    pub const fn with_burst(burst: u32, period: Duration) -> Self {
        Throttle {
            period,
            burst,
            window: None,
            logged: 0,
            held_back: 0,
        }
    }

    /// One more line wanted at `now`: `Some(n)` if it may be logged, `n` being how many were
    /// held back since the last line or summary; `None` to stay quiet.
    pub fn admit(&mut self, now: Instant) -> Option<u64> {
        if self.window.is_none_or(|start| now >= start + self.period) {
            self.window = Some(now);
            self.logged = 0;
        }
        if self.logged < self.burst {
            self.logged += 1;
            Some(std::mem::take(&mut self.held_back))
        } else {
            self.held_back += 1;
            None
        }
    }

    /// When the lines held back may be summarised, if any were: the end of their period.
    pub fn summary_due(&self) -> Option<Instant> {
        let start = self.window.filter(|_| self.held_back > 0)?;
        Some(start + self.period)
    }

    /// How many lines were held back, once their period is over by `now`: the caller logs one
    /// summary of them, which counts as the first line of the next period. `None` before then,
    /// or when nothing was held back.
    pub fn summary(&mut self, now: Instant) -> Option<u64> {
        if self.summary_due().is_none_or(|due| now < due) {
            return None;
        }
        self.window = Some(now);
        self.logged = 1;
        Some(std::mem::take(&mut self.held_back))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_period_with_the_count_held_back() {
        let t0 = Instant::now();
        let mut throttle = Throttle::new(Duration::from_secs(1));
        assert_eq!(throttle.admit(t0), Some(0));
        for i in 1..=1000 {
            assert_eq!(throttle.admit(t0 + Duration::from_micros(i)), None);
        }
        assert_eq!(throttle.admit(t0 + Duration::from_secs(1)), Some(1000));
        assert_eq!(throttle.admit(t0 + Duration::from_millis(1500)), None);
    }

    #[test]
    fn a_burst_goes_through_then_one_summary_per_period() {
        let t0 = Instant::now();
        let second = Duration::from_secs(1);
        let mut throttle = Throttle::with_burst(5, second);
        let logged = (0..1000)
            .filter(|&i| throttle.admit(t0 + Duration::from_micros(i)).is_some())
            .count();
        assert_eq!(logged, 5);
        assert_eq!(throttle.summary_due(), Some(t0 + second));
        assert_eq!(
            throttle.summary(t0 + second / 2),
            None,
            "not before its period ends"
        );
        assert_eq!(throttle.summary(t0 + second), Some(995));
        assert_eq!(throttle.summary_due(), None, "nothing left to summarise");
        // The summary was the first line of the next period: four more go through in it.
        let next = (0..10)
            .filter(|&i| {
                throttle
                    .admit(t0 + second + Duration::from_millis(i))
                    .is_some()
            })
            .count();
        assert_eq!(next, 4);
    }

    #[test]
    fn nothing_held_back_means_no_summary() {
        let t0 = Instant::now();
        let mut throttle = Throttle::with_burst(5, Duration::from_secs(1));
        throttle.admit(t0);
        assert_eq!(throttle.summary_due(), None);
        assert_eq!(throttle.summary(t0 + Duration::from_secs(5)), None);
    }
}
