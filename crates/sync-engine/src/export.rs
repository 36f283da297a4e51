//! Export: places the library's files into another tree (a NAS share with its own naming
//! scheme) by copy, hard link, symlink or reflink, incrementally.
//!
//! A manifest in the index (tree `exports`, keys `<target name> \0 <media id> \0 <album id>`)
//! records every file the export placed: its relative path, size, mtime and inode. From it:
//!
//! * a file already placed and untouched (same inode, size and mtime) is left alone, so
//!   snapshot tools see no churn (same inode, unchanged ctime);
//! * a template change renames the placed file instead of copying it again;
//! * a file at a wanted path that the manifest does not know is *foreign* and is never
//!   overwritten: the item is placed under a suffixed name (`stem_<8 hex of blake3(id)>.ext`);
//!   several items wanting one path are resolved the same way, in a fixed order, and an item
//!   keeps the name it already has;
//! * `prune` removes only files the manifest lists, that are still as placed, and that the
//!   export no longer wants (a file the user edited after export is forgotten, never deleted).
//!
//! Crash safety: new placements are first recorded as *pending* and the index flushed; a
//! pending entry whose file exists on the next run is adopted only if the file is the item's
//! (same inode for hard links, same link target for symlinks, same blake3 for copies). File
//! data reaches the disk with one `syncfs` of the target at the end rather than an fsync per
//! file (a crash before it at worst leaves a pending entry whose file fails that check and is
//! replaced).
//!
//! Hard links need the target on the library's filesystem: a hardlink target elsewhere is an
//! [`Error::Config`] naming both (no silent fallback to copies, which would double the space
//! used). Reflinks (`FICLONE`) fall back to a verified copy where the filesystem cannot clone.
//!
//! A missing target root (an unmounted NAS share) is reported in [`ExportReport::skipped`] and
//! nothing is created: the root itself is never created, only folders below it.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::engine::Engine;
use crate::error::Error;
use crate::fsops;
use crate::index::{ItemRecord, ItemState};
use crate::naming;
use crate::store::Tree;
use crate::template::{Fields, Template};
use crate::types::{AlbumId, MediaId, SourceKind};

/// How a placed file refers to the library's file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportMode {
    /// An independent copy, verified with blake3, mtime = capture time.
    #[default]
    Copy,
    /// A hard link (same filesystem only).
    Hardlink,
    /// An absolute symlink to the library file.
    Symlink,
    /// A copy-on-write clone (`FICLONE`: btrfs, XFS, bcachefs…), else a verified copy.
    Reflink,
}

impl ExportMode {
    fn code(self) -> char {
        match self {
            ExportMode::Copy => 'c',
            ExportMode::Hardlink => 'h',
            ExportMode::Symlink => 's',
            ExportMode::Reflink => 'r',
        }
    }
}

/// Which kinds of media an export takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaFilter {
    /// Photos only (everything whose MIME type is not `video/*`).
    Photo,
    /// Videos only.
    Video,
    /// Everything.
    #[default]
    All,
}

/// Which items an export takes. The default takes everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportFilter {
    /// Album titles; non-empty: only items in one of them (and with `{album}`, only those
    /// albums' folders).
    pub albums: Vec<String>,
    /// Photos, videos or both.
    pub media: MediaFilter,
    /// Only favourites.
    pub favorites_only: bool,
    /// Captured on or after this date (in the engine's folder time zone); undated items are
    /// excluded when set.
    pub since: Option<NaiveDate>,
    /// Captured on or before this date (inclusive).
    pub until: Option<NaiveDate>,
    /// Non-empty: only items from these sources.
    pub sources: Vec<SourceKind>,
}

/// One export target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportTarget {
    /// Names the target's manifest; renaming it starts a fresh manifest.
    pub name: String,
    /// The target root. Must exist: it is never created.
    pub path: PathBuf,
    /// Where each item goes, relative to `path`.
    pub template: Template,
    /// Copy, link or clone.
    pub mode: ExportMode,
    /// Which items.
    pub filter: ExportFilter,
    /// Remove files this export placed and no longer wants.
    pub prune: bool,
}

