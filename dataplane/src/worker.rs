//! The DPDK poll loop of one worker: rx bursts from its queues (and from its steering ring),
//! the engine's verdict per frame, tx bursts to the paired port. After l2fwd: burst in, process,
//! burst out, free what the PMD did not take, and count it.
//!
//! Owns: its queues, its tx buffers, its engine (flow table, counters). Never touches another
//! worker's state; talks to other workers only through `rte_ring`s of mbufs. Reads each mbuf's
//! header once per pass through the worker: measured at ~40 cycles/packet when it read them
//! three times (frame view, tx byte count, prefetch).

use crate::conntrack::sync::WorkerSync;
use crate::dpdk::{rdtsc, Burst, Mempool, Ring, RingConsumer, RxQueue, TxQueue, BURST_SIZE};
use crate::engine::{Engine, Verdict};
use crate::reject::{build_reject, build_reset_onward, MAX_REPLY};
use crate::stats::{DropReason, WorkerStats, MAX_PORTS};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::time::Duration;

/// How a worker behaves when its queues are empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleMode {
    /// Spin without pause: lowest latency, one full core per worker (dedicated hardware).
    Busy,
    /// Sleep after a run of empty polls, longer the longer it stays idle, so that several
    /// instances and their test traffic can share a small machine.
    Adaptive,
}

/// Empty polls before the adaptive mode first sleeps: a few µs of spinning keeps latency low
/// under bursty load.
const IDLE_SPIN_POLLS: u32 = 256;
/// Sleep lengths: short at first, longer once idle for a while (a sleeping worker adds at most
/// this much latency to the first packet after a pause).
const IDLE_SLEEP_SHORT: Duration = Duration::from_micros(50);
const IDLE_SLEEP_LONG: Duration = Duration::from_micros(500);
const IDLE_LONG_AFTER: u32 = 20_000;

/// One rx queue a worker polls, with the handle that makes it the queue's only poller.
pub struct RxSource<'a> {
    pub queue: RxQueue<'a>,
    /// Index of the port in the runtime's port list.
    pub port: usize,
    /// The port has no RSS: the frames of any flow arrive here and must be steered to their owner.
    pub steer: bool,
}

/// What a worker shares with the others, borrowed from the runtime that outlives it.
pub struct WorkerContext<'a> {
    pub index: usize,
    pub workers: usize,
    /// For each port index, the index of its pair's other port.
    pub peer: &'a [usize],
    /// For each port index, its DPDK port id (to place steered frames by `mbuf.port`).
    pub port_ids: &'a [u16],
    /// One ring per worker, consumed by that worker; empty when there is no software steering.
    pub rings: &'a [Ring<'a>],
    pub idle: IdleMode,
    pub stop: &'a AtomicBool,
    /// All workers meet here after their loops, before draining their steering rings, so that
    /// no frame is enqueued after its owner's last look.
    pub shutdown: &'a Barrier,
    /// TSC ticks per second: the loop reads the TSC once per iteration for the engine's clock.
    pub tsc_hz: u64,
    /// The pool replies (reject) are built in.
    pub pool: &'a Mempool<'a>,
    /// In an HA pair: whether this appliance forwards (only the active does; the others drop
    /// what reaches their data ports, counted as `standby`), and this worker's sync queues.
    pub ha: Option<WorkerHa<'a>>,
}

/// A worker's part in HA: the role switch and its sync queues.
#[derive(Clone, Copy)]
pub struct WorkerHa<'a> {
    pub forwarding: &'a AtomicBool,
    pub sync: &'a WorkerSync,
}

/// Synced flows a worker applies per loop iteration at most (about 50 µs of work), so that a
/// bulk sync arriving never stalls its packets for long.
const IMPORT_BUDGET: usize = 512;
/// Table entries a worker walks per loop iteration during a bulk export.
const EXPORT_BUDGET: usize = 2048;

