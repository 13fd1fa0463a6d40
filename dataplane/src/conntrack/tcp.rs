//! TCP connection tracking with sequence-window checks, after Guido van Rooij's "Real Stateful
//! TCP Packet Filtering in IP Filter" (2000) as OpenBSD's pf applies it: each direction keeps the
//! highest sequence end it sent (`seqlo`), the right edge of what the other side allowed it to
//! send (`seqhi`), its largest advertised window and its window scale; a segment passes only if
//! it lies within those bounds, so that blind injection (RSTs, data) needs a guess within one
//! window.
//!
//! Owns: one connection's TCP state (25 bytes). Must never: allocate, read a clock, or look at
//! anything but the segment it is given.

/// Slack for ACKs of data this tracker has not seen pass (pf's MAXACKWINDOW: one maximum
/// unscaled window plus one MTU).
const MAX_ACK_SLACK: u32 = 65_535 + 1_500;
/// No window-scale option was seen in this peer's SYN.
const NO_SCALE: u8 = 0xff;
/// RFC 7323 §2.3: shifts above 14 are treated as 14.
const MAX_SCALE: u8 = 14;

/// TCP flags (RFC 9293 §3.1), as the wire module names them.
pub use crate::wire::tcp::flags;
use flags::*;

/// What the tracker needs of one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Segment {
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    pub payload_len: u32,
    /// The window-scale option's shift, when the segment carries one (only meaningful on SYNs).
    pub wscale: Option<u8>,
}

impl Segment {
    /// Reads the segment from the TCP header at the start of `tcp` (header + payload, as the
    /// parser delimited them). `None` if the header does not fit.
    #[inline(always)]
    pub fn parse(tcp: &[u8], payload_len: u32) -> Option<Segment> {
        // The fixed header as one array: one length check, then loads whose bounds checks the
        // compiler drops (the wire view's accessors check each field against the slice).
        let h: &[u8; crate::wire::tcp::HEADER_LEN] = tcp.first_chunk()?;
        let header_len = usize::from(h[12] >> 4) * 4;
        if header_len < h.len() || header_len > tcp.len() {
            return None;
        }
        let flags = h[13];
        let wscale = if flags & SYN != 0 {
            window_scale(&crate::wire::tcp::Packet::new_checked(tcp).ok()?)
        } else {
            None
        };
        use crate::wire::{be16, be32};
        Some(Segment {
            seq: be32(h, 4),
            ack: be32(h, 8),
            flags,
            window: be16(h, 14),
            payload_len,
            wscale,
        })
    }

    /// Sequence space the segment occupies: its payload, plus one for SYN and one for FIN.
    #[inline]
    fn end(&self) -> u32 {
        self.seq
            .wrapping_add(self.payload_len)
            .wrapping_add((self.flags & SYN != 0) as u32)
            .wrapping_add((self.flags & FIN != 0) as u32)
    }
}

/// The window-scale option of a SYN (its options are walked only for SYNs).
#[cold]
fn window_scale(p: &crate::wire::tcp::Packet<&[u8]>) -> Option<u8> {
    use crate::wire::tcp::TcpOption;
    let mut wscale = None;
    for opt in p.option_iter() {
        match opt {
            Ok(TcpOption::WindowScale(s)) => wscale = Some(s),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    wscale
}

/// Why a segment was refused. Each is a drop counter with `name()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpReject {
    /// A flag combination no TCP sends (SYN+FIN, SYN+RST, FIN or URG/PSH without ACK, no flags).
    InvalidFlags,
    /// Outside the sequence or acknowledgement window.
    OutOfWindow,
    /// A first packet that cannot open a connection (not a SYN, or a SYN that also ACKs).
    NotSyn,
}

impl TcpReject {
    pub fn name(self) -> &'static str {
        match self {
            TcpReject::InvalidFlags => "invalid_flags",
            TcpReject::OutOfWindow => "out_of_window",
            TcpReject::NotSyn => "no_state",
        }
    }
}

/// One direction's progress. Ordered: a peer only moves forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
#[repr(u8)]
pub enum PeerState {
    /// Nothing seen from this side yet.
    #[default]
    Closed,
    /// Sent its SYN.
    SynSent,
    /// Its SYN was acknowledged.
    Established,
    /// Sent its FIN.
    FinSent,
    /// Its FIN was acknowledged.
    FinAcked,
    /// Sent or received a valid RST.
    Reset,
}

impl PeerState {
    fn from_u8(v: u8) -> Option<PeerState> {
        Some(match v {
            0 => PeerState::Closed,
            1 => PeerState::SynSent,
            2 => PeerState::Established,
            3 => PeerState::FinSent,
            4 => PeerState::FinAcked,
            5 => PeerState::Reset,
            _ => return None,
        })
    }
}

/// Bytes of `TcpTracker::snapshot`.
pub const SNAPSHOT_LEN: usize = 25;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Peer {
    seqlo: u32,
    seqhi: u32,
    max_win: u16,
    wscale: u8,
    state: PeerState,
}

/// The connection's state as a whole, for timeouts and reporting (the names of Linux conntrack).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnState {
    SynSent,
    SynRecv,
    Established,
    /// One or both FINs sent, not both acknowledged.
    Closing,
    /// Both FINs acknowledged.
    TimeWait,
    /// Reset.
    Close,
}

impl ConnState {
    pub fn name(self) -> &'static str {
        match self {
            ConnState::SynSent => "syn_sent",
            ConnState::SynRecv => "syn_recv",
            ConnState::Established => "established",
            ConnState::Closing => "closing",
            ConnState::TimeWait => "time_wait",
            ConnState::Close => "closed",
        }
    }
}

