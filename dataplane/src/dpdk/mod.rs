//! The safe DPDK layer: EAL, mempools, ports, mbuf views, bursts and rings.
//!
//! This module and `dpdk-sys` are the only places with `unsafe`. Everything above it sees owned
//! handles and byte slices. It must never allocate on the burst path: bursts live in fixed arrays.

mod eal;
mod mbuf;
mod port;
mod ring;

pub use eal::{rdtsc, tsc_hz, Eal};
pub use mbuf::{Burst, Mbuf, Mempool, BURST_SIZE};
pub use port::{LinkStatus, Port, PortInfo, PortSetup, PortStats, RxQueue, TxQueue};
pub use ring::{Ring, RingConsumer};

use std::ffi::CStr;
use std::fmt;

/// An error from a DPDK call: which call, on what, and DPDK's own errno text.
#[derive(Debug, Clone)]
pub struct DpdkError {
    pub what: String,
    pub errno: i32,
}

impl DpdkError {
    pub(crate) fn new(what: impl Into<String>, errno: i32) -> Self {
        DpdkError {
            what: what.into(),
            errno: errno.abs(),
        }
    }

    /// Takes `rte_errno` as the cause; for calls that return NULL or -1.
    pub(crate) fn last(what: impl Into<String>) -> Self {
        // SAFETY: pc_errno reads the calling thread's per-lcore rte_errno; no preconditions.
        let errno = unsafe { dpdk_sys::pc_errno() };
        Self::new(what, errno)
    }
}

impl fmt::Display for DpdkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // SAFETY: rte_strerror returns a pointer to a static or thread-local NUL-terminated string.
        let msg = unsafe { CStr::from_ptr(dpdk_sys::rte_strerror(self.errno)) };
        write!(
            f,
            "{}: {} (errno {})",
            self.what,
            msg.to_string_lossy(),
            self.errno
        )
    }
}

impl std::error::Error for DpdkError {}

/// Hints the CPU to fetch the cache line holding `r` (for bulk lookups: prefetch every entry a
/// burst will touch, then touch them). A hint only: it never faults and changes no value.
#[inline(always)]
pub fn prefetch<T>(r: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetch never dereferences architecturally; `r` is a valid reference anyway.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(r as *const T as *const i8);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = r;
}

/// Asks the kernel to back `slice` with transparent huge pages (2 MiB), for large tables read
/// at random: one TLB entry then covers 512 times more memory. A hint: harmless where THP is
/// off or the region is small. (With hugepages reserved for DPDK, tables could come from the
/// EAL's memory instead; this works with `--no-huge` too.)
pub fn advise_huge_pages<T>(slice: &mut [T]) {
    let len = std::mem::size_of_val(slice);
    if len < (4 << 20) {
        return;
    }
    let start = slice.as_mut_ptr() as usize;
    // madvise needs a page-aligned start: round in to the first 2 MiB boundary.
    let aligned = (start + (2 << 20) - 1) & !((2 << 20) - 1);
    let end = (start + len) & !((2 << 20) - 1);
    if end <= aligned {
        return;
    }
    // SAFETY: the range lies within `slice`, which we borrow mutably; MADV_HUGEPAGE changes how
    // the kernel backs the pages, never their contents.
    unsafe {
        libc::madvise(
            aligned as *mut libc::c_void,
            end - aligned,
            libc::MADV_HUGEPAGE,
        );
    }
}

/// The version string of the DPDK library linked at run time, e.g. "DPDK 22.11.11".
pub fn version() -> String {
    // SAFETY: rte_version returns a pointer to a static NUL-terminated string; callable before EAL init.
    unsafe { CStr::from_ptr(dpdk_sys::rte_version()) }
        .to_string_lossy()
        .into_owned()
}
