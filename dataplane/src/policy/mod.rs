//! Policy: what new connections may open. An ordered, first-match rule list, IP blocklists
//! (applied to both endpoints, in both directions) and the zone default (a connection opened
//! from inside is allowed, one from outside is not). Built by the control thread, immutable,
//! published to workers by pointer swap; a worker picks the new one up between bursts.
//!
//! Policy judges a connection once, when it opens: established connections keep their verdict
//! across reloads. Must never allocate when judging.

pub mod cidr;

use cidr::{Cidr, PrefixSet};

/// Rules a policy may hold (each has a hit counter per worker).
pub const MAX_RULES: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleAction {
    Allow,
    Drop,
    /// Drop, and answer the initiator (TCP RST, ICMP port unreachable for UDP).
    Reject,
    /// Allow and raise an alert.
    Alert,
}

/// Which connections a rule looks at, by the zone they were opened from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Opened from an inside port.
    Outbound,
    /// Opened from an outside port.
    Inbound,
    Any,
}

/// One rule. Empty address or port lists match anything.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Shared with the events that name it.
    pub name: std::sync::Arc<str>,
    pub action: RuleAction,
    pub direction: Direction,
    /// IP protocol number; `None` for any.
    pub proto: Option<u8>,
    pub src: Vec<Cidr>,
    pub dst: Vec<Cidr>,
    pub src_ports: Vec<(u16, u16)>,
    pub dst_ports: Vec<(u16, u16)>,
}

/// What policy needs to know of a connection's first packet: its tuple as the opener sent it,
/// and the zone it was opened from.
#[derive(Debug, Clone, Copy)]
pub struct NewConn {
    pub t: crate::flow::Tuple,
    /// Opened from an outside port.
    pub inbound: bool,
}

impl Rule {
    #[inline]
    fn matches(&self, c: &NewConn) -> bool {
        let dir = match self.direction {
            Direction::Any => true,
            Direction::Outbound => !c.inbound,
            Direction::Inbound => c.inbound,
        };
        let in_ports = |list: &[(u16, u16)], p: u16| {
            list.is_empty() || list.iter().any(|&(lo, hi)| p >= lo && p <= hi)
        };
        let in_set = |set: &[Cidr], a: &[u8; 16]| {
            set.is_empty() || set.iter().any(|n| n.contains(a, c.t.ipv6))
        };
        dir && self.proto.is_none_or(|p| p == c.t.proto)
            && in_set(&self.src, &c.t.src)
            && in_set(&self.dst, &c.t.dst)
            && in_ports(&self.src_ports, c.t.src_port)
            && in_ports(&self.dst_ports, c.t.dst_port)
    }
}

/// The judgement on a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// No rule matched and the zone default allows (opened from inside).
    Allow,
    /// A rule matched: its index and action.
    Rule(usize, RuleAction),
    /// An endpoint is on a blocklist.
    Blocklisted,
    /// No rule matched and the zone default refuses (opened from outside).
    DefaultInbound,
}

/// A complete policy.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub rules: Vec<Rule>,
    pub blocklist: PrefixSet,
    /// What inspection checks on a flow's payload (protocol, TLS and QUIC handshakes).
    pub inspect: crate::inspect::checks::InspectPolicy,
}

impl Policy {
    /// Judges a new connection: blocklist first (either endpoint), then the first matching
    /// rule, then the zone default.
    #[inline]
    pub fn decide(&self, c: &NewConn) -> Decision {
        if !self.blocklist.is_empty()
            && (self.blocklist.contains(&c.t.src, c.t.ipv6)
                || self.blocklist.contains(&c.t.dst, c.t.ipv6))
        {
            return Decision::Blocklisted;
        }
        for (i, r) in self.rules.iter().enumerate() {
            if r.matches(c) {
                return Decision::Rule(i, r.action);
            }
        }
        if c.inbound {
            Decision::DefaultInbound
        } else {
            Decision::Allow
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> [u8; 16] {
        let c: Cidr = s.parse().unwrap();
        let mut x = [0u8; 16];
        if c.v6 {
            x = c.addr.to_be_bytes();
        } else {
            x[..4].copy_from_slice(&(c.addr as u32).to_be_bytes());
        }
        x
    }

    fn conn(src: &str, dst: &str, dport: u16, inbound: bool) -> NewConn {
        let t = crate::flow::Tuple {
            src: a(src),
            dst: a(dst),
            src_port: 40000,
            dst_port: dport,
            proto: 6,
            ipv6: false,
        };
        NewConn { t, inbound }
    }

    /// The shipped example: only 10.0.0.0/8 may open outbound connections to port 443.
    fn https_from_10_only() -> Policy {
        Policy {
            rules: vec![
                Rule {
                    name: "https-from-lan".into(),
                    action: RuleAction::Allow,
                    direction: Direction::Outbound,
                    proto: Some(6),
                    src: vec!["10.0.0.0/8".parse().unwrap()],
                    dst: vec![],
                    src_ports: vec![],
                    dst_ports: vec![(443, 443)],
                },
                Rule {
                    name: "https-others".into(),
                    action: RuleAction::Reject,
                    direction: Direction::Outbound,
                    proto: Some(6),
                    src: vec![],
                    dst: vec![],
                    src_ports: vec![],
                    dst_ports: vec![(443, 443)],
                },
            ],
            blocklist: PrefixSet::new(&["203.0.113.0/24".parse().unwrap()]),
            inspect: Default::default(),
        }
    }

    #[test]
    fn first_match_then_zone_default() {
        let p = https_from_10_only();
        assert_eq!(
            p.decide(&conn("10.9.8.7", "192.0.2.1", 443, false)),
            Decision::Rule(0, RuleAction::Allow)
        );
        assert_eq!(
            p.decide(&conn("172.16.0.1", "192.0.2.1", 443, false)),
            Decision::Rule(1, RuleAction::Reject)
        );
        assert_eq!(
            p.decide(&conn("172.16.0.1", "192.0.2.1", 80, false)),
            Decision::Allow
        );
        assert_eq!(
            p.decide(&conn("192.0.2.1", "10.9.8.7", 22, true)),
            Decision::DefaultInbound
        );
    }

    #[test]
    fn blocklist_applies_to_both_endpoints_before_rules() {
        let p = https_from_10_only();
        assert_eq!(
            p.decide(&conn("10.1.1.1", "203.0.113.9", 443, false)),
            Decision::Blocklisted
        );
        assert_eq!(
            p.decide(&conn("203.0.113.9", "10.1.1.1", 22, true)),
            Decision::Blocklisted
        );
    }
}
