//! Fuzzes the per-packet parser and everything reachable from its output:
//! TCP and IPv4 option iterators, the ICMP quote parser, flow keys and RSS.
//! Any panic, or an offset outside the input, is a bug.

#![no_main]

use dataplane::flow::FlowKey;
use dataplane::parse::{parse_frame, parse_quoted, ParsedPacket, L3};
use dataplane::rss::{Toeplitz, MS_RSS_KEY};
use dataplane::wire::{icmp, ipv4, tcp};
use libfuzzer_sys::fuzz_target;

static RSS: Toeplitz = Toeplitz::new(&MS_RSS_KEY);

fn check_bounds(p: &ParsedPacket, buf: &[u8]) {
    let len = buf.len();
    assert!(usize::from(p.l3_offset) <= len);
    assert!(usize::from(p.l4_offset) <= len);
    assert!(usize::from(p.payload_offset) + usize::from(p.payload_len) <= len);
    let _ = RSS.hash_l3l4(p);
    if let Some((key, lo_to_hi)) = FlowKey::from_parsed_directed(p) {
        assert_eq!(key.is_lo_to_hi(p), lo_to_hi);
    }
}

fuzz_target!(|data: &[u8]| {
    // The quote parser must survive raw input too, not only real quotes.
    for l3 in [L3::Ipv4, L3::Ipv6] {
        if let Ok(q) = parse_quoted(data, l3) {
            check_bounds(&q, data);
        }
    }

    let Ok(p) = parse_frame(data) else {
        return;
    };
    check_bounds(&p, data);

    if p.l3 == L3::Ipv4 {
        let ip = ipv4::Packet::new_checked(&data[usize::from(p.l3_offset)..])
            .expect("parse_frame accepted this IPv4 header");
        for opt in ip.option_iter() {
            assert!(opt.is_ok(), "new_checked validated the options");
        }
        let _ = ip.verify_checksum();
    }

    if !p.has_l4() {
        return;
    }
    let l4 = &data[usize::from(p.l4_offset)..];
    match (p.l3, p.proto) {
        (_, 6) => {
            let seg = tcp::Packet::new_checked(l4).expect("parse_frame accepted this TCP header");
            for opt in seg.option_iter() {
                if let Ok(tcp::TcpOption::SackRange(blocks)) = opt {
                    assert_eq!(blocks.count(), blocks.len());
                }
            }
        }
        (L3::Ipv4, 1) | (L3::Ipv6, 58) => {
            let version = if p.l3 == L3::Ipv4 {
                icmp::Version::V4
            } else {
                icmp::Version::V6
            };
            let msg = icmp::Packet::new_checked(l4, version).expect("parse_frame accepted ICMP");
            let _ = (msg.mtu(), msg.echo_seq_no(), msg.verify_checksum_v4());
            if let Some(quote) = msg.embedded() {
                if let Ok(q) = parse_quoted(quote, p.l3) {
                    check_bounds(&q, quote);
                }
            }
        }
        _ => {}
    }
});
