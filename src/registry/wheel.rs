//! A hashed timer wheel: an index of "what might be due by now", with no clock of its own.
//! It never decides that anything expired; its owner checks the authoritative deadline.

use std::time::{Duration, Instant};

/// Width of one slot. Fine enough for sub-second test timings; a sweep looks at the entries of
/// the slots it passes, so a finer tick costs only empty-slot steps.
pub const TICK: Duration = Duration::from_millis(10);
/// 4096 slots of 10 ms span 40.96 s, more than the default 35 s ttl, so with default settings
/// no entry waits for a later lap and a sweep touches only entries that are due.
pub const SLOTS: usize = 4096;
// Lossless: 10 ms in nanoseconds fits any integer type here.
const TICK_NANOS: u64 = TICK.as_nanos() as u64;

/// Items scheduled at instants, handed back once their instant has passed.
///
/// Insertion is O(1). [`TimerWheel::advance`] costs the due entries plus the slots stepped over
/// (bounded by [`SLOTS`]), never the total number of entries.
#[derive(Debug)]
pub struct TimerWheel<T> {
    origin: Instant,
    slots: Vec<Vec<Entry<T>>>,
    /// Every slot before this tick has been drained; the slot of this tick may still hold
    /// entries due later within the tick.
    current_tick: u64,
    len: usize,
    /// Earliest instant in the wheel, kept so the agent can ask for it on every loop turn in
    /// O(1): lowered by inserts, recomputed by an advance that hands anything back.
    earliest: Option<Instant>,
}

/// 16 bytes with the registry's 8-byte items: the instant is kept as nanoseconds since the
/// origin (it saturates after 584 years), and the tick is computed from it, not stored.
#[derive(Debug)]
struct Entry<T> {
    at: u64,
    item: T,
}

impl<T> Entry<T> {
    fn tick(&self) -> u64 {
        self.at / TICK_NANOS
    }
}

