//! ICMPv4 (RFC 792) and ICMPv6 (RFC 4443) messages.
//!
//! Owns: the common 8-byte header layout (type, code, checksum, four bytes
//! whose meaning depends on the type), echo identifier/sequence, and access
//! to the invoking packet quoted by error messages.
//!
//! Must never: parse the quoted packet itself (see `crate::parse` for the
//! lenient parse it needs), require a valid checksum, or treat an
//! informational message as an error message.

use super::{be16, be32, checksum, protocol, Error, Field};

mod field {
    use super::Field;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Field = 2..4;
    /// Echo identifier / unused / pointer / MTU, depending on the type.
    pub const ECHO_IDENT: Field = 4..6;
    pub const ECHO_SEQNO: Field = 6..8;
    pub const REST: Field = 4..8;
}

/// Length of the fixed header every ICMP message carries.
pub const HEADER_LEN: usize = field::REST.end;

/// ICMPv4 message types (IANA "ICMP Type Numbers").
pub mod v4_type {
    pub const ECHO_REPLY: u8 = 0;
    pub const DEST_UNREACHABLE: u8 = 3;
    pub const SOURCE_QUENCH: u8 = 4;
    pub const REDIRECT: u8 = 5;
    pub const ECHO_REQUEST: u8 = 8;
    pub const TIME_EXCEEDED: u8 = 11;
    pub const PARAM_PROBLEM: u8 = 12;
    /// Destination-unreachable code for "fragmentation needed and DF set",
    /// which carries the next-hop MTU (RFC 1191 section 4).
    pub const CODE_FRAG_NEEDED: u8 = 4;
}

/// ICMPv6 message types (IANA "ICMPv6 Type Numbers").
pub mod v6_type {
    pub const DEST_UNREACHABLE: u8 = 1;
    pub const PACKET_TOO_BIG: u8 = 2;
    pub const TIME_EXCEEDED: u8 = 3;
    pub const PARAM_PROBLEM: u8 = 4;
    pub const ECHO_REQUEST: u8 = 128;
    pub const ECHO_REPLY: u8 = 129;
}

/// Which ICMP the bytes belong to; the type numbers differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    V4,
    V6,
}

/// A read-only view of an ICMP message.
#[derive(Debug, Clone, Copy)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
    version: Version,
}

impl<T: AsRef<[u8]>> Packet<T> {
    #[inline]
    pub const fn new_unchecked(buffer: T, version: Version) -> Self {
        Packet { buffer, version }
    }

