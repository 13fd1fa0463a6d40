//! `rte_ring` of mbufs: the lock-free queue that carries software-steered packets from the worker
//! that polls a non-RSS port to the worker that owns the flow's shard.

use super::{Burst, DpdkError};
use std::ffi::CString;
use std::ptr::NonNull;

const RING_F_SC_DEQ: u32 = 0x0002;

/// A multi-producer, single-consumer ring of mbufs. The consumer is the owning worker.
pub struct Ring {
    ptr: NonNull<dpdk_sys::rte_ring>,
}

// SAFETY: rte_ring is lock-free and safe for concurrent producers; the single consumer is the
// owning worker by construction (documented contract of `dequeue`).
unsafe impl Send for Ring {}
// SAFETY: as above.
unsafe impl Sync for Ring {}

impl Ring {
    /// `size` is rounded up to a power of two by the caller's config validation.
    pub fn new(name: &str, size: u32, socket: i32) -> Result<Ring, DpdkError> {
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
            .map(|ptr| Ring { ptr })
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

    /// Dequeues into the burst's free room. Only the ring's owning worker may call this.
    #[inline(always)]
    pub fn dequeue(&self, burst: &mut Burst) -> usize {
        let (tail, room) = burst.raw_tail();
        // SAFETY: tail has `room` free slots; single consumer by contract.
        let n = unsafe { dpdk_sys::pc_ring_dequeue_burst(self.ptr.as_ptr(), tail, room as u32) }
            as usize;
        burst.grow(n);
        n
    }

    pub fn count(&self) -> u32 {
        // SAFETY: read-only query.
        unsafe { dpdk_sys::pc_ring_count(self.ptr.as_ptr()) }
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        let mut b = Burst::default();
        while self.dequeue(&mut b) > 0 {
            b.free_all();
        }
        // SAFETY: emptied; no producer or consumer remains (workers are joined first).
        unsafe { dpdk_sys::rte_ring_free(self.ptr.as_ptr()) };
    }
}
