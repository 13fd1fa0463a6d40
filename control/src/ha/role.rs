//! The role of one appliance of an HA pair: `Init`, `Standby`, `Active` or `Fault`, decided from the
//! peer's heartbeats, the caller's fault and sync reports, operator commands and the time.
//!
//! Owns that decision only. It must never do I/O, read a clock, start threads or allocate: the
//! control thread feeds it heartbeats and ticks with the time in milliseconds as an argument, sends
//! what [`RoleMachine::heartbeat`] returns on every path, and acts on the [`Transition`]s it gets back
//! (forward or drop, log an `ha` event). The same sans-I/O shape as quinn-proto, so every rule below
//! is tested in virtual time.
//!
//! # Rules
//!
//! - **Liveness.** The peer is alive while a heartbeat arrived on any path within the dead time
//!   (`dead_after` × `interval_ms`). One live path is enough; the paths are redundant, not voted.
//! - **Startup.** `Init` waits one dead time. An active peer heard in that time makes it `Standby` at
//!   once, not synced. A peer also in `Init` that outranks it (priority, then node id) decides
//!   first. Otherwise it becomes `Active`: with no peer, or a peer still starting, there is nothing
//!   to sync from, so the transition says `synced: true`.
//! - **Takeover.** A standby becomes active when the peer is dead, in fault, or alive but neither
//!   active nor eligible (starting, demoted, not synced). Two eligible standbys: the higher ranked
//!   takes over.
//! - **Unsynced takeover: availability wins.** A standby whose bulk sync is not done still takes over
//!   from a dead or faulted active: forwarding with a partial flow table beats not forwarding. The
//!   [`Transition`] then carries `synced: false` so the caller logs it.
//! - **Split brain.** Two actives that see each other on any path: the lower ranked becomes standby
//!   on the first heartbeat it gets, so the pair is back to one active within one interval. Rank is
//!   (forced, priority, node id), the same on both sides, so exactly one yields.
//! - **Split brain without a path.** With every path down each side sees no peer and becomes or stays
//!   active: both forward. This module cannot tell a dead peer from a cut link; run two paths on
//!   separate hardware to make it unlikely. The rule above ends it when a path returns.
//! - **Preempt (fail-back).** Applied by the active: with `preempt` on, it yields to an eligible
//!   standby of strictly higher priority, and that standby takes over when it sees the active gone
//!   to standby. Break before make: at most one interval with no active, never two. Set `preempt`
//!   the same on both nodes; it is the active's setting that counts.
//! - **Fault.** `set_fault(true)` leaves `Active`/`Standby` for `Fault` (not eligible, the peer takes
//!   over); clearing it returns to `Standby`, or to `Active` if no peer is alive. No fail-back unless
//!   `preempt` is on. A fault reported during `Init` is applied at the end of the startup wait.
//! - **Promote.** [`RoleMachine::promote`] makes the node active now and sets `forced`, carried in its
//!   heartbeats and ranking above any priority, until it sees the peer not active. The peer yields
//!   to a forced active and is *held* in standby as if demoted, so `preempt` does not undo the swap,
//!   until the promoted peer stops being active (demoted, say): then the hold ends.
//! - **Demote.** [`RoleMachine::demote`] makes the node standby and holds it there: it announces
//!   itself not eligible and takes over only when the peer dies or enters fault, or when promoted.
//!   Demoting both nodes leaves none active until one is promoted or the other dies; a demote with no
//!   live peer is undone on the next tick, since someone must forward.
//!
//! `synced` is the caller's: [`RoleMachine::set_synced`] when a bulk sync completes (or `false` when
//! one starts). Becoming active sets it, since an active is the source of its own tables.

/// Most heartbeat paths a pair uses: the HA link and one more.
pub const MAX_PATHS: usize = 2;

/// The role of this node. Only [`Role::Active`] forwards. The discriminant is the wire byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Role {
    /// Just started; waits one dead time for heartbeats before deciding. Drops.
    Init = 0,
    /// Receives synced state, drops what reaches its data ports.
    Standby = 1,
    /// Forwards.
    Active = 2,
    /// The caller reported a fault (a data port down); never active, drops.
    Fault = 3,
}

