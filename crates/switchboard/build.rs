//! Release builds lay out the functions the gateway runs (at start and on the proxy's path)
//! side by side at the start of `.text`, in the order of `hot-symbols.txt`: the kernel maps code
//! in 64 KiB windows around each page it faults in, so scattered hot code costs resident memory
//! far beyond its size. The list comes from `scripts/hot-symbols.sh`; a symbol that no longer
//! exists is skipped by the linker, so a stale list costs only memory, never correctness. The
//! names carry hashes that change with the features the build unifies: the list matches builds
//! made as the script makes them (`cargo build --release -p switchboard -p switchboard-bench`).

fn main() {
    println!("cargo:rerun-if-changed=hot-symbols.txt");
    let release = std::env::var("PROFILE").is_ok_and(|profile| profile == "release");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    if release && linux {
        let list = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("hot-symbols.txt");
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={},--no-warn-symbol-ordering",
            list.display()
        );
        // Cargo relinks only when this script's output changes, and the line above names the
        // list, not its content: a digest of the content makes a new list relink the binary.
        let content = std::fs::read(&list).unwrap_or_default();
        let mut digest = std::hash::DefaultHasher::new();
        std::hash::Hasher::write(&mut digest, &content);
        println!(
            "cargo:rustc-env=SWITCHBOARD_HOT_SYMBOLS_DIGEST={:016x}",
            std::hash::Hasher::finish(&digest)
        );
    }
}
