//! The memory floor of a connection lookup, shared by the connection-table and engine
//! benchmarks (`#[path]`-included; not a bench target itself): run beside them in the same
//! invocation, so that their ratio to it says what they add to what this machine's memory
//! charges at that moment.

use dataplane::dpdk::rdtsc;

/// The baseline, same invocation: the memory such a lookup touches and nothing else. For each
/// item, a 64-byte "bucket" line from an array sized like the index and the first line of a
/// 128-byte "entry" from an array sized like the entries, both at random, in the same pipeline
/// (prefetch the bucket, then the entry, then read and write them). Its cycles are what this
/// machine's memory charges for two random lines; the table's ratio to it is what the table adds.
pub fn memory_floor(n: u32, items: u64) -> f64 {
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
    const LAG: usize = dataplane::engine::PIPELINE_LAG;
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