impl Role {
    /// The name used in `ha` events and `portcullisctl status`.
    pub fn name(self) -> &'static str {
        match self {
            Role::Init => "init",
            Role::Standby => "standby",
            Role::Active => "active",
            Role::Fault => "fault",
        }
    }

    /// Every role, in wire order.
    pub const ALL: [Role; 4] = [Role::Init, Role::Standby, Role::Active, Role::Fault];

    /// The role's byte in a heartbeat.
    pub fn to_u8(self) -> u8 {
        self as u8
    }

    /// The role for a heartbeat's byte; `None` for an unknown value (drop the heartbeat).
    pub fn from_u8(v: u8) -> Option<Role> {
        Role::ALL.get(usize::from(v)).copied()
    }
}

/// Settings of one node. Zero `interval_ms` or `dead_after` count as 1; `paths` is clamped to
/// `1..=MAX_PATHS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleConfig {
    /// Unique in the pair; breaks priority ties (higher wins).
    pub node_id: u64,
    /// Higher wins.
    pub priority: u8,
    /// Fail back to a higher-priority node once it is eligible.
    pub preempt: bool,
    /// Heartbeat and tick interval.
    pub interval_ms: u64,
    /// The peer is dead after this many intervals without a heartbeat on any path.
    pub dead_after: u32,
    /// Number of heartbeat paths in use.
    pub paths: usize,
}

impl Default for RoleConfig {
    fn default() -> Self {
        RoleConfig {
            node_id: 0,
            priority: 100,
            preempt: false,
            interval_ms: 10,
            dead_after: 3,
            paths: 1,
        }
    }
}

impl RoleConfig {
    /// How long without a heartbeat before the peer counts as dead.
    pub fn dead_ms(&self) -> u64 {
        self.interval_ms.max(1) * u64::from(self.dead_after.max(1))
    }
}

/// What a node announces every interval on every path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    pub node_id: u64,
    pub role: Role,
    pub priority: u8,
    /// Willing and able to be active: active, or a standby that is synced and not demoted.
    pub eligible: bool,
    /// Promoted by the operator and the peer not yet seen yielding; outranks any priority.
    pub forced: bool,
}

/// A role change, for the caller to act on and log as an `ha` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub from: Role,
    pub to: Role,
    pub reason: &'static str,
    /// Whether the node's state was synced at the change; `false` on a takeover means flows the old
    /// active had may be dropped or re-learned.
    pub synced: bool,
}

/// The role state machine of one node. See the module documentation for the rules.
#[derive(Debug, Clone)]
pub struct RoleMachine {
    cfg: RoleConfig,
    role: Role,
    started_ms: u64,
    fault: bool,
    synced: bool,
    forced: bool,
    /// Demoted, or yielded to a promoted peer: stay standby until promoted or the peer goes.
    held: bool,
    /// The hold came from this node's own `demote` (kept until promoted or the peer goes), not
    /// from yielding to a promoted peer (released once that peer is no longer active).
    demoted: bool,
    last_rx: [Option<u64>; MAX_PATHS],
    peer: Option<Heartbeat>,
}

impl RoleMachine {
    /// A node starting now, in `Init`.
    pub fn new(cfg: RoleConfig, now_ms: u64) -> Self {
        let cfg = RoleConfig {
            interval_ms: cfg.interval_ms.max(1),
            dead_after: cfg.dead_after.max(1),
            paths: cfg.paths.clamp(1, MAX_PATHS),
            ..cfg
        };
        RoleMachine {
            cfg,
            role: Role::Init,
            started_ms: now_ms,
            fault: false,
            synced: false,
            forced: false,
            held: false,
            demoted: false,
            last_rx: [None; MAX_PATHS],
            peer: None,
        }
    }

    /// A heartbeat from the peer arrived on `path`. Heartbeats on a path beyond `cfg.paths` or
    /// carrying this node's own id (a loop or a misconfigured pair) are ignored.
    pub fn on_heartbeat(&mut self, path: usize, hb: &Heartbeat, now_ms: u64) -> Option<Transition> {
        if path >= self.cfg.paths || hb.node_id == self.cfg.node_id {
            return None;
        }
        self.last_rx[path] = Some(now_ms);
        self.peer = Some(*hb);
        self.decide(now_ms)
    }

