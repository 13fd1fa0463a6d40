//! What a run decided, for the end-of-run summary: each check, rule and policy drop that fired,
//! with its action, its count and one example flow; the flows allowed, by application protocol;
//! and the TLS and QUIC names seen with their JA4. Fed by the event log with every worker event
//! it drains (so it knows only what a run with an event log saw), on the control thread or the
//! offline event thread; never touches a worker. Bounded: one example per check or reason, at
//! most `MAX_NAMES` names. The counts of checks, rules and drops come from the counters (events
//! are rate-limited and may be lost); allowed flows and names are counted from the events.

use crate::report::StatsSnapshot;
use dataplane::events::{Event, FlowRef};
use dataplane::flow::Tuple;
use dataplane::stats::DropReason;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Component, Path, PathBuf};

/// Distinct (name, JA4) pairs kept for the summary; more are counted in `names_over`.
const MAX_NAMES: usize = 32;

/// Drop reasons that are decisions of the policy (as opposed to malformed or stateless input);
/// rules have lines of their own, by name, from the rule counters.
const POLICY_DROPS: [DropReason; 2] = [DropReason::Blocklist, DropReason::InboundDefault];

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Decisions {
    /// Where the events went (lexically cleaned) and how many this run wrote (the log's count,
    /// set when it closes).
    pub events_path: String,
    pub events_written: u64,
    /// Check name -> its action and the first flow it fired on.
    pub checks: BTreeMap<String, Example>,
    /// Policy drop reason -> the first packet it dropped that had an event.
    pub drops: BTreeMap<String, Example>,
    /// Rule name -> its action and the first connection it decided that had an event.
    pub rules: BTreeMap<String, Example>,
    /// Application protocol (or transport, when none was named) -> flows that ended allowed.
    pub allowed: BTreeMap<String, u64>,
    pub names: Vec<NameSeen>,
    pub names_over: u64,
    #[serde(skip)]
    port_names: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Example {
    pub action: String,
    /// "tls 10.99.0.1:41680 -> 10.99.0.2:443 sni evil.example", say.
    pub flow: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NameSeen {
    pub sni: String,
    pub ja4: String,
    pub quic: bool,
    pub flows: u64,
}

impl Decisions {
    pub fn new(events_path: &Path, port_names: Vec<String>) -> Decisions {
        Decisions {
            events_path: clean(events_path).display().to_string(),
            port_names,
            ..Decisions::default()
        }
    }

    /// Takes note of one event the log wrote.
    pub fn note(&mut self, ev: &Event) {
        match ev {
            Event::Alert(a) => {
                let flow = flow_text(a.app_proto, &a.flow, a.sni.as_deref());
                self.checks
                    .entry(a.check.name().to_string())
                    .or_insert_with(|| Example {
                        action: a.action.name().to_string(),
                        flow,
                    });
            }
            Event::RuleAlert(r) => {
                let flow = flow_text(None, &r.flow, None);
                self.rules
                    .entry(r.rule.name.to_string())
                    .or_insert_with(|| Example {
                        action: "alert".into(),
                        flow,
                    });
            }
            Event::Drop(d) if d.rule.is_some() => {
                let (Some(r), Some(t)) = (&d.rule, d.tuple) else {
                    return;
                };
                let flow = tuple_text(None, &t);
                self.rules
                    .entry(r.name.to_string())
                    .or_insert_with(|| Example {
                        action: format!("{:?}", r.action).to_lowercase(),
                        flow,
                    });
            }
            Event::Drop(d) if POLICY_DROPS.contains(&d.reason) => {
                let flow = d
                    .tuple
                    .map_or_else(|| "-".to_string(), |t| tuple_text(None, &t));
                self.drops
                    .entry(d.reason.name().to_string())
                    .or_insert_with(|| Example {
                        action: "drop".into(),
                        flow: match self.port_names.get(d.port as usize) {
                            Some(port) => format!("{flow} (in on {port})"),
                            None => flow,
                        },
                    });
            }
            Event::Flow(f) if !f.blocked => {
                let app = match f.app_proto {
                    Some(a) if a != "unknown" => a.to_string(),
                    _ => proto_name(f.key.proto).to_string(),
                };
                *self.allowed.entry(app).or_default() += 1;
            }
            Event::Tls(t) => {
                let sni = t.meta.client.as_ref().and_then(|c| c.sni_str());
                self.name_seen(
                    sni.unwrap_or_else(|| "(no SNI)".into()),
                    &t.meta.ja4,
                    t.meta.quic,
                );
            }
            _ => {}
        }
    }

    fn name_seen(&mut self, sni: String, ja4: &str, quic: bool) {
        if let Some(n) = self
            .names
            .iter_mut()
            .find(|n| n.sni == sni && n.ja4 == ja4 && n.quic == quic)
        {
            n.flows += 1;
        } else if self.names.len() < MAX_NAMES {
            self.names.push(NameSeen {
                sni,
                ja4: ja4.to_string(),
                quic,
                flows: 1,
            });
        } else {
            self.names_over += 1;
        }
    }

    /// The summary's text: counts from `snap`, examples and names from the events.
    pub fn render(&self, snap: &StatsSnapshot) -> String {
        let mut o = String::from(
            "decisions (checks: flows fired/blocked; rules: new connections; policy drops: packets):\n",
        );
        for (name, hits) in &snap.inspection.checks {
            let ex = self.checks.get(name);
            let action = ex.map_or("?", |e| e.action.as_str());
            let flow = ex.map_or("(no event)", |e| e.flow.as_str());
            let count = format!("{}/{}", hits.fired, hits.blocked);
            o += &line(blocks(action), name, action, &count, flow);
        }
        for r in snap.rules.iter().filter(|r| r.hits > 0) {
            let name = format!("rule {}", r.name);
            let flow = self.rules.get(&r.name).map_or("", |e| e.flow.as_str());
            o += &line(
                blocks(&r.action),
                &name,
                &r.action,
                &r.hits.to_string(),
                flow,
            );
        }
        for reason in POLICY_DROPS.map(|r| r.name()) {
            let n = snap.drops.get(reason).copied().unwrap_or(0);
            let flow = self
                .drops
                .get(reason)
                .map_or("(no event: over the drop-event limit)", |e| e.flow.as_str());
            if n > 0 {
                o += &line(true, reason, "drop", &n.to_string(), flow);
            }
        }
        let allowed: u64 = self.allowed.values().sum();
        let by: Vec<String> = self
            .allowed
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let _ = writeln!(o, "  allowed  {allowed} flows ({})", by.join(", "));
        let _ = writeln!(o, "  {}", self.other_drops(snap));
        self.render_names(&mut o);
        let _ = writeln!(
            o,
            "events: {} ({} written by this run)",
            self.events_path, self.events_written
        );
        o
    }

    fn render_names(&self, o: &mut String) {
        if self.names.is_empty() {
            return;
        }
        let _ = writeln!(o, "names seen in hellos (SNI, JA4, flows):");
        for n in &self.names {
            let quic = if n.quic { "  (QUIC)" } else { "" };
            let _ = writeln!(o, "  {:<28} {:<38} {}{quic}", n.sni, n.ja4, n.flows);
        }
        if self.names_over > 0 {
            let _ = writeln!(o, "  ... and {} more hellos", self.names_over);
        }
    }

    /// The drops that are not decisions of their own: later packets of stopped flows, packets
    /// without a connection, malformed input.
    fn other_drops(&self, snap: &StatsSnapshot) -> String {
        let mut parts = Vec::new();
        for (k, &v) in &snap.drops {
            if v == 0 || POLICY_DROPS.iter().any(|r| r.name() == k) {
                continue;
            }
            let what = match k.as_str() {
                "inspection" => "packets of stopped flows (inspection)".to_string(),
                "no_state" => "packets of no connection (no_state)".to_string(),
                other => other.to_string(),
            };
            parts.push(format!("{v} {what}"));
        }
        if parts.is_empty() {
            "no other drops".into()
        } else {
            format!("also dropped: {}", parts.join(", "))
        }
    }
}

/// Whether an action stops traffic (checks' and rules' action names).
fn blocks(action: &str) -> bool {
    matches!(action, "drop" | "reject")
}

/// One decision: verb, what decided, action, count, example.
fn line(blocked: bool, name: &str, action: &str, count: &str, example: &str) -> String {
    let verb = if blocked { "stopped" } else { "flagged" };
    let ex = if example.is_empty() {
        String::new()
    } else {
        format!("  e.g. {example}")
    };
    format!("  {verb:<8} {name:<24} {action:<7} {count:>5}{ex}\n")
}

fn flow_text(app: Option<&str>, f: &FlowRef, sni: Option<&str>) -> String {
    let mut s = tuple_text(app, &f.tuple());
    if let Some(n) = sni {
        let _ = write!(s, " sni {n}");
    }
    s
}

fn tuple_text(app: Option<&str>, t: &Tuple) -> String {
    let name = app.unwrap_or_else(|| proto_name(t.proto));
    format!(
        "{name} {} -> {}",
        endpoint(&t.src, t.src_port, t.ipv6),
        endpoint(&t.dst, t.dst_port, t.ipv6)
    )
}

fn endpoint(a: &[u8; 16], port: u16, v6: bool) -> String {
    if v6 {
        format!("[{}]:{port}", Ipv6Addr::from(*a))
    } else {
        format!("{}:{port}", Ipv4Addr::new(a[0], a[1], a[2], a[3]))
    }
}

fn proto_name(p: u8) -> &'static str {
    use dataplane::wire::protocol;
    match p {
        protocol::TCP => "tcp",
        protocol::UDP => "udp",
        protocol::ICMP | protocol::ICMPV6 => "icmp",
        _ => "ip",
    }
}

/// `configs/../out/x` -> `out/x`, without touching the file system.
pub(crate) fn clean(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_drops_dot_dot_after_a_name_only() {
        assert_eq!(
            clean(Path::new("configs/../out/e.json")),
            Path::new("out/e.json")
        );
        assert_eq!(
            clean(Path::new("../out/./e.json")),
            Path::new("../out/e.json")
        );
        assert_eq!(clean(Path::new("/a/b/../c")), Path::new("/a/c"));
    }

    #[test]
    fn render_takes_counts_from_the_counters_and_examples_from_events() {
        use crate::report::{CheckHits, RuleHits};
        let mut snap = StatsSnapshot::default();
        snap.inspection.checks.insert(
            "sni_blocked".into(),
            CheckHits {
                fired: 3,
                blocked: 3,
            },
        );
        snap.drops.insert("inbound_default".into(), 7);
        snap.drops.insert("no_state".into(), 2);
        snap.rules.push(RuleHits {
            name: "ssh-out".into(),
            action: "alert".into(),
            hits: 4,
        });
        let mut d = Decisions::new(Path::new("a/../eve.json"), vec![]);
        d.checks.insert(
            "sni_blocked".into(),
            Example {
                action: "drop".into(),
                flow: "tls 10.0.0.1:1 -> 10.0.0.2:443 sni evil.example".into(),
            },
        );
        d.allowed.insert("tls".into(), 2);
        let text = d.render(&snap);
        assert!(
            text.contains("stopped  sni_blocked              drop      3/3  e.g. tls 10.0.0.1:1"),
            "{text}"
        );
        assert!(
            text.contains("flagged  rule ssh-out             alert       4"),
            "{text}"
        );
        assert!(
            text.contains("stopped  inbound_default          drop        7  e.g. (no event"),
            "{text}"
        );
        assert!(text.contains("allowed  2 flows (tls 2)"), "{text}");
        assert!(
            text.contains("also dropped: 2 packets of no connection (no_state)"),
            "{text}"
        );
        assert!(text.contains("events: eve.json"), "{text}");
    }

    #[test]
    fn names_are_bounded_and_counted() {
        let mut d = Decisions::default();
        for i in 0..MAX_NAMES + 5 {
            d.name_seen(format!("n{i}.example"), "t13d", false);
        }
        d.name_seen("n0.example".into(), "t13d", false);
        assert_eq!(d.names.len(), MAX_NAMES);
        assert_eq!(d.names_over, 5);
        assert_eq!(d.names[0].flows, 2);
    }
}
