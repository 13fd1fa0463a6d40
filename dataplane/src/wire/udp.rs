//! UDP headers (RFC 768).
//!
//! Owns: the 8-byte header and validation of the length field against the
//! bytes the IP layer delivered.
//!
//! Must never: require a checksum (zero is legal over IPv4, and offloads
//! leave partial sums in captured frames), or expose bytes beyond the UDP
//! length as payload.

use super::{be16, Error, Field};

mod field {
    use super::Field;
    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const LENGTH: Field = 4..6;
    pub const CHECKSUM: Field = 6..8;
}

/// Length of the header.
pub const HEADER_LEN: usize = field::CHECKSUM.end;

/// A read-only view of a UDP datagram.
#[derive(Debug, Clone, Copy)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps a datagram (bounded by the IP layer's length) after checking: 8
    /// bytes present (`Truncated`), and a length field of at least 8 that
    /// fits in the buffer (`BadLength`). A length shorter than the IP payload
    /// is accepted; the surplus is ignored as RFC 768 implies.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Like [`Packet::new_checked`] for a buffer holding only the start of
    /// the datagram: an IP first fragment or an ICMP quote. The length field
    /// must still be at least 8; [`Packet::payload`] then ends at the buffer.
    #[inline]
    pub fn new_checked_prefix(buffer: T) -> Result<Self, Error> {
        let packet = Self::new_unchecked(buffer);
        if packet.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if usize::from(packet.len()) < HEADER_LEN {
            return Err(Error::BadLength);
        }
        Ok(packet)
    }

    #[inline]
    pub fn check_len(&self) -> Result<(), Error> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let stated = usize::from(self.len());
        if stated < HEADER_LEN || stated > len {
            return Err(Error::BadLength);
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

    /// Header plus payload length as stated by the header.
    #[inline]
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::LENGTH.start)
    }

    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    /// The payload, bounded by the length field (and by the buffer, for a
    /// prefix).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        &b[HEADER_LEN..usize::from(self.len()).min(b.len())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// UDP 10.99.0.1:37469 -> 10.98.0.3:53 carrying "dnsq\n"
    const UDP4: [u8; 47] = [
        0xda, 0x6f, 0x93, 0x2a, 0x1d, 0xd4, 0x6e, 0x53, 0x8b, 0xdf, 0x1c, 0x91, 0x08, 0x00, 0x45,
        0x00, 0x00, 0x21, 0x37, 0xfc, 0x40, 0x00, 0x40, 0x11, 0xee, 0x07, 0x0a, 0x63, 0x00, 0x01,
        0x0a, 0x62, 0x00, 0x03, 0x92, 0x5d, 0x00, 0x35, 0x00, 0x0d, 0x14, 0xe7, 0x64, 0x6e, 0x73,
        0x71, 0x0a,
    ];
    /// UDP fd00:99::1:38975 -> fd00:98::3:53 carrying "dnsq6\n"
    const UDP6: [u8; 68] = [
        0xda, 0x6f, 0x93, 0x2a, 0x1d, 0xd4, 0x6e, 0x53, 0x8b, 0xdf, 0x1c, 0x91, 0x86, 0xdd, 0x60,
        0x02, 0x17, 0xd4, 0x00, 0x0e, 0x11, 0x40, 0xfd, 0x00, 0x00, 0x99, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xfd, 0x00, 0x00, 0x98, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x98, 0x3f, 0x00, 0x35, 0x00, 0x0e,
        0xfb, 0x55, 0x64, 0x6e, 0x73, 0x71, 0x36, 0x0a,
    ];

    #[test]
    fn ipv4_datagram() {
        let u = Packet::new_checked(&UDP4[34..]).unwrap();
        assert_eq!(u.src_port(), 37469);
        assert_eq!(u.dst_port(), 53);
        assert_eq!(u.len(), 13);
        assert_eq!(u.payload(), b"dnsq\n");
    }

    #[test]
    fn ipv6_datagram() {
        let u = Packet::new_checked(&UDP6[54..]).unwrap();
        assert_eq!((u.src_port(), u.dst_port()), (38975, 53));
        assert_eq!(u.payload(), b"dnsq6\n");
    }

    #[test]
    fn trailing_bytes_ignored() {
        let mut buf = [0u8; 40];
        buf[..13].copy_from_slice(&UDP4[34..]);
        let u = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(u.payload(), b"dnsq\n");
    }

    #[test]
    fn first_fragment_prefix() {
        // A 150-byte datagram of which only the first 72 bytes arrived.
        let mut buf = [0x41u8; 72];
        buf[..8].copy_from_slice(&[0x9a, 0x32, 0x14, 0xe9, 0x00, 0x9e, 0x1c, 0xb4]);
        assert_eq!(Packet::new_checked(&buf[..]).err(), Some(Error::BadLength));
        let u = Packet::new_checked_prefix(&buf[..]).unwrap();
        assert_eq!((u.src_port(), u.dst_port(), u.len()), (39474, 5353, 158));
        assert_eq!(u.payload().len(), 64);
        buf[5] = 7;
        assert_eq!(
            Packet::new_checked_prefix(&buf[..]).err(),
            Some(Error::BadLength)
        );
    }

    #[test]
    fn length_errors() {
        let d = &UDP4[34..];
        assert_eq!(Packet::new_checked(&d[..7]).err(), Some(Error::Truncated));
        assert_eq!(Packet::new_checked(&d[..12]).err(), Some(Error::BadLength));
        let mut f = UDP4;
        f[39] = 7;
        assert_eq!(Packet::new_checked(&f[34..]).err(), Some(Error::BadLength));
    }
}
