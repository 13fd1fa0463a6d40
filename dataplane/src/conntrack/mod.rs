//! Connection tracking: the state machines that decide whether a packet belongs to a connection
//! the policy allowed. Pure logic: packets in, decisions out; no I/O, no clock (time is an
//! argument), no allocation.

pub mod sync;
pub mod table;
pub mod tcp;
