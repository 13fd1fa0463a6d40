//! Events a worker reports: connections that ended (`flow`) and, rate-limited, dropped packets
//! (`drop`). Fixed-size records in a bounded lock-free queue per worker; the control thread
//! drains and writes them. A worker never blocks on an event: a full queue loses it, counted.

use crate::flow::FlowKey;
pub use crate::flow::Tuple;
use crate::stats::DropReason;
use crossbeam_queue::ArrayQueue;

/// Why a connection's record was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowEnd {
    /// Idle past its timeout (after a close, a reset, or silence).
    Timeout,
    /// The appliance stopped with the connection still in its table.
    Shutdown,
    /// A new connection took over its 5-tuple (a SYN after the old one closed).
    Reused,
}

/// A connection at its end.
#[derive(Debug, Clone, Copy)]
pub struct FlowRecord {
    pub key: FlowKey,
    pub initiator_is_lo: bool,
    /// Packets and bytes from the initiator (to server) and from the responder (to client).
    pub packets: [u64; 2],
    pub bytes: [u64; 2],
    /// Engine seconds (the caller's clock).
    pub start: u32,
    pub end: u32,
    /// TCP state name ("established", "closed", ...) or "new"/"replied" for other protocols.
    pub state: &'static str,
    pub reason: FlowEnd,
    pub alerted: bool,
    /// What it carried ("tls", "http", ... "unknown"), `None` when no payload was seen.
    pub app_proto: Option<&'static str>,
}

/// A dropped packet (rate-limited).
#[derive(Debug, Clone, Copy)]
pub struct DropRecord {
    pub time: u32,
    pub reason: DropReason,
    /// Port index it arrived on.
    pub port: u8,
    /// Addresses, when the frame had any.
    pub tuple: Option<Tuple>,
}

#[derive(Debug, Clone, Copy)]
pub enum Event {
    Flow(FlowRecord),
    Drop(DropRecord),
}

/// One worker's queue of events.
pub type EventQueue = ArrayQueue<Event>;

/// Events a queue holds before it loses them: about two seconds of connection ends at 30,000
/// per second per worker (the control thread drains every 20 ms).
pub const QUEUE_CAPACITY: usize = 65_536;
