//! A worker's connection table: fixed capacity, preallocated at start, one writer (its worker).
//!
//! - Lookup: a seeded hash of the canonical `FlowKey` picks a bucket: one cache line of eight
//!   slots, each a 16-bit tag (more bits of the hash) and an entry index. A key lives in its
//!   primary bucket or, when that was full, in an alternate one (two-choice cuckoo hashing, as in
//!   DPDK's rte_hash); the primary counts its spilled keys, so a lookup reads the alternate only
//!   when something spilled. A lookup thus costs one bucket line and (for IPv4) one entry line, and
//!   the tags tell which entry to fetch before the key is compared: `hash` + `prefetch` (the
//!   bucket) + `prefetch_entry` (the entry the tag names) let a burst have all its misses in
//!   flight at once instead of one after another (a chain walk serialises them).
//! - Expiry: a timer wheel of one-second slots, lazily: a packet only stamps `last_seen`; when an
//!   entry's slot comes round the wheel checks it and either expires it or reschedules it for
//!   `last_seen + timeout`. The per-packet path never touches a list. Timeouts longer than the
//!   wheel simply come round more than once.
//! - Exhaustion: a full table refuses new connections; it never evicts a live one.
//!
//! Must never allocate after `with_capacity`, read a clock (time is an argument), or lock.

use super::tcp::{ConnState, TcpTracker};
use crate::flow::FlowKey;

/// Slots of the timer wheel: one per second, ~68 minutes round.
const WHEEL_SLOTS: usize = 4096;
/// The wheel looks at every entry at least this often (seconds): a long-lived connection that
/// closes gets its short closing timeout within this much, not when its old due time comes
/// round. A million entries cost ~17,000 looks a second.
const RECHECK: u32 = 60;
const NIL: u32 = u32::MAX;
/// Slots per bucket: 8 tags (16 bytes) and 8 indices (32 bytes) fill one 64-byte line.
const WAYS: usize = 8;
/// Keys per bucket at full capacity, at most (of `WAYS`): the bucket array is sized for it, so
/// a full table is at most 62.5% loaded and spills stay rare.
const KEYS_PER_BUCKET: usize = 5;
/// In a slot's index: the entry's primary bucket is the other one (it spilled here).
const SPILLED: u32 = 1 << 31;

/// Timeouts in seconds, per protocol and state. Defaults after Linux conntrack and pf, with two
/// deliberate differences: half-open TCP (SYN sent, SYN received) lasts 30 s instead of their
/// 120 s, so that a SYN flood drains fast; established TCP lasts 24 h as in pf, not Linux's
/// 5 days (a dead peer's entry should not live for most of a week). UDP 30 s unreplied and
/// 120 s once both sides spoke, ICMP 30 s, as in Linux.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub tcp_syn_sent: u32,
    pub tcp_syn_recv: u32,
    pub tcp_established: u32,
    pub tcp_closing: u32,
    pub tcp_time_wait: u32,
    pub tcp_closed: u32,
    /// UDP before the first reply, and once both sides have spoken.
    pub udp_first: u32,
    pub udp_stream: u32,
    pub icmp: u32,
    pub other: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            tcp_syn_sent: 30,
            tcp_syn_recv: 30,
            tcp_established: 86_400,
            tcp_closing: 120,
            tcp_time_wait: 60,
            tcp_closed: 10,
            udp_first: 30,
            udp_stream: 120,
            icmp: 30,
            other: 60,
        }
    }
}

/// Protocol state of a connection that is not TCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum SimpleState {
    /// Only the initiator has sent.
    New,
    /// Both sides have sent.
    Replied,
}

/// One connection: exactly two cache lines (checked by a test), aligned to them. The first
/// holds everything a packet of an established IPv4 connection reads or writes (the key, the
/// TCP tracker, the low bits of the counters), so that the per-packet path touches one line of
/// the entry; the second the rest of an IPv6 key and what only the slow paths read.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(64))]
pub struct Conn {
    head: KeyHead,
    /// What the connection carries (`inspect::detect::AppProto::code`), 0 until a payload.
    pub app_proto: u8,
    /// Per-connection flags owned by the layers above (verdict, zone, inspection state).
    pub flags: u8,
    /// Seconds (of the caller's clock) of the last packet.
    pub last_seen: u32,
    /// HA sync: the second from which this connection's next packet pushes a sync event (its
    /// refresh); 0 asks for one at once (a new connection, a changed state, an event lost to a
    /// full queue); `u32::MAX` when sync is off.
    pub sync_due: u32,
    pub tcp: TcpTracker,
    /// The low 16 bits of the packets and the low 32 bits of the bytes from the initiator
    /// (`[0]`) and from the responder (`[1]`); `packets_hi` and `bytes_hi` count their wraps,
    /// so the per-packet path carries into the second line once per 65,536 packets or 4 GiB.
    packets_lo: [u16; 2],
    bytes_lo: [u32; 2],
    // Line two.
    /// Bytes 4..16 of the key's lo and hi addresses (zero for IPv4).
    addr_rest: [[u8; 12]; 2],
    /// The connection's inspection slot while its handshake is inspected (0: none).
    pub insp: u16,
    /// Second (of the caller's clock) of creation.
    pub created: u32,
    /// The next entry in its wheel slot (live or removed), or on the free list (released).
    next: u32,
    packets_hi: [u32; 2],
    bytes_hi: [u32; 2],
}

/// The head of an entry's key and the entry's own bits: an IPv4 key whole, an IPv6 key's ports,
/// protocol and first four bytes of each address. 14 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
struct KeyHead {
    lo4: [u8; 4],
    hi4: [u8; 4],
    lo_port: u16,
    hi_port: u16,
    proto: u8,
    /// `IPV6`, `LIVE`, `INITIATOR_IS_LO`, `REPLIED`.
    bits: u8,
}

/// `KeyHead::bits`: the key is IPv6.
const IPV6: u8 = 1;
/// The entry holds a connection (not removed since it was looked up).
const LIVE: u8 = 2;
/// The initiator is the key's lo endpoint.
const INITIATOR_IS_LO: u8 = 4;
/// Both sides have sent (`SimpleState::Replied`).
const REPLIED: u8 = 8;

