//! Replies for `reject` rules: a TCP RST for TCP (RFC 9293 §3.10.7.1), an ICMP or ICMPv6 port
//! unreachable for UDP (RFC 792, RFC 4443 §3.1), addressed to the sender of the frame that was
//! refused, so that clients fail at once instead of timing out. Built into a caller's buffer:
//! no allocation.

use crate::parse::{parse_frame, Fragment, L3};

/// The longest reply built: L2 (with two VLAN tags) + IPv6 + ICMPv6 + a quote.
pub const MAX_REPLY: usize = 22 + 40 + 8 + 64;

/// Internet checksum (RFC 1071) of `data`, continuing from `sum`.
fn sum16(mut sum: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u16::from_be_bytes([c[0], c[1]]) as u32;
    }
    if let [b] = chunks.remainder() {
        sum += (*b as u32) << 8;
    }
    sum
}

fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Writes the reply to the refused `frame` into `out`; returns its length, or `None` when the
/// frame is neither TCP nor UDP (or is a RST, which is never answered).
pub fn build_reject(frame: &[u8], out: &mut [u8; MAX_REPLY]) -> Option<usize> {
    build(frame, out, false)
}

/// Writes a TCP RST that continues the refused `frame` on its way: from its sender to its
/// receiver, at the frame's own sequence number (exactly where the receiver expects it, since the
/// frame itself never arrives). With `build_reject` for the sender, an inspection `reject` resets
/// the connection at both ends. `None` unless the frame is TCP (and not itself a RST).
pub fn build_reset_onward(frame: &[u8], out: &mut [u8; MAX_REPLY]) -> Option<usize> {
    build(frame, out, true)
}

