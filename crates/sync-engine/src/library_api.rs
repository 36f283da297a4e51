//! [`LibraryApiSource`]: the Google Photos Library API (through `api-client`) as a [`Source`].
//!
//! Since 2025-03-31 the Library API only returns items this app created (spec §0, §2), so
//! this source backs up what the daemon itself uploaded; Takeout and the Picker cover the
//! rest of a user's library.

use std::time::Instant;

use api_client::{
    Date, DateFilter, DateRange, Downloader, Filters, HttpClient, LibraryClient, MediaItem,
    MediaItemId, SearchMediaItemsRequest, VideoStatus,
};
use async_trait::async_trait;
use chrono::Datelike;
use futures::stream::{BoxStream, StreamExt};

use crate::source::{ListScope, MediaWriter, Prepared, Source, SourceError};
use crate::types::{AlbumId, MediaId, Readiness, RemoteAlbum, RemoteItem, SourceKind};

/// The Library API as a source.
#[derive(Debug, Clone)]
pub struct LibraryApiSource {
    library: LibraryClient,
    downloader: Downloader,
    http: HttpClient,
    include_archived: bool,
}

impl LibraryApiSource {
    /// A source over `library`, downloading with `downloader`. `http` is the client both were
    /// built on: its clock and retry policy pace download retries.
    pub fn new(library: LibraryClient, downloader: Downloader, http: HttpClient) -> Self {
        LibraryApiSource {
            library,
            downloader,
            http,
            include_archived: true,
        }
    }

    /// Whether archived items are listed (default true: gphotos-sync users missed them, #155).
    #[must_use]
    pub fn include_archived(mut self, yes: bool) -> Self {
        self.include_archived = yes;
        self
    }

    fn search(&self, scope: ListScope) -> SearchMediaItemsRequest {
        let date_filter = match scope {
            ListScope::Full => None,
            ListScope::Since(t) => {
                // Day granularity; a day earlier covers time zones around midnight.
                let d = (t - chrono::Duration::days(1)).date_naive();
                Some(DateFilter {
                    dates: Vec::new(),
                    ranges: vec![DateRange {
                        start_date: Date {
                            year: d.year(),
                            month: d.month().cast_signed(),
                            day: d.day().cast_signed(),
                        },
                        end_date: Date {
                            year: 9999,
                            month: 12,
                            day: 31,
                        },
                    }],
                })
            }
        };
        SearchMediaItemsRequest {
            filters: Some(Filters {
                date_filter,
                include_archived_media: self.include_archived.then_some(true),
                ..Filters::default()
            }),
            ..SearchMediaItemsRequest::default()
        }
    }
}

/// Maps the client's errors onto what the engine acts on.
pub(crate) fn map_error(e: api_client::Error) -> SourceError {
    use api_client::Error as E;
    match e {
        E::DailyQuotaExhausted { message } => SourceError::QuotaExhausted(message),
        e @ (E::InsufficientScope { .. }
        | E::ReauthorizationRequired { .. }
        | E::Unauthenticated { .. }
        | E::AccessDenied { .. }
        | E::OAuth { .. }
        | E::ClientSecret { .. }
        | E::TokenFile { .. }) => SourceError::Unauthorized(e.to_string()),
        E::BaseUrlExpired => SourceError::UrlExpired,
        E::RateLimited {
            message,
            retry_after,
        } => SourceError::Transient {
            message: format!("rate limited: {message}"),
            retry_after,
            rate_limited: true,
        },
        E::Io(io) => SourceError::Write(io),
        E::Api {
            http_status: 404,
            message,
            ..
        } => SourceError::NotFound(message),
        e @ (E::Api { .. } | E::Transport(_) | E::IdleTimeout(_) | E::ShortBody { .. })
            if e.is_retryable() =>
        {
            SourceError::Transient {
                retry_after: e.retry_after(),
                message: e.to_string(),
                rate_limited: false,
            }
        }
        other => SourceError::Other(other.to_string()),
    }
}