impl KeyHead {
    #[inline(always)]
    fn of(k: &FlowKey, bits: u8) -> KeyHead {
        KeyHead {
            lo4: [k.lo_addr[0], k.lo_addr[1], k.lo_addr[2], k.lo_addr[3]],
            hi4: [k.hi_addr[0], k.hi_addr[1], k.hi_addr[2], k.hi_addr[3]],
            lo_port: k.lo_port,
            hi_port: k.hi_port,
            proto: k.proto,
            bits: bits | if k.is_ipv6 { IPV6 } else { 0 },
        }
    }
}

/// Bytes 4..16 of an address.
#[inline(always)]
fn rest(a: &[u8; 16]) -> [u8; 12] {
    let mut r = [0; 12];
    r.copy_from_slice(&a[4..]);
    r
}

/// One line of the index: eight (tag, entry) slots. A free slot has tag 0 and index `NIL`.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Bucket {
    tags: [u16; WAYS],
    slots: [u32; WAYS],
    /// Keys whose primary bucket this is, stored in their alternate: a lookup that misses here
    /// reads the alternate only when this is not 0.
    spilled: u32,
}

impl Bucket {
    const EMPTY: Bucket = Bucket {
        tags: [0; WAYS],
        slots: [NIL; WAYS],
        spilled: 0,
    };

    /// The slots whose tag is `tag`: bit 16 w + 15 is set for each matching slot w (see
    /// `way`). Eight 16-bit lanes compared at once in two words (SWAR), without branches;
    /// LLVM left to a per-slot loop compares half of them one at a time.
    #[inline(always)]
    fn matches(&self, tag: u16) -> u128 {
        const LANES: u128 = u128::MAX / 0xffff;
        const LOW: u128 = LANES * 0x7fff;
        let mut t = 0u128;
        for (w, &tw) in self.tags.iter().enumerate() {
            t |= (tw as u128) << (16 * w);
        }
        // Matching lanes become 0; a lane's top bit then ends up set exactly where its lane is
        // 0 (adding 0x7fff to the low 15 bits sets the top bit unless they are all 0, and no
        // lane carries into the next).
        let half = tag as u64 * (LANES as u64);
        let x = t ^ (half as u128 | (half as u128) << 64);
        !(((x & LOW) + LOW) | x | LOW)
    }

    /// The slot of the lowest match in a `matches` mask (not 0).
    #[inline(always)]
    fn way(m: u128) -> usize {
        (m.trailing_zeros() / 16) as usize
    }

    #[inline]
    fn free_way(&self) -> Option<usize> {
        self.slots.iter().position(|&s| s == NIL)
    }
}

impl Conn {
    const BLANK: Conn = Conn {
        head: KeyHead {
            lo4: [0; 4],
            hi4: [0; 4],
            lo_port: 0,
            hi_port: 0,
            proto: 0,
            bits: 0,
        },
        app_proto: 0,
        flags: 0,
        last_seen: 0,
        sync_due: u32::MAX,
        tcp: TcpTracker::default_for_other(),
        packets_lo: [0; 2],
        bytes_lo: [0; 2],
        addr_rest: [[0; 12]; 2],
        insp: 0,
        created: 0,
        next: NIL,
        packets_hi: [0; 2],
        bytes_hi: [0; 2],
    };

    fn timeout(&self, t: &Timeouts) -> u32 {
        match self.head.proto {
            6 => match self.tcp.state() {
                ConnState::SynSent => t.tcp_syn_sent,
                ConnState::SynRecv => t.tcp_syn_recv,
                ConnState::Established => t.tcp_established,
                ConnState::Closing => t.tcp_closing,
                ConnState::TimeWait => t.tcp_time_wait,
                ConnState::Close => t.tcp_closed,
            },
            17 => match self.simple() {
                SimpleState::New => t.udp_first,
                SimpleState::Replied => t.udp_stream,
            },
            1 | 58 => t.icmp,
            _ => t.other,
        }
    }

    /// The connection's key.
    pub fn key(&self) -> FlowKey {
        let h = &self.head;
        let addr = |four: [u8; 4], rest: &[u8; 12]| {
            let mut a = [0; 16];
            a[..4].copy_from_slice(&four);
            a[4..].copy_from_slice(rest);
            a
        };
        FlowKey {
            lo_addr: addr(h.lo4, &self.addr_rest[0]),
            hi_addr: addr(h.hi4, &self.addr_rest[1]),
            lo_port: h.lo_port,
            hi_port: h.hi_port,
            proto: h.proto,
            is_ipv6: h.bits & IPV6 != 0,
        }
    }

    /// The connection's protocol number (from the key, without building it).
    #[inline(always)]
    pub fn proto(&self) -> u8 {
        self.head.proto
    }

    /// Whether the entry is live and holds `key`: for an IPv4 key a look at the first line only.
    #[inline(always)]
    fn holds(&self, key: &FlowKey) -> bool {
        let h = KeyHead::of(key, LIVE);
        let mine = KeyHead {
            bits: self.head.bits & (IPV6 | LIVE),
            ..self.head
        };
        mine == h && (!key.is_ipv6 || self.addr_rest == [rest(&key.lo_addr), rest(&key.hi_addr)])
    }

    /// Whether the entry still holds a connection (not removed since it was looked up).
    #[inline(always)]
    pub fn is_live(&self) -> bool {
        self.head.bits & LIVE != 0
    }

    /// Whether the initiator is the key's lo endpoint.
    #[inline(always)]
    pub fn initiator_is_lo(&self) -> bool {
        self.head.bits & INITIATOR_IS_LO != 0
    }

    pub fn set_initiator_is_lo(&mut self, lo: bool) {
        self.set_bit(INITIATOR_IS_LO, lo);
    }

    /// Protocol state for UDP, ICMP and others (TCP has `tcp`).
    #[inline(always)]
    pub fn simple(&self) -> SimpleState {
        if self.head.bits & REPLIED != 0 {
            SimpleState::Replied
        } else {
            SimpleState::New
        }
    }

    pub fn set_simple(&mut self, s: SimpleState) {
        self.set_bit(REPLIED, s == SimpleState::Replied);
    }

