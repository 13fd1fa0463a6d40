//! Ethernet ports: lookup by device name, queue setup with symmetric RSS, link and statistics.
//!
//! Rx and tx on distinct queues are thread-safe in DPDK, so a `Port` is shared (`&Port`) between
//! the workers, each of which only ever touches its own queue ids.

use super::{Burst, DpdkError, Mempool};
use crate::rss::SYMMETRIC_RSS_KEY;
use std::cell::Cell;
use std::ffi::{CStr, CString};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};

// RTE_ETH_RSS_* and offload flags are function-like macros (RTE_BIT64) that bindgen skips.
const RSS_IPV4: u64 = 1 << 2;
const RSS_FRAG_IPV4: u64 = 1 << 3;
const RSS_NONFRAG_IPV4_TCP: u64 = 1 << 4;
const RSS_NONFRAG_IPV4_UDP: u64 = 1 << 5;
const RSS_NONFRAG_IPV4_OTHER: u64 = 1 << 7;
const RSS_IPV6: u64 = 1 << 8;
const RSS_FRAG_IPV6: u64 = 1 << 9;
const RSS_NONFRAG_IPV6_TCP: u64 = 1 << 10;
const RSS_NONFRAG_IPV6_UDP: u64 = 1 << 11;
const RSS_NONFRAG_IPV6_OTHER: u64 = 1 << 13;
/// The hash types we ask for: L3+L4 for TCP/UDP, L3 for the rest. Fragments hash on L3 only, so
/// all fragments of a datagram land on one queue.
const RSS_WANTED: u64 = RSS_IPV4
    | RSS_FRAG_IPV4
    | RSS_NONFRAG_IPV4_TCP
    | RSS_NONFRAG_IPV4_UDP
    | RSS_NONFRAG_IPV4_OTHER
    | RSS_IPV6
    | RSS_FRAG_IPV6
    | RSS_NONFRAG_IPV6_TCP
    | RSS_NONFRAG_IPV6_UDP
    | RSS_NONFRAG_IPV6_OTHER;
const RX_OFFLOAD_RSS_HASH: u64 = 1 << 19;
const TX_OFFLOAD_MBUF_FAST_FREE: u64 = 1 << 16;

/// What a port can do, read from `rte_eth_dev_info_get`.
#[derive(Debug, Clone)]
pub struct PortInfo {
    pub id: u16,
    pub device: String,
    pub driver: String,
    pub max_rx_queues: u16,
    pub max_tx_queues: u16,
    /// RSS hash types the device supports; 0 means no RSS (most virtual devices).
    pub rss_offloads: u64,
    pub rss_key_size: u8,
    pub mac: [u8; 6],
    pub socket: i32,
}

/// How to set a port up.
#[derive(Debug, Clone)]
pub struct PortSetup {
    /// Spread flows over the rx queues by RSS with the symmetric key, and program the RETA so
    /// that queue q receives exactly the flows `shard_of(hash, rx_queues)` gives worker q. The
    /// caller decides (one decision, so it and the port never disagree); needs rx_queues > 1.
    pub rss: bool,
    pub rx_queues: u16,
    pub tx_queues: u16,
    pub rx_desc: u16,
    pub tx_desc: u16,
    pub promiscuous: bool,
}

/// Link state as reported by the PMD.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStatus {
    pub up: bool,
    pub speed_mbps: u32,
    pub full_duplex: bool,
}

/// The device's own counters (`rte_eth_stats`).
#[derive(Debug, Clone, Copy, Default)]
pub struct PortStats {
    pub ipackets: u64,
    pub opackets: u64,
    pub ibytes: u64,
    pub obytes: u64,
    /// Dropped by the NIC because rx descriptors were full (we polled too slowly).
    pub imissed: u64,
    pub ierrors: u64,
    pub oerrors: u64,
    /// Rx failed because the mempool was empty.
    pub rx_nombuf: u64,
}

