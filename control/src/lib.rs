//! The Portcullis appliance around the `dataplane` engine: configuration, the DPDK runtime, the
//! offline capture reader, the control socket and the counters' reports. The binaries
//! `portcullisd` and `portcullisctl` are thin front ends over this library.

pub mod config;
pub mod ctl;
pub mod decisions;
pub mod eventfile;
pub mod events;
pub mod ha;
pub mod offline;
pub mod report;
pub mod runtime;
pub mod safefile;
