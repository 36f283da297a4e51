//! The small key-value storage trait the index sits on, and its sled implementation.
//!
//! Keeping the index behind this trait means the engine never touches sled types, so the
//! backend can be swapped (or wrapped for fault injection) without touching the sync logic.

use std::path::{Path, PathBuf};

use crate::error::Error;

/// The named key spaces of the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tree {
    /// Schema version, run counter.
    Meta,
    /// media id → item record.
    Items,
    /// Schema ≤ 2: claimed relative path → owner. Read only by the migration to [`Tree::Claims`].
    Paths,
    /// desired path \0 media id → desired path, for items not yet given a name.
    Unplaced,
    /// media id → retry state, for items not yet in the library.
    Pending,
    /// album id → album record.
    Albums,
    /// album id \0 position (u32 BE) → media id.
    Members,
    /// media id \0 album id → empty.
    ItemAlbums,
    /// source kind → listing cursor.
    Cursors,
    /// run id (u64 BE) → run record.
    Runs,
    /// export target \0 media id \0 album id → what the export placed (see `export.rs`).
    Exports,
    /// 8-byte hash of a claimed relative path (case-folded on NTFS) → owner kind + 8-byte
    /// hash of the owner (see `index::PathOwner`).
    Claims,
}

impl Tree {
    /// All trees, in a fixed order.
    pub const ALL: [Tree; 12] = [
        Tree::Meta,
        Tree::Items,
        Tree::Paths,
        Tree::Unplaced,
        Tree::Pending,
        Tree::Albums,
        Tree::Members,
        Tree::ItemAlbums,
        Tree::Cursors,
        Tree::Runs,
        Tree::Exports,
        Tree::Claims,
    ];

    /// Stable name on disk.
    pub fn name(self) -> &'static str {
        match self {
            Tree::Meta => "meta",
            Tree::Items => "items",
            Tree::Paths => "paths",
            Tree::Unplaced => "unplaced",
            Tree::Pending => "pending",
            Tree::Albums => "albums",
            Tree::Members => "members",
            Tree::ItemAlbums => "item_albums",
            Tree::Cursors => "cursors",
            Tree::Runs => "runs",
            Tree::Exports => "exports",
            Tree::Claims => "claims",
        }
    }
}

/// A key/value pair as stored.
pub type Entry = (Vec<u8>, Vec<u8>);

/// Writes to one tree applied together by [`Store::apply`]: `Some` puts, `None` removes.
pub type Batch = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// Ordered key-value storage with named trees.
pub trait Store: Send + Sync {
    /// Reads one value.
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, Error>;
    /// Writes one value.
    fn put(&self, tree: Tree, key: &[u8], value: &[u8]) -> Result<(), Error>;
    /// Deletes one key (absent keys are fine).
    fn remove(&self, tree: Tree, key: &[u8]) -> Result<(), Error>;
    /// Applies many writes to one tree atomically (all or none survive a crash), in order.
    /// Cheaper than one `put` per key when a loop writes thousands of records.
    fn apply(&self, tree: Tree, batch: Batch) -> Result<(), Error>;
    /// Iterates keys starting with `prefix`, in key order. Concurrent writes are allowed.
    fn scan<'a>(
        &'a self,
        tree: Tree,
        prefix: &[u8],
    ) -> Box<dyn Iterator<Item = Result<Entry, Error>> + Send + 'a>;
    /// Number of keys in a tree.
    fn len(&self, tree: Tree) -> usize;
    /// Removes every key of a tree.
    fn clear(&self, tree: Tree) -> Result<(), Error>;
    /// Makes everything written so far durable.
    fn flush(&self) -> Result<(), Error>;
    /// Bytes used on disk, for status.
    fn size_on_disk(&self) -> Result<u64, Error>;
}

