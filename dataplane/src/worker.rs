//! The DPDK poll loop of one worker: rx bursts from its queues (and from its steering ring),
//! the engine's verdict per frame, tx bursts to the paired port. After l2fwd: burst in, process,
//! burst out, free what the PMD did not take, and count it.
//!
//! Owns: its queues, its tx buffers, its engine (flow table, counters). Never touches another
//! worker's state; talks to other workers only through `rte_ring`s of mbufs.

use crate::dpdk::{Burst, Mbuf, Port, Ring, BURST_SIZE};
use crate::engine::{Engine, Verdict};
use crate::stats::{DropReason, MAX_PORTS};
use std::sync::atomic::{AtomicBool, Ordering};
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

/// Empty polls before the adaptive mode first sleeps: ~10 µs of spinning keeps latency low
/// under bursty load.
const IDLE_SPIN_POLLS: u32 = 256;
/// Sleep lengths: short at first, longer once idle for a while (a sleeping worker adds at most
/// this much latency to the first packet after a pause).
const IDLE_SLEEP_SHORT: Duration = Duration::from_micros(50);
const IDLE_SLEEP_LONG: Duration = Duration::from_micros(500);
const IDLE_LONG_AFTER: u32 = 20_000;

/// One rx queue a worker polls.
#[derive(Debug, Clone, Copy)]
pub struct RxSource {
    /// Index of the port in the runtime's port list.
    pub port: usize,
    pub queue: u16,
    /// The port has no RSS: the frames of any flow arrive here and must be steered to their owner.
    pub steer: bool,
}

/// Everything a worker needs, borrowed from the runtime that outlives it.
pub struct WorkerContext<'a> {
    pub index: usize,
    pub workers: usize,
    pub ports: &'a [Port],
    /// For each port index, the index of its pair's other port.
    pub peer: &'a [usize],
    pub rx: Vec<RxSource>,
    /// One ring per worker, consumed by that worker; empty when there is no software steering.
    pub rings: &'a [Ring],
    /// This worker's tx queue id on every port.
    pub tx_queue: u16,
    pub idle: IdleMode,
    pub stop: &'a AtomicBool,
}

/// Which worker owns a flow: a pure function of the symmetric hash, so both directions, both
/// appliances of a pair and every restart agree.
#[inline(always)]
pub fn shard_of(hash: u32, workers: usize) -> usize {
    hash as usize % workers
}

