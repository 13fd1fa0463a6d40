//! Mempools, the mbuf view and fixed-size bursts of mbufs.
//!
//! Ownership rule: an mbuf pointer in a `Burst` is owned by that burst until it is handed to a
//! tx queue or a ring (which take it) or freed. `Burst` frees whatever it still holds on drop.

use super::{DpdkError, Eal};
use dpdk_sys::rte_mbuf;
use std::ffi::CString;
use std::marker::PhantomData;
use std::ptr::NonNull;

/// Packets per rx/tx burst. 32 is DPDK's customary size: big enough to amortise the PMD call,
/// small enough that a burst's headers stay in L1.
pub const BURST_SIZE: usize = 32;

/// A packet-buffer pool (`rte_pktmbuf_pool_create`). It cannot outlive the EAL (`'e`).
pub struct Mempool<'e> {
    ptr: NonNull<dpdk_sys::rte_mempool>,
    _eal: PhantomData<&'e Eal>,
}

// SAFETY: rte_mempool is designed for concurrent use from many lcores (lock-free ring + per-lcore caches).
unsafe impl Send for Mempool<'_> {}
// SAFETY: as above; &Mempool only hands out the raw pointer to DPDK calls that are thread-safe.
unsafe impl Sync for Mempool<'_> {}

impl<'e> Mempool<'e> {
    /// Creates a pool of `n` mbufs with `data_room` bytes each (headroom included), a per-lcore
    /// cache of `cache` mbufs, on NUMA `socket` (-1: any).
    pub fn new(
        _eal: &'e Eal,
        name: &str,
        n: u32,
        cache: u32,
        data_room: u16,
        socket: i32,
    ) -> Result<Self, DpdkError> {
        let cname = CString::new(name).map_err(|_| DpdkError::new("mempool name has a NUL", 22))?;
        // SAFETY: cname is a valid C string for the duration of the call; EAL is up (caller's
        // responsibility: a Mempool is only created after Eal::init).
        let ptr = unsafe {
            dpdk_sys::rte_pktmbuf_pool_create(cname.as_ptr(), n, cache, 0, data_room, socket)
        };
        NonNull::new(ptr)
            .map(|ptr| Mempool {
                ptr,
                _eal: PhantomData,
            })
            .ok_or_else(|| DpdkError::last(format!("rte_pktmbuf_pool_create({name}, n={n})")))
    }

    pub(crate) fn as_ptr(&self) -> *mut dpdk_sys::rte_mempool {
        self.ptr.as_ptr()
    }

    /// Allocates one mbuf and copies `data` into it (used by tests, generators and RST replies,
    /// never per forwarded packet).
    pub fn alloc_from(&self, data: &[u8]) -> Option<Mbuf> {
        let len = u16::try_from(data.len()).ok()?;
        // SAFETY: the pool pointer is valid for self's lifetime.
        let m = NonNull::new(unsafe { dpdk_sys::pc_pktmbuf_alloc(self.ptr.as_ptr()) })?;
        let mut dst: *mut u8 = std::ptr::null_mut();
        // SAFETY: m is a freshly allocated mbuf we own; append reserves len bytes in its tailroom.
        if unsafe { dpdk_sys::pc_pktmbuf_append(m.as_ptr(), len, &mut dst) } != 0 {
            // SAFETY: m is ours and not referenced elsewhere.
            unsafe { dpdk_sys::pc_pktmbuf_free(m.as_ptr()) };
            return None;
        }
        // SAFETY: dst points at len writable bytes inside m's data room, disjoint from `data`.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), dst, data.len()) };
        Some(Mbuf { ptr: m })
    }

    /// Mbufs currently available in the pool (ring + caches).
    pub fn available(&self) -> u32 {
        // SAFETY: read-only query on a valid pool.
        unsafe { dpdk_sys::rte_mempool_avail_count(self.ptr.as_ptr()) }
    }
}

