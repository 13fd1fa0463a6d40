//! IPv4 headers (RFC 791).
//!
//! Owns: header layout, IHL / total-length validation against the buffer,
//! structural validation of the options area, fragment fields, and a header
//! checksum *verifier*.
//!
//! Must never: reject a packet for a bad header checksum (NICs and af_packet
//! may leave it unverified or not yet filled in because of offloads; the
//! caller decides whether to call [`Packet::verify_checksum`]), reassemble
//! fragments, or read past `total_len`.

use super::{be16, checksum, Error, Field};

mod field {
    use super::Field;
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: Field = 2..4;
    pub const IDENT: Field = 4..6;
    pub const FLG_OFF: Field = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Field = 10..12;
    pub const SRC_ADDR: Field = 12..16;
    pub const DST_ADDR: Field = 16..20;
}

/// Length of a header without options.
pub const HEADER_LEN: usize = field::DST_ADDR.end;
/// IHL is a 4-bit count of 32-bit words, so options end by byte 60.
pub const MAX_HEADER_LEN: usize = 60;

/// Re-exported so `ipv4::protocol::TCP` reads naturally at call sites.
pub use super::protocol;

/// Flag bits in the flags/fragment-offset word (RFC 791 section 3.1).
const FLAG_RESERVED: u16 = 0x8000;
const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;

/// Option types that occupy a single byte (RFC 791 section 3.1).
const OPT_END: u8 = 0;
const OPT_NOP: u8 = 1;

/// A read-only view of an IPv4 header and the datagram it heads.
#[derive(Debug, Clone, Copy)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps `buffer` after [`Packet::check_len`]. The buffer may be longer
    /// than `total_len` (Ethernet pads short frames to 60 bytes); the excess is
    /// never exposed.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Like [`Packet::new_checked`] but for a datagram known to be cut
    /// short, such as the copy quoted inside an ICMP error (RFC 792 quotes
    /// only the header and 8 bytes): `total_len` may exceed the buffer, and
    /// [`Packet::payload`] then ends at the buffer.
    #[inline]
    pub fn new_checked_quoted(buffer: T) -> Result<Self, Error> {
        let packet = Self::new_unchecked(buffer);
        packet.check_header()?;
        Ok(packet)
    }

    /// Checks, in order: 20 bytes present (`Truncated`), version 4
    /// (`BadVersion`), IHL at least 5 (`BadHeaderLength`), total length at
    /// least the header length (`BadLength`), total length within the buffer
    /// (`Truncated`), and that the options area parses as a sequence of
    /// options (`BadOption`).
    #[inline]
    pub fn check_len(&self) -> Result<(), Error> {
        self.check_header()?;
        if usize::from(self.total_len()) > self.buffer.as_ref().len() {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Every check of [`Packet::check_len`] except total length vs buffer;
    /// the header itself (options included) must still be present.
    #[inline]
    fn check_header(&self) -> Result<(), Error> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if b[field::VER_IHL] >> 4 != 4 {
            return Err(Error::BadVersion);
        }
        let header_len = self.header_len();
        if header_len < HEADER_LEN {
            return Err(Error::BadHeaderLength);
        }
        if usize::from(self.total_len()) < header_len {
            return Err(Error::BadLength);
        }
        if header_len > b.len() {
            return Err(Error::Truncated);
        }
        if header_len > HEADER_LEN {
            check_options(&b[HEADER_LEN..header_len])?;
        }
        Ok(())
    }

    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in bytes (IHL * 4), options included.
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    #[inline]
    pub fn dscp(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] >> 2
    }

    #[inline]
    pub fn ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] & 0x03
    }

    /// Header plus payload length as stated by the header.
    #[inline]
    pub fn total_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::LENGTH.start)
    }

    #[inline]
    pub fn ident(&self) -> u16 {
        be16(self.buffer.as_ref(), field::IDENT.start)
    }

    #[inline]
    fn flags_offset(&self) -> u16 {
        be16(self.buffer.as_ref(), field::FLG_OFF.start)
    }

    /// The reserved flag bit; RFC 791 requires zero.
    #[inline]
    pub fn reserved_flag(&self) -> bool {
        self.flags_offset() & FLAG_RESERVED != 0
    }

    #[inline]
    pub fn dont_frag(&self) -> bool {
        self.flags_offset() & FLAG_DF != 0
    }

    #[inline]
    pub fn more_frags(&self) -> bool {
        self.flags_offset() & FLAG_MF != 0
    }

    /// Fragment offset in bytes (the field counts 8-octet units).
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        (self.flags_offset() & OFFSET_MASK) << 3
    }

    /// Whether this datagram is a piece of a larger one. MF clear with offset
    /// zero is a whole datagram (DF is irrelevant here).
    #[inline]
    pub fn is_fragment(&self) -> bool {
        self.flags_offset() & (FLAG_MF | OFFSET_MASK) != 0
    }

    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    #[inline]
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    #[inline]
    pub fn src_addr(&self) -> [u8; 4] {
        let mut a = [0u8; 4];
        a.copy_from_slice(&self.buffer.as_ref()[field::SRC_ADDR]);
        a
    }

    #[inline]
    pub fn dst_addr(&self) -> [u8; 4] {
        let mut a = [0u8; 4];
        a.copy_from_slice(&self.buffer.as_ref()[field::DST_ADDR]);
        a
    }

    /// The raw options area (empty when IHL is 5).
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }

    /// Iterates the options area. Valid only after `new_checked`, which has
    /// already proven the iterator yields no error.
    #[inline]
    pub fn option_iter(&self) -> Options<'_> {
        Options::new(self.options())
    }

    /// Whether the header checksum is correct (RFC 791 section 3.1: the
    /// one's-complement sum over the header, checksum included, is 0xffff).
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::data(&self.buffer.as_ref()[..self.header_len()]) == 0xffff
    }

    /// The payload, bounded by `total_len` rather than by the buffer (and by
    /// the buffer too, for a quoted datagram).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        let end = usize::from(self.total_len()).min(b.len());
        &b[self.header_len()..end]
    }
}

