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
    /// Forward every frame between paired ports without parsing or tracking it (counted as rx
    /// and tx only): the fail-open switch an operator flips to tell whether inspection is the
    /// problem, and the baseline of the I/O path in benchmarks.
    pub bypass: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            malformed: Action::Drop,
            non_ip: Action::Forward,
            fragments: Action::Forward,
            flow_capacity: 65_536,
            bypass: false,
        }
    }
}

/// The largest burst `process_burst` takes.
pub const MAX_BURST: usize = 32;

/// A frame classified by stage 1 of a burst.
enum Classified {
    Done(Verdict),
    Flow(FlowKey, bool),
}

/// A frame waiting for the flow stage.
#[derive(Clone, Copy, Default)]
struct Pending {
    active: bool,
    lo_to_hi: bool,
    hash: u64,
    key: FlowKey,
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

    /// Whether the engine forwards everything untouched (`mode = "bypass"`).
    #[inline(always)]
    pub fn bypass(&self) -> bool {
        self.config.bypass
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

    /// Processes one frame that arrived on port index `port`.
    #[inline]
    pub fn process(&mut self, frame: &[u8], port: usize) -> Verdict {
        self.stats.rx_packets[port].inc();
        self.stats.rx_bytes[port].add(frame.len() as u64);
        if self.config.bypass {
            return Verdict::Forward;
        }
        match self.classify(frame) {
            Classified::Done(v) => v,
            Classified::Flow(key, lo_to_hi) => {
                self.account(&key, self.flows.hash(&key), lo_to_hi, frame.len())
            }
        }
    }

    /// Processes a burst stage by stage, as VPP does: classify every frame and hash its flow key,
    /// prefetch every flow slot, then update the flows. The slot loads of one burst overlap
    /// instead of stalling one after another. `frames`, `ports` and `verdicts` have equal lengths
    /// of at most `MAX_BURST`.
    #[inline]
    pub fn process_burst(&mut self, frames: &[&[u8]], ports: &[usize], verdicts: &mut [Verdict]) {
        let n = frames.len().min(MAX_BURST);
        self.count_rx(&frames[..n], &ports[..n]);
        if self.config.bypass {
            verdicts[..n].fill(Verdict::Forward);
            return;
        }
        let mut pending = [Pending::default(); MAX_BURST];
        for i in 0..n {
            match self.classify(frames[i]) {
                Classified::Done(v) => verdicts[i] = v,
                Classified::Flow(key, lo_to_hi) => {
                    let hash = self.flows.hash(&key);
                    self.flows.prefetch(hash);
                    pending[i] = Pending {
                        active: true,
                        lo_to_hi,
                        hash,
                        key,
                    };
                }
            }
        }
        for i in 0..n {
            let p = &pending[i];
            if p.active {
                verdicts[i] = self.account(&p.key, p.hash, p.lo_to_hi, frames[i].len());
            }
        }
    }

    /// Counts received frames per run of equal ports: one counter update per run instead of a
    /// load and store per frame on the same two words.
    #[inline(always)]
    fn count_rx(&self, frames: &[&[u8]], ports: &[usize]) {
        let Some(&first) = ports.first() else { return };
        let (mut port, mut packets, mut bytes) = (first, 0u64, 0u64);
        for (f, &p) in frames.iter().zip(ports) {
            if p != port {
                self.stats.rx_packets[port].add(packets);
                self.stats.rx_bytes[port].add(bytes);
                (port, packets, bytes) = (p, 0, 0);
            }
            packets += 1;
            bytes += f.len() as u64;
        }
        self.stats.rx_packets[port].add(packets);
        self.stats.rx_bytes[port].add(bytes);
    }

    /// Parses the frame and applies the per-class policy; a frame that belongs to a
    /// flow comes back with its key for the flow stage.
    #[inline(always)]
    fn classify(&mut self, frame: &[u8]) -> Classified {
        let p = match parse_frame(frame) {
            Ok(p) => p,
            Err(e) => {
                self.stats.parse_errors[e.index()].inc();
                return Classified::Done(match self.config.malformed {
                    Action::Forward => Verdict::Forward,
                    Action::Drop => self.drop(DropReason::Malformed),
                });
            }
        };
        if p.l3 == L3::Other {
            self.stats.non_ip.inc();
            return Classified::Done(match self.config.non_ip {
                Action::Forward => Verdict::Forward,
                Action::Drop => self.drop(DropReason::NonIp),
            });
        }
        if p.fragment != Fragment::None {
            self.stats.fragments.inc();
            if self.config.fragments == Action::Drop {
                return Classified::Done(self.drop(DropReason::Fragment));
            }
        }
        match FlowKey::from_parsed_directed(&p) {
            Some((key, lo_to_hi)) => Classified::Flow(key, lo_to_hi),
            None => Classified::Done(Verdict::Forward),
        }
    }

    /// The flow stage: record the frame in its flow.
    #[inline(always)]
    fn account(&mut self, key: &FlowKey, hash: u64, lo_to_hi: bool, len: usize) -> Verdict {
        match self.flows.record_hashed(key, hash, lo_to_hi, len as u64) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::ParseError;

    /// Ethernet + IPv4 + TCP (20-byte headers, no payload) from `a:ap` to `b:bp`, real checksums
    /// not needed: the engine does not verify them (NIC offloads may leave them unfilled).
    fn tcp_frame(a: [u8; 4], ap: u16, b: [u8; 4], bp: u16, flags: u8) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
        f.extend_from_slice(&[0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0]);
        f.extend_from_slice(&a);
        f.extend_from_slice(&b);
        f.extend_from_slice(&ap.to_be_bytes());
        f.extend_from_slice(&bp.to_be_bytes());
        f.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        f
    }

    /// A real ARP request (who-has 10.99.0.2 tell 10.99.0.1), from the bundled lab capture.
    const ARP: [u8; 42] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x0a, 0x63, 0x00, 0x01, 0x08, 0x06, 0x00,
        0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x02, 0x00, 0x0a, 0x63, 0x00, 0x01, 0x0a, 0x63,
        0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x63, 0x00, 0x02,
    ];