    fn set_bit(&mut self, bit: u8, on: bool) {
        self.head.bits = (self.head.bits & !bit) | if on { bit } else { 0 };
    }

    /// Packets from the initiator (`[0]`) and from the responder (`[1]`).
    pub fn packets(&self) -> [u64; 2] {
        [0, 1].map(|d| (self.packets_hi[d] as u64) << 16 | self.packets_lo[d] as u64)
    }

    /// Bytes from the initiator (`[0]`) and from the responder (`[1]`).
    pub fn bytes(&self) -> [u64; 2] {
        [0, 1].map(|d| (self.bytes_hi[d] as u64) << 32 | self.bytes_lo[d] as u64)
    }

    /// Sets the counters (a connection taken over from the HA peer).
    pub fn set_counters(&mut self, packets: [u64; 2], bytes: [u64; 2]) {
        for d in 0..2 {
            self.packets_lo[d] = packets[d] as u16;
            self.packets_hi[d] = (packets[d] >> 16) as u32;
            self.bytes_lo[d] = bytes[d] as u32;
            self.bytes_hi[d] = (bytes[d] >> 32) as u32;
        }
    }

    /// Counts one packet; `from_initiator` picks the direction.
    #[inline(always)]
    pub fn count(&mut self, from_initiator: bool, len: u32, now: u32) {
        let d = (!from_initiator) as usize;
        let (packets, p_wrap) = self.packets_lo[d].overflowing_add(1);
        let (bytes, b_wrap) = self.bytes_lo[d].overflowing_add(len);
        self.packets_lo[d] = packets;
        self.bytes_lo[d] = bytes;
        if p_wrap | b_wrap {
            self.carry(d, p_wrap, b_wrap);
        }
        self.last_seen = now;
        self.head.bits |= if from_initiator { 0 } else { REPLIED };
    }

    /// `count`, then whether the connection's HA sync refresh is due (`sync_due`).
    #[inline(always)]
    pub fn count_due(&mut self, from_initiator: bool, len: u32, now: u32) -> bool {
        self.count(from_initiator, len, now);
        now >= self.sync_due
    }

    #[cold]
    fn carry(&mut self, d: usize, packets: bool, bytes: bool) {
        self.packets_hi[d] = self.packets_hi[d].wrapping_add(packets as u32);
        self.bytes_hi[d] = self.bytes_hi[d].wrapping_add(bytes as u32);
    }
}

/// Index of a connection in its table; valid until the connection expires or is removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnId(u32);

impl ConnId {
    /// The entry's index, for back references from per-connection side tables.
    pub fn index(self) -> u32 {
        self.0
    }

    /// The id of entry `i` (from `index`). The caller checks that it still names its connection.
    pub fn from_index(i: u32) -> ConnId {
        ConnId(i)
    }
}

/// The table refused a new connection: it is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableFull;

pub struct ConnTable {
    buckets: Box<[Bucket]>,
    entries: Box<[Conn]>,
    free: u32,
    len: usize,
    mask: usize,
    seed: u64,
    wheel: Box<[u32]>,
    /// The wheel has processed every slot before this second.
    wheel_now: u32,
    /// The detached rest of the slot being processed when a budget ran out. Processing takes a
    /// slot's whole list first, so entries rescheduled into the same slot (a later round) land
    /// in a fresh list and are not seen twice in one pass.
    pending: u32,
    /// The last `expire` stopped at its budget: call again before the next second.
    behind: bool,
    timeouts: Timeouts,
    /// `Conn::sync_due` of new connections: 0 with HA sync on, `u32::MAX` off.
    sync_due_new: u32,
}

#[inline(always)]
fn fold_mul(a: u64, b: u64) -> u64 {
    let r = (a as u128).wrapping_mul(b as u128);
    (r as u64) ^ ((r >> 64) as u64)
}

impl ConnTable {
    /// A table for `capacity` connections, all memory allocated now. `now` starts the wheel.
    pub fn with_capacity(capacity: usize, timeouts: Timeouts, now: u32) -> ConnTable {
        let capacity = capacity.clamp(1, (SPILLED - 1) as usize);
        let nb = capacity.div_ceil(KEYS_PER_BUCKET).next_power_of_two();
        let blank = Conn::BLANK;
        // Allocated, advised, then filled: the first touch (the fill) faults in huge pages.
        let mut entries: Box<[Conn]> = {
            let mut v: Vec<Conn> = Vec::with_capacity(capacity);
            crate::dpdk::advise_huge_pages(v.spare_capacity_mut());
            v.resize(capacity, blank);
            v.into_boxed_slice()
        };
        // The free list threads through `next`.
        for (i, e) in entries.iter_mut().enumerate() {
            e.next = if i + 1 < capacity { i as u32 + 1 } else { NIL };
        }
        let seed = {
            use std::hash::BuildHasher;
            std::collections::hash_map::RandomState::new().hash_one(0xc0_22_u64)
        };
        let buckets = {
            let mut v: Vec<Bucket> = Vec::with_capacity(nb);
            crate::dpdk::advise_huge_pages(v.spare_capacity_mut());
            v.resize(nb, Bucket::EMPTY);
            v.into_boxed_slice()
        };
        ConnTable {
            buckets,
            entries,
            free: 0,
            len: 0,
            mask: nb - 1,
            seed,
            wheel: vec![NIL; WHEEL_SLOTS].into_boxed_slice(),
            wheel_now: now,
            pending: NIL,
            behind: false,
            timeouts,
            sync_due_new: u32::MAX,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn capacity(&self) -> usize {
        self.entries.len()
    }

    /// Bytes of memory the table holds (entries, buckets, wheel).
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.entries)
            + std::mem::size_of_val(&*self.buckets)
            + std::mem::size_of_val(&*self.wheel)
    }

    /// The table's hash of a key (stage 1 of a bulk lookup).
    #[inline(always)]
    pub fn hash(&self, k: &FlowKey) -> u64 {
        let w =
            |a: &[u8; 16], i: usize| u64::from_le_bytes(a[i..i + 8].try_into().expect("8 bytes"));
        let v6 = k.is_ipv6.then(|| (w(&k.lo_addr, 8), w(&k.hi_addr, 8)));
        let tail = k.lo_port as u64
            | (k.hi_port as u64) << 16
            | (k.proto as u64) << 32
            | (k.is_ipv6 as u64) << 40;
        self.hash_words(w(&k.lo_addr, 0), w(&k.hi_addr, 0), v6, tail)
    }

