//! The engine: open, sync (list → index → name → download → albums → removals), reports.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::{AlbumLinks, Durability, EngineConfig};
use crate::error::Error;
use crate::fsops::{self, HashingWriter};
use crate::index::{AlbumRecord, CursorRecord, Index, ItemRecord, ItemState, PendingRecord};
use crate::naming::{self, FilesystemRules};
use crate::report::{
    IndexedItem, ProgressEvent, ProgressSink, ReindexReport, RunOutcome, RunReport, StatusReport,
    SyncOptions, VerifyReport, push_capped,
};
use crate::seen::SeenSet;
use crate::source::{ListScope, Prepared, Source, SourceError};
use crate::store::{SledStore, Store, Tree};
use crate::types::{AlbumId, ContentHash, MediaId, Readiness, RemoteAlbum, RemoteItem, SourceKind};

/// Flush the index after this many listed items.
const CHECKPOINT_ITEMS: u64 = 1000;
/// In batch durability, commit after this many completed files; flush the index as often.
const BATCH_COMMIT: usize = 64;
/// Owner prefix of paths found by `reindex` that no item has claimed yet.
use crate::index::ORPHAN_PREFIX as ORPHAN;
/// Owner prefix of album folder claims.
const ALBUM_OWNER: &str = "album:";
/// Fresh URLs fetched for one file in one run before giving up on it.
const MAX_URL_REFRESHES: u32 = 3;
/// Run history kept in the index.
const MAX_RUNS_KEPT: usize = 200;

/// The sync engine over one library directory and one index.
pub struct Engine {
    config: EngineConfig,
    rules: FilesystemRules,
    index: Index,
}

/// Why a source's run stopped early.
enum Stop {
    Paused(String),
    Cancelled,
    Fatal(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Stop::Fatal(e)
    }
}

/// How one download ended.
enum ItemResult {
    Done {
        size: u64,
        blake3: ContentHash,
        adopted: bool,
        /// Batch durability: the complete temp file, renamed to its final name only after
        /// the batch's `syncfs` (a final name never holds data that is not on disk yet).
        staged: Option<PathBuf>,
    },
    Processing,
    Failed(String),
    Quota(String),
    Unauthorized(String),
    DiskFull(PathBuf),
    Fatal(Error),
    Cancelled,
}

struct ItemOutcome {
    id: MediaId,
    path: String,
    result: ItemResult,
}

/// What download tasks share.
struct DlCtx {
    library: PathBuf,
    durability: Durability,
}

/// Rejects settings the engine cannot run with, before anything is created on disk.
fn validate(config: &EngineConfig) -> Result<(), Error> {
    if config.max_concurrent_downloads == 0 {
        return Err(Error::Config(
            "max_concurrent_downloads must be at least 1".into(),
        ));
    }
    if !(0.0..=1.0).contains(&config.max_removal_fraction) {
        return Err(Error::Config(
            "max_removal_fraction must be between 0 and 1".into(),
        ));
    }
    Ok(())
}

impl Engine {
    /// Opens the library and index, creating both directories if needed.
    ///
    /// Fails with [`Error::IndexLocked`] when another engine (in any process) has the index.
    pub fn open(config: EngineConfig) -> Result<Engine, Error> {
        validate(&config)?;
        // Creates the state directory (the index's parent) too.
        let store = SledStore::open(&config.state_dir.join("index"))?;
        Engine::on_store(config, Arc::new(store))
    }

    /// Compacts the index of `config` if a run grew its log (see [`SledStore`]): what
    /// [`Engine::open`] would do at the next open, done now, so that the next run (or a
    /// `status` while the daemon idles) does not pay for it. Call with no engine open on
    /// the same state directory.
    pub fn maintain_index(config: &EngineConfig) -> Result<(), Error> {
        SledStore::maintain(&config.state_dir.join("index"))
    }

    /// Like [`Engine::open`], on a store the caller opened: a wrapper that counts or injects
    /// faults around a [`SledStore`], or another backend.
    pub fn open_with_store(config: EngineConfig, store: Arc<dyn Store>) -> Result<Engine, Error> {
        validate(&config)?;
        Engine::on_store(config, store)
    }

