//! portcullisd — the Portcullis appliance daemon.

use clap::Parser;
use control::config::Config;
use control::offline::{self, OfflineOptions};
use control::report::StatsSnapshot;
use control::runtime;
use dataplane::engine::{EngineConfig, Pickup};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

#[derive(Parser, Debug)]
#[command(
    name = "portcullisd",
    version,
    about = "Portcullis inline gateway appliance"
)]
struct Args {
    /// Run the appliance on DPDK ports with this configuration.
    #[arg(long, value_name = "FILE", conflicts_with = "check_config")]
    config: Option<PathBuf>,
    /// Validate a configuration file and exit (0 when valid).
    #[arg(long, value_name = "FILE")]
    check_config: Option<PathBuf>,
    /// Run a capture (pcap or pcapng) through the engine offline, print the summary and exit.
    /// Built-in defaults apply unless --config is given too.
    #[arg(long, value_name = "CAPTURE")]
    read: Option<PathBuf>,
    /// With --read: write the frames that would be forwarded to this pcap file.
    #[arg(long, value_name = "OUT.pcap", requires = "read")]
    write: Option<PathBuf>,
    /// With --read: number of worker threads (default: one per configured worker core, or 1).
    #[arg(long, requires = "read")]
    workers: Option<usize>,
    /// Write EVE-style JSON events (flow, drop) to this file (overrides [events] path).
    #[arg(long, value_name = "PATH")]
    events: Option<PathBuf>,
    /// Also write the final counters as JSON to this file.
    #[arg(long, value_name = "FILE")]
    stats_json: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(path) = &args.check_config {
        return match Config::load(path).and_then(|c| c.check_runnable(path)) {
            Ok(()) => {
                println!("{}: ok", path.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("portcullisd: invalid configuration: {e}");
                ExitCode::from(2)
            }
        };
    }
    let cfg = match &args.config {
        Some(path) => match Config::load(path) {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!("portcullisd: invalid configuration: {e}");
                return ExitCode::from(2);
            }
        },
        None => None,
    };

    if let Some(read) = &args.read {
        // Built-in defaults for a capture: it may begin in the middle of connections, so they
        // are adopted (loose pickup) and inspected rather than dropped as `no_state`.
        let engine = cfg
            .as_ref()
            .map(|c| c.engine_config(false))
            .unwrap_or_else(|| EngineConfig {
                tcp_pickup: Pickup {
                    inside: true,
                    outside: true,
                },
                // Captures are often taken on a sending host, before the NIC filled in the
                // checksums: without a config they are not verified.
                verify_checksums: false,
                ..EngineConfig::default()
            });
        let workers = args
            .workers
            .or_else(|| cfg.as_ref().map(|c| c.dataplane.worker_cores.len()))
            .unwrap_or(1);
        let policy = match (&cfg, &args.config) {
            (Some(c), Some(path)) => match c.build_policy(path) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("portcullisd: invalid configuration: {e}");
                    return ExitCode::from(2);
                }
            },
            _ => Default::default(),
        };
        let opts = OfflineOptions {
            read: read.clone(),
            write: args.write.clone(),
            workers,
            engine,
            policy,
            events: args.events.clone().or_else(|| {
                let c = cfg.as_ref()?;
                let base = args.config.as_ref()?.parent()?.to_path_buf();
                c.events.path.as_ref().map(|p| base.join(p))
            }),
        };
        return match offline::run(&opts) {
            Ok((snap, summary)) => {
                println!(
                    "read {}: {} packets in file",
                    read.display(),
                    summary.packets_in_file
                );
                if summary.unsupported_link > 0 {
                    println!(
                        "  {} packets skipped: link layer not supported",
                        summary.unsupported_link
                    );
                }
                if summary.cut_by_snaplen > 0 {
                    println!(
                        "  {} frames cut short by the capture's snaplen (the engine counts them as truncated)",
                        summary.cut_by_snaplen
                    );
                }
                let code = finish(&snap, args.stats_json.as_ref());
                if let Some(e) = snap.event_log.as_ref().filter(|e| e.lost.total() > 0) {
                    // The summary above is whole; the events file is not.
                    eprintln!(
                        "portcullisd: {} events could not be written to {}: {}",
                        e.lost.total(),
                        e.path,
                        e.last_error.as_deref().unwrap_or("")
                    );
                    return ExitCode::from(4);
                }
                if let Some(d) = &summary.damaged {
                    // Like tcpdump on a truncated file: everything readable was processed, and the
                    // exit status says the file was not whole.
                    eprintln!("portcullisd: --read {}: {d}", read.display());
                    return ExitCode::from(3);
                }
                code
            }
            Err(e) => {
                eprintln!("portcullisd: {e}");
                ExitCode::FAILURE
            }
        };
    }

    let (Some(cfg), Some(path)) = (cfg, args.config.as_ref()) else {
        eprintln!("portcullisd: nothing to do: give --config FILE, --check-config FILE or --read CAPTURE (see --help)");
        return ExitCode::from(2);
    };
    if let Err(e) = cfg.check_runnable(path) {
        eprintln!("portcullisd: invalid configuration: {e}");
        return ExitCode::from(2);
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(sig, stop.clone()) {
            eprintln!("portcullisd: cannot install signal handler: {e}");
            return ExitCode::FAILURE;
        }
    }
    let events = args.events.clone().or_else(|| {
        cfg.events
            .path
            .as_ref()
            .map(|p| path.parent().unwrap_or(std::path::Path::new(".")).join(p))
    });
    match runtime::run(&cfg, path, stop, events.as_deref()) {
        Ok(snap) => finish(&snap, args.stats_json.as_ref()),
        Err(e) => {
            eprintln!("portcullisd: {e}");
            ExitCode::FAILURE
        }
    }
}

fn finish(snap: &StatsSnapshot, json: Option<&PathBuf>) -> ExitCode {
    print!("{}", snap.render());
    if let Some(p) = json {
        let text = serde_json::to_string_pretty(snap).expect("snapshot serialises");
        let written = control::safefile::open(p, control::safefile::Existing::Truncate, 0o640)
            .and_then(|mut f| std::io::Write::write_all(&mut f, (text + "\n").as_bytes()));
        if let Err(e) = written {
            eprintln!("portcullisd: --stats-json {}: {e}", p.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