    /// `hash` of the IPv4 key with these endpoints (big-endian address values), from registers:
    /// the per-packet fast path hashes without reading back a key it has just stored.
    #[inline(always)]
    pub fn hash_v4(&self, lo: u32, lo_port: u16, hi: u32, hi_port: u16, proto: u8) -> u64 {
        let tail = lo_port as u64 | (hi_port as u64) << 16 | (proto as u64) << 32;
        self.hash_words(lo.swap_bytes() as u64, hi.swap_bytes() as u64, None, tail)
    }

    #[inline(always)]
    fn hash_words(&self, lo0: u64, hi0: u64, v6: Option<(u64, u64)>, tail: u64) -> u64 {
        const K0: u64 = 0x243f_6a88_85a3_08d3;
        const K1: u64 = 0x1319_8a2e_0370_7344;
        const K2: u64 = 0xa409_3822_299f_31d0;
        let mut h = fold_mul(lo0 ^ self.seed ^ K0, hi0 ^ K1);
        if let Some((lo1, hi1)) = v6 {
            h ^= fold_mul(lo1 ^ K2, hi1 ^ self.seed);
        }
        fold_mul(h ^ tail, K2 ^ self.seed)
    }

    /// The primary bucket and the tag of a hash. Tags are never 0 (a free slot's tag).
    #[inline(always)]
    fn place_of(&self, hash: u64) -> (usize, u16) {
        let t = (hash >> 48) as u16;
        (hash as usize & self.mask, t | (t == 0) as u16)
    }

    /// A key's other bucket, from either of its two and its tag alone (so entries can move
    /// between them without reading the entry). Differs from `b` whenever there are two buckets.
    #[inline(always)]
    fn alt(&self, b: usize, tag: u16) -> usize {
        (b ^ ((tag as usize).wrapping_mul(0x9e37_79b9) | 1)) & self.mask
    }

    /// Prefetches the bucket `hash` falls in (stage 1 of a bulk lookup).
    #[inline(always)]
    pub fn prefetch(&self, hash: u64) {
        crate::dpdk::prefetch(&self.buckets[self.place_of(hash).0]);
    }

    /// Prefetches the entry the primary bucket's tags name for `hash` (stage 2, once the
    /// bucket has arrived): its first line, all an IPv4 packet needs, and with `ipv6` the
    /// second, which holds the rest of the key. Returns the entry as the hint for
    /// `lookup_hinted` (`NIL` if no tag matched).
    #[inline(always)]
    pub fn prefetch_entry(&self, hash: u64, ipv6: bool) -> u32 {
        let (b, tag) = self.place_of(hash);
        let bucket = &self.buckets[b];
        let m = bucket.matches(tag);
        if m == 0 {
            return NIL;
        }
        let i = bucket.slots[Bucket::way(m)] & !SPILLED;
        if let Some(e) = self.entries.get(i as usize) {
            crate::dpdk::prefetch(e);
            if ipv6 {
                crate::dpdk::prefetch(&e.addr_rest);
            }
        }
        i
    }

    /// `lookup`, trying first the entry `prefetch_entry` named: a live entry with the key is
    /// the connection (live keys are unique; entries are reused only after the wheel released
    /// them, between bursts), so a hit costs no second look at the bucket.
    #[inline(always)]
    pub fn lookup_hinted(&self, key: &FlowKey, hash: u64, hint: u32) -> Option<ConnId> {
        if let Some(e) = self.entries.get(hint as usize) {
            if e.holds(key) {
                return Some(ConnId(hint));
            }
        }
        self.lookup(key, hash)
    }

    #[inline]
    pub fn lookup(&self, key: &FlowKey, hash: u64) -> Option<ConnId> {
        let (b, tag) = self.place_of(hash);
        if let Some(id) = self.find_in(b, tag, key) {
            return Some(id);
        }
        if self.buckets[b].spilled == 0 {
            return None;
        }
        self.find_in(self.alt(b, tag), tag, key)
    }

    #[inline(always)]
    fn find_in(&self, b: usize, tag: u16, key: &FlowKey) -> Option<ConnId> {
        let bucket = &self.buckets[b];
        let mut m = bucket.matches(tag);
        while m != 0 {
            let i = bucket.slots[Bucket::way(m)] & !SPILLED;
            if self.entries[i as usize].holds(key) {
                return Some(ConnId(i));
            }
            m &= m - 1;
        }
        None
    }

    #[inline(always)]
    pub fn get(&self, id: ConnId) -> &Conn {
        &self.entries[id.0 as usize]
    }

    #[inline(always)]
    pub fn get_mut(&mut self, id: ConnId) -> &mut Conn {
        &mut self.entries[id.0 as usize]
    }

    /// Inserts a new connection (the caller looked it up first). Never evicts: a full table
    /// refuses.
    pub fn insert(
        &mut self,
        key: &FlowKey,
        hash: u64,
        initiator_is_lo: bool,
        tcp: TcpTracker,
        now: u32,
    ) -> Result<ConnId, TableFull> {
        if self.free == NIL || !self.index(self.free, hash) {
            return Err(TableFull);
        }
        let i = self.free;
        let e = &mut self.entries[i as usize];
        self.free = e.next;
        *e = Conn {
            head: KeyHead::of(
                key,
                LIVE | if initiator_is_lo { INITIATOR_IS_LO } else { 0 },
            ),
            last_seen: now,
            created: now,
            sync_due: self.sync_due_new,
            tcp,
            addr_rest: [rest(&key.lo_addr), rest(&key.hi_addr)],
            ..Conn::BLANK
        };
        self.len += 1;
        let due = now.wrapping_add(e.timeout(&self.timeouts).clamp(1, RECHECK));
        self.schedule(i, due);
        Ok(ConnId(i))
    }

