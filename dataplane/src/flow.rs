//! Direction-independent flow identity.
//!
//! Owns: [`FlowKey`], the canonical 5-tuple both directions of a connection
//! map to, and the test telling which direction a packet travels.
//!
//! Must never: allocate, hash (the flow table picks its hasher; RSS lives in
//! `crate::rss`), or hold per-flow state.
//!
//! Canonical order puts the (address, port) endpoint that compares lower
//! first, so a reply, and the packet an ICMP error quotes (see
//! `crate::parse::parse_quoted`), find the same key as the original packet.

use crate::parse::{Fragment, ParsedPacket, L3};

/// A 5-tuple with its two endpoints in canonical order. 38 bytes. The
/// `Default` (all zero) key is a placeholder for preallocated tables.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct FlowKey {
    /// The lower endpoint's address (IPv4 in the first 4 bytes).
    pub lo_addr: [u8; 16],
    pub hi_addr: [u8; 16],
    pub lo_port: u16,
    pub hi_port: u16,
    pub proto: u8,
    pub is_ipv6: bool,
}

impl FlowKey {
    /// Builds the key from two endpoints, also returning whether `src` is
    /// the lower endpoint (the packet travels lo→hi). Equal endpoints count
    /// as lo→hi.
    #[inline]
    pub fn from_endpoints(
        src: [u8; 16],
        src_port: u16,
        dst: [u8; 16],
        dst_port: u16,
        proto: u8,
        is_ipv6: bool,
    ) -> (FlowKey, bool) {
        // Big-endian u128 order is byte-lexicographic order, compared in two instructions
        // instead of a byte loop.
        let lo_to_hi = (u128::from_be_bytes(src), src_port) <= (u128::from_be_bytes(dst), dst_port);
        let ((lo_addr, lo_port), (hi_addr, hi_port)) = if lo_to_hi {
            ((src, src_port), (dst, dst_port))
        } else {
            ((dst, dst_port), (src, src_port))
        };
        let key = FlowKey {
            lo_addr,
            hi_addr,
            lo_port,
            hi_port,
            proto,
            is_ipv6,
        };
        (key, lo_to_hi)
    }

    /// [`FlowKey::from_endpoints`] for IPv4 endpoints given as big-endian values (what
    /// `parse::parse_fast` reads), comparing in registers.
    #[inline(always)]
    pub fn from_v4(src: u32, src_port: u16, dst: u32, dst_port: u16, proto: u8) -> (FlowKey, bool) {
        let lo_to_hi =
            ((src as u64) << 16 | src_port as u64) <= ((dst as u64) << 16 | dst_port as u64);
        let ((lo, lo_port), (hi, hi_port)) = if lo_to_hi {
            ((src, src_port), (dst, dst_port))
        } else {
            ((dst, dst_port), (src, src_port))
        };
        let widen = |a: u32| ((a as u128) << 96).to_be_bytes();
        let key = FlowKey {
            lo_addr: widen(lo),
            hi_addr: widen(hi),
            lo_port,
            hi_port,
            proto,
            is_ipv6: false,
        };
        (key, lo_to_hi)
    }

    /// The key for a parsed packet; `None` for non-IP frames. Ports are the
    /// parser's: TCP/UDP ports, the ICMP echo identifier on both sides, or 0
    /// (non-first fragments, other protocols, ICMP errors).
    #[inline]
    pub fn from_parsed(p: &ParsedPacket) -> Option<FlowKey> {
        Self::from_parsed_directed(p).map(|(key, _)| key)
    }

    /// Like [`FlowKey::from_parsed`], also telling whether the packet travels
    /// lo→hi, with one comparison.
    #[inline]
    pub fn from_parsed_directed(p: &ParsedPacket) -> Option<(FlowKey, bool)> {
        let is_ipv6 = match p.l3 {
            L3::Ipv4 => false,
            L3::Ipv6 => true,
            L3::Other => return None,
        };
        // Fragments are keyed on addresses alone, as NICs hash them (RSS takes only L3 for
        // fragments): a first fragment carries ports, later ones cannot, and a flow's shard must
        // be a function of its key. Reassembly, when it comes, restores the 5-tuple.
        let (sp, dp) = key_ports(p);
        Some(Self::from_endpoints(p.src, sp, p.dst, dp, p.proto, is_ipv6))
    }

