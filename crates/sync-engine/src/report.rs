//! What the engine tells its caller: progress events, run/status/verify reports, list rows.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::types::{ContentHash, MediaId, SourceKind};

/// Options for one [`crate::Engine::sync`] call.
#[derive(Debug, Clone, Copy, Default)]
pub struct SyncOptions {
    /// Force a full listing now (removal detection, late uploads, album re-listing).
    pub rescan: bool,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RunOutcome {
    /// Everything due was attempted (individual failures are counted in the report).
    Completed,
    /// The source's daily quota ran out; the next run resumes where this one stopped.
    Paused {
        /// The source's message.
        reason: String,
    },
    /// The shutdown token fired; in-flight files were abandoned, the index flushed.
    Cancelled,
    /// The run stopped with an error (also returned as `Err`).
    Failed {
        /// The error.
        error: String,
    },
}

/// Summary of one run; also stored in the index's run history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// Run number (increasing).
    pub run_id: u64,
    /// Start time.
    pub started_at: DateTime<Utc>,
    /// End time.
    pub finished_at: Option<DateTime<Utc>>,
    /// How it ended.
    pub outcome: RunOutcome,
    /// Whether a full listing was done (for each source that ran).
    pub full_scan: bool,
    /// Items seen in listings (main and album listings).
    pub listed: u64,
    /// Items new to the index.
    pub new_items: u64,
    /// Files downloaded into the library.
    pub downloaded: u64,
    /// Bytes written by those downloads.
    pub bytes_downloaded: u64,
    /// Files already on disk at their expected path and taken over without a download.
    pub adopted: u64,
    /// Items that failed this run (retried with backoff on later runs).
    pub failed: u64,
    /// Videos still processing at Google (retried next run).
    pub processing: u64,
    /// Failed items whose backoff had not expired, so not attempted.
    pub deferred: u64,
    /// Items marked removed after a complete full listing.
    pub removed: u64,
    /// Set when a full listing would have removed this many items, above the safety fraction.
    pub removal_suppressed: Option<u64>,
    /// Album folders created, updated or renamed.
    pub albums_updated: u64,
    /// Leftover temp files cleaned at start.
    pub temp_files_removed: u64,
    /// First few non-fatal problems, for the log.
    pub errors: Vec<String>,
}

impl RunReport {
    pub(crate) fn new(run_id: u64) -> Self {
        RunReport {
            run_id,
            started_at: Utc::now(),
            finished_at: None,
            outcome: RunOutcome::Completed,
            full_scan: false,
            listed: 0,
            new_items: 0,
            downloaded: 0,
            bytes_downloaded: 0,
            adopted: 0,
            failed: 0,
            processing: 0,
            deferred: 0,
            removed: 0,
            removal_suppressed: None,
            albums_updated: 0,
            temp_files_removed: 0,
            errors: Vec::new(),
        }
    }

    pub(crate) fn note(&mut self, msg: String) {
        tracing::warn!("{msg}");
        if self.errors.len() < 50 {
            self.errors.push(msg);
        }
    }
}

/// Live progress, for a progress bar or structured logs. Calls must be cheap and non-blocking.
pub trait ProgressSink: Send + Sync {
    /// One event.
    fn on_event(&self, event: &ProgressEvent);
}

/// A [`ProgressSink`] that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl ProgressSink for NoProgress {
    fn on_event(&self, _event: &ProgressEvent) {}
}

/// Progress events, in rough run order.
#[derive(Debug, Clone, PartialEq)]
pub enum ProgressEvent {
    /// A source's listing started.
    ListingStarted {
        /// Source.
        source: SourceKind,
        /// Full or incremental.
        full: bool,
    },
    /// Items listed so far (every 100 items and at the end).
    Listed {
        /// Source.
        source: SourceKind,
        /// Running count.
        count: u64,
    },
    /// Items due for download in this source (after naming and adoption).
    DownloadsPlanned {
        /// Source.
        source: SourceKind,
        /// Count.
        count: u64,
    },
    /// A file landed in the library.
    Downloaded {
        /// Item.
        id: MediaId,
        /// Relative path.
        path: String,
        /// Size.
        bytes: u64,
    },
    /// An item failed (will be retried later).
    ItemFailed {
        /// Item.
        id: MediaId,
        /// Why.
        error: String,
    },
    /// The run ended.
    Finished {
        /// How.
        outcome: RunOutcome,
    },
}

