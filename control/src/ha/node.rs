//! The HA thread: one per appliance in a pair, on the control core, never on a worker's. It sends
//! and reads the heartbeats that drive the role machine, publishes the role to the workers (only
//! the active forwards), and moves connection state between the pair:
//!
//! - **Active**: drains the workers' sync queues into sequence-numbered, authenticated datagrams
//!   (`link::Sender`: kept until acknowledged, resent from the first gap), and answers a
//!   standby's bulk request by asking every worker to walk its table into its queue.
//! - **Standby**: checks and applies the stream in order (`link::Receiver`), handing each flow to
//!   the worker that owns its shard (the same `shard_of` of the same symmetric hash that places
//!   its packets), so every table keeps a single writer; acknowledges; asks for a bulk sync when
//!   it starts or the peer comes back, and is eligible to take over only once one completed.
//!
//! Talks to the workers only through their bounded queues and atomics, to the control thread
//! through a status snapshot, a command channel and an event channel. Every datagram passes
//! `auth` before anything reads it: a forged or replayed one changes nothing and is counted.

use super::auth::{AuthStats, Key, Opener, Sealer, HEADER_LEN, TAG_LEN};
use super::link::{Accept, Receiver, Sender};
use super::role::{Role, RoleConfig, RoleMachine, Transition, MAX_PATHS};
use super::wire::{
    finish_sync, parse_sync, Ack, HeartbeatMsg, Item, KIND_ACK, KIND_BULK_REQUEST, KIND_HEARTBEAT,
    KIND_SYNC,
};
use crate::config::HaSection;
use dataplane::conntrack::sync::{SyncEvent, WorkerSync, SYNC_QUEUE_CAPACITY};
use dataplane::rss::{Toeplitz, SYMMETRIC_RSS_KEY};
use dataplane::stats::WorkerStats;
use dataplane::worker::shard_of;
use serde_json::json;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Socket buffers of the HA link: a bulk sync or a burst of new connections sends thousands of
/// datagrams at once, more than the default ~200 KiB hold (the kernel caps this at
/// net.core.rmem_max / wmem_max; raise those on the appliance).
const SOCKET_BUFFER: usize = 8 << 20;

/// A non-blocking UDP socket bound to `local`, with large buffers.
fn bind_udp(local: &SocketAddr) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(
        Domain::for_address(*local),
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    // Best effort: a smaller buffer than asked for still works, with more resends under load.
    let _ = s.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = s.set_send_buffer_size(SOCKET_BUFFER);
    s.bind(&(*local).into())?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

/// The role machine's settings from `[ha]`.
fn role_config(cfg: &HaSection, paths: usize) -> RoleConfig {
    RoleConfig {
        node_id: cfg.node_id,
        priority: cfg.priority,
        preempt: cfg.preempt,
        interval_ms: cfg.interval_ms,
        dead_after: cfg.dead_after,
        paths,
    }
}

/// What the HA thread shares with the workers and the control thread.
pub struct HaShared {
    /// Whether this appliance forwards (it is the active); workers read it between bursts.
    pub forwarding: AtomicBool,
    /// Each worker's sync queues, by worker index.
    pub workers: Vec<WorkerSync>,
    /// Whether every data port has link (the control thread updates it): a port down is a fault.
    pub links_up: AtomicBool,
    /// The latest `ha status`, refreshed by the HA thread.
    pub status: Mutex<serde_json::Value>,
}

impl HaShared {
    pub fn new(workers: usize) -> HaShared {
        HaShared {
            forwarding: AtomicBool::new(false),
            workers: (0..workers)
                .map(|_| WorkerSync::new(SYNC_QUEUE_CAPACITY))
                .collect(),
            links_up: AtomicBool::new(true),
            status: Mutex::new(json!({"role": "init"})),
        }
    }
}

/// An operator's command, with where to send the answer.
pub enum Command {
    Promote(crossbeam_channel::Sender<serde_json::Value>),
    Demote(crossbeam_channel::Sender<serde_json::Value>),
    /// A config reload changed `[ha] preempt`.
    SetPreempt(bool),
}

/// Bulk requests a standby repeats until the active starts one.
const BULK_REQUEST_EVERY_MS: u64 = 200;
/// A standby acknowledges at least this often while datagrams arrive, and after this many.
const ACK_EVERY_MS: u64 = 2;
const ACK_EVERY_DATAGRAMS: u32 = 32;
/// The thread sleeps this long when a pass found nothing to do.
const IDLE_SLEEP: Duration = Duration::from_micros(200);

/// The standby's view of its bulk sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BulkIn {
    /// Not needed (an active, or synced).
    Idle,
    /// Asked for; the active has not started it yet.
    Requested,
    /// Receiving: records so far and the active's table size when it started.
    Receiving,
    /// The active sent its end; waiting for the workers to apply what is queued.
    Applying,
    Done,
}