impl Drop for Mempool<'_> {
    fn drop(&mut self) {
        // Mbufs still out (in a PMD's rings or a leaked burst) would point into freed memory:
        // leak the pool instead; the process is ending anyway when pools are dropped.
        // SAFETY: read-only query on a valid pool.
        if unsafe { dpdk_sys::rte_mempool_in_use_count(self.ptr.as_ptr()) } > 0 {
            return;
        }
        // SAFETY: ports using the pool are stopped before the pool is dropped (owner's ordering).
        unsafe { dpdk_sys::rte_mempool_free(self.ptr.as_ptr()) };
    }
}

/// A view of one received, single-segment mbuf (rx scatter is never enabled, so every frame
/// that fits the data room is one segment).
#[repr(transparent)]
pub struct Mbuf {
    ptr: NonNull<rte_mbuf>,
}

// SAFETY: an Mbuf is uniquely owned; moving it between threads moves the ownership with it.
unsafe impl Send for Mbuf {}

impl Mbuf {
    #[inline(always)]
    fn raw(&self) -> &rte_mbuf {
        // SAFETY: ptr is a valid mbuf owned by self (constructed only from rx bursts or alloc).
        unsafe { self.ptr.as_ref() }
    }

    /// The frame bytes.
    #[inline(always)]
    pub fn data(&self) -> &[u8] {
        let m = self.raw();
        // SAFETY: buf_addr + data_off .. + data_len lies inside the mbuf's buffer by DPDK's
        // invariants, and self owns the mbuf so nothing else writes it while borrowed.
        unsafe {
            std::slice::from_raw_parts(
                (m.buf_addr as *const u8).add(m.data_off as usize),
                m.data_len as usize,
            )
        }
    }

    /// The frame bytes, writable (for rewriting headers in place).
    #[inline(always)]
    pub fn data_mut(&mut self) -> &mut [u8] {
        let m = self.raw();
        let (base, off, len) = (
            m.buf_addr as *mut u8,
            m.data_off as usize,
            m.data_len as usize,
        );
        // SAFETY: as in `data`, and &mut self guarantees exclusive access.
        unsafe { std::slice::from_raw_parts_mut(base.add(off), len) }
    }

    /// Whether the frame spans several segments (a PMD that chains frames larger than the data
    /// room, as net_pcap does); `data()` shows only the first.
    #[inline(always)]
    pub fn is_segmented(&self) -> bool {
        self.raw().nb_segs > 1
    }

    /// The whole frame's length over all its segments.
    #[inline(always)]
    pub fn frame_len(&self) -> u32 {
        self.raw().pkt_len
    }

    /// The port the frame arrived on.
    #[inline(always)]
    pub fn port(&self) -> u16 {
        self.raw().port
    }

    /// The NIC's RSS hash, if the PMD computed one for this frame.
    #[inline(always)]
    pub fn rss_hash(&self) -> Option<u32> {
        let m = self.raw();
        if m.ol_flags & RX_RSS_HASH != 0 {
            // SAFETY: the RSS flag says the `hash.rss` member of the union is the valid one.
            Some(unsafe { m.__bindgen_anon_2.hash.rss })
        } else {
            None
        }
    }

