#!/usr/bin/env bash
# The inline-forwarding test with two workers on ports without RSS (net_af_packet, qpairs=2: the
# kernel fans frames out over two sockets by its own, asymmetric hash). Software steering by the
# symmetric Toeplitz hash must bring both directions of each flow to one worker, through the
# rings, with nothing lost. On this 2-core machine one worker shares the control core (lab only).
export WORKERS_TOML=$'worker_cores = [0, 1]\nshare_control_core = true'
export AFP_ARGS=",qpairs=2"
export CHECK_STEERING=1
exec bash "$(dirname "$0")/test_inline_forwarding.sh"
