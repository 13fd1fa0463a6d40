//! Engine-only benchmark: the per-packet cost of `Engine::process_burst` for established TCP
//! connections (parse, key, connection lookup, window checks, counters), 64-byte frames, without
//! any I/O (the DPDK benchmark in perf/ includes the virtual devices' own copying). Every
//! connection is opened with a real handshake first; then pure ACKs flow both ways, in scrambled
//! order so consecutive packets belong to unrelated connections, as on a busy link: every pass
//! visits each connection once. Cycles are TSC cycles inside `process_burst` only. Beside
//! each run, the memory floor of the same table size (two random lines per packet, nothing
//! else; `common/floor.rs`) and the engine's ratio to it.
//!   [PACKETS=N] cargo bench -p dataplane --bench engine [-- CONNECTIONS...]

use dataplane::dpdk::rdtsc;
use dataplane::engine::{Engine, EngineConfig, Verdict};
use dataplane::stats::{WorkerStats, MAX_PORTS};
use std::sync::Arc;
use std::time::Instant;

#[path = "common/frames.rs"]
mod frames;
use frames::{frame, ACK, SYN};

#[path = "common/floor.rs"]
mod floor;
use floor::memory_floor;

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
    // Each burst's frames are written into a ring of 32 line-sized buffers, as a NIC writes
    // received frames into mbufs (in the last-level cache with DDIO; the poll loop then
    // prefetches them); only `process_burst` is timed. Connections come in a permutation that
    // visits every one of them per pass (a step coprime with their number), the client side
    // in one pass and the server side in the next, so consecutive frames never share an entry.
    #[repr(align(64))]
    #[derive(Clone, Copy)]
    struct Line([u8; 60]);
    let step = {
        let gcd = |mut a: u64, mut b: u64| {
            while b != 0 {
                (a, b) = (b, a % b);
            }
            a
        };
        let mut k = (conns as u64 * 618_034 / 1_000_000).max(1);
        while gcd(k, conns as u64) != 1 {
            k += 1;
        }
        k
    };
    let mut ring = [Line([0; 60]); 32];
    let mut verdicts = [Verdict::Forward; 32];
    let bursts = packets / 32;
    let mut cycles = 0u64;
    let mut k = 0u64;
    let wall_tsc = rdtsc();
    let wall = Instant::now();
    for _ in 0..bursts {
        let mut ports = [0usize; 32];
        for (slot, port) in ring.iter_mut().zip(ports.iter_mut()) {
            let n = (k * step % conns as u64) as u32;
            let reply = (k / conns as u64) % 2 == 1;
            *slot = if reply {
                Line(frame(n, true, s + 1, c + 1, ACK))
            } else {
                Line(frame(n, false, c + 1, s + 1, ACK))
            };
            *port = reply as usize;
            k += 1;
        }
        let views: [&[u8]; 32] = std::array::from_fn(|i| &ring[i].0[..]);
        let t = rdtsc();
        e.process_burst(&views, &ports, &mut verdicts, 2);
        cycles += rdtsc() - t;
    }
    let tsc_hz = (rdtsc() - wall_tsc) as f64 / wall.elapsed().as_secs_f64();
    let cycles = cycles as f64 / (bursts * 32) as f64;
    let mpps = tsc_hz / cycles / 1e6;
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
    // PACKETS overrides the packets per run, for a short run under a profiler (callgrind
    // counts instructions per packet where the VM has no hardware counters).
    let packets = std::env::var("PACKETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000_000);
    println!(
        "{:>10} {:>14} {:>10} {:>12} {:>18} {:>13} {:>6}",
        "conns", "cycles/packet", "Mpps", "table MiB", "setups/s (3 pkts)", "memory floor", "ratio"
    );
    for n in counts {
        // Engine and memory floor alternate, so that both see the same neighbours on this
        // shared host: the ratio is steadier than either figure alone.
        let (mut runs, mut floor) = (Vec::new(), Vec::new());
        for _ in 0..3 {
            runs.push(run(n, packets));
            floor.push(memory_floor(n, packets));
        }
        runs.sort_by(|a, b| a.0.total_cmp(&b.0));
        floor.sort_by(f64::total_cmp);
        let (c, m, mem, setup) = runs[1];
        println!(
            "{n:>10} {c:>14.1} {m:>10.2} {:>12.1} {setup:>18.0} {:>13.1} {:>6.2}",
            mem as f64 / (1 << 20) as f64,
            floor[1],
            c / floor[1]
        );
    }
}
