//! Events a worker reports: connections that ended (`flow`), rate-limited dropped packets
//! (`drop`), what inspection read from a handshake (`tls`, `quic`) and the checks
//! and rules that fired (`alert`). Records in a bounded lock-free queue per worker; the control
//! thread drains and writes them. A worker never blocks on an event: a full queue loses it,
//! counted. Flow, drop and rule records are fixed-size (a rule's name is shared with the
//! policy); a handshake's metadata travels boxed (it is built once per inspected handshake, off
//! the established-flow path).

use crate::flow::FlowKey;
pub use crate::flow::Tuple;
use crate::inspect::checks::{Check, CheckAction};
use crate::inspect::session::TlsMeta;
use crate::policy::RuleAction;
use crate::stats::DropReason;
use crossbeam_queue::ArrayQueue;
use std::sync::Arc;

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
    /// An inspection check stopped it.
    pub blocked: bool,
    /// What it carried ("tls", "http", ... "unknown"), `None` when no payload was seen.
    pub app_proto: Option<&'static str>,
}

impl FlowRecord {
    /// The connection this record is about, as inspection events name it.
    pub fn flow_ref(&self) -> FlowRef {
        FlowRef {
            key: self.key,
            initiator_is_lo: self.initiator_is_lo,
            start: self.start,
        }
    }
}

/// A rule that decided a connection: its name (shared with the policy: an event costs a
/// reference count, no allocation) and its action.
#[derive(Debug, Clone)]
pub struct RuleRef {
    pub name: Arc<str>,
    pub action: RuleAction,
}

/// A dropped packet (rate-limited).
#[derive(Debug, Clone)]
pub struct DropRecord {
    pub time: u32,
    pub reason: DropReason,
    /// Port index it arrived on.
    pub port: u8,
    /// Addresses, when the frame had any.
    pub tuple: Option<Tuple>,
    /// When its connection started (for the flow id): its creation, or the drop itself when
    /// the packet opened none.
    pub start: u32,
    /// An ICMP message's type and code.
    pub icmp: Option<(u8, u8)>,
    /// The rule that dropped it (`reason` is `Rule`).
    pub rule: Option<RuleRef>,
}

/// A new connection matched an `alert` rule (it passes, and is logged).
#[derive(Debug, Clone)]
pub struct RuleAlertRecord {
    pub time: u32,
    pub flow: FlowRef,
    pub rule: RuleRef,
}

/// Which connection an inspection event is about: its key, which end opened it, and its start
/// (with the key, the flow id).
#[derive(Debug, Clone, Copy)]
pub struct FlowRef {
    pub key: FlowKey,
    pub initiator_is_lo: bool,
    pub start: u32,
}

impl FlowRef {
    /// The tuple as the initiator sent it (src = client).
    pub fn tuple(&self) -> Tuple {
        self.key.directed(self.initiator_is_lo)
    }
}

/// A TLS or QUIC handshake read by inspection.
#[derive(Debug, Clone)]
pub struct TlsRecord {
    pub time: u32,
    pub flow: FlowRef,
    pub meta: TlsMeta,
}

/// An inspection check that fired on a flow (action alert, drop or reject).
#[derive(Debug, Clone)]
pub struct AlertRecord {
    pub time: u32,
    pub flow: FlowRef,
    pub check: Check,
    pub action: CheckAction,
    pub app_proto: Option<&'static str>,
    /// The SNI the client asked for, when a hello was read.
    pub sni: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Event {
    Flow(FlowRecord),
    Drop(DropRecord),
    Tls(Box<TlsRecord>),
    Alert(Box<AlertRecord>),
    RuleAlert(RuleAlertRecord),
}

/// An event with the microseconds past its second (`time` fields hold whole seconds); 0 where
/// the engine was given no finer clock.
#[derive(Debug)]
pub struct Stamped {
    pub micros: u32,
    pub event: Event,
}

/// One worker's queue of events.
pub type EventQueue = ArrayQueue<Stamped>;

/// Events a queue holds before it loses them: about two seconds of connection ends at 30,000
/// per second per worker (the control thread drains every 20 ms).
pub const QUEUE_CAPACITY: usize = 65_536;