impl ExportTarget {
    /// A target with default mode (copy), no filter and no pruning.
    pub fn new(name: impl Into<String>, path: impl Into<PathBuf>, template: Template) -> Self {
        ExportTarget {
            name: name.into(),
            path: path.into(),
            template,
            mode: ExportMode::default(),
            filter: ExportFilter::default(),
            prune: false,
        }
    }
}

/// What one export run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExportReport {
    /// Target name.
    pub target: String,
    /// Set when the target was skipped (root missing); nothing was touched then.
    pub skipped: Option<String>,
    /// Placements the template and filters asked for.
    pub wanted: u64,
    /// Files written or linked this run.
    pub placed: u64,
    /// Files moved to a new name (template change).
    pub renamed: u64,
    /// Files already in place, not touched.
    pub unchanged: u64,
    /// Files removed by `prune`.
    pub pruned: u64,
    /// Wanted paths held by a file the export did not place (kept; item got a suffixed name).
    pub foreign_kept: u64,
    /// Reflinks that fell back to a copy.
    pub reflink_fallbacks: u64,
    /// Bytes copied (copy and reflink-fallback modes).
    pub bytes_copied: u64,
    /// Items that could not be placed (first 50).
    pub errors: Vec<String>,
    /// Count of failed items.
    pub failed: u64,
    /// The export was interrupted by its cancellation token.
    pub cancelled: bool,
}

impl ExportReport {
    fn fail(&mut self, msg: String) {
        tracing::warn!(target_name = %self.target, "{msg}");
        self.failed += 1;
        if self.errors.len() < 50 {
            self.errors.push(msg);
        }
    }
}

/// One manifest record: what the export placed for one (item, album) pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Placed {
    #[serde(rename = "p")]
    rel: String,
    #[serde(rename = "s")]
    size: u64,
    #[serde(rename = "m")]
    mtime: (i64, i64),
    #[serde(rename = "i")]
    ino: u64,
    /// blake3 of the library file it came from.
    #[serde(rename = "h", default, skip_serializing_if = "Option::is_none")]
    blake3: Option<String>,
    #[serde(rename = "k")]
    mode: char,
    /// Recorded before the file was placed; confirmed by the next stat.
    #[serde(rename = "w", default, skip_serializing_if = "std::ops::Not::not")]
    pending: bool,
}

/// (media id, album id or "").
type Key = (String, String);

fn manifest_key(target: &str, k: &Key) -> Vec<u8> {
    let mut v = Vec::with_capacity(target.len() + k.0.len() + k.1.len() + 2);
    v.extend_from_slice(target.as_bytes());
    v.push(0);
    v.extend_from_slice(k.0.as_bytes());
    v.push(0);
    v.extend_from_slice(k.1.as_bytes());
    v
}

fn corrupt(detail: impl ToString) -> Error {
    Error::Corrupt {
        tree: "exports",
        detail: detail.to_string(),
    }
}

/// One placement the export wants.
struct Want {
    key: Key,
    rel: String,
    lib_rel: String,
    size: Option<u64>,
    blake3: Option<String>,
    taken_ms: Option<i64>,
}

/// The stat fields the manifest compares.
fn stat_of(m: &std::fs::Metadata) -> (u64, (i64, i64), u64) {
    (m.len(), (m.mtime(), m.mtime_nsec()), m.ino())
}

impl Placed {
    /// Whether the file at `root/rel` is still exactly what the export placed.
    fn intact(&self, root: &Path) -> bool {
        match std::fs::symlink_metadata(root.join(&self.rel)) {
            Ok(m) => stat_of(&m) == (self.size, self.mtime, self.ino),
            Err(_) => false,
        }
    }
}

