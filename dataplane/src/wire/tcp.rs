//! TCP headers (RFC 9293) and their options.
//!
//! Owns: the fixed header, data-offset validation against the segment, and an
//! iterator over the options area that reports malformed options as errors.
//!
//! Must never: panic on a malformed option, require a valid checksum
//! (transmit offloads leave only the pseudo-header sum in captured frames),
//! or track connection state: that belongs to the engine.

use super::{be16, be32, Error, Field};

mod field {
    use super::Field;
    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const SEQ_NUM: Field = 4..8;
    pub const ACK_NUM: Field = 8..12;
    /// Data offset (4 bits), reserved (3 bits), NS/AE (1 bit).
    pub const DATA_OFF: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WIN_SIZE: Field = 14..16;
    pub const CHECKSUM: Field = 16..18;
    pub const URGENT: Field = 18..20;
}

/// Length of a header without options.
pub const HEADER_LEN: usize = field::URGENT.end;

/// Flag bits of the flags octet (RFC 9293 section 3.1, RFC 3168 for ECE/CWR).
pub mod flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;
}

/// Option kinds (IANA "TCP Option Kind Numbers").
mod kind {
    pub const END: u8 = 0;
    pub const NOP: u8 = 1;
    pub const MSS: u8 = 2;
    pub const WS: u8 = 3;
    pub const SACK_PERM: u8 = 4;
    pub const SACK: u8 = 5;
    pub const TIMESTAMP: u8 = 8;
}

/// A read-only view of a TCP segment.
#[derive(Debug, Clone, Copy)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps a segment (bounded by the IP layer's length) after checking: 20
    /// bytes present (`Truncated`), and a data offset of at least 5 words that
    /// fits in the segment (`BadHeaderLength`).
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    #[inline]
    pub fn check_len(&self) -> Result<(), Error> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let header_len = self.header_len();
        if header_len < HEADER_LEN || header_len > len {
            return Err(Error::BadHeaderLength);
        }
        Ok(())
    }

    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    pub fn src_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::SRC_PORT.start)
    }

    #[inline]
    pub fn dst_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::DST_PORT.start)
    }

    #[inline]
    pub fn seq_number(&self) -> u32 {
        be32(self.buffer.as_ref(), field::SEQ_NUM.start)
    }

    #[inline]
    pub fn ack_number(&self) -> u32 {
        be32(self.buffer.as_ref(), field::ACK_NUM.start)
    }

    /// Header length in bytes (data offset * 4), options included.
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::DATA_OFF] >> 4) * 4
    }

    /// The eight classic flag bits as one octet; see [`flags`].
    #[inline]
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    #[inline]
    pub fn syn(&self) -> bool {
        self.flags() & flags::SYN != 0
    }

    #[inline]
    pub fn ack(&self) -> bool {
        self.flags() & flags::ACK != 0
    }

    #[inline]
    pub fn fin(&self) -> bool {
        self.flags() & flags::FIN != 0
    }

    #[inline]
    pub fn rst(&self) -> bool {
        self.flags() & flags::RST != 0
    }

    #[inline]
    pub fn psh(&self) -> bool {
        self.flags() & flags::PSH != 0
    }

    #[inline]
    pub fn urg(&self) -> bool {
        self.flags() & flags::URG != 0
    }

    /// The low bit of the offset octet: NS in RFC 3540 (historic), AE in
    /// accurate ECN drafts.
    #[inline]
    pub fn ns(&self) -> bool {
        self.buffer.as_ref()[field::DATA_OFF] & 1 != 0
    }

    /// The unscaled window field.
    #[inline]
    pub fn window_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::WIN_SIZE.start)
    }

    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    #[inline]
    pub fn urgent_at(&self) -> u16 {
        be16(self.buffer.as_ref(), field::URGENT.start)
    }

    /// The raw options area.
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }

    #[inline]
    pub fn option_iter(&self) -> TcpOptions<'_> {
        TcpOptions::new(self.options())
    }

    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

