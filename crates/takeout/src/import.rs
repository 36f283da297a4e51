//! The two-pass importer: [`Catalog::build`] reads only names, JSON and the head of each
//! media entry; [`Catalog::stream_media`] then walks each part once more and hands every
//! media entry's bytes with its resolved [`MediaRecord`] to the caller.
//!
//! Two passes are needed because in a tgz (no central directory) and across parts a
//! sidecar may come *after* its media (§1.2: 160 of 483 pairs in a real 3-part export are
//! split across parts), while the engine must know the metadata when it stores the bytes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::io::Read;

use crate::archive::{
    EntryReader, Limits, RawEntry, SkipReason, SkippedEntry, VisitError, walk_part,
};
use crate::dates::{
    CaptureDate, CaptureTime, Confidence, DateSource, ExifTime, date_from_file_name,
    date_from_folder_name, exif_datetime, instant_from_epoch,
};
use crate::entry_path::EntryPath;
use crate::json::{AlbumMeta, GeoPoint, JsonKind, Sidecar, classify_json};
use crate::matcher::{
    FolderMedia, FolderSidecar, PairMethod, pair_folder, split_ext, split_index, title_confirms,
    title_to_file_name,
};
use crate::parts::{Export, ExportId, PartNumber, is_junk_name};
use crate::sniff::{MediaKind, NOT_MEDIA_EXTS, Sniffed, kind_from_extension, sniff};

/// How much of each media entry the catalog pass reads: enough for JPEG EXIF (§4.1 reads
/// EXIF from images; APP1 is at most 64 KiB) and for magic bytes.
pub const HEAD_BYTES: usize = 64 * 1024;

/// Options for an import.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Size and bomb limits.
    pub limits: Limits,
    /// Keep trashed items (flagged) instead of skipping them (§8 case 15).
    pub include_trashed: bool,
}

/// Where an entry is: the part and the sanitised path inside it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryLocator {
    /// The part.
    pub part: PartNumber,
    /// The entry path.
    pub path: EntryPath,
}

impl fmt::Display for EntryLocator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "part {}: {}", self.part, self.path)
    }
}

/// Identity of an album within an export: its folder path. Folder paths are unique, so
/// untitled albums (`Untitled(1)`, `Sans titre(9)`) never merge (§8 case 14).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AlbumKey(pub String);

/// An album folder (a folder holding album metadata JSON, §2.2 design consequence).
#[derive(Debug, Clone, PartialEq)]
pub struct Album {
    /// Identity.
    pub key: AlbumKey,
    /// Title from the metadata JSON; for untitled albums the folder name.
    pub title: String,
    /// True when the JSON title was empty.
    pub untitled: bool,
    /// The folder's own name (sanitised/truncated title).
    pub folder_name: String,
    /// Description and enrichment texts.
    pub description: Option<String>,
    /// Album location (last location enrichment).
    pub location: Option<GeoPoint>,
}

/// Role of a file in a motion/live photo (§3.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MotionRole {
    /// The still image.
    Still,
    /// The video half; not a separate timeline item.
    Video,
}

/// Things worth knowing about a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RecordFlag {
    /// No sidecar was found.
    NoSidecar,
    /// No sidecar, and the export misses parts where it may be (§8 case 1).
    SidecarMayBeInMissingPart,
    /// Paired by the prefix heuristic only.
    PrefixHeuristic,
    /// Paired by name, but the sidecar title does not explain the name (gpth #395).
    TitleMismatch,
    /// An edited copy (`-edited`, …).
    EditedCopy,
    /// In a trash folder without `trashed: true` in the sidecar.
    TrashedByFolder,
    /// In an `Archive` folder without `archived: true`.
    ArchivedByFolder,
    /// Date is the upload time (`creationTime`).
    DateFromUploadTime,
    /// Date is only the folder's year or day.
    DateFromFolder,
    /// No date at all.
    NoDate,
    /// From partner sharing.
    PartnerShared,
}

