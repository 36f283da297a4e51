//! The engine with `LibraryApiSource` against the real fake Google server (loopback only).
//! Facts about Google's behaviour come from /work/shared/specs/google-photos-api.md.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: setup failures abort the test

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use api_client::{
    AccessToken, ClientSecret, Downloader, Endpoints, HttpClient, LibraryClient, ManualClock,
    OAuthClient, RefreshToken, Scope, TokenProvider, Tokens,
};
use chrono::{TimeZone, Utc};
use fake_google::{
    EndpointKind, FakeConfig, FakeGoogle, Fault, MediaItemId, NewItem, Schedule, VideoStatus,
    scopes,
};
use sync_engine::{
    Engine, EngineConfig, Error, LibraryApiSource, NoProgress, ProgressEvent, ProgressSink,
    RunOutcome, RunReport, Source, SyncOptions,
};
use tokio_util::sync::CancellationToken;

struct Harness {
    fake: FakeGoogle,
    clock: Arc<ManualClock>,
    source: Arc<dyn Source>,
    _tmp: tempfile::TempDir,
    lib: PathBuf,
    state: PathBuf,
}

fn endpoints(fake: &FakeGoogle) -> Endpoints {
    Endpoints::from_strs(
        &fake.auth_url(),
        &fake.token_url(),
        &fake.revoke_url(),
        &fake.library_api_url(),
        &fake.picker_api_url(),
    )
    .unwrap()
}

/// A LibraryApiSource on a client whose retry sleeps run on a manual clock (instant).
fn library_source(fake: &FakeGoogle, clock: &Arc<ManualClock>, scope: &str) -> Arc<dyn Source> {
    let issued = fake.issue_tokens(&[scope]);
    let http = HttpClient::builder().clock(clock.clone()).build().unwrap();
    let endpoints = endpoints(fake);
    let oauth = OAuthClient::new(
        http.clone(),
        ClientSecret::from_json(&fake.client_secret_json()).unwrap(),
        &endpoints,
    );
    let tokens = Tokens {
        access_token: AccessToken::new(issued.access_token),
        refresh_token: Some(RefreshToken::new(issued.refresh_token)),
        expires_at: None,
        scopes: vec![Scope::new(scope)],
    };
    let provider = TokenProvider::new(oauth, tokens, None);
    let library = LibraryClient::new(http.clone(), provider, &endpoints);
    let downloader = Downloader::new(http.clone()).with_idle_timeout(Duration::from_secs(10));
    Arc::new(LibraryApiSource::new(library, downloader, http))
}

async fn harness(cfg: FakeConfig) -> Harness {
    let fake = FakeGoogle::start(cfg).await.unwrap();
    let clock = ManualClock::starting_now();
    let source = library_source(&fake, &clock, scopes::LIBRARY_READONLY_APPCREATED);
    let tmp = tempfile::tempdir().unwrap();
    Harness {
        lib: tmp.path().join("lib"),
        state: tmp.path().join("state"),
        fake,
        clock,
        source,
        _tmp: tmp,
    }
}

fn config(lib: &Path, state: &Path) -> EngineConfig {
    let mut c = EngineConfig::new(lib, state);
    c.max_concurrent_downloads = 4;
    c.retry_backoff = Duration::ZERO;
    c
}

async fn run(
    engine: &Engine,
    source: &Arc<dyn Source>,
    progress: Arc<dyn ProgressSink>,
) -> RunReport {
    run_with(engine, source, progress, CancellationToken::new(), false)
        .await
        .unwrap()
}

async fn run_with(
    engine: &Engine,
    source: &Arc<dyn Source>,
    progress: Arc<dyn ProgressSink>,
    token: CancellationToken,
    rescan: bool,
) -> Result<RunReport, Error> {
    engine
        .sync(
            std::slice::from_ref(source),
            SyncOptions { rescan },
            progress,
            token,
        )
        .await
}

