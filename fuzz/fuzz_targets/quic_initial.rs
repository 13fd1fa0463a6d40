//! Fuzzes QUIC Initial opening (header, header protection, AEAD, frames) and the ClientHello
//! reassembly from CRYPTO frames in an `Inspector`. Inputs that are not valid Initials stop at
//! the AEAD tag; the seeds (real Initials) get the fuzzer past it into the frame parser only
//! where it mutates before encryption, so the target also seals nothing: the value is in the
//! header paths and in never panicking. Any panic is a bug.

#![no_main]

use dataplane::inspect::checks::{Fired, InspectPolicy};
use dataplane::inspect::detect::{detect_udp, AppProto};
use dataplane::inspect::quic::open_client_initials;
use dataplane::inspect::session::{InspectLimits, Inspector, PacketView};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut scratch = vec![0u8; data.len()];
    let mut total = 0usize;
    let r = open_client_initials(data, &mut scratch, |off, d| {
        assert!(off < 1 << 62);
        total += d.len();
    });
    if r.is_ok() {
        assert!(total <= data.len());
    }
    let _ = detect_udp(data);
    let policy = InspectPolicy::default();
    let mut ins = Inspector::new(InspectLimits {
        slots: 1,
        max_bytes: 4096,
        max_packets: 8,
        max_seconds: 10,
    });
    if let Some(slot) = ins.start(AppProto::Quic, Fired::default(), 0, 0, None) {
        for from_client in [true, true, false] {
            let v = PacketView {
                from_client,
                seq: 0,
            };
            let _ = ins.feed(slot, &policy, v, data, 0);
        }
        let _ = ins.take_report(slot, &policy);
        ins.release(slot);
    }
});
