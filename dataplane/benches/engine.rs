//! Engine-only benchmark: the per-packet cost of `Engine::process_burst` for established TCP
//! connections (parse, key, connection lookup, window checks, counters), 64-byte frames, without
//! any I/O (the DPDK benchmark in perf/ includes the virtual devices' own copying). Every
//! connection is opened with a real handshake first; then pure ACKs flow both ways, in scrambled
//! order so consecutive packets belong to unrelated connections, as on a busy link.
//!   cargo bench -p dataplane --bench engine [-- CONNECTIONS...]

use dataplane::dpdk::rdtsc;
use dataplane::engine::{Engine, EngineConfig, Verdict};
use dataplane::stats::{WorkerStats, MAX_PORTS};
use std::sync::Arc;
use std::time::Instant;

#[path = "common/frames.rs"]
mod frames;
use frames::{frame, ACK, SYN};

fn run(conns: u32, packets: u64) -> (f64, f64, usize, f64) {
    let stats = Arc::new(WorkerStats::default());
    let mut inside = [false; MAX_PORTS];
    inside[0] = true;
    let mut e = Engine::new(
        EngineConfig {
            flow_capacity: conns as usize,
            inside_ports: Some(inside),
            ..EngineConfig::default()
        },
        stats.clone(),
    );
    let (c, s) = (100u32, 900u32);
    // Connection setup: SYN, SYN-ACK, ACK per connection, each a new entry in the table.
    let setup_start = Instant::now();
    for n in 0..conns {
        assert_eq!(
            e.process(&frame(n, false, c, 0, SYN), 0, 1),
            Verdict::Forward
        );
        assert_eq!(
            e.process(&frame(n, true, s, c + 1, SYN | ACK), 1, 1),
            Verdict::Forward
        );
        assert_eq!(
            e.process(&frame(n, false, c + 1, s + 1, ACK), 0, 1),
            Verdict::Forward
        );
    }
    let setup_rate = conns as f64 / setup_start.elapsed().as_secs_f64();
    // The frames as a NIC would hand them over: one cache line each, the port beside them
    // (a worker knows it from the queue). Stage 1 of every burst prefetches the burst's frames
    // first, as the poll loop does with its mbufs (`worker.rs`).
    #[repr(align(64))]
    struct Line([u8; 60]);
    let pool = (conns as usize * 2).min(1 << 20);
    let (frames, pool_ports): (Vec<Line>, Vec<usize>) = (0..pool as u32)
        .map(|i| {
            let n = (i / 2).wrapping_mul(2_654_435_761) % conns;
            if i % 2 == 0 {
                (Line(frame(n, false, c + 1, s + 1, ACK)), 0)
            } else {
                (Line(frame(n, true, s + 1, c + 1, ACK)), 1)
            }
        })
        .unzip();
    let mut verdicts = [Verdict::Forward; 32];
    let bursts = packets / 32;
    let start_tsc = rdtsc();
    let start = Instant::now();
    let mut at = 0usize;
    for _ in 0..bursts {
        let mut views: [&[u8]; 32] = [&[]; 32];
        let mut ports = [0usize; 32];
        for i in 0..32 {
            dataplane::dpdk::prefetch(&frames[at]);
            views[i] = &frames[at].0[..];
            ports[i] = pool_ports[at];
            at += 1;
            if at == pool {
                at = 0;
            }
        }
        e.process_burst(&views, &ports, &mut verdicts, 2);
    }
    let cycles = (rdtsc() - start_tsc) as f64 / (bursts * 32) as f64;
    let mpps = (bursts * 32) as f64 / start.elapsed().as_secs_f64() / 1e6;
    assert_eq!(
        stats.drops_total(),
        0,
        "every packet of an established connection passes"
    );
    assert_eq!(stats.flows_created.get(), conns as u64);
    (cycles, mpps, e.conns().memory_bytes(), setup_rate)
}

fn main() {
    let args: Vec<u32> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let counts = if args.is_empty() {
        vec![1_000, 100_000, 1_000_000, 10_000_000]
    } else {
        args
    };
    println!(
        "{:>10} {:>14} {:>10} {:>12} {:>18}",
        "conns", "cycles/packet", "Mpps", "table MiB", "setups/s (3 pkts)"
    );
    for n in counts {
        let mut runs: Vec<(f64, f64, usize, f64)> = (0..3).map(|_| run(n, 20_000_000)).collect();
        runs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (c, m, mem, setup) = runs[1];
        println!(
            "{n:>10} {c:>14.1} {m:>10.2} {:>12.1} {setup:>18.0}",
            mem as f64 / (1 << 20) as f64
        );
    }
}
