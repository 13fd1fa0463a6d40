//! The per-packet engine: frame bytes in, verdict out. It owns one worker's connection table
//! and writes only that worker's counters. It does no I/O and knows nothing of DPDK, so the DPDK
//! poll loop, the offline capture reader and tests drive the very same code.
//!
//! What passes: frames of a tracked connection that its state machine accepts (TCP windows,
//! UDP and ICMP echo pseudo-connections), ICMP errors that quote a tracked connection
//! (related), and new connections the policy allows. Policy today is the zone default: a
//! connection opened from an inside port is allowed, one opened from an outside port is not;
//! rules and lists refine it later. Replies pass by state, whatever port they arrive on.
//!
//! It must never allocate, lock, or read a clock: time arrives as an argument (seconds).

use crate::conntrack::sync::{FlowState, SyncEvent, SyncOp, SyncQueue};
use crate::conntrack::table::{Conn, ConnId, ConnTable, SimpleState, TableFull, Timeouts};
use crate::conntrack::tcp::{ConnState, Segment, TcpReject, TcpTracker};
use crate::events::{
    AlertRecord, DropRecord, Event, EventQueue, FlowEnd, FlowRecord, FlowRef, RuleAlertRecord,
    RuleRef, Stamped, TlsRecord,
};
use crate::flow::FlowKey;
use crate::inspect::checks::{Check, CheckAction, Fired, InspectPolicy};
use crate::inspect::detect::{detect_tcp, detect_udp, AppProto};
use crate::inspect::session::{InspectLimits, Inspector, PacketView, Progress, TlsMeta};
use crate::parse::{
    parse_fast, parse_frame, parse_frame_into, parse_quoted, Fragment, ParsedPacket, L3,
};
use crate::policy::{Decision, NewConn, Policy, RuleAction};
use crate::rss::{Toeplitz, SYMMETRIC_RSS_KEY};
use crate::stats::{DropReason, WorkerStats, MAX_PORTS};
use crate::wire::protocol;
use crate::wire::tcp::flags::URG;
use arc_swap::ArcSwap;
use std::sync::Arc;

/// What to do with a class of frames the policy has an opinion on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Forward,
    Drop,
}

/// Engine settings (the `[engine]` and `[conntrack]` tables of the config).
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Frames that fail to parse. A firewall drops what it cannot read.
    pub malformed: Action,
    /// Non-IP frames. ARP must cross a bump in the wire or nothing works, hence forward.
    pub non_ip: Action,
    /// IP fragments (recognised and counted; reassembly is not done here).
    pub fragments: Action,
    /// Connections per worker table, preallocated.
    pub flow_capacity: usize,
    /// Forward every frame between paired ports without parsing or tracking it (counted as rx
    /// and tx only): the fail-open switch an operator flips to tell whether inspection is the
    /// problem, and the baseline of the I/O path in benchmarks.
    pub bypass: bool,
    pub timeouts: Timeouts,
    /// Adopt TCP connections seen mid-stream (loose pickup) instead of dropping them as
    /// `no_state`. Off by default: only a SYN opens a connection.
    pub tcp_pickup: Pickup,
    /// Which port indices are inside ports. `None`: no zones (offline replays), every new
    /// connection is allowed.
    pub inside_ports: Option<[bool; MAX_PORTS]>,
    /// Half-open TCP connections (SYN seen, not yet established) a worker keeps at most, in all
    /// and per source address: a SYN flood fills these, never the room of established ones.
    pub max_half_open: usize,
    pub max_half_open_per_source: u16,
    /// Drop events a worker reports per second at most (the drops themselves are all counted).
    pub drop_events_per_sec: u32,
    /// Replies a worker sends for `reject` rules per second at most; beyond, the packet is only
    /// dropped (a reject must not make the appliance a reflector).
    pub rejects_per_sec: u32,
    /// Sizes of the inspection state (flows in inspection at once, bytes kept per flow).
    pub inspect: InspectLimits,
    /// Unix seconds minus engine seconds: certificate validity is judged in wall-clock time
    /// (0 offline, where the engine runs on the capture's clock).
    pub unix_offset: i64,
    /// Verify IPv4 header and TCP/UDP/ICMP checksums of every packet off the established fast
    /// path (`verify`); off only for captures taken on a sending host, whose checksums the NIC
    /// was still to fill in.
    pub verify_checksums: bool,
    /// Ticks a second of the clock `Engine::set_clock` is given (the TSC's rate on DPDK,
    /// 1,000,000 offline); 0: events are stamped to the second.
    pub ticks_per_sec: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            malformed: Action::Drop,
            non_ip: Action::Forward,
            fragments: Action::Forward,
            flow_capacity: 65_536,
            bypass: false,
            timeouts: Timeouts::default(),
            tcp_pickup: Pickup::default(),
            inside_ports: None,
            max_half_open: 16_384,
            max_half_open_per_source: 256,
            drop_events_per_sec: 100,
            rejects_per_sec: 1000,
            inspect: InspectLimits::default(),
            unix_offset: 0,
            verify_checksums: true,
            ticks_per_sec: 0,
        }
    }
}

/// Which zones adopt TCP connections seen mid-stream (loose pickup), by the zone of the port the
/// connection is first seen on (offline, without zones, `inside` decides).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pickup {
    pub inside: bool,
    pub outside: bool,
}

impl Pickup {
    #[inline]
    pub fn allows(&self, inbound: bool) -> bool {
        if inbound {
            self.outside
        } else {
            self.inside
        }
    }
}

/// The engine's decision for one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Forward,
    Drop(DropReason),
    /// Drop, and answer the sender (TCP RST or ICMP port unreachable, see `build_reject`),
    /// through the port the frame came in on.
    Reject,
    /// Drop a TCP segment and reset its connection at both ends: a RST back to the sender
    /// (`build_reject`) and one onward to the receiver (`build_reset_onward`), so that neither
    /// waits for a connection that inspection stopped.
    ResetBoth,
}

/// Where the control thread publishes the current policy; workers pick it up between bursts.
pub type PolicySlot = ArcSwap<Policy>;

/// The largest burst `process_burst` takes.
pub const MAX_BURST: usize = 32;
/// Connections the timer wheel may look at per call of `expire`: bounds the pause a burst of
/// expiries can cause (a few µs).
const EXPIRE_BUDGET: usize = 256;

/// A frame waiting for the connection stages.
#[derive(Clone, Copy, Default)]
struct Pending {
    active: bool,
    lo_to_hi: bool,
    /// An ICMP error: `key` is the connection it quotes.
    related: bool,
    /// An ICMP message that may open a connection (echo request, informational).
    icmp_opens: bool,
    hash: u64,
    /// The entry stage 2 prefetched (its tag matched), tried first in stage 3.
    hint: u32,
    key: FlowKey,
    /// An unfragmented TCP segment: its header, at `l4_offset`, is read in stage 3 (the
    /// frame is still in cache; a segment carried from stage 1 cost a copy per packet).
    tcp: bool,
    l4_offset: u16,
    /// Where the L4 payload is, for protocol detection on a connection's first payload.
    payload_offset: u16,
    payload_len: u16,
    /// A TCP or UDP payload is there (`payload_len > 0`): the connection stage inspects a
    /// connection's first.
    data: bool,
    /// For an ICMP error quoting a TCP segment: that segment's sequence number.
    quote_seq: Option<u32>,
    /// An ICMP message's type and code (set for ICMP only; read for drop events).
    icmp: (u8, u8),
}

/// How many frames apart `Engine::process_burst` runs its three stages, a software pipeline:
/// while frame i is classified and its bucket prefetched, frame i - LAG reads its bucket and
/// prefetches its entry, and frame i - 2 LAG is decided. The memory system gets a steady
/// stream of requests, each with the work of LAG frames to arrive in, instead of a burst's
/// worth at once followed by a wait. Decisions still run in frame order.
///
/// 16, half a full burst: against 8, the engine benchmark at 1M connections went from 116 to
/// 100 cycles/packet (the two builds alternating 5 times on this VM, where a random line costs a
/// nested page walk), 100k 103 -> 86, 10M 161 -> 136, 1k unchanged at ~70 (5 more instructions
/// a packet for the longer fill and drain); 32, three passes over the burst, was worse again
/// (~125 at 1M). The benchmarks' memory floor runs the same pipeline.
pub const PIPELINE_LAG: usize = 16;

/// One worker's engine.
pub struct Engine {
    config: EngineConfig,
    conns: ConnTable,
    /// Half-open TCP connections, in all and per source (direct-mapped by a hash of the
    /// address: a collision can only over-count, which errs on the safe side).
    half_open: usize,
    half_open_by_source: Box<[u16]>,
    source_seed: u64,
    toeplitz: Toeplitz,
    stats: Arc<WorkerStats>,
    policy: Arc<Policy>,
    policy_slot: Arc<PolicySlot>,
    events: Option<Arc<EventQueue>>,
    /// `set_clock`'s tick: the time within the second, for event timestamps.
    clock_tick: u64,
    /// HA state sync: where flow events go (the HA thread drains it), and how often a live
    /// flow's state is pushed again (seconds; `u32::MAX` with sync off).
    sync: Option<Arc<SyncQueue>>,
    sync_refresh: u32,
    /// Flows whose first packets are being inspected.
    inspector: Inspector,
    /// The burst's frames between the stages of `process_burst`: kept from burst to burst,
    /// so that no burst starts by clearing it (stage 1 writes each frame's entry whole).
    /// `None` only while a burst runs.
    pending: Option<Box<[Pending; MAX_BURST]>>,
    /// Drop-event budget of the current second.
    drop_tokens: u32,
    drop_second: u32,
    /// Reject-reply budget of the current second.
    reject_tokens: u32,
    reject_second: u32,
}

impl Engine {
    /// An engine with the default policy (zones only, no rules, no lists).
    pub fn new(config: EngineConfig, stats: Arc<WorkerStats>) -> Engine {
        Engine::with_policy(
            config,
            stats,
            Arc::new(ArcSwap::from_pointee(Policy::default())),
        )
    }

    /// An engine that follows the policy published in `slot`.
    pub fn with_policy(
        config: EngineConfig,
        stats: Arc<WorkerStats>,
        slot: Arc<PolicySlot>,
    ) -> Engine {
        Engine {
            conns: ConnTable::with_capacity(config.flow_capacity, config.timeouts, 0),
            half_open: 0,
            half_open_by_source: vec![0u16; HALF_OPEN_SOURCES].into_boxed_slice(),
            source_seed: {
                use std::hash::BuildHasher;
                std::collections::hash_map::RandomState::new().hash_one(0x50_u64)
            },
            toeplitz: Toeplitz::new(&SYMMETRIC_RSS_KEY),
            policy: slot.load_full(),
            policy_slot: slot,
            events: None,
            clock_tick: 0,
            sync: None,
            sync_refresh: u32::MAX,
            inspector: Inspector::new(config.inspect),
            pending: Some(Box::new([Pending::default(); MAX_BURST])),
            drop_tokens: 0,
            drop_second: u32::MAX,
            reject_tokens: 0,
            reject_second: u32::MAX,
            config,
            stats,
        }
    }

    /// Reports events (connection ends, rate-limited drops) into `queue`.
    pub fn with_events(mut self, queue: Arc<EventQueue>) -> Engine {
        self.events = Some(queue);
        self
    }

    /// Pushes flow events for HA state sync into `queue`: a connection when it is established
    /// (TCP) or opened (others), when its TCP state or inspection verdict changes, every
    /// `refresh_secs` while it has traffic, and when it ends.
    pub fn with_sync(mut self, queue: Arc<SyncQueue>, refresh_secs: u32) -> Engine {
        self.sync = Some(queue);
        self.sync_refresh = refresh_secs.max(1);
        self.conns.set_sync(true);
        self
    }

