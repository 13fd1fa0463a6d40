//! The event log: drains the workers' event queues and writes JSON lines in the style of
//! Suricata's EVE (`timestamp`, `flow_id`, `event_type`, `src_ip`, `src_port`, `dest_ip`,
//! `dest_port`, `proto`, and a `flow` or `drop` object), so existing EVE tooling reads them.
//! Runs on the control thread (DPDK) or a thread of its own (offline); never on a worker.

use crate::decisions::Decisions;
use crate::eventfile::{EventFile, EventFileSnapshot, LostEvents};
use dataplane::events::{
    AlertRecord, DropRecord, Event, EventQueue, FlowEnd, FlowRecord, FlowRef, Tuple,
};
use dataplane::flow::FlowKey;
use dataplane::inspect::checks::CheckAction;
use dataplane::inspect::session::TlsMeta;
use dataplane::inspect::tls::version_name;
use dataplane::policy::RuleAction;
use dataplane::wire::protocol;
use serde_json::json;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::sync::Arc;

pub struct EventLog {
    file: EventFile,
    /// One drain's lines, reused.
    buf: Vec<u8>,
    queues: Vec<Arc<EventQueue>>,
    /// Wall-clock microseconds minus engine microseconds (0 offline: the engine runs on
    /// capture time).
    offset_us: i64,
    port_names: Vec<String>,
    /// What this run's events say was decided, for the end-of-run summary.
    pub decisions: Decisions,
}

impl EventLog {
    /// Appends to `path` (created 0640 if missing, never through a symbolic link).
    pub fn open(
        path: &Path,
        queues: Vec<Arc<EventQueue>>,
        offset_us: i64,
        port_names: Vec<String>,
    ) -> std::io::Result<EventLog> {
        Ok(EventLog {
            file: EventFile::open(path)?,
            buf: Vec::with_capacity(64 * 1024),
            queues,
            offset_us,
            decisions: Decisions::new(path, port_names.clone()),
            port_names,
        })
    }

    /// Writes everything queued now; returns how many events were taken from the queues
    /// (written, or counted as lost when the file cannot take them).
    pub fn drain(&mut self) -> usize {
        let mut n = 0;
        self.buf.clear();
        for qi in 0..self.queues.len() {
            while let Some(st) = self.queues[qi].pop() {
                let line = self.format(&st.event, st.micros);
                self.buf.extend_from_slice(line.as_bytes());
                self.buf.push(b'\n');
                self.decisions.note(&st.event);
                n += 1;
            }
        }
        self.file.append(&self.buf, n as u64);
        n
    }

    /// Writes one event built elsewhere on the control plane (an `ha` role change).
    pub fn write_json(&mut self, v: &serde_json::Value) {
        let mut line = v.to_string();
        line.push('\n');
        self.file.append(line.as_bytes(), 1);
    }

    /// Gives the file to a group (`[events] group`), now and at every reopen.
    pub fn set_group(&mut self, gid: u32) -> std::io::Result<()> {
        self.file.set_group(gid)
    }

    /// Opens the file again (log rotation: `portcullisctl reopen-logs`, SIGUSR2).
    pub fn reopen(&mut self) -> std::io::Result<()> {
        self.file.reopen()
    }

    pub fn written(&self) -> u64 {
        self.file.written()
    }

    pub fn lost(&self) -> LostEvents {
        self.file.lost()
    }

    pub fn snapshot(&self) -> EventFileSnapshot {
        self.file.snapshot()
    }

    /// One event's line; `micros` past its second (flow events keep whole seconds: their time
    /// is the connection's last packet or end, known to the second).
    fn format(&self, ev: &Event, micros: u32) -> String {
        match ev {
            Event::Flow(f) => self.flow(f),
            Event::Drop(d) => self.drop(d, micros),
            Event::Tls(t) => {
                let (kind, body) = if t.meta.quic {
                    ("quic", quic_object(&t.meta))
                } else {
                    ("tls", tls_object(&t.meta))
                };
                let mut v = self.header((t.time, micros), &t.flow, kind);
                v.as_object_mut().expect("object").insert(kind.into(), body);
                v.to_string()
            }
            Event::Alert(a) => self.alert(a, micros),
            Event::RuleAlert(r) => {
                let mut v = self.header((r.time, micros), &r.flow, "alert");
                v.as_object_mut().expect("object").insert(
                    "alert".into(),
                    json!({
                        "action": "allowed",
                        "rule_action": "alert",
                        "signature": &*r.rule.name,
                        "category": "Portcullis rule",
                        "severity": 3,
                    }),
                );
                v.to_string()
            }
        }
    }

