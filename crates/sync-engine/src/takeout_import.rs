//! Google Takeout as a source of the library (issue 5, spec `takeout-format.md` §4.7).
//!
//! The `takeout` crate reads the export (parts, pairing, metadata); this module stores what
//! it delivers with the same rules as the API sync:
//!
//! * **Placement.** `photos/YYYY/MM/<name>` from the capture time (the engine's folder time
//!   zone), `<name>` = the sidecar title sanitised by [`naming::sanitize_component`]; a taken
//!   name gets `_<8 hex of blake3(id)>` exactly like [`Engine::sync`]. The item id of a
//!   Takeout file is `takeout:` + the first 32 hex digits of the blake3 of its bytes, so a
//!   re-import or a new scheduled export finds the same id, the same name, the same file.
//! * **Streaming.** Every entry goes straight from the archive into the target folder
//!   (`.name.part-…`, mtime = capture time, fsync or a batch `syncfs`, rename). Nothing is
//!   extracted to a temp folder.
//! * **Deduplication by content** (size, then bytes): when a file of the same size is already
//!   in the library, the entry is first *compared* with it while streaming, writing nothing;
//!   only at the first differing byte does a temp file start (the identical prefix is copied
//!   from the existing file). Album copies, copies in other parts and repeated exports
//!   therefore cost reads, not writes, and a re-import changes no file, name or timestamp.
//! * **Merging with API/Picker items.** Same bytes → the existing item (its id, path and
//!   albums) becomes the asset and takes the Takeout metadata (`source = "takeout"`).
//!   Different bytes: the items are the same photo when the file name is equal (NFC,
//!   case-insensitive) **and** the capture times are within one second; then the Takeout
//!   original (full quality, with GPS) replaces the API file at the same path (temp +
//!   rename), so paths never change. Anything else is a new asset.
//! * **Metadata** goes into the index (GPS, description, favourite, archived, albums) and,
//!   with `write_xmp`, into `<file>.xmp` (Dublin Core, EXIF, XMP, Photoshop, Lightroom and
//!   IPTC namespaces, which digiKam, Immich and PhotoPrism read). People, edited-copy and
//!   motion-photo links are kept in the index under `takeout/x/<id>`.
//! * **Albums** are indexed as `takeout:<folder path in the export>` (untitled albums stay
//!   distinct) and laid out by the engine's own album-link code.
//!
//! Nothing is ever written outside `library_dir`: every output path is built from sanitised
//! single components under `photos/` (entry paths from the archive are never used as paths).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, NaiveTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use takeout::{
    CaptureTime, Catalog, EntryLocator, Export, IgnoreReason, ImportOptions, MediaKind,
    MediaRecord, MotionRole, RecordFlag, SkipReason, SkippedEntry, StreamError, group_parts,
};
use tokio_util::sync::CancellationToken;
use unicode_normalization::UnicodeNormalization;

use crate::config::{AlbumLinks, Durability};
use crate::engine::Engine;
use crate::error::Error;
use crate::fsops;
use crate::index::{AlbumRecord, ItemRecord, ItemState};
use crate::naming;
use crate::report::{ProgressEvent, ProgressSink, RunReport};
use crate::store::Tree;
use crate::types::{AlbumId, ContentHash, MediaId, SourceKind};

/// Index key (meta tree) of the last import's report.
const LAST_REPORT_KEY: &[u8] = b"takeout/last_report";
/// Index key prefix (meta tree) of per-item Takeout extras.
const EXTRA_PREFIX: &str = "takeout/x/";
/// Files per index commit (and per `syncfs` in batch durability). Larger than the API
/// sync's batch: an interrupted import loses nothing, since a file renamed into place but
/// not yet indexed is found and adopted by the next import (`State::place`).
const COMMIT_EVERY: usize = 1024;
/// Bytes per index commit, whichever comes first.
const COMMIT_BYTES: u64 = 256 << 20;
/// Capture times this close are "the same moment" when matching API items by name.
const SAME_MOMENT_MS: i64 = 1000;
/// Lists in the report are capped; counts are not.
const LIST_CAP: usize = 200;
/// Read/compare buffer.
const BUF: usize = 256 * 1024;

/// What to do with the archives of an export once it is imported.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ArchiveDisposal {
    /// Leave them where they are (`import-takeout PATH…`).
    #[default]
    Keep,
    /// Move them into this folder (`<inbox>/done/`).
    MoveTo(PathBuf),
    /// Delete them. Parts that could not be read completely are moved to the given folder
    /// instead, so nothing unread is ever deleted.
    Delete(PathBuf),
}

/// Options of [`Engine::import_takeout`].
#[derive(Debug, Clone)]
pub struct TakeoutOptions {
    /// `None`: import every export now, complete or not (the command line). `Some(d)`: an
    /// export with missing parts waits until its newest part is older than `d`, and any
    /// export waits while a part changed in the last `min(d, 60 s)` (still being copied).
    pub settle_time: Option<Duration>,
    /// What happens to imported archives.
    pub disposal: ArchiveDisposal,
    /// Import trashed items too (flagged archived=false, kept as normal files).
    pub include_trashed: bool,
    /// Write `<file>.xmp` next to each imported file.
    pub write_xmp: bool,
}

impl Default for TakeoutOptions {
    fn default() -> Self {
        TakeoutOptions {
            settle_time: None,
            disposal: ArchiveDisposal::Keep,
            include_trashed: false,
            write_xmp: true,
        }
    }
}

/// An entry or input that was not imported, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TakeoutSkip {
    /// `part 001: Takeout/…` or an input path.
    pub what: String,
    /// Human-readable reason.
    pub reason: String,
}

/// An export that was found but not imported yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitingExport {
    /// Export id (`takeout-20240525T201456Z`).
    pub export: String,
    /// Why it waits (e.g. "part 002 missing").
    pub reason: String,
}

