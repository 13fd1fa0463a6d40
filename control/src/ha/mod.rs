//! Active-passive failover (issue 5): the HA link's authenticated datagrams (`auth`), their
//! bodies (`wire`), reliable delivery of the sync stream (`link`), the role state machine
//! (`role`), and the HA thread that runs them against the workers' sync queues (`node`).

pub mod auth;
pub mod link;
pub mod node;
pub mod role;
pub mod wire;
