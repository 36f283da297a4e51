//! The real binary syncing from the fake Google over loopback: a complete, byte-identical
//! library with capture-time mtimes, a second run that fetches nothing, and the faults
//! Google is documented to show (google-photos-api.md §1.5, §6.1, §6.4).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use fake_google::{EndpointKind, FakeConfig, FakeGoogle, Fault, Schedule, scopes};
use system_tests::{
    Workspace, assert_served_file, describe, parse_list, temp_files_under, workspace,
};

const OK: i32 = 0;
const PARTIAL: i32 = 4;

/// Starts a fake with `items` items; the default generator adds edge cases from 24 items on
/// (duplicate names, NFC/NFD, `/` in a name, > 255 bytes, a FAILED and a PROCESSING video).
async fn fake(items: usize) -> FakeGoogle {
    FakeGoogle::start(FakeConfig::with_items(items))
        .await
        .expect("start the fake Google")
}

fn setup(fake: &FakeGoogle) -> Workspace {
    let ws = workspace!();
    ws.write_config_for(fake, "");
    ws.authorize(fake, &[scopes::LIBRARY_READONLY_APPCREATED]);
    ws
}

/// Asserts that every downloadable item of the fake is in the library, byte-identical to
/// what Google serves for `=d`/`=dv`, with mtime = capture time; returns path by id.
async fn assert_complete_library(ws: &Workspace, fake: &FakeGoogle) -> BTreeMap<String, String> {
    let listing = ws.run_async(&["list", "--json"]).await;
    assert_eq!(listing.status.code(), Some(OK), "{}", describe(&listing));
    let rows = parse_list(&listing);
    let by_id: BTreeMap<String, serde_json::Value> = rows
        .into_iter()
        .map(|row| (row["id"].as_str().unwrap().to_string(), row))
        .collect();
    let mut paths = BTreeMap::new();
    let mut checked = 0;
    for item in fake.library().items() {
        let Some(row) = by_id.get(item.id.as_str()) else {
            panic!(
                "item {} ({}) is not in the index",
                item.id.as_str(),
                item.filename
            );
        };
        let downloadable = !matches!(
            item.video_status,
            Some(fake_google::VideoStatus::Processing | fake_google::VideoStatus::Failed)
        );
        if !downloadable {
            assert_ne!(row["state"], "done", "{row}");
            continue;
        }
        let rel = row["path"].as_str().unwrap();
        let size = assert_served_file(&ws.library_dir(), fake, &item, rel);
        assert_eq!(row["size"].as_u64(), Some(size), "{row}");
        assert_eq!(row["source"], "library_api");
        paths.insert(item.id.as_str().to_string(), rel.to_string());
        checked += 1;
    }
    assert!(checked > 0);
    assert!(temp_files_under(&ws.library_dir()).is_empty());
    paths
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_sync_is_complete_and_second_run_fetches_nothing() {
    let fake = fake(60).await;
    let ws = setup(&fake);

    let first = ws.run_async(&["--run-now"]).await;
    // The generated library holds a video Google failed to process: partial, by design.
    assert_eq!(first.status.code(), Some(PARTIAL), "{}", describe(&first));
    let paths = assert_complete_library(&ws, &fake).await;
    assert!(
        paths.values().all(|p| p.starts_with("photos/")),
        "{paths:?}"
    );
    // photos/YYYY/MM/<name> from the UTC capture time.
    for item in fake.library().items() {
        if let Some(rel) = paths.get(item.id.as_str()) {
            let folder = item.creation_time.format("photos/%Y/%m/").to_string();
            assert!(rel.starts_with(&folder), "{rel} not under {folder}");
        }
    }

    fake.reset_stats();
    let second = ws.run_async(&["--run-now"]).await;
    assert!(
        matches!(second.status.code(), Some(OK | PARTIAL)),
        "{}",
        describe(&second)
    );
    let stats = fake.stats();
    assert_eq!(
        stats.media_bytes, 0,
        "a second run must fetch no media bytes"
    );
    assert_eq!(stats.media_requests, 0);
    // And names are stable.
    assert_eq!(assert_complete_library(&ws, &fake).await, paths);

    let verify = ws.run_async(&["verify", "--deep"]).await;
    assert_eq!(verify.status.code(), Some(OK), "{}", describe(&verify));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_still_end_in_a_complete_library() {
    let fake = fake(40).await;
    let ws = setup(&fake);
    let faults = fake.faults();
    // 5xx on listing and batchGet, resets and 503s on the media host.
    faults.inject(
        EndpointKind::LibraryList,
        Fault::Unavailable,
        Schedule::Next(2),
    );
    faults.inject(
        EndpointKind::LibrarySearch,
        Fault::Internal,
        Schedule::Next(1),
    );
    faults.inject(
        EndpointKind::LibraryBatchGet,
        Fault::Unavailable,
        Schedule::Next(1),
    );
    faults.inject(
        EndpointKind::Media,
        Fault::ResetMidBody { after_bytes: 1000 },
        Schedule::EveryNth(5),
    );
    faults.inject(EndpointKind::Media, Fault::Unavailable, Schedule::Next(2));

    let run = ws.run_async(&["--run-now"]).await;
    assert!(
        matches!(run.status.code(), Some(OK | PARTIAL)),
        "{}",
        describe(&run)
    );
    assert!(fake.stats().faults_fired >= 5, "{:?}", fake.stats());
    assert_complete_library(&ws, &fake).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_with_retry_after_is_waited_out() {
    let fake = fake(10).await;
    let ws = setup(&fake);
    // google-photos-api.md §1.5: wait at least 30 s after a 429 before retrying.
    fake.faults().inject(
        EndpointKind::LibrarySearch,
        Fault::RateLimited {
            retry_after: Some(Duration::from_secs(2)),
        },
        Schedule::Next(1),
    );
    fake.faults().inject(
        EndpointKind::LibraryList,
        Fault::RateLimited {
            retry_after: Some(Duration::from_secs(2)),
        },
        Schedule::Next(1),
    );
    let started = std::time::Instant::now();
    let run = ws.run_async(&["--run-now"]).await;
    assert_eq!(run.status.code(), Some(OK), "{}", describe(&run));
    assert!(fake.stats().rate_limited >= 1);
    assert!(
        started.elapsed() >= Duration::from_secs(30),
        "retried after {:?}, before the 30 s Google asks for",
        started.elapsed()
    );
    assert_complete_library(&ws, &fake).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_index_is_rebuilt_by_reindex_and_nothing_is_downloaded_again() {
    let fake = fake(40).await;
    let ws = setup(&fake);
    let first = ws.run_async(&["--run-now"]).await;
    assert_eq!(first.status.code(), Some(PARTIAL), "{}", describe(&first));
    let paths = assert_complete_library(&ws, &fake).await;

    std::fs::remove_dir_all(ws.state_dir().join("index")).unwrap();
    let reindex = ws.run_async(&["reindex"]).await;
    assert_eq!(reindex.status.code(), Some(OK), "{}", describe(&reindex));

    fake.reset_stats();
    let resync = ws.run_async(&["--run-now"]).await;
    assert!(
        matches!(resync.status.code(), Some(OK | PARTIAL)),
        "{}",
        describe(&resync)
    );
    assert_eq!(
        fake.stats().media_bytes,
        0,
        "files must be adopted, not fetched"
    );
    // Every item is back at exactly the path it had.
    assert_eq!(assert_complete_library(&ws, &fake).await, paths);
}
