//! The appliance on DPDK: brings up the EAL, the mempool and the ports from the configuration,
//! starts one pinned worker per configured core, and runs the control thread (control socket,
//! signals, stop conditions) on the main thread, which the EAL pinned to the control core.
//!
//! Owns the lifetime of every DPDK object; drops them in reverse order of creation.

use crate::config::Config;
use crate::ctl::{Access, Audit, ControlSocket};
use crate::events::EventLog;
use crate::ha::node::{Command as HaCommand, HaShared, Node as HaNode};
use crate::report::{rule_counts, DeviceStats, PortSnapshot, RuleHitBase, StatsSnapshot};
use dataplane::dpdk::{self, Eal, Mempool, Port, PortSetup, Ring};
use dataplane::engine::{Engine, EngineConfig, PolicySlot};
use dataplane::events::{EventQueue, QUEUE_CAPACITY};
use dataplane::stats::WorkerStats;
use dataplane::worker::{self, RxSource, WorkerContext, WorkerHa, WorkerQueues};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Mbuf data room: 2048 bytes of frame + DPDK's default 128-byte headroom (RTE_MBUF_DEFAULT_BUF_SIZE).
const MBUF_DATA_ROOM: u16 = 2048 + 128;
/// How often the control thread wakes to serve the socket and check stop conditions.
const CONTROL_TICK: Duration = Duration::from_millis(20);

