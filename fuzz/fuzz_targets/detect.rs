//! Fuzzes protocol detection on the first payload of TCP and UDP flows, and the checks on the
//! result for every port class. Any panic is a bug.

#![no_main]

use dataplane::inspect::checks::{Fired, InspectPolicy};
use dataplane::inspect::detect::{detect_tcp, detect_udp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let policy = InspectPolicy::default();
    for (proto, udp) in [(detect_tcp(data), false), (detect_udp(data), true)] {
        for port in [22, 443, 5060, 9001] {
            let mut f = Fired::default();
            policy.check_protocol(proto, port, udp, &mut f);
        }
    }
});