impl Engine {
    /// Exports the library into `target` (see the module docs of `export`): places what the
    /// template and filters want, renames what moved, prunes (if asked) what is no longer
    /// wanted, and records it all in the index.
    ///
    /// A missing target root is not an error: the report's `skipped` says why and nothing is
    /// created. Errors are for problems with the whole target (index failure, a hardlink target
    /// on another filesystem, a full disk); single items that fail are counted in the report.
    /// When `cancel` fires, the export stops between files, makes what it did durable and
    /// returns with [`ExportReport::cancelled`] set; the next export carries on.
    pub fn export(
        &self,
        target: &ExportTarget,
        cancel: &CancellationToken,
    ) -> Result<ExportReport, Error> {
        let mut report = ExportReport {
            target: target.name.clone(),
            ..ExportReport::default()
        };
        let root = &target.path;
        let root_meta = match std::fs::metadata(root) {
            Ok(m) if m.is_dir() => m,
            Ok(_) => {
                let why = format!(
                    "export target `{}`: {} is not a directory; skipped",
                    target.name,
                    root.display()
                );
                tracing::warn!("{why}");
                report.skipped = Some(why);
                return Ok(report);
            }
            Err(e) => {
                let why = format!(
                    "export target `{}`: {} is not available ({e}); is the share mounted? \
                     Skipped; nothing was created",
                    target.name,
                    root.display()
                );
                tracing::warn!("{why}");
                report.skipped = Some(why);
                return Ok(report);
            }
        };
        let library = self.config().library_dir.clone();
        if target.mode == ExportMode::Hardlink {
            let lib_dev = std::fs::metadata(&library)
                .map_err(|e| Error::io("stat", &library, e))?
                .dev();
            if lib_dev != root_meta.dev() {
                return Err(Error::Config(format!(
                    "export `{}`: mode = \"hardlink\" needs {} on the same filesystem as the \
                     library {}; use mode = \"copy\" or \"reflink\" for another filesystem",
                    target.name,
                    root.display(),
                    library.display()
                )));
            }
        }

        let store = self.index().store();
        let prefix = {
            let mut p = target.name.as_bytes().to_vec();
            p.push(0);
            p
        };

        // The manifest, and who holds which path.
        let mut manifest: HashMap<Key, Placed> = HashMap::new();
        for r in store.scan(Tree::Exports, &prefix) {
            let (k, v) = r?;
            let rest = &k[prefix.len()..];
            let mut parts = rest.splitn(2, |b| *b == 0);
            let id = parts.next().unwrap_or_default();
            let album = parts.next().unwrap_or_default();
            let key = (
                String::from_utf8(id.to_vec()).map_err(corrupt)?,
                String::from_utf8(album.to_vec()).map_err(corrupt)?,
            );
            let placed: Placed = serde_json::from_slice(&v).map_err(corrupt)?;
            manifest.insert(key, placed);
        }

        let wants = self.wanted(target)?;
        report.wanted = wants.len() as u64;
        let want_map: HashMap<&Key, &Want> = wants.iter().map(|w| (&w.key, w)).collect();

        // Settle pending entries left by an interrupted run.
        let pending: Vec<Key> = manifest
            .iter()
            .filter(|(_, p)| p.pending)
            .map(|(k, _)| k.clone())
            .collect();
        for key in pending {
            let Some(p) = manifest.get(&key).cloned() else {
                continue;
            };
            let adopted = want_map.get(&key).and_then(|w| {
                let path = root.join(&p.rel);
                let meta = std::fs::symlink_metadata(&path).ok()?;
                is_item_file(&path, &meta, &library.join(&w.lib_rel), w, p.mode).then_some(meta)
            });
            match adopted {
                Some(meta) => {
                    let (size, mtime, ino) = stat_of(&meta);
                    let fixed = Placed {
                        size,
                        mtime,
                        ino,
                        pending: false,
                        ..p
                    };
                    store.put(
                        Tree::Exports,
                        &manifest_key(&target.name, &key),
                        &serde_json::to_vec(&fixed).map_err(corrupt)?,
                    )?;
                    manifest.insert(key, fixed);
                }
                None => {
                    store.remove(Tree::Exports, &manifest_key(&target.name, &key))?;
                    manifest.remove(&key);
                }
            }
        }

        // Entries whose file was changed or removed by someone else are forgotten: the file
        // (if any) is foreign from now on.
        let mut intact: HashSet<Key> = HashSet::new();
        let mut forget = Vec::new();
        for (k, p) in &manifest {
            if p.intact(root) {
                intact.insert(k.clone());
            } else {
                forget.push(k.clone());
            }
        }
        for k in forget {
            store.remove(Tree::Exports, &manifest_key(&target.name, &k))?;
            manifest.remove(&k);
        }
        let mut owner: HashMap<String, Key> = manifest
            .iter()
            .map(|(k, p)| (p.rel.clone(), k.clone()))
            .collect();

        // Assign final paths: first every item that may keep the name it has, then the rest
        // in (path, id) order, so the result never depends on listing order.
        let mut assigned: HashMap<usize, String> = HashMap::new();
        let mut taken: HashSet<String> = HashSet::new();
        for (i, w) in wants.iter().enumerate() {
            if let Some(p) = manifest.get(&w.key)
                && candidates(&w.rel, &w.key).any(|c| c == p.rel)
                && p.mode == target.mode.code()
            {
                taken.insert(p.rel.clone());
                assigned.insert(i, p.rel.clone());
            }
        }
        let mut order: Vec<usize> = (0..wants.len())
            .filter(|i| !assigned.contains_key(i))
            .collect();
        order.sort_by(|a, b| {
            (&wants[*a].rel, &wants[*a].key).cmp(&(&wants[*b].rel, &wants[*b].key))
        });
        for i in order {
            let w = &wants[i];
            let mut foreign = false;
            let mut chosen = None;
            for c in candidates(&w.rel, &w.key) {
                if taken.contains(&c) {
                    continue;
                }
                match owner.get(&c) {
                    Some(k) if *k == w.key => {}
                    Some(_) => continue,
                    None => {
                        if std::fs::symlink_metadata(root.join(&c)).is_ok() {
                            foreign = true;
                            continue;
                        }
                    }
                }
                chosen = Some(c);
                break;
            }
            if foreign {
                report.foreign_kept += 1;
            }
            match chosen {
                Some(c) => {
                    taken.insert(c.clone());
                    assigned.insert(i, c);
                }
                None => report.fail(format!(
                    "{}: every candidate name at {} is taken",
                    w.key.0, w.rel
                )),
            }
        }

        // Record intents for new placements before touching the target.
        let mut new_items = Vec::new();
        for (i, w) in wants.iter().enumerate() {
            let Some(rel) = assigned.get(&i) else {
                continue;
            };
            if manifest.contains_key(&w.key) {
                continue;
            }
            let intent = Placed {
                rel: rel.clone(),
                size: 0,
                mtime: (0, 0),
                ino: 0,
                blake3: w.blake3.clone(),
                mode: target.mode.code(),
                pending: true,
            };
            store.put(
                Tree::Exports,
                &manifest_key(&target.name, &w.key),
                &serde_json::to_vec(&intent).map_err(corrupt)?,
            )?;
            new_items.push(i);
        }
        if !new_items.is_empty() {
            store.flush()?;
        }

        let mut dirs = DirCache::new(root);
        let mut placer = Placer {
            library: &library,
            root,
            mode: target.mode,
            report: &mut report,
            buf: Vec::new(),
        };

        // Prune first, so that the folders it empties can be reused or removed.
        if target.prune {
            let stale: Vec<Key> = manifest
                .keys()
                .filter(|k| !want_map.contains_key(k))
                .cloned()
                .collect();
            for k in stale {
                let Some(p) = manifest.remove(&k) else {
                    continue;
                };
                let path = root.join(&p.rel);
                match std::fs::remove_file(&path) {
                    Ok(()) => placer.report.pruned += 1,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io("remove", &path, e)),
                }
                owner.remove(&p.rel);
                store.remove(Tree::Exports, &manifest_key(&target.name, &k))?;
                dirs.remove_empty_parents(&path);
            }
        }

