//! Per-flow inspection state of one worker: the handshake bytes of flows still being inspected,
//! reassembled per direction (out of order and retransmitted segments too, up to a bound), and
//! what was read from them. Flows enter on their first payload and leave as soon as their
//! verdict is final; only then does the engine's fast path take them.
//!
//! All buffers are preallocated: `slots` flows in inspection at once, each with two buffers of
//! `max_bytes`. A flow that finds no free slot is not inspected beyond its first packet
//! (counted by the engine as `inspect_no_slot`).

use super::checks::{Check, CheckAction, Fired, InspectPolicy};
use super::detect::AppProto;
use super::quic::{open_client_initials, QUIC_V1, QUIC_V2};
use super::tls::{
    gather_handshake, md5_hex, next_message, parse_certificate, parse_client_hello,
    parse_server_hello, parse_sslv2_client_hello, partial_sni, CertInfo, ClientHello, ServerHello,
    HS_CERTIFICATE, HS_CLIENT_HELLO, HS_SERVER_HELLO,
};

/// Sizes of a worker's inspection state.
#[derive(Debug, Clone, Copy)]
pub struct InspectLimits {
    /// Flows in inspection at once, per worker.
    pub slots: usize,
    /// Handshake bytes kept per flow and direction: a 2 KB post-quantum ClientHello, a server
    /// flight with its certificate chain.
    pub max_bytes: usize,
    /// Packets (both directions) after which a flow leaves inspection with what was found.
    pub max_packets: u16,
    /// Seconds a flow may stay in inspection: a hello never answered must not hold a slot (and
    /// so many such flows must not starve inspection of others).
    pub max_seconds: u32,
}

impl Default for InspectLimits {
    fn default() -> Self {
        InspectLimits {
            slots: 4096,
            max_bytes: 16_384,
            max_packets: 24,
            max_seconds: 10,
        }
    }
}

/// What was read from a TLS or QUIC handshake, for events and for HA.
#[derive(Debug, Clone, Default)]
pub struct TlsMeta {
    pub quic: bool,
    pub quic_version: u32,
    pub client: Option<ClientHello>,
    pub ja3_string: String,
    pub ja3: String,
    pub ja4: String,
    pub server: Option<ServerHello>,
    pub ja3s_string: String,
    pub ja3s: String,
    pub cert: Option<CertInfo>,
    /// A hello that did not parse.
    pub malformed: bool,
    /// The server name read from a hello before it was whole (the SNI checks judged it then).
    pub sni_early: Option<String>,
}

/// What the engine knows of the packet being inspected.
#[derive(Debug, Clone, Copy)]
pub struct PacketView {
    pub from_client: bool,
    /// TCP sequence number of the payload's first byte (SYN counted); unused for QUIC, whose
    /// CRYPTO frames carry their own offsets.
    pub seq: u32,
}

/// Where a flow's inspection stands after a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Keep feeding the flow's packets.
    More,
    /// The verdict is final: the flow leaves inspection (`take_report`, then `release`).
    Final,
}

/// A received byte range of a stream, relative to its base.
#[derive(Debug, Clone, Copy, Default)]
struct Range {
    start: u32,
    end: u32,
}

const MAX_RANGES: usize = 8;

/// One direction's reassembly state: which bytes of `[0, max_bytes)` after `base` are in.
#[derive(Debug, Clone, Copy, Default)]
struct Stream {
    base: u32,
    started: bool,
    ranges: [Range; MAX_RANGES],
    n: u8,
    /// Bytes beyond the buffer or over the range limit were refused.
    overflow: bool,
    /// The base came from the connection tracker (where the stream continues): bytes before
    /// it are old data the receiver discards, never a hello to read, so they are ignored.
    fixed: bool,
}

impl Stream {
    /// Bytes received without a gap from the base.
    fn contiguous(&self) -> usize {
        if self.n > 0 && self.ranges[0].start == 0 {
            self.ranges[0].end as usize
        } else {
            0
        }
    }

