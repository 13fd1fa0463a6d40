//! A connection as a fixed-size record for state sync to a standby appliance (issue 5): what the
//! standby needs so that the connection keeps working after a takeover without being
//! re-inspected — its key and direction, the TCP tracker, the protocol and verdict flags — and
//! its counters for the flow record. Times travel as ages (seconds before "now" on the sender),
//! since the two appliances' engine clocks differ.
//!
//! Layout (big-endian), `FLOW_STATE_LEN` bytes:
//! ```text
//! 0   version (1)          1
//! 1   lo_addr             16
//! 17  hi_addr             16
//! 33  lo_port, hi_port     4
//! 37  proto                1
//! 38  flags: bit 0 is_ipv6, bit 1 initiator_is_lo, bit 2 replied (UDP/ICMP)   1
//! 39  app_proto            1
//! 40  conn flags           1   (the engine's: alerted, blocked, ...)
//! 41  tcp tracker         25   (TcpTracker::snapshot)
//! 66  age, idle            8   (seconds since creation, since the last packet)
//! 74  packets, bytes      32   (each way)
//! ```

use super::table::{Conn, SimpleState};
use super::tcp::{TcpTracker, SNAPSHOT_LEN};
use crate::flow::FlowKey;

pub const FLOW_STATE_LEN: usize = 106;
const VERSION: u8 = 1;

/// A connection as synced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowState {
    pub key: FlowKey,
    pub initiator_is_lo: bool,
    pub replied: bool,
    pub app_proto: u8,
    pub flags: u8,
    pub tcp: [u8; SNAPSHOT_LEN],
    pub age: u32,
    pub idle: u32,
    pub packets: [u64; 2],
    pub bytes: [u64; 2],
}

/// Why a record was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncError {
    Length,
    Version,
    /// Fields no appliance writes (an unknown protocol bit, a tracker state out of range).
    Invalid,
}

impl FlowState {
    /// The record of connection `c` at `now` (the sender's engine seconds).
    pub fn of(c: &Conn, now: u32) -> FlowState {
        FlowState {
            key: c.key(),
            initiator_is_lo: c.initiator_is_lo(),
            replied: c.simple() == SimpleState::Replied,
            app_proto: c.app_proto,
            flags: c.flags,
            tcp: c.tcp.snapshot(),
            age: now.saturating_sub(c.created),
            idle: now.saturating_sub(c.last_seen),
            packets: c.packets(),
            bytes: c.bytes(),
        }
    }

    pub fn encode(&self, out: &mut [u8; FLOW_STATE_LEN]) {
        out[0] = VERSION;
        out[1..17].copy_from_slice(&self.key.lo_addr);
        out[17..33].copy_from_slice(&self.key.hi_addr);
        out[33..35].copy_from_slice(&self.key.lo_port.to_be_bytes());
        out[35..37].copy_from_slice(&self.key.hi_port.to_be_bytes());
        out[37] = self.key.proto;
        out[38] =
            self.key.is_ipv6 as u8 | (self.initiator_is_lo as u8) << 1 | (self.replied as u8) << 2;
        out[39] = self.app_proto;
        out[40] = self.flags;
        out[41..66].copy_from_slice(&self.tcp);
        out[66..70].copy_from_slice(&self.age.to_be_bytes());
        out[70..74].copy_from_slice(&self.idle.to_be_bytes());
        for (i, v) in self.packets.iter().chain(self.bytes.iter()).enumerate() {
            out[74 + i * 8..82 + i * 8].copy_from_slice(&v.to_be_bytes());
        }
    }

    pub fn decode(b: &[u8]) -> Result<FlowState, SyncError> {
        let b: &[u8; FLOW_STATE_LEN] = b.try_into().map_err(|_| SyncError::Length)?;
        if b[0] != VERSION {
            return Err(SyncError::Version);
        }
        if b[38] & !0b111 != 0 {
            return Err(SyncError::Invalid);
        }
        let mut tcp = [0u8; SNAPSHOT_LEN];
        tcp.copy_from_slice(&b[41..66]);
        if b[37] == 6 && TcpTracker::from_snapshot(&tcp).is_none() {
            return Err(SyncError::Invalid);
        }
        let u32_at = |o: usize| u32::from_be_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        let u64_at = |o: usize| {
            let mut x = [0u8; 8];
            x.copy_from_slice(&b[o..o + 8]);
            u64::from_be_bytes(x)
        };
        let mut lo_addr = [0u8; 16];
        lo_addr.copy_from_slice(&b[1..17]);
        let mut hi_addr = [0u8; 16];
        hi_addr.copy_from_slice(&b[17..33]);
        Ok(FlowState {
            key: FlowKey {
                lo_addr,
                hi_addr,
                lo_port: u16::from_be_bytes([b[33], b[34]]),
                hi_port: u16::from_be_bytes([b[35], b[36]]),
                proto: b[37],
                is_ipv6: b[38] & 1 != 0,
            },
            initiator_is_lo: b[38] & 2 != 0,
            replied: b[38] & 4 != 0,
            app_proto: b[39],
            flags: b[40],
            tcp,
            age: u32_at(66),
            idle: u32_at(70),
            packets: [u64_at(74), u64_at(82)],
            bytes: [u64_at(90), u64_at(98)],
        })
    }