impl<T> TimerWheel<T> {
    /// An empty wheel whose tick 0 starts at `origin`; instants before it count as tick 0.
    pub fn new(origin: Instant) -> Self {
        TimerWheel {
            origin,
            slots: (0..SLOTS).map(|_| Vec::new()).collect(),
            current_tick: 0,
            len: 0,
            earliest: None,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Schedules `item` to be handed back by the first [`advance`](Self::advance) at or after `at`.
    pub fn insert(&mut self, at: Instant, item: T) {
        // An instant in a tick already drained goes into the current slot, which every
        // advance scans, so it is still handed back on time.
        let nanos = self.nanos_of(at);
        // The tick is derived from the instant, so an instant in a drained tick is stored as the
        // current tick's start: due at once, as it was.
        let nanos = nanos.max(self.current_tick * TICK_NANOS);
        let slot = &mut self.slots[slot_of(nanos / TICK_NANOS)];
        if slot.len() == slot.capacity() {
            // Grow by half, not double: at a million entries the slots' spare room is most of
            // the wheel's memory.
            slot.reserve_exact((slot.len() / 2).max(1));
        }
        slot.push(Entry { at: nanos, item });
        let at = self.instant_of(nanos);
        if self.earliest.is_none_or(|e| at < e) {
            self.earliest = Some(at);
        }
        self.len += 1;
    }

    /// The earliest instant any item is scheduled for, if any.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.earliest
    }

    /// Moves every item scheduled at or before `now` into `due`, in no particular order.
    pub fn advance(&mut self, now: Instant, due: &mut Vec<T>) {
        let now_tick = self.tick_of(now);
        let before = due.len();
        // Whole slots of ticks that are over; at most one lap, since a lap visits every slot.
        let laps_end = now_tick.min(self.current_tick + SLOTS as u64);
        for tick in self.current_tick..laps_end {
            self.drain_slot(slot_of(tick), |e| e.tick() <= tick, due);
        }
        if now_tick >= self.current_tick + SLOTS as u64 {
            // More than a lap passed: entries of later laps may be due in any slot.
            for slot in 0..SLOTS {
                self.drain_slot(slot, |e| e.tick() < now_tick, due);
            }
        }
        self.current_tick = self.current_tick.max(now_tick);
        // The current tick is only partly over: take what is due, keep the rest.
        let now_nanos = self.nanos_of(now);
        self.drain_slot(
            slot_of(now_tick),
            |e| e.tick() <= now_tick && e.at <= now_nanos,
            due,
        );
        if due.len() > before {
            self.earliest = self.find_earliest();
        }
    }

    fn drain_slot(&mut self, slot: usize, is_due: impl Fn(&Entry<T>) -> bool, due: &mut Vec<T>) {
        let entries = &mut self.slots[slot];
        let mut i = 0;
        while i < entries.len() {
            if is_due(&entries[i]) {
                due.push(entries.swap_remove(i).item);
                self.len -= 1;
            } else {
                i += 1;
            }
        }
        // A flood leaves slots with room for hundreds of entries: an emptied one gives its
        // buffer back, unless it is the few entries an ordinary slot holds.
        if entries.is_empty() && entries.capacity() > 16 {
            *entries = Vec::new();
        }
    }

    /// Walks the slots from the current tick; the first non-empty one holding entries of this
    /// lap has the earliest deadline. Entries of later laps need a full scan (rare: only for
    /// deadlines more than [`SLOTS`] ticks ahead).
    fn find_earliest(&self) -> Option<Instant> {
        if self.len == 0 {
            return None;
        }
        for tick in self.current_tick..self.current_tick + SLOTS as u64 {
            let earliest = self.slots[slot_of(tick)]
                .iter()
                .filter(|e| e.tick() == tick)
                .map(|e| e.at)
                .min();
            if let Some(nanos) = earliest {
                return Some(self.instant_of(nanos));
            }
        }
        let nanos = self.slots.iter().flatten().map(|e| e.at).min()?;
        Some(self.instant_of(nanos))
    }

    fn tick_of(&self, at: Instant) -> u64 {
        self.nanos_of(at) / TICK_NANOS
    }

    /// Nanoseconds from the origin to `at`: 0 for instants before it, saturating after 584
    /// years of uptime.
    fn nanos_of(&self, at: Instant) -> u64 {
        let since = at.saturating_duration_since(self.origin);
        u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
    }

    fn instant_of(&self, nanos: u64) -> Instant {
        self.origin + Duration::from_nanos(nanos)
    }
}

fn slot_of(tick: u64) -> usize {
    // Lossless: the remainder is below SLOTS.
    (tick % SLOTS as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn due_at<T>(wheel: &mut TimerWheel<T>, now: Instant) -> Vec<T> {
        let mut due = Vec::new();
        wheel.advance(now, &mut due);
        due
    }

    #[test]
    fn hands_back_an_item_at_its_instant_and_not_before() {
        let t0 = Instant::now();
        let mut wheel = TimerWheel::new(t0);
        let at = t0 + Duration::from_millis(35_003);
        wheel.insert(at, "a");
        assert!(due_at(&mut wheel, at - Duration::from_nanos(1)).is_empty());
        assert_eq!(due_at(&mut wheel, at), vec!["a"]);
        assert!(wheel.is_empty());
    }

    #[test]
    fn items_later_in_the_current_tick_stay_until_due() {
        let t0 = Instant::now();
        let mut wheel = TimerWheel::new(t0);
        wheel.insert(t0 + Duration::from_millis(3), 1);
        wheel.insert(t0 + Duration::from_millis(7), 2);
        assert_eq!(due_at(&mut wheel, t0 + Duration::from_millis(5)), vec![1]);
        assert_eq!(wheel.next_deadline(), Some(t0 + Duration::from_millis(7)));
        assert_eq!(due_at(&mut wheel, t0 + Duration::from_millis(7)), vec![2]);
    }

    #[test]
    fn an_item_scheduled_in_the_past_is_due_at_once() {
        let t0 = Instant::now();
        let mut wheel = TimerWheel::new(t0);
        assert!(due_at(&mut wheel, t0 + Duration::from_secs(10)).is_empty());
        wheel.insert(t0 + Duration::from_secs(1), "late");
        assert_eq!(
            due_at(&mut wheel, t0 + Duration::from_secs(10)),
            vec!["late"]
        );
    }

    #[test]
    fn items_beyond_one_lap_wait_for_their_lap() {
        let t0 = Instant::now();
        let mut wheel = TimerWheel::new(t0);
        let lap = TICK * SLOTS as u32;
        wheel.insert(t0 + lap + Duration::from_millis(50), "far");
        assert_eq!(
            wheel.next_deadline(),
            Some(t0 + lap + Duration::from_millis(50))
        );
        assert!(due_at(&mut wheel, t0 + Duration::from_millis(60)).is_empty());
        assert!(due_at(&mut wheel, t0 + lap).is_empty());
        assert_eq!(
            due_at(&mut wheel, t0 + lap + Duration::from_millis(50)),
            vec!["far"]
        );
    }

    #[test]
    fn a_long_idle_gap_hands_back_everything_due() {
        let t0 = Instant::now();
        let mut wheel = TimerWheel::new(t0);
        for secs in [1, 30, 90, 200] {
            wheel.insert(t0 + Duration::from_secs(secs), secs);
        }
        let mut due = due_at(&mut wheel, t0 + Duration::from_secs(100));
        due.sort();
        assert_eq!(due, vec![1, 30, 90]);
        assert_eq!(wheel.next_deadline(), Some(t0 + Duration::from_secs(200)));
    }

    #[test]
    fn next_deadline_tracks_the_earliest_item() {
        let t0 = Instant::now();
        let mut wheel = TimerWheel::new(t0);
        assert_eq!(wheel.next_deadline(), None);
        wheel.insert(t0 + Duration::from_secs(5), 'b');
        wheel.insert(t0 + Duration::from_secs(2), 'a');
        assert_eq!(wheel.next_deadline(), Some(t0 + Duration::from_secs(2)));
        due_at(&mut wheel, t0 + Duration::from_secs(3));
        assert_eq!(wheel.next_deadline(), Some(t0 + Duration::from_secs(5)));
    }
}