    /// Puts entry `i` in the index under `hash`: its primary bucket, else its alternate, else
    /// makes room by moving residents to their other buckets (two moves deep). False only when
    /// all of that is full, which a table at most 62.5% loaded practically never is.
    fn index(&mut self, i: u32, hash: u64) -> bool {
        let (b1, tag) = self.place_of(hash);
        let b2 = self.alt(b1, tag);
        let choices: &[(usize, bool)] = if b1 == b2 {
            &[(b1, false)]
        } else {
            &[(b1, false), (b2, true)]
        };
        for &(b, spill) in choices {
            if let Some(w) = self.buckets[b].free_way() {
                self.fill(b, w, tag, i, spill, b1);
                return true;
            }
        }
        for &(b, spill) in choices {
            if let Some(w) = self.make_room(b, 2) {
                self.fill(b, w, tag, i, spill, b1);
                return true;
            }
        }
        false
    }

    fn fill(&mut self, b: usize, w: usize, tag: u16, i: u32, spill: bool, primary: usize) {
        self.buckets[b].tags[w] = tag;
        self.buckets[b].slots[w] = if spill { i | SPILLED } else { i };
        if spill {
            self.buckets[primary].spilled += 1;
        }
    }

    /// Frees a slot of bucket `b` by moving one of its residents to that resident's other
    /// bucket, recursively up to `depth` moves. Returns the freed way.
    fn make_room(&mut self, b: usize, depth: u32) -> Option<usize> {
        for w in 0..WAYS {
            let (tag, slot) = (self.buckets[b].tags[w], self.buckets[b].slots[w]);
            let other = self.alt(b, tag);
            if other == b {
                continue;
            }
            let to = match self.buckets[other].free_way() {
                Some(to) => Some(to),
                None if depth > 1 => self.make_room(other, depth - 1),
                None => None,
            };
            let Some(to) = to else { continue };
            // The resident moves from `b` to `other`: back home if it had spilled into `b`,
            // or out of its home `b` into its alternate.
            let moved = if slot & SPILLED != 0 {
                self.buckets[other].spilled -= 1;
                slot & !SPILLED
            } else {
                self.buckets[b].spilled += 1;
                slot | SPILLED
            };
            self.buckets[other].tags[to] = tag;
            self.buckets[other].slots[to] = moved;
            self.buckets[b].tags[w] = 0;
            self.buckets[b].slots[w] = NIL;
            return Some(w);
        }
        None
    }

    /// Removes a connection now (e.g. a RST under a policy that drops closed state at once).
    /// Its entry is reclaimed when the wheel next reaches it.
    pub fn remove(&mut self, id: ConnId) {
        let key = self.entries[id.0 as usize].key();
        let hash = self.hash(&key);
        self.unlink(id.0, hash);
        self.entries[id.0 as usize].head.bits &= !LIVE;
        self.len -= 1;
    }

    /// Takes entry `i` out of the index.
    fn unlink(&mut self, i: u32, hash: u64) {
        let (b1, tag) = self.place_of(hash);
        for b in [b1, self.alt(b1, tag)] {
            let bucket = &mut self.buckets[b];
            if let Some(w) = bucket.slots.iter().position(|&s| s & !SPILLED == i) {
                let spilled = bucket.slots[w] & SPILLED != 0;
                bucket.tags[w] = 0;
                bucket.slots[w] = NIL;
                if spilled {
                    self.buckets[b1].spilled -= 1;
                }
                return;
            }
        }
        debug_assert!(false, "entry {i} not in the index");
    }

    fn schedule(&mut self, i: u32, due: u32) {
        // Never in the past of the wheel: a slot behind the cursor would wait a whole round.
        let due = if (due.wrapping_sub(self.wheel_now) as i32) < 0 {
            self.wheel_now
        } else {
            due
        };
        let slot = due as usize % WHEEL_SLOTS;
        let e = &mut self.entries[i as usize];
        e.next = self.wheel[slot];
        self.wheel[slot] = i;
    }

    /// Advances the wheel to `now`, expiring what is due; looks at no more than `budget`
    /// entries (the rest waits for the next call), and reports each expired connection to
    /// `expired` before its entry is reused. Returns the number expired.
    pub fn expire(&mut self, now: u32, budget: usize, mut expired: impl FnMut(&Conn)) -> usize {
        let gap = now.wrapping_sub(self.wheel_now) as i32;
        if gap < 0 {
            return 0; // a clock that went back: wait for it
        }
        if gap as usize > WHEEL_SLOTS && self.pending == NIL {
            // The clock jumped by more than a round (the first call, a replay's gap): rather
            // than step through empty seconds, look at every entry once as of `now`.
            let mut all = NIL;
            for slot in 0..WHEEL_SLOTS {
                let mut l = std::mem::replace(&mut self.wheel[slot], NIL);
                while l != NIL {
                    let next = self.entries[l as usize].next;
                    self.entries[l as usize].next = all;
                    all = l;
                    l = next;
                }
            }
            self.pending = all;
            self.wheel_now = now;
        }
        let mut seen = 0;
        let mut n = 0;
        loop {
            if self.pending == NIL {
                let slot = self.wheel_now as usize % WHEEL_SLOTS;
                self.pending = std::mem::replace(&mut self.wheel[slot], NIL);
            }
            while self.pending != NIL {
                if seen == budget {
                    self.behind = true;
                    return n;
                }
                seen += 1;
                let i = self.pending;
                self.pending = self.entries[i as usize].next;
                let e = self.entries[i as usize];
                if !e.is_live() {
                    self.release(i);
                    continue;
                }
                // Due from the last packet: a busy connection is simply put back for later,
                // and one due in a later round of this slot lands in a fresh list.
                let due = e.last_seen.wrapping_add(e.timeout(&self.timeouts).max(1));
                if (due.wrapping_sub(self.wheel_now) as i32) <= 0 {
                    expired(&e);
                    let hash = self.hash(&e.key());
                    self.unlink(i, hash);
                    self.len -= 1;
                    self.release(i);
                    n += 1;
                } else {
                    let recheck = self.wheel_now.wrapping_add(RECHECK);
                    self.schedule(
                        i,
                        if (due.wrapping_sub(recheck) as i32) > 0 {
                            recheck
                        } else {
                            due
                        },
                    );
                }
            }
            if self.wheel_now == now {
                // This second may still get entries (rescheduled as overdue): the next call
                // takes its slot again.
                self.behind = false;
                break;
            }
            self.wheel_now = self.wheel_now.wrapping_add(1);
        }
        n
    }