/// id → (path, state) from the index.
fn index_paths(engine: &Engine) -> BTreeMap<String, (String, &'static str)> {
    engine
        .items()
        .map(|i| i.map(|i| (i.id.to_string(), (i.path, i.state))))
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Every downloadable fake item is in the library, byte-identical to what its base URL serves,
/// with mtime = creationTime.
fn assert_library_matches(h: &Harness, engine: &Engine) -> usize {
    let paths = index_paths(engine);
    let mut checked = 0;
    for item in h.fake.library().items() {
        if item.foreign {
            continue;
        }
        let (path, state) = paths
            .get(item.id.as_str())
            .unwrap_or_else(|| panic!("{} not indexed", item.id));
        if matches!(
            item.video_status,
            Some(VideoStatus::Processing | VideoStatus::Failed)
        ) {
            // §1.2: PROCESSING waits for the next run; FAILED is retried with backoff.
            assert_eq!(*state, "pending", "{path}");
            continue;
        }
        assert_eq!(*state, "done", "{path}");
        // §1.4: photos are fetched with =d, videos with =dv.
        let params = if item.is_video { "dv" } else { "d" };
        let expected = h.fake.library().download_bytes(&item.id, params).unwrap();
        let file = h.lib.join(path);
        assert_eq!(std::fs::read(&file).unwrap(), expected, "{path}");
        let mtime = std::fs::metadata(&file).unwrap().modified().unwrap();
        let secs = mtime.duration_since(UNIX_EPOCH).unwrap().as_secs();
        assert_eq!(secs as i64, item.creation_time.timestamp(), "{path}");
        assert!(path.starts_with(&item.creation_time.format("photos/%Y/%m/").to_string()));
        checked += 1;
    }
    checked
}

/// Videos the fake marks FAILED: each run records them as failures, nothing else may fail.
fn failed_videos(h: &Harness) -> u64 {
    h.fake
        .library()
        .items()
        .iter()
        .filter(|i| !i.foreign && i.video_status == Some(VideoStatus::Failed))
        .count() as u64
}

fn temp_files(lib: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            if e.file_type().unwrap().is_dir() {
                walk(&e.path(), out);
            } else if e.file_name().to_string_lossy().contains(".part-") {
                out.push(e.path());
            }
        }
    }
    let mut v = Vec::new();
    walk(lib, &mut v);
    v
}

#[tokio::test]
async fn full_sync_is_byte_identical_and_a_second_run_fetches_no_media() {
    let h = harness(FakeConfig::with_items(40)).await;
    let engine = Engine::open(config(&h.lib, &h.state)).unwrap();
    let r = run(&engine, &h.source, Arc::new(NoProgress)).await;
    assert_eq!(r.outcome, RunOutcome::Completed, "{:?}", r.errors);
    assert_eq!(r.failed, failed_videos(&h), "{:?}", r.errors);
    let checked = assert_library_matches(&h, &engine);
    assert!(checked >= 30, "only {checked} items checked");
    assert_eq!(r.downloaded as usize, checked);

    // Album folders: one per album that has downloaded members, links resolving into photos/.
    let albums = h.fake.library().albums();
    assert!(!albums.is_empty());
    let mut links = 0;
    for year in std::fs::read_dir(h.lib.join("albums")).unwrap() {
        for album in std::fs::read_dir(year.unwrap().path()).unwrap() {
            for link in std::fs::read_dir(album.unwrap().path()).unwrap() {
                let link = link.unwrap().path();
                assert!(
                    std::fs::read_link(&link)
                        .unwrap()
                        .starts_with("../../../photos")
                );
                assert!(
                    std::fs::metadata(&link).unwrap().is_file(),
                    "{link:?} dangles"
                );
                links += 1;
            }
        }
    }
    assert!(links > 0);

    h.fake.reset_stats();
    let r2 = run(&engine, &h.source, Arc::new(NoProgress)).await;
    assert_eq!(r2.downloaded, 0);
    let stats = h.fake.stats();
    assert_eq!((stats.media_requests, stats.media_bytes), (0, 0));
    assert!(engine.verify(true).unwrap().is_clean());
}

#[tokio::test]
async fn transient_faults_429_503_and_resets_still_end_complete() {
    let h = harness(FakeConfig::with_items(30)).await;
    let faults = h.fake.faults();
    // §6.1 fault kinds: per-minute 429 with Retry-After, 5xx, connection reset mid-body.
    faults.inject(
        EndpointKind::Media,
        Fault::RateLimited {
            retry_after: Some(Duration::from_secs(45)),
        },
        Schedule::Next(2),
    );
    // Random rather than every-Nth: a period equal to (downloads in flight + 1) would hit the
    // same file on every retry, since retry sleeps are instant here.
    faults.inject(
        EndpointKind::Media,
        Fault::Unavailable,
        Schedule::Probability { p: 0.12, seed: 7 },
    );
    faults.inject(
        EndpointKind::Media,
        Fault::ResetMidBody { after_bytes: 1000 },
        Schedule::Probability { p: 0.08, seed: 11 },
    );
    faults.inject(
        EndpointKind::LibrarySearch,
        Fault::Unavailable,
        Schedule::Next(1),
    );
    faults.inject(
        EndpointKind::LibraryBatchGet,
        Fault::RateLimited { retry_after: None },
        Schedule::Next(1),
    );
    let engine = Engine::open(config(&h.lib, &h.state)).unwrap();
    let r = run(&engine, &h.source, Arc::new(NoProgress)).await;
    assert_eq!(r.outcome, RunOutcome::Completed);
    assert_eq!(r.failed, failed_videos(&h), "{:?}", r.errors);
    assert!(h.fake.stats().faults_fired >= 5);
    assert_library_matches(&h, &engine);
    assert!(temp_files(&h.lib).is_empty());
    // §1.5: at least 30 s after a 429, and Retry-After (45 s) honoured; sleeps are virtual.
    let sleeps = h.clock.sleeps();
    assert!(
        sleeps.iter().any(|d| *d >= Duration::from_secs(45)),
        "{sleeps:?}"
    );
}