    /// [`Engine::open_with_store`] with `config` already validated.
    fn on_store(config: EngineConfig, store: Arc<dyn Store>) -> Result<Engine, Error> {
        for d in [&config.library_dir, &config.state_dir] {
            std::fs::create_dir_all(d).map_err(|e| Error::io("create directory", d, e))?;
        }
        let rules = match config.filesystem {
            FilesystemRules::Auto => probe_rules(&config.library_dir)?,
            r => r,
        };
        let index = Index::new(store)?;
        Ok(Engine {
            config,
            rules,
            index,
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The filename rules in use (`Auto` resolved).
    pub fn filesystem_rules(&self) -> FilesystemRules {
        self.rules
    }

    /// The index, for the Takeout importer (`takeout_import.rs`).
    pub(crate) fn index(&self) -> &Index {
        &self.index
    }

    /// Makes the index durable.
    pub fn flush(&self) -> Result<(), Error> {
        self.index.flush()
    }

    /// One sync run over `sources`, in order.
    ///
    /// Returns `Ok` for completed, paused (quota) and cancelled runs (see
    /// [`RunReport::outcome`]); `Err` for disk full, authorisation failures and index errors.
    /// In every case the index is flushed and no partial file is left in the library.
    pub async fn sync(
        &self,
        sources: &[Arc<dyn Source>],
        opts: SyncOptions,
        progress: Arc<dyn ProgressSink>,
        shutdown: CancellationToken,
    ) -> Result<RunReport, Error> {
        let run = self.index.next_run_id()?;
        let mut report = RunReport::new(run);
        let lib = self.config.library_dir.clone();
        report.temp_files_removed =
            tokio::task::spawn_blocking(move || fsops::remove_temp_files(&lib))
                .await
                .map_err(|e| Error::Config(format!("cleanup task failed: {e}")))??
                as u64;

        let mut fatal = None;
        for source in sources {
            match self
                .sync_source(source, opts, &*progress, &shutdown, &mut report)
                .await
            {
                Ok(()) => {}
                Err(Stop::Paused(reason)) => {
                    tracing::warn!(%reason, "daily quota exhausted; pausing until the next run");
                    report.outcome = RunOutcome::Paused { reason };
                    break;
                }
                Err(Stop::Cancelled) => {
                    report.outcome = RunOutcome::Cancelled;
                    break;
                }
                Err(Stop::Fatal(e)) => {
                    report.outcome = RunOutcome::Failed {
                        error: e.to_string(),
                    };
                    fatal = Some(e);
                    break;
                }
            }
            if shutdown.is_cancelled() {
                report.outcome = RunOutcome::Cancelled;
                break;
            }
        }
        report.finished_at = Some(Utc::now());
        // Record the run even when it failed: status shows it.
        let recorded = self
            .index
            .put_run(run, &report)
            .and_then(|()| self.trim_runs())
            .and_then(|()| self.index.flush());
        progress.on_event(&ProgressEvent::Finished {
            outcome: report.outcome.clone(),
        });
        match (fatal, recorded) {
            (Some(e), _) => Err(e),
            (None, Err(e)) => Err(e),
            (None, Ok(())) => Ok(report),
        }
    }

    fn trim_runs(&self) -> Result<(), Error> {
        let n = self.index.store().len(Tree::Runs);
        if n <= MAX_RUNS_KEPT {
            return Ok(());
        }
        let old: Vec<Vec<u8>> = self
            .index
            .store()
            .scan(Tree::Runs, b"")
            .take(n - MAX_RUNS_KEPT)
            .map(|r| r.map(|(k, _)| k))
            .collect::<Result<_, _>>()?;
        for k in old {
            self.index.store().remove(Tree::Runs, &k)?;
        }
        Ok(())
    }

    async fn sync_source(
        &self,
        source: &Arc<dyn Source>,
        opts: SyncOptions,
        progress: &dyn ProgressSink,
        shutdown: &CancellationToken,
        report: &mut RunReport,
    ) -> Result<(), Stop> {
        let kind = source.kind();
        let mut cursor = self.index.cursor(kind)?;
        let now = Utc::now();
        let interval = chrono::Duration::from_std(self.config.full_rescan_interval)
            .unwrap_or(chrono::Duration::MAX);
        let full = opts.rescan
            || match (cursor.last_full_ms, cursor.newest_taken_ms) {
                (Some(last), Some(_)) => {
                    now.timestamp_millis().saturating_sub(last) >= interval.num_milliseconds()
                }
                _ => true,
            };
        // A source that only sees a subset (a Picker session) never lists fully.
        let full = full && source.lists_everything();
        report.full_scan |= full;
        let scope = match (full, cursor.newest_taken_ms.and_then(ms_to_utc)) {
            (false, Some(t)) => ListScope::Since(t),
            _ => ListScope::Full,
        };
        progress.on_event(&ProgressEvent::ListingStarted { source: kind, full });

        // 1. Listing → index. Streams straight into sled: memory stays flat.
        let mut newest = cursor.newest_taken_ms;
        let horizon_ms = now.timestamp_millis().saturating_add(24 * 3600 * 1000);
        let mut listing_complete = true;
        let mut seen = SeenSet::new(full);
        {
            let mut stream = source.list(scope);
            let mut count = 0u64;
            loop {
                let next = tokio::select! {
                    _ = shutdown.cancelled() => return self.cancelled(),
                    n = stream.next() => n,
                };
                match next {
                    None => break,
                    Some(Ok(item)) => {
                        // A capture date in the future (a camera with a wrong clock) must
                        // not become the start of every incremental listing.
                        if let Some(t) = item
                            .taken_at
                            .map(|t| t.timestamp_millis())
                            .filter(|t| *t <= horizon_ms)
                        {
                            newest = Some(newest.map_or(t, |n| n.max(t)));
                        }
                        self.upsert(&item, kind, report)?;
                        seen.insert(&item.id);
                        count += 1;
                        report.listed += 1;
                        if count.is_multiple_of(100) {
                            progress.on_event(&ProgressEvent::Listed {
                                source: kind,
                                count,
                            });
                        }
                        if count.is_multiple_of(CHECKPOINT_ITEMS) {
                            self.index.flush()?;
                        }
                    }
                    Some(Err(e)) => {
                        self.source_error(kind, "listing", e, report)?;
                        listing_complete = false;
                        break;
                    }
                }
            }
            progress.on_event(&ProgressEvent::Listed {
                source: kind,
                count,
            });
        }
        self.index.flush()?;

        // 2. Albums and memberships (may add items only reachable through albums: #89).
        let albums_complete = self
            .sync_albums(source, full, &mut seen, shutdown, report)
            .await?;
        self.index.flush()?;

        // 3. Names for new items; adoption of files already on disk.
        self.place_items(report)?;
        self.index.flush()?;

        // 4. Removals, only after a complete full listing.
        if full && listing_complete && albums_complete {
            self.detect_removals(kind, &mut seen, report)?;
        }

        // 5. Downloads.
        let dl = self
            .download_pending(source, progress, shutdown, report)
            .await;
        self.index.flush()?;

        // 6. Album folders, also after a paused/cancelled download phase: links are cheap and
        // cover what did arrive.
        if self.config.album_links != AlbumLinks::None && !matches!(dl, Err(Stop::Fatal(_))) {
            self.build_album_trees(kind, report)?;
        }

        // 7. Cursor: only after the listing was complete.
        if listing_complete {
            cursor.newest_taken_ms = newest;
            if full && albums_complete {
                cursor.last_full_ms = Some(now.timestamp_millis());
            }
            self.index.put_cursor(kind, &cursor)?;
        }
        self.index.flush()?;
        dl
    }

    fn cancelled(&self) -> Result<(), Stop> {
        self.index.flush()?;
        Err(Stop::Cancelled)
    }

    /// Maps a listing-level source error: quota pauses, auth is fatal, others are noted.
    fn source_error(
        &self,
        kind: SourceKind,
        what: &str,
        e: SourceError,
        report: &mut RunReport,
    ) -> Result<(), Stop> {
        match e {
            SourceError::QuotaExhausted(m) => Err(Stop::Paused(m)),
            SourceError::Unauthorized(_) => Err(Stop::Fatal(Error::Source {
                source_kind: kind,
                error: e,
            })),
            other => {
                report.note(format!(
                    "{kind} {what} failed, will retry next run: {other}"
                ));
                Ok(())
            }
        }
    }

    /// Records a listed item: new ones are queued for naming; known ones get fresh metadata.
    ///
    /// A known item whose metadata did not change is not rewritten: a no-op rescan writes
    /// nothing per item (sled appends every rewrite to its log).
    fn upsert(
        &self,
        item: &RemoteItem,
        kind: SourceKind,
        report: &mut RunReport,
    ) -> Result<(), Error> {
        match self.index.item(&item.id)? {
            None => {
                let rec = ItemRecord::from_remote(item, kind);
                self.index.put_item(&item.id, &rec)?;
                self.queue_for_naming(item)?;
                report.new_items += 1;
            }
            Some(mut rec) => {
                let before = rec.clone();
                rec.update_metadata(item);
                if rec.state == ItemState::Removed {
                    // Back at the source: it keeps its old path.
                    if rec.path.is_empty() {
                        rec.state = ItemState::Unplaced;
                        self.queue_for_naming(item)?;
                    } else if self.config.library_dir.join(&rec.path).is_file() {
                        rec.state = ItemState::Done;
                    } else {
                        rec.state = ItemState::Pending;
                        rec.size = None;
                        rec.blake3 = None;
                        self.index
                            .put_pending(&item.id, &PendingRecord::default())?;
                    }
                }
                if rec != before {
                    self.index.put_item(&item.id, &rec)?;
                }
            }
        }
        Ok(())
    }

    /// Queues an item for [`Self::place_items`] under `photos/YYYY/MM/<sanitised name>`.
    fn queue_for_naming(&self, item: &RemoteItem) -> Result<(), Error> {
        let folder = naming::month_folder(item.taken_at, self.config.folder_timezone);
        let name = naming::sanitize_component(&item.filename, self.rules);
        let desired = format!("photos/{folder}/{name}");
        self.index
            .add_unplaced(&naming::claim_key(&desired, self.rules), &item.id, &desired)
    }

    async fn sync_albums(
        &self,
        source: &Arc<dyn Source>,
        full: bool,
        seen: &mut SeenSet,
        shutdown: &CancellationToken,
        report: &mut RunReport,
    ) -> Result<bool, Stop> {
        let kind = source.kind();
        let mut complete = true;
        let mut albums = source.albums();
        // Albums are few (thousands at most): collecting their headers keeps the borrow of
        // the album stream apart from the member streams.
        let mut listed: Vec<RemoteAlbum> = Vec::new();
        loop {
            let next = tokio::select! {
                _ = shutdown.cancelled() => return self.cancelled().map(|()| false),
                n = albums.next() => n,
            };
            match next {
                None => break,
                Some(Ok(a)) => listed.push(a),
                Some(Err(e)) => {
                    self.source_error(kind, "album listing", e, report)?;
                    complete = false;
                    break;
                }
            }
        }
        drop(albums);
        let listed_ids: HashSet<AlbumId> = listed.iter().map(|a| a.id.clone()).collect();
        for album in listed {
            let existing = self.index.album(&album.id)?;
            let relist = full
                || match &existing {
                    None => true,
                    Some(r) => r.members_stale || r.count != album.item_count,
                };
            let mut rec = existing.clone().unwrap_or(AlbumRecord {
                source: kind,
                title: album.title.clone(),
                dir: String::new(),
                count: None,
                members_stale: true,
            });
            rec.title = album.title.clone();
            if relist {
                // Google caps an album at 20,000 items, which bounds this list. Memberships
                // are rewritten only when they changed: a weekly full rescan of an unchanged
                // library writes nothing.
                let mut members = Vec::new();
                let mut items = source.album_items(&album.id);
                let mut ok = true;
                loop {
                    let next = tokio::select! {
                        _ = shutdown.cancelled() => return self.cancelled().map(|()| false),
                        n = items.next() => n,
                    };
                    match next {
                        None => break,
                        Some(Ok(item)) => {
                            self.upsert(&item, kind, report)?;
                            seen.insert(&item.id);
                            report.listed += 1;
                            members.push(item.id);
                        }
                        Some(Err(e)) => {
                            self.source_error(kind, "album item listing", e, report)?;
                            ok = false;
                            complete = false;
                            break;
                        }
                    }
                }
                if ok {
                    // A stale album may have been cut off between its two membership trees
                    // by a crash: only a fresh album is trusted to compare equal.
                    let was_stale = existing.as_ref().is_none_or(|r| r.members_stale);
                    if was_stale || !self.index.members_equal(&album.id, &members)? {
                        rec.members_stale = true;
                        self.index.put_album(&album.id, &rec)?;
                        self.index.replace_members(&album.id, &members)?;
                    }
                    rec.members_stale = false;
                    rec.count = album.item_count;
                } else {
                    rec.members_stale = true;
                }
            }
            if existing.as_ref() != Some(&rec) {
                self.index.put_album(&album.id, &rec)?;
            }
        }
        if full && complete {
            // Albums gone at the source: drop their folders (links only) and records.
            let gone: Vec<_> = self
                .index
                .albums()
                .filter(|r| {
                    r.as_ref()
                        .map(|(id, a)| a.source == kind && !listed_ids.contains(id))
                        .unwrap_or(true)
                })
                .collect::<Result<_, _>>()?;
            for (id, a) in gone {
                if !a.dir.is_empty() {
                    let dir = self.config.library_dir.join(&a.dir);
                    match std::fs::remove_dir_all(&dir) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(Error::io("remove album folder", dir, e).into()),
                    }
                    self.index
                        .release_path(&naming::claim_key(&a.dir, self.rules))?;
                }
                self.index.remove_album(&id)?;
            }
        }
        Ok(complete)
    }

    /// Gives every unplaced item its permanent path.
    ///
    /// Rule (independent of listing order): among the items that want the same name in the
    /// same folder *in this batch*, the one with the smallest id gets the plain name if it is
    /// free; every other gets `name_<8 hex of blake3(id)>.ext`. A name already held by an
    /// item from an earlier run stays with it (paths never change), so a newcomer gets the
    /// suffixed name. A fresh machine syncing the same library produces the same names.
    fn place_items(&self, report: &mut RunReport) -> Result<(), Error> {
        let mut group: Option<String> = None;
        for entry in self.index.unplaced() {
            let (key, claim, id, desired) = entry?;
            let first_in_group = group.as_deref() != Some(claim.as_str());
            if first_in_group {
                group = Some(claim.clone());
            }
            let Some(mut rec) = self.index.item(&id)? else {
                self.index.remove_unplaced(&key)?;
                continue;
            };
            if rec.state != ItemState::Unplaced {
                self.index.remove_unplaced(&key)?;
                continue;
            }
            let (dir, name) = desired.rsplit_once('/').unwrap_or(("photos", &desired));
            let mut candidates = Vec::with_capacity(5);
            if first_in_group {
                candidates.push(name.to_owned());
            }
            for len in [8, 16, 32, 64] {
                candidates.push(naming::suffixed_name(name, id.as_str(), len));
            }
            let mut chosen = None;
            for cand in candidates {
                let rel = format!("{dir}/{cand}");
                let ck = naming::claim_key(&rel, self.rules);
                let owner = self.index.path_owner(&ck)?;
                let free = match owner {
                    Some(o) => o.is(id.as_str()) || o.is_orphan(),
                    None => true,
                };
                if !free {
                    continue;
                }
                let full = self.config.library_dir.join(&rel);
                match std::fs::symlink_metadata(&full) {
                    Ok(m) if m.is_file() && adoptable(&rec, m.len()) => {
                        chosen = Some((rel, ck, true));
                        break;
                    }
                    // Someone else's file (or a directory): never overwrite it.
                    Ok(_) => continue,
                    Err(_) => {
                        chosen = Some((rel, ck, false));
                        break;
                    }
                }
            }
            let Some((rel, ck, adopt)) = chosen else {
                report.note(format!("no free name for {id} ({desired})"));
                continue;
            };
            self.index.claim_path(&ck, id.as_str())?;
            rec.path = rel;
            if adopt {
                let full = self.config.library_dir.join(&rec.path);
                let (size, hash) =
                    fsops::hash_file(&full).map_err(|e| Error::io("read", &full, e))?;
                rec.size = Some(size);
                rec.blake3 = Some(hash);
                rec.state = ItemState::Done;
                report.adopted += 1;
            } else {
                rec.state = ItemState::Pending;
                self.index.put_pending(&id, &PendingRecord::default())?;
            }
            self.index.put_item(&id, &rec)?;
            self.index.remove_unplaced(&key)?;
        }
        Ok(())
    }

    fn detect_removals(
        &self,
        kind: SourceKind,
        seen: &mut SeenSet,
        report: &mut RunReport,
    ) -> Result<(), Error> {
        seen.seal();
        let unseen = |rec: &ItemRecord, id: &MediaId| {
            rec.source == kind && rec.state != ItemState::Removed && !seen.contains(id)
        };
        let mut present = 0u64;
        let mut gone = 0u64;
        for r in self.index.items() {
            let (id, rec) = r?;
            if rec.source != kind || rec.state == ItemState::Removed {
                continue;
            }
            present += 1;
            if unseen(&rec, &id) {
                gone += 1;
            }
        }
        if gone == 0 {
            return Ok(());
        }
        if gone as f64 > self.config.max_removal_fraction * present as f64 {
            report.removal_suppressed = Some(gone);
            report.note(format!(
                "{kind}: the full listing lacks {gone} of {present} known items, more than the \
                 {:.0}% safety limit; removing nothing (Google listings can come back short)",
                self.config.max_removal_fraction * 100.0
            ));
            return Ok(());
        }
        let gone_items: Vec<(MediaId, ItemRecord)> = self
            .index
            .items()
            .filter(|r| r.as_ref().map(|(id, rec)| unseen(rec, id)).unwrap_or(true))
            .collect::<Result<_, _>>()?;
        // Bounded by max_removal_fraction of the library.
        for (id, mut rec) in gone_items {
            if self.config.delete_removed && rec.state == ItemState::Done {
                self.move_to_trash(&rec.path)?;
            }
            rec.state = ItemState::Removed;
            self.index.remove_pending(&id)?;
            self.index.put_item(&id, &rec)?;
            report.removed += 1;
        }
        Ok(())
    }

    fn move_to_trash(&self, rel: &str) -> Result<(), Error> {
        let lib = &self.config.library_dir;
        let from = lib.join(rel);
        if !from.exists() {
            return Ok(());
        }
        let to = lib.join(".trash").join(rel);
        if let Some(parent) = to.parent() {
            fsops::ensure_dir(lib, parent)?;
        }
        std::fs::rename(&from, &to).map_err(|e| Error::io("move to trash", &from, e))?;
        if let Some(parent) = from.parent() {
            fsops::fsync_dir(parent)?;
        }
        Ok(())
    }

    async fn download_pending(
        &self,
        source: &Arc<dyn Source>,
        progress: &dyn ProgressSink,
        shutdown: &CancellationToken,
        report: &mut RunReport,
    ) -> Result<(), Stop> {
        let kind = source.kind();
        let now_ms = Utc::now().timestamp_millis();
        let stop = shutdown.child_token();
        let sem = Arc::new(Semaphore::new(self.config.max_concurrent_downloads));
        let ctx = Arc::new(DlCtx {
            library: self.config.library_dir.clone(),
            durability: self.config.durability,
        });
        let batch_size = source.max_batch().max(1);
        let mut state = DlState {
            tasks: JoinSet::new(),
            uncommitted: Vec::new(),
            since_flush: 0,
            stop_reason: None,
        };

        let planned = self.count_due(kind, now_ms)?;
        progress.on_event(&ProgressEvent::DownloadsPlanned {
            source: kind,
            count: planned,
        });

        let mut batch: Vec<(MediaId, String)> = Vec::with_capacity(batch_size);
        for entry in self.index.pendings() {
            if stop.is_cancelled() {
                break;
            }
            let (id, p) = entry?;
            let Some(rec) = self.index.item(&id)? else {
                self.index.remove_pending(&id)?;
                continue;
            };
            if rec.state != ItemState::Pending {
                if rec.state == ItemState::Done || rec.state == ItemState::Removed {
                    self.index.remove_pending(&id)?;
                }
                continue;
            }
            if rec.source != kind {
                continue;
            }
            if p.next_retry_ms > now_ms {
                report.deferred += 1;
                continue;
            }
            batch.push((id, rec.path));
            if batch.len() >= batch_size {
                let b = std::mem::take(&mut batch);
                self.run_batch(source, &ctx, &sem, &stop, b, &mut state, progress, report)
                    .await?;
            }
        }
        if !batch.is_empty() && !stop.is_cancelled() {
            self.run_batch(
                source, &ctx, &sem, &stop, batch, &mut state, progress, report,
            )
            .await?;
        }
        while let Some(j) = state.tasks.join_next().await {
            self.handle_outcome(j, &stop, &mut state, progress, report)?;
        }
        self.commit_batch(&mut state.uncommitted, report)?;
        if shutdown.is_cancelled() && state.stop_reason.is_none() {
            return Err(Stop::Cancelled);
        }
        match state.stop_reason.take() {
            Some(s) => Err(s),
            None => Ok(()),
        }
    }

    fn count_due(&self, kind: SourceKind, now_ms: i64) -> Result<u64, Error> {
        let mut n = 0;
        for e in self.index.pendings() {
            let (id, p) = e?;
            if p.next_retry_ms > now_ms {
                continue;
            }
            if let Some(rec) = self.index.item(&id)?
                && rec.source == kind
                && rec.state == ItemState::Pending
            {
                n += 1;
            }
        }
        Ok(n)
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_batch(
        &self,
        source: &Arc<dyn Source>,
        ctx: &Arc<DlCtx>,
        sem: &Arc<Semaphore>,
        stop: &CancellationToken,
        batch: Vec<(MediaId, String)>,
        state: &mut DlState,
        progress: &dyn ProgressSink,
        report: &mut RunReport,
    ) -> Result<(), Stop> {
        // Wait for a free slot before asking for URLs, so they are fresh when used.
        let first_permit = tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            p = sem.clone().acquire_owned() => p.map_err(|_| Stop::Cancelled)?,
        };
        let ids: Vec<MediaId> = batch.iter().map(|(id, _)| id.clone()).collect();
        let prepared = tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            p = source.prepare(&ids) => p,
        };
        let prepared = match prepared {
            Ok(p) => p,
            Err(SourceError::QuotaExhausted(m)) => {
                state.stop(Stop::Paused(m), stop);
                return Ok(());
            }
            Err(e @ SourceError::Unauthorized(_)) => {
                state.stop(
                    Stop::Fatal(Error::Source {
                        source_kind: source.kind(),
                        error: e,
                    }),
                    stop,
                );
                return Ok(());
            }
            Err(e) => {
                report.note(format!(
                    "{}: getting download URLs failed, retrying next run: {e}",
                    source.kind()
                ));
                return Ok(());
            }
        };
        let mut first_permit = Some(first_permit);
        for ((id, path), prep) in batch.into_iter().zip(prepared) {
            let prep = match prep {
                Ok(p) => p,
                Err(e) => {
                    let result = classify(e, None);
                    self.apply_outcome(
                        ItemOutcome { id, path, result },
                        stop,
                        state,
                        progress,
                        report,
                    )?;
                    continue;
                }
            };
            let permit = match first_permit.take() {
                Some(p) => p,
                None => tokio::select! {
                    _ = stop.cancelled() => return Ok(()),
                    p = sem.clone().acquire_owned() => p.map_err(|_| Stop::Cancelled)?,
                },
            };
            let ctx = ctx.clone();
            let source = source.clone();
            let stop_t = stop.clone();
            state.tasks.spawn(async move {
                let result = download_one(&ctx, &source, prep, &path, &stop_t).await;
                drop(permit);
                ItemOutcome { id, path, result }
            });
            while let Some(j) = state.tasks.try_join_next() {
                self.handle_outcome(j, stop, state, progress, report)?;
            }
        }
        Ok(())
    }

    fn handle_outcome(
        &self,
        j: Result<ItemOutcome, tokio::task::JoinError>,
        stop: &CancellationToken,
        state: &mut DlState,
        progress: &dyn ProgressSink,
        report: &mut RunReport,
    ) -> Result<(), Stop> {
        match j {
            Ok(o) => self.apply_outcome(o, stop, state, progress, report),
            Err(e) => {
                report.note(format!("download task failed: {e}"));
                Ok(())
            }
        }
    }

    fn apply_outcome(
        &self,
        o: ItemOutcome,
        stop: &CancellationToken,
        state: &mut DlState,
        progress: &dyn ProgressSink,
        report: &mut RunReport,
    ) -> Result<(), Stop> {
        let ItemOutcome { id, path, result } = o;
        match result {
            ItemResult::Done {
                size,
                blake3,
                adopted,
                staged,
            } => {
                if adopted {
                    report.adopted += 1;
                } else {
                    report.downloaded += 1;
                    report.bytes_downloaded += size;
                }
                progress.on_event(&ProgressEvent::Downloaded {
                    id: id.clone(),
                    path: path.clone(),
                    bytes: size,
                });
                let target = self.config.library_dir.join(&path);
                state.uncommitted.push(Completed {
                    id,
                    size,
                    blake3,
                    staged: staged.map(|tmp| (tmp, target)),
                });
                if self.config.durability == Durability::PerFile
                    || state.uncommitted.len() >= BATCH_COMMIT
                {
                    state.since_flush += state.uncommitted.len();
                    self.commit_batch(&mut state.uncommitted, report)?;
                    if state.since_flush >= BATCH_COMMIT {
                        self.index.flush()?;
                        state.since_flush = 0;
                    }
                }
            }
            ItemResult::Processing => {
                report.processing += 1;
                let mut p = self.index.pending(&id)?.unwrap_or_default();
                p.processing = true;
                p.next_retry_ms = 0;
                self.index.put_pending(&id, &p)?;
            }
            ItemResult::Failed(msg) => {
                report.failed += 1;
                let mut p = self.index.pending(&id)?.unwrap_or_default();
                p.attempts = p.attempts.saturating_add(1);
                p.processing = false;
                let delay = backoff(
                    self.config.retry_backoff,
                    self.config.max_retry_backoff,
                    p.attempts,
                );
                p.next_retry_ms = Utc::now()
                    .timestamp_millis()
                    .saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX));
                // By characters: error text carries file names in any script, and a byte
                // cut inside a character would panic.
                p.last_error = Some(msg.chars().take(300).collect());
                self.index.put_pending(&id, &p)?;
                progress.on_event(&ProgressEvent::ItemFailed {
                    id: id.clone(),
                    error: msg.clone(),
                });
                report.note(format!("{id} ({path}) failed: {msg}"));
            }
            ItemResult::Quota(m) => state.stop(Stop::Paused(m), stop),
            ItemResult::Unauthorized(m) => state.stop(
                Stop::Fatal(Error::Source {
                    source_kind: self
                        .index
                        .item(&id)?
                        .map(|r| r.source)
                        .unwrap_or(SourceKind::LibraryApi),
                    error: SourceError::Unauthorized(m),
                }),
                stop,
            ),
            ItemResult::DiskFull(p) => state.stop(Stop::Fatal(Error::DiskFull { path: p }), stop),
            ItemResult::Fatal(e) => state.stop(Stop::Fatal(e), stop),
            ItemResult::Cancelled => {}
        }
        Ok(())
    }

    /// Records completed files. In per-file durability each was fsynced and renamed before
    /// it got here. In batch durability they are still temp files: one `syncfs` makes their
    /// data durable, then they are renamed, a second `syncfs` makes the renames durable, and
    /// only then does the index record them.
    fn commit_batch(&self, done: &mut Vec<Completed>, report: &mut RunReport) -> Result<(), Error> {
        if done.is_empty() {
            return Ok(());
        }
        if self.config.durability == Durability::Batch {
            fsops::syncfs(&self.config.library_dir)?;
            let mut renamed = Vec::with_capacity(done.len());
            for c in done.drain(..) {
                match &c.staged {
                    Some((tmp, target)) => match std::fs::rename(tmp, target) {
                        Ok(()) => renamed.push(c),
                        Err(e) => {
                            let _ = std::fs::remove_file(tmp);
                            report.note(format!(
                                "{}: rename into {} failed, retrying next run: {e}",
                                c.id,
                                target.display()
                            ));
                        }
                    },
                    None => renamed.push(c),
                }
            }
            fsops::syncfs(&self.config.library_dir)?;
            *done = renamed;
        }
        for Completed {
            id,
            size,
            blake3: hash,
            ..
        } in done.drain(..)
        {
            let Some(mut rec) = self.index.item(&id)? else {
                report.note(format!("{id} vanished from the index during download"));
                continue;
            };
            rec.size = Some(size);
            rec.blake3 = Some(hash);
            rec.state = ItemState::Done;
            self.index.put_item(&id, &rec)?;
            self.index.remove_pending(&id)?;
        }
        Ok(())
    }

    /// Creates or updates `albums/YYYY/MM Title/` folders for this source's albums.
    pub(crate) fn build_album_trees(
        &self,
        kind: SourceKind,
        report: &mut RunReport,
    ) -> Result<(), Error> {
        let albums: Vec<_> = self
            .index
            .albums()
            .filter(|r| r.as_ref().map(|(_, a)| a.source == kind).unwrap_or(true))
            .collect::<Result<_, _>>()?;
        for (id, mut rec) in albums {
            // Entries: (link name, target relative path). One album is at most 20k items.
            let mut entries = Vec::new();
            let mut newest: Option<i64> = None;
            for (pos, m) in self.index.members(&id).enumerate() {
                let m = m?;
                let Some(item) = self.index.item(&m)? else {
                    continue;
                };
                if item.state == ItemState::Removed {
                    continue;
                }
                if let Some(t) = item.taken_ms {
                    newest = Some(newest.map_or(t, |n| n.max(t)));
                }
                if item.state != ItemState::Done {
                    continue;
                }
                let base = item.path.rsplit('/').next().unwrap_or(&item.path);
                let name = naming::truncate_keep_ext(&format!("{pos:04}_{base}"), 255);
                entries.push((name, item.path.clone()));
            }
            let title = if rec.title.trim().is_empty() {
                "Untitled".to_owned()
            } else {
                rec.title.clone()
            };
            let folder =
                naming::month_folder(newest.and_then(ms_to_utc), self.config.folder_timezone);
            let (year, month) = folder.split_once('/').unwrap_or((folder.as_str(), ""));
            let comp = if month.is_empty() {
                naming::sanitize_component(&title, self.rules)
            } else {
                naming::sanitize_component(&format!("{month} {title}"), self.rules)
            };
            let mut dir = format!("albums/{year}/{comp}");
            let owner = format!("{ALBUM_OWNER}{id}");
            let ck = naming::claim_key(&dir, self.rules);
            match self.index.path_owner(&ck)? {
                Some(o) if !o.is(&owner) => {
                    dir = format!(
                        "albums/{year}/{}",
                        naming::suffixed_name(&comp, id.as_str(), 8)
                    );
                }
                _ => {}
            }
            let lib = &self.config.library_dir;
            let mut changed = false;
            if rec.dir != dir {
                let new_path = lib.join(&dir);
                if !rec.dir.is_empty() {
                    let old_path = lib.join(&rec.dir);
                    if old_path.is_dir() && !new_path.exists() {
                        if let Some(p) = new_path.parent() {
                            fsops::ensure_dir(lib, p)?;
                        }
                        std::fs::rename(&old_path, &new_path)
                            .map_err(|e| Error::io("rename album folder", &old_path, e))?;
                        remove_empty_parent(lib, &old_path);
                    }
                    self.index
                        .release_path(&naming::claim_key(&rec.dir, self.rules))?;
                }
                self.index
                    .claim_path(&naming::claim_key(&dir, self.rules), &owner)?;
                rec.dir = dir.clone();
                self.index.put_album(&id, &rec)?;
                changed = true;
            }
            changed |= self.reconcile_links(&dir, &entries)?;
            if changed {
                report.albums_updated += 1;
            }
        }
        Ok(())
    }

    /// Makes the folder hold exactly `entries`, touching only what differs.
    fn reconcile_links(&self, dir: &str, entries: &[(String, String)]) -> Result<bool, Error> {
        let lib = &self.config.library_dir;
        let abs = lib.join(dir);
        fsops::ensure_dir(lib, &abs)?;
        let wanted: std::collections::HashMap<&str, &str> = entries
            .iter()
            .map(|(n, t)| (n.as_str(), t.as_str()))
            .collect();
        let mut changed = false;
        let rd = std::fs::read_dir(&abs).map_err(|e| Error::io("read directory", &abs, e))?;
        for e in rd {
            let e = e.map_err(|e| Error::io("read directory", &abs, e))?;
            let name = e.file_name().to_string_lossy().into_owned();
            let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
            if !is_dir && !wanted.contains_key(name.as_str()) {
                std::fs::remove_file(e.path()).map_err(|err| Error::io("remove", e.path(), err))?;
                changed = true;
            }
        }
        let depth = dir.split('/').count();
        for (name, target) in entries {
            let link = abs.join(name);
            let target_abs = lib.join(target);
            let ok = match self.config.album_links {
                AlbumLinks::Symlink => {
                    let rel = format!("{}{}", "../".repeat(depth), target);
                    if std::fs::read_link(&link).ok().as_deref() == Some(Path::new(&rel)) {
                        true
                    } else {
                        replace_with(&link, |p| std::os::unix::fs::symlink(&rel, p))?;
                        false
                    }
                }
                AlbumLinks::Hardlink => {
                    if same_file(&link, &target_abs) {
                        true
                    } else {
                        replace_with(&link, |p| std::fs::hard_link(&target_abs, p))?;
                        false
                    }
                }
                AlbumLinks::Copy => {
                    let same_len = match (std::fs::metadata(&link), std::fs::metadata(&target_abs))
                    {
                        (Ok(a), Ok(b)) => !a.is_symlink() && a.len() == b.len(),
                        _ => false,
                    };
                    if same_len {
                        true
                    } else {
                        let tmp = abs.join(fsops::temp_name(name));
                        std::fs::copy(&target_abs, &tmp)
                            .map_err(|e| Error::io("copy into album", &tmp, e))?;
                        std::fs::rename(&tmp, &link).map_err(|e| Error::io("rename", &tmp, e))?;
                        false
                    }
                }
                AlbumLinks::None => true,
            };
            changed |= !ok;
        }
        Ok(changed)
    }

    /// Every indexed item, streaming from the index (for `list --json`).
    pub fn items(&self) -> impl Iterator<Item = Result<IndexedItem, Error>> + '_ {
        self.index.items().map(move |r| {
            let (id, rec) = r?;
            let mut albums = Vec::new();
            for a in self.index.item_albums(&id) {
                if let Some(al) = self.index.album(&a?)? {
                    albums.push(al.title);
                }
            }
            Ok(IndexedItem {
                taken_at: rec
                    .taken_at()
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
                path: rec.path,
                filename: rec.filename,
                mime_type: rec.mime_type,
                size: rec.size,
                albums,
                favorite: rec.favorite,
                archived: rec.archived,
                latitude: rec.latitude,
                longitude: rec.longitude,
                source: rec.source,
                camera_make: rec.camera_make,
                camera_model: rec.camera_model,
                description: rec.description,
                blake3: rec.blake3,
                state: match rec.state {
                    ItemState::Unplaced => "unplaced",
                    ItemState::Pending => "pending",
                    ItemState::Done => "done",
                    ItemState::Removed => "removed",
                },
                id,
            })
        })
    }

    /// Checks the library against the index: missing files, wrong sizes, files the index does
    /// not know; with `deep`, also re-hashes every file (blake3).
    pub fn verify(&self, deep: bool) -> Result<VerifyReport, Error> {
        let mut v = VerifyReport::default();
        let lib = &self.config.library_dir;
        for r in self.index.items() {
            let (_, rec) = r?;
            if rec.state != ItemState::Done {
                continue;
            }
            v.checked += 1;
            let path = lib.join(&rec.path);
            let meta = match std::fs::metadata(&path) {
                Ok(m) => m,
                Err(_) => {
                    push_capped(&mut v.missing, &mut v.missing_count, rec.path);
                    continue;
                }
            };
            if Some(meta.len()) != rec.size {
                push_capped(&mut v.size_mismatch, &mut v.size_mismatch_count, rec.path);
                continue;
            }
            if deep {
                let (_, h) = fsops::hash_file(&path).map_err(|e| Error::io("read", &path, e))?;
                if Some(h) != rec.blake3 {
                    push_capped(&mut v.hash_mismatch, &mut v.hash_mismatch_count, rec.path);
                    continue;
                }
            }
            v.ok += 1;
        }
        walk_files(&lib.join("photos"), "photos", &mut |rel| {
            if fsops::is_temp_name(rel.rsplit('/').next().unwrap_or(rel)) {
                return Ok(());
            }
            let known = self
                .index
                .path_owner(&naming::claim_key(rel, self.rules))?
                .is_some();
            if !known {
                push_capped(&mut v.extra, &mut v.extra_count, rel.to_owned());
            }
            Ok(())
        })?;
        Ok(v)
    }

    /// Counts, pause state and recent runs.
    pub fn status(&self) -> Result<StatusReport, Error> {
        let mut s = StatusReport {
            items: 0,
            done: 0,
            pending: 0,
            failed: 0,
            processing: 0,
            removed: 0,
            orphans: 0,
            albums: self.index.store().len(Tree::Albums) as u64,
            index_bytes: self.index.store().size_on_disk()?,
            paused: false,
            last_runs: Vec::new(),
            last_full_scan: Vec::new(),
        };
        for r in self.index.items() {
            let (_, rec) = r?;
            s.items += 1;
            match rec.state {
                ItemState::Done => s.done += 1,
                ItemState::Removed => s.removed += 1,
                ItemState::Unplaced | ItemState::Pending => {}
            }
        }
        for r in self.index.pendings() {
            let (_, p) = r?;
            if p.processing {
                s.processing += 1;
            } else if p.attempts > 0 {
                s.failed += 1;
            } else {
                s.pending += 1;
            }
        }
        s.pending += self.index.store().len(Tree::Unplaced) as u64;
        for r in self.index.path_owners() {
            if r?.is_orphan() {
                s.orphans += 1;
            }
        }
        let mut runs: std::collections::VecDeque<RunReport> = Default::default();
        for r in self.index.runs::<RunReport>() {
            runs.push_back(r?);
            if runs.len() > 10 {
                runs.pop_front();
            }
        }
        s.paused = matches!(
            runs.back().map(|r| &r.outcome),
            Some(RunOutcome::Paused { .. })
        );
        s.last_runs = runs.into_iter().collect();
        for kind in [
            SourceKind::LibraryApi,
            SourceKind::Picker,
            SourceKind::Takeout,
            SourceKind::Local,
        ] {
            let c = self.index.cursor(kind)?;
            if c != CursorRecord::default() {
                s.last_full_scan
                    .push((kind, c.last_full_ms.and_then(ms_to_utc)));
            }
        }
        Ok(s)
    }

    /// Rebuilds what can be rebuilt from the library tree when the index was lost (or to
    /// check it): every file under `photos/` that no item claims is recorded as an orphan and
    /// will be adopted, without download, by the next sync that lists its item under that
    /// name; downloaded items whose file vanished go back to pending.
    pub fn reindex(config: EngineConfig) -> Result<ReindexReport, Error> {
        let engine = Engine::open(config)?;
        let mut rep = ReindexReport::default();
        let lib = engine.config.library_dir.clone();
        walk_files(&lib.join("photos"), "photos", &mut |rel| {
            if fsops::is_temp_name(rel.rsplit('/').next().unwrap_or(rel)) {
                return Ok(());
            }
            rep.files += 1;
            let ck = naming::claim_key(rel, engine.rules);
            if engine.index.path_owner(&ck)?.is_some() {
                rep.known += 1;
            } else {
                engine.index.claim_path(&ck, &format!("{ORPHAN}{rel}"))?;
                rep.orphans += 1;
            }
            Ok(())
        })?;
        let done: Vec<MediaId> = engine
            .index
            .items()
            .filter_map(|r| match r {
                Ok((id, rec)) if rec.state == ItemState::Done && !lib.join(&rec.path).is_file() => {
                    Some(Ok(id))
                }
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            })
            .collect::<Result<_, _>>()?;
        for id in done {
            if let Some(mut rec) = engine.index.item(&id)? {
                rec.state = ItemState::Pending;
                rec.size = None;
                rec.blake3 = None;
                engine.index.put_item(&id, &rec)?;
                engine.index.put_pending(&id, &PendingRecord::default())?;
                rep.requeued += 1;
            }
        }
        engine.flush()?;
        Ok(rep)
    }
}

