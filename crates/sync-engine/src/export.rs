//! Export: places the library's files into another tree (a NAS share with its own naming
//! scheme) by copy, hard link, symlink or reflink, incrementally.
//!
//! A manifest in the index (tree `exports`, keys under `<target name> \0`) records every
//! file the export placed, per (media id, album id): its relative path, size, mtime and
//! inode. From it:
//!
//! * a file already placed and untouched (same inode, size and mtime) is left alone, so
//!   snapshot tools see no churn (same inode, unchanged ctime);
//! * a template change renames the placed file instead of copying it again;
//! * a file at a wanted path that the manifest does not know is *foreign* and is never
//!   overwritten: the item is placed under a suffixed name (`stem_<8 hex of blake3(id)>.ext`);
//!   several items wanting one path are resolved the same way, in a fixed order, and an item
//!   keeps the name it already has. New names are created with calls that fail rather than
//!   replace (`link`, `linkat`, `renameat2(RENAME_NOREPLACE)`), so a file that appears during
//!   the export is kept too;
//! * `prune` removes only files the manifest lists, that are still as placed, and that the
//!   export no longer wants (a file the user edited after export is forgotten, never deleted).
//!
//! The manifest is a log of segments, one per [`CHUNK`] placements (see [`Manifest`]): sled
//! costs about as much per key written as `cp -al` spends on a whole file. New files are
//! placed by a few worker threads; renames stay on one.
//!
//! Crash safety: before the first file is touched, *journal* records (keys
//! `<target name> \0 \0 J <chunk number>`) listing every placement the run is about to make
//! are written and the index flushed. Journal records are removed only after the run's
//! single `syncfs` of the target, so after a crash every placement of the interrupted run is
//! checked: a file that is the item's (same inode for hard links, same link target for
//! symlinks, same blake3 for copies) is adopted, anything else is forgotten and, if present,
//! kept as foreign. So an interrupted export never leaves a file the manifest does not know
//! nor a record of a file that is not the item's, at the cost of two index flushes per run.
//!
//! Copies are written to an unnamed file (`O_TMPFILE`) that gets its name only once its
//! blake3 matched the index and its mtime was set, so a crash never leaves a half-written
//! file under any name; where the filesystem has no `O_TMPFILE` (NFS, SMB), a `.part-` temp
//! file and a non-replacing rename are used.
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

use crate::codec;
use crate::engine::Engine;
use crate::error::Error;
use crate::fsops;
use crate::index::{ItemRecord, ItemState};
use crate::naming;
use crate::store::{Batch, Entry, Store, Tree};
use crate::template::{Fields, Template};
use crate::types::{AlbumId, ContentHash, MediaId, SourceKind};

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

/// Threads placing new files. Placement waits on the filesystem far more than it computes
/// (metadata blocks read from disk, round trips to a network share), so more threads than
/// cores still overlap those waits. Measured on a 2-core VM, first hardlink export of 20,000
/// items: 1 thread 1.6-1.8x the time of `cp -al`, 2 threads 1.3-1.5x, 4 threads 1.25-1.3x.
const PLACE_WORKERS: usize = 4;

/// Placements per journal record and (at most) records per manifest segment: bounds the
/// size of one index value (a few hundred KiB) and of what is encoded at once.
const CHUNK: usize = 4096;

/// One manifest record: what the export placed for one (item, album) pair.
///
/// Postcard (see `crate::codec`): fields may only be appended. `mode` comes first so that an
/// encoded record starts with its length byte (1), never with `{`, which would read as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Placed {
    #[serde(rename = "k")]
    mode: char,
    #[serde(rename = "p")]
    rel: String,
    #[serde(rename = "s")]
    size: u64,
    #[serde(rename = "m")]
    mtime: (i64, i64),
    #[serde(rename = "i")]
    ino: u64,
    /// blake3 of the library file it came from.
    #[serde(rename = "h", default)]
    blake3: Option<ContentHash>,
    /// Set only by schema 1, which recorded every placement as pending before making it;
    /// such a record is settled like a journal entry.
    #[serde(rename = "w", default)]
    pending: bool,
}

impl Placed {
    fn new(rel: String, meta: &std::fs::Metadata, blake3: Option<ContentHash>, mode: char) -> Self {
        let (size, mtime, ino) = stat_of(meta);
        Placed {
            mode,
            rel,
            size,
            mtime,
            ino,
            blake3,
            pending: false,
        }
    }

    /// Whether the file at `root/rel` is still exactly what the export placed: `Ok(false)`
    /// when it is gone or was changed by someone else, `Err` when the target cannot say (a
    /// stale or failing network share), which must never be read as "gone".
    fn intact(&self, root: &Path) -> io::Result<bool> {
        match std::fs::symlink_metadata(root.join(&self.rel)) {
            Ok(m) => Ok(stat_of(&m) == (self.size, self.mtime, self.ino)),
            // A folder replaced by a file (ENOTDIR) is as gone as a deleted one.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }
}

/// A journal record as written: the placements one chunk is about to make, as
/// (media id, album id, relative path). `mode` first for the same reason as in [`Placed`].
#[derive(Serialize)]
struct JournalOut<'a> {
    mode: char,
    intents: Vec<(&'a str, &'a str, &'a str)>,
}

/// A journal record as read back.
#[derive(Deserialize)]
struct JournalIn {
    mode: char,
    intents: Vec<(String, String, String)>,
}

/// A manifest segment as written: the current record (or removal) of every key changed
/// since the previous segment. `v` (always 1) comes first so the value never starts with `{`.
#[derive(Serialize)]
struct SegmentOut<'a> {
    v: u8,
    entries: Vec<(&'a str, &'a str, Option<&'a Placed>)>,
}

/// A manifest segment as read back.
#[derive(Deserialize)]
struct SegmentIn {
    v: u8,
    entries: Vec<(String, String, Option<Placed>)>,
}

/// Above this many files gone (and more than half of the manifest), a target is presumed
/// unmounted rather than cleaned up by hand.
const MANY_GONE: usize = 10;

/// (media id, album id or "").
type Key = (String, String);

/// Key suffixes after `<target> \0`. Media ids are never empty, so no schema-1 per-item key
/// (`<target> \0 <media id> \0 <album id>`) starts with `\0`.
const JOURNAL: [u8; 2] = [0, b'J'];
const SEGMENT: [u8; 2] = [0, b'S'];

fn sub_key(prefix: &[u8], kind: [u8; 2], seq: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(prefix.len() + 2 + seq.len());
    v.extend_from_slice(prefix);
    v.extend_from_slice(&kind);
    v.extend_from_slice(seq);
    v
}

fn corrupt(detail: impl ToString) -> Error {
    Error::Corrupt {
        tree: "exports",
        detail: detail.to_string(),
    }
}

/// Splits a schema-1 manifest key (without the target prefix) into (media id, album id).
fn parse_key(rest: &[u8]) -> Result<Key, Error> {
    let mut parts = rest.splitn(2, |b| *b == 0);
    let id = parts.next().unwrap_or_default();
    let album = parts.next().unwrap_or_default();
    Ok((
        String::from_utf8(id.to_vec()).map_err(corrupt)?,
        String::from_utf8(album.to_vec()).map_err(corrupt)?,
    ))
}

/// One target's manifest: what the export placed, per (media id, album id).
///
/// Stored as a log of *segments* (keys `<target> \0 \0 S <u64 seq>`), each holding the records
/// changed since the previous one, replayed in order on load; a record of `None` is a
/// removal. Why not one key per placement: sled costs about 5 µs per key written, batched or
/// not, which alone is most of what `cp -al` spends per file; a segment costs one write per
/// [`CHUNK`] placements. When the log holds much more than the live records (see
/// [`Manifest::finish`]), it is rewritten as fresh segments, so its size stays proportional
/// to what the target holds. Schema-1 per-item keys are read as the oldest layer and folded
/// into segments by the first run that sees them.
struct Manifest<'s> {
    store: &'s dyn Store,
    prefix: Vec<u8>,
    map: HashMap<Key, Placed>,
    /// Keys changed since the last segment was written.
    dirty: Vec<Key>,
    next_seq: u64,
    /// Keys of the stored segments.
    segments: Vec<Vec<u8>>,
    /// Entries across the stored segments, live or superseded.
    stored_entries: usize,
    /// Schema-1 per-item keys still in the tree.
    legacy: Vec<Vec<u8>>,
}

/// What an interrupted run may or may not have placed: (key, relative path, mode).
type Unsettled = Vec<(Key, String, char)>;

impl<'s> Manifest<'s> {
    /// Reads target `name`'s manifest and the journals of an interrupted run (their keys, and
    /// the placements they announce).
    fn load(store: &'s dyn Store, name: &str) -> Result<(Self, Vec<Vec<u8>>, Unsettled), Error> {
        let mut prefix = name.as_bytes().to_vec();
        prefix.push(0);
        let mut m = Manifest {
            store,
            prefix,
            map: HashMap::new(),
            dirty: Vec::new(),
            next_seq: 0,
            segments: Vec::new(),
            stored_entries: 0,
            legacy: Vec::new(),
        };
        let mut journals = Vec::new();
        let mut unsettled = Vec::new();
        // Journals and schema-1 records first: segments are newer than any schema-1 record.
        for r in store.scan(Tree::Exports, &m.prefix) {
            let (k, v) = r?;
            let rest = &k[m.prefix.len()..];
            if rest.starts_with(&JOURNAL) {
                let j: JournalIn = codec::decode("exports", &v)?;
                unsettled.extend(
                    j.intents
                        .into_iter()
                        .map(|(id, album, rel)| ((id, album), rel, j.mode)),
                );
                journals.push(k);
            } else if rest.first() != Some(&0) {
                let key = parse_key(rest)?;
                let placed: Placed = codec::decode("exports", &v)?;
                if placed.pending {
                    unsettled.push((key.clone(), placed.rel.clone(), placed.mode));
                }
                m.map.insert(key, placed);
                m.legacy.push(k);
            }
        }
        let seg_prefix = sub_key(&m.prefix, SEGMENT, &[]);
        for r in store.scan(Tree::Exports, &seg_prefix) {
            let (k, v) = r?;
            let seq = <[u8; 8]>::try_from(&k[seg_prefix.len()..])
                .map(u64::from_be_bytes)
                .map_err(|_| corrupt("malformed segment key"))?;
            let seg: SegmentIn = codec::decode("exports", &v)?;
            if seg.v != 1 {
                return Err(corrupt(format!(
                    "manifest segment version {} (written by a newer version?)",
                    seg.v
                )));
            }
            m.stored_entries += seg.entries.len();
            for (id, album, placed) in seg.entries {
                match placed {
                    Some(p) => m.map.insert((id, album), p),
                    None => m.map.remove(&(id, album)),
                };
            }
            m.next_seq = seq + 1;
            m.segments.push(k);
        }
        Ok((m, journals, unsettled))
    }

