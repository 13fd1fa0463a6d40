//! Finds the system libdpdk with pkg-config, generates bindings with bindgen and compiles the C shim.
//! No DPDK version is hard-coded beyond the minimum the project is tested against (22.11 LTS).

use std::env;
use std::path::PathBuf;

const INSTALL_HINT: &str = "install DPDK's development files, e.g. on Debian 12: \
     apt-get install dpdk dpdk-dev libdpdk-dev pkg-config libclang-dev clang \
     (or run `make deps` in the repository)";

fn main() {
    println!("cargo:rerun-if-changed=wrapper.h");
    println!("cargo:rerun-if-changed=shim.h");
    println!("cargo:rerun-if-changed=shim.c");
    println!("cargo:rerun-if-env-changed=PORTCULLIS_MARCH");

    let lib = match pkg_config::Config::new()
        .atleast_version("22.11")
        .probe("libdpdk")
    {
        Ok(lib) => lib,
        Err(e) => panic!(
            "\n\ndpdk-sys: libdpdk >= 22.11 was not found by pkg-config: {e}\n{INSTALL_HINT}\n\n"
        ),
    };
    println!("cargo:version={}", lib.version);

    // pkg-config's cflags carry `-march=corei7` (DPDK's baseline ISA for its inline code); the
    // pkg-config crate drops it. PORTCULLIS_MARCH=native builds the shim for the local CPU.
    let march = env::var("PORTCULLIS_MARCH").unwrap_or_else(|_| "corei7".to_string());

    let mut shim = cc::Build::new();
    shim.file("shim.c")
        .flag(format!("-march={march}"))
        .flag("-include")
        .flag("rte_config.h")
        .opt_level(3)
        .warnings(false);
    for p in &lib.include_paths {
        shim.include(p);
    }
    shim.compile("portcullis_dpdk_shim");

    let mut builder = bindgen::Builder::default()
        .header("wrapper.h")
        .clang_arg(format!("-march={march}"))
        .allowlist_function("rte_eal_.*")
        .allowlist_function("rte_eth_.*")
        .allowlist_function("rte_pktmbuf_.*")
        .allowlist_function("rte_mempool_.*")
        .allowlist_function("rte_ring_create|rte_ring_free")
        .allowlist_function(
            "rte_socket_id|rte_lcore_count|rte_thread_register|rte_thread_unregister",
        )
        .allowlist_function("rte_strerror|rte_version")
        .allowlist_function("pc_.*")
        .allowlist_type("rte_mbuf|rte_eth_.*|rte_mempool|rte_ring")
        .allowlist_var(
            "RTE_ETH_.*|RTE_MBUF_.*|RING_F_.*|SOCKET_ID_ANY|RTE_MAX_ETHPORTS|RTE_PKTMBUF_HEADROOM",
        )
        .opaque_type("rte_l2tpv2_combined_msg_hdr")
        .opaque_type("rte_gtp_psc_.*_hdr")
        .derive_default(true)
        .layout_tests(false)
        .generate_comments(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()));
    for p in &lib.include_paths {
        builder = builder.clang_arg(format!("-I{}", p.display()));
    }
    let bindings = builder.generate().unwrap_or_else(|e| {
        panic!("dpdk-sys: bindgen failed on the DPDK headers: {e}\n{INSTALL_HINT}")
    });
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR is set by cargo"));
    bindings
        .write_to_file(out.join("bindings.rs"))
        .expect("dpdk-sys: cannot write bindings.rs");
}