    /// Whether `p` (which must belong to this flow) travels from the lower
    /// endpoint to the higher one.
    #[inline]
    pub fn is_lo_to_hi(&self, p: &ParsedPacket) -> bool {
        p.src == self.lo_addr && key_ports(p).0 == self.lo_port
    }
}

/// A connection's 5-tuple in one direction (the sender's first), as policy and events see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuple {
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub src_port: u16,
    pub dst_port: u16,
    pub proto: u8,
    pub ipv6: bool,
}

impl FlowKey {
    /// The tuple as sent by the lo endpoint (`lo_to_hi`) or by the hi endpoint.
    #[inline]
    pub fn directed(&self, lo_to_hi: bool) -> Tuple {
        let (src, dst, src_port, dst_port) = if lo_to_hi {
            (self.lo_addr, self.hi_addr, self.lo_port, self.hi_port)
        } else {
            (self.hi_addr, self.lo_addr, self.hi_port, self.lo_port)
        };
        Tuple {
            src,
            dst,
            src_port,
            dst_port,
            proto: self.proto,
            ipv6: self.is_ipv6,
        }
    }
}

/// The ports a packet contributes to its key: none for fragments.
#[inline(always)]
fn key_ports(p: &ParsedPacket) -> (u16, u16) {
    if p.fragment == Fragment::None {
        (p.src_port, p.dst_port)
    } else {
        (0, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_of_a_datagram_share_one_key_and_one_shard() {
        use crate::rss::{Toeplitz, SYMMETRIC_RSS_KEY};
        let mut first = ParsedPacket::EMPTY;
        first.l3 = L3::Ipv4;
        first.proto = 17;
        first.src[..4].copy_from_slice(&[10, 0, 0, 1]);
        first.dst[..4].copy_from_slice(&[10, 0, 0, 2]);
        first.fragment = Fragment::First;
        first.src_port = 5000;
        first.dst_port = 53;
        let mut later = first;
        later.fragment = Fragment::Later;
        later.src_port = 0;
        later.dst_port = 0;
        let (k1, _) = FlowKey::from_parsed_directed(&first).unwrap();
        let (k2, _) = FlowKey::from_parsed_directed(&later).unwrap();
        assert_eq!(k1, k2);
        let t = Toeplitz::new(&SYMMETRIC_RSS_KEY);
        assert_eq!(t.hash_l3l4(&first), t.hash_l3l4(&later));
    }
    use crate::parse::{parse_frame, parse_quoted};

    /// TCP SYN 10.99.0.1:45478 -> 10.98.0.3:8080
    const IPV4_SYN: [u8; 74] = [
        0xda, 0x6f, 0x93, 0x2a, 0x1d, 0xd4, 0x6e, 0x53, 0x8b, 0xdf, 0x1c, 0x91, 0x08, 0x00, 0x45,
        0x00, 0x00, 0x3c, 0xa4, 0x68, 0x40, 0x00, 0x40, 0x06, 0x81, 0x8b, 0x0a, 0x63, 0x00, 0x01,
        0x0a, 0x62, 0x00, 0x03, 0xb1, 0xa6, 0x1f, 0x90, 0x1a, 0x15, 0x48, 0x7d, 0x00, 0x00, 0x00,
        0x00, 0xa0, 0x02, 0xfb, 0xe0, 0x14, 0xf7, 0x00, 0x00, 0x02, 0x04, 0x04, 0xd8, 0x04, 0x02,
        0x08, 0x0a, 0x1e, 0x25, 0xcc, 0x80, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x0a,
    ];
    /// TCP SYN|ACK 10.98.0.3:8080 -> 10.99.0.1:45478
    const IPV4_SYNACK: [u8; 74] = [
        0x6e, 0x53, 0x8b, 0xdf, 0x1c, 0x91, 0xda, 0x6f, 0x93, 0x2a, 0x1d, 0xd4, 0x08, 0x00, 0x45,
        0x00, 0x00, 0x3c, 0x00, 0x00, 0x40, 0x00, 0x3f, 0x06, 0x26, 0xf4, 0x0a, 0x62, 0x00, 0x03,
        0x0a, 0x63, 0x00, 0x01, 0x1f, 0x90, 0xb1, 0xa6, 0xaa, 0xb5, 0xdf, 0x06, 0x1a, 0x15, 0x48,
        0x7e, 0xa0, 0x12, 0xfe, 0x3c, 0x14, 0xf7, 0x00, 0x00, 0x02, 0x04, 0x04, 0xd8, 0x04, 0x02,
        0x08, 0x0a, 0xb0, 0x92, 0x94, 0xd0, 0x1e, 0x25, 0xcc, 0x80, 0x01, 0x03, 0x03, 0x0a,
    ];
    /// UDP 10.99.0.1:37469 -> 10.98.0.3:53
    const UDP4: [u8; 47] = [
        0xda, 0x6f, 0x93, 0x2a, 0x1d, 0xd4, 0x6e, 0x53, 0x8b, 0xdf, 0x1c, 0x91, 0x08, 0x00, 0x45,
        0x00, 0x00, 0x21, 0x37, 0xfc, 0x40, 0x00, 0x40, 0x11, 0xee, 0x07, 0x0a, 0x63, 0x00, 0x01,
        0x0a, 0x62, 0x00, 0x03, 0x92, 0x5d, 0x00, 0x35, 0x00, 0x0d, 0x14, 0xe7, 0x64, 0x6e, 0x73,
        0x71, 0x0a,
    ];
    /// ICMP port unreachable 10.98.0.3 -> 10.99.0.1 quoting the datagram above
    const PORT_UNREACH4: [u8; 75] = [
        0x6e, 0x53, 0x8b, 0xdf, 0x1c, 0x91, 0xda, 0x6f, 0x93, 0x2a, 0x1d, 0xd4, 0x08, 0x00, 0x45,
        0xc0, 0x00, 0x3d, 0xf0, 0x0c, 0x00, 0x00, 0x3f, 0x01, 0x76, 0x2b, 0x0a, 0x62, 0x00, 0x03,
        0x0a, 0x63, 0x00, 0x01, 0x03, 0x03, 0x73, 0x96, 0x00, 0x00, 0x00, 0x00, 0x45, 0x00, 0x00,
        0x21, 0x37, 0xfc, 0x40, 0x00, 0x3f, 0x11, 0xef, 0x07, 0x0a, 0x63, 0x00, 0x01, 0x0a, 0x62,
        0x00, 0x03, 0x92, 0x5d, 0x00, 0x35, 0x00, 0x0d, 0x14, 0xe7, 0x64, 0x6e, 0x73, 0x71, 0x0a,
    ];
    /// ICMPv6 echo request fd00:99::1 -> fd00:99::2, id 9962
    const ECHO6_REQUEST: [u8; 118] = [
        0xda, 0x6f, 0x93, 0x2a, 0x1d, 0xd4, 0x6e, 0x53, 0x8b, 0xdf, 0x1c, 0x91, 0x86, 0xdd, 0x60,
        0x02, 0x63, 0x8e, 0x00, 0x40, 0x3a, 0x40, 0xfd, 0x00, 0x00, 0x99, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xfd, 0x00, 0x00, 0x99, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x80, 0x00, 0x2b, 0xd0, 0x26, 0xea,
        0x00, 0x01, 0x7b, 0x36, 0x01, 0x6b, 0x00, 0x00, 0x00, 0x00, 0xf3, 0x1e, 0x03, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b,
        0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a,
        0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37,
    ];
    /// ICMPv6 echo reply fd00:99::2 -> fd00:99::1, id 9962
    const ECHO6_REPLY: [u8; 118] = [
        0x6e, 0x53, 0x8b, 0xdf, 0x1c, 0x91, 0xda, 0x6f, 0x93, 0x2a, 0x1d, 0xd4, 0x86, 0xdd, 0x60,
        0x07, 0xfb, 0x4d, 0x00, 0x40, 0x3a, 0x40, 0xfd, 0x00, 0x00, 0x99, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0xfd, 0x00, 0x00, 0x99, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x81, 0x00, 0x2a, 0xd0, 0x26, 0xea,
        0x00, 0x01, 0x7b, 0x36, 0x01, 0x6b, 0x00, 0x00, 0x00, 0x00, 0xf3, 0x1e, 0x03, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b,
        0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a,
        0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37,
    ];

    fn key(frame: &[u8]) -> (FlowKey, bool) {
        FlowKey::from_parsed_directed(&parse_frame(frame).unwrap()).unwrap()
    }

    #[test]
    fn tcp_both_directions_same_key() {
        let (k1, d1) = key(&IPV4_SYN);
        let (k2, d2) = key(&IPV4_SYNACK);
        assert_eq!(k1, k2);
        assert_ne!(d1, d2);
        // 10.98.0.3 < 10.99.0.1, so the server is the lower endpoint.
        assert_eq!(k1.lo_addr[..4], [10, 98, 0, 3]);
        assert_eq!((k1.lo_port, k1.hi_port), (8080, 45478));
        assert_eq!((k1.proto, k1.is_ipv6), (6, false));
        assert!(!d1 && d2);
        assert!(!k1.is_lo_to_hi(&parse_frame(&IPV4_SYN).unwrap()));
        assert!(k1.is_lo_to_hi(&parse_frame(&IPV4_SYNACK).unwrap()));
    }

    #[test]
    fn icmp_echo_both_directions_same_key() {
        let (k1, d1) = key(&ECHO6_REQUEST);
        let (k2, d2) = key(&ECHO6_REPLY);
        assert_eq!(k1, k2);
        assert!(d1 && !d2);
        assert_eq!((k1.lo_port, k1.hi_port), (9962, 9962));
        assert_eq!((k1.proto, k1.is_ipv6), (58, true));
    }

    #[test]
    fn icmp_error_quote_maps_to_original_flow() {
        let (original, _) = key(&UDP4);
        let err = parse_frame(&PORT_UNREACH4).unwrap();
        let quoted =
            parse_quoted(&PORT_UNREACH4[usize::from(err.payload_offset)..], L3::Ipv4).unwrap();
        assert_eq!(FlowKey::from_parsed(&quoted), Some(original));
        // The error itself is a different (ICMP) flow.
        assert_ne!(FlowKey::from_parsed(&err), Some(original));
    }

    #[test]
    fn port_breaks_address_ties() {
        let a = [7u8; 16];
        let (k, d) = FlowKey::from_endpoints(a, 9000, a, 80, 17, true);
        assert_eq!((k.lo_port, k.hi_port), (80, 9000));
        assert!(!d);
        let (k2, d2) = FlowKey::from_endpoints(a, 80, a, 9000, 17, true);
        assert_eq!(k, k2);
        assert!(d2);
        // Identical endpoints: either way is "lo->hi".
        assert!(FlowKey::from_endpoints(a, 5, a, 5, 6, true).1);
    }

    #[test]
    fn random_tuples_are_symmetric() {
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        for _ in 0..1000 {
            let mut a = [0u8; 16];
            let mut b = [0u8; 16];
            a[..8].copy_from_slice(&next().to_be_bytes());
            // Share a prefix half the time so ports decide more often.
            if next() & 1 == 0 {
                b = a;
            }
            b[8..].copy_from_slice(&next().to_be_bytes()[..8]);
            let (pa, pb) = (next() as u16, next() as u16);
            let (k1, d1) = FlowKey::from_endpoints(a, pa, b, pb, 6, true);
            let (k2, d2) = FlowKey::from_endpoints(b, pb, a, pa, 6, true);
            assert_eq!(k1, k2);
            assert!(d1 != d2 || (a, pa) == (b, pb));
        }
    }

    #[test]
    fn non_ip_has_no_key() {
        assert_eq!(FlowKey::from_parsed(&ParsedPacket::EMPTY), None);
    }

    #[test]
    fn compact() {
        assert_eq!(core::mem::size_of::<FlowKey>(), 38);
    }

    #[test]
    fn the_ipv4_shortcut_builds_the_same_key() {
        let w = |a: u32| ((a as u128) << 96).to_be_bytes();
        for (a, ap, b, bp) in [
            (0x0a00_0001u32, 5000u16, 0xc000_0201u32, 443u16),
            (0xc000_0201, 443, 0x0a00_0001, 5000),
            (7, 1, 7, 2),
            (7, 2, 7, 1),
            (7, 9, 7, 9),
            (u32::MAX, 0, 0, u16::MAX),
        ] {
            assert_eq!(
                FlowKey::from_v4(a, ap, b, bp, 17),
                FlowKey::from_endpoints(w(a), ap, w(b), bp, 17, false)
            );
        }
    }
}