        for (i, w) in wants.iter().enumerate() {
            if cancel.is_cancelled() {
                placer.report.cancelled = true;
                break;
            }
            let Some(rel) = assigned.get(&i) else {
                continue;
            };
            let existing = manifest.get(&w.key).filter(|p| !p.pending);
            let dest = root.join(rel);
            let outcome = match existing {
                Some(p) if p.rel == *rel && p.mode == target.mode.code() => {
                    if p.blake3 == w.blake3 || w.blake3.is_none() {
                        placer.report.unchanged += 1;
                        continue;
                    }
                    // The library file changed (re-downloaded): replace our own file.
                    placer.place(w, &dest, &mut dirs, true)
                }
                Some(p) if p.mode == target.mode.code() => {
                    let from = root.join(&p.rel);
                    match dirs.ensure(&dest).and_then(|()| {
                        std::fs::rename(&from, &dest).map_err(|e| Error::io("rename", &from, e))
                    }) {
                        Ok(()) => {
                            placer.report.renamed += 1;
                            dirs.remove_empty_parents(&from);
                            Ok(None)
                        }
                        Err(e) => Err(e),
                    }
                }
                Some(p) => {
                    // The mode changed: place anew, then drop the old file (ours).
                    let old = root.join(&p.rel);
                    let r = placer.place(w, &dest, &mut dirs, old == dest);
                    if r.is_ok() && old != dest {
                        let _ = std::fs::remove_file(&old);
                        dirs.remove_empty_parents(&old);
                    }
                    r
                }
                None => placer.place(w, &dest, &mut dirs, false),
            };
            match outcome {
                Ok(known) => {
                    let meta = match known {
                        Some(meta) => meta,
                        None => std::fs::symlink_metadata(&dest)
                            .map_err(|e| Error::io("stat", &dest, e))?,
                    };
                    let (size, mtime, ino) = stat_of(&meta);
                    let rec = Placed {
                        rel: rel.clone(),
                        size,
                        mtime,
                        ino,
                        blake3: w.blake3.clone(),
                        mode: target.mode.code(),
                        pending: false,
                    };
                    store.put(
                        Tree::Exports,
                        &manifest_key(&target.name, &w.key),
                        &serde_json::to_vec(&rec).map_err(corrupt)?,
                    )?;
                }
                Err(e @ Error::DiskFull { .. }) => return Err(e),
                Err(e) => {
                    // Keep a pending intent only for brand-new placements; it is settled next run.
                    placer.report.fail(format!("{}: {e}", w.key.0));
                }
            }
        }
        let touched = report.placed + report.renamed + report.pruned;
        if touched > 0 {
            fsops::syncfs(root)?;
        }
        store.flush()?;
        tracing::info!(
            target_name = %target.name,
            placed = report.placed,
            renamed = report.renamed,
            unchanged = report.unchanged,
            pruned = report.pruned,
            foreign_kept = report.foreign_kept,
            failed = report.failed,
            "export finished"
        );
        Ok(report)
    }

    /// What `target` wants: one entry per (item, album) the template and filters select.
    fn wanted(&self, target: &ExportTarget) -> Result<Vec<Want>, Error> {
        let index = self.index();
        let tz = self.config().folder_timezone;
        let rules = match self.filesystem_rules() {
            naming::FilesystemRules::Auto => naming::FilesystemRules::Posix,
            r => r,
        };
        let mut titles: HashMap<AlbumId, String> = HashMap::new();
        for a in index.albums() {
            let (id, rec) = a?;
            titles.insert(id, rec.title);
        }
        let f = &target.filter;
        let per_album = target.template.uses_album();
        let mut out = Vec::new();
        for r in index.items() {
            let (id, rec) = r?;
            if rec.state != ItemState::Done || rec.path.is_empty() || !selected(f, &rec, tz) {
                continue;
            }
            let mut albums: Vec<(AlbumId, &str)> = Vec::new();
            if per_album || !f.albums.is_empty() {
                for a in index.item_albums(&id) {
                    let a = a?;
                    if let Some(t) = titles.get(&a)
                        && (f.albums.is_empty() || f.albums.iter().any(|x| x == t))
                    {
                        albums.push((a, t.as_str()));
                    }
                }
                if !f.albums.is_empty() && albums.is_empty() {
                    continue;
                }
            }
            let slots: Vec<(String, Option<&str>)> = if per_album && !albums.is_empty() {
                albums
                    .iter()
                    .map(|(a, t)| (a.as_str().to_string(), Some(*t)))
                    .collect()
            } else {
                vec![(String::new(), None)]
            };
            let taken = rec.taken_at().map(|t| t.with_timezone(&tz));
            for (slot, album) in slots {
                let fields = Fields {
                    taken,
                    filename: &rec.filename,
                    album,
                    camera_make: rec.camera_make.as_deref(),
                    camera_model: rec.camera_model.as_deref(),
                    source: rec.source.as_str(),
                    id: id.as_str(),
                };
                out.push(Want {
                    rel: target.template.render(&fields, rules),
                    key: (id.as_str().to_string(), slot),
                    lib_rel: rec.path.clone(),
                    size: rec.size,
                    blake3: rec.blake3.clone(),
                    taken_ms: rec.taken_ms,
                });
            }
        }
        Ok(out)
    }
}