/// Refuses flag combinations that no conforming TCP sends (the "xmas", "null", SYN+FIN and
/// SYN+RST scans among them). Every segment after the first SYN carries ACK (RFC 9293 §3.10.7.4),
/// so FIN, PSH or URG without ACK is invalid too.
#[inline]
pub fn check_flags(f: u8) -> Result<(), TcpReject> {
    let bad = f & (SYN | ACK | RST | FIN) == 0
        || f & (SYN | FIN) == (SYN | FIN)
        || f & (SYN | RST) == (SYN | RST)
        || (f & ACK == 0 && f & (FIN | PSH | URG) != 0);
    if bad {
        Err(TcpReject::InvalidFlags)
    } else {
        Ok(())
    }
}

#[inline(always)]
fn seq_lt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}
#[inline(always)]
fn seq_leq(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) <= 0
}
#[inline(always)]
fn seq_gt(a: u32, b: u32) -> bool {
    !seq_leq(a, b)
}
#[inline(always)]
fn seq_geq(a: u32, b: u32) -> bool {
    !seq_lt(a, b)
}

/// One TCP connection: its two directions (0: the side that opened it, 1: the other).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpTracker {
    peers: [Peer; 2],
    /// Adopted mid-stream (loose pickup): window scales are unknown, so windows are read with
    /// the largest scale until a SYN would have told; the "one window back" bound is skipped
    /// until both directions were seen.
    loose: bool,
    /// Synced from the HA peer: the snapshot may be behind, so each side's next segment sets
    /// where its window is (after a takeover, the first packets re-learn the windows; see
    /// `from_snapshot`).
    relearn: [bool; 2],
}

impl TcpTracker {
    /// The tracker a table entry holds for a connection that is not TCP; never consulted.
    pub const fn default_for_other() -> TcpTracker {
        TcpTracker {
            peers: [Peer {
                seqlo: 0,
                seqhi: 0,
                max_win: 0,
                wscale: NO_SCALE,
                state: PeerState::Closed,
            }; 2],
            loose: false,
            relearn: [false; 2],
        }
    }

    /// Opens tracking with the connection's first segment, from its initiator. Strictly, that
    /// must be a SYN without ACK. With `pickup` (loose, for connections already running when the
    /// appliance started or took over), any valid segment adopts the connection.
    pub fn open(seg: &Segment, pickup: bool) -> Result<TcpTracker, TcpReject> {
        check_flags(seg.flags)?;
        let is_syn = seg.flags & (SYN | ACK | RST) == SYN;
        if !is_syn && (!pickup || seg.flags & RST != 0) {
            return Err(TcpReject::NotSyn);
        }
        let mut t = TcpTracker {
            peers: [Peer::default(); 2],
            loose: !is_syn,
            relearn: [false; 2],
        };
        t.init_peer(0, seg);
        Ok(t)
    }

    /// Whether a fresh SYN may replace this connection: the same 5-tuple reused after the old
    /// connection closed (RFC 9293 §3.6.1 allows it from TIME_WAIT), or the initiator starting
    /// over with a new sequence number while nobody ever answered its first SYN.
    pub fn may_reopen(&self, seg: &Segment, from_initiator: bool) -> bool {
        if seg.flags & (SYN | ACK | RST | FIN) != SYN {
            return false;
        }
        match self.state() {
            ConnState::TimeWait | ConnState::Close => true,
            ConnState::SynSent => {
                from_initiator
                    && self.peers[1].state == PeerState::Closed
                    && seg.end() != self.peers[0].seqlo
            }
            _ => false,
        }
    }

    pub fn is_loose(&self) -> bool {
        self.loose
    }

    /// The sequence number the initiator (or the responder) sends next: where its stream
    /// continues. Meaningful for connections tracked from their SYN.
    #[inline]
    pub fn next_seq(&self, initiator: bool) -> Option<u32> {
        let p = &self.peers[(!initiator) as usize];
        (p.state != PeerState::Closed).then_some(p.seqlo)
    }

    /// The tracker as bytes, for state sync to a standby: per side (initiator first) seqlo,
    /// seqhi, max_win, wscale, state; then whether it was adopted loosely.
    pub fn snapshot(&self) -> [u8; SNAPSHOT_LEN] {
        let mut b = [0u8; SNAPSHOT_LEN];
        for (i, p) in self.peers.iter().enumerate() {
            let o = i * 12;
            b[o..o + 4].copy_from_slice(&p.seqlo.to_be_bytes());
            b[o + 4..o + 8].copy_from_slice(&p.seqhi.to_be_bytes());
            b[o + 8..o + 10].copy_from_slice(&p.max_win.to_be_bytes());
            b[o + 10] = p.wscale;
            b[o + 11] = p.state as u8;
        }
        b[24] = self.loose as u8;
        b
    }

    /// A tracker from a `snapshot` taken by the active appliance. The active's windows may be
    /// far behind by the time the standby takes over (a refresh every few seconds, megabytes
    /// apart), so each side re-learns its window from its next segment, as a loose pickup
    /// would, but only for connections the active synced, and with the states and window scales
    /// the handshake negotiated. Until a side has spoken, a RST from it must carry the sequence
    /// number the other side last acknowledged (or the snapshot's). `None` for bytes no tracker
    /// could have written.
    pub fn from_snapshot(b: &[u8; SNAPSHOT_LEN]) -> Option<TcpTracker> {
        let mut t = TcpTracker::default_for_other();
        for (i, p) in t.peers.iter_mut().enumerate() {
            let o = i * 12;
            let u32_at = |o: usize| u32::from_be_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
            *p = Peer {
                seqlo: u32_at(o),
                seqhi: u32_at(o + 4),
                max_win: u16::from_be_bytes([b[o + 8], b[o + 9]]),
                wscale: b[o + 10],
                state: PeerState::from_u8(b[o + 11])?,
            };
            if p.wscale != NO_SCALE && p.wscale > MAX_SCALE {
                return None;
            }
        }
        if b[24] > 1 {
            return None;
        }
        t.loose = b[24] == 1;
        for (i, p) in t.peers.iter().enumerate() {
            t.relearn[i] = p.state != PeerState::Closed;
        }
        Some(t)
    }

