//! Inspection of what flows carry, whatever their port: protocol detection (`detect`), TLS
//! handshake metadata and fingerprints (`tls`), QUIC Initials (`quic`), the per-flow
//! reassembly and progress of a worker's flows in inspection (`session`), and the policy checks
//! on what was found (`checks`).

pub mod checks;
pub mod detect;
pub mod quic;
pub mod session;
pub mod tls;