impl BulkIn {
    fn name(self) -> &'static str {
        match self {
            BulkIn::Idle => "idle",
            BulkIn::Requested => "requested",
            BulkIn::Receiving => "receiving",
            BulkIn::Applying => "applying",
            BulkIn::Done => "done",
        }
    }
}

#[derive(Default, serde::Serialize)]
struct Counters {
    /// Flow events sent to the peer, and drained without a standby to send them to.
    events_sent: u64,
    events_discarded: u64,
    /// Flow events received and handed to workers.
    events_received: u64,
    /// Passes where a worker's import queue was full (the datagram is applied again later).
    import_full: u64,
    sync_ignored_while_active: u64,
    bulk_requests_sent: u64,
    bulk_syncs_served: u64,
    resyncs: u64,
    malformed_bodies: u64,
    send_errors: u64,
}

/// The HA thread's state. Built (sockets bound, key read) before any thread starts, so that a
/// bad address or key stops the appliance at start with the config key in the message.
pub struct Node {
    cfg: HaSection,
    role: RoleMachine,
    socks: Vec<UdpSocket>,
    peers: Vec<SocketAddr>,
    sealer: Sealer,
    opener: Opener,
    sender: Sender,
    receiver: Receiver,
    toeplitz: Toeplitz,
    start: Instant,
    epoch: u64,
    /// The sync datagram being filled, and its item count.
    batch: Vec<u8>,
    batch_items: u16,
    out: Vec<u8>,
    /// Last heartbeat seen on each path (ms), for choosing the sync path.
    path_rx: [Option<u64>; MAX_PATHS],
    peer: Option<HeartbeatMsg>,
    peer_epoch: u64,
    peer_was_alive: bool,
    // Active side of bulk sync.
    bulk_gen: u64,
    bulk_out_pending: bool,
    bulk_out_started_ms: u64,
    // Standby side.
    bulk_in: BulkIn,
    bulk_in_gen: u64,
    bulk_in_received: u64,
    bulk_in_expected: u64,
    bulk_in_ms: (u64, u64),
    bulk_requested_ms: Option<u64>,
    bulk_request_gen: u64,
    since_ack: u32,
    last_ack_ms: u64,
    nack_due: bool,
    ack_due: bool,
    last_hb_ms: u64,
    last_status_ms: u64,
    transitions: u64,
    last_transition: Option<serde_json::Value>,
    fault: bool,
    /// This appliance's table size at the last status.
    last_table: u64,
    counters: Counters,
}