    fn flow(&self, f: &FlowRecord) -> String {
        let mut v = self.header((f.end, 0), &f.flow_ref(), "flow");
        let m = v.as_object_mut().expect("object");
        if let Some(a) = f.app_proto {
            // As EVE: after proto, absent when the flow carried no payload.
            m.insert("app_proto".into(), a.into());
        }
        let reason = match f.reason {
            FlowEnd::Timeout => "timeout",
            FlowEnd::Shutdown => "shutdown",
            FlowEnd::Reused => "reused",
        };
        m.insert(
            "flow".into(),
            json!({
                "pkts_toserver": f.packets[0],
                "pkts_toclient": f.packets[1],
                "bytes_toserver": f.bytes[0],
                "bytes_toclient": f.bytes[1],
                "start": self.time(f.start),
                "end": self.time(f.end),
                "age": f.end.saturating_sub(f.start),
                "state": f.state,
                "reason": reason,
                "alerted": f.alerted,
                "verdict": if f.blocked { "blocked" } else { "allowed" },
            }),
        );
        v.to_string()
    }

    fn drop(&self, d: &DropRecord, micros: u32) -> String {
        let mut v = json!({
            "timestamp": self.time_us(d.time, micros),
            "event_type": "drop",
        });
        let m = v.as_object_mut().expect("object");
        if let Some(t) = d.tuple {
            let (key, _) =
                FlowKey::from_endpoints(t.src, t.src_port, t.dst, t.dst_port, t.proto, t.ipv6);
            m.insert("flow_id".into(), flow_id(&key, d.start).into());
            endpoints(m, &t, d.icmp.map(|(ty, code)| IcmpFields::Packet(ty, code)));
        }
        let iface = self
            .port_names
            .get(d.port as usize)
            .cloned()
            .unwrap_or_default();
        m.insert("in_iface".into(), iface.into());
        let mut drop = json!({ "reason": d.reason.name() });
        if let Some(r) = &d.rule {
            drop["rule"] = (&*r.name).into();
            drop["rule_action"] = rule_action(r.action).into();
        }
        m.insert("drop".into(), drop);
        v.to_string()
    }

    fn alert(&self, a: &AlertRecord, micros: u32) -> String {
        let mut v = self.header((a.time, micros), &a.flow, "alert");
        let m = v.as_object_mut().expect("object");
        if let Some(p) = a.app_proto {
            m.insert("app_proto".into(), p.into());
        }
        m.insert(
            "alert".into(),
            json!({
                "action": if a.action.blocks() { "blocked" } else { "allowed" },
                "rule_action": a.action.name(),
                "signature": a.check.name(),
                "category": "Portcullis inspection check",
                "severity": if a.action == CheckAction::Alert { 3 } else { 2 },
            }),
        );
        if let Some(sni) = &a.sni {
            m.insert("tls".into(), json!({ "sni": sni }));
        }
        v.to_string()
    }

    /// The fields every flow-bound event starts with, the client as source.
    fn header(&self, (secs, micros): (u32, u32), f: &FlowRef, kind: &str) -> serde_json::Value {
        let t = f.tuple();
        let mut v = json!({
            "timestamp": self.time_us(secs, micros),
            "flow_id": flow_id(&f.key, f.start),
            "event_type": kind,
        });
        let m = v.as_object_mut().expect("object");
        endpoints(m, &t, Some(IcmpFields::Echo));
        v
    }

    fn time_us(&self, engine_secs: u32, micros: u32) -> String {
        timestamp_us(engine_secs as i64 * 1_000_000 + micros as i64 + self.offset_us)
    }

