//! Authenticated HA datagrams. conntrackd and pfsync authenticate nothing, so a forged sync
//! packet can open a hole in the firewall; here every datagram on the HA link carries an
//! HMAC-SHA256 tag under a pre-shared key, and a sequence number within an epoch, so that forged,
//! altered and replayed datagrams are dropped (and counted) before anything reads them.
//!
//! Layout (all integers big-endian):
//! ```text
//! 0   magic "PCHA"       4
//! 4   version (1)        1
//! 5   kind               1   (heartbeat, flow batch, ack, bulk request, ...: the caller's)
//! 6   reserved (0)       2
//! 8   node id            8   (the sender)
//! 16  epoch              8   (the sender's incarnation: Unix microseconds at its start)
//! 24  sequence           8   (per sender and epoch, from 1)
//! 32  body               n
//! 32+n tag              32   HMAC-SHA256(key, bytes 0 .. 32+n)
//! ```
//! Replay protection follows IPsec's anti-replay window (RFC 4303 §3.4.3): per peer, the highest
//! sequence number seen in its current epoch and a 1024-bit window below it. A higher epoch (the
//! peer restarted) starts a new window; a lower one is refused. The window moves only after the
//! tag verified, so forged datagrams cannot move it.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::collections::HashMap;
use std::path::Path;

pub const MAGIC: [u8; 4] = *b"PCHA";
pub const VERSION: u8 = 1;
pub const HEADER_LEN: usize = 32;
pub const TAG_LEN: usize = 32;
/// Sequence numbers below the highest seen that are still accepted (once each).
pub const WINDOW: u64 = 1024;
/// The shortest key accepted: 128 bits.
pub const MIN_KEY_LEN: usize = 16;

type HmacSha256 = Hmac<Sha256>;

/// Why a datagram was refused. Each has a counter in `AuthStats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    /// Shorter than a header and a tag, or not ours (magic, version).
    Malformed,
    /// The tag does not verify: forged, altered, or sealed under another key.
    BadTag,
    /// Our own node id: a reflected datagram (or a peer misconfigured with our id).
    OwnNode,
    /// A sequence number already seen, or below the window.
    Replayed,
    /// An epoch older than the peer's current one (a replay from an earlier incarnation).
    OldEpoch,
}

impl AuthError {
    pub fn name(self) -> &'static str {
        match self {
            AuthError::Malformed => "malformed",
            AuthError::BadTag => "bad_tag",
            AuthError::OwnNode => "own_node",
            AuthError::Replayed => "replayed",
            AuthError::OldEpoch => "old_epoch",
        }
    }
}

/// The pre-shared key.
#[derive(Clone)]
pub struct Key(Vec<u8>);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({} bytes)", self.0.len())
    }
}

impl Key {
    /// A key from raw bytes (at least `MIN_KEY_LEN`).
    pub fn new(bytes: &[u8]) -> Result<Key, String> {
        if bytes.len() < MIN_KEY_LEN {
            return Err(format!(
                "the key has {} bytes; at least {MIN_KEY_LEN} are needed",
                bytes.len()
            ));
        }
        if bytes.iter().all(|&b| b == bytes[0]) {
            return Err(format!(
                "the key is one byte ({:#04x}) repeated: not a secret; make one with \
                 `head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n'`",
                bytes[0]
            ));
        }
        Ok(Key(bytes.to_vec()))
    }

    /// Reads a key file: its content (surrounding whitespace trimmed; 64 hex digits are read as
    /// 32 bytes, anything else is used as it is). Refused if group or others may read it.
    pub fn from_file(path: &Path) -> Result<Key, String> {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(format!(
                "{}: readable by group or others (mode {:o}); chmod 600 it",
                path.display(),
                meta.permissions().mode() & 0o777
            ));
        }
        let raw = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let text = raw.trim_ascii();
        let bytes = if text.len() == 64 && text.iter().all(u8::is_ascii_hexdigit) {
            text.chunks(2)
                .map(|p| {
                    let s = std::str::from_utf8(p).unwrap_or("00");
                    u8::from_str_radix(s, 16).unwrap_or(0)
                })
                .collect()
        } else {
            text.to_vec()
        };
        Key::new(&bytes).map_err(|e| format!("{}: {e}", path.display()))
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC takes keys of any length.
        <HmacSha256 as KeyInit>::new_from_slice(&self.0).expect("HMAC accepts any key length")
    }
}

/// Seals this node's datagrams: header, body, tag; one sequence number each.
pub struct Sealer {
    key: Key,
    node_id: u64,
    epoch: u64,
    next_seq: u64,
}

impl Sealer {
    /// `epoch` must grow across restarts of this node (Unix microseconds at start do).
    pub fn new(key: Key, node_id: u64, epoch: u64) -> Sealer {
        Sealer {
            key,
            node_id,
            epoch,
            next_seq: 1,
        }
    }