    /// Re-evaluate with the time; call every interval.
    pub fn tick(&mut self, now_ms: u64) -> Option<Transition> {
        self.decide(now_ms)
    }

    /// What to send on every path now.
    pub fn heartbeat(&self) -> Heartbeat {
        Heartbeat {
            node_id: self.cfg.node_id,
            role: self.role,
            priority: self.cfg.priority,
            eligible: self.eligible(),
            forced: self.forced && self.role == Role::Active,
        }
    }

    /// The caller's report of a fault (e.g. a data port down) or of its end.
    pub fn set_fault(&mut self, fault: bool, now_ms: u64) -> Option<Transition> {
        if self.fault == fault {
            return None;
        }
        self.fault = fault;
        match (self.role, fault) {
            (Role::Standby | Role::Active, true) => self.enter(Role::Fault, "fault"),
            (Role::Fault, false) if self.peer_alive(now_ms) => {
                self.enter(Role::Standby, "fault cleared")
            }
            (Role::Fault, false) => self.enter(Role::Active, "fault cleared, no peer"),
            // Init applies the fault at the end of its wait.
            _ => None,
        }
    }

    /// The caller's report that a bulk sync to this node completed (`true`) or started (`false`).
    pub fn set_synced(&mut self, synced: bool) {
        self.synced = synced;
    }

    /// Operator: become active now and win over the peer (see the module documentation). Refused
    /// (`None`) while a fault is reported.
    pub fn promote(&mut self) -> Option<Transition> {
        if self.fault {
            return None;
        }
        let t = match self.role {
            Role::Active => None,
            _ => self.enter(Role::Active, "promoted"),
        };
        self.forced = true;
        t
    }

    /// Operator: become standby and stay there until promoted or the peer dies or faults.
    pub fn demote(&mut self) -> Option<Transition> {
        self.held = true;
        self.demoted = true;
        match self.role {
            Role::Init | Role::Active => self.enter(Role::Standby, "demoted"),
            Role::Standby | Role::Fault => None,
        }
    }

    /// Operator: change `preempt` at run time (a config reload); applied from the next tick.
    pub fn set_preempt(&mut self, preempt: bool) {
        self.cfg.preempt = preempt;
    }

    /// The current role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Whether this node forwards what reaches its data ports.
    pub fn forwards(&self) -> bool {
        self.role == Role::Active
    }

    /// Whether a heartbeat arrived on any path within the dead time.
    pub fn peer_alive(&self, now_ms: u64) -> bool {
        let dead_ms = self.cfg.dead_ms();
        self.last_rx
            .iter()
            .flatten()
            .any(|&t| now_ms.saturating_sub(t) < dead_ms)
    }

    /// The peer's last heartbeat, if it is alive.
    pub fn peer(&self, now_ms: u64) -> Option<Heartbeat> {
        self.peer.filter(|_| self.peer_alive(now_ms))
    }

    fn eligible(&self) -> bool {
        match self.role {
            Role::Active => true,
            Role::Standby => self.synced && !self.held,
            Role::Init | Role::Fault => false,
        }
    }

    fn enter(&mut self, to: Role, reason: &'static str) -> Option<Transition> {
        let t = Transition {
            from: self.role,
            to,
            reason,
            synced: self.synced,
        };
        self.role = to;
        if to == Role::Active {
            self.synced = true;
            self.held = false;
            self.demoted = false;
        } else {
            self.forced = false;
        }
        Some(t)
    }

    fn decide(&mut self, now_ms: u64) -> Option<Transition> {
        let peer = self.peer(now_ms);
        match self.role {
            Role::Init => self.decide_init(peer, now_ms),
            Role::Standby => self.decide_standby(peer),
            Role::Active => self.decide_active(peer?),
            Role::Fault => None,
        }
    }

