//! # sync-engine
//!
//! Keeps a complete, verified, browsable copy of a photo library on a local disk or NAS:
//! **sources → index → plan → download → library layout**.
//!
//! * [`Source`] is the boundary to the outside world: a source lists items and albums and
//!   streams bytes. Implementations: [`LocalDirSource`] (a plain directory),
//!   [`LibraryApiSource`] (Google Photos Library API through the `api-client` crate) and
//!   [`PickerSource`] (one Google Photos Picker session).
//! * [`Engine`] owns everything else: the sled index (in `state_dir`), the library tree
//!   (in `library_dir`), durability, naming, retries across runs, albums and deletions.
//!   It knows nothing about the CLI or scheduling; the daemon calls [`Engine::sync`].
//!
//! ## Library layout (compatible with gphotos-sync)
//!
//! ```text
//! photos/YYYY/MM/<name>            real files, YYYY/MM from the capture time (UTC by default),
//!                                  mtime = capture time
//! photos/YYYY/MM/<stem>_<8hex>.ext name collisions: suffix = blake3(media id), never list order
//! albums/YYYY/MM <Title>/NNNN_<name>  relative symlinks (or hard links / copies) into photos/
//! .trash/…                         files of items removed at the source (only with delete_removed)
//! ```
//!
//! ## Guarantees
//!
//! * A file in `photos/` is complete or absent: bytes go to `.<name>.part-<rand>` in the target
//!   folder, are fsynced, renamed and the folder fsynced before the index records them
//!   ([`Durability::Batch`] replaces the per-file fsyncs with one `syncfs` per commit).
//!   Leftover temp files are removed at the start of every run.
//! * An item's path never changes once chosen.
//! * Memory is bounded whatever the library size: listings stream into the index and
//!   downloads stream out of it, at most `max_concurrent_downloads` in flight.
//! * Quota exhaustion pauses the run ([`RunOutcome::Paused`]); cancellation abandons in-flight
//!   files cleanly ([`RunOutcome::Cancelled`]); a full disk stops with [`Error::DiskFull`].
//!   The next run resumes in every case.
//!
//! ## Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use sync_engine::{Engine, EngineConfig, LocalDirSource, NoProgress, Source, SyncOptions};
//! use tokio_util::sync::CancellationToken;
//!
//! # async fn run() -> Result<(), sync_engine::Error> {
//! let engine = Engine::open(EngineConfig::new("/srv/photos", "/var/lib/gphotos-backup"))?;
//! let sources: Vec<Arc<dyn Source>> = vec![Arc::new(LocalDirSource::new("/mnt/old-phone"))];
//! let report = engine
//!     .sync(&sources, SyncOptions::default(), Arc::new(NoProgress), CancellationToken::new())
//!     .await?;
//! println!("downloaded {} files, outcome {:?}", report.downloaded, report.outcome);
//! for item in engine.items() {
//!     println!("{}", item?.path);
//! }
//! # Ok(()) }
//! ```

mod codec;
mod config;
mod engine;
mod error;
mod export;
mod fsops;
mod index;
mod library_api;
mod local;
mod naming;
mod picker;
mod report;
mod seen;
mod source;
mod store;
mod takeout_import;
mod template;
mod types;

pub use config::{AlbumLinks, Durability, EngineConfig};
pub use engine::Engine;
pub use error::Error;
pub use export::{ExportFilter, ExportMode, ExportReport, ExportTarget, MediaFilter};
pub use library_api::LibraryApiSource;
pub use local::LocalDirSource;
pub use naming::FilesystemRules;
pub use picker::{PickedSummary, PickerSource};
pub use report::{
    IndexedItem, NoProgress, ProgressEvent, ProgressSink, ReindexReport, RunOutcome, RunReport,
    StatusReport, SyncOptions, VerifyReport,
};
pub use source::{ListScope, MediaWriter, Prepared, Source, SourceError};
pub use store::{Batch, Entry, SledStore, Store, Tree};
pub use takeout_import::{
    ArchiveDisposal, TakeoutOptions, TakeoutReport, TakeoutSkip, WaitingExport,
    takeout_inbox_inputs,
};
pub use template::{Template, TemplateError};
pub use types::{AlbumId, ContentHash, MediaId, Readiness, RemoteAlbum, RemoteItem, SourceKind};

/// Re-exported so callers need not depend on chrono-tz directly for [`EngineConfig`].
pub use chrono_tz::Tz;
