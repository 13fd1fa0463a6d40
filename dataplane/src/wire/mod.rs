//! Zero-copy, read-only views over the protocol headers the dataplane inspects.
//!
//! Owns: the byte layout of each header (as named `field` ranges), the one-time
//! length validation done by each `new_checked`, and typed accessors.
//!
//! Must never: allocate, panic on any input bytes, modify a packet, or make a
//! policy decision (a malformed header is reported, never dropped or "fixed").
//!
//! The pattern follows smoltcp's `wire` module: `Packet::new_unchecked` wraps
//! any buffer, `Packet::new_checked` additionally proves that every accessor
//! stays within the buffer, so accessors need no `Result` and cannot panic.

pub mod ethernet;
pub mod icmp;
pub mod ipv4;
pub mod ipv6;
pub mod tcp;
pub mod udp;

use core::fmt;

/// IP protocol / IPv6 Next Header numbers (IANA "Assigned Internet Protocol
/// Numbers"), shared by both IP versions.
pub mod protocol {
    pub const HOP_BY_HOP: u8 = 0;
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const IPV6_ROUTING: u8 = 43;
    pub const IPV6_FRAGMENT: u8 = 44;
    pub const ESP: u8 = 50;
    pub const AH: u8 = 51;
    pub const ICMPV6: u8 = 58;
    pub const IPV6_NO_NEXT: u8 = 59;
    pub const IPV6_DST_OPTS: u8 = 60;
    pub const MOBILITY: u8 = 135;
    pub const HIP: u8 = 139;
    pub const SHIM6: u8 = 140;
}

/// A fixed byte range within a header.
pub type Field = core::ops::Range<usize>;
/// The open range from a header's end to the end of its buffer.
pub type Rest = core::ops::RangeFrom<usize>;

/// Why a header view could not be built. Each module documents which of these
/// it returns; the per-layer meaning is attached by [`crate::parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Error {
    /// The buffer is shorter than the header (fixed part or what a length
    /// field inside it announces).
    Truncated,
    /// The IP version nibble does not match the header being parsed.
    BadVersion,
    /// A header-length field is below the protocol's minimum or exceeds the
    /// bytes the enclosing layer gave it (IPv4 IHL, TCP data offset).
    BadHeaderLength,
    /// A total-length field is smaller than the header it must contain
    /// (IPv4 total length, UDP length), or for UDP, larger than the bytes
    /// the IP layer delivered.
    BadLength,
    /// An option (IPv4 or TCP) has an impossible length.
    BadOption,
    /// More IPv6 extension headers than the walk is willing to follow.
    TooManyHeaders,
    /// An IPv6 hop-by-hop header anywhere but first (RFC 8200 section 4.1).
    BadHeaderOrder,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::Truncated => "truncated header",
            Error::BadVersion => "wrong IP version",
            Error::BadHeaderLength => "bad header length field",
            Error::BadLength => "bad length field",
            Error::BadOption => "malformed option",
            Error::TooManyHeaders => "too many extension headers",
            Error::BadHeaderOrder => "extension header out of order",
        })
    }
}

impl std::error::Error for Error {}

/// Big-endian reads. Callers index only ranges proven in-bounds by a
/// `new_checked`; the slice indexing still bounds-checks, so a logic error
/// here would panic in tests rather than read out of bounds.
#[inline(always)]
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    // One bounds check for the field and one load (indexing byte by byte checks each).
    match b[at..].first_chunk() {
        Some(&w) => u16::from_be_bytes(w),
        None => panic!("field at {at} past the end of a {}-byte header", b.len()),
    }
}

#[inline(always)]
pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    match b[at..].first_chunk() {
        Some(&w) => u32::from_be_bytes(w),
        None => panic!("field at {at} past the end of a {}-byte header", b.len()),
    }
}

