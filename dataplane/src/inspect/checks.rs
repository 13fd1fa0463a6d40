//! The policy checks on what inspection found, each with a name (for events and counters) and
//! a configurable action. Built by the control thread as part of the policy, read by workers.

use super::detect::AppProto;
use super::tls::{weak_cipher, CertInfo, ClientHello, ServerHello};
use std::collections::HashSet;

/// What a check does when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CheckAction {
    /// Nothing (the check is off).
    Allow,
    /// Report it (an `alert` event, counted) and let the flow go on.
    Alert,
    /// Drop the packet that revealed it and every later packet of the flow.
    Drop,
    /// As drop, and reset a TCP connection in both directions (ICMP port unreachable for UDP),
    /// so that clients fail at once instead of timing out.
    Reject,
}

impl CheckAction {
    pub fn name(self) -> &'static str {
        match self {
            CheckAction::Allow => "allow",
            CheckAction::Alert => "alert",
            CheckAction::Drop => "drop",
            CheckAction::Reject => "reject",
        }
    }

    pub fn from_name(s: &str) -> Option<CheckAction> {
        Some(match s {
            "allow" => CheckAction::Allow,
            "alert" => CheckAction::Alert,
            "drop" => CheckAction::Drop,
            "reject" => CheckAction::Reject,
            _ => return None,
        })
    }

    /// Whether the flow is stopped.
    pub fn blocks(self) -> bool {
        self >= CheckAction::Drop
    }
}

/// The checks, in the order they are evaluated for a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Check {
    /// TLS on a port outside the TLS ports.
    TlsUnexpectedPort,
    /// Anything but TLS (plain HTTP, SSH, unknown) on a TLS port.
    NonTlsOnTlsPort,
    /// A protocol on a port reserved for another (`[inspect.reserved_ports]`).
    ProtocolPortMismatch,
    /// A ClientHello or ServerHello that does not parse.
    MalformedHello,
    SniBlocked,
    /// An SNI that is not on the allow list, when there is one.
    SniNotAllowed,
    SniMissing,
    /// A TLS version below the minimum (offered at most, or selected).
    TlsVersion,
    /// The server selected a NULL, EXPORT, RC4, DES/3DES or anonymous cipher.
    WeakCipher,
    Ja3Blocked,
    Ja4Blocked,
    CertExpired,
    CertNotYetValid,
    CertSelfSigned,
    /// Encrypted Client Hello (or ESNI) offered: the real SNI is hidden.
    EchPresent,
    /// QUIC itself: blocking it makes browsers fall back to TCP, where the handshake can be read.
    QuicBlocked,
    /// A TLS or QUIC flow left inspection (packet or time bound, or its end) before its hello
    /// was complete: a hello dribbled out or sent out of reach to slip past the checks.
    HelloIncomplete,
    /// Every inspection slot of the worker was taken: the flow could not be inspected (a flood
    /// of handshakes that never finish). `drop` makes inspection fail closed.
    InspectionOverload,
    /// A TCP segment overlapping handshake bytes inspection already holds, with other content:
    /// hosts differ on which copy wins, so the one inspected might not be the one read.
    TcpOverlapMismatch,
}

pub const CHECKS: usize = 19;
// `Fired` holds one bit per check.
const _: () = assert!(CHECKS <= 32);