    /// Writes a datagram of `kind` carrying `body` into `out` (cleared first); returns its
    /// sequence number.
    pub fn seal(&mut self, kind: u8, body: &[u8], out: &mut Vec<u8>) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        out.clear();
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.push(kind);
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&self.node_id.to_be_bytes());
        out.extend_from_slice(&self.epoch.to_be_bytes());
        out.extend_from_slice(&seq.to_be_bytes());
        out.extend_from_slice(body);
        let mut mac = self.key.mac();
        mac.update(out);
        out.extend_from_slice(&mac.finalize().into_bytes());
        seq
    }
}

/// A verified datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opened<'a> {
    pub kind: u8,
    pub node_id: u64,
    pub epoch: u64,
    pub seq: u64,
    pub body: &'a [u8],
}

/// Refusals and acceptances, for `portcullisctl ha status` and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuthStats {
    pub accepted: u64,
    pub malformed: u64,
    pub bad_tag: u64,
    pub own_node: u64,
    pub replayed: u64,
    pub old_epoch: u64,
}

/// One peer's replay state: its epoch, the highest sequence number seen, and which of the
/// `WINDOW` numbers below it were seen.
#[derive(Debug, Clone, Copy, Default)]
struct Replay {
    epoch: u64,
    top: u64,
    seen: [u64; (WINDOW / 64) as usize],
}

impl Replay {
    fn bit(&mut self, seq: u64) -> (&mut u64, u64) {
        let i = (seq % WINDOW) as usize;
        (&mut self.seen[i / 64], 1 << (i % 64))
    }

    /// Whether `seq` is new (without recording it).
    fn fresh(&mut self, seq: u64) -> bool {
        if seq > self.top {
            return true;
        }
        if self.top - seq >= WINDOW || seq == 0 {
            return false;
        }
        let (w, b) = self.bit(seq);
        *w & b == 0
    }

    fn record(&mut self, seq: u64) {
        if seq > self.top {
            // Slide: clear the bits of the numbers the window passes over.
            let gap = seq - self.top;
            if gap >= WINDOW {
                self.seen = [0; (WINDOW / 64) as usize];
            } else {
                for s in self.top + 1..=seq {
                    let (w, b) = self.bit(s);
                    *w &= !b;
                }
            }
            self.top = seq;
        }
        let (w, b) = self.bit(seq);
        *w |= b;
    }
}

/// Verifies datagrams from peers.
pub struct Opener {
    key: Key,
    own_id: u64,
    peers: HashMap<u64, Replay>,
    pub stats: AuthStats,
}

impl Opener {
    pub fn new(key: Key, own_id: u64) -> Opener {
        Opener {
            key,
            own_id,
            peers: HashMap::new(),
            stats: AuthStats::default(),
        }
    }

