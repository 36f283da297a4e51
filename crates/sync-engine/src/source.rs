//! The [`Source`] trait: one engine above, several ways of getting at Google Photos below
//! (Library API, Picker sessions, Takeout exports, a plain directory).
//!
//! The split follows restic/rclone backends: a source only *lists* and *fetches*; naming,
//! durability, retries across runs, albums on disk and deletions are the engine's business.

use std::time::Instant;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use tokio::io::AsyncWrite;

use crate::types::{AlbumId, MediaId, RemoteAlbum, RemoteItem, SourceKind};

/// How much of the library a listing must cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListScope {
    /// Everything. Only a full listing that completes lets the engine detect removed items.
    Full,
    /// At least every item captured on or after this instant (a source may return more, at
    /// day granularity or even everything). Items uploaded late with old capture dates are
    /// missed until the next full rescan, exactly as with gphotos-sync's `LastIndex`.
    Since(DateTime<Utc>),
}

/// What a source needs to fetch one item *now*: fresh metadata and a short-lived locator
/// (a Google base URL valid ~60 minutes, or a file path).
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Current metadata (readiness may have changed since the listing).
    pub item: RemoteItem,
    /// Opaque to the engine.
    pub locator: String,
    /// When the locator was issued; sources may re-prepare proactively when it is old.
    pub issued_at: Instant,
}

/// Failures a source reports. The engine decides what each means for the run.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The per-day quota is gone: the run pauses cleanly and resumes on a later run.
    #[error("daily quota exhausted: {0}")]
    QuotaExhausted(String),
    /// The locator (base URL) expired; prepare again and retry.
    #[error("download URL expired")]
    UrlExpired,
    /// The item cannot be fetched yet (a video still PROCESSING).
    #[error("item not ready yet (still processing)")]
    NotReady,
    /// The source no longer knows this item.
    #[error("item not found: {0}")]
    NotFound(String),
    /// The credentials do not allow this (missing scope, revoked token): stops the run.
    #[error("not authorised: {0}")]
    Unauthorized(String),
    /// Worth retrying (5xx, 429 per-minute, connection reset, short body), after
    /// [`Source::retry_wait`] in this run and with backoff in later runs.
    #[error("transient failure: {message}")]
    Transient {
        /// What happened.
        message: String,
        /// The server's `Retry-After`, if it sent one.
        retry_after: Option<std::time::Duration>,
        /// A per-minute rate limit (429): Google asks for ≥ 30 s before retrying.
        rate_limited: bool,
    },
    /// Writing into the engine's writer failed (e.g. the disk is full).
    #[error("writing the downloaded bytes failed: {0}")]
    Write(#[source] std::io::Error),
    /// Anything else; recorded against the item and retried with backoff.
    #[error("{0}")]
    Other(String),
}

/// The sink a source streams media bytes into.
pub type MediaWriter<'a> = &'a mut (dyn AsyncWrite + Send + Unpin);

/// A place media items come from.
///
/// Implementations must be cheap to call repeatedly and must not buffer whole listings:
/// the engine consumes the streams incrementally and keeps its memory bounded.
#[async_trait]
pub trait Source: Send + Sync {
    /// Which kind of source this is; also the key of its cursor in the index.
    fn kind(&self) -> SourceKind;

    /// Lists media items, page by page.
    fn list(&self, scope: ListScope) -> BoxStream<'_, Result<RemoteItem, SourceError>>;

    /// Lists albums. Sources without albums return an empty stream.
    fn albums(&self) -> BoxStream<'_, Result<RemoteAlbum, SourceError>>;

    /// Lists an album's items in album order.
    fn album_items<'a>(
        &'a self,
        album: &'a AlbumId,
    ) -> BoxStream<'a, Result<RemoteItem, SourceError>>;

    /// Whether a listing can cover everything the source holds. A source that only ever
    /// sees a subset (a Picker session: what the user picked this time) returns `false`:
    /// its listings are never full, so items missing from them are not taken as removed.
    fn lists_everything(&self) -> bool {
        true
    }

    /// The largest batch [`Source::prepare`] accepts (Google's batchGet takes 50).
    fn max_batch(&self) -> usize {
        50
    }

    /// Gets fresh locators for up to [`Source::max_batch`] ids, in request order. The outer
    /// error fails the whole batch (quota, auth); inner errors fail single items.
    async fn prepare(
        &self,
        ids: &[MediaId],
    ) -> Result<Vec<Result<Prepared, SourceError>>, SourceError>;

    /// Streams the item's bytes into `out`; returns the number of bytes written. The engine
    /// owns the file behind `out` (temp name, fsync, rename). One attempt: on failure the
    /// engine discards the file and, if [`Source::retry_wait`] agrees, calls again with a
    /// fresh writer.
    async fn fetch(&self, item: &Prepared, out: MediaWriter<'_>) -> Result<u64, SourceError>;

    /// Called after fetch attempt number `attempt` (0 = first) failed with a
    /// [`SourceError::Transient`]: waits as the source's retry policy says (on its own,
    /// injectable clock) and returns `true` to try again, `false` to give up for this run.
    async fn retry_wait(&self, attempt: u32, error: &SourceError) -> bool {
        let _ = (attempt, error);
        false
    }
}

impl SourceError {
    /// A transient failure without server hints.
    pub fn transient(message: impl Into<String>) -> Self {
        SourceError::Transient {
            message: message.into(),
            retry_after: None,
            rate_limited: false,
        }
    }
}