/// A configured, started port. Stopped and closed on drop. It cannot outlive the mempool its
/// rx queues take mbufs from (`'p`).
pub struct Port<'p> {
    info: PortInfo,
    rx_queues: u16,
    tx_queues: u16,
    rss: bool,
    queues_taken: AtomicBool,
    _pool: PhantomData<&'p Mempool<'p>>,
}

/// One rx queue of a port, owned by exactly one thread: it is `Send` but neither `Sync` nor
/// `Clone`, and exists once per queue (`Port::take_queues`), so no two threads can ever poll the
/// same queue, which DPDK does not allow.
pub struct RxQueue<'a> {
    port: u16,
    queue: u16,
    _port: PhantomData<&'a ()>,
    _not_sync: PhantomData<Cell<()>>,
}

/// One tx queue of a port, owned by exactly one thread (see `RxQueue`).
pub struct TxQueue<'a> {
    port: u16,
    queue: u16,
    _port: PhantomData<&'a ()>,
    _not_sync: PhantomData<Cell<()>>,
}

impl RxQueue<'_> {
    /// Receives up to the burst's free room; returns the number received.
    #[inline(always)]
    pub fn rx_burst(&mut self, burst: &mut Burst) -> usize {
        let (tail, room) = burst.raw_tail();
        // SAFETY: tail points at `room` free slots of the burst array; the port is started (the
        // handle borrows it) and this handle is the queue's only user (unique, !Sync).
        let n =
            unsafe { dpdk_sys::pc_eth_rx_burst(self.port, self.queue, tail, room as u16) } as usize;
        burst.grow(n);
        n
    }

    pub fn queue(&self) -> u16 {
        self.queue
    }
}

impl TxQueue<'_> {
    /// Sends the burst. Sent mbufs leave the burst (the PMD owns them now); unsent ones stay at
    /// its front for the caller to retry or free. Returns the number sent.
    #[inline(always)]
    pub fn tx_burst(&mut self, burst: &mut Burst) -> usize {
        let len = burst.len();
        if len == 0 {
            return 0;
        }
        // SAFETY: the first len entries are valid owned mbufs; the PMD takes ownership of the
        // first n it returns; this handle is the queue's only user (unique, !Sync).
        let n = unsafe {
            dpdk_sys::pc_eth_tx_burst(self.port, self.queue, burst.raw_all(), len as u16)
        } as usize;
        burst.consume_front(n);
        n
    }
}

impl<'p> Port<'p> {
    /// Finds a probed device (PCI address or vdev name such as `net_pcap0`) and reads its info.
    pub fn lookup(device: &str) -> Result<PortInfo, DpdkError> {
        let cname =
            CString::new(device).map_err(|_| DpdkError::new("device name has a NUL", 22))?;
        let mut id: u16 = 0;
        // SAFETY: cname is valid for the call; id is a valid out-pointer.
        let rc = unsafe { dpdk_sys::rte_eth_dev_get_port_by_name(cname.as_ptr(), &mut id) };
        if rc != 0 {
            return Err(DpdkError::new(
                format!("no DPDK port for device '{device}' (is it bound to a DPDK driver, or is its --vdev given?)"),
                rc,
            ));
        }
        let mut di = dpdk_sys::rte_eth_dev_info::default();
        // SAFETY: id is a valid port id; di is a valid out-pointer.
        let rc = unsafe { dpdk_sys::rte_eth_dev_info_get(id, &mut di) };
        if rc != 0 {
            return Err(DpdkError::new(
                format!("rte_eth_dev_info_get({device})"),
                rc,
            ));
        }
        let driver = if di.driver_name.is_null() {
            String::new()
        } else {
            // SAFETY: driver_name is a static NUL-terminated string owned by the PMD.
            unsafe { CStr::from_ptr(di.driver_name) }
                .to_string_lossy()
                .into_owned()
        };
        let mut mac = dpdk_sys::rte_ether_addr::default();
        // SAFETY: valid port id and out-pointer.
        unsafe { dpdk_sys::rte_eth_macaddr_get(id, &mut mac) };
        // SAFETY: valid port id.
        let socket = unsafe { dpdk_sys::rte_eth_dev_socket_id(id) };
        Ok(PortInfo {
            id,
            device: device.to_string(),
            driver,
            max_rx_queues: di.max_rx_queues,
            max_tx_queues: di.max_tx_queues,
            rss_offloads: di.flow_type_rss_offloads,
            rss_key_size: di.hash_key_size,
            mac: mac.addr_bytes,
            socket,
        })
    }