/// A worker's progress through a bulk export.
#[derive(Default)]
struct Export {
    gen: u64,
    cursor: usize,
    running: bool,
}

/// Between bursts: applies synced flows from the peer and continues a bulk export the HA thread
/// asked for. Returns whether this appliance forwards.
#[inline]
fn ha_step(ha: &WorkerHa<'_>, engine: &mut Engine, export: &mut Export, now: u32) -> bool {
    let s = ha.sync;
    for _ in 0..IMPORT_BUDGET {
        match s.import.pop() {
            Some(ev) => engine.apply_sync(&ev, now),
            None => break,
        }
    }
    let asked = s.bulk_requested.load(Ordering::Acquire);
    if asked != export.gen {
        *export = Export {
            gen: asked,
            cursor: 0,
            running: true,
        };
    }
    if export.running && engine.export_step(&mut export.cursor, EXPORT_BUDGET, now) {
        export.running = false;
        // Release: every record of the walk is in the queue before the HA thread sees this.
        s.bulk_done.store(export.gen, Ordering::Release);
    }
    ha.forwarding.load(Ordering::Relaxed)
}

/// A standby's data ports: frames are received (so that the NIC's rings never fill) and
/// dropped, counted as received and as `standby` drops.
#[cold]
fn drop_standby(stats: &WorkerStats, rx: &mut Burst, port: Option<usize>, ctx: &WorkerContext<'_>) {
    let mut i = 0;
    rx.drain(|m| {
        let p = port.unwrap_or_else(|| port_index(ctx, m.port()));
        stats.rx_packets[p].inc();
        stats.rx_bytes[p].add(m.data().len() as u64);
        i += 1;
        drop(m);
    });
    stats.drops[DropReason::Standby.index()].add(i);
}

/// The queues a worker alone uses: its rx queues, its tx queue on every port (by port index),
/// and the consumer end of its steering ring.
pub struct WorkerQueues<'a> {
    pub rx: Vec<RxSource<'a>>,
    pub tx: Vec<TxQueue<'a>>,
    pub ring_in: Option<RingConsumer<'a>>,
}

/// Buckets of the shard function. NIC redirection tables (RETA) have 64, 128 or 512 entries, all
/// multiples of 64; the NIC indexes its RETA with the hash's low bits, so programming entry i
/// with `shard_of(i)` makes the NIC's queue choice equal `shard_of(hash)` exactly.
pub const SHARD_BUCKETS: u32 = 64;

/// Which worker owns a flow: a pure function of the symmetric hash, so both directions, software
/// steering and NIC RSS, both appliances of a pair and every restart agree.
#[inline(always)]
pub fn shard_of(hash: u32, workers: usize) -> usize {
    (hash % SHARD_BUCKETS) as usize % workers
}

/// Frames waiting for one port's tx queue, with their byte count (known when they were read,
/// so that counting them never touches the mbufs again).
#[derive(Default)]
struct TxBuffer {
    burst: Burst,
    bytes: u64,
}