    /// A side's first segment after a takeover: it tells where that side's stream is.
    fn relearn_side(&mut self, side: usize, seg: &Segment) -> Result<(), TcpReject> {
        let f = seg.flags;
        if f & RST != 0 {
            if seg.seq != self.peers[side].seqlo {
                return Err(TcpReject::OutOfWindow);
            }
            self.peers[0].state = PeerState::Reset;
            self.peers[1].state = PeerState::Reset;
            return Ok(());
        }
        self.relearn[side] = false;
        let end = seg.end();
        let p = &mut self.peers[side];
        p.seqlo = end;
        // Anything up to the largest window a scaled peer can offer, until the other side's
        // ACKs and windows narrow it.
        p.seqhi = end.wrapping_add((u16::MAX as u32) << MAX_SCALE);
        p.max_win = p.max_win.max(seg.window).max(1);
        if f & FIN != 0 && p.state < PeerState::FinSent {
            p.state = PeerState::FinSent;
        }
        if f & ACK != 0 {
            let other = 1 - side;
            if self.relearn[other] {
                // Where the other side's stream is, as far as this side has received it.
                self.peers[other].seqlo = seg.ack;
                self.peers[other].seqhi = seg.ack.wrapping_add((u16::MAX as u32) << MAX_SCALE);
            } else {
                self.on_ack(side, seg);
            }
        }
        Ok(())
    }

    fn init_peer(&mut self, side: usize, seg: &Segment) {
        let dst = self.peers[1 - side];
        let end = seg.end();
        let scale = if self.loose {
            MAX_SCALE
        } else {
            match seg.wscale {
                Some(s) if seg.flags & SYN != 0 => s.min(MAX_SCALE),
                _ => NO_SCALE,
            }
        };
        // What this side may send before the other side told us more: the other side's largest
        // window when it is known, else just this segment (loose: anything).
        let allowance = if self.loose {
            (u16::MAX as u32) << MAX_SCALE
        } else if dst.state != PeerState::Closed {
            (dst.max_win as u32).max(1)
        } else {
            1
        };
        self.peers[side] = Peer {
            seqlo: end,
            seqhi: end.wrapping_add(allowance),
            max_win: seg.window.max(1),
            wscale: scale,
            state: if seg.flags & SYN != 0 {
                PeerState::SynSent
            } else {
                PeerState::Established
            },
        };
        if self.loose && dst.state == PeerState::Closed {
            // Adopted mid-stream: this side's ACK tells how far the other side has sent.
            if seg.flags & ACK != 0 {
                self.peers[1 - side].seqlo = seg.ack;
            }
        }
    }

    /// Shifts in force: both SYNs carried the option (RFC 7323 §2.2), or adopted loosely.
    #[inline]
    fn scales(&self, side: usize) -> (u8, u8) {
        let (s, d) = (self.peers[side].wscale, self.peers[1 - side].wscale);
        if s != NO_SCALE && d != NO_SCALE {
            (s, d)
        } else {
            (0, 0)
        }
    }

    /// Tracks one segment; `from_initiator` tells its direction. On `Err` nothing changed.
    #[inline]
    pub fn track(&mut self, from_initiator: bool, seg: &Segment) -> Result<(), TcpReject> {
        check_flags(seg.flags)?;
        let side = if from_initiator { 0 } else { 1 };
        // The rare cases (a SYN, a side's first segment, a synced side re-learning) out of line;
        // an established connection's segment goes straight to the window checks.
        if self.relearn[side]
            | (self.peers[side].state == PeerState::Closed)
            | (seg.flags & SYN != 0)
        {
            if let Some(done) = self.track_opening(side, seg) {
                return done;
            }
        }
        self.track_window(side, seg)
    }

    /// `track` for a synced side's first segment, a side's first segment, and a responder
    /// restarting its half; `None` when the segment takes the ordinary window checks.
    #[cold]
    #[inline(never)]
    fn track_opening(&mut self, side: usize, seg: &Segment) -> Option<Result<(), TcpReject>> {
        let f = seg.flags;
        if self.relearn[side] {
            return Some(self.relearn_side(side, seg));
        }

        if self.peers[side].state == PeerState::Closed {
            // This side's first segment: the answer to the opening SYN.
            let initiator = self.peers[1 - side];
            // It acknowledges the SYN and possibly data the SYN carried (TCP Fast Open, RFC 7413:
            // a server that rejects the cookie acknowledges the SYN alone). A SYN's data fits in
            // one IP packet: at most 65535 bytes before the initiator's sequence end.
            let acks_syn = f & ACK != 0
                && seq_leq(seg.ack, initiator.seqlo)
                && seq_gt(seg.ack, initiator.seqlo.wrapping_sub(u16::MAX as u32 + 2));
            let ok = if self.loose {
                f & RST == 0
            } else if f & RST != 0 {
                // Connection refused: a RST must acknowledge the SYN (RFC 9293 §3.10.7.2).
                acks_syn
            } else if f & SYN != 0 {
                // SYN-ACK acknowledging the SYN, or a bare SYN (simultaneous open).
                f & ACK == 0 || acks_syn
            } else {
                false
            };
            if !ok {
                return Some(Err(TcpReject::OutOfWindow));
            }
            if f & RST != 0 {
                self.peers[0].state = PeerState::Reset;
                self.peers[1].state = PeerState::Reset;
                return Some(Ok(()));
            }
            self.init_peer(side, seg);
            if f & ACK != 0 {
                self.on_ack(side, seg);
            }
            return Some(Ok(()));
        }

        // A responder whose SYN nobody acknowledged yet may answer a retransmitted SYN with a new
        // SYN-ACK and a new sequence number (it dropped its first half-open connection, as TCP
        // Fast Open servers do): that restarts its half of the tracking.
        if side == 1
            && f & (SYN | ACK) == (SYN | ACK)
            && self.peers[1].state == PeerState::SynSent
            && seg.seq != self.peers[1].seqlo.wrapping_sub(1)
        {
            let initiator = self.peers[0];
            if seq_leq(seg.ack, initiator.seqlo)
                && seq_gt(seg.ack, initiator.seqlo.wrapping_sub(u16::MAX as u32 + 2))
            {
                self.init_peer(1, seg);
                self.on_ack(1, seg);
                return Some(Ok(()));
            }
        }
        None
    }

