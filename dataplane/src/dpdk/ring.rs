//! `rte_ring` of mbufs: the lock-free queue that carries software-steered packets from the worker
//! that polls a non-RSS port to the worker that owns the flow's shard.

use super::{Burst, DpdkError, Eal};
use std::cell::Cell;
use std::ffi::CString;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};

const RING_F_SC_DEQ: u32 = 0x0002;

/// A multi-producer, single-consumer ring of mbufs. Any thread may enqueue (`&Ring`); the one
/// consumer holds the unique `RingConsumer`.
pub struct Ring<'e> {
    ptr: NonNull<dpdk_sys::rte_ring>,
    consumer_taken: AtomicBool,
    _eal: PhantomData<&'e Eal>,
}

/// The single consumer of a `Ring`: unique (taken once), `Send`, not `Sync`.
pub struct RingConsumer<'r> {
    ptr: NonNull<dpdk_sys::rte_ring>,
    _ring: PhantomData<&'r ()>,
    _not_sync: PhantomData<Cell<()>>,
}

// SAFETY: the consumer handle is the only dequeuer; moving it to the owning worker's thread is
// what it is for.
unsafe impl Send for RingConsumer<'_> {}

impl RingConsumer<'_> {
    /// Dequeues into the burst's free room.
    #[inline(always)]
    pub fn dequeue(&mut self, burst: &mut Burst) -> usize {
        dequeue_raw(self.ptr, burst)
    }
}

#[inline(always)]
fn dequeue_raw(ptr: NonNull<dpdk_sys::rte_ring>, burst: &mut Burst) -> usize {
    let (tail, room) = burst.raw_tail();
    // SAFETY: tail has `room` free slots; the caller is the ring's single consumer (the unique
    // RingConsumer, or Drop with no other user left).
    let n = unsafe { dpdk_sys::pc_ring_dequeue_burst(ptr.as_ptr(), tail, room as u32) } as usize;
    burst.grow(n);
    n
}

// SAFETY: rte_ring is lock-free and safe for concurrent producers; the single consumer is the
// owning worker by construction (documented contract of `dequeue`).
unsafe impl Send for Ring<'_> {}
// SAFETY: as above.
unsafe impl Sync for Ring<'_> {}

impl<'e> Ring<'e> {
    /// `size` is rounded up to a power of two by the caller's config validation.
    pub fn new(_eal: &'e Eal, name: &str, size: u32, socket: i32) -> Result<Ring<'e>, DpdkError> {
        let cname = CString::new(name).map_err(|_| DpdkError::new("ring name has a NUL", 22))?;
        // SAFETY: valid C string; EAL up.
        let p = unsafe {
            dpdk_sys::rte_ring_create(
                cname.as_ptr(),
                size.next_power_of_two(),
                socket,
                RING_F_SC_DEQ,
            )
        };
        NonNull::new(p)
            .map(|ptr| Ring {
                ptr,
                consumer_taken: AtomicBool::new(false),
                _eal: PhantomData,
            })
            .ok_or_else(|| DpdkError::last(format!("rte_ring_create({name}, {size})")))
    }

    /// Moves as many mbufs as fit from the front of `burst` into the ring; those that did not fit
    /// stay in the burst. Returns the number enqueued.
    #[inline(always)]
    pub fn enqueue(&self, burst: &mut Burst) -> usize {
        let len = burst.len();
        if len == 0 {
            return 0;
        }
        // SAFETY: first len entries are owned mbufs; the ring takes ownership of the first n.
        let n = unsafe {
            dpdk_sys::pc_ring_enqueue_burst(self.ptr.as_ptr(), burst.raw_all(), len as u32)
        } as usize;
        burst.consume_front(n);
        n
    }

    /// The ring's consumer handle, once; `None` if it was taken before.
    pub fn take_consumer(&self) -> Option<RingConsumer<'_>> {
        if self.consumer_taken.swap(true, Ordering::SeqCst) {
            return None;
        }
        Some(RingConsumer {
            ptr: self.ptr,
            _ring: PhantomData,
            _not_sync: PhantomData,
        })
    }

    pub fn count(&self) -> u32 {
        // SAFETY: read-only query.
        unsafe { dpdk_sys::pc_ring_count(self.ptr.as_ptr()) }
    }
}

impl Drop for Ring<'_> {
    fn drop(&mut self) {
        let mut b = Burst::default();
        // &mut self: no consumer handle (it borrows the ring) and no producer remain.
        while dequeue_raw(self.ptr, &mut b) > 0 {
            b.free_all();
        }
        // SAFETY: emptied; no producer or consumer remains (workers are joined first).
        unsafe { dpdk_sys::rte_ring_free(self.ptr.as_ptr()) };
    }
}