impl Node {
    pub fn new(cfg: &HaSection, cfg_path: &std::path::Path) -> Result<Node, String> {
        let key = Key::from_file(&cfg.key_file)
            .map_err(|e| format!("{}: key `ha.key_file`: {e}", cfg_path.display()))?;
        let addrs = cfg.addrs();
        let mut socks = Vec::new();
        let mut peers = Vec::new();
        for (i, (local, peer)) in addrs.iter().enumerate() {
            let s = bind_udp(local).map_err(|e| {
                format!(
                    "{}: key `ha.paths[{i}].local`: cannot bind {local}: {e}",
                    cfg_path.display()
                )
            })?;
            socks.push(s);
            peers.push(*peer);
        }
        let epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(1);
        // Resend after two heartbeat intervals without an acknowledgement (at least 5 ms).
        let rto = (2 * cfg.interval_ms).max(5);
        Ok(Node {
            role: RoleMachine::new(role_config(cfg, socks.len()), 0),
            socks,
            peers,
            sealer: Sealer::new(key.clone(), cfg.node_id, epoch),
            opener: Opener::new(key, cfg.node_id),
            sender: Sender::new(cfg.window, rto),
            receiver: Receiver::default(),
            toeplitz: Toeplitz::new(&SYMMETRIC_RSS_KEY),
            start: Instant::now(),
            epoch,
            batch: Vec::with_capacity(cfg.max_datagram),
            batch_items: 0,
            out: Vec::with_capacity(cfg.max_datagram + HEADER_LEN + TAG_LEN),
            path_rx: [None; MAX_PATHS],
            peer: None,
            peer_epoch: 0,
            peer_was_alive: false,
            bulk_gen: 0,
            bulk_out_pending: false,
            bulk_out_started_ms: 0,
            bulk_in: BulkIn::Idle,
            bulk_in_gen: 0,
            bulk_in_received: 0,
            bulk_in_expected: 0,
            bulk_in_ms: (0, 0),
            bulk_requested_ms: None,
            bulk_request_gen: 0,
            since_ack: 0,
            last_ack_ms: 0,
            nack_due: false,
            ack_due: false,
            last_hb_ms: 0,
            last_status_ms: 0,
            transitions: 0,
            last_transition: None,
            fault: false,
            last_table: 0,
            counters: Counters::default(),
            cfg: cfg.clone(),
        })
    }

    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// Runs until `stop`. `stats`: the workers' counters (table sizes, sync losses); `events`:
    /// where `ha` events go (the control thread writes them to the event log).
    pub fn run(
        mut self,
        shared: &HaShared,
        stats: &[Arc<WorkerStats>],
        stop: &AtomicBool,
        commands: crossbeam_channel::Receiver<Command>,
        events: crossbeam_channel::Sender<serde_json::Value>,
    ) {
        self.start = Instant::now();
        self.role = RoleMachine::new(role_config(&self.cfg, self.socks.len()), 0);
        eprintln!(
            "portcullisd: HA node {} (priority {}, preempt {}) starting: heartbeats every {} ms, peer dead after {}",
            self.cfg.node_id, self.cfg.priority, self.cfg.preempt, self.cfg.interval_ms, self.cfg.dead_after
        );
        let mut buf = vec![0u8; 65_536];
        while !stop.load(Ordering::Relaxed) {
            let now = self.now_ms();
            let mut busy = false;
            // 1. Everything that arrived, on every path.
            for path in 0..self.socks.len() {
                for _ in 0..1024 {
                    let n = match self.socks[path].recv_from(&mut buf) {
                        Ok((n, _)) => n,
                        Err(_) => break,
                    };
                    busy = true;
                    let d = buf[..n].to_vec();
                    self.on_datagram(path, &d, now, shared, &events);
                }
            }
            // 2. The time: heartbeats, role, faults.
            let fault = !shared.links_up.load(Ordering::Relaxed);
            if fault != self.fault {
                self.fault = fault;
                let t = self.role.set_fault(fault, now);
                self.transition(t, shared, &events, now);
            }
            // The role is re-evaluated on every pass, so that a dead peer is noticed within a
            // millisecond of its dead time, not at the next heartbeat.
            let t = self.role.tick(now);
            self.transition(t, shared, &events, now);
            if now >= self.last_hb_ms + self.cfg.interval_ms {
                self.last_hb_ms = now;
                self.send_heartbeats(stats);
            }
            self.watch_peer(now);
            // 3. Operator commands.
            while let Ok(c) = commands.try_recv() {
                let (t, reply, what) = match c {
                    Command::Promote(r) => (self.role.promote(), r, "promote"),
                    Command::Demote(r) => (self.role.demote(), r, "demote"),
                    Command::SetPreempt(p) => {
                        self.role.set_preempt(p);
                        self.cfg.preempt = p;
                        eprintln!("portcullisd: HA: preempt {}", if p { "on" } else { "off" });
                        continue;
                    }
                };
                let changed = t.is_some();
                self.transition(t, shared, &events, now);
                if changed {
                    // Tell the peer at once rather than at the next interval.
                    self.send_heartbeats(stats);
                }
                let _ = reply.send(json!({
                    "command": what,
                    "changed": changed,
                    "role": self.role.role().name(),
                    "refused": what == "promote" && self.fault,
                }));
                self.publish(shared, stats, now);
            }
            // 4. The sync stream.
            if self.role.role() == Role::Active {
                busy |= self.send_sync(shared, now);
            } else {
                busy |= self.discard_outbound(shared);
                self.standby_duties(shared, now);
            }
            if now >= self.last_status_ms + 50 {
                self.publish(shared, stats, now);
            }
            if !busy {
                std::thread::sleep(IDLE_SLEEP);
            }
        }
        // Stopping: nothing forwards any more; tell the peer we are gone by silence.
        shared.forwarding.store(false, Ordering::Relaxed);
        let now = self.now_ms();
        self.publish(shared, stats, now);
    }

