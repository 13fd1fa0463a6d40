//! Toeplitz hashing as NICs compute it for receive-side scaling.
//!
//! Owns: the standard RSS keys, a table-driven Toeplitz hash, the choice of
//! hash input per packet type (mirroring what a NIC does, so software can
//! predict which queue a packet lands on), and a bitwise reference
//! implementation for tests.
//!
//! Must never: allocate or panic per packet, or hash more than the 36 bytes a
//! 40-byte key can cover.
//!
//! The Toeplitz hash (Microsoft "RSS hashing functions") XORs, for every set
//! bit `k` of the input, the 32 key bits starting at bit `k`. The result is
//! linear in the input, so each input byte's contribution depends only on
//! its position and value and can be precomputed.

use crate::parse::{Fragment, ParsedPacket, L3};
use crate::wire::protocol;

/// Microsoft's default RSS key, used in its verification suite and by most
/// NIC drivers (DPDK's `rss_intel_key`).
pub const MS_RSS_KEY: [u8; 40] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
    0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
    0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
];

/// 0x6d5a repeated (Woo & Park, "Scalable TCP Session Monitoring with
/// Symmetric Receive-side Scaling", 2012). With a 16-bit period every input
/// bit's key window depends only on its position mod 16, so the hash is an
/// XOR of per-16-bit-word terms and swapping source and destination (address
/// with address, port with port) leaves it unchanged: both directions of a
/// flow reach the same queue. The price is weaker spreading: the hash cannot
/// tell which word came from where.
pub const SYMMETRIC_RSS_KEY: [u8; 40] = [
    0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
    0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
    0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
];

/// The longest input a 40-byte (320-bit) key can hash: 320 - 32 bits, which
/// is exactly an IPv6 4-tuple (16 + 16 + 2 + 2).
pub const MAX_INPUT_LEN: usize = 36;

/// A Toeplitz hasher for one key: `table[i][v]` is the contribution of byte
/// value `v` at input position `i`. 36 KiB; build it once per key, e.g. in a
/// `static` since [`Toeplitz::new`] is `const`.
#[derive(Clone)]
pub struct Toeplitz {
    table: [[u32; 256]; MAX_INPUT_LEN],
}

impl core::fmt::Debug for Toeplitz {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Toeplitz").finish_non_exhaustive()
    }
}

impl Toeplitz {
    /// Precomputes the per-byte contributions of `key`.
    pub const fn new(key: &[u8; 40]) -> Toeplitz {
        let mut table = [[0u32; 256]; MAX_INPUT_LEN];
        let mut i = 0;
        while i < MAX_INPUT_LEN {
            // Key bits 8i .. 8i+39: the 32-bit windows for the byte's 8 bits.
            let span = (key[i] as u64) << 32
                | (key[i + 1] as u64) << 24
                | (key[i + 2] as u64) << 16
                | (key[i + 3] as u64) << 8
                | key[i + 4] as u64;
            let mut windows = [0u32; 8];
            let mut b = 0;
            while b < 8 {
                // Bit b counts from the byte's most significant bit.
                windows[b] = (span >> (8 - b)) as u32;
                b += 1;
            }
            let mut v = 0;
            while v < 256 {
                let mut h = 0u32;
                let mut b = 0;
                while b < 8 {
                    if v & (0x80 >> b) != 0 {
                        h ^= windows[b];
                    }
                    b += 1;
                }
                table[i][v] = h;
                v += 1;
            }
            i += 1;
        }
        Toeplitz { table }
    }

    /// XORs the contributions of `bytes` placed at input position `pos`.
    #[inline(always)]
    fn mix(&self, mut h: u32, pos: usize, bytes: &[u8]) -> u32 {
        for (row, &b) in self.table[pos..].iter().zip(bytes) {
            h ^= row[usize::from(b)];
        }
        h
    }

    /// The hash of `input`; bytes past [`MAX_INPUT_LEN`] are ignored.
    #[inline]
    pub fn hash(&self, input: &[u8]) -> u32 {
        self.mix(0, 0, input)
    }

    /// IPv4 4-tuple: source address, destination address, source port,
    /// destination port, as the NIC concatenates them.
    #[inline]
    pub fn hash_ipv4(&self, src: [u8; 4], dst: [u8; 4], src_port: u16, dst_port: u16) -> u32 {
        let h = self.hash_ipv4_addrs(src, dst);
        let h = self.mix(h, 8, &src_port.to_be_bytes());
        self.mix(h, 10, &dst_port.to_be_bytes())
    }

