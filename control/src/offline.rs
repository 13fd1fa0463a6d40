//! Offline mode (`portcullisd --read CAPTURE`): runs a pcap or pcapng file through the same engine
//! and worker sharding as the DPDK path, without DPDK, and optionally writes what would have been
//! forwarded (`--write OUT.pcap`). Like `suricata -r`.
//!
//! The reader thread normalises every frame to Ethernet (captures taken on loopback or tunnels
//! carry NULL/raw-IP link layers: a synthetic Ethernet header is prepended) and hands batches to
//! the worker that owns the flow, chosen by the same symmetric hash and `shard_of` as on DPDK.
//! Batches are recycled, so the steady state allocates nothing per packet.

use crate::decisions::Decisions;
use crate::eventfile::EventFileSnapshot;
use crate::events::EventLog;
use crate::report::{PortSnapshot, StatsSnapshot};
use crossbeam_channel::{bounded, Receiver, Sender};
use dataplane::engine::{Engine, EngineConfig, PolicySlot, Verdict, MAX_BURST};
use dataplane::events::{EventQueue, QUEUE_CAPACITY};
use dataplane::parse::parse_frame;
use dataplane::policy::Policy;
use dataplane::rss::{Toeplitz, SYMMETRIC_RSS_KEY};
use dataplane::stats::WorkerStats;
use dataplane::worker::shard_of;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapReader, PcapWriter};
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::{Block, PcapNgReader};
use pcap_file::DataLink;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BATCH: usize = 256;
/// Port indices offline: frames come "in" on the capture and leave on the output.
const PORT_CAPTURE: usize = 0;
const PORT_OUTPUT: usize = 1;

pub struct OfflineOptions {
    pub read: PathBuf,
    pub write: Option<PathBuf>,
    pub workers: usize,
    pub engine: EngineConfig,
    /// Rules and lists; without zones every connection counts as outbound.
    pub policy: Policy,
    /// EVE-style event log (timestamps are the capture's).
    pub events: Option<PathBuf>,
}

/// A batch of frames in one arena, recycled between reader, workers and writer.
#[derive(Default)]
struct Batch {
    data: Vec<u8>,
    /// (offset, length, timestamp) of each frame in `data`.
    frames: Vec<(usize, usize, Duration)>,
}

impl Batch {
    fn clear(&mut self) {
        self.data.clear();
        self.frames.clear();
    }

    fn push(&mut self, frame_prefix: &[u8], frame: &[u8], ts: Duration) {
        let off = self.data.len();
        self.data.extend_from_slice(frame_prefix);
        self.data.extend_from_slice(frame);
        self.frames
            .push((off, frame_prefix.len() + frame.len(), ts));
    }

    fn iter(&self) -> impl Iterator<Item = (&[u8], Duration)> {
        self.frames
            .iter()
            .map(|&(o, l, ts)| (&self.data[o..o + l], ts))
    }
}

/// Per-file reading result beyond the engine's counters.
#[derive(Debug, Default)]
pub struct ReadSummary {
    pub packets_in_file: u64,
    /// Frames whose link layer we cannot turn into Ethernet (counted, not processed).
    pub unsupported_link: u64,
    /// Frames the capture itself cut short (snaplen): the engine sees them as truncated.
    pub cut_by_snaplen: u64,
    /// Set when the file is damaged after some packets: what was read before is still
    /// processed and counted; this says where and why reading stopped.
    pub damaged: Option<String>,
}

