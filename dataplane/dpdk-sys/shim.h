/* Exported wrappers for DPDK functions that are `static inline` in its headers and therefore have no
 * symbol to link against. Each is a one-line forward; keep them that way. */
#ifndef PORTCULLIS_SHIM_H
#define PORTCULLIS_SHIM_H
#include <stdint.h>
struct rte_mbuf;
struct rte_mempool;
struct rte_ring;

uint16_t pc_eth_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
uint16_t pc_eth_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
struct rte_mbuf *pc_pktmbuf_alloc(struct rte_mempool *mp);
void pc_pktmbuf_free(struct rte_mbuf *m);
int pc_pktmbuf_append(struct rte_mbuf *m, uint16_t len, uint8_t **data);
unsigned int pc_ring_enqueue_burst(struct rte_ring *r, struct rte_mbuf **objs, unsigned int n);
unsigned int pc_ring_dequeue_burst(struct rte_ring *r, struct rte_mbuf **objs, unsigned int n);
unsigned int pc_ring_count(const struct rte_ring *r);
int pc_errno(void);
unsigned int pc_lcore_id(void);
uint64_t pc_rdtsc(void);
uint64_t pc_tsc_hz(void);
uint64_t pc_rx_rss_hash_flag(void);
#endif