/// Outcome of one import; the last one is stored and shown by `status`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TakeoutReport {
    /// Start.
    pub started_at: Option<DateTime<Utc>>,
    /// End.
    pub finished_at: Option<DateTime<Utc>>,
    /// Exports imported.
    pub exports: Vec<String>,
    /// Exports found but left for later.
    pub waiting: Vec<WaitingExport>,
    /// Missing part numbers of imported exports (`takeout-…: 002`).
    pub missing_parts: Vec<String>,
    /// Media entries read from the archives.
    pub media_entries: u64,
    /// New files written into the library.
    pub imported: u64,
    /// Bytes of those files.
    pub bytes_written: u64,
    /// Entries whose content was already in the library (album copies, other parts,
    /// earlier exports, API/Picker items).
    pub duplicates: u64,
    /// Items from the API/Picker that this import merged with (same bytes or same photo).
    pub merged_with_existing: u64,
    /// API/Picker files replaced by the Takeout original (same name, same moment).
    pub replaced_with_original: u64,
    /// Media without a sidecar (dated from EXIF, the name or the folder).
    pub media_without_sidecar: u64,
    /// Sidecars without media.
    pub orphan_sidecars: u64,
    /// The first orphan sidecars.
    pub orphan_sidecar_list: Vec<String>,
    /// Entries skipped (unsafe path, link, device, limits, broken data) and inputs ignored.
    pub skipped: u64,
    /// The first skipped entries with their reasons.
    pub skipped_list: Vec<TakeoutSkip>,
    /// Junk entries (AppleDouble, `.DS_Store`), silently ignored.
    pub junk: u64,
    /// Entries that are expected and not imported, by reason (`archive_browser.html`,
    /// `print-subscriptions.json`, the same path again in a later part, trashed items).
    pub ignored: BTreeMap<String, u64>,
    /// Albums in the imported exports.
    pub albums: u64,
    /// XMP sidecars written or updated.
    pub xmp_written: u64,
    /// Archives moved to `done/` or deleted.
    pub archives_disposed: u64,
    /// Parts that could not be read completely.
    pub part_errors: Vec<String>,
    /// The import was cancelled before the end.
    pub cancelled: bool,
}

impl TakeoutReport {
    fn skip(&mut self, what: impl Into<String>, reason: impl Into<String>) {
        self.skipped += 1;
        if self.skipped_list.len() < LIST_CAP {
            self.skipped_list.push(TakeoutSkip {
                what: what.into(),
                reason: reason.into(),
            });
        }
    }

    /// One line for logs and the command line.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "takeout: {} imported ({} bytes), {} duplicates, {} merged with API/Picker items \
             ({} replaced by the original), {} without sidecar, {} orphan sidecars, {} skipped",
            self.imported,
            self.bytes_written,
            self.duplicates,
            self.merged_with_existing,
            self.replaced_with_original,
            self.media_without_sidecar,
            self.orphan_sidecars,
            self.skipped
        );
        if !self.waiting.is_empty() {
            s.push_str(&format!(", {} export(s) waiting", self.waiting.len()));
        }
        if !self.missing_parts.is_empty() {
            s.push_str(&format!(
                ", missing parts: {}",
                self.missing_parts.join(" ")
            ));
        }
        if self.cancelled {
            s.push_str(", cancelled");
        }
        s
    }
}

/// Per-item facts the index record has no field for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct TakeoutExtra {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    people: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    edited_of: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    motion_partner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    motion_role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    google_position: Option<(f64, f64)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    date_source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(default)]
    trashed: bool,
}

/// A file in the library that an entry may duplicate.
#[derive(Debug, Clone)]
struct Known {
    id: MediaId,
    path: String,
    blake3: ContentHash,
}

/// Why the stream consumer stopped.
#[derive(Debug)]
enum Stop {
    Cancelled,
    Fatal(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Stop::Fatal(e)
    }
}

/// Result of streaming one entry.
enum Streamed {
    /// Byte-identical to this known file; nothing written.
    Same(MediaId),
    /// Written to `temp` (not yet renamed).
    Written {
        temp: PathBuf,
        size: u64,
        hash: ContentHash,
    },
}

/// The copy and compare buffers.
struct Buffers {
    data: Vec<u8>,
    compare: Vec<u8>,
}

/// Deletes a temp file unless disarmed.
struct TempGuard(Option<PathBuf>);

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// An item with its edited-copy original and motion partner, resolved at the end of an export.
type PendingLink = (
    MediaId,
    Option<EntryLocator>,
    Option<(MotionRole, EntryLocator)>,
);

/// Mutable state of one import.
struct State<'a> {
    engine: &'a Engine,
    opts: &'a TakeoutOptions,
    progress: &'a dyn ProgressSink,
    cancel: &'a CancellationToken,
    report: TakeoutReport,
    /// Library files by content hash.
    by_hash: HashMap<ContentHash, Known>,
    /// Library files by (size, file name): the one an entry is compared with while it
    /// streams. Only a same-named file is a likely duplicate (the year-folder copy of an
    /// album photo, the same file in an earlier export, the API copy); comparing with any
    /// same-size file would read a file per entry for nothing when many sizes coincide.
    by_size_name: HashMap<(u64, String), Known>,
    /// NFC-lowercased file name → (id, capture ms) of Done API/Picker items.
    by_name: HashMap<String, Vec<(MediaId, i64)>>,
    /// Records whose file is renamed into place but not yet committed to the index.
    uncommitted: Vec<(MediaId, ItemRecord)>,
    /// Batch durability: complete temp files and their final paths, renamed by `commit`
    /// after its `syncfs` (a final name never holds data that is not on disk yet).
    staged: Vec<(PathBuf, PathBuf)>,
    uncommitted_bytes: u64,
    /// Folders known to exist.
    dirs: HashSet<PathBuf>,
    /// Reused for every entry: a fresh 256 KiB buffer per file costs an mmap and page faults.
    bufs: Buffers,
    /// Items touched by this export (for XMP and extras).
    touched: BTreeMap<MediaId, TakeoutExtra>,
    /// Where each streamed entry ended up.
    by_locator: HashMap<EntryLocator, MediaId>,
    /// Pending links to resolve at the end of an export: (item, edited_of, motion partner).
    links: Vec<PendingLink>,
    /// Album key → members (capture ms, id), in stream order.
    album_members: BTreeMap<String, Vec<(Option<i64>, MediaId)>>,
}

impl Engine {
    /// Imports Google Takeout exports from `inputs` (part archives, extracted folders, or
    /// folders holding them) into the library. Blocking: call it from a blocking thread.
    ///
    /// Never fails because of the archives: broken parts, hostile entries and bad JSON are
    /// reported in the returned [`TakeoutReport`] (also stored for `status`). `Err` means the
    /// library or the index could not be written (disk full, I/O, index failure).
    pub fn import_takeout(
        &self,
        inputs: &[PathBuf],
        options: &TakeoutOptions,
        progress: &dyn ProgressSink,
        cancel: &CancellationToken,
    ) -> Result<TakeoutReport, Error> {
        let mut st = State {
            engine: self,
            opts: options,
            progress,
            cancel,
            report: TakeoutReport {
                started_at: Some(Utc::now()),
                ..TakeoutReport::default()
            },
            by_hash: HashMap::new(),
            by_size_name: HashMap::new(),
            by_name: HashMap::new(),
            uncommitted: Vec::new(),
            staged: Vec::new(),
            uncommitted_bytes: 0,
            dirs: HashSet::new(),
            bufs: Buffers {
                data: vec![0u8; BUF],
                compare: vec![0u8; BUF],
            },
            touched: BTreeMap::new(),
            by_locator: HashMap::new(),
            links: Vec::new(),
            album_members: BTreeMap::new(),
        };
        fsops::remove_temp_files(&self.config().library_dir.join("photos"))?;
        st.load_known()?;
        let grouping = group_parts(inputs);
        for ig in &grouping.ignored {
            match &ig.reason {
                IgnoreReason::Junk => st.report.junk += 1,
                other => st
                    .report
                    .skip(ig.path.display().to_string(), ignore_text(other)),
            }
        }
        progress.on_event(&ProgressEvent::ListingStarted {
            source: SourceKind::Takeout,
            full: true,
        });
        let mut result = Ok(());
        for export in &grouping.exports {
            if let Some(reason) = waiting_reason(export, options.settle_time) {
                st.report.waiting.push(WaitingExport {
                    export: export.id.to_string(),
                    reason,
                });
                continue;
            }
            match st.import_export(export) {
                Ok(()) => {}
                Err(Stop::Cancelled) => {
                    st.report.cancelled = true;
                    break;
                }
                Err(Stop::Fatal(e)) => {
                    result = Err(e);
                    break;
                }
            }
        }
        st.report.finished_at = Some(Utc::now());
        let report = st.report;
        let stored = serde_json::to_vec(&report)
            .map_err(|e| Error::Config(format!("encoding the takeout report: {e}")))
            .and_then(|b| self.index().store().put(Tree::Meta, LAST_REPORT_KEY, &b))
            .and_then(|()| self.flush());
        result?;
        stored?;
        tracing::info!("{}", report.summary());
        Ok(report)
    }