/// A finished download waiting for its index commit.
struct Completed {
    id: MediaId,
    size: u64,
    blake3: ContentHash,
    /// Batch durability: (temp file, final path), renamed at commit.
    staged: Option<(PathBuf, PathBuf)>,
}

struct DlState {
    tasks: JoinSet<ItemOutcome>,
    uncommitted: Vec<Completed>,
    /// Files recorded since the last index flush.
    since_flush: usize,
    stop_reason: Option<Stop>,
}

impl DlState {
    fn stop(&mut self, reason: Stop, token: &CancellationToken) {
        // The first reason wins; a fatal error outranks a pause.
        let replace = match (&self.stop_reason, &reason) {
            (None, _) => true,
            (Some(Stop::Fatal(_)), _) => false,
            (Some(_), Stop::Fatal(_)) => true,
            _ => false,
        };
        if replace {
            self.stop_reason = Some(reason);
        }
        token.cancel();
    }
}

fn ms_to_utc(ms: i64) -> Option<DateTime<Utc>> {
    DateTime::<Utc>::from_timestamp_millis(ms)
}

/// Whether a file found at an item's path can be taken as that item.
fn adoptable(rec: &ItemRecord, len: u64) -> bool {
    match rec.expected_size {
        Some(s) => s == len,
        // The Library API gives no size: any non-empty file at the exact expected path is
        // taken, as gphotos-sync does. Empty files are never a finished download.
        None => len > 0,
    }
}