/// The Internet checksum (RFC 1071): one's-complement sum of 16-bit words.
pub mod checksum {
    /// Folds `data` into a running 32-bit accumulator; an odd trailing byte is
    /// padded with zero on the right as RFC 1071 section 4.1 requires.
    ///
    /// Sums 32-bit words into 64 bits and folds at the end (2^16 and 2^32 are both 1 modulo
    /// 0xffff, so the result folds to the same 16-bit sum as adding 16-bit words one by one).
    #[inline]
    pub fn accumulate(acc: u32, data: &[u8]) -> u32 {
        let mut sum = u64::from(acc);
        let mut words = data.chunks_exact(4);
        for w in &mut words {
            sum += u64::from(u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
        }
        let rest = words.remainder();
        let mut pairs = rest.chunks_exact(2);
        for c in &mut pairs {
            sum += u64::from(u16::from_be_bytes([c[0], c[1]]));
        }
        if let [last] = pairs.remainder() {
            sum += u64::from(*last) << 8;
        }
        // Down to 16 bits (plus a carry at most), so callers may add small terms to it.
        while sum >> 16 != 0 {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        sum as u32
    }

    /// Reduces an accumulator to the final 16-bit one's-complement sum.
    #[inline]
    pub fn fold(mut acc: u32) -> u16 {
        while acc >> 16 != 0 {
            acc = (acc & 0xffff) + (acc >> 16);
        }
        acc as u16
    }

    /// The one's-complement sum of `data`; a region containing a correct
    /// checksum field sums to 0xffff.
    #[inline]
    pub fn data(data: &[u8]) -> u16 {
        fold(accumulate(0, data))
    }

    /// The IPv4 pseudo-header contribution for TCP/UDP (RFC 793 section 3.1).
    pub fn pseudo_header_v4(src: [u8; 4], dst: [u8; 4], proto: u8, len: u16) -> u32 {
        let mut acc = accumulate(0, &src);
        acc = accumulate(acc, &dst);
        acc + u32::from(proto) + u32::from(len)
    }

    /// The IPv6 pseudo-header contribution (RFC 8200 section 8.1).
    pub fn pseudo_header_v6(src: [u8; 16], dst: [u8; 16], next_header: u8, len: u32) -> u32 {
        let mut acc = accumulate(0, &src);
        acc = accumulate(acc, &dst);
        acc = accumulate(acc, &len.to_be_bytes());
        acc + u32::from(next_header)
    }
}

#[cfg(test)]
mod tests {
    use super::checksum;

    /// RFC 1071 as written: 16-bit words, end-around carry after each.
    fn reference(acc: u32, data: &[u8]) -> u16 {
        let mut a = acc;
        for c in data.chunks(2) {
            let w = u32::from(c[0]) << 8 | u32::from(*c.get(1).unwrap_or(&0));
            a += w;
            a = (a & 0xffff) + (a >> 16);
        }
        checksum::fold(a)
    }

    #[test]
    fn word_sums_equal_rfc_1071_for_every_length_and_start() {
        let mut x: u32 = 0x1234_5678;
        let data: Vec<u8> = (0..1600)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        for len in 0..300 {
            for acc in [0u32, 1, 0xffff, 0x1_fffe] {
                let d = &data[len..len * 5 + 3];
                assert_eq!(
                    checksum::fold(checksum::accumulate(acc, d)),
                    reference(acc, d)
                );
            }
        }
        let ones = vec![0xffu8; 65_536];
        assert_eq!(
            checksum::fold(checksum::accumulate(0, &ones)),
            reference(0, &ones)
        );
        assert!(checksum::accumulate(0xffff, &ones) <= 0x1_0000);
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3 worked example: sum is 0xddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum::data(&data), 0xddf2);
    }

    #[test]
    fn odd_length_pads_right() {
        assert_eq!(checksum::data(&[0x12]), 0x1200);
        assert_eq!(checksum::data(&[]), 0);
    }

    #[test]
    fn large_input_does_not_overflow() {
        let data = [0xffu8; 70_000];
        assert_eq!(checksum::data(&data), 0xffff);
    }
}
