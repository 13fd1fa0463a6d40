//! Ethernet II frames and IEEE 802.1Q / 802.1ad VLAN tags.
//!
//! Owns: the 14-byte Ethernet II header, the 4-byte VLAN tag, and the walk
//! over up to [`MAX_TAGS`] stacked tags to the inner EtherType.
//!
//! Must never: interpret anything past the tags, treat an 802.3 length field
//! as a protocol, or panic on a short frame.

use super::{be16, Error, Field, Rest};

/// EtherType values the dataplane recognises (IEEE registry).
pub mod ethertype {
    pub const IPV4: u16 = 0x0800;
    pub const ARP: u16 = 0x0806;
    pub const IPV6: u16 = 0x86dd;
    /// IEEE 802.1Q customer VLAN tag.
    pub const VLAN: u16 = 0x8100;
    /// IEEE 802.1ad service VLAN tag (QinQ outer tag).
    pub const QINQ: u16 = 0x88a8;
    /// Pre-standard QinQ outer tag still emitted by some switches.
    pub const QINQ_LEGACY: u16 = 0x9100;

    /// Values below 0x0600 are IEEE 802.3 length fields, not EtherTypes
    /// (IEEE 802.3 clause 3.2.6).
    pub const MIN_ETHERTYPE: u16 = 0x0600;

    /// Whether `t` announces another VLAN tag rather than a payload.
    #[inline]
    pub const fn is_vlan_tpid(t: u16) -> bool {
        matches!(t, VLAN | QINQ | QINQ_LEGACY)
    }
}

mod field {
    use super::Field;
    pub const DESTINATION: Field = 0..6;
    pub const SOURCE: Field = 6..12;
    pub const ETHERTYPE: Field = 12..14;
}

/// Length of the untagged Ethernet II header.
pub const HEADER_LEN: usize = field::ETHERTYPE.end;

/// A read-only view of an Ethernet II header.
#[derive(Debug, Clone, Copy)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Frame { buffer }
    }

    /// Wraps `buffer` after checking it holds the 14-byte header.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let frame = Self::new_unchecked(buffer);
        frame.check_len()?;
        Ok(frame)
    }

    #[inline]
    pub fn check_len(&self) -> Result<(), Error> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    pub fn dst_addr(&self) -> [u8; 6] {
        let mut a = [0u8; 6];
        a.copy_from_slice(&self.buffer.as_ref()[field::DESTINATION]);
        a
    }

    #[inline]
    pub fn src_addr(&self) -> [u8; 6] {
        let mut a = [0u8; 6];
        a.copy_from_slice(&self.buffer.as_ref()[field::SOURCE]);
        a
    }

    /// The outermost EtherType / TPID.
    #[inline]
    pub fn ethertype(&self) -> u16 {
        be16(self.buffer.as_ref(), field::ETHERTYPE.start)
    }

    /// Everything after the 14-byte header, tags included.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        const PAYLOAD: Rest = HEADER_LEN..;
        &self.buffer.as_ref()[PAYLOAD]
    }
}

mod tag_field {
    use super::Field;
    /// Tag control information: PCP (3 bits), DEI (1 bit), VID (12 bits).
    pub const TCI: Field = 0..2;
    pub const ETHERTYPE: Field = 2..4;
}

/// Length of one VLAN tag following a TPID.
pub const TAG_LEN: usize = tag_field::ETHERTYPE.end;

/// A read-only view of one VLAN tag, positioned just after its TPID (the TPID
/// itself is the preceding EtherType field).
#[derive(Debug, Clone, Copy)]
pub struct VlanTag<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> VlanTag<T> {
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        VlanTag { buffer }
    }

    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        if buffer.as_ref().len() < TAG_LEN {
            return Err(Error::Truncated);
        }
        Ok(Self::new_unchecked(buffer))
    }

    #[inline]
    pub fn tci(&self) -> u16 {
        be16(self.buffer.as_ref(), tag_field::TCI.start)
    }

    /// Priority code point (IEEE 802.1Q section 6.9.3).
    #[inline]
    pub fn pcp(&self) -> u8 {
        (self.tci() >> 13) as u8
    }

    /// Drop eligible indicator.
    #[inline]
    pub fn dei(&self) -> bool {
        self.tci() & 0x1000 != 0
    }

    /// VLAN identifier; 0 means priority-tagged only, 0xfff is reserved.
    #[inline]
    pub fn vid(&self) -> u16 {
        self.tci() & 0x0fff
    }

    /// The EtherType (or next TPID) that follows this tag.
    #[inline]
    pub fn ethertype(&self) -> u16 {
        be16(self.buffer.as_ref(), tag_field::ETHERTYPE.start)
    }
}

/// The most VLAN tags [`walk_tags`] accepts: one 802.1ad service tag plus one
/// 802.1Q customer tag. A deeper stack is reported rather than guessed at.
pub const MAX_TAGS: usize = 2;