fn backoff(base: Duration, max: Duration, attempts: u32) -> Duration {
    let factor = 1u32
        .checked_shl(attempts.saturating_sub(1).min(30))
        .unwrap_or(u32::MAX);
    base.saturating_mul(factor).min(max)
}

fn classify(e: SourceError, writer: Option<(&Path, bool)>) -> ItemResult {
    if let Some((path, true)) = writer {
        return ItemResult::DiskFull(path.to_path_buf());
    }
    match e {
        SourceError::QuotaExhausted(m) => ItemResult::Quota(m),
        SourceError::Unauthorized(m) => ItemResult::Unauthorized(m),
        SourceError::NotReady => ItemResult::Processing,
        SourceError::Write(io) if crate::error::is_disk_full(&io) => match writer {
            Some((p, _)) => ItemResult::DiskFull(p.to_path_buf()),
            None => ItemResult::Failed(io.to_string()),
        },
        other => ItemResult::Failed(other.to_string()),
    }
}

/// Deletes the temp file if the download does not reach the rename (error, cancellation).
struct TempGuard(Option<PathBuf>);

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

async fn download_one(
    ctx: &DlCtx,
    source: &Arc<dyn Source>,
    mut prep: Prepared,
    rel: &str,
    stop: &CancellationToken,
) -> ItemResult {
    match prep.item.readiness {
        Readiness::Ready => {}
        Readiness::Processing => return ItemResult::Processing,
        Readiness::Failed => {
            return ItemResult::Failed("Google failed to process this video".into());
        }
    }
    let target = ctx.library.join(rel);
    let Some(dir) = target.parent().map(Path::to_path_buf) else {
        return ItemResult::Failed(format!("bad library path {rel}"));
    };
    // A file may have appeared at the path since it was chosen (restored backup, crash
    // between rename and index commit in batch mode): take it rather than overwrite it.
    if let Ok(m) = std::fs::metadata(&target)
        && m.is_file()
        && prep.item.size.is_none_or(|s| s == m.len())
        && m.len() > 0
    {
        return match fsops::hash_file(&target) {
            Ok((size, blake3)) => ItemResult::Done {
                size,
                blake3,
                adopted: true,
                staged: None,
            },
            Err(e) => ItemResult::Failed(e.to_string()),
        };
    }
    if let Err(e) = fsops::ensure_dir(&ctx.library, &dir) {
        return match e {
            Error::DiskFull { path } => ItemResult::DiskFull(path),
            other => ItemResult::Fatal(other),
        };
    }
    let mut url_refreshes = 0u32;
    let mut transient_retries = 0u32;
    loop {
        let r = tokio::select! {
            _ = stop.cancelled() => return ItemResult::Cancelled,
            r = write_one(ctx, source, &prep, &dir, &target) => r,
        };
        match r {
            Ok((size, blake3, staged)) => {
                return ItemResult::Done {
                    size,
                    blake3,
                    adopted: false,
                    staged,
                };
            }
            Err(WriteFail::Source(SourceError::UrlExpired))
                if url_refreshes < MAX_URL_REFRESHES =>
            {
                // The base URL outlived its ~60 minutes while queued: fetch a fresh one.
                url_refreshes += 1;
                let again = tokio::select! {
                    _ = stop.cancelled() => return ItemResult::Cancelled,
                    r = source.prepare(std::slice::from_ref(&prep.item.id)) => r,
                };
                match again.map(|mut v| v.pop()) {
                    Ok(Some(Ok(p))) => prep = p,
                    Ok(Some(Err(e))) | Err(e) => return classify(e, None),
                    Ok(None) => return ItemResult::Failed("no fresh URL returned".into()),
                }
                match prep.item.readiness {
                    Readiness::Ready => {}
                    // A 403 on a video Google is still processing looks like an expired URL.
                    Readiness::Processing => return ItemResult::Processing,
                    Readiness::Failed => {
                        return ItemResult::Failed("Google failed to process this video".into());
                    }
                }
            }
            Err(WriteFail::Source(e @ SourceError::Transient { .. })) => {
                let retry = tokio::select! {
                    _ = stop.cancelled() => return ItemResult::Cancelled,
                    r = source.retry_wait(transient_retries, &e) => r,
                };
                if !retry {
                    return classify(e, None);
                }
                transient_retries += 1;
            }
            Err(WriteFail::Source(e)) => return classify(e, None),
            Err(WriteFail::DiskFull) => return ItemResult::DiskFull(target),
            Err(WriteFail::Local(e)) => {
                return match e {
                    Error::DiskFull { path } => ItemResult::DiskFull(path),
                    other => ItemResult::Failed(other.to_string()),
                };
            }
        }
    }
}