    /// Configures queues, RSS (symmetric key, when the device has RSS and more than one rx queue
    /// is asked for), promiscuous mode, and starts the port.
    pub fn setup(
        info: PortInfo,
        setup: &PortSetup,
        pool: &'p Mempool<'p>,
    ) -> Result<Port<'p>, DpdkError> {
        let id = info.id;
        let name = info.device.clone();
        if setup.rx_queues > info.max_rx_queues || setup.tx_queues > info.max_tx_queues {
            return Err(DpdkError::new(
                format!(
                    "port '{name}' ({}) has at most {} rx / {} tx queues, {} / {} were asked for",
                    info.driver,
                    info.max_rx_queues,
                    info.max_tx_queues,
                    setup.rx_queues,
                    setup.tx_queues
                ),
                22,
            ));
        }
        let mut conf = dpdk_sys::rte_eth_conf::default();
        if setup.rss && (setup.rx_queues < 2 || info.rss_offloads & RSS_WANTED == 0) {
            return Err(DpdkError::new(
                format!("port '{name}': RSS asked for, but the device has no RSS or only one rx queue was asked for"),
                22,
            ));
        }
        let rss = setup.rss;
        // The key must outlive configure; NICs with 52-byte keys (i40e) get the same 16-bit
        // period pattern repeated, which keeps the hash symmetric.
        let key_len = if info.rss_key_size == 0 {
            40
        } else {
            info.rss_key_size as usize
        };
        let mut key: Vec<u8> = SYMMETRIC_RSS_KEY
            .iter()
            .copied()
            .cycle()
            .take(key_len)
            .collect();
        if rss {
            conf.rxmode.mq_mode = dpdk_sys::rte_eth_rx_mq_mode_RTE_ETH_MQ_RX_RSS;
            conf.rx_adv_conf.rss_conf.rss_key = key.as_mut_ptr();
            conf.rx_adv_conf.rss_conf.rss_key_len = key_len as u8;
            conf.rx_adv_conf.rss_conf.rss_hf = info.rss_offloads & RSS_WANTED;
            // SAFETY: reading a field of a plain-data struct filled by dev_info_get would be
            // nicer here, but rx_offload_capa is not kept in PortInfo; ask the PMD again.
            let mut di = dpdk_sys::rte_eth_dev_info::default();
            // SAFETY: valid port id and out-pointer.
            unsafe { dpdk_sys::rte_eth_dev_info_get(id, &mut di) };
            if di.rx_offload_capa & RX_OFFLOAD_RSS_HASH != 0 {
                conf.rxmode.offloads |= RX_OFFLOAD_RSS_HASH;
            }
        }
        let mut di = dpdk_sys::rte_eth_dev_info::default();
        // SAFETY: valid port id and out-pointer.
        unsafe { dpdk_sys::rte_eth_dev_info_get(id, &mut di) };
        if di.tx_offload_capa & TX_OFFLOAD_MBUF_FAST_FREE != 0 {
            // One mempool, refcount always 1: the PMD may recycle mbufs in bulk.
            conf.txmode.offloads |= TX_OFFLOAD_MBUF_FAST_FREE;
        }
        // From here on a failure must release the device (a net_pcap tx file is flushed on close).
        let fail = |what: String, rc: i32| {
            // SAFETY: valid port id; stop/close are safe on a configured or started port.
            unsafe {
                dpdk_sys::rte_eth_dev_stop(id);
                dpdk_sys::rte_eth_dev_close(id);
            }
            DpdkError::new(what, rc)
        };
        // SAFETY: valid port id; conf lives across the call (key too).
        let rc =
            unsafe { dpdk_sys::rte_eth_dev_configure(id, setup.rx_queues, setup.tx_queues, &conf) };
        drop(key);
        if rc != 0 {
            return Err(fail(format!("rte_eth_dev_configure({name})"), rc));
        }
        let (mut nrx, mut ntx) = (setup.rx_desc, setup.tx_desc);
        // SAFETY: valid port id and out-pointers.
        let rc = unsafe { dpdk_sys::rte_eth_dev_adjust_nb_rx_tx_desc(id, &mut nrx, &mut ntx) };
        if rc != 0 {
            return Err(fail(
                format!("rte_eth_dev_adjust_nb_rx_tx_desc({name})"),
                rc,
            ));
        }
        let socket = if info.socket < 0 {
            0
        } else {
            info.socket as u32
        };
        for q in 0..setup.rx_queues {
            // SAFETY: configured port, queue index below the configured count, valid pool; NULL
            // conf selects the PMD's defaults.
            let rc = unsafe {
                dpdk_sys::rte_eth_rx_queue_setup(
                    id,
                    q,
                    nrx,
                    socket,
                    std::ptr::null(),
                    pool.as_ptr(),
                )
            };
            if rc != 0 {
                return Err(fail(
                    format!("rte_eth_rx_queue_setup({name}, {q}) (are dataplane.mbufs enough for every rx descriptor?)"),
                    rc,
                ));
            }
        }
        for q in 0..setup.tx_queues {
            let mut txconf = di.default_txconf;
            txconf.offloads = conf.txmode.offloads;
            // SAFETY: configured port, valid queue index, txconf valid for the call.
            let rc = unsafe { dpdk_sys::rte_eth_tx_queue_setup(id, q, ntx, socket, &txconf) };
            if rc != 0 {
                return Err(fail(format!("rte_eth_tx_queue_setup({name}, {q})"), rc));
            }
        }
        // SAFETY: all queues set up.
        let rc = unsafe { dpdk_sys::rte_eth_dev_start(id) };
        if rc != 0 {
            return Err(fail(format!("rte_eth_dev_start({name})"), rc));
        }
        if rss {
            if let Err(e) = program_reta(id, &name, setup.rx_queues) {
                return Err(fail(e.what, e.errno));
            }
        }
        if setup.promiscuous {
            // A bump in the wire must see frames for every MAC. Some vdevs return -ENOTSUP and
            // are promiscuous anyway (pcap, null): not an error.
            // SAFETY: started port.
            let rc = unsafe { dpdk_sys::rte_eth_promiscuous_enable(id) };
            // SAFETY: started port.
            let on = unsafe { dpdk_sys::rte_eth_promiscuous_get(id) } == 1;
            // -ENOTSUP: virtual devices without MAC filtering (null, ring). Anything else that
            // leaves the port filtering would drop every frame not addressed to its own MAC.
            if rc != -95 && (rc != 0 || !on) {
                return Err(fail(
                    format!("port '{name}': cannot enable promiscuous mode"),
                    rc,
                ));
            }
        }
        Ok(Port {
            info,
            rx_queues: setup.rx_queues,
            tx_queues: setup.tx_queues,
            rss,
            queues_taken: AtomicBool::new(false),
            _pool: PhantomData,
        })
    }

    pub fn info(&self) -> &PortInfo {
        &self.info
    }

    pub fn id(&self) -> u16 {
        self.info.id
    }

    pub fn rx_queues(&self) -> u16 {
        self.rx_queues
    }

    pub fn tx_queues(&self) -> u16 {
        self.tx_queues
    }

    /// Whether the NIC spreads flows over the rx queues by (symmetric) RSS.
    pub fn rss_enabled(&self) -> bool {
        self.rss
    }

    /// The port's queue handles, once: every rx queue and every tx queue, each a unique handle
    /// for one thread. `None` if they were taken before.
    pub fn take_queues(&self) -> Option<(Vec<RxQueue<'_>>, Vec<TxQueue<'_>>)> {
        if self.queues_taken.swap(true, Ordering::SeqCst) {
            return None;
        }
        let port = self.info.id;
        let rx = (0..self.rx_queues)
            .map(|queue| RxQueue {
                port,
                queue,
                _port: PhantomData,
                _not_sync: PhantomData,
            })
            .collect();
        let tx = (0..self.tx_queues)
            .map(|queue| TxQueue {
                port,
                queue,
                _port: PhantomData,
                _not_sync: PhantomData,
            })
            .collect();
        Some((rx, tx))
    }

    pub fn link(&self) -> LinkStatus {
        let mut l = dpdk_sys::rte_eth_link::default();
        // SAFETY: valid port and out-pointer.
        let rc = unsafe { dpdk_sys::rte_eth_link_get_nowait(self.info.id, &mut l) };
        if rc != 0 {
            return LinkStatus::default();
        }
        LinkStatus {
            up: l.link_status() != 0,
            speed_mbps: l.link_speed,
            full_duplex: l.link_duplex() != 0,
        }
    }

    pub fn stats(&self) -> PortStats {
        let mut s = dpdk_sys::rte_eth_stats::default();
        // SAFETY: valid port and out-pointer.
        unsafe { dpdk_sys::rte_eth_stats_get(self.info.id, &mut s) };
        PortStats {
            ipackets: s.ipackets,
            opackets: s.opackets,
            ibytes: s.ibytes,
            obytes: s.obytes,
            imissed: s.imissed,
            ierrors: s.ierrors,
            oerrors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
        }
    }
}

