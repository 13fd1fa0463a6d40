//! One-pass frame parser producing the per-packet summary the engine uses.
//!
//! Owns: turning a raw Ethernet frame into a [`ParsedPacket`] (VLANs, L3
//! addresses, final protocol, fragment state, ports / ICMP type, TCP flags,
//! payload bounds) and naming every way that can fail ([`ParseError`]), plus
//! the lenient parse of the packet quoted inside an ICMP error.
//!
//! Must never: allocate, panic on any input, verify checksums (offloads make
//! them unreliable here; see `wire::ipv4`), reassemble fragments, or decide
//! what to do with a packet. A `ParseError` is a fact for counters and
//! policy, not a verdict.

use crate::wire::ethernet::{self, ethertype, TagError};
use crate::wire::{icmp, ipv4, ipv6, protocol, tcp, udp, Error as WireError};
use core::fmt;

/// The network layer found in a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum L3 {
    Ipv4,
    Ipv6,
    /// Any other EtherType (ARP, LLDP, ...) or an 802.3 length frame.
    Other,
}

/// Where a packet sits in a fragmented datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fragment {
    /// A whole datagram, including IPv6 atomic fragments (RFC 6946).
    None,
    /// Offset zero with more fragments following: the L4 header is here.
    First,
    /// Non-zero offset: no L4 header, ports are 0.
    Later,
}

/// The per-packet summary. All offsets are from the start of the frame and
/// lie within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedPacket {
    pub vlan_count: u8,
    /// VLAN IDs, outer to inner; unused entries are 0.
    pub vlans: [u16; 2],
    /// The EtherType after any VLAN tags.
    pub ethertype: u16,
    pub l3: L3,
    pub l3_offset: u16,
    /// Start of the upper-layer header (after IPv6 extension headers), or of
    /// the fragment data for a [`Fragment::Later`] packet. Meaningful only
    /// when `l3` is IP.
    pub l4_offset: u16,
    /// IPv4 addresses occupy the first 4 bytes; the rest is zero.
    pub src: [u8; 16],
    pub dst: [u8; 16],
    /// IPv4 protocol, or the IPv6 Next Header where the extension-header walk
    /// stopped (so ESP is 50 and "no next header" is 59).
    pub proto: u8,
    pub fragment: Fragment,
    /// TCP/UDP ports; for ICMP echo request/reply the identifier in both;
    /// 0 for everything else.
    pub src_port: u16,
    pub dst_port: u16,
    /// ICMP/ICMPv6 type and code; 0 unless the L4 header is ICMP.
    pub icmp_type: u8,
    pub icmp_code: u8,
    /// The TCP flags octet (see `wire::tcp::flags`); 0 unless TCP.
    pub tcp_flags: u8,
    /// The L4 payload: after the TCP/UDP/ICMP header, the whole upper layer
    /// for other protocols, or the fragment data of a later fragment. For
    /// non-IP frames, everything after the EtherType.
    pub payload_offset: u16,
    pub payload_len: u16,
}

impl ParsedPacket {
    /// A summary of a frame with nothing in it; the parser's starting point.
    pub const EMPTY: ParsedPacket = ParsedPacket {
        vlan_count: 0,
        vlans: [0; 2],
        ethertype: 0,
        l3: L3::Other,
        l3_offset: 0,
        l4_offset: 0,
        src: [0; 16],
        dst: [0; 16],
        proto: 0,
        fragment: Fragment::None,
        src_port: 0,
        dst_port: 0,
        icmp_type: 0,
        icmp_code: 0,
        tcp_flags: 0,
        payload_offset: 0,
        payload_len: 0,
    };

    #[inline]
    pub fn is_ip(&self) -> bool {
        self.l3 != L3::Other
    }

    /// Whether a TCP, UDP or ICMP header was parsed (so ports, flags or ICMP
    /// type are real rather than defaults).
    #[inline]
    pub fn has_l4(&self) -> bool {
        self.fragment != Fragment::Later
            && matches!(
                (self.l3, self.proto),
                (L3::Ipv4 | L3::Ipv6, protocol::TCP | protocol::UDP)
                    | (L3::Ipv4, protocol::ICMP)
                    | (L3::Ipv6, protocol::ICMPV6)
            )
    }

    /// Whether the L4 header is ICMP of the packet's IP version.
    #[inline]
    pub fn is_icmp(&self) -> bool {
        matches!(
            (self.l3, self.proto),
            (L3::Ipv4, protocol::ICMP) | (L3::Ipv6, protocol::ICMPV6)
        )
    }

    #[inline]
    pub fn src_v4(&self) -> [u8; 4] {
        [self.src[0], self.src[1], self.src[2], self.src[3]]
    }

    #[inline]
    pub fn dst_v4(&self) -> [u8; 4] {
        [self.dst[0], self.dst[1], self.dst[2], self.dst[3]]
    }
}

/// Declares `ParseError` with its counter names and descriptions in one
/// table, so the three can never drift apart.
macro_rules! parse_errors {
    ($($variant:ident => $name:literal, $desc:literal;)*) => {
        /// Why a frame could not be summarised, by layer and problem.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum ParseError {
            $(#[doc = $desc] $variant,)*
        }

        impl ParseError {
            /// Number of variants, for sizing per-error counter arrays.
            pub const COUNT: usize = <[&str]>::len(&[$($name),*]);

            /// Every variant, in [`ParseError::index`] order.
            pub const ALL: [ParseError; Self::COUNT] = [$(ParseError::$variant),*];

            /// A dense index in `0..COUNT`, for counter arrays.
            #[inline]
            pub const fn index(self) -> usize {
                self as usize
            }

            /// A stable snake_case counter name such as
            /// `"ipv4_bad_header_length"`.
            pub const fn name(self) -> &'static str {
                match self {
                    $(ParseError::$variant => $name,)*
                }
            }

            /// A one-line human description.
            pub const fn description(self) -> &'static str {
                match self {
                    $(ParseError::$variant => $desc,)*
                }
            }
        }
    };
}

parse_errors! {
    EthernetTruncated => "ethernet_truncated", "frame shorter than an Ethernet header";
    VlanTruncated => "vlan_truncated", "VLAN TPID not followed by a whole tag";
    VlanTooManyTags => "vlan_too_many_tags", "more than two stacked VLAN tags";
    Ipv4Truncated => "ipv4_truncated", "frame shorter than the IPv4 header or total length";
    Ipv4BadVersion => "ipv4_bad_version", "IPv4 EtherType but IP version is not 4";
    Ipv4BadHeaderLength => "ipv4_bad_header_length", "IPv4 IHL below 5";
    Ipv4BadTotalLength => "ipv4_bad_total_length", "IPv4 total length smaller than its header";
    Ipv4BadOptions => "ipv4_bad_options", "IPv4 option with an impossible length";
    Ipv6Truncated => "ipv6_truncated", "frame shorter than the IPv6 header or payload length";
    Ipv6BadVersion => "ipv6_bad_version", "IPv6 EtherType but IP version is not 6";
    Ipv6ExtHeaderTruncated => "ipv6_ext_header_truncated", "IPv6 extension header runs past the payload";
    Ipv6TooManyExtHeaders => "ipv6_too_many_ext_headers", "IPv6 extension-header chain longer than 8";
    Ipv6HopByHopNotFirst => "ipv6_hop_by_hop_not_first", "IPv6 hop-by-hop header after another extension header";
    TcpTruncated => "tcp_truncated", "fewer than 20 bytes for the TCP header";
    TcpBadDataOffset => "tcp_bad_data_offset", "TCP data offset below 5 or past the segment end";
    UdpTruncated => "udp_truncated", "fewer than 8 bytes for the UDP header";
    UdpBadLength => "udp_bad_length", "UDP length below 8 or past the IP payload end";
    IcmpTruncated => "icmp_truncated", "fewer than 8 bytes for the ICMP header";
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.description(), self.name())
    }
}

