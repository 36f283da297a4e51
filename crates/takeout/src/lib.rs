//! # takeout — read Google Takeout exports of Google Photos
//!
//! This crate turns the parts of a Google Takeout export (`takeout-…-001.zip`, `.tgz`, or
//! extracted folders) into a stream of media entries, each with a resolved
//! [`MediaRecord`]: capture date, GPS, description, favourite/archived/trashed flags,
//! people, album membership, edited-copy and motion-photo links, and a confidence.
//! It implements `shared/specs/takeout-format.md` (the "spec" in comments; `§` numbers
//! refer to it).
//!
//! **Boundary.** Synchronous `std::io` only. It knows nothing about the sync engine, the
//! database or the network, and it never writes files: the engine receives a [`Read`]er
//! per media entry and stores the bytes itself (temp name, fsync, rename).
//!
//! **Design.**
//! 1. [`group_parts`] groups input paths into [`Export`]s and reports missing part numbers
//!    and ignored inputs (loose files, AppleDouble junk).
//! 2. [`Catalog::build`] (pass 1) walks each part once: zip through its central directory
//!    (ZIP64 included), tgz in one sequential pass, folders by walking. It parses every
//!    JSON (sidecars and album metadata, classified by content), and reads only the first
//!    64 KiB of each media entry (EXIF, magic bytes). It then pairs media with sidecars
//!    folder by folder **across all parts** ([`pair_folder`]), which is why a second pass
//!    exists: in a tgz, or in another part, the sidecar may come after its media.
//! 3. [`Catalog::stream_media`] (pass 2) walks each part once more, in order, and hands
//!    each media entry's bytes plus its record to a closure.
//!
//! Memory is O(number of entries) small records; file contents are never buffered beyond
//! the 64 KiB head. Entry names are sanitised by [`sanitize_entry_path`] (NFC, no `..`,
//! no absolute paths or drive letters, backslashes treated as separators, no NUL);
//! symlinks, hard links, devices and fifos are skipped; zip-bomb limits ([`Limits`]) are
//! enforced while streaming; a truncated or corrupt part is reported and the other parts
//! continue.
//!
//! **Not here:** content deduplication needs the bytes' hash, which the engine computes
//! while storing; [`AssetMerger`] folds records by a caller-supplied [`ContentKey`].
//!
//! # Example
//! ```no_run
//! use std::io::Read;
//! use takeout::{Catalog, ImportOptions, group_parts};
//!
//! let grouping = group_parts(&["/downloads"]);
//! for export in &grouping.exports {
//!     let catalog = Catalog::build(export, &ImportOptions::default());
//!     println!("{} media, {} paired", catalog.report().media, catalog.report().paired);
//!     catalog
//!         .stream_media(|record, reader| -> std::io::Result<()> {
//!             let mut sink = std::io::sink();
//!             std::io::copy(reader, &mut sink)?;
//!             println!("{} taken {:?}", record.original_name, record.taken);
//!             Ok(())
//!         })
//!         .expect("consumer failed");
//! }
//! ```
//!
//! [`Read`]: std::io::Read

mod archive;
mod dates;
mod entry_path;
mod error;
mod import;
mod json;
mod matcher;
mod merge;
mod parts;
mod sniff;

pub use archive::{EntryReader, LimitViolation, Limits, SkipReason, SkippedEntry};
pub use dates::{
    CaptureDate, CaptureTime, Confidence, DateSource, ExifTime, date_from_file_name,
    date_from_folder_name, exif_datetime,
};
pub use entry_path::{EntryPath, PathRejection, sanitize_entry_path};
pub use error::TakeoutError;
pub use import::{
    Album, AlbumKey, Catalog, EntryLocator, HEAD_BYTES, ImportOptions, ImportReport, MediaRecord,
    MotionRole, PartError, RecordFlag, StreamError, StreamReport,
};
pub use json::{AlbumMeta, GeoPoint, JsonKind, JsonProblem, Sidecar, classify_json};
pub use matcher::{
    FolderMedia, FolderPairing, FolderSidecar, MediaPairing, PairMethod, cut_utf16,
    edited_originals, pair_folder, sidecar_candidates, split_ext, split_index, title_confirms,
    title_to_file_name,
};
pub use merge::{AssetMerger, ContentKey, MergedAsset};
pub use parts::{
    Export, ExportId, IgnoreReason, IgnoredInput, Part, PartFormat, PartGrouping, PartName,
    PartNumber, group_parts, is_junk_name, parse_part_name,
};
pub use sniff::{MediaKind, Sniffed, kind_from_extension, sniff};