/// Runs the capture; returns the engine counters and the read summary.
pub fn run(opts: &OfflineOptions) -> Result<(StatsSnapshot, ReadSummary), String> {
    let started = Instant::now();
    let n = opts.workers.max(1);
    let stats: Vec<Arc<WorkerStats>> = (0..n).map(|_| Arc::new(WorkerStats::default())).collect();
    let policy = Arc::new(PolicySlot::from_pointee(opts.policy.clone()));
    let event_queues: Vec<Arc<EventQueue>> = (0..n)
        .map(|_| Arc::new(EventQueue::new(QUEUE_CAPACITY)))
        .collect();
    let mut event_log = match &opts.events {
        Some(p) => Some(
            EventLog::open(
                p,
                event_queues.clone(),
                0,
                vec!["capture".into(), "output".into()],
            )
            .map_err(|e| format!("--events {}: {e}", p.display()))?,
        ),
        None => None,
    };
    let workers_done = std::sync::atomic::AtomicUsize::new(0);

    let writer = match &opts.write {
        Some(p) => {
            let f = crate::safefile::open(p, crate::safefile::Existing::Truncate, 0o640)
                .map_err(|e| format!("--write {}: {e}", p.display()))?;
            // Snaplen as tcpdump's default: a capture's GRO super-frames plus a synthetic
            // Ethernet header exceed 65535, and pcap-file refuses frames above the snaplen.
            let header = PcapHeader {
                datalink: DataLink::ETHERNET,
                snaplen: 262_144,
                ..Default::default()
            };
            Some(
                PcapWriter::with_header(BufWriter::new(f), header)
                    .map_err(|e| format!("--write {}: {e}", p.display()))?,
            )
        }
        None => None,
    };

    // Free batches circulate: reader -> worker -> (writer ->) free pool.
    let (free_tx, free_rx) = bounded::<Batch>(n * 8 + 8);
    for _ in 0..n * 8 + 8 {
        free_tx.send(Batch::default()).expect("capacity reserved");
    }
    let (out_tx, out_rx) = bounded::<Batch>(n * 4);

    type Outcome = (ReadSummary, Option<(Decisions, EventFileSnapshot)>);
    let (summary, decisions) = std::thread::scope(|scope| -> Result<Outcome, String> {
        let mut to_workers: Vec<Sender<Batch>> = Vec::new();
        for (w, st) in stats.iter().enumerate() {
            let (tx, rx) = bounded::<Batch>(4);
            to_workers.push(tx);
            // The capture's timestamps are the clock, in microseconds.
            let mut engine_cfg = opts.engine.clone();
            engine_cfg.ticks_per_sec = 1_000_000;
            let (st, cfg, free_tx, free_rx, out_tx) = (
                st.clone(),
                engine_cfg,
                free_tx.clone(),
                free_rx.clone(),
                out_tx.clone(),
            );
            let writing = opts.write.is_some();
            let slot = policy.clone();
            let queue = event_log.as_ref().map(|_| event_queues[w].clone());
            let done = &workers_done;
            std::thread::Builder::new()
                .name(format!("worker{w}"))
                .spawn_scoped(scope, move || {
                    // Counted as done however the worker ends (a panic too): the event writer
                    // waits for every worker, and must not wait for one that is gone.
                    struct Done<'a>(&'a std::sync::atomic::AtomicUsize);
                    impl Drop for Done<'_> {
                        fn drop(&mut self) {
                            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                    }
                    let _done = Done(done);
                    let mut engine = Engine::with_policy(cfg, st, slot);
                    if let Some(q) = queue {
                        engine = engine.with_events(q);
                    }
                    worker(rx, engine, writing, free_tx, free_rx, out_tx);
                })
                .expect("spawning worker");
        }
        drop(out_tx);
        let writer_thread = writer.map(|mut wr| {
            let free_tx = free_tx.clone();
            std::thread::Builder::new()
                .name("writer".into())
                .spawn_scoped(scope, move || -> Result<(), String> {
                    // After a write error the writer keeps draining and recycling batches, so
                    // the reader and workers never wait on a pool that no longer refills; the
                    // first error is reported at the end.
                    let mut error: Option<String> = None;
                    for mut batch in out_rx.iter() {
                        if error.is_none() {
                            for (frame, ts) in batch.iter() {
                                if let Err(e) =
                                    wr.write_packet(&PcapPacket::new(ts, frame.len() as u32, frame))
                                {
                                    // pcap-file's Display says "Error reading bytes" for any
                                    // I/O error; Debug carries the io::Error itself.
                                    error = Some(format!("--write: cannot write: {e:?}"));
                                    break;
                                }
                            }
                        }
                        batch.clear();
                        let _ = free_tx.send(batch);
                    }
                    if let Some(e) = error {
                        return Err(e);
                    }
                    wr.into_writer()
                        .into_inner()
                        .map_err(|e| format!("--write: cannot write: {e}"))?;
                    Ok(())
                })
                .expect("spawning writer")
        });
        // The event log drains on a thread of its own while the workers run.
        let events_thread = event_log.take().map(|mut log| {
            let done = &workers_done;
            std::thread::Builder::new()
                .name("events".into())
                .spawn_scoped(scope, move || loop {
                    let finished = done.load(std::sync::atomic::Ordering::SeqCst) == n;
                    log.drain();
                    if finished {
                        log.drain();
                        log.decisions.events_written = log.written();
                        let file = log.snapshot();
                        return (log.decisions, file);
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                })
                .expect("spawning the event writer")
        });
        let res = read_capture(&opts.read, n, &to_workers, &free_rx);
        drop(to_workers);
        let decisions = match events_thread {
            Some(t) => Some(t.join().map_err(|_| "event writer panicked".to_string())?),
            None => None,
        };
        if let Some(t) = writer_thread {
            t.join()
                .map_err(|_| "writer thread panicked".to_string())??;
        }
        Ok((res?, decisions))
    })?;

    let ports = vec![
        PortSnapshot {
            name: "capture".into(),
            device: opts.read.display().to_string(),
            driver: "pcap-file".into(),
            side: "inside".into(),
            peer: "output".into(),
            link_up: true,
            ..Default::default()
        },
        PortSnapshot {
            name: "output".into(),
            device: opts
                .write
                .as_ref()
                .map_or("-".into(), |p| p.display().to_string()),
            driver: "pcap-file".into(),
            side: "outside".into(),
            peer: "capture".into(),
            link_up: true,
            ..Default::default()
        },
    ];
    let ws: Vec<(Option<usize>, &WorkerStats)> = stats.iter().map(|s| (None, s.as_ref())).collect();
    let mut snap = StatsSnapshot::collect("offline", started.elapsed().as_secs_f64(), ports, &ws);
    if let Some((d, file)) = decisions {
        snap.decisions = Some(d);
        snap.event_log = Some(file);
    }
    Ok((snap, summary))
}

