//! EAL initialisation and cleanup. The EAL is process-global: at most one `Eal` exists at a time.

use super::DpdkError;
use std::ffi::{c_char, CString};
use std::sync::atomic::{AtomicBool, Ordering};

static EAL_UP: AtomicBool = AtomicBool::new(false);

/// A running EAL. Dropping it calls `rte_eal_cleanup`; drop every port and mempool first.
pub struct Eal {
    _private: (),
}

impl Eal {
    /// Initialises the EAL with `args` (program name first, as in argv).
    pub fn init(args: &[String]) -> Result<Eal, DpdkError> {
        if EAL_UP.swap(true, Ordering::SeqCst) {
            return Err(DpdkError::new(
                "rte_eal_init: the EAL is already initialised",
                114,
            ));
        }
        let cstrings: Vec<CString> = args
            .iter()
            .map(|a| CString::new(a.as_str()))
            .collect::<Result<_, _>>()
            .map_err(|_| DpdkError::new("rte_eal_init: an argument contains a NUL byte", 22))?;
        // EAL keeps pointers into argv (it permutes it with getopt), so the array and strings must
        // outlive the EAL: leak them deliberately, once per process.
        let argv: Vec<*mut c_char> = cstrings.into_iter().map(CString::into_raw).collect();
        let argv: &'static mut [*mut c_char] = Vec::leak(argv);
        // SAFETY: argv holds argv.len() valid NUL-terminated strings that are never freed.
        let rc = unsafe { dpdk_sys::rte_eal_init(argv.len() as i32, argv.as_mut_ptr()) };
        if rc < 0 {
            EAL_UP.store(false, Ordering::SeqCst);
            return Err(DpdkError::last(format!(
                "rte_eal_init({})",
                args.get(1..).unwrap_or_default().join(" ")
            )));
        }
        Ok(Eal { _private: () })
    }

    /// Registers the calling non-EAL thread with the EAL so that it gets an lcore id and therefore
    /// per-lcore mempool caches (without one every mbuf alloc/free hits the shared ring).
    pub fn register_thread(&self) -> Result<(), DpdkError> {
        // SAFETY: the EAL is initialised (self exists); registration is per calling thread.
        let rc = unsafe { dpdk_sys::rte_thread_register() };
        if rc < 0 {
            return Err(DpdkError::last("rte_thread_register"));
        }
        Ok(())
    }

    /// Releases the calling thread's lcore id; call before a registered thread exits.
    pub fn unregister_thread(&self) {
        // SAFETY: undoes register_thread for the calling thread; a no-op for unregistered threads.
        unsafe { dpdk_sys::rte_thread_unregister() };
    }
}

impl Drop for Eal {
    fn drop(&mut self) {
        // SAFETY: all DPDK objects owned by safe handles must be gone (documented on `Eal`).
        unsafe { dpdk_sys::rte_eal_cleanup() };
        EAL_UP.store(false, Ordering::SeqCst);
    }
}

/// Reads the TSC: a cheap monotonic cycle counter for per-burst timers, never a clock call.
#[inline(always)]
pub fn rdtsc() -> u64 {
    // SAFETY: reads the CPU's time-stamp counter; no memory is touched.
    unsafe { dpdk_sys::pc_rdtsc() }
}

/// TSC frequency in Hz as measured by the EAL (0 before init).
pub fn tsc_hz() -> u64 {
    // SAFETY: reads a value the EAL calibrated at init; no preconditions.
    unsafe { dpdk_sys::pc_tsc_hz() }
}
