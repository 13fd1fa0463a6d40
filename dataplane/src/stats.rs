//! Per-worker counters. Each `WorkerStats` has exactly one writer (its worker); the control thread
//! reads them with relaxed loads. Single-writer counters need no atomic read-modify-write: a
//! relaxed load + store compiles to plain moves on x86 and never loses an update.

use crate::parse::ParseError;
use std::sync::atomic::{AtomicU64, Ordering};

/// Ports an appliance can have (pairs × 2). Counters are indexed by the runtime's port index.
pub const MAX_PORTS: usize = 16;

/// A single-writer counter.
#[derive(Default)]
#[repr(transparent)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`. Only the owning worker may call this.
    #[inline(always)]
    pub fn add(&self, n: u64) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }

    #[inline(always)]
    pub fn inc(&self) {
        self.add(1)
    }

    /// Sets a gauge. Only the owning worker may call this.
    #[inline(always)]
    pub fn set(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }

    #[inline(always)]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Why the data path dropped a frame. Every variant is a counter an operator reads by `name()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum DropReason {
    /// The frame failed to parse (the layer and problem are in the parse-error counters).
    Malformed,
    /// A non-IP frame, with `non_ip = "drop"`.
    NonIp,
    /// An IP fragment, with `fragments = "drop"`.
    Fragment,
    /// The tx queue of the egress port was full: the PMD did not take the frame.
    TxFull,
    /// The ring to the worker that owns the flow was full (software steering).
    SteerRingFull,
    /// The frame is larger than one mbuf (the PMD chained segments): dropped as a NIC without
    /// scatter-gather drops frames above its maximum size.
    Oversize,
    /// No connection for it, and it cannot open one (a TCP segment other than a SYN, an ICMP
    /// echo reply or error with nothing to relate to).
    NoState,
    /// A TCP flag combination no conforming stack sends.
    InvalidFlags,
    /// A TCP segment outside the connection's sequence or acknowledgement window.
    OutOfWindow,
    /// A new connection, and the worker's connection table is full (established ones are kept).
    TableFull,
    /// A new connection opened from an outside port, which the default policy refuses.
    InboundDefault,
    /// A new TCP connection beyond the half-open limit (per worker or per source): SYN floods
    /// fill this, not the table of established connections.
    HalfOpenLimit,
    /// A new connection to or from an address on a blocklist.
    Blocklist,
    /// A new connection a rule drops or rejects (per-rule counts in `rule_hits`).
    Rule,
    /// A packet of a flow that an inspection check stopped (TLS/QUIC/protocol checks; per-check
    /// counts in `checks_blocked`).
    Inspection,
    /// The appliance is the standby (or starting, or in fault) of an HA pair: only the active
    /// forwards.
    Standby,
    /// A wrong IPv4 header, TCP, UDP or ICMP checksum off the established fast path: the
    /// receiver would discard it, so it must not be read or move a tracker.
    BadChecksum,
    /// A TCP segment with urgent data in a connection still under inspection: the receiver
    /// takes the urgent byte out of the stream (or not: SO_OOBINLINE), so the bytes it reads
    /// cannot be known.
    UrgentData,
}

impl DropReason {
    pub const ALL: [DropReason; 18] = [
        DropReason::Malformed,
        DropReason::NonIp,
        DropReason::Fragment,
        DropReason::TxFull,
        DropReason::SteerRingFull,
        DropReason::Oversize,
        DropReason::NoState,
        DropReason::InvalidFlags,
        DropReason::OutOfWindow,
        DropReason::TableFull,
        DropReason::InboundDefault,
        DropReason::HalfOpenLimit,
        DropReason::Blocklist,
        DropReason::Rule,
        DropReason::Inspection,
        DropReason::Standby,
        DropReason::BadChecksum,
        DropReason::UrgentData,
    ];
    pub const COUNT: usize = Self::ALL.len();