    /// Writes `data` at stream position `seq` into `buf`. A segment before the base (the first
    /// one seen was not the first sent) moves the buffer along, as long as it fits. Returns
    /// false, writing nothing, when `data` overlaps bytes already held with other content.
    fn write(&mut self, buf: &mut [u8], seq: u32, data: &[u8]) -> bool {
        if data.is_empty() {
            return true;
        }
        if !self.started {
            self.started = true;
            self.base = seq;
        }
        let mut off = seq.wrapping_sub(self.base) as i32 as i64;
        let mut data = data;
        if off < 0 && self.fixed {
            let skip = (-off) as usize;
            if skip >= data.len() {
                return true;
            }
            data = &data[skip..];
            off = 0;
        }
        if off < 0 {
            let shift = (-off) as usize;
            let used = self.ranges[..self.n as usize]
                .last()
                .map_or(0, |r| r.end as usize);
            if shift + used > buf.len() || shift > buf.len() {
                self.overflow = true;
                return true;
            }
            buf.copy_within(0..used, shift);
            for r in &mut self.ranges[..self.n as usize] {
                r.start += shift as u32;
                r.end += shift as u32;
            }
            self.base = seq;
            off = 0;
        }
        let off = off as usize;
        if off >= buf.len() {
            self.overflow = true;
            return true;
        }
        let len = data.len().min(buf.len() - off);
        if !self.agrees(buf, off, &data[..len]) {
            return false;
        }
        if len < data.len() {
            self.overflow = true;
        }
        buf[off..off + len].copy_from_slice(&data[..len]);
        self.add(off as u32, (off + len) as u32);
        true
    }

    /// Whether `data` at `off` matches every byte the ranges already hold where they overlap.
    fn agrees(&self, buf: &[u8], off: usize, data: &[u8]) -> bool {
        let end = off + data.len();
        self.ranges[..self.n as usize].iter().all(|r| {
            let (a, b) = ((r.start as usize).max(off), (r.end as usize).min(end));
            a >= b || buf[a..b] == data[a - off..b - off]
        })
    }