/// Runs the loop until `stop` is set, then drains and returns.
pub fn run(ctx: WorkerContext<'_>, engine: &mut Engine) {
    let nports = ctx.ports.len();
    assert!(
        nports <= MAX_PORTS,
        "port count checked by config validation"
    );
    let mut rx = Burst::default();
    let mut tx: [Burst; MAX_PORTS] = Default::default();
    let mut steer_out: Vec<Burst> = (0..ctx.rings.len()).map(|_| Burst::default()).collect();
    let mut empty_streak: u32 = 0;
    let stats = engine.stats().clone();

    while !ctx.stop.load(Ordering::Relaxed) {
        let mut got = 0;
        for src in &ctx.rx {
            let n = ctx.ports[src.port].rx_burst(src.queue, &mut rx);
            if n == 0 {
                continue;
            }
            got += n;
            if src.steer && ctx.workers > 1 {
                steer(&ctx, engine, &mut rx, &mut steer_out);
            }
            process_burst(&ctx, engine, &mut rx, &mut tx, src.port);
        }
        if !ctx.rings.is_empty() {
            // Steered frames: the port they arrived on travels in the mbuf.
            let n = ctx.rings[ctx.index].dequeue(&mut rx);
            if n > 0 {
                got += n;
                stats.steered_in.add(n as u64);
                process_steered(&ctx, engine, &mut rx, &mut tx);
            }
        }
        for (p, b) in tx.iter_mut().enumerate().take(nports) {
            flush(&ctx, engine, b, p);
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
    for (p, b) in tx.iter_mut().enumerate().take(nports) {
        flush(&ctx, engine, b, p);
    }
    for b in &mut steer_out {
        let n = b.free_all();
        stats.drops[DropReason::SteerRingFull.index()].add(n as u64);
    }
}

/// Moves the frames of flows owned by other workers from `rx` to their rings; keeps our own.
fn steer(ctx: &WorkerContext<'_>, engine: &Engine, rx: &mut Burst, out: &mut [Burst]) {
    let mut mine = Burst::default();
    let stats = engine.stats();
    rx.drain(|mut m| {
        // Non-IP and malformed frames have no flow: the polling worker handles them itself.
        let owner = match engine.flow_hash(m.data()) {
            Some(h) => {
                m.set_rss_hash(h);
                shard_of(h, ctx.workers)
            }
            None => ctx.index,
        };
        if owner == ctx.index {
            mine.push(m);
        } else {
            let b = &mut out[owner];
            b.push(m);
            if b.is_full() {
                let n = ctx.rings[owner].enqueue(b);
                stats.steered_out.add(n as u64);
                let lost = b.free_all();
                stats.drops[DropReason::SteerRingFull.index()].add(lost as u64);
            }
        }
    });
    for (owner, b) in out.iter_mut().enumerate() {
        if !b.is_empty() {
            let n = ctx.rings[owner].enqueue(b);
            stats.steered_out.add(n as u64);
            let lost = b.free_all();
            stats.drops[DropReason::SteerRingFull.index()].add(lost as u64);
        }
    }
    std::mem::swap(rx, &mut mine);
}

#[inline(always)]
fn process_burst(
    ctx: &WorkerContext<'_>,
    engine: &mut Engine,
    rx: &mut Burst,
    tx: &mut [Burst; MAX_PORTS],
    port: usize,
) {
    // Stage 1: prefetch every frame's first line, so stage 2 does not stall on each.
    for m in rx.mbufs() {
        m.prefetch_data();
    }
    let out = ctx.peer[port];
    rx.drain(|m| {
        let verdict = engine.process(m.data(), port, m.rss_hash());
        forward_or_drop(ctx, engine, tx, out, m, verdict);
    });
}

fn process_steered(
    ctx: &WorkerContext<'_>,
    engine: &mut Engine,
    rx: &mut Burst,
    tx: &mut [Burst; MAX_PORTS],
) {
    for m in rx.mbufs() {
        m.prefetch_data();
    }
    rx.drain(|m| {
        let port = port_index(ctx, m.port());
        let verdict = engine.process(m.data(), port, m.rss_hash());
        forward_or_drop(ctx, engine, tx, ctx.peer[port], m, verdict);
    });
}

#[inline(always)]
fn forward_or_drop(
    ctx: &WorkerContext<'_>,
    engine: &Engine,
    tx: &mut [Burst; MAX_PORTS],
    out: usize,
    m: Mbuf,
    v: Verdict,
) {
    match v {
        Verdict::Forward => {
            let b = &mut tx[out];
            b.push(m);
            if b.is_full() {
                flush(ctx, engine, b, out);
            }
        }
        Verdict::Drop(_) => drop(m),
    }
}

/// Sends a tx buffer; what the PMD does not take is freed and counted as `tx_full`.
#[inline(always)]
fn flush(ctx: &WorkerContext<'_>, engine: &Engine, b: &mut Burst, port: usize) {
    if b.is_empty() {
        return;
    }
    let bytes: u64 = b.mbufs().iter().map(|m| m.data().len() as u64).sum();
    let want = b.len();
    let sent = ctx.ports[port].tx_burst(ctx.tx_queue, b);
    let stats = engine.stats();
    stats.tx_packets[port].add(sent as u64);
    if sent == want {
        stats.tx_bytes[port].add(bytes);
    } else {
        let unsent_bytes: u64 = b.mbufs().iter().map(|m| m.data().len() as u64).sum();
        stats.tx_bytes[port].add(bytes - unsent_bytes);
        let lost = b.free_all();
        stats.drops[DropReason::TxFull.index()].add(lost as u64);
    }
}

/// Maps a DPDK port id (from a steered mbuf) back to the runtime's port index.
#[inline(always)]
fn port_index(ctx: &WorkerContext<'_>, id: u16) -> usize {
    ctx.ports.iter().position(|p| p.id() == id).unwrap_or(0)
}

const _: () = assert!(BURST_SIZE <= u16::MAX as usize);