/// Advances the fake's clock past the base-URL lifetime when the first file lands, so every
/// URL already handed out for the batch has expired (§6.4: 403 after 60 minutes).
struct ExpireUrlsAfterFirstDownload {
    clock: fake_google::FakeClock,
    fired: AtomicBool,
}

impl ProgressSink for ExpireUrlsAfterFirstDownload {
    fn on_event(&self, event: &ProgressEvent) {
        if matches!(event, ProgressEvent::Downloaded { .. })
            && !self.fired.swap(true, Ordering::SeqCst)
        {
            self.clock.advance(Duration::from_secs(61 * 60));
        }
    }
}

#[tokio::test]
async fn expired_base_urls_are_refreshed_just_in_time() {
    let h = harness(FakeConfig::with_items(12)).await;
    let mut cfg = config(&h.lib, &h.state);
    cfg.max_concurrent_downloads = 1;
    let engine = Engine::open(cfg).unwrap();
    let sink = Arc::new(ExpireUrlsAfterFirstDownload {
        clock: h.fake.clock(),
        fired: AtomicBool::new(false),
    });
    let r = run(&engine, &h.source, sink).await;
    assert_eq!(r.outcome, RunOutcome::Completed);
    assert_eq!(r.failed, failed_videos(&h), "{:?}", r.errors);
    let stats = h.fake.stats();
    assert!(stats.responses_with(403) >= 1, "no URL expired: {stats:?}");
    assert!(stats.requests_to(EndpointKind::LibraryBatchGet) >= 2);
    assert_library_matches(&h, &engine);
}

#[tokio::test]
async fn names_are_deterministic_across_a_fresh_resync() {
    let h = harness(FakeConfig::with_items(25)).await;
    // Same name, same month: a collision resolved by the id hash, not by listing order.
    let t = Utc.with_ymd_and_hms(2024, 5, 4, 10, 0, 0).unwrap();
    let dup: Vec<NewItem> = (0..3)
        .map(|i| NewItem::photo("IMG_0001.JPG", t + chrono::Duration::minutes(i)))
        .collect();
    h.fake.add_items(&dup).unwrap();

    let engine = Engine::open(config(&h.lib, &h.state)).unwrap();
    run(&engine, &h.source, Arc::new(NoProgress)).await;
    let first = index_paths(&engine);
    let in_may: Vec<_> = first
        .values()
        .filter(|(p, _)| p.starts_with("photos/2024/05/IMG_0001"))
        .collect();
    assert_eq!(in_may.len(), 3, "{in_may:?}");
    // Every path is a valid, distinct file name within limits.
    let mut seen = std::collections::HashSet::new();
    for (p, _) in first.values() {
        assert!(seen.insert(p.clone()), "duplicate path {p}");
        for comp in p.split('/') {
            assert!(
                comp.len() <= 255 && !comp.is_empty() && !comp.contains('\0'),
                "{p}"
            );
        }
    }
    drop(engine);

    // A fresh machine against the same library.
    let tmp2 = tempfile::tempdir().unwrap();
    let mut cfg = config(&tmp2.path().join("lib"), &tmp2.path().join("state"));
    cfg.max_concurrent_downloads = 1;
    let engine2 = Engine::open(cfg).unwrap();
    run(&engine2, &h.source, Arc::new(NoProgress)).await;
    assert_eq!(index_paths(&engine2), first);
}

