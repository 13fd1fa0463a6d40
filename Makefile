# Portcullis — build, demo and test entry points. Run as root on Debian 12.
#   make demo   install what is missing, build (release), replay a real capture through DPDK and
#               print what the appliance decided
#   make test   everything CI checks: fmt, clippy, unit/property tests, end-to-end tests

SHELL := /bin/bash
CARGO ?= cargo
RELEASE_BIN := target/release

# System packages: DPDK 22.11 and its build needs; real clients/servers for the end-to-end tests;
# nDPI's ndpiReader, the baseline of perf/bench-inspect.sh.
DEPS_BUILD := dpdk dpdk-dev libdpdk-dev pkg-config libclang-dev clang libpcap-dev
DEPS_TEST  := nginx-light curl openssl openssh-client openssh-server iproute2 ethtool iputils-ping tcpdump procps python3 python3-scapy socat libndpi-bin chromium

.PHONY: all deps build demo test lint unit e2e bench fuzz clean

all: build

deps:
	@missing=$$(for p in $(DEPS_BUILD) $(DEPS_TEST); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	    echo "installing: $$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@command -v $(CARGO) >/dev/null || { echo "cargo not found: install Rust 1.75 or newer with rustup (https://rustup.rs)"; exit 1; }
	@if command -v rustup >/dev/null; then \
	    for c in rustfmt clippy; do rustup component list --installed 2>/dev/null | grep -q "^$$c" || rustup component add $$c; done; \
	fi

build: deps
	$(CARGO) build --release --workspace

# The demo's events and forwarded frames start afresh each run (the event log appends).
demo: build
	@mkdir -p out && rm -f out/demo-eve.json out/demo-inside-tx.pcap out/demo-outside-tx.pcap
	$(RELEASE_BIN)/portcullisd --config configs/demo.toml
	@echo "forwarded frames: out/demo-outside-tx.pcap (RSTs sent back to clients: out/demo-inside-tx.pcap)"

lint: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit: deps
	$(CARGO) test --workspace

e2e: build
	tests/e2e/run.sh

test: lint unit e2e
	@echo "make test: all checks passed"

bench: build
	perf/bench-forward.sh
	perf/bench-conntrack.sh
	perf/bench-inspect.sh
	perf/bench-sync.sh

# Every fuzz target in turn (FUZZ_TARGETS to pick), FUZZ_SECONDS each; seeds for the inspection
# targets come from the real captures of ../shared/corpus.
FUZZ_TARGETS ?= parse_frame tls_hello quic_initial detect
fuzz:
	/usr/bin/python3 fuzz/seeds.py
	cd fuzz && for t in $(FUZZ_TARGETS); do \
	  RUSTC_BOOTSTRAP=1 cargo fuzz run $$t -- -max_total_time=$${FUZZ_SECONDS:-600} || exit 1; done

clean:
	$(CARGO) clean
	rm -rf out
