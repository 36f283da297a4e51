//! [`PickerSource`]: the items a user picked in one Google Photos Picker session (spec §3)
//! as a [`Source`].
//!
//! The Picker is the only API that still reaches items the user owns (spec §0, §2), but each
//! session only exposes what was picked in it, for as long as the session lives:
//!
//! * The listing is the session's picked items (`mediaItems.list`, paged), never the library,
//!   so it must never count as a full listing ([`Source::lists_everything`] is `false`):
//!   items of earlier sessions are not "removed at the source".
//! * Picked items cannot be fetched with `mediaItems.batchGet`; fresh base URLs come from
//!   listing the session again ([`Source::prepare`]).
//! * Base URLs need `Authorization: Bearer` with the picker scope (spec §1.4, §6.4).
//! * Picked items carry no album, description or location (spec §3.3): those stay unknown.
//!
//! A session holds at most 2000 items, so this source keeps the session's listing in memory
//! (a few hundred kilobytes) to hand out base URLs without listing again for every batch.
//!
//! When the session ends under it (expired: 403, or deleted: 404) nothing more can be
//! fetched. If the source was given the run's cancellation token
//! ([`PickerSource::stop_run_when_session_ends`]) it cancels the run, so the items not yet
//! saved stay pending *without* a failure and its retry back-off: picked again in a new
//! session, they download at once. [`PickerSource::session_ended`] tells the caller why the
//! run stopped.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use api_client::{
    Downloader, HttpClient, PickedMediaItem, PickerClient, PickerSessionId, TokenProvider,
    VideoStatus,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use tokio_util::sync::CancellationToken;

use crate::library_api::map_error;
use crate::source::{ListScope, MediaWriter, Prepared, Source, SourceError};
use crate::types::{AlbumId, MediaId, Readiness, RemoteAlbum, RemoteItem, SourceKind};

/// Base URLs live about 60 minutes (spec §1.4); older ones are refreshed before use so a
/// download that starts at minute 59 does not die at minute 60.
const URL_REFRESH_AGE: chrono::TimeDelta = chrono::TimeDelta::minutes(45);

/// How long a call waits, after cancelling the run, for the engine to drop it (the engine
/// selects every source call against its stop token, so this is never reached in practice).
const CANCEL_GRACE: Duration = Duration::from_secs(5);

/// One picked item as last listed.
#[derive(Debug, Clone)]
struct Cached {
    item: RemoteItem,
    url: String,
    listed_at: DateTime<Utc>,
    /// Already given to the engine once: another `prepare` for it means the URL failed
    /// (the engine only re-prepares after an expired URL), so list again.
    handed_out: bool,
}

#[derive(Debug, Default)]
struct Cache {
    items: HashMap<MediaId, Cached>,
    /// Pick order, for [`PickerSource::picked`].
    order: Vec<MediaId>,
    /// A complete listing was seen: an id missing from it is not part of this session.
    complete: bool,
}

/// The picked items of one Picker session as a source.
#[derive(Debug)]
pub struct PickerSource {
    picker: PickerClient,
    tokens: TokenProvider,
    downloader: Downloader,
    http: HttpClient,
    session: PickerSessionId,
    cache: Mutex<Cache>,
    ended: AtomicBool,
    stop_run: Option<CancellationToken>,
}

/// What the session shows of one picked item, for reporting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickedSummary {
    /// The item's persistent id.
    pub id: MediaId,
    /// Its file name as Google has it.
    pub filename: String,
}

impl PickerSource {
    /// A source over the items picked in `session`. `tokens` must hold the picker scope
    /// (base URLs need the Bearer header); `http` is the client everything was built on: its
    /// clock ages base URLs and its retry policy paces download retries.
    pub fn new(
        picker: PickerClient,
        tokens: TokenProvider,
        downloader: Downloader,
        http: HttpClient,
        session: PickerSessionId,
    ) -> Self {
        PickerSource {
            picker,
            tokens,
            downloader,
            http,
            session,
            cache: Mutex::new(Cache::default()),
            ended: AtomicBool::new(false),
            stop_run: None,
        }
    }