/// Where the VLAN tag walk ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tags {
    /// VLAN IDs, outermost first; entries past `count` are zero.
    pub vids: [u16; MAX_TAGS],
    pub count: u8,
    /// The EtherType after the last tag.
    pub ethertype: u16,
    /// Offset of the first byte after the last tag (the L3 header).
    pub payload_offset: usize,
}

/// Why the tag walk failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagError {
    /// Fewer than 14 bytes.
    FrameTruncated,
    /// A TPID promised a tag the frame does not hold.
    TagTruncated,
    /// More than [`MAX_TAGS`] tags.
    TooManyTags,
}

/// Reads the Ethernet header and any stacked VLAN tags of `frame`.
#[inline]
pub fn walk_tags(frame: &[u8]) -> Result<Tags, TagError> {
    let eth = Frame::new_checked(frame).map_err(|_| TagError::FrameTruncated)?;
    let mut tags = Tags {
        vids: [0; MAX_TAGS],
        count: 0,
        ethertype: eth.ethertype(),
        payload_offset: HEADER_LEN,
    };
    while ethertype::is_vlan_tpid(tags.ethertype) {
        if usize::from(tags.count) == MAX_TAGS {
            return Err(TagError::TooManyTags);
        }
        let rest = frame.get(tags.payload_offset..).unwrap_or(&[]);
        let tag = VlanTag::new_checked(rest).map_err(|_| TagError::TagTruncated)?;
        tags.vids[usize::from(tags.count)] = tag.vid();
        tags.count += 1;
        tags.ethertype = tag.ethertype();
        tags.payload_offset += TAG_LEN;
    }
    Ok(tags)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ARP request captured on a veth link (who-has 10.99.0.2 tell 10.99.0.1).
    const ARP_REQUEST: [u8; 42] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x6e, 0x53, 0x8b, 0xdf, 0x1c, 0x91, 0x08, 0x06, 0x00,
        0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x6e, 0x53, 0x8b, 0xdf, 0x1c, 0x91, 0x0a, 0x63,
        0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x63, 0x00, 0x02,
    ];

    /// The start of a captured IPv4 TCP SYN frame with an 802.1ad tag (VID
    /// 3000) and an 802.1Q tag (VID 100, PCP 5) inserted after the MAC
    /// addresses, the way a provider edge switch does.
    const QINQ_PREFIX: [u8; 26] = [
        0xda, 0x6f, 0x93, 0x2a, 0x1d, 0xd4, 0x6e, 0x53, 0x8b, 0xdf, 0x1c, 0x91, 0x88, 0xa8, 0x0b,
        0xb8, 0x81, 0x00, 0xa0, 0x64, 0x08, 0x00, 0x45, 0x00, 0x00, 0x3c,
    ];

    #[test]
    fn arp_untagged() {
        let f = Frame::new_checked(&ARP_REQUEST[..]).unwrap();
        assert_eq!(f.dst_addr(), [0xff; 6]);
        assert_eq!(f.src_addr(), [0x6e, 0x53, 0x8b, 0xdf, 0x1c, 0x91]);
        assert_eq!(f.ethertype(), ethertype::ARP);
        assert_eq!(f.payload().len(), 28);
        let t = walk_tags(&ARP_REQUEST).unwrap();
        assert_eq!(t.count, 0);
        assert_eq!(t.ethertype, ethertype::ARP);
        assert_eq!(t.payload_offset, 14);
    }

    #[test]
    fn qinq_tags() {
        let t = walk_tags(&QINQ_PREFIX).unwrap();
        assert_eq!(t.count, 2);
        assert_eq!(t.vids, [3000, 100]);
        assert_eq!(t.ethertype, ethertype::IPV4);
        assert_eq!(t.payload_offset, 22);
        let inner = VlanTag::new_checked(&QINQ_PREFIX[18..]).unwrap();
        assert_eq!(inner.pcp(), 5);
        assert!(!inner.dei());
        assert_eq!(inner.vid(), 100);
    }

    #[test]
    fn truncations() {
        assert_eq!(walk_tags(&ARP_REQUEST[..13]), Err(TagError::FrameTruncated));
        assert_eq!(walk_tags(&[]), Err(TagError::FrameTruncated));
        // Outer tag complete, inner tag cut after its TCI.
        assert_eq!(walk_tags(&QINQ_PREFIX[..20]), Err(TagError::TagTruncated));
        assert_eq!(walk_tags(&QINQ_PREFIX[..14]), Err(TagError::TagTruncated));
    }

    #[test]
    fn three_tags_rejected() {
        let mut f = QINQ_PREFIX;
        // Make the inner tag announce yet another 802.1Q tag.
        f[20] = 0x81;
        f[21] = 0x00;
        assert_eq!(walk_tags(&f), Err(TagError::TooManyTags));
    }

    #[test]
    fn legacy_qinq_tpid() {
        let mut f = QINQ_PREFIX;
        f[12] = 0x91;
        f[13] = 0x00;
        let t = walk_tags(&f).unwrap();
        assert_eq!(t.vids, [3000, 100]);
    }
}
