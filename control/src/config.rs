//! The appliance's configuration: TOML, read with serde. Unknown keys are errors, and every error
//! names the file, the key and the problem, so an operator can fix it without reading code.
//!
//! Owns parsing and validation only; it never touches DPDK or starts anything.

use dataplane::conntrack::table::Timeouts;
use dataplane::engine::{Action, EngineConfig, Pickup};
use dataplane::inspect::checks::{Check, CheckAction, InspectPolicy, PortSet};
use dataplane::inspect::detect::AppProto;
use dataplane::inspect::session::InspectLimits;
use dataplane::policy::cidr::{parse_list, Cidr, PrefixSet};
use dataplane::policy::{Direction, Policy, Rule, RuleAction, MAX_RULES};
use dataplane::stats::MAX_PORTS;
use dataplane::worker::IdleMode;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// A configuration problem: which file, which key, what is wrong.
#[derive(Debug)]
pub struct ConfigError {
    pub file: PathBuf,
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(
                f,
                "{}: key `{}`: {}",
                self.file.display(),
                self.key,
                self.message
            )
        }
    }
}

impl std::error::Error for ConfigError {}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub eal: EalConfig,
    #[serde(default)]
    pub dataplane: DataplaneConfig,
    #[serde(default)]
    pub ports: Vec<PortConfig>,
    #[serde(default)]
    pub pairs: Vec<PairConfig>,
    #[serde(default)]
    pub engine: EngineSection,
    #[serde(default)]
    pub conntrack: ConntrackSection,
    /// Ordered, first-match rules for new connections.
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    #[serde(default)]
    pub blocklist: BlocklistConfig,
    /// Protocol, TLS and QUIC inspection and its checks.
    #[serde(default)]
    pub inspect: InspectSection,
    #[serde(default)]
    pub events: EventsConfig,
    #[serde(default)]
    pub control: ControlConfig,
    #[serde(default)]
    pub run: RunConfig,
    /// Active-passive failover with a second appliance.
    #[serde(default)]
    pub ha: HaSection,
}

/// `[ha]`: the pair, its HA link and the sync stream. See configs/portcullis.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HaSection {
    #[serde(default)]
    pub enabled: bool,
    /// Unique in the pair (1 or more); breaks priority ties.
    #[serde(default)]
    pub node_id: u64,
    /// Higher is preferred as the active.
    #[serde(default = "d_ha_priority")]
    pub priority: u8,
    /// Fail back to the higher-priority node when it is ready again. Set it the same on both.
    #[serde(default)]
    pub preempt: bool,
    /// Heartbeat interval, and how many missed make the peer dead.
    #[serde(default = "d_ha_interval")]
    pub interval_ms: u64,
    #[serde(default = "d_ha_dead_after")]
    pub dead_after: u32,
    /// The pre-shared key (at least 16 bytes, file mode 0600) every HA datagram is
    /// authenticated with.
    #[serde(default)]
    pub key_file: PathBuf,
    /// Heartbeat paths (one or two); sync runs on the first live one.
    #[serde(default)]
    pub paths: Vec<HaPath>,
    /// A live flow's state is synced again after this many seconds (repairs lost events).
    #[serde(default = "d_ha_refresh")]
    pub refresh_secs: u32,
    /// Largest sync datagram (UDP payload, bytes): 1452 fits a 1500-byte MTU over IPv6; raise it
    /// on a jumbo-frame HA link.
    #[serde(default = "d_ha_datagram")]
    pub max_datagram: usize,
    /// Sync datagrams in flight before the active waits for acknowledgements.
    #[serde(default = "d_ha_window")]
    pub window: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HaPath {
    /// Address and UDP port this node binds, e.g. "10.98.0.1:7600".
    pub local: String,
    /// The peer's address and port on this path.
    pub peer: String,
}

fn d_ha_priority() -> u8 {
    100
}
fn d_ha_interval() -> u64 {
    10
}
fn d_ha_dead_after() -> u32 {
    3
}
fn d_ha_refresh() -> u32 {
    10
}
fn d_ha_datagram() -> usize {
    1452
}
fn d_ha_window() -> usize {
    4096
}

impl HaSection {
    /// The paths' addresses, parsed: (local, peer) each.
    pub fn addrs(&self) -> Vec<(std::net::SocketAddr, std::net::SocketAddr)> {
        self.paths
            .iter()
            .filter_map(|p| Some((p.local.parse().ok()?, p.peer.parse().ok()?)))
            .collect()
    }