/// Runs until a signal or a configured stop condition; returns the final counters.
pub fn run(
    cfg: &Config,
    cfg_path: &Path,
    stop: Arc<AtomicBool>,
    events: Option<&Path>,
) -> Result<StatsSnapshot, String> {
    let started = Instant::now();
    let dp = &cfg.dataplane;
    let nworkers = dp.worker_cores.len();
    if cfg.pairs.is_empty() {
        return Err(format!(
            "{}: no [[pairs]] configured: the appliance needs at least one pair of ports",
            cfg_path.display()
        ));
    }

    let mut args = vec![
        "portcullisd".to_string(),
        "-l".to_string(),
        dp.control_core.to_string(),
    ];
    args.extend(cfg.eal.args.iter().cloned());
    for p in &cfg.ports {
        if let Some(a) = &p.vdev_args {
            args.push("--vdev".into());
            args.push(if a.is_empty() {
                p.device.clone()
            } else {
                format!("{},{}", p.device, a)
            });
        }
    }
    // The HA link first: a bad key or address stops the appliance before it touches a port.
    let ha_node = if cfg.ha.enabled {
        Some(HaNode::new(&cfg.ha, cfg_path)?)
    } else {
        None
    };
    let ha_shared = ha_node.as_ref().map(|_| HaShared::new(nworkers));
    let (ha_cmd_tx, ha_cmd_rx) = crossbeam_channel::bounded::<HaCommand>(16);
    let (ha_ev_tx, ha_ev_rx) = crossbeam_channel::bounded::<serde_json::Value>(1024);
    let eal = Eal::init(&args).map_err(|e| e.to_string())?;
    eprintln!(
        "portcullisd: {} up, EAL args: {}",
        dpdk::version(),
        args[1..].join(" ")
    );

    let pool = Mempool::new(
        &eal,
        "portcullis_mbufs",
        dp.mbufs,
        dp.mbuf_cache,
        MBUF_DATA_ROOM,
        -1,
    )
    .map_err(|e| e.to_string())?;

    let mut ports = Vec::with_capacity(cfg.ports.len());
    for pc in &cfg.ports {
        let info = Port::lookup(&pc.device).map_err(|e| format!("port '{}': {e}", pc.name))?;
        // Several workers share a port by RSS when the device has it; otherwise the port has one
        // rx queue and the worker polling it steers frames to their owners in software.
        // RSS only when the device can give every worker its own queue: then queue w receives
        // exactly the flows `shard_of` gives worker w (the RETA is programmed to match).
        let rss = nworkers > 1 && info.rss_offloads != 0 && info.max_rx_queues as usize >= nworkers;
        // Without RSS, every rx queue the device offers is opened and polled (af_packet with
        // qpairs=N fans frames out over N sockets by the kernel's own, asymmetric hash: an
        // unpolled queue would lose its share), and whoever polls a queue steers.
        let rx_queues = if rss {
            nworkers as u16
        } else {
            info.max_rx_queues.clamp(1, nworkers as u16)
        };
        let setup = PortSetup {
            rss,
            rx_queues,
            tx_queues: nworkers as u16,
            rx_desc: dp.rx_desc,
            tx_desc: dp.tx_desc,
            promiscuous: true,
        };
        if (info.max_tx_queues as usize) < nworkers {
            return Err(format!(
                "port '{}' ({}, driver {}) has {} tx queue(s) but {} workers each need their own; \
                 configure fewer workers or give the device more queues (net_af_packet: qpairs=N)",
                pc.name, pc.device, info.driver, info.max_tx_queues, nworkers
            ));
        }
        let port =
            Port::setup(info, &setup, &pool).map_err(|e| format!("port '{}': {e}", pc.name))?;
        let link = port.link();
        eprintln!(
            "portcullisd: port '{}' = {} (driver {}, id {}): {} rx queue(s){}, link {}",
            pc.name,
            pc.device,
            port.info().driver,
            port.id(),
            port.rx_queues(),
            if port.rss_enabled() {
                " by symmetric RSS"
            } else {
                ""
            },
            if link.up {
                format!("up {} Mb/s", link.speed_mbps)
            } else {
                "down".into()
            }
        );
        ports.push(port);
    }
    let peer = cfg.peers();

    let steering = nworkers > 1 && ports.iter().any(|p| !p.rss_enabled());
    let rings: Vec<Ring> = if steering {
        (0..nworkers)
            .map(|w| Ring::new(&eal, &format!("pc_steer_{w}"), dp.steer_ring_size, -1))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?
    } else {
        Vec::new()
    };

    // Who polls what: queue q of an RSS port belongs to worker q, and the NIC's symmetric hash
    // already put each flow on its owner's queue. The queues of a port without RSS are spread
    // over the workers (a single queue goes to worker port_index % workers) and their pollers
    // steer each frame to its owner. Tx queue w of every port is worker w's. Each queue is a
    // unique handle: no two threads can ever touch one queue.
    let mut plans: Vec<WorkerQueues> = (0..nworkers)
        .map(|w| WorkerQueues {
            rx: Vec::new(),
            tx: Vec::new(),
            ring_in: rings.get(w).map(|r| r.take_consumer().expect("fresh ring")),
        })
        .collect();
    for (i, p) in ports.iter().enumerate() {
        let (rxq, txq) = p.take_queues().expect("queues are taken once, here");
        for q in rxq {
            let w = if p.rss_enabled() {
                q.queue() as usize
            } else {
                (i + q.queue() as usize) % nworkers
            };
            plans[w].rx.push(RxSource {
                queue: q,
                port: i,
                steer: !p.rss_enabled() && nworkers > 1,
            });
        }
        for (w, q) in txq.into_iter().enumerate() {
            plans[w].tx.push(q);
        }
    }
    let port_ids: Vec<u16> = ports.iter().map(|p| p.id()).collect();

    let stats: Vec<Arc<WorkerStats>> = (0..nworkers)
        .map(|_| Arc::new(WorkerStats::default()))
        .collect();
    let access = Access::from_names(
        cfg.control.group.as_deref(),
        cfg.control.admin_group.as_deref(),
    )
    .map_err(|e| format!("{}: [control]: {e}", cfg_path.display()))?;
    let socket = ControlSocket::bind(&cfg.control.socket, access)
        .map_err(|e| format!("control socket {}: {e}", cfg.control.socket.display()))?;
    // Engine time is TSC time: the offsets map it to wall-clock time, in seconds (certificate
    // validity) and in microseconds (event timestamps).
    let unix_offset_us = {
        let hz = dpdk::tsc_hz().max(1) as u128;
        let tsc_us = (dpdk::rdtsc() as u128 * 1_000_000 / hz) as i64;
        let wall_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as i64)
            .unwrap_or(0);
        wall_us - tsc_us
    };
    let unix_offset = unix_offset_us.div_euclid(1_000_000);
    let engine_cfg = EngineConfig {
        unix_offset,
        ticks_per_sec: dpdk::tsc_hz(),
        ..cfg.engine_config(true)
    };
    // The policy the workers follow; `reload` (control socket or SIGHUP) publishes a new one.
    let policy: Arc<PolicySlot> = Arc::new(PolicySlot::from_pointee(
        cfg.build_policy(cfg_path).map_err(|e| e.to_string())?,
    ));
    let ha_preempt = AtomicBool::new(cfg.ha.preempt);
    let reload_flag = Arc::new(AtomicBool::new(false));
    let _ = signal_hook::flag::register(signal_hook::consts::SIGHUP, reload_flag.clone());
    // SIGUSR2 (or `portcullisctl reopen-logs`) reopens the event log after rotation.
    let reopen_flag = Arc::new(AtomicBool::new(false));
    let _ = signal_hook::flag::register(signal_hook::consts::SIGUSR2, reopen_flag.clone());
    // Rule hits by name across reloads (control thread only).
    let rule_base = std::cell::RefCell::new(RuleHitBase::default());
    let reload = || -> serde_json::Value {
        match Config::load(cfg_path).and_then(|c| Ok((c.build_policy(cfg_path)?, c.ha.preempt))) {
            Ok((p, preempt)) => {
                let v = serde_json::json!({
                    "reloaded": true,
                    "rules": p.rules.len(),
                    "blocklist_prefixes": p.blocklist.prefixes(),
                    "blocklist_intervals": p.blocklist.intervals(),
                    "sni_block": p.inspect.sni_block.len(),
                    "ja3_block": p.inspect.ja3_block.len(),
                    "ja4_block": p.inspect.ja4_block.len(),
                });
                eprintln!("portcullisd: policy reloaded: {v}");
                let all: Vec<&WorkerStats> = stats.iter().map(|s| s.as_ref()).collect();
                rule_base
                    .borrow_mut()
                    .rebase(&policy.load(), &p, &rule_counts(&all));
                policy.store(Arc::new(p));
                // Of [ha], only preempt changes at run time; the rest needs a restart.
                if ha_shared.is_some() && preempt != ha_preempt.swap(preempt, Ordering::Relaxed) {
                    let _ = ha_cmd_tx.send(HaCommand::SetPreempt(preempt));
                }
                v
            }
            Err(e) => {
                eprintln!("portcullisd: reload refused, the running policy stays: {e}");
                serde_json::json!({"error": format!("reload refused, the running policy stays: {e}")})
            }
        }
    };
    let idle = dp.idle.into();

    let snapshot = |uptime: f64| {
        let port_snaps = ports
            .iter()
            .enumerate()
            .map(|(i, p)| port_snapshot(cfg, i, p))
            .collect();
        let ws: Vec<(Option<usize>, &WorkerStats)> = stats
            .iter()
            .zip(&dp.worker_cores)
            .map(|(s, &c)| (Some(c), s.as_ref()))
            .collect();
        let all: Vec<&WorkerStats> = stats.iter().map(|s| s.as_ref()).collect();
        StatsSnapshot::collect("dpdk", uptime, port_snaps, &ws).with_rules(
            &policy.load(),
            &all,
            &rule_base.borrow(),
        )
    };

    // The event log: one queue per worker, drained by this (control) thread.
    let event_queues: Vec<Arc<EventQueue>> = (0..nworkers)
        .map(|_| Arc::new(EventQueue::new(QUEUE_CAPACITY)))
        .collect();
    let mut event_log = match events {
        Some(path) => {
            let names = cfg.ports.iter().map(|p| p.name.clone()).collect();
            Some(
                EventLog::open(path, event_queues.clone(), unix_offset_us, names)
                    .and_then(|mut log| {
                        if let Ok(Some(gid)) = cfg.events_gid() {
                            log.set_group(gid)?;
                        }
                        Ok(log)
                    })
                    .map_err(|e| format!("events {}: {e}", path.display()))?,
            )
        }
        None => None,
    };
    let worker_error: std::sync::Mutex<Option<String>> = Default::default();
    // Workers that have finished (flushed their connections' records), so that the control
    // thread keeps draining events until the last one is done.
    let workers_done = std::sync::atomic::AtomicUsize::new(0);
    let shutdown = std::sync::Barrier::new(nworkers);
    std::thread::scope(|scope| {
        for (w, queues) in plans.into_iter().enumerate() {
            let core = dp.worker_cores[w];
            let ctx = WorkerContext {
                index: w,
                workers: nworkers,
                peer: &peer,
                port_ids: &port_ids,
                rings: &rings,
                idle,
                stop: &stop,
                shutdown: &shutdown,
                tsc_hz: dpdk::tsc_hz(),
                pool: &pool,
                ha: ha_shared.as_ref().map(|h| WorkerHa {
                    forwarding: &h.forwarding,
                    sync: &h.workers[w],
                }),
            };
            let (eal, stats, engine_cfg, stop, worker_error, policy) = (
                &eal,
                stats[w].clone(),
                engine_cfg.clone(),
                &stop,
                &worker_error,
                policy.clone(),
            );
            let queue = event_log.as_ref().map(|_| event_queues[w].clone());
            let workers_done = &workers_done;
            std::thread::Builder::new()
                .name(format!("worker{w}"))
                .spawn_scoped(scope, move || {
                    if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
                        eprintln!(
                            "portcullisd: worker {w}: cannot pin to core {core}; running unpinned"
                        );
                    }
                    if let Err(e) = eal.register_thread() {
                        *worker_error.lock().expect("not poisoned") =
                            Some(format!("worker {w}: {e}"));
                        stop.store(true, Ordering::SeqCst);
                        // The others meet at the shutdown barrier: be there too.
                        ctx.shutdown.wait();
                        workers_done.fetch_add(1, Ordering::SeqCst);
                        return;
                    }
                    // The flow table is allocated here, after pinning, so its pages are first
                    // touched on the worker's own NUMA node.
                    let mut engine = Engine::with_policy(engine_cfg, stats, policy);
                    if let Some(q) = queue {
                        engine = engine.with_events(q);
                    }
                    if let Some(ha) = ctx.ha {
                        engine = engine.with_sync(ha.sync.out.clone(), cfg.ha.refresh_secs);
                    }
                    worker::run(&ctx, queues, &mut engine);
                    engine.flush_flows((dpdk::rdtsc() / ctx.tsc_hz.max(1)) as u32);
                    workers_done.fetch_add(1, Ordering::SeqCst);
                    eal.unregister_thread();
                })
                .expect("spawning a worker thread");
        }

        // The HA thread, on the control core (it inherits the control thread's affinity).
        if let (Some(node), Some(shared)) = (ha_node, ha_shared.as_ref()) {
            let (stats, stop) = (&stats, &stop);
            std::thread::Builder::new()
                .name("ha".into())
                .spawn_scoped(scope, move || {
                    node.run(shared, stats, stop, ha_cmd_rx, ha_ev_tx)
                })
                .expect("spawning the HA thread");
        }

        // The control thread.
        let mut last_rx = 0u64;
        let mut last_change = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(CONTROL_TICK);
            let audits = socket.serve_pending(|cmd| match cmd {
                "stats" => {
                    let mut snap = snapshot(started.elapsed().as_secs_f64());
                    snap.event_log = event_log.as_ref().map(|l| l.snapshot());
                    serde_json::to_value(snap).unwrap_or_default()
                }
                "status" => {
                    let mut v = status_json(cfg, cfg_path, &ports, started);
                    if let Some(h) = &ha_shared {
                        let s = h.status.lock().map(|s| s.clone()).unwrap_or_default();
                        v["ha"] = serde_json::json!({"role": s["role"], "peer": s["peer"]["role"], "eligible": s["eligible"]});
                    }
                    v["events"] = serde_json::to_value(event_log.as_ref().map(|l| l.snapshot())).unwrap_or_default();
                    v
                }
                "reopen-logs" => match reopen_events(&mut event_log) {
                    Ok(msg) => serde_json::json!({"ok": msg}),
                    Err(e) => serde_json::json!({"error": e}),
                },
                "reload" => reload(),
                "ha" | "ha status" => match &ha_shared {
                    Some(h) => h.status.lock().map(|s| s.clone()).unwrap_or_default(),
                    None => serde_json::json!({"enabled": false, "error": "HA is not enabled ([ha] enabled = false)"}),
                },
                "ha promote" | "ha demote" if ha_shared.is_some() => {
                    let (tx, rx) = crossbeam_channel::bounded(1);
                    let c = if cmd == "ha promote" { HaCommand::Promote(tx) } else { HaCommand::Demote(tx) };
                    let _ = ha_cmd_tx.send(c);
                    rx.recv_timeout(Duration::from_secs(2))
                        .unwrap_or_else(|_| serde_json::json!({"error": "the HA thread did not answer"}))
                }
                "ha promote" | "ha demote" => serde_json::json!({"error": "HA is not enabled ([ha] enabled = false)"}),
                other => serde_json::json!({"error": format!("unknown command '{other}' (try status, stats, reload, reopen-logs, ha status|promote|demote)")}),
            });
            audit(&audits, event_log.as_mut());
            if let Some(h) = &ha_shared {
                h.links_up
                    .store(ports.iter().all(|p| p.link().up), Ordering::Relaxed);
            }
            while let Ok(ev) = ha_ev_rx.try_recv() {
                if let Some(log) = event_log.as_mut() {
                    log.write_json(&ev);
                }
            }
            if let Some(log) = event_log.as_mut() {
                log.drain();
            }
            if reopen_flag.swap(false, Ordering::Relaxed) {
                let _ = reopen_events(&mut event_log);
            }
            if reload_flag.swap(false, Ordering::Relaxed) {
                reload();
            }
            let rx: u64 = stats
                .iter()
                .map(|s| s.rx_packets.iter().map(|c| c.get()).sum::<u64>())
                .sum();
            if rx != last_rx {
                last_rx = rx;
                last_change = Instant::now();
            }
            let idle_ms = cfg.run.stop_when_idle_ms;
            if idle_ms > 0 && rx > 0 && last_change.elapsed() >= Duration::from_millis(idle_ms) {
                eprintln!("portcullisd: no traffic for {idle_ms} ms: stopping");
                stop.store(true, Ordering::SeqCst);
            }
            let max = cfg.run.max_duration_secs;
            if max > 0 && started.elapsed() >= Duration::from_secs(max) {
                eprintln!("portcullisd: ran for {max} s: stopping");
                stop.store(true, Ordering::SeqCst);
            }
        }
        // Stopping: the workers flush their connections' records; drain until all are done.
        while workers_done.load(Ordering::SeqCst) < nworkers {
            if let Some(log) = event_log.as_mut() {
                log.drain();
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    });
    let decisions = event_log.map(|mut log| {
        log.drain();
        let lost = log.lost();
        eprintln!(
            "portcullisd: {} events written, {} lost (disk full {}, I/O error {}, not open {})",
            log.written(),
            lost.total(),
            lost.disk_full,
            lost.io_error,
            lost.not_open
        );
        log.decisions.events_written = log.written();
        let file = log.snapshot();
        (log.decisions, file)
    });
    if let Some(e) = worker_error.into_inner().expect("not poisoned") {
        return Err(e);
    }
    let mut snap = snapshot(started.elapsed().as_secs_f64());
    if let Some((d, file)) = decisions {
        snap.decisions = Some(d);
        snap.event_log = Some(file);
    }
    drop(socket);
    drop(rings);
    drop(ports);
    drop(pool);
    drop(eal);
    Ok(snap)
}

