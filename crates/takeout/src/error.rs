//! The crate's single error type.

use std::path::PathBuf;

/// Everything that can go wrong while reading a Takeout export.
///
/// Problems confined to one entry (a hostile path, a bomb, a broken sidecar) are *not*
/// errors: they are recorded in the [`crate::ImportReport`] and the run continues.
/// A `TakeoutError` is returned only when a whole part (or the caller) cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum TakeoutError {
    /// Opening or reading a part failed at the OS level.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The part (archive or folder) being read.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The zip central directory (or a local header) is unreadable: truncated or not a zip.
    #[error("corrupt zip {path}: {source}")]
    Zip {
        /// The part.
        path: PathBuf,
        /// What the zip reader said.
        #[source]
        source: zip::result::ZipError,
    },
    /// The gzip/tar stream ended early or is malformed.
    #[error("corrupt tgz {path}: {message}")]
    Tgz {
        /// The part.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The total decompressed bytes of one part exceeded [`crate::Limits::max_total_bytes`].
    #[error("part {path} exceeds the total size limit of {limit} bytes")]
    TotalLimit {
        /// The part.
        path: PathBuf,
        /// The configured limit.
        limit: u64,
    },
}