impl Check {
    pub const ALL: [Check; CHECKS] = [
        Check::TlsUnexpectedPort,
        Check::NonTlsOnTlsPort,
        Check::ProtocolPortMismatch,
        Check::MalformedHello,
        Check::SniBlocked,
        Check::SniNotAllowed,
        Check::SniMissing,
        Check::TlsVersion,
        Check::WeakCipher,
        Check::Ja3Blocked,
        Check::Ja4Blocked,
        Check::CertExpired,
        Check::CertNotYetValid,
        Check::CertSelfSigned,
        Check::EchPresent,
        Check::QuicBlocked,
        Check::HelloIncomplete,
        Check::InspectionOverload,
        Check::TcpOverlapMismatch,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Check::TlsUnexpectedPort => "tls_unexpected_port",
            Check::NonTlsOnTlsPort => "non_tls_on_tls_port",
            Check::ProtocolPortMismatch => "protocol_port_mismatch",
            Check::MalformedHello => "malformed_hello",
            Check::SniBlocked => "sni_blocked",
            Check::SniNotAllowed => "sni_not_allowed",
            Check::SniMissing => "sni_missing",
            Check::TlsVersion => "tls_version",
            Check::WeakCipher => "weak_cipher",
            Check::Ja3Blocked => "ja3_blocked",
            Check::Ja4Blocked => "ja4_blocked",
            Check::CertExpired => "cert_expired",
            Check::CertNotYetValid => "cert_not_yet_valid",
            Check::CertSelfSigned => "cert_self_signed",
            Check::EchPresent => "ech_present",
            Check::QuicBlocked => "quic_blocked",
            Check::HelloIncomplete => "hello_incomplete",
            Check::InspectionOverload => "inspection_overload",
            Check::TcpOverlapMismatch => "tcp_overlap_mismatch",
        }
    }

    pub fn from_name(s: &str) -> Option<Check> {
        Check::ALL.iter().copied().find(|c| c.name() == s)
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// Host names: exact names and `*.suffix` wildcards (which match any name below the suffix,
/// not the suffix itself), compared without case and without a trailing dot.
#[derive(Debug, Clone, Default)]
pub struct NameSet {
    exact: HashSet<String>,
    suffixes: HashSet<String>,
}

impl NameSet {
    pub fn insert(&mut self, pattern: &str) {
        let p = pattern.trim().trim_end_matches('.').to_ascii_lowercase();
        if let Some(s) = p.strip_prefix("*.") {
            self.suffixes.insert(s.to_string());
        } else if !p.is_empty() {
            self.exact.insert(p);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.suffixes.is_empty()
    }

    pub fn len(&self) -> usize {
        self.exact.len() + self.suffixes.len()
    }

    pub fn matches(&self, name: &[u8]) -> bool {
        let Ok(n) = std::str::from_utf8(name) else {
            return false;
        };
        let n = n.trim_end_matches('.').to_ascii_lowercase();
        if self.exact.contains(&n) {
            return true;
        }
        // Every proper suffix after a dot: a.b.example.com → b.example.com, example.com, com.
        let mut rest = n.as_str();
        while let Some(i) = rest.find('.') {
            rest = &rest[i + 1..];
            if self.suffixes.contains(rest) {
                return true;
            }
        }
        false
    }
}

/// The TLS ports when the config names none (IANA's implicit-TLS services: HTTPS, SMTPS, LDAPS,
/// DNS over TLS, FTPS, TELNETS, IMAPS, POP3S, SIPS, and 8443).
pub const DEFAULT_TLS_PORTS: [u16; 11] = [443, 465, 636, 853, 989, 990, 992, 993, 995, 5061, 8443];

/// A set of ports as a bitmap (8 KiB): one load per lookup.
#[derive(Clone)]
pub struct PortSet(Box<[u64; 1024]>);

impl Default for PortSet {
    fn default() -> Self {
        PortSet(Box::new([0; 1024]))
    }
}

impl std::fmt::Debug for PortSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ports: Vec<u16> = (0..=u16::MAX).filter(|p| self.contains(*p)).collect();
        write!(f, "{ports:?}")
    }
}

impl PortSet {
    pub fn from_ports(ports: &[u16]) -> PortSet {
        let mut s = PortSet::default();
        for &p in ports {
            s.insert(p);
        }
        s
    }

    pub fn insert(&mut self, p: u16) {
        self.0[p as usize >> 6] |= 1 << (p & 63);
    }

    #[inline]
    pub fn contains(&self, p: u16) -> bool {
        self.0[p as usize >> 6] & (1 << (p & 63)) != 0
    }
}

/// The inspection part of the policy.
#[derive(Debug, Clone)]
pub struct InspectPolicy {
    /// Inspect flows at all (detection, TLS and QUIC metadata, checks, events).
    pub enabled: bool,
    pub tls_ports: PortSet,
    /// Ports reserved for one protocol: another protocol detected there fires
    /// `protocol_port_mismatch` (e.g. 5060 = sip stops HTTP sent to SIP ports).
    pub reserved_ports: Vec<(u16, AppProto)>,
    /// Protocols allowed only on some ports: elsewhere they fire `protocol_port_mismatch`
    /// (e.g. ssh = [22] stops SSH tunnelled through any other port).
    pub pinned: Vec<(AppProto, Vec<u16>)>,
    pub actions: [CheckAction; CHECKS],
    pub sni_block: NameSet,
    /// When not empty, only these names may be asked for.
    pub sni_allow: NameSet,
    /// The lowest acceptable TLS version (0x0303 = TLS 1.2); 0 for none.
    pub min_version: u16,
    /// JA3 hashes (lowercase hex) and JA4 strings of known-bad clients.
    pub ja3_block: HashSet<String>,
    pub ja4_block: HashSet<String>,
}