/// Fills the NIC's redirection table so that entry i sends to queue `shard_of(i, queues)`: the
/// queue the NIC picks for a hash is then the worker that software steering would pick.
fn program_reta(id: u16, name: &str, queues: u16) -> Result<(), DpdkError> {
    let mut di = dpdk_sys::rte_eth_dev_info::default();
    // SAFETY: valid port id and out-pointer.
    unsafe { dpdk_sys::rte_eth_dev_info_get(id, &mut di) };
    let size = di.reta_size as usize;
    if size == 0 {
        return Err(DpdkError::new(
            format!("port '{name}': the device reports no RSS redirection table; flows could split across workers"),
            95,
        ));
    }
    if !size.is_multiple_of(crate::worker::SHARD_BUCKETS as usize) {
        return Err(DpdkError::new(
            format!("port '{name}': RSS redirection table of {size} entries is not a multiple of 64; flows could split across workers"),
            22,
        ));
    }
    // Control path, once per port: a Vec is fine (ice/E810 tables have 2048 entries).
    let mut conf = vec![dpdk_sys::rte_eth_rss_reta_entry64::default(); size / 64];
    for i in 0..size {
        let e = &mut conf[i / 64];
        e.mask |= 1 << (i % 64);
        e.reta[i % 64] = crate::worker::shard_of(i as u32, queues as usize) as u16;
    }
    // SAFETY: conf holds size/64 entries with valid masks; valid port id.
    let rc = unsafe { dpdk_sys::rte_eth_dev_rss_reta_update(id, conf.as_mut_ptr(), size as u16) };
    if rc != 0 {
        return Err(DpdkError::new(
            format!("rte_eth_dev_rss_reta_update({name})"),
            rc,
        ));
    }
    Ok(())
}

impl Drop for Port<'_> {
    fn drop(&mut self) {
        // SAFETY: no worker uses the port any more (the runtime joins workers before dropping).
        unsafe {
            dpdk_sys::rte_eth_dev_stop(self.info.id);
            dpdk_sys::rte_eth_dev_close(self.info.id);
        }
    }
}