    /// The tracker the standby installs: adopted, so it re-learns the windows.
    pub fn tracker(&self) -> TcpTracker {
        if self.key.proto == 6 {
            TcpTracker::from_snapshot(&self.tcp).unwrap_or_else(TcpTracker::default_for_other)
        } else {
            TcpTracker::default_for_other()
        }
    }
}

/// What happened to a flow, as a worker reports it to the HA thread and the standby applies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum SyncOp {
    /// Install or update the flow (new, changed state or verdict, refresh, bulk).
    Update = 1,
    /// The flow ended on the active: remove it.
    Close = 2,
}

impl SyncOp {
    pub fn from_u8(v: u8) -> Option<SyncOp> {
        match v {
            1 => Some(SyncOp::Update),
            2 => Some(SyncOp::Close),
            _ => None,
        }
    }
}

/// One flow event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncEvent {
    pub op: SyncOp,
    pub state: FlowState,
}

/// A worker's outbound queue of flow events (drained by the HA thread), and a worker's inbound
/// queue of synced flows to apply (filled by the HA thread of a standby). Bounded, lock-free:
/// neither side ever waits for the other.
pub type SyncQueue = crossbeam_queue::ArrayQueue<SyncEvent>;

/// Flow events a worker's outbound queue holds: about 65 ms of new connections at a million
/// per second per worker.
pub const SYNC_QUEUE_CAPACITY: usize = 65_536;

/// What a worker shares with the HA thread. Single producer and single consumer each way; the
/// worker touches it between bursts only.
pub struct WorkerSync {
    /// Flow events of this worker's connections, for the peer (the engine pushes them).
    pub out: std::sync::Arc<SyncQueue>,
    /// Synced flows of this worker's shard, from the peer (the worker applies them).
    pub import: SyncQueue,
    /// Bulk sync: the generation the HA thread asked for, and the last one this worker has
    /// pushed its whole table for.
    pub bulk_requested: std::sync::atomic::AtomicU64,
    pub bulk_done: std::sync::atomic::AtomicU64,
}

impl WorkerSync {
    pub fn new(capacity: usize) -> WorkerSync {
        WorkerSync {
            out: std::sync::Arc::new(SyncQueue::new(capacity)),
            import: SyncQueue::new(capacity),
            bulk_requested: Default::default(),
            bulk_done: Default::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_garbage_is_refused() {
        let mut lo = [0u8; 16];
        lo[..4].copy_from_slice(&[10, 0, 0, 1]);
        let mut hi = [0u8; 16];
        hi[..4].copy_from_slice(&[192, 0, 2, 1]);
        let s = FlowState {
            key: FlowKey {
                lo_addr: lo,
                hi_addr: hi,
                lo_port: 40000,
                hi_port: 443,
                proto: 17,
                is_ipv6: false,
            },
            initiator_is_lo: true,
            replied: true,
            app_proto: 10,
            flags: 8,
            tcp: [0; SNAPSHOT_LEN],
            age: 30,
            idle: 2,
            packets: [5, 6],
            bytes: [700, 800],
        };
        let mut b = [0u8; FLOW_STATE_LEN];
        s.encode(&mut b);
        assert_eq!(FlowState::decode(&b), Ok(s));
        assert_eq!(FlowState::decode(&b[..50]), Err(SyncError::Length));
        let mut bad = b;
        bad[0] = 9;
        assert_eq!(FlowState::decode(&bad), Err(SyncError::Version));
        let mut bad = b;
        bad[38] |= 0x80;
        assert_eq!(FlowState::decode(&bad), Err(SyncError::Invalid));
        // A TCP record with a tracker state no tracker has.
        let mut bad = b;
        bad[37] = 6;
        bad[41 + 11] = 99;
        assert_eq!(FlowState::decode(&bad), Err(SyncError::Invalid));
    }
}