/// Runs the loop until `stop` is set, then drains and returns.
pub fn run(ctx: &WorkerContext<'_>, queues: WorkerQueues<'_>, engine: &mut Engine) {
    let WorkerQueues {
        rx: mut sources,
        tx: mut txq,
        mut ring_in,
    } = queues;
    let nports = txq.len();
    assert!(
        nports <= MAX_PORTS,
        "port count checked by config validation"
    );
    let mut rx = Burst::default();
    let mut tx: [TxBuffer; MAX_PORTS] = Default::default();
    let mut steer_out: Vec<Burst> = (0..ctx.rings.len()).map(|_| Burst::default()).collect();
    let mut empty_streak: u32 = 0;
    let stats = engine.stats().clone();

    // The engine's clock in seconds, advanced by comparing the TSC with the next second's tick
    // (no division per iteration); expiry runs when the second changes, and again while it has
    // work left over its budget.
    let hz = ctx.tsc_hz.max(1);
    let mut now = (rdtsc() / hz) as u32;
    let mut next_tick = (now as u64 + 1) * hz;
    let mut expiry_due = true;
    let mut export = Export::default();
    while !ctx.stop.load(Ordering::Relaxed) {
        let tsc = rdtsc();
        engine.set_clock(tsc);
        if tsc >= next_tick {
            now = (tsc / hz) as u32;
            next_tick = (now as u64 + 1) * hz;
            expiry_due = true;
        }
        if expiry_due {
            expiry_due = engine.expire(now);
        }
        let forwarding = match &ctx.ha {
            Some(ha) => ha_step(ha, engine, &mut export, now),
            None => true,
        };
        let mut got = 0;
        for src in sources.iter_mut() {
            let n = src.queue.rx_burst(&mut rx);
            if n == 0 {
                continue;
            }
            got += n;
            if !forwarding {
                drop_standby(&stats, &mut rx, Some(src.port), ctx);
                continue;
            }
            if src.steer && ctx.workers > 1 {
                steer(ctx, engine, &mut rx, &mut steer_out, src.port);
            }
            process_burst(ctx, engine, &mut rx, &mut tx, &mut txq, Some(src.port), now);
        }
        if let Some(ring) = ring_in.as_mut() {
            // Steered frames: the port they arrived on travels in the mbuf.
            let n = ring.dequeue(&mut rx);
            if n > 0 {
                got += n;
                stats.steered_in.add(n as u64);
                if forwarding {
                    process_burst(ctx, engine, &mut rx, &mut tx, &mut txq, None, now);
                } else {
                    drop_standby(&stats, &mut rx, None, ctx);
                }
            }
        }
        for (p, b) in tx.iter_mut().enumerate().take(nports) {
            flush(&mut txq, &stats, b, p);
        }

        stats.polls.inc();
        if got > 0 {
            empty_streak = 0;
            continue;
        }
        stats.empty_polls.inc();
        empty_streak = empty_streak.saturating_add(1);
        if ctx.idle == IdleMode::Adaptive && empty_streak > IDLE_SPIN_POLLS {
            stats.idle_sleeps.inc();
            std::thread::sleep(if empty_streak > IDLE_LONG_AFTER {
                IDLE_SLEEP_LONG
            } else {
                IDLE_SLEEP_SHORT
            });
        }
    }
    // Stop: every worker stops producing, then each processes what is left in its own ring.
    ctx.shutdown.wait();
    if let Some(ring) = ring_in.as_mut() {
        while ring.dequeue(&mut rx) > 0 {
            stats.steered_in.add(rx.len() as u64);
            process_burst(ctx, engine, &mut rx, &mut tx, &mut txq, None, now);
        }
    }
    for (p, b) in tx.iter_mut().enumerate().take(nports) {
        flush(&mut txq, &stats, b, p);
    }
}

/// Moves the frames of flows owned by other workers from `rx` to their rings; keeps our own.
fn steer(ctx: &WorkerContext<'_>, engine: &Engine, rx: &mut Burst, out: &mut [Burst], port: usize) {
    let mut mine = Burst::default();
    let stats = engine.stats();
    rx.drain(|m| {
        // Non-IP and malformed frames have no flow: the polling worker handles them itself.
        // The hash is always ours: a hash the PMD reports on a port without our RSS setup may
        // come from another key and would split flows.
        let owner = match engine.flow_hash(m.data()) {
            Some(h) => shard_of(h, ctx.workers),
            None => ctx.index,
        };
        if owner == ctx.index {
            mine.push(m);
        } else {
            let b = &mut out[owner];
            b.push(m);
            if b.is_full() {
                enqueue_steered(ctx, stats, b, owner, port);
            }
        }
    });
    for (owner, b) in out.iter_mut().enumerate() {
        enqueue_steered(ctx, stats, b, owner, port);
    }
    std::mem::swap(rx, &mut mine);
}

