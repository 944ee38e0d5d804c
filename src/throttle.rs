//! A log throttle: at most one line per period, saying how many were held back meanwhile.
//! It decides, the caller logs; so any input, however fast, costs a bounded log.

use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Throttle {
    period: Duration,
    last: Option<Instant>,
    held_back: u64,
}

impl Throttle {
    pub fn new(period: Duration) -> Self {
        Throttle {
            period,
            last: None,
            held_back: 0,
        }
    }

    /// One more occurrence at `now`: `Some(n)` if a line may be logged, `n` being how many
    /// occurrences were held back since the last line; `None` to stay quiet.
    pub fn admit(&mut self, now: Instant) -> Option<u64> {
        if self
            .last
            .is_some_and(|last| now.saturating_duration_since(last) < self.period)
        {
            self.held_back += 1;
            return None;
        }
        self.last = Some(now);
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
}
