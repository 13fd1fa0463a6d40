//! HA state-sync benchmark: the whole path a synced connection takes, in one process over
//! loopback UDP, with the real pieces. An active worker's engine opens TCP connections
//! (SYN, SYN-ACK, ACK: each established connection is one flow event), its HA thread batches the
//! events into authenticated datagrams, the standby's HA thread verifies, orders and shards
//! them, and the standby's worker applies them to its table.
//!
//! Reports, per datagram size: sync throughput (flow events applied per second with the active
//! opening connections as fast as one core can), and sync lag (push on the active's worker to
//! apply on the standby's, p50/p99) at fixed offered rates. Four threads share the machine's
//! cores (two in CI), so figures are lower bounds for a deployment with a control core each.
//!   cargo bench -p control --bench ha_sync [-- RATE...]     (offered events/s for the lag runs)

use control::config::HaSection;
use control::ha::node::{HaShared, Node};
use dataplane::conntrack::sync::SyncQueue;
use dataplane::engine::{Engine, EngineConfig, Verdict};
use dataplane::stats::{WorkerStats, MAX_PORTS};
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "../../dataplane/benches/common/frames.rs"]
mod frames;
use frames::{frame, ACK, SYN};

/// Connections per run at most (both tables hold them all).
const CAPACITY: usize = 4_000_000;

fn engine_config() -> EngineConfig {
    let mut inside = [false; MAX_PORTS];
    inside[0] = true;
    EngineConfig {
        flow_capacity: CAPACITY,
        max_half_open: CAPACITY,
        max_half_open_per_source: u16::MAX,
        inside_ports: Some(inside),
        ..EngineConfig::default()
    }
}

fn ha_config(dir: &std::path::Path, id: u64, port: u16, peer: u16, datagram: usize) -> HaSection {
    let key = dir.join("ha.key");
    std::fs::write(&key, "0123456789abcdef0123456789abcdef").unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let text = format!(
        "enabled = true\nnode_id = {id}\npriority = {}\ninterval_ms = 10\nkey_file = \"{}\"\n\
         max_datagram = {datagram}\n[[paths]]\nlocal = \"127.0.0.1:{port}\"\npeer = \"127.0.0.1:{peer}\"\n",
        if id == 1 { 200 } else { 100 },
        key.display()
    );
    toml::from_str(&text).unwrap()
}

struct Result {
    events: u64,
    secs: f64,
    lost: u64,
    lag_p50_ms: f64,
    lag_p99_ms: f64,
}