fn build(frame: &[u8], out: &mut [u8; MAX_REPLY], onward: bool) -> Option<usize> {
    let p = parse_frame(frame).ok()?;
    if onward && p.proto != 6 {
        return None;
    }
    let v6 = match p.l3 {
        L3::Ipv4 => false,
        L3::Ipv6 => true,
        L3::Other => return None,
    };
    let l3 = p.l3_offset as usize;
    let l4 = p.l4_offset as usize;
    // Never answer fragments (a later one has no L4 header), nor anything sent to or from a
    // broadcast or multicast address (RFC 1122 §3.2.2; no amplification).
    if l3 > 22 || p.fragment != Fragment::None || frame[0] & 1 != 0 || frame[6] & 1 != 0 {
        return None;
    }
    let multicast = |a: &[u8; 16]| {
        if v6 {
            a[0] == 0xff || a.iter().all(|&b| b == 0)
        } else {
            a[0] >= 224 || a[..4] == [255, 255, 255, 255] || a[..4] == [0, 0, 0, 0]
        }
    };
    if multicast(&p.src) || multicast(&p.dst) {
        return None;
    }
    // L2: the same tags, the MAC addresses swapped for a reply.
    out[..l3].copy_from_slice(&frame[..l3]);
    if !onward {
        out[..6].copy_from_slice(&frame[6..12]);
        out[6..12].copy_from_slice(&frame[..6]);
    }
    let ip_len = if v6 { 40 } else { 20 };
    // A reply goes back to the sender; an onward reset goes where the frame was going.
    let (src, dst) = if onward {
        (&p.src, &p.dst)
    } else {
        (&p.dst, &p.src)
    };
    let addr_len = if v6 { 16 } else { 4 };

    // The L4 part first, then the IP header around it.
    let l4_out = l3 + ip_len;
    let (proto, l4_len) = match p.proto {
        6 => {
            let flags = p.tcp_flags;
            if flags & 0x04 != 0 || frame.len() < l4 + 20 {
                return None;
            }
            let t = &frame[l4..];
            let seq = u32::from_be_bytes([t[4], t[5], t[6], t[7]]);
            let ack = u32::from_be_bytes([t[8], t[9], t[10], t[11]]);
            let seg_len =
                p.payload_len as u32 + (flags & 0x02 != 0) as u32 + (flags & 0x01 != 0) as u32;
            let (rseq, rack, rflags) = if onward {
                // A SYN's sequence number is not yet in the receiver's window: one past it is.
                let rseq = seq.wrapping_add((flags & 0x02 != 0) as u32);
                if flags & 0x10 != 0 {
                    (rseq, ack, 0x14u8)
                } else {
                    (rseq, 0, 0x04u8)
                }
            } else if flags & 0x10 != 0 {
                (ack, 0, 0x04u8)
            } else {
                (0, seq.wrapping_add(seg_len), 0x14u8)
            };
            let (sport, dport) = if onward {
                (p.src_port, p.dst_port)
            } else {
                (p.dst_port, p.src_port)
            };
            let o = &mut out[l4_out..l4_out + 20];
            o[0..2].copy_from_slice(&sport.to_be_bytes());
            o[2..4].copy_from_slice(&dport.to_be_bytes());
            o[4..8].copy_from_slice(&rseq.to_be_bytes());
            o[8..12].copy_from_slice(&rack.to_be_bytes());
            o[12] = 0x50;
            o[13] = rflags;
            o[14..20].fill(0);
            (6u8, 20usize)
        }
        17 => {
            // Quote the refused packet: its IP header and the start of its payload.
            // The whole IP header (options included) and 8 bytes: the ports (RFC 792).
            let quote_len = (frame.len() - l3).min(if v6 { 64 } else { (l4 - l3) + 8 });
            if quote_len > 64 {
                return None;
            }
            let o = &mut out[l4_out..l4_out + 8 + quote_len];
            o[0] = if v6 { 1 } else { 3 }; // destination unreachable
            o[1] = if v6 { 4 } else { 3 }; // port unreachable
            o[2..8].fill(0);
            o[8..8 + quote_len].copy_from_slice(&frame[l3..l3 + quote_len]);
            (if v6 { 58 } else { 1 }, 8 + quote_len)
        }
        _ => return None,
    };
    let total = l4_out + l4_len;

    let h = &mut out[l3..l4_out];
    if v6 {
        h[0..4].copy_from_slice(&[0x60, 0, 0, 0]);
        h[4..6].copy_from_slice(&(l4_len as u16).to_be_bytes());
        h[6] = proto;
        h[7] = 64;
        h[8..24].copy_from_slice(&src[..16]);
        h[24..40].copy_from_slice(&dst[..16]);
    } else {
        h[0] = 0x45;
        h[1] = 0;
        h[2..4].copy_from_slice(&((20 + l4_len) as u16).to_be_bytes());
        h[4..8].copy_from_slice(&[0, 0, 0x40, 0]);
        h[8] = 64;
        h[9] = proto;
        h[10..12].fill(0);
        h[12..16].copy_from_slice(&src[..4]);
        h[16..20].copy_from_slice(&dst[..4]);
        let c = fold(sum16(0, h));
        h[10..12].copy_from_slice(&c.to_be_bytes());
    }

    // L4 checksum: TCP and ICMPv6 over a pseudo-header; ICMPv4 over the message alone.
    let mut sum = 0;
    if proto != 1 {
        sum = sum16(sum, &src[..addr_len]);
        sum = sum16(sum, &dst[..addr_len]);
        sum += proto as u32 + l4_len as u32;
    }
    sum = sum16(sum, &out[l4_out..total]);
    let c = fold(sum).to_be_bytes();
    let at = l4_out + if proto == 6 { 16 } else { 2 };
    out[at..at + 2].copy_from_slice(&c);
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::FlowKey;
    use crate::parse::parse_quoted;

    fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, l4: &[u8]) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00, 0x45, 0];
        f.extend_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
        f.extend_from_slice(&[0, 1, 0x40, 0, 64, proto, 0, 0]);
        f.extend_from_slice(&src);
        f.extend_from_slice(&dst);
        f.extend_from_slice(l4);
        f
    }

    fn verify_l4(reply: &[u8], v6: bool) {
        let p = parse_frame(reply).unwrap();
        let l4 = &reply[p.l4_offset as usize..];
        let mut sum = 0;
        if p.proto != 1 {
            let n = if v6 { 16 } else { 4 };
            sum = sum16(sum, &p.src[..n]);
            sum = sum16(sum, &p.dst[..n]);
            sum += p.proto as u32 + l4.len() as u32;
        }
        assert_eq!(fold(sum16(sum, l4)), 0, "L4 checksum");
        if !v6 {
            assert_eq!(fold(sum16(0, &reply[14..34])), 0, "IPv4 header checksum");
        }
    }

    #[test]
    fn syn_gets_rst_ack() {
        let syn = ipv4(
            [10, 0, 0, 1],
            [192, 0, 2, 1],
            6,
            &[
                0x9c, 0x40, 0x01, 0xbb, 0, 0, 0x10, 0, 0, 0, 0, 0, 0x50, 0x02, 0xfa, 0xf0, 0, 0, 0,
                0,
            ],
        );
        let mut out = [0u8; MAX_REPLY];
        let n = build_reject(&syn, &mut out).unwrap();
        let r = &out[..n];
        let p = parse_frame(r).unwrap();
        assert_eq!(&r[..6], &syn[6..12], "to the sender's MAC");
        assert_eq!(
            (&p.src[..4], &p.dst[..4]),
            (&[192, 0, 2, 1][..], &[10, 0, 0, 1][..])
        );
        assert_eq!((p.src_port, p.dst_port, p.tcp_flags), (443, 40000, 0x14));
        let t = &r[p.l4_offset as usize..];
        assert_eq!(
            u32::from_be_bytes([t[8], t[9], t[10], t[11]]),
            0x1000 + 1,
            "acks the SYN"
        );
        verify_l4(r, false);
    }

    #[test]
    fn a_data_segment_resets_both_ends() {
        // Client 10.0.0.1:40000 -> 192.0.2.1:443, seq 0x2000, ack 0x9000, ACK|PSH, 3 bytes.
        let seg = ipv4(
            [10, 0, 0, 1],
            [192, 0, 2, 1],
            6,
            &[
                0x9c, 0x40, 0x01, 0xbb, 0, 0, 0x20, 0, 0, 0, 0x90, 0, 0x50, 0x18, 0xfa, 0xf0, 0, 0,
                0, 0, 1, 2, 3,
            ],
        );
        let mut out = [0u8; MAX_REPLY];
        // Back to the client: from the server, at the sequence the client acknowledged.
        let n = build_reject(&seg, &mut out).unwrap();
        let p = parse_frame(&out[..n]).unwrap();
        let t = &out[p.l4_offset as usize..n];
        assert_eq!((p.src_port, p.dst_port, p.tcp_flags), (443, 40000, 0x04));
        assert_eq!(u32::from_be_bytes([t[4], t[5], t[6], t[7]]), 0x9000);
        verify_l4(&out[..n], false);
        // Onward to the server: from the client, at the refused segment's own sequence.
        let n = build_reset_onward(&seg, &mut out).unwrap();
        let r = &out[..n];
        let p = parse_frame(r).unwrap();
        let t = &r[p.l4_offset as usize..];
        assert_eq!(&r[..12], &seg[..12], "same MACs, same way");
        assert_eq!(
            (&p.src[..4], &p.dst[..4]),
            (&[10, 0, 0, 1][..], &[192, 0, 2, 1][..])
        );
        assert_eq!((p.src_port, p.dst_port, p.tcp_flags), (40000, 443, 0x14));
        assert_eq!(u32::from_be_bytes([t[4], t[5], t[6], t[7]]), 0x2000);
        assert_eq!(u32::from_be_bytes([t[8], t[9], t[10], t[11]]), 0x9000);
        verify_l4(r, false);
        // Never onward for UDP.
        let udp = ipv4(
            [10, 0, 0, 1],
            [192, 0, 2, 1],
            17,
            &[0, 53, 0, 53, 0, 8, 0, 0],
        );
        assert!(build_reset_onward(&udp, &mut out).is_none());
    }

    #[test]
    fn udp_gets_port_unreachable_quoting_it() {
        let q = ipv4(
            [10, 0, 0, 1],
            [192, 0, 2, 1],
            17,
            &[0x13, 0x88, 0, 53, 0, 13, 0, 0, b'q', b'u', b'e', b'r', b'y'],
        );
        let mut out = [0u8; MAX_REPLY];
        let n = build_reject(&q, &mut out).unwrap();
        let p = parse_frame(&out[..n]).unwrap();
        assert_eq!((p.proto, p.icmp_type, p.icmp_code), (1, 3, 3));
        let quoted = parse_quoted(&out[p.l4_offset as usize + 8..n], L3::Ipv4).unwrap();
        assert_eq!(
            FlowKey::from_parsed(&quoted),
            FlowKey::from_parsed(&parse_frame(&q).unwrap()),
            "the quote names the refused flow"
        );
        verify_l4(&out[..n], false);
    }

    #[test]
    fn fragments_and_broadcasts_are_never_answered() {
        // A later fragment of a TCP datagram (offset 8 bytes, 4 bytes of data): no TCP header.
        let mut frag = ipv4([10, 0, 0, 1], [192, 0, 2, 1], 6, &[1, 2, 3, 4]);
        frag[20] = 0x00;
        frag[21] = 0x01; // fragment offset 1 (8 bytes), MF clear
        assert_eq!(build_reject(&frag, &mut [0u8; MAX_REPLY]), None);
        let mut bcast = ipv4(
            [10, 0, 0, 1],
            [255, 255, 255, 255],
            17,
            &[0, 1, 0, 2, 0, 8, 0, 0],
        );
        bcast[..6].copy_from_slice(&[0xff; 6]);
        assert_eq!(build_reject(&bcast, &mut [0u8; MAX_REPLY]), None);
    }

    #[test]
    fn rsts_are_never_answered() {
        let rst = ipv4(
            [10, 0, 0, 1],
            [192, 0, 2, 1],
            6,
            &[
                0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, 0x04, 0, 0, 0, 0, 0, 0,
            ],
        );
        assert_eq!(build_reject(&rst, &mut [0u8; MAX_REPLY]), None);
    }
}
