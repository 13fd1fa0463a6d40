//! Snapshots of the appliance's counters, in one shape for the end-of-run summary, the control
//! socket (`portcullisctl stats --json`) and the human-readable table. Built by the control thread
//! from the workers' single-writer counters; never touched by a worker.

use crate::decisions::Decisions;
use crate::eventfile::EventFileSnapshot;
use dataplane::inspect::checks::Check;
use dataplane::parse::ParseError;
use dataplane::stats::{DropReason, WorkerStats};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StatsSnapshot {
    /// "dpdk" or "offline".
    pub mode: String,
    pub uptime_secs: f64,
    pub ports: Vec<PortSnapshot>,
    pub workers: Vec<WorkerSnapshot>,
    /// Drops by reason, summed over workers; every reason appears, zero or not.
    pub drops: BTreeMap<String, u64>,
    /// Parse errors by name, summed over workers; only non-zero ones.
    pub parse_errors: BTreeMap<String, u64>,
    pub flows_created: u64,
    pub flows_active: u64,
    pub flows_expired: u64,
    /// TCP connections whose handshake is not complete (gauge).
    pub half_open: u64,
    /// ICMP errors passed as related to a tracked connection.
    pub related: u64,
    /// New connections each rule matched, in rule order.
    pub rules: Vec<RuleHits>,
    pub alerts: u64,
    pub rejects_sent: u64,
    pub rejects_suppressed: u64,
    /// Events lost to full queues, and drop events held back by the per-second limit.
    pub events_lost: u64,
    pub drop_events_suppressed: u64,
    pub fragments: u64,
    pub non_ip: u64,
    /// Payload inspection: flows, hellos, and each check that fired (only non-zero ones).
    #[serde(default)]
    pub inspection: InspectionSnapshot,
    /// What the run's events say was decided (end of a run with an event log only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decisions: Option<Decisions>,
    /// The event log: written, lost by cause, the last error (when one is configured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_log: Option<EventFileSnapshot>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct InspectionSnapshot {
    /// Flows whose first payload was inspected.
    pub flows: u64,
    /// Flows in inspection now (gauge).
    pub in_progress: u64,
    /// Flows not inspected past their first packet: every slot was taken.
    pub no_slot: u64,
    pub client_hellos: u64,
    pub malformed_hellos: u64,
    /// Check name -> flows it fired on and flows it stopped.
    pub checks: BTreeMap<String, CheckHits>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CheckHits {
    pub fired: u64,
    pub blocked: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PortSnapshot {
    pub name: String,
    pub device: String,
    pub driver: String,
    /// "inside" or "outside".
    pub side: String,
    pub peer: String,
    pub link_up: bool,
    pub speed_mbps: u32,
    pub rx_queues: u16,
    pub rss: bool,
    /// Counted by the workers.
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    /// Counted by the device (rte_eth_stats); absent offline.
    pub device_stats: Option<DeviceStats>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DeviceStats {
    pub ipackets: u64,
    pub opackets: u64,
    pub imissed: u64,
    pub ierrors: u64,
    pub oerrors: u64,
    pub rx_nombuf: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RuleHits {
    pub name: String,
    pub action: String,
    pub hits: u64,
}

/// The workers' rule hit counters, summed, by rule index.
pub fn rule_counts(workers: &[&WorkerStats]) -> Vec<u64> {
    (0..dataplane::policy::MAX_RULES)
        .map(|i| workers.iter().map(|w| w.rule_hits.0[i].get()).sum())
        .collect()
}

/// Rule hits across reloads. Workers count by rule index and never reset; at a reload the
/// control thread rebases each rule of the new list on the hits its name had, so a rule that
/// stays keeps its count, a removed one disappears and a new one starts at 0. (Hits counted
/// in the moment between the rebase and a worker taking up the new list go to the rule at the
/// same index in the new list.)
#[derive(Debug, Clone, Default)]
pub struct RuleHitBase(Vec<i64>);

impl RuleHitBase {
    /// Rule `i`'s hits, given what the workers counted at its index.
    pub fn hits(&self, i: usize, counted: u64) -> u64 {
        (self.0.get(i).copied().unwrap_or(0) + counted as i64).max(0) as u64
    }

    /// Before publishing `new` in place of `old`, with the workers' counts now.
    pub fn rebase(
        &mut self,
        old: &dataplane::policy::Policy,
        new: &dataplane::policy::Policy,
        counted: &[u64],
    ) {
        let total = |name: &str| -> i64 {
            old.rules
                .iter()
                .position(|r| &*r.name == name)
                .map_or(0, |i| self.hits(i, counted[i]) as i64)
        };
        let base: Vec<i64> = new
            .rules
            .iter()
            .enumerate()
            .map(|(j, r)| total(&r.name) - counted[j] as i64)
            .collect();
        self.0 = base;
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WorkerSnapshot {
    pub index: usize,
    pub core: Option<usize>,
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub drops: u64,
    pub flows_active: u64,
    pub steered_in: u64,
    pub steered_out: u64,
    pub polls: u64,
    pub empty_polls: u64,
    pub idle_sleeps: u64,
}

impl StatsSnapshot {
    /// Sums the workers' counters. `ports` come with names and device data filled in; their
    /// rx/tx counts are filled here.
    pub fn collect(
        mode: &str,
        uptime_secs: f64,
        mut ports: Vec<PortSnapshot>,
        workers: &[(Option<usize>, &WorkerStats)],
    ) -> Self {
        let mut s = StatsSnapshot {
            mode: mode.to_string(),
            uptime_secs,
            ..Default::default()
        };
        for r in DropReason::ALL {
            s.drops.insert(r.name().to_string(), 0);
        }
        for (i, (core, w)) in workers.iter().enumerate() {
            for (p, port) in ports.iter_mut().enumerate() {
                port.rx_packets += w.rx_packets[p].get();
                port.rx_bytes += w.rx_bytes[p].get();
                port.tx_packets += w.tx_packets[p].get();
                port.tx_bytes += w.tx_bytes[p].get();
            }
            for r in DropReason::ALL {
                *s.drops.get_mut(r.name()).expect("inserted above") += w.drops[r.index()].get();
            }
            for e in ParseError::ALL {
                let n = w.parse_errors[e.index()].get();
                if n > 0 {
                    *s.parse_errors.entry(e.name().to_string()).or_default() += n;
                }
            }
            s.flows_created += w.flows_created.get();
            s.flows_active += w.flows_active.get();
            s.flows_expired += w.flows_expired.get();
            s.half_open += w.half_open.get();
            s.related += w.related.get();
            s.alerts += w.alerts.get();
            s.rejects_sent += w.rejects_sent.get();
            s.rejects_suppressed += w.rejects_suppressed.get();
            s.events_lost += w.events_lost.get();
            s.drop_events_suppressed += w.drop_events_suppressed.get();
            s.fragments += w.fragments.get();
            s.non_ip += w.non_ip.get();
            let ins = &mut s.inspection;
            ins.flows += w.inspected.get();
            ins.in_progress += w.inspecting.get();
            ins.no_slot += w.inspect_no_slot.get();
            ins.client_hellos += w.client_hellos.get();
            ins.malformed_hellos += w.malformed_hellos.get();
            for c in Check::ALL {
                let (f, b) = (
                    w.checks_fired[c.index()].get(),
                    w.checks_blocked[c.index()].get(),
                );
                if f + b > 0 {
                    let e = ins.checks.entry(c.name().to_string()).or_default();
                    e.fired += f;
                    e.blocked += b;
                }
            }
            s.workers.push(WorkerSnapshot {
                index: i,
                core: *core,
                rx_packets: w.rx_packets.iter().map(|c| c.get()).sum(),
                tx_packets: w.tx_packets.iter().map(|c| c.get()).sum(),
                drops: w.drops_total(),
                flows_active: w.flows_active.get(),
                steered_in: w.steered_in.get(),
                steered_out: w.steered_out.get(),
                polls: w.polls.get(),
                empty_polls: w.empty_polls.get(),
                idle_sleeps: w.idle_sleeps.get(),
            });
        }
        s.ports = ports;
        s
    }

    /// Fills in the per-rule hit counts, summed over workers, for the rules of `policy`.
    pub fn with_rules(
        mut self,
        policy: &dataplane::policy::Policy,
        workers: &[&WorkerStats],
        base: &RuleHitBase,
    ) -> Self {
        let counted = rule_counts(workers);
        self.rules = policy
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| RuleHits {
                name: r.name.to_string(),
                action: format!("{:?}", r.action).to_lowercase(),
                hits: base.hits(i, counted[i]),
            })
            .collect();
        self
    }

    pub fn rx_total(&self) -> u64 {
        self.ports.iter().map(|p| p.rx_packets).sum()
    }

    pub fn tx_total(&self) -> u64 {
        self.ports.iter().map(|p| p.tx_packets).sum()
    }

    pub fn drops_total(&self) -> u64 {
        self.drops.values().sum()
    }

    /// The human-readable table printed at exit and by `portcullisctl stats`.
    pub fn render(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(o, "mode {}   uptime {:.1} s", self.mode, self.uptime_secs);
        let _ = writeln!(
            o,
            "{:<12} {:<8} {:<16} {:>12} {:>14} {:>12} {:>14}",
            "port", "side", "device", "rx packets", "rx bytes", "tx packets", "tx bytes"
        );
        for p in &self.ports {
            let _ = writeln!(
                o,
                "{:<12} {:<8} {:<16} {:>12} {:>14} {:>12} {:>14}",
                p.name, p.side, p.device, p.rx_packets, p.rx_bytes, p.tx_packets, p.tx_bytes
            );
            if let Some(d) = &p.device_stats {
                if d.imissed + d.ierrors + d.oerrors + d.rx_nombuf > 0 {
                    let _ = writeln!(
                        o,
                        "{:<12} device: imissed {} ierrors {} oerrors {} rx_nombuf {}",
                        "", d.imissed, d.ierrors, d.oerrors, d.rx_nombuf
                    );
                }
            }
        }
        let _ = writeln!(
            o,
            "total        rx {}  tx {}  dropped {}",
            self.rx_total(),
            self.tx_total(),
            self.drops_total()
        );
        if self.rejects_sent + self.rejects_suppressed > 0 {
            let _ = writeln!(
                o,
                "             tx = {} forwarded + {} sent by the appliance (TCP RSTs and ICMP \
                 unreachables answering reject and refused flows; {} over the limit not sent)",
                self.tx_total().saturating_sub(self.rejects_sent),
                self.rejects_sent,
                self.rejects_suppressed
            );
        }
        let _ = write!(o, "drops:");
        for (k, v) in &self.drops {
            let _ = write!(o, " {k}={v}");
        }
        let _ = writeln!(o);
        if !self.parse_errors.is_empty() {
            let _ = write!(o, "parse errors:");
            for (k, v) in &self.parse_errors {
                let _ = write!(o, " {k}={v}");
            }
            let _ = writeln!(o);
        }
        let _ = writeln!(
            o,
            "connections: created {} active {} (half-open {}) expired {}   related {}   link-control frames {}   ip fragments {}",
            self.flows_created,
            self.flows_active,
            self.half_open,
            self.flows_expired,
            self.related,
            self.non_ip,
            self.fragments
        );
        if !self.rules.is_empty() {
            let _ = write!(o, "rules (new connections):");
            for r in &self.rules {
                let _ = write!(o, " {}[{}]={}", r.name, r.action, r.hits);
            }
            let _ = writeln!(
                o,
                "   alerts {}   rejects sent {} (over the limit, dropped: {})",
                self.alerts, self.rejects_sent, self.rejects_suppressed
            );
        }
        let ins = &self.inspection;
        if ins.flows > 0 {
            let _ = write!(
                o,
                "inspection: flows {} (in progress {}, no slot {})   hellos {} (malformed {})",
                ins.flows, ins.in_progress, ins.no_slot, ins.client_hellos, ins.malformed_hellos
            );
            if !ins.checks.is_empty() {
                let _ = write!(o, "   checks, flows fired/blocked:");
            }
            for (name, h) in &ins.checks {
                let _ = write!(o, "   {name} {}/{}", h.fired, h.blocked);
            }
            let _ = writeln!(o);
        }
        if self.events_lost + self.drop_events_suppressed > 0 {
            let _ = writeln!(
                o,
                "events: lost {} (queue full)   drop events over the limit {}",
                self.events_lost, self.drop_events_suppressed
            );
        }
        if let Some(e) = &self.event_log {
            let l = &e.lost;
            let _ = writeln!(
                o,
                "event log {}: written {}   lost {} (disk full {}, I/O error {}, not open {}){}",
                e.path,
                e.written,
                l.total(),
                l.disk_full,
                l.io_error,
                l.not_open,
                match (&e.last_error, e.failing) {
                    (Some(err), true) => format!("   failing now: {err}"),
                    (Some(err), false) => format!("   last error: {err}"),
                    _ => String::new(),
                }
            );
        }
        for w in &self.workers {
            let idle = if w.polls > 0 {
                100.0 * w.empty_polls as f64 / w.polls as f64
            } else {
                0.0
            };
            let _ = writeln!(
                o,
                "worker {} (core {}): rx {} tx {} drops {} flows {} steered in/out {}/{} idle {:.0}% sleeps {}",
                w.index,
                w.core.map_or("-".to_string(), |c| c.to_string()),
                w.rx_packets,
                w.tx_packets,
                w.drops,
                w.flows_active,
                w.steered_in,
                w.steered_out,
                idle,
                w.idle_sleeps
            );
        }
        if let Some(d) = &self.decisions {
            o.push_str(&d.render(self));
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::policy::{Direction, Policy, Rule, RuleAction};

    fn policy(names: &[&str]) -> Policy {
        let mut p = Policy::default();
        for n in names {
            p.rules.push(Rule {
                name: (*n).into(),
                action: RuleAction::Alert,
                direction: Direction::Any,
                proto: None,
                src: vec![],
                dst: vec![],
                src_ports: vec![],
                dst_ports: vec![],
            });
        }
        p
    }

    #[test]
    fn hits_follow_the_name_across_reloads() {
        let mut base = RuleHitBase::default();
        let mut counted = vec![0u64; dataplane::policy::MAX_RULES];
        let (a, b) = (policy(&["x", "y"]), policy(&["new", "y", "x"]));
        counted[0] = 5; // x
        counted[1] = 7; // y
        base.rebase(&a, &b, &counted);
        assert_eq!(base.hits(0, counted[0]), 0, "a new rule starts at 0");
        assert_eq!(base.hits(1, counted[1]), 7);
        assert_eq!(base.hits(2, counted[2]), 5);
        counted[2] += 3; // x hit again at its new index
        let c = policy(&["x"]);
        base.rebase(&b, &c, &counted);
        assert_eq!(
            base.hits(0, counted[0]),
            8,
            "x kept 5 + 3; y and new are gone"
        );
    }
}