    fn decide_init(&mut self, peer: Option<Heartbeat>, now_ms: u64) -> Option<Transition> {
        if !self.fault && peer.is_some_and(|p| p.role == Role::Active) {
            self.synced = false;
            return self.enter(Role::Standby, "peer active at startup");
        }
        if now_ms.saturating_sub(self.started_ms) < self.cfg.dead_ms() {
            return None;
        }
        if self.fault {
            return self.enter(Role::Fault, "fault at startup");
        }
        let me = (self.cfg.priority, self.cfg.node_id);
        match peer {
            Some(p) if p.role == Role::Init && (p.priority, p.node_id) > me => None,
            Some(p) if p.role != Role::Init => {
                self.enter(Role::Active, "no active peer at startup")
            }
            _ => {
                // Nothing to sync from: the peer is absent or starting too.
                self.synced = true;
                self.enter(Role::Active, "no peer at startup")
            }
        }
    }

    fn decide_standby(&mut self, peer: Option<Heartbeat>) -> Option<Transition> {
        let Some(p) = peer else {
            return self.enter(Role::Active, "peer dead");
        };
        match p.role {
            Role::Active => None,
            Role::Fault => self.enter(Role::Active, "peer in fault"),
            // Yielded to a promoted peer that has since been demoted (or restarted): the hold
            // was for that peer's forced turn, which is over; take over as usual.
            Role::Init | Role::Standby if self.held && !self.demoted => {
                self.held = false;
                self.decide_standby(Some(p))
            }
            Role::Init | Role::Standby if self.held => None,
            Role::Init | Role::Standby => {
                let outranks = (self.cfg.priority, self.cfg.node_id) > (p.priority, p.node_id);
                if !p.eligible || (self.eligible() && outranks) {
                    self.enter(Role::Active, "no active peer")
                } else {
                    None
                }
            }
        }
    }