fn worker(
    rx: Receiver<Batch>,
    mut engine: Engine,
    writing: bool,
    free_tx: Sender<Batch>,
    free_rx: Receiver<Batch>,
    out_tx: Sender<Batch>,
) {
    let stats = engine.stats().clone();
    let mut last_now = 0u32;
    for mut batch in rx.iter() {
        let mut out = if writing { free_rx.recv().ok() } else { None };
        // The capture's own timestamps are the clock: a replay expires connections as the
        // traffic did, however fast it runs.
        if let Some((_, ts)) = batch.iter().next() {
            last_now = ts.as_secs() as u32;
            engine.expire(last_now);
        }
        // Bursts of the engine's size, as the DPDK loop hands them over: stage-wise processing
        // and prefetching work offline too. A burst's clock is its first frame's second.
        for chunk in batch.frames.chunks(MAX_BURST) {
            let n = chunk.len();
            let mut views: [&[u8]; MAX_BURST] = [&[]; MAX_BURST];
            for (v, &(o, l, _)) in views.iter_mut().zip(chunk) {
                *v = &batch.data[o..o + l];
            }
            let ports = [PORT_CAPTURE; MAX_BURST];
            let mut verdicts = [Verdict::Forward; MAX_BURST];
            engine.set_clock(chunk[0].2.subsec_micros() as u64);
            engine.process_burst(
                &views[..n],
                &ports[..n],
                &mut verdicts[..n],
                chunk[0].2.as_secs() as u32,
            );
            for i in 0..n {
                if verdicts[i] == Verdict::Forward {
                    stats.tx_packets[PORT_OUTPUT].inc();
                    stats.tx_bytes[PORT_OUTPUT].add(views[i].len() as u64);
                    if let Some(o) = out.as_mut() {
                        o.push(&[], views[i], chunk[i].2);
                    }
                }
            }
        }
        batch.clear();
        let _ = free_tx.send(batch);
        if let Some(o) = out {
            // If the writer is gone, the batch goes back to the pool rather than nowhere.
            if let Err(crossbeam_channel::SendError(mut o)) = out_tx.send(o) {
                o.clear();
                let _ = free_tx.send(o);
            }
        }
    }
    // End of capture: every connection still open gets its flow record.
    engine.flush_flows(last_now);
}

enum Capture {
    Pcap(PcapReader<BufReader<File>>),
    PcapNg(PcapNgReader<BufReader<File>>, Vec<DataLink>),
}