impl Default for InspectPolicy {
    /// Built-in defaults: detection on, alerts on, nothing blocked. Checks that need lists do
    /// nothing until lists are given.
    fn default() -> Self {
        let mut actions = [CheckAction::Alert; CHECKS];
        for c in [Check::SniMissing, Check::EchPresent, Check::QuicBlocked] {
            actions[c.index()] = CheckAction::Allow;
        }
        // Not a policy but a defence: the receiver may assemble the copy nobody inspected.
        actions[Check::TcpOverlapMismatch.index()] = CheckAction::Drop;
        InspectPolicy {
            enabled: true,
            tls_ports: PortSet::from_ports(&DEFAULT_TLS_PORTS),
            reserved_ports: Vec::new(),
            pinned: Vec::new(),
            actions,
            sni_block: NameSet::default(),
            sni_allow: NameSet::default(),
            min_version: 0x0303,
            ja3_block: HashSet::new(),
            ja4_block: HashSet::new(),
        }
    }
}

/// The checks that fired on a flow, as a bitmap by `Check::index`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fired(pub u32);

impl Fired {
    pub fn set(&mut self, c: Check) {
        self.0 |= 1 << c.index();
    }

    pub fn has(self, c: Check) -> bool {
        self.0 & (1 << c.index()) != 0
    }

    pub fn iter(self) -> impl Iterator<Item = Check> {
        Check::ALL.into_iter().filter(move |c| self.has(*c))
    }
}

impl InspectPolicy {
    pub fn action(&self, c: Check) -> CheckAction {
        self.actions[c.index()]
    }

    /// A segment disagreed with handshake bytes already held (`TcpOverlapMismatch`).
    pub fn fire_overlap(&self, fired: &mut Fired) {
        self.fire(fired, Check::TcpOverlapMismatch);
    }

    /// Fires `c` when its action is not `allow`.
    fn fire(&self, fired: &mut Fired, c: Check) {
        if self.action(c) != CheckAction::Allow {
            fired.set(c);
        }
    }

    /// The strongest action among the fired checks, and the first check that carries it.
    pub fn verdict(&self, fired: Fired) -> Option<(Check, CheckAction)> {
        let mut best: Option<(Check, CheckAction)> = None;
        for c in fired.iter() {
            let a = self.action(c);
            if best.is_none_or(|(_, b)| a > b) {
                best = Some((c, a));
            }
        }
        best
    }

    /// Checks on a flow's detected protocol and its server port (first payload).
    pub fn check_protocol(&self, proto: AppProto, server_port: u16, udp: bool, fired: &mut Fired) {
        let tls = matches!(proto, AppProto::Tls | AppProto::Quic);
        if !udp && !tls && self.tls_ports.contains(server_port) {
            self.fire(fired, Check::NonTlsOnTlsPort);
        }
        if tls && !self.tls_ports.contains(server_port) {
            self.fire(fired, Check::TlsUnexpectedPort);
        }
        if proto == AppProto::Quic {
            self.fire(fired, Check::QuicBlocked);
        }
        for &(port, expected) in &self.reserved_ports {
            if port == server_port && proto != expected {
                self.fire(fired, Check::ProtocolPortMismatch);
            }
        }
        for (p, ports) in &self.pinned {
            if *p == proto && !ports.contains(&server_port) {
                self.fire(fired, Check::ProtocolPortMismatch);
            }
        }
    }

    /// Checks on a ClientHello.
    /// The SNI checks alone, for a name read before its hello is complete: a blocked name is
    /// stopped with the segment that carries it.
    pub fn check_sni(&self, sni: &[u8], fired: &mut Fired) {
        if self.sni_block.matches(sni) {
            self.fire(fired, Check::SniBlocked);
        }
        if !self.sni_allow.is_empty() && !self.sni_allow.matches(sni) {
            self.fire(fired, Check::SniNotAllowed);
        }
    }

    pub fn check_client_hello(&self, ch: &ClientHello, ja3: &str, ja4: &str, fired: &mut Fired) {
        match &ch.sni {
            Some(sni) => self.check_sni(sni, fired),
            None => {
                self.fire(fired, Check::SniMissing);
                if !self.sni_allow.is_empty() {
                    self.fire(fired, Check::SniNotAllowed);
                }
            }
        }
        if self.min_version != 0
            && version_rank(ch.highest_version()) < version_rank(self.min_version)
        {
            self.fire(fired, Check::TlsVersion);
        }
        if self.ja3_block.contains(ja3) {
            self.fire(fired, Check::Ja3Blocked);
        }
        if self.ja4_block.contains(ja4) {
            self.fire(fired, Check::Ja4Blocked);
        }
        if ch.ech {
            self.fire(fired, Check::EchPresent);
        }
    }

