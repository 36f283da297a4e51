//! The small key-value storage trait the index sits on, and its sled implementation.
//!
//! Keeping the index behind this trait means the engine never touches sled types, so the
//! backend can be swapped (or wrapped for fault injection) without touching the sync logic.

use std::path::Path;

use crate::error::Error;

/// The named key spaces of the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tree {
    /// Schema version, run counter.
    Meta,
    /// media id → item record.
    Items,
    /// claimed relative path (case-folded on NTFS) → media id (or `orphan:` for reindexed files).
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
}

impl Tree {
    /// All trees, in a fixed order.
    pub const ALL: [Tree; 11] = [
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
    /// Makes everything written so far durable.
    fn flush(&self) -> Result<(), Error>;
    /// Bytes used on disk, for status.
    fn size_on_disk(&self) -> Result<u64, Error>;
}

/// sled-backed [`Store`].
pub struct SledStore {
    db: sled::Db,
    trees: Vec<sled::Tree>,
}

/// sled's page cache limit: the index stays bounded in memory whatever the library size.
const CACHE_BYTES: u64 = 64 * 1024 * 1024;

impl SledStore {
    /// Opens (or creates) the database in `dir`.
    pub fn open(dir: &Path) -> Result<Self, Error> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(CACHE_BYTES)
            // No background flusher: its thread would keep the database (and its file lock)
            // alive after the last handle is dropped, so a re-open right after close would see
            // IndexLocked. The engine flushes explicitly at checkpoints; what a crash loses
            // since the last one is re-adopted from the library tree without download.
            .flush_every_ms(None)
            .open()
            .map_err(|e| match e {
                sled::Error::Io(io) if is_lock_error(&io) => Error::IndexLocked {
                    path: dir.to_path_buf(),
                },
                other => Error::Index(other),
            })?;
        let trees = Tree::ALL
            .iter()
            .map(|t| db.open_tree(t.name()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SledStore { db, trees })
    }

    fn tree(&self, t: Tree) -> &sled::Tree {
        // ALL and the vector are built in the same order.
        &self.trees[Tree::ALL.iter().position(|x| *x == t).unwrap_or(0)]
    }
}

fn is_lock_error(e: &std::io::Error) -> bool {
    // sled reports a held flock as WouldBlock, or as Other with "could not acquire lock".
    e.kind() == std::io::ErrorKind::WouldBlock || e.to_string().contains("lock")
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

    #[test]
    fn a_batch_puts_and_removes_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
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
}
