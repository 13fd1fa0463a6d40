//! Reliable delivery of the sync stream over UDP, after conntrackd's FTFW: the active numbers its
//! sync datagrams, keeps each until the standby acknowledges it, and resends from the first gap
//! the standby reports (or from the oldest unacknowledged one when no acknowledgement came for
//! `rto_ms`). The standby applies datagrams strictly in order, so a flow's events are applied in
//! the order its worker pushed them.
//!
//! A stream is numbered from 1. The active starts a new stream for every bulk sync (the standby
//! has asked for the whole table, so what it missed before no longer matters), and a restarted
//! active has a new epoch (from `auth`): the receiver follows the newest (epoch, stream) and
//! ignores datagrams of older ones.
//!
//! Sans-I/O like `role`: the HA thread passes datagrams and times in, and sends what comes out.

use super::wire::{begin_sync, Ack, SyncHeader};
use std::collections::VecDeque;

/// A sync datagram kept until acknowledged.
struct Unacked {
    seq: u64,
    body: Vec<u8>,
    sent_ms: u64,
}

/// Counters of the sending side, for `portcullisctl ha status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SenderStats {
    pub datagrams: u64,
    pub resent: u64,
    pub acked: u64,
}

/// The active's side of the sync stream.
pub struct Sender {
    stream: u32,
    next_seq: u64,
    unacked: VecDeque<Unacked>,
    window: usize,
    rto_ms: u64,
    /// The last gap resent for, and when: a burst of identical NACKs resends once.
    last_nack: Option<(u64, u64)>,
    pub stats: SenderStats,
}

impl Sender {
    /// `window`: datagrams in flight at most; `rto_ms`: resend when nothing was acknowledged
    /// for this long.
    pub fn new(window: usize, rto_ms: u64) -> Sender {
        Sender {
            stream: 1,
            next_seq: 1,
            unacked: VecDeque::new(),
            window: window.max(1),
            rto_ms: rto_ms.max(1),
            last_nack: None,
            stats: SenderStats::default(),
        }
    }

    /// Starts a new stream from sequence 1, forgetting what was in flight.
    pub fn restart(&mut self) {
        self.stream = self.stream.wrapping_add(1);
        self.next_seq = 1;
        self.unacked.clear();
        self.last_nack = None;
    }

    pub fn stream(&self) -> u32 {
        self.stream
    }

    /// Whether another datagram may be sent (the window is not full).
    pub fn has_room(&self) -> bool {
        self.unacked.len() < self.window
    }

    pub fn in_flight(&self) -> usize {
        self.unacked.len()
    }

    /// Begins the next datagram's body in `out` (see `wire::begin_sync`).
    pub fn begin(&self, out: &mut Vec<u8>) {
        begin_sync(out, self.stream, self.next_seq);
    }

    /// The body begun with `begin` and filled is sent now: keep it until acknowledged.
    pub fn sent(&mut self, body: Vec<u8>, now_ms: u64) {
        self.unacked.push_back(Unacked {
            seq: self.next_seq,
            body,
            sent_ms: now_ms,
        });
        self.next_seq += 1;
        self.stats.datagrams += 1;
    }

    /// An acknowledgement: forgets what it covers. Returns whether to resend what is left (a
    /// gap was reported).
    pub fn on_ack(&mut self, ack: &Ack, now_ms: u64) -> bool {
        if ack.stream != self.stream {
            return false;
        }
        while self.unacked.front().is_some_and(|u| u.seq < ack.next) {
            self.unacked.pop_front();
            self.stats.acked += 1;
        }
        if !ack.nack || self.unacked.is_empty() {
            return false;
        }
        let again = self
            .last_nack
            .is_some_and(|(next, at)| next == ack.next && now_ms < at + self.rto_ms);
        if again {
            return false;
        }
        self.last_nack = Some((ack.next, now_ms));
        true
    }

    /// Whether an acknowledgement asks for datagrams this sender no longer keeps (a standby that
    /// restarted mid-stream): only a bulk sync can repair that.
    pub fn lost(&self, ack: &Ack) -> bool {
        if ack.stream != self.stream || !ack.nack {
            return false;
        }
        let first_kept = self.unacked.front().map_or(self.next_seq, |u| u.seq);
        ack.next < first_kept
    }

    /// Whether the oldest datagram in flight waited `rto_ms` without an acknowledgement.
    pub fn timed_out(&self, now_ms: u64) -> bool {
        self.unacked
            .front()
            .is_some_and(|u| now_ms >= u.sent_ms + self.rto_ms)
    }

    /// Calls `send` with every datagram in flight, oldest first (go-back-N), and restamps them.
    pub fn resend(&mut self, now_ms: u64, mut send: impl FnMut(&[u8])) {
        for u in self.unacked.iter_mut() {
            send(&u.body);
            u.sent_ms = now_ms;
            self.stats.resent += 1;
        }
    }
}

/// What to do with a sync datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    /// The next one in order: apply it, then `advance`.
    Apply,
    /// Already applied (a resend): acknowledge again, do nothing else.
    Duplicate,
    /// One or more before it are missing: ask for them (NACK), do not apply.
    Gap,
    /// From an older stream or incarnation of the sender: ignore.
    Stale,
}

