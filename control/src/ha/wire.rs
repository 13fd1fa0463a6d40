//! The bodies of HA datagrams (inside `auth`'s sealed envelope, whose `kind` byte says which).
//! All integers big-endian. Decoding never panics: a body that does not parse is refused, even
//! though only authenticated peers can send one.
//!
//! ```text
//! heartbeat      role 1, priority 1, flags 1 (bit 0 eligible, bit 1 forced, bit 2 synced),
//!                flows 8 (the sender's table)
//! sync           stream 4, seq 8, count 2, then `count` items:
//!                  op 1 (1 update, 2 close): a FlowState record (conntrack::sync, 106 bytes)
//!                  op 3 bulk start: generation 8, flows 8 (the active's table at the start)
//!                  op 4 bulk end: generation 8
//! ack            stream 4, next 8 (every seq below it received), nack 1 (a gap at `next`)
//! bulk request   generation 8
//! ```

use super::role::{Heartbeat, Role};
use dataplane::conntrack::sync::{FlowState, SyncOp, FLOW_STATE_LEN};

pub const KIND_HEARTBEAT: u8 = 1;
pub const KIND_SYNC: u8 = 2;
pub const KIND_ACK: u8 = 3;
pub const KIND_BULK_REQUEST: u8 = 4;

/// Bytes a sync datagram's header takes before its items.
pub const SYNC_HEADER: usize = 14;
/// Bytes one flow item takes.
pub const FLOW_ITEM: usize = 1 + FLOW_STATE_LEN;

const OP_BULK_START: u8 = 3;
const OP_BULK_END: u8 = 4;

/// A heartbeat with what the peer also wants to show in `ha status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatMsg {
    pub hb: Heartbeat,
    pub synced: bool,
    pub flows: u64,
}

impl HeartbeatMsg {
    pub fn encode(&self) -> [u8; 11] {
        let mut b = [0u8; 11];
        b[0] = self.hb.role.to_u8();
        b[1] = self.hb.priority;
        b[2] = self.hb.eligible as u8 | (self.hb.forced as u8) << 1 | (self.synced as u8) << 2;
        b[3..11].copy_from_slice(&self.flows.to_be_bytes());
        b
    }

    /// `node_id` comes from the authenticated envelope.
    pub fn decode(b: &[u8], node_id: u64) -> Option<HeartbeatMsg> {
        let b: &[u8; 11] = b.try_into().ok()?;
        Some(HeartbeatMsg {
            hb: Heartbeat {
                node_id,
                role: Role::from_u8(b[0])?,
                priority: b[1],
                eligible: b[2] & 1 != 0,
                forced: b[2] & 2 != 0,
            },
            synced: b[2] & 4 != 0,
            flows: u64::from_be_bytes(b[3..11].try_into().ok()?),
        })
    }
}

/// One item of a sync datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item {
    Flow(SyncOp, FlowState),
    BulkStart { gen: u64, flows: u64 },
    BulkEnd { gen: u64 },
}

impl Item {
    pub fn wire_len(&self) -> usize {
        match self {
            Item::Flow(..) => FLOW_ITEM,
            Item::BulkStart { .. } => 17,
            Item::BulkEnd { .. } => 9,
        }
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Item::Flow(op, s) => {
                out.push(*op as u8);
                let mut b = [0u8; FLOW_STATE_LEN];
                s.encode(&mut b);
                out.extend_from_slice(&b);
            }
            Item::BulkStart { gen, flows } => {
                out.push(OP_BULK_START);
                out.extend_from_slice(&gen.to_be_bytes());
                out.extend_from_slice(&flows.to_be_bytes());
            }
            Item::BulkEnd { gen } => {
                out.push(OP_BULK_END);
                out.extend_from_slice(&gen.to_be_bytes());
            }
        }
    }
}

/// A sync datagram's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncHeader {
    pub stream: u32,
    pub seq: u64,
    pub count: u16,
}

/// Starts a sync body in `out` (cleared) with a zero count, fixed by `finish_sync`.
pub fn begin_sync(out: &mut Vec<u8>, stream: u32, seq: u64) {
    out.clear();
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
}

/// Writes the item count into a body begun with `begin_sync`.
pub fn finish_sync(out: &mut [u8], count: u16) {
    out[12..14].copy_from_slice(&count.to_be_bytes());
}

fn u64_at(b: &[u8], o: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(o..o + 8)?.try_into().ok()?))
}

/// Reads a sync body: its header and an iterator over its items, which stops at the first item
/// that does not parse (reported as `Err`).
pub fn parse_sync(b: &[u8]) -> Option<(SyncHeader, Items<'_>)> {
    if b.len() < SYNC_HEADER {
        return None;
    }
    let h = SyncHeader {
        stream: u32::from_be_bytes(b[0..4].try_into().ok()?),
        seq: u64_at(b, 4)?,
        count: u16::from_be_bytes([b[12], b[13]]),
    };
    Some((
        h,
        Items {
            rest: &b[SYNC_HEADER..],
            left: h.count,
        },
    ))
}