fn read_capture(
    path: &Path,
    n: usize,
    to_workers: &[Sender<Batch>],
    free_rx: &Receiver<Batch>,
) -> Result<ReadSummary, String> {
    let ctx = |e: &dyn std::fmt::Display| format!("--read {}: {e}", path.display());
    let mut f = File::open(path).map_err(|e| ctx(&e))?;
    let mut magic = [0u8; 4];
    f.read_exact(&mut magic)
        .map_err(|e| ctx(&format!("too short to be a capture ({e})")))?;
    let f = File::open(path).map_err(|e| ctx(&e))?;
    let mut cap = if magic == [0x0a, 0x0d, 0x0d, 0x0a] {
        Capture::PcapNg(
            PcapNgReader::new(BufReader::new(f)).map_err(|e| ctx(&e))?,
            Vec::new(),
        )
    } else {
        Capture::Pcap(PcapReader::new(BufReader::new(f)).map_err(|e| ctx(&e))?)
    };
    let toeplitz = Toeplitz::new(&SYMMETRIC_RSS_KEY);
    let mut pending: Vec<Option<Batch>> = (0..n).map(|_| None).collect();
    let mut summary = ReadSummary::default();
    let mut scratch: Vec<u8> = Vec::with_capacity(65_536);

    let mut dispatch = |link: DataLink,
                        data: &[u8],
                        ts: Duration,
                        summary: &mut ReadSummary|
     -> Result<(), String> {
        summary.packets_in_file += 1;
        let Some(prefix) = ethernet_prefix(link, data) else {
            summary.unsupported_link += 1;
            return Ok(());
        };
        let payload = &data[prefix.skip..];
        let mut w = 0;
        if n > 1 {
            // Hash the whole normalised frame exactly as a worker will see it (a truncated copy
            // would fail length checks and split flows across workers). Frames that need a
            // synthetic header are assembled in a scratch buffer reused for every frame.
            let frame: &[u8] = if prefix.header.is_empty() {
                payload
            } else {
                scratch.clear();
                scratch.extend_from_slice(prefix.header);
                scratch.extend_from_slice(payload);
                &scratch
            };
            if let Ok(p) = parse_frame(frame) {
                w = shard_of(toeplitz.hash_l3l4(&p), n);
            }
        }
        let slot = &mut pending[w];
        if slot.is_none() {
            *slot = Some(
                free_rx
                    .recv()
                    .map_err(|_| "worker threads ended early".to_string())?,
            );
        }
        let b = slot.as_mut().expect("just filled");
        b.push(prefix.header, payload, ts);
        if b.frames.len() >= BATCH {
            let full = slot.take().expect("present");
            to_workers[w]
                .send(full)
                .map_err(|_| "worker thread ended early".to_string())?;
        }
        Ok(())
    };

    match &mut cap {
        Capture::Pcap(r) => {
            let link = r.header().datalink;
            while let Some(pkt) = r.next_packet() {
                match pkt {
                    Ok(pkt) => {
                        if (pkt.data.len() as u32) < pkt.orig_len {
                            summary.cut_by_snaplen += 1;
                        }
                        dispatch(link, &pkt.data, pkt.timestamp, &mut summary)?
                    }
                    Err(e) => {
                        summary.damaged = Some(format!(
                            "damaged after packet {}: {e}",
                            summary.packets_in_file
                        ));
                        break;
                    }
                }
            }
        }
        Capture::PcapNg(r, links) => {
            let mut resolutions: Vec<u8> = Vec::new();
            while let Some(block) = r.next_block() {
                let block = match block {
                    Ok(b) => b,
                    Err(e) => {
                        summary.damaged = Some(format!(
                            "damaged after packet {}: {e}",
                            summary.packets_in_file
                        ));
                        break;
                    }
                };
                match block {
                    // Interface ids are numbered per section.
                    Block::SectionHeader(_) => {
                        links.clear();
                        resolutions.clear();
                    }
                    Block::InterfaceDescription(idb) => {
                        let resol = idb
                            .options
                            .iter()
                            .find_map(|o| match o {
                                InterfaceDescriptionOption::IfTsResol(r) => Some(*r),
                                _ => None,
                            })
                            .unwrap_or(6);
                        links.push(idb.linktype);
                        resolutions.push(resol);
                    }
                    Block::EnhancedPacket(epb) => {
                        if (epb.data.len() as u32) < epb.original_len {
                            summary.cut_by_snaplen += 1;
                        }
                        let i = epb.interface_id as usize;
                        let link = links.get(i).copied().unwrap_or(DataLink::ETHERNET);
                        // pcap-file 2.0 hands the raw timestamp over as nanoseconds; its unit is
                        // the interface's if_tsresol (microseconds by default).
                        let ts = pcapng_time(
                            epb.timestamp.as_nanos() as u64,
                            resolutions.get(i).copied().unwrap_or(6),
                        );
                        dispatch(link, &epb.data, ts, &mut summary)?;
                    }
                    Block::SimplePacket(spb) => {
                        let link = links.first().copied().unwrap_or(DataLink::ETHERNET);
                        dispatch(link, &spb.data, Duration::ZERO, &mut summary)?;
                    }
                    Block::Packet(pb) => {
                        let link = links
                            .get(pb.interface_id as usize)
                            .copied()
                            .unwrap_or(DataLink::ETHERNET);
                        // The obsolete Packet Block keeps a raw timestamp; microseconds is the default resolution.
                        dispatch(
                            link,
                            &pb.data,
                            Duration::from_micros(pb.timestamp),
                            &mut summary,
                        )?;
                    }
                    _ => {}
                }
            }
        }
    }
    for (w, slot) in pending.into_iter().enumerate() {
        if let Some(b) = slot {
            to_workers[w]
                .send(b)
                .map_err(|_| "worker thread ended early".to_string())?;
        }
    }
    Ok(summary)
}

