//! IPv6 headers (RFC 8200) and the extension-header chain.
//!
//! Owns: the fixed 40-byte header, payload-length validation, and a bounded
//! walk over extension headers to the upper-layer protocol, recording any
//! fragment header on the way.
//!
//! Must never: follow more than [`MAX_EXT_HEADERS`] extension headers (a long
//! chain is a known evasion and CPU-exhaustion vector, RFC 7112 / RFC 9098),
//! look inside ESP, interpret bytes after a non-first fragment header as
//! headers, or read past `payload_len`.

use super::{be16, be32, protocol, Error, Field};

mod field {
    use super::Field;
    pub const VER_TC_FLOW: Field = 0..4;
    pub const LENGTH: Field = 4..6;
    pub const NXT_HDR: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC_ADDR: Field = 8..24;
    pub const DST_ADDR: Field = 24..40;
}

/// Length of the fixed header.
pub const HEADER_LEN: usize = field::DST_ADDR.end;

/// The longest extension-header chain [`Packet::walk_ext_headers`] follows.
/// Real traffic rarely carries more than three; eight leaves room for
/// HBH + DST + RH + FRAG + AH + DST with slack.
pub const MAX_EXT_HEADERS: usize = 8;

/// Layout shared by hop-by-hop, routing, destination options and other
/// RFC 6564-style headers: next header, then length in 8-octet units not
/// counting the first 8 octets.
mod ext_field {
    pub const NXT_HDR: usize = 0;
    pub const LENGTH: usize = 1;
}

/// Fragment header layout (RFC 8200 section 4.5).
mod frag_field {
    use super::Field;
    pub const OFF_M: Field = 2..4;
    pub const IDENT: Field = 4..8;
}
const FRAG_HEADER_LEN: usize = frag_field::IDENT.end;

/// A read-only view of an IPv6 header and the packet it heads.
#[derive(Debug, Clone, Copy)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

/// What a fragment header said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragmentInfo {
    /// Offset of this fragment's data in bytes.
    pub offset: u16,
    /// The M (more fragments) flag.
    pub more: bool,
    pub ident: u32,
}

impl FragmentInfo {
    /// An atomic fragment (offset 0, M clear) carries a whole packet and is
    /// processed as unfragmented (RFC 6946 section 4).
    #[inline]
    pub fn is_atomic(&self) -> bool {
        self.offset == 0 && !self.more
    }
}

/// The outcome of walking the extension-header chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtChain {
    /// The Next Header value where the walk stopped: the upper-layer protocol,
    /// ESP (50), No Next Header (59), or, for a non-first fragment, the
    /// protocol of the fragmented packet.
    pub protocol: u8,
    /// Offset from the start of the IPv6 header to where the walk stopped
    /// (the upper-layer header, or a non-first fragment's data).
    pub offset: usize,
    /// Number of extension headers walked.
    pub count: u8,
    pub fragment: Option<FragmentInfo>,
}

impl<T: AsRef<[u8]>> Packet<T> {
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps `buffer` after checking: 40 bytes present (`Truncated`), version
    /// 6 (`BadVersion`), and 40 + payload length within the buffer
    /// (`Truncated`). The buffer may be longer (Ethernet padding).
    ///
    /// A payload length of zero with a hop-by-hop Jumbo Payload option (RFC
    /// 2675) is treated as an empty payload: jumbograms cannot cross an
    /// Ethernet link.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Like [`Packet::new_checked`] but for a packet known to be cut short
    /// (quoted inside an ICMPv6 error): `payload_len` may exceed the buffer,
    /// and [`Packet::packet_bytes`] then ends at the buffer.
    #[inline]
    pub fn new_checked_quoted(buffer: T) -> Result<Self, Error> {
        let packet = Self::new_unchecked(buffer);
        let b = packet.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if b[0] >> 4 != 6 {
            return Err(Error::BadVersion);
        }
        Ok(packet)
    }

    #[inline]
    pub fn check_len(&self) -> Result<(), Error> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if b[0] >> 4 != 6 {
            return Err(Error::BadVersion);
        }
        if HEADER_LEN + usize::from(self.payload_len()) > b.len() {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[0] >> 4
    }

