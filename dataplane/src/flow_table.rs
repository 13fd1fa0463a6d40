//! A worker's flow table: fixed capacity, preallocated at start, open addressing with linear
//! probing on the symmetric hash. Only the owning worker touches it.
//!
//! The foundation records flows for accounting (packets and bytes each way). Connection state,
//! expiry and eviction policy come with stateful inspection; until then a full table never evicts:
//! new flows are simply not recorded and counted as `flow_table_full`.

use crate::flow::FlowKey;

/// Per-flow accounting. `fwd` is the direction of the flow's first packet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowCounters {
    pub packets_fwd: u64,
    pub bytes_fwd: u64,
    pub packets_rev: u64,
    pub bytes_rev: u64,
}

#[derive(Clone, Copy)]
struct Slot {
    /// 0 marks an empty slot; stored hashes have their top bit forced on.
    tag: u32,
    /// Whether the flow's first packet went in the key's lo→hi direction.
    first_lo_to_hi: bool,
    key: FlowKey,
    counters: FlowCounters,
}

/// Outcome of recording one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    Existing,
    Created,
    TableFull,
}

pub struct FlowTable {
    slots: Box<[Slot]>,
    mask: usize,
    len: usize,
    capacity: usize,
}

impl FlowTable {
    /// A table for `capacity` flows; slots are twice that (rounded to a power of two) so probe
    /// chains stay short at full load.
    pub fn with_capacity(capacity: usize) -> FlowTable {
        let capacity = capacity.max(1);
        let n = (capacity * 2).next_power_of_two();
        let empty = Slot {
            tag: 0,
            first_lo_to_hi: false,
            key: FlowKey::default(),
            counters: FlowCounters::default(),
        };
        FlowTable {
            slots: vec![empty; n].into_boxed_slice(),
            mask: n - 1,
            len: 0,
            capacity,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Counts one packet of `len` bytes for `key`, creating the flow if it is new.
    #[inline]
    pub fn record(&mut self, key: &FlowKey, hash: u32, lo_to_hi: bool, len: u64) -> Recorded {
        let tag = hash | 0x8000_0000;
        let mut i = hash as usize & self.mask;
        loop {
            let s = &mut self.slots[i];
            if s.tag == 0 {
                if self.len >= self.capacity {
                    return Recorded::TableFull;
                }
                *s = Slot {
                    tag,
                    first_lo_to_hi: lo_to_hi,
                    key: *key,
                    counters: FlowCounters {
                        packets_fwd: 1,
                        bytes_fwd: len,
                        ..FlowCounters::default()
                    },
                };
                self.len += 1;
                return Recorded::Created;
            }
            if s.tag == tag && s.key == *key {
                let c = &mut s.counters;
                if s.first_lo_to_hi == lo_to_hi {
                    c.packets_fwd += 1;
                    c.bytes_fwd += len;
                } else {
                    c.packets_rev += 1;
                    c.bytes_rev += len;
                }
                return Recorded::Existing;
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Looks a flow up (control-plane and tests; not on the per-packet path).
    pub fn get(&self, key: &FlowKey, hash: u32) -> Option<FlowCounters> {
        let tag = hash | 0x8000_0000;
        let mut i = hash as usize & self.mask;
        loop {
            let s = &self.slots[i];
            if s.tag == 0 {
                return None;
            }
            if s.tag == tag && s.key == *key {
                return Some(s.counters);
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Bytes of memory the table holds.
    pub fn memory_bytes(&self) -> usize {
        self.slots.len() * std::mem::size_of::<Slot>()
    }
}