/// One parsed TCP option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpOption<'a> {
    EndOfList,
    NoOperation,
    /// RFC 9293 section 3.7.1.
    MaxSegmentSize(u16),
    /// Shift count as sent; RFC 7323 section 2.3 says receivers clamp values
    /// above 14, which is the engine's business, not the parser's.
    WindowScale(u8),
    /// RFC 2018 section 2.
    SackPermitted,
    /// RFC 2018 section 3: one to four (left, right) edges.
    SackRange(SackBlocks<'a>),
    /// RFC 7323 section 3.
    Timestamps {
        tsval: u32,
        tsecr: u32,
    },
    /// Any other kind; `data` excludes the kind and length octets.
    Unknown {
        kind: u8,
        data: &'a [u8],
    },
}

/// The blocks of a SACK option; always 1..=4 whole 8-byte blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SackBlocks<'a> {
    data: &'a [u8],
}

impl<'a> SackBlocks<'a> {
    /// Number of (left, right) blocks.
    #[inline]
    pub fn len(&self) -> usize {
        self.data.len() / 8
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

impl<'a> Iterator for SackBlocks<'a> {
    type Item = (u32, u32);

    #[inline]
    fn next(&mut self) -> Option<(u32, u32)> {
        if self.data.len() < 8 {
            return None;
        }
        let block = (be32(self.data, 0), be32(self.data, 4));
        self.data = &self.data[8..];
        Some(block)
    }
}

/// Iterator over an options area. It yields `Err(Error::BadOption)` once for
/// a malformed option and then stops; after End of Option List it stops too
/// (the rest is padding, RFC 9293 section 3.1).
#[derive(Debug, Clone)]
pub struct TcpOptions<'a> {
    rest: &'a [u8],
}

impl<'a> TcpOptions<'a> {
    #[inline]
    pub fn new(area: &'a [u8]) -> Self {
        TcpOptions { rest: area }
    }

    #[inline]
    fn fail(&mut self) -> Option<Result<TcpOption<'a>, Error>> {
        self.rest = &[];
        Some(Err(Error::BadOption))
    }
}