impl std::error::Error for ParseError {}

#[inline]
fn ipv4_error(e: WireError) -> ParseError {
    match e {
        WireError::BadVersion => ParseError::Ipv4BadVersion,
        WireError::BadHeaderLength => ParseError::Ipv4BadHeaderLength,
        WireError::BadLength => ParseError::Ipv4BadTotalLength,
        WireError::BadOption => ParseError::Ipv4BadOptions,
        _ => ParseError::Ipv4Truncated,
    }
}

#[inline]
fn ipv6_error(e: WireError) -> ParseError {
    match e {
        WireError::BadVersion => ParseError::Ipv6BadVersion,
        _ => ParseError::Ipv6Truncated,
    }
}

#[inline]
fn ipv6_ext_error(e: WireError) -> ParseError {
    match e {
        WireError::TooManyHeaders => ParseError::Ipv6TooManyExtHeaders,
        WireError::BadHeaderOrder => ParseError::Ipv6HopByHopNotFirst,
        _ => ParseError::Ipv6ExtHeaderTruncated,
    }
}

/// How strictly lengths are held against the buffer.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// A frame off the wire: every length field must fit.
    Frame,
    /// A packet quoted in an ICMP error: cut short by design, so only the
    /// headers needed for the flow key (IP header and 8 bytes, RFC 792) must
    /// be present.
    Quoted,
}

/// Offsets and lengths are bounded by an IP total/payload length (16 bits)
/// plus a few headers, and frames off a DPDK port are far shorter than 64 KiB;
/// saturate instead of wrapping should a caller ever pass a larger buffer.
#[inline(always)]
fn off16(x: usize) -> u16 {
    u16::try_from(x).unwrap_or(u16::MAX)
}

/// Parses an Ethernet frame into a [`ParsedPacket`].
///
/// Non-IP frames are `Ok` with `l3: L3::Other`; unknown IP protocols and
/// non-first fragments are `Ok` with zero ports. Errors name the first layer
/// found malformed.
#[inline]
pub fn parse_frame(frame: &[u8]) -> Result<ParsedPacket, ParseError> {
    let mut p = ParsedPacket::EMPTY;
    parse_frame_into(frame, &mut p)?;
    Ok(p)
}

/// [`parse_frame`] into a summary the caller holds (`ParsedPacket::EMPTY` or a reused one,
/// which this overwrites): the per-packet path parses in place instead of copying the summary
/// out of a `Result`.
#[inline(always)]
pub fn parse_frame_into(frame: &[u8], p: &mut ParsedPacket) -> Result<(), ParseError> {
    let tags = ethernet::walk_tags(frame).map_err(|e| match e {
        TagError::FrameTruncated => ParseError::EthernetTruncated,
        TagError::TagTruncated => ParseError::VlanTruncated,
        TagError::TooManyTags => ParseError::VlanTooManyTags,
    })?;
    *p = ParsedPacket::EMPTY;
    p.vlan_count = tags.count;
    p.vlans = tags.vids;
    p.ethertype = tags.ethertype;
    p.l3_offset = off16(tags.payload_offset);
    let l3 = frame.get(tags.payload_offset..).unwrap_or(&[]);
    match tags.ethertype {
        ethertype::IPV4 => parse_ipv4(l3, tags.payload_offset, Mode::Frame, p)?,
        ethertype::IPV6 => parse_ipv6(l3, tags.payload_offset, Mode::Frame, p)?,
        _ => {
            p.payload_offset = p.l3_offset;
            p.payload_len = off16(l3.len());
        }
    }
    Ok(())
}

/// What [`parse_fast`] reads of the common frame: untagged Ethernet, IPv4 without options,
/// not a fragment, TCP or UDP. Addresses as big-endian values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FastPacket {
    pub src: u32,
    pub dst: u32,
    pub src_port: u16,
    pub dst_port: u16,
    pub proto: u8,
    /// Start of the TCP/UDP header (always 34) and of the payload, and its length.
    pub l4_offset: u16,
    pub payload_offset: u16,
    pub payload_len: u16,
}

/// The per-packet path's shortcut for the frame almost all traffic is: untagged Ethernet,
/// IPv4 without options, unfragmented, TCP or UDP. Reads the fields straight into registers
/// (the general parse builds a summary in memory that the next stage reads back at once,
/// which stalls store forwarding). `None` for every other frame, which then takes
/// [`parse_frame`]; when this accepts a frame, `parse_frame` accepts it too with the same
/// addresses, ports, protocol and offsets (a property test holds the two together).
#[inline(always)]
pub fn parse_fast(frame: &[u8]) -> Option<FastPacket> {
    const L3: usize = ethernet::HEADER_LEN;
    const L4: usize = L3 + ipv4::HEADER_LEN;
    let h: &[u8; L4 + 4] = frame.first_chunk()?;
    let be16 = |i: usize| crate::wire::be16(h, i);
    let be32 = |i: usize| crate::wire::be32(h, i);
    // EtherType IPv4; version 4 with a 20-byte header; no MF flag, offset 0.
    if (be16(12) != ethertype::IPV4) | (h[L3] != 0x45) | (be16(L3 + 6) & 0x3fff != 0) {
        return None;
    }
    let total = usize::from(be16(L3 + 2));
    if total < ipv4::HEADER_LEN || L3 + total > frame.len() {
        return None;
    }
    let l4 = &frame[L4..L3 + total];
    let proto = h[L3 + 9];
    let (start, end) = match proto {
        protocol::TCP => {
            let hl = usize::from(*l4.get(12)? >> 4) * 4;
            if l4.len() < tcp::HEADER_LEN || hl < tcp::HEADER_LEN || hl > l4.len() {
                return None;
            }
            (hl, l4.len())
        }
        protocol::UDP => {
            if l4.len() < udp::HEADER_LEN {
                return None;
            }
            let stated = usize::from(crate::wire::be16(l4, 4));
            if stated < udp::HEADER_LEN || stated > l4.len() {
                return None;
            }
            (udp::HEADER_LEN, stated)
        }
        _ => return None,
    };
    Some(FastPacket {
        src: be32(L3 + 12),
        dst: be32(L3 + 16),
        src_port: be16(L4),
        dst_port: be16(L4 + 2),
        proto,
        l4_offset: L4 as u16,
        payload_offset: (L4 + start) as u16,
        payload_len: (end - start) as u16,
    })
}

