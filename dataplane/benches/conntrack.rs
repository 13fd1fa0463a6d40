//! Connection-table fast path: established TCP connections, one pure ACK each per packet, in
//! scrambled order (every connection once per pass); per burst of 32, the engine's pipeline 8
//! keys apart: hash and prefetch the bucket, prefetch the entry the bucket's tags name, then
//! look up (that entry first), track (the engine's fast path: `is_plain`, window checks) and
//! count. No parsing, no I/O: the table's own cost at 1k, 100k, 1M and 10M connections (with
//! reading each key from a list of up to 2^20 keys).
//! Beside it, in the same invocation, the memory floor: the same two random lines per item
//! (bucket, entry's first line) with no table logic (`memory_floor`), and the table's ratio to it.
//!   cargo bench -p dataplane --bench conntrack [-- COUNTS...]

use dataplane::conntrack::table::{ConnTable, Timeouts};
use dataplane::conntrack::tcp::{flags, Segment, TcpTracker};
use dataplane::dpdk::rdtsc;
use dataplane::flow::FlowKey;
use std::time::Instant;

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
    const LAG: usize = 8;
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

/// The baseline, same invocation: the memory such a lookup touches and nothing else. For each
/// item, a 64-byte "bucket" line from an array sized like the index and the first line of a
/// 128-byte "entry" from an array sized like the entries, both at random, in the same pipeline
/// (prefetch the bucket, then the entry, then read and write them). Its cycles are what this
/// machine's memory charges for two random lines; the table's ratio to it is what the table adds.
fn memory_floor(n: u32, items: u64) -> f64 {
    #[repr(align(64))]
    #[derive(Clone, Copy)]
    struct Line([u64; 8]);
    let alloc = |lines: usize| {
        let mut v: Vec<Line> = Vec::with_capacity(lines);
        dataplane::dpdk::advise_huge_pages(v.spare_capacity_mut());
        v.resize(lines, Line([1; 8]));
        v
    };
    let nb = (n as usize).div_ceil(5).next_power_of_two();
    let buckets = alloc(nb);
    let mut entries = alloc(2 * n as usize);
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let picks: Vec<(u32, u32)> = (0..(n.min(1 << 20)))
        .map(|_| {
            let r = next();
            ((r as usize % nb) as u32, ((r >> 32) % n as u64) as u32)
        })
        .collect();
    const LAG: usize = 8;
    let bursts = items / 32;
    let mut at = 0usize;
    let mut sum = 0u64;
    let start = rdtsc();
    for _ in 0..bursts {
        let p = &picks[at..at + 32];
        for step in 0..32 + 2 * LAG {
            if step < 32 {
                dataplane::dpdk::prefetch(&buckets[p[step].0 as usize]);
            }
            if let Some(i) = step.checked_sub(LAG).filter(|&i| i < 32) {
                sum += buckets[p[i].0 as usize].0[0];
                dataplane::dpdk::prefetch(&entries[2 * p[i].1 as usize]);
            }
            if let Some(i) = step.checked_sub(2 * LAG).filter(|&i| i < 32) {
                let e = 2 * p[i].1 as usize;
                sum += entries[e].0[0];
                entries[e].0[1] += 1;
            }
        }
        at += 32;
        if at + 32 > picks.len() {
            at = 0;
        }
    }
    let cycles = (rdtsc() - start) as f64 / (bursts * 32) as f64;
    assert!(sum > 0);
    cycles
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
        let mut runs: Vec<(f64, f64, usize)> = (0..3).map(|_| run(n, 20_000_000)).collect();
        runs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (c, m, mem) = runs[1];
        let mut floor: Vec<f64> = (0..3).map(|_| memory_floor(n, 20_000_000)).collect();
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
