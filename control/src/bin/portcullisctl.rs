//! portcullisctl — talks to a running portcullisd over its control socket.

use clap::{Parser, Subcommand};
use control::config::default_socket;
use control::ctl;
use control::report::StatsSnapshot;
use std::path::PathBuf;
use std::process::ExitCode;

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
}

fn main() -> ExitCode {
    let args = Args::parse();
    let (cmd, json) = match args.cmd {
        Cmd::Status { json } => ("status", json),
        Cmd::Stats { json } => ("stats", json),
        Cmd::Reload => ("reload", true),
    };
    let reply = match ctl::request(&args.socket, cmd) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("portcullisctl: {e}");
            return ExitCode::FAILURE;
        }
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&reply).expect("json value serialises")
        );
        return ExitCode::SUCCESS;
    }
    match cmd {
        "stats" => match serde_json::from_value::<StatsSnapshot>(reply) {
            Ok(s) => print!("{}", s.render()),
            Err(e) => {
                eprintln!("portcullisctl: unexpected stats reply: {e}");
                return ExitCode::FAILURE;
            }
        },
        _ => print_status(&reply),
    }
    ExitCode::SUCCESS
}

fn print_status(v: &serde_json::Value) {
    let s = |k: &str| {
        v.get(k)
            .map(|x| x.to_string().trim_matches('"').to_string())
            .unwrap_or_default()
    };
    println!(
        "state {}   mode {}   pid {}   uptime {:.1} s",
        s("state"),
        s("mode"),
        s("pid"),
        v["uptime_secs"].as_f64().unwrap_or(0.0)
    );
    println!(
        "portcullis {}   {}   config {}",
        s("version"),
        s("dpdk"),
        s("config")
    );
    println!(
        "control core {}   worker cores {}   idle {}",
        s("control_core"),
        s("worker_cores"),
        s("idle")
    );
    if let Some(ports) = v["ports"].as_array() {
        for p in ports {
            println!(
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
