//! portcullisctl — talks to a running portcullisd over its control socket.

use clap::{Parser, Subcommand};
use control::config::default_socket;
use control::ctl;
use control::report::StatsSnapshot;
use std::path::PathBuf;
use std::process::ExitCode;

/// Standard output; a reader that went away (`portcullisctl status | head -2`) ends the program
/// quietly, with success, as other command-line tools do.
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = write!(std::io::stdout(), $($t)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
        }
    }};
}
macro_rules! outln {
    ($($t:tt)*) => {{
        out!($($t)*);
        out!("\n");
    }};
}

#[derive(Parser, Debug)]
#[command(
    name = "portcullisctl",
    version,
    about = "Control a running Portcullis appliance"
)]
struct Args {
    /// The appliance's control socket (`[control] socket` in its config).
    #[arg(long, short, default_value_os_t = default_socket())]
    socket: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Role, uptime, ports and links.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Counters: packets per port, drops by reason, parse errors, flows, rules, workers.
    Stats {
        #[arg(long)]
        json: bool,
    },
    /// Re-read rules and blocklists from the configuration file and publish them to the
    /// workers; established connections keep flowing. A bad file leaves the running policy.
    Reload,
    /// Close the event log and open its path again (after log rotation moved the file);
    /// SIGUSR2 to portcullisd does the same.
    ReopenLogs,
    /// High availability: `status` (role, peer, bulk sync, sync and authentication counters),
    /// `promote` (become active now and stay so until the peer is seen yielding), `demote`
    /// (become standby and stay so until promoted, or the peer dies).
    Ha {
        #[arg(value_parser = ["status", "promote", "demote"], default_value = "status")]
        action: String,
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    let (cmd, json) = match args.cmd {
        Cmd::Status { json } => ("status", json),
        Cmd::Stats { json } => ("stats", json),
        Cmd::Reload => ("reload", true),
        Cmd::ReopenLogs => ("reopen-logs", true),
        Cmd::Ha { action, json } => {
            let cmd: &'static str = match action.as_str() {
                "promote" => "ha promote",
                "demote" => "ha demote",
                _ => "ha status",
            };
            (cmd, json || cmd != "ha status")
        }
    };
    let reply = match ctl::request(&args.socket, cmd) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("portcullisctl: {e}");
            return ExitCode::FAILURE;
        }
    };
    let failed = reply.get("error").is_some();
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&reply).expect("json value serialises")
        );
        return if failed {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        };
    }
    match cmd {
        "stats" => match serde_json::from_value::<StatsSnapshot>(reply) {
            Ok(s) => out!("{}", s.render()),
            Err(e) => {
                eprintln!("portcullisctl: unexpected stats reply: {e}");
                return ExitCode::FAILURE;
            }
        },
        "ha status" => print_ha(&reply),
        _ => print_status(&reply),
    }
    ExitCode::SUCCESS
}

fn print_ha(v: &serde_json::Value) {
    if let Some(e) = v.get("error") {
        outln!("{}", e.as_str().unwrap_or(""));
        return;
    }
    let s = |x: &serde_json::Value| x.to_string().trim_matches('"').to_string();
    outln!(
        "node {}   role {}   priority {}   preempt {}   eligible {}   flows {}",
        s(&v["node_id"]),
        s(&v["role"]),
        s(&v["priority"]),
        s(&v["preempt"]),
        s(&v["eligible"]),
        s(&v["flows"])
    );
    match v["peer"].as_object() {
        Some(p) => outln!(
            "peer {}   role {}   priority {}   eligible {}   flows {}",
            s(&p["node_id"]),
            s(&p["role"]),
            s(&p["priority"]),
            s(&p["eligible"]),
            s(&p["flows"])
        ),
        None => outln!("peer not heard within the dead time"),
    }
    let b = &v["bulk"];
    outln!(
        "bulk sync {}   {} of {} flows",
        s(&b["state"]),
        s(&b["received"]),
        s(&b["expected"])
    );
    let a = &v["auth"];
    outln!(
        "auth accepted {}   refused {} (bad tag {}, replayed {}, old epoch {}, malformed {})",
        s(&a["accepted"]),
        s(&a["refused"]),
        s(&a["bad_tag"]),
        s(&a["replayed"]),
        s(&a["old_epoch"]),
        s(&a["malformed"])
    );
    let y = &v["sync"];
    outln!(
        "sync sent {} events in {} datagrams ({} resent), received {}, applied {}, worker losses {}",
        s(&y["counters"]["events_sent"]),
        s(&y["sender"]["datagrams"]),
        s(&y["sender"]["resent"]),
        s(&y["counters"]["events_received"]),
        s(&y["imported"]),
        s(&y["worker_lost"])
    );
}

fn print_status(v: &serde_json::Value) {
    let s = |k: &str| {
        v.get(k)
            .map(|x| x.to_string().trim_matches('"').to_string())
            .unwrap_or_default()
    };
    outln!(
        "state {}   mode {}   pid {}   uptime {:.1} s",
        s("state"),
        s("mode"),
        s("pid"),
        v["uptime_secs"].as_f64().unwrap_or(0.0)
    );
    outln!(
        "portcullis {}   {}   config {}",
        s("version"),
        s("dpdk"),
        s("config")
    );
    outln!(
        "control core {}   worker cores {}   idle {}",
        s("control_core"),
        s("worker_cores"),
        s("idle")
    );
    if let Some(ha) = v.get("ha") {
        outln!(
            "ha role {}   peer {}   eligible {}",
            ha["role"].as_str().unwrap_or("?"),
            ha["peer"].as_str().unwrap_or("not heard"),
            ha["eligible"]
        );
    }
    if let Some(e) = v["events"].as_object() {
        outln!(
            "events {}   written {}   lost {}{}",
            e["path"].as_str().unwrap_or(""),
            e["written"],
            e["lost"],
            if e["failing"].as_bool().unwrap_or(false) {
                format!("   failing now: {}", e["last_error"].as_str().unwrap_or(""))
            } else {
                String::new()
            }
        );
    }
    if let Some(ports) = v["ports"].as_array() {
        for p in ports {
            outln!(
                "port {:<12} {:<8} {:<16} driver {:<14} link {:<4} {} Mb/s  mac {}  rx queues {}{}",
                p["name"].as_str().unwrap_or(""),
                p["side"].as_str().unwrap_or(""),
                p["device"].as_str().unwrap_or(""),
                p["driver"].as_str().unwrap_or(""),
                if p["link_up"].as_bool().unwrap_or(false) {
                    "up"
                } else {
                    "down"
                },
                p["speed_mbps"],
                p["mac"].as_str().unwrap_or(""),
                p["rx_queues"],
                if p["rss"].as_bool().unwrap_or(false) {
                    " (rss)"
                } else {
                    ""
                },
            );
        }
    }
}