    fn table_size(stats: &[Arc<WorkerStats>]) -> u64 {
        stats.iter().map(|s| s.flows_active.get()).sum()
    }

    fn send_heartbeats(&mut self, stats: &[Arc<WorkerStats>]) {
        let msg = HeartbeatMsg {
            hb: self.role.heartbeat(),
            synced: self.bulk_in == BulkIn::Done || self.role.role() == Role::Active,
            flows: Self::table_size(stats),
        };
        for path in 0..self.socks.len() {
            self.sealer
                .seal(KIND_HEARTBEAT, &msg.encode(), &mut self.out);
            if self.socks[path]
                .send_to(&self.out, self.peers[path])
                .is_err()
            {
                self.counters.send_errors += 1;
            }
        }
    }

    /// The path sync uses: the first on which the peer was heard within the dead time.
    fn sync_path(&self, now: u64) -> usize {
        let dead = self.cfg.interval_ms * u64::from(self.cfg.dead_after);
        (0..self.socks.len())
            .find(|&p| self.path_rx[p].is_some_and(|t| now.saturating_sub(t) < dead))
            .unwrap_or(0)
    }

    fn send_sealed(&mut self, kind: u8, body: &[u8], now: u64) {
        let path = self.sync_path(now);
        self.sealer.seal(kind, body, &mut self.out);
        if self.socks[path]
            .send_to(&self.out, self.peers[path])
            .is_err()
        {
            self.counters.send_errors += 1;
        }
    }

    fn on_datagram(
        &mut self,
        path: usize,
        d: &[u8],
        now: u64,
        shared: &HaShared,
        events: &crossbeam_channel::Sender<serde_json::Value>,
    ) {
        let Ok(m) = self.opener.open(d) else {
            // Refused and counted by the opener: it never reaches anything below.
            return;
        };
        let (kind, node_id, epoch) = (m.kind, m.node_id, m.epoch);
        let body = m.body.to_vec();
        match kind {
            KIND_HEARTBEAT => {
                let Some(hb) = HeartbeatMsg::decode(&body, node_id) else {
                    self.counters.malformed_bodies += 1;
                    return;
                };
                self.path_rx[path] = Some(now);
                if self.peer_epoch != 0 && epoch != self.peer_epoch {
                    // The peer restarted: whatever it had of ours is gone, and whatever we had of
                    // its old incarnation is stale.
                    self.peer_was_alive = false;
                }
                self.peer_epoch = epoch;
                self.peer = Some(hb);
                let t = self.role.on_heartbeat(path, &hb.hb, now);
                self.transition(t, shared, events, now);
            }
            KIND_SYNC => self.on_sync(epoch, &body, shared),
            KIND_ACK => {
                let Some(a) = Ack::decode(&body) else {
                    self.counters.malformed_bodies += 1;
                    return;
                };
                if self.role.role() != Role::Active {
                    return;
                }
                if self.sender.lost(&a) {
                    // The standby needs datagrams no longer kept: start over with a bulk sync.
                    self.counters.resyncs += 1;
                    self.start_bulk(shared, now);
                } else if self.sender.on_ack(&a, now) {
                    self.resend(now);
                }
            }
            KIND_BULK_REQUEST => {
                if body.len() != 8 {
                    self.counters.malformed_bodies += 1;
                    return;
                }
                if self.role.role() == Role::Active {
                    self.start_bulk(shared, now);
                }
            }
            _ => self.counters.malformed_bodies += 1,
        }
    }

    fn resend(&mut self, now: u64) {
        let path = self.sync_path(now);
        let (socks, peers, sealer, out, counters) = (
            &self.socks,
            &self.peers,
            &mut self.sealer,
            &mut self.out,
            &mut self.counters,
        );
        self.sender.resend(now, |body| {
            sealer.seal(KIND_SYNC, body, out);
            if socks[path].send_to(out, peers[path]).is_err() {
                counters.send_errors += 1;
            }
        });
    }

