//! Portcullis's per-packet library: wire parsing, flow keys and symmetric hashing, the I/O-agnostic
//! engine, the DPDK poll loop and the safe DPDK layer beneath it. It has no I/O policy of its own:
//! the `control` crate decides what runs where.

pub mod conntrack;
pub mod dpdk;
pub mod engine;
pub mod events;
pub mod flow;
pub mod inspect;
pub mod parse;
pub mod policy;
pub mod reject;
pub mod rss;
pub mod stats;
pub mod verify;
pub mod wire;
pub mod worker;
