//! Every frame of a flow, in both directions, must reach the same worker: the shard is a function
//! of the symmetric Toeplitz hash. Checked on the real traffic of the bundled lab capture.

use dataplane::flow::FlowKey;
use dataplane::parse::parse_frame;
use dataplane::rss::{Toeplitz, SYMMETRIC_RSS_KEY};
use pcap_file::pcap::PcapReader;
use std::collections::HashMap;

#[test]
fn both_directions_of_every_flow_hash_alike() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../configs/captures/lab-mixed.pcap"
    );
    let mut r = PcapReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let t = Toeplitz::new(&SYMMETRIC_RSS_KEY);
    let mut seen: HashMap<FlowKey, (u32, String)> = HashMap::new();
    let mut flows_both_ways = 0;
    while let Some(pkt) = r.next_packet() {
        let pkt = pkt.unwrap();
        let Ok(p) = parse_frame(&pkt.data) else {
            continue;
        };
        let Some((key, lo_to_hi)) = FlowKey::from_parsed_directed(&p) else {
            continue;
        };
        let h = t.hash_l3l4(&p);
        let desc = format!("{p:?}");
        match seen.get(&key) {
            Some((h0, first)) => {
                assert_eq!(
                    *h0, h,
                    "flow {key:?} hashes differently:\n first {first}\n now   {desc}"
                );
                if !lo_to_hi {
                    flows_both_ways += 1;
                }
            }
            None => {
                seen.insert(key, (h, desc));
            }
        }
    }
    assert!(
        seen.len() >= 8,
        "expected the lab capture's flows, got {}",
        seen.len()
    );
    assert!(flows_both_ways > 0);
}