    /// IPv4 2-tuple: source and destination address.
    #[inline]
    pub fn hash_ipv4_addrs(&self, src: [u8; 4], dst: [u8; 4]) -> u32 {
        let h = self.mix(0, 0, &src);
        self.mix(h, 4, &dst)
    }

    /// IPv6 4-tuple.
    #[inline]
    pub fn hash_ipv6(&self, src: [u8; 16], dst: [u8; 16], src_port: u16, dst_port: u16) -> u32 {
        let h = self.hash_ipv6_addrs(src, dst);
        let h = self.mix(h, 32, &src_port.to_be_bytes());
        self.mix(h, 34, &dst_port.to_be_bytes())
    }

    /// IPv6 2-tuple.
    #[inline]
    pub fn hash_ipv6_addrs(&self, src: [u8; 16], dst: [u8; 16]) -> u32 {
        let h = self.mix(0, 0, &src);
        self.mix(h, 16, &dst)
    }

    /// The hash of a connection's key, equal to `hash_l3l4` of any of its unfragmented packets
    /// in either direction (the key is symmetric; so is the RSS key this is used with). The
    /// standby of an HA pair places synced flows with it.
    #[inline]
    pub fn hash_key(&self, k: &crate::flow::FlowKey) -> u32 {
        let four_tuple = matches!(k.proto, protocol::TCP | protocol::UDP);
        if k.is_ipv6 {
            if four_tuple {
                self.hash_ipv6(k.lo_addr, k.hi_addr, k.lo_port, k.hi_port)
            } else {
                self.hash_ipv6_addrs(k.lo_addr, k.hi_addr)
            }
        } else {
            let v4 = |a: &[u8; 16]| [a[0], a[1], a[2], a[3]];
            if four_tuple {
                self.hash_ipv4(v4(&k.lo_addr), v4(&k.hi_addr), k.lo_port, k.hi_port)
            } else {
                self.hash_ipv4_addrs(v4(&k.lo_addr), v4(&k.hi_addr))
            }
        }
    }

    /// The hash a NIC configured for IP + TCP + UDP RSS computes: the
    /// 4-tuple for unfragmented TCP and UDP, the address 2-tuple for every
    /// other IP packet (first fragments included, since later fragments
    /// cannot carry ports and must reach the same queue), and 0 for non-IP,
    /// which NICs deliver to queue 0 unhashed.
    #[inline]
    pub fn hash_l3l4(&self, p: &ParsedPacket) -> u32 {
        let four_tuple =
            p.fragment == Fragment::None && matches!(p.proto, protocol::TCP | protocol::UDP);
        match p.l3 {
            L3::Ipv4 if four_tuple => {
                self.hash_ipv4(p.src_v4(), p.dst_v4(), p.src_port, p.dst_port)
            }
            L3::Ipv4 => self.hash_ipv4_addrs(p.src_v4(), p.dst_v4()),
            L3::Ipv6 if four_tuple => self.hash_ipv6(p.src, p.dst, p.src_port, p.dst_port),
            L3::Ipv6 => self.hash_ipv6_addrs(p.src, p.dst),
            L3::Other => 0,
        }
    }
}