    /// A time known to the second (a flow's start and end): whole seconds.
    fn time(&self, engine_secs: u32) -> String {
        timestamp((engine_secs as i64 * 1_000_000 + self.offset_us).div_euclid(1_000_000))
    }
}

/// EVE's `tls` object (Suricata's field names).
fn tls_object(m: &TlsMeta) -> serde_json::Value {
    let mut o = serde_json::Map::new();
    if let Some(c) = &m.cert {
        o.insert("subject".into(), c.subject.clone().into());
        o.insert("issuerdn".into(), c.issuer.clone().into());
        o.insert("fingerprint".into(), c.sha1.clone().into());
        o.insert("notbefore".into(), cert_time(c.not_before).into());
        o.insert("notafter".into(), cert_time(c.not_after).into());
        o.insert("self_signed".into(), c.self_signed.into());
        if !c.sans.is_empty() {
            o.insert("san".into(), c.sans.clone().into());
        }
    }
    client_fields(m, &mut o);
    let version = m
        .server
        .as_ref()
        .filter(|s| !s.hello_retry)
        .map(|s| s.selected_version)
        .or(m.client.as_ref().map(|c| c.highest_version()));
    if let Some(v) = version {
        o.insert("version".into(), version_name(v).into());
    }
    if let Some(s) = &m.server {
        o.insert("cipher_suite".into(), format!("0x{:04x}", s.cipher).into());
        o.insert(
            "ja3s".into(),
            json!({ "hash": m.ja3s, "string": m.ja3s_string }),
        );
        if let Some(a) = &s.alpn {
            o.insert(
                "server_alpns".into(),
                vec![String::from_utf8_lossy(a).into_owned()].into(),
            );
        }
    }
    if m.malformed {
        o.insert("malformed".into(), true.into());
    }
    o.into()
}

/// EVE's `quic` object.
fn quic_object(m: &TlsMeta) -> serde_json::Value {
    let mut o = serde_json::Map::new();
    o.insert(
        "version".into(),
        match m.quic_version {
            1 => "1".to_string(),
            0x6b33_43cf => "2".to_string(),
            v => format!("0x{v:08x}"),
        }
        .into(),
    );
    client_fields(m, &mut o);
    if let Some(a) = o.remove("client_alpns") {
        o.insert("alpns".into(), a);
    }
    if m.malformed {
        o.insert("malformed".into(), true.into());
    }
    o.into()
}

/// What the ClientHello says: SNI, JA3, JA4, ALPNs, ECH.
fn client_fields(m: &TlsMeta, o: &mut serde_json::Map<String, serde_json::Value>) {
    let Some(c) = &m.client else {
        // Stopped before the hello was whole: what was read of it.
        if let Some(sni) = &m.sni_early {
            o.insert("sni".into(), sni.clone().into());
        }
        return;
    };
    if let Some(sni) = c.sni_str() {
        o.insert("sni".into(), sni.into());
    }
    if !m.ja3.is_empty() {
        o.insert(
            "ja3".into(),
            json!({ "hash": m.ja3, "string": m.ja3_string }),
        );
    }
    o.insert("ja4".into(), m.ja4.clone().into());
    if !c.alpn.is_empty() {
        o.insert("client_alpns".into(), c.alpn_strs().into());
    }
    if c.ech {
        o.insert("ech".into(), true.into());
    }
}

/// Certificate times as Suricata prints them: "2016-01-01T00:00:00".
fn cert_time(unix: i64) -> String {
    timestamp(unix)[..19].to_string()
}

fn ip(a: &[u8; 16], v6: bool) -> String {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(*a)).to_string()
    } else {
        IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3])).to_string()
    }
}

/// What ICMP fields an event carries in place of ports.
enum IcmpFields {
    /// A connection: ICMP connections are echo request/reply exchanges.
    Echo,
    /// One packet's type and code.
    Packet(u8, u8),
}

