//! The per-packet engine: frame bytes in, verdict out. It owns one worker's flow table and writes
//! only that worker's counters. It does no I/O and knows nothing of DPDK, so the DPDK poll loop,
//! the offline capture reader and tests drive the very same code.
//!
//! It must never allocate, lock, or read a clock: time arrives as an argument.

use crate::flow::FlowKey;
use crate::flow_table::{FlowTable, Recorded};
use crate::parse::{parse_frame, Fragment, L3};
use crate::rss::{Toeplitz, SYMMETRIC_RSS_KEY};
use crate::stats::{DropReason, WorkerStats};
use std::sync::Arc;

/// What to do with a class of frames the policy has an opinion on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Forward,
    Drop,
}

/// Engine settings (the `[engine]` table of the config).
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Frames that fail to parse. A firewall drops what it cannot read.
    pub malformed: Action,
    /// Non-IP frames. ARP must cross a bump in the wire or nothing works, hence forward.
    pub non_ip: Action,
    /// IP fragments (recognised; reassembly is not done here).
    pub fragments: Action,
    /// Flows per worker table, preallocated.
    pub flow_capacity: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            malformed: Action::Drop,
            non_ip: Action::Forward,
            fragments: Action::Forward,
            flow_capacity: 65_536,
        }
    }
}

/// The engine's decision for one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Forward,
    Drop(DropReason),
}

/// One worker's engine.
pub struct Engine {
    config: EngineConfig,
    flows: FlowTable,
    toeplitz: Toeplitz,
    stats: Arc<WorkerStats>,
}

impl Engine {
    pub fn new(config: EngineConfig, stats: Arc<WorkerStats>) -> Engine {
        Engine {
            flows: FlowTable::with_capacity(config.flow_capacity),
            toeplitz: Toeplitz::new(&SYMMETRIC_RSS_KEY),
            config,
            stats,
        }
    }

    pub fn stats(&self) -> &Arc<WorkerStats> {
        &self.stats
    }

    pub fn flows(&self) -> &FlowTable {
        &self.flows
    }

    /// The symmetric flow hash of a frame, as a NIC with our RSS key computes it; `None` for
    /// frames that do not parse or are not IP. Used for software steering.
    #[inline]
    pub fn flow_hash(&self, frame: &[u8]) -> Option<u32> {
        match parse_frame(frame) {
            Ok(p) if p.l3 != L3::Other => Some(self.toeplitz.hash_l3l4(&p)),
            _ => None,
        }
    }

    /// Processes one frame that arrived on port index `port`. `hash` is the NIC's RSS hash when it
    /// has one (computed with the same symmetric key), else the engine computes it.
    #[inline]
    pub fn process(&mut self, frame: &[u8], port: usize, hash: Option<u32>) -> Verdict {
        let len = frame.len() as u64;
        self.stats.rx_packets[port].inc();
        self.stats.rx_bytes[port].add(len);

        let p = match parse_frame(frame) {
            Ok(p) => p,
            Err(e) => {
                self.stats.parse_errors[e.index()].inc();
                return match self.config.malformed {
                    Action::Forward => Verdict::Forward,
                    Action::Drop => self.drop(DropReason::Malformed),
                };
            }
        };
        if p.l3 == L3::Other {
            self.stats.non_ip.inc();
            return match self.config.non_ip {
                Action::Forward => Verdict::Forward,
                Action::Drop => self.drop(DropReason::NonIp),
            };
        }
        if p.fragment != Fragment::None {
            self.stats.fragments.inc();
            if self.config.fragments == Action::Drop {
                return self.drop(DropReason::Fragment);
            }
        }
        let Some(key) = FlowKey::from_parsed(&p) else {
            return Verdict::Forward;
        };
        let hash = hash.unwrap_or_else(|| self.toeplitz.hash_l3l4(&p));
        match self.flows.record(&key, hash, key.is_lo_to_hi(&p), len) {
            Recorded::Existing => {}
            Recorded::Created => {
                self.stats.flows_created.inc();
                self.stats.flows_active.set(self.flows.len() as u64);
            }
            Recorded::TableFull => self.stats.flow_table_full.inc(),
        }
        Verdict::Forward
    }

    #[inline(always)]
    fn drop(&self, reason: DropReason) -> Verdict {
        self.stats.drop_packet(reason);
        Verdict::Drop(reason)
    }
}