pub struct Items<'a> {
    rest: &'a [u8],
    left: u16,
}

impl Iterator for Items<'_> {
    type Item = Result<Item, ()>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let r = self.item();
        if r.is_err() {
            self.left = 0;
        }
        Some(r)
    }
}

impl Items<'_> {
    fn item(&mut self) -> Result<Item, ()> {
        let (&op, rest) = self.rest.split_first().ok_or(())?;
        let (item, used) = match op {
            1 | 2 => {
                let rec = rest.get(..FLOW_STATE_LEN).ok_or(())?;
                let s = FlowState::decode(rec).map_err(|_| ())?;
                let op = SyncOp::from_u8(op).ok_or(())?;
                (Item::Flow(op, s), FLOW_STATE_LEN)
            }
            OP_BULK_START => (
                Item::BulkStart {
                    gen: u64_at(rest, 0).ok_or(())?,
                    flows: u64_at(rest, 8).ok_or(())?,
                },
                16,
            ),
            OP_BULK_END => (
                Item::BulkEnd {
                    gen: u64_at(rest, 0).ok_or(())?,
                },
                8,
            ),
            _ => return Err(()),
        };
        self.rest = &rest[used..];
        Ok(item)
    }
}

/// An acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    pub stream: u32,
    /// Every sequence number below this one was received.
    pub next: u64,
    /// The receiver saw a gap at `next`: resend from there.
    pub nack: bool,
}

impl Ack {
    pub fn encode(&self) -> [u8; 13] {
        let mut b = [0u8; 13];
        b[0..4].copy_from_slice(&self.stream.to_be_bytes());
        b[4..12].copy_from_slice(&self.next.to_be_bytes());
        b[12] = self.nack as u8;
        b
    }

    pub fn decode(b: &[u8]) -> Option<Ack> {
        let b: &[u8; 13] = b.try_into().ok()?;
        Some(Ack {
            stream: u32::from_be_bytes(b[0..4].try_into().ok()?),
            next: u64_at(b, 4)?,
            nack: b[12] != 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::flow::FlowKey;

    fn flow(port: u16) -> FlowState {
        let mut lo = [0u8; 16];
        lo[..4].copy_from_slice(&[10, 0, 0, 1]);
        let mut hi = [0u8; 16];
        hi[..4].copy_from_slice(&[10, 0, 0, 2]);
        FlowState {
            key: FlowKey {
                lo_addr: lo,
                hi_addr: hi,
                lo_port: port,
                hi_port: 53,
                proto: 17,
                is_ipv6: false,
            },
            initiator_is_lo: true,
            replied: false,
            app_proto: 0,
            flags: 0,
            tcp: [0; dataplane::conntrack::tcp::SNAPSHOT_LEN],
            age: 1,
            idle: 0,
            packets: [1, 0],
            bytes: [60, 0],
        }
    }

    #[test]
    fn sync_bodies_round_trip_and_truncations_are_refused() {
        let items = [
            Item::BulkStart { gen: 3, flows: 99 },
            Item::Flow(SyncOp::Update, flow(1000)),
            Item::Flow(SyncOp::Close, flow(1001)),
            Item::BulkEnd { gen: 3 },
        ];
        let mut b = Vec::new();
        begin_sync(&mut b, 7, 42);
        for it in &items {
            it.encode(&mut b);
        }
        finish_sync(&mut b, items.len() as u16);
        assert_eq!(
            b.len(),
            SYNC_HEADER + items.iter().map(Item::wire_len).sum::<usize>()
        );
        let (h, it) = parse_sync(&b).unwrap();
        assert_eq!((h.stream, h.seq, h.count), (7, 42, 4));
        let got: Vec<Item> = it.map(|r| r.unwrap()).collect();
        assert_eq!(got, items);
        // Every truncation parses to fewer items or an error, never a panic or a wrong item.
        for cut in 0..b.len() {
            if let Some((_, it)) = parse_sync(&b[..cut]) {
                for (i, r) in it.enumerate() {
                    if let Ok(x) = r {
                        assert_eq!(x, items[i]);
                    }
                }
            }
        }
    }

    #[test]
    fn heartbeats_and_acks_round_trip() {
        let m = HeartbeatMsg {
            hb: Heartbeat {
                node_id: 9,
                role: Role::Standby,
                priority: 150,
                eligible: true,
                forced: false,
            },
            synced: true,
            flows: 123_456,
        };
        assert_eq!(HeartbeatMsg::decode(&m.encode(), 9), Some(m));
        let mut bad = m.encode();
        bad[0] = 9;
        assert_eq!(HeartbeatMsg::decode(&bad, 9), None);
        let a = Ack {
            stream: 2,
            next: 77,
            nack: true,
        };
        assert_eq!(Ack::decode(&a.encode()), Some(a));
        assert_eq!(Ack::decode(&a.encode()[..12]), None);
    }
}