    /// Cancels `run` (the token given to [`crate::Engine::sync`]) as soon as the session is
    /// found expired or deleted, instead of failing every remaining item one by one.
    #[must_use]
    pub fn stop_run_when_session_ends(mut self, run: CancellationToken) -> Self {
        self.stop_run = Some(run);
        self
    }

    /// The session this source reads.
    pub fn session(&self) -> &PickerSessionId {
        &self.session
    }

    /// Whether Google reported the session expired or gone during this source's calls.
    pub fn session_ended(&self) -> bool {
        self.ended.load(Ordering::SeqCst)
    }

    /// Whether a listing of the session ran to its end, so [`PickerSource::picked`] is
    /// everything that was picked.
    pub fn listing_complete(&self) -> bool {
        self.lock().complete
    }

    /// The picked items seen so far, in pick order (all of them once a listing completed).
    pub fn picked(&self) -> Vec<PickedSummary> {
        let cache = self.lock();
        cache
            .order
            .iter()
            .filter_map(|id| cache.items.get(id))
            .map(|c| PickedSummary {
                id: c.item.id.clone(),
                filename: c.item.filename.clone(),
            })
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn now(&self) -> DateTime<Utc> {
        self.http.clock().now()
    }

    /// Records one listed item; returns it as the engine sees it.
    fn remember(&self, picked: &PickedMediaItem, now: DateTime<Utc>) -> RemoteItem {
        let item = to_remote(picked);
        let mut cache = self.lock();
        let fresh = Cached {
            item: item.clone(),
            url: picked.download_url(),
            listed_at: now,
            handed_out: false,
        };
        if cache.items.insert(item.id.clone(), fresh).is_none() {
            cache.order.push(item.id.clone());
        }
        item
    }

    /// Maps a client error; an expired (403) or unknown (404) session ends the session.
    fn api_error(&self, e: api_client::Error) -> SourceError {
        use api_client::Error as E;
        match e {
            E::Api {
                http_status: 403 | 404,
                ref message,
                ..
            } => {
                self.ended.store(true, Ordering::SeqCst);
                SourceError::Other(format!(
                    "the picking session {} has expired or is gone ({message}); pick the \
                     remaining items again in a new session",
                    self.session
                ))
            }
            other => map_error(other),
        }
    }

    /// After the session ended: cancel the run if allowed, so the engine abandons the
    /// remaining items cleanly, and give it time to drop this call.
    async fn session_over(&self, error: SourceError) -> SourceError {
        if let Some(run) = &self.stop_run {
            tracing::warn!(session = %self.session, "{error}; stopping the run");
            run.cancel();
            tokio::time::sleep(CANCEL_GRACE).await;
        }
        error
    }

    /// Lists the whole session again: fresh base URLs for everything.
    async fn relist(&self) -> Result<(), SourceError> {
        let now = self.now();
        let mut stream = self.picker.list_picked_items(&self.session);
        loop {
            match stream.try_next().await {
                Ok(Some(picked)) => {
                    self.remember(&picked, now);
                }
                Ok(None) => break,
                Err(e) => return Err(self.api_error(e)),
            }
        }
        self.lock().complete = true;
        Ok(())
    }

    fn ended_error(&self) -> SourceError {
        SourceError::Other(format!(
            "the picking session {} has expired; pick the remaining items again in a new session",
            self.session
        ))
    }
}

fn to_remote(p: &PickedMediaItem) -> RemoteItem {
    let meta = p.media_file.media_file_metadata.clone().unwrap_or_default();
    let readiness = match meta
        .video_metadata
        .as_ref()
        .and_then(|v| v.processing_status)
    {
        Some(VideoStatus::Processing) => Readiness::Processing,
        Some(VideoStatus::Failed) => Readiness::Failed,
        _ => Readiness::Ready,
    };
    let filename = if p.media_file.filename.is_empty() {
        p.id.as_str().to_owned()
    } else {
        p.media_file.filename.clone()
    };
    let mime = if p.media_file.mime_type.is_empty() && p.is_video() {
        "video/mp4".to_owned()
    } else {
        p.media_file.mime_type.clone()
    };
    // Picked items have no description, location, albums or favourite flag (spec §3.3):
    // they stay unknown rather than being recorded as "none".
    RemoteItem {
        taken_at: p.create_time,
        camera_make: meta.camera_make.clone(),
        camera_model: meta.camera_model.clone(),
        readiness,
        ..RemoteItem::new(MediaId::new(p.id.as_str()), filename, mime)
    }
}

#[async_trait]
impl Source for PickerSource {
    fn kind(&self) -> SourceKind {
        SourceKind::Picker
    }

