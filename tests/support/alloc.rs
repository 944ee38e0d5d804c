//! An allocator that counts the bytes each thread holds, for tests that bound memory: the
//! library's tests run their instances on a thread and runtime of their own, so what that
//! thread holds is what the instances hold, whatever other tests allocate meanwhile.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    /// Bytes allocated minus bytes freed on this thread (memory freed by another thread than
    /// the one that allocated it counts there: the library's tests keep to one thread).
    static HELD: Cell<isize> = const { Cell::new(0) };
}

pub struct Counting;

fn count(bytes: usize, sign: isize) {
    // After the thread's locals are gone (its exit), nothing is counted.
    let _ = HELD.try_with(|held| held.set(held.get() + sign * bytes as isize));
}

// SAFETY: every call is passed on to the system allocator unchanged; counting only reads the
// layout's size and touches a thread-local cell that never allocates (const-initialised).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size(), 1);
        // SAFETY: as the caller promised for `layout`.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(layout.size(), -1);
        // SAFETY: as the caller promised: `ptr` came from this allocator with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size(), 1);
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(layout.size(), -1);
        count(new_size, 1);
        // SAFETY: as the caller promised for `ptr`, `layout` and `new_size`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// The bytes the calling thread holds, as counted since it started.
pub fn held_by_this_thread() -> isize {
    HELD.with(Cell::get)
}
