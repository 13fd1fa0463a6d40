/* rte_config.h must come first: pkg-config's `-include rte_config.h` is dropped by the pkg-config crate. */
#include <rte_config.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#include <rte_cycles.h>
#include <rte_version.h>
#include "shim.h"