    /// Wraps a message after checking its 8-byte header is present
    /// (`Truncated`). Every message type has those 8 bytes.
    #[inline]
    pub fn new_checked(buffer: T, version: Version) -> Result<Self, Error> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(Self::new_unchecked(buffer, version))
    }

    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    pub fn version(&self) -> Version {
        self.version
    }

    #[inline]
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    #[inline]
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    /// The type-dependent second word of the header.
    #[inline]
    pub fn rest_of_header(&self) -> u32 {
        be32(self.buffer.as_ref(), field::REST.start)
    }

    /// Echo request or reply (RFC 792 p.14, RFC 4443 section 4).
    #[inline]
    pub fn is_echo(&self) -> bool {
        match self.version {
            Version::V4 => matches!(self.msg_type(), v4_type::ECHO_REQUEST | v4_type::ECHO_REPLY),
            Version::V6 => matches!(self.msg_type(), v6_type::ECHO_REQUEST | v6_type::ECHO_REPLY),
        }
    }

    /// Whether the message quotes an invoking packet after its header.
    /// ICMPv6 marks errors by a clear high type bit (RFC 4443 section 2.1);
    /// ICMPv4 has no such rule, so the quoting types are listed.
    #[inline]
    pub fn is_error(&self) -> bool {
        match self.version {
            Version::V4 => matches!(
                self.msg_type(),
                v4_type::DEST_UNREACHABLE
                    | v4_type::SOURCE_QUENCH
                    | v4_type::REDIRECT
                    | v4_type::TIME_EXCEEDED
                    | v4_type::PARAM_PROBLEM
            ),
            Version::V6 => self.msg_type() < 128,
        }
    }

    /// The echo identifier, for echo requests and replies only.
    #[inline]
    pub fn echo_ident(&self) -> Option<u16> {
        self.is_echo()
            .then(|| be16(self.buffer.as_ref(), field::ECHO_IDENT.start))
    }

    /// The echo sequence number, for echo requests and replies only.
    #[inline]
    pub fn echo_seq_no(&self) -> Option<u16> {
        self.is_echo()
            .then(|| be16(self.buffer.as_ref(), field::ECHO_SEQNO.start))
    }

    /// The path MTU an error reports: ICMPv6 Packet Too Big (RFC 4443
    /// section 3.2) or ICMPv4 fragmentation needed (RFC 1191 section 4; zero
    /// from pre-RFC 1191 routers).
    #[inline]
    pub fn mtu(&self) -> Option<u32> {
        match (self.version, self.msg_type(), self.code()) {
            (Version::V6, v6_type::PACKET_TOO_BIG, _) => Some(self.rest_of_header()),
            (Version::V4, v4_type::DEST_UNREACHABLE, v4_type::CODE_FRAG_NEEDED) => Some(u32::from(
                be16(self.buffer.as_ref(), field::ECHO_SEQNO.start),
            )),
            _ => None,
        }
    }

    /// The bytes after the 8-byte header.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }

    /// For error messages, the quoted invoking packet starting at its IP
    /// header: usually truncated (ICMPv4 quotes as little as the IP header
    /// plus 8 bytes, RFC 792), so its own length fields will overstate it.
    #[inline]
    pub fn embedded(&self) -> Option<&[u8]> {
        self.is_error().then(|| self.data())
    }

    /// Whether an ICMPv4 checksum (over the whole message) is correct.
    #[inline]
    pub fn verify_checksum_v4(&self) -> bool {
        checksum::data(self.buffer.as_ref()) == 0xffff
    }

    /// Whether an ICMPv6 checksum is correct; it covers the IPv6
    /// pseudo-header (RFC 4443 section 2.3).
    #[inline]
    pub fn verify_checksum_v6(&self, src: [u8; 16], dst: [u8; 16]) -> bool {
        let b = self.buffer.as_ref();
        let Ok(len) = u32::try_from(b.len()) else {
            return false;
        };
        let acc = checksum::pseudo_header_v6(src, dst, protocol::ICMPV6, len);
        checksum::fold(checksum::accumulate(acc, b)) == 0xffff
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ICMP echo request 10.99.0.1 -> 10.99.0.2, id 9961, seq 1, 56 bytes of data
    const ECHO4_REQUEST: [u8; 98] = [
        0xda, 0x6f, 0x93, 0x2a, 0x1d, 0xd4, 0x6e, 0x53, 0x8b, 0xdf, 0x1c, 0x91, 0x08, 0x00, 0x45,
        0x00, 0x00, 0x54, 0xc8, 0xc8, 0x40, 0x00, 0x40, 0x01, 0x5d, 0x18, 0x0a, 0x63, 0x00, 0x01,
        0x0a, 0x63, 0x00, 0x02, 0x08, 0x00, 0xd4, 0x8d, 0x26, 0xe9, 0x00, 0x01, 0x7b, 0x36, 0x01,
        0x6b, 0x00, 0x00, 0x00, 0x00, 0xbe, 0x13, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x11,
        0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20,
        0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f,
        0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37,
    ];
    /// ICMP port unreachable from 10.98.0.3 quoting the UDP datagram to port 53
    const PORT_UNREACH4: [u8; 75] = [
        0x6e, 0x53, 0x8b, 0xdf, 0x1c, 0x91, 0xda, 0x6f, 0x93, 0x2a, 0x1d, 0xd4, 0x08, 0x00, 0x45,
        0xc0, 0x00, 0x3d, 0xf0, 0x0c, 0x00, 0x00, 0x3f, 0x01, 0x76, 0x2b, 0x0a, 0x62, 0x00, 0x03,
        0x0a, 0x63, 0x00, 0x01, 0x03, 0x03, 0x73, 0x96, 0x00, 0x00, 0x00, 0x00, 0x45, 0x00, 0x00,
        0x21, 0x37, 0xfc, 0x40, 0x00, 0x3f, 0x11, 0xef, 0x07, 0x0a, 0x63, 0x00, 0x01, 0x0a, 0x62,
        0x00, 0x03, 0x92, 0x5d, 0x00, 0x35, 0x00, 0x0d, 0x14, 0xe7, 0x64, 0x6e, 0x73, 0x71, 0x0a,
    ];
    /// ICMP time exceeded from router 10.99.0.2 quoting an echo request sent with TTL 1
    const TIME_EXCEEDED4: [u8; 126] = [
        0x6e, 0x53, 0x8b, 0xdf, 0x1c, 0x91, 0xda, 0x6f, 0x93, 0x2a, 0x1d, 0xd4, 0x08, 0x00, 0x45,
        0xc0, 0x00, 0x70, 0x06, 0x02, 0x00, 0x00, 0x40, 0x01, 0x5f, 0x03, 0x0a, 0x63, 0x00, 0x02,
        0x0a, 0x63, 0x00, 0x01, 0x0b, 0x00, 0xf4, 0xff, 0x00, 0x00, 0x00, 0x00, 0x45, 0x00, 0x00,
        0x54, 0x1c, 0xc6, 0x40, 0x00, 0x01, 0x01, 0x48, 0x1b, 0x0a, 0x63, 0x00, 0x01, 0x0a, 0x62,
        0x00, 0x03, 0x08, 0x00, 0x3e, 0x3b, 0x26, 0xef, 0x00, 0x01, 0x7c, 0x36, 0x01, 0x6b, 0x00,
        0x00, 0x00, 0x00, 0x53, 0x60, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x11, 0x12, 0x13,
        0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22,
        0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x31,
        0x32, 0x33, 0x34, 0x35, 0x36, 0x37,
    ];
    /// ICMPv6 echo reply fd00:99::2 -> fd00:99::1, id 9962, seq 1
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
    /// ICMPv6 port unreachable from fd00:98::3 quoting the UDP datagram to port 53
    const PORT_UNREACH6: [u8; 116] = [
        0x6e, 0x53, 0x8b, 0xdf, 0x1c, 0x91, 0xda, 0x6f, 0x93, 0x2a, 0x1d, 0xd4, 0x86, 0xdd, 0x60,
        0x04, 0x35, 0x0c, 0x00, 0x3e, 0x3a, 0x3f, 0xfd, 0x00, 0x00, 0x98, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xfd, 0x00, 0x00, 0x99, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x01, 0x04, 0xdd, 0x2f, 0x00, 0x00,
        0x00, 0x00, 0x60, 0x02, 0x17, 0xd4, 0x00, 0x0e, 0x11, 0x3f, 0xfd, 0x00, 0x00, 0x99, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xfd, 0x00, 0x00, 0x98,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x98, 0x3f, 0x00,
        0x35, 0x00, 0x0e, 0xfb, 0x55, 0x64, 0x6e, 0x73, 0x71, 0x36, 0x0a,
    ];
    /// The first 126 bytes of an ICMPv6 Packet Too Big (MTU 1280) from router fd00:99::2 quoting a 1408-byte echo request; the full frame is 1294 bytes
    const PTB6_PREFIX: [u8; 126] = [
        0x6e, 0x53, 0x8b, 0xdf, 0x1c, 0x91, 0xda, 0x6f, 0x93, 0x2a, 0x1d, 0xd4, 0x86, 0xdd, 0x60,
        0x0d, 0x83, 0x68, 0x04, 0xd8, 0x3a, 0x40, 0xfd, 0x00, 0x00, 0x99, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0xfd, 0x00, 0x00, 0x99, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0xdc, 0x46, 0x00, 0x00,
        0x05, 0x00, 0x60, 0x0a, 0x5b, 0xa4, 0x05, 0x80, 0x3a, 0x40, 0xfd, 0x00, 0x00, 0x99, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xfd, 0x00, 0x00, 0x98,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x80, 0x00, 0x4b,
        0x66, 0x27, 0x15, 0x00, 0x01, 0x88, 0x36, 0x01, 0x6b, 0x00, 0x00, 0x00, 0x00, 0x0d, 0xd4,
        0x0a, 0x00, 0x00, 0x00, 0x00, 0x00,
    ];
    /// The first 70 bytes of an ICMP fragmentation-needed (next-hop MTU 1280) from router 10.99.0.2; the full frame is 590 bytes
    const FRAG_NEEDED4_PREFIX: [u8; 70] = [
        0x6e, 0x53, 0x8b, 0xdf, 0x1c, 0x91, 0xda, 0x6f, 0x93, 0x2a, 0x1d, 0xd4, 0x08, 0x00, 0x45,
        0xc0, 0x02, 0x40, 0x07, 0x02, 0x00, 0x00, 0x40, 0x01, 0x5c, 0x33, 0x0a, 0x63, 0x00, 0x02,
        0x0a, 0x63, 0x00, 0x01, 0x03, 0x04, 0x0e, 0xc9, 0x00, 0x00, 0x05, 0x00, 0x45, 0x00, 0x05,
        0x94, 0x00, 0x00, 0x40, 0x00, 0x40, 0x01, 0x20, 0xa1, 0x0a, 0x63, 0x00, 0x01, 0x0a, 0x62,
        0x00, 0x03, 0x08, 0x00, 0xbc, 0x62, 0x27, 0x14, 0x00, 0x01,
    ];

    fn addr16(b: &[u8]) -> [u8; 16] {
        b.try_into().unwrap()
    }

    #[test]
    fn echo_request_v4() {
        let m = Packet::new_checked(&ECHO4_REQUEST[34..], Version::V4).unwrap();
        assert_eq!(m.msg_type(), v4_type::ECHO_REQUEST);
        assert_eq!(m.code(), 0);
        assert!(m.is_echo() && !m.is_error());
        assert_eq!(m.echo_ident(), Some(9961));
        assert_eq!(m.echo_seq_no(), Some(1));
        assert_eq!(m.embedded(), None);
        assert_eq!(m.mtu(), None);
        assert_eq!(m.data().len(), 56);
        assert!(m.verify_checksum_v4());
    }

    #[test]
    fn echo_reply_v6() {
        let m = Packet::new_checked(&ECHO6_REPLY[54..], Version::V6).unwrap();
        assert_eq!(m.msg_type(), v6_type::ECHO_REPLY);
        assert_eq!(m.echo_ident(), Some(9962));
        assert_eq!(m.echo_seq_no(), Some(1));
        assert!(!m.is_error());
        assert!(m.verify_checksum_v6(addr16(&ECHO6_REPLY[22..38]), addr16(&ECHO6_REPLY[38..54])));
        assert!(!m.verify_checksum_v6(addr16(&ECHO6_REPLY[38..54]), addr16(&ECHO6_REPLY[38..54])));
    }

    #[test]
    fn port_unreachable_v4_quotes_udp() {
        let m = Packet::new_checked(&PORT_UNREACH4[34..], Version::V4).unwrap();
        assert_eq!((m.msg_type(), m.code()), (v4_type::DEST_UNREACHABLE, 3));
        assert!(m.is_error() && !m.is_echo());
        assert_eq!(m.echo_ident(), None);
        let inner = m.embedded().unwrap();
        // The quoted IPv4 header: UDP from 10.99.0.1 to 10.98.0.3, port 53.
        assert_eq!(inner[0], 0x45);
        assert_eq!(inner[9], 17);
        assert_eq!(&inner[12..20], &[10, 99, 0, 1, 10, 98, 0, 3]);
        assert_eq!(&inner[22..24], &53u16.to_be_bytes());
        assert!(m.verify_checksum_v4());
    }

    #[test]
    fn time_exceeded_v4() {
        let m = Packet::new_checked(&TIME_EXCEEDED4[34..], Version::V4).unwrap();
        assert_eq!(m.msg_type(), v4_type::TIME_EXCEEDED);
        let inner = m.embedded().unwrap();
        assert_eq!(inner.len(), 84);
        assert_eq!(inner[8], 1, "quoted TTL");
        assert!(m.verify_checksum_v4());
    }

    #[test]
    fn frag_needed_mtu() {
        let m = Packet::new_checked(&FRAG_NEEDED4_PREFIX[34..], Version::V4).unwrap();
        assert_eq!(m.code(), v4_type::CODE_FRAG_NEEDED);
        assert_eq!(m.mtu(), Some(1280));
        assert_eq!(m.embedded().unwrap()[0], 0x45);
    }

    #[test]
    fn port_unreachable_v6() {
        let m = Packet::new_checked(&PORT_UNREACH6[54..], Version::V6).unwrap();
        assert_eq!((m.msg_type(), m.code()), (v6_type::DEST_UNREACHABLE, 4));
        let inner = m.embedded().unwrap();
        assert_eq!(inner[0] >> 4, 6);
        assert_eq!(inner[6], 17);
        assert!(m.verify_checksum_v6(
            addr16(&PORT_UNREACH6[22..38]),
            addr16(&PORT_UNREACH6[38..54])
        ));
    }

    #[test]
    fn packet_too_big_v6() {
        let m = Packet::new_checked(&PTB6_PREFIX[54..], Version::V6).unwrap();
        assert_eq!(m.msg_type(), v6_type::PACKET_TOO_BIG);
        assert_eq!(m.mtu(), Some(1280));
        let inner = m.embedded().unwrap();
        assert_eq!(&inner[..2], &[0x60, 0x0a]);
        assert_eq!(inner[40], v6_type::ECHO_REQUEST);
    }

    #[test]
    fn truncated() {
        assert_eq!(
            Packet::new_checked(&ECHO4_REQUEST[34..41], Version::V4).err(),
            Some(Error::Truncated)
        );
        // Exactly 8 bytes is a complete (empty-bodied) message.
        let m = Packet::new_checked(&ECHO4_REQUEST[34..42], Version::V4).unwrap();
        assert!(m.data().is_empty());
    }

    #[test]
    fn informational_v6_is_not_error() {
        // Router solicitation (133) is informational.
        let m = Packet::new_checked(&[133u8, 0, 0, 0, 0, 0, 0, 0][..], Version::V6).unwrap();
        assert!(!m.is_error() && !m.is_echo());
        assert_eq!(m.embedded(), None);
    }
}