/// One run: `conns` connections opened at `rate` per second (0: as fast as possible).
fn run(datagram: usize, conns: u32, rate: f64, base_port: u16) -> Result {
    let dir = std::env::temp_dir().join(format!("pc-ha-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let stop = AtomicBool::new(false);
    let (sa, sb) = (HaShared::new(1), HaShared::new(1));
    let (stats_a, stats_b) = (
        vec![Arc::new(WorkerStats::default())],
        vec![Arc::new(WorkerStats::default())],
    );
    let node_a = Node::new(
        &ha_config(&dir, 1, base_port, base_port + 1, datagram),
        &dir,
    )
    .unwrap();
    let node_b = Node::new(
        &ha_config(&dir, 2, base_port + 1, base_port, datagram),
        &dir,
    )
    .unwrap();
    let pushed_log: std::sync::Mutex<Vec<(Instant, u64)>> = Default::default();
    let applied_log: std::sync::Mutex<Vec<(Instant, u64)>> = Default::default();
    let mut out = None;
    std::thread::scope(|s| {
        let (_ca, ra) = crossbeam_channel::bounded(1);
        let (ea, _eva) = crossbeam_channel::bounded(64);
        let (_cb, rb) = crossbeam_channel::bounded(1);
        let (eb, _evb) = crossbeam_channel::bounded(64);
        s.spawn(|| node_a.run(&sa, &stats_a, &stop, ra, ea));
        std::thread::sleep(Duration::from_millis(100));
        s.spawn(|| node_b.run(&sb, &stats_b, &stop, rb, eb));
        // The standby's worker: applies what its HA thread hands it.
        let imported = &sb.workers[0].import;
        let (stop_ref, applied_log, stats_b0) = (&stop, &applied_log, stats_b[0].clone());
        s.spawn(move || {
            let mut e = Engine::new(engine_config(), stats_b0.clone());
            let mut log = Vec::with_capacity(1 << 20);
            while !stop_ref.load(Ordering::Relaxed) {
                let mut n = 0;
                while let Some(ev) = imported.pop() {
                    e.apply_sync(&ev, 1);
                    n += 1;
                    if n == 256 {
                        break;
                    }
                }
                if n > 0 {
                    log.push((Instant::now(), stats_b0.sync_imported.get()));
                } else {
                    std::thread::yield_now();
                }
            }
            *applied_log.lock().unwrap() = log;
        });
        // The active's worker.
        let queue: Arc<SyncQueue> = sa.workers[0].out.clone();
        let mut e = Engine::new(engine_config(), stats_a[0].clone()).with_sync(queue, 1_000);
        // Wait for the pair: A active, B standby and synced (the worker walks its table, still
        // empty, for the bulk sync, as a DPDK worker does between bursts).
        let t0 = Instant::now();
        loop {
            let w = &sa.workers[0];
            let asked = w.bulk_requested.load(Ordering::Acquire);
            if asked != w.bulk_done.load(Ordering::Acquire) {
                let mut cursor = 0;
                while !e.export_step(&mut cursor, 4096, 1) {}
                w.bulk_done.store(asked, Ordering::Release);
            }
            let st = sb.status.lock().unwrap().clone();
            if st["role"] == "standby" && st["bulk"]["state"] == "done" {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "pair did not form: {st}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        // Connections at the offered rate.
        let mut log = Vec::with_capacity(1 << 20);
        let start = Instant::now();
        let (c, sq) = (100u32, 900u32);
        for n in 0..conns {
            if rate > 0.0 && n % 64 == 0 {
                let due = start + Duration::from_secs_f64(n as f64 / rate);
                while Instant::now() < due {
                    std::hint::spin_loop();
                }
            }
            let ok = e.process(&frame(n, false, c, 0, SYN), 0, 1) == Verdict::Forward
                && e.process(&frame(n, true, sq, c + 1, SYN | ACK), 1, 1) == Verdict::Forward
                && e.process(&frame(n, false, c + 1, sq + 1, ACK), 0, 1) == Verdict::Forward;
            assert!(ok, "connection {n} refused");
            if n % 64 == 63 {
                log.push((Instant::now(), stats_a[0].sync_pushed.get()));
            }
        }
        log.push((Instant::now(), stats_a[0].sync_pushed.get()));
        let pushed = stats_a[0].sync_pushed.get();
        // Until the standby has applied everything pushed (or 10 s).
        let t1 = Instant::now();
        while stats_b[0].sync_imported.get() < pushed && t1.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_micros(200));
        }
        let secs = start.elapsed().as_secs_f64();
        *pushed_log.lock().unwrap() = log;
        stop.store(true, Ordering::SeqCst);
        out = Some((pushed, secs, stats_a[0].sync_lost.get()));
    });
    let (pushed, _, lost) = out.unwrap();
    let pushed_log = pushed_log.into_inner().unwrap();
    let applied_log = applied_log.into_inner().unwrap();
    // The k-th event pushed is the k-th applied (one worker, FIFO queues, an in-order stream).
    let at = |log: &[(Instant, u64)], k: u64| -> Option<Instant> {
        let i = log.partition_point(|&(_, c)| c < k);
        log.get(i).map(|&(t, _)| t)
    };
    let mut lags: Vec<f64> = (1..=pushed)
        .step_by(97)
        .filter_map(|k| {
            let (p, a) = (at(&pushed_log, k)?, at(&applied_log, k)?);
            Some(a.saturating_duration_since(p).as_secs_f64() * 1e3)
        })
        .collect();
    lags.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pct = |q: f64| {
        lags.get(((lags.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    let applied = applied_log.last().map_or(0, |&(_, c)| c);
    let secs = match (pushed_log.first(), applied_log.last()) {
        (Some(&(t0, _)), Some(&(t1, _))) => t1.duration_since(t0).as_secs_f64(),
        _ => f64::NAN,
    };
    let _ = std::fs::remove_dir_all(&dir);
    Result {
        events: applied.min(pushed),
        secs,
        lost,
        lag_p50_ms: pct(0.5),
        lag_p99_ms: pct(0.99),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let rates: Vec<f64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let rates = if rates.is_empty() {
        vec![250_000.0, 500_000.0, 1_000_000.0]
    } else {
        rates
    };
    let mut port = 47_600u16;
    for datagram in [1452usize, 8972] {
        let mut tput = Vec::new();
        let mut lost = 0;
        for _ in 0..3 {
            let r = run(datagram, 2_000_000, 0.0, port);
            port += 2;
            tput.push(r.events as f64 / r.secs);
            lost += r.lost;
        }
        println!(
            "datagram {datagram:>5} B: saturation: {:>9.0} flow events/s applied on the standby (median of 3; {} lost to a full worker queue)",
            median(tput),
            lost
        );
        for &rate in &rates {
            let (mut p50, mut p99, mut got) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..3 {
                let conns = (rate * 2.0).min(3_000_000.0) as u32;
                let r = run(datagram, conns, rate, port);
                port += 2;
                p50.push(r.lag_p50_ms);
                p99.push(r.lag_p99_ms);
                got.push(r.events as f64 / r.secs);
            }
            println!(
                "datagram {datagram:>5} B: offered {:>9.0} events/s: applied {:>9.0}/s, lag p50 {:.2} ms, p99 {:.2} ms (medians of 3)",
                rate,
                median(got),
                median(p50),
                median(p99)
            );
        }
    }
}
