//! The registry's deadlines come due: the sweep that expires the peers whose deadline passed
//! (and forgets the gone ones remembered long enough), and the time given to every peer after
//! a stall. The wheel only says what might be due; each record's own deadline decides.

use std::hash::BuildHasher;
use std::time::Instant;

use super::{Registry, schedule};
use crate::registry::peer::{Gone, PeerEvent};

impl Registry {
    /// Gives every listed peer at least one of its ttls from `now`: the agent could not listen
    /// for a while (SIGSTOP, a stalled host), and silence it could not hear is no evidence that
    /// a peer died. A peer that is alive is heard again within that ttl; one that is not
    /// expires then, a fact by that time. O(entries), once per stall; wheel entries that come
    /// due early reschedule.
    pub fn give_time(&mut self, now: Instant) {
        let epoch = self.epoch;
        for record in self.records.iter_mut().filter(|r| r.is_live()) {
            record.give_time(now, &epoch);
        }
    }

    /// Drops every peer whose deadline is at or before `now`, one `Expired` event each.
    pub fn expire(&mut self, now: Instant) -> Vec<PeerEvent> {
        let mut events = Vec::new();
        let mut due = std::mem::take(&mut self.due);
        self.wheel.advance(now, &mut due);
        let epoch = self.epoch;
        let stamp = epoch.stamp(now);
        for (place, timer) in due.drain(..) {
            let Some(record) = self.records.get_mut(place) else {
                continue; // forgotten since
            };
            if record.timer() != timer {
                continue; // stale entry: the record was rescheduled or replaced since
            }
            if record.due() > stamp {
                // Renewed since the entry was set (or, gone, not yet to be forgotten).
                let at = epoch.instant(record.due());
                record.set_timer(schedule(&mut self.wheel, &mut self.next_timer, place, at));
            } else if record.is_live() {
                let peer = record.peer(&epoch);
                let gone = Gone::of(&peer, now, self.ttl);
                self.live -= 1;
                self.retire(place, &gone);
                events.push(PeerEvent::Expired { peer });
            } else {
                self.forget(place);
            }
        }
        self.due = due;
        // A flood leaves the index at its peak capacity; once it is mostly empty again, give the
        // memory back. Shrinking to twice the length keeps this from happening often.
        if self.index.capacity() > 256 && self.index.len() * 4 < self.index.capacity() {
            let (records, hasher) = (&self.records, &self.hasher);
            self.index.shrink_to(self.index.len() * 2, |&place| {
                records
                    .get(place)
                    .map_or(0, |record| hasher.hash_one(record.name()))
            });
            self.records.shrink();
        }
        events
    }

    /// Removes a gone hostname's record and its place in the index.
    pub(super) fn forget(&mut self, place: u32) {
        let Some(record) = self.records.remove(place) else {
            return;
        };
        let hash = self.hasher.hash_one(record.name());
        if let Ok(entry) = self.index.find_entry(hash, |&p| p == place) {
            entry.remove();
        }
    }
}