/// The audit trail of changing commands: a line on stderr and a `control` event each.
fn audit(audits: &[Audit], mut log: Option<&mut EventLog>) {
    for a in audits {
        eprintln!(
            "portcullisd: control: '{}' from uid {} pid {}: {}{}",
            a.cmd,
            a.peer.uid,
            a.peer.pid,
            a.result,
            if a.detail.is_empty() {
                String::new()
            } else {
                format!(" ({})", a.detail)
            }
        );
        if let Some(log) = log.as_deref_mut() {
            log.write_json(&crate::events::control_event(a));
        }
    }
}

/// Reopens the event log for rotation; says what it did, or why it could not (the old file is
/// closed either way, and the log keeps trying to open the path as events come).
fn reopen_events(log: &mut Option<EventLog>) -> Result<String, String> {
    let Some(log) = log.as_mut() else {
        return Err("no event log is configured ([events] path or --events)".into());
    };
    let path = log.snapshot().path;
    match log.reopen() {
        Ok(()) => {
            eprintln!("portcullisd: event log {path} reopened");
            Ok(format!("event log {path} reopened"))
        }
        Err(e) => {
            eprintln!("portcullisd: event log {path}: cannot reopen: {e}");
            Err(format!("event log {path}: cannot reopen: {e}"))
        }
    }
}