fn selected(f: &ExportFilter, rec: &ItemRecord, tz: chrono_tz::Tz) -> bool {
    let video = rec.mime_type.starts_with("video/");
    match f.media {
        MediaFilter::Photo if video => return false,
        MediaFilter::Video if !video => return false,
        _ => {}
    }
    if f.favorites_only && !rec.favorite {
        return false;
    }
    if !f.sources.is_empty() && !f.sources.contains(&rec.source) {
        return false;
    }
    if f.since.is_some() || f.until.is_some() {
        let Some(day) = rec.taken_at().map(|t| t.with_timezone(&tz).date_naive()) else {
            return false;
        };
        if f.since.is_some_and(|s| day < s) || f.until.is_some_and(|u| day > u) {
            return false;
        }
    }
    true
}

/// The names an item may take for `rel`, in preference order: as rendered, then with a
/// suffix from blake3(media id [+ album id]) of growing length.
fn candidates<'a>(rel: &'a str, key: &'a Key) -> impl Iterator<Item = String> + 'a {
    let seed = if key.1.is_empty() {
        key.0.clone()
    } else {
        format!("{}\0{}", key.0, key.1)
    };
    let (dir, name) = match rel.rsplit_once('/') {
        Some((d, n)) => (Some(d), n),
        None => (None, rel),
    };
    std::iter::once(rel.to_string()).chain([8usize, 16, 32].into_iter().map(move |len| {
        let n = naming::suffixed_name(name, &seed, len);
        match dir {
            Some(d) => format!("{d}/{n}"),
            None => n,
        }
    }))
}