fn to_remote(m: MediaItem) -> RemoteItem {
    let meta = m.media_metadata.clone().unwrap_or_default();
    let (make, model, readiness) = match (&meta.photo, &meta.video) {
        (_, Some(v)) => (
            v.camera_make.clone(),
            v.camera_model.clone(),
            match v.status {
                Some(VideoStatus::Processing) => Readiness::Processing,
                Some(VideoStatus::Failed) => Readiness::Failed,
                _ => Readiness::Ready,
            },
        ),
        (Some(p), None) => (
            p.camera_make.clone(),
            p.camera_model.clone(),
            Readiness::Ready,
        ),
        (None, None) => (None, None, Readiness::Ready),
    };
    let filename = if m.filename.is_empty() {
        m.id.as_str().to_owned()
    } else {
        m.filename.clone()
    };
    RemoteItem {
        taken_at: meta.creation_time,
        camera_make: make,
        camera_model: model,
        description: m.description.clone().filter(|d| !d.is_empty()),
        readiness,
        ..RemoteItem::new(MediaId::new(m.id.as_str()), filename, m.mime_type.clone())
    }
}

#[async_trait]
impl Source for LibraryApiSource {
    fn kind(&self) -> SourceKind {
        SourceKind::LibraryApi
    }

    fn list(&self, scope: ListScope) -> BoxStream<'_, Result<RemoteItem, SourceError>> {
        self.library
            .search_media_items(self.search(scope))
            .map(|r| r.map(to_remote).map_err(map_error))
            .boxed()
    }

    fn albums(&self) -> BoxStream<'_, Result<RemoteAlbum, SourceError>> {
        self.library
            .list_albums()
            .map(|r| {
                r.map(|a| RemoteAlbum {
                    id: AlbumId::new(a.id.as_str()),
                    title: a.title,
                    item_count: a.media_items_count.and_then(|c| u64::try_from(c).ok()),
                })
                .map_err(map_error)
            })
            .boxed()
    }

    fn album_items<'a>(
        &'a self,
        album: &'a AlbumId,
    ) -> BoxStream<'a, Result<RemoteItem, SourceError>> {
        self.library
            .album_media_items(&api_client::AlbumId::new(album.as_str()))
            .map(|r| r.map(to_remote).map_err(map_error))
            .boxed()
    }

    fn max_batch(&self) -> usize {
        api_client::BATCH_GET_MAX
    }

    async fn prepare(
        &self,
        ids: &[MediaId],
    ) -> Result<Vec<Result<Prepared, SourceError>>, SourceError> {
        let wanted: Vec<MediaItemId> = ids.iter().map(|i| MediaItemId::new(i.as_str())).collect();
        let results = self
            .library
            .batch_get_media_items(&wanted)
            .await
            .map_err(map_error)?;
        let issued_at = Instant::now();
        Ok(results
            .into_iter()
            .map(|r| match r.result {
                Ok(item) => {
                    let url = item
                        .download_url()
                        .ok_or_else(|| SourceError::Other("item has no base URL".into()))?;
                    Ok(Prepared {
                        item: to_remote(item),
                        locator: url,
                        issued_at,
                    })
                }
                // 3 = INVALID_ARGUMENT ("Invalid media item id."), 5 = NOT_FOUND (spec §6.2).
                Err(status) => Err(SourceError::NotFound(status.to_string())),
            })
            .collect())
    }

    async fn fetch(&self, item: &Prepared, out: MediaWriter<'_>) -> Result<u64, SourceError> {
        self.downloader
            .download(&item.locator, None, out)
            .await
            .map_err(map_error)
    }

    async fn retry_wait(&self, attempt: u32, error: &SourceError) -> bool {
        retry_wait(&self.http, attempt, error).await
    }
}

/// Waits before retry number `attempt` of a transient failure, per the client's policy and on
/// its clock: exponential from 1 s on 5xx, at least 30 s after a 429, `Retry-After` honoured
/// (spec §1.5). Returns false once the policy's attempts are used up.
pub(crate) async fn retry_wait(http: &HttpClient, attempt: u32, error: &SourceError) -> bool {
    let SourceError::Transient {
        retry_after,
        rate_limited,
        ..
    } = error
    else {
        return false;
    };
    let policy = http.retry_policy();
    if attempt.saturating_add(1) >= policy.max_attempts {
        return false;
    }
    let mut delay = policy
        .base_delay
        .saturating_mul(2u32.saturating_pow(attempt.min(31)))
        .min(policy.max_delay);
    if *rate_limited {
        delay = delay.max(policy.rate_limit_delay);
    }
    if let Some(ra) = retry_after {
        // Capped like the API client's own retries: a huge Retry-After must not park the run.
        delay = delay.max((*ra).min(api_client::MAX_RETRY_AFTER));
    }
    tracing::info!(
        attempt,
        delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
        %error,
        "retrying download"
    );
    http.clock().sleep(delay).await;
    true
}