    fn set(&mut self, key: Key, p: Placed) {
        self.dirty.push(key.clone());
        self.map.insert(key, p);
    }

    fn remove(&mut self, key: &Key) {
        if self.map.remove(key).is_some() {
            self.dirty.push(key.clone());
        }
    }

    /// A template that adds or drops `{album}` changes an item's key, (id, "") ⇄ (id, album),
    /// not its file. A placement whose key is no longer wanted is handed to a wanted key of
    /// the same item on the other side of that change, so the file is renamed (or kept where
    /// it is) instead of copied anew and the old one pruned, or left behind as a duplicate
    /// without `prune`. Album-to-album changes (a new album filter, an item that moved to
    /// another album) are not hand-overs: those files stay where the user last saw them.
    ///
    /// An item in several albums has several placements and keys: a placement already at
    /// the wanted path goes to that key first, the rest are paired in key order, so the
    /// outcome never depends on listing order.
    fn hand_over_to_new_keys(&mut self, wants: &[Want]) {
        if self.map.is_empty() || !wants.iter().any(|w| !self.map.contains_key(&w.key)) {
            return;
        }
        let wanted: HashSet<&Key> = wants.iter().map(|w| &w.key).collect();
        let mut spare: HashMap<&str, Vec<&Key>> = HashMap::new();
        for k in self.map.keys().filter(|k| !wanted.contains(k)) {
            spare.entry(k.0.as_str()).or_default().push(k);
        }
        if spare.is_empty() {
            return;
        }
        for keys in spare.values_mut() {
            keys.sort_unstable();
        }
        let mut unplaced: Vec<&Want> = wants
            .iter()
            .filter(|w| !self.map.contains_key(&w.key) && spare.contains_key(w.key.0.as_str()))
            .collect();
        unplaced.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        let crosses = |old: &Key, new: &Key| old.1.is_empty() != new.1.is_empty();
        let mut moves: Vec<(Key, Key)> = Vec::new();
        // First the placements that can stay where they are, then the others in key order.
        for at_home in [true, false] {
            unplaced.retain(|w| {
                let Some(keys) = spare.get_mut(w.key.0.as_str()) else {
                    return false;
                };
                let fits = |old: &&Key| {
                    crosses(old, &w.key)
                        && (!at_home
                            || self
                                .map
                                .get(*old)
                                .is_some_and(|p| may_keep(&w.rel, &w.key, &p.rel)))
                };
                match keys.iter().position(fits) {
                    Some(i) => {
                        moves.push((keys.remove(i).clone(), w.key.clone()));
                        false
                    }
                    None => true,
                }
            });
        }
        for (old, new) in moves {
            if let Some(p) = self.map.remove(&old) {
                self.dirty.push(old);
                self.set(new, p);
            }
        }
    }

    /// Writes the changes since the last segment as one segment.
    fn save(&mut self) -> Result<(), Error> {
        if let Some((k, v)) = self.segment()? {
            self.store.put(Tree::Exports, &k, &v)?;
        }
        Ok(())
    }

    /// The changes since the last segment as a segment (key, value) to write next; `None`
    /// when there are none.
    fn segment(&mut self) -> Result<Option<Entry>, Error> {
        if self.dirty.is_empty() {
            return Ok(None);
        }
        let dirty = std::mem::take(&mut self.dirty);
        let seg = SegmentOut {
            v: 1,
            entries: dirty
                .iter()
                .map(|k| (k.0.as_str(), k.1.as_str(), self.map.get(k)))
                .collect(),
        };
        let value = codec::encode(&seg)?;
        let key = sub_key(&self.prefix, SEGMENT, &self.next_seq.to_be_bytes());
        self.next_seq += 1;
        self.stored_entries += dirty.len();
        self.segments.push(key.clone());
        Ok(Some((key, value)))
    }

    /// Saves what is left and removes `journals`, in one atomic write; first rewrites the log
    /// as fresh segments when superseded entries outnumber live ones, when there are more
    /// than twice as many segments as a fresh log would have (plus slack for small
    /// incremental runs), or when schema-1 records are left. Rewriting costs one pass over
    /// the live records and happens after at least as many writes, so it is amortised.
    fn finish(&mut self, journals: Vec<Vec<u8>>) -> Result<(), Error> {
        self.save()?;
        let mut batch: Batch = journals.into_iter().map(|k| (k, None)).collect();
        let live = self.map.len();
        let fresh_segments = live.div_ceil(CHUNK);
        let due = !self.legacy.is_empty()
            || self.stored_entries > 2 * live + CHUNK
            || self.segments.len() > 2 * fresh_segments + 16;
        if due {
            batch.extend(self.legacy.drain(..).map(|k| (k, None)));
            batch.extend(self.segments.drain(..).map(|k| (k, None)));
            let mut keys: Vec<&Key> = self.map.keys().collect();
            keys.sort_unstable();
            for chunk in keys.chunks(CHUNK) {
                let seg = SegmentOut {
                    v: 1,
                    entries: chunk
                        .iter()
                        .map(|k| (k.0.as_str(), k.1.as_str(), self.map.get(*k)))
                        .collect(),
                };
                let key = sub_key(&self.prefix, SEGMENT, &self.next_seq.to_be_bytes());
                batch.push((key.clone(), Some(codec::encode(&seg)?)));
                self.next_seq += 1;
                self.segments.push(key);
            }
            self.stored_entries = live;
        }
        if !batch.is_empty() {
            self.store.apply(Tree::Exports, batch)?;
        }
        Ok(())
    }
}

/// One placement the export wants.
struct Want {
    key: Key,
    rel: String,
    lib_rel: String,
    size: Option<u64>,
    blake3: Option<ContentHash>,
    taken_ms: Option<i64>,
}

impl Want {
    /// `rec`'s library file wanted at `rel` under `key`.
    fn of(key: Key, rel: String, rec: &ItemRecord) -> Self {
        Want {
            key,
            rel,
            lib_rel: rec.path.clone(),
            size: rec.size,
            blake3: rec.blake3,
            taken_ms: rec.taken_ms,
        }
    }
}

/// The stat fields the manifest compares.
fn stat_of(m: &std::fs::Metadata) -> (u64, (i64, i64), u64) {
    (m.len(), (m.mtime(), m.mtime_nsec()), m.ino())
}

/// What the placement loop does for one wanted item.
enum Action {
    /// Place a new file (nothing of ours is there).
    New,
    /// Our file at the same path is outdated (the library file changed): replace it.
    Replace,
    /// Our file is elsewhere (template change): rename it.
    Rename(String),
    /// Our file elsewhere cannot simply be moved (it was placed in another mode, or the
    /// library file changed since): place anew, then remove the old one.
    Supersede(String),
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
        self.export_inner(target, cancel, None)
    }