/// Whether `path` (found after a crash) is this item's file as `mode` would have placed it.
fn is_item_file(path: &Path, meta: &std::fs::Metadata, lib: &Path, w: &Want, mode: char) -> bool {
    match mode {
        'h' => std::fs::metadata(lib).is_ok_and(|l| l.ino() == meta.ino() && l.dev() == meta.dev()),
        's' => std::fs::read_link(path).is_ok_and(|t| t == lib),
        _ => {
            meta.is_file()
                && w.size.is_none_or(|s| s == meta.len())
                && match &w.blake3 {
                    Some(h) => fsops::hash_file(path).is_ok_and(|(_, got)| got == *h),
                    None => false,
                }
        }
    }
}

/// Creates folders below the target root (never the root), remembering what exists.
struct DirCache<'a> {
    root: &'a Path,
    known: HashSet<PathBuf>,
}

impl<'a> DirCache<'a> {
    fn new(root: &'a Path) -> Self {
        DirCache {
            root,
            known: HashSet::new(),
        }
    }

    fn ensure(&mut self, file: &Path) -> Result<(), Error> {
        let Some(dir) = file.parent() else {
            return Ok(());
        };
        if dir == self.root || self.known.contains(dir) {
            return Ok(());
        }
        if !dir.starts_with(self.root) {
            return Err(Error::Config(format!(
                "export path {} escapes the target",
                file.display()
            )));
        }
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
        self.known.insert(dir.to_path_buf());
        Ok(())
    }