/// A pcapng timestamp from its raw count and the interface's if_tsresol (RFC draft
/// pcapng §4.2: high bit clear, 10^-n seconds; high bit set, 2^-n seconds).
fn pcapng_time(raw: u64, resol: u8) -> Duration {
    let n = (resol & 0x7f) as u32;
    if resol & 0x80 != 0 {
        let n = n.min(63);
        Duration::from_secs(raw >> n)
            + Duration::from_nanos(
                (((raw & ((1u64 << n) - 1)) as u128 * 1_000_000_000) >> n) as u64,
            )
    } else if n <= 9 {
        Duration::from_nanos(raw.saturating_mul(10u64.pow(9 - n)))
    } else {
        Duration::from_nanos(raw / 10u64.pow((n - 9).min(19)))
    }
}

/// How to turn a captured frame into an Ethernet frame: a header to prepend and how many bytes of
/// the captured link layer to skip.
pub struct EthernetPrefix {
    pub header: &'static [u8],
    pub skip: usize,
}

/// Synthetic Ethernet headers (locally administered MACs 02:00:00:00:00:01/02) for captures
/// without a link layer of their own.
const ETH_IPV4: [u8; 14] = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
const ETH_IPV6: [u8; 14] = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x86, 0xdd];

pub fn ethernet_prefix(link: DataLink, data: &[u8]) -> Option<EthernetPrefix> {
    let by_version = |skip: usize| -> Option<EthernetPrefix> {
        match data.get(skip)? >> 4 {
            4 => Some(EthernetPrefix {
                header: &ETH_IPV4,
                skip,
            }),
            6 => Some(EthernetPrefix {
                header: &ETH_IPV6,
                skip,
            }),
            _ => None,
        }
    };
    match link {
        DataLink::ETHERNET => Some(EthernetPrefix {
            header: &[],
            skip: 0,
        }),
        // RAW: a bare IPv4 or IPv6 packet; IPV4/IPV6 likewise.
        DataLink::RAW | DataLink::IPV4 | DataLink::IPV6 => by_version(0),
        // NULL/LOOP (BSD loopback): a 4-byte address family, then the IP packet.
        DataLink::NULL | DataLink::LOOP => by_version(4),
        // Linux cooked capture v1: 16-byte header.
        DataLink::LINUX_SLL => by_version(16),
        DataLink::LINUX_SLL2 => by_version(20),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcapng_timestamps_follow_the_interface_resolution() {
        // tshark reads 1618744619.257945 from ndpi__tls-on-port-80.pcapng (microseconds).
        assert_eq!(
            pcapng_time(1_618_744_619_257_945, 6),
            Duration::new(1_618_744_619, 257_945_000)
        );
        assert_eq!(
            pcapng_time(1_618_744_619_257_945_123, 9),
            Duration::new(1_618_744_619, 257_945_123)
        );
        // Binary resolution 2^-10: 1024 ticks a second.
        assert_eq!(
            pcapng_time(3 * 1024 + 512, 0x80 | 10),
            Duration::new(3, 500_000_000)
        );
    }
}