    /// Verifies a datagram: format, tag (in constant time), sender, epoch and sequence. Only a
    /// datagram that passes everything moves the peer's replay window. Counts the outcome.
    pub fn open<'a>(&mut self, d: &'a [u8]) -> Result<Opened<'a>, AuthError> {
        let r = self.check(d);
        let s = &mut self.stats;
        match r {
            Ok(_) => s.accepted += 1,
            Err(AuthError::Malformed) => s.malformed += 1,
            Err(AuthError::BadTag) => s.bad_tag += 1,
            Err(AuthError::OwnNode) => s.own_node += 1,
            Err(AuthError::Replayed) => s.replayed += 1,
            Err(AuthError::OldEpoch) => s.old_epoch += 1,
        }
        r
    }

    fn check<'a>(&mut self, d: &'a [u8]) -> Result<Opened<'a>, AuthError> {
        if d.len() < HEADER_LEN + TAG_LEN || d[..4] != MAGIC || d[4] != VERSION {
            return Err(AuthError::Malformed);
        }
        let (signed, tag) = d.split_at(d.len() - TAG_LEN);
        let mut mac = self.key.mac();
        mac.update(signed);
        mac.verify_slice(tag).map_err(|_| AuthError::BadTag)?;
        let u64_at = |o: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&signed[o..o + 8]);
            u64::from_be_bytes(b)
        };
        let (node_id, epoch, seq) = (u64_at(8), u64_at(16), u64_at(24));
        if node_id == self.own_id {
            return Err(AuthError::OwnNode);
        }
        let replay = self.peers.entry(node_id).or_default();
        if epoch < replay.epoch {
            return Err(AuthError::OldEpoch);
        }
        if epoch > replay.epoch {
            // The peer restarted: a new incarnation, a new window.
            *replay = Replay {
                epoch,
                ..Replay::default()
            };
        }
        if !replay.fresh(seq) {
            return Err(AuthError::Replayed);
        }
        replay.record(seq);
        Ok(Opened {
            kind: signed[5],
            node_id,
            epoch,
            seq,
            body: &signed[HEADER_LEN..],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> Key {
        let bytes: Vec<u8> = (0..32u8).map(|i| b.wrapping_add(i)).collect();
        Key::new(&bytes).unwrap()
    }

    #[test]
    fn a_key_of_one_repeated_byte_is_refused() {
        let Err(e) = Key::new(&[0u8; 32]) else {
            panic!("a key of zeros was accepted")
        };
        assert!(e.contains("repeated"), "{e}");
    }

    #[test]
    fn a_sealed_datagram_opens_once() {
        let mut s = Sealer::new(key(1), 7, 1000);
        let mut o = Opener::new(key(1), 9);
        let mut d = Vec::new();
        let seq = s.seal(3, b"hello", &mut d);
        let got = o.open(&d).unwrap();
        assert_eq!(
            (got.kind, got.node_id, got.epoch, got.seq, got.body),
            (3, 7, 1000, seq, &b"hello"[..])
        );
        assert_eq!(o.open(&d), Err(AuthError::Replayed));
        assert_eq!((o.stats.accepted, o.stats.replayed), (1, 1));
    }

    #[test]
    fn any_altered_byte_or_another_key_fails_the_tag() {
        let mut s = Sealer::new(key(1), 7, 1000);
        let mut d = Vec::new();
        s.seal(2, b"flow batch", &mut d);
        for i in 0..d.len() {
            let mut o = Opener::new(key(1), 9);
            let mut x = d.clone();
            x[i] ^= 0x40;
            let e = o.open(&x).unwrap_err();
            assert!(
                matches!(e, AuthError::BadTag | AuthError::Malformed),
                "byte {i}: {e:?}"
            );
        }
        let mut other = Opener::new(key(2), 9);
        assert_eq!(other.open(&d), Err(AuthError::BadTag));
        // A forged datagram does not move the window: the real one still opens afterwards.
        let mut o = Opener::new(key(1), 9);
        let mut forged = d.clone();
        forged[24..32].copy_from_slice(&u64::MAX.to_be_bytes());
        assert_eq!(o.open(&forged), Err(AuthError::BadTag));
        assert!(o.open(&d).is_ok());
    }

    #[test]
    fn short_and_foreign_datagrams_are_malformed() {
        let mut o = Opener::new(key(1), 9);
        assert_eq!(o.open(&[]), Err(AuthError::Malformed));
        assert_eq!(o.open(&[0u8; 63]), Err(AuthError::Malformed));
        let mut d = vec![0u8; 80];
        d[..4].copy_from_slice(b"XXXX");
        assert_eq!(o.open(&d), Err(AuthError::Malformed));
        assert_eq!(o.stats.malformed, 3);
    }

    #[test]
    fn out_of_order_within_the_window_passes_once_older_is_replay() {
        let mut s = Sealer::new(key(1), 7, 1000);
        let mut o = Opener::new(key(1), 9);
        let ds: Vec<Vec<u8>> = (0..2000)
            .map(|_| {
                let mut d = Vec::new();
                s.seal(1, b"", &mut d);
                d
            })
            .collect();
        // 1500 first, then 1000 (inside the window), then 400 (below it).
        assert!(o.open(&ds[1499]).is_ok());
        assert!(o.open(&ds[999]).is_ok());
        assert_eq!(o.open(&ds[999]), Err(AuthError::Replayed));
        assert_eq!(o.open(&ds[399]), Err(AuthError::Replayed));
        // Everything after 1500 in any order, each once.
        for i in (1500..2000).rev() {
            assert!(o.open(&ds[i]).is_ok(), "{i}");
        }
        for d in &ds[1500..2000] {
            assert_eq!(o.open(d), Err(AuthError::Replayed));
        }
    }

    #[test]
    fn a_restarted_peer_starts_a_new_epoch_old_ones_are_refused() {
        let mut old = Sealer::new(key(1), 7, 1000);
        let mut new = Sealer::new(key(1), 7, 2000);
        let mut o = Opener::new(key(1), 9);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        old.seal(1, b"x", &mut a);
        new.seal(1, b"y", &mut b);
        assert!(o.open(&a).is_ok());
        // Sequence 1 again, in the new epoch: accepted.
        assert!(o.open(&b).is_ok());
        // A recorded datagram of the old incarnation: refused.
        let mut c = Vec::new();
        old.seal(1, b"z", &mut c);
        assert_eq!(o.open(&c), Err(AuthError::OldEpoch));
    }

    #[test]
    fn our_own_datagrams_are_refused() {
        let mut s = Sealer::new(key(1), 9, 1000);
        let mut o = Opener::new(key(1), 9);
        let mut d = Vec::new();
        s.seal(1, b"", &mut d);
        assert_eq!(o.open(&d), Err(AuthError::OwnNode));
    }

    #[test]
    fn key_files_must_be_private_and_long_enough() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("pc-ha-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("key");
        std::fs::write(
            &f,
            "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n",
        )
        .unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(Key::from_file(&f).unwrap_err().contains("chmod 600"));
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        let k = Key::from_file(&f).unwrap();
        assert_eq!(k.0.len(), 32, "64 hex digits are 32 bytes");
        std::fs::write(&f, "short").unwrap();
        assert!(Key::from_file(&f).unwrap_err().contains("at least 16"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