    /// The report of the last [`Engine::import_takeout`], if any.
    pub fn last_takeout_report(&self) -> Result<Option<TakeoutReport>, Error> {
        match self.index().store().get(Tree::Meta, LAST_REPORT_KEY)? {
            None => Ok(None),
            Some(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| Error::Corrupt {
                    tree: "meta",
                    detail: e.to_string(),
                }),
        }
    }
}

/// The inputs of an inbox folder: everything in it except `done/`, sorted.
pub fn takeout_inbox_inputs(inbox: &Path) -> Result<Vec<PathBuf>, Error> {
    let rd = match std::fs::read_dir(inbox) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("read takeout inbox", inbox, e)),
    };
    let mut out = Vec::new();
    for e in rd {
        let e = e.map_err(|e| Error::io("read takeout inbox", inbox, e))?;
        if e.file_name() == "done" {
            continue;
        }
        out.push(e.path());
    }
    out.sort();
    Ok(out)
}

fn ignore_text(r: &IgnoreReason) -> String {
    match r {
        IgnoreReason::Junk => "OS junk file".into(),
        IgnoreReason::LooseFile => {
            "not a Takeout archive (a large file delivered outside the zips? import it by hand)"
                .into()
        }
        IgnoreReason::UnrecognisedDirectory => "folder without a Takeout export".into(),
        IgnoreReason::DuplicatePart { kept } => {
            format!("same part as {}", kept.display())
        }
        IgnoreReason::Unreadable(e) => format!("unreadable: {e}"),
    }
}

/// Why an export is not imported now, or `None` when it is ready.
fn waiting_reason(export: &Export, settle: Option<Duration>) -> Option<String> {
    let settle = settle?;
    let newest = export
        .parts
        .iter()
        .filter_map(|p| std::fs::metadata(&p.path).and_then(|m| m.modified()).ok())
        .max()?;
    let age = SystemTime::now()
        .duration_since(newest)
        .unwrap_or(Duration::ZERO);
    if export.is_incomplete() && age < settle {
        let missing: Vec<String> = export.missing.iter().map(|p| p.to_string()).collect();
        return Some(format!(
            "part {} missing; importing anyway once no part has arrived for {}s",
            missing.join(", "),
            settle.as_secs()
        ));
    }
    if age < settle.min(Duration::from_secs(60)) {
        return Some("a part changed moments ago (still being copied?)".into());
    }
    None
}

