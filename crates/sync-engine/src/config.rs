//! Engine configuration.

use std::path::PathBuf;
use std::time::Duration;

use crate::naming::FilesystemRules;

/// How album folders refer to the files in `photos/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlbumLinks {
    /// Relative symlinks (the gphotos-sync default); the tree survives being moved.
    #[default]
    Symlink,
    /// Hard links: for SMB/exFAT-less setups and media servers that ignore symlinks (#281).
    Hardlink,
    /// Full copies: works everywhere, costs the space twice.
    Copy,
    /// No album folders at all (albums are still indexed).
    None,
}

/// When a downloaded file is made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// fsync each file and its directory before recording it in the index.
    #[default]
    #[serde(rename = "file")]
    PerFile,
    /// Write files without fsync; before each index commit of a batch, one `syncfs` of the
    /// library filesystem. Much faster on NAS; same guarantee at commit points.
    Batch,
}

/// Everything the engine needs to know; build with [`EngineConfig::new`] and adjust fields.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Root of the browsable library (`photos/`, `albums/`, `.trash/` go here).
    pub library_dir: PathBuf,
    /// Where the index lives (keep it off NFS/SMB if you can: gphotos-sync #135).
    pub state_dir: PathBuf,
    /// Downloads in flight at once. Default 8.
    pub max_concurrent_downloads: usize,
    /// Album folder style. Default symlinks.
    pub album_links: AlbumLinks,
    /// Filename rules. Default: probe the library directory.
    pub filesystem: FilesystemRules,
    /// Time zone used to pick `YYYY/MM` folders from capture times. Default UTC, like
    /// gphotos-sync, so existing trees are adopted unchanged. mtimes are always the true instant.
    pub folder_timezone: chrono_tz::Tz,
    /// Move files of items removed from the source to `.trash/`. Default false: keep them.
    pub delete_removed: bool,
    /// A full listing that would remove more than this fraction of the present items removes
    /// nothing and warns (Google listings can come back short: gphotos-sync #453). Default 0.10.
    pub max_removal_fraction: f64,
    /// A full listing (which detects removals and late uploads) happens at least this often.
    /// Default 7 days.
    pub full_rescan_interval: Duration,
    /// When files are fsynced. Default per file.
    pub durability: Durability,
    /// First retry delay for an item that failed; doubles per failure. Default 1 hour.
    pub retry_backoff: Duration,
    /// Longest retry delay. Default 7 days.
    pub max_retry_backoff: Duration,
}

impl EngineConfig {
    /// Defaults for a library at `library_dir` with its index in `state_dir`.
    pub fn new(library_dir: impl Into<PathBuf>, state_dir: impl Into<PathBuf>) -> Self {
        EngineConfig {
            library_dir: library_dir.into(),
            state_dir: state_dir.into(),
            max_concurrent_downloads: 8,
            album_links: AlbumLinks::Symlink,
            filesystem: FilesystemRules::Auto,
            folder_timezone: chrono_tz::UTC,
            delete_removed: false,
            max_removal_fraction: 0.10,
            full_rescan_interval: Duration::from_secs(7 * 24 * 3600),
            durability: Durability::PerFile,
            retry_backoff: Duration::from_secs(3600),
            max_retry_backoff: Duration::from_secs(7 * 24 * 3600),
        }
    }
}