    /// [`Engine::export`]; `crash_after` (tests only) stops dead after that many placements,
    /// with or without the chunk's records written, leaving the index and the target as a
    /// crash there would.
    fn export_inner(
        &self,
        target: &ExportTarget,
        cancel: &CancellationToken,
        crash_after: Option<(u64, bool)>,
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
        let mode = target.mode.code();

        let store = self.index().store();
        let (mut manifest, old_journals, unsettled) = Manifest::load(store, &target.name)?;

        let wants = self.wanted(target)?;
        report.wanted = wants.len() as u64;
        // Only settling and pruning look items up by key; a plain run skips building this.
        let want_map: HashMap<&Key, &Want> = if unsettled.is_empty() && !target.prune {
            HashMap::new()
        } else {
            wants.iter().map(|w| (&w.key, w)).collect()
        };

        // Settle what an interrupted run left: a file that is the item's is adopted; the
        // record of anything else is dropped (its file, if any, is foreign from now on). A
        // record that predates the interrupted placement (the file it replaced or renamed)
        // is left to the intact check below.
        // A crash can also leave our named temp files (the NFS/SMB fallback, replacements)
        // next to the placements it interrupted: they go, from those folders only.
        let interrupted_dirs: HashSet<&str> = unsettled
            .iter()
            .map(|(_, rel, _)| rel.rsplit_once('/').map_or("", |(dir, _)| dir))
            .collect();
        let mut settle_dirs = DirCache::new(root);
        for dir in interrupted_dirs {
            if !settle_dirs.folder_inside(dir) {
                continue;
            }
            let dir = root.join(dir);
            // Best effort: a leftover temp file must not stop the export.
            if let Err(e) = fsops::remove_temp_files_in(&dir, None) {
                tracing::debug!("temp files in {} not removed: {e}", dir.display());
            }
        }
        let mut superseded: Vec<String> = Vec::new();
        for (key, rel, m) in unsettled {
            let want = want_map.get(&key).copied();
            // An item this run no longer wants (a filter changed, it left an album) is still
            // checked against its library file: adopted, its file stays ours, so `prune` can
            // remove it; dropped, it would be a foreign file forever.
            let unwanted = match want {
                Some(_) => None,
                None => self.settle_want(&key)?,
            };
            let want = want.or(unwanted.as_ref());
            let adopted = want.and_then(|w| {
                let path = root.join(&rel);
                let meta = std::fs::symlink_metadata(&path).ok()?;
                is_item_file(&path, &meta, &library.join(&w.lib_rel), w, m).then_some(meta)
            });
            match (adopted, want) {
                (Some(meta), Some(w)) => {
                    // The file this placement superseded (another mode or content), or the
                    // second name a link-then-unlink rename left, is still ours and
                    // untouched: the interrupted run would have removed it next.
                    if let Some(p) = manifest.map.get(&key)
                        && p.rel != rel
                        && p.intact(root).is_ok_and(|ok| ok)
                    {
                        superseded.push(p.rel.clone());
                    }
                    manifest.set(key, Placed::new(rel, &meta, w.blake3, m));
                }
                _ => {
                    let written_here = manifest.map.get(&key).is_some_and(|p| {
                        p.pending
                            || (p.rel == rel
                                && p.mode == m
                                && want.is_some_and(|w| w.blake3 == p.blake3))
                    });
                    if written_here {
                        manifest.remove(&key);
                    }
                }
            }
        }
        // The interrupted run's journals are settled; they go with the next write. What it
        // adopted may not be on disk yet (the crash came before its `syncfs`): make it
        // durable before the journals that could re-check it are gone.
        if manifest.dirty.iter().any(|k| manifest.map.contains_key(k)) {
            fsops::syncfs(root)?;
        }
        // Only then the files they superseded go: a crash before this point finds them
        // still ours and removes them next time.
        for old in superseded {
            if !settle_dirs.inside(&old) {
                continue;
            }
            let path = root.join(&old);
            match std::fs::remove_file(&path) {
                Ok(()) => settle_dirs.remove_empty_parents(&old),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(
                    "export: {} was not removed ({e}); it is left as it is",
                    path.display()
                ),
            }
        }
        let mut journals = old_journals;

        // Entries whose file was changed or removed by someone else are forgotten: the file
        // (if any) is foreign from now on. Unless so many are gone that the target is more
        // likely not the one the export filled: an unmounted share leaves its (empty) mount
        // point behind, and forgetting would copy the whole library onto the root disk, then
        // duplicate it on the share once it is back.
        let mut gone: Vec<Key> = Vec::new();
        for (k, p) in &manifest.map {
            match p.intact(root) {
                Ok(true) => {}
                Ok(false) => gone.push(k.clone()),
                Err(e) => {
                    let why = format!(
                        "export target `{}`: cannot read {} ({e}); is the share available? \
                         Skipped; nothing was changed",
                        target.name,
                        root.join(&p.rel).display()
                    );
                    tracing::warn!("{why}");
                    report.skipped = Some(why);
                    return Ok(report);
                }
            }
        }
        let total = manifest.map.len();
        let root_is_empty =
            || std::fs::read_dir(root).is_ok_and(|mut entries| entries.next().is_none());
        if (gone.len() * 2 > total && gone.len() >= MANY_GONE)
            || (total > 0 && gone.len() == total && root_is_empty())
        {
            let why = format!(
                "export target `{}`: {} of the {total} files this export placed in {} are gone; \
                 is the share mounted? Skipped; nothing was changed. If you emptied it on \
                 purpose, give the [[export]] target a new `name` to start it afresh",
                target.name,
                gone.len(),
                root.display()
            );
            tracing::warn!("{why}");
            report.skipped = Some(why);
            return Ok(report);
        }
        for k in gone {
            manifest.map.remove(&k);
            manifest.dirty.push(k);
        }
        manifest.hand_over_to_new_keys(&wants);
        // What prune removes below is free for this run's newcomers: a new item that wants
        // the name of a file pruned in the same run gets that name, not a suffixed one.
        let stale: Vec<Key> = if target.prune {
            manifest
                .map
                .keys()
                .filter(|k| !want_map.contains_key(k))
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        let doomed: HashSet<&str> = stale
            .iter()
            .filter_map(|k| manifest.map.get(k))
            .map(|p| p.rel.as_str())
            .collect();
        let owner: HashMap<&str, &Key> = manifest
            .map
            .iter()
            .filter(|(_, p)| !doomed.contains(p.rel.as_str()))
            .map(|(k, p)| (p.rel.as_str(), k))
            .collect();

        // Assign final paths: first every item that may keep the name it has, then the rest
        // in (path, id) order, so the result never depends on listing order.
        let mut assigned: Vec<Option<String>> = vec![None; wants.len()];
        let mut taken: HashSet<String> = HashSet::with_capacity(wants.len());
        for (i, w) in wants.iter().enumerate() {
            if let Some(p) = manifest.map.get(&w.key)
                && p.mode == mode
                && may_keep(&w.rel, &w.key, &p.rel)
            {
                taken.insert(p.rel.clone());
                assigned[i] = Some(p.rel.clone());
            }
        }
        let mut order: Vec<usize> = (0..wants.len())
            .filter(|i| assigned[*i].is_none())
            .collect();
        // Keys are unique, so an unstable sort is as deterministic as a stable one.
        order.sort_unstable_by(|a, b| {
            (&wants[*a].rel, &wants[*a].key).cmp(&(&wants[*b].rel, &wants[*b].key))
        });
        // A path in a folder that does not exist yet is free without a stat: on a first
        // export that is every path.
        let mut dir_exists: HashMap<String, bool> = HashMap::new();
        let mut occupied = |rel: &str| {
            if let Some((dir, _)) = rel.rsplit_once('/') {
                let exists = match dir_exists.get(dir) {
                    Some(e) => *e,
                    None => {
                        let e = root.join(dir).is_dir();
                        dir_exists.insert(dir.to_string(), e);
                        e
                    }
                };
                if !exists {
                    return false;
                }
            }
            std::fs::symlink_metadata(root.join(rel)).is_ok()
        };
        for i in order {
            let w = &wants[i];
            let mut foreign = false;
            let mut chosen = None;
            for c in candidates(&w.rel, &w.key) {
                if taken.contains(&c) {
                    continue;
                }
                match owner.get(c.as_str()) {
                    Some(k) if **k == w.key => {}
                    Some(_) => continue,
                    None => {
                        if !doomed.contains(c.as_str()) && occupied(&c) {
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
                    assigned[i] = Some(c);
                }
                None => report.fail(format!(
                    "{}: every candidate name at {} is taken",
                    w.key.0, w.rel
                )),
            }
        }
        drop((taken, owner, doomed));

        // What to do per item; the rest is already in place.
        let mut todo: Vec<(usize, String, Action)> = Vec::new();
        for (i, rel) in assigned.into_iter().enumerate() {
            let Some(rel) = rel else {
                continue;
            };
            let w = &wants[i];
            let action = match manifest.map.get(&w.key) {
                None => Action::New,
                Some(p) if p.mode != mode => Action::Supersede(p.rel.clone()),
                Some(p) if p.blake3 != w.blake3 && w.blake3.is_some() => {
                    if p.rel == rel {
                        Action::Replace
                    } else {
                        // Moving it would keep the old content under the new name.
                        Action::Supersede(p.rel.clone())
                    }
                }
                Some(p) if p.rel != rel => Action::Rename(p.rel.clone()),
                Some(_) => {
                    report.unchanged += 1;
                    continue;
                }
            };
            todo.push((i, rel, action));
        }

        // Growing the map while placing rehashes it over and over.
        let new_keys = todo.iter().filter(|t| matches!(t.2, Action::New)).count();
        manifest.map.reserve(new_keys);
        manifest.dirty.reserve(todo.len().min(CHUNK));
        let mut placer = Placer::new(&library, root, target.mode);

        // Prune first, so that the folders it empties can be reused or removed.
        if target.prune {
            for k in stale {
                let Some(rel) = manifest.map.get(&k).map(|p| p.rel.clone()) else {
                    continue;
                };
                let path = root.join(&rel);
                if !placer.dirs.inside(&rel) {
                    // Someone replaced a folder of ours by a link: what it leads to is theirs.
                    tracing::warn!(
                        "export: {} is reached through a symbolic link; not pruned, and no \
                         longer the export's",
                        path.display()
                    );
                    manifest.remove(&k);
                    continue;
                }
                match std::fs::remove_file(&path) {
                    Ok(()) => report.pruned += 1,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => {
                        manifest.save()?;
                        return Err(Error::io("remove", &path, e));
                    }
                }
                manifest.remove(&k);
                placer.dirs.remove_empty_parents(&rel);
            }
        }

        // Announce every placement before the first one is made: one journal record per
        // chunk, after the removal of the settled journals (an old journal may have the same
        // key) and the manifest's changes so far, then one flush for the whole run.
        let mut batch: Batch = manifest
            .segment()?
            .map(|(k, v)| (k, Some(v)))
            .into_iter()
            .collect();
        batch.extend(std::mem::take(&mut journals).into_iter().map(|k| (k, None)));
        if !batch.is_empty() {
            store.apply(Tree::Exports, batch)?;
        }
        for (seq, chunk) in todo.chunks(CHUNK).enumerate() {
            let journal = JournalOut {
                mode,
                intents: chunk
                    .iter()
                    .map(|(i, rel, _)| {
                        let k = &wants[*i].key;
                        (k.0.as_str(), k.1.as_str(), rel.as_str())
                    })
                    .collect(),
            };
            let seq = u32::try_from(seq).map_err(corrupt)?;
            let jkey = sub_key(&manifest.prefix, JOURNAL, &seq.to_be_bytes());
            store.put(Tree::Exports, &jkey, &codec::encode(&journal)?)?;
            journals.push(jkey);
        }
        if !todo.is_empty() {
            store.flush()?;
        }

        // Place, writing one manifest segment per chunk. The journals stay until the files
        // are durable (the `syncfs` below). New files are placed by several threads.
        let workers = if crash_after.is_some() {
            1
        } else {
            PLACE_WORKERS
        };
        let mut done = 0u64;
        for chunk in todo.chunks(CHUNK) {
            if cancel.is_cancelled() {
                report.cancelled = true;
                break;
            }
            manifest.save()?;
            // Renames and mode changes remove emptied folders, which would race with a
            // worker placing into them: such chunks (template changes) run on one thread.
            let parallel = workers > 1
                && chunk.len() >= 64
                && chunk
                    .iter()
                    .all(|(_, _, a)| matches!(a, Action::New | Action::Replace));
            let mut crashed = None;
            let outcomes: Vec<(&(usize, String, Action), Outcome)> = if parallel {
                let part = chunk.len().div_ceil(workers);
                std::thread::scope(|s| {
                    let handles: Vec<_> = chunk
                        .chunks(part)
                        .map(|part| {
                            let mut p = placer.fork();
                            let wants = &wants;
                            s.spawn(move || {
                                let mut out = Vec::with_capacity(part.len());
                                for item in part {
                                    if cancel.is_cancelled() {
                                        break;
                                    }
                                    let o = p.act(&wants[item.0], &item.1, &item.2);
                                    let fatal = matches!(o, Outcome::Fatal(_));
                                    out.push((item, o));
                                    if fatal {
                                        break;
                                    }
                                }
                                (out, p.tally, p.tmpfile)
                            })
                        })
                        .collect();
                    let mut all = Vec::with_capacity(chunk.len());
                    for h in handles {
                        match h.join() {
                            Ok((out, mut tally, tmpfile)) => {
                                all.extend(out);
                                tally.add_to(&mut report);
                                // What one worker learnt about the filesystem, the next
                                // chunk's workers need not find out again.
                                placer.tmpfile &= tmpfile;
                            }
                            Err(panic) => std::panic::resume_unwind(panic),
                        }
                    }
                    all
                })
            } else {
                let mut out = Vec::with_capacity(chunk.len());
                let mut placed = 0;
                for item in chunk {
                    if cancel.is_cancelled() {
                        break;
                    }
                    if let Some((n, records_written)) = crash_after
                        && done + placed >= n
                    {
                        crashed = Some(records_written);
                        break;
                    }
                    let o = placer.act(&wants[item.0], &item.1, &item.2);
                    placed += u64::from(matches!(o, Outcome::Placed(_)));
                    let fatal = matches!(o, Outcome::Fatal(_));
                    out.push((item, o));
                    if fatal {
                        break;
                    }
                }
                placer.tally.add_to(&mut report);
                out
            };
            let stopped = outcomes.len() < chunk.len();
            let mut fatal = None;
            for ((i, rel, _), outcome) in outcomes {
                let w = &wants[*i];
                match outcome {
                    Outcome::Placed(meta) => {
                        done += 1;
                        manifest.set(
                            w.key.clone(),
                            Placed::new(rel.clone(), &meta, w.blake3, mode),
                        );
                    }
                    Outcome::Failed(e) => report.fail(format!("{}: {e}", w.key.0)),
                    Outcome::Fatal(e) => fatal = fatal.or(Some(e)),
                }
            }
            if let Some(records_written) = crashed {
                if records_written {
                    manifest.save()?;
                }
                return Ok(report);
            }
            if let Some(e) = fatal {
                // What was placed is recorded; the journals settle the rest next run.
                manifest.save()?;
                return Err(e);
            }
            if stopped {
                report.cancelled = true;
                break;
            }
        }
        let touched = report.placed + report.renamed + report.pruned;
        if touched > 0 {
            fsops::syncfs(root)?;
        }
        manifest.finish(journals)?;
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

    /// The library file an interrupted placement of `key` copied or linked, for settling an
    /// intent whose item this run does not want (`None` if the item is gone from the index).
    fn settle_want(&self, key: &Key) -> Result<Option<Want>, Error> {
        let id = crate::types::MediaId::new(key.0.clone());
        Ok(self
            .index()
            .item(&id)?
            .filter(|rec| !rec.path.is_empty())
            .map(|rec| Want::of(key.clone(), String::new(), &rec)))
    }

    /// What `target` wants: one entry per (item, album) the template and filters select.
    fn wanted(&self, target: &ExportTarget) -> Result<Vec<Want>, Error> {
        let index = self.index();
        let tz = self.config().folder_timezone;
        let rules = match self.filesystem_rules() {
            naming::FilesystemRules::Auto => naming::FilesystemRules::Posix,
            r => r,
        };
        let f = &target.filter;
        let per_album = target.template.uses_album();
        let by_album = per_album || !f.albums.is_empty();
        let mut titles: HashMap<AlbumId, String> = HashMap::new();
        if by_album {
            for a in index.albums() {
                let (id, rec) = a?;
                titles.insert(id, rec.title);
            }
        }
        let mut out = Vec::new();
        for r in index.items() {
            let (id, mut rec) = r?;
            if rec.state != ItemState::Done || rec.path.is_empty() || !selected(f, &rec, tz) {
                continue;
            }
            let mut albums: Vec<(AlbumId, &str)> = Vec::new();
            if by_album {
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
            let taken = rec.taken_at().map(|t| t.with_timezone(&tz));
            let render = |album: Option<&str>| {
                target.template.render(
                    &Fields {
                        taken,
                        filename: &rec.filename,
                        album,
                        camera_make: rec.camera_make.as_deref(),
                        camera_model: rec.camera_model.as_deref(),
                        source: rec.source.as_str(),
                        id: id.as_str(),
                    },
                    rules,
                )
            };
            if per_album && !albums.is_empty() {
                for (a, t) in &albums {
                    let key = (id.as_str().to_string(), a.as_str().to_string());
                    out.push(Want::of(key, render(Some(t)), &rec));
                }
            } else {
                // The common case moves the record's strings instead of cloning them.
                let rel = render(None);
                out.push(Want {
                    rel,
                    key: (id.0, String::new()),
                    lib_rel: std::mem::take(&mut rec.path),
                    size: rec.size,
                    blake3: rec.blake3,
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
    std::iter::once(rel.to_string()).chain(suffixed_candidates(rel, key))
}

/// [`candidates`] but the first.
fn suffixed_candidates<'a>(rel: &'a str, key: &'a Key) -> impl Iterator<Item = String> + 'a {
    let seed = if key.1.is_empty() {
        key.0.clone()
    } else {
        format!("{}\0{}", key.0, key.1)
    };
    let (dir, name) = match rel.rsplit_once('/') {
        Some((d, n)) => (Some(d), n),
        None => (None, rel),
    };
    [8usize, 16, 32].into_iter().map(move |len| {
        let n = naming::suffixed_name(name, &seed, len);
        match dir {
            Some(d) => format!("{d}/{n}"),
            None => n,
        }
    })
}

/// Whether a placement at `placed` is one of `rel`'s candidates for `key`: the item may
/// keep it. Runs for every placed item on every export, so the usual case (the very path)
/// is answered without building a name.
fn may_keep(rel: &str, key: &Key, placed: &str) -> bool {
    placed == rel || suffixed_candidates(rel, key).any(|c| c == placed)
}

/// Whether `path` (found after a crash) is this item's file as `mode` would have placed it.
fn is_item_file(path: &Path, meta: &std::fs::Metadata, lib: &Path, w: &Want, mode: char) -> bool {
    let links_to_library =
        || std::fs::metadata(lib).is_ok_and(|l| l.ino() == meta.ino() && l.dev() == meta.dev());
    match mode {
        'h' => links_to_library(),
        's' => std::fs::read_link(path).is_ok_and(|t| t == lib),
        _ => {
            // A hard link into the library (left by a crash in a hardlink → copy switch) is
            // not a copy, however identical its bytes. Free checks first, the hash last.
            meta.is_file()
                && w.size.is_none_or(|s| s == meta.len())
                && !links_to_library()
                && match &w.blake3 {
                    Some(h) => fsops::hash_file(path).is_ok_and(|(_, got)| got == *h),
                    None => false,
                }
        }
    }
}

/// Creates folders below the target root (never the root), remembering what exists.
/// Keyed by relative folder (a `str` hashes faster than a `Path`).
struct DirCache<'a> {
    root: &'a Path,
    known: HashSet<String>,
}

impl<'a> DirCache<'a> {
    fn new(root: &'a Path) -> Self {
        DirCache {
            root,
            known: HashSet::new(),
        }
    }

    /// Makes sure the folder of `rel` exists.
    fn ensure(&mut self, rel: &str) -> Result<(), Error> {
        let Some((dir, _)) = rel.rsplit_once('/') else {
            return Ok(());
        };
        if self.known.contains(dir) {
            return Ok(());
        }
        // Rendered segments are sanitised (never empty, never starting with '.'); this
        // guards the invariant that nothing lands outside the target.
        if dir
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
        {
            return Err(Error::Config(format!(
                "export path {rel} escapes the target {}",
                self.root.display()
            )));
        }
        // Top-down, each folder checked before anything is created inside it: a folder
        // that was already there may be someone's symlink, and writing through it would put
        // this file (and every later one) outside the target. Each folder is checked once
        // per run. A missing root is not recreated (a share unmounted during the export).
        let ends = dir
            .match_indices('/')
            .map(|(i, _)| i)
            .chain(std::iter::once(dir.len()));
        for end in ends {
            let prefix = &dir[..end];
            if self.known.contains(prefix) {
                continue;
            }
            let path = self.root.join(prefix);
            let meta = match std::fs::symlink_metadata(&path) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    match std::fs::create_dir(&path) {
                        Ok(()) => None,
                        // Another placement thread made it meanwhile: check what is there.
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Some(
                            std::fs::symlink_metadata(&path)
                                .map_err(|e| Error::io("stat", &path, e))?,
                        ),
                        Err(e) => return Err(Error::io("create directory", &path, e)),
                    }
                }
                Err(e) => return Err(Error::io("stat", &path, e)),
                Ok(meta) => Some(meta),
            };
            if let Some(meta) = meta
                && !meta.is_dir()
            {
                return Err(not_a_folder(&path, &meta));
            }
            self.known.insert(prefix.to_string());
        }
        Ok(())
    }

    /// Whether every folder between the root and `rel` is a real folder: a removal through
    /// a symlinked folder would act outside the target.
    fn inside(&self, rel: &str) -> bool {
        rel.rsplit_once('/')
            .is_none_or(|(dir, _)| self.folder_inside(dir))
    }

    /// [`DirCache::inside`] for the folder `dir` itself ("" is the root).
    fn folder_inside(&self, dir: &str) -> bool {
        if dir.is_empty() {
            return true;
        }
        dir.match_indices('/')
            .map(|(i, _)| i)
            .chain(std::iter::once(dir.len()))
            .all(|end| {
                let prefix = &dir[..end];
                // A folder that is gone leads nowhere; any other error is not trusted.
                self.known.contains(prefix)
                    || match std::fs::symlink_metadata(self.root.join(prefix)) {
                        Ok(m) => m.is_dir(),
                        Err(e) => e.kind() == io::ErrorKind::NotFound,
                    }
            })
    }

    /// Removes folders emptied by a move or prune of `rel`, up to (never including) the root.
    /// Callers have checked [`DirCache::inside`] before removing `rel` itself.
    fn remove_empty_parents(&mut self, rel: &str) {
        let mut cur = rel;
        while let Some((dir, _)) = cur.rsplit_once('/') {
            if std::fs::remove_dir(self.root.join(dir)).is_err() {
                break;
            }
            self.known.remove(dir);
            cur = dir;
        }
    }
}

/// The error for a path the template needs as a folder but that is something else.
fn not_a_folder(path: &Path, meta: &std::fs::Metadata) -> Error {
    let why = if meta.file_type().is_symlink() {
        let to = std::fs::read_link(path)
            .map(|t| format!(" to {}", t.display()))
            .unwrap_or_default();
        format!(
            "is a symbolic link{to}; the export does not write through links (they could lead \
             outside the target): make it a real folder, or change the template"
        )
    } else {
        "is in the way: the template needs a folder there; move it, or change the template"
            .to_string()
    };
    Error::io("use as folder", path, io::Error::other(why))
}

/// What placements add to the report (kept per worker, summed after each chunk).
#[derive(Debug, Default)]
struct Tally {
    placed: u64,
    renamed: u64,
    reflink_fallbacks: u64,
    bytes_copied: u64,
}

impl Tally {
    fn add_to(&mut self, r: &mut ExportReport) {
        let t = std::mem::take(self);
        r.placed += t.placed;
        r.renamed += t.renamed;
        r.reflink_fallbacks += t.reflink_fallbacks;
        r.bytes_copied += t.bytes_copied;
    }
}

/// How one placement ended.
enum Outcome {
    /// Done; the placed file's metadata.
    Placed(std::fs::Metadata),
    /// Not done; the item is counted as failed and the run goes on.
    Failed(Error),
    /// The run must stop (a full disk, or a file placed that could not be stat'ed and so
    /// cannot be recorded: its journal entry settles it on the next run).
    Fatal(Error),
}

/// Places files; one per worker thread.
struct Placer<'a> {
    library: &'a Path,
    root: &'a Path,
    mode: ExportMode,
    tally: Tally,
    dirs: DirCache<'a>,
    /// Copy buffer, allocated once per worker (a fresh 256 KiB per file costs an mmap).
    buf: Vec<u8>,
    /// Copies are written to an unnamed `O_TMPFILE`; cleared on the first filesystem that
    /// cannot do that (NFS, SMB, no `/proc`), after which named temp files are used.
    tmpfile: bool,
}

impl<'a> Placer<'a> {
    fn new(library: &'a Path, root: &'a Path, mode: ExportMode) -> Self {
        Placer {
            library,
            root,
            mode,
            tally: Tally::default(),
            dirs: DirCache::new(root),
            buf: Vec::new(),
            tmpfile: cfg!(target_os = "linux"),
        }
    }

    /// Another placer for a worker thread, with what this one learnt about the filesystem.
    fn fork(&self) -> Self {
        Placer {
            tmpfile: self.tmpfile,
            ..Placer::new(self.library, self.root, self.mode)
        }
    }

    /// Carries out `action` for `w` at `rel`.
    fn act(&mut self, w: &Want, rel: &str, action: &Action) -> Outcome {
        let dest = self.root.join(rel);
        let done = match action {
            Action::New => self.place(w, rel, &dest, false),
            Action::Replace => self.place(w, rel, &dest, true),
            Action::Rename(from_rel) if !self.dirs.inside(from_rel) => {
                // Someone replaced a folder of ours by a link: moving the file would take it
                // from wherever that leads. It stays there, theirs; the item is placed anew.
                tracing::warn!(
                    "export: {} is reached through a symbolic link; left there, and {rel} \
                     is placed anew",
                    self.root.join(from_rel).display()
                );
                self.place(w, rel, &dest, false)
            }
            Action::Rename(from_rel) => {
                let from = self.root.join(from_rel);
                let r = self.dirs.ensure(rel).and_then(|()| {
                    rename_noreplace(&from, &dest).map_err(|e| Error::io("rename", &from, e))
                });
                if r.is_ok() {
                    self.tally.renamed += 1;
                    self.dirs.remove_empty_parents(from_rel);
                }
                r.map(|()| None)
            }
            Action::Supersede(old_rel) => {
                let same = old_rel == rel;
                let r = self.place(w, rel, &dest, same);
                if r.is_ok() && !same && !self.dirs.inside(old_rel) {
                    tracing::warn!(
                        "export: the previous file {} is reached through a symbolic link; \
                         left as it is",
                        self.root.join(old_rel).display()
                    );
                } else if r.is_ok() && !same {
                    let old = self.root.join(old_rel);
                    match std::fs::remove_file(&old) {
                        Ok(()) => self.dirs.remove_empty_parents(old_rel),
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        // The new file is in place; the old one is the user's from now on.
                        Err(e) => tracing::warn!(
                            "export: the previous file {} was not removed ({e}); it is left \
                             as it is",
                            old.display()
                        ),
                    }
                }
                r
            }
        };
        match done {
            Ok(Some(meta)) => Outcome::Placed(meta),
            Ok(None) => match std::fs::symlink_metadata(&dest) {
                Ok(meta) => Outcome::Placed(meta),
                Err(e) => Outcome::Fatal(Error::io("stat", &dest, e)),
            },
            Err(e @ Error::DiskFull { .. }) => Outcome::Fatal(e),
            Err(e) => Outcome::Failed(e),
        }
    }

    /// Places `w` at `dest` (`root/rel`). `replace`: `dest` is our own file and may be
    /// overwritten. Returns the new file's metadata when it is at hand without a stat.
    fn place(
        &mut self,
        w: &Want,
        rel: &str,
        dest: &Path,
        replace: bool,
    ) -> Result<Option<std::fs::Metadata>, Error> {
        let src = self.library.join(&w.lib_rel);
        self.dirs.ensure(rel)?;
        let dir = dest.parent().unwrap_or(self.root);
        let meta = match self.mode {
            ExportMode::Hardlink | ExportMode::Symlink => {
                let link = |at: &Path| match self.mode {
                    ExportMode::Hardlink => std::fs::hard_link(&src, at),
                    _ => std::os::unix::fs::symlink(&src, at),
                };
                if replace {
                    let tmp = dir.join(fsops::temp_name(file_name(dest).as_ref()));
                    link(&tmp).map_err(|e| Error::io("link", &tmp, e))?;
                    std::fs::rename(&tmp, dest).map_err(|e| {
                        let _ = std::fs::remove_file(&tmp);
                        Error::io("rename", dest, e)
                    })?;
                    // rename(2) between two links to the same file succeeds without doing
                    // anything, which would leave the temp link behind.
                    if self.mode == ExportMode::Hardlink {
                        let _ = std::fs::remove_file(&tmp);
                    }
                } else {
                    // link(2)/symlink(2) never replace an existing file: a foreign file that
                    // appeared since planning makes this item fail, not disappear.
                    link(dest).map_err(|e| Error::io("link", dest, e))?;
                }
                None
            }
            ExportMode::Copy | ExportMode::Reflink => Some(self.copy(w, &src, dir, dest, replace)?),
        };
        self.tally.placed += 1;
        Ok(meta)
    }

    /// Writes a verified copy of `src` at `dest`; never replaces a file unless `replace`.
    fn copy(
        &mut self,
        w: &Want,
        src: &Path,
        dir: &Path,
        dest: &Path,
        replace: bool,
    ) -> Result<std::fs::Metadata, Error> {
        if self.tmpfile && !replace {
            match open_unnamed(dir) {
                Ok(out) => {
                    let before = (self.tally.bytes_copied, self.tally.reflink_fallbacks);
                    let meta = self.fill(w, src, &out, dest)?;
                    match link_unnamed(&out, dest) {
                        Ok(()) => return Ok(meta),
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                            return Err(appeared(dest));
                        }
                        // A named temp file would fail the same way.
                        Err(e) if crate::error::is_disk_full(&e) => {
                            return Err(Error::io("link", dest, e));
                        }
                        // No usable /proc: fall back to a named temp file (and count that
                        // copy only).
                        Err(_) => {
                            self.tmpfile = false;
                            (self.tally.bytes_copied, self.tally.reflink_fallbacks) = before;
                        }
                    }
                }
                Err(e) if no_tmpfile(&e) => self.tmpfile = false,
                Err(e) => return Err(Error::io("create", dir, e)),
            }
        }
        let tmp = dir.join(fsops::temp_name(file_name(dest).as_ref()));
        let result = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| Error::io("create", &tmp, e))
            .and_then(|out| self.fill(w, src, &out, &tmp))
            .and_then(|meta| {
                let named = if replace {
                    std::fs::rename(&tmp, dest)
                } else {
                    rename_noreplace(&tmp, dest)
                };
                match named {
                    Ok(()) => Ok(meta),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(appeared(dest)),
                    Err(e) => Err(Error::io("rename", dest, e)),
                }
            });
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    /// Fills `out` with a clone or copy of `src`, checks its blake3 against the index and
    /// gives it the capture time as mtime. Copies are hashed as they are written (one read
    /// of the source); clones are read back, since their blocks were never read.
    fn fill(
        &mut self,
        w: &Want,
        src: &Path,
        out: &std::fs::File,
        shown: &Path,
    ) -> Result<std::fs::Metadata, Error> {
        let input = std::fs::File::open(src).map_err(|e| Error::io("open", src, e))?;
        let cloned = self.mode == ExportMode::Reflink && {
            let ok = reflink(&input, out).is_ok();
            if !ok {
                self.tally.reflink_fallbacks += 1;
            }
            ok
        };
        let mut h = blake3::Hasher::new();
        if self.buf.is_empty() {
            self.buf = vec![0u8; 256 * 1024];
        }
        let buf = &mut self.buf;
        let mut size = 0u64;
        let (mut from, what): (&std::fs::File, _) =
            if cloned { (out, shown) } else { (&input, src) };
        loop {
            let k = from.read(buf).map_err(|e| Error::io("read", what, e))?;
            if k == 0 {
                break;
            }
            h.update(&buf[..k]);
            if !cloned {
                (&*out)
                    .write_all(&buf[..k])
                    .map_err(|e| Error::io("write", shown, e))?;
            }
            size += k as u64;
        }
        if !cloned {
            self.tally.bytes_copied += size;
        }
        let hash = ContentHash::from(h.finalize());
        if let Some(expected) = w.blake3
            && hash != expected
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
        fsops::set_times(out, mtime).map_err(|e| Error::io("set mtime", shown, e))?;
        // Inode, size and mtime survive naming the file: no second stat of the placed file.
        out.metadata().map_err(|e| Error::io("stat", shown, e))
    }
}

fn file_name(p: &Path) -> std::borrow::Cow<'_, str> {
    p.file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default()
}

fn appeared(dest: &Path) -> Error {
    Error::io(
        "place",
        dest,
        io::Error::new(
            io::ErrorKind::AlreadyExists,
            "a file appeared at this path during the export; it was kept",
        ),
    )
}

/// Opens an unnamed file in `dir` (`O_TMPFILE`): it vanishes with the process unless named.
fn open_unnamed(dir: &Path) -> io::Result<std::fs::File> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_TMPFILE)
            .open(dir)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = dir;
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }
}

/// Whether `open_unnamed` failed because the filesystem or kernel cannot do it at all.
fn no_tmpfile(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::Unsupported
        || matches!(
            e.raw_os_error(),
            Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL)
        )
}

