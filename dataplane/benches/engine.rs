//! Engine-only benchmark: the per-packet cost of `Engine::process_burst` on 64-byte TCP frames of
//! established flows, without any I/O (the DPDK benchmark in perf/ includes the virtual devices'
//! own copying). Reports cycles/packet (TSC) and Mpps per core at several flow counts.
//!   cargo bench -p dataplane --bench engine [-- FLOWS...]

use dataplane::dpdk::rdtsc;
use dataplane::engine::{Engine, EngineConfig, Verdict};
use dataplane::stats::WorkerStats;
use std::sync::Arc;
use std::time::Instant;

fn tcp_frame(n: u32, reply: bool) -> [u8; 60] {
    let mut f = [0u8; 60];
    f[..14].copy_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00]);
    f[14..26].copy_from_slice(&[0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0]);
    let client = [10, (n >> 16) as u8, (n >> 8) as u8, n as u8];
    let server = [192, 0, 2, (n % 7) as u8 + 1];
    let (cport, sport) = (1024 + (n % 50_000) as u16, 443u16);
    let (src, dst, sp, dp) = if reply {
        (server, client, sport, cport)
    } else {
        (client, server, cport, sport)
    };
    f[26..30].copy_from_slice(&src);
    f[30..34].copy_from_slice(&dst);
    f[34..36].copy_from_slice(&sp.to_be_bytes());
    f[36..38].copy_from_slice(&dp.to_be_bytes());
    f[46] = 0x50;
    f[47] = 0x10; // ACK
    f
}

fn run(flows: u32, packets: u64) -> (f64, f64) {
    let stats = Arc::new(WorkerStats::default());
    let mut e = Engine::new(
        EngineConfig {
            flow_capacity: flows as usize,
            ..EngineConfig::default()
        },
        stats.clone(),
    );
    // A pool of frames larger than the caches when there are many flows, visited in a scrambled
    // order so that consecutive packets belong to unrelated flows, as on a busy link.
    let pool = (flows as usize * 2).min(1 << 20);
    let frames: Vec<[u8; 60]> = (0..pool as u32)
        .map(|i| {
            let n = (i / 2).wrapping_mul(2_654_435_761) % flows;
            tcp_frame(n, i % 2 == 1)
        })
        .collect();
    // Establish every flow once.
    let mut verdicts = [Verdict::Forward; 32];
    let ports = [0usize; 32];
    for n in 0..flows {
        let f = tcp_frame(n, false);
        e.process_burst(&[&f[..]], &ports[..1], &mut verdicts[..1]);
    }
    let bursts = packets / 32;
    let start_tsc = rdtsc();
    let start = Instant::now();
    let mut at = 0usize;
    for _ in 0..bursts {
        let mut views: [&[u8]; 32] = [&[]; 32];
        for v in views.iter_mut() {
            *v = &frames[at][..];
            at += 1;
            if at == pool {
                at = 0;
            }
        }
        e.process_burst(&views, &ports, &mut verdicts);
    }
    let cycles = (rdtsc() - start_tsc) as f64 / (bursts * 32) as f64;
    let mpps = (bursts * 32) as f64 / start.elapsed().as_secs_f64() / 1e6;
    assert_eq!(
        stats.flows_created.get(),
        flows as u64,
        "every flow created once"
    );
    (cycles, mpps)
}

fn main() {
    let args: Vec<u32> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let flow_counts = if args.is_empty() {
        vec![1_000, 100_000, 1_000_000]
    } else {
        args
    };
    println!(
        "{:>10} {:>14} {:>10} {:>12}",
        "flows", "cycles/packet", "Mpps", "table MiB"
    );
    for flows in flow_counts {
        let mut runs: Vec<(f64, f64)> = (0..5).map(|_| run(flows, 20_000_000)).collect();
        runs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (c, m) = runs[runs.len() / 2];
        let mib = dataplane::flow_table::FlowTable::with_capacity(flows as usize).memory_bytes()
            as f64
            / (1 << 20) as f64;
        println!("{flows:>10} {c:>14.1} {m:>10.2} {mib:>12.1}");
    }
}
