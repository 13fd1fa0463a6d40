#include <rte_config.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <rte_cycles.h>
#include "shim.h"

uint16_t pc_eth_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{ return rte_eth_rx_burst(port, queue, pkts, n); }

uint16_t pc_eth_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{ return rte_eth_tx_burst(port, queue, pkts, n); }

struct rte_mbuf *pc_pktmbuf_alloc(struct rte_mempool *mp) { return rte_pktmbuf_alloc(mp); }

void pc_pktmbuf_free(struct rte_mbuf *m) { rte_pktmbuf_free(m); }

int pc_pktmbuf_append(struct rte_mbuf *m, uint16_t len, uint8_t **data)
{
	char *p = rte_pktmbuf_append(m, len);
	*data = (uint8_t *)p;
	return p == NULL ? -1 : 0;
}

unsigned int pc_ring_enqueue_burst(struct rte_ring *r, struct rte_mbuf **objs, unsigned int n)
{ return rte_ring_enqueue_burst(r, (void *const *)objs, n, NULL); }

unsigned int pc_ring_dequeue_burst(struct rte_ring *r, struct rte_mbuf **objs, unsigned int n)
{ return rte_ring_dequeue_burst(r, (void **)objs, n, NULL); }

unsigned int pc_ring_count(const struct rte_ring *r) { return rte_ring_count(r); }

int pc_errno(void) { return rte_errno; }

unsigned int pc_lcore_id(void) { return rte_lcore_id(); }

uint64_t pc_rdtsc(void) { return rte_rdtsc(); }

uint64_t pc_tsc_hz(void) { return rte_get_tsc_hz(); }

uint64_t pc_rx_rss_hash_flag(void) { return RTE_MBUF_F_RX_RSS_HASH; }