/// Gives the unnamed `file` the name `dest`; fails with `AlreadyExists` rather than replace.
fn link_unnamed(file: &std::fs::File, dest: &Path) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{AtFlags, CWD, linkat};
        use std::os::fd::AsRawFd;
        // linkat(AT_EMPTY_PATH) needs CAP_DAC_READ_SEARCH; the /proc path does not.
        let from = format!("/proc/self/fd/{}", file.as_raw_fd());
        Ok(linkat(
            CWD,
            from.as_str(),
            CWD,
            dest,
            AtFlags::SYMLINK_FOLLOW,
        )?)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (file, dest);
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }
}

/// Renames `from` to `to` unless `to` exists (`AlreadyExists` then). Filesystems without
/// `RENAME_NOREPLACE` get a hard link and an unlink; only those without hard links either get
/// a check before a plain rename.
fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{CWD, RenameFlags, renameat_with};
        use rustix::io::Errno;
        match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
            Ok(()) => return Ok(()),
            Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {}
            Err(e) => return Err(e.into()),
        }
    }
    rename_by_link(from, to)
}

/// [`rename_noreplace`] where `RENAME_NOREPLACE` is missing. NFS and SMB are also where other
/// writers are: a hard link under the new name never replaces one that appeared meanwhile.
/// Filesystems without hard links get a check before a plain rename, the best they allow.
fn rename_by_link(from: &Path, to: &Path) -> io::Result<()> {
    match std::fs::hard_link(from, to) {
        Ok(()) => {
            if let Err(e) = std::fs::remove_file(from) {
                tracing::debug!("{} stays as a second name: {e}", from.display());
            }
            return Ok(());
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Err(e),
        Err(_) => {}
    }
    if std::fs::symlink_metadata(to).is_ok() {
        return Err(io::Error::from(io::ErrorKind::AlreadyExists));
    }
    std::fs::rename(from, to)
}

/// `ioctl(FICLONE)`: makes `dst` share `src`'s blocks (btrfs, XFS with reflink, bcachefs).
fn reflink(src: &std::fs::File, dst: &std::fs::File) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        Ok(rustix::fs::ioctl_ficlone(dst, src)?)
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
        let (m, _, _) = Manifest::load(self.index().store(), target)?;
        let mut out: Vec<(MediaId, String)> = m
            .map
            .into_iter()
            .map(|((id, _), p)| (MediaId(id), p.rel))
            .collect();
        out.sort();
        Ok(out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::{EngineConfig, LocalDirSource, NoProgress, Source, SyncOptions};

    struct Lib {
        _tmp: tempfile::TempDir,
        out: PathBuf,
        engine: Engine,
    }

    /// A library of `n` photos, a day apart, synced from a plain folder.
    async fn library(n: usize) -> Lib {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        let out = tmp.path().join("nas");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::create_dir_all(&out).unwrap();
        for i in 0..n {
            let p = src.join(format!("IMG_{i}.jpg"));
            std::fs::write(&p, format!("photo {i}")).unwrap();
            let f = std::fs::File::options().write(true).open(&p).unwrap();
            f.set_modified(UNIX_EPOCH + Duration::from_secs(1_600_000_000 + i as u64 * 86_400))
                .unwrap();
        }
        let engine = Engine::open(EngineConfig::new(
            tmp.path().join("lib"),
            tmp.path().join("state"),
        ))
        .unwrap();
        let sources: Vec<Arc<dyn Source>> = vec![Arc::new(LocalDirSource::new(&src))];
        let r = engine
            .sync(
                &sources,
                SyncOptions::default(),
                Arc::new(NoProgress),
                CancellationToken::new(),
            )
            .await
            .unwrap();
        assert_eq!(r.downloaded as usize, n, "{:?}", r.errors);
        Lib {
            _tmp: tmp,
            out,
            engine,
        }
    }

    fn target(lib: &Lib, template: &str, mode: ExportMode) -> ExportTarget {
        let mut t = ExportTarget::new("nas", &lib.out, Template::parse(template).unwrap());
        t.mode = mode;
        t
    }

    /// Every file under `root` (relative), temp files included.
    fn files(root: &Path) -> Vec<String> {
        fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(root, &p, out);
                } else {
                    out.push(p.strip_prefix(root).unwrap().display().to_string());
                }
            }
        }
        let mut out = Vec::new();
        walk(root, root, &mut out);
        out.sort();
        out
    }

    fn keys(lib: &Lib, target: &str, kind: [u8; 2]) -> usize {
        let prefix = format!("{target}\0");
        let store = lib.engine.index().store();
        store
            .scan(Tree::Exports, &sub_key(prefix.as_bytes(), kind, &[]))
            .count()
    }

    #[test]
    fn placed_records_are_pinned_and_never_read_as_json() {
        let p = Placed {
            mode: 'h',
            rel: "2020/a.jpg".into(),
            size: 5,
            mtime: (1_600_000_000, 7),
            ino: 300,
            blake3: Some(ContentHash::of(b"alpha")),
            pending: false,
        };
        let bytes = codec::encode(&p).unwrap();
        let mut expected = vec![1, b'h', 10];
        expected.extend_from_slice(b"2020/a.jpg");
        // size 5; mtime as zigzag varints (1_600_000_000 → 3_200_000_000, 7 → 14); ino 300.
        expected.extend_from_slice(&[5, 0x80, 0xC0, 0xF0, 0xF5, 0x0B, 14, 0xAC, 0x02, 1]);
        expected.extend_from_slice(blake3::hash(b"alpha").as_bytes());
        expected.push(0);
        assert_eq!(bytes, expected);
        assert_eq!(codec::decode::<Placed>("exports", &bytes).unwrap(), p);
        // A record written by schema 1 (JSON, hex hash, pending flag) still reads.
        let json = format!(
            r#"{{"p":"2020/a.jpg","s":5,"m":[1600000000,7],"i":300,"h":"{}","k":"h","w":true}}"#,
            blake3::hash(b"alpha").to_hex()
        );
        let old: Placed = codec::decode("exports", json.as_bytes()).unwrap();
        assert_eq!(old, Placed { pending: true, ..p });
        // A path of 123 bytes would start a record with '{' if the path came first.
        let long = Placed {
            rel: "x".repeat(123),
            ..old
        };
        assert_eq!(codec::encode(&long).unwrap()[0], 1);
    }

    /// Both ways of writing a copy (unnamed `O_TMPFILE`, and the named temp file used where
    /// the filesystem has none): verified, dated, never replacing a file, no temp file left.
    #[test]
    fn copies_are_verified_dated_and_never_replace_a_file() {
        for tmpfile in [true, false] {
            let tmp = tempfile::tempdir().unwrap();
            let (lib, root) = (tmp.path().join("lib"), tmp.path().join("out"));
            std::fs::create_dir_all(&lib).unwrap();
            std::fs::create_dir_all(&root).unwrap();
            std::fs::write(lib.join("a.jpg"), b"alpha").unwrap();
            let want = |rel: &str, bytes: &[u8]| Want {
                key: ("id".into(), String::new()),
                rel: rel.into(),
                lib_rel: "a.jpg".into(),
                size: Some(5),
                blake3: Some(ContentHash::of(bytes)),
                taken_ms: Some(1_600_000_000_000),
            };
            let mut p = Placer::new(&lib, &root, ExportMode::Copy);
            p.tmpfile = tmpfile;
            let w = want("x/a.jpg", b"alpha");
            match p.act(&w, "x/a.jpg", &Action::New) {
                Outcome::Placed(m) => assert_eq!((m.len(), m.mtime()), (5, 1_600_000_000)),
                _ => panic!("tmpfile={tmpfile}: not placed"),
            }
            assert_eq!(std::fs::read(root.join("x/a.jpg")).unwrap(), b"alpha");
            // A file already at the path (here: the one just placed) is never replaced.
            std::fs::write(root.join("x/a.jpg"), b"users").unwrap();
            assert!(matches!(
                p.act(&w, "x/a.jpg", &Action::New),
                Outcome::Failed(_)
            ));
            assert_eq!(std::fs::read(root.join("x/a.jpg")).unwrap(), b"users");
            // A library file that no longer matches the index is not exported.
            let stale = want("x/b.jpg", b"other");
            assert!(matches!(
                p.act(&stale, "x/b.jpg", &Action::New),
                Outcome::Failed(_)
            ));
            assert_eq!(files(&root), ["x/a.jpg"], "tmpfile={tmpfile}");
            assert_eq!(p.tally.placed, 1);
        }
    }

    /// Replacing a hard link by a new link to the same file (the library file was changed in
    /// place) is a no-op rename(2): the temp link must not stay behind.
    #[test]
    fn replacing_a_link_to_the_same_file_leaves_no_temp_link() {
        let tmp = tempfile::tempdir().unwrap();
        let (lib, root) = (tmp.path().join("lib"), tmp.path().join("out"));
        std::fs::create_dir_all(&lib).unwrap();
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(lib.join("a.jpg"), b"alpha").unwrap();
        let w = Want {
            key: ("id".into(), String::new()),
            rel: "x/a.jpg".into(),
            lib_rel: "a.jpg".into(),
            size: Some(5),
            blake3: Some(ContentHash::of(b"alpha")),
            taken_ms: None,
        };
        let mut p = Placer::new(&lib, &root, ExportMode::Hardlink);
        assert!(matches!(
            p.act(&w, "x/a.jpg", &Action::New),
            Outcome::Placed(_)
        ));
        assert!(matches!(
            p.act(&w, "x/a.jpg", &Action::Replace),
            Outcome::Placed(_)
        ));
        assert_eq!(files(&root), ["x/a.jpg"]);
    }

    /// A share unmounted during the export: its folders are not recreated on the local disk.
    #[test]
    fn a_root_that_vanished_mid_run_is_not_recreated() {
        let tmp = tempfile::tempdir().unwrap();
        let (lib, root) = (tmp.path().join("lib"), tmp.path().join("gone"));
        std::fs::create_dir_all(&lib).unwrap();
        std::fs::write(lib.join("a.jpg"), b"alpha").unwrap();
        let w = Want {
            key: ("id".into(), String::new()),
            rel: "2020/03/a.jpg".into(),
            lib_rel: "a.jpg".into(),
            size: None,
            blake3: None,
            taken_ms: None,
        };
        for mode in [ExportMode::Hardlink, ExportMode::Copy] {
            let mut p = Placer::new(&lib, &root, mode);
            assert!(matches!(
                p.act(&w, "2020/03/a.jpg", &Action::New),
                Outcome::Failed(_)
            ));
            assert!(!root.exists(), "{mode:?}");
        }
    }

    #[tokio::test]
    async fn a_crash_between_placing_anew_and_removing_the_old_file_is_finished_next_run() {
        let lib = library(3).await;
        let links = target(&lib, "{filename}", ExportMode::Hardlink);
        lib.engine
            .export(&links, &CancellationToken::new())
            .unwrap();
        // Mode and template change: each file is placed anew, then its old link removed.
        let copies = target(&lib, "{year}/{filename}", ExportMode::Copy);
        lib.engine
            .export_inner(&copies, &CancellationToken::new(), Some((1, false)))
            .unwrap();
        let moved: Vec<String> = files(&lib.out)
            .into_iter()
            .filter_map(|f| f.strip_prefix("2020/").map(str::to_owned))
            .collect();
        assert_eq!(moved.len(), 1, "{:?}", files(&lib.out));
        // The crash came before that old link was removed: put it back as it was.
        let (_, rec) = lib
            .engine
            .index()
            .items()
            .map(Result::unwrap)
            .find(|(_, r)| r.filename == moved[0])
            .unwrap();
        std::fs::hard_link(
            lib.engine.config().library_dir.join(&rec.path),
            lib.out.join(&moved[0]),
        )
        .unwrap();

        let r = lib
            .engine
            .export(&copies, &CancellationToken::new())
            .unwrap();
        assert_eq!((r.placed, r.failed), (2, 0), "{r:?}");
        assert_eq!(
            files(&lib.out),
            ["2020/IMG_0.jpg", "2020/IMG_1.jpg", "2020/IMG_2.jpg"],
            "the old link is removed, not left behind untracked"
        );
    }

    #[tokio::test]
    async fn finishing_an_interrupted_supersede_also_removes_the_folder_it_emptied() {
        let lib = library(2).await;
        // One folder per item (they are a day apart).
        let by_day = target(
            &lib,
            "{year}/{month}/{day}/{filename}",
            ExportMode::Hardlink,
        );
        lib.engine
            .export(&by_day, &CancellationToken::new())
            .unwrap();
        let before = files(&lib.out);
        let flat = target(&lib, "{filename}", ExportMode::Copy);
        lib.engine
            .export_inner(&flat, &CancellationToken::new(), Some((1, false)))
            .unwrap();
        // As if the crash came before the old link and its folder were removed.
        let old = before.iter().find(|f| !lib.out.join(f).exists()).unwrap();
        let (_, rec) = lib
            .engine
            .index()
            .items()
            .map(Result::unwrap)
            .find(|(_, r)| old.ends_with(&r.filename))
            .unwrap();
        std::fs::create_dir_all(lib.out.join(old).parent().unwrap()).unwrap();
        std::fs::hard_link(
            lib.engine.config().library_dir.join(&rec.path),
            lib.out.join(old),
        )
        .unwrap();

        let r = lib.engine.export(&flat, &CancellationToken::new()).unwrap();
        assert_eq!((r.placed, r.failed), (1, 0), "{r:?}");
        assert_eq!(files(&lib.out), ["IMG_0.jpg", "IMG_1.jpg"]);
        assert!(!lib.out.join("2020").exists(), "no empty folder is left");
    }

    /// An export stopped dead after two placements (as a crash would leave it), then run
    /// again: every file is adopted under its own name, none is duplicated or orphaned.
    async fn crash_then_resume(mode: ExportMode, records_written: bool) {
        let lib = library(5).await;
        let t = target(&lib, "{year}/{month}/{filename}", mode);
        let r = lib
            .engine
            .export_inner(&t, &CancellationToken::new(), Some((2, records_written)))
            .unwrap();
        assert_eq!(r.placed, 2);
        assert_eq!(files(&lib.out).len(), 2);
        assert_eq!(
            keys(&lib, "nas", JOURNAL),
            1,
            "the journal survives the crash"
        );

        let r = lib.engine.export(&t, &CancellationToken::new()).unwrap();
        assert_eq!(
            (r.placed, r.foreign_kept, r.failed, r.unchanged),
            (3, 0, 0, 2),
            "{mode:?} records_written={records_written}: {r:?}"
        );
        let on_disk = files(&lib.out);
        let recorded: Vec<String> = lib
            .engine
            .export_manifest("nas")
            .unwrap()
            .into_iter()
            .map(|(_, rel)| rel)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(on_disk, recorded, "{mode:?}: disk and manifest agree");
        let mut names: Vec<&str> = on_disk.iter().map(|f| &f[f.len() - 9..]).collect();
        names.sort_unstable();
        // Five files, none under a suffixed name, no temp file.
        assert_eq!(
            names,
            [
                "IMG_0.jpg",
                "IMG_1.jpg",
                "IMG_2.jpg",
                "IMG_3.jpg",
                "IMG_4.jpg"
            ],
            "{on_disk:?}"
        );
        assert_eq!(keys(&lib, "nas", JOURNAL), 0);
        let r = lib.engine.export(&t, &CancellationToken::new()).unwrap();
        assert_eq!((r.placed, r.unchanged), (0, 5), "{r:?}");
    }

    #[tokio::test]
    async fn an_interrupted_copy_export_is_adopted_not_duplicated() {
        crash_then_resume(ExportMode::Copy, false).await;
        crash_then_resume(ExportMode::Copy, true).await;
    }

    #[tokio::test]
    async fn an_interrupted_hardlink_export_is_adopted_not_duplicated() {
        crash_then_resume(ExportMode::Hardlink, false).await;
        crash_then_resume(ExportMode::Hardlink, true).await;
    }

    /// Enough items for the placement threads (chunks of 64 or more new files).
    #[tokio::test]
    async fn placing_on_several_threads_records_every_file_once() {
        let lib = library(300).await;
        for (name, mode) in [("c", ExportMode::Copy), ("h", ExportMode::Hardlink)] {
            let out = lib.out.join(name);
            std::fs::create_dir(&out).unwrap();
            let mut t =
                ExportTarget::new(name, &out, Template::parse("{month}/{filename}").unwrap());
            t.mode = mode;
            let r = lib.engine.export(&t, &CancellationToken::new()).unwrap();
            assert_eq!((r.placed, r.failed, r.foreign_kept), (300, 0, 0), "{r:?}");
            let mut recorded: Vec<String> = lib
                .engine
                .export_manifest(name)
                .unwrap()
                .into_iter()
                .map(|(_, rel)| rel)
                .collect();
            recorded.sort();
            assert_eq!(files(&out), recorded);
            let r = lib.engine.export(&t, &CancellationToken::new()).unwrap();
            assert_eq!((r.placed, r.unchanged), (0, 300), "{r:?}");
            assert_eq!(keys(&lib, name, JOURNAL), 0);
            assert_eq!(keys(&lib, name, SEGMENT), 1);
        }
    }

    /// The path taken on NFS/SMB, where `renameat2(RENAME_NOREPLACE)` is refused.
    #[test]
    fn the_fallback_rename_never_replaces_a_file_that_appeared() {
        let tmp = tempfile::tempdir().unwrap();
        let (from, to) = (tmp.path().join(".a.jpg.part-1"), tmp.path().join("a.jpg"));
        std::fs::write(&from, b"ours").unwrap();
        std::fs::write(&to, b"someone else's").unwrap();
        let e = rename_by_link(&from, &to).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&to).unwrap(), b"someone else's");
        assert_eq!(std::fs::read(&from).unwrap(), b"ours");

        std::fs::remove_file(&to).unwrap();
        rename_by_link(&from, &to).unwrap();
        assert_eq!(std::fs::read(&to).unwrap(), b"ours");
        assert!(!from.exists());
        assert_eq!(std::fs::metadata(&to).unwrap().nlink(), 1);
    }

    #[tokio::test]
    async fn a_crash_while_switching_from_hardlink_to_copy_never_adopts_a_link_as_a_copy() {
        let lib = library(3).await;
        let mut t = target(&lib, "{filename}", ExportMode::Hardlink);
        lib.engine.export(&t, &CancellationToken::new()).unwrap();
        t.mode = ExportMode::Copy;
        lib.engine
            .export_inner(&t, &CancellationToken::new(), Some((1, false)))
            .unwrap();
        let r = lib.engine.export(&t, &CancellationToken::new()).unwrap();
        assert_eq!(r.failed, 0, "{r:?}");
        for f in files(&lib.out) {
            let meta = std::fs::metadata(lib.out.join(&f)).unwrap();
            assert_eq!(
                meta.nlink(),
                1,
                "{f} is still a link into the library: {r:?}"
            );
        }
        assert_eq!(files(&lib.out).len(), 3);
    }

    #[tokio::test]
    async fn temp_files_left_by_a_crash_are_removed_from_the_folders_it_touched() {
        let lib = library(3).await;
        let t = target(&lib, "{year}/{month}/{filename}", ExportMode::Copy);
        lib.engine
            .export_inner(&t, &CancellationToken::new(), Some((2, false)))
            .unwrap();
        // What the named-temp path (NFS, SMB) leaves when killed mid-copy, beside a user's
        // file that only looks similar.
        let placed = files(&lib.out);
        let dir = lib.out.join(placed[0].rsplit_once('/').unwrap().0);
        let stray = dir.join(fsops::temp_name("IMG_1.jpg"));
        std::fs::write(&stray, b"half a cop").unwrap();
        std::fs::write(dir.join(".notes.part-final"), b"mine").unwrap();
        let r = lib.engine.export(&t, &CancellationToken::new()).unwrap();
        assert_eq!(r.failed, 0, "{r:?}");
        assert!(!stray.exists());
        assert_eq!(
            std::fs::read(dir.join(".notes.part-final")).unwrap(),
            b"mine"
        );
    }

    /// A crash, then a run that no longer wants what the crashed run placed: the files stay
    /// the export's own, so prune removes them (they must not become foreign for good).
    #[tokio::test]
    async fn files_a_crash_left_for_items_no_longer_wanted_stay_ours_and_are_pruned() {
        for mode in [ExportMode::Copy, ExportMode::Hardlink] {
            let lib = library(4).await;
            let mut t = target(&lib, "{year}/{filename}", mode);
            lib.engine
                .export_inner(&t, &CancellationToken::new(), Some((2, false)))
                .unwrap();
            assert_eq!(files(&lib.out).len(), 2);
            t.filter.favorites_only = true; // none is a favourite
            let r = lib.engine.export(&t, &CancellationToken::new()).unwrap();
            assert_eq!((r.placed, r.pruned), (0, 0), "{mode:?}: {r:?}");
            assert_eq!(
                lib.engine.export_manifest("nas").unwrap().len(),
                2,
                "{mode:?}"
            );
            t.prune = true;
            let r = lib.engine.export(&t, &CancellationToken::new()).unwrap();
            assert_eq!(r.pruned, 2, "{mode:?}: {r:?}");
            assert!(files(&lib.out).is_empty(), "{mode:?}");
            assert!(lib.engine.export_manifest("nas").unwrap().is_empty());
        }
    }

    #[tokio::test]
    async fn a_file_that_moves_and_changes_in_one_run_is_copied_anew_not_renamed() {
        let lib = library(2).await;
        lib.engine
            .export(
                &target(&lib, "{filename}", ExportMode::Copy),
                &CancellationToken::new(),
            )
            .unwrap();
        // The library file is replaced by other bytes (as a Takeout original replaces a
        // download), in the same run as a template change.
        let index = lib.engine.index();
        let (id, mut rec) = index
            .items()
            .map(Result::unwrap)
            .find(|(_, r)| r.filename == "IMG_0.jpg")
            .unwrap();
        let library = lib.engine.config().library_dir.join(&rec.path);
        std::fs::write(&library, b"the original").unwrap();
        rec.size = Some(12);
        rec.blake3 = Some(ContentHash::of(b"the original"));
        index.put_item(&id, &rec).unwrap();

        let t = target(&lib, "{year}/{filename}", ExportMode::Copy);
        let r = lib.engine.export(&t, &CancellationToken::new()).unwrap();
        assert_eq!((r.renamed, r.placed, r.failed), (1, 1, 0), "{r:?}");
        assert_eq!(files(&lib.out), ["2020/IMG_0.jpg", "2020/IMG_1.jpg"]);
        assert_eq!(
            std::fs::read(lib.out.join("2020/IMG_0.jpg")).unwrap(),
            b"the original"
        );
        let r = lib.engine.export(&t, &CancellationToken::new()).unwrap();
        assert_eq!(r.unchanged, 2, "{r:?}");
    }

    #[tokio::test]
    async fn a_damaged_copy_left_by_a_crash_is_not_adopted() {
        let lib = library(3).await;
        let t = target(&lib, "{filename}", ExportMode::Copy);
        lib.engine
            .export_inner(&t, &CancellationToken::new(), Some((3, true)))
            .unwrap();
        // What a crash before the syncfs can do to a copy: same size, other bytes.
        let victim = lib.out.join("IMG_1.jpg");
        let len = std::fs::metadata(&victim).unwrap().len() as usize;
        std::fs::write(&victim, vec![0u8; len]).unwrap();
        let r = lib.engine.export(&t, &CancellationToken::new()).unwrap();
        // The damaged file is no longer ours (kept, never deleted); the item is placed anew.
        assert_eq!((r.placed, r.foreign_kept, r.unchanged), (1, 1, 2), "{r:?}");
        assert_eq!(std::fs::read(&victim).unwrap(), vec![0u8; len]);
        let manifest = lib.engine.export_manifest("nas").unwrap();
        assert!(
            manifest.iter().all(|(_, rel)| rel != "IMG_1.jpg"),
            "{manifest:?}"
        );
        assert_eq!(files(&lib.out).len(), 4);
    }

    #[tokio::test]
    async fn schema_1_records_are_read_then_folded_into_segments() {
        let lib = library(3).await;
        let t = target(&lib, "{year}/{filename}", ExportMode::Hardlink);
        lib.engine.export(&t, &CancellationToken::new()).unwrap();
        // Rewrite the manifest as schema 1 did: one JSON record per placement, the last one
        // still pending.
        let store = lib.engine.index().store();
        let (m, _, _) = Manifest::load(store, "nas").unwrap();
        let mut batch: Batch = m.segments.iter().map(|k| (k.clone(), None)).collect();
        let mut entries: Vec<_> = m.map.iter().collect();
        entries.sort_by(|a, b| a.0.cmp(b.0));
        for (n, ((id, album), p)) in entries.into_iter().enumerate() {
            let mut key = b"nas\0".to_vec();
            key.extend_from_slice(id.as_bytes());
            key.push(0);
            key.extend_from_slice(album.as_bytes());
            let mut old = p.clone();
            old.pending = n == 2;
            batch.push((key, Some(serde_json::to_vec(&old).unwrap())));
        }
        store.apply(Tree::Exports, batch).unwrap();
        assert_eq!(keys(&lib, "nas", SEGMENT), 0);

        let before = files(&lib.out);
        let r = lib.engine.export(&t, &CancellationToken::new()).unwrap();
        assert_eq!((r.placed, r.unchanged, r.foreign_kept), (0, 3, 0), "{r:?}");
        assert_eq!(files(&lib.out), before);
        // Only segments are left under the target's prefix.
        let all = store.scan(Tree::Exports, b"nas\0").count();
        assert_eq!((all, keys(&lib, "nas", SEGMENT)), (1, 1));
        assert_eq!(lib.engine.export_manifest("nas").unwrap().len(), 3);
    }

    #[tokio::test]
    async fn the_segment_log_stays_bounded_across_many_runs() {
        let lib = library(4).await;
        let a = target(&lib, "{year}/{filename}", ExportMode::Hardlink);
        let b = target(&lib, "{year}-{month}/{filename}", ExportMode::Hardlink);
        let mut most = 0;
        for run in 0..40 {
            let t = if run % 2 == 0 { &a } else { &b };
            let r = lib.engine.export(t, &CancellationToken::new()).unwrap();
            assert_eq!(r.placed + r.renamed, 4, "run {run}: {r:?}");
            most = most.max(keys(&lib, "nas", SEGMENT));
        }
        // One fresh segment holds 4 records: at most 2 × 1 + 16 + the one written last.
        assert!(most <= 19, "{most} segments");
        let (m, _, _) = Manifest::load(lib.engine.index().store(), "nas").unwrap();
        assert!(m.stored_entries <= 2 * 4 + CHUNK, "{}", m.stored_entries);
        assert_eq!(files(&lib.out).len(), 4);
        assert!(files(&lib.out).iter().all(|f| f.contains('-')));
    }
}