fn port_snapshot(cfg: &Config, i: usize, p: &Port) -> PortSnapshot {
    let link = p.link();
    let ds = p.stats();
    PortSnapshot {
        name: cfg.ports[i].name.clone(),
        device: cfg.ports[i].device.clone(),
        driver: p.info().driver.clone(),
        side: if cfg.is_inside(i) {
            "inside"
        } else {
            "outside"
        }
        .into(),
        peer: cfg.ports[cfg.peers()[i]].name.clone(),
        link_up: link.up,
        speed_mbps: link.speed_mbps,
        rx_queues: p.rx_queues(),
        rss: p.rss_enabled(),
        device_stats: Some(DeviceStats {
            ipackets: ds.ipackets,
            opackets: ds.opackets,
            imissed: ds.imissed,
            ierrors: ds.ierrors,
            oerrors: ds.oerrors,
            rx_nombuf: ds.rx_nombuf,
        }),
        ..Default::default()
    }
}

fn status_json(
    cfg: &Config,
    cfg_path: &Path,
    ports: &[Port],
    started: Instant,
) -> serde_json::Value {
    serde_json::json!({
        "state": "running",
        "mode": "dpdk",
        "pid": std::process::id(),
        "version": env!("CARGO_PKG_VERSION"),
        "dpdk": dpdk::version(),
        "config": cfg_path.display().to_string(),
        "uptime_secs": started.elapsed().as_secs_f64(),
        "control_core": cfg.dataplane.control_core,
        "worker_cores": cfg.dataplane.worker_cores,
        "idle": format!("{:?}", cfg.dataplane.idle).to_lowercase(),
        "ports": ports.iter().enumerate().map(|(i, p)| {
            let link = p.link();
            serde_json::json!({
                "name": cfg.ports[i].name,
                "device": cfg.ports[i].device,
                "driver": p.info().driver,
                "side": if cfg.is_inside(i) { "inside" } else { "outside" },
                "link_up": link.up,
                "speed_mbps": link.speed_mbps,
                "rx_queues": p.rx_queues(),
                "rss": p.rss_enabled(),
                "mac": p.info().mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":"),
            })
        }).collect::<Vec<_>>(),
    })
}
