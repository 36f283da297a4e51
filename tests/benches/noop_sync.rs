//! A 100,000-item library: first sync, then no-op runs, with peak RSS and index size.
//!
//! `cargo bench -p system-tests --bench noop_sync [-- ITEMS]` (default 100,000).
//!
//! Prints, for the real binary as a child process: the first full sync, a no-op
//! incremental run, and a no-op full rescan (`--rescan`, which lists all items), each with
//! wall time and peak RSS; then the index size per item. Targets (issue "Sync engine"):
//! no-op sync of 100k items < 5 s excluding listing latency, peak RSS < 150 MB,
//! index < 1 KiB per item.

#![allow(clippy::unwrap_used, clippy::expect_used)]
// wait4() is the only way to read one finished child's peak RSS.
#![allow(unsafe_code)]

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use fake_google::{FakeConfig, FakeGoogle, PageQuirks, Quotas, scopes};
use system_tests::Workspace;

/// Runs the binary, waits with wait4 and returns (exit code, wall time, peak RSS in MiB).
fn run_measured(ws: &Workspace, args: &[&str]) -> (Option<i32>, Duration, f64) {
    let started = Instant::now();
    let child = ws
        .command(args)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let pid = i32::try_from(child.id()).unwrap();
    let mut status = 0;
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: pid is our own child, not yet reaped; status and usage point to valid memory.
    let rc = unsafe { libc::wait4(pid, &mut status, 0, usage.as_mut_ptr()) };
    assert_eq!(rc, pid, "wait4 failed");
    let elapsed = started.elapsed();
    // SAFETY: filled by the successful wait4 above.
    let max_rss_kib = unsafe { usage.assume_init() }.ru_maxrss;
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    std::mem::forget(child); // already reaped by wait4
    (code, elapsed, max_rss_kib as f64 / 1024.0)
}

fn dir_size(path: &Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(path) {
        for entry in entries.flatten() {
            let meta = entry.metadata().unwrap();
            total += if meta.is_dir() {
                dir_size(&entry.path())
            } else {
                meta.len()
            };
        }
    }
    total
}

fn main() {
    let items: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut config = FakeConfig::with_items(items);
    config.photo_bytes = (512, 2048);
    config.video_bytes = (2048, 4096);
    config.page_quirks = PageQuirks::NONE;
    config.quotas = Quotas::UNLIMITED;
    let fake = runtime.block_on(FakeGoogle::start(config)).unwrap();
    let ws = Workspace::new(env!("CARGO_BIN_EXE_gphotos-backup-under-test"));
    ws.write_config_for(&fake, "");
    ws.authorize(&fake, &[scopes::LIBRARY_READONLY_APPCREATED]);
    println!("noop_sync: {items} items from the fake Google on loopback");

    let report = |label: &str, (code, elapsed, rss): (Option<i32>, Duration, f64)| {
        assert!(matches!(code, Some(0 | 4)), "{label}: exit {code:?}");
        println!(
            "{label:<42} {:>8.2} s   peak RSS {:>6.1} MB",
            elapsed.as_secs_f64(),
            rss
        );
    };
    // The fake serves from this runtime's worker threads while we block on wait4 here.
    report(
        "first sync (downloads everything)",
        run_measured(&ws, &["--run-now"]),
    );
    report("no-op incremental sync", run_measured(&ws, &["--run-now"]));
    fake.reset_stats();
    let rescan = run_measured(&ws, &["--run-now", "--rescan"]);
    report("no-op full rescan (lists every item)", rescan);
    let stats = fake.stats();
    println!(
        "  the rescan made {} API requests and {} media requests",
        stats.total_requests() - stats.media_requests,
        stats.media_requests
    );
    let index = dir_size(&ws.state_dir());
    println!(
        "index on disk: {:.1} MB, {:.0} bytes per item (target < 1024)",
        index as f64 / 1e6,
        index as f64 / items as f64
    );
    runtime.block_on(fake.shutdown());
}
