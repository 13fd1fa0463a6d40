//! ClientHello inspection per core: for each real hello (the lab capture's curl and openssl
//! hellos, and every single-segment hello of ../shared/corpus when it is there), the work a
//! worker does when a flow's hello is complete: strip the record layer, parse it (tls-parser),
//! build JA3 (string and MD5) and JA4, and run the policy checks (with an SNI block list and
//! JA3/JA4 lists of 10,000 entries each, so that lookups cost what they would in production).
//!   cargo bench -p dataplane --bench inspect [-- SECONDS]

use dataplane::dpdk::rdtsc;
use dataplane::inspect::checks::{Fired, InspectPolicy};
use dataplane::inspect::tls::{
    gather_handshake, md5_hex, next_message, parse_client_hello, HS_CLIENT_HELLO,
};
use dataplane::parse::parse_frame;
use std::path::Path;
use std::time::Instant;

/// TCP payloads that are one complete ClientHello record, from a classic pcap (Ethernet).
fn hellos(path: &Path, out: &mut Vec<Vec<u8>>) {
    let Ok(d) = std::fs::read(path) else { return };
    if d.len() < 24 || d[..4] != [0xd4, 0xc3, 0xb2, 0xa1] || d[20..24] != [1, 0, 0, 0] {
        return;
    }
    let mut off = 24;
    while off + 16 <= d.len() {
        let incl = u32::from_le_bytes([d[off + 8], d[off + 9], d[off + 10], d[off + 11]]) as usize;
        let Some(frame) = d.get(off + 16..off + 16 + incl) else {
            break;
        };
        off += 16 + incl;
        let Ok(p) = parse_frame(frame) else { continue };
        if p.proto != 6 {
            continue;
        }
        let s = p.payload_offset as usize;
        let pl = &frame[s..s + p.payload_len as usize];
        if pl.len() > 9 && pl[0] == 22 && pl[5] == 1 {
            let rec = u16::from_be_bytes([pl[3], pl[4]]) as usize;
            if pl.len() >= 5 + rec {
                out.push(pl.to_vec());
            }
        }
    }
}

fn main() {
    let secs: f64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(2.0);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut hs = Vec::new();
    hellos(&root.join("../configs/captures/lab-mixed.pcap"), &mut hs);
    let lab = hs.len();
    if let Ok(dir) = std::fs::read_dir(root.join("../../shared/corpus/pcaps")) {
        let mut files: Vec<_> = dir.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        for f in files {
            hellos(&f, &mut hs);
        }
    }
    assert!(!hs.is_empty(), "no ClientHello found");
    let mut policy = InspectPolicy::default();
    for i in 0..10_000 {
        policy.sni_block.insert(&format!("host{i}.blocked.example"));
        policy.ja3_block.insert(format!("{i:032x}"));
        policy
            .ja4_block
            .insert(format!("t13d1516h2_{i:012x}_000000000000"));
    }
    let mut scratch = vec![0u8; 16_384];
    let mut one = |pl: &[u8]| -> usize {
        let g = gather_handshake(pl, &mut scratch);
        let Some((HS_CLIENT_HELLO, body, _)) = next_message(&scratch[..g.len]) else {
            return 0;
        };
        let Ok(ch) = parse_client_hello(body, 0x0301) else {
            return 0;
        };
        let ja3s = ch.ja3_string();
        let ja3 = md5_hex(&ja3s);
        let ja4 = ch.ja4(false);
        let mut f = Fired::default();
        policy.check_client_hello(&ch, &ja3, &ja4, &mut f);
        ja4.len() + f.0 as usize
    };
    let mut rates = Vec::new();
    let mut cycles = Vec::new();
    for _ in 0..5 {
        let (t0, c0) = (Instant::now(), rdtsc());
        let mut n = 0u64;
        let mut sink = 0usize;
        while t0.elapsed().as_secs_f64() < secs / 5.0 {
            for h in &hs {
                sink = sink.wrapping_add(one(h));
                n += 1;
            }
        }
        let (dt, dc) = (t0.elapsed().as_secs_f64(), rdtsc() - c0);
        std::hint::black_box(sink);
        rates.push(n as f64 / dt);
        cycles.push(dc as f64 / n as f64);
    }
    rates.sort_by(|a, b| a.partial_cmp(b).unwrap());
    cycles.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let avg_len = hs.iter().map(|h| h.len()).sum::<usize>() / hs.len();
    println!(
        "ClientHello inspection (parse, JA3, JA4, checks): {} hellos ({} from the lab capture), \
         average {} bytes; median {:.0} hellos/s per core, {:.0} cycles/hello (runs {:.0}..{:.0}/s)",
        hs.len(),
        lab,
        avg_len,
        rates[2],
        cycles[2],
        rates[0],
        rates[4]
    );
}