    /// A standby asked for the whole table: a new stream, and every worker walks its table.
    fn start_bulk(&mut self, shared: &HaShared, now: u64) {
        self.sender.restart();
        self.batch.clear();
        self.batch_items = 0;
        self.bulk_gen += 1;
        self.bulk_out_pending = true;
        self.bulk_out_started_ms = now;
        self.counters.bulk_syncs_served += 1;
        for w in &shared.workers {
            w.bulk_requested.store(self.bulk_gen, Ordering::Release);
        }
        // The table size as last published: the standby shows progress against it.
        self.add_item(
            Item::BulkStart {
                gen: self.bulk_gen,
                flows: self.last_table,
            },
            now,
        );
    }

    /// Adds an item to the datagram being filled, sending it first if the item does not fit.
    fn add_item(&mut self, item: Item, now: u64) {
        let limit = self.cfg.max_datagram.saturating_sub(HEADER_LEN + TAG_LEN);
        if self.batch_items > 0
            && (self.batch.len() + item.wire_len() > limit || self.batch_items == u16::MAX)
        {
            self.flush(now);
        }
        if self.batch_items == 0 {
            self.sender.begin(&mut self.batch);
        }
        item.encode(&mut self.batch);
        self.batch_items += 1;
    }

    /// Sends the datagram being filled, if it has anything.
    fn flush(&mut self, now: u64) {
        if self.batch_items == 0 {
            return;
        }
        finish_sync(&mut self.batch, self.batch_items);
        let body = std::mem::replace(&mut self.batch, Vec::with_capacity(self.cfg.max_datagram));
        self.send_sealed(KIND_SYNC, &body, now);
        self.sender.sent(body, now);
        self.batch_items = 0;
    }

    /// Active: the workers' events to the standby, the end of a bulk sync, resends. Returns
    /// whether there was anything to do.
    fn send_sync(&mut self, shared: &HaShared, now: u64) -> bool {
        let peer_standby = self.role.peer_alive(now)
            && self
                .peer
                .is_some_and(|p| matches!(p.hb.role, Role::Standby | Role::Init));
        if !peer_standby {
            // Nobody to sync to: what was in flight is moot (a standby that comes back asks for
            // the whole table).
            if self.sender.in_flight() > 0 || self.batch_items > 0 {
                self.sender.restart();
                self.batch.clear();
                self.batch_items = 0;
            }
            self.bulk_out_pending = false;
            return self.discard_outbound(shared);
        }
        // Checked before draining: every record a worker pushed before it reported its walk
        // done is in its queue by now.
        let walks_done = self.bulk_out_pending
            && shared
                .workers
                .iter()
                .all(|w| w.bulk_done.load(Ordering::Acquire) >= self.bulk_gen);
        let mut moved = 0u64;
        let mut all_empty = true;
        for w in 0..shared.workers.len() {
            loop {
                if !self.sender.has_room() {
                    all_empty = false;
                    break;
                }
                match shared.workers[w].out.pop() {
                    Some(SyncEvent { op, state }) => {
                        self.add_item(Item::Flow(op, state), now);
                        moved += 1;
                    }
                    None => break,
                }
            }
            all_empty &= shared.workers[w].out.is_empty();
        }
        self.counters.events_sent += moved;
        if walks_done && all_empty && self.sender.has_room() {
            self.add_item(Item::BulkEnd { gen: self.bulk_gen }, now);
            self.bulk_out_pending = false;
            eprintln!(
                "portcullisd: HA: bulk sync {} sent in {} ms",
                self.bulk_gen,
                now - self.bulk_out_started_ms
            );
        }
        self.flush(now);
        if self.sender.timed_out(now) {
            self.resend(now);
        }
        moved > 0
    }

    /// Not active: the workers' outbound events have nowhere to go.
    fn discard_outbound(&mut self, shared: &HaShared) -> bool {
        let mut n = 0u64;
        for w in &shared.workers {
            while w.out.pop().is_some() {
                n += 1;
            }
        }
        self.counters.events_discarded += n;
        n > 0
    }