/// Parses the invoking packet quoted by an ICMP error (the bytes from
/// `wire::icmp::Packet::embedded`), tolerating the truncation quoting
/// implies. `l3` is the quoting packet's family: ICMPv4 quotes IPv4 and
/// ICMPv6 quotes IPv6. Offsets in the result are relative to `quoted`, and
/// `src`/`dst`/ports are those of the original packet, so reversing them
/// gives the direction the error travels in.
pub fn parse_quoted(quoted: &[u8], l3: L3) -> Result<ParsedPacket, ParseError> {
    let mut p = ParsedPacket::EMPTY;
    match l3 {
        L3::Ipv4 => {
            p.ethertype = ethertype::IPV4;
            parse_ipv4(quoted, 0, Mode::Quoted, &mut p)?;
        }
        L3::Ipv6 => {
            p.ethertype = ethertype::IPV6;
            parse_ipv6(quoted, 0, Mode::Quoted, &mut p)?;
        }
        L3::Other => {}
    }
    Ok(p)
}

/// An IPv4 address in the first 4 bytes of 16, built in a register and stored at once: a 4-byte
/// store followed by the 16-byte load of the flow key stalls store forwarding (measured ~10
/// cycles/packet).
#[inline(always)]
fn widen_v4(a: [u8; 4]) -> [u8; 16] {
    (u32::from_le_bytes(a) as u128).to_le_bytes()
}

#[inline]
fn parse_ipv4(
    bytes: &[u8],
    base: usize,
    mode: Mode,
    p: &mut ParsedPacket,
) -> Result<(), ParseError> {
    let ip = match mode {
        Mode::Frame => ipv4::Packet::new_checked(bytes),
        Mode::Quoted => ipv4::Packet::new_checked_quoted(bytes),
    }
    .map_err(ipv4_error)?;
    p.l3 = L3::Ipv4;
    p.src = widen_v4(ip.src_addr());
    p.dst = widen_v4(ip.dst_addr());
    p.proto = ip.protocol();
    p.fragment = if !ip.is_fragment() {
        Fragment::None
    } else if ip.frag_offset() == 0 {
        Fragment::First
    } else {
        Fragment::Later
    };
    let l4_offset = base + ip.header_len();
    parse_l4(ip.payload(), l4_offset, mode, p)
}

#[inline]
fn parse_ipv6(
    bytes: &[u8],
    base: usize,
    mode: Mode,
    p: &mut ParsedPacket,
) -> Result<(), ParseError> {
    let ip = match mode {
        Mode::Frame => ipv6::Packet::new_checked(bytes),
        Mode::Quoted => ipv6::Packet::new_checked_quoted(bytes),
    }
    .map_err(ipv6_error)?;
    p.l3 = L3::Ipv6;
    p.src = ip.src_addr();
    p.dst = ip.dst_addr();
    let chain = ip.walk_ext_headers().map_err(ipv6_ext_error)?;
    p.proto = chain.protocol;
    p.fragment = match chain.fragment {
        None => Fragment::None,
        Some(f) if f.is_atomic() => Fragment::None,
        Some(f) if f.offset == 0 => Fragment::First,
        Some(_) => Fragment::Later,
    };
    let l4 = ip.packet_bytes().get(chain.offset..).unwrap_or(&[]);
    parse_l4(l4, base + chain.offset, mode, p)
}

/// Fills the L4 fields from `l4`, the IP payload after any extension
/// headers, which starts `l4_offset` bytes into the frame.
#[inline]
fn parse_l4(
    l4: &[u8],
    l4_offset: usize,
    mode: Mode,
    p: &mut ParsedPacket,
) -> Result<(), ParseError> {
    p.l4_offset = off16(l4_offset);
    // The payload as a range within `l4`: the whole upper layer unless a
    // known L4 header says otherwise.
    let (start, end) = if p.fragment == Fragment::Later {
        (0, l4.len())
    } else {
        match (p.proto, p.l3) {
            (protocol::TCP, _) => parse_tcp(l4, mode, p)?,
            (protocol::UDP, _) => parse_udp(l4, mode, p)?,
            (protocol::ICMP, L3::Ipv4) => parse_icmp(l4, icmp::Version::V4, p)?,
            (protocol::ICMPV6, L3::Ipv6) => parse_icmp(l4, icmp::Version::V6, p)?,
            _ => (0, l4.len()),
        }
    };
    p.payload_offset = off16(l4_offset + start);
    p.payload_len = off16(end - start);
    Ok(())
}

/// Each L4 parser returns its payload as `(start, end)` within `l4`, with
/// `start <= end <= l4.len()`.
type PayloadRange = (usize, usize);

#[inline]
fn parse_tcp(l4: &[u8], mode: Mode, p: &mut ParsedPacket) -> Result<PayloadRange, ParseError> {
    match tcp::Packet::new_checked(l4) {
        Ok(seg) => {
            p.src_port = seg.src_port();
            p.dst_port = seg.dst_port();
            p.tcp_flags = seg.flags();
            Ok((seg.header_len(), l4.len()))
        }
        // A quote holds at least the ports and sequence number (RFC 792's
        // 64 bits), which is all a flow lookup needs.
        Err(_) if mode == Mode::Quoted && l4.len() >= 8 => {
            let seg = tcp::Packet::new_unchecked(l4);
            p.src_port = seg.src_port();
            p.dst_port = seg.dst_port();
            if l4.len() >= tcp::HEADER_LEN {
                p.tcp_flags = seg.flags();
            }
            Ok((l4.len(), l4.len()))
        }
        Err(WireError::Truncated) => Err(ParseError::TcpTruncated),
        Err(_) => Err(ParseError::TcpBadDataOffset),
    }
}

#[inline]
fn parse_udp(l4: &[u8], mode: Mode, p: &mut ParsedPacket) -> Result<PayloadRange, ParseError> {
    // A first fragment or a quote holds only the start of the datagram, so
    // its length field describes bytes that are elsewhere.
    let checked = if mode == Mode::Quoted || p.fragment == Fragment::First {
        udp::Packet::new_checked_prefix(l4)
    } else {
        udp::Packet::new_checked(l4)
    };
    let dgram = checked.map_err(|e| match e {
        WireError::Truncated => ParseError::UdpTruncated,
        _ => ParseError::UdpBadLength,
    })?;
    p.src_port = dgram.src_port();
    p.dst_port = dgram.dst_port();
    // The UDP length, not the IP length, ends the payload (RFC 768).
    let end = usize::from(dgram.len()).min(l4.len());
    Ok((udp::HEADER_LEN, end))
}