    #[inline]
    pub fn traffic_class(&self) -> u8 {
        ((be32(self.buffer.as_ref(), field::VER_TC_FLOW.start) >> 20) & 0xff) as u8
    }

    #[inline]
    pub fn flow_label(&self) -> u32 {
        be32(self.buffer.as_ref(), field::VER_TC_FLOW.start) & 0x000f_ffff
    }

    /// Length of everything after the fixed header, extension headers included.
    #[inline]
    pub fn payload_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::LENGTH.start)
    }

    /// The Next Header field of the fixed header.
    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NXT_HDR]
    }

    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    #[inline]
    pub fn src_addr(&self) -> [u8; 16] {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.buffer.as_ref()[field::SRC_ADDR]);
        a
    }

    #[inline]
    pub fn dst_addr(&self) -> [u8; 16] {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.buffer.as_ref()[field::DST_ADDR]);
        a
    }

    /// Header plus payload, bounded by `payload_len` rather than the buffer
    /// (and by the buffer too, for a quoted packet).
    #[inline]
    pub fn packet_bytes(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        let end = (HEADER_LEN + usize::from(self.payload_len())).min(b.len());
        &b[..end]
    }

    /// Everything after the fixed header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.packet_bytes()[HEADER_LEN..]
    }

    /// Follows the extension-header chain to the upper layer.
    ///
    /// Errors: `Truncated` when a header extends past the payload,
    /// `TooManyHeaders` past [`MAX_EXT_HEADERS`], and `BadHeaderOrder` for a
    /// hop-by-hop header that is not first (RFC 8200 section 4.3 allows it
    /// only immediately after the IPv6 header).
    #[inline]
    pub fn walk_ext_headers(&self) -> Result<ExtChain, Error> {
        walk(self.packet_bytes(), self.next_header())
    }
}

/// Whether `nh` names a header [`walk`] steps over. ESP (50) and No Next
/// Header (59) end the chain: nothing after them is readable as a header.
#[inline]
pub fn is_ext_header(nh: u8) -> bool {
    matches!(
        nh,
        protocol::HOP_BY_HOP
            | protocol::IPV6_ROUTING
            | protocol::IPV6_FRAGMENT
            | protocol::IPV6_DST_OPTS
            | protocol::AH
            | protocol::MOBILITY
            | protocol::HIP
            | protocol::SHIM6
    )
}

