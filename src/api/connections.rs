//! The API's open connections by age, and which one goes when a new one arrives at the cap.
//! Pure: no sockets and no clock; the serve loop (`server`) reads their state and closes them.

use std::collections::BTreeMap;

/// The open connections, oldest first, and the cap on them.
#[derive(Debug)]
pub struct Connections<T> {
    cap: usize,
    next_key: u64,
    /// Keys count up, so they sort by age.
    by_age: BTreeMap<u64, T>,
}

/// What must happen before a new connection is served.
#[derive(Debug, PartialEq, Eq)]
pub enum Room<T> {
    /// Under the cap: nothing.
    Free,
    /// At the cap: this connection, the oldest with no request in flight, is taken out to be
    /// closed. An idle or half-sent connection costs its client nothing to open again, and
    /// the oldest is the one closest to its own timeout anyway.
    Evict(T),
    /// At the cap, with a request in flight on every connection: the new one must be closed.
    Full,
}

impl<T> Connections<T> {
    pub fn new(cap: usize) -> Connections<T> {
        Connections {
            cap,
            next_key: 0,
            by_age: BTreeMap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.by_age.len()
    }

    /// Makes room for one more connection; `busy` says whether one has a request in flight.
    pub fn make_room(&mut self, busy: impl Fn(&T) -> bool) -> Room<T> {
        if self.by_age.len() < self.cap {
            return Room::Free;
        }
        let oldest_idle = self
            .by_age
            .iter()
            .find(|(_, conn)| !busy(conn))
            .map(|(key, _)| *key);
        match oldest_idle.and_then(|key| self.by_age.remove(&key)) {
            Some(conn) => Room::Evict(conn),
            None => Room::Full,
        }
    }

    /// Adds the newest connection, made from its key; returns the key.
    pub fn insert_with(&mut self, make: impl FnOnce(u64) -> T) -> u64 {
        let key = self.next_key;
        self.next_key += 1;
        self.by_age.insert(key, make(key));
        key
    }

    pub fn remove(&mut self, key: u64) -> Option<T> {
        self.by_age.remove(&key)
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.by_age.values()
    }

    pub fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        self.by_age.retain(|_, conn| keep(conn));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Connections as their busy flags, oldest first.
    fn connections(cap: usize, busy: &[bool]) -> Connections<(usize, bool)> {
        let mut open = Connections::new(cap);
        for (i, busy) in busy.iter().enumerate() {
            open.insert_with(|_| (i, *busy));
        }
        open
    }

    fn is_busy(conn: &(usize, bool)) -> bool {
        conn.1
    }

    #[test]
    fn under_the_cap_nothing_is_closed() {
        let mut open = connections(3, &[false, false]);
        assert_eq!(open.make_room(is_busy), Room::Free);
        assert_eq!(open.len(), 2);
    }

    #[test]
    fn at_the_cap_the_oldest_idle_connection_makes_room() {
        let mut open = connections(4, &[true, false, true, false]);
        assert_eq!(open.make_room(is_busy), Room::Evict((1, false)));
        assert_eq!(open.len(), 3);
        open.insert_with(|_| (4, false));
        assert_eq!(open.make_room(is_busy), Room::Evict((3, false)));
    }

    #[test]
    fn at_the_cap_with_every_connection_busy_the_new_one_is_refused() {
        let mut open = connections(2, &[true, true]);
        assert_eq!(open.make_room(is_busy), Room::Full);
        assert_eq!(open.len(), 2, "a refusal closes none of the open ones");
    }

    #[test]
    fn a_closed_connection_frees_its_place() {
        let mut open = connections(2, &[true, true]);
        let key = open.insert_with(|_| (2, true));
        assert_eq!(open.remove(key), Some((2, true)));
        open.retain(|conn| conn.0 != 0);
        assert_eq!(open.make_room(is_busy), Room::Free);
    }
}