    /// Standby: a sync datagram from the active.
    fn on_sync(&mut self, epoch: u64, body: &[u8], shared: &HaShared) {
        if self.role.role() == Role::Active {
            self.counters.sync_ignored_while_active += 1;
            return;
        }
        let Some((h, items)) = parse_sync(body) else {
            self.counters.malformed_bodies += 1;
            return;
        };
        match self.receiver.check(epoch, &h) {
            Accept::Apply => {}
            Accept::Duplicate => {
                self.ack_due = true;
                return;
            }
            Accept::Gap => {
                self.nack_due = true;
                return;
            }
            Accept::Stale => return,
        }
        let n = shared.workers.len();
        for item in items {
            match item {
                Ok(Item::Flow(op, state)) => {
                    let w = shard_of(self.toeplitz.hash_key(&state.key), n);
                    if shared.workers[w]
                        .import
                        .push(SyncEvent { op, state })
                        .is_err()
                    {
                        // The worker is behind: leave the datagram unapplied; the active resends
                        // it (what was handed over already is applied again, harmlessly).
                        self.counters.import_full += 1;
                        return;
                    }
                    self.counters.events_received += 1;
                    if self.bulk_in == BulkIn::Receiving {
                        self.bulk_in_received += 1;
                    }
                }
                Ok(Item::BulkStart { gen, flows }) => {
                    self.bulk_in = BulkIn::Receiving;
                    self.bulk_in_gen = gen;
                    self.bulk_in_received = 0;
                    self.bulk_in_expected = flows;
                    self.bulk_in_ms.0 = self.now_ms();
                    self.role.set_synced(false);
                }
                Ok(Item::BulkEnd { gen }) if gen == self.bulk_in_gen => {
                    self.bulk_in = BulkIn::Applying;
                }
                Ok(Item::BulkEnd { .. }) => {}
                Err(()) => {
                    self.counters.malformed_bodies += 1;
                    break;
                }
            }
        }
        self.receiver.advance();
        self.since_ack += 1;
    }

    /// Standby: acknowledgements, bulk requests, the end of a bulk sync.
    fn standby_duties(&mut self, shared: &HaShared, now: u64) {
        let nack_ok = self.nack_due && now >= self.last_ack_ms + ACK_EVERY_MS;
        let ack_ok = self.ack_due
            || self.since_ack >= ACK_EVERY_DATAGRAMS
            || (self.since_ack > 0 && now >= self.last_ack_ms + ACK_EVERY_MS);
        if nack_ok || ack_ok {
            if let Some(a) = self.receiver.ack(nack_ok) {
                self.send_sealed(KIND_ACK, &a.encode(), now);
            }
            self.last_ack_ms = now;
            self.since_ack = 0;
            self.ack_due = false;
            if nack_ok {
                self.nack_due = false;
            }
        }
        let peer_active =
            self.role.peer_alive(now) && self.peer.is_some_and(|p| p.hb.role == Role::Active);
        if matches!(self.bulk_in, BulkIn::Requested) && peer_active {
            let due = self
                .bulk_requested_ms
                .is_none_or(|t| now >= t + BULK_REQUEST_EVERY_MS);
            if due {
                self.bulk_request_gen += 1;
                self.send_sealed(KIND_BULK_REQUEST, &self.bulk_request_gen.to_be_bytes(), now);
                self.bulk_requested_ms = Some(now);
                self.counters.bulk_requests_sent += 1;
            }
        }
        if self.bulk_in == BulkIn::Applying && shared.workers.iter().all(|w| w.import.is_empty()) {
            self.bulk_in = BulkIn::Done;
            self.bulk_in_ms.1 = now;
            self.role.set_synced(true);
            eprintln!(
                "portcullisd: HA: bulk sync complete: {} flows in {} ms; eligible to take over",
                self.bulk_in_received,
                self.bulk_in_ms.1 - self.bulk_in_ms.0
            );
        }
    }

    /// Notices the peer coming (back): a standby then needs the whole table.
    fn watch_peer(&mut self, now: u64) {
        let alive = self.role.peer_alive(now);
        if alive && !self.peer_was_alive && self.role.role() != Role::Active {
            self.want_bulk();
        }
        self.peer_was_alive = alive;
    }

    fn want_bulk(&mut self) {
        self.bulk_in = BulkIn::Requested;
        self.bulk_requested_ms = None;
        self.role.set_synced(false);
    }