/// Hands a burst to its owner's ring. Frames that do not fit are dropped here; they never reach
/// an engine, so they are counted as received on `port` as well as dropped.
fn enqueue_steered(
    ctx: &WorkerContext<'_>,
    stats: &WorkerStats,
    b: &mut Burst,
    owner: usize,
    port: usize,
) {
    if b.is_empty() {
        return;
    }
    let n = ctx.rings[owner].enqueue(b);
    stats.steered_out.add(n as u64);
    if !b.is_empty() {
        let bytes: u64 = b.mbufs().iter().map(|m| m.data().len() as u64).sum();
        let lost = b.free_all() as u64;
        stats.rx_packets[port].add(lost);
        stats.rx_bytes[port].add(bytes);
        stats.drops[DropReason::SteerRingFull.index()].add(lost);
    }
}

/// Runs a burst through the engine and sends each frame to the peer of the port it came in on.
/// `port` is the rx port of the whole burst, or `None` for steered frames from several ports.
#[inline(always)]
fn process_burst(
    ctx: &WorkerContext<'_>,
    engine: &mut Engine,
    rx: &mut Burst,
    tx: &mut [TxBuffer; MAX_PORTS],
    txq: &mut [TxQueue<'_>],
    port: Option<usize>,
    now: u32,
) {
    let n = rx.len();
    let mut ports = [0usize; BURST_SIZE];
    let mut lens = [0u32; BURST_SIZE];
    let mut verdicts = [Verdict::Forward; BURST_SIZE];
    let segmented = {
        let mbufs = rx.mbufs();
        let mut frames: [&[u8]; BURST_SIZE] = [&[]; BURST_SIZE];
        if !engine.bypass() {
            // Prefetch every frame's first line before the engine parses any of them.
            for m in mbufs {
                m.prefetch_data();
            }
        }
        let mut segmented = false;
        for (i, m) in mbufs.iter().enumerate() {
            segmented |= m.is_segmented();
            frames[i] = m.data();
            lens[i] = frames[i].len() as u32;
            ports[i] = port.unwrap_or_else(|| port_index(ctx, m.port()));
        }
        if !segmented {
            engine.process_burst(&frames[..n], &ports[..n], &mut verdicts[..n], now);
        }
        segmented
    };
    if segmented {
        // Rare (a PMD that chains big frames): take them out, then process the rest.
        drop_segmented(ctx, engine.stats(), rx, port);
        return process_burst(ctx, engine, rx, tx, txq, port, now);
    }

    // The common case on a bump in the wire: the whole burst passes to one port whose buffer is
    // empty. Hand the array over as it is, as testpmd's io mode does.
    if let Some(p) = port {
        let out = ctx.peer[p];
        if tx[out].burst.is_empty() && verdicts[..n].iter().all(|v| *v == Verdict::Forward) {
            std::mem::swap(&mut tx[out].burst, rx);
            tx[out].bytes = lens[..n].iter().map(|&l| l as u64).sum();
            return;
        }
    }
    let mut i = 0;
    rx.drain(|m| {
        let (out, len, v) = (ctx.peer[ports[i]], lens[i], verdicts[i]);
        i += 1;
        match v {
            Verdict::Forward => {
                let b = &mut tx[out];
                b.burst.push(m);
                b.bytes += len as u64;
                if b.burst.is_full() {
                    flush(txq, engine.stats(), b, out);
                }
            }
            Verdict::Drop(_) => drop(m),
            Verdict::Reject | Verdict::ResetBoth => {
                // Rare: answer the sender through the port the frame came in on and, for a
                // reset at both ends, tell the receiver through the port it was going to.
                let mut reply = [0u8; MAX_REPLY];
                let back = ports[i - 1];
                if let Some(len) = build_reject(m.data(), &mut reply) {
                    send_built(ctx, txq, engine.stats(), tx, back, &reply[..len]);
                }
                if v == Verdict::ResetBoth {
                    if let Some(len) = build_reset_onward(m.data(), &mut reply) {
                        send_built(ctx, txq, engine.stats(), tx, out, &reply[..len]);
                    }
                }
                drop(m);
            }
        }
    });
}

/// Queues a frame the worker built (a reject reply) on port `to`.
#[cold]
fn send_built(
    ctx: &WorkerContext<'_>,
    txq: &mut [TxQueue<'_>],
    stats: &WorkerStats,
    tx: &mut [TxBuffer; MAX_PORTS],
    to: usize,
    frame: &[u8],
) {
    if let Some(r) = ctx.pool.alloc_from(frame) {
        let b = &mut tx[to];
        b.burst.push(r);
        b.bytes += frame.len() as u64;
        stats.rejects_sent.inc();
        if b.burst.is_full() {
            flush(txq, stats, b, to);
        }
    }
}

/// Slow path: removes multi-segment frames from the burst, counting each as received and dropped
/// (`oversize`); keeps the order of the rest.
#[cold]
fn drop_segmented(
    ctx: &WorkerContext<'_>,
    stats: &WorkerStats,
    rx: &mut Burst,
    port: Option<usize>,
) {
    let mut keep = Burst::default();
    rx.drain(|m| {
        if m.is_segmented() {
            let p = port.unwrap_or_else(|| port_index(ctx, m.port()));
            stats.rx_packets[p].inc();
            stats.rx_bytes[p].add(m.frame_len() as u64);
            stats.drop_packet(DropReason::Oversize);
        } else {
            keep.push(m);
        }
    });
    std::mem::swap(rx, &mut keep);
}

/// Sends a tx buffer; what the PMD does not take is freed and counted as `tx_full`.
#[inline(always)]
fn flush(txq: &mut [TxQueue<'_>], stats: &WorkerStats, b: &mut TxBuffer, port: usize) {
    if b.burst.is_empty() {
        return;
    }
    let want = b.burst.len();
    let sent = txq[port].tx_burst(&mut b.burst);
    stats.tx_packets[port].add(sent as u64);
    if sent < want {
        // Rare: count what was not sent, then free it.
        let unsent: u64 = b.burst.mbufs().iter().map(|m| m.data().len() as u64).sum();
        b.bytes -= unsent;
        let lost = b.burst.free_all();
        stats.drops[DropReason::TxFull.index()].add(lost as u64);
    }
    stats.tx_bytes[port].add(b.bytes);
    b.bytes = 0;
}

/// Maps a DPDK port id (from a steered mbuf) back to the runtime's port index.
#[inline(always)]
fn port_index(ctx: &WorkerContext<'_>, id: u16) -> usize {
    ctx.port_ids.iter().position(|&p| p == id).unwrap_or(0)
}

const _: () = assert!(BURST_SIZE <= crate::engine::MAX_BURST);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_matches_a_reta_of_any_supported_size() {
        // What a NIC does with a RETA programmed as `program_reta` does: entry i -> shard_of(i).
        for workers in 1..=12 {
            for reta_size in [64u32, 128, 512] {
                let reta: Vec<usize> = (0..reta_size).map(|i| shard_of(i, workers)).collect();
                for h in (0..2_000_000u32).map(|x| x.wrapping_mul(2_654_435_761)) {
                    assert_eq!(reta[(h & (reta_size - 1)) as usize], shard_of(h, workers));
                }
            }
        }
    }

    #[test]
    fn shards_are_balanced() {
        for workers in 1..=8 {
            let mut n = vec![0u32; workers];
            for b in 0..SHARD_BUCKETS {
                n[shard_of(b, workers)] += 1;
            }
            let (min, max) = (n.iter().min().unwrap(), n.iter().max().unwrap());
            assert!(max - min <= 1, "{workers} workers: {n:?}");
        }
    }
}