/// Everything known about one media entry. Small: no file contents.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaRecord {
    /// Where the bytes are.
    pub locator: EntryLocator,
    /// Size declared by the archive.
    pub size: u64,
    /// Folder path inside the export.
    pub folder: String,
    /// File name in the archive.
    pub file_name: String,
    /// Best original name: the sidecar title when the archive name is its truncated form
    /// (§8 case 22), with path separators replaced (§8 case 52); else the archive name.
    pub original_name: String,
    /// Photo or video.
    pub kind: MediaKind,
    /// The paired sidecar.
    pub sidecar: Option<EntryLocator>,
    /// How it was paired.
    pub pair_method: Option<PairMethod>,
    /// Resolved capture date.
    pub taken: Option<CaptureDate>,
    /// EXIF clock, kept for display even when the sidecar instant wins (§4.6).
    pub exif_time: Option<ExifTime>,
    /// Position: `geoDataExif`, else `geoData` (§8 case 49).
    pub position: Option<GeoPoint>,
    /// Google's `geoData` point when it differs from `position`.
    pub google_position: Option<GeoPoint>,
    /// Caption.
    pub description: Option<String>,
    /// Favourite.
    pub favorited: bool,
    /// Archived (flag or `Archive/` folder).
    pub archived: bool,
    /// Trashed (flag or trash folder).
    pub trashed: bool,
    /// Named people.
    pub people: Vec<String>,
    /// Google Photos URL from the sidecar.
    pub url: Option<String>,
    /// The album this entry's folder is, if any.
    pub album: Option<AlbumKey>,
    /// For an edited copy: its original in the same folder.
    pub edited_of: Option<EntryLocator>,
    /// Motion role and partner.
    pub motion: Option<(MotionRole, EntryLocator)>,
    /// Overall confidence (lowest of pairing and date).
    pub confidence: Confidence,
    /// Details.
    pub flags: BTreeSet<RecordFlag>,
}

/// A part that could not be read completely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartError {
    /// The part.
    pub part: PartNumber,
    /// The error text.
    pub message: String,
}

/// Counts and lists from the catalog pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// The export.
    pub export: Option<ExportId>,
    /// Missing parts (export incomplete).
    pub missing_parts: Vec<PartNumber>,
    /// Parts that failed (others continued).
    pub part_errors: Vec<PartError>,
    /// Media entries found (trashed included).
    pub media: usize,
    /// Media with a sidecar.
    pub paired: usize,
    /// Pairings by method.
    pub paired_by_method: BTreeMap<PairMethod, usize>,
    /// Media without a sidecar.
    pub media_without_sidecar: usize,
    /// Sidecars no media uses.
    pub orphan_sidecars: Vec<EntryLocator>,
    /// Albums found.
    pub albums: usize,
    /// Junk entries (AppleDouble, `.DS_Store`), counted, not listed in `skipped`.
    pub junk: usize,
    /// Every other skipped entry with its reason.
    pub skipped: Vec<SkippedEntry>,
}

impl ImportReport {
    /// Skipped entries counted by reason text.
    pub fn skipped_by_reason(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for s in &self.skipped {
            *m.entry(s.reason.to_string()).or_insert(0) += 1;
        }
        m
    }
}

/// Per-entry facts from pass 1.
struct MediaEntry {
    loc: EntryLocator,
    size: u64,
    kind: MediaKind,
    exif: Option<ExifTime>,
}

struct SidecarEntry {
    loc: EntryLocator,
    sidecar: Sidecar,
}

/// The catalog of one export: records, albums and the report. Build it with
/// [`Catalog::build`], then call [`Catalog::stream_media`].
#[derive(Debug)]
pub struct Catalog {
    export: Export,
    options: ImportOptions,
    records: Vec<MediaRecord>,
    albums: BTreeMap<AlbumKey, Album>,
    index: HashMap<EntryLocator, usize>,
    report: ImportReport,
}

const TRASH_FOLDERS: &[&str] = &[
    "Trash",
    "Bin",
    "Papierkorb",
    "Corbeille",
    "Papelera",
    "Cestino",
    "Lixeira",
    "Prullenbak",
    "Kosz",
    "Корзина",
    "ゴミ箱",
    "回收站",
];
const ARCHIVE_FOLDERS: &[&str] = &[
    "Archive", "Archiv", "Archives", "Archivio", "Archivo", "Archiwum", "Arquivo",
];