/// sled-backed [`Store`].
///
/// sled is log-structured: every write appends, and its cleaner reclaims old page versions
/// lazily, so a first sync that writes each record several times leaves the log several times
/// larger than the live data. [`SledStore::open`] therefore compacts: when the log has grown
/// past twice its size after the last compaction, the live data is copied into a fresh
/// database that replaces the old one (see [`compact`] for the crash-safe swap).
pub struct SledStore {
    db: sled::Db,
    trees: Vec<sled::Tree>,
    /// `index.lock` next to the database, held while the store is open: sled's own lock is
    /// released when the database closes, and a compaction must close it before the swap.
    /// It holds the database's size after its last compaction, so that `open` can decide
    /// whether to compact before sled loads anything.
    _lock: std::fs::File,
}

/// sled's page cache limit: the index stays bounded in memory whatever the library size.
const CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// Page cache of each database while compacting: the copy streams, a cache only costs memory
/// (and a compaction runs in the same process right after a full sync, whose cache is gone).
const COMPACT_CACHE_BYTES: u64 = 8 * 1024 * 1024;

/// Compact when the log is larger than this percentage of its size after the last compaction
/// (plus [`COMPACT_SLACK`]): bounded disk use without rewriting the index on every open.
/// Copying is cheap (about 2 s per 100,000 items), so the bound can be tight.
const COMPACT_FACTOR_PERCENT: u64 = 150;
const COMPACT_SLACK: u64 = 1024 * 1024;

impl SledStore {
    /// Opens (or creates) the database in `dir`, finishing or discarding an interrupted
    /// compaction, and compacting first if the log has grown (see the type's docs).
    pub fn open(dir: &Path) -> Result<Self, Error> {
        let lock = lock_and_maintain(dir)?;
        let db = open_db(dir, CACHE_BYTES)?;
        let trees = Tree::ALL
            .iter()
            .map(|t| db.open_tree(t.name()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SledStore {
            db,
            trees,
            _lock: lock,
        })
    }

    /// What [`SledStore::open`] does before it opens the database (recovery, compaction if
    /// the log has grown), without opening it: decided from file sizes, so it costs nothing
    /// when there is nothing to do.
    pub fn maintain(dir: &Path) -> Result<(), Error> {
        lock_and_maintain(dir).map(drop)
    }

    fn tree(&self, t: Tree) -> &sled::Tree {
        // ALL and the vector are built in the same order.
        &self.trees[Tree::ALL.iter().position(|x| *x == t).unwrap_or(0)]
    }
}

/// Takes `index.lock`, brings the directory back to "just `index`" after a crash, and
/// compacts if the database files have grown; returns the held lock.
fn lock_and_maintain(dir: &Path) -> Result<std::fs::File, Error> {
    let siblings = Siblings::of(dir)?;
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io("create directory", parent, e))?;
    }
    let lock = std::fs::File::options()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&siblings.lock)
        .map_err(|e| Error::io("open", &siblings.lock, e))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(Error::IndexLocked {
                path: dir.to_path_buf(),
            });
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(Error::io("lock", &siblings.lock, e));
        }
    }
    siblings.recover(dir)?;
    let compacted = read_compacted_size(&lock);
    let on_disk = database_bytes(dir);
    if on_disk > compacted.saturating_mul(COMPACT_FACTOR_PERCENT) / 100 + COMPACT_SLACK {
        match compact(dir, &siblings, on_disk) {
            Ok(after) => write_compacted_size(&lock, after),
            Err(e) => {
                // Compaction is an optimisation: a full state disk must not make the
                // index unreadable. Drop the partial copy (freeing its space), finish a
                // swap that got past its durable point, and retry only after more growth.
                tracing::warn!("index compaction failed; using the index as it is: {e}");
                siblings.recover(dir)?;
                write_compacted_size(&lock, on_disk);
            }
        }
    }
    Ok(lock)
}

/// The paths a compaction uses next to the database directory `index`.
struct Siblings {
    /// `index.lock`: held for the life of a [`SledStore`].
    lock: PathBuf,
    /// `index.compacting`: the new database while it is being written (incomplete).
    building: PathBuf,
    /// `index.compacted`: the new database, complete and durable, about to replace `index`.
    ready: PathBuf,
    /// `index.old`: the replaced database, deleted once the swap is durable.
    old: PathBuf,
}