enum WriteFail {
    Source(SourceError),
    DiskFull,
    Local(Error),
}

/// temp file → fetch → size check → mtime → fsync → rename → fsync dir (per-file
/// durability); in batch durability it stops before the rename and returns the temp file,
/// which the batch commit renames after its `syncfs`.
async fn write_one(
    ctx: &DlCtx,
    source: &Arc<dyn Source>,
    prep: &Prepared,
    dir: &Path,
    target: &Path,
) -> Result<(u64, ContentHash, Option<PathBuf>), WriteFail> {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(fsops::temp_name(&name));
    // Created synchronously, guard armed at once: an async open cancelled mid-flight would
    // still create the file on a blocking thread after the guard had run.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(|e| WriteFail::Local(Error::io("create", &tmp, e)))?;
    let mut guard = TempGuard(Some(tmp.clone()));
    let file = tokio::fs::File::from_std(file);
    let mut w = HashingWriter::new(file);
    let fetched = source.fetch(prep, &mut w).await;
    if w.disk_full() {
        return Err(WriteFail::DiskFull);
    }
    fetched.map_err(|e| match e {
        SourceError::Write(io) if crate::error::is_disk_full(&io) => WriteFail::DiskFull,
        other => WriteFail::Source(other),
    })?;
    if let Err(e) = w.flush().await {
        return Err(if crate::error::is_disk_full(&e) {
            WriteFail::DiskFull
        } else {
            WriteFail::Local(Error::io("write", &tmp, e))
        });
    }
    let (file, size, hash) = w.finish();
    if let Some(expected) = prep.item.size
        && expected != size
    {
        return Err(WriteFail::Source(SourceError::transient(format!(
            "got {size} bytes, expected {expected}"
        ))));
    }
    if size == 0 {
        return Err(WriteFail::Source(SourceError::transient("empty download")));
    }
    let std_file = file.into_std().await;
    let mtime = prep
        .item
        .taken_at
        .map(|t| fsops::system_time_from_ms(t.timestamp_millis()));
    let per_file = ctx.durability == Durability::PerFile;
    let tmp2 = tmp.clone();
    let synced = tokio::task::spawn_blocking(move || -> Result<(), Error> {
        if let Some(t) = mtime {
            fsops::set_times(&std_file, t).map_err(|e| Error::io("set mtime", &tmp2, e))?;
        }
        if per_file {
            std_file
                .sync_all()
                .map_err(|e| Error::io("fsync", &tmp2, e))?;
        }
        Ok(())
    })
    .await
    .map_err(|e| WriteFail::Local(Error::Config(format!("fsync task failed: {e}"))))?;
    synced.map_err(|e| match e {
        Error::DiskFull { .. } => WriteFail::DiskFull,
        other => WriteFail::Local(other),
    })?;
    if !per_file {
        // Disarmed: from here the batch commit owns the temp file (a crash leaves it to the
        // start-of-run cleanup; it never carries a final name before its data is durable).
        guard.0 = None;
        return Ok((size, hash, Some(tmp)));
    }
    // Synchronous for the same reason as the create: rename and disarm cannot be separated
    // by a cancellation point.
    std::fs::rename(&tmp, target).map_err(|e| WriteFail::Local(Error::io("rename", &tmp, e)))?;
    guard.0 = None;
    {
        let d = dir.to_path_buf();
        tokio::task::spawn_blocking(move || fsops::fsync_dir(&d))
            .await
            .map_err(|e| WriteFail::Local(Error::Config(format!("fsync task failed: {e}"))))?
            .map_err(WriteFail::Local)?;
    }
    Ok((size, hash, None))
}