fn read_head(r: &mut dyn Read, max: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(max.min(8192));
    r.take(max as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

impl Catalog {
    /// Pass 1: reads every part once (names, JSON, the first [`HEAD_BYTES`] of media) and
    /// resolves pairing, albums and metadata. Never fails as a whole: a broken part is
    /// recorded in the report and the other parts still count.
    pub fn build(export: &Export, options: &ImportOptions) -> Catalog {
        let mut report = ImportReport {
            export: Some(export.id.clone()),
            missing_parts: export.missing.clone(),
            ..Default::default()
        };
        let mut seen: HashMap<EntryPath, PartNumber> = HashMap::new();
        let mut media: Vec<MediaEntry> = Vec::new();
        let mut sidecars: Vec<SidecarEntry> = Vec::new();
        let mut album_meta: BTreeMap<String, (String, AlbumMeta)> = BTreeMap::new();
        let limits = &options.limits;

        for part in &export.parts {
            let mut skipped = Vec::new();
            let pn = part.number;
            let mut visit = |e: &RawEntry, r: &mut EntryReader<'_>| -> Result<(), VisitError> {
                let skip_as = |reason| SkippedEntry {
                    part: pn,
                    name: e.path.to_string(),
                    reason,
                };
                if let Some(&kept_in) = seen.get(&e.path) {
                    report
                        .skipped
                        .push(skip_as(SkipReason::DuplicatePath { kept_in }));
                    return Ok(());
                }
                seen.insert(e.path.clone(), pn);
                if e.path.components().any(is_junk_name) {
                    report.junk += 1;
                    return Ok(());
                }
                let name = e.path.file_name();
                let ext = split_ext(name).1.map(str::to_ascii_lowercase);
                let loc = EntryLocator {
                    part: pn,
                    path: e.path.clone(),
                };
                if ext.as_deref() == Some("json") {
                    if e.declared_size > limits.max_json_bytes {
                        let v = crate::archive::LimitViolation::EntryTooLarge {
                            size: e.declared_size,
                        };
                        report.skipped.push(skip_as(SkipReason::Limit(v)));
                        return Ok(());
                    }
                    let bytes = read_head(
                        r,
                        usize::try_from(limits.max_json_bytes).unwrap_or(usize::MAX),
                    )?;
                    match classify_json(&bytes) {
                        Ok(JsonKind::Sidecar(sc)) => {
                            sidecars.push(SidecarEntry { loc, sidecar: *sc })
                        }
                        Ok(JsonKind::Album(a)) => {
                            let folder = e.path.parent().to_string();
                            // Several album JSONs in one folder: keep the first by name.
                            let entry = album_meta
                                .entry(folder)
                                .or_insert_with(|| (name.to_string(), a.clone()));
                            if name < entry.0.as_str() {
                                *entry = (name.to_string(), a);
                            }
                        }
                        Ok(JsonKind::Other) => report.skipped.push(skip_as(SkipReason::OtherJson)),
                        Err(p) => report.skipped.push(skip_as(SkipReason::InvalidJson(p.0))),
                    }
                    return Ok(());
                }
                if ext.as_deref().is_some_and(|x| NOT_MEDIA_EXTS.contains(&x)) {
                    report.skipped.push(skip_as(SkipReason::NotMedia));
                    return Ok(());
                }
                let by_ext = ext.as_deref().and_then(kind_from_extension);
                let head = read_head(r, HEAD_BYTES)?;
                let sniffed = sniff(&head);
                let kind = match (by_ext, sniffed) {
                    (Some(k), _) => k,
                    (None, Some(Sniffed::Video)) => MediaKind::Video,
                    (None, Some(_)) => MediaKind::Photo,
                    (None, None) => {
                        report.skipped.push(skip_as(SkipReason::NotMedia));
                        return Ok(());
                    }
                };
                let folder_name = e.path.parent().rsplit('/').next().unwrap_or("");
                if folder_name == "Failed Videos" {
                    report.skipped.push(skip_as(SkipReason::FailedVideo));
                    return Ok(());
                }
                let exif = (sniffed == Some(Sniffed::Jpeg))
                    .then(|| exif_datetime(&head))
                    .flatten();
                media.push(MediaEntry {
                    loc,
                    size: e.declared_size,
                    kind,
                    exif,
                });
                Ok(())
            };
            let res = walk_part(part, limits, &mut skipped, &mut visit);
            for s in skipped {
                report.skipped.push(s);
            }
            if let Err(e) = res {
                tracing::warn!(part = %pn, error = %e, "part could not be read completely");
                report.part_errors.push(PartError {
                    part: pn,
                    message: e.to_string(),
                });
            }
        }
        report.junk += report
            .skipped
            .iter()
            .filter(|s| s.reason == SkipReason::Junk)
            .count();
        report.skipped.retain(|s| s.reason != SkipReason::Junk);

        let mut catalog = Catalog {
            export: export.clone(),
            options: options.clone(),
            records: Vec::new(),
            albums: BTreeMap::new(),
            index: HashMap::new(),
            report,
        };
        catalog.resolve(media, sidecars, album_meta);
        catalog
    }

    fn resolve(
        &mut self,
        media: Vec<MediaEntry>,
        sidecars: Vec<SidecarEntry>,
        album_meta: BTreeMap<String, (String, AlbumMeta)>,
    ) {
        for (folder, (_, meta)) in album_meta {
            let folder_name = folder.rsplit('/').next().unwrap_or("").to_string();
            let untitled = meta.title.trim().is_empty();
            let key = AlbumKey(folder.clone());
            let album = Album {
                key: key.clone(),
                title: if untitled {
                    folder_name.clone()
                } else {
                    meta.title
                },
                untitled,
                folder_name,
                description: meta.description,
                location: meta.location,
            };
            self.albums.insert(key, album);
        }
        self.report.albums = self.albums.len();

        let mut folders: BTreeMap<String, (Vec<usize>, Vec<usize>)> = BTreeMap::new();
        for (i, m) in media.iter().enumerate() {
            folders
                .entry(m.loc.path.parent().to_string())
                .or_default()
                .0
                .push(i);
        }
        for (i, s) in sidecars.iter().enumerate() {
            folders
                .entry(s.loc.path.parent().to_string())
                .or_default()
                .1
                .push(i);
        }
        let incomplete = self.export.is_incomplete();
        let mut records = Vec::new();
        for (folder, (mi, si)) in folders {
            let fm: Vec<FolderMedia> = mi
                .iter()
                .map(|&i| FolderMedia {
                    name: media[i].loc.path.file_name().to_string(),
                    is_video: media[i].kind == MediaKind::Video,
                })
                .collect();
            let fs: Vec<FolderSidecar> = si
                .iter()
                .map(|&i| FolderSidecar {
                    name: sidecars[i].loc.path.file_name().to_string(),
                    title: sidecars[i].sidecar.title.clone(),
                })
                .collect();
            let pairing = pair_folder(&fm, &fs);
            for &o in &pairing.orphan_sidecars {
                self.report
                    .orphan_sidecars
                    .push(sidecars[si[o]].loc.clone());
            }
            let folder_name = folder.rsplit('/').next().unwrap_or("").to_string();
            let album_key = AlbumKey(folder.clone());
            let album = self.albums.contains_key(&album_key).then_some(album_key);
            let in_trash = TRASH_FOLDERS.contains(&folder_name.as_str());
            let in_archive = ARCHIVE_FOLDERS.contains(&folder_name.as_str());
            let folder_date = if album.is_none() {
                date_from_folder_name(&folder_name)
            } else {
                None
            };

            let mut folder_records: Vec<MediaRecord> = Vec::with_capacity(mi.len());
            for (k, p) in pairing.media.iter().enumerate() {
                let m = &media[mi[k]];
                let sc = p.sidecar.map(|s| &sidecars[si[s]]);
                let mut flags = BTreeSet::new();
                let file_name = m.loc.path.file_name().to_string();
                if sc.is_none() {
                    flags.insert(RecordFlag::NoSidecar);
                    if incomplete {
                        flags.insert(RecordFlag::SidecarMayBeInMissingPart);
                    }
                }
                let mut pair_conf = Confidence::High;
                if p.method == Some(PairMethod::PrefixHeuristic) {
                    flags.insert(RecordFlag::PrefixHeuristic);
                    pair_conf = Confidence::Low;
                } else if sc.is_some() && !p.title_confirmed {
                    flags.insert(RecordFlag::TitleMismatch);
                    pair_conf = Confidence::Medium;
                }
                if p.is_edited {
                    flags.insert(RecordFlag::EditedCopy);
                }
                let s = sc.map(|x| &x.sidecar);
                let original_name =
                    original_name(&file_name, s.and_then(|s| s.title.as_deref()), p.method);
                let (position, google_position) = match s {
                    Some(s) => match (s.geo_data_exif, s.geo_data) {
                        (Some(e), g) => (Some(e), g.filter(|g| *g != e)),
                        (None, g) => (g, None),
                    },
                    None => (None, None),
                };
                let trashed = s.is_some_and(|s| s.trashed) || in_trash;
                if in_trash && !s.is_some_and(|s| s.trashed) {
                    flags.insert(RecordFlag::TrashedByFolder);
                }
                let archived = s.is_some_and(|s| s.archived) || in_archive;
                if in_archive && !s.is_some_and(|s| s.archived) {
                    flags.insert(RecordFlag::ArchivedByFolder);
                }
                if s.is_some_and(|s| s.from_partner_sharing) {
                    flags.insert(RecordFlag::PartnerShared);
                }
                let taken = resolve_date(s, m.exif, &file_name, folder_date, &mut flags);
                folder_records.push(MediaRecord {
                    locator: m.loc.clone(),
                    size: m.size,
                    folder: folder.clone(),
                    file_name,
                    original_name,
                    kind: m.kind,
                    sidecar: sc.map(|x| x.loc.clone()),
                    pair_method: p.method,
                    taken,
                    exif_time: m.exif,
                    position,
                    google_position,
                    description: s.and_then(|s| s.description.clone()),
                    favorited: s.is_some_and(|s| s.favorited),
                    archived,
                    trashed,
                    people: s.map(|s| s.people.clone()).unwrap_or_default(),
                    url: s.and_then(|s| s.url.clone()),
                    album: album.clone(),
                    edited_of: p.edited_of.map(|o| media[mi[o]].loc.clone()),
                    motion: p.motion_partner.map(|o| {
                        let role = if m.kind == MediaKind::Video {
                            MotionRole::Video
                        } else {
                            MotionRole::Still
                        };
                        (role, media[mi[o]].loc.clone())
                    }),
                    confidence: pair_conf,
                    flags,
                });
            }
            // A motion video without its own date takes its still's date.
            for k in 0..folder_records.len() {
                if let Some((MotionRole::Video, _)) = folder_records[k].motion
                    && let Some(still) = pairing.media[k].motion_partner
                {
                    let better =
                        |d: Option<CaptureDate>| d.map(|d| d.confidence).unwrap_or(Confidence::Low);
                    if folder_records[k].taken.is_none()
                        || better(folder_records[still].taken) < better(folder_records[k].taken)
                    {
                        folder_records[k].taken = folder_records[still].taken;
                    }
                }
            }
            for mut r in folder_records {
                let date_conf = r.taken.map(|d| d.confidence).unwrap_or(Confidence::Low);
                r.confidence = r.confidence.max(date_conf);
                if r.taken.is_some() {
                    r.flags.remove(&RecordFlag::NoDate);
                }
                records.push(r);
            }
        }

        self.report.media = records.len();
        for r in &records {
            match r.pair_method {
                Some(m) => {
                    self.report.paired += 1;
                    *self.report.paired_by_method.entry(m).or_insert(0) += 1;
                }
                None => self.report.media_without_sidecar += 1,
            }
        }
        records.sort_by(|a, b| a.locator.cmp(&b.locator));
        for r in records {
            if r.trashed && !self.options.include_trashed {
                self.report.skipped.push(SkippedEntry {
                    part: r.locator.part,
                    name: r.locator.path.to_string(),
                    reason: SkipReason::Trashed,
                });
                continue;
            }
            self.index.insert(r.locator.clone(), self.records.len());
            self.records.push(r);
        }
    }

    /// The export this catalog describes.
    pub fn export(&self) -> &Export {
        &self.export
    }

    /// All media records that will be streamed, sorted by (part, path).
    pub fn records(&self) -> &[MediaRecord] {
        &self.records
    }

    /// The record of one entry.
    pub fn record(&self, loc: &EntryLocator) -> Option<&MediaRecord> {
        self.index.get(loc).map(|&i| &self.records[i])
    }

    /// Albums by key.
    pub fn albums(&self) -> &BTreeMap<AlbumKey, Album> {
        &self.albums
    }

    /// The catalog report.
    pub fn report(&self) -> &ImportReport {
        &self.report
    }

    /// Pass 2: walks the parts once each, in order, and calls `consume` with every media
    /// record and a reader over its bytes. Memory stays bounded: bytes are never
    /// buffered here. A limit broken while the consumer reads skips that entry (the
    /// consumer's error for it is ignored and listed in [`StreamReport::skipped`]); any
    /// other consumer error stops the walk and is returned.
    ///
    /// Read each entry to EOF (e.g. `std::io::copy`): the declared size and the zip CRC
    /// are verified only when the end is reached. A consumer may also skip an entry by
    /// returning without reading. For tgz parts this pass decompresses the whole stream a
    /// second time; that is the price of not buffering media while sidecars that follow
    /// them are still unknown.
    pub fn stream_media<F, E>(&self, mut consume: F) -> Result<StreamReport, StreamError<E>>
    where
        F: FnMut(&MediaRecord, &mut dyn Read) -> Result<(), E>,
    {
        let mut report = StreamReport::default();
        let mut delivered = vec![false; self.records.len()];
        let mut consumer_error: Option<E> = None;
        for part in &self.export.parts {
            let pn = part.number;
            let mut skipped = Vec::new();
            let mut visit = |e: &RawEntry, r: &mut EntryReader<'_>| -> Result<(), VisitError> {
                let loc = EntryLocator {
                    part: pn,
                    path: e.path.clone(),
                };
                let Some(&i) = self.index.get(&loc) else {
                    return Ok(());
                };
                if delivered[i] {
                    return Ok(());
                }
                match consume(&self.records[i], r) {
                    Ok(()) if !r.failed() => {
                        delivered[i] = true;
                        Ok(())
                    }
                    // The walker records the entry as skipped (or the tgz part as broken).
                    Ok(()) => Ok(()),
                    Err(_) if r.failed() => Ok(()),
                    Err(err) => {
                        consumer_error = Some(err);
                        Err(VisitError::Stop)
                    }
                }
            };
            let res = walk_part(part, &self.options.limits, &mut skipped, &mut visit);
            report.skipped.extend(skipped);
            if let Some(err) = consumer_error.take() {
                return Err(StreamError::Consumer(err));
            }
            if let Err(e) = res {
                report.part_errors.push(PartError {
                    part: pn,
                    message: e.to_string(),
                });
            }
        }
        for (i, d) in delivered.iter().enumerate() {
            if *d {
                report.delivered += 1;
            } else {
                report.undelivered.push(self.records[i].locator.clone());
            }
        }
        Ok(report)
    }
}

