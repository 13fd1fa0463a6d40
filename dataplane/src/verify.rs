//! Checksums in software: whether a frame's IPv4 header checksum and its TCP, UDP or ICMP
//! checksum are right, as the receiving host will judge them. A segment the host discards must
//! not be read by inspection nor move a tracker (a decoy with a wrong checksum and the real
//! bytes behind it at the same sequence number is the classic way around an inline reader).
//! Owns nothing but the arithmetic; the engine decides when to ask (every packet off the
//! established fast path). Must never panic on any frame: what it cannot judge it passes
//! (a fragment's transport checksum covers the whole datagram).

use crate::parse::{Fragment, ParsedPacket, L3};
use crate::wire::checksum::{accumulate, fold, pseudo_header_v4, pseudo_header_v6};
use crate::wire::protocol;

/// Whether every checksum the frame carries that a host would verify is right.
pub fn checksums_ok(frame: &[u8], p: &ParsedPacket) -> bool {
    let l3 = p.l3_offset as usize;
    let l4 = p.l4_offset as usize;
    let end = p.payload_offset as usize + p.payload_len as usize;
    let (Some(l3_bytes), Some(seg)) = (frame.get(l3..l4), frame.get(l4..end)) else {
        return false;
    };
    match p.l3 {
        L3::Ipv4 => {
            // The header alone (options included): l4 - l3 bytes.
            if fold(accumulate(0, l3_bytes)) != 0xffff {
                return false;
            }
        }
        L3::Ipv6 => {}
        _ => return true,
    }
    if p.fragment != Fragment::None {
        return true;
    }
    transport_ok(p, seg)
}

/// Writes correct IPv4 header and TCP/UDP/ICMP checksums into a frame built by hand (tests,
/// benchmarks, replies); returns false when the frame does not parse.
pub fn fill_checksums(frame: &mut [u8]) -> bool {
    let Ok(p) = crate::parse::parse_frame(frame) else {
        return false;
    };
    let (l3, l4) = (p.l3_offset as usize, p.l4_offset as usize);
    let end = (p.payload_offset as usize + p.payload_len as usize).min(frame.len());
    if p.l3 == L3::Ipv4 {
        frame[l3 + 10..l3 + 12].fill(0);
        let sum = !fold(accumulate(0, &frame[l3..l4]));
        frame[l3 + 10..l3 + 12].copy_from_slice(&sum.to_be_bytes());
    }
    let v6 = p.l3 == L3::Ipv6;
    let at = match p.proto {
        protocol::TCP => 16,
        protocol::UDP => 6,
        protocol::ICMP | protocol::ICMPV6 => 2,
        _ => return true,
    };
    if p.fragment != Fragment::None || l4 + at + 2 > end {
        return true;
    }
    frame[l4 + at..l4 + at + 2].fill(0);
    let seg = &frame[l4..end];
    let acc = if p.proto == protocol::ICMP && !v6 {
        0
    } else if v6 {
        pseudo_header_v6(p.src, p.dst, p.proto, seg.len() as u32)
    } else {
        let a = |x: &[u8; 16]| [x[0], x[1], x[2], x[3]];
        pseudo_header_v4(a(&p.src), a(&p.dst), p.proto, seg.len() as u16)
    };
    let mut sum = !fold(accumulate(acc, seg));
    if sum == 0 && p.proto == protocol::UDP {
        sum = 0xffff; // zero means "no checksum" for UDP
    }
    frame[l4 + at..l4 + at + 2].copy_from_slice(&sum.to_be_bytes());
    true
}

fn transport_ok(p: &ParsedPacket, seg: &[u8]) -> bool {
    let v6 = p.l3 == L3::Ipv6;
    let pseudo = |proto: u8| {
        if v6 {
            pseudo_header_v6(p.src, p.dst, proto, seg.len() as u32)
        } else {
            let a = |x: &[u8; 16]| [x[0], x[1], x[2], x[3]];
            pseudo_header_v4(a(&p.src), a(&p.dst), proto, seg.len() as u16)
        }
    };
    match p.proto {
        protocol::TCP => fold(accumulate(pseudo(protocol::TCP), seg)) == 0xffff,
        protocol::UDP => {
            // Over IPv4 a zero checksum means "none" (RFC 768); over IPv6 it is invalid.
            let zero = seg.get(6..8) == Some(&[0, 0]);
            (zero && !v6) || fold(accumulate(pseudo(protocol::UDP), seg)) == 0xffff
        }
        protocol::ICMP if !v6 => fold(accumulate(0, seg)) == 0xffff,
        protocol::ICMPV6 if v6 => fold(accumulate(pseudo(protocol::ICMPV6), seg)) == 0xffff,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_frame;

    /// The frames of the demo capture (recorded with checksum offloads off: every checksum
    /// is real).
    fn frames() -> Vec<Vec<u8>> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/captures/demo.pcap");
        let data = std::fs::read(path).expect("the demo capture");
        let mut out = Vec::new();
        let mut off = 24;
        while off + 16 <= data.len() {
            let len = u32::from_le_bytes(data[off + 8..off + 12].try_into().unwrap()) as usize;
            out.push(data[off + 16..off + 16 + len].to_vec());
            off += 16 + len;
        }
        out
    }

    #[test]
    fn every_frame_of_a_real_capture_passes_and_any_flipped_byte_fails() {
        let mut kinds = std::collections::BTreeSet::new();
        for f in frames() {
            let Ok(p) = parse_frame(&f) else { continue };
            if !matches!(p.l3, L3::Ipv4 | L3::Ipv6) {
                continue;
            }
            assert!(checksums_ok(&f, &p), "a real frame failed: {p:?}");
            kinds.insert((p.l3 == L3::Ipv6, p.proto));
            // A byte of the payload (or of the sequence number or echo id), then the IPv4 TTL.
            let mut at = vec![if p.payload_len > 0 {
                p.payload_offset as usize
            } else {
                p.l4_offset as usize + 4
            }];
            if p.l3 == L3::Ipv4 {
                at.push(p.l3_offset as usize + 8);
            }
            for i in at {
                let mut bad = f.clone();
                bad[i] ^= 0x40;
                let q = parse_frame(&bad).unwrap();
                assert!(
                    !checksums_ok(&bad, &q),
                    "a changed byte at {i} passed: {p:?}"
                );
            }
        }
        // TCP, UDP and ICMP over IPv4, TCP and ICMPv6 over IPv6 were all in it.
        for k in [(false, 6), (false, 17), (false, 1), (true, 6), (true, 58)] {
            assert!(kinds.contains(&k), "no {k:?} frame in the capture");
        }
    }

    #[test]
    fn filled_checksums_verify() {
        for f in frames().iter().take(60) {
            let Ok(p) = parse_frame(f) else { continue };
            let mut g = f.clone();
            // Spoil both checksums, then fill them in again: the frame is as recorded.
            if p.l3 == L3::Ipv4 {
                g[p.l3_offset as usize + 10] ^= 0xff;
            }
            assert!(fill_checksums(&mut g));
            assert_eq!(&g, f);
        }
    }

    #[test]
    fn short_or_inconsistent_frames_never_panic() {
        for f in frames().iter().take(40) {
            let Ok(p) = parse_frame(f) else { continue };
            for cut in [0, 1, 14, 20, 34, f.len() / 2] {
                let _ = checksums_ok(&f[..cut.min(f.len())], &p);
            }
        }
    }
}