impl State<'_> {
    /// Records a file now in the library for the content checks of later entries.
    fn remember(&mut self, size: u64, k: Known) {
        let name = k.path.rsplit('/').next().unwrap_or(&k.path).to_owned();
        self.by_size_name.insert((size, name), k.clone());
        self.by_hash.insert(k.blake3, k);
    }

    fn load_known(&mut self) -> Result<(), Error> {
        for r in self.engine.index().items() {
            let (id, rec) = r?;
            if rec.state != ItemState::Done {
                continue;
            }
            if let (Some(size), Some(h)) = (rec.size, rec.blake3) {
                self.remember(
                    size,
                    Known {
                        id: id.clone(),
                        path: rec.path.clone(),
                        blake3: h,
                    },
                );
            }
            if rec.source != SourceKind::Takeout
                && let Some(t) = rec.taken_ms
            {
                self.by_name
                    .entry(name_key(&rec.filename))
                    .or_default()
                    .push((id, t));
            }
        }
        Ok(())
    }

    fn import_export(&mut self, export: &Export) -> Result<(), Stop> {
        let cat = Catalog::build(
            export,
            &ImportOptions {
                include_trashed: self.opts.include_trashed,
                ..ImportOptions::default()
            },
        );
        let cr = cat.report().clone();
        self.report.exports.push(export.id.to_string());
        for m in &cr.missing_parts {
            self.report
                .missing_parts
                .push(format!("{}: {m}", export.id));
        }
        self.report.media_without_sidecar += cr.media_without_sidecar as u64;
        self.report.orphan_sidecars += cr.orphan_sidecars.len() as u64;
        for o in &cr.orphan_sidecars {
            if self.report.orphan_sidecar_list.len() < LIST_CAP {
                self.report.orphan_sidecar_list.push(o.to_string());
            }
        }
        self.report.junk += cr.junk as u64;
        self.report.albums += cr.albums as u64;
        for s in &cr.skipped {
            self.note_skip(s);
        }
        let mut part_errors: BTreeSet<u32> = BTreeSet::new();
        for e in &cr.part_errors {
            part_errors.insert(e.part.0);
            self.report
                .part_errors
                .push(format!("{} part {}: {}", export.id, e.part, e.message));
        }

        let streamed = cat.stream_media(|rec, reader| self.store_entry(rec, reader));
        let sr = match streamed {
            Ok(sr) => sr,
            Err(StreamError::Consumer(stop)) => {
                // What was renamed into place is recorded; the next run finds the rest.
                self.commit()?;
                return Err(stop);
            }
        };
        self.commit()?;
        // Pass-1 skips are already counted; pass 2 only adds entries broken while streaming.
        let known: BTreeSet<(u32, String)> = cr
            .skipped
            .iter()
            .map(|s| (s.part.0, s.name.clone()))
            .collect();
        for s in &sr.skipped {
            if !known.contains(&(s.part.0, s.name.clone())) {
                self.note_skip(s);
            }
        }
        for e in &sr.part_errors {
            if part_errors.insert(e.part.0) {
                self.report
                    .part_errors
                    .push(format!("{} part {}: {}", export.id, e.part, e.message));
            }
        }
        self.finish_albums(&cat)?;
        self.finish_links();
        self.finish_items()?;
        self.engine.flush()?;
        // A part with an entry we could not read (CRC error, limit, encryption) may hold the
        // only original of that file: it is moved to done/, never deleted.
        let mut keep = part_errors;
        for s in cr.skipped.iter().chain(sr.skipped.iter()) {
            if matches!(
                s.reason,
                SkipReason::ReadError(_) | SkipReason::Limit(_) | SkipReason::Encrypted
            ) {
                keep.insert(s.part.0);
            }
        }
        self.dispose(export, &keep)?;
        self.by_locator.clear();
        Ok(())
    }

    /// Counts an entry the catalog did not deliver: expected ones are only counted,
    /// hostile or broken ones are listed with their reason.
    fn note_skip(&mut self, s: &SkippedEntry) {
        match s.reason {
            SkipReason::Junk => self.report.junk += 1,
            SkipReason::NotMedia
            | SkipReason::OtherJson
            | SkipReason::DuplicatePath { .. }
            | SkipReason::Trashed
            | SkipReason::FailedVideo => {
                *self.report.ignored.entry(s.reason.to_string()).or_insert(0) += 1;
            }
            _ => self
                .report
                .skip(format!("part {}: {}", s.part, s.name), s.reason.to_string()),
        }
    }

    /// Stores one entry: compare/stream, then merge, replace or place.
    fn store_entry(&mut self, rec: &MediaRecord, reader: &mut dyn Read) -> Result<(), Stop> {
        if self.cancel.is_cancelled() {
            return Err(Stop::Cancelled);
        }
        self.report.media_entries += 1;
        let taken = capture_instant(rec);
        let taken_ms = taken.map(|t| t.timestamp_millis());
        let lib = self.engine.config().library_dir.clone();
        let rules = self.engine.filesystem_rules();
        let folder = format!(
            "photos/{}",
            naming::month_folder(taken, self.engine.config().folder_timezone)
        );
        let name = naming::sanitize_component(&rec.original_name, rules);
        let dir_abs = lib.join(&folder);
        if !self.dirs.contains(&dir_abs) {
            fsops::ensure_dir(&lib, &dir_abs)?;
            self.dirs.insert(dir_abs.clone());
        }

        let candidate = self.by_size_name.get(&(rec.size, name.clone())).cloned();
        let finish = Finish {
            taken,
            durability: self.engine.config().durability,
        };
        let streamed = stream_into(
            reader,
            &lib,
            candidate.as_ref(),
            &dir_abs,
            &name,
            finish,
            &mut self.bufs,
        )?;
        let id = match streamed {
            Streamed::Same(id) => {
                self.report.duplicates += 1;
                self.merge_metadata(&id, rec, taken_ms)?;
                id
            }
            Streamed::Written { temp, size, hash } => {
                let mut guard = TempGuard(Some(temp.clone()));
                if let Some(found) = self.by_hash.get(&hash).cloned() {
                    // Same bytes as a known file other than the one compared first. If the
                    // library lost that file (deleted, truncated), this export brings it back
                    // rather than being discarded as a duplicate of what is no longer there.
                    let known_file = self.engine.config().library_dir.join(&found.path);
                    let intact = std::fs::metadata(&known_file)
                        .map(|m| m.is_file() && m.len() == size)
                        .unwrap_or(false);
                    let staged = self.staged.iter().any(|(_, dest)| *dest == known_file);
                    if !intact && !staged {
                        File::open(&temp)
                            .and_then(|f| f.sync_all())
                            .map_err(|e| Error::io("fsync", &temp, e))?;
                        if let Some(dir) = known_file.parent() {
                            std::fs::create_dir_all(dir)
                                .map_err(|e| Error::io("create directory", dir, e))?;
                        }
                        std::fs::rename(&temp, &known_file)
                            .map_err(|e| Error::io("rename", &temp, e))?;
                        if let Some(dir) = known_file.parent() {
                            fsops::fsync_dir(dir)?;
                        }
                        guard.0 = None;
                        tracing::info!(path = %found.path, "restored a lost library file from Takeout");
                    } else {
                        drop(guard);
                    }
                    self.report.duplicates += 1;
                    let id = found.id.clone();
                    self.merge_metadata(&id, rec, taken_ms)?;
                    id
                } else if let Some(id) = self.same_photo(rec, taken_ms)? {
                    self.replace_file(&id, &temp, size, hash)?;
                    guard.0 = None;
                    self.merge_metadata(&id, rec, taken_ms)?;
                    id
                } else {
                    let id = MediaId::new(format!("takeout:{}", &hash.to_hex()[..32]));
                    match self.place(&id, &folder, &name, &temp, size, hash, taken)? {
                        Some(path) => {
                            guard.0 = None;
                            let mut r = new_record(rec, taken_ms);
                            r.path = path.clone();
                            r.size = Some(size);
                            r.blake3 = Some(hash);
                            self.remember(
                                size,
                                Known {
                                    id: id.clone(),
                                    path: path.clone(),
                                    blake3: hash,
                                },
                            );
                            self.report.imported += 1;
                            self.report.bytes_written += size;
                            self.progress.on_event(&ProgressEvent::Downloaded {
                                id: id.clone(),
                                path,
                                bytes: size,
                            });
                            self.uncommitted.push((id.clone(), r));
                            self.uncommitted_bytes += size;
                            if self.uncommitted.len() >= COMMIT_EVERY
                                || self.uncommitted_bytes >= COMMIT_BYTES
                            {
                                self.commit()?;
                            }
                        }
                        None => {
                            // An earlier crash left this very file in place: adopted.
                            self.report.duplicates += 1;
                            self.merge_metadata(&id, rec, taken_ms)?;
                        }
                    }
                    id
                }
            }
        };
        self.by_locator.insert(rec.locator.clone(), id.clone());
        let extra = self.touched.entry(id.clone()).or_default();
        for p in &rec.people {
            if !extra.people.contains(p) {
                extra.people.push(p.clone());
            }
        }
        if extra.google_position.is_none() {
            extra.google_position = rec.google_position.map(|g| (g.latitude, g.longitude));
        }
        if extra.url.is_none() {
            extra.url.clone_from(&rec.url);
        }
        if extra.date_source.is_none() {
            extra.date_source = rec.taken.map(|d| format!("{:?}", d.source));
        }
        extra.trashed |= rec.trashed;
        if rec.edited_of.is_some() || rec.motion.is_some() {
            self.links
                .push((id.clone(), rec.edited_of.clone(), rec.motion.clone()));
        }
        if let Some(album) = &rec.album {
            self.album_members
                .entry(album.0.clone())
                .or_default()
                .push((taken_ms, id));
        }
        Ok(())
    }

    /// An API/Picker item that is the same photo with other bytes: same name, same moment.
    fn same_photo(
        &self,
        rec: &MediaRecord,
        taken_ms: Option<i64>,
    ) -> Result<Option<MediaId>, Error> {
        let Some(t) = taken_ms else { return Ok(None) };
        if rec.sidecar.is_none() || rec.flags.contains(&RecordFlag::EditedCopy) {
            return Ok(None);
        }
        let Some(list) = self.by_name.get(&name_key(&rec.original_name)) else {
            return Ok(None);
        };
        let mut hits = list
            .iter()
            .filter(|(_, ms)| (ms - t).abs() <= SAME_MOMENT_MS)
            .map(|(id, _)| id.clone())
            .collect::<Vec<_>>();
        hits.sort();
        // Ambiguous (two API items with the same name at the same second): do not guess.
        if hits.len() != 1 {
            return Ok(None);
        }
        let id = hits.remove(0);
        match self.engine.index().item(&id)? {
            Some(r) if r.state == ItemState::Done && r.source != SourceKind::Takeout => {
                Ok(Some(id))
            }
            _ => Ok(None),
        }
    }

    /// Puts the Takeout original at the path of an existing API/Picker item.
    fn replace_file(
        &mut self,
        id: &MediaId,
        temp: &Path,
        size: u64,
        hash: ContentHash,
    ) -> Result<(), Error> {
        let Some(mut r) = self.engine.index().item(id)? else {
            return Err(Error::Config(format!("{id} vanished from the index")));
        };
        let lib = &self.engine.config().library_dir;
        let dest = lib.join(&r.path);
        // This replaces a good, indexed file: the new bytes must be on disk first, in
        // either durability mode.
        File::open(temp)
            .and_then(|f| f.sync_all())
            .map_err(|e| Error::io("fsync", temp, e))?;
        std::fs::rename(temp, &dest).map_err(|e| Error::io("rename", temp, e))?;
        if let Some(p) = dest.parent() {
            fsops::fsync_dir(p)?;
        }
        if let Some(p) = temp.parent()
            && Some(p) != dest.parent()
        {
            fsops::fsync_dir(p)?;
        }
        if self.engine.config().durability == Durability::Batch {
            fsops::syncfs(lib)?;
        }
        r.size = Some(size);
        r.blake3 = Some(hash);
        self.engine.index().put_item(id, &r)?;
        self.remember(
            size,
            Known {
                id: id.clone(),
                path: r.path.clone(),
                blake3: hash,
            },
        );
        self.report.replaced_with_original += 1;
        self.report.bytes_written += size;
        Ok(())
    }

    /// Chooses the permanent name and renames the temp file there. Returns `None` when the
    /// same content is already at the chosen path (left by an interrupted import).
    #[allow(clippy::too_many_arguments)]
    fn place(
        &mut self,
        id: &MediaId,
        folder: &str,
        name: &str,
        temp: &Path,
        size: u64,
        hash: ContentHash,
        taken: Option<DateTime<Utc>>,
    ) -> Result<Option<String>, Error> {
        let lib = self.engine.config().library_dir.clone();
        let rules = self.engine.filesystem_rules();
        let mut cands = vec![name.to_owned()];
        for len in [8, 16, 32, 64] {
            cands.push(naming::suffixed_name(name, id.as_str(), len));
        }
        for cand in cands {
            let rel = format!("{folder}/{cand}");
            let ck = naming::claim_key(&rel, rules);
            let owner = self.engine.index().path_owner(&ck)?;
            let ours = match owner {
                None => true,
                Some(o) => o.is(id.as_str()) || o.is_orphan(),
            };
            if !ours {
                continue;
            }
            let abs = lib.join(&rel);
            match std::fs::symlink_metadata(&abs) {
                Ok(m) if m.is_file() && m.len() == size => {
                    let same = fsops::hash_file(&abs)
                        .map(|(_, h)| h == hash)
                        .unwrap_or(false);
                    if !same {
                        continue;
                    }
                    self.engine.index().claim_path(&ck, id.as_str())?;
                    let _ = std::fs::remove_file(temp);
                    let mut r = ItemRecord {
                        path: rel.clone(),
                        size: Some(size),
                        blake3: Some(hash),
                        ..empty_record()
                    };
                    r.taken_ms = taken.map(|t| t.timestamp_millis());
                    self.engine.index().put_item(id, &r)?;
                    self.remember(
                        size,
                        Known {
                            id: id.clone(),
                            path: rel,
                            blake3: hash,
                        },
                    );
                    return Ok(None);
                }
                Ok(_) => continue,
                Err(_) => {}
            }
            self.engine.index().claim_path(&ck, id.as_str())?;
            if self.engine.config().durability == Durability::Batch {
                self.staged.push((temp.to_path_buf(), abs));
                return Ok(Some(rel));
            }
            std::fs::rename(temp, &abs).map_err(|e| Error::io("rename", temp, e))?;
            if let Some(p) = abs.parent() {
                fsops::fsync_dir(p)?;
            }
            return Ok(Some(rel));
        }
        Err(Error::Config(format!(
            "no free name for {name} in {folder}"
        )))
    }

    /// Folds the Takeout metadata into an existing item.
    fn merge_metadata(
        &mut self,
        id: &MediaId,
        rec: &MediaRecord,
        taken_ms: Option<i64>,
    ) -> Result<(), Error> {
        // An item still waiting in the uncommitted batch.
        if let Some((_, r)) = self.uncommitted.iter_mut().find(|(i, _)| i == id) {
            fill_from(r, rec, taken_ms, false);
            return Ok(());
        }
        let Some(mut r) = self.engine.index().item(id)? else {
            return Ok(());
        };
        let before = r.clone();
        if r.source != SourceKind::Takeout {
            if !self.touched.contains_key(id) {
                self.report.merged_with_existing += 1;
            }
            r.source = SourceKind::Takeout;
            fill_from(&mut r, rec, taken_ms, true);
        } else {
            fill_from(&mut r, rec, taken_ms, false);
        }
        if r != before {
            self.engine.index().put_item(id, &r)?;
        }
        Ok(())
    }

    /// Makes the batch durable, then records it. Batch durability: one `syncfs` for the
    /// data, the staged renames, a second `syncfs` for the renames, then the index.
    fn commit(&mut self) -> Result<(), Error> {
        if self.uncommitted.is_empty() && self.staged.is_empty() {
            return Ok(());
        }
        if self.engine.config().durability == Durability::Batch {
            let lib = self.engine.config().library_dir.clone();
            fsops::syncfs(&lib)?;
            for (temp, dest) in self.staged.drain(..) {
                std::fs::rename(&temp, &dest).map_err(|e| Error::io("rename", &temp, e))?;
            }
            fsops::syncfs(&lib)?;
        }
        self.uncommitted_bytes = 0;
        for (id, r) in self.uncommitted.drain(..) {
            self.engine.index().put_item(&id, &r)?;
        }
        self.engine.flush()
    }

    fn finish_albums(&mut self, cat: &Catalog) -> Result<(), Error> {
        let idx = self.engine.index();
        let members = std::mem::take(&mut self.album_members);
        for (key, album) in cat.albums() {
            let aid = AlbumId::new(format!("takeout:{}", key.0));
            let title = album.title.clone();
            let mut rec = idx.album(&aid)?.unwrap_or(AlbumRecord {
                source: SourceKind::Takeout,
                title: title.clone(),
                dir: String::new(),
                count: None,
                members_stale: false,
            });
            // Union with what earlier exports put there; new members after the old ones,
            // by capture time, so existing link names (NNNN_…) never change.
            let existing: Vec<MediaId> = idx.members(&aid).collect::<Result<_, _>>()?;
            let have: BTreeSet<MediaId> = existing.iter().cloned().collect();
            let mut new: Vec<(Option<i64>, MediaId)> = members
                .get(&key.0)
                .map(|v| {
                    v.iter()
                        .filter(|(_, i)| !have.contains(i))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            new.sort();
            new.dedup_by(|a, b| a.1 == b.1);
            let mut pos = u32::try_from(existing.len()).unwrap_or(u32::MAX);
            for (_, m) in &new {
                idx.add_member(&aid, pos, m)?;
                pos = pos.saturating_add(1);
            }
            let count = Some(existing.len() as u64 + new.len() as u64);
            if rec.title != title || rec.count != count {
                rec.title = title;
                rec.count = count;
                idx.put_album(&aid, &rec)?;
            } else if idx.album(&aid)?.is_none() {
                idx.put_album(&aid, &rec)?;
            }
        }
        if self.engine.config().album_links != AlbumLinks::None {
            let mut rr = RunReport::new(0);
            self.engine
                .build_album_trees(SourceKind::Takeout, &mut rr)?;
            for e in rr.errors {
                self.report.part_errors.push(format!("albums: {e}"));
            }
        }
        Ok(())
    }

    fn finish_links(&mut self) {
        for (id, edited, motion) in std::mem::take(&mut self.links) {
            let extra = self.touched.entry(id.clone()).or_default();
            if let Some(orig) = edited.and_then(|l| self.by_locator.get(&l))
                && *orig != id
            {
                extra.edited_of = Some(orig.to_string());
            }
            if let Some((role, l)) = motion
                && let Some(p) = self.by_locator.get(&l)
            {
                extra.motion_partner = Some(p.to_string());
                extra.motion_role = Some(
                    match role {
                        MotionRole::Still => "still",
                        MotionRole::Video => "video",
                    }
                    .into(),
                );
            }
        }
    }

    /// Stores extras and writes XMP sidecars for every item this export touched.
    fn finish_items(&mut self) -> Result<(), Error> {
        let idx = self.engine.index();
        let lib = self.engine.config().library_dir.clone();
        let rules = self.engine.filesystem_rules();
        for (id, extra) in std::mem::take(&mut self.touched) {
            let key = format!("{EXTRA_PREFIX}{id}");
            let old: Option<TakeoutExtra> = idx
                .store()
                .get(Tree::Meta, key.as_bytes())?
                .and_then(|b| serde_json::from_slice(&b).ok());
            let merged = merge_extra(old.clone(), extra);
            if old.as_ref() != Some(&merged) {
                let b = serde_json::to_vec(&merged)
                    .map_err(|e| Error::Config(format!("encoding takeout extras: {e}")))?;
                idx.store().put(Tree::Meta, key.as_bytes(), &b)?;
            }
            if !self.opts.write_xmp {
                continue;
            }
            let Some(rec) = idx.item(&id)? else { continue };
            if rec.state != ItemState::Done || rec.path.is_empty() {
                continue;
            }
            let mut albums = Vec::new();
            for a in idx.item_albums(&id) {
                if let Some(al) = idx.album(&a?)? {
                    albums.push(al.title);
                }
            }
            albums.sort();
            albums.dedup();
            let xmp = xmp_document(&rec, &albums, &merged.people);
            let rel = format!("{}.xmp", rec.path);
            let abs = lib.join(&rel);
            if std::fs::read(&abs).ok().as_deref() == Some(xmp.as_bytes()) {
                continue;
            }
            // A sidecar we did not write (darktable, digiKam keep edits in it) is never
            // replaced: only a path claimed as this item's XMP is ours to rewrite.
            let claim = naming::claim_key(&rel, rules);
            let ours = idx
                .path_owner(&claim)?
                .is_some_and(|o| o.is(&format!("xmp:{id}")));
            if !ours && std::fs::symlink_metadata(&abs).is_ok() {
                self.report.skip(
                    rel.clone(),
                    "an XMP sidecar that gphotos-backup did not write is already there; kept as \
                     it is"
                        .to_string(),
                );
                continue;
            }
            let dir = abs
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| lib.clone());
            let name = rel.rsplit('/').next().unwrap_or(&rel);
            let tmp = dir.join(fsops::temp_name(name));
            let mut guard = TempGuard(Some(tmp.clone()));
            std::fs::write(&tmp, xmp.as_bytes()).map_err(|e| Error::io("write", &tmp, e))?;
            if self.engine.config().durability == Durability::PerFile {
                File::open(&tmp)
                    .and_then(|f| f.sync_all())
                    .map_err(|e| Error::io("fsync", &tmp, e))?;
            }
            std::fs::rename(&tmp, &abs).map_err(|e| Error::io("rename", &tmp, e))?;
            guard.0 = None;
            // Claimed so `verify` and `reindex` know the sidecar is ours.
            idx.claim_path(&claim, &format!("xmp:{id}"))?;
            self.report.xmp_written += 1;
        }
        Ok(())
    }

    fn dispose(&mut self, export: &Export, part_errors: &BTreeSet<u32>) -> Result<(), Error> {
        let (done, delete) = match &self.opts.disposal {
            ArchiveDisposal::Keep => return Ok(()),
            ArchiveDisposal::MoveTo(d) => (d.clone(), false),
            ArchiveDisposal::Delete(d) => (d.clone(), true),
        };
        for part in &export.parts {
            let broken = part_errors.contains(&part.number.0);
            if delete && !broken {
                let r = if part.path.is_dir() {
                    std::fs::remove_dir_all(&part.path)
                } else {
                    std::fs::remove_file(&part.path)
                };
                r.map_err(|e| Error::io("delete imported archive", &part.path, e))?;
            } else {
                std::fs::create_dir_all(&done)
                    .map_err(|e| Error::io("create directory", &done, e))?;
                let Some(fname) = part.path.file_name() else {
                    continue;
                };
                let mut dest = done.join(fname);
                let mut n = 1;
                while dest.exists() {
                    dest = done.join(format!("{}.{n}", fname.to_string_lossy()));
                    n += 1;
                }
                std::fs::rename(&part.path, &dest)
                    .map_err(|e| Error::io("move imported archive", &part.path, e))?;
            }
            self.report.archives_disposed += 1;
        }
        Ok(())
    }
}