impl<'a> Iterator for TcpOptions<'a> {
    type Item = Result<TcpOption<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let (&k, tail) = self.rest.split_first()?;
        match k {
            kind::END => {
                self.rest = &[];
                return Some(Ok(TcpOption::EndOfList));
            }
            kind::NOP => {
                self.rest = tail;
                return Some(Ok(TcpOption::NoOperation));
            }
            _ => {}
        }
        // Every other option is kind, length (counting both), data.
        let len = match tail.first() {
            Some(&l) => usize::from(l),
            None => return self.fail(),
        };
        if len < 2 || len > self.rest.len() {
            return self.fail();
        }
        let data = &self.rest[2..len];
        let opt = match (k, data.len()) {
            (kind::MSS, 2) => TcpOption::MaxSegmentSize(be16(data, 0)),
            (kind::WS, 1) => TcpOption::WindowScale(data[0]),
            (kind::SACK_PERM, 0) => TcpOption::SackPermitted,
            (kind::SACK, n) if n % 8 == 0 && (8..=32).contains(&n) => {
                TcpOption::SackRange(SackBlocks { data })
            }
            (kind::TIMESTAMP, 8) => TcpOption::Timestamps {
                tsval: be32(data, 0),
                tsecr: be32(data, 4),
            },
            (kind::MSS | kind::WS | kind::SACK_PERM | kind::SACK | kind::TIMESTAMP, _) => {
                return self.fail();
            }
            _ => TcpOption::Unknown { kind: k, data },
        };
        self.rest = &self.rest[len..];
        Some(Ok(opt))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// TCP SYN 10.99.0.1:45478 -> 10.98.0.3:8080 (MSS 1240, SACK-permitted, timestamps, NOP, window scale 10)
    const IPV4_SYN: [u8; 74] = [
        0xda, 0x6f, 0x93, 0x2a, 0x1d, 0xd4, 0x6e, 0x53, 0x8b, 0xdf, 0x1c, 0x91, 0x08, 0x00, 0x45,
        0x00, 0x00, 0x3c, 0xa4, 0x68, 0x40, 0x00, 0x40, 0x06, 0x81, 0x8b, 0x0a, 0x63, 0x00, 0x01,
        0x0a, 0x62, 0x00, 0x03, 0xb1, 0xa6, 0x1f, 0x90, 0x1a, 0x15, 0x48, 0x7d, 0x00, 0x00, 0x00,
        0x00, 0xa0, 0x02, 0xfb, 0xe0, 0x14, 0xf7, 0x00, 0x00, 0x02, 0x04, 0x04, 0xd8, 0x04, 0x02,
        0x08, 0x0a, 0x1e, 0x25, 0xcc, 0x80, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x0a,
    ];
    /// TCP PSH|ACK carrying "hello\n" with NOP, NOP, timestamps
    const IPV4_PSH: [u8; 72] = [
        0xda, 0x6f, 0x93, 0x2a, 0x1d, 0xd4, 0x6e, 0x53, 0x8b, 0xdf, 0x1c, 0x91, 0x08, 0x00, 0x45,
        0x00, 0x00, 0x3a, 0xa4, 0x6a, 0x40, 0x00, 0x40, 0x06, 0x81, 0x8b, 0x0a, 0x63, 0x00, 0x01,
        0x0a, 0x62, 0x00, 0x03, 0xb1, 0xa6, 0x1f, 0x90, 0x1a, 0x15, 0x48, 0x7e, 0xaa, 0xb5, 0xdf,
        0x07, 0x80, 0x18, 0x00, 0x3f, 0x14, 0xf5, 0x00, 0x00, 0x01, 0x01, 0x08, 0x0a, 0x1e, 0x25,
        0xcc, 0x80, 0xb0, 0x92, 0x94, 0xd0, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x0a,
    ];
    /// TCP SYN|ACK fd00:98::3:8081 -> fd00:99::1:42972
    const IPV6_SYNACK: [u8; 94] = [
        0x6e, 0x53, 0x8b, 0xdf, 0x1c, 0x91, 0xda, 0x6f, 0x93, 0x2a, 0x1d, 0xd4, 0x86, 0xdd, 0x60,
        0x0f, 0x02, 0xcb, 0x00, 0x28, 0x06, 0x3f, 0xfd, 0x00, 0x00, 0x98, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xfd, 0x00, 0x00, 0x99, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x1f, 0x91, 0xa7, 0xdc, 0xc9, 0x5d,
        0x12, 0xbc, 0x57, 0xf4, 0x06, 0x14, 0xa0, 0x12, 0xfe, 0xd0, 0xfb, 0x64, 0x00, 0x00, 0x02,
        0x04, 0x04, 0xc4, 0x04, 0x02, 0x08, 0x0a, 0x0b, 0xfa, 0xc2, 0x3a, 0xf2, 0x1f, 0x3b, 0xa2,
        0x01, 0x03, 0x03, 0x0a,
    ];