    /// Removes folders emptied by a move or prune, up to (never including) the root.
    fn remove_empty_parents(&mut self, file: &Path) {
        let mut cur = file.parent();
        while let Some(d) = cur {
            if d == self.root || !d.starts_with(self.root) || std::fs::remove_dir(d).is_err() {
                break;
            }
            self.known.remove(d);
            cur = d.parent();
        }
    }
}

struct Placer<'a> {
    library: &'a Path,
    root: &'a Path,
    mode: ExportMode,
    report: &'a mut ExportReport,
    /// Copy buffer, allocated once per export (a fresh 256 KiB per file costs an mmap).
    buf: Vec<u8>,
}

impl Placer<'_> {
    /// Places `w` at `dest`. `replace`: `dest` is our own file and may be overwritten.
    fn place(
        &mut self,
        w: &Want,
        dest: &Path,
        dirs: &mut DirCache<'_>,
        replace: bool,
    ) -> Result<Option<std::fs::Metadata>, Error> {
        let src = self.library.join(&w.lib_rel);
        dirs.ensure(dest)?;
        let dir = dest.parent().unwrap_or(self.root);
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let meta = match self.mode {
            ExportMode::Hardlink | ExportMode::Symlink => {
                let link = |at: &Path| match self.mode {
                    ExportMode::Hardlink => std::fs::hard_link(&src, at),
                    _ => std::os::unix::fs::symlink(&src, at),
                };
                if replace {
                    let tmp = dir.join(fsops::temp_name(&name));
                    link(&tmp).map_err(|e| Error::io("link", &tmp, e))?;
                    std::fs::rename(&tmp, dest).map_err(|e| {
                        let _ = std::fs::remove_file(&tmp);
                        Error::io("rename", dest, e)
                    })?;
                } else {
                    // link(2)/symlink(2) never replace an existing file: a foreign file that
                    // appeared since planning makes this item fail, not disappear.
                    link(dest).map_err(|e| Error::io("link", dest, e))?;
                }
                None
            }
            ExportMode::Copy | ExportMode::Reflink => {
                let tmp = dir.join(fsops::temp_name(&name));
                let meta = match self.copy_verified(w, &src, &tmp) {
                    Ok(meta) => meta,
                    Err(e) => {
                        let _ = std::fs::remove_file(&tmp);
                        return Err(e);
                    }
                };
                if !replace && std::fs::symlink_metadata(dest).is_ok() {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(Error::io(
                        "place",
                        dest,
                        io::Error::new(
                            io::ErrorKind::AlreadyExists,
                            "a file appeared at this path during the export; it was kept",
                        ),
                    ));
                }
                std::fs::rename(&tmp, dest).map_err(|e| {
                    let _ = std::fs::remove_file(&tmp);
                    Error::io("rename", dest, e)
                })?;
                Some(meta)
            }
        };
        self.report.placed += 1;
        Ok(meta)
    }

    /// Writes `tmp` as a clone or copy of `src`, checks its blake3 against the index and
    /// gives it the capture time as mtime.
    fn copy_verified(
        &mut self,
        w: &Want,
        src: &Path,
        tmp: &Path,
    ) -> Result<std::fs::Metadata, Error> {
        let mut input = std::fs::File::open(src).map_err(|e| Error::io("open", src, e))?;
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(tmp)
            .map_err(|e| Error::io("create", tmp, e))?;
        let cloned = self.mode == ExportMode::Reflink && {
            let ok = reflink(&input, &out).is_ok();
            if !ok {
                self.report.reflink_fallbacks += 1;
            }
            ok
        };
        let (size, hash) = if cloned {
            // The clone shares the library's blocks; reading it back checks what the target
            // now holds.
            fsops::hash_file(tmp).map_err(|e| Error::io("read back", tmp, e))?
        } else {
            let mut h = blake3::Hasher::new();
            if self.buf.is_empty() {
                self.buf = vec![0u8; 256 * 1024];
            }
            let buf = &mut self.buf;
            let mut n = 0u64;
            loop {
                let k = input.read(buf).map_err(|e| Error::io("read", src, e))?;
                if k == 0 {
                    break;
                }
                h.update(&buf[..k]);
                out.write_all(&buf[..k])
                    .map_err(|e| Error::io("write", tmp, e))?;
                n += k as u64;
            }
            self.report.bytes_copied += n;
            (n, h.finalize().to_hex().to_string())
        };
        if let Some(expected) = &w.blake3
            && *expected != hash
        {
            return Err(Error::io(
                "verify",
                src,
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "blake3 {hash} differs from the index ({expected}); run `verify --deep`"
                    ),
                ),
            ));
        }
        if w.size.is_some_and(|s| s != size) {
            return Err(Error::io(
                "verify",
                src,
                io::Error::new(io::ErrorKind::InvalidData, "size differs from the index"),
            ));
        }
        let mtime = match w.taken_ms {
            Some(ms) => fsops::system_time_from_ms(ms),
            None => input
                .metadata()
                .and_then(|m| m.modified())
                .map_err(|e| Error::io("stat", src, e))?,
        };
        fsops::set_times(&out, mtime).map_err(|e| Error::io("set mtime", tmp, e))?;
        // Inode, size and mtime survive the rename: no second stat of the placed file.
        out.metadata().map_err(|e| Error::io("stat", tmp, e))
    }
}