/// Streams `reader` against `candidate` (comparing, writing nothing) and switches to a
/// temp file in `dir` at the first difference.
fn stream_into(
    reader: &mut dyn Read,
    lib: &Path,
    candidate: Option<&Known>,
    dir: &Path,
    name: &str,
    finish: Finish,
    bufs: &mut Buffers,
) -> Result<Streamed, Error> {
    let Buffers {
        data: buf,
        compare: cmp_buf,
    } = bufs;
    let mut hasher = blake3::Hasher::new();
    let mut pos: u64 = 0;
    let mut compare: Option<(File, MediaId, PathBuf)> = candidate.and_then(|k| {
        let p = lib.join(&k.path);
        File::open(&p).ok().map(|f| (f, k.id.clone(), p))
    });
    let mut out: Option<(File, PathBuf)> = None;
    let mut guard = TempGuard(None);
    loop {
        let n = match reader.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // The archive side failed: the walker reports the entry; drop what we have.
            Err(e) => return Err(Error::io("read archive entry", dir.join(name), e)),
        };
        let chunk = &buf[..n];
        hasher.update(chunk);
        if let Some((f, _, _)) = compare.as_mut() {
            if read_exact_or_short(f, &mut cmp_buf[..n])? == n && cmp_buf[..n] == *chunk {
                pos += n as u64;
                continue;
            }
            // First difference: start the real file with the identical prefix.
            let (mut f, _, src) = compare
                .take()
                .ok_or_else(|| Error::Config("comparison state lost".into()))?;
            let tmp = dir.join(fsops::temp_name(name));
            guard.0 = Some(tmp.clone());
            let mut w = File::create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
            f.seek(SeekFrom::Start(0))
                .map_err(|e| Error::io("seek", &src, e))?;
            let copied = io::copy(&mut (&mut f).take(pos), &mut w)
                .map_err(|e| Error::io("copy", &tmp, e))?;
            if copied != pos {
                return Err(Error::Config(format!(
                    "{} changed while it was compared",
                    src.display()
                )));
            }
            out = Some((w, tmp));
        }
        if out.is_none() {
            let tmp = dir.join(fsops::temp_name(name));
            guard.0 = Some(tmp.clone());
            let w = File::create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
            out = Some((w, tmp));
        }
        if let Some((w, tmp)) = out.as_mut() {
            w.write_all(chunk)
                .map_err(|e| Error::io("write", tmp.clone(), e))?;
        }
        pos += n as u64;
    }
    if let Some((mut f, id, _)) = compare {
        // Equal so far; equal only if the known file ends here too.
        let mut one = [0u8; 1];
        if f.read(&mut one).unwrap_or(1) == 0 && pos > 0 {
            return Ok(Streamed::Same(id));
        }
        let tmp = dir.join(fsops::temp_name(name));
        guard.0 = Some(tmp.clone());
        let mut w = File::create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
        f.seek(SeekFrom::Start(0))
            .map_err(|e| Error::io("seek", &tmp, e))?;
        io::copy(&mut (&mut f).take(pos), &mut w).map_err(|e| Error::io("copy", &tmp, e))?;
        out = Some((w, tmp));
    }
    let (w, tmp) = match out {
        Some(o) => o,
        None => {
            // Empty entry.
            let tmp = dir.join(fsops::temp_name(name));
            guard.0 = Some(tmp.clone());
            let w = File::create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
            (w, tmp)
        }
    };
    finish.apply(&w, &tmp)?;
    drop(w);
    guard.0 = None;
    Ok(Streamed::Written {
        temp: tmp,
        size: pos,
        hash: hasher.finalize().into(),
    })
}