impl Siblings {
    fn of(dir: &Path) -> Result<Self, Error> {
        let name = dir
            .file_name()
            .ok_or_else(|| Error::Config(format!("{} is not a directory name", dir.display())))?
            .to_string_lossy()
            .into_owned();
        let sibling = |ext: &str| dir.with_file_name(format!("{name}.{ext}"));
        Ok(Siblings {
            lock: sibling("lock"),
            building: sibling("compacting"),
            ready: sibling("compacted"),
            old: sibling("old"),
        })
    }

    /// Brings the directory back to "just `index`" after a crash at any step of [`compact`].
    fn recover(&self, dir: &Path) -> Result<(), Error> {
        remove_dir_if_present(&self.building)?;
        if self.ready.exists() {
            if dir.exists() {
                rename(dir, &self.old)?;
            }
            rename(&self.ready, dir)?;
            fsync_parent(dir)?;
        }
        remove_dir_if_present(&self.old)
    }
}

/// How long to wait for sled's own lock after our `index.lock` was granted.
///
/// A closed sled database releases its file lock only when its I/O threads finish their
/// last writes, a moment after the last handle is dropped. Holding `index.lock` means no
/// other live store has the database, so a busy sled lock can only be that tail (or a
/// process of an older version, which never took `index.lock`): worth a short wait.
const SLED_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

fn open_db(dir: &Path, cache_bytes: u64) -> Result<sled::Db, Error> {
    let started = std::time::Instant::now();
    loop {
        let opened = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            // No background flusher: its thread would keep the database (and its file lock)
            // alive after the last handle is dropped. The engine flushes explicitly at
            // checkpoints; what a crash loses since the last one is re-adopted from the
            // library tree without download.
            .flush_every_ms(None)
            .open();
        match opened {
            Ok(db) => return Ok(db),
            Err(sled::Error::Io(io)) if is_lock_error(&io) => {
                if started.elapsed() >= SLED_LOCK_WAIT {
                    return Err(Error::IndexLocked {
                        path: dir.to_path_buf(),
                    });
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(other) => return Err(Error::Index(other)),
        }
    }
}

/// Bytes of the database files in `dir` (0 if there is no database yet).
fn database_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// The size recorded by the last compaction (0 if none: a new or pre-compaction index).
fn read_compacted_size(lock: &std::fs::File) -> u64 {
    let mut text = String::new();
    let _ = std::io::Read::read_to_string(&mut &*lock, &mut text);
    text.trim().parse().unwrap_or(0)
}

/// Best effort: a lost record only means the next open compacts again.
fn write_compacted_size(lock: &std::fs::File, bytes: u64) {
    use std::io::{Seek, Write};
    let mut file = lock;
    let written = file
        .set_len(0)
        .and_then(|()| file.seek(std::io::SeekFrom::Start(0)))
        .and_then(|_| file.write_all(format!("{bytes}\n").as_bytes()));
    if let Err(e) = written {
        tracing::debug!("could not record the index size after compaction: {e}");
    }
}

/// Copies the live data of the database in `dir` into a fresh one and swaps it in place;
/// returns the new size.
///
/// Every step is crash-safe ([`Siblings::recover`] runs on the next open): the copy is built
/// under `index.compacting` (discarded if incomplete), flushed, renamed `index.compacted`
/// (complete), then `index` → `index.old`, `index.compacted` → `index`, and `index.old` is
/// deleted. The caller holds `index.lock` throughout, so no other process opens either copy.
fn compact(dir: &Path, siblings: &Siblings, before: u64) -> Result<u64, Error> {
    let started = std::time::Instant::now();
    let db = open_db(dir, COMPACT_CACHE_BYTES)?;
    // No `index.compacting` is left: the caller has just run `Siblings::recover`.
    let fresh = open_db(&siblings.building, COMPACT_CACHE_BYTES)?;
    for name in db.tree_names() {
        if name.as_ref() == b"__sled__default" {
            continue;
        }
        let from = db.open_tree(&name)?;
        let to = fresh.open_tree(&name)?;
        // One insert per entry: sled batches cost more memory than they save time here, and
        // the copy is only durable (and visible) once it is complete anyway.
        for entry in from.iter() {
            let (k, v) = entry?;
            to.insert(k, v)?;
        }
    }
    fresh.flush()?;
    drop(fresh);
    drop(db);
    // sled makes its log durable with sync_file_range (data only, no metadata) and never
    // fsyncs `conf` or a directory; the old copy is deleted after the swap, so the new one
    // must be durable as a whole first.
    fsync_tree(&siblings.building)?;
    rename(&siblings.building, &siblings.ready)?;
    fsync_parent(dir)?;
    siblings.recover(dir)?;
    let after = database_bytes(dir);
    tracing::info!(
        before_bytes = before,
        after_bytes = after,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "compacted the index"
    );
    Ok(after)
}

/// fsyncs every file under `dir`, then every directory, `dir` last.
fn fsync_tree(dir: &Path) -> Result<(), Error> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io("read directory", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("read directory", dir, e))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| Error::io("stat", &path, e))?;
        if kind.is_dir() {
            fsync_tree(&path)?;
        } else if kind.is_file() {
            std::fs::File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(|e| Error::io("fsync", &path, e))?;
        }
    }
    crate::fsops::fsync_dir(dir)
}

