//! The crate's single error type.

use std::io;
use std::path::PathBuf;

use crate::source::SourceError;

/// Everything that can stop an engine operation.
///
/// Item-level failures (one photo that will not download) are *not* errors: they are recorded in
/// the index and retried with backoff on later runs. An `Error` means the operation as a whole
/// could not continue.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Another process (or another `Engine` in this process) holds the index. sled allows only
    /// one opener, so two daemons on the same state directory cannot corrupt each other.
    #[error(
        "the index at {path} is locked by another process (is another gphotos-backup running on the same state directory?)"
    )]
    IndexLocked {
        /// The sled directory.
        path: PathBuf,
    },
    /// The embedded database failed.
    #[error("index database error: {0}")]
    Index(#[from] sled::Error),
    /// A record in the index could not be decoded.
    #[error("corrupt index record in {tree}: {detail}")]
    Corrupt {
        /// Which tree held the record.
        tree: &'static str,
        /// What went wrong.
        detail: String,
    },
    /// The index was written by a newer version of this software.
    #[error(
        "index schema version {found} is newer than this build supports ({supported}); upgrade gphotos-backup"
    )]
    SchemaTooNew {
        /// Version found on disk.
        found: u32,
        /// Newest version this build understands.
        supported: u32,
    },
    /// The library disk is full. Nothing partial was left behind; the next run resumes.
    #[error(
        "no space left on the library disk while writing {path}; free some space and run again (nothing partial was kept)"
    )]
    DiskFull {
        /// The file being written.
        path: PathBuf,
    },
    /// A filesystem operation on the library or state directory failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What we were doing.
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A source failed in a way that stops the run (authorisation, listing failure).
    #[error("source {source_kind}: {error}")]
    Source {
        /// Which source.
        source_kind: crate::SourceKind,
        /// The underlying failure.
        #[source]
        error: SourceError,
    },
    /// The configuration is unusable.
    #[error("invalid configuration: {0}")]
    Config(String),
}

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        let path = path.into();
        if is_disk_full(&source) {
            Error::DiskFull { path }
        } else {
            Error::Io { op, path, source }
        }
    }
}

/// ENOSPC (or EDQUOT, which looks the same to a user: no room to write).
pub(crate) fn is_disk_full(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
        || e.kind() == io::ErrorKind::StorageFull
        || e.kind() == io::ErrorKind::QuotaExceeded
}
