//! Password hashing gives its memory back, whichever thread hashed: a process of its own, so
//! that no other test's memory moves the figure. Read from Linux's /proc.
#![cfg(target_os = "linux")]

/// The process's anonymous memory (its heap), KiB.
fn heap_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("RssAnon:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("RssAnon")
}

#[test]
fn hashing_gives_its_memory_back_whichever_thread_hashed() {
    let before = heap_kib();
    for _ in 0..4 {
        std::thread::spawn(|| {
            switchboard_auth::password::hash_password("correct horse battery").expect("hashed")
        })
        .join()
        .expect("the thread hashed");
    }
    let grown = heap_kib().saturating_sub(before);
    // A hash's block is 7 MiB: one kept, or one per thread, would show.
    assert!(grown < 4 * 1024, "the heap grew by {grown} KiB");
}