fn rename(from: &Path, to: &Path) -> Result<(), Error> {
    std::fs::rename(from, to).map_err(|e| Error::io("rename", from, e))
}

fn remove_dir_if_present(dir: &Path) -> Result<(), Error> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("remove", dir, e)),
    }
}

fn fsync_parent(dir: &Path) -> Result<(), Error> {
    match dir.parent() {
        Some(parent) => crate::fsops::fsync_dir(parent),
        None => Ok(()),
    }
}

fn is_lock_error(e: &std::io::Error) -> bool {
    // sled reports a held flock as WouldBlock, or as Other with "could not acquire lock".
    e.kind() == std::io::ErrorKind::WouldBlock || e.to_string().contains("could not acquire lock")
}

impl Store for SledStore {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.tree(tree).get(key)?.map(|v| v.to_vec()))
    }
    fn put(&self, tree: Tree, key: &[u8], value: &[u8]) -> Result<(), Error> {
        self.tree(tree).insert(key, value)?;
        Ok(())
    }
    fn remove(&self, tree: Tree, key: &[u8]) -> Result<(), Error> {
        self.tree(tree).remove(key)?;
        Ok(())
    }
    fn apply(&self, tree: Tree, batch: Batch) -> Result<(), Error> {
        let mut b = sled::Batch::default();
        for (k, v) in batch {
            match v {
                Some(v) => b.insert(k, v),
                None => b.remove(k),
            }
        }
        self.tree(tree).apply_batch(b)?;
        Ok(())
    }
    fn scan<'a>(
        &'a self,
        tree: Tree,
        prefix: &[u8],
    ) -> Box<dyn Iterator<Item = Result<Entry, Error>> + Send + 'a> {
        Box::new(self.tree(tree).scan_prefix(prefix).map(|r| {
            r.map(|(k, v)| (k.to_vec(), v.to_vec()))
                .map_err(Error::from)
        }))
    }
    fn len(&self, tree: Tree) -> usize {
        self.tree(tree).len()
    }
    fn clear(&self, tree: Tree) -> Result<(), Error> {
        self.tree(tree).clear()?;
        Ok(())
    }
    fn flush(&self) -> Result<(), Error> {
        self.db.flush()?;
        Ok(())
    }
    fn size_on_disk(&self) -> Result<u64, Error> {
        Ok(self.db.size_on_disk()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(i: u32, version: u8) -> Vec<u8> {
        let mut v = blake3::hash(&i.to_be_bytes()).as_bytes().repeat(6);
        v[0] = version;
        v
    }

    #[test]
    fn a_batch_puts_and_removes_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(&dir.path().join("index")).unwrap();
        store.put(Tree::Paths, b"old", b"x").unwrap();
        store
            .apply(
                Tree::Paths,
                vec![
                    (b"a".to_vec(), Some(b"1".to_vec())),
                    (b"old".to_vec(), None),
                    (b"a".to_vec(), Some(b"2".to_vec())),
                ],
            )
            .unwrap();
        assert_eq!(store.get(Tree::Paths, b"a").unwrap(), Some(b"2".to_vec()));
        assert_eq!(store.get(Tree::Paths, b"old").unwrap(), None);
        assert_eq!(store.len(Tree::Paths), 1);
    }

    /// Writes 3,000 records five times over and removes a third: a log several times its
    /// live data.
    fn grow(dir: &Path) {
        let store = SledStore::open(dir).unwrap();
        for version in 0..5u8 {
            for i in 0..3000u32 {
                store
                    .put(Tree::Items, &i.to_be_bytes(), &value(i, version))
                    .unwrap();
            }
            store.flush().unwrap();
        }
        for i in 0..1000u32 {
            store.remove(Tree::Items, &i.to_be_bytes()).unwrap();
        }
        store.flush().unwrap();
    }

    #[test]
    fn maintain_compacts_a_grown_log_without_opening_it_for_use() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("index");
        grow(&dir);
        let grown = database_bytes(&dir);
        SledStore::maintain(&dir).unwrap();
        assert!(database_bytes(&dir) * 2 < grown);
        let store = SledStore::open(&dir).unwrap();
        assert_eq!(store.len(Tree::Items), 2000);
    }

    #[test]
    fn a_grown_log_is_compacted_on_open_and_keeps_every_live_value() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("index");
        grow(&dir);
        let grown = database_bytes(&dir);

        let store = SledStore::open(&dir).unwrap();
        let compacted = database_bytes(&dir);
        assert!(
            compacted * 2 < grown,
            "{grown} bytes before, {compacted} after"
        );
        assert_eq!(store.len(Tree::Items), 2000);
        for i in 0..3000u32 {
            let want = (i >= 1000).then(|| value(i, 4));
            assert_eq!(store.get(Tree::Items, &i.to_be_bytes()).unwrap(), want);
        }
        let names: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.iter().all(|n| n == "index" || n == "index.lock"),
            "{names:?}"
        );
        drop(store);

        // Compacted once, it is not rewritten on every open (a rewrite is a new directory),
        // although it is larger than the slack: the lock file remembers the compacted size.
        assert!(compacted > COMPACT_SLACK, "{compacted}");
        let inode = |d: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(d).unwrap());
        let before = inode(&dir);
        let _store = SledStore::open(&dir).unwrap();
        assert_eq!(inode(&dir), before);
    }

    fn sled_with(dir: &Path, key: &[u8], val: &[u8]) {
        let db = sled::Config::new().path(dir).open().unwrap();
        db.open_tree("meta").unwrap().insert(key, val).unwrap();
        db.flush().unwrap();
    }

    #[test]
    fn a_compaction_interrupted_at_any_step_is_finished_or_discarded() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("index");
        let sib = Siblings::of(&dir).unwrap();
        let read = |dir: &Path| {
            let store = SledStore::open(dir).unwrap();
            store.get(Tree::Meta, b"k").unwrap()
        };

        // Killed while copying: the partial copy is dropped, the original kept.
        sled_with(&dir, b"k", b"original");
        std::fs::create_dir(&sib.building).unwrap();
        std::fs::write(sib.building.join("db"), b"half a database").unwrap();
        assert_eq!(read(&dir), Some(b"original".to_vec()));
        assert!(!sib.building.exists());

        // Killed after the copy was complete, before the swap: the copy wins.
        sled_with(&sib.ready, b"k", b"compacted");
        assert_eq!(read(&dir), Some(b"compacted".to_vec()));
        assert!(!sib.ready.exists() && !sib.old.exists());

        // Killed between the two renames: `index` is missing, the copy is moved in.
        std::fs::rename(&dir, &sib.old).unwrap();
        sled_with(&sib.ready, b"k", b"second");
        assert_eq!(read(&dir), Some(b"second".to_vec()));
        assert!(!sib.ready.exists() && !sib.old.exists());
    }

    #[test]
    fn a_second_open_is_refused_while_the_first_is_alive() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("index");
        let first = SledStore::open(&dir).unwrap();
        assert!(matches!(
            SledStore::open(&dir),
            Err(Error::IndexLocked { .. })
        ));
        drop(first);
        SledStore::open(&dir).unwrap();
    }
}