#[inline]
fn parse_icmp(
    l4: &[u8],
    version: icmp::Version,
    p: &mut ParsedPacket,
) -> Result<PayloadRange, ParseError> {
    let msg = icmp::Packet::new_checked(l4, version).map_err(|_| ParseError::IcmpTruncated)?;
    p.icmp_type = msg.msg_type();
    p.icmp_code = msg.code();
    if let Some(id) = msg.echo_ident() {
        p.src_port = id;
        p.dst_port = id;
    }
    Ok((icmp::HEADER_LEN, l4.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::tcp::flags;

    /// TCP SYN 10.99.0.1:45478 -> 10.98.0.3:8080
    const IPV4_SYN: [u8; 74] = [
        0xda, 0x6f, 0x93, 0x2a, 0x1d, 0xd4, 0x6e, 0x53, 0x8b, 0xdf, 0x1c, 0x91, 0x08, 0x00, 0x45,
        0x00, 0x00, 0x3c, 0xa4, 0x68, 0x40, 0x00, 0x40, 0x06, 0x81, 0x8b, 0x0a, 0x63, 0x00, 0x01,
        0x0a, 0x62, 0x00, 0x03, 0xb1, 0xa6, 0x1f, 0x90, 0x1a, 0x15, 0x48, 0x7d, 0x00, 0x00, 0x00,
        0x00, 0xa0, 0x02, 0xfb, 0xe0, 0x14, 0xf7, 0x00, 0x00, 0x02, 0x04, 0x04, 0xd8, 0x04, 0x02,
        0x08, 0x0a, 0x1e, 0x25, 0xcc, 0x80, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x0a,
    ];
    /// TCP PSH|ACK 10.99.0.1:45478 -> 10.98.0.3:8080 with 6 bytes of data
    const IPV4_PSH: [u8; 72] = [
        0xda, 0x6f, 0x93, 0x2a, 0x1d, 0xd4, 0x6e, 0x53, 0x8b, 0xdf, 0x1c, 0x91, 0x08, 0x00, 0x45,
        0x00, 0x00, 0x3a, 0xa4, 0x6a, 0x40, 0x00, 0x40, 0x06, 0x81, 0x8b, 0x0a, 0x63, 0x00, 0x01,
        0x0a, 0x62, 0x00, 0x03, 0xb1, 0xa6, 0x1f, 0x90, 0x1a, 0x15, 0x48, 0x7e, 0xaa, 0xb5, 0xdf,
        0x07, 0x80, 0x18, 0x00, 0x3f, 0x14, 0xf5, 0x00, 0x00, 0x01, 0x01, 0x08, 0x0a, 0x1e, 0x25,
        0xcc, 0x80, 0xb0, 0x92, 0x94, 0xd0, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x0a,
    ];
    /// TCP PSH|ACK fd00:99::1:42972 -> fd00:98::3:8081 with 7 bytes of data
    const IPV6_DATA: [u8; 93] = [
        0xda, 0x6f, 0x93, 0x2a, 0x1d, 0xd4, 0x6e, 0x53, 0x8b, 0xdf, 0x1c, 0x91, 0x86, 0xdd, 0x60,
        0x0f, 0x6a, 0x23, 0x00, 0x27, 0x06, 0x40, 0xfd, 0x00, 0x00, 0x99, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xfd, 0x00, 0x00, 0x98, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xa7, 0xdc, 0x1f, 0x91, 0x57, 0xf4,
        0x06, 0x14, 0xc9, 0x5d, 0x12, 0xbe, 0x80, 0x18, 0x00, 0x40, 0xfb, 0x63, 0x00, 0x00, 0x01,
        0x01, 0x08, 0x0a, 0xf2, 0x1f, 0x3b, 0xa2, 0x0b, 0xfa, 0xc2, 0x3a, 0x68, 0x65, 0x6c, 0x6c,
        0x6f, 0x36, 0x0a,
    ];
    /// UDP 10.99.0.1:37469 -> 10.98.0.3:53
    const UDP4: [u8; 47] = [
        0xda, 0x6f, 0x93, 0x2a, 0x1d, 0xd4, 0x6e, 0x53, 0x8b, 0xdf, 0x1c, 0x91, 0x08, 0x00, 0x45,
        0x00, 0x00, 0x21, 0x37, 0xfc, 0x40, 0x00, 0x40, 0x11, 0xee, 0x07, 0x0a, 0x63, 0x00, 0x01,
        0x0a, 0x62, 0x00, 0x03, 0x92, 0x5d, 0x00, 0x35, 0x00, 0x0d, 0x14, 0xe7, 0x64, 0x6e, 0x73,
        0x71, 0x0a,
    ];
    /// UDP fd00:99::1:38975 -> fd00:98::3:53
    const UDP6: [u8; 68] = [
        0xda, 0x6f, 0x93, 0x2a, 0x1d, 0xd4, 0x6e, 0x53, 0x8b, 0xdf, 0x1c, 0x91, 0x86, 0xdd, 0x60,
        0x02, 0x17, 0xd4, 0x00, 0x0e, 0x11, 0x40, 0xfd, 0x00, 0x00, 0x99, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xfd, 0x00, 0x00, 0x98, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x98, 0x3f, 0x00, 0x35, 0x00, 0x0e,
        0xfb, 0x55, 0x64, 0x6e, 0x73, 0x71, 0x36, 0x0a,
    ];
    /// ICMP echo request 10.99.0.1 -> 10.99.0.2, id 9961
    const ECHO4_REQUEST: [u8; 98] = [
        0xda, 0x6f, 0x93, 0x2a, 0x1d, 0xd4, 0x6e, 0x53, 0x8b, 0xdf, 0x1c, 0x91, 0x08, 0x00, 0x45,
        0x00, 0x00, 0x54, 0xc8, 0xc8, 0x40, 0x00, 0x40, 0x01, 0x5d, 0x18, 0x0a, 0x63, 0x00, 0x01,
        0x0a, 0x63, 0x00, 0x02, 0x08, 0x00, 0xd4, 0x8d, 0x26, 0xe9, 0x00, 0x01, 0x7b, 0x36, 0x01,
        0x6b, 0x00, 0x00, 0x00, 0x00, 0xbe, 0x13, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x11,
        0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20,
        0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f,
        0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37,
    ];
    /// ICMP echo reply 10.99.0.2 -> 10.99.0.1, id 9961
    const ECHO4_REPLY: [u8; 98] = [
        0x6e, 0x53, 0x8b, 0xdf, 0x1c, 0x91, 0xda, 0x6f, 0x93, 0x2a, 0x1d, 0xd4, 0x08, 0x00, 0x45,
        0x00, 0x00, 0x54, 0x05, 0x35, 0x00, 0x00, 0x40, 0x01, 0x60, 0xac, 0x0a, 0x63, 0x00, 0x02,
        0x0a, 0x63, 0x00, 0x01, 0x00, 0x00, 0xdc, 0x8d, 0x26, 0xe9, 0x00, 0x01, 0x7b, 0x36, 0x01,
        0x6b, 0x00, 0x00, 0x00, 0x00, 0xbe, 0x13, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x11,
        0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20,
        0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f,
        0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37,
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
    /// ICMP port unreachable from 10.98.0.3 quoting UDP 10.99.0.1:37469 -> 10.98.0.3:53
    const PORT_UNREACH4: [u8; 75] = [
        0x6e, 0x53, 0x8b, 0xdf, 0x1c, 0x91, 0xda, 0x6f, 0x93, 0x2a, 0x1d, 0xd4, 0x08, 0x00, 0x45,
        0xc0, 0x00, 0x3d, 0xf0, 0x0c, 0x00, 0x00, 0x3f, 0x01, 0x76, 0x2b, 0x0a, 0x62, 0x00, 0x03,
        0x0a, 0x63, 0x00, 0x01, 0x03, 0x03, 0x73, 0x96, 0x00, 0x00, 0x00, 0x00, 0x45, 0x00, 0x00,
        0x21, 0x37, 0xfc, 0x40, 0x00, 0x3f, 0x11, 0xef, 0x07, 0x0a, 0x63, 0x00, 0x01, 0x0a, 0x62,
        0x00, 0x03, 0x92, 0x5d, 0x00, 0x35, 0x00, 0x0d, 0x14, 0xe7, 0x64, 0x6e, 0x73, 0x71, 0x0a,
    ];
    /// ICMPv6 port unreachable from fd00:98::3 quoting UDP fd00:99::1:38975 -> fd00:98::3:53
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
    /// ICMPv6 time exceeded from router fd00:99::2 quoting an echo request, id 9968
    const TIME_EXCEEDED6: [u8; 166] = [
        0x6e, 0x53, 0x8b, 0xdf, 0x1c, 0x91, 0xda, 0x6f, 0x93, 0x2a, 0x1d, 0xd4, 0x86, 0xdd, 0x60,
        0x00, 0x05, 0x1d, 0x00, 0x70, 0x3a, 0x40, 0xfd, 0x00, 0x00, 0x99, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0xfd, 0x00, 0x00, 0x99, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x00, 0x0b, 0xa9, 0x00, 0x00,
        0x00, 0x00, 0x60, 0x0a, 0x5b, 0xa4, 0x00, 0x40, 0x3a, 0x01, 0xfd, 0x00, 0x00, 0x99, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xfd, 0x00, 0x00, 0x98,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x80, 0x00, 0x6c,
        0x7d, 0x26, 0xf0, 0x00, 0x01, 0x7c, 0x36, 0x01, 0x6b, 0x00, 0x00, 0x00, 0x00, 0xb1, 0x6b,
        0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18,
        0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27,
        0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36,
        0x37,
    ];
    /// ICMP port unreachable quoting the reassembled 178-byte UDP datagram, of which only 60 bytes are quoted
    const REASSEMBLED_QUOTE4: [u8; 110] = [
        0x62, 0x43, 0xe1, 0xd0, 0x90, 0x2d, 0x9a, 0xc2, 0x87, 0xc3, 0x8f, 0x57, 0x08, 0x00, 0x45,
        0xc0, 0x00, 0x60, 0xae, 0xfd, 0x00, 0x00, 0x40, 0x01, 0xb6, 0x1b, 0x0a, 0x61, 0x00, 0x02,
        0x0a, 0x61, 0x00, 0x01, 0x03, 0x03, 0x17, 0x76, 0x00, 0x00, 0x00, 0x00, 0x45, 0x00, 0x00,
        0xb2, 0xbf, 0x74, 0x00, 0x00, 0x40, 0x11, 0xa6, 0x02, 0x0a, 0x61, 0x00, 0x01, 0x0a, 0x61,
        0x00, 0x02, 0x9a, 0x32, 0x14, 0xe9, 0x00, 0x9e, 0x1c, 0xb4, 0x41, 0x41, 0x41, 0x41, 0x41,
        0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41,
        0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41,
        0x41, 0x41, 0x41, 0x41, 0x41,
    ];
    /// First fragment (MF, offset 0) of a UDP datagram 10.97.0.1:39474 -> 10.97.0.2:5353
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
    /// Last fragment (offset 144) of the same datagram
    const FRAG_LAST: [u8; 48] = [
        0x9a, 0xc2, 0x87, 0xc3, 0x8f, 0x57, 0x62, 0x43, 0xe1, 0xd0, 0x90, 0x2d, 0x08, 0x00, 0x45,
        0x00, 0x00, 0x22, 0xbf, 0x74, 0x00, 0x12, 0x40, 0x11, 0xa6, 0x80, 0x0a, 0x61, 0x00, 0x01,
        0x0a, 0x61, 0x00, 0x02, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41,
        0x41, 0x41, 0x41,
    ];
    /// Last fragment (offset 2896) of an ICMPv6 echo request fd00:99::1 -> fd00:99::2
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
    /// UDP fd00:99::1:52177 -> fd00:99::2:7777 behind hop-by-hop and destination-options headers
    const HBH_DSTOPT: [u8; 81] = [
        0xda, 0x6f, 0x93, 0x2a, 0x1d, 0xd4, 0x6e, 0x53, 0x8b, 0xdf, 0x1c, 0x91, 0x86, 0xdd, 0x60,
        0x02, 0x48, 0x1e, 0x00, 0x1b, 0x00, 0x40, 0xfd, 0x00, 0x00, 0x99, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xfd, 0x00, 0x00, 0x99, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x3c, 0x00, 0x01, 0x04, 0x00, 0x00,
        0x00, 0x00, 0x11, 0x00, 0x1e, 0x00, 0x01, 0x02, 0x00, 0x00, 0xcb, 0xd1, 0x1e, 0x61, 0x00,
        0x0b, 0x40, 0xf6, 0x65, 0x78, 0x74,
    ];
    /// UDP fd00:99::1:59128 -> fd00:97::5:7781 behind a segment routing header
    const SRH: [u8; 104] = [
        0xda, 0x6f, 0x93, 0x2a, 0x1d, 0xd4, 0x6e, 0x53, 0x8b, 0xdf, 0x1c, 0x91, 0x86, 0xdd, 0x60,
        0x09, 0xa2, 0x9d, 0x00, 0x32, 0x2b, 0x40, 0xfd, 0x00, 0x00, 0x99, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xfd, 0x00, 0x00, 0x99, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x11, 0x04, 0x04, 0x01, 0x01, 0x00,
        0x00, 0x00, 0xfd, 0x00, 0x00, 0x97, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x05, 0xfd, 0x00, 0x00, 0x99, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x02, 0xe6, 0xf8, 0x1e, 0x65, 0x00, 0x0a, 0xfb, 0x52, 0x78, 0x0a,
    ];
    /// MLDv2 report (ICMPv6 type 143) behind a hop-by-hop Router Alert
    const MLD_REPORT: [u8; 90] = [
        0x33, 0x33, 0x00, 0x00, 0x00, 0x16, 0x6e, 0x53, 0x8b, 0xdf, 0x1c, 0x91, 0x86, 0xdd, 0x60,
        0x00, 0x00, 0x00, 0x00, 0x24, 0x00, 0x01, 0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x6c, 0x53, 0x8b, 0xff, 0xfe, 0xdf, 0x1c, 0x91, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x16, 0x3a, 0x00, 0x05, 0x02, 0x00, 0x00,
        0x01, 0x00, 0x8f, 0x00, 0x5c, 0x43, 0x00, 0x00, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00, 0xff,
        0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x03,
    ];
    /// ARP request who-has 10.99.0.2
    const ARP_REQUEST: [u8; 42] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x6e, 0x53, 0x8b, 0xdf, 0x1c, 0x91, 0x08, 0x06, 0x00,
        0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x6e, 0x53, 0x8b, 0xdf, 0x1c, 0x91, 0x0a, 0x63,
        0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x63, 0x00, 0x02,
    ];
    /// ICMP echo request with a Record Route option (IHL 15)
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
    /// First 86 bytes of the first fragment (M set, offset 0) of an ICMPv6 echo request fd00:99::1 -> fd00:98::3, id 9966; see `frag6_first`
    const FRAG6_FIRST_PREFIX: [u8; 86] = [
        0xda, 0x6f, 0x93, 0x2a, 0x1d, 0xd4, 0x6e, 0x53, 0x8b, 0xdf, 0x1c, 0x91, 0x86, 0xdd, 0x60,
        0x0a, 0x5b, 0xa4, 0x04, 0xd8, 0x2c, 0x40, 0xfd, 0x00, 0x00, 0x99, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xfd, 0x00, 0x00, 0x98, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x3a, 0x00, 0x00, 0x01, 0xc3, 0xc4,
        0x89, 0x91, 0x80, 0x00, 0x71, 0x10, 0x26, 0xee, 0x00, 0x01, 0x7c, 0x36, 0x01, 0x6b, 0x00,
        0x00, 0x00, 0x00, 0xfb, 0x50, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00,
    ];

    /// The full first fragment: ping fills its payload after the timestamp
    /// with the byte's offset from the ICMPv6 data start (iputils `fill`).
    fn frag6_first() -> Vec<u8> {
        let mut f = FRAG6_FIRST_PREFIX.to_vec();
        f.extend((FRAG6_FIRST_PREFIX.len()..1294).map(|i| (i - 70) as u8));
        f
    }

    /// Inserts VLAN tags (TPID, TCI), outermost first, after the MACs.
    fn tagged(frame: &[u8], tags: &[(u16, u16)]) -> Vec<u8> {
        let mut f = frame[..12].to_vec();
        for &(tpid, tci) in tags {
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&tci.to_be_bytes());
        }
        f.extend_from_slice(&frame[12..]);
        f
    }

    /// Inserts `n` empty destination-options headers after an untagged IPv6
    /// frame's fixed header.
    fn with_dst_opts(frame: &[u8], n: usize) -> Vec<u8> {
        let mut f = frame[..54].to_vec();
        let first = f[20];
        f[20] = protocol::IPV6_DST_OPTS;
        let plen = u16::from_be_bytes([f[18], f[19]]) + 8 * n as u16;
        f[18..20].copy_from_slice(&plen.to_be_bytes());
        for i in 0..n {
            let nh = if i + 1 == n {
                first
            } else {
                protocol::IPV6_DST_OPTS
            };
            f.extend_from_slice(&[nh, 0, 1, 4, 0, 0, 0, 0]);
        }
        f.extend_from_slice(&frame[54..]);
        f
    }

    fn v4(a: [u8; 4]) -> [u8; 16] {
        let mut x = [0u8; 16];
        x[..4].copy_from_slice(&a);
        x
    }

    #[test]
    fn ipv4_tcp_syn() {
        let p = parse_frame(&IPV4_SYN).unwrap();
        assert_eq!(
            p,
            ParsedPacket {
                ethertype: ethertype::IPV4,
                l3: L3::Ipv4,
                l3_offset: 14,
                l4_offset: 34,
                src: v4([10, 99, 0, 1]),
                dst: v4([10, 98, 0, 3]),
                proto: protocol::TCP,
                src_port: 45478,
                dst_port: 8080,
                tcp_flags: flags::SYN,
                payload_offset: 74,
                payload_len: 0,
                ..ParsedPacket::EMPTY
            }
        );
        assert!(p.has_l4() && p.is_ip() && !p.is_icmp());
        assert_eq!(p.src_v4(), [10, 99, 0, 1]);
        assert_eq!(p.dst_v4(), [10, 98, 0, 3]);
    }

    #[test]
    fn ipv4_tcp_data_with_vlan() {
        let p = parse_frame(&IPV4_PSH).unwrap();
        assert_eq!((p.payload_offset, p.payload_len), (66, 6));
        assert_eq!(&IPV4_PSH[66..72], b"hello\n");
        assert_eq!(p.tcp_flags, flags::PSH | flags::ACK);

        let f = tagged(&IPV4_PSH, &[(ethertype::VLAN, 100)]);
        let q = parse_frame(&f).unwrap();
        assert_eq!((q.vlan_count, q.vlans), (1, [100, 0]));
        assert_eq!(q.ethertype, ethertype::IPV4);
        assert_eq!((q.l3_offset, q.l4_offset, q.payload_offset), (18, 38, 70));
        assert_eq!(&f[70..76], b"hello\n");
        assert_eq!((q.src_port, q.dst_port), (p.src_port, p.dst_port));
    }

    #[test]
    fn ipv6_tcp_data_with_qinq() {
        let p = parse_frame(&IPV6_DATA).unwrap();
        assert_eq!(p.l3, L3::Ipv6);
        assert_eq!((p.src_port, p.dst_port), (42972, 8081));
        assert_eq!((p.l4_offset, p.payload_offset, p.payload_len), (54, 86, 7));
        assert_eq!(&IPV6_DATA[86..93], b"hello6\n");

        let f = tagged(
            &IPV6_DATA,
            &[(ethertype::QINQ, 3000), (ethertype::VLAN, 0xa000 | 100)],
        );
        let q = parse_frame(&f).unwrap();
        assert_eq!((q.vlan_count, q.vlans), (2, [3000, 100]));
        assert_eq!((q.l3_offset, q.l4_offset, q.payload_offset), (22, 62, 94));
        assert_eq!(q.src, p.src);
        assert_eq!(q.src[..2], [0xfd, 0x00]);
        assert_eq!(q.dst[15], 3);
    }

    #[test]
    fn udp() {
        let p = parse_frame(&UDP4).unwrap();
        assert_eq!(p.proto, protocol::UDP);
        assert_eq!((p.src_port, p.dst_port), (37469, 53));
        assert_eq!((p.payload_offset, p.payload_len), (42, 5));
        assert_eq!(p.tcp_flags, 0);

        // Ethernet pads to 60 bytes on the wire; padding is not payload.
        let mut padded = UDP4.to_vec();
        padded.resize(60, 0);
        assert_eq!(parse_frame(&padded).unwrap(), p);

        let p = parse_frame(&UDP6).unwrap();
        assert_eq!((p.src_port, p.dst_port), (38975, 53));
        assert_eq!((p.payload_offset, p.payload_len), (62, 6));
    }

    #[test]
    fn icmp_echo_uses_identifier_as_ports() {
        let req = parse_frame(&ECHO4_REQUEST).unwrap();
        let rep = parse_frame(&ECHO4_REPLY).unwrap();
        assert_eq!((req.icmp_type, req.icmp_code), (8, 0));
        assert_eq!(rep.icmp_type, 0);
        for p in [req, rep] {
            assert_eq!((p.src_port, p.dst_port), (9961, 9961));
            assert_eq!((p.payload_offset, p.payload_len), (42, 56));
            assert!(p.is_icmp() && p.has_l4());
        }
        let p = parse_frame(&ECHO6_REQUEST).unwrap();
        assert_eq!((p.proto, p.icmp_type), (protocol::ICMPV6, 128));
        assert_eq!((p.src_port, p.dst_port), (9962, 9962));
    }

    #[test]
    fn icmp_errors_and_their_quotes() {
        let p = parse_frame(&PORT_UNREACH4).unwrap();
        assert_eq!((p.icmp_type, p.icmp_code), (3, 3));
        assert_eq!((p.src_port, p.dst_port), (0, 0));
        let q = parse_quoted(&PORT_UNREACH4[usize::from(p.payload_offset)..], L3::Ipv4).unwrap();
        assert_eq!(q.src_v4(), [10, 99, 0, 1]);
        assert_eq!(q.dst_v4(), [10, 98, 0, 3]);
        assert_eq!(
            (q.proto, q.src_port, q.dst_port),
            (protocol::UDP, 37469, 53)
        );
        assert_eq!((q.l3_offset, q.l4_offset), (0, 20));

        let p = parse_frame(&PORT_UNREACH6).unwrap();
        assert_eq!((p.icmp_type, p.icmp_code), (1, 4));
        let q = parse_quoted(&PORT_UNREACH6[usize::from(p.payload_offset)..], L3::Ipv6).unwrap();
        assert_eq!(
            (q.proto, q.src_port, q.dst_port),
            (protocol::UDP, 38975, 53)
        );
        assert_eq!(q.dst[..2], [0xfd, 0x00]);

        let p = parse_frame(&TIME_EXCEEDED6).unwrap();
        assert_eq!(p.icmp_type, 3);
        let q = parse_quoted(&TIME_EXCEEDED6[usize::from(p.payload_offset)..], L3::Ipv6).unwrap();
        assert_eq!((q.proto, q.icmp_type), (protocol::ICMPV6, 128));
        assert_eq!((q.src_port, q.dst_port), (9968, 9968));
    }

    #[test]
    fn quote_shorter_than_its_lengths() {
        // The quote's IP total length (178) and UDP length (158) both exceed
        // the 68 bytes quoted; the strict parser must refuse, the quote parser
        // must not.
        let p = parse_frame(&REASSEMBLED_QUOTE4).unwrap();
        let quote = &REASSEMBLED_QUOTE4[usize::from(p.payload_offset)..];
        assert_eq!(quote.len(), 68);
        let q = parse_quoted(quote, L3::Ipv4).unwrap();
        assert_eq!((q.src_port, q.dst_port), (39474, 5353));
        assert_eq!((q.payload_offset, q.payload_len), (28, 40));

        // A minimal RFC 792 quote of a TCP segment: header plus 8 bytes.
        let q = parse_quoted(&IPV4_SYN[14..42], L3::Ipv4).unwrap();
        assert_eq!((q.src_port, q.dst_port, q.tcp_flags), (45478, 8080, 0));
        assert_eq!((q.payload_offset, q.payload_len), (28, 0));
        assert_eq!(
            parse_quoted(&IPV4_SYN[14..38], L3::Ipv4),
            Err(ParseError::TcpTruncated)
        );
        assert_eq!(
            parse_quoted(&IPV4_SYN[14..30], L3::Ipv4),
            Err(ParseError::Ipv4Truncated)
        );
        assert_eq!(parse_quoted(&[], L3::Other), Ok(ParsedPacket::EMPTY));
    }

    #[test]
    fn ipv4_fragments() {
        let first = parse_frame(&FRAG_FIRST).unwrap();
        assert_eq!(first.fragment, Fragment::First);
        assert_eq!((first.src_port, first.dst_port), (39474, 5353));
        assert_eq!((first.payload_offset, first.payload_len), (42, 64));
        assert!(first.has_l4());

        let last = parse_frame(&FRAG_LAST).unwrap();
        assert_eq!(last.fragment, Fragment::Later);
        assert_eq!(last.proto, protocol::UDP);
        assert_eq!((last.src_port, last.dst_port), (0, 0));
        assert_eq!(
            (last.l4_offset, last.payload_offset, last.payload_len),
            (34, 34, 14)
        );
        assert!(!last.has_l4());
        assert_eq!((last.src, last.dst), (first.src, first.dst));
    }

    #[test]
    fn ipv6_fragments() {
        let f = frag6_first();
        let first = parse_frame(&f).unwrap();
        assert_eq!(first.fragment, Fragment::First);
        assert_eq!((first.proto, first.icmp_type), (protocol::ICMPV6, 128));
        assert_eq!((first.src_port, first.dst_port), (9966, 9966));
        assert_eq!((first.l4_offset, first.payload_offset), (62, 70));
        assert_eq!(usize::from(first.payload_len), 1294 - 70);

        let last = parse_frame(&FRAG6_LAST).unwrap();
        assert_eq!(last.fragment, Fragment::Later);
        assert_eq!(last.proto, protocol::ICMPV6);
        assert_eq!((last.src_port, last.dst_port, last.icmp_type), (0, 0, 0));
        assert_eq!((last.l4_offset, last.payload_len), (62, 112));
    }

    #[test]
    fn ipv6_atomic_fragment_is_whole() {
        let mut f = frag6_first();
        f[57] &= !1; // clear M: offset 0, no more fragments
        assert_eq!(parse_frame(&f).unwrap().fragment, Fragment::None);
    }

    #[test]
    fn ipv6_extension_headers() {
        let p = parse_frame(&HBH_DSTOPT).unwrap();
        assert_eq!((p.proto, p.l4_offset), (protocol::UDP, 70));
        assert_eq!((p.src_port, p.dst_port), (52177, 7777));
        assert_eq!((p.payload_offset, p.payload_len), (78, 3));

        let p = parse_frame(&SRH).unwrap();
        assert_eq!((p.proto, p.l4_offset), (protocol::UDP, 94));
        assert_eq!((p.src_port, p.dst_port), (59128, 7781));

        let p = parse_frame(&MLD_REPORT).unwrap();
        assert_eq!(
            (p.proto, p.l4_offset, p.icmp_type),
            (protocol::ICMPV6, 62, 143)
        );
        assert_eq!((p.src_port, p.dst_port), (0, 0));

        let f = with_dst_opts(&UDP6, 8);
        let p = parse_frame(&f).unwrap();
        assert_eq!((p.src_port, p.l4_offset), (38975, 54 + 64));
    }

    #[test]
    fn ipv4_options() {
        let p = parse_frame(&IPV4_RR).unwrap();
        assert_eq!((p.l4_offset, p.icmp_type), (74, 8));
    }

    #[test]
    fn non_ip_and_unknown_protocols() {
        let p = parse_frame(&ARP_REQUEST).unwrap();
        assert_eq!((p.l3, p.ethertype), (L3::Other, ethertype::ARP));
        assert_eq!((p.payload_offset, p.payload_len), (14, 28));
        assert!(!p.is_ip() && !p.has_l4());

        // An 802.3 frame: the "EtherType" is a length.
        let mut f = ARP_REQUEST;
        f[12..14].copy_from_slice(&28u16.to_be_bytes());
        assert_eq!(parse_frame(&f).unwrap().l3, L3::Other);

        // GRE: offsets known, no ports.
        let mut f = IPV4_SYN;
        f[23] = 47;
        let p = parse_frame(&f).unwrap();
        assert_eq!((p.proto, p.src_port, p.tcp_flags), (47, 0, 0));
        assert_eq!((p.l4_offset, p.payload_offset, p.payload_len), (34, 34, 40));
        assert!(!p.has_l4());

        // ESP ends the IPv6 walk.
        let mut f = UDP6;
        f[20] = protocol::ESP;
        let p = parse_frame(&f).unwrap();
        assert_eq!((p.proto, p.src_port, p.l4_offset), (protocol::ESP, 0, 54));

        // ICMPv6's number inside IPv4 is just an unknown protocol.
        let mut f = IPV4_SYN;
        f[23] = protocol::ICMPV6;
        assert_eq!(parse_frame(&f).unwrap().icmp_type, 0);
    }

    #[test]
    fn header_checksum_is_not_checked() {
        let mut f = IPV4_SYN;
        f[24] ^= 0x5a;
        assert!(parse_frame(&f).is_ok());
    }

    #[test]
    fn every_error_from_a_real_frame() {
        fn m<const N: usize>(frame: &[u8; N], edits: &[(usize, u8)]) -> Vec<u8> {
            let mut f = frame.to_vec();
            for &(i, v) in edits {
                f[i] = v;
            }
            f
        }
        use ParseError::*;
        let cases: Vec<(Vec<u8>, ParseError)> = vec![
            (IPV4_SYN[..13].to_vec(), EthernetTruncated),
            (
                tagged(&IPV4_SYN, &[(0x8100, 1)])[..17].to_vec(),
                VlanTruncated,
            ),
            (
                tagged(&IPV4_SYN, &[(0x88a8, 1), (0x8100, 2), (0x8100, 3)]),
                VlanTooManyTags,
            ),
            (IPV4_SYN[..33].to_vec(), Ipv4Truncated),
            (IPV4_SYN[..73].to_vec(), Ipv4Truncated),
            (m(&IPV4_SYN, &[(14, 0x65)]), Ipv4BadVersion),
            (m(&IPV4_SYN, &[(14, 0x44)]), Ipv4BadHeaderLength),
            (m(&IPV4_SYN, &[(17, 19)]), Ipv4BadTotalLength),
            (m(&IPV4_RR, &[(36, 40)]), Ipv4BadOptions),
            (IPV6_DATA[..53].to_vec(), Ipv6Truncated),
            (IPV6_DATA[..92].to_vec(), Ipv6Truncated),
            (m(&IPV6_DATA, &[(14, 0x40)]), Ipv6BadVersion),
            (m(&HBH_DSTOPT, &[(55, 200)]), Ipv6ExtHeaderTruncated),
            (with_dst_opts(&UDP6, 9), Ipv6TooManyExtHeaders),
            (m(&HBH_DSTOPT, &[(62, 0)]), Ipv6HopByHopNotFirst),
            (m(&IPV4_SYN, &[(17, 39)]), TcpTruncated),
            (m(&IPV4_SYN, &[(46, 0x40)]), TcpBadDataOffset),
            (m(&IPV4_SYN, &[(17, 59)]), TcpBadDataOffset),
            (m(&UDP4, &[(17, 27)]), UdpTruncated),
            (m(&UDP4, &[(39, 7)]), UdpBadLength),
            (m(&UDP4, &[(39, 14)]), UdpBadLength),
            (m(&ECHO4_REQUEST, &[(17, 27)]), IcmpTruncated),
            (frag6_first()[..61].to_vec(), Ipv6Truncated),
        ];
        let mut seen = [false; ParseError::COUNT];
        for (frame, want) in &cases {
            assert_eq!(parse_frame(frame), Err(*want), "{want:?}");
            seen[want.index()] = true;
        }
        let missing: Vec<_> = ParseError::ALL
            .iter()
            .filter(|e| !seen[e.index()])
            .collect();
        assert!(missing.is_empty(), "no test frame for {missing:?}");
    }

    #[test]
    fn first_fragment_too_short_for_l4() {
        // RFC 1858 tiny fragment: a first fragment cut inside the TCP header.
        let mut f = IPV4_SYN;
        f[20] = 0x20; // MF
        f[17] = 20 + 16;
        assert_eq!(parse_frame(&f[..50]), Err(ParseError::TcpTruncated));
    }

    #[test]
    fn error_metadata() {
        assert_eq!(ParseError::COUNT, ParseError::ALL.len());
        for (i, e) in ParseError::ALL.iter().enumerate() {
            assert_eq!(e.index(), i);
            let name = e.name();
            assert!(name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
            assert!(ParseError::ALL[i + 1..].iter().all(|o| o.name() != name));
            assert!(e.to_string().contains(name));
        }
        assert_eq!(
            ParseError::Ipv4BadHeaderLength.name(),
            "ipv4_bad_header_length"
        );
        let boxed: Box<dyn std::error::Error> = Box::new(ParseError::UdpBadLength);
        assert!(boxed.to_string().starts_with("UDP length"));
    }

    mod fast_path {
        use super::*;
        use proptest::prelude::*;

        /// The general parse's view of a frame the fast path may take.
        fn general(f: &[u8]) -> Option<FastPacket> {
            let p = parse_frame(f).ok()?;
            let plain = p.vlan_count == 0
                && p.l3 == L3::Ipv4
                && p.fragment == Fragment::None
                && (p.proto == protocol::TCP || p.proto == protocol::UDP)
                && p.l4_offset == 34;
            plain.then(|| FastPacket {
                src: u32::from_be_bytes(p.src[..4].try_into().unwrap()),
                dst: u32::from_be_bytes(p.dst[..4].try_into().unwrap()),
                src_port: p.src_port,
                dst_port: p.dst_port,
                proto: p.proto,
                l4_offset: p.l4_offset,
                payload_offset: p.payload_offset,
                payload_len: p.payload_len,
            })
        }

        #[test]
        fn takes_the_common_frames() {
            assert!(parse_fast(&IPV4_SYN).is_some());
            assert_eq!(parse_fast(&IPV4_SYN), general(&IPV4_SYN));
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(20_000))]
            /// Frames near the common shape (a TCP or UDP template with header bytes and the
            /// length overwritten): the fast path takes exactly the frames the general parse
            /// reads as plain IPv4 TCP/UDP, with the same result.
            #[test]
            fn agrees_with_the_general_parse(
                udp in any::<bool>(),
                pokes in prop::collection::vec((0usize..64, any::<u8>()), 0..4),
                len in 30usize..90,
                payload in 0usize..30,
            ) {
                let mut f = vec![0u8; 100];
                f[12..14].copy_from_slice(&[0x08, 0x00]);
                f[14] = 0x45;
                f[23] = if udp { 17 } else { 6 };
                f[26..34].copy_from_slice(&[10, 0, 0, 1, 192, 0, 2, 9]);
                f[34..38].copy_from_slice(&[0xb1, 0xa6, 0x01, 0xbb]);
                let l4 = if udp { 8 } else { 20 } + payload;
                f[16..18].copy_from_slice(&((20 + l4) as u16).to_be_bytes());
                if udp {
                    f[38..40].copy_from_slice(&(l4 as u16).to_be_bytes());
                } else {
                    f[46] = 0x50;
                }
                for (at, v) in pokes {
                    f[at] = v;
                }
                f.truncate(len);
                prop_assert_eq!(parse_fast(&f), general(&f));
            }
        }
    }
}