fn read_exact_or_short(f: &mut File, buf: &mut [u8]) -> Result<usize, Error> {
    let mut got = 0;
    while got < buf.len() {
        match f.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io("read library file", PathBuf::new(), e)),
        }
    }
    Ok(got)
}

/// What a finished temp file gets before it is renamed into place.
#[derive(Debug, Clone, Copy)]
struct Finish {
    taken: Option<DateTime<Utc>>,
    durability: Durability,
}

impl Finish {
    /// mtime = capture time (after the last write), and fsync in per-file durability.
    fn apply(self, f: &File, path: &Path) -> Result<(), Error> {
        if let Some(t) = self.taken {
            fsops::set_times(f, fsops::system_time_from_ms(t.timestamp_millis()))
                .map_err(|e| Error::io("set times", path, e))?;
        }
        if self.durability == Durability::PerFile {
            f.sync_all().map_err(|e| Error::io("fsync", path, e))?;
        }
        Ok(())
    }
}

/// The capture time used for the folder and mtime: the instant, or a wall clock / day / year
/// read as UTC (the zone is unknown, §4.6).
fn capture_instant(rec: &MediaRecord) -> Option<DateTime<Utc>> {
    match rec.taken?.time {
        CaptureTime::Instant(t) => Some(t),
        CaptureTime::Local(n) => Some(Utc.from_utc_datetime(&n)),
        CaptureTime::Day(d) => Some(Utc.from_utc_datetime(&d.and_time(NaiveTime::MIN))),
        CaptureTime::Year(y) => chrono::NaiveDate::from_ymd_opt(y, 1, 1)
            .map(|d| Utc.from_utc_datetime(&d.and_time(NaiveTime::MIN))),
    }
}