/// One IPv4 option (type octet, with its data for multi-byte options).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ipv4Option<'a> {
    EndOfList,
    NoOperation,
    /// Any multi-byte option; `data` excludes the type and length octets.
    Other {
        kind: u8,
        data: &'a [u8],
    },
}

/// Iterator over an options area. After an error or End of Option List it
/// yields nothing further.
#[derive(Debug, Clone)]
pub struct Options<'a> {
    rest: &'a [u8],
}

impl<'a> Options<'a> {
    #[inline]
    pub fn new(area: &'a [u8]) -> Self {
        Options { rest: area }
    }
}

impl<'a> Iterator for Options<'a> {
    type Item = Result<Ipv4Option<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let (&kind, tail) = self.rest.split_first()?;
        match kind {
            OPT_END => {
                // What follows EOL is padding, not options (RFC 791 p.15).
                self.rest = &[];
                Some(Ok(Ipv4Option::EndOfList))
            }
            OPT_NOP => {
                self.rest = tail;
                Some(Ok(Ipv4Option::NoOperation))
            }
            _ => {
                // The length octet counts the type and length octets too.
                let len = tail.first().map_or(0, |&l| usize::from(l));
                if len < 2 || len > self.rest.len() {
                    self.rest = &[];
                    return Some(Err(Error::BadOption));
                }
                let data = &self.rest[2..len];
                self.rest = &self.rest[len..];
                Some(Ok(Ipv4Option::Other { kind, data }))
            }
        }
    }
}