    #[inline]
    fn emit(&self, ev: Event) {
        if let Some(q) = &self.events {
            if q.push(self.stamp(ev)).is_err() {
                self.stats.events_lost.inc();
            }
        }
    }

    /// The time within the second, as a tick of the caller's clock (`ticks_per_sec`), for event
    /// timestamps only: the caller sets it per burst (a store); it is read when an event is made.
    #[inline]
    pub fn set_clock(&mut self, tick: u64) {
        self.clock_tick = tick;
    }

    fn micros(&self) -> u32 {
        let tps = self.config.ticks_per_sec;
        if tps == 0 {
            return 0;
        }
        ((self.clock_tick % tps) as u128 * 1_000_000 / tps as u128) as u32
    }

    fn stamp(&self, event: Event) -> Stamped {
        Stamped {
            micros: self.micros(),
            event,
        }
    }

    /// Writes a flow event for every connection still in the table (at stop or end of capture).
    /// Not the per-packet path: when the queue is full it waits for the writer to drain it, up
    /// to two seconds in all, before counting the rest as lost.
    pub fn flush_flows(&mut self, now: u32) {
        // Flows still in inspection report what was found so far (a hello without an answer).
        let mut settled = Vec::new();
        let (inspector, policy, stats) = (&mut self.inspector, &self.policy, &self.stats);
        let want = self.events.is_some();
        self.conns.for_each_live(|c| {
            if c.insp != 0 {
                settled.extend(settle(inspector, &policy.inspect, stats, c, now, want).0);
            }
        });
        let Some(q) = &self.events else { return };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        let mut pending: Vec<Event> = settled;
        self.conns
            .for_each_live(|c| pending.push(Event::Flow(flow_record(c, now, FlowEnd::Shutdown))));
        for ev in pending {
            let mut ev = self.stamp(ev);
            loop {
                match q.push(ev) {
                    Ok(()) => break,
                    Err(back) if std::time::Instant::now() < deadline => {
                        ev = back;
                        std::thread::sleep(std::time::Duration::from_micros(200));
                    }
                    Err(_) => {
                        self.stats.events_lost.inc();
                        break;
                    }
                }
            }
        }
    }

    /// Calls `f` with the sync record of every connection in the table (bulk sync to a
    /// standby). Not the per-packet path.
    pub fn export_flows(&self, now: u32, mut f: impl FnMut(FlowState)) {
        self.conns.for_each_live(|c| f(FlowState::of(c, now)));
    }

    /// Pushes the sync record of the table's connections from entry `*cursor` on, up to `budget`
    /// entries, into the sync queue (bulk sync to a standby that (re)joined). Stops early when
    /// the queue is full (the caller calls again later, from the same entry). Returns whether
    /// the walk reached the end of the table. Not the per-packet path: the worker calls it
    /// between bursts.
    pub fn export_step(&mut self, cursor: &mut usize, budget: usize, now: u32) -> bool {
        let Some(q) = &self.sync else { return true };
        let cap = self.conns.capacity();
        let end = cursor.saturating_add(budget).min(cap);
        while *cursor < end {
            if let Some(c) = self.conns.entry(*cursor).filter(|c| sync_eligible(c)) {
                let ev = SyncEvent {
                    op: SyncOp::Update,
                    state: FlowState::of(c, now),
                };
                if q.push(ev).is_err() {
                    return false;
                }
                self.stats.sync_pushed.inc();
            }
            *cursor += 1;
        }
        *cursor >= cap
    }

    /// Applies a flow event synced from the active appliance (`import_flow` or a removal).
    pub fn apply_sync(&mut self, ev: &SyncEvent, now: u32) {
        match ev.op {
            SyncOp::Update => {
                if self.import_flow(&ev.state, now).is_err() {
                    self.stats.sync_table_full.inc();
                }
            }
            SyncOp::Close => self.remove_synced(&ev.state.key),
        }
    }

    /// Removes a connection the active appliance reported closed.
    pub fn remove_synced(&mut self, key: &FlowKey) {
        let hash = self.conns.hash(key);
        let Some(id) = self.conns.lookup(key, hash) else {
            return;
        };
        self.drop_inspection(id);
        self.settle_half_open(id);
        self.conns.remove(id);
        self.stats.sync_removed.inc();
        self.stats.flows_active.set(self.conns.len() as u64);
    }

    /// Installs a connection synced from the active appliance, or updates it: its tracker
    /// (adopted, so it re-learns the windows from its first packets), protocol, verdict flags and
    /// counters. A connection stopped by inspection stays stopped; an allowed one passes without
    /// being inspected again. Called by the worker that owns the flow's shard (single writer).
    /// Until it sees a packet here, the connection is the active's: it writes no flow record
    /// when it times out on this appliance (the active reports it).
    pub fn import_flow(&mut self, s: &FlowState, now: u32) -> Result<(), TableFull> {
        let hash = self.conns.hash(&s.key);
        let id = match self.conns.lookup(&s.key, hash) {
            Some(id) => id,
            None => {
                let id = self
                    .conns
                    .insert(&s.key, hash, s.initiator_is_lo, s.tracker(), now)?;
                self.stats.flows_created.inc();
                self.stats.flows_active.set(self.conns.len() as u64);
                id
            }
        };
        // Inspected here (split brain, or a flow both saw): the active's verdict wins.
        self.drop_inspection(id);
        let c = self.conns.get_mut(id);
        self.stats.sync_imported.inc();
        c.tcp = s.tracker();
        c.set_initiator_is_lo(s.initiator_is_lo);
        c.set_simple(if s.replied {
            SimpleState::Replied
        } else {
            SimpleState::New
        });
        // A synced flow is never in inspection here: its verdict came with it.
        c.app_proto = if s.app_proto == 0 {
            AppProto::Unknown.code()
        } else {
            s.app_proto
        };
        c.flags =
            (c.flags & FLAG_HALF_OPEN) | (s.flags & (FLAG_ALERTED | FLAG_BLOCKED)) | FLAG_SYNCED;
        c.sync_due = 0;
        c.set_counters(s.packets, s.bytes);
        c.created = now.saturating_sub(s.age);
        c.last_seen = now.saturating_sub(s.idle);
        Ok(())
    }