    /// Prefetches the first cache line of the frame data, for the next packets of a burst.
    #[inline(always)]
    pub fn prefetch_data(&self) {
        let m = self.raw();
        #[cfg(target_arch = "x86_64")]
        // SAFETY: prefetch is a hint; it never faults, even on an invalid address.
        unsafe {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            _mm_prefetch::<_MM_HINT_T0>((m.buf_addr as *const i8).add(m.data_off as usize));
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = m;
    }

    pub(crate) fn into_raw(self) -> *mut rte_mbuf {
        let p = self.ptr.as_ptr();
        std::mem::forget(self);
        p
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: self owns the mbuf; it is returned to its pool exactly once.
        unsafe { dpdk_sys::pc_pktmbuf_free(self.ptr.as_ptr()) };
    }
}

/// `RTE_MBUF_F_RX_RSS_HASH` is a function-like macro (RTE_BIT64) that bindgen cannot evaluate.
const RX_RSS_HASH: u64 = 1 << 1;

/// A fixed array of up to `BURST_SIZE` owned mbufs. No allocation, ever.
pub struct Burst {
    mbufs: [*mut rte_mbuf; BURST_SIZE],
    len: usize,
}

// SAFETY: the mbufs in a burst are uniquely owned by it.
unsafe impl Send for Burst {}

impl Default for Burst {
    fn default() -> Self {
        Burst {
            mbufs: [std::ptr::null_mut(); BURST_SIZE],
            len: 0,
        }
    }
}

impl Burst {
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline(always)]
    pub fn is_full(&self) -> bool {
        self.len == BURST_SIZE
    }

    /// The owned mbufs, as views.
    #[inline(always)]
    pub fn mbufs(&self) -> &[Mbuf] {
        // SAFETY: Mbuf is repr(transparent) over a non-null pointer; the first `len` entries are
        // valid owned mbufs.
        unsafe { std::slice::from_raw_parts(self.mbufs.as_ptr() as *const Mbuf, self.len) }
    }

    /// Mutable views of the owned mbufs.
    #[inline(always)]
    pub fn mbufs_mut(&mut self) -> &mut [Mbuf] {
        // SAFETY: as in `mbufs`, with &mut self for exclusivity.
        unsafe { std::slice::from_raw_parts_mut(self.mbufs.as_mut_ptr() as *mut Mbuf, self.len) }
    }

    /// Adds an owned mbuf; the caller checks `is_full` first.
    #[inline(always)]
    pub fn push(&mut self, m: Mbuf) {
        debug_assert!(self.len < BURST_SIZE);
        self.mbufs[self.len] = m.into_raw();
        self.len += 1;
    }

    /// Takes the mbuf at `i` out (swap-remove is not used: order within a flow must hold).
    /// Returns the raw array for FFI fill; `set_len` after.
    #[inline(always)]
    pub(crate) fn raw_tail(&mut self) -> (*mut *mut rte_mbuf, usize) {
        // SAFETY: len <= BURST_SIZE, so the pointer stays within (or one past) the array.
        (
            unsafe { self.mbufs.as_mut_ptr().add(self.len) },
            BURST_SIZE - self.len,
        )
    }

    #[inline(always)]
    pub(crate) fn raw_all(&mut self) -> *mut *mut rte_mbuf {
        self.mbufs.as_mut_ptr()
    }

    /// After an FFI call filled `added` entries at the tail.
    #[inline(always)]
    pub(crate) fn grow(&mut self, added: usize) {
        self.len += added;
        debug_assert!(self.len <= BURST_SIZE);
    }

    /// After an FFI call consumed the first `taken` entries: shifts the rest to the front.
    #[inline(always)]
    pub(crate) fn consume_front(&mut self, taken: usize) {
        if taken >= self.len {
            self.len = 0;
            return;
        }
        self.mbufs.copy_within(taken..self.len, 0);
        self.len -= taken;
    }

    /// Moves every mbuf out, in order, to `f`; the burst is empty afterwards.
    #[inline(always)]
    pub fn drain(&mut self, mut f: impl FnMut(Mbuf)) {
        let n = self.len;
        self.len = 0;
        for &p in &self.mbufs[..n] {
            // SAFETY: entries below the old len are valid owned mbufs; len is already 0, so each
            // is moved out exactly once.
            f(Mbuf {
                ptr: unsafe { NonNull::new_unchecked(p) },
            });
        }
    }

    /// Frees every mbuf still held; returns how many.
    pub fn free_all(&mut self) -> usize {
        let n = self.len;
        self.drain(drop);
        n
    }
}

impl Drop for Burst {
    fn drop(&mut self) {
        self.free_all();
    }
}