/// The chain walk over `packet` (fixed header included, already bounded by
/// the payload length), starting from the fixed header's Next Header.
#[inline]
fn walk(packet: &[u8], first: u8) -> Result<ExtChain, Error> {
    let mut chain = ExtChain {
        protocol: first,
        offset: HEADER_LEN,
        count: 0,
        fragment: None,
    };
    while is_ext_header(chain.protocol) {
        if chain.protocol == protocol::HOP_BY_HOP && chain.count != 0 {
            return Err(Error::BadHeaderOrder);
        }
        if usize::from(chain.count) == MAX_EXT_HEADERS {
            return Err(Error::TooManyHeaders);
        }
        let rest = packet.get(chain.offset..).unwrap_or(&[]);
        if rest.len() < 2 {
            return Err(Error::Truncated);
        }
        let len = match chain.protocol {
            protocol::IPV6_FRAGMENT => FRAG_HEADER_LEN,
            // AH counts 4-octet units minus 2 (RFC 4302 section 2.2).
            protocol::AH => (usize::from(rest[ext_field::LENGTH]) + 2) * 4,
            _ => (usize::from(rest[ext_field::LENGTH]) + 1) * 8,
        };
        if rest.len() < len {
            return Err(Error::Truncated);
        }
        chain.count += 1;
        let current = chain.protocol;
        chain.protocol = rest[ext_field::NXT_HDR];
        chain.offset += len;
        if current == protocol::IPV6_FRAGMENT {
            let off_m = be16(rest, frag_field::OFF_M.start);
            let info = FragmentInfo {
                offset: off_m & 0xfff8,
                more: off_m & 1 != 0,
                ident: be32(rest, frag_field::IDENT.start),
            };
            chain.fragment = Some(info);
            if info.offset != 0 {
                // A later fragment holds a slice of the fragmentable part;
                // its first bytes are data, not a header.
                break;
            }
        }
    }
    Ok(chain)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// TCP SYN fd00:99::1:42972 -> fd00:98::3:8081
    const IPV6_SYN: [u8; 94] = [
        0xda, 0x6f, 0x93, 0x2a, 0x1d, 0xd4, 0x6e, 0x53, 0x8b, 0xdf, 0x1c, 0x91, 0x86, 0xdd, 0x60,
        0x0f, 0x6a, 0x23, 0x00, 0x28, 0x06, 0x40, 0xfd, 0x00, 0x00, 0x99, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xfd, 0x00, 0x00, 0x98, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xa7, 0xdc, 0x1f, 0x91, 0x57, 0xf4,
        0x06, 0x13, 0x00, 0x00, 0x00, 0x00, 0xa0, 0x02, 0xfc, 0x94, 0xfb, 0x64, 0x00, 0x00, 0x02,
        0x04, 0x04, 0xc4, 0x04, 0x02, 0x08, 0x0a, 0xf2, 0x1f, 0x3b, 0xa2, 0x00, 0x00, 0x00, 0x00,
        0x01, 0x03, 0x03, 0x0a,
    ];
    /// UDP to fd00:99::2:7777 with hop-by-hop (PadN) and destination-options headers set via IPV6_HOPOPTS / IPV6_DSTOPTS
    const HBH_DSTOPT: [u8; 81] = [
        0xda, 0x6f, 0x93, 0x2a, 0x1d, 0xd4, 0x6e, 0x53, 0x8b, 0xdf, 0x1c, 0x91, 0x86, 0xdd, 0x60,
        0x02, 0x48, 0x1e, 0x00, 0x1b, 0x00, 0x40, 0xfd, 0x00, 0x00, 0x99, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xfd, 0x00, 0x00, 0x99, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x3c, 0x00, 0x01, 0x04, 0x00, 0x00,
        0x00, 0x00, 0x11, 0x00, 0x1e, 0x00, 0x01, 0x02, 0x00, 0x00, 0xcb, 0xd1, 0x1e, 0x61, 0x00,
        0x0b, 0x40, 0xf6, 0x65, 0x78, 0x74,
    ];
    /// MLDv2 report to ff02::16 with a hop-by-hop Router Alert option
    const MLD_REPORT: [u8; 90] = [
        0x33, 0x33, 0x00, 0x00, 0x00, 0x16, 0x6e, 0x53, 0x8b, 0xdf, 0x1c, 0x91, 0x86, 0xdd, 0x60,
        0x00, 0x00, 0x00, 0x00, 0x24, 0x00, 0x01, 0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x6c, 0x53, 0x8b, 0xff, 0xfe, 0xdf, 0x1c, 0x91, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x16, 0x3a, 0x00, 0x05, 0x02, 0x00, 0x00,
        0x01, 0x00, 0x8f, 0x00, 0x5c, 0x43, 0x00, 0x00, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00, 0xff,
        0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x03,
    ];
    /// UDP through a segment routing header (routing type 4) inserted by seg6 inline mode
    const SRH: [u8; 104] = [
        0xda, 0x6f, 0x93, 0x2a, 0x1d, 0xd4, 0x6e, 0x53, 0x8b, 0xdf, 0x1c, 0x91, 0x86, 0xdd, 0x60,
        0x09, 0xa2, 0x9d, 0x00, 0x32, 0x2b, 0x40, 0xfd, 0x00, 0x00, 0x99, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xfd, 0x00, 0x00, 0x99, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x11, 0x04, 0x04, 0x01, 0x01, 0x00,
        0x00, 0x00, 0xfd, 0x00, 0x00, 0x97, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x05, 0xfd, 0x00, 0x00, 0x99, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x02, 0xe6, 0xf8, 0x1e, 0x65, 0x00, 0x0a, 0xfb, 0x52, 0x78, 0x0a,
    ];
    /// Last fragment (offset 2896) of a 3008-byte ICMPv6 echo request
    const FRAG6_LAST: [u8; 174] = [
        0xda, 0x6f, 0x93, 0x2a, 0x1d, 0xd4, 0x6e, 0x53, 0x8b, 0xdf, 0x1c, 0x91, 0x86, 0xdd, 0x60,
        0x02, 0x63, 0x8e, 0x00, 0x78, 0x2c, 0x40, 0xfd, 0x00, 0x00, 0x99, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xfd, 0x00, 0x00, 0x99, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x3a, 0x00, 0x0b, 0x50, 0x99, 0xe8,
        0xeb, 0x4b, 0x48, 0x49, 0x4a, 0x4b, 0x4c, 0x4d, 0x4e, 0x4f, 0x50, 0x51, 0x52, 0x53, 0x54,
        0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x5b, 0x5c, 0x5d, 0x5e, 0x5f, 0x60, 0x61, 0x62, 0x63,
        0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f, 0x70, 0x71, 0x72,
        0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x7b, 0x7c, 0x7d, 0x7e, 0x7f, 0x80, 0x81,
        0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8b, 0x8c, 0x8d, 0x8e, 0x8f, 0x90,
        0x91, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9e, 0x9f,
        0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae,
        0xaf, 0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7,
    ];

    fn ip(frame: &[u8]) -> &[u8] {
        &frame[14..]
    }

    #[test]
    fn syn_no_ext() {
        let p = Packet::new_checked(ip(&IPV6_SYN)).unwrap();
        assert_eq!(p.version(), 6);
        assert_eq!(p.payload_len(), 40);
        assert_eq!(p.next_header(), protocol::TCP);
        assert_eq!(p.hop_limit(), 64);
        assert_eq!(p.flow_label(), 0xf6a23);
        assert_eq!(p.traffic_class(), 0);
        assert_eq!(p.src_addr()[..2], [0xfd, 0x00]);
        assert_eq!(p.dst_addr()[15], 3);
        let c = p.walk_ext_headers().unwrap();
        assert_eq!(c.protocol, protocol::TCP);
        assert_eq!(c.offset, 40);
        assert_eq!(c.count, 0);
        assert_eq!(c.fragment, None);
    }

    #[test]
    fn hop_by_hop_and_dest_opts() {
        let p = Packet::new_checked(ip(&HBH_DSTOPT)).unwrap();
        let c = p.walk_ext_headers().unwrap();
        assert_eq!(c.protocol, protocol::UDP);
        assert_eq!(c.offset, 56);
        assert_eq!(c.count, 2);
    }

    #[test]
    fn mld_router_alert() {
        let p = Packet::new_checked(ip(&MLD_REPORT)).unwrap();
        let c = p.walk_ext_headers().unwrap();
        assert_eq!(c.protocol, protocol::ICMPV6);
        assert_eq!(c.offset, 48);
        assert_eq!(c.count, 1);
    }

    #[test]
    fn segment_routing_header() {
        let p = Packet::new_checked(ip(&SRH)).unwrap();
        let c = p.walk_ext_headers().unwrap();
        // SRH length 4 => 40 bytes: 8 fixed + two 16-byte segments.
        assert_eq!(c.protocol, protocol::UDP);
        assert_eq!(c.offset, 80);
        assert_eq!(c.count, 1);
    }

    #[test]
    fn later_fragment_stops_walk() {
        let p = Packet::new_checked(ip(&FRAG6_LAST)).unwrap();
        let c = p.walk_ext_headers().unwrap();
        assert_eq!(c.protocol, protocol::ICMPV6);
        assert_eq!(c.offset, 48);
        let f = c.fragment.unwrap();
        assert_eq!(f.offset, 2896);
        assert!(!f.more);
        assert!(!f.is_atomic());
        assert_eq!(f.ident, 0x99e8_eb4b);
    }

    #[test]
    fn truncated_ext_header() {
        // Shrink the payload length so the destination options header is cut.
        let mut f = HBH_DSTOPT;
        f[19] = 12;
        let p = Packet::new_checked(ip(&f)).unwrap();
        assert_eq!(p.walk_ext_headers(), Err(Error::Truncated));
        // A hop-by-hop length byte pointing past the packet.
        let mut f = HBH_DSTOPT;
        f[55] = 200;
        let p = Packet::new_checked(ip(&f)).unwrap();
        assert_eq!(p.walk_ext_headers(), Err(Error::Truncated));
    }

    #[test]
    fn hop_by_hop_not_first() {
        // Make the destination options header claim hop-by-hop comes next.
        let mut f = HBH_DSTOPT;
        f[62] = protocol::HOP_BY_HOP;
        let p = Packet::new_checked(ip(&f)).unwrap();
        assert_eq!(p.walk_ext_headers(), Err(Error::BadHeaderOrder));
    }

    #[test]
    fn chain_bound() {
        let mut pkt = [0u8; 40 + 8 * 10];
        pkt[0] = 0x60;
        pkt[5] = 80;
        pkt[6] = protocol::IPV6_DST_OPTS;
        for i in 0..10 {
            pkt[40 + i * 8] = protocol::IPV6_DST_OPTS;
        }
        let p = Packet::new_checked(&pkt[..]).unwrap();
        assert_eq!(p.walk_ext_headers(), Err(Error::TooManyHeaders));
        // Exactly MAX_EXT_HEADERS is fine.
        pkt[40 + 7 * 8] = protocol::TCP;
        let c = Packet::new_checked(&pkt[..])
            .unwrap()
            .walk_ext_headers()
            .unwrap();
        assert_eq!(c.count as usize, MAX_EXT_HEADERS);
        assert_eq!(c.offset, 40 + 64);
    }

    #[test]
    fn ah_length_units() {
        // AH with payload length 4 => (4 + 2) * 4 = 24 bytes, then UDP.
        let mut pkt = [0u8; 40 + 24 + 8];
        pkt[0] = 0x60;
        pkt[5] = 32;
        pkt[6] = protocol::AH;
        pkt[40] = protocol::UDP;
        pkt[41] = 4;
        let c = Packet::new_checked(&pkt[..])
            .unwrap()
            .walk_ext_headers()
            .unwrap();
        assert_eq!((c.protocol, c.offset), (protocol::UDP, 64));
    }

    #[test]
    fn esp_and_no_next_stop() {
        let mut pkt = [0u8; 48];
        pkt[0] = 0x60;
        pkt[5] = 8;
        for nh in [protocol::ESP, protocol::IPV6_NO_NEXT] {
            pkt[6] = nh;
            let c = Packet::new_checked(&pkt[..])
                .unwrap()
                .walk_ext_headers()
                .unwrap();
            assert_eq!((c.protocol, c.offset, c.count), (nh, 40, 0));
        }
    }

    #[test]
    fn quoted_packet() {
        let quote = &ip(&HBH_DSTOPT)[..60];
        assert_eq!(Packet::new_checked(quote).err(), Some(Error::Truncated));
        let p = Packet::new_checked_quoted(quote).unwrap();
        assert_eq!(p.packet_bytes().len(), 60);
        let c = p.walk_ext_headers().unwrap();
        assert_eq!((c.protocol, c.offset), (protocol::UDP, 56));
        assert_eq!(
            Packet::new_checked_quoted(&ip(&HBH_DSTOPT)[..39]).err(),
            Some(Error::Truncated)
        );
    }

    #[test]
    fn length_errors() {
        let h = ip(&IPV6_SYN);
        assert_eq!(Packet::new_checked(&h[..39]).err(), Some(Error::Truncated));
        assert_eq!(Packet::new_checked(&h[..79]).err(), Some(Error::Truncated));
        let mut f = IPV6_SYN;
        f[14] = 0x40;
        assert_eq!(Packet::new_checked(ip(&f)).err(), Some(Error::BadVersion));
    }
}