fn name_key(name: &str) -> String {
    name.nfc().collect::<String>().to_lowercase()
}

/// A Takeout record starts as done: its file is in place before the index hears of it.
fn empty_record() -> ItemRecord {
    ItemRecord::empty(SourceKind::Takeout, ItemState::Done)
}

fn new_record(rec: &MediaRecord, taken_ms: Option<i64>) -> ItemRecord {
    let mut r = empty_record();
    r.filename.clone_from(&rec.original_name);
    r.mime_type = mime_of(&rec.original_name, rec.kind).to_owned();
    r.expected_size = Some(rec.size);
    fill_from(&mut r, rec, taken_ms, true);
    r
}

/// Copies Takeout metadata into `r`. `authoritative`: the Takeout record wins where it has a
/// value (first sighting, or an API item becoming a Takeout asset); otherwise only gaps are
/// filled, so later album copies of the same bytes cannot flip what the first copy set.
fn fill_from(r: &mut ItemRecord, rec: &MediaRecord, taken_ms: Option<i64>, authoritative: bool) {
    let sidecar_dated = rec.sidecar.is_some() && taken_ms.is_some();
    if taken_ms.is_some() && (r.taken_ms.is_none() || (authoritative && sidecar_dated)) {
        r.taken_ms = taken_ms;
    }
    if let Some(p) = rec.position
        && (r.latitude.is_none() || authoritative)
    {
        r.latitude = Some(p.latitude);
        r.longitude = Some(p.longitude);
    }
    if let Some(d) = rec.description.as_ref().filter(|d| !d.is_empty())
        && (r.description.is_none() || authoritative)
    {
        r.description = Some(d.clone());
    }
    r.favorite |= rec.favorited;
    r.archived |= rec.archived;
    if r.filename.is_empty() {
        r.filename.clone_from(&rec.original_name);
    }
    if r.mime_type.is_empty() {
        r.mime_type = mime_of(&rec.original_name, rec.kind).to_owned();
    }
}