/// Addresses, then ports, or for ICMP the type and code (as Suricata's EVE: an ICMP
/// connection's ports hold the echo identifier, which EVE does not show), then the protocol.
fn endpoints(
    m: &mut serde_json::Map<String, serde_json::Value>,
    t: &Tuple,
    icmp: Option<IcmpFields>,
) {
    m.insert("src_ip".into(), ip(&t.src, t.ipv6).into());
    let is_icmp = matches!(t.proto, protocol::ICMP | protocol::ICMPV6);
    if !is_icmp {
        m.insert("src_port".into(), t.src_port.into());
    }
    m.insert("dest_ip".into(), ip(&t.dst, t.ipv6).into());
    if !is_icmp {
        m.insert("dest_port".into(), t.dst_port.into());
    }
    m.insert("proto".into(), proto_name(t.proto).into());
    if !is_icmp {
        return;
    }
    let (request, reply) = if t.ipv6 { (128u8, 129u8) } else { (8, 0) };
    match icmp {
        Some(IcmpFields::Echo) => {
            m.insert("icmp_type".into(), request.into());
            m.insert("icmp_code".into(), 0.into());
            m.insert("response_icmp_type".into(), reply.into());
            m.insert("response_icmp_code".into(), 0.into());
        }
        Some(IcmpFields::Packet(ty, code)) => {
            m.insert("icmp_type".into(), ty.into());
            m.insert("icmp_code".into(), code.into());
        }
        None => {}
    }
}

fn rule_action(a: RuleAction) -> &'static str {
    match a {
        RuleAction::Allow => "allow",
        RuleAction::Alert => "alert",
        RuleAction::Drop => "drop",
        RuleAction::Reject => "reject",
    }
}

fn proto_name(p: u8) -> String {
    match p {
        protocol::TCP => "TCP".into(),
        protocol::UDP => "UDP".into(),
        protocol::ICMP => "ICMP".into(),
        protocol::ICMPV6 => "IPv6-ICMP".into(),
        n => n.to_string(),
    }
}

/// A stable 51-bit id per connection (EVE's flow_id fits in a JSON number).
fn flow_id(k: &dataplane::flow::FlowKey, start: u32) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: u8| {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    };
    k.lo_addr
        .iter()
        .chain(k.hi_addr.iter())
        .for_each(|&b| eat(b));
    k.lo_port
        .to_be_bytes()
        .iter()
        .chain(k.hi_port.to_be_bytes().iter())
        .for_each(|&b| eat(b));
    eat(k.proto);
    start.to_be_bytes().iter().for_each(|&b| eat(b));
    h & ((1 << 51) - 1)
}

/// RFC 3339 in EVE's form: "2026-11-21T07:22:38.000000+0000".
pub fn timestamp(unix: i64) -> String {
    timestamp_us(unix.saturating_mul(1_000_000))
}

/// EVE's timestamp of a Unix time in microseconds.
pub fn timestamp_us(unix_us: i64) -> String {
    let unix = unix_us.div_euclid(1_000_000);
    let micros = unix_us.rem_euclid(1_000_000);
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Days to civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + (m <= 2) as i64;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}+0000",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// The `control` event of a changing command asked on the control socket: who (uid, gid, pid
/// from SO_PEERCRED), what, and whether it was done, refused or failed.
pub fn control_event(a: &crate::ctl::Audit) -> serde_json::Value {
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0);
    json!({
        "timestamp": timestamp_us(now_us),
        "event_type": "control",
        "control": {
            "command": a.cmd,
            "uid": a.peer.uid,
            "gid": a.peer.gid,
            "pid": a.peer.pid,
            "result": a.result,
            "detail": a.detail,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(timestamp(0), "1970-01-01T00:00:00.000000+0000");
        // Checked against `date -u -d @1795000000`.
        assert_eq!(timestamp(1_795_000_000), "2026-11-18T11:06:40.000000+0000");
        assert_eq!(timestamp(951_782_400), "2000-02-29T00:00:00.000000+0000");
        assert_eq!(
            timestamp_us(951_782_400_000_042),
            "2000-02-29T00:00:00.000042+0000"
        );
    }
}