    /// Whether `seg` is a plain segment of an established connection: an ACK (with or without
    /// data, PSH or URG) and no SYN, FIN or RST, both sides established (from a handshake, or
    /// adopted loosely and seen both ways), neither re-learning after a takeover. Such a
    /// segment can only move the windows on, never change a state: `track_established` takes
    /// it with nothing else to decide. The per-packet path asks this first.
    #[inline(always)]
    pub fn is_plain(&self, seg: &Segment) -> bool {
        (seg.flags & (SYN | FIN | RST | ACK) == ACK)
            & (self.peers[0].state == PeerState::Established)
            & (self.peers[1].state == PeerState::Established)
            & !(self.relearn[0] | self.relearn[1])
    }

    /// `track` for a segment `is_plain` accepted: the window checks, then the bounds move on.
    /// On `Err` nothing changed.
    #[inline(always)]
    pub fn track_established(
        &mut self,
        from_initiator: bool,
        seg: &Segment,
    ) -> Result<(), TcpReject> {
        debug_assert!(self.is_plain(seg));
        let side = (!from_initiator) as usize;
        let scales = self.scales(side);
        if !self.in_window(side, seg, scales) {
            return Err(TcpReject::OutOfWindow);
        }
        self.advance(side, seg, scales.0);
        Ok(())
    }

    /// `track` for a side already seen: pf's window checks, then the bounds move on.
    #[inline(always)]
    fn track_window(&mut self, side: usize, seg: &Segment) -> Result<(), TcpReject> {
        let f = seg.flags;
        let scales = self.scales(side);
        if !self.in_window(side, seg, scales) {
            return Err(TcpReject::OutOfWindow);
        }
        // An adopted connection's windows are read liberally (scales unknown): a RST there must
        // hit the next sequence number exactly, as RFC 5961 endpoints require for an immediate
        // reset.
        if f & RST != 0 && self.loose && seg.seq != self.peers[side].seqlo {
            return Err(TcpReject::OutOfWindow);
        }
        if f & RST != 0 {
            self.peers[0].state = PeerState::Reset;
            self.peers[1].state = PeerState::Reset;
            return Ok(());
        }
        let src = &mut self.peers[side];
        if f & SYN != 0 && src.state < PeerState::SynSent {
            src.state = PeerState::SynSent;
        }
        if f & FIN != 0 && src.state < PeerState::FinSent {
            src.state = PeerState::FinSent;
        }
        self.advance(side, seg, scales.0);
        Ok(())
    }

    /// The window checks (pf's): the segment ends within what the other side allowed, starts
    /// no more than one of the other side's windows back, and its ACK is not far from what
    /// the other side sent. `scales` are `scales(side)`.
    #[inline(always)]
    fn in_window(&self, side: usize, seg: &Segment, (sws, dws): (u8, u8)) -> bool {
        let (src, dst) = (&self.peers[side], &self.peers[side ^ 1]);
        let end = seg.end();
        let back = ((dst.max_win as u32) << dws).max(1);
        let fits_right = seq_geq(src.seqhi, end);
        let fits_left = (self.loose && dst.state == PeerState::Closed)
            || seq_geq(seg.seq, src.seqlo.wrapping_sub(back));
        let ack_ok = seg.flags & ACK == 0 || {
            // How far the ACK trails the data the other side sent.
            let skew = dst.seqlo.wrapping_sub(seg.ack) as i32 as i64;
            skew >= -(MAX_ACK_SLACK as i64) && skew <= ((MAX_ACK_SLACK as i64) << sws)
        };
        fits_right & fits_left & ack_ok
    }

    /// A segment that passed the window checks moves this side's bounds on, and with its ACK
    /// the other side's (`on_ack`). `sws` is this side's shift from `scales(side)`.
    #[inline(always)]
    fn advance(&mut self, side: usize, seg: &Segment, sws: u8) {
        let src = &mut self.peers[side];
        src.max_win = src.max_win.max(seg.window);
        let end = seg.end();
        if seq_gt(end, src.seqlo) {
            src.seqlo = end;
        }
        if seg.flags & ACK != 0 {
            self.acked(side, seg, sws);
        }
    }

    /// The other side's send bound grows with this side's ACK and window; its SYN or FIN is
    /// acknowledged once the ACK covers it.
    #[inline(always)]
    fn on_ack(&mut self, side: usize, seg: &Segment) {
        self.acked(side, seg, self.scales(side).0);
    }

    /// `on_ack` with this side's shift (`scales(side).0`) already known.
    #[inline(always)]
    fn acked(&mut self, side: usize, seg: &Segment, sws: u8) {
        // RFC 7323 §2.2: the window of a SYN is never scaled.
        let win = if seg.flags & SYN != 0 {
            seg.window as u32
        } else {
            (seg.window as u32) << sws
        };
        let dst = &mut self.peers[side ^ 1];
        let edge = seg.ack.wrapping_add(win.max(1));
        if seq_geq(edge, dst.seqhi) {
            dst.seqhi = edge;
        }
        if seq_geq(seg.ack, dst.seqlo) {
            match dst.state {
                PeerState::SynSent => dst.state = PeerState::Established,
                PeerState::FinSent => dst.state = PeerState::FinAcked,
                _ => {}
            }
        }
    }

    /// Whether `seq`, the sequence number of a segment this direction sent as quoted by an ICMP
    /// error, lies within what that side has sent or may send (pf checks the same): a blind
    /// attacker must guess a window to forge an error.
    pub fn plausible_quote(&self, from_initiator: bool, seq: u32) -> bool {
        let side = if from_initiator { 0 } else { 1 };
        let (_, dws) = self.scales(side);
        let (src, dst) = (self.peers[side], self.peers[1 - side]);
        let back = ((dst.max_win as u32) << dws).max(1);
        seq_geq(seq, src.seqlo.wrapping_sub(back)) && seq_leq(seq, src.seqhi)
    }