    /// A session is a hand-picked subset, never the library.
    fn lists_everything(&self) -> bool {
        false
    }

    fn list(&self, _scope: ListScope) -> BoxStream<'_, Result<RemoteItem, SourceError>> {
        // The scope does not apply: a session always lists exactly what was picked in it.
        let now = self.now();
        let items = self.picker.list_picked_items(&self.session);
        futures::stream::unfold(Some(items), move |state| async move {
            let mut items = state?;
            match items.next().await {
                Some(Ok(picked)) => Some((Ok(self.remember(&picked, now)), Some(items))),
                Some(Err(e)) => Some((Err(self.api_error(e)), None)),
                None => {
                    self.lock().complete = true;
                    None
                }
            }
        })
        .boxed()
    }

    fn albums(&self) -> BoxStream<'_, Result<RemoteAlbum, SourceError>> {
        futures::stream::empty().boxed()
    }

    fn album_items<'a>(
        &'a self,
        _album: &'a AlbumId,
    ) -> BoxStream<'a, Result<RemoteItem, SourceError>> {
        futures::stream::empty().boxed()
    }

    fn max_batch(&self) -> usize {
        // Listing a session returns up to 100 items a page (spec §3.1).
        api_client::PICKED_ITEMS_PAGE_SIZE as usize
    }

    async fn prepare(
        &self,
        ids: &[MediaId],
    ) -> Result<Vec<Result<Prepared, SourceError>>, SourceError> {
        if self.session_ended() {
            return Err(self.session_over(self.ended_error()).await);
        }
        let now = self.now();
        let stale = {
            let cache = self.lock();
            ids.iter().any(|id| match cache.items.get(id) {
                // Unknown: only worth a listing if no complete one was seen yet.
                None => !cache.complete,
                Some(c) => c.handed_out || now - c.listed_at >= URL_REFRESH_AGE,
            })
        };
        if stale && let Err(e) = self.relist().await {
            return Err(if self.session_ended() {
                self.session_over(e).await
            } else {
                e
            });
        }
        let issued_at = Instant::now();
        let mut cache = self.lock();
        Ok(ids
            .iter()
            .map(|id| match cache.items.get_mut(id) {
                Some(c) => {
                    c.handed_out = true;
                    Ok(Prepared {
                        item: c.item.clone(),
                        locator: c.url.clone(),
                        issued_at,
                    })
                }
                // Left pending by an earlier session (it expired first): only a new pick can
                // reach it. "Not ready" keeps it pending without a failure or retry back-off,
                // so picking it again soon downloads it at once; a failure here would defer it
                // by the back-off even when it is picked again.
                None => Err(SourceError::NotReady),
            })
            .collect())
    }

    async fn fetch(&self, item: &Prepared, out: MediaWriter<'_>) -> Result<u64, SourceError> {
        let token = self.tokens.access_token().await.map_err(map_error)?;
        // Picker base URLs refuse requests without the Bearer header (spec §1.4).
        match self
            .downloader
            .download(&item.locator, Some(&token), out)
            .await
        {
            Ok(n) => Ok(n),
            // A 401 arrives before any body byte: the writer is still empty.
            Err(api_client::Error::Unauthenticated { .. }) => {
                self.tokens.invalidate(&token);
                let token = self.tokens.access_token().await.map_err(map_error)?;
                self.downloader
                    .download(&item.locator, Some(&token), out)
                    .await
                    .map_err(map_error)
            }
            Err(e) => Err(map_error(e)),
        }
    }

    async fn retry_wait(&self, attempt: u32, error: &SourceError) -> bool {
        // Same pacing as the Library API source (spec §1.5).
        crate::library_api::retry_wait(&self.http, attempt, error).await
    }
}
