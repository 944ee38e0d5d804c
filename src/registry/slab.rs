//! Storage for the registry's records: fixed-size chunks addressed by a `u32` index, with a list
//! of free places. An index stays valid until its record is removed, so the hash index and the
//! timer wheel hold 4-byte indices instead of copies of the hostname; and growing adds a chunk
//! instead of doubling (and copying) one large vector, so the spare room is at most one chunk.

/// Records per chunk: 96 KiB of 96-byte records.
const CHUNK: usize = 1024;

#[derive(Debug)]
pub struct Slab<T> {
    chunks: Vec<Vec<Option<T>>>,
    /// Vacant places below the end of the last chunk, taken last in, first out.
    free: Vec<u32>,
    len: usize,
}

impl<T> Slab<T> {
    pub fn new() -> Self {
        Slab {
            chunks: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Stores `value` and returns its index. `None` only past `u32::MAX` records, which the
    /// registry's limit keeps far away.
    pub fn insert(&mut self, value: T) -> Option<u32> {
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                if self.chunks.last().is_none_or(|chunk| chunk.len() == CHUNK) {
                    self.chunks.push(Vec::with_capacity(CHUNK));
                }
                let last = self.chunks.len() - 1;
                let index = u32::try_from(last * CHUNK + self.chunks[last].len()).ok()?;
                self.chunks[last].push(None);
                index
            }
        };
        *self.place_mut(index)? = Some(value);
        self.len += 1;
        Some(index)
    }

    pub fn get(&self, index: u32) -> Option<&T> {
        let (chunk, offset) = split(index);
        self.chunks.get(chunk)?.get(offset)?.as_ref()
    }

    pub fn get_mut(&mut self, index: u32) -> Option<&mut T> {
        self.place_mut(index)?.as_mut()
    }

    pub fn remove(&mut self, index: u32) -> Option<T> {
        let value = self.place_mut(index)?.take()?;
        self.free.push(index);
        self.len -= 1;
        Some(value)
    }

    /// Every stored value, in index order.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.chunks.iter().flatten().filter_map(Option::as_ref)
    }

    /// Every stored value, in index order.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.chunks.iter_mut().flatten().filter_map(Option::as_mut)
    }

    /// Gives back the chunks at the end that hold nothing, after a flood has gone: O(free).
    pub fn shrink(&mut self) {
        let before = self.chunks.len();
        while self
            .chunks
            .last()
            .is_some_and(|chunk| chunk.iter().all(Option::is_none))
        {
            self.chunks.pop();
        }
        if self.chunks.len() < before {
            // Only the last chunk is ever partly filled, and it was one of those freed.
            let end = self.chunks.len() * CHUNK;
            self.free.retain(|&index| (index as usize) < end);
        }
        self.free.shrink_to(self.free.len() * 2);
    }

    fn place_mut(&mut self, index: u32) -> Option<&mut Option<T>> {
        let (chunk, offset) = split(index);
        self.chunks.get_mut(chunk)?.get_mut(offset)
    }
}

fn split(index: u32) -> (usize, usize) {
    let index = index as usize;
    (index / CHUNK, index % CHUNK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_stay_valid_and_vacancies_are_reused() {
        let mut slab = Slab::new();
        let a = slab.insert("a").expect("room");
        let b = slab.insert("b").expect("room");
        assert_eq!(slab.remove(a), Some("a"));
        assert_eq!(slab.get(a), None);
        assert_eq!(slab.get(b), Some(&"b"));
        assert_eq!(slab.insert("c"), Some(a), "the vacancy is reused");
        assert_eq!(slab.len(), 2);
        assert_eq!(slab.iter().copied().collect::<Vec<_>>(), vec!["c", "b"]);
    }

    #[test]
    fn grows_by_chunks_and_gives_empty_ones_back() {
        let mut slab = Slab::new();
        let indices: Vec<u32> = (0..3 * CHUNK)
            .map(|i| slab.insert(i).expect("room"))
            .collect();
        assert_eq!(slab.chunks.len(), 3);
        for &index in &indices[CHUNK / 2..] {
            slab.remove(index);
        }
        slab.shrink();
        assert_eq!(slab.chunks.len(), 1, "the two empty chunks are freed");
        assert_eq!(slab.len(), CHUNK / 2);
        // Every vacancy left is inside the remaining chunk, and new records fill it first.
        for i in 0..CHUNK / 2 {
            let index = slab.insert(i).expect("room");
            assert!((index as usize) < CHUNK);
        }
        assert_eq!(slab.chunks.len(), 1);
        assert_eq!(slab.insert(0), Some(CHUNK as u32), "then a new chunk");
    }
}