    /// Both sides' states as one number: changes whenever `state()` may have (two byte loads
    /// instead of its branches; the per-packet path compares it around `track`).
    #[inline(always)]
    pub fn raw_state(&self) -> u16 {
        (self.peers[0].state as u16) << 8 | self.peers[1].state as u16
    }

    /// The connection's overall state.
    pub fn state(&self) -> ConnState {
        let (a, b) = (self.peers[0].state, self.peers[1].state);
        use PeerState::*;
        if a == Reset || b == Reset {
            ConnState::Close
        } else if a == FinAcked && b == FinAcked {
            ConnState::TimeWait
        } else if a >= FinSent || b >= FinSent {
            ConnState::Closing
        } else if a == Established && b == Established {
            ConnState::Established
        } else if b == Closed {
            ConnState::SynSent
        } else {
            ConnState::SynRecv
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One end of a simulated conversation: enough of a TCP to produce conforming segments.
    #[derive(Clone, Copy)]
    struct Host {
        nxt: u32,
        rcv: u32,
        win: u16,
        wscale: Option<u8>,
    }

    impl Host {
        fn new(isn: u32, win: u16, wscale: Option<u8>) -> Host {
            Host {
                nxt: isn,
                rcv: 0,
                win,
                wscale,
            }
        }
        fn seg(&mut self, flags: u8, len: u32) -> Segment {
            let s = Segment {
                seq: self.nxt,
                ack: if flags & ACK != 0 { self.rcv } else { 0 },
                flags,
                window: self.win,
                payload_len: len,
                wscale: if flags & SYN != 0 { self.wscale } else { None },
            };
            self.nxt = s.end();
            s
        }
        fn got(&mut self, s: &Segment) {
            if seq_gt(s.end(), self.rcv) || self.rcv == 0 {
                self.rcv = s.end();
            }
        }
    }

    /// Client and server through the handshake; returns the tracker and both hosts.
    fn handshake(c: &mut Host, s: &mut Host) -> TcpTracker {
        let syn = c.seg(SYN, 0);
        let mut t = TcpTracker::open(&syn, false).unwrap();
        assert_eq!(t.state(), ConnState::SynSent);
        s.got(&syn);
        let synack = s.seg(SYN | ACK, 0);
        t.track(false, &synack).unwrap();
        assert_eq!(t.state(), ConnState::SynRecv);
        c.got(&synack);
        let ack = c.seg(ACK, 0);
        t.track(true, &ack).unwrap();
        s.got(&ack);
        assert_eq!(t.state(), ConnState::Established);
        t
    }

    fn send(
        t: &mut TcpTracker,
        from_client: bool,
        a: &mut Host,
        b: &mut Host,
        flags: u8,
        len: u32,
    ) -> Result<(), TcpReject> {
        let seg = a.seg(flags, len);
        let r = t.track(from_client, &seg);
        if r.is_ok() {
            b.got(&seg);
        }
        r
    }

    #[test]
    fn full_connection_through_time_wait() {
        let (mut c, mut s) = (Host::new(1000, 64_240, None), Host::new(5000, 65_160, None));
        let mut t = handshake(&mut c, &mut s);
        send(&mut t, true, &mut c, &mut s, ACK | PSH, 100).unwrap();
        for _ in 0..40 {
            send(&mut t, false, &mut s, &mut c, ACK, 1448).unwrap();
            send(&mut t, true, &mut c, &mut s, ACK, 0).unwrap();
        }
        send(&mut t, true, &mut c, &mut s, FIN | ACK, 0).unwrap();
        assert_eq!(t.state(), ConnState::Closing);
        send(&mut t, false, &mut s, &mut c, FIN | ACK, 0).unwrap();
        send(&mut t, true, &mut c, &mut s, ACK, 0).unwrap();
        assert_eq!(t.state(), ConnState::TimeWait);
    }

    #[test]
    fn retransmissions_pass() {
        let (mut c, mut s) = (Host::new(1, 64_240, None), Host::new(2, 65_160, None));
        let mut t = handshake(&mut c, &mut s);
        let data = s.seg(ACK, 1448);
        t.track(false, &data).unwrap();
        t.track(false, &data).unwrap(); // retransmitted before the ACK
        c.got(&data);
        send(&mut t, true, &mut c, &mut s, ACK, 0).unwrap();
        t.track(false, &data).unwrap(); // and after it
        assert_eq!(t.state(), ConnState::Established);
    }

    #[test]
    fn blind_injection_is_refused_and_changes_nothing() {
        let (mut c, mut s) = (Host::new(77, 64_240, None), Host::new(99_000, 65_160, None));
        let mut t = handshake(&mut c, &mut s);
        send(&mut t, false, &mut s, &mut c, ACK, 1000).unwrap();
        let saved = t;
        for off in [200_000u32, 1 << 20, 1 << 31, 0u32.wrapping_sub(200_000)] {
            let rst = Segment {
                seq: s.nxt.wrapping_add(off),
                ack: 0,
                flags: RST,
                window: 0,
                payload_len: 0,
                wscale: None,
            };
            assert_eq!(
                t.track(false, &rst),
                Err(TcpReject::OutOfWindow),
                "rst at +{off}"
            );
            let data = Segment {
                seq: s.nxt.wrapping_add(off),
                ack: c.nxt,
                flags: ACK | PSH,
                window: 500,
                payload_len: 100,
                wscale: None,
            };
            assert_eq!(
                t.track(false, &data),
                Err(TcpReject::OutOfWindow),
                "data at +{off}"
            );
            // An ACK for data the client never sent.
            let ack = Segment {
                seq: s.nxt,
                ack: c.nxt.wrapping_add(off),
                flags: ACK,
                window: 500,
                payload_len: 0,
                wscale: None,
            };
            assert_eq!(
                t.track(false, &ack),
                Err(TcpReject::OutOfWindow),
                "ack at +{off}"
            );
        }
        assert_eq!(t, saved, "a refused segment must not change state");
    }

    #[test]
    fn rst_in_window_closes() {
        let (mut c, mut s) = (Host::new(10, 64_240, None), Host::new(20, 65_160, None));
        let mut t = handshake(&mut c, &mut s);
        let rst = Segment {
            seq: s.nxt,
            ack: 0,
            flags: RST,
            window: 0,
            payload_len: 0,
            wscale: None,
        };
        t.track(false, &rst).unwrap();
        assert_eq!(t.state(), ConnState::Close);
    }

    #[test]
    fn invalid_flag_combinations() {
        for f in [
            0,
            PSH,
            URG,
            FIN,
            FIN | PSH | URG,
            SYN | FIN,
            SYN | RST,
            SYN | FIN | ACK,
            SYN | RST | ACK,
        ] {
            assert_eq!(check_flags(f), Err(TcpReject::InvalidFlags), "flags {f:#x}");
        }
        for f in [
            SYN,
            SYN | ACK,
            ACK,
            ACK | PSH,
            FIN | ACK,
            RST,
            RST | ACK,
            ACK | URG | PSH,
            SYN | 0x40 | 0x80,
        ] {
            assert_eq!(check_flags(f), Ok(()), "flags {f:#x}");
        }
        let xmas = Segment {
            flags: FIN | PSH | URG,
            ..Segment::default()
        };
        assert_eq!(TcpTracker::open(&xmas, true), Err(TcpReject::InvalidFlags));
    }

    #[test]
    fn simultaneous_open() {
        let (mut a, mut b) = (Host::new(100, 64_000, None), Host::new(200, 64_000, None));
        let syn_a = a.seg(SYN, 0);
        let mut t = TcpTracker::open(&syn_a, false).unwrap();
        let syn_b = b.seg(SYN, 0);
        t.track(false, &syn_b).unwrap();
        a.got(&syn_b);
        b.got(&syn_a);
        let sa_a = Segment {
            seq: syn_a.seq,
            ack: a.rcv,
            flags: SYN | ACK,
            window: 64_000,
            payload_len: 0,
            wscale: None,
        };
        let sa_b = Segment {
            seq: syn_b.seq,
            ack: b.rcv,
            flags: SYN | ACK,
            window: 64_000,
            payload_len: 0,
            wscale: None,
        };
        t.track(true, &sa_a).unwrap();
        t.track(false, &sa_b).unwrap();
        assert_eq!(t.state(), ConnState::Established);
    }

    #[test]
    fn a_synced_tracker_relearns_windows_far_ahead_of_its_snapshot() {
        let (mut c, mut s) = (Host::new(1000, 512, Some(7)), Host::new(5000, 512, Some(7)));
        let mut t = handshake(&mut c, &mut s);
        let snap = t.snapshot();
        // 10 MB later on the old active.
        for _ in 0..7000 {
            send(&mut t, false, &mut s, &mut c, ACK, 1448).unwrap();
            send(&mut t, true, &mut c, &mut s, ACK, 0).unwrap();
        }
        let mut standby = TcpTracker::from_snapshot(&snap).unwrap();
        // A RST from a side not yet heard from must hit what the other side acknowledged.
        let mut blind = s.seg(RST, 0);
        blind.seq = blind.seq.wrapping_add(100_000);
        assert_eq!(standby.track(false, &blind), Err(TcpReject::OutOfWindow));
        // The first packets after the takeover: the server's data, the client's ACKs.
        for _ in 0..50 {
            send(&mut standby, false, &mut s, &mut c, ACK, 1448).unwrap();
            send(&mut standby, true, &mut c, &mut s, ACK, 0).unwrap();
        }
        assert_eq!(standby.state(), ConnState::Established);
        // Learned: a segment far outside the window is refused again.
        let mut far = s.seg(ACK, 1448);
        far.seq = far.seq.wrapping_add(1 << 30);
        assert_eq!(standby.track(false, &far), Err(TcpReject::OutOfWindow));
        // And the connection closes normally.
        send(&mut standby, true, &mut c, &mut s, FIN | ACK, 0).unwrap();
        send(&mut standby, false, &mut s, &mut c, FIN | ACK, 0).unwrap();
        send(&mut standby, true, &mut c, &mut s, ACK, 0).unwrap();
        assert_eq!(standby.state(), ConnState::TimeWait);
    }

    #[test]
    fn half_close_keeps_the_other_direction_open() {
        let (mut c, mut s) = (Host::new(5, 64_240, None), Host::new(6, 65_160, None));
        let mut t = handshake(&mut c, &mut s);
        send(&mut t, true, &mut c, &mut s, FIN | ACK, 0).unwrap();
        send(&mut t, false, &mut s, &mut c, ACK, 0).unwrap();
        for _ in 0..10 {
            send(&mut t, false, &mut s, &mut c, ACK, 1448).unwrap();
            send(&mut t, true, &mut c, &mut s, ACK, 0).unwrap();
        }
        assert_eq!(t.state(), ConnState::Closing);
        send(&mut t, false, &mut s, &mut c, FIN | ACK, 0).unwrap();
        send(&mut t, true, &mut c, &mut s, ACK, 0).unwrap();
        assert_eq!(t.state(), ConnState::TimeWait);
    }

    #[test]
    fn window_scaling_is_honoured_only_when_both_sides_offer_it() {
        // 512 << 7 = 64 KiB windows: a 60 KiB flight fits only if scaling is in force.
        let flight = |cs: Option<u8>, ss: Option<u8>| {
            let (mut c, mut s) = (Host::new(1, 512, cs), Host::new(2, 512, ss));
            let mut t = handshake(&mut c, &mut s);
            let mut r = Ok(());
            for _ in 0..40 {
                r = r.and(send(&mut t, false, &mut s, &mut c, ACK, 1500));
            }
            r
        };
        assert_eq!(flight(Some(7), Some(7)), Ok(()));
        assert_eq!(flight(Some(7), None), Err(TcpReject::OutOfWindow));
    }

    #[test]
    fn refused_connection() {
        let mut c = Host::new(1000, 64_240, None);
        let syn = c.seg(SYN, 0);
        let mut t = TcpTracker::open(&syn, false).unwrap();
        let blind = Segment {
            seq: 0,
            ack: 0,
            flags: RST,
            window: 0,
            payload_len: 0,
            wscale: None,
        };
        assert_eq!(t.track(false, &blind), Err(TcpReject::OutOfWindow));
        let rst = Segment {
            seq: 0,
            ack: syn.end(),
            flags: RST | ACK,
            window: 0,
            payload_len: 0,
            wscale: None,
        };
        t.track(false, &rst).unwrap();
        assert_eq!(t.state(), ConnState::Close);
    }

    #[test]
    fn strict_open_needs_a_syn_pickup_adopts() {
        let (mut c, mut s) = (Host::new(4000, 64_240, None), Host::new(9000, 65_160, None));
        let _ = handshake(&mut c, &mut s);
        let mid = c.seg(ACK | PSH, 200);
        assert_eq!(TcpTracker::open(&mid, false), Err(TcpReject::NotSyn));
        let synack = Segment {
            flags: SYN | ACK,
            ..mid
        };
        assert_eq!(TcpTracker::open(&synack, false), Err(TcpReject::NotSyn));
        let mut t = TcpTracker::open(&mid, true).unwrap();
        assert!(t.is_loose());
        s.got(&mid);
        for _ in 0..20 {
            send(&mut t, false, &mut s, &mut c, ACK, 1448).unwrap();
            send(&mut t, true, &mut c, &mut s, ACK, 0).unwrap();
        }
        assert_eq!(t.state(), ConnState::Established);
        // Even loose, a RST far from the window is refused once both sides were seen.
        let rst = Segment {
            seq: s.nxt.wrapping_add(1 << 31),
            ack: 0,
            flags: RST,
            window: 0,
            payload_len: 0,
            wscale: None,
        };
        assert_eq!(t.track(false, &rst), Err(TcpReject::OutOfWindow));
    }

    #[test]
    fn sequence_numbers_wrap() {
        let (mut c, mut s) = (
            Host::new(u32::MAX - 3000, 64_240, None),
            Host::new(u32::MAX - 10, 65_160, None),
        );
        let mut t = handshake(&mut c, &mut s);
        for _ in 0..10 {
            send(&mut t, false, &mut s, &mut c, ACK, 1448).unwrap();
            send(&mut t, true, &mut c, &mut s, ACK, 700).unwrap();
        }
        assert_eq!(t.state(), ConnState::Established);
    }

    #[test]
    fn responder_may_restart_its_half_before_its_syn_is_acked() {
        let mut c = Host::new(1000, 64_240, None);
        let syn = c.seg(SYN, 0);
        let mut t = TcpTracker::open(&syn, false).unwrap();
        let first = Segment {
            seq: 7000,
            ack: syn.end(),
            flags: SYN | ACK,
            window: 65_000,
            payload_len: 0,
            wscale: None,
        };
        t.track(false, &first).unwrap();
        let second = Segment {
            seq: 900_000,
            ..first
        };
        t.track(false, &second).unwrap();
        let ack = Segment {
            seq: syn.end(),
            ack: 900_001,
            flags: ACK,
            window: 64_240,
            payload_len: 0,
            wscale: None,
        };
        t.track(true, &ack).unwrap();
        assert_eq!(t.state(), ConnState::Established);
        // Once established, a SYN-ACK of the abandoned half is refused.
        assert_eq!(t.track(false, &first), Err(TcpReject::OutOfWindow));
    }

    #[test]
    fn an_unanswered_syn_may_be_replaced_by_the_initiator_only() {
        let syn = Segment {
            seq: 1000,
            flags: SYN,
            window: 64_240,
            ..Segment::default()
        };
        let t = TcpTracker::open(&syn, false).unwrap();
        let again = Segment {
            seq: 777_000,
            ..syn
        };
        assert!(t.may_reopen(&again, true), "new ISN from the initiator");
        assert!(
            !t.may_reopen(&syn, true),
            "a retransmission is not a new connection"
        );
        assert!(
            !t.may_reopen(&again, false),
            "a SYN from the other side is simultaneous open"
        );
    }

    #[test]
    fn an_adopted_connection_takes_a_rst_only_at_the_exact_sequence() {
        let mid = Segment {
            seq: 5000,
            ack: 7000,
            flags: ACK,
            window: 500,
            payload_len: 100,
            wscale: None,
        };
        let mut t = TcpTracker::open(&mid, true).unwrap();
        let back = Segment {
            seq: 7000,
            ack: 5100,
            flags: ACK,
            window: 500,
            payload_len: 0,
            wscale: None,
        };
        t.track(false, &back).unwrap();
        let near = Segment {
            seq: 7000 + 10,
            ack: 0,
            flags: RST,
            window: 0,
            payload_len: 0,
            wscale: None,
        };
        assert_eq!(t.track(false, &near), Err(TcpReject::OutOfWindow));
        let exact = Segment { seq: 7000, ..near };
        t.track(false, &exact).unwrap();
        assert_eq!(t.state(), ConnState::Close);
    }

    #[test]
    fn a_closed_tuple_may_be_reused_by_a_new_syn() {
        let (mut c, mut s) = (Host::new(1, 64_240, None), Host::new(2, 65_160, None));
        let mut t = handshake(&mut c, &mut s);
        let fresh = Segment {
            seq: 12345,
            flags: SYN,
            window: 64_240,
            ..Segment::default()
        };
        assert!(!t.may_reopen(&fresh, true));
        send(&mut t, true, &mut c, &mut s, FIN | ACK, 0).unwrap();
        send(&mut t, false, &mut s, &mut c, FIN | ACK, 0).unwrap();
        send(&mut t, true, &mut c, &mut s, ACK, 0).unwrap();
        assert!(t.may_reopen(&fresh, true));
        assert!(!t.may_reopen(
            &Segment {
                flags: SYN | ACK,
                ..fresh
            },
            true
        ));
    }

    #[test]
    fn segment_from_wire_reads_window_scale_on_syn() {
        // The TCP header of the first SYN in configs/captures/lab-mixed.pcap (curl, Linux):
        // 10.99.0.1.42562 > 10.99.0.2.443, seq 1468637064, win 64240, MSS 1460, SACK-permitted,
        // timestamps, window scale 10.
        let tcp: [u8; 40] = [
            0xa6, 0x42, 0x01, 0xbb, 0x57, 0x89, 0x9f, 0x88, 0x00, 0x00, 0x00, 0x00, 0xa0, 0x02,
            0xfa, 0xf0, 0x9a, 0x84, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a,
            0xf8, 0xda, 0x05, 0xd5, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x0a,
        ];
        let seg = Segment::parse(&tcp, 0).unwrap();
        assert_eq!(seg.flags, SYN);
        assert_eq!(seg.wscale, Some(10));
        assert_eq!(seg.window, 64_240);
        assert_eq!(seg.seq, 1_468_637_064);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Any conforming conversation (random sizes within the receiver's window, random
            /// retransmissions, random window sizes and scales) is accepted in full.
            #[test]
            fn conforming_conversations_pass(
                isn_c in any::<u32>(), isn_s in any::<u32>(),
                wc in 1024u16.., ws in 1024u16..,
                scale in prop::option::of(0u8..=14),
                steps in prop::collection::vec((any::<bool>(), 0u32..1448, any::<bool>()), 1..200),
            ) {
                let (mut c, mut s) = (Host::new(isn_c, wc, scale), Host::new(isn_s, ws, scale));
                let mut t = handshake(&mut c, &mut s);
                let mut last: Option<(bool, Segment)> = None;
                for (from_client, len, retransmit) in steps {
                    if retransmit {
                        if let Some((fc, seg)) = last {
                            prop_assert_eq!(t.track(fc, &seg), Ok(()), "retransmission refused");
                            continue;
                        }
                    }
                    // Stay within the receiver's window (unscaled: the smaller bound).
                    let (a, b) = if from_client { (&mut c, &mut s) } else { (&mut s, &mut c) };
                    let len = len.min(b.win as u32);
                    let seg = a.seg(ACK, len);
                    prop_assert_eq!(t.track(from_client, &seg), Ok(()), "segment refused: {:?}", seg);
                    b.got(&seg);
                    // The receiver acknowledges at once.
                    let ack = b.seg(ACK, 0);
                    prop_assert_eq!(t.track(!from_client, &ack), Ok(()), "ack refused");
                    a.got(&ack);
                    last = Some((from_client, seg));
                }
                prop_assert_eq!(t.state(), ConnState::Established);
            }

            /// The per-packet path's shortcut agrees with `track`: every segment `is_plain`
            /// accepts gets the same verdict and leaves the same tracker from
            /// `track_established`, whether in window or not (random offsets around the
            /// expected sequence and acknowledgement numbers, random flags and windows, each
            /// side with its own window scale, tracked from a handshake or adopted loosely); and
            /// a plain segment changes no state.
            #[test]
            fn plain_segments_take_the_same_path(
                isn_c in any::<u32>(), isn_s in any::<u32>(),
                scale_c in prop::option::of(0u8..=14), scale_s in prop::option::of(0u8..=14),
                adopt in any::<bool>(),
                segs in prop::collection::vec(
                    (any::<bool>(),
                     prop_oneof![8 => Just(ACK), 4 => Just(ACK | PSH), 1 => Just(ACK | URG), 1 => any::<u8>()],
                     -70_000i32..70_000, -70_000i32..70_000,
                     any::<u16>(), 0u32..3000),
                    1..100),
            ) {
                let (mut c, mut s) = (Host::new(isn_c, 64_000, scale_c), Host::new(isn_s, 64_000, scale_s));
                let mut t = if adopt {
                    // Picked up mid-stream (loose): an ACK each way establishes both sides.
                    (c.rcv, s.rcv) = (s.nxt, c.nxt);
                    let a = c.seg(ACK, 0);
                    let mut t = TcpTracker::open(&a, true).unwrap();
                    s.got(&a);
                    let b = s.seg(ACK, 0);
                    t.track(false, &b).unwrap();
                    c.got(&b);
                    prop_assert!(t.is_loose() && t.state() == ConnState::Established);
                    t
                } else {
                    handshake(&mut c, &mut s)
                };
                for (from_client, flags, dseq, dack, window, len) in segs {
                    let (a, b) = if from_client { (&c, &s) } else { (&s, &c) };
                    let seg = Segment {
                        seq: a.nxt.wrapping_add(dseq as u32),
                        ack: b.nxt.wrapping_add(dack as u32),
                        flags,
                        window,
                        payload_len: len,
                        wscale: None,
                    };
                    let mut general = t;
                    let expected = general.track(from_client, &seg);
                    if t.is_plain(&seg) {
                        let state = t.raw_state();
                        prop_assert_eq!(t.track_established(from_client, &seg), expected);
                        prop_assert_eq!(t, general);
                        prop_assert_eq!(t.raw_state(), state);
                    } else {
                        t = general;
                    }
                    if expected.is_ok() {
                        let (a, b) = if from_client { (&mut c, &mut s) } else { (&mut s, &mut c) };
                        a.nxt = seg.end();
                        b.got(&seg);
                    }
                }
            }

            /// A RST is accepted only within a window of the sender's sequence space.
            #[test]
            fn rst_needs_a_window_guess(off in any::<u32>()) {
                let (mut c, mut s) = (Host::new(1, 1000, None), Host::new(2, 1000, None));
                let mut t = handshake(&mut c, &mut s);
                let rst = Segment { seq: s.nxt.wrapping_add(off), ack: 0, flags: RST, window: 0, payload_len: 0, wscale: None };
                let accepted = t.track(false, &rst).is_ok();
                let d = off as i32 as i64;
                prop_assert_eq!(accepted, (-1000..=1000).contains(&d), "offset {}", d);
            }
        }
    }
}