    fn validate(&self, err: &impl Fn(String, String) -> ConfigError) -> Result<(), ConfigError> {
        if !self.enabled {
            return Ok(());
        }
        if self.node_id == 0 {
            return Err(err(
                "ha.node_id".into(),
                "must be set (1 or more, different on the two appliances)".into(),
            ));
        }
        if self.key_file.as_os_str().is_empty() {
            return Err(err(
                "ha.key_file".into(),
                "must name the pre-shared key file (at least 16 bytes, mode 0600)".into(),
            ));
        }
        if !(1..=2).contains(&self.paths.len()) {
            return Err(err(
                "ha.paths".into(),
                "one or two [[ha.paths]] (local and peer addresses) are needed".into(),
            ));
        }
        for (i, p) in self.paths.iter().enumerate() {
            for (k, v) in [("local", &p.local), ("peer", &p.peer)] {
                if v.parse::<std::net::SocketAddr>().is_err() {
                    return Err(err(
                        format!("ha.paths[{i}].{k}"),
                        format!("'{v}' is not an address:port (e.g. \"10.98.0.1:7600\")"),
                    ));
                }
            }
        }
        if !(1..=60_000).contains(&self.interval_ms) {
            return Err(err(
                "ha.interval_ms".into(),
                "must be between 1 and 60000".into(),
            ));
        }
        if !(1..=100).contains(&self.dead_after) {
            return Err(err(
                "ha.dead_after".into(),
                "must be between 1 and 100".into(),
            ));
        }
        if !(512..=65_000).contains(&self.max_datagram) {
            return Err(err(
                "ha.max_datagram".into(),
                "must be between 512 and 65000 bytes".into(),
            ));
        }
        if self.refresh_secs == 0 || self.window == 0 {
            return Err(err(
                if self.window == 0 {
                    "ha.window"
                } else {
                    "ha.refresh_secs"
                }
                .into(),
                "must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

impl Default for HaSection {
    fn default() -> Self {
        toml::from_str("").expect("every key has a default")
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EalConfig {
    /// Extra EAL arguments, e.g. ["--no-huge", "-m", "1024", "--no-pci"].
    #[serde(default)]
    pub args: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataplaneConfig {
    /// CPU cores of the workers, one worker each.
    #[serde(default = "default_worker_cores")]
    pub worker_cores: Vec<usize>,
    /// CPU core of the control thread (and the EAL main lcore); never a worker's.
    #[serde(default)]
    pub control_core: usize,
    #[serde(default = "default_mbufs")]
    pub mbufs: u32,
    #[serde(default = "default_mbuf_cache")]
    pub mbuf_cache: u32,
    #[serde(default = "default_desc")]
    pub rx_desc: u16,
    #[serde(default = "default_desc")]
    pub tx_desc: u16,
    /// Software-steering ring size per worker (a power of two).
    #[serde(default = "default_ring")]
    pub steer_ring_size: u32,
    #[serde(default)]
    pub idle: IdleSetting,
    /// Let workers run on the control core too. For labs and CI on machines with fewer cores
    /// than workers + 1 (it needs `idle = "adaptive"`); never on production hardware.
    #[serde(default)]
    pub share_control_core: bool,
}

impl Default for DataplaneConfig {
    fn default() -> Self {
        DataplaneConfig {
            worker_cores: default_worker_cores(),
            control_core: 0,
            mbufs: default_mbufs(),
            mbuf_cache: default_mbuf_cache(),
            rx_desc: default_desc(),
            tx_desc: default_desc(),
            steer_ring_size: default_ring(),
            idle: IdleSetting::Busy,
            share_control_core: false,
        }
    }
}

fn default_worker_cores() -> Vec<usize> {
    vec![1]
}
fn default_mbufs() -> u32 {
    16_383
}
fn default_mbuf_cache() -> u32 {
    256
}
fn default_desc() -> u16 {
    1024
}
fn default_ring() -> u32 {
    4096
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdleSetting {
    #[default]
    Busy,
    Adaptive,
}

impl From<IdleSetting> for IdleMode {
    fn from(s: IdleSetting) -> IdleMode {
        match s {
            IdleSetting::Busy => IdleMode::Busy,
            IdleSetting::Adaptive => IdleMode::Adaptive,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortConfig {
    /// The operator's name for the port, used in pairs, counters and logs.
    pub name: String,
    /// The DPDK device: a PCI address ("0000:03:00.0") or a virtual device name ("net_pcap0").
    pub device: String,
    /// For a virtual device: its arguments; portcullisd passes `--vdev DEVICE,ARGS` to the EAL.
    #[serde(default)]
    pub vdev_args: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairConfig {
    pub inside: String,
    pub outside: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionSetting {
    Forward,
    Drop,
}

impl From<ActionSetting> for Action {
    fn from(a: ActionSetting) -> Action {
        match a {
            ActionSetting::Forward => Action::Forward,
            ActionSetting::Drop => Action::Drop,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineSection {
    #[serde(default = "drop_action")]
    pub malformed: ActionSetting,
    #[serde(default = "forward_action")]
    pub non_ip: ActionSetting,
    #[serde(default = "forward_action")]
    pub fragments: ActionSetting,
    #[serde(default = "default_flow_capacity")]
    pub flow_capacity: usize,
    /// Replies (RST, port unreachable) a worker sends for reject rules per second at most.
    #[serde(default = "d_rejects")]
    pub rejects_per_sec: u32,
    #[serde(default)]
    pub mode: EngineMode,
    /// Verify checksums off the established fast path (a packet with a wrong one is dropped as
    /// `bad_checksum`: its receiver would discard it). Off only to replay captures taken on a
    /// sending host with checksum offload.
    #[serde(default = "d_true")]
    pub verify_checksums: bool,
}

/// `inspect`: parse, classify and track every frame (the appliance's job). `bypass`: forward
/// every frame between paired ports untouched (fail-open troubleshooting; I/O baseline).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineMode {
    #[default]
    Inspect,
    Bypass,
}

impl Default for EngineSection {
    fn default() -> Self {
        EngineSection {
            malformed: ActionSetting::Drop,
            non_ip: ActionSetting::Forward,
            fragments: ActionSetting::Forward,
            flow_capacity: default_flow_capacity(),
            rejects_per_sec: d_rejects(),
            mode: EngineMode::Inspect,
            verify_checksums: true,
        }
    }
}

fn drop_action() -> ActionSetting {
    ActionSetting::Drop
}
fn forward_action() -> ActionSetting {
    ActionSetting::Forward
}
fn default_flow_capacity() -> usize {
    EngineConfig::default().flow_capacity
}

/// One rule: which new connections it matches, and what it does with them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub name: String,
    pub action: RuleActionSetting,
    /// "outbound" (opened from an inside port), "inbound" (from an outside port) or "any".
    #[serde(default)]
    pub direction: DirectionSetting,
    /// "tcp", "udp", "icmp", "icmp6", "any", or a protocol number.
    #[serde(default)]
    pub proto: Option<toml::Value>,
    #[serde(default)]
    pub src: Vec<String>,
    #[serde(default)]
    pub dst: Vec<String>,
    /// "443" or "8000-8100".
    #[serde(default)]
    pub src_ports: Vec<String>,
    #[serde(default)]
    pub dst_ports: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleActionSetting {
    Allow,
    Drop,
    Reject,
    Alert,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DirectionSetting {
    Outbound,
    Inbound,
    #[default]
    Any,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ZoneSetting {
    Inside,
    Outside,
}

/// The EVE-style event log.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsConfig {
    /// JSON-lines file (appended); none: no events. `--events PATH` overrides.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Drop events per worker and second at most; every drop is counted regardless.
    #[serde(default = "d_drop_events")]
    pub drop_events_per_sec: u32,
    /// Group of the events file (mode 0640: its members may read it). None: the daemon's.
    #[serde(default)]
    pub group: Option<String>,
}

fn d_rejects() -> u32 {
    1000
}

fn d_drop_events() -> u32 {
    100
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig {
            path: None,
            drop_events_per_sec: d_drop_events(),
            group: None,
        }
    }
}

/// Inspection of every flow's first packets: protocol detection on any port, TLS and QUIC
/// handshake metadata, and the checks on them. Lists and actions reload with the policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InspectSection {
    #[serde(default = "d_true")]
    pub enabled: bool,
    /// Where TLS is expected (TCP; QUIC on UDP). Default: 443, 465, 636, 853, 989, 990, 992,
    /// 993, 995, 5061, 8443.
    #[serde(default)]
    pub tls_ports: Option<Vec<u16>>,
    /// Ports reserved for one protocol: `sip = [5060]` stops anything else sent there.
    #[serde(default)]
    pub reserved_ports: BTreeMap<String, Vec<u16>>,
    /// Protocols allowed only on some ports: `ssh = [22]` stops SSH anywhere else.
    #[serde(default)]
    pub pinned_protocols: BTreeMap<String, Vec<u16>>,
    /// Check name -> allow | alert | drop | reject (see `portcullisd --help-checks`).
    #[serde(default)]
    pub actions: BTreeMap<String, String>,
    /// Lowest TLS version accepted: "ssl3", "1.0", "1.1", "1.2", "1.3" or "none".
    #[serde(default = "d_min_tls")]
    pub min_tls_version: String,
    /// Server names: exact, or `*.suffix` for every name below it.
    #[serde(default)]
    pub sni_block: Vec<String>,
    #[serde(default)]
    pub sni_allow: Vec<String>,
    /// Files of names, JA3 hashes, JA4 strings: one a line, `#` comments; relative to the
    /// config file.
    #[serde(default)]
    pub sni_block_files: Vec<PathBuf>,
    #[serde(default)]
    pub ja3_block_files: Vec<PathBuf>,
    #[serde(default)]
    pub ja4_block_files: Vec<PathBuf>,
    /// Flows in inspection at once, per worker (each holds two buffers of max_handshake_bytes).
    #[serde(default = "d_inspect_flows")]
    pub flows_in_inspection: usize,
    /// Handshake bytes kept per flow and direction.
    #[serde(default = "d_handshake_bytes")]
    pub max_handshake_bytes: usize,
    /// Packets after which a flow leaves inspection with what was found.
    #[serde(default = "d_inspect_packets")]
    pub max_packets: u16,
    /// Seconds after which a flow leaves inspection with what was found (a hello never
    /// answered must not hold a slot).
    #[serde(default = "d_handshake_timeout")]
    pub handshake_timeout: u32,
}

fn d_true() -> bool {
    true
}
fn d_min_tls() -> String {
    "1.2".into()
}
fn d_inspect_flows() -> usize {
    InspectLimits::default().slots
}
fn d_handshake_bytes() -> usize {
    InspectLimits::default().max_bytes
}
fn d_inspect_packets() -> u16 {
    InspectLimits::default().max_packets
}
fn d_handshake_timeout() -> u32 {
    InspectLimits::default().max_seconds
}

impl Default for InspectSection {
    fn default() -> Self {
        InspectSection {
            enabled: true,
            tls_ports: None,
            reserved_ports: BTreeMap::new(),
            pinned_protocols: BTreeMap::new(),
            actions: BTreeMap::new(),
            min_tls_version: d_min_tls(),
            sni_block: Vec::new(),
            sni_allow: Vec::new(),
            sni_block_files: Vec::new(),
            ja3_block_files: Vec::new(),
            ja4_block_files: Vec::new(),
            flows_in_inspection: d_inspect_flows(),
            max_handshake_bytes: d_handshake_bytes(),
            max_packets: d_inspect_packets(),
            handshake_timeout: d_handshake_timeout(),
        }
    }
}

/// Reads a list file: one entry a line, `#` starts a comment, blank lines skipped.
/// Whether the appliance can create or append to `p`: the file if it exists, else the nearest
/// existing directory above it (a read-only file system, a directory of another user).
fn writable(p: &Path) -> Result<(), String> {
    use nix::unistd::{access, AccessFlags};
    let mut at = p.to_path_buf();
    while !at.exists() {
        match at.parent() {
            Some(d) if !d.as_os_str().is_empty() => at = d.to_path_buf(),
            _ => at = PathBuf::from("."),
        }
    }
    access(&at, AccessFlags::W_OK).map_err(|e| match at.as_path() == p {
        true => format!("cannot be written: {e}"),
        false => format!("cannot be created in {}: {e}", at.display()),
    })
}

/// A server name or `*.suffix` for SNI lists: an empty name and a bare wildcard (which would
/// match every name) are mistakes, not policies.
fn sni_pattern(n: &str) -> Result<(), String> {
    let rest = n.strip_prefix("*.").unwrap_or(n);
    if n.trim().is_empty() {
        Err("an empty name".into())
    } else if rest.is_empty() || rest == "*" || rest.trim_matches('.').is_empty() {
        Err(format!(
            "'{n}' is a bare wildcard that matches every name; name a suffix (*.example.com), \
             or use sni_allow to allow only some names"
        ))
    } else {
        Ok(())
    }
}

fn read_lines(file: &Path, key: String, path: &Path) -> Result<Vec<String>, ConfigError> {
    let text = std::fs::read_to_string(file).map_err(|e| ConfigError {
        file: path.to_path_buf(),
        key,
        message: format!("cannot read {}: {e}", file.display()),
    })?;
    Ok(text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim().to_string())
        .filter(|l| !l.is_empty())
        .collect())
}

impl InspectSection {
    /// The inspection policy; list files are read now, relative to `path`'s directory.
    pub fn build(&self, path: &Path) -> Result<InspectPolicy, ConfigError> {
        let err = |key: String, message: String| ConfigError {
            file: path.to_path_buf(),
            key,
            message,
        };
        let mut p = InspectPolicy {
            enabled: self.enabled,
            ..InspectPolicy::default()
        };
        if let Some(ports) = &self.tls_ports {
            p.tls_ports = PortSet::from_ports(ports);
        }
        let proto = |key: String, name: &str| {
            AppProto::from_name(name).ok_or_else(|| {
                err(
                    key,
                    format!("'{name}' is not a protocol (tls, http, http2, ssh, smtp, imap, pop3, dns, sip, quic, unknown)"),
                )
            })
        };
        for (name, ports) in &self.reserved_ports {
            let pr = proto(format!("inspect.reserved_ports.{name}"), name)?;
            p.reserved_ports
                .extend(ports.iter().map(|&port| (port, pr)));
        }
        for (name, ports) in &self.pinned_protocols {
            let pr = proto(format!("inspect.pinned_protocols.{name}"), name)?;
            p.pinned.push((pr, ports.clone()));
        }
        for (name, action) in &self.actions {
            let key = format!("inspect.actions.{name}");
            let c = Check::from_name(name).ok_or_else(|| {
                let names: Vec<&str> = Check::ALL.iter().map(|c| c.name()).collect();
                err(
                    key.clone(),
                    format!("no such check; checks: {}", names.join(", ")),
                )
            })?;
            p.actions[c.index()] = CheckAction::from_name(action)
                .ok_or_else(|| err(key, format!("'{action}': use allow, alert, drop or reject")))?;
        }
        p.min_version = match self.min_tls_version.as_str() {
            "none" => 0,
            "ssl3" => 0x0300,
            "1.0" => 0x0301,
            "1.1" => 0x0302,
            "1.2" => 0x0303,
            "1.3" => 0x0304,
            v => {
                return Err(err(
                    "inspect.min_tls_version".into(),
                    format!("'{v}': use none, ssl3, 1.0, 1.1, 1.2 or 1.3"),
                ))
            }
        };
        let base = path.parent().unwrap_or(Path::new("."));
        for (i, n) in self.sni_block.iter().enumerate() {
            sni_pattern(n).map_err(|m| err(format!("inspect.sni_block[{i}]"), m))?;
            p.sni_block.insert(n);
        }
        for (i, n) in self.sni_allow.iter().enumerate() {
            sni_pattern(n).map_err(|m| err(format!("inspect.sni_allow[{i}]"), m))?;
            p.sni_allow.insert(n);
        }
        for (i, f) in self.sni_block_files.iter().enumerate() {
            let names = read_lines(&base.join(f), format!("inspect.sni_block_files[{i}]"), path)?;
            for (ln, n) in names.iter().enumerate() {
                sni_pattern(n).map_err(|message| ConfigError {
                    file: base.join(f),
                    key: format!("entry {}", ln + 1),
                    message,
                })?;
                p.sni_block.insert(n);
            }
        }
        for (i, f) in self.ja3_block_files.iter().enumerate() {
            let key = format!("inspect.ja3_block_files[{i}]");
            for (ln, h) in read_lines(&base.join(f), key, path)?
                .into_iter()
                .enumerate()
            {
                let h = h.to_ascii_lowercase();
                if h.len() != 32 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(ConfigError {
                        file: base.join(f),
                        key: format!("entry {}", ln + 1),
                        message: format!("'{h}' is not a JA3 hash (32 hex digits)"),
                    });
                }
                p.ja3_block.insert(h);
            }
        }
        for (i, f) in self.ja4_block_files.iter().enumerate() {
            let key = format!("inspect.ja4_block_files[{i}]");
            for (ln, h) in read_lines(&base.join(f), key, path)?
                .into_iter()
                .enumerate()
            {
                if h.len() != 36 || h.as_bytes()[10] != b'_' || h.as_bytes()[23] != b'_' {
                    return Err(ConfigError {
                        file: base.join(f),
                        key: format!("entry {}", ln + 1),
                        message: format!("'{h}' is not a JA4 fingerprint (a_b_c, 36 characters)"),
                    });
                }
                p.ja4_block.insert(h);
            }
        }
        Ok(p)
    }
}

/// IP blocklists: files with one prefix a line (FireHOL, Spamhaus DROP formats). Paths are
/// relative to the configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlocklistConfig {
    #[serde(default)]
    pub files: Vec<PathBuf>,
}

/// Connection tracking: timeouts (seconds) per protocol state, and loose pickup.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConntrackSection {
    /// Zones ("inside", "outside") whose TCP connections seen mid-stream are adopted (loose
    /// pickup) instead of dropped as no_state. Default: none.
    #[serde(default)]
    pub tcp_pickup: Vec<ZoneSetting>,
    #[serde(default = "d_syn_sent")]
    pub tcp_syn_sent: u32,
    #[serde(default = "d_syn_recv")]
    pub tcp_syn_recv: u32,
    #[serde(default = "d_established")]
    pub tcp_established: u32,
    #[serde(default = "d_closing")]
    pub tcp_closing: u32,
    #[serde(default = "d_time_wait")]
    pub tcp_time_wait: u32,
    #[serde(default = "d_closed")]
    pub tcp_closed: u32,
    #[serde(default = "d_udp_first")]
    pub udp_first: u32,
    #[serde(default = "d_udp_stream")]
    pub udp_stream: u32,
    #[serde(default = "d_icmp")]
    pub icmp: u32,
    #[serde(default = "d_other")]
    pub other: u32,
    /// Half-open TCP connections (SYN seen, handshake not complete) per worker; 0: a quarter of
    /// engine.flow_capacity. A SYN flood fills these, never the room of established connections.
    #[serde(default)]
    pub max_half_open: usize,
    /// Half-open TCP connections per source address and worker.
    #[serde(default = "d_half_open_per_source")]
    pub max_half_open_per_source: u16,
}

fn d_half_open_per_source() -> u16 {
    256
}

fn d_syn_sent() -> u32 {
    Timeouts::default().tcp_syn_sent
}
fn d_syn_recv() -> u32 {
    Timeouts::default().tcp_syn_recv
}
fn d_established() -> u32 {
    Timeouts::default().tcp_established
}
fn d_closing() -> u32 {
    Timeouts::default().tcp_closing
}
fn d_time_wait() -> u32 {
    Timeouts::default().tcp_time_wait
}
fn d_closed() -> u32 {
    Timeouts::default().tcp_closed
}
fn d_udp_first() -> u32 {
    Timeouts::default().udp_first
}
fn d_udp_stream() -> u32 {
    Timeouts::default().udp_stream
}
fn d_icmp() -> u32 {
    Timeouts::default().icmp
}
fn d_other() -> u32 {
    Timeouts::default().other
}

impl Default for ConntrackSection {
    fn default() -> Self {
        toml::from_str("").expect("every key has a default")
    }
}

impl ConntrackSection {
    pub fn timeouts(&self) -> Timeouts {
        Timeouts {
            tcp_syn_sent: self.tcp_syn_sent,
            tcp_syn_recv: self.tcp_syn_recv,
            tcp_established: self.tcp_established,
            tcp_closing: self.tcp_closing,
            tcp_time_wait: self.tcp_time_wait,
            tcp_closed: self.tcp_closed,
            udp_first: self.udp_first,
            udp_stream: self.udp_stream,
            icmp: self.icmp,
            other: self.other,
        }
    }
}

impl Config {
    /// The engine's settings; `inside_ports` from the port pairs when running on DPDK, `None`
    /// offline (a capture has no ports, so no zones).
    pub fn engine_config(&self, zones: bool) -> EngineConfig {
        let e = &self.engine;
        let inside_ports = zones.then(|| {
            let mut inside = [false; MAX_PORTS];
            for (i, flag) in inside.iter_mut().enumerate().take(self.ports.len()) {
                *flag = self.is_inside(i);
            }
            inside
        });
        EngineConfig {
            malformed: e.malformed.into(),
            non_ip: e.non_ip.into(),
            fragments: e.fragments.into(),
            flow_capacity: e.flow_capacity,
            bypass: e.mode == EngineMode::Bypass,
            timeouts: self.conntrack.timeouts(),
            tcp_pickup: Pickup {
                inside: self.conntrack.tcp_pickup.contains(&ZoneSetting::Inside),
                outside: self.conntrack.tcp_pickup.contains(&ZoneSetting::Outside),
            },
            inside_ports,
            max_half_open: if self.conntrack.max_half_open == 0 {
                (e.flow_capacity / 4).max(1)
            } else {
                self.conntrack.max_half_open
            },
            max_half_open_per_source: self.conntrack.max_half_open_per_source.max(1),
            drop_events_per_sec: self.events.drop_events_per_sec,
            rejects_per_sec: e.rejects_per_sec,
            inspect: InspectLimits {
                slots: self.inspect.flows_in_inspection,
                max_bytes: self.inspect.max_handshake_bytes,
                max_packets: self.inspect.max_packets,
                max_seconds: self.inspect.handshake_timeout,
            },
            unix_offset: 0,
            verify_checksums: e.verify_checksums,
            ticks_per_sec: 0,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlConfig {
    /// Unix socket for portcullisctl.
    #[serde(default = "default_socket")]
    pub socket: PathBuf,
    /// Group of the socket (mode 0660): its members may connect and read (status, stats, ha
    /// status). None: root only.
    #[serde(default)]
    pub group: Option<String>,
    /// Group whose members may also change things (reload, ha promote|demote, reopen-logs).
    /// None: root only.
    #[serde(default)]
    pub admin_group: Option<String>,
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            socket: default_socket(),
            group: None,
            admin_group: None,
        }
    }
}

pub fn default_socket() -> PathBuf {
    PathBuf::from("/run/portcullis/portcullis.sock")
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Stop after this many milliseconds without a received packet, once traffic has been seen
    /// (replays and demos); 0 runs until a signal.
    #[serde(default)]
    pub stop_when_idle_ms: u64,
    /// Stop after this many seconds in any case; 0: no limit.
    #[serde(default)]
    pub max_duration_secs: u64,
}

/// "443" or "8000-8100".
fn parse_port_range(s: &str) -> Option<(u16, u16)> {
    let s = s.trim();
    let (lo, hi) = match s.split_once('-') {
        Some((a, b)) => (a.trim().parse().ok()?, b.trim().parse().ok()?),
        None => {
            let p = s.parse().ok()?;
            (p, p)
        }
    };
    (lo <= hi).then_some((lo, hi))
}

/// Flows per worker: 2^26 (67 million) keeps the table's slot count within a u32 and its memory
/// within reach of one NUMA node (about 10 GiB at 80 bytes a slot, two slots a flow).
pub const MAX_FLOW_CAPACITY: usize = 1 << 26;
/// DPDK's limits: a ring (a mempool's too) holds at most RTE_RING_SZ_MASK = 2^31 - 1 entries,
/// rings are powers of two; descriptor rings as PMDs take them.
pub const MAX_MBUFS: u32 = (1 << 31) - 1;
pub const MAX_RING: u32 = 1 << 30;
pub const MAX_DESC: u16 = 32_768;

/// The online CPUs (`/sys/devices/system/cpu/online`, e.g. "0-3,8-11"): cores isolated with
/// `isolcpus=` are online though outside this process's affinity, which is what workers want.
pub fn online_cpus() -> Vec<usize> {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
    let mut cpus = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let mut ends = part.splitn(2, '-').map(|x| x.trim().parse::<usize>());
        match (ends.next(), ends.next()) {
            (Some(Ok(a)), None) => cpus.push(a),
            (Some(Ok(a)), Some(Ok(b))) if a <= b => cpus.extend(a..=b),
            _ => {}
        }
    }
    if cpus.is_empty() {
        let n = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        cpus.extend(0..n);
    }
    cpus
}

fn format_cpus(cpus: &[usize]) -> String {
    cpus.iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

impl Config {
    /// Reads, parses and validates `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_path_buf(),
            key: String::new(),
            message: format!("cannot read: {e}"),
        })?;
        Config::parse(&text, path)
    }

    /// Parses and validates TOML `text`; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| toml_error(text, path, &e))?;
        cfg.validate(path)?;
        Ok(cfg)
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let err = |key: String, message: String| ConfigError {
            file: path.to_path_buf(),
            key,
            message,
        };
        let dp = &self.dataplane;
        if dp.worker_cores.is_empty() {
            return Err(err(
                "dataplane.worker_cores".into(),
                "at least one worker core is needed".into(),
            ));
        }
        let online = online_cpus();
        let not_online = |key: &str, c: usize| {
            err(
                key.into(),
                format!(
                    "core {c} is not online on this machine (online: {})",
                    format_cpus(&online)
                ),
            )
        };
        for (i, &c) in dp.worker_cores.iter().enumerate() {
            if dp.worker_cores[..i].contains(&c) {
                return Err(err(
                    "dataplane.worker_cores".into(),
                    format!("core {c} is listed twice"),
                ));
            }
            if c == dp.control_core && !dp.share_control_core {
                return Err(err(
                    "dataplane.worker_cores".into(),
                    format!("core {c} is also dataplane.control_core: the control thread needs a core of its own"),
                ));
            }
            if !online.contains(&c) {
                return Err(not_online("dataplane.worker_cores", c));
            }
        }
        if !online.contains(&dp.control_core) {
            return Err(not_online("dataplane.control_core", dp.control_core));
        }
        if dp.share_control_core && dp.idle != IdleSetting::Adaptive {
            return Err(err(
                "dataplane.share_control_core".into(),
                "needs idle = \"adaptive\": a busy-polling worker would starve the control thread on its core".into(),
            ));
        }
        if !dp.steer_ring_size.is_power_of_two() || !(64..=MAX_RING).contains(&dp.steer_ring_size) {
            return Err(err(
                "dataplane.steer_ring_size".into(),
                format!("must be a power of two between 64 and {MAX_RING} (DPDK's ring limit)"),
            ));
        }
        // rte_mempool limits: the per-lcore cache is at most 512 and at most mbufs / 1.5.
        if dp.mbuf_cache > 512 || dp.mbuf_cache as u64 * 3 > dp.mbufs as u64 * 2 {
            return Err(err(
                "dataplane.mbuf_cache".into(),
                "must be at most 512 and at most dataplane.mbufs / 1.5".into(),
            ));
        }
        for (i, a) in self.eal.args.iter().enumerate() {
            let sets_cores = ["-l", "-c", "--lcores", "--main-lcore", "-s", "-S"]
                .contains(&a.as_str())
                || a.starts_with("--lcores=")
                || a.starts_with("--main-lcore=");
            if sets_cores {
                return Err(err(
                    format!("eal.args[{i}]"),
                    format!(
                        "'{a}': cores are set by dataplane.control_core and dataplane.worker_cores"
                    ),
                ));
            }
        }
        if !(1024..=MAX_MBUFS).contains(&dp.mbufs) {
            return Err(err(
                "dataplane.mbufs".into(),
                format!(
                    "must be between 1024 and {MAX_MBUFS} (DPDK's mempool ring holds at most \
                     2^31 - 1 entries)"
                ),
            ));
        }
        for (key, d) in [
            ("dataplane.rx_desc", dp.rx_desc),
            ("dataplane.tx_desc", dp.tx_desc),
        ] {
            if !(64..=MAX_DESC).contains(&d) || d % 32 != 0 {
                return Err(err(
                    key.into(),
                    format!(
                        "{d}: must be a multiple of 32 between 64 and {MAX_DESC} (what PMDs \
                         accept; a port's own limits are checked when it starts)"
                    ),
                ));
            }
        }
        self.build_policy(path)?;
        if self.engine.flow_capacity == 0 || self.engine.flow_capacity > MAX_FLOW_CAPACITY {
            return Err(err(
                "engine.flow_capacity".into(),
                format!("must be between 1 and {MAX_FLOW_CAPACITY} flows per worker"),
            ));
        }
        let i = &self.inspect;
        if i.flows_in_inspection == 0 || i.flows_in_inspection > 65_534 {
            return Err(err(
                "inspect.flows_in_inspection".into(),
                "must be between 1 and 65534 flows per worker".into(),
            ));
        }
        if !(2048..=1 << 20).contains(&i.max_handshake_bytes) {
            return Err(err(
                "inspect.max_handshake_bytes".into(),
                "must be between 2048 and 1048576".into(),
            ));
        }
        if i.handshake_timeout == 0 {
            return Err(err(
                "inspect.handshake_timeout".into(),
                "must be at least 1 second".into(),
            ));
        }
        if i.max_packets < 2 {
            return Err(err(
                "inspect.max_packets".into(),
                "must be at least 2".into(),
            ));
        }
        self.ha.validate(&err)?;
        let t = self.conntrack.timeouts();
        for (key, v) in [
            ("tcp_syn_sent", t.tcp_syn_sent),
            ("tcp_syn_recv", t.tcp_syn_recv),
            ("tcp_established", t.tcp_established),
            ("tcp_closing", t.tcp_closing),
            ("tcp_time_wait", t.tcp_time_wait),
            ("tcp_closed", t.tcp_closed),
            ("udp_first", t.udp_first),
            ("udp_stream", t.udp_stream),
            ("icmp", t.icmp),
            ("other", t.other),
        ] {
            if v == 0 || v > 30 * 86_400 {
                return Err(err(
                    format!("conntrack.{key}"),
                    "must be between 1 and 2592000 seconds (30 days)".into(),
                ));
            }
        }
        for (i, p) in self.ports.iter().enumerate() {
            if self.ports[..i].iter().any(|q| q.name == p.name) {
                return Err(err(
                    format!("ports[{i}].name"),
                    format!("port name '{}' is used twice", p.name),
                ));
            }
            if self.ports[..i].iter().any(|q| q.device == p.device) {
                return Err(err(
                    format!("ports[{i}].device"),
                    format!("device '{}' is used twice", p.device),
                ));
            }
            if p.device.is_empty() || p.device.contains(',') {
                return Err(err(
                    format!("ports[{i}].device"),
                    "must be a device name (PCI address or vdev name) without arguments; put those in vdev_args".into(),
                ));
            }
        }
        if self.ports.len() > MAX_PORTS {
            return Err(err(
                "ports".into(),
                format!("at most {MAX_PORTS} ports are supported"),
            ));
        }
        let mut used: Vec<&str> = Vec::new();
        for (i, pair) in self.pairs.iter().enumerate() {
            for (side, name) in [("inside", &pair.inside), ("outside", &pair.outside)] {
                if !self.ports.iter().any(|p| &p.name == name) {
                    return Err(err(
                        format!("pairs[{i}].{side}"),
                        format!("no port named '{name}' in [[ports]]"),
                    ));
                }
                if used.contains(&name.as_str()) {
                    return Err(err(
                        format!("pairs[{i}].{side}"),
                        format!("port '{name}' is already in a pair"),
                    ));
                }
                used.push(name);
            }
        }
        if let Some(p) = self.ports.iter().find(|p| !used.contains(&p.name.as_str())) {
            return Err(err(
                "pairs".into(),
                format!(
                    "port '{}' is in no pair: every port is the inside or outside of one pair",
                    p.name
                ),
            ));
        }
        Ok(())
    }

    /// The events file's group, resolved; an unknown group is an error naming it.
    pub fn events_gid(&self) -> Result<Option<u32>, String> {
        let Some(name) = &self.events.group else {
            return Ok(None);
        };
        match nix::unistd::Group::from_name(name) {
            Ok(Some(g)) => Ok(Some(g.gid.as_raw())),
            Ok(None) => Err(format!("group '{name}' does not exist")),
            Err(e) => Err(format!("group '{name}': {e}")),
        }
    }

    /// What running on DPDK needs beyond a valid file: at least one pair of ports. (`--read`
    /// takes a config for its engine settings alone and does not need ports.)
    pub fn check_runnable(&self, path: &Path) -> Result<(), ConfigError> {
        let err = |key: &str, message: String| ConfigError {
            file: path.to_path_buf(),
            key: key.into(),
            message,
        };
        if self.pairs.is_empty() {
            return Err(err(
                "pairs",
                "no [[pairs]]: the appliance needs at least one pair of ports to run".into(),
            ));
        }
        if self.ha.enabled {
            crate::ha::auth::Key::from_file(&self.ha.key_file)
                .map_err(|m| err("ha.key_file", m))?;
        }
        crate::ctl::Access::from_names(
            self.control.group.as_deref(),
            self.control.admin_group.as_deref(),
        )
        .map_err(|m| err("control.group", m))?;
        self.events_gid().map_err(|m| err("events.group", m))?;
        if let Some(p) = &self.events.path {
            let p = path.parent().unwrap_or(Path::new(".")).join(p);
            writable(&p).map_err(|m| err("events.path", format!("{}: {m}", p.display())))?;
        }
        Ok(())
    }

    /// Builds the policy (rules and blocklists; blocklist files are read now, relative to the
    /// directory of `path`). Errors name the key, or the list file and line.
    pub fn build_policy(&self, path: &Path) -> Result<Policy, ConfigError> {
        let err = |key: String, message: String| ConfigError {
            file: path.to_path_buf(),
            key,
            message,
        };
        if self.rules.len() > MAX_RULES {
            return Err(err("rules".into(), format!("at most {MAX_RULES} rules")));
        }
        let mut rules = Vec::with_capacity(self.rules.len());
        for (i, r) in self.rules.iter().enumerate() {
            if r.name.is_empty() || self.rules[..i].iter().any(|q| q.name == r.name) {
                return Err(err(
                    format!("rules[{i}].name"),
                    format!("'{}' is empty or used twice", r.name),
                ));
            }
            let cidrs = |list: &[String], what: &str| -> Result<Vec<Cidr>, ConfigError> {
                list.iter()
                    .enumerate()
                    .map(|(j, s)| {
                        s.parse::<Cidr>()
                            .map_err(|e| err(format!("rules[{i}].{what}[{j}]"), e.to_string()))
                    })
                    .collect()
            };
            let ports = |list: &[String], what: &str| -> Result<Vec<(u16, u16)>, ConfigError> {
                list.iter()
                    .enumerate()
                    .map(|(j, s)| {
                        parse_port_range(s).ok_or_else(|| {
                            err(
                                format!("rules[{i}].{what}[{j}]"),
                                format!("'{s}' is not a port or a range like 8000-8100"),
                            )
                        })
                    })
                    .collect()
            };
            let proto = match &r.proto {
                None => None,
                Some(toml::Value::String(s)) => match s.as_str() {
                    "any" => None,
                    "tcp" => Some(6),
                    "udp" => Some(17),
                    "icmp" => Some(1),
                    "icmp6" | "ipv6-icmp" => Some(58),
                    _ => {
                        return Err(err(
                            format!("rules[{i}].proto"),
                            format!("'{s}': use tcp, udp, icmp, icmp6, any or a number"),
                        ))
                    }
                },
                Some(toml::Value::Integer(n)) if (0..=255).contains(n) => Some(*n as u8),
                Some(v) => {
                    return Err(err(
                        format!("rules[{i}].proto"),
                        format!("{v} is not a protocol"),
                    ))
                }
            };
            rules.push(Rule {
                name: r.name.as_str().into(),
                action: match r.action {
                    RuleActionSetting::Allow => RuleAction::Allow,
                    RuleActionSetting::Drop => RuleAction::Drop,
                    RuleActionSetting::Reject => RuleAction::Reject,
                    RuleActionSetting::Alert => RuleAction::Alert,
                },
                direction: match r.direction {
                    DirectionSetting::Outbound => Direction::Outbound,
                    DirectionSetting::Inbound => Direction::Inbound,
                    DirectionSetting::Any => Direction::Any,
                },
                proto,
                src: cidrs(&r.src, "src")?,
                dst: cidrs(&r.dst, "dst")?,
                src_ports: ports(&r.src_ports, "src_ports")?,
                dst_ports: ports(&r.dst_ports, "dst_ports")?,
            });
        }
        let base = path.parent().unwrap_or(Path::new("."));
        let mut prefixes = Vec::new();
        for (i, f) in self.blocklist.files.iter().enumerate() {
            let file = base.join(f);
            let text = std::fs::read_to_string(&file).map_err(|e| {
                err(
                    format!("blocklist.files[{i}]"),
                    format!("cannot read {}: {e}", file.display()),
                )
            })?;
            let list = parse_list(&text).map_err(|(line, e)| ConfigError {
                file: file.clone(),
                key: format!("line {line}"),
                message: e.to_string(),
            })?;
            prefixes.extend(list);
        }
        Ok(Policy {
            rules,
            blocklist: PrefixSet::new(&prefixes),
            inspect: self.inspect.build(path)?,
        })
    }

    /// The port index each port forwards to (its pair's other port), by port index.
    pub fn peers(&self) -> Vec<usize> {
        let idx = |name: &str| {
            self.ports
                .iter()
                .position(|p| p.name == name)
                .expect("validated")
        };
        let mut peer = vec![0; self.ports.len()];
        for pair in &self.pairs {
            let (a, b) = (idx(&pair.inside), idx(&pair.outside));
            peer[a] = b;
            peer[b] = a;
        }
        peer
    }

    /// Whether a port is the inside of its pair.
    pub fn is_inside(&self, port: usize) -> bool {
        self.pairs.iter().any(|p| p.inside == self.ports[port].name)
    }
}

/// Turns a toml/serde error into one that names the key: serde says "unknown field `x`"; we add
/// the table it sits in and the line, found from the error's span.
fn toml_error(text: &str, path: &Path, e: &toml::de::Error) -> ConfigError {
    let mut key = String::new();
    let mut location = String::new();
    if let Some(span) = e.span() {
        let start = span.start.min(text.len());
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_no = text[..start].matches('\n').count() + 1;
        location = format!("line {line_no}: ");
        let line = text[line_start..].lines().next().unwrap_or("").trim();
        // The span may point at the key or at its value: the key is what precedes '=' on the line.
        let here = if line.starts_with('[') {
            line.trim_matches(|c| c == '[' || c == ']').trim()
        } else {
            line.split('=').next().unwrap_or("").trim()
        };
        let table = text[..line_start]
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| l.starts_with('['))
            .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_string());
        key = match table {
            Some(t) if !line.starts_with('[') && !here.is_empty() => format!("{t}.{here}"),
            _ => here.to_string(),
        };
    }
    ConfigError {
        file: path.to_path_buf(),
        key,
        message: format!("{location}{}", e.message()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Config, ConfigError> {
        Config::parse(s, Path::new("test.toml"))
    }

    #[test]
    fn empty_config_gets_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c.dataplane.worker_cores, vec![1]);
        assert_eq!(c.engine.malformed, ActionSetting::Drop);
    }

    #[test]
    fn misspelled_key_is_named_with_its_table() {
        let e = parse("[dataplane]\nworker_cores = [1]\nwokers = 3\n").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("test.toml"), "{msg}");
        assert!(msg.contains("dataplane.wokers"), "{msg}");
        assert!(msg.contains("unknown field"), "{msg}");
        assert!(msg.contains("line 3"), "{msg}");
    }

    #[test]
    fn misspelled_top_level_table_is_named() {
        let e = parse("[enigne]\nmalformed = \"drop\"\n").unwrap_err();
        assert!(e.to_string().contains("enigne"), "{e}");
    }

    #[test]
    fn bad_value_names_key() {
        let e = parse("[engine]\nmalformed = \"explode\"\n").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("engine.malformed"), "{msg}");
    }

    #[test]
    fn pair_must_name_existing_ports() {
        let e = parse(
            "[[ports]]\nname = \"a\"\ndevice = \"net_null0\"\n[[ports]]\nname = \"b\"\ndevice = \"net_null1\"\n\
             [[pairs]]\ninside = \"a\"\noutside = \"c\"\n",
        )
        .unwrap_err();
        assert_eq!(e.key, "pairs[0].outside");
    }

    #[test]
    fn unpaired_port_is_an_error() {
        let e = parse("[[ports]]\nname = \"a\"\ndevice = \"net_null0\"\n").unwrap_err();
        assert_eq!(e.key, "pairs");
    }

    #[test]
    fn worker_may_not_share_the_control_core() {
        let e = parse("[dataplane]\ncontrol_core = 0\nworker_cores = [0]\n").unwrap_err();
        assert_eq!(e.key, "dataplane.worker_cores");
    }

    #[test]
    fn cores_and_eal_arguments_do_not_collide() {
        let e = parse("[eal]\nargs = [\"--no-huge\", \"-l\", \"0-1\"]\n").unwrap_err();
        assert_eq!(e.key, "eal.args[1]");
        let e = parse("[dataplane]\nworker_cores = [4096]\n").unwrap_err();
        assert!(e.message.contains("not online"), "{e}");
    }

    #[test]
    fn pool_and_table_limits_name_their_keys() {
        assert_eq!(
            parse("[dataplane]\nmbuf_cache = 1024\n").unwrap_err().key,
            "dataplane.mbuf_cache"
        );
        assert_eq!(
            parse("[engine]\nflow_capacity = 0\n").unwrap_err().key,
            "engine.flow_capacity"
        );
        assert_eq!(
            parse("[engine]\nflow_capacity = 100000000000\n")
                .unwrap_err()
                .key,
            "engine.flow_capacity"
        );
        assert_eq!(
            parse("[dataplane]\nsteer_ring_size = 1\n").unwrap_err().key,
            "dataplane.steer_ring_size"
        );
    }

    #[test]
    fn running_needs_a_pair() {
        let c = parse("").unwrap();
        assert_eq!(
            c.check_runnable(Path::new("x.toml")).unwrap_err().key,
            "pairs"
        );
    }

    #[test]
    fn online_cpus_include_this_thread_s_cpus() {
        let online = online_cpus();
        assert!(!online.is_empty());
        assert!(online.windows(2).all(|w| w[0] < w[1]), "{online:?}");
    }

    #[test]
    fn shipped_configs_are_valid() {
        for f in ["portcullis.toml", "demo.toml", "inspect-example.toml"] {
            let p = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../configs")
                .join(f);
            let c = Config::load(&p).unwrap_or_else(|e| panic!("{e}"));
            c.check_runnable(&p).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}
