//! Active-passive failover (issue 5), being built: the HA link's authenticated datagrams
//! (`auth`) and the role state machine (`role`). Not wired into the runtime yet.

pub mod auth;
pub mod role;