fn replace_with(path: &Path, make: impl Fn(&Path) -> std::io::Result<()>) -> Result<(), Error> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            return Err(Error::io(
                "replace album entry",
                path,
                std::io::Error::other("a directory is in the way"),
            ));
        }
        Ok(_) => std::fs::remove_file(path).map_err(|e| Error::io("remove", path, e))?,
        Err(_) => {}
    }
    make(path).map_err(|e| Error::io("create album entry", path, e))
}

fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::symlink_metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.is_file() && x.ino() == y.ino() && x.dev() == y.dev(),
        _ => false,
    }
}

fn remove_empty_parent(lib: &Path, old: &Path) {
    if let Some(p) = old.parent()
        && p != lib
        && p.starts_with(lib.join("albums"))
        && p != lib.join("albums")
    {
        // Only succeeds when empty, which is the point.
        let _ = std::fs::remove_dir(p);
    }
}

/// Calls `f` with the library-relative path of every regular file under `dir`, skipping
/// dot entries.
fn walk_files(
    dir: &Path,
    rel: &str,
    f: &mut dyn FnMut(&str) -> Result<(), Error>,
) -> Result<(), Error> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("read directory", dir, e)),
    };
    for e in rd {
        let e = e.map_err(|e| Error::io("read directory", dir, e))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && !fsops::is_temp_name(&name) {
            continue;
        }
        let child = format!("{rel}/{name}");
        let ft = e
            .file_type()
            .map_err(|err| Error::io("stat", e.path(), err))?;
        if ft.is_dir() {
            walk_files(&e.path(), &child, f)?;
        } else if ft.is_file() {
            f(&child)?;
        }
    }
    Ok(())
}

/// Case-insensitive filesystems (exFAT, NTFS, SMB, macOS default) get the Windows rules.
fn probe_rules(lib: &Path) -> Result<FilesystemRules, Error> {
    let lower = lib.join(".gphotos-backup-case-probe");
    let upper = lib.join(".GPHOTOS-BACKUP-CASE-PROBE");
    std::fs::write(&lower, b"").map_err(|e| Error::io("probe filesystem", &lower, e))?;
    let insensitive = upper.exists();
    let _ = std::fs::remove_file(&lower);
    Ok(if insensitive {
        FilesystemRules::Ntfs
    } else {
        FilesystemRules::Posix
    })
}