/// One item as `list --json` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IndexedItem {
    /// Source id.
    pub id: MediaId,
    /// Path relative to the library root (empty if not yet named).
    pub path: String,
    /// Original file name.
    pub filename: String,
    /// MIME type.
    pub mime_type: String,
    /// Capture time, RFC 3339 UTC.
    pub taken_at: Option<String>,
    /// Size in the library (None until downloaded).
    pub size: Option<u64>,
    /// Album titles.
    pub albums: Vec<String>,
    /// Favourite.
    pub favorite: bool,
    /// Archived.
    pub archived: bool,
    /// Latitude.
    pub latitude: Option<f64>,
    /// Longitude.
    pub longitude: Option<f64>,
    /// Source.
    pub source: SourceKind,
    /// Camera make.
    pub camera_make: Option<String>,
    /// Camera model.
    pub camera_model: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// blake3 of the library file (hex in JSON).
    pub blake3: Option<ContentHash>,
    /// `unplaced`, `pending`, `done` or `removed`.
    pub state: &'static str,
}

/// Counts and recent history, for `status`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusReport {
    /// Items in the index.
    pub items: u64,
    /// Items whose file is in the library.
    pub done: u64,
    /// Items waiting for download (never failed).
    pub pending: u64,
    /// Items that failed at least once and wait for a retry.
    pub failed: u64,
    /// Videos waiting for Google to finish processing.
    pub processing: u64,
    /// Items removed at the source.
    pub removed: u64,
    /// Files found by `reindex` that no source item has claimed yet.
    pub orphans: u64,
    /// Albums.
    pub albums: u64,
    /// Index size on disk.
    pub index_bytes: u64,
    /// Whether the last run paused on quota.
    pub paused: bool,
    /// Most recent runs, newest last (at most 10).
    pub last_runs: Vec<RunReport>,
    /// Per-source time of the last complete full listing.
    pub last_full_scan: Vec<(SourceKind, Option<DateTime<Utc>>)>,
}

/// Result of [`crate::Engine::verify`]. Path lists are capped at 1000 entries each; the counts
/// are exact.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct VerifyReport {
    /// Library files checked.
    pub checked: u64,
    /// Files that passed.
    pub ok: u64,
    /// Missing file count.
    pub missing_count: u64,
    /// Indexed as downloaded but absent.
    pub missing: Vec<String>,
    /// Size mismatch count.
    pub size_mismatch_count: u64,
    /// Present but of the wrong size.
    pub size_mismatch: Vec<String>,
    /// Hash mismatch count (deep only).
    pub hash_mismatch_count: u64,
    /// Right size, wrong blake3 (deep only).
    pub hash_mismatch: Vec<String>,
    /// Extra file count.
    pub extra_count: u64,
    /// Files under `photos/` that the index does not know.
    pub extra: Vec<String>,
}

impl VerifyReport {
    /// No problem found.
    pub fn is_clean(&self) -> bool {
        self.missing_count == 0
            && self.size_mismatch_count == 0
            && self.hash_mismatch_count == 0
            && self.extra_count == 0
    }
}

pub(crate) fn push_capped(v: &mut Vec<String>, count: &mut u64, s: String) {
    *count += 1;
    if v.len() < 1000 {
        v.push(s);
    }
}

/// Result of [`crate::Engine::reindex`].
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReindexReport {
    /// Files found under `photos/`.
    pub files: u64,
    /// Files already claimed by an indexed item.
    pub known: u64,
    /// Files recorded as orphans, to be adopted by the next sync without download.
    pub orphans: u64,
    /// Downloaded items whose file is gone: set back to pending.
    pub requeued: u64,
}