/// Outcome of [`Catalog::stream_media`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamReport {
    /// Records handed to the consumer and consumed without a limit violation.
    pub delivered: usize,
    /// Records that were not (part broke, limit broken, part changed).
    pub undelivered: Vec<EntryLocator>,
    /// Entries skipped during the pass.
    pub skipped: Vec<SkippedEntry>,
    /// Parts that failed during the pass.
    pub part_errors: Vec<PartError>,
}

/// Error from [`Catalog::stream_media`].
#[derive(Debug)]
pub enum StreamError<E> {
    /// The consumer failed; the walk stopped.
    Consumer(E),
}

impl<E: fmt::Display> fmt::Display for StreamError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Consumer(e) => write!(f, "consumer failed: {e}"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for StreamError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Consumer(e) => Some(e),
        }
    }
}

fn original_name(file_name: &str, title: Option<&str>, method: Option<PairMethod>) -> String {
    let Some(title) = title else {
        return file_name.to_string();
    };
    let direct = matches!(
        method,
        Some(
            PairMethod::Exact
                | PairMethod::Truncated
                | PairMethod::ExtensionDropped
                | PairMethod::LooseSupplemental
        )
    );
    let (stem, ext) = split_ext(file_name);
    if !direct || split_index(stem).1.is_some() || !title_confirms(file_name, title) {
        return file_name.to_string();
    }
    let mut t = title_to_file_name(title);
    match (split_ext(&t).1, ext) {
        (None, Some(e)) => t = format!("{t}.{e}"),
        (Some(te), Some(e)) if !te.eq_ignore_ascii_case(e) => t = format!("{t}.{e}"),
        _ => {}
    }
    t
}

