//! # fake-google
//!
//! A faithful, deterministic fake of the Google services gphotos-backup talks to, served on one
//! loopback listener (`http://127.0.0.1:PORT`, "BASE"), each Google host under a path prefix
//! (see `/work/notes/endpoints.md`):
//!
//! | Google host                      | here                                  |
//! |----------------------------------|---------------------------------------|
//! | accounts.google.com consent      | `BASE/accounts/o/oauth2/v2/auth`      |
//! | oauth2.googleapis.com            | `BASE/oauth2/token`, `BASE/oauth2/revoke`, `BASE/oauth2/device/code` |
//! | photoslibrary.googleapis.com     | `BASE/library/v1/...`                 |
//! | photospicker.googleapis.com      | `BASE/picker/v1/...`                  |
//! | lh3.googleusercontent.com        | `BASE/media/...` (base URLs)          |
//!
//! It implements the post-March-2025 rules of `/work/shared/specs/google-photos-api.md` §6:
//! app-created-only Library reads, removed scopes answered with 403, the Picker session state
//! machine, base URLs that expire after 60 minutes on an injectable [`FakeClock`], PKCE, Testing-
//! mode refresh-token expiry, proto3 JSON conventions, paging quirks, quotas and switchable
//! [`Faults`]. Media bytes are generated from `(seed, item)` on demand, so 100,000 items cost a
//! few tens of megabytes of metadata and no media memory.
//!
//! Boundary: this crate knows nothing about the rest of gphotos-backup; it is a test double used
//! by other crates' tests, the `gphotos-backup demo` command, benchmarks and the `fake-google`
//! binary. It never contacts a real Google host.
//!
//! ## What a test can rely on
//!
//! * **Determinism.** Ids, filenames, times, flags, albums and media bytes are pure functions of
//!   [`FakeConfig::seed`] (a digest test pins the default seed). Only page tokens and base URLs
//!   are sealed with a per-instance secret, so one fake's tokens are "foreign" to another.
//! * **Ground truth.** [`FakeGoogle::library`] lists what the API serves;
//!   [`GeneratedLibrary::download_bytes`] is exactly what `baseUrl=<params>` returns and
//!   [`GeneratedLibrary::original_bytes`] the camera original (with GPS EXIF) Takeout would give.
//! * **Time.** Nothing expires by itself: access tokens (3599 s), base URLs (60 min), Picker
//!   timeouts and expiry, Testing-mode refresh tokens (7 days), device codes and quota days all
//!   follow the [`FakeClock`]; advance it to cross them. Only [`Fault::SlowBody`],
//!   [`Fault::Delay`] and the device flow's `slow_down` use real time.
//! * **Defaults are Google-like, not convenient.** [`FakeConfig::default`] has page quirks on
//!   (short and empty pages with a `nextPageToken`) and Google's quotas on (10,000 Library
//!   calls and 75,000 media fetches per day). Benchmarks set [`PageQuirks::NONE`] and
//!   [`Quotas::UNLIMITED`] explicitly.
//! * **Hooks.** [`FakeGoogle::faults`] (per [`EndpointKind`], with a [`Schedule`]),
//!   [`FakeGoogle::stats`] and [`FakeGoogle::request_log`], [`FakeGoogle::picker`] (the user in
//!   the picker UI), [`FakeGoogle::set_consent`] / [`FakeGoogle::approve_device`] (the user on the
//!   consent screen), [`FakeGoogle::add_items`], [`FakeGoogle::remove_item`],
//!   [`FakeGoogle::set_video_ready`], [`FakeGoogle::issue_tokens`] (skip the consent dance).
//! * **By hand.** The `fake-google` binary serves the same thing; a person plays the user at
//!   `<pickerUri>/pick?count=N` (or `?ids=A,B`) and `BASE/device?user_code=...`; consent is
//!   approved automatically.
//!
//! ## Example
//!
//! ```no_run
//! # async fn demo() -> Result<(), fake_google::Error> {
//! use fake_google::{FakeConfig, FakeGoogle, scopes};
//! let fake = FakeGoogle::start(FakeConfig::with_items(50)).await?;
//! let tokens = fake.issue_tokens(&[scopes::LIBRARY_READONLY_APPCREATED]);
//! // GET {library_api_url}/v1/mediaItems with `Authorization: Bearer {access_token}` ...
//! let first = &fake.library().items()[0];
//! let expected = fake.library().download_bytes(&first.id, "d")?; // what `baseUrl=d` returns
//! # let _ = (tokens, expected);
//! fake.shutdown().await;
//! # Ok(()) }
//! ```