    /// Frees a connection's inspection slot without a verdict or events (the HA peer decides).
    fn drop_inspection(&mut self, id: ConnId) {
        let c = self.conns.get_mut(id);
        if c.insp != 0 {
            self.inspector.release(c.insp);
            c.insp = 0;
            self.stats.inspecting.set(self.inspector.in_use() as u64);
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

    pub fn conns(&self) -> &ConnTable {
        &self.conns
    }

    /// The symmetric flow hash of a frame, as a NIC with our RSS key computes it; `None` for
    /// frames that do not parse or are not IP. Used for software steering.
    /// An ICMP error hashes as the packet it quotes, so that it reaches the worker holding that
    /// connection.
    #[inline]
    pub fn flow_hash(&self, frame: &[u8]) -> Option<u32> {
        let p = parse_frame(frame).ok().filter(|p| p.l3 != L3::Other)?;
        if p.is_icmp()
            && p.fragment == Fragment::None
            && matches!(icmp_kind(&p), Some(IcmpKind::Error))
        {
            let quoted = frame.get(p.l4_offset as usize + 8..).unwrap_or(&[]);
            if let Ok(q) = parse_quoted(quoted, p.l3) {
                return Some(self.toeplitz.hash_l3l4(&q));
            }
        }
        Some(self.toeplitz.hash_l3l4(&p))
    }

    /// Expires connections idle past their timeout, up to a budget per call. Call it when the
    /// second changes, and again while it returns `true` (work left over the budget).
    #[inline]
    pub fn expire(&mut self, now: u32) -> bool {
        if self.inspector.in_use() > 0 {
            self.sweep_inspection(now);
        }
        let stamp = self.micros();
        let (ho, by_source, seed) = (
            &mut self.half_open,
            &mut self.half_open_by_source,
            self.source_seed,
        );
        let (events, stats, sync) = (&self.events, &self.stats, &self.sync);
        let (inspector, policy) = (&mut self.inspector, &self.policy);
        let want = events.is_some();
        let n = self.conns.expire(now, EXPIRE_BUDGET, |c| {
            let mut evs = if c.insp != 0 {
                settle(inspector, &policy.inspect, stats, c, c.last_seen, want).0
            } else {
                Vec::new()
            };
            let ours = c.flags & FLAG_SYNCED == 0;
            if let Some(q) = sync.as_ref().filter(|_| ours && sync_eligible(c)) {
                let ev = SyncEvent {
                    op: SyncOp::Close,
                    state: FlowState::of(c, now),
                };
                match q.push(ev) {
                    Ok(()) => stats.sync_pushed.inc(),
                    Err(_) => stats.sync_lost.inc(),
                }
            }
            if let Some(q) = events.as_ref().filter(|_| ours) {
                evs.push(Event::Flow(flow_record(c, c.last_seen, FlowEnd::Timeout)));
                for event in evs {
                    if q.push(Stamped {
                        micros: stamp,
                        event,
                    })
                    .is_err()
                    {
                        stats.events_lost.inc();
                    }
                }
            }
            if c.flags & FLAG_HALF_OPEN != 0 {
                *ho -= 1;
                let s = &mut by_source
                    [source_slot(&initiator_addr(c.key(), c.initiator_is_lo()), seed)];
                *s = s.saturating_sub(1);
            }
        });
        if n > 0 {
            self.stats.half_open.set(self.half_open as u64);
            self.stats.flows_expired.add(n as u64);
            self.stats.flows_active.set(self.conns.len() as u64);
        }
        self.conns.is_behind()
    }

    /// Processes one frame that arrived on port index `port` at `now` (seconds).
    #[inline]
    pub fn process(&mut self, frame: &[u8], port: usize, now: u32) -> Verdict {
        let mut v = [Verdict::Forward];
        self.process_burst(&[frame], &[port], &mut v, now);
        v[0]
    }

    /// Processes a burst in three stages, as VPP does: classify each frame, hash its key and
    /// prefetch its bucket; prefetch the entry the bucket's tags name; then look up and decide.
    /// The stages overlap as a pipeline (see below), so a frame's cache misses are in flight
    /// while other frames are worked on. `frames`, `ports` and `verdicts` have equal lengths of
    /// at most `MAX_BURST`.
    #[inline]
    pub fn process_burst(
        &mut self,
        frames: &[&[u8]],
        ports: &[usize],
        verdicts: &mut [Verdict],
        now: u32,
    ) {
        let n = frames.len().min(MAX_BURST);
        self.count_rx(&frames[..n], &ports[..n]);
        if self.config.bypass {
            verdicts[..n].fill(Verdict::Forward);
            return;
        }
        // A new policy, if the control thread published one: one pointer comparison per burst.
        let current = self.policy_slot.load();
        if !Arc::ptr_eq(&current, &self.policy) {
            // Hit counters are by rule index and never reset here: the control thread carries
            // each rule's hits across a reload by name.
            self.policy = arc_swap::Guard::into_inner(current);
        }
        // The three stages run as a software pipeline (`PIPELINE_LAG`).
        const LAG: usize = PIPELINE_LAG;
        // Out of `self` for the burst (moving a pointer), so that the stages may borrow both.
        let mut pending_box = self
            .pending
            .take()
            .expect("process_burst is not re-entered");
        // Slices of the burst's length, so that indexing below them needs no bounds checks;
        // a stage's frame index is `step - lag` when that is below `n` (wrapping: one compare).
        let (frames, ports, verdicts) = (&frames[..n], &ports[..n], &mut verdicts[..n]);
        let pending = &mut pending_box[..n];
        for step in 0..n + 2 * LAG {
            if step < n {
                self.stage_classify(frames[step], &mut pending[step], &mut verdicts[step]);
            }
            let i = step.wrapping_sub(LAG);
            if i < n {
                let p = &mut pending[i];
                if p.active {
                    p.hint = self.conns.prefetch_entry(p.hash, p.key.is_ipv6);
                }
            }
            let i = step.wrapping_sub(2 * LAG);
            if i < n && pending[i].active {
                verdicts[i] = self.decide(frames[i], ports[i], &pending[i], now);
            }
        }
        self.pending = Some(pending_box);
    }

    /// Stage 1 for one frame: its verdict, or its key and hash in `pend` with its bucket
    /// prefetched.
    #[inline(always)]
    fn stage_classify(&mut self, frame: &[u8], pend: &mut Pending, verdict: &mut Verdict) {
        if let Some(f) = parse_fast(frame) {
            // The common frame (IPv4 TCP/UDP, no options, no tags, not a fragment): key and
            // hash from registers. Everything else takes `classify`.
            let (key, lo_to_hi) = FlowKey::from_v4(f.src, f.src_port, f.dst, f.dst_port, f.proto);
            let (lo, hi) = if lo_to_hi {
                (f.src, f.dst)
            } else {
                (f.dst, f.src)
            };
            let hash = self
                .conns
                .hash_v4(lo, key.lo_port, hi, key.hi_port, f.proto);
            self.conns.prefetch(hash);
            *pend = Pending {
                active: true,
                lo_to_hi,
                hash,
                key,
                tcp: f.proto == 6,
                l4_offset: f.l4_offset,
                payload_offset: f.payload_offset,
                payload_len: f.payload_len,
                data: f.payload_len > 0,
                ..Pending::default()
            };
            return;
        }
        // The entry may hold an earlier burst's frame: `classify` sets only what applies.
        *pend = Pending::default();
        match self.classify(frame, pend) {
            Some(v) => *verdict = v,
            None => {
                pend.data =
                    !pend.related && pend.payload_len > 0 && matches!(pend.key.proto, 6 | 17);
                pend.hash = self.conns.hash(&pend.key);
                self.conns.prefetch(pend.hash);
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

    /// Parses the frame and applies the per-class policy: a verdict, or `None` for a frame that
    /// belongs to (or may open) a connection, whose key and the rest the connection stages need
    /// are then in `pend` (written in place: no copy of a summary per packet).
    #[inline(always)]
    fn classify(&mut self, frame: &[u8], pend: &mut Pending) -> Option<Verdict> {
        let mut p = ParsedPacket::EMPTY;
        match parse_frame_into(frame, &mut p) {
            Ok(()) => {}
            Err(e) => {
                self.stats.parse_errors[e.index()].inc();
                return Some(match self.config.malformed {
                    Action::Forward => Verdict::Forward,
                    Action::Drop => self.drop(DropReason::Malformed),
                });
            }
        }
        if p.l3 == L3::Other {
            self.stats.non_ip.inc();
            return Some(match self.config.non_ip {
                Action::Forward => Verdict::Forward,
                Action::Drop => self.drop(DropReason::NonIp),
            });
        }
        if p.fragment != Fragment::None {
            self.stats.fragments.inc();
            if self.config.fragments == Action::Drop {
                return Some(self.drop(DropReason::Fragment));
            }
        }
        pend.payload_offset = p.payload_offset;
        pend.payload_len = p.payload_len;
        pend.tcp = p.proto == 6 && p.fragment == Fragment::None;
        pend.l4_offset = p.l4_offset;
        if p.is_icmp() && p.fragment == Fragment::None {
            pend.icmp = (p.icmp_type, p.icmp_code);
            if let Some(kind) = icmp_kind(&p) {
                match kind {
                    IcmpKind::Error => {
                        // Related: the connection the quoted packet belongs to, and only when the
                        // error goes back to that packet's sender (a forged error aimed at any
                        // other host is refused), from a source not on a blocklist.
                        let quoted = frame.get(p.l4_offset as usize + 8..).unwrap_or(&[]);
                        let Some(q) = parse_quoted(quoted, p.l3).ok() else {
                            return Some(self.drop(DropReason::NoState));
                        };
                        let Some((key, q_lo_to_hi)) = FlowKey::from_parsed_directed(&q) else {
                            return Some(self.drop(DropReason::NoState));
                        };
                        if q.src != p.dst {
                            return Some(self.drop(DropReason::NoState));
                        }
                        if self.policy.blocklist.contains(&p.src, p.l3 == L3::Ipv6) {
                            return Some(self.drop(DropReason::Blocklist));
                        }
                        if q.proto == 6 {
                            // The quoted TCP sequence number, checked against the window in the
                            // connection stage (RFC 5927: blind errors need a window guess).
                            let t = quoted.get(q.l4_offset as usize + 4..q.l4_offset as usize + 8);
                            pend.quote_seq =
                                t.map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
                            if pend.quote_seq.is_none() {
                                return Some(self.drop(DropReason::NoState));
                            }
                        }
                        pend.key = key;
                        pend.lo_to_hi = q_lo_to_hi;
                        pend.related = true;
                        pend.active = true;
                        return None;
                    }
                    IcmpKind::Opens => pend.icmp_opens = true,
                    IcmpKind::Reply => {}
                    IcmpKind::Refused => return Some(self.drop(DropReason::NoState)),
                    IcmpKind::LinkControl => {
                        // IPv6's ARP: under the same policy as ARP.
                        self.stats.non_ip.inc();
                        return Some(match self.config.non_ip {
                            Action::Forward => Verdict::Forward,
                            Action::Drop => self.drop(DropReason::NonIp),
                        });
                    }
                }
            }
        }
        match FlowKey::from_parsed_directed(&p) {
            Some((key, lo_to_hi)) => {
                pend.key = key;
                pend.lo_to_hi = lo_to_hi;
                pend.active = true;
                None
            }
            None => Some(Verdict::Forward),
        }
    }

    /// The connection stage: track the frame in its connection, or open one if it may.
    #[inline(always)]
    fn decide(&mut self, frame: &[u8], port: usize, p: &Pending, now: u32) -> Verdict {
        // The lookup happens here, not in stage 2, so that it sees what earlier frames of this
        // burst did (a SYN-ACK after its SYN, a reused tuple); stage 2 only fetched the lines.
        let found = self.conns.lookup_hinted(&p.key, p.hash, p.hint);
        if p.related {
            let plausible = found.is_some_and(|id| {
                let c = self.conns.get(id);
                p.quote_seq.is_none_or(|seq| {
                    c.tcp
                        .plausible_quote(p.lo_to_hi == c.initiator_is_lo(), seq)
                })
            });
            return if plausible {
                self.stats.related.inc();
                Verdict::Forward
            } else {
                self.drop_at(DropReason::NoState, p, port, now)
            };
        }
        let len = frame.len() as u32;
        let seg = if p.tcp {
            // Stage 1's parser checked this header, so it fits.
            match Segment::parse(
                frame.get(p.l4_offset as usize..).unwrap_or(&[]),
                p.payload_len as u32,
            ) {
                Some(seg) => Some(seg),
                None => return self.drop_at(DropReason::Malformed, p, port, now),
            }
        } else {
            None
        };
        if let Some(id) = found {
            let c = self.conns.get_mut(id);
            let from_initiator = p.lo_to_hi == c.initiator_is_lo();
            // The fast path, in one branch: a plain segment of an established TCP connection
            // (no handshake, FIN or RST, not re-learning; see `is_plain`) or a UDP or ICMP
            // packet (or a TCP fragment), of a connection no flag sends to the slow path, and
            // not its first payload. Its windows move on; no state changes.
            let first_payload = (c.app_proto == 0) & p.data;
            let plain = seg.is_none_or(|seg| c.tcp.is_plain(&seg));
            if plain & ((c.flags & (SLOW_FLAGS | FLAG_HALF_OPEN)) | first_payload as u8 == 0) {
                if let Some(seg) = seg {
                    if let Err(e) = c.tcp.track_established(from_initiator, &seg) {
                        let start = c.created;
                        return self.drop_in(tcp_drop(e), p, port, now, start);
                    }
                }
                if c.count_due(from_initiator, len, now) {
                    push_sync(&self.sync, &self.stats, c, self.sync_refresh, now);
                }
                return Verdict::Forward;
            }
            return self.track_other(frame, p, port, id, from_initiator, seg, len, now);
        }
        self.open(frame, p, port, seg, len, now)
    }

    /// Whether a frame off the fast path may be read and may move state: its checksums are
    /// right (or not verified). The established fast path does not ask: its packets only move
    /// windows within what the window checks allow, and inspection never reads them.
    #[cold]
    fn verified(&self, frame: &[u8]) -> bool {
        !self.config.verify_checksums
            || parse_frame(frame).map_or(true, |p| crate::verify::checksums_ok(frame, &p))
    }

    /// The connection stage for every packet of a known connection the fast path does not
    /// take: handshakes, FINs, RSTs, a reused tuple, connections being inspected, first
    /// payloads. Out of line, so that the fast path's registers stay its own.
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    fn track_other(
        &mut self,
        frame: &[u8],
        p: &Pending,
        port: usize,
        id: ConnId,
        from_initiator: bool,
        seg: Option<Segment>,
        len: u32,
        now: u32,
    ) -> Verdict {
        // Drops here are of a known connection: their events carry its flow id.
        let start = self.conns.get(id).created;
        if !self.verified(frame) {
            return self.drop_in(DropReason::BadChecksum, p, port, now, start);
        }
        let c = self.conns.get_mut(id);
        let mut bases = None;
        // Urgent data in a stream still to be judged (being inspected, not yet seen, or watched
        // for an upgrade to TLS): dropped (see `DropReason::UrgentData`).
        let judging = (c.flags & (FLAG_INSPECT | FLAG_WATCH) != 0) | (c.app_proto == 0);
        if seg.is_some_and(|s| s.flags & URG != 0) && judging && self.policy.inspect.enabled {
            return self.drop_in(DropReason::UrgentData, p, port, now, start);
        }
        match seg {
            Some(seg) if c.tcp.may_reopen(&seg, from_initiator) => {
                // The tuple is reused by a new connection: the old one gets its record and
                // goes; the new one opens under the policy for its side.
                let record = flow_record(c, now, FlowEnd::Reused);
                if c.insp != 0 {
                    let evs = settle(
                        &mut self.inspector,
                        &self.policy.inspect,
                        &self.stats,
                        c,
                        now,
                        self.events.is_some(),
                    )
                    .0;
                    c.insp = 0;
                    for ev in evs {
                        self.emit(ev);
                    }
                }
                self.emit(Event::Flow(record));
                self.settle_half_open(id);
                self.conns.remove(id);
                return self.open(frame, p, port, Some(seg), len, now);
            }
            Some(seg) => {
                if (c.app_proto == 0) | (c.flags & FLAG_WATCH != 0) && !c.tcp.is_loose() {
                    // Where both streams continue, before this segment moves them on: an
                    // inspection starting now reads the handshake from there.
                    bases = c.tcp.next_seq(true).map(|cl| (cl, c.tcp.next_seq(false)));
                }
                let state = c.tcp.raw_state();
                if let Err(e) = c.tcp.track(from_initiator, &seg) {
                    return self.drop_in(tcp_drop(e), p, port, now, start);
                }
                if c.tcp.raw_state() != state {
                    // A standby learns of every state change at once.
                    c.sync_due = 0;
                }
                if c.flags & FLAG_HALF_OPEN != 0
                    && c.tcp.state() != ConnState::SynSent
                    && c.tcp.state() != ConnState::SynRecv
                {
                    self.settle_half_open(id);
                }
            }
            None => {}
        }
        let c = self.conns.get_mut(id);
        // Inspection, for a flag that asks for it or the first TCP or UDP payload.
        let first_payload = (c.app_proto == 0) & p.data;
        let v = if (c.flags & SLOW_FLAGS) | first_payload as u8 != 0 {
            self.inspect_packet(frame, p, port, id, from_initiator, seg, bases, now)
        } else {
            Verdict::Forward
        };
        if v == Verdict::Forward {
            let c = self.conns.get_mut(id);
            if c.count_due(from_initiator, len, now) {
                push_sync(&self.sync, &self.stats, c, self.sync_refresh, now);
            }
        }
        v
    }

    /// A frame without a connection: open one if it may and the policy allows.
    fn open(
        &mut self,
        frame: &[u8],
        p: &Pending,
        port: usize,
        seg: Option<Segment>,
        len: u32,
        now: u32,
    ) -> Verdict {
        if !self.verified(frame) {
            return self.drop_at(DropReason::BadChecksum, p, port, now);
        }
        let inbound = self.config.inside_ports.is_some_and(|inside| !inside[port]);
        let tracker = match (p.key.proto, seg) {
            (6, Some(seg)) => {
                match TcpTracker::open(&seg, self.config.tcp_pickup.allows(inbound)) {
                    Ok(t) => t,
                    Err(e) => return self.drop_at(tcp_drop(e), p, port, now),
                }
            }
            (1 | 58, _) if !p.icmp_opens => return self.drop_at(DropReason::NoState, p, port, now),
            _ => TcpTracker::default_for_other(),
        };
        // The policy judges the connection by its first packet, once. A TCP connection adopted
        // mid-stream from the outside is, in all likelihood, the answer half of one the inside
        // opened before we saw it (a restart): judge it as the inside endpoint's.
        let adopted_from_outside = inbound && p.key.proto == 6 && tracker.is_loose();
        let as_sent = p.lo_to_hi != adopted_from_outside;
        let inbound = inbound && !adopted_from_outside;
        let nc = NewConn {
            t: p.key.directed(as_sent),
            inbound,
        };
        let mut alerted = false;
        match self.policy.decide(&nc) {
            Decision::Allow => {}
            Decision::DefaultInbound => {
                return self.drop_at(DropReason::InboundDefault, p, port, now)
            }
            Decision::Blocklisted => return self.drop_at(DropReason::Blocklist, p, port, now),
            Decision::Rule(i, action) => {
                self.stats.rule_hits.0[i].inc();
                if let Some(v) = self.apply_rule(i, action, p, as_sent, port, now) {
                    return v;
                }
                alerted = action == RuleAction::Alert;
            }
        }
        // Only connections opened by a real SYN count as half-open (an adopted one is not).
        let half_open =
            p.key.proto == 6 && tracker.state() == ConnState::SynSent && !tracker.is_loose();
        let slot = source_slot(&initiator_addr(p.key, p.lo_to_hi), self.source_seed);
        if half_open
            && (self.half_open >= self.config.max_half_open
                || self.half_open_by_source[slot] >= self.config.max_half_open_per_source)
        {
            return self.drop_at(DropReason::HalfOpenLimit, p, port, now);
        }
        match self.conns.insert(&p.key, p.hash, p.lo_to_hi, tracker, now) {
            Ok(id) => {
                self.conns.get_mut(id).count(true, len, now);
                if alerted {
                    self.conns.get_mut(id).flags |= FLAG_ALERTED;
                }
                if half_open {
                    self.conns.get_mut(id).flags |= FLAG_HALF_OPEN;
                    self.half_open += 1;
                    self.half_open_by_source[slot] += 1;
                    self.stats.half_open.set(self.half_open as u64);
                }
                self.stats.flows_created.inc();
                self.stats.flows_active.set(self.conns.len() as u64);
                let v = if p.data {
                    // Data on the first packet: a UDP datagram, a SYN with Fast Open data.
                    // No earlier segment: the client's stream starts with this one.
                    self.inspect_packet(frame, p, port, id, true, seg, None, now)
                } else {
                    Verdict::Forward
                };
                let c = self.conns.get_mut(id);
                if v == Verdict::Forward && now >= c.sync_due {
                    push_sync(&self.sync, &self.stats, c, self.sync_refresh, now);
                }
                v
            }
            Err(TableFull) => self.drop_at(DropReason::TableFull, p, port, now),
        }
    }

    /// Whether a reject reply may be sent this second (the rest are only dropped, counted).
    fn take_reject_token(&mut self, now: u32) -> bool {
        if now != self.reject_second {
            self.reject_second = now;
            self.reject_tokens = self.config.rejects_per_sec;
        }
        if self.reject_tokens == 0 {
            self.stats.rejects_suppressed.inc();
            return false;
        }
        self.reject_tokens -= 1;
        true
    }

    /// The slow path of a connection's packet: its first payload (protocol detection and the
    /// start of inspection), a packet of a flow still in inspection, or of one inspection
    /// stopped. The caller counts the packet when it passes.
    #[allow(clippy::too_many_arguments)]
    #[cold]
    fn inspect_packet(
        &mut self,
        frame: &[u8],
        p: &Pending,
        port: usize,
        id: ConnId,
        from_initiator: bool,
        seg: Option<Segment>,
        bases: Option<(u32, Option<u32>)>,
        now: u32,
    ) -> Verdict {
        let c = self.conns.get_mut(id);
        if c.flags & FLAG_SYNCED != 0 {
            // The first packet here of a flow synced from the old active: it is ours now.
            c.flags &= !FLAG_SYNCED;
        }
        if c.flags & FLAG_BLOCKED != 0 {
            // A RST still passes: it only tears down what inspection stopped anyway.
            if seg.is_some_and(|s| s.flags & 0x04 != 0) {
                return Verdict::Forward;
            }
            let start = c.created;
            return self.drop_in(DropReason::Inspection, p, port, now, start);
        }
        if !p.data {
            return Verdict::Forward;
        }
        let start = p.payload_offset as usize;
        let payload = frame
            .get(start..start + p.payload_len as usize)
            .unwrap_or(&[]);
        let udp = p.key.proto == 17;
        // The payload's first sequence number (a SYN takes one).
        let seq = seg.map_or(0, |s| s.seq.wrapping_add((s.flags & 0x02 != 0) as u32));
        let pol = &self.policy.inspect;
        if c.app_proto == 0 {
            let proto = detect_app(frame, p);
            c.app_proto = proto.code();
            // A connection adopted mid-stream (pickup): which end is the server is a guess, so
            // port checks would misfire, unless its first payload is a ClientHello, which only
            // a client sends (a capture that begins with one).
            let hello_first = from_initiator
                && payload.len() >= 6
                && ((payload[0] == 22 && payload[1] == 3 && payload[5] == 1)
                    || (payload[0] & 0x80 != 0 && payload[2] == 1));
            if !pol.enabled || (c.tcp.is_loose() && !hello_first) {
                return Verdict::Forward;
            }
            self.stats.inspected.inc();
            let server_port = c.key().directed(c.initiator_is_lo()).dst_port;
            let mut fired = Fired::default();
            pol.check_protocol(proto, server_port, udp, &mut fired);
            let blocked = pol.verdict(fired).is_some_and(|(_, a)| a.blocks());
            let hello = from_initiator
                && ((proto == AppProto::Tls && !udp) || (proto == AppProto::Quic && udp));
            // A blocked QUIC flow is still read (its packets dropped) until its hello is.
            if hello && (!blocked || proto == AppProto::Quic) {
                // For TCP, the client's stream continues where the tracker says (bases), or, on
                // a connection's first packet, with this segment.
                let bases = if udp {
                    None
                } else {
                    Some(bases.unwrap_or((seq, c.tcp.next_seq(false))))
                };
                if let Some(slot) = self.inspector.start(proto, fired, id.index(), now, bases) {
                    c.insp = slot;
                    c.flags |= FLAG_INSPECT;
                    self.stats.inspecting.set(self.inspector.in_use() as u64);
                    return self.feed(frame, p, port, id, from_initiator, seq, now);
                }
                overloaded(&self.stats, pol, &mut fired);
            }
            // Server-first protocols and the unknown may turn to TLS later (STARTTLS, RDP).
            if !udp
                && !blocked
                && matches!(
                    proto,
                    AppProto::Smtp | AppProto::Imap | AppProto::Pop3 | AppProto::Unknown
                )
            {
                c.flags |= FLAG_WATCH;
            }
            return self.conclude(p, port, id, fired, None, now);
        }
        if c.flags & FLAG_INSPECT != 0 {
            return self.feed(frame, p, port, id, from_initiator, seq, now);
        }
        if c.flags & FLAG_WATCH != 0 {
            let seen: u64 = c.packets().iter().sum();
            if from_initiator && payload.len() >= 6 && payload[0] == 22 && payload[1] == 3 {
                // A handshake record after the cleartext part: the upgrade to TLS.
                c.flags &= !FLAG_WATCH;
                if !pol.enabled {
                    return Verdict::Forward;
                }
                if let Some(slot) = self.inspector.start(
                    AppProto::Tls,
                    Fired::default(),
                    id.index(),
                    now,
                    Some((seq, c.tcp.next_seq(false))),
                ) {
                    c.insp = slot;
                    c.flags |= FLAG_INSPECT;
                    self.stats.inspecting.set(self.inspector.in_use() as u64);
                    return self.feed(frame, p, port, id, from_initiator, seq, now);
                }
                let mut fired = Fired::default();
                overloaded(&self.stats, pol, &mut fired);
                return self.conclude(p, port, id, fired, None, now);
            } else if seen >= WATCH_PACKETS {
                c.flags &= !FLAG_WATCH;
            }
        }
        Verdict::Forward
    }

    /// Concludes the flows whose handshake has been in inspection too long (an unanswered
    /// hello): what was found is reported, a blocking verdict applies, the slot is freed.
    fn sweep_inspection(&mut self, now: u32) {
        loop {
            let mut stale = [(0u16, 0u32); 64];
            let mut n = 0;
            self.inspector.sweep(now, |slot, conn| {
                if n < stale.len() {
                    stale[n] = (slot, conn);
                    n += 1;
                }
            });
            self.conclude_stale(&stale[..n], now);
            if n < stale.len() {
                return;
            }
        }
    }

    fn conclude_stale(&mut self, stale: &[(u16, u32)], now: u32) {
        let want = self.events.is_some();
        for &(slot, conn) in stale {
            let id = ConnId::from_index(conn);
            let c = self.conns.get(id);
            if !(c.is_live() && c.insp == slot) {
                self.inspector.release(slot);
                continue;
            }
            let (evs, fired) = settle(
                &mut self.inspector,
                &self.policy.inspect,
                &self.stats,
                c,
                now,
                want,
            );
            for ev in evs {
                self.emit(ev);
            }
            let blocks = self.policy.inspect.verdict(fired);
            let c = self.conns.get_mut(id);
            c.insp = 0;
            c.flags &= !FLAG_INSPECT;
            if blocks.is_some() {
                c.flags |= FLAG_ALERTED;
            }
            if let Some((check, action)) = blocks.filter(|(_, a)| a.blocks()) {
                let _ = action;
                c.flags |= FLAG_BLOCKED;
                self.stats.checks_blocked[check.index()].inc();
            }
            push_sync(&self.sync, &self.stats, c, self.sync_refresh, now);
        }
    }

    /// Feeds a packet to the flow's inspection; concludes when the verdict is final.
    #[allow(clippy::too_many_arguments)]
    fn feed(
        &mut self,
        frame: &[u8],
        p: &Pending,
        port: usize,
        id: ConnId,
        from_initiator: bool,
        seq: u32,
        now: u32,
    ) -> Verdict {
        let c = self.conns.get_mut(id);
        let slot = c.insp;
        let start = p.payload_offset as usize;
        let payload = frame
            .get(start..start + p.payload_len as usize)
            .unwrap_or(&[]);
        let view = PacketView {
            from_client: from_initiator,
            seq,
        };
        let unix = now as i64 + self.config.unix_offset;
        match self
            .inspector
            .feed(slot, &self.policy.inspect, view, payload, unix)
        {
            Progress::More if self.inspector.blocks(slot, &self.policy.inspect) => {
                let start = self.conns.get(id).created;
                self.drop_in(DropReason::Inspection, p, port, now, start)
            }
            Progress::More => Verdict::Forward,
            Progress::Final => {
                let r = self.inspector.take_report(slot, &self.policy.inspect);
                self.inspector.release(slot);
                let c = self.conns.get_mut(id);
                c.insp = 0;
                c.flags &= !FLAG_INSPECT;
                self.stats.inspecting.set(self.inspector.in_use() as u64);
                self.conclude(p, port, id, r.fired, r.meta, now)
            }
        }
    }

    /// A flow's inspection is over: report what it found and apply the strongest action.
    fn conclude(
        &mut self,
        p: &Pending,
        port: usize,
        id: ConnId,
        fired: Fired,
        meta: Option<Box<TlsMeta>>,
        now: u32,
    ) -> Verdict {
        let pol = &self.policy.inspect;
        let c = self.conns.get(id);
        let want = self.events.is_some();
        let events = inspection_events(pol, &self.stats, c, fired, meta, now, want);
        for ev in events {
            self.emit(ev);
        }
        let verdict = self.policy.inspect.verdict(fired);
        let c = self.conns.get_mut(id);
        if verdict.is_some() {
            c.flags |= FLAG_ALERTED;
        }
        if verdict.is_some_and(|(_, a)| a.blocks()) {
            // Final: the standby learns it now (a blocked flow stays blocked there; this packet
            // is dropped, so the check after counting would not run).
            c.flags |= FLAG_BLOCKED;
            push_sync(&self.sync, &self.stats, c, self.sync_refresh, now);
        } else {
            // Final: the packet's caller pushes it after counting the packet.
            c.sync_due = c.sync_due.min(now);
        }
        match verdict {
            Some((check, action)) if action.blocks() => {
                c.flags &= !FLAG_WATCH;
                self.stats.checks_blocked[check.index()].inc();
                if action == CheckAction::Reject && self.take_reject_token(now) {
                    self.stats.drop_packet(DropReason::Inspection);
                    if p.key.proto == 6 {
                        Verdict::ResetBoth
                    } else {
                        Verdict::Reject
                    }
                } else {
                    let start = self.conns.get(id).created;
                    self.drop_in(DropReason::Inspection, p, port, now, start)
                }
            }
            _ => Verdict::Forward,
        }
    }

    /// A half-open connection established, closed or is going: it no longer counts.
    fn settle_half_open(&mut self, id: ConnId) {
        let c = self.conns.get_mut(id);
        if c.flags & FLAG_HALF_OPEN == 0 {
            return;
        }
        c.flags &= !FLAG_HALF_OPEN;
        let src = initiator_addr(c.key(), c.initiator_is_lo());
        self.half_open -= 1;
        let s = &mut self.half_open_by_source[source_slot(&src, self.source_seed)];
        *s = s.saturating_sub(1);
        self.stats.half_open.set(self.half_open as u64);
    }

    #[inline(always)]
    fn drop(&self, reason: DropReason) -> Verdict {
        self.stats.drop_packet(reason);
        Verdict::Drop(reason)
    }

    /// Counts a drop of a frame of connection `p` and reports it, within the per-second budget.
    #[inline]
    fn drop_at(&mut self, reason: DropReason, p: &Pending, port: usize, now: u32) -> Verdict {
        self.drop_event(reason, p, port, (now, now), None);
        self.drop(reason)
    }

    /// `drop_at` for a packet of a connection that started at `start`.
    fn drop_in(
        &mut self,
        reason: DropReason,
        p: &Pending,
        port: usize,
        now: u32,
        start: u32,
    ) -> Verdict {
        self.drop_event(reason, p, port, (now, start), None);
        self.drop(reason)
    }

    /// Reports a drop (`times`: now, and its connection's start), within the per-second budget.
    fn drop_event(
        &mut self,
        reason: DropReason,
        p: &Pending,
        port: usize,
        (now, start): (u32, u32),
        rule: Option<RuleRef>,
    ) {
        if self.events.is_none() {
            return;
        }
        if now != self.drop_second {
            self.drop_second = now;
            self.drop_tokens = self.config.drop_events_per_sec;
        }
        if self.drop_tokens == 0 {
            self.stats.drop_events_suppressed.inc();
            return;
        }
        self.drop_tokens -= 1;
        let icmp = matches!(p.key.proto, protocol::ICMP | protocol::ICMPV6).then_some(p.icmp);
        self.emit(Event::Drop(DropRecord {
            time: now,
            reason,
            port: port as u8,
            tuple: Some(p.key.directed(p.lo_to_hi)),
            start,
            icmp,
            rule,
        }));
    }

    /// What rule `i`'s action does to the new connection `p` (opened `as_sent`): a verdict that
    /// ends it (drop, reject), or None to open it (allow, alert). Every action but allow is an
    /// event naming the rule.
    fn apply_rule(
        &mut self,
        i: usize,
        action: RuleAction,
        p: &Pending,
        as_sent: bool,
        port: usize,
        now: u32,
    ) -> Option<Verdict> {
        let rule = || RuleRef {
            name: self.policy.rules[i].name.clone(),
            action,
        };
        match action {
            RuleAction::Allow => None,
            RuleAction::Alert => {
                self.stats.alerts.inc();
                if self.events.is_some() {
                    let flow = FlowRef {
                        key: p.key,
                        initiator_is_lo: as_sent,
                        start: now,
                    };
                    let rule = rule();
                    self.emit(Event::RuleAlert(RuleAlertRecord {
                        time: now,
                        flow,
                        rule,
                    }));
                }
                None
            }
            RuleAction::Drop | RuleAction::Reject => {
                let r = self.events.is_some().then(rule);
                self.drop_event(DropReason::Rule, p, port, (now, now), r);
                if action == RuleAction::Reject && self.take_reject_token(now) {
                    self.stats.drop_packet(DropReason::Rule);
                    return Some(Verdict::Reject);
                }
                Some(self.drop(DropReason::Rule))
            }
        }
    }
}

/// `Conn::flags` bits: counted as half-open; allowed by an alert rule (or an inspection check
/// alerted); in inspection; stopped by inspection; watching for a later upgrade to TLS.
const FLAG_HALF_OPEN: u8 = 1;
const FLAG_ALERTED: u8 = 2;
const FLAG_INSPECT: u8 = 4;
const FLAG_BLOCKED: u8 = 8;
const FLAG_WATCH: u8 = 16;
/// Synced from the HA peer and not seen here since: the peer reports its end.
const FLAG_SYNCED: u8 = 32;
/// Flags that send a connection's packets to the slow path.
const SLOW_FLAGS: u8 = FLAG_INSPECT | FLAG_BLOCKED | FLAG_WATCH | FLAG_SYNCED;

/// Whether a connection is worth a standby's room: not a half-open TCP connection (a SYN flood
/// must not flood the HA link; a handshake cut by a failover is retried by its client).
#[inline]
fn sync_eligible(c: &Conn) -> bool {
    c.proto() != 6 || !matches!(c.tcp.state(), ConnState::SynSent | ConnState::SynRecv)
}

/// Pushes a connection's state to the HA sync queue and sets when it is due again: after
/// `refresh` seconds, or, when the queue was full (counted as lost), on its first packet in the
/// next second. With sync off it only marks the connection never due.
#[cold]
fn push_sync(
    q: &Option<Arc<SyncQueue>>,
    stats: &WorkerStats,
    c: &mut Conn,
    refresh: u32,
    now: u32,
) {
    let Some(q) = q else {
        c.sync_due = u32::MAX;
        return;
    };
    if !sync_eligible(c) || c.flags & FLAG_SYNCED != 0 {
        return;
    }
    let ev = SyncEvent {
        op: SyncOp::Update,
        state: FlowState::of(c, now),
    };
    if q.push(ev).is_ok() {
        stats.sync_pushed.inc();
        c.sync_due = now.saturating_add(refresh);
    } else {
        stats.sync_lost.inc();
        c.sync_due = now.saturating_add(1);
    }
}
/// Packets of a cleartext flow during which a TLS upgrade (STARTTLS) is looked for.
const WATCH_PACKETS: u64 = 32;

/// No inspection slot was free for a flow: counted, and the `inspection_overload` check fires
/// (its action says whether inspection fails open or closed).
#[cold]
fn overloaded(stats: &WorkerStats, pol: &InspectPolicy, fired: &mut Fired) {
    stats.inspect_no_slot.inc();
    if pol.action(Check::InspectionOverload) != CheckAction::Allow {
        fired.set(Check::InspectionOverload);
    }
}

/// Ends the inspection of a flow that goes away while still in it (a hello never answered):
/// its slot is freed and what was found is reported.
fn settle(
    inspector: &mut Inspector,
    pol: &InspectPolicy,
    stats: &WorkerStats,
    c: &Conn,
    now: u32,
    want: bool,
) -> (Vec<Event>, Fired) {
    let r = inspector.take_report(c.insp, pol);
    inspector.release(c.insp);
    stats.inspecting.set(inspector.in_use() as u64);
    (
        inspection_events(pol, stats, c, r.fired, r.meta, now, want),
        r.fired,
    )
}

/// The events of a flow's concluded inspection: its handshake (`tls`/`quic`) and one alert per
/// fired check; counts them.
fn inspection_events(
    pol: &InspectPolicy,
    stats: &WorkerStats,
    c: &Conn,
    fired: Fired,
    meta: Option<Box<TlsMeta>>,
    now: u32,
    want: bool,
) -> Vec<Event> {
    let flow = FlowRef {
        key: c.key(),
        initiator_is_lo: c.initiator_is_lo(),
        start: c.created,
    };
    let mut out = Vec::new();
    if let Some(m) = &meta {
        if m.client.is_some() {
            stats.client_hellos.inc();
        }
        if m.malformed {
            stats.malformed_hellos.inc();
        }
    }
    for check in fired.iter() {
        stats.checks_fired[check.index()].inc();
    }
    if !want {
        // Nobody reads events: counted, nothing built.
        return out;
    }
    let sni = meta.as_ref().and_then(|m| {
        m.client
            .as_ref()
            .and_then(|ch| ch.sni_str())
            .or_else(|| m.sni_early.clone())
    });
    if let Some(m) = meta {
        out.push(Event::Tls(Box::new(TlsRecord {
            time: now,
            flow,
            meta: *m,
        })));
    }
    for check in fired.iter() {
        out.push(Event::Alert(Box::new(AlertRecord {
            time: now,
            flow,
            check,
            action: pol.action(check),
            app_proto: AppProto::from_code(c.app_proto).map(AppProto::name),
            sni: sni.clone(),
        })));
    }
    out
}

fn flow_record(c: &Conn, end: u32, reason: FlowEnd) -> FlowRecord {
    FlowRecord {
        key: c.key(),
        initiator_is_lo: c.initiator_is_lo(),
        packets: c.packets(),
        bytes: c.bytes(),
        start: c.created,
        end,
        state: if c.proto() == 6 {
            c.tcp.state().name()
        } else if c.simple() == SimpleState::Replied {
            "established"
        } else {
            "new"
        },
        reason,
        alerted: c.flags & FLAG_ALERTED != 0,
        blocked: c.flags & FLAG_BLOCKED != 0,
        app_proto: AppProto::from_code(c.app_proto).map(AppProto::name),
    }
}
/// Slots of the per-source half-open counters (128 KiB per worker).
const HALF_OPEN_SOURCES: usize = 1 << 16;

fn initiator_addr(key: FlowKey, initiator_is_lo: bool) -> [u8; 16] {
    if initiator_is_lo {
        key.lo_addr
    } else {
        key.hi_addr
    }
}

#[inline(always)]
fn source_slot(addr: &[u8; 16], seed: u64) -> usize {
    let a = u128::from_le_bytes(*addr);
    // Seeded, so nobody can aim colliding addresses at a victim's slot.
    let h = ((a as u64) ^ ((a >> 64) as u64) ^ seed).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (h >> 48) as usize & (HALF_OPEN_SOURCES - 1)
}

/// The protocol of a connection's first payload (TCP or UDP framing by the key's protocol).
fn detect_app(frame: &[u8], p: &Pending) -> AppProto {
    let start = p.payload_offset as usize;
    let payload = frame
        .get(start..start + p.payload_len as usize)
        .unwrap_or(&[]);
    match p.key.proto {
        6 => detect_tcp(payload),
        17 => detect_udp(payload),
        _ => AppProto::Unknown,
    }
}

fn tcp_drop(e: TcpReject) -> DropReason {
    match e {
        TcpReject::InvalidFlags => DropReason::InvalidFlags,
        TcpReject::OutOfWindow => DropReason::OutOfWindow,
        TcpReject::NotSyn => DropReason::NoState,
    }
}

enum IcmpKind {
    /// Destination unreachable, time exceeded, parameter problem, packet too big...: passes
    /// only as related to the connection it quotes.
    Error,
    /// Echo request and other requests: may open a pseudo-connection (keyed by identifier).
    Opens,
    /// Echo reply: only within a connection an echo request opened.
    Reply,
    /// Never passes.
    Refused,
    /// ICMPv6 neighbour discovery and multicast listener messages (RFC 4861, RFC 3810): the
    /// link layer of IPv6, like ARP for IPv4; an advertisement answers a multicast solicitation,
    /// so it could never match a connection.
    LinkControl,
}

fn icmp_kind(p: &ParsedPacket) -> Option<IcmpKind> {
    let t = p.icmp_type;
    Some(match p.l3 {
        L3::Ipv4 => match t {
            3 | 11 | 12 => IcmpKind::Error,
            // Source quench (deprecated, RFC 6633) and redirect: a router's business on its own
            // link, never to be relayed across a firewall.
            4 | 5 => IcmpKind::Refused,
            0 => IcmpKind::Reply,
            _ => IcmpKind::Opens,
        },
        L3::Ipv6 => match t {
            1..=4 => IcmpKind::Error,
            129 => IcmpKind::Reply,
            130..=137 | 143 => IcmpKind::LinkControl,
            _ => IcmpKind::Opens,
        },
        L3::Other => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::ParseError;

    const CLIENT: [u8; 4] = [10, 0, 0, 1];
    const SERVER: [u8; 4] = [192, 0, 2, 1];

    fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, l4: &[u8]) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
        let total = (20 + l4.len()) as u16;
        f.extend_from_slice(&[0x45, 0]);
        f.extend_from_slice(&total.to_be_bytes());
        f.extend_from_slice(&[0, 1, 0x40, 0, 64, proto, 0, 0]);
        f.extend_from_slice(&src);
        f.extend_from_slice(&dst);
        f.extend_from_slice(l4);
        crate::verify::fill_checksums(&mut f);
        f
    }

    /// Ethernet + IPv4 + TCP, with real checksums (the engine verifies them off the fast path).
    fn tcp(src: [u8; 4], sp: u16, dst: [u8; 4], dp: u16, seq: u32, ack: u32, flags: u8) -> Vec<u8> {
        let mut t = Vec::new();
        t.extend_from_slice(&sp.to_be_bytes());
        t.extend_from_slice(&dp.to_be_bytes());
        t.extend_from_slice(&seq.to_be_bytes());
        t.extend_from_slice(&ack.to_be_bytes());
        t.extend_from_slice(&[0x50, flags, 0xfa, 0xf0, 0, 0, 0, 0]);
        ipv4(src, dst, 6, &t)
    }

    fn udp(src: [u8; 4], sp: u16, dst: [u8; 4], dp: u16, payload: &[u8]) -> Vec<u8> {
        let mut u = Vec::new();
        u.extend_from_slice(&sp.to_be_bytes());
        u.extend_from_slice(&dp.to_be_bytes());
        u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        u.extend_from_slice(&[0, 0]);
        u.extend_from_slice(payload);
        ipv4(src, dst, 17, &u)
    }

    fn icmp(src: [u8; 4], dst: [u8; 4], ty: u8, code: u8, rest: [u8; 4], data: &[u8]) -> Vec<u8> {
        let mut m = vec![ty, code, 0, 0];
        m.extend_from_slice(&rest);
        m.extend_from_slice(data);
        ipv4(src, dst, 1, &m)
    }

    /// A real ARP request (who-has 10.99.0.2 tell 10.99.0.1), from the bundled lab capture.
    const ARP: [u8; 42] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x0a, 0x63, 0x00, 0x01, 0x08, 0x06, 0x00,
        0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x02, 0x00, 0x0a, 0x63, 0x00, 0x01, 0x0a, 0x63,
        0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x63, 0x00, 0x02,
    ];
    const SYN: u8 = 0x02;
    const ACK: u8 = 0x10;
    const RST: u8 = 0x04;

    fn engine(cfg: EngineConfig) -> Engine {
        Engine::new(cfg, Arc::new(WorkerStats::default()))
    }

    fn zoned() -> EngineConfig {
        let mut inside = [false; MAX_PORTS];
        inside[0] = true;
        EngineConfig {
            inside_ports: Some(inside),
            ..EngineConfig::default()
        }
    }

    /// SYN, SYN-ACK, ACK between CLIENT:40000 (inside, port 0) and SERVER:443 (port 1).
    fn handshake(e: &mut Engine) {
        assert_eq!(
            e.process(&tcp(CLIENT, 40000, SERVER, 443, 100, 0, SYN), 0, 1),
            Verdict::Forward
        );
        assert_eq!(
            e.process(&tcp(SERVER, 443, CLIENT, 40000, 900, 101, SYN | ACK), 1, 1),
            Verdict::Forward
        );
        assert_eq!(
            e.process(&tcp(CLIENT, 40000, SERVER, 443, 101, 901, ACK), 0, 1),
            Verdict::Forward
        );
    }

    #[test]
    fn a_connection_opened_inside_passes_both_ways() {
        let mut e = engine(zoned());
        handshake(&mut e);
        assert_eq!(e.stats().flows_created.get(), 1);
        assert_eq!(
            e.process(&tcp(SERVER, 443, CLIENT, 40000, 901, 101, ACK), 1, 2),
            Verdict::Forward
        );
        assert_eq!(e.stats().drops_total(), 0);
    }

    #[test]
    fn a_connection_opened_outside_is_refused() {
        let mut e = engine(zoned());
        let syn = tcp(SERVER, 5555, CLIENT, 22, 7, 0, SYN);
        assert_eq!(
            e.process(&syn, 1, 1),
            Verdict::Drop(DropReason::InboundDefault)
        );
        assert_eq!(
            e.process(&udp(SERVER, 53, CLIENT, 5353, b"x"), 1, 1),
            Verdict::Drop(DropReason::InboundDefault)
        );
        assert_eq!(e.stats().flows_created.get(), 0);
        // The same SYN from inside opens.
        assert_eq!(
            e.process(&tcp(CLIENT, 22, SERVER, 5555, 7, 0, SYN), 0, 1),
            Verdict::Forward
        );
    }

    #[test]
    fn tcp_without_state_is_dropped_unless_picked_up() {
        let mut e = engine(zoned());
        let mid = tcp(CLIENT, 40001, SERVER, 443, 5000, 7000, ACK);
        assert_eq!(e.process(&mid, 0, 1), Verdict::Drop(DropReason::NoState));
        let mut loose = engine(EngineConfig {
            tcp_pickup: Pickup {
                inside: true,
                outside: false,
            },
            ..zoned()
        });
        assert_eq!(loose.process(&mid, 0, 1), Verdict::Forward);
        assert_eq!(
            loose.process(&tcp(SERVER, 443, CLIENT, 40001, 7000, 5000, ACK), 1, 1),
            Verdict::Forward
        );
    }

    #[test]
    fn out_of_window_rst_is_dropped_in_window_rst_passes() {
        let mut e = engine(zoned());
        handshake(&mut e);
        let blind = tcp(SERVER, 443, CLIENT, 40000, 900 + 5_000_000, 0, RST);
        assert_eq!(
            e.process(&blind, 1, 2),
            Verdict::Drop(DropReason::OutOfWindow)
        );
        assert_eq!(
            e.process(&tcp(CLIENT, 40000, SERVER, 443, 101, 901, ACK), 0, 2),
            Verdict::Forward
        );
        assert_eq!(
            e.process(&tcp(SERVER, 443, CLIENT, 40000, 901, 0, RST), 1, 2),
            Verdict::Forward
        );
    }

    #[test]
    fn invalid_flags_are_dropped() {
        let mut e = engine(zoned());
        let xmas = tcp(CLIENT, 1, SERVER, 2, 0, 0, 0x29);
        assert_eq!(
            e.process(&xmas, 0, 1),
            Verdict::Drop(DropReason::InvalidFlags)
        );
    }

    #[test]
    fn icmp_echo_pairs_and_errors_relate() {
        let mut e = engine(zoned());
        let req = icmp(CLIENT, SERVER, 8, 0, [0x12, 0x34, 0, 1], b"ping");
        let rep = icmp(SERVER, CLIENT, 0, 0, [0x12, 0x34, 0, 1], b"ping");
        assert_eq!(
            e.process(&rep, 1, 1),
            Verdict::Drop(DropReason::NoState),
            "reply before request"
        );
        assert_eq!(e.process(&req, 0, 1), Verdict::Forward);
        assert_eq!(e.process(&rep, 1, 1), Verdict::Forward);

        // A UDP flow, then a port unreachable from the server quoting it: related.
        let dns = udp(CLIENT, 5353, SERVER, 53, b"query");
        assert_eq!(e.process(&dns, 0, 1), Verdict::Forward);
        let quoted = &dns[14..14 + 28];
        let unreach = icmp(SERVER, CLIENT, 3, 3, [0; 4], quoted);
        assert_eq!(e.process(&unreach, 1, 1), Verdict::Forward);
        assert_eq!(e.stats().related.get(), 1);
        // Quoting a flow that never existed: refused.
        let other = udp(CLIENT, 6000, SERVER, 53, b"query");
        let stray = icmp(SERVER, CLIENT, 3, 3, [0; 4], &other[14..14 + 28]);
        assert_eq!(e.process(&stray, 1, 1), Verdict::Drop(DropReason::NoState));
    }

    #[test]
    fn a_full_table_refuses_new_connections_and_keeps_old_ones() {
        let mut e = engine(EngineConfig {
            flow_capacity: 2,
            ..zoned()
        });
        for port in [1000u16, 1001] {
            assert_eq!(
                e.process(&udp(CLIENT, port, SERVER, 53, b"q"), 0, 1),
                Verdict::Forward
            );
        }
        assert_eq!(
            e.process(&udp(CLIENT, 1002, SERVER, 53, b"q"), 0, 1),
            Verdict::Drop(DropReason::TableFull)
        );
        for port in [1000u16, 1001] {
            assert_eq!(
                e.process(&udp(SERVER, 53, CLIENT, port, b"a"), 1, 1),
                Verdict::Forward
            );
        }
    }

    #[test]
    fn idle_connections_expire() {
        let mut e = engine(zoned());
        assert_eq!(
            e.process(&udp(CLIENT, 1000, SERVER, 53, b"q"), 0, 10),
            Verdict::Forward
        );
        e.expire(10 + Timeouts::default().udp_first + 1);
        assert_eq!(e.stats().flows_expired.get(), 1);
        assert_eq!(
            e.process(&udp(SERVER, 53, CLIENT, 1000, b"a"), 1, 50),
            Verdict::Drop(DropReason::InboundDefault)
        );
    }

    #[test]
    fn malformed_frames_are_dropped_and_named() {
        let mut e = engine(EngineConfig::default());
        let mut f = tcp(CLIENT, 1, SERVER, 2, 0, 0, SYN);
        f.truncate(30); // cut inside the IPv4 header
        assert_eq!(e.process(&f, 0, 1), Verdict::Drop(DropReason::Malformed));
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
        assert_eq!(lenient.process(&f, 0, 1), Verdict::Forward);
    }

    #[test]
    fn arp_crosses_unless_policy_drops_non_ip() {
        let mut e = engine(zoned());
        assert_eq!(e.process(&ARP, 1, 1), Verdict::Forward);
        assert_eq!(e.stats().non_ip.get(), 1);
        assert_eq!(e.stats().flows_created.get(), 0);
        let mut strict = engine(EngineConfig {
            non_ip: Action::Drop,
            ..EngineConfig::default()
        });
        assert_eq!(strict.process(&ARP, 0, 1), Verdict::Drop(DropReason::NonIp));
    }

    #[test]
    fn burst_and_single_frames_agree() {
        let mut frames: Vec<(Vec<u8>, usize)> = Vec::new();
        for i in 0..8u16 {
            frames.push((ARP.to_vec(), 1));
            frames.push((tcp(CLIENT, 1000 + i, SERVER, 443, 10, 0, SYN), 0));
            frames.push((tcp(SERVER, 443, CLIENT, 1000 + i, 50, 11, SYN | ACK), 1));
            frames.push((tcp(SERVER, 9, CLIENT, 1000 + i, 1, 0, SYN), 1)); // inbound: refused
        }
        let views: Vec<&[u8]> = frames.iter().map(|(f, _)| f.as_slice()).collect();
        let ports: Vec<usize> = frames.iter().map(|(_, p)| *p).collect();
        let mut burst_verdicts = [Verdict::Forward; 32];
        let mut a = engine(zoned());
        a.process_burst(&views, &ports, &mut burst_verdicts, 1);
        let mut b = engine(zoned());
        for (i, f) in views.iter().enumerate() {
            assert_eq!(b.process(f, ports[i], 1), burst_verdicts[i], "frame {i}");
        }
        assert_eq!(a.stats().flows_created.get(), 8);
        assert_eq!(b.stats().flows_created.get(), 8);
        assert_eq!(a.stats().drops_total(), 8);
    }

    #[test]
    fn a_syn_flood_fills_the_half_open_room_not_the_established_one() {
        let mut e = engine(EngineConfig {
            flow_capacity: 1000,
            max_half_open: 100,
            max_half_open_per_source: 40,
            ..zoned()
        });
        handshake(&mut e);
        // 40 SYNs from one source: the per-source limit stops the 41st.
        for p in 0..41u16 {
            let v = e.process(&tcp([10, 0, 0, 9], 2000 + p, SERVER, 80, 1, 0, SYN), 0, 1);
            assert_eq!(
                v,
                if p < 40 {
                    Verdict::Forward
                } else {
                    Verdict::Drop(DropReason::HalfOpenLimit)
                }
            );
        }
        // Many sources: the per-worker limit (100 half-open in all) stops the rest.
        let mut refused = 0;
        for n in 0..500u32 {
            let src = [10, 1, (n >> 8) as u8, n as u8];
            if e.process(&tcp(src, 3000, SERVER, 80, 1, 0, SYN), 0, 1)
                == Verdict::Drop(DropReason::HalfOpenLimit)
            {
                refused += 1;
            }
        }
        assert_eq!(e.stats().half_open.get(), 100);
        assert_eq!(refused, 500 - 60);
        // The established connection is untouched.
        assert_eq!(
            e.process(&tcp(SERVER, 443, CLIENT, 40000, 901, 101, ACK), 1, 2),
            Verdict::Forward
        );
        // Half-open entries expire fast and free the room.
        e.expire(1 + Timeouts::default().tcp_syn_sent + 1);
        assert_eq!(e.stats().half_open.get(), 0);
        assert_eq!(
            e.process(&tcp([10, 0, 0, 9], 5000, SERVER, 80, 1, 0, SYN), 0, 40),
            Verdict::Forward
        );
    }

    #[test]
    fn completed_handshakes_leave_the_half_open_count() {
        let mut e = engine(zoned());
        handshake(&mut e);
        assert_eq!(e.stats().half_open.get(), 0);
        assert_eq!(
            e.process(&tcp(CLIENT, 40001, SERVER, 443, 5, 0, SYN), 0, 1),
            Verdict::Forward
        );
        assert_eq!(e.stats().half_open.get(), 1);
        assert_eq!(
            e.process(&tcp(SERVER, 443, CLIENT, 40001, 70, 6, SYN | ACK), 1, 1),
            Verdict::Forward
        );
        assert_eq!(
            e.stats().half_open.get(),
            1,
            "SYN received is still half-open"
        );
        assert_eq!(
            e.process(&tcp(CLIENT, 40001, SERVER, 443, 6, 71, ACK), 0, 1),
            Verdict::Forward
        );
        assert_eq!(e.stats().half_open.get(), 0);
    }

    #[test]
    fn pickup_is_per_zone() {
        let mid_out = tcp(SERVER, 443, CLIENT, 40001, 7000, 5000, ACK);
        let mid_in = tcp(CLIENT, 40001, SERVER, 443, 5000, 7000, ACK);
        let inside_only = Pickup {
            inside: true,
            outside: false,
        };
        let mut e = engine(EngineConfig {
            tcp_pickup: inside_only,
            ..zoned()
        });
        assert_eq!(
            e.process(&mid_out, 1, 1),
            Verdict::Drop(DropReason::NoState)
        );
        assert_eq!(e.process(&mid_in, 0, 1), Verdict::Forward);
        // Outside pickup adopts the server's half of a connection the inside opened before.
        let mut both = engine(EngineConfig {
            tcp_pickup: Pickup {
                inside: true,
                outside: true,
            },
            ..zoned()
        });
        assert_eq!(both.process(&mid_out, 1, 1), Verdict::Forward);
        assert_eq!(both.process(&mid_in, 0, 1), Verdict::Forward);
    }

    #[test]
    fn forged_icmp_errors_are_refused() {
        let mut e = engine(zoned());
        let dns = udp(CLIENT, 5353, SERVER, 53, b"query");
        assert_eq!(e.process(&dns, 0, 1), Verdict::Forward);
        let quoted = &dns[14..14 + 28];
        // Aimed at another inside host than the quoted packet's sender.
        let elsewhere = icmp(SERVER, [10, 0, 0, 99], 3, 3, [0; 4], quoted);
        assert_eq!(
            e.process(&elsewhere, 1, 1),
            Verdict::Drop(DropReason::NoState)
        );
        // A redirect never crosses.
        let redirect = icmp(SERVER, CLIENT, 5, 1, [0; 4], quoted);
        assert_eq!(
            e.process(&redirect, 1, 1),
            Verdict::Drop(DropReason::NoState)
        );
        // A TCP connection: an error quoting a sequence number far from the window is refused,
        // one quoting the real one passes.
        handshake(&mut e);
        let seg = |seq: u32| tcp(CLIENT, 40000, SERVER, 443, seq, 901, ACK);
        let guessed = icmp(
            SERVER,
            CLIENT,
            3,
            4,
            [0, 0, 0x05, 0xdc],
            &seg(101 + (1 << 30))[14..14 + 28],
        );
        assert_eq!(
            e.process(&guessed, 1, 2),
            Verdict::Drop(DropReason::NoState)
        );
        let real = icmp(
            SERVER,
            CLIENT,
            3,
            4,
            [0, 0, 0x05, 0xdc],
            &seg(101)[14..14 + 28],
        );
        assert_eq!(e.process(&real, 1, 2), Verdict::Forward);
    }

    /// A ClientHello record (TLS 1.2, two ciphers, an SNI extension) for `name`.
    fn client_hello(name: &str) -> Vec<u8> {
        let mut sni = vec![0, 0];
        let list_len = (name.len() + 3) as u16;
        sni.extend_from_slice(&(list_len + 2).to_be_bytes());
        sni.extend_from_slice(&list_len.to_be_bytes());
        sni.push(0);
        sni.extend_from_slice(&(name.len() as u16).to_be_bytes());
        sni.extend_from_slice(name.as_bytes());
        let mut body = vec![3, 3];
        body.extend_from_slice(&[7; 32]);
        body.extend_from_slice(&[0, 0, 4, 0xc0, 0x2f, 0x00, 0x9c, 1, 0]);
        body.extend_from_slice(&(sni.len() as u16).to_be_bytes());
        body.extend_from_slice(&sni);
        let mut hs = vec![1, 0];
        hs.extend_from_slice(&(body.len() as u16).to_be_bytes());
        hs.extend_from_slice(&body);
        let mut rec = vec![22, 3, 1];
        rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
        rec.extend_from_slice(&hs);
        rec
    }

    fn tcp_data(seq: u32, ack: u32, payload: &[u8]) -> Vec<u8> {
        let mut f = tcp(CLIENT, 40000, SERVER, 443, seq, ack, ACK | 0x08);
        f.extend_from_slice(payload);
        let ip_len = (f.len() - 14) as u16;
        f[16..18].copy_from_slice(&ip_len.to_be_bytes());
        crate::verify::fill_checksums(&mut f);
        f
    }

    /// A policy slot whose only check blocks the name "blocked.example" with `action`.
    fn sni_blocking(action: CheckAction) -> Arc<PolicySlot> {
        let mut pol = Policy::default();
        pol.inspect.sni_block.insert("blocked.example");
        pol.inspect.actions[Check::SniBlocked.index()] = action;
        Arc::new(ArcSwap::from_pointee(pol))
    }

    #[test]
    fn a_wrong_checksum_opens_nothing_and_is_not_read() {
        let mut e = engine(zoned());
        let mut syn = tcp(CLIENT, 40000, SERVER, 443, 100, 0, SYN);
        syn[50] ^= 1; // the TCP checksum
        assert_eq!(
            e.process(&syn, 0, 1),
            Verdict::Drop(DropReason::BadChecksum)
        );
        assert_eq!(e.stats().flows_created.get(), 0);
        let mut ttl = tcp(CLIENT, 40000, SERVER, 443, 100, 0, SYN);
        ttl[22] -= 1; // the TTL, under the IPv4 header checksum
        assert_eq!(
            e.process(&ttl, 0, 1),
            Verdict::Drop(DropReason::BadChecksum)
        );
        // Off (captures from a sending host): the same frame opens a connection.
        let mut off = engine(EngineConfig {
            verify_checksums: false,
            ..zoned()
        });
        assert_eq!(off.process(&syn, 0, 1), Verdict::Forward);
    }

    #[test]
    fn urgent_data_in_a_stream_under_judgement_is_dropped() {
        let slot = sni_blocking(CheckAction::Drop);
        let mut e = Engine::with_policy(zoned(), Arc::new(WorkerStats::default()), slot);
        handshake(&mut e);
        let mut f = tcp_data(101, 901, &client_hello("ok.example"));
        f[47] |= URG;
        f[52..54].copy_from_slice(&20u16.to_be_bytes());
        crate::verify::fill_checksums(&mut f);
        assert_eq!(e.process(&f, 0, 10), Verdict::Drop(DropReason::UrgentData));
        // The same hello without urgent data is read and passes.
        let ok = tcp_data(101, 901, &client_hello("ok.example"));
        assert_eq!(e.process(&ok, 0, 10), Verdict::Forward);
    }

    #[test]
    fn a_blocked_sni_is_reset_at_both_ends_and_stays_blocked() {
        let slot = sni_blocking(CheckAction::Reject);
        let mut e = Engine::with_policy(zoned(), Arc::new(WorkerStats::default()), slot);
        handshake(&mut e);
        let ch = client_hello("blocked.example");
        assert_eq!(
            e.process(&tcp_data(101, 901, &ch), 0, 1),
            Verdict::ResetBoth
        );
        // Whatever the flow sends next is dropped as inspection.
        let more = tcp_data(101 + ch.len() as u32, 901, b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(
            e.process(&more, 0, 1),
            Verdict::Drop(DropReason::Inspection)
        );
        assert_eq!(e.stats().checks_blocked[Check::SniBlocked.index()].get(), 1);
    }

    #[test]
    fn a_fake_hello_before_the_stream_is_ignored() {
        // An allowed name sent as old data (before the sequence the server expects), then the
        // real hello: the real one is what counts.
        let slot = sni_blocking(CheckAction::Drop);
        let mut e = Engine::with_policy(zoned(), Arc::new(WorkerStats::default()), slot);
        handshake(&mut e);
        let fake = client_hello("allowed.example");
        let real = client_hello("blocked.example");
        let v = e.process(&tcp_data(101 - fake.len() as u32, 901, &fake), 0, 1);
        assert!(
            matches!(v, Verdict::Forward | Verdict::Drop(DropReason::OutOfWindow)),
            "{v:?}"
        );
        assert_eq!(
            e.process(&tcp_data(101, 901, &real), 0, 1),
            Verdict::Drop(DropReason::Inspection)
        );
    }

    #[test]
    fn a_synced_standby_carries_allowed_and_blocked_flows() {
        // Active: an allowed connection mid-transfer, and one stopped by its SNI.
        let slot = sni_blocking(CheckAction::Drop);
        let mut active =
            Engine::with_policy(zoned(), Arc::new(WorkerStats::default()), slot.clone());
        handshake(&mut active);
        let ok = client_hello("allowed.example");
        assert_eq!(
            active.process(&tcp_data(101, 901, &ok), 0, 10),
            Verdict::Forward
        );
        let blocked = |sp: u16| {
            let mut f = tcp_data(101, 901, &client_hello("blocked.example"));
            f[34..36].copy_from_slice(&sp.to_be_bytes());
            crate::verify::fill_checksums(&mut f);
            f
        };
        for (seq, ack, fl, port) in [
            (100, 0, SYN, 0),
            (900, 101, SYN | ACK, 1),
            (101, 901, ACK, 0),
        ] {
            let (s, d) = if port == 0 {
                (CLIENT, SERVER)
            } else {
                (SERVER, CLIENT)
            };
            let (sp, dp) = if port == 0 {
                (40001, 443)
            } else {
                (443, 40001)
            };
            assert_eq!(
                active.process(&tcp(s, sp, d, dp, seq, ack, fl), port, 10),
                Verdict::Forward
            );
        }
        assert_eq!(
            active.process(&blocked(40001), 0, 10),
            Verdict::Drop(DropReason::Inspection)
        );
        // Sync every flow, through the wire format, to a standby with the same policy.
        let mut records = Vec::new();
        active.export_flows(10, |s| {
            let mut b = [0u8; crate::conntrack::sync::FLOW_STATE_LEN];
            s.encode(&mut b);
            records.push(b);
        });
        assert_eq!(records.len(), 2);
        let mut standby = Engine::with_policy(zoned(), Arc::new(WorkerStats::default()), slot);
        for r in &records {
            standby
                .import_flow(&FlowState::decode(r).unwrap(), 5000)
                .unwrap();
        }
        // After takeover: the allowed connection goes on both ways without a new handshake or
        // inspection; the blocked one stays blocked.
        let next = tcp_data(101 + ok.len() as u32, 901, b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(standby.process(&next, 0, 5001), Verdict::Forward);
        let reply = tcp(SERVER, 443, CLIENT, 40000, 901, 101 + ok.len() as u32, ACK);
        assert_eq!(standby.process(&reply, 1, 5001), Verdict::Forward);
        assert_eq!(
            standby.process(&blocked(40001), 0, 5001),
            Verdict::Drop(DropReason::Inspection)
        );
        // Without the sync, the same packet is a connection the standby never saw.
        let mut cold = engine(zoned());
        assert_eq!(
            cold.process(&next, 0, 5001),
            Verdict::Drop(DropReason::NoState)
        );
    }

    #[test]
    fn sync_events_follow_a_connection_from_established_to_closed() {
        use crate::conntrack::sync::{SyncOp, SyncQueue};
        let slot = sni_blocking(CheckAction::Drop);
        let q = Arc::new(SyncQueue::new(4));
        let mut e = Engine::with_policy(zoned(), Arc::new(WorkerStats::default()), slot)
            .with_sync(q.clone(), 30);
        let drain = |q: &SyncQueue| std::iter::from_fn(|| q.pop()).collect::<Vec<_>>();
        // Half-open: nothing (a SYN flood must not flood the HA link).
        e.process(&tcp(CLIENT, 40000, SERVER, 443, 100, 0, SYN), 0, 1);
        e.process(&tcp(SERVER, 443, CLIENT, 40000, 900, 101, SYN | ACK), 1, 1);
        assert!(drain(&q).is_empty());
        // Established: one update.
        e.process(&tcp(CLIENT, 40000, SERVER, 443, 101, 901, ACK), 0, 1);
        let evs = drain(&q);
        assert_eq!(evs.len(), 1);
        assert_eq!(evs[0].op, SyncOp::Update);
        assert_eq!(evs[0].state.tcp[11], ConnState::Established as u8);
        // The verdict: the SNI is blocked, and the standby learns it with the drop.
        assert_eq!(
            e.process(&tcp_data(101, 901, &client_hello("blocked.example")), 0, 2),
            Verdict::Drop(DropReason::Inspection)
        );
        let evs = drain(&q);
        assert_eq!(evs.len(), 1);
        assert_ne!(evs[0].state.flags & FLAG_BLOCKED, 0);
        // A full queue loses the event (counted); the flow's next packet a second later repairs it.
        let mut e2 = engine(zoned()).with_sync(Arc::new(SyncQueue::new(1)), 30);
        e2.process(&udp(CLIENT, 5000, SERVER, 53, b"a"), 0, 1);
        e2.process(&udp(CLIENT, 5001, SERVER, 53, b"b"), 0, 1);
        assert_eq!(e2.stats().sync_lost.get(), 1);
        e2.sync.as_ref().unwrap().pop().unwrap();
        e2.process(&udp(CLIENT, 5001, SERVER, 53, b"b"), 0, 1);
        assert_eq!(
            e2.stats().sync_pushed.get(),
            1,
            "not again in the same second"
        );
        e2.process(&udp(CLIENT, 5001, SERVER, 53, b"b"), 0, 2);
        assert_eq!(e2.stats().sync_pushed.get(), 2, "repaired a second later");
        // Refresh: a live flow pushes again after the refresh interval (30 s), not before.
        let again = udp(CLIENT, 5001, SERVER, 53, b"b");
        e2.sync.as_ref().unwrap().pop().unwrap();
        assert_eq!(e2.process(&again, 0, 31), Verdict::Forward);
        assert_eq!(
            e2.stats().sync_pushed.get(),
            2,
            "not before the refresh is due"
        );
        assert_eq!(e2.process(&again, 0, 32), Verdict::Forward);
        assert_eq!(e2.stats().sync_pushed.get(), 3, "refreshed when due");
        assert_eq!(e2.stats().sync_lost.get(), 1);
        // Its end on the active: a close event when it times out (idle past the blocked
        // connection's established timeout).
        let end = 2 + Timeouts::default().tcp_established + 10;
        for now in 3..=end {
            e.expire(now);
        }
        let evs = drain(&q);
        assert_eq!(evs.last().map(|ev| ev.op), Some(SyncOp::Close), "{evs:?}");
        // On a standby, the Close removes the flow; a flow synced in and timing out there writes
        // no flow record (the active reports it).
        let mut standby = engine(zoned());
        let mut st = evs[0].state;
        st.idle = 0;
        standby.import_flow(&st, 100).unwrap();
        assert_eq!(standby.conns().len(), 1);
        standby.remove_synced(&st.key);
        assert_eq!(standby.conns().len(), 0);
    }

    #[test]
    fn a_synced_key_hashes_like_its_packets() {
        // The standby places synced flows by key; the NIC and software steering by packet.
        let e = engine(zoned());
        let t = Toeplitz::new(&SYMMETRIC_RSS_KEY);
        for frame in [
            tcp(CLIENT, 40000, SERVER, 443, 1, 0, SYN),
            tcp(SERVER, 443, CLIENT, 40000, 1, 0, SYN),
            udp(CLIENT, 5353, SERVER, 53, b"x"),
            icmp(CLIENT, SERVER, 8, 0, [0, 7, 0, 1], b""),
        ] {
            let p = parse_frame(&frame).unwrap();
            let (key, _) = FlowKey::from_parsed_directed(&p).unwrap();
            assert_eq!(Some(t.hash_key(&key)), e.flow_hash(&frame));
        }
    }

    #[test]
    fn a_bulk_export_walks_the_whole_table_through_a_small_queue() {
        use crate::conntrack::sync::SyncQueue;
        let q = Arc::new(SyncQueue::new(7));
        let mut e = engine(zoned()).with_sync(q.clone(), 30);
        for p in 0..50u16 {
            e.process(&udp(CLIENT, 1000 + p, SERVER, 53, b"q"), 0, 1);
        }
        while q.pop().is_some() {}
        let (mut cursor, mut got, mut steps) = (0usize, 0usize, 0);
        loop {
            let done = e.export_step(&mut cursor, 100, 2);
            while q.pop().is_some() {
                got += 1;
            }
            steps += 1;
            if done {
                break;
            }
            assert!(steps < 10_000);
        }
        assert_eq!(got, 50);
    }

    #[test]
    fn reject_replies_are_rate_limited() {
        let slot = Arc::new(ArcSwap::from_pointee(Policy {
            rules: vec![crate::policy::Rule {
                name: "no-telnet".into(),
                action: RuleAction::Reject,
                direction: crate::policy::Direction::Any,
                proto: Some(6),
                src: vec![],
                dst: vec![],
                src_ports: vec![],
                dst_ports: vec![(23, 23)],
            }],
            blocklist: Default::default(),
            inspect: Default::default(),
        }));
        let mut e = Engine::with_policy(
            EngineConfig {
                rejects_per_sec: 3,
                ..zoned()
            },
            Arc::new(WorkerStats::default()),
            slot,
        );
        let verdicts: Vec<Verdict> = (0..5u16)
            .map(|p| e.process(&tcp(CLIENT, 1000 + p, SERVER, 23, 1, 0, SYN), 0, 7))
            .collect();
        assert_eq!(&verdicts[..3], &[Verdict::Reject; 3]);
        assert_eq!(&verdicts[3..], &[Verdict::Drop(DropReason::Rule); 2]);
        assert_eq!(e.stats().rejects_suppressed.get(), 2);
        // A new second, a new budget.
        assert_eq!(
            e.process(&tcp(CLIENT, 2000, SERVER, 23, 1, 0, SYN), 0, 8),
            Verdict::Reject
        );
    }

    #[test]
    fn bypass_forwards_everything_untouched() {
        let mut e = engine(EngineConfig {
            bypass: true,
            ..zoned()
        });
        assert_eq!(e.process(&ARP[..10], 1, 1), Verdict::Forward);
        assert_eq!(
            e.process(&tcp(SERVER, 9, CLIENT, 1, 1, 0, SYN), 1, 1),
            Verdict::Forward
        );
        assert_eq!(e.stats().rx_packets[1].get(), 2);
        assert_eq!(e.stats().drops_total(), 0);
        assert_eq!(e.stats().flows_created.get(), 0);
    }
}
