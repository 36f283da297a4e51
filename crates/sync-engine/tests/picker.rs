//! The engine with `PickerSource` against the real fake (spec §3, §6.3): picked items,
//! including ones the Library API cannot see, land in the library; an expiring session stops
//! the run cleanly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use api_client::{
    AccessToken, ClientSecret, Downloader, Endpoints, HttpClient, ManualClock, OAuthClient,
    PickerClient, RefreshToken, Scope, TokenProvider, Tokens,
};
use fake_google::{FakeConfig, FakeGoogle, MediaItemId, scopes};
use sync_engine::{
    Engine, EngineConfig, NoProgress, PickerSource, ProgressEvent, ProgressSink, RunOutcome,
    Source, SyncOptions,
};
use tokio_util::sync::CancellationToken;

async fn picked_session(
    fake: &FakeGoogle,
    pick: &[MediaItemId],
) -> (PickerSource, CancellationToken) {
    let clock = ManualClock::starting_now();
    let http = HttpClient::builder().clock(clock).build().unwrap();
    let endpoints = Endpoints::from_strs(
        &fake.auth_url(),
        &fake.token_url(),
        &fake.revoke_url(),
        &fake.library_api_url(),
        &fake.picker_api_url(),
    )
    .unwrap();
    let issued = fake.issue_tokens(&[scopes::PICKER_READONLY]);
    let oauth = OAuthClient::new(
        http.clone(),
        ClientSecret::from_json(&fake.client_secret_json()).unwrap(),
        &endpoints,
    );
    let tokens = TokenProvider::new(
        oauth,
        Tokens {
            access_token: AccessToken::new(issued.access_token),
            refresh_token: Some(RefreshToken::new(issued.refresh_token)),
            expires_at: None,
            scopes: vec![Scope::PICKER_READONLY],
        },
        None,
    );
    let picker = PickerClient::new(http.clone(), tokens.clone(), &endpoints);
    let session = picker.create_session(None, None).await.unwrap();
    fake.picker().pick(session.id.as_str(), pick).unwrap();
    let run = CancellationToken::new();
    let source = PickerSource::new(
        picker,
        tokens,
        Downloader::new(http.clone()),
        http,
        session.id,
    )
    .stop_run_when_session_ends(run.clone());
    (source, run)
}

#[tokio::test]
async fn picked_items_including_foreign_ones_are_saved_byte_identical() {
    let fake = FakeGoogle::start(FakeConfig {
        foreign_items: 4,
        ..FakeConfig::with_items(6)
    })
    .await
    .unwrap();
    let lib = fake.library();
    let mut pick: Vec<MediaItemId> = lib.foreign_items().iter().map(|i| i.id.clone()).collect();
    pick.push(lib.items()[0].id.clone());
    let (source, run) = picked_session(&fake, &pick).await;
    let source = Arc::new(source);
    let tmp = tempfile::tempdir().unwrap();
    let engine = Engine::open(EngineConfig::new(
        tmp.path().join("lib"),
        tmp.path().join("st"),
    ))
    .unwrap();
    let sources: Vec<Arc<dyn Source>> = vec![source.clone()];
    let r = engine
        .sync(&sources, SyncOptions::default(), Arc::new(NoProgress), run)
        .await
        .unwrap();
    assert_eq!(r.outcome, RunOutcome::Completed, "{:?}", r.errors);
    assert!(!r.full_scan, "a session is never a full listing");
    let picked = source.picked();
    assert_eq!(
        picked.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
        pick.iter().map(MediaItemId::as_str).collect::<Vec<_>>()
    );
    let items: Vec<_> = engine.items().map(Result::unwrap).collect();
    for id in &pick {
        let info = lib.item(id).unwrap_or_else(|| {
            lib.foreign_items()
                .into_iter()
                .find(|i| &i.id == id)
                .unwrap()
        });
        let item = items.iter().find(|i| i.id.as_str() == id.as_str()).unwrap();
        if info
            .video_status
            .is_some_and(|s| s != fake_google::VideoStatus::Ready)
        {
            continue;
        }
        assert_eq!(item.state, "done", "{}", item.path);
        assert_eq!(item.source, sync_engine::SourceKind::Picker);
        let params = if info.is_video { "dv" } else { "d" };
        let bytes = std::fs::read(tmp.path().join("lib").join(&item.path)).unwrap();
        assert_eq!(
            bytes,
            lib.download_bytes(id, params).unwrap(),
            "{}",
            item.path
        );
        let mtime = std::fs::metadata(tmp.path().join("lib").join(&item.path))
            .unwrap()
            .modified()
            .unwrap()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert_eq!(mtime as i64, info.creation_time.timestamp());
    }
    assert!(!source.session_ended());
}

/// Moves the fake's clock past the session's lifetime when the first file lands (§6.3:
/// sessions answer 403 after expireTime; base URLs expire too).
struct ExpireSession {
    clock: fake_google::FakeClock,
    fired: AtomicBool,
}

impl ProgressSink for ExpireSession {
    fn on_event(&self, event: &ProgressEvent) {
        if matches!(event, ProgressEvent::Downloaded { .. })
            && !self.fired.swap(true, Ordering::SeqCst)
        {
            self.clock.advance(Duration::from_secs(2 * 3600));
        }
    }
}

#[tokio::test]
async fn an_expiring_session_stops_the_run_cleanly_and_keeps_what_was_saved() {
    let fake = FakeGoogle::start(FakeConfig::with_items(8)).await.unwrap();
    let pick: Vec<MediaItemId> = fake
        .library()
        .items()
        .iter()
        .filter(|i| !i.is_video)
        .map(|i| i.id.clone())
        .collect();
    let (source, run) = picked_session(&fake, &pick).await;
    let source = Arc::new(source);
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = EngineConfig::new(tmp.path().join("lib"), tmp.path().join("st"));
    cfg.max_concurrent_downloads = 1;
    let engine = Engine::open(cfg).unwrap();
    let sources: Vec<Arc<dyn Source>> = vec![source.clone()];
    let sink = Arc::new(ExpireSession {
        clock: fake.clock(),
        fired: AtomicBool::new(false),
    });
    let started = std::time::Instant::now();
    let r = engine
        .sync(&sources, SyncOptions::default(), sink, run)
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "no grace-period wait"
    );
    assert_eq!(r.outcome, RunOutcome::Cancelled);
    assert!(source.session_ended());
    let s = engine.status().unwrap();
    assert_eq!(s.done, 1);
    assert_eq!(s.failed, 0, "unsaved items wait without a failure back-off");
    assert!(engine.verify(true).unwrap().is_clean());
}