    /// Checks on a ServerHello.
    pub fn check_server_hello(&self, sh: &ServerHello, fired: &mut Fired) {
        if self.min_version != 0
            && !sh.hello_retry
            && version_rank(sh.selected_version) < version_rank(self.min_version)
        {
            self.fire(fired, Check::TlsVersion);
        }
        if weak_cipher(sh.cipher) {
            self.fire(fired, Check::WeakCipher);
        }
    }

    /// Checks on the server's leaf certificate at `now` (Unix seconds).
    pub fn check_certificate(&self, cert: &CertInfo, now: i64, fired: &mut Fired) {
        if now > cert.not_after {
            self.fire(fired, Check::CertExpired);
        }
        if now < cert.not_before {
            self.fire(fired, Check::CertNotYetValid);
        }
        if cert.self_signed {
            self.fire(fired, Check::CertSelfSigned);
        }
    }
}

/// Versions in order (SSLv2 < SSLv3 < TLS 1.0 ... < TLS 1.3, drafts as 1.3).
pub fn version_rank(v: u16) -> u16 {
    match v {
        0x0002 => 1,
        0x0300..=0x0304 => v - 0x0300 + 2,
        v if v >> 8 == 0x7f => 6,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_wildcards() {
        let mut s = NameSet::default();
        s.insert("Evil.example");
        s.insert("*.bad.test");
        assert!(s.matches(b"evil.example"));
        assert!(s.matches(b"EVIL.example."));
        assert!(!s.matches(b"notevil.example"));
        assert!(s.matches(b"a.bad.test"));
        assert!(s.matches(b"x.y.bad.test"));
        assert!(!s.matches(b"bad.test"));
        assert!(!s.matches(b"goodbad.test"));
        assert!(!s.matches(&[0xff, 0xfe]));
    }

    #[test]
    fn check_names_round_trip() {
        for c in Check::ALL {
            assert_eq!(Check::from_name(c.name()), Some(c));
        }
        assert_eq!(Check::ALL.len(), CHECKS);
    }

    #[test]
    fn strongest_action_wins() {
        let mut p = InspectPolicy::default();
        p.actions[Check::SniBlocked.index()] = CheckAction::Reject;
        let mut f = Fired::default();
        f.set(Check::TlsVersion);
        f.set(Check::SniBlocked);
        assert_eq!(p.verdict(f), Some((Check::SniBlocked, CheckAction::Reject)));
        assert_eq!(p.verdict(Fired::default()), None);
    }

    #[test]
    fn protocol_checks() {
        let mut p = InspectPolicy::default();
        p.reserved_ports.push((5060, AppProto::Sip));
        p.pinned.push((AppProto::Ssh, vec![22]));
        let run = |proto, port, udp| {
            let mut f = Fired::default();
            p.check_protocol(proto, port, udp, &mut f);
            f
        };
        assert!(run(AppProto::Http, 443, false).has(Check::NonTlsOnTlsPort));
        assert!(run(AppProto::Ssh, 443, false).has(Check::NonTlsOnTlsPort));
        assert_eq!(run(AppProto::Tls, 443, false), Fired::default());
        assert!(run(AppProto::Tls, 8080, false).has(Check::TlsUnexpectedPort));
        assert!(run(AppProto::Http, 5060, false).has(Check::ProtocolPortMismatch));
        assert!(!run(AppProto::Sip, 5060, true).has(Check::ProtocolPortMismatch));
        assert!(run(AppProto::Ssh, 2222, false).has(Check::ProtocolPortMismatch));
        assert!(!run(AppProto::Ssh, 22, false).has(Check::ProtocolPortMismatch));
        // WireGuard on udp/443 is not "non-TLS on a TLS port": the TLS ports are TCP's.
        assert_eq!(run(AppProto::Unknown, 443, true), Fired::default());
    }

    #[test]
    fn version_order() {
        assert!(version_rank(0x0301) < version_rank(0x0303));
        assert!(version_rank(0x0300) < version_rank(0x0301));
        assert!(version_rank(0x0002) < version_rank(0x0300));
        assert!(version_rank(0x7f1c) > version_rank(0x0303));
    }
}