#[tokio::test]
async fn daily_quota_pauses_cleanly_and_the_next_run_resumes() {
    let h = harness(FakeConfig::with_items(20)).await;
    let engine = Engine::open(config(&h.lib, &h.state)).unwrap();
    h.fake.faults().inject(
        EndpointKind::Media,
        Fault::DailyQuotaExceeded,
        Schedule::EveryNth(4),
    );
    let r = run(&engine, &h.source, Arc::new(NoProgress)).await;
    assert!(
        matches!(r.outcome, RunOutcome::Paused { .. }),
        "{:?}",
        r.outcome
    );
    assert!(engine.status().unwrap().paused);
    assert!(temp_files(&h.lib).is_empty());
    let done_before = engine.status().unwrap().done;

    h.fake.faults().clear();
    let r2 = run(&engine, &h.source, Arc::new(NoProgress)).await;
    assert_eq!(r2.outcome, RunOutcome::Completed);
    assert!(r2.downloaded > 0);
    assert!(engine.status().unwrap().done > done_before);
    assert!(!engine.status().unwrap().paused);
    assert_library_matches(&h, &engine);
}

#[tokio::test]
async fn processing_videos_wait_for_the_next_run() {
    let h = harness(FakeConfig::with_items(5)).await;
    let t = Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap();
    let ids = h
        .fake
        .add_items(&[NewItem::video("clip.mp4", t, VideoStatus::Processing)])
        .unwrap();
    let engine = Engine::open(config(&h.lib, &h.state)).unwrap();
    let r = run(&engine, &h.source, Arc::new(NoProgress)).await;
    assert!(r.processing >= 1);
    assert_eq!(r.failed, 0, "{:?}", r.errors);
    assert!(!h.lib.join("photos/2025/01/clip.mp4").exists());
    assert!(engine.status().unwrap().processing >= 1);

    assert!(h.fake.set_video_ready(&ids[0]));
    let r2 = run(&engine, &h.source, Arc::new(NoProgress)).await;
    assert!(r2.downloaded >= 1);
    let expected = h.fake.library().download_bytes(&ids[0], "dv").unwrap();
    assert_eq!(
        std::fs::read(h.lib.join("photos/2025/01/clip.mp4")).unwrap(),
        expected
    );
}

#[tokio::test]
async fn removed_items_are_marked_on_a_full_rescan_and_files_kept() {
    let h = harness(FakeConfig::with_items(30)).await;
    let engine = Engine::open(config(&h.lib, &h.state)).unwrap();
    run(&engine, &h.source, Arc::new(NoProgress)).await;
    let victim = h.fake.library().items()[0].clone();
    let path = index_paths(&engine)[victim.id.as_str()].0.clone();
    assert!(h.fake.remove_item(&MediaItemId::new(victim.id.as_str())));

    let inc = run(&engine, &h.source, Arc::new(NoProgress)).await;
    assert_eq!(inc.removed, 0);
    let full = run_with(
        &engine,
        &h.source,
        Arc::new(NoProgress),
        CancellationToken::new(),
        true,
    )
    .await
    .unwrap();
    assert_eq!(full.removed, 1, "{:?}", full.errors);
    assert_eq!(index_paths(&engine)[victim.id.as_str()].1, "removed");
    assert!(
        h.lib.join(&path).exists(),
        "delete_removed is off: the file stays"
    );
}

#[tokio::test]
async fn a_token_with_only_the_removed_scope_stops_the_run_with_a_clear_error() {
    let h = harness(FakeConfig::with_items(3)).await;
    let source = library_source(&h.fake, &h.clock, scopes::LIBRARY_READONLY_REMOVED);
    let engine = Engine::open(config(&h.lib, &h.state)).unwrap();
    let err = run_with(
        &engine,
        &source,
        Arc::new(NoProgress),
        CancellationToken::new(),
        false,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::Source { .. }), "{err}");
    assert!(err.to_string().contains("Takeout"), "{err}");
    let s = engine.status().unwrap();
    assert!(matches!(
        s.last_runs.last().unwrap().outcome,
        RunOutcome::Failed { .. }
    ));
}

/// Cancels the run as soon as the first file lands, while others are in flight.
struct CancelAfterFirstDownload(CancellationToken);

impl ProgressSink for CancelAfterFirstDownload {
    fn on_event(&self, event: &ProgressEvent) {
        if matches!(event, ProgressEvent::Downloaded { .. }) {
            self.0.cancel();
        }
    }
}

#[tokio::test]
async fn cancellation_abandons_in_flight_files_and_the_next_run_finishes() {
    let h = harness(FakeConfig::with_items(16)).await;
    // Slow media responses keep several downloads in flight when the token fires.
    h.fake.faults().inject(
        EndpointKind::Media,
        Fault::SlowBody {
            chunk_bytes: 8 * 1024,
            delay: Duration::from_millis(20),
        },
        Schedule::Always,
    );
    let engine = Engine::open(config(&h.lib, &h.state)).unwrap();
    let token = CancellationToken::new();
    let r = run_with(
        &engine,
        &h.source,
        Arc::new(CancelAfterFirstDownload(token.clone())),
        token,
        false,
    )
    .await
    .unwrap();
    assert_eq!(r.outcome, RunOutcome::Cancelled);
    assert!(temp_files(&h.lib).is_empty(), "{:?}", temp_files(&h.lib));
    let s = engine.status().unwrap();
    assert!(s.done >= 1 && s.pending >= 1, "{s:?}");
    // What was recorded is on disk and intact.
    assert!(engine.verify(true).unwrap().is_clean());

    h.fake.faults().clear();
    let r2 = run(&engine, &h.source, Arc::new(NoProgress)).await;
    assert_eq!(r2.outcome, RunOutcome::Completed);
    assert_library_matches(&h, &engine);
}