fn merge_extra(old: Option<TakeoutExtra>, new: TakeoutExtra) -> TakeoutExtra {
    let Some(mut o) = old else { return new };
    for p in new.people {
        if !o.people.contains(&p) {
            o.people.push(p);
        }
    }
    o.edited_of = o.edited_of.or(new.edited_of);
    o.motion_partner = o.motion_partner.or(new.motion_partner);
    o.motion_role = o.motion_role.or(new.motion_role);
    o.google_position = o.google_position.or(new.google_position);
    o.date_source = o.date_source.or(new.date_source);
    o.url = o.url.or(new.url);
    o.trashed |= new.trashed;
    o
}

fn mime_of(name: &str, kind: MediaKind) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "jpg" | "jpeg" | "jpe" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "avif" => "image/avif",
        "bmp" => "image/bmp",
        "tif" | "tiff" => "image/tiff",
        "dng" => "image/x-adobe-dng",
        "mp4" | "m4v" | "mp" => "video/mp4",
        "mov" | "qt" => "video/quicktime",
        "3gp" => "video/3gpp",
        "avi" => "video/x-msvideo",
        "mkv" => "video/x-matroska",
        "webm" => "video/webm",
        "mts" | "m2ts" => "video/mp2t",
        "mpg" | "mpeg" => "video/mpeg",
        "wmv" => "video/x-ms-wmv",
        _ => match kind {
            MediaKind::Photo => "image/jpeg",
            MediaKind::Video => "video/mp4",
        },
    }
}

fn xml_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => o.push(c),
        }
    }
    o
}

/// EXIF GPS coordinate form `DDD,MM.mmmmmmN` (XMP spec part 2, §1.2.7.4).
fn xmp_gps(v: f64, pos: char, neg: char) -> String {
    let hemi = if v < 0.0 { neg } else { pos };
    let a = v.abs();
    let deg = a.trunc();
    let min = (a - deg) * 60.0;
    format!("{},{:.6}{}", deg as u32, min, hemi)
}

/// The XMP packet for one item. Deterministic: the same metadata gives the same bytes, so a
/// re-import rewrites nothing.
pub(crate) fn xmp_document(rec: &ItemRecord, albums: &[String], people: &[String]) -> String {
    let mut props = String::new();
    let mut push = |s: String| {
        props.push_str("   ");
        props.push_str(&s);
        props.push('\n');
    };
    if let Some(t) = rec.taken_at() {
        let ts = t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        push(format!(
            "<photoshop:DateCreated>{ts}</photoshop:DateCreated>"
        ));
        push(format!("<xmp:CreateDate>{ts}</xmp:CreateDate>"));
    }
    if let (Some(la), Some(lo)) = (rec.latitude, rec.longitude) {
        push(format!(
            "<exif:GPSLatitude>{}</exif:GPSLatitude>",
            xmp_gps(la, 'N', 'S')
        ));
        push(format!(
            "<exif:GPSLongitude>{}</exif:GPSLongitude>",
            xmp_gps(lo, 'E', 'W')
        ));
    }
    if rec.favorite {
        push("<xmp:Rating>5</xmp:Rating>".into());
        push("<xmp:Label>Favorite</xmp:Label>".into());
    }
    if let Some(d) = rec.description.as_ref().filter(|d| !d.is_empty()) {
        push(format!(
            "<dc:description><rdf:Alt><rdf:li xml:lang=\"x-default\">{}</rdf:li></rdf:Alt></dc:description>",
            xml_escape(d)
        ));
    }
    let bag = |items: Vec<String>| -> String {
        items
            .iter()
            .map(|i| format!("<rdf:li>{}</rdf:li>", xml_escape(i)))
            .collect::<String>()
    };
    if !albums.is_empty() {
        push(format!(
            "<dc:subject><rdf:Bag>{}</rdf:Bag></dc:subject>",
            bag(albums.to_vec())
        ));
        push(format!(
            "<lr:hierarchicalSubject><rdf:Bag>{}</rdf:Bag></lr:hierarchicalSubject>",
            bag(albums.iter().map(|a| format!("Albums|{a}")).collect())
        ));
    }
    if !people.is_empty() {
        push(format!(
            "<Iptc4xmpExt:PersonInImage><rdf:Bag>{}</rdf:Bag></Iptc4xmpExt:PersonInImage>",
            bag(people.to_vec())
        ));
    }
    format!(
        "<?xpacket begin=\"\u{feff}\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>\n\
<x:xmpmeta xmlns:x=\"adobe:ns:meta/\" x:xmptk=\"gphotos-backup\">\n\
 <rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\">\n\
  <rdf:Description rdf:about=\"\"\n\
    xmlns:dc=\"http://purl.org/dc/elements/1.1/\"\n\
    xmlns:xmp=\"http://ns.adobe.com/xap/1.0/\"\n\
    xmlns:exif=\"http://ns.adobe.com/exif/1.0/\"\n\
    xmlns:photoshop=\"http://ns.adobe.com/photoshop/1.0/\"\n\
    xmlns:lr=\"http://ns.adobe.com/lightroom/1.0/\"\n\
    xmlns:Iptc4xmpExt=\"http://iptc.org/std/Iptc4xmpExt/2008-02-29/\">\n\
{props}  </rdf:Description>\n\
 </rdf:RDF>\n\
</x:xmpmeta>\n\
<?xpacket end=\"w\"?>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gps_in_xmp_form() {
        assert_eq!(xmp_gps(49.2132972, 'N', 'S'), "49,12.797832N");
        assert_eq!(xmp_gps(-22.5, 'E', 'W'), "22,30.000000W");
    }

    #[test]
    fn xmp_is_deterministic_and_escaped() {
        let mut r = empty_record();
        r.taken_ms = Some(1_695_394_176_000);
        r.latitude = Some(1.5);
        r.longitude = Some(2.25);
        r.favorite = true;
        r.description = Some("a <b> & \"c\"".into());
        let a = xmp_document(&r, &["Trip".into()], &["Ann".into()]);
        assert_eq!(a, xmp_document(&r, &["Trip".into()], &["Ann".into()]));
        assert!(a.contains("<photoshop:DateCreated>2023-09-22T14:49:36Z</photoshop:DateCreated>"));
        assert!(a.contains("a &lt;b&gt; &amp; &quot;c&quot;"));
        assert!(a.contains("<rdf:li>Albums|Trip</rdf:li>"));
        assert!(a.contains("<xmp:Rating>5</xmp:Rating>"));
    }
}