    fn engine(cfg: EngineConfig) -> Engine {
        Engine::new(cfg, Arc::new(WorkerStats::default()))
    }

    #[test]
    fn both_directions_make_one_flow() {
        let mut e = engine(EngineConfig::default());
        let syn = tcp_frame([10, 0, 0, 1], 40000, [192, 0, 2, 1], 443, 0x02);
        let synack = tcp_frame([192, 0, 2, 1], 443, [10, 0, 0, 1], 40000, 0x12);
        assert_eq!(e.process(&syn, 0), Verdict::Forward);
        assert_eq!(e.process(&synack, 1), Verdict::Forward);
        assert_eq!(e.stats().flows_created.get(), 1);
        assert_eq!(e.stats().rx_packets[0].get(), 1);
        assert_eq!(e.stats().rx_packets[1].get(), 1);
    }

    #[test]
    fn malformed_frames_are_dropped_and_named() {
        let mut e = engine(EngineConfig::default());
        let mut f = tcp_frame([10, 0, 0, 1], 1, [10, 0, 0, 2], 2, 0x10);
        f.truncate(30); // cut inside the IPv4 header
        assert_eq!(e.process(&f, 0), Verdict::Drop(DropReason::Malformed));
        assert_eq!(e.stats().drops[DropReason::Malformed.index()].get(), 1);
        let named: Vec<_> = ParseError::ALL
            .iter()
            .filter(|p| e.stats().parse_errors[p.index()].get() == 1)
            .map(|p| p.name())
            .collect();
        assert_eq!(named.len(), 1, "exactly one parse error counter: {named:?}");
        assert!(named[0].starts_with("ipv4"), "{named:?}");

        let mut lenient = engine(EngineConfig {
            malformed: Action::Forward,
            ..EngineConfig::default()
        });
        assert_eq!(lenient.process(&f, 0), Verdict::Forward);
    }

    #[test]
    fn arp_crosses_unless_policy_drops_non_ip() {
        let mut e = engine(EngineConfig::default());
        assert_eq!(e.process(&ARP, 0), Verdict::Forward);
        assert_eq!(e.stats().non_ip.get(), 1);
        assert_eq!(e.stats().flows_created.get(), 0);
        let mut strict = engine(EngineConfig {
            non_ip: Action::Drop,
            ..EngineConfig::default()
        });
        assert_eq!(strict.process(&ARP, 0), Verdict::Drop(DropReason::NonIp));
    }

    #[test]
    fn burst_and_single_frames_agree() {
        let frames: Vec<Vec<u8>> = (0..32u16)
            .map(|i| match i % 4 {
                0 => ARP.to_vec(),
                1 => tcp_frame([10, 0, 0, 1], 1000 + i, [192, 0, 2, 1], 443, 0x10),
                2 => tcp_frame([192, 0, 2, 1], 443, [10, 0, 0, 1], 1000 + i - 1, 0x10),
                _ => tcp_frame([10, 0, 0, 1], 1, [10, 0, 0, 2], 2, 0x10)[..25].to_vec(),
            })
            .collect();
        let views: Vec<&[u8]> = frames.iter().map(|f| f.as_slice()).collect();
        let ports = [0usize; 32];
        let mut burst_verdicts = [Verdict::Forward; 32];
        let mut a = engine(EngineConfig::default());
        a.process_burst(&views, &ports, &mut burst_verdicts);
        let mut b = engine(EngineConfig::default());
        for (i, f) in views.iter().enumerate() {
            assert_eq!(b.process(f, 0), burst_verdicts[i], "frame {i}");
        }
        assert_eq!(a.stats().flows_created.get(), b.stats().flows_created.get());
        assert_eq!(
            a.stats().flows_created.get(),
            8,
            "8 TCP flows, each seen both ways"
        );
        assert_eq!(a.stats().drops_total(), 8);
    }

    #[test]
    fn bypass_forwards_everything_untouched() {
        let mut e = engine(EngineConfig {
            bypass: true,
            ..EngineConfig::default()
        });
        assert_eq!(e.process(&ARP[..10], 0), Verdict::Forward);
        assert_eq!(e.stats().rx_packets[0].get(), 1);
        assert_eq!(e.stats().drops_total(), 0);
        assert_eq!(e.stats().flows_created.get(), 0);
    }
}