/// Counters of the receiving side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReceiverStats {
    pub applied: u64,
    pub duplicates: u64,
    pub gaps: u64,
    pub stale: u64,
}

/// The standby's side of the sync stream.
#[derive(Default)]
pub struct Receiver {
    current: Option<(u64, u32)>,
    expected: u64,
    pub stats: ReceiverStats,
}

impl Receiver {
    /// Classifies a datagram of the sender's incarnation `epoch`.
    pub fn check(&mut self, epoch: u64, h: &SyncHeader) -> Accept {
        let key = (epoch, h.stream);
        match self.current {
            Some(cur) if key < cur => {
                self.stats.stale += 1;
                return Accept::Stale;
            }
            Some(cur) if key == cur => {}
            _ => {
                self.current = Some(key);
                self.expected = 1;
            }
        }
        if h.seq == self.expected {
            Accept::Apply
        } else if h.seq < self.expected {
            self.stats.duplicates += 1;
            Accept::Duplicate
        } else {
            self.stats.gaps += 1;
            Accept::Gap
        }
    }

    /// The datagram `check` said to apply was applied.
    pub fn advance(&mut self) {
        self.expected += 1;
        self.stats.applied += 1;
    }

    /// The acknowledgement to send now (`nack`: a gap was seen).
    pub fn ack(&self, nack: bool) -> Option<Ack> {
        self.current.map(|(_, stream)| Ack {
            stream,
            next: self.expected,
            nack,
        })
    }

    /// Every datagram below this one was applied (0 before any stream).
    pub fn next_expected(&self) -> u64 {
        self.expected
    }
}

#[cfg(test)]
mod tests {
    use super::super::wire::parse_sync;
    use super::*;

    /// A lossy, reordering link between a sender and a receiver, in virtual time: every
    /// datagram arrives, exactly once and in order, at the receiver's application.
    #[test]
    fn lossy_link_delivers_everything_in_order() {
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut s = Sender::new(64, 20);
        let mut r = Receiver::default();
        let mut applied: Vec<u64> = Vec::new();
        // In flight: (arrival time, body) each way.
        let mut to_r: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut to_s: Vec<(u64, Ack)> = Vec::new();
        let total = 5000u64;
        let mut made = 0u64;
        for now in 0..200_000u64 {
            // Send while the window has room: the payload is a counter.
            while made < total && s.has_room() && next() % 4 == 0 {
                let mut b = Vec::new();
                s.begin(&mut b);
                b.extend_from_slice(&made.to_be_bytes());
                to_r.push((now + 1 + next() % 5, b.clone()));
                s.sent(b, now);
                made += 1;
            }
            if s.timed_out(now) {
                s.resend(now, |b| to_r.push((now + 1 + next() % 5, b.to_vec())));
            }
            // Deliver what is due, losing 10% each way.
            let (due, later): (Vec<_>, Vec<_>) = to_r.drain(..).partition(|(t, _)| *t <= now);
            to_r = later;
            let mut nack = false;
            for (_, b) in due {
                if next() % 10 == 0 {
                    continue;
                }
                let (h, _) = parse_sync(&b).unwrap();
                match r.check(7, &h) {
                    Accept::Apply => {
                        applied.push(u64::from_be_bytes(b[14..22].try_into().unwrap()));
                        r.advance();
                    }
                    Accept::Gap => nack = true,
                    _ => {}
                }
            }
            if now % 3 == 0 || nack {
                if let Some(a) = r.ack(nack) {
                    if next() % 10 != 0 {
                        to_s.push((now + 1 + next() % 5, a));
                    }
                }
            }
            let (due, later): (Vec<_>, Vec<_>) = to_s.drain(..).partition(|(t, _)| *t <= now);
            to_s = later;
            for (_, a) in due {
                if s.on_ack(&a, now) {
                    s.resend(now, |b| to_r.push((now + 1 + next() % 5, b.to_vec())));
                }
            }
            if applied.len() as u64 == total && s.in_flight() == 0 {
                break;
            }
        }
        assert_eq!(applied, (0..total).collect::<Vec<_>>());
        assert_eq!(s.in_flight(), 0);
        assert!(
            s.stats.resent > 0 && r.stats.gaps > 0,
            "the link lost nothing?"
        );
    }

    #[test]
    fn a_new_stream_or_incarnation_restarts_and_old_ones_are_ignored() {
        let mut r = Receiver::default();
        let h = |stream, seq| SyncHeader {
            stream,
            seq,
            count: 0,
        };
        assert_eq!(r.check(5, &h(1, 1)), Accept::Apply);
        r.advance();
        assert_eq!(r.check(5, &h(1, 1)), Accept::Duplicate);
        assert_eq!(r.check(5, &h(1, 3)), Accept::Gap);
        // A bulk sync restarted the stream: seq 1 again.
        assert_eq!(r.check(5, &h(2, 1)), Accept::Apply);
        r.advance();
        assert_eq!(r.check(5, &h(1, 2)), Accept::Stale);
        // The active restarted (a new epoch), its streams from 1.
        assert_eq!(r.check(6, &h(1, 2)), Accept::Gap);
        assert_eq!(r.ack(true).unwrap().next, 1);
        assert_eq!(r.check(5, &h(9, 1)), Accept::Stale);
    }
}