    #[inline(always)]
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::NonIp => "non_ip",
            DropReason::Fragment => "fragment",
            DropReason::TxFull => "tx_full",
            DropReason::SteerRingFull => "steer_ring_full",
            DropReason::Oversize => "oversize",
            DropReason::NoState => "no_state",
            DropReason::InvalidFlags => "invalid_flags",
            DropReason::OutOfWindow => "out_of_window",
            DropReason::TableFull => "table_full",
            DropReason::InboundDefault => "inbound_default",
            DropReason::HalfOpenLimit => "half_open_limit",
            DropReason::Blocklist => "blocklist",
            DropReason::Rule => "rule",
            DropReason::Inspection => "inspection",
            DropReason::Standby => "standby",
            DropReason::BadChecksum => "bad_checksum",
            DropReason::UrgentData => "urgent_data",
        }
    }
}

/// The counters of one worker. Cache-line aligned so that two workers never share a line.
#[repr(align(64))]
#[derive(Default)]
pub struct WorkerStats {
    pub rx_packets: [Counter; MAX_PORTS],
    pub rx_bytes: [Counter; MAX_PORTS],
    pub tx_packets: [Counter; MAX_PORTS],
    pub tx_bytes: [Counter; MAX_PORTS],
    pub drops: [Counter; DropReason::COUNT],
    pub parse_errors: [Counter; ParseError::COUNT],
    /// IP fragments seen (forwarded or dropped per policy).
    pub fragments: Counter,
    /// Link-layer control frames seen: non-IP (ARP, LLDP...) and ICMPv6 neighbour discovery/MLD.
    pub non_ip: Counter,
    /// Connections created in this worker's table.
    pub flows_created: Counter,
    /// Connections in the table now (gauge).
    pub flows_active: Counter,
    /// Connections that timed out.
    pub flows_expired: Counter,
    /// TCP connections not yet established (gauge).
    pub half_open: Counter,
    /// Packets passed as related to a tracked connection (ICMP errors).
    pub related: Counter,
    /// New connections each rule matched, by rule index; never reset (the control thread
    /// carries hits across a reload by rule name).
    pub rule_hits: RuleHits,
    /// Connections allowed by an `alert` rule.
    pub alerts: Counter,
    /// Replies sent for `reject` rules (TCP RST, ICMP port unreachable).
    pub rejects_sent: Counter,
    /// Rejected packets not answered because of the per-second reply limit (dropped).
    pub rejects_suppressed: Counter,
    /// Events lost because the worker's queue was full (the writer fell behind).
    pub events_lost: Counter,
    /// Drop events not reported because of the per-second limit (the drops are counted).
    pub drop_events_suppressed: Counter,
    /// Packets this worker handed to another worker (software steering) and received from them.
    pub steered_out: Counter,
    pub steered_in: Counter,
    /// Poll-loop iterations and those that found no packet; the idle ratio tells load.
    pub polls: Counter,
    pub empty_polls: Counter,
    /// Times the adaptive idle mode slept.
    pub idle_sleeps: Counter,
    /// Flows whose inspection began (first payload) and flows that found every inspection slot
    /// taken (not inspected past their first packet).
    pub inspected: Counter,
    pub inspect_no_slot: Counter,
    /// TLS ClientHellos read (TCP and QUIC) and hellos that did not parse.
    pub client_hellos: Counter,
    pub malformed_hellos: Counter,
    /// Flows on which each inspection check fired (by `Check::index`), and those it stopped.
    pub checks_fired: [Counter; crate::inspect::checks::CHECKS],
    pub checks_blocked: [Counter; crate::inspect::checks::CHECKS],
    /// Flows in inspection now (gauge).
    pub inspecting: Counter,
    /// HA state sync: flow events pushed to the sync queue, and lost to a full queue (each
    /// repaired by the flow's next packet, which pushes it again).
    pub sync_pushed: Counter,
    pub sync_lost: Counter,
    /// Synced flows installed or updated in this worker's table, removed (closed on the active),
    /// and refused for a full table.
    pub sync_imported: Counter,
    pub sync_removed: Counter,
    pub sync_table_full: Counter,
}

/// One hit counter per rule of the current policy (by index).
pub struct RuleHits(pub [Counter; crate::policy::MAX_RULES]);

impl Default for RuleHits {
    fn default() -> Self {
        RuleHits(std::array::from_fn(|_| Counter::default()))
    }
}

impl WorkerStats {
    /// Total drops over all reasons.
    pub fn drops_total(&self) -> u64 {
        self.drops.iter().map(Counter::get).sum()
    }

    #[inline(always)]
    pub fn drop_packet(&self, reason: DropReason) {
        self.drops[reason.index()].inc();
    }
}