    fn transition(
        &mut self,
        t: Option<Transition>,
        shared: &HaShared,
        events: &crossbeam_channel::Sender<serde_json::Value>,
        now: u64,
    ) {
        let Some(t) = t else { return };
        shared
            .forwarding
            .store(t.to == Role::Active, Ordering::Release);
        self.transitions += 1;
        if t.to == Role::Standby && t.from == Role::Init {
            self.want_bulk();
        }
        if t.to == Role::Active {
            self.bulk_in = BulkIn::Idle;
            // A new stream for whoever becomes our standby.
            self.sender.restart();
        }
        let peer = self.peer.filter(|_| self.role.peer_alive(now));
        let ev = json!({
            "timestamp": crate::events::timestamp(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs() as i64)
                    .unwrap_or(0)
            ),
            "event_type": "ha",
            "ha": {
                "node_id": self.cfg.node_id,
                "from": t.from.name(),
                "to": t.to.name(),
                "reason": t.reason,
                "synced": t.synced,
                "peer_alive": peer.is_some(),
                "peer_role": peer.map(|p| p.hb.role.name()),
                "uptime_ms": now,
            }
        });
        eprintln!(
            "portcullisd: HA role {} -> {} ({}{})",
            t.from.name(),
            t.to.name(),
            t.reason,
            if t.synced { "" } else { ", not synced" }
        );
        self.last_transition = Some(ev["ha"].clone());
        let _ = events.try_send(ev);
    }

    fn publish(&mut self, shared: &HaShared, stats: &[Arc<WorkerStats>], now: u64) {
        self.last_status_ms = now;
        let table = Self::table_size(stats);
        self.last_table = table;
        let peer = self.peer.filter(|_| self.role.peer_alive(now));
        let sum = |f: fn(&WorkerStats) -> u64| stats.iter().map(|s| f(s)).sum::<u64>();
        let a: AuthStats = self.opener.stats;
        let v = json!({
            "enabled": true,
            "node_id": self.cfg.node_id,
            "role": self.role.role().name(),
            "forwarding": shared.forwarding.load(Ordering::Relaxed),
            "priority": self.cfg.priority,
            "preempt": self.cfg.preempt,
            "interval_ms": self.cfg.interval_ms,
            "dead_after": self.cfg.dead_after,
            "eligible": self.role.heartbeat().eligible,
            "fault": self.fault,
            "epoch": self.epoch,
            "flows": table,
            "peer": peer.map(|p| json!({
                "node_id": p.hb.node_id,
                "role": p.hb.role.name(),
                "priority": p.hb.priority,
                "eligible": p.hb.eligible,
                "synced": p.synced,
                "flows": p.flows,
            })),
            "paths": (0..self.socks.len()).map(|p| json!({
                "local": self.cfg.paths[p].local,
                "peer": self.cfg.paths[p].peer,
                "alive": self.path_rx[p].is_some_and(|t| now.saturating_sub(t) < self.cfg.interval_ms * u64::from(self.cfg.dead_after)),
            })).collect::<Vec<_>>(),
            "bulk": {
                "state": self.bulk_in.name(),
                "received": self.bulk_in_received,
                "expected": self.bulk_in_expected,
                "duration_ms": if self.bulk_in == BulkIn::Done { Some(self.bulk_in_ms.1 - self.bulk_in_ms.0) } else { None },
                "served": self.counters.bulk_syncs_served,
            },
            "sync": {
                "stream": self.sender.stream(),
                "in_flight": self.sender.in_flight(),
                "sender": self.sender.stats,
                "receiver": self.receiver.stats,
                "counters": &self.counters,
                "worker_pushed": sum(|s| s.sync_pushed.get()),
                "worker_lost": sum(|s| s.sync_lost.get()),
                "imported": sum(|s| s.sync_imported.get()),
                "removed": sum(|s| s.sync_removed.get()),
                "import_table_full": sum(|s| s.sync_table_full.get()),
            },
            "auth": {
                "accepted": a.accepted,
                "malformed": a.malformed,
                "bad_tag": a.bad_tag,
                "own_node": a.own_node,
                "replayed": a.replayed,
                "old_epoch": a.old_epoch,
                "refused": a.malformed + a.bad_tag + a.own_node + a.replayed + a.old_epoch,
            },
            "transitions": self.transitions,
            "last_transition": self.last_transition,
        });
        if let Ok(mut s) = shared.status.lock() {
            *s = v;
        }
    }
}