mod clock;
mod config;
mod faults;
mod library;
mod library_api;
mod media;
mod oauth;
mod picker;
mod rng;
mod server;
mod stats;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use clock::FakeClock;
pub use config::{
    ConsentBehaviour, DeviceFlowConfig, FakeConfig, MissingItemResponse, PageQuirks, PickerConfig,
    ProcessingVideoResponse, Quotas, RemovedScopePolicy,
};
pub use faults::{EndpointKind, Fault, Faults, Schedule};
pub use library::{
    AlbumId, AlbumInfo, CONTENT_CATEGORIES, GeneratedLibrary, GeoPoint, ItemInfo, MediaItemId,
    NewItem, VideoStatus,
};
pub use media::MediaParams;
pub use oauth::{CLIENT_ID, CLIENT_SECRET, IssuedTokens, pkce_s256, scopes};
pub use picker::{PickerControl, PickerSessionInfo, SessionState};
pub use stats::{RequestRecord, Stats};

use server::Inner;

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listener could not be bound.
    #[error("cannot bind 127.0.0.1:{port}: {source}")]
    Bind {
        /// Requested port.
        port: u16,
        /// Cause.
        source: std::io::Error,
    },
    /// No such (live) media item.
    #[error("unknown media item {0}")]
    UnknownItem(MediaItemId),
    /// No such album.
    #[error("unknown album {0}")]
    UnknownAlbum(AlbumId),
    /// Base URL parameters that do not parse or do not fit the item.
    #[error("invalid media parameters: {0}")]
    InvalidMediaParams(String),
    /// No such Picker session.
    #[error("unknown picker session {0}")]
    UnknownSession(String),
    /// The session is not waiting for the user.
    #[error("picker session {id} is {state:?}, not waiting for a pick")]
    SessionNotPickable {
        /// Session id.
        id: String,
        /// Its state.
        state: SessionState,
    },
    /// More items than the session's `maxItemCount`.
    #[error("picked {picked} items but the session allows {max}")]
    TooManyPicked {
        /// The session's limit.
        max: u32,
        /// Items offered.
        picked: usize,
    },
    /// Writing the client secret file failed (binary only).
    #[error("cannot write {path}: {source}")]
    Write {
        /// Target path.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
}

/// A running fake. Dropping it (or [`FakeGoogle::shutdown`]) stops the server.
pub struct FakeGoogle {
    inner: Arc<Inner>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FakeGoogle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeGoogle")
            .field("base_url", &self.inner.base)
            .finish_non_exhaustive()
    }
}