#[tokio::test]
async fn incremental_runs_find_new_captures_and_a_rescan_finds_late_uploads_of_old_photos() {
    let h = harness(FakeConfig::with_items(15)).await;
    let engine = Engine::open(config(&h.lib, &h.state)).unwrap();
    let first = run(&engine, &h.source, Arc::new(NoProgress)).await;
    assert!(first.full_scan);
    let newest = h
        .fake
        .library()
        .items()
        .iter()
        .map(|i| i.creation_time)
        .max()
        .unwrap();
    let old = Utc.with_ymd_and_hms(2011, 2, 3, 4, 5, 6).unwrap();
    h.fake
        .add_items(&[
            NewItem::photo("new.jpg", newest + chrono::Duration::hours(1)),
            NewItem::photo("old-scan.jpg", old),
        ])
        .unwrap();

    // Incremental: searches from the newest capture date on (spec §1.1 dateFilter), so the
    // newly captured photo arrives but the late upload of a 2011 photo does not (the same
    // limitation gphotos-sync documents for its LastIndex).
    let inc = run(&engine, &h.source, Arc::new(NoProgress)).await;
    assert!(!inc.full_scan);
    assert_eq!(inc.downloaded, 1, "{:?}", inc.errors);
    assert!(
        inc.listed < first.listed,
        "{} vs {}",
        inc.listed,
        first.listed
    );
    assert!(!h.lib.join("photos/2011/02/old-scan.jpg").exists());

    let full = run_with(
        &engine,
        &h.source,
        Arc::new(NoProgress),
        CancellationToken::new(),
        true,
    )
    .await
    .unwrap();
    assert_eq!(full.downloaded, 1);
    assert!(h.lib.join("photos/2011/02/old-scan.jpg").exists());
}

#[tokio::test]
async fn failures_are_retried_with_backoff_across_runs() {
    let h = harness(FakeConfig::with_items(8)).await;
    let mut cfg = config(&h.lib, &h.state);
    cfg.retry_backoff = Duration::from_secs(3600);
    let engine = Engine::open(cfg).unwrap();
    let t = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    h.fake
        .add_items(&[NewItem::video("broken.mp4", t, VideoStatus::Failed)])
        .unwrap();
    let failing = failed_videos(&h);
    let r1 = run(&engine, &h.source, Arc::new(NoProgress)).await;
    assert_eq!(r1.failed, failing);
    let s = engine.status().unwrap();
    assert_eq!(s.failed, failing);

    // Within the hour: not attempted again, no batchGet spent on it.
    h.fake.reset_stats();
    let r2 = run(&engine, &h.source, Arc::new(NoProgress)).await;
    assert_eq!((r2.failed, r2.deferred), (0, failing));
    assert_eq!(h.fake.stats().requests_to(EndpointKind::LibraryBatchGet), 0);
}

#[tokio::test]
async fn a_capture_date_in_the_future_does_not_blind_incremental_runs() {
    let h = harness(FakeConfig::with_items(6)).await;
    let engine = Engine::open(config(&h.lib, &h.state)).unwrap();
    // A camera with its clock set to 2099.
    let future = Utc.with_ymd_and_hms(2099, 1, 1, 0, 0, 0).unwrap();
    h.fake
        .add_items(&[NewItem::photo("future.jpg", future)])
        .unwrap();
    run(&engine, &h.source, Arc::new(NoProgress)).await;
    assert!(h.lib.join("photos/2099/01/future.jpg").exists());

    let newest = h
        .fake
        .library()
        .items()
        .iter()
        .filter(|i| i.creation_time < future)
        .map(|i| i.creation_time)
        .max()
        .unwrap();
    h.fake
        .add_items(&[NewItem::photo(
            "fresh.jpg",
            newest + chrono::Duration::hours(2),
        )])
        .unwrap();
    let inc = run(&engine, &h.source, Arc::new(NoProgress)).await;
    assert!(!inc.full_scan);
    assert_eq!(inc.downloaded, 1, "{:?}", inc.errors);
}