    /// Adds `[start, end)` to the sorted, disjoint ranges, merging what touches.
    fn add(&mut self, start: u32, end: u32) {
        let mut merged = Range { start, end };
        let mut out = [Range::default(); MAX_RANGES + 1];
        let mut k = 0;
        let mut placed = false;
        for r in &self.ranges[..self.n as usize] {
            if r.end < merged.start {
                out[k] = *r;
                k += 1;
            } else if r.start > merged.end {
                if !placed {
                    out[k] = merged;
                    k += 1;
                    placed = true;
                }
                out[k] = *r;
                k += 1;
            } else {
                merged.start = merged.start.min(r.start);
                merged.end = merged.end.max(r.end);
            }
        }
        if !placed {
            out[k] = merged;
            k += 1;
        }
        if k > MAX_RANGES {
            // Too many holes: keep the first ranges (the start is what a hello needs).
            self.overflow = true;
            k = MAX_RANGES;
        }
        self.ranges[..k].copy_from_slice(&out[..k]);
        self.n = k as u8;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Kind {
    #[default]
    Tls,
    Quic,
}

#[derive(Debug, Default)]
struct Slot {
    in_use: bool,
    /// The connection (table index) inspected here, and when it started.
    conn: u32,
    started: u32,
    kind: Kind,
    streams: [Stream; 2],
    client_done: bool,
    server_done: bool,
    packets: u16,
    fired: Fired,
    meta: TlsMeta,
}

/// What a flow's inspection found, handed to the engine when it is final.
#[derive(Debug, Default)]
pub struct Report {
    pub fired: Fired,
    /// The strongest fired check and its action.
    pub verdict: Option<(Check, CheckAction)>,
    pub meta: Option<Box<TlsMeta>>,
}

/// One worker's inspection state.
pub struct Inspector {
    limits: InspectLimits,
    slots: Vec<Slot>,
    free: Vec<u16>,
    /// Two buffers of `max_bytes` per slot.
    pool: Vec<u8>,
    /// Where handshake messages are gathered from records (and QUIC packets decrypted).
    scratch: Vec<u8>,
}

impl Inspector {
    pub fn new(mut limits: InspectLimits) -> Inspector {
        limits.slots = limits.slots.clamp(1, u16::MAX as usize - 1);
        limits.max_bytes = limits.max_bytes.max(2048);
        let mut slots = Vec::with_capacity(limits.slots);
        slots.resize_with(limits.slots, Slot::default);
        Inspector {
            free: (1..=limits.slots as u16).rev().collect(),
            slots,
            pool: vec![0u8; limits.slots * 2 * limits.max_bytes],
            scratch: vec![0u8; limits.max_bytes.max(2048)],
            limits,
        }
    }

    pub fn in_use(&self) -> usize {
        self.limits.slots - self.free.len()
    }

    /// Starts inspecting a flow whose first payload was `proto` (with the checks that already
    /// fired on it); returns its slot number (never 0), or `None` when all slots are taken.
    /// `bases`: where the client's and the server's streams continue, from the connection
    /// tracker (TCP connections seen from their SYN); bytes before them are ignored.
    pub fn start(
        &mut self,
        proto: AppProto,
        fired: Fired,
        conn: u32,
        now: u32,
        bases: Option<(u32, Option<u32>)>,
    ) -> Option<u16> {
        let id = self.free.pop()?;
        let s = &mut self.slots[id as usize - 1];
        *s = Slot {
            in_use: true,
            conn,
            started: now,
            kind: if proto == AppProto::Quic {
                Kind::Quic
            } else {
                Kind::Tls
            },
            fired,
            ..Slot::default()
        };
        s.meta.quic = proto == AppProto::Quic;
        if let Some((client, server)) = bases {
            for (st, base) in s.streams.iter_mut().zip([Some(client), server]) {
                if let Some(b) = base {
                    st.base = b;
                    st.started = true;
                    st.fixed = true;
                }
            }
        }
        Some(id)
    }

    /// Whether what a slot's flow revealed so far already stops it.
    pub fn blocks(&self, id: u16, policy: &InspectPolicy) -> bool {
        self.slots
            .get((id as usize).wrapping_sub(1))
            .is_some_and(|s| policy.verdict(s.fired).is_some_and(|(_, a)| a.blocks()))
    }

    /// Calls `f(slot, conn)` for every flow in inspection for longer than `max_seconds` at
    /// `now`; the caller concludes it (`take_report`, `release`). Once a second: a scan of the
    /// slots, a few microseconds.
    pub fn sweep(&self, now: u32, mut f: impl FnMut(u16, u32)) {
        for (i, s) in self.slots.iter().enumerate() {
            if s.in_use && now.wrapping_sub(s.started) >= self.limits.max_seconds {
                f(i as u16 + 1, s.conn);
            }
        }
    }

    /// The connection a slot inspects.
    pub fn conn_of(&self, id: u16) -> Option<u32> {
        self.slots
            .get((id as usize).wrapping_sub(1))
            .filter(|s| s.in_use)
            .map(|s| s.conn)
    }

    /// Frees a slot (the flow's verdict is final, or the flow ended).
    pub fn release(&mut self, id: u16) {
        if let Some(s) = self.slots.get_mut((id as usize).wrapping_sub(1)) {
            if s.in_use {
                s.in_use = false;
                s.meta = TlsMeta::default();
                self.free.push(id);
            }
        }
    }

    /// Takes what a slot's flow revealed (call when `feed` returned `Final`, or when the flow
    /// ends while still in inspection).
    pub fn take_report(&mut self, id: u16, policy: &InspectPolicy) -> Report {
        let Some(s) = self.slots.get_mut((id as usize).wrapping_sub(1)) else {
            return Report::default();
        };
        // Stopped before its hello was whole (a blocked name in a partial hello): decided.
        let stopped = policy.verdict(s.fired).is_some_and(|(_, a)| a.blocks());
        if s.in_use && !s.client_done && !stopped {
            // Left inspection before its hello was read: that is a finding of its own, and an
            // allow list cannot have been satisfied (unless the name was read early).
            if policy.action(Check::HelloIncomplete) != CheckAction::Allow {
                s.fired.set(Check::HelloIncomplete);
            }
            if !policy.sni_allow.is_empty()
                && s.meta.sni_early.is_none()
                && policy.action(Check::SniNotAllowed) != CheckAction::Allow
            {
                s.fired.set(Check::SniNotAllowed);
            }
        }
        let meta = std::mem::take(&mut s.meta);
        let has_meta = meta.client.is_some()
            || meta.server.is_some()
            || meta.malformed
            || meta.sni_early.is_some();
        Report {
            fired: s.fired,
            verdict: policy.verdict(s.fired),
            meta: has_meta.then(|| Box::new(meta)),
        }
    }

    /// Feeds one payload-carrying packet of the flow in slot `id`. `now_unix` judges
    /// certificate validity.
    pub fn feed(
        &mut self,
        id: u16,
        policy: &InspectPolicy,
        v: PacketView,
        payload: &[u8],
        now_unix: i64,
    ) -> Progress {
        let Some(idx) = (id as usize)
            .checked_sub(1)
            .filter(|i| *i < self.slots.len())
        else {
            return Progress::Final;
        };
        let mb = self.limits.max_bytes;
        let dir = (!v.from_client) as usize;
        let buf_start = (idx * 2 + dir) * mb;
        let slot = &mut self.slots[idx];
        if !slot.in_use {
            return Progress::Final;
        }
        slot.packets = slot.packets.saturating_add(1);
        let buf = &mut self.pool[buf_start..buf_start + mb];
        match slot.kind {
            Kind::Tls => {
                if !slot.streams[dir].write(buf, v.seq, payload) {
                    policy.fire_overlap(&mut slot.fired);
                }
                if v.from_client {
                    if !slot.client_done {
                        client_progress(slot, buf, &mut self.scratch, policy);
                    }
                } else if !slot.server_done {
                    server_progress(slot, buf, &mut self.scratch, policy, now_unix);
                }
                // Server bytes may have come before the hello was complete.
                if slot.client_done && !slot.server_done && v.from_client {
                    let sb = (idx * 2 + 1) * mb;
                    let sbuf = &mut self.pool[sb..sb + mb];
                    server_progress(slot, sbuf, &mut self.scratch, policy, now_unix);
                }
            }
            Kind::Quic => {
                if v.from_client && !slot.client_done {
                    quic_progress(slot, buf, &mut self.scratch, payload, policy);
                } else if !v.from_client {
                    // The server's Initial is under the server's keys; the client's hello is
                    // what the checks need. The server answering ends the hello's window.
                    slot.server_done = true;
                }
                if slot.client_done {
                    slot.server_done = true;
                }
            }
        }
        let blocked = policy.verdict(slot.fired).is_some_and(|(_, a)| a.blocks());
        // A QUIC flow blocked from its first packet (quic_blocked) stays in inspection until its
        // hello is read, so that the event names what was refused; the engine drops its packets
        // meanwhile (`blocks`).
        if (blocked && (slot.kind != Kind::Quic || slot.client_done))
            || (slot.client_done && slot.server_done)
            || slot.packets >= self.limits.max_packets
        {
            Progress::Final
        } else {
            Progress::More
        }
    }
}

/// Reads the ClientHello once its bytes are all in.
fn client_progress(slot: &mut Slot, buf: &[u8], scratch: &mut [u8], policy: &InspectPolicy) {
    let st = slot.streams[0];
    let have = &buf[..st.contiguous()];
    if have.first().is_some_and(|b| b & 0x80 != 0) {
        // An SSLv2-format hello: one record, its length in the first two bytes.
        let len = (((have[0] & 0x7f) as usize) << 8) | *have.get(1).unwrap_or(&0) as usize;
        if have.len() < 2 + len && !st.overflow {
            return;
        }
        match parse_sslv2_client_hello(have) {
            Ok(ch) => client_hello(slot, ch, policy),
            Err(_) => malformed(slot, policy),
        }
        return;
    }
    let g = gather_handshake(have, scratch);
    let record_version = have
        .get(1..3)
        .map_or(0, |v| u16::from_be_bytes([v[0], v[1]]));
    match next_message(&scratch[..g.len]) {
        Some((HS_CLIENT_HELLO, body, _)) => match parse_client_hello(body, record_version) {
            Ok(ch) => client_hello(slot, ch, policy),
            Err(_) => malformed(slot, policy),
        },
        Some(_) => malformed(slot, policy),
        // Application data or an alert first: a connection picked up in mid-stream (after a
        // restart or a failover), whose hello was never seen. Nothing to read, nothing wrong.
        None if g.ended && g.len == 0 => {
            slot.client_done = true;
            slot.server_done = true;
        }
        None if g.not_tls || g.ended || g.full || st.overflow => malformed(slot, policy),
        None => {
            // Not whole yet: the SNI checks decide as soon as the name has arrived, so a
            // blocked name is stopped with the segment that carries it.
            let hs = &scratch[..g.len + g.partial];
            if hs.first() == Some(&HS_CLIENT_HELLO) {
                if let Some(name) = hs.get(4..).and_then(partial_sni) {
                    if slot.meta.sni_early.is_none() {
                        slot.meta.sni_early = Some(String::from_utf8_lossy(name).into_owned());
                    }
                    policy.check_sni(name, &mut slot.fired);
                }
            }
        }
    }
}

fn malformed(slot: &mut Slot, policy: &InspectPolicy) {
    slot.meta.malformed = true;
    slot.client_done = true;
    if policy.action(Check::MalformedHello) != CheckAction::Allow {
        slot.fired.set(Check::MalformedHello);
    }
}

/// Fingerprints and checks a ClientHello.
fn client_hello(slot: &mut Slot, ch: ClientHello, policy: &InspectPolicy) {
    let quic = slot.kind == Kind::Quic;
    if !ch.sslv2 {
        slot.meta.ja3_string = ch.ja3_string();
        slot.meta.ja3 = md5_hex(&slot.meta.ja3_string);
    }
    slot.meta.ja4 = ch.ja4(quic);
    policy.check_client_hello(&ch, &slot.meta.ja3, &slot.meta.ja4, &mut slot.fired);
    if ch.sslv2 {
        // An SSLv2-format hello gets an SSLv2 or SSLv3 answer: no parsable ServerHello to wait
        // for in the common case, and the version check has said what matters.
        slot.server_done = true;
    }
    slot.meta.client = Some(ch);
    slot.client_done = true;
}

/// Reads the server's flight: ServerHello, then (TLS <= 1.2) its Certificate.
fn server_progress(
    slot: &mut Slot,
    buf: &[u8],
    scratch: &mut [u8],
    policy: &InspectPolicy,
    now_unix: i64,
) {
    let st = slot.streams[1];
    let have = &buf[..st.contiguous()];
    if have.is_empty() {
        return;
    }
    let g = gather_handshake(have, scratch);
    let mut hs = &scratch[..g.len];
    while let Some((t, body, rest)) = next_message(hs) {
        match t {
            HS_SERVER_HELLO if slot.meta.server.is_none() => match parse_server_hello(body) {
                Ok(sh) => {
                    slot.meta.ja3s_string = sh.ja3s_string();
                    slot.meta.ja3s = md5_hex(&slot.meta.ja3s_string);
                    policy.check_server_hello(&sh, &mut slot.fired);
                    // TLS 1.3 encrypts the rest of the flight; a HelloRetryRequest is followed
                    // by a second round the checks do not need.
                    let tls13 = sh.selected_version == 0x0304 || sh.selected_version >> 8 == 0x7f;
                    if tls13 || sh.hello_retry {
                        slot.server_done = true;
                    }
                    slot.meta.server = Some(sh);
                }
                Err(_) => {
                    slot.meta.malformed = true;
                    slot.server_done = true;
                    if policy.action(Check::MalformedHello) != CheckAction::Allow {
                        slot.fired.set(Check::MalformedHello);
                    }
                }
            },
            HS_CERTIFICATE => {
                if let Ok(Some(cert)) = parse_certificate(body) {
                    policy.check_certificate(&cert, now_unix, &mut slot.fired);
                    slot.meta.cert = Some(cert);
                }
                slot.server_done = true;
            }
            HS_SERVER_HELLO => {}
            // ServerKeyExchange, ServerHelloDone, ...: no certificate in this flight.
            _ => {
                if slot.meta.server.is_some() {
                    slot.server_done = true;
                }
            }
        }
        if slot.server_done {
            return;
        }
        hs = rest;
    }
    if g.not_tls || g.ended || g.full || st.overflow {
        slot.server_done = true;
    }
}

/// Decrypts a client Initial, adds its CRYPTO data to the stream, reads the ClientHello when
/// the stream has it.
fn quic_progress(
    slot: &mut Slot,
    buf: &mut [u8],
    scratch: &mut [u8],
    datagram: &[u8],
    policy: &InspectPolicy,
) {
    let st = &mut slot.streams[0];
    st.started = true;
    let res = open_client_initials(datagram, scratch, |off, data| {
        if off < buf.len() as u64 {
            st.write(buf, off as u32, data);
        } else {
            st.overflow = true;
        }
    });
    match res {
        Ok(info) => {
            if slot.meta.quic_version == 0 {
                slot.meta.quic_version = info.version;
            }
        }
        Err(_) => {
            // Not an Initial (0-RTT, a short header, another version): nothing to read in it.
            return;
        }
    }
    let st = slot.streams[0];
    let have = &buf[..st.contiguous()];
    match next_message(have) {
        Some((HS_CLIENT_HELLO, body, _)) => match parse_client_hello(body, 0) {
            Ok(ch) => client_hello(slot, ch, policy),
            Err(_) => malformed(slot, policy),
        },
        Some(_) => malformed(slot, policy),
        None if st.overflow => malformed(slot, policy),
        None => {}
    }
}

/// QUIC versions whose Initials can be opened.
pub fn quic_version_known(v: u32) -> bool {
    v == QUIC_V1 || v == QUIC_V2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_reassembles_out_of_order_and_retransmitted() {
        let mut buf = [0u8; 64];
        let mut s = Stream::default();
        s.write(&mut buf, 1010, b"KLMNO");
        assert_eq!(s.contiguous(), 5);
        // The first segment seen was not the first sent: the buffer moves along.
        s.write(&mut buf, 1000, b"ABCDEFGHIJ");
        assert_eq!(s.contiguous(), 15);
        assert_eq!(&buf[..15], b"ABCDEFGHIJKLMNO");
        // A retransmission changes nothing; a gap leaves the contiguous part alone.
        s.write(&mut buf, 1005, b"FGHIJ");
        s.write(&mut buf, 1020, b"UV");
        assert_eq!(s.contiguous(), 15);
        s.write(&mut buf, 1015, b"PQRST");
        assert_eq!(s.contiguous(), 22);
        assert_eq!(&buf[..22], b"ABCDEFGHIJKLMNOPQRSTUV");
        // Past the buffer: kept up to its end, flagged.
        s.write(&mut buf, 1060, b"0123456789");
        assert!(s.overflow);
    }

    #[test]
    fn an_overlap_with_other_bytes_is_refused_and_changes_nothing() {
        let mut buf = [0u8; 64];
        let mut s = Stream::default();
        assert!(s.write(&mut buf, 1000, b"ABCDEFGHIJ"));
        assert!(s.write(&mut buf, 1020, b"UVWXY"));
        // Identical copies, whole or in part, and new bytes beside them are welcome.
        assert!(s.write(&mut buf, 1005, b"FGHIJKL"));
        // Any different byte under any held range: refused, nothing written.
        assert!(!s.write(&mut buf, 1008, b"IJKLMNOPQRSTUVWxY"));
        assert!(!s.write(&mut buf, 1000, b"ABCDEfGH"));
        assert_eq!(&buf[..12], b"ABCDEFGHIJKL");
        assert_eq!(s.contiguous(), 12);
        // A copy that only fills the hole is fine.
        assert!(s.write(&mut buf, 1012, b"MNOPQRST"));
        assert_eq!(s.contiguous(), 25);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Against a model of the bytes accepted so far: a segment is refused exactly when
            /// it disagrees with one of them, and what was accepted stays in the buffer; so no
            /// position ever holds two different bytes, in any order and overlap of segments.
            /// (Once the range list overflows, the stream is unreadable: malformed, not read.)
            #[test]
            fn no_position_ever_takes_two_different_bytes(
                ops in prop::collection::vec((0usize..48, 1usize..16, any::<bool>(), 1u8..), 1..40),
            ) {
                let truth: Vec<u8> = (0..128u32).map(|i| (i * 7 + 3) as u8).collect();
                let mut buf = [0u8; 64];
                let mut s = Stream { base: 1000, started: true, fixed: true, ..Stream::default() };
                let mut model = std::collections::HashMap::new();
                for (off, len, alter, x) in ops {
                    let mut data = truth[off..off + len].to_vec();
                    if alter {
                        data[len / 2] ^= x;
                    }
                    let conflicts = data.iter().enumerate().any(|(i, b)| {
                        model.get(&(off + i)).is_some_and(|m| m != b)
                    });
                    let ok = s.write(&mut buf, 1000 + off as u32, &data);
                    if s.overflow {
                        break;
                    }
                    prop_assert_eq!(ok, !conflicts, "segment at {} of {}", off, len);
                    if ok {
                        for (i, b) in data.iter().enumerate().filter(|(i, _)| off + i < 64) {
                            model.insert(off + i, *b);
                        }
                    }
                    for (&p, &b) in &model {
                        prop_assert_eq!(buf[p], b, "position {} changed", p);
                    }
                }
            }
        }
    }

    #[test]
    fn stream_sequence_wraps() {
        let mut buf = [0u8; 32];
        let mut s = Stream::default();
        s.write(&mut buf, u32::MAX - 2, b"abc");
        s.write(&mut buf, 0, b"def");
        assert_eq!(&buf[..s.contiguous()], b"abcdef");
    }

    #[test]
    fn too_many_holes_keep_the_start() {
        let mut buf = [0u8; 64];
        let mut s = Stream::default();
        s.write(&mut buf, 0, b"a");
        for i in 0..12u32 {
            s.write(&mut buf, 2 + i * 2, b"x");
        }
        assert!(s.overflow);
        assert_eq!(s.contiguous(), 1);
        assert!(s.n as usize <= MAX_RANGES);
    }

    #[test]
    fn slots_run_out_and_come_back() {
        let mut ins = Inspector::new(InspectLimits {
            slots: 2,
            max_bytes: 2048,
            max_packets: 8,
            max_seconds: 10,
        });
        let a = ins
            .start(AppProto::Tls, Fired::default(), 0, 0, None)
            .unwrap();
        let b = ins
            .start(AppProto::Tls, Fired::default(), 0, 0, None)
            .unwrap();
        assert!(ins
            .start(AppProto::Tls, Fired::default(), 0, 0, None)
            .is_none());
        ins.release(a);
        ins.release(a); // twice: harmless
        assert_eq!(ins.in_use(), 1);
        assert!(ins
            .start(AppProto::Tls, Fired::default(), 0, 0, None)
            .is_some());
        ins.release(b);
    }

    #[test]
    fn stale_flows_are_swept() {
        let mut ins = Inspector::new(InspectLimits {
            slots: 4,
            max_bytes: 2048,
            max_packets: 8,
            max_seconds: 10,
        });
        let a = ins
            .start(AppProto::Tls, Fired::default(), 7, 100, None)
            .unwrap();
        let b = ins
            .start(AppProto::Tls, Fired::default(), 9, 105, None)
            .unwrap();
        let mut due = Vec::new();
        ins.sweep(109, |s, c| due.push((s, c)));
        assert!(due.is_empty());
        ins.sweep(110, |s, c| due.push((s, c)));
        assert_eq!(due, vec![(a, 7)]);
        assert_eq!(ins.conn_of(b), Some(9));
        ins.release(a);
        assert_eq!(ins.conn_of(a), None);
    }

    #[test]
    fn bytes_before_a_tracked_base_are_old_data() {
        // The stream continues at 1000 (from the tracker): a segment ending before it is a
        // retransmission the receiver discards, whatever it claims to be.
        let mut buf = [0u8; 64];
        let mut s = Stream {
            base: 1000,
            started: true,
            fixed: true,
            ..Stream::default()
        };
        s.write(&mut buf, 990, b"0123456789");
        assert_eq!(s.contiguous(), 0);
        s.write(&mut buf, 995, b"56789ABCDE");
        assert_eq!(&buf[..s.contiguous()], b"ABCDE");
    }

    #[test]
    fn a_hello_never_completed_fires_hello_incomplete() {
        let mut ins = Inspector::new(InspectLimits {
            max_packets: 3,
            ..InspectLimits::default()
        });
        let mut p = InspectPolicy::default();
        p.sni_allow.insert("ok.example");
        let s = ins
            .start(AppProto::Tls, Fired::default(), 1, 0, Some((100, None)))
            .unwrap();
        // A handshake record announcing 512 bytes, dribbled a byte at a time.
        let mut last = Progress::More;
        for (seq, b) in (100..).zip([22u8, 3, 1, 2, 0, 1]) {
            let v = PacketView {
                from_client: true,
                seq,
            };
            last = ins.feed(s, &p, v, &[b], 0);
            if last == Progress::Final {
                break;
            }
        }
        assert_eq!(last, Progress::Final, "the packet bound ends inspection");
        let r = ins.take_report(s, &p);
        assert!(r.fired.has(Check::HelloIncomplete));
        assert!(r.fired.has(Check::SniNotAllowed));
    }

    #[test]
    fn mid_stream_application_data_is_no_hello() {
        let mut ins = Inspector::new(InspectLimits::default());
        let p = InspectPolicy::default();
        let s = ins
            .start(AppProto::Tls, Fired::default(), 1, 0, None)
            .unwrap();
        let v = PacketView {
            from_client: true,
            seq: 5000,
        };
        assert_eq!(
            ins.feed(s, &p, v, &[23, 3, 3, 0, 2, 0xaa, 0xbb], 0),
            Progress::Final
        );
        let r = ins.take_report(s, &p);
        assert_eq!(r.fired, Fired::default());
        assert!(r.meta.is_none());
    }
}