    fn decide_active(&mut self, p: Heartbeat) -> Option<Transition> {
        if p.role == Role::Active {
            // Both sides compare the same triple, so exactly one yields.
            let me = (self.forced, self.cfg.priority, self.cfg.node_id);
            if (p.forced, p.priority, p.node_id) <= me {
                return None;
            }
            let reason = if p.forced {
                "peer promoted"
            } else {
                "split brain: peer outranks"
            };
            let t = self.enter(Role::Standby, reason);
            self.held = p.forced;
            return t;
        }
        // The peer has yielded (or is starting, standby, in fault): the promote has done its work.
        self.forced = false;
        if self.cfg.preempt
            && p.role == Role::Standby
            && p.eligible
            && p.priority > self.cfg.priority
        {
            return self.enter(Role::Standby, "preempted by higher priority peer");
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const I: u64 = 10;
    const DEAD: u64 = 30;

    fn cfg(node_id: u64, priority: u8, preempt: bool, paths: usize) -> RoleConfig {
        RoleConfig {
            node_id,
            priority,
            preempt,
            paths,
            ..RoleConfig::default()
        }
    }

    struct Node {
        cfg: RoleConfig,
        m: Option<RoleMachine>,
        log: Vec<Transition>,
        fault: bool,
        /// Consecutive intervals as a standby seeing an active peer: the simulated bulk sync.
        syncing: u32,
    }

    /// Two nodes and up to two paths in virtual time; a killed node neither ticks nor sends.
    struct Sim {
        now: u64,
        nodes: [Node; 2],
        up: [bool; MAX_PATHS],
        up_since: [u64; MAX_PATHS],
        /// Report sync done after three intervals as standby behind an active.
        auto_sync: bool,
    }

    impl Sim {
        fn new(a: RoleConfig, b: RoleConfig) -> Self {
            let node = |cfg| Node {
                cfg,
                m: Some(RoleMachine::new(cfg, 0)),
                log: Vec::new(),
                fault: false,
                syncing: 0,
            };
            Sim {
                now: 0,
                nodes: [node(a), node(b)],
                up: [true; MAX_PATHS],
                up_since: [0; MAX_PATHS],
                auto_sync: true,
            }
        }

        /// One interval: both tick, then A's heartbeat reaches B, then B's reaches A.
        fn step(&mut self) {
            self.now += I;
            let now = self.now;
            for n in &mut self.nodes {
                if let Some(m) = n.m.as_mut() {
                    n.log.extend(m.tick(now));
                }
            }
            for (src, dst) in [(0, 1), (1, 0)] {
                let Some(hb) = self.nodes[src].m.as_ref().map(RoleMachine::heartbeat) else {
                    continue;
                };
                let n = &mut self.nodes[dst];
                let Some(m) = n.m.as_mut() else { continue };
                for p in (0..MAX_PATHS).filter(|&p| self.up[p]) {
                    n.log.extend(m.on_heartbeat(p, &hb, now));
                }
            }
            for n in &mut self.nodes {
                let Some(m) = n.m.as_mut() else { continue };
                let behind = m.role() == Role::Standby
                    && m.peer(now).is_some_and(|p| p.role == Role::Active);
                n.syncing = if behind { n.syncing + 1 } else { 0 };
                if self.auto_sync && n.syncing >= 3 {
                    m.set_synced(true);
                }
            }
        }

        fn run(&mut self, ms: u64) {
            for _ in 0..ms / I {
                self.step();
            }
        }

        fn m(&mut self, i: usize) -> &mut RoleMachine {
            self.nodes[i].m.as_mut().expect("node alive")
        }

        fn role(&self, i: usize) -> Option<Role> {
            self.nodes[i].m.as_ref().map(RoleMachine::role)
        }

        fn roles(&self) -> [Option<Role>; 2] {
            [self.role(0), self.role(1)]
        }

        fn actives(&self) -> usize {
            self.roles().iter().filter(|&&r| r == A).count()
        }

        fn last(&self, i: usize) -> Transition {
            *self.nodes[i].log.last().expect("a transition")
        }

        fn kill(&mut self, i: usize) {
            self.nodes[i].m = None;
            self.nodes[i].fault = false;
        }

        fn restart(&mut self, i: usize) {
            let n = &mut self.nodes[i];
            n.m = Some(RoleMachine::new(n.cfg, self.now));
            n.syncing = 0;
        }

        fn fault(&mut self, i: usize, fault: bool) {
            let now = self.now;
            let n = &mut self.nodes[i];
            n.fault = fault;
            if let Some(m) = n.m.as_mut() {
                n.log.extend(m.set_fault(fault, now));
            }
        }

        fn set_path(&mut self, p: usize, up: bool) {
            if up && !self.up[p] {
                self.up_since[p] = self.now;
            }
            self.up[p] = up;
        }
    }

    const A: Option<Role> = Some(Role::Active);
    const S: Option<Role> = Some(Role::Standby);

    /// Node 0 at priority 200 active, node 1 at 100 standby and synced.
    fn settled(preempt: bool, paths: usize) -> Sim {
        let mut sim = Sim::new(cfg(1, 200, preempt, paths), cfg(2, 100, preempt, paths));
        sim.run(200);
        assert_eq!(sim.roles(), [A, S]);
        assert!(sim.m(1).heartbeat().eligible);
        sim
    }

    #[test]
    fn role_wire_and_names() {
        for r in Role::ALL {
            assert_eq!(Role::from_u8(r.to_u8()), Some(r));
        }
        assert_eq!(Role::from_u8(4), None);
        assert_eq!(Role::Standby.name(), "standby");
        assert_eq!(RoleConfig::default().dead_ms(), DEAD);
    }

    #[test]
    fn ignores_own_id_and_unknown_paths() {
        let mut m = RoleMachine::new(cfg(7, 100, false, 1), 0);
        let mut hb = m.heartbeat();
        hb.role = Role::Active;
        assert_eq!(m.on_heartbeat(0, &hb, 5), None);
        hb.node_id = 8;
        assert_eq!(m.on_heartbeat(1, &hb, 5), None);
        assert!(!m.peer_alive(5));
        assert_eq!(m.tick(DEAD).map(|t| t.reason), Some("no peer at startup"));
        assert!(m.forwards());
    }

    #[test]
    fn cold_start_elects_one_active() {
        for (pa, pb, winner) in [(200, 100, 0), (100, 200, 1), (150, 150, 1)] {
            let mut sim = Sim::new(cfg(1, pa, false, 1), cfg(2, pb, false, 1));
            while sim.now < 300 {
                sim.step();
                assert!(sim.actives() <= 1, "both active at {}", sim.now);
            }
            assert_eq!(sim.role(winner), A);
            assert_eq!(sim.role(1 - winner), S);
            // The loser went straight from Init to Standby, never active.
            let loser = &sim.nodes[1 - winner].log;
            assert_eq!(loser.len(), 1);
            assert_eq!((loser[0].from, loser[0].to), (Role::Init, Role::Standby));
            assert!(sim.nodes[winner].log[0].synced, "nothing to sync from");
        }
    }

    #[test]
    fn standby_takes_over_within_dead_time() {
        let mut sim = settled(false, 1);
        sim.kill(0);
        let killed = sim.now;
        while sim.role(1) != A {
            sim.step();
            assert!(sim.now - killed <= DEAD + I, "no takeover by {}", sim.now);
        }
        assert_eq!(
            (sim.last(1).reason, sim.last(1).synced),
            ("peer dead", true)
        );
    }

    #[test]
    fn unsynced_standby_takes_over_and_says_so() {
        let mut sim = Sim::new(cfg(1, 200, false, 1), cfg(2, 100, false, 1));
        sim.auto_sync = false;
        sim.run(200);
        assert_eq!(sim.roles(), [A, S]);
        assert!(!sim.m(1).heartbeat().eligible);
        sim.kill(0);
        sim.run(DEAD + I);
        assert_eq!(sim.role(1), A);
        let t = sim.last(1);
        assert_eq!(
            (t.from, t.to, t.synced),
            (Role::Standby, Role::Active, false)
        );
    }

    /// Node 0 (higher priority) dies, node 1 takes over, node 0 restarts and syncs.
    fn fail_back(preempt: bool) -> Sim {
        let mut sim = settled(preempt, 1);
        sim.auto_sync = false;
        sim.kill(0);
        sim.run(100);
        assert_eq!(sim.role(1), A);
        sim.restart(0);
        sim.run(500);
        assert_eq!(sim.roles(), [S, A], "not eligible before sync");
        assert!(!sim.m(0).heartbeat().eligible);
        sim.m(0).set_synced(true);
        for _ in 0..100 {
            sim.step();
            assert!(sim.actives() <= 1, "fail-back is break before make");
        }
        sim
    }

    #[test]
    fn fail_back_only_with_preempt() {
        let sim = fail_back(true);
        assert_eq!(sim.roles(), [A, S]);
        assert_eq!(sim.last(1).reason, "preempted by higher priority peer");
        assert_eq!(fail_back(false).roles(), [S, A]);
    }

    #[test]
    fn two_paths_and_split_brain() {
        let mut sim = settled(false, 2);
        let logged = sim.nodes.each_ref().map(|n| n.log.len());
        sim.set_path(0, false);
        sim.run(300);
        assert_eq!(sim.roles(), [A, S]);
        assert_eq!(sim.nodes.each_ref().map(|n| n.log.len()), logged);
        // No path at all: each side sees a dead peer; both forward (documented).
        sim.set_path(1, false);
        sim.run(DEAD + I);
        assert_eq!(sim.roles(), [A, A]);
        sim.set_path(1, true);
        sim.step();
        assert_eq!(sim.roles(), [A, S], "resolved within one interval");
        assert_eq!(sim.last(1).reason, "split brain: peer outranks");
    }

    #[test]
    fn fault_hands_over_without_flapping() {
        let mut sim = settled(false, 1);
        sim.fault(0, true);
        assert_eq!(sim.role(0), Some(Role::Fault));
        assert!(!sim.m(0).heartbeat().eligible);
        sim.step();
        assert_eq!(sim.role(1), A, "takes over on the first fault heartbeat");
        sim.run(100);
        sim.fault(0, false);
        assert_eq!(sim.role(0), S);
        let before = sim.nodes[0].log.len();
        sim.run(500);
        assert_eq!(sim.roles(), [S, A]);
        assert_eq!(sim.nodes[0].log.len(), before);
        // A fault cleared with no live peer goes straight to active.
        let mut m = RoleMachine::new(cfg(1, 100, false, 1), 0);
        m.tick(DEAD);
        m.set_fault(true, DEAD);
        let t = m.set_fault(false, DEAD + 1).unwrap();
        assert_eq!((t.to, t.reason), (Role::Active, "fault cleared, no peer"));
    }

    #[test]
    fn promote_and_demote_swap_and_stay() {
        // Preempt on and node 0 higher priority: the hardest case for a swap to hold.
        let mut sim = settled(true, 1);
        sim.m(0).demote().unwrap();
        sim.step();
        assert_eq!(sim.roles(), [S, A]);
        sim.run(500);
        assert_eq!(sim.roles(), [S, A], "demoted node stays standby");

        sim.m(0).promote().unwrap();
        assert!(sim.m(0).heartbeat().forced);
        sim.step();
        assert_eq!(sim.roles(), [A, S]);
        sim.run(500);
        assert_eq!(sim.roles(), [A, S]);
        assert!(!sim.m(0).heartbeat().forced, "cleared once peer yielded");

        sim.m(1).promote().unwrap();
        sim.step();
        assert_eq!(sim.roles(), [S, A]);
        sim.run(500);
        assert_eq!(sim.roles(), [S, A], "promoted lower priority stays");
        assert_eq!(sim.last(0).reason, "peer promoted");

        // The held node still takes over when the active dies.
        sim.kill(1);
        sim.run(DEAD + I);
        assert_eq!(sim.role(0), A);
    }

    #[test]
    fn demoting_a_promoted_node_hands_back_to_the_one_that_yielded() {
        // The operator's promote-then-demote (keepalived's master-then-backup) must never leave
        // the pair without an active.
        let mut sim = settled(true, 1);
        sim.m(1).promote().unwrap();
        sim.step();
        sim.run(100);
        assert_eq!(sim.roles(), [S, A]);
        sim.m(1).demote().unwrap();
        sim.step();
        sim.run(100);
        assert_eq!(sim.roles(), [A, S]);
        sim.run(500);
        assert_eq!(sim.roles(), [A, S], "the demoted node stays standby");
    }

    struct XorShift(u64);

    impl XorShift {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    #[test]
    fn one_active_while_in_sight() {
        const PRIOS: [u8; 4] = [100, 100, 150, 200];
        for seed in 1..=300u64 {
            let mut rng = XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            let preempt = rng.below(2) == 0;
            let mut prio = || PRIOS[rng.below(4) as usize];
            let (pa, pb) = (prio(), prio());
            let mut sim = Sim::new(cfg(1, pa, preempt, 2), cfg(2, pb, preempt, 2));
            let mut idle = 0;
            for _ in 0..2_000 {
                let i = rng.below(2) as usize;
                match rng.below(200) {
                    0..=5 => sim.set_path(i, !sim.up[i]),
                    6 | 7 if sim.nodes[i].m.is_some() => sim.kill(i),
                    6 | 7 => {
                        sim.nodes[i].cfg.priority = PRIOS[rng.below(4) as usize];
                        sim.restart(i);
                    }
                    8..=10 if sim.nodes[i].m.is_some() => sim.fault(i, !sim.nodes[i].fault),
                    _ => {}
                }
                sim.step();
                let in_sight =
                    (0..MAX_PATHS).any(|p| sim.up[p] && sim.now - sim.up_since[p] >= 2 * I);
                let healthy = sim.nodes.iter().all(|n| n.m.is_some() && !n.fault);
                if !(in_sight && healthy) {
                    idle = 0;
                    continue;
                }
                let roles = sim.roles();
                assert!(sim.actives() <= 1, "seed {seed} at {}: {roles:?}", sim.now);
                // Liveness: the longest wait is a restarted higher-ranked node's startup.
                idle = if sim.actives() == 0 { idle + 1 } else { 0 };
                assert!(idle <= 4, "seed {seed} at {}: none active", sim.now);
            }
        }
    }
}
