//! Sync throughput and memory against a baseline measured in the same run.
//!
//! `cargo bench -p system-tests --bench sync_throughput [-- ITEMS]` (default 10,000 items).
//!
//! 1. Starts the fake Google on loopback with ITEMS generated photos and videos.
//! 2. Baseline: a plain concurrent reqwest loop lists the library and fetches every
//!    download URL with the same concurrency as the daemon (8), discarding the bytes; then
//!    the same loop writing each body to its own file (no fsync), the disk-bound reference.
//! 3. Ours: the real `gphotos-backup --run-now` into a fresh library (files written,
//!    fsynced, renamed, indexed), as a child process so its peak RSS is its own.
//!
//! Prints items/s, MB/s and peak RSS for both and the throughput ratio (target >= 0.9)
//! and our peak RSS (target < 100 MB). Not a test: figures depend on the machine.

#![allow(clippy::unwrap_used, clippy::expect_used)]
// getrusage(RUSAGE_CHILDREN) is the only way to read a finished child's peak RSS.
#![allow(unsafe_code)]

use std::time::{Duration, Instant};

use fake_google::{FakeConfig, FakeGoogle, PageQuirks, scopes};
use futures::StreamExt;
use system_tests::{Workspace, describe};

const CONCURRENCY: usize = 8;

fn peak_rss_of_children_kib() -> i64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a complete rusage into the pointer we pass.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr()) };
    assert_eq!(rc, 0, "getrusage failed");
    // SAFETY: initialised by the successful call above.
    unsafe { usage.assume_init() }.ru_maxrss
}

fn peak_rss_of_self_kib() -> i64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

struct Figures {
    items: usize,
    bytes: u64,
    elapsed: Duration,
}

impl Figures {
    fn items_per_sec(&self) -> f64 {
        self.items as f64 / self.elapsed.as_secs_f64()
    }
    fn mb_per_sec(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.elapsed.as_secs_f64()
    }
}

/// The plain loop: list with pageSize=100, then GET baseUrl=d / =dv, 8 at a time; the
/// bytes are discarded, or written to one file per item under `write_to` (no fsync).
async fn baseline(fake: &FakeGoogle, write_to: Option<&std::path::Path>) -> Figures {
    let token = fake
        .issue_tokens(&[scopes::LIBRARY_READONLY_APPCREATED])
        .access_token;
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut urls = Vec::new();
    let mut page_token: Option<String> = None;
    loop {
        let mut request = client
            .get(format!("{}/v1/mediaItems", fake.library_api_url()))
            .bearer_auth(&token)
            .query(&[("pageSize", "100")]);
        if let Some(t) = &page_token {
            request = request.query(&[("pageToken", t)]);
        }
        let page: serde_json::Value = request.send().await.unwrap().json().await.unwrap();
        for item in page["mediaItems"].as_array().into_iter().flatten() {
            let is_video = item["mediaMetadata"]["video"].is_object();
            let status = item["mediaMetadata"]["video"]["status"]
                .as_str()
                .unwrap_or("READY");
            if is_video && status != "READY" {
                continue;
            }
            let suffix = if is_video { "=dv" } else { "=d" };
            urls.push(format!("{}{suffix}", item["baseUrl"].as_str().unwrap()));
        }
        match page["nextPageToken"].as_str() {
            Some(t) => page_token = Some(t.to_string()),
            None => break,
        }
    }
    let items = urls.len();
    let bytes: u64 = futures::stream::iter(urls.into_iter().enumerate())
        .map(|(i, url)| {
            let client = client.clone();
            let token = token.clone();
            let path = write_to.map(|dir| dir.join(format!("{i}.bin")));
            async move {
                let mut response = client.get(url).bearer_auth(token).send().await.unwrap();
                let mut file = match &path {
                    Some(p) => Some(tokio::fs::File::create(p).await.unwrap()),
                    None => None,
                };
                let mut n = 0u64;
                while let Some(chunk) = response.chunk().await.unwrap() {
                    n += chunk.len() as u64;
                    if let Some(f) = file.as_mut() {
                        tokio::io::AsyncWriteExt::write_all(f, &chunk)
                            .await
                            .unwrap();
                    }
                }
                n
            }
        })
        .buffer_unordered(CONCURRENCY)
        .fold(0u64, |acc, n| async move { acc + n })
        .await;
    Figures {
        items,
        bytes,
        elapsed: started.elapsed(),
    }
}

async fn ours(fake: &FakeGoogle) -> (Figures, i64) {
    let ws = Workspace::new(env!("CARGO_BIN_EXE_gphotos-backup-under-test"));
    ws.write_config_for(fake, "[sync]\nmax_concurrent_downloads = 8\n");
    ws.authorize(fake, &[scopes::LIBRARY_READONLY_APPCREATED]);
    fake.reset_stats();
    let started = Instant::now();
    let output = ws.run_async(&["--run-now"]).await;
    let elapsed = started.elapsed();
    assert!(
        matches!(output.status.code(), Some(0 | 4)),
        "{}",
        describe(&output)
    );
    let stats = fake.stats();
    (
        Figures {
            items: stats.media_requests as usize,
            bytes: stats.media_bytes,
            elapsed,
        },
        peak_rss_of_children_kib(),
    )
}

fn main() {
    let items: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut config = FakeConfig::with_items(items);
        config.photo_bytes = (20 * 1024, 200 * 1024);
        config.video_bytes = (200 * 1024, 1024 * 1024);
        config.page_quirks = PageQuirks::NONE;
        config.quotas = fake_google::Quotas::UNLIMITED;
        let fake = FakeGoogle::start(config).await.unwrap();
        println!("sync_throughput: {items} items from the fake Google on loopback, concurrency {CONCURRENCY}");
        let base = baseline(&fake, None).await;
        let scratch = tempfile::tempdir().unwrap();
        let base_disk = baseline(&fake, Some(scratch.path())).await;
        drop(scratch);
        let bench_rss = peak_rss_of_self_kib();
        let (ours, rss) = ours(&fake).await;
        println!(
            "baseline (plain reqwest loop, bytes discarded): {:>8.0} items/s {:>8.1} MB/s  ({} items, {:.1} MB, {:.2}s)",
            base.items_per_sec(),
            base.mb_per_sec(),
            base.items,
            base.bytes as f64 / 1e6,
            base.elapsed.as_secs_f64()
        );
        println!(
            "baseline writing each file (no fsync, no index):  {:>8.0} items/s {:>8.1} MB/s  ({:.2}s)",
            base_disk.items_per_sec(),
            base_disk.mb_per_sec(),
            base_disk.elapsed.as_secs_f64()
        );
        println!(
            "gphotos-backup --run-now (written, fsynced, indexed): {:>8.0} items/s {:>8.1} MB/s  ({} items, {:.1} MB, {:.2}s)",
            ours.items_per_sec(),
            ours.mb_per_sec(),
            ours.items,
            ours.bytes as f64 / 1e6,
            ours.elapsed.as_secs_f64()
        );
        println!(
            "throughput ratio ours/baseline: {:.2} (target >= 0.90); ours/baseline-writing-files: {:.2}",
            ours.mb_per_sec() / base.mb_per_sec(),
            ours.mb_per_sec() / base_disk.mb_per_sec()
        );
        println!(
            "peak RSS: gphotos-backup {:.1} MB (target < 100 MB); bench process incl. fake {:.1} MB",
            rss as f64 / 1024.0,
            bench_rss as f64 / 1024.0
        );
        fake.shutdown().await;
    });
}