    fn opts(area: &[u8]) -> Vec<Result<TcpOption<'_>, Error>> {
        TcpOptions::new(area).collect()
    }

    #[test]
    fn syn_fields_and_options() {
        let t = Packet::new_checked(&IPV4_SYN[34..]).unwrap();
        assert_eq!(t.src_port(), 45478);
        assert_eq!(t.dst_port(), 8080);
        assert_eq!(t.seq_number(), 437_602_429);
        assert_eq!(t.ack_number(), 0);
        assert_eq!(t.header_len(), 40);
        assert_eq!(t.flags(), flags::SYN);
        assert!(t.syn() && !t.ack() && !t.fin() && !t.rst());
        assert_eq!(t.window_len(), 64480);
        assert!(t.payload().is_empty());
        assert_eq!(
            opts(t.options()),
            vec![
                Ok(TcpOption::MaxSegmentSize(1240)),
                Ok(TcpOption::SackPermitted),
                Ok(TcpOption::Timestamps {
                    tsval: 505_793_664,
                    tsecr: 0
                }),
                Ok(TcpOption::NoOperation),
                Ok(TcpOption::WindowScale(10)),
            ]
        );
    }

    #[test]
    fn data_segment() {
        let t = Packet::new_checked(&IPV4_PSH[34..]).unwrap();
        assert_eq!(t.flags(), flags::PSH | flags::ACK);
        assert!(t.psh() && t.ack());
        assert_eq!(t.header_len(), 32);
        assert_eq!(t.payload(), b"hello\n");
        let o = opts(t.options());
        assert_eq!(o.len(), 3);
        assert_eq!(o[0], Ok(TcpOption::NoOperation));
        assert!(matches!(o[2], Ok(TcpOption::Timestamps { .. })));
    }

    #[test]
    fn ipv6_syn_ack() {
        let t = Packet::new_checked(&IPV6_SYNACK[54..]).unwrap();
        assert_eq!((t.src_port(), t.dst_port()), (8081, 42972));
        assert_eq!(t.flags(), flags::SYN | flags::ACK);
        assert_eq!(t.ack_number(), 1_475_610_132);
        assert!(opts(t.options()).iter().all(|o| o.is_ok()));
    }

    #[test]
    fn sack_blocks() {
        // NOP, NOP, SACK with two blocks, as Linux sends after a loss.
        let area = [
            1, 1, 5, 18, 0, 0, 0x10, 0, 0, 0, 0x20, 0, 0, 0, 0x30, 0, 0, 0, 0x40, 0,
        ];
        let o = opts(&area);
        assert_eq!(o.len(), 3);
        match o[2] {
            Ok(TcpOption::SackRange(blocks)) => {
                assert_eq!(blocks.len(), 2);
                assert_eq!(
                    blocks.collect::<Vec<_>>(),
                    vec![(0x1000, 0x2000), (0x3000, 0x4000)]
                );
            }
            ref other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn eol_stops_and_unknown_kinds_pass() {
        let area = [30, 4, 0xaa, 0xbb, 0, 2, 4, 5, 0xb4];
        assert_eq!(
            opts(&area),
            vec![
                Ok(TcpOption::Unknown {
                    kind: 30,
                    data: &[0xaa, 0xbb]
                }),
                Ok(TcpOption::EndOfList),
            ]
        );
    }

    #[test]
    fn malformed_options() {
        let bad: &[&[u8]] = &[
            &[2],                // MSS without a length octet
            &[2, 4, 5],          // MSS running off the end
            &[2, 3, 5],          // MSS with the wrong length
            &[3, 2],             // window scale without its shift
            &[4, 3, 0],          // SACK-permitted with data
            &[5, 2],             // SACK without blocks
            &[5, 6, 0, 0, 0, 0], // SACK with half a block
            &[8, 6, 0, 0, 0, 0], // short timestamps
            &[30, 1],            // length below 2 would loop forever
            &[30, 0],
        ];
        for area in bad {
            let o = opts(area);
            assert_eq!(o.last(), Some(&Err(Error::BadOption)), "{area:?}");
            assert_eq!(o.len(), 1, "{area:?}");
        }
        // The error ends iteration even if good options follow.
        let o = opts(&[3, 2, 1, 1]);
        assert_eq!(o, vec![Err(Error::BadOption)]);
    }

    #[test]
    fn header_length_errors() {
        let seg = &IPV4_SYN[34..];
        assert_eq!(
            Packet::new_checked(&seg[..19]).err(),
            Some(Error::Truncated)
        );
        // Data offset 10 (40 bytes) but only 39 bytes of segment.
        assert_eq!(
            Packet::new_checked(&seg[..39]).err(),
            Some(Error::BadHeaderLength)
        );
        let mut f = IPV4_SYN;
        f[46] = 0x40;
        assert_eq!(
            Packet::new_checked(&f[34..]).err(),
            Some(Error::BadHeaderLength)
        );
    }
}
