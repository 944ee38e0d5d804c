//! Who makes room when the most peers are listed: the peers heard only once, in join order, and
//! which of them a newcomer evicts, at a bounded rate. Pure: instants come as the registry's
//! stamps (nanoseconds), and whether an entry still stands is the caller's to say.

use std::collections::VecDeque;
use std::time::Duration;

use crate::config::EARLY_ANSWER_WINDOW;

/// How long a peer heard once is spared while older ones can make room: a real node is heard
/// again within it, answering early the peers that answer its first beacon (at most two early
/// answers a second: so within a second, even in a crowd).
pub const GRACE: Duration = EARLY_ANSWER_WINDOW;

/// The peers on probation, and the budget of evictions.
#[derive(Debug)]
pub struct Probation {
    /// (place, join stamp) of peers heard once, in join order. An entry whose peer has since
    /// been heard again, gone or been replaced is skipped when met and dropped when they pile
    /// up; the caller says which still stand.
    entries: VecDeque<(u32, u64)>,
    /// Evictions allowed now: `max_peers` a second, as many at once. A flood past that is
    /// refused, as cheaply as before evictions existed; a burst of it still turns every place
    /// over at once.
    budget: f64,
    per_second: f64,
    /// When the budget was last topped up, as a stamp.
    topped_up: u64,
}

impl Probation {
    /// For a registry listing at most `max_peers`.
    pub fn new(max_peers: usize) -> Probation {
        // Lossy only past 2^53 peers, which no registry holds.
        let per_second = max_peers as f64;
        Probation {
            entries: VecDeque::new(),
            budget: per_second,
            per_second,
            topped_up: 0,
        }
    }

    /// The peer at `place`, which joined at `joined`, is heard once so far. `live` peers are
    /// listed; `stands` says whether an older entry still stands.
    pub fn push(
        &mut self,
        place: u32,
        joined: u64,
        live: usize,
        stands: impl Fn(u32, u64) -> bool,
    ) {
        if self.entries.len() > 2 * live + 64 {
            self.entries
                .retain(|&(place, joined)| stands(place, joined));
        }
        self.entries.push_back((place, joined));
    }

    /// The place of the peer to evict at `now`, taken off the list: the latest to join among
    /// those that joined more than [`GRACE`] ago, or, if none did, the latest of all. `None`
    /// when no entry stands, or the budget of evictions is spent.
    ///
    /// A flood slower than the budget evicts only its own names then: during it a newcomer
    /// keeps its place until heard again, after a burst the burst's last name goes first, and a
    /// peer that joined just before a burst outlives it.
    pub fn pick(&mut self, now: u64, stands: impl Fn(u32, u64) -> bool) -> Option<u32> {
        let elapsed = now.saturating_sub(self.topped_up);
        self.topped_up = self.topped_up.max(now);
        // Lossy in the sub-nanosecond digits only.
        let refill = elapsed as f64 / 1e9 * self.per_second;
        self.budget = (self.budget + refill).min(self.per_second);
        if self.budget < 1.0 {
            return None;
        }
        let cutoff = now.saturating_sub(u64::try_from(GRACE.as_nanos()).unwrap_or(u64::MAX));
        // In join order, so those past the grace come first.
        let past_grace = self
            .entries
            .partition_point(|&(_, joined)| joined <= cutoff);
        let len = self.entries.len();
        let entries = &self.entries;
        let found = (0..past_grace)
            .rev()
            .chain((past_grace..len).rev())
            .find(|&i| stands(entries[i].0, entries[i].1))?;
        let (place, _) = self.entries.remove(found)?;
        self.budget -= 1.0;
        Some(place)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    #[test]
    fn the_latest_past_the_grace_goes_first_else_the_latest_of_all() {
        let mut probation = Probation::new(100);
        let all = |_, _| true;
        probation.push(1, 0, 3, all);
        probation.push(2, SECOND / 2, 3, all);
        probation.push(3, 2 * SECOND, 3, all);
        // At 2.1 s: places 1 and 2 are past the grace, 3 is within it.
        assert_eq!(probation.pick(2 * SECOND + SECOND / 10, all), Some(2));
        assert_eq!(probation.pick(2 * SECOND + SECOND / 10, all), Some(1));
        assert_eq!(probation.pick(2 * SECOND + SECOND / 10, all), Some(3));
        assert_eq!(probation.pick(2 * SECOND + SECOND / 10, all), None);
    }

    #[test]
    fn entries_that_no_longer_stand_are_skipped() {
        let mut probation = Probation::new(100);
        let all = |_, _| true;
        for place in 0..4 {
            probation.push(place, u64::from(place) + 1, 4, all);
        }
        let heard_again = |place, _| place != 3 && place != 2;
        assert_eq!(probation.pick(10, heard_again), Some(1));
    }

    #[test]
    fn at_most_max_peers_evictions_a_second() {
        let mut probation = Probation::new(10);
        let all = |_, _| true;
        for place in 0..100 {
            probation.push(place, 0, 100, all);
        }
        let picked = (0..100)
            .filter(|_| probation.pick(SECOND, all).is_some())
            .count();
        assert_eq!(picked, 10, "a second's budget at once");
        assert_eq!(
            probation.pick(SECOND + SECOND / 20, all),
            None,
            "not yet one more"
        );
        assert!(
            probation.pick(SECOND + SECOND / 10, all).is_some(),
            "a tenth of a second later"
        );
    }
}