/// The Toeplitz hash computed bit by bit as the specification describes it:
/// slide a 32-bit window along the key, XORing it in for each set input bit.
/// Slow; for checking [`Toeplitz`]. Bytes past [`MAX_INPUT_LEN`] are ignored.
pub fn toeplitz_reference(key: &[u8; 40], input: &[u8]) -> u32 {
    let mut result = 0u32;
    let mut window = u32::from_be_bytes([key[0], key[1], key[2], key[3]]);
    for (i, &byte) in input.iter().take(MAX_INPUT_LEN).enumerate() {
        for b in 0..8 {
            if byte & (0x80 >> b) != 0 {
                result ^= window;
            }
            let next = 32 + i * 8 + b;
            let bit = key.get(next / 8).map_or(0, |k| (k >> (7 - next % 8)) & 1);
            window = (window << 1) | u32::from(bit);
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    static MS: Toeplitz = Toeplitz::new(&MS_RSS_KEY);

    /// Microsoft, "Verifying the RSS Hash Calculation": (source, source port,
    /// destination, destination port, IPv4-only hash, IPv4-with-TCP hash).
    const V4_VECTORS: [(&str, u16, &str, u16, u32, u32); 5] = [
        (
            "66.9.149.187",
            2794,
            "161.142.100.80",
            1766,
            0x323e_8fc2,
            0x51cc_c178,
        ),
        (
            "199.92.111.2",
            14230,
            "65.69.140.83",
            4739,
            0xd718_262a,
            0xc626_b0ea,
        ),
        (
            "24.19.198.95",
            12898,
            "12.22.207.184",
            38024,
            0xd2d0_a5de,
            0x5c2b_394a,
        ),
        (
            "38.27.205.30",
            48228,
            "209.142.163.6",
            2217,
            0x8298_9176,
            0xafc7_327f,
        ),
        (
            "153.39.163.191",
            44251,
            "202.188.127.2",
            1303,
            0x5d18_09c5,
            0x10e8_28a2,
        ),
    ];

    /// The same page's IPv6 rows (IPv6-only and IPv6-with-TCP hashes).
    const V6_VECTORS: [(&str, u16, &str, u16, u32, u32); 3] = [
        (
            "3ffe:2501:200:1fff::7",
            2794,
            "3ffe:2501:200:3::1",
            1766,
            0x2cc1_8cd5,
            0x4020_7d3d,
        ),
        (
            "3ffe:501:8::260:97ff:fe40:efab",
            14230,
            "ff02::1",
            4739,
            0x0f0c_461c,
            0xdde5_1bbf,
        ),
        (
            "3ffe:1900:4545:3:200:f8ff:fe21:67cf",
            44251,
            "fe80::200:f8ff:fe21:67cf",
            38024,
            0x4b61_e985,
            0x02d1_feef,
        ),
    ];

    fn v4(s: &str) -> [u8; 4] {
        s.parse::<Ipv4Addr>().unwrap().octets()
    }

    fn v6(s: &str) -> [u8; 16] {
        s.parse::<Ipv6Addr>().unwrap().octets()
    }

    fn tuple(src: &[u8], dst: &[u8], sport: u16, dport: u16) -> Vec<u8> {
        let mut v = [src, dst].concat();
        v.extend_from_slice(&sport.to_be_bytes());
        v.extend_from_slice(&dport.to_be_bytes());
        v
    }

    /// xorshift64: deterministic and dependency-free.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn bytes<const N: usize>(&mut self) -> [u8; N] {
            let mut out = [0u8; N];
            for b in &mut out {
                *b = self.next() as u8;
            }
            out
        }
    }

    #[test]
    fn microsoft_ipv4_vectors() {
        for (src, sport, dst, dport, h2, h4) in V4_VECTORS {
            let (s, d) = (v4(src), v4(dst));
            assert_eq!(MS.hash_ipv4_addrs(s, d), h2, "{src} -> {dst}");
            assert_eq!(MS.hash_ipv4(s, d, sport, dport), h4, "{src} -> {dst}");
            let input = tuple(&s, &d, sport, dport);
            assert_eq!(MS.hash(&input), h4);
            assert_eq!(toeplitz_reference(&MS_RSS_KEY, &input), h4);
            assert_eq!(toeplitz_reference(&MS_RSS_KEY, &input[..8]), h2);
        }
    }

    #[test]
    fn microsoft_ipv6_vectors() {
        for (src, sport, dst, dport, h2, h4) in V6_VECTORS {
            let (s, d) = (v6(src), v6(dst));
            assert_eq!(MS.hash_ipv6_addrs(s, d), h2, "{src} -> {dst}");
            assert_eq!(MS.hash_ipv6(s, d, sport, dport), h4, "{src} -> {dst}");
            let input = tuple(&s, &d, sport, dport);
            assert_eq!(MS.hash(&input), h4);
            assert_eq!(toeplitz_reference(&MS_RSS_KEY, &input), h4);
            assert_eq!(toeplitz_reference(&MS_RSS_KEY, &input[..32]), h2);
        }
    }

    #[test]
    fn symmetric_key_is_symmetric() {
        let t = Toeplitz::new(&SYMMETRIC_RSS_KEY);
        let mut rng = Rng(0x0123_4567_89ab_cdef);
        for _ in 0..2000 {
            let (a4, b4): ([u8; 4], [u8; 4]) = (rng.bytes(), rng.bytes());
            let (a6, b6): ([u8; 16], [u8; 16]) = (rng.bytes(), rng.bytes());
            let (pa, pb) = (rng.next() as u16, rng.next() as u16);
            assert_eq!(t.hash_ipv4(a4, b4, pa, pb), t.hash_ipv4(b4, a4, pb, pa));
            assert_eq!(t.hash_ipv4_addrs(a4, b4), t.hash_ipv4_addrs(b4, a4));
            assert_eq!(t.hash_ipv6(a6, b6, pa, pb), t.hash_ipv6(b6, a6, pb, pa));
            assert_eq!(t.hash_ipv6_addrs(a6, b6), t.hash_ipv6_addrs(b6, a6));
            let fwd = tuple(&a4, &b4, pa, pb);
            let rev = tuple(&b4, &a4, pb, pa);
            assert_eq!(
                toeplitz_reference(&SYMMETRIC_RSS_KEY, &fwd),
                toeplitz_reference(&SYMMETRIC_RSS_KEY, &rev)
            );
        }
        // The Microsoft key, by contrast, is direction-sensitive.
        let (s, d) = (v4(V4_VECTORS[0].0), v4(V4_VECTORS[0].2));
        assert_ne!(
            MS.hash_ipv4(s, d, 2794, 1766),
            MS.hash_ipv4(d, s, 1766, 2794)
        );
    }

    #[test]
    fn table_matches_reference() {
        let mut rng = Rng(0xdead_beef_cafe_f00d);
        for round in 0..300 {
            let key: [u8; 40] = if round % 3 == 0 {
                MS_RSS_KEY
            } else {
                rng.bytes()
            };
            let t = Toeplitz::new(&key);
            let input: [u8; 40] = rng.bytes();
            for len in [0, 1, 4, 8, 12, 13, 32, 35, 36, 40] {
                assert_eq!(
                    t.hash(&input[..len]),
                    toeplitz_reference(&key, &input[..len]),
                    "key {key:02x?} len {len}"
                );
            }
        }
    }

    #[test]
    fn bytes_past_36_are_ignored() {
        let input = [0xffu8; 40];
        assert_eq!(MS.hash(&input), MS.hash(&input[..MAX_INPUT_LEN]));
        assert_eq!(
            toeplitz_reference(&MS_RSS_KEY, &input),
            toeplitz_reference(&MS_RSS_KEY, &input[..MAX_INPUT_LEN])
        );
    }

    #[test]
    fn const_and_runtime_tables_agree() {
        let runtime = Toeplitz::new(&MS_RSS_KEY);
        assert!(runtime.table == MS.table);
        assert_eq!(MS.hash(&[]), 0);
    }

    #[test]
    fn l3l4_picks_the_nic_tuple() {
        let (src, sport, dst, dport, h2, h4) = V4_VECTORS[0];
        let mut p = ParsedPacket {
            l3: L3::Ipv4,
            proto: protocol::TCP,
            src_port: sport,
            dst_port: dport,
            ..ParsedPacket::EMPTY
        };
        p.src[..4].copy_from_slice(&v4(src));
        p.dst[..4].copy_from_slice(&v4(dst));
        assert_eq!(MS.hash_l3l4(&p), h4);
        p.proto = protocol::UDP;
        assert_eq!(MS.hash_l3l4(&p), h4);
        for frag in [Fragment::First, Fragment::Later] {
            assert_eq!(
                MS.hash_l3l4(&ParsedPacket {
                    fragment: frag,
                    ..p
                }),
                h2
            );
        }
        for proto in [protocol::ICMP, protocol::ESP, 132] {
            assert_eq!(MS.hash_l3l4(&ParsedPacket { proto, ..p }), h2);
        }

        let (src, sport, dst, dport, h2, h4) = V6_VECTORS[2];
        let p = ParsedPacket {
            l3: L3::Ipv6,
            proto: protocol::TCP,
            src: v6(src),
            dst: v6(dst),
            src_port: sport,
            dst_port: dport,
            ..ParsedPacket::EMPTY
        };
        assert_eq!(MS.hash_l3l4(&p), h4);
        let icmp = ParsedPacket {
            proto: protocol::ICMPV6,
            ..p
        };
        assert_eq!(MS.hash_l3l4(&icmp), h2);
        assert_eq!(MS.hash_l3l4(&ParsedPacket::EMPTY), 0);
    }
}