    /// Calls `f` for every connection in the table (at shutdown; not on the per-packet path).
    pub fn for_each_live(&self, mut f: impl FnMut(&Conn)) {
        for e in self.entries.iter().filter(|e| e.is_live()) {
            f(e);
        }
    }

    /// Whether new connections are due for an HA sync event (sync on).
    pub fn set_sync(&mut self, on: bool) {
        self.sync_due_new = if on { 0 } else { u32::MAX };
    }

    /// The live connection in entry `i`, for walks over the table in steps (bulk sync).
    pub fn entry(&self, i: usize) -> Option<&Conn> {
        self.entries.get(i).filter(|e| e.is_live())
    }

    /// Whether the last `expire` stopped at its budget with work left.
    pub fn is_behind(&self) -> bool {
        self.behind
    }

    fn release(&mut self, i: u32) {
        let e = &mut self.entries[i as usize];
        e.head.bits &= !LIVE;
        e.next = self.free;
        self.free = i;
    }
}

#[cfg(test)]
mod tests {
    use super::super::tcp::{flags, Segment};
    use super::*;

    fn key(n: u32, proto: u8) -> FlowKey {
        let mut lo = [0u8; 16];
        lo[..4].copy_from_slice(&n.to_be_bytes());
        let mut hi = [0u8; 16];
        hi[..4].copy_from_slice(&[192, 0, 2, 1]);
        FlowKey {
            lo_addr: lo,
            hi_addr: hi,
            lo_port: 1000 + (n % 50_000) as u16,
            hi_port: 443,
            proto,
            is_ipv6: false,
        }
    }

