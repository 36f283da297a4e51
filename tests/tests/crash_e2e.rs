//! kill -9 at random moments of a sync, restart each time, then finish: the library must
//! equal a clean run's (paths, blake3, album links), with no temporary file left and a
//! passing `verify --deep` (the durability invariant in ARCHITECTURE.md).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use fake_google::{EndpointKind, FakeConfig, FakeGoogle, Fault, Schedule, scopes};
use system_tests::{Workspace, describe, temp_files_under, workspace};

/// Every entry under `root`: files by blake3, symlinks by target.
fn snapshot(root: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let kind = entry.file_type().unwrap();
            if kind.is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                out.insert(rel, format!("-> {}", target.display()));
            } else if kind.is_dir() {
                walk(root, &path, out);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                out.insert(rel, blake3::hash(&bytes).to_hex().to_string());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

async fn fake() -> FakeGoogle {
    let mut config = FakeConfig::with_items(80);
    config.photo_bytes = (64 * 1024, 256 * 1024);
    FakeGoogle::start(config)
        .await
        .expect("start the fake Google")
}

fn prepared(fake: &FakeGoogle) -> Workspace {
    let ws = workspace!();
    ws.write_config_for(fake, "[sync]\nmax_concurrent_downloads = 4\n");
    ws.authorize(fake, &[scopes::LIBRARY_READONLY_APPCREATED]);
    ws
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_never_corrupts_the_library() {
    // The reference: one uninterrupted run against an identical fake.
    let reference_fake = fake().await;
    let reference = prepared(&reference_fake);
    let clean = reference.run_async(&["--run-now"]).await;
    assert!(
        matches!(clean.status.code(), Some(0 | 4)),
        "{}",
        describe(&clean)
    );
    let expected = snapshot(&reference.library_dir());
    assert!(expected.len() > 70, "{}", expected.len());

    let fake = fake().await;
    let ws = prepared(&fake);
    // Slow media bodies stretch the run so that kills land mid-download, mid-listing and
    // mid-album-update rather than only before or after.
    fake.faults().inject(
        EndpointKind::Media,
        Fault::SlowBody {
            chunk_bytes: 16 * 1024,
            delay: Duration::from_millis(2),
        },
        Schedule::Always,
    );
    // Kill moments from a fixed seed: reproducible, spread over the run.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut kills = 0;
    for _ in 0..6 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let after = Duration::from_millis(50 + seed % 600);
        let mut child = tokio::process::Command::from(ws.command(&["--run-now"]))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // The sleep picks the moment of the crash; it synchronises nothing.
        match tokio::time::timeout(after, child.wait()).await {
            Ok(status) => {
                // Finished before the kill: the next attempt starts from a later point.
                assert!(matches!(status.unwrap().code(), Some(0 | 4)));
            }
            Err(_) => {
                child.start_kill().unwrap();
                let status = child.wait().await.unwrap();
                assert!(status.code().is_none(), "killed by a signal");
                kills += 1;
            }
        }
    }
    assert!(kills >= 5, "only {kills} runs were killed mid-way");

    fake.faults().clear();
    let last = ws.run_async(&["--run-now"]).await;
    assert!(
        matches!(last.status.code(), Some(0 | 4)),
        "{}",
        describe(&last)
    );

    assert!(temp_files_under(&ws.library_dir()).is_empty());
    let verify = ws.run_async(&["verify", "--deep"]).await;
    assert_eq!(verify.status.code(), Some(0), "{}", describe(&verify));
    let got = snapshot(&ws.library_dir());
    let missing: Vec<_> = expected.keys().filter(|k| !got.contains_key(*k)).collect();
    let extra: Vec<_> = got.keys().filter(|k| !expected.contains_key(*k)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}\nextra {extra:?}"
    );
    assert_eq!(got, expected);
}