/// `ioctl(FICLONE)`: makes `dst` share `src`'s blocks (btrfs, XFS with reflink, bcachefs).
#[allow(unsafe_code)]
fn reflink(src: &std::fs::File, dst: &std::fs::File) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // _IOW(0x94, 9, int) from linux/fs.h; not exported by every libc version.
        const FICLONE: libc::c_ulong = 0x4004_9409;
        // SAFETY: both descriptors are valid for the duration of the call; FICLONE reads the
        // source descriptor passed by value and modifies only the destination file.
        let rc = unsafe { libc::ioctl(dst.as_raw_fd(), FICLONE as _, src.as_raw_fd()) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (src, dst);
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }
}

/// The manifest's view of a target, for tests and status: media id → placed relative paths.
impl Engine {
    /// Relative paths the export `target` has placed, per media id (sorted).
    pub fn export_manifest(&self, target: &str) -> Result<Vec<(MediaId, String)>, Error> {
        let mut prefix = target.as_bytes().to_vec();
        prefix.push(0);
        let mut out = Vec::new();
        for r in self.index().store().scan(Tree::Exports, &prefix) {
            let (k, v) = r?;
            let rest = &k[prefix.len()..];
            let id = rest.split(|b| *b == 0).next().unwrap_or_default();
            let placed: Placed = serde_json::from_slice(&v).map_err(corrupt)?;
            out.push((
                MediaId(String::from_utf8(id.to_vec()).map_err(corrupt)?),
                placed.rel,
            ));
        }
        out.sort();
        Ok(out)
    }
}
