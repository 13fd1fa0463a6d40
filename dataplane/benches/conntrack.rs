//! Connection-table fast path: established TCP connections, one pure ACK each per packet, in
//! scrambled order (every connection once per pass); per burst of 32, the engine's pipeline
//! (`PIPELINE_LAG` keys apart): hash and prefetch the bucket, prefetch the entry the bucket's
//! tags name, then look up (that entry first), track (the engine's fast path: `is_plain`,
//! window checks) and count. No parsing, no I/O: the table's own cost at 1k, 100k, 1M and 10M
//! connections (with reading each key from a list of up to 2^20 keys).
//! Beside it, in the same invocation, the memory floor: the same two random lines per item
//! (bucket, entry's first line) with no table logic (`memory_floor`), and the table's ratio to it.
//!   cargo bench -p dataplane --bench conntrack [-- COUNTS...]

use dataplane::conntrack::table::{ConnTable, Timeouts};
use dataplane::conntrack::tcp::{flags, Segment, TcpTracker};
use dataplane::dpdk::rdtsc;
use dataplane::flow::FlowKey;
use std::time::Instant;

#[path = "common/floor.rs"]
mod floor;
use floor::memory_floor;

fn key(n: u32) -> FlowKey {
    let mut lo = [0u8; 16];
    lo[..4].copy_from_slice(&[10, (n >> 16) as u8, (n >> 8) as u8, n as u8]);
    let mut hi = [0u8; 16];
    hi[..4].copy_from_slice(&[192, 0, 2, (n % 7) as u8 + 1]);
    FlowKey {
        lo_addr: lo,
        hi_addr: hi,
        lo_port: 1024 + (n % 50_000) as u16,
        hi_port: 443,
        proto: 6,
        is_ipv6: false,
    }
}

fn run(n: u32, packets: u64) -> (f64, f64, usize) {
    let mut t = ConnTable::with_capacity(n as usize, Timeouts::default(), 0);
    let (cisn, sisn) = (1000u32, 5000u32);
    for i in 0..n {
        let k = key(i);
        let syn = Segment {
            seq: cisn,
            flags: flags::SYN,
            window: 64_240,
            ..Default::default()
        };
        let mut tr = TcpTracker::open(&syn, false).unwrap();
        tr.track(
            false,
            &Segment {
                seq: sisn,
                ack: cisn + 1,
                flags: flags::SYN | flags::ACK,
                window: 65_160,
                ..Default::default()
            },
        )
        .unwrap();
        tr.track(
            true,
            &Segment {
                seq: cisn + 1,
                ack: sisn + 1,
                flags: flags::ACK,
                window: 64_240,
                ..Default::default()
            },
        )
        .unwrap();
        let h = t.hash(&k);
        t.insert(&k, h, true, tr, 0).unwrap();
    }
    let ack = Segment {
        seq: cisn + 1,
        ack: sisn + 1,
        flags: flags::ACK,
        window: 64_240,
        ..Default::default()
    };
    let order: Vec<FlowKey> = (0..(n.min(1 << 20)))
        .map(|i| key(i.wrapping_mul(2_654_435_761) % n))
        .collect();
    let bursts = packets / 32;
    let mut at = 0usize;
    let mut accepted = 0u64;
    let start_tsc = rdtsc();
    let start = Instant::now();
    const LAG: usize = dataplane::engine::PIPELINE_LAG;
    for _ in 0..bursts {
        let mut hashes = [0u64; 32];
        let mut hints = [0u32; 32];
        let keys = &order[at..(at + 32).min(order.len())];
        let m = keys.len();
        for step in 0..m + 2 * LAG {
            if step < m {
                hashes[step] = t.hash(&keys[step]);
                t.prefetch(hashes[step]);
            }
            let i = step.wrapping_sub(LAG);
            if i < m {
                hints[i] = t.prefetch_entry(hashes[i], false);
            }
            let i = step.wrapping_sub(2 * LAG);
            if i < m {
                let Some(id) = t.lookup_hinted(&keys[i], hashes[i], hints[i]) else {
                    continue;
                };
                // The engine's fast path: a plain segment of an established connection.
                let c = t.get_mut(id);
                if c.tcp.is_plain(&ack) && c.tcp.track_established(true, &ack).is_ok() {
                    c.count(true, 60, 1);
                    accepted += 1;
                }
            }
        }
        at += 32;
        if at + 32 > order.len() {
            at = 0;
        }
    }
    let pkts = bursts * 32;
    assert_eq!(
        accepted, pkts,
        "every ACK of an established connection passes"
    );
    let cycles = (rdtsc() - start_tsc) as f64 / pkts as f64;
    let mpps = pkts as f64 / start.elapsed().as_secs_f64() / 1e6;
    (cycles, mpps, t.memory_bytes())
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
        "{:>10} {:>14} {:>10} {:>12} {:>14} {:>16} {:>8}",
        "conns", "cycles/packet", "Mpps", "table MiB", "bytes/conn", "memory floor", "ratio"
    );
    for n in counts {
        // Table and floor alternate, so that both see the same neighbours on this shared host.
        let (mut runs, mut floor) = (Vec::new(), Vec::new());
        for _ in 0..3 {
            runs.push(run(n, 20_000_000));
            floor.push(memory_floor(n, 20_000_000));
        }
        runs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (c, m, mem) = runs[1];
        floor.sort_by(f64::total_cmp);
        println!(
            "{n:>10} {c:>14.1} {m:>10.2} {:>12.1} {:>14.1} {:>16.1} {:>8.2}",
            mem as f64 / (1 << 20) as f64,
            mem as f64 / n as f64,
            floor[1],
            c / floor[1]
        );
    }
}