/// Whether an options area is a well-formed option sequence.
#[inline]
fn check_options(area: &[u8]) -> Result<(), Error> {
    for opt in Options::new(area) {
        opt?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ICMP echo request 10.99.0.1 -> 10.99.0.2 with a Record Route option (IHL 15)
    const IPV4_RR: [u8; 138] = [
        0xda, 0x6f, 0x93, 0x2a, 0x1d, 0xd4, 0x6e, 0x53, 0x8b, 0xdf, 0x1c, 0x91, 0x08, 0x00, 0x4f,
        0x00, 0x00, 0x7c, 0xc9, 0xa9, 0x40, 0x00, 0x40, 0x01, 0x1f, 0x9c, 0x0a, 0x63, 0x00, 0x01,
        0x0a, 0x63, 0x00, 0x02, 0x01, 0x07, 0x27, 0x08, 0x0a, 0x63, 0x00, 0x01, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08,
        0x00, 0x9a, 0x22, 0x26, 0xf1, 0x00, 0x01, 0x7c, 0x36, 0x01, 0x6b, 0x00, 0x00, 0x00, 0x00,
        0xf7, 0x76, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16,
        0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25,
        0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x31, 0x32, 0x33, 0x34,
        0x35, 0x36, 0x37,
    ];
    /// TCP SYN 10.99.0.1:45478 -> 10.98.0.3:8080 with MSS, SACK-permitted, timestamps and window scale
    const IPV4_SYN: [u8; 74] = [
        0xda, 0x6f, 0x93, 0x2a, 0x1d, 0xd4, 0x6e, 0x53, 0x8b, 0xdf, 0x1c, 0x91, 0x08, 0x00, 0x45,
        0x00, 0x00, 0x3c, 0xa4, 0x68, 0x40, 0x00, 0x40, 0x06, 0x81, 0x8b, 0x0a, 0x63, 0x00, 0x01,
        0x0a, 0x62, 0x00, 0x03, 0xb1, 0xa6, 0x1f, 0x90, 0x1a, 0x15, 0x48, 0x7d, 0x00, 0x00, 0x00,
        0x00, 0xa0, 0x02, 0xfb, 0xe0, 0x14, 0xf7, 0x00, 0x00, 0x02, 0x04, 0x04, 0xd8, 0x04, 0x02,
        0x08, 0x0a, 0x1e, 0x25, 0xcc, 0x80, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x0a,
    ];
    /// First fragment (MF, offset 0) of a 158-byte UDP datagram over a 96-byte MTU link
    const FRAG_FIRST: [u8; 106] = [
        0x9a, 0xc2, 0x87, 0xc3, 0x8f, 0x57, 0x62, 0x43, 0xe1, 0xd0, 0x90, 0x2d, 0x08, 0x00, 0x45,
        0x00, 0x00, 0x5c, 0xbf, 0x74, 0x20, 0x00, 0x40, 0x11, 0x86, 0x58, 0x0a, 0x61, 0x00, 0x01,
        0x0a, 0x61, 0x00, 0x02, 0x9a, 0x32, 0x14, 0xe9, 0x00, 0x9e, 0x1c, 0xb4, 0x41, 0x41, 0x41,
        0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41,
        0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41,
        0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41,
        0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41,
        0x41,
    ];
    /// Middle fragment (MF, offset 72) of the same datagram
    const FRAG_MIDDLE: [u8; 106] = [
        0x9a, 0xc2, 0x87, 0xc3, 0x8f, 0x57, 0x62, 0x43, 0xe1, 0xd0, 0x90, 0x2d, 0x08, 0x00, 0x45,
        0x00, 0x00, 0x5c, 0xbf, 0x74, 0x20, 0x09, 0x40, 0x11, 0x86, 0x4f, 0x0a, 0x61, 0x00, 0x01,
        0x0a, 0x61, 0x00, 0x02, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41,
        0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41,
        0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41,
        0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41,
        0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41,
        0x41,
    ];
    /// Last fragment (offset 144) of the same datagram
    const FRAG_LAST: [u8; 48] = [
        0x9a, 0xc2, 0x87, 0xc3, 0x8f, 0x57, 0x62, 0x43, 0xe1, 0xd0, 0x90, 0x2d, 0x08, 0x00, 0x45,
        0x00, 0x00, 0x22, 0xbf, 0x74, 0x00, 0x12, 0x40, 0x11, 0xa6, 0x80, 0x0a, 0x61, 0x00, 0x01,
        0x0a, 0x61, 0x00, 0x02, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41,
        0x41, 0x41, 0x41,
    ];

    fn ip(frame: &[u8]) -> &[u8] {
        &frame[14..]
    }

    #[test]
    fn syn_header() {
        let p = Packet::new_checked(ip(&IPV4_SYN)).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.total_len(), 60);
        assert_eq!(p.ident(), 0xa468);
        assert!(p.dont_frag());
        assert!(!p.more_frags());
        assert!(!p.is_fragment());
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), protocol::TCP);
        assert_eq!(p.src_addr(), [10, 99, 0, 1]);
        assert_eq!(p.dst_addr(), [10, 98, 0, 3]);
        assert_eq!(p.payload().len(), 40);
        assert!(p.options().is_empty());
        assert!(p.verify_checksum());
    }

    #[test]
    fn record_route_option() {
        let p = Packet::new_checked(ip(&IPV4_RR)).unwrap();
        assert_eq!(p.header_len(), 60);
        assert_eq!(p.protocol(), protocol::ICMP);
        assert!(p.verify_checksum());
        let opts: Vec<_> = p.option_iter().collect();
        // A NOP, then Record Route (type 7, length 39, pointer 8: one slot
        // filled) exactly filling the 40-byte options area.
        assert_eq!(opts.len(), 2);
        assert_eq!(opts[0], Ok(Ipv4Option::NoOperation));
        match opts[1] {
            Ok(Ipv4Option::Other { kind: 7, data }) => {
                assert_eq!(data.len(), 37);
                assert_eq!(data[0], 8);
                assert_eq!(&data[1..5], &[10, 99, 0, 1]);
            }
            ref o => panic!("unexpected {o:?}"),
        }
        assert_eq!(p.payload().len(), 64);
    }

    #[test]
    fn bad_option_length_rejected() {
        let mut f = IPV4_RR;
        // Record Route claiming 40 bytes: one more than is left after the NOP.
        f[14 + 22] = 40;
        assert_eq!(Packet::new_checked(ip(&f)).err(), Some(Error::BadOption));
        f[14 + 22] = 1;
        assert_eq!(Packet::new_checked(ip(&f)).err(), Some(Error::BadOption));
        // A lone multi-byte option type at the very end has no length octet.
        assert_eq!(
            Options::new(&[OPT_NOP, 7]).collect::<Vec<_>>(),
            vec![Ok(Ipv4Option::NoOperation), Err(Error::BadOption)]
        );
    }

    #[test]
    fn fragments() {
        let first = Packet::new_checked(ip(&FRAG_FIRST)).unwrap();
        assert!(first.more_frags() && first.is_fragment());
        assert_eq!(first.frag_offset(), 0);
        assert!(first.verify_checksum());

        let mid = Packet::new_checked(ip(&FRAG_MIDDLE)).unwrap();
        assert!(mid.more_frags() && mid.is_fragment());
        assert_eq!(mid.frag_offset(), 72);

        let last = Packet::new_checked(ip(&FRAG_LAST)).unwrap();
        assert!(!last.more_frags() && last.is_fragment());
        assert_eq!(last.frag_offset(), 144);
        assert_eq!(last.payload().len(), 14);
        assert_eq!(first.ident(), last.ident());
    }

    #[test]
    fn ethernet_padding_is_not_payload() {
        // The last fragment is 34 bytes of IP inside a 48-byte buffer once the
        // Ethernet header is removed; padding must not leak into the payload.
        let mut padded = [0u8; 60];
        padded[..FRAG_LAST.len()].copy_from_slice(&FRAG_LAST);
        let p = Packet::new_checked(&padded[14..]).unwrap();
        assert_eq!(p.payload().len(), 14);
    }

    #[test]
    fn length_errors() {
        let h = ip(&IPV4_SYN);
        assert_eq!(Packet::new_checked(&h[..19]).err(), Some(Error::Truncated));
        assert_eq!(Packet::new_checked(&h[..59]).err(), Some(Error::Truncated));

        let mut f = IPV4_SYN;
        f[14] = 0x65;
        assert_eq!(Packet::new_checked(ip(&f)).err(), Some(Error::BadVersion));
        f[14] = 0x44;
        assert_eq!(
            Packet::new_checked(ip(&f)).err(),
            Some(Error::BadHeaderLength)
        );
        let mut f = IPV4_SYN;
        f[16] = 0;
        f[17] = 19;
        assert_eq!(Packet::new_checked(ip(&f)).err(), Some(Error::BadLength));
        // IHL 15 but total length 40: the options would overlap the payload end.
        let mut f = IPV4_SYN;
        f[14] = 0x4f;
        f[17] = 40;
        assert_eq!(Packet::new_checked(ip(&f)).err(), Some(Error::BadLength));
    }

    #[test]
    fn quoted_datagram() {
        // The header and first 8 bytes of the SYN, as an ICMP error quotes it.
        let quote = &ip(&IPV4_SYN)[..28];
        assert_eq!(Packet::new_checked(quote).err(), Some(Error::Truncated));
        let p = Packet::new_checked_quoted(quote).unwrap();
        assert_eq!(p.total_len(), 60);
        assert_eq!(p.payload().len(), 8);
        // The header itself must still be whole.
        assert_eq!(
            Packet::new_checked_quoted(&ip(&IPV4_RR)[..40]).err(),
            Some(Error::Truncated)
        );
    }

    #[test]
    fn bad_checksum_still_parses() {
        let mut f = IPV4_SYN;
        f[24] ^= 0xff;
        let p = Packet::new_checked(ip(&f)).unwrap();
        assert!(!p.verify_checksum());
    }
}