fn resolve_date(
    s: Option<&Sidecar>,
    exif: Option<ExifTime>,
    file_name: &str,
    folder_date: Option<CaptureTime>,
    flags: &mut BTreeSet<RecordFlag>,
) -> Option<CaptureDate> {
    // §4.5/§4.6 order: sidecar instant, EXIF, file name, folder, upload time.
    if let Some(t) = s.and_then(|s| s.taken_time).and_then(instant_from_epoch) {
        return Some(CaptureDate {
            time: CaptureTime::Instant(t),
            source: DateSource::SidecarTaken,
            confidence: Confidence::High,
        });
    }
    if let Some(e) = exif {
        return Some(CaptureDate {
            time: e.to_capture_time(),
            source: DateSource::Exif,
            confidence: Confidence::High,
        });
    }
    if let Some(t) = date_from_file_name(file_name) {
        return Some(CaptureDate {
            time: t,
            source: DateSource::FileName,
            confidence: Confidence::Medium,
        });
    }
    if let Some(t) = folder_date {
        flags.insert(RecordFlag::DateFromFolder);
        return Some(CaptureDate {
            time: t,
            source: DateSource::Folder,
            confidence: Confidence::Low,
        });
    }
    if let Some(t) = s.and_then(|s| s.creation_time).and_then(instant_from_epoch) {
        flags.insert(RecordFlag::DateFromUploadTime);
        return Some(CaptureDate {
            time: CaptureTime::Instant(t),
            source: DateSource::SidecarCreation,
            confidence: Confidence::Low,
        });
    }
    flags.insert(RecordFlag::NoDate);
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_can_move_to_a_blocking_thread() {
        // The async engine runs this crate under spawn_blocking and shares records.
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Catalog>();
        send_sync::<MediaRecord>();
        send_sync::<ImportReport>();
        send_sync::<crate::TakeoutError>();
    }

    #[test]
    fn original_name_rules() {
        // §8 case 22: truncated archive name → full title.
        let m = "PXL_20230809_203449253.LONG_EXPOSURE-02.ORIGINA.jpg";
        let t = "PXL_20230809_203449253.LONG_EXPOSURE-02.ORIGINAL.jpg";
        assert_eq!(original_name(m, Some(t), Some(PairMethod::Truncated)), t);
        // §8 case 52: no separators ever; extension from the file.
        assert_eq!(
            original_name(
                "27_06_12 - 1.mov",
                Some("27/06/12 - 1"),
                Some(PairMethod::Exact)
            ),
            "27_06_12 - 1.mov"
        );
        // An unrelated title (gpth #395) never renames the file.
        assert_eq!(
            original_name(
                "IMG-WA0026.jpg",
                Some("816226709_8639.jpg"),
                Some(PairMethod::Exact)
            ),
            "IMG-WA0026.jpg"
        );
        // Indexed copies keep their distinct archive name.
        assert_eq!(
            original_name(
                "IMG_1005(1).JPG",
                Some("IMG_1005.JPG"),
                Some(PairMethod::IndexMoved)
            ),
            "IMG_1005(1).JPG"
        );
    }
}