    /// The SWAR tag compare agrees with a slot-by-slot compare, for tags at the lane edges
    /// (top bit set, all low bits set, 1) and duplicates, in every slot.
    #[test]
    fn tag_matches_agree_with_a_plain_compare() {
        let values = [0u16, 1, 2, 0x7fff, 0x8000, 0x8001, 0xfffe, 0xffff, 0x1234];
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            let mut b = Bucket::EMPTY;
            for t in b.tags.iter_mut() {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                *t = values[(seed >> 33) as usize % values.len()];
            }
            for &tag in &values[1..] {
                let m = b.matches(tag);
                let mut expected = 0u128;
                for (w, &t) in b.tags.iter().enumerate() {
                    if t == tag {
                        expected |= 1 << (16 * w + 15);
                    }
                }
                assert_eq!(m, expected, "tags {:x?}, tag {tag:#x}", b.tags);
                if m != 0 {
                    assert_eq!(b.tags[Bucket::way(m)], tag);
                }
            }
        }
    }

    fn syn() -> TcpTracker {
        TcpTracker::open(
            &Segment {
                seq: 1,
                flags: flags::SYN,
                window: 1000,
                ..Default::default()
            },
            false,
        )
        .unwrap()
    }

    #[test]
    fn the_ipv4_hash_from_registers_is_the_key_hash() {
        let t = ConnTable::with_capacity(10, Timeouts::default(), 0);
        for n in [0u32, 1, 0x0a00_0001, 0xc000_0209, u32::MAX] {
            let (k, lo_to_hi) = FlowKey::from_v4(n, 40_000, 0xc000_0201 ^ n.rotate_left(7), 443, 6);
            let (lo, lp, hi, hp) = if lo_to_hi {
                (n, 40_000, 0xc000_0201 ^ n.rotate_left(7), 443)
            } else {
                (0xc000_0201 ^ n.rotate_left(7), 443, n, 40_000)
            };
            assert_eq!(t.hash_v4(lo, lp, hi, hp, 6), t.hash(&k));
        }
    }

    #[test]
    fn an_entry_is_two_cache_lines_and_a_bucket_one() {
        assert_eq!(std::mem::size_of::<Conn>(), 128);
        assert_eq!(std::mem::align_of::<Conn>(), 64);
        assert_eq!(std::mem::size_of::<KeyHead>(), 14);
        // What a packet of an established IPv4 connection touches ends with the first line.
        assert_eq!(std::mem::offset_of!(Conn, addr_rest), 64, "line two");
        assert!(std::mem::offset_of!(Conn, tcp) + std::mem::size_of::<TcpTracker>() <= 64);
        assert!(std::mem::offset_of!(Conn, bytes_lo) + 8 <= 64);
        assert_eq!(std::mem::size_of::<Bucket>(), 64);
    }

    #[test]
    fn counters_carry_into_the_second_line_without_losing_a_packet_or_byte() {
        let mut t = ConnTable::with_capacity(4, Timeouts::default(), 0);
        let k = key(1, 17);
        let id = t
            .insert(&k, t.hash(&k), true, TcpTracker::default_for_other(), 0)
            .unwrap();
        let c = t.get_mut(id);
        // 70,000 packets of 65,000 bytes from the initiator: past 2^16 packets and 2^32 bytes.
        for _ in 0..70_000 {
            c.count(true, 65_000, 1);
        }
        c.count(false, 60, 2);
        assert_eq!(c.packets(), [70_000, 1]);
        assert_eq!(c.bytes(), [70_000 * 65_000, 60]);
        assert_eq!(c.simple(), SimpleState::Replied);
        let (p, b) = ([(1 << 40) + 65_535, 3], [(7 << 32) + u32::MAX as u64, 0]);
        c.set_counters(p, b);
        assert_eq!((c.packets(), c.bytes()), (p, b));
        c.count(true, 1, 3);
        assert_eq!(c.packets()[0], (1 << 40) + 65_536);
        assert_eq!(c.bytes()[0], 8 << 32);
    }

    #[test]
    fn ipv6_keys_that_differ_past_the_first_line_stay_apart() {
        let mut t = ConnTable::with_capacity(16, Timeouts::default(), 0);
        let v6 = |last: u8, lo_is_initiator: bool| {
            let mut lo = [
                0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, last,
            ];
            let hi = [
                0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 1,
            ];
            lo[5] = last;
            (
                FlowKey {
                    lo_addr: lo,
                    hi_addr: hi,
                    lo_port: 40_000,
                    hi_port: 443,
                    proto: 6,
                    is_ipv6: true,
                },
                lo_is_initiator,
            )
        };
        let keys: Vec<_> = (1..=8).map(|n| v6(n, n % 2 == 0)).collect();
        let ids: Vec<_> = keys
            .iter()
            .map(|(k, lo)| t.insert(k, t.hash(k), *lo, syn(), 0).unwrap())
            .collect();
        for ((k, lo), id) in keys.iter().zip(&ids) {
            assert_eq!(t.lookup(k, t.hash(k)), Some(*id));
            assert_eq!(t.get(*id).key(), *k);
            assert_eq!(t.get(*id).initiator_is_lo(), *lo);
            // The same first line with another address tail is not this connection.
            let mut other = *k;
            other.hi_addr[15] ^= 0x80;
            assert_eq!(t.lookup_hinted(&other, t.hash(&other), id.index()), None);
        }
        // An IPv4 key whose head equals an IPv6 key's head is another connection too.
        let mut v4 = keys[0].0;
        v4.is_ipv6 = false;
        v4.lo_addr[4..].fill(0);
        v4.hi_addr[4..].fill(0);
        assert_eq!(t.lookup_hinted(&v4, t.hash(&v4), ids[0].index()), None);
        t.remove(ids[0]);
        assert_eq!(
            t.lookup_hinted(&keys[0].0, t.hash(&keys[0].0), ids[0].index()),
            None
        );
    }

    #[test]
    fn insert_lookup_and_full_table_never_evicts() {
        let mut t = ConnTable::with_capacity(1000, Timeouts::default(), 0);
        for n in 0..1000 {
            let k = key(n, 17);
            let h = t.hash(&k);
            assert_eq!(t.lookup(&k, h), None);
            t.insert(&k, h, true, syn(), 0).unwrap();
        }
        let k = key(5000, 17);
        assert_eq!(t.insert(&k, t.hash(&k), true, syn(), 0), Err(TableFull));
        for n in 0..1000 {
            let k = key(n, 17);
            assert!(t.lookup(&k, t.hash(&k)).is_some(), "connection {n} lost");
        }
        assert_eq!(t.len(), 1000);
    }

    #[test]
    fn idle_connections_expire_busy_ones_stay() {
        let to = Timeouts::default();
        let mut t = ConnTable::with_capacity(100, to, 0);
        let (a, b) = (key(1, 17), key(2, 17));
        let ia = t.insert(&a, t.hash(&a), true, syn(), 0).unwrap();
        t.insert(&b, t.hash(&b), true, syn(), 0).unwrap();
        t.get_mut(ia).count(false, 100, 0); // a got a reply: udp_stream timeout
        let mut gone = Vec::new();
        for now in 1..=200u32 {
            if now % 10 == 0 {
                if let Some(id) = t.lookup(&a, t.hash(&a)) {
                    t.get_mut(id).count(true, 60, now); // a stays busy
                }
            }
            t.expire(now, 1000, |c| gone.push((c.key(), now)));
        }
        assert_eq!(
            gone,
            vec![(b, to.udp_first)],
            "b expires after udp_first, a never"
        );
        assert!(t.lookup(&a, t.hash(&a)).is_some());
        // Now a goes idle: it expires udp_stream seconds after its last packet.
        for now in 201..=400u32 {
            t.expire(now, 1000, |c| gone.push((c.key(), now)));
        }
        assert_eq!(gone[1], (a, 200 + to.udp_stream));
        assert!(t.is_empty());
    }

    #[test]
    fn timeouts_longer_than_the_wheel_come_round_again() {
        let to = Timeouts {
            udp_first: 10_000,
            ..Timeouts::default()
        };
        let mut t = ConnTable::with_capacity(10, to, 0);
        let k = key(9, 17);
        t.insert(&k, t.hash(&k), true, syn(), 0).unwrap();
        let mut at = None;
        for now in 1..=12_000u32 {
            t.expire(now, 100, |_| at = Some(now));
        }
        assert_eq!(at, Some(10_000));
    }

    #[test]
    fn a_clock_jump_looks_at_each_entry_once() {
        // Offline replays start the wheel at capture time (epoch seconds) and may jump.
        let mut t = ConnTable::with_capacity(10, Timeouts::default(), 0);
        let t0 = 1_700_000_000u32;
        assert_eq!(t.expire(t0, 100, |_| {}), 0);
        let (a, b) = (key(1, 17), key(2, 17));
        t.insert(&a, t.hash(&a), true, syn(), t0).unwrap();
        t.insert(&b, t.hash(&b), true, syn(), t0).unwrap();
        let ib = t.lookup(&b, t.hash(&b)).unwrap();
        t.get_mut(ib).count(true, 1, t0 + 86_400);
        let start = std::time::Instant::now();
        let mut gone = Vec::new();
        t.expire(t0 + 86_400, 100, |c| gone.push(c.key()));
        assert_eq!(gone, vec![a], "a idle for a day, b just seen");
        assert!(start.elapsed() < std::time::Duration::from_millis(200));
    }

    #[test]
    fn freed_entries_are_reused_and_budget_bounds_the_work() {
        let mut t = ConnTable::with_capacity(500, Timeouts::default(), 0);
        for n in 0..500 {
            let k = key(n, 1);
            t.insert(&k, t.hash(&k), true, syn(), 0).unwrap();
        }
        let icmp = Timeouts::default().icmp;
        let mut n = t.expire(icmp, 100, |_| {});
        assert_eq!(n, 100, "budget");
        while !t.is_empty() {
            n += t.expire(icmp, 100, |_| {});
        }
        assert_eq!(n, 500);
        for n in 1000..1500 {
            let k = key(n, 1);
            t.insert(&k, t.hash(&k), true, syn(), icmp).unwrap();
        }
        assert_eq!(t.len(), 500);
    }

    #[test]
    fn removal_unlinks_at_once_and_reclaims_later() {
        let mut t = ConnTable::with_capacity(2, Timeouts::default(), 0);
        let (a, b) = (key(1, 6), key(2, 6));
        let ia = t.insert(&a, t.hash(&a), true, syn(), 0).unwrap();
        t.insert(&b, t.hash(&b), true, syn(), 0).unwrap();
        t.remove(ia);
        assert_eq!(t.lookup(&a, t.hash(&a)), None);
        assert!(t.lookup(&b, t.hash(&b)).is_some());
        let c = key(3, 6);
        assert_eq!(
            t.insert(&c, t.hash(&c), true, syn(), 0),
            Err(TableFull),
            "reclaimed by the wheel, not yet"
        );
        t.expire(1, 10, |_| {});
        t.expire(Timeouts::default().tcp_syn_sent, 10, |_| {});
        assert!(t.insert(&c, t.hash(&c), true, syn(), 30).is_ok());
    }

    /// Every live entry is in the index exactly once, in one of its two buckets; nothing else
    /// is; every bucket counts exactly the keys that spilled from it.
    fn check_index(t: &ConnTable) {
        let mut spilled = vec![0u32; t.buckets.len()];
        let mut seen = 0;
        for (b, bucket) in t.buckets.iter().enumerate() {
            for w in 0..WAYS {
                let slot = bucket.slots[w];
                if slot == NIL {
                    assert_eq!(bucket.tags[w], 0);
                    continue;
                }
                let i = (slot & !SPILLED) as usize;
                let e = &t.entries[i];
                assert!(e.is_live(), "slot names a dead entry");
                let (home, tag) = t.place_of(t.hash(&e.key()));
                assert_eq!(bucket.tags[w], tag);
                if slot & SPILLED != 0 {
                    assert_eq!(b, t.alt(home, tag));
                    spilled[home] += 1;
                } else {
                    assert_eq!(b, home);
                }
                assert_eq!(t.lookup(&e.key(), t.hash(&e.key())), Some(ConnId(i as u32)));
                seen += 1;
            }
        }
        assert_eq!(seen, t.len());
        for (b, bucket) in t.buckets.iter().enumerate() {
            assert_eq!(bucket.spilled, spilled[b], "bucket {b}");
        }
    }

    #[test]
    fn a_full_index_spills_moves_and_stays_consistent() {
        // 5000 connections in 1024 buckets of 8: at capacity the index is 61% loaded, so keys
        // spill to alternates and insertions move residents; then churn.
        let mut t = ConnTable::with_capacity(5000, Timeouts::default(), 0);
        for n in 0..5000 {
            let k = key(n, 17);
            t.insert(&k, t.hash(&k), true, syn(), 0).unwrap();
        }
        check_index(&t);
        let spilled: u32 = t.buckets.iter().map(|b| b.spilled).sum();
        assert!(spilled > 0, "a full table spills some keys");
        let mut x = 12345u32;
        for round in 0..20_000u32 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let k = key(x % 7000, 17);
            let h = t.hash(&k);
            match t.lookup(&k, h) {
                Some(id) => t.remove(id),
                None => match t.insert(&k, h, true, syn(), 0) {
                    Ok(_) => {}
                    Err(TableFull) => {
                        // Removed entries wait for the wheel: let it reclaim them.
                        t.expire(round, usize::MAX, |_| {});
                    }
                },
            }
            if round % 2000 == 0 {
                check_index(&t);
            }
        }
        check_index(&t);
    }

    #[test]
    fn a_one_bucket_table_refuses_past_its_capacity() {
        // Capacity 5 is one bucket, whose alternate is itself.
        let mut t = ConnTable::with_capacity(5, Timeouts::default(), 0);
        for n in 0..5 {
            let k = key(n, 6);
            t.insert(&k, t.hash(&k), true, syn(), 0).unwrap();
        }
        let k = key(99, 6);
        assert_eq!(t.insert(&k, t.hash(&k), true, syn(), 0), Err(TableFull));
        check_index(&t);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;
        use std::collections::HashMap;

        proptest! {
            /// Against a model: inserts, touches and clock steps; the table holds exactly the
            /// connections whose last packet is younger than their timeout.
            #[test]
            fn matches_a_model(ops in prop::collection::vec((0u32..64, 0u8..3, 0u32..50), 1..400)) {
                let to = Timeouts { udp_first: 40, udp_stream: 90, ..Timeouts::default() };
                let mut t = ConnTable::with_capacity(32, to, 0);
                let mut model: HashMap<u32, (u32, bool)> = HashMap::new(); // n -> (last_seen, replied)
                let mut now = 0u32;
                for (n, op, dt) in ops {
                    match op {
                        0 => {
                            let k = key(n, 17);
                            let h = t.hash(&k);
                            match t.lookup(&k, h) {
                                Some(id) => { t.get_mut(id).count(true, 1, now); model.get_mut(&n).unwrap().0 = now; }
                                None => {
                                    prop_assert!(!model.contains_key(&n));
                                    if t.insert(&k, h, true, syn(), now).is_ok() { model.insert(n, (now, false)); }
                                    else { prop_assert_eq!(model.len(), 32); }
                                }
                            }
                        }
                        1 => {
                            let k = key(n, 17);
                            if let Some(id) = t.lookup(&k, t.hash(&k)) {
                                t.get_mut(id).count(false, 1, now);
                                let m = model.get_mut(&n).unwrap();
                                *m = (now, true);
                            }
                        }
                        _ => {
                            now += dt;
                            let mut gone = Vec::new();
                            t.expire(now, usize::MAX, |c| gone.push(u32::from_be_bytes(c.key().lo_addr[..4].try_into().unwrap())));
                            for g in &gone {
                                let (last, replied) = model.remove(g).unwrap();
                                let timeout = if replied { to.udp_stream } else { to.udp_first };
                                prop_assert!(now >= last + timeout, "{} expired early", g);
                            }
                            for (n, (last, replied)) in &model {
                                let timeout = if *replied { to.udp_stream } else { to.udp_first };
                                prop_assert!(now < last + timeout, "{} should have expired", n);
                            }
                        }
                    }
                    prop_assert_eq!(t.len(), model.len());
                }
            }
        }
    }
}