impl FakeGoogle {
    /// Generates the library and starts serving on `127.0.0.1:config.port` (0 = any free port).
    /// Must be called inside a Tokio runtime; the server runs as a task on it.
    pub async fn start(config: FakeConfig) -> Result<FakeGoogle, Error> {
        let port = config.port;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|source| Error::Bind { port, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| Error::Bind { port, source })?;
        let base = format!("http://127.0.0.1:{}", addr.port());
        // A per-instance secret: page tokens and base URLs of one fake are "foreign" to another.
        let secret: [u8; 32] = rand::random();
        let inner = Arc::new(Inner::new(config, base, secret));
        let app = axum::Router::new()
            .fallback(server::dispatch)
            .with_state(inner.clone());
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::warn!(error = %e, "fake-google server stopped with an error");
            }
        });
        Ok(FakeGoogle {
            inner,
            stop,
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        self.inner.base.clone()
    }

    /// Consent screen URL (Google: `https://accounts.google.com/o/oauth2/v2/auth`).
    pub fn auth_url(&self) -> String {
        format!("{}/accounts/o/oauth2/v2/auth", self.inner.base)
    }

    /// Token endpoint (Google: `https://oauth2.googleapis.com/token`).
    pub fn token_url(&self) -> String {
        format!("{}/oauth2/token", self.inner.base)
    }

    /// Revocation endpoint (Google: `https://oauth2.googleapis.com/revoke`).
    pub fn revoke_url(&self) -> String {
        format!("{}/oauth2/revoke", self.inner.base)
    }

    /// Device authorization endpoint (Google: `https://oauth2.googleapis.com/device/code`).
    pub fn device_code_url(&self) -> String {
        format!("{}/oauth2/device/code", self.inner.base)
    }

    /// Library API root; clients append `/v1/...` (Google: `https://photoslibrary.googleapis.com`).
    pub fn library_api_url(&self) -> String {
        format!("{}/library", self.inner.base)
    }

    /// Picker API root; clients append `/v1/...` (Google: `https://photospicker.googleapis.com`).
    pub fn picker_api_url(&self) -> String {
        format!("{}/picker", self.inner.base)
    }

    /// A Google "installed" client secret file whose URIs point at this fake.
    pub fn client_secret_json(&self) -> String {
        serde_json::json!({"installed": {
            "client_id": CLIENT_ID,
            "project_id": "fake-project",
            "auth_uri": self.auth_url(),
            "token_uri": self.token_url(),
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_secret": CLIENT_SECRET,
            "redirect_uris": ["http://localhost"],
        }})
        .to_string()
    }

    /// The fake clock driving token expiry, base-URL expiry, Picker timeouts and quota days.
    pub fn clock(&self) -> FakeClock {
        self.inner.clock.clone()
    }

    /// The fault table.
    pub fn faults(&self) -> Faults {
        self.inner.faults.clone()
    }

    /// A snapshot of request statistics.
    pub fn stats(&self) -> Stats {
        self.inner.stats.snapshot()
    }

    /// Waits until the counters satisfy `condition` (e.g. "a fault has fired"): an event to
    /// synchronise a test on, instead of polling with sleeps. Wrap it in a timeout.
    pub async fn wait_for_stats(&self, condition: impl Fn(&Stats) -> bool) {
        self.inner.stats.wait_until(condition).await;
    }

    /// Every answered request in order (the most recent 100,000), e.g. to check that a client
    /// waited after a 429 or backed off after a 5xx.
    pub fn request_log(&self) -> Vec<RequestRecord> {
        self.inner.stats.request_log()
    }

    /// Zeroes the statistics and the request log (e.g. between benchmark phases).
    pub fn reset_stats(&self) {
        self.inner.stats.reset();
    }

    /// The served library, to assert against.
    pub fn library(&self) -> &GeneratedLibrary {
        &self.inner.library
    }

    /// Issues a grant (refresh + access token) for `scopes` without the consent dance.
    pub fn issue_tokens(&self, scopes: &[&str]) -> IssuedTokens {
        let now = self.inner.now();
        let t = self
            .inner
            .oauth()
            .issue(scopes.iter().map(|s| (*s).to_owned()).collect(), now);
        self.inner.stats.update(|s| s.access_tokens_issued += 1);
        t
    }

    /// Changes what the scripted user does on the next consent screens.
    pub fn set_consent(&self, consent: ConsentBehaviour) {
        self.inner.oauth().consent = consent;
    }

    /// The user types `user_code` on the device verification page and answers according to
    /// the current [`ConsentBehaviour`]. False if no pending code matches.
    pub fn approve_device(&self, user_code: &str) -> bool {
        self.inner.oauth().decide_device(user_code)
    }

    /// User codes of device-flow requests still waiting for the user.
    pub fn pending_device_codes(&self) -> Vec<String> {
        let now = self.inner.now();
        self.inner.oauth().pending_user_codes(now)
    }

    /// Adds items (e.g. an upload of an old photo), returning their ids in order.
    pub fn add_items(&self, items: &[NewItem]) -> Result<Vec<MediaItemId>, Error> {
        self.inner.library.add(items)
    }

    /// Deletes an item: it vanishes from listings, albums and get; its base URLs 404.
    pub fn remove_item(&self, id: &MediaItemId) -> bool {
        self.inner.library.update(id, |r| r.removed = true)
    }

    /// Video processing finished: PROCESSING → READY.
    pub fn set_video_ready(&self, id: &MediaItemId) -> bool {
        self.inner.library.update(id, |r| {
            if r.is_video {
                r.video_status = VideoStatus::Ready;
            }
        })
    }

    /// Archives or unarchives an item.
    pub fn set_archived(&self, id: &MediaItemId, archived: bool) -> bool {
        self.inner.library.update(id, |r| r.archived = archived)
    }

    /// Marks or unmarks an item as favourite.
    pub fn set_favorite(&self, id: &MediaItemId, favorite: bool) -> bool {
        self.inner.library.update(id, |r| r.favorite = favorite)
    }

    /// The Picker test hook ("the user").
    pub fn picker(&self) -> PickerControl {
        PickerControl {
            inner: self.inner.clone(),
        }
    }

    /// Stops serving and waits (at most a second) for the server task to finish.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(1), task)
                .await
                .is_err()
            {
                // Open keep-alive or slow-body connections; stop regardless.
                abort.abort();
            }
        }
    }
}

impl Drop for FakeGoogle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
