//! Fuzzes TLS handshake reading: the record layer (`gather_handshake`), every message parser
//! (ClientHello, SSLv2 hello, ServerHello, Certificate with x509-parser), the fingerprints, the
//! checks, and the per-flow reassembly of an `Inspector` fed the same bytes as TCP segments
//! split, reordered and repeated as the input's first bytes say. Any panic is a bug.

#![no_main]

use dataplane::inspect::checks::{Fired, InspectPolicy};
use dataplane::inspect::detect::AppProto;
use dataplane::inspect::session::{InspectLimits, Inspector, PacketView, Progress};
use dataplane::inspect::tls::*;
use libfuzzer_sys::fuzz_target;

fn messages(stream: &[u8], policy: &InspectPolicy) {
    let mut scratch = vec![0u8; 16_384];
    let g = gather_handshake(stream, &mut scratch);
    assert!(g.len <= scratch.len());
    let mut hs = &scratch[..g.len];
    let mut f = Fired::default();
    while let Some((t, body, rest)) = next_message(hs) {
        match t {
            HS_CLIENT_HELLO => {
                if let Ok(ch) = parse_client_hello(body, 0x0301) {
                    let ja3 = md5_hex(&ch.ja3_string());
                    let ja4 = ch.ja4(false);
                    assert_eq!(ja4.len(), 36);
                    policy.check_client_hello(&ch, &ja3, &ja4, &mut f);
                }
            }
            HS_SERVER_HELLO => {
                if let Ok(sh) = parse_server_hello(body) {
                    let _ = sh.ja3s_string();
                    policy.check_server_hello(&sh, &mut f);
                }
            }
            HS_CERTIFICATE => {
                if let Ok(Some(c)) = parse_certificate(body) {
                    policy.check_certificate(&c, 1_700_000_000, &mut f);
                }
            }
            _ => {}
        }
        hs = rest;
    }
    if let Ok(ch) = parse_sslv2_client_hello(stream) {
        assert_eq!(ch.ja4(false).len(), 36);
    }
}

fuzz_target!(|data: &[u8]| {
    let policy = InspectPolicy::default();
    let Some((&ctl, stream)) = data.split_first() else {
        return;
    };
    messages(stream, &policy);

    // The same bytes as a client's segments (and the tail as the server's), cut into pieces of
    // 1..=32 * (ctl & 7 + 1) bytes, delivered last piece first when ctl's top bit is set, each
    // piece twice when bit 6 is set.
    let mut ins = Inspector::new(InspectLimits {
        slots: 2,
        max_bytes: 4096,
        max_packets: 64,
        max_seconds: 10,
    });
    let Some(slot) = ins.start(AppProto::Tls, Fired::default(), 0, 0, None) else {
        return;
    };
    let piece = ((ctl & 7) as usize + 1) * 29;
    let mut cuts: Vec<(u32, &[u8])> = stream
        .chunks(piece)
        .enumerate()
        .map(|(i, c)| (1000u32.wrapping_add((i * piece) as u32), c))
        .collect();
    if ctl & 0x80 != 0 {
        cuts.reverse();
    }
    let half = cuts.len() / 2;
    for (i, (seq, c)) in cuts.iter().enumerate() {
        let v = PacketView {
            from_client: i < half.max(1),
            seq: *seq,
        };
        for _ in 0..1 + ((ctl >> 6) & 1) {
            if ins.feed(slot, &policy, v, c, 1_700_000_000) == Progress::Final {
                let _ = ins.take_report(slot, &policy);
                ins.release(slot);
                return;
            }
        }
    }
    let _ = ins.take_report(slot, &policy);
    ins.release(slot);
});
