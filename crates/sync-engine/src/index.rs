//! The typed index on top of [`Store`]: items, albums, memberships, cursors, runs, schema.
//!
//! Item, pending and album records are postcard (see [`crate::codec`]): a typical item with a
//! 100-character Google id costs ~0.35 KiB of keys and values across all trees, which sled
//! turns into well under 1 KiB on disk. Meta values, cursors and run records stay JSON: they
//! are few, and readable in a raw dump.
//!
//! Records that only say "seen again" are never rewritten: a full listing tracks what it saw
//! in memory ([`crate::engine`]'s seen set), so a no-op rescan writes nothing per item and
//! does not grow sled's log.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::store::{Batch, Store, Tree};
use crate::types::{AlbumId, ContentHash, MediaId, RemoteItem, SourceKind};

/// The schema this build writes.
pub const SCHEMA_VERSION: u32 = 2;

/// Lifecycle of an item in the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ItemState {
    /// Listed, no path chosen yet.
    #[serde(rename = "u")]
    Unplaced,
    /// Has a path, file not yet in the library.
    #[serde(rename = "p")]
    Pending,
    /// File durable in the library at `path`.
    #[serde(rename = "d")]
    Done,
    /// Gone from the source (file kept unless `delete_removed`).
    #[serde(rename = "r")]
    Removed,
}

/// One item as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "StoredItem", into = "StoredItem")]
pub struct ItemRecord {
    /// Source it came from.
    #[serde(rename = "k")]
    pub source: SourceKind,
    /// Relative path in the library; empty while unplaced. Never changes once set.
    #[serde(rename = "p", default)]
    pub path: String,
    /// Original file name.
    #[serde(rename = "n")]
    pub filename: String,
    /// MIME type.
    #[serde(rename = "m")]
    pub mime_type: String,
    /// Capture time, ms since the epoch.
    #[serde(rename = "t", default)]
    pub taken_ms: Option<i64>,
    /// Size the source announced (if any).
    #[serde(rename = "x", default)]
    pub expected_size: Option<u64>,
    /// Size of the file in the library.
    #[serde(rename = "s", default)]
    pub size: Option<u64>,
    /// blake3 of the file in the library.
    #[serde(rename = "h", default)]
    pub blake3: Option<ContentHash>,
    /// Favourite.
    #[serde(rename = "f", default)]
    pub favorite: bool,
    /// Archived.
    #[serde(rename = "a", default)]
    pub archived: bool,
    /// Latitude.
    #[serde(rename = "la", default)]
    pub latitude: Option<f64>,
    /// Longitude.
    #[serde(rename = "lo", default)]
    pub longitude: Option<f64>,
    /// Camera make.
    #[serde(rename = "cm", default)]
    pub camera_make: Option<String>,
    /// Camera model.
    #[serde(rename = "cn", default)]
    pub camera_model: Option<String>,
    /// Description.
    #[serde(rename = "de", default)]
    pub description: Option<String>,
    /// Lifecycle state.
    #[serde(rename = "st")]
    pub state: ItemState,
}

/// [`ItemRecord`] as encoded: the original file name is left out when it is the last
/// component of the path (most items), and restored from it on reading.
#[derive(Serialize, Deserialize)]
struct StoredItem {
    /// Source it came from.
    #[serde(rename = "k")]
    source: SourceKind,
    /// Relative path in the library; empty while unplaced. Never changes once set.
    #[serde(rename = "p", default)]
    path: String,
    /// Original file name, unless it equals the path's last component.
    #[serde(rename = "n", default)]
    filename: Option<String>,
    /// MIME type.
    #[serde(rename = "m")]
    mime_type: String,
    /// Capture time, ms since the epoch.
    #[serde(rename = "t", default)]
    taken_ms: Option<i64>,
    /// Size the source announced (if any).
    #[serde(rename = "x", default)]
    expected_size: Option<u64>,
    /// Size of the file in the library.
    #[serde(rename = "s", default)]
    size: Option<u64>,
    /// blake3 of the file in the library.
    #[serde(rename = "h", default)]
    blake3: Option<ContentHash>,
    /// Favourite.
    #[serde(rename = "f", default)]
    favorite: bool,
    /// Archived.
    #[serde(rename = "a", default)]
    archived: bool,
    /// Latitude.
    #[serde(rename = "la", default)]
    latitude: Option<f64>,
    /// Longitude.
    #[serde(rename = "lo", default)]
    longitude: Option<f64>,
    /// Camera make.
    #[serde(rename = "cm", default)]
    camera_make: Option<String>,
    /// Camera model.
    #[serde(rename = "cn", default)]
    camera_model: Option<String>,
    /// Description.
    #[serde(rename = "de", default)]
    description: Option<String>,
    /// Lifecycle state.
    #[serde(rename = "st")]
    state: ItemState,
}

fn last_component(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

impl From<ItemRecord> for StoredItem {
    fn from(r: ItemRecord) -> Self {
        let implied = !r.path.is_empty() && last_component(&r.path) == r.filename;
        StoredItem {
            source: r.source,
            filename: (!implied).then_some(r.filename),
            path: r.path,
            mime_type: r.mime_type,
            taken_ms: r.taken_ms,
            expected_size: r.expected_size,
            size: r.size,
            blake3: r.blake3,
            favorite: r.favorite,
            archived: r.archived,
            latitude: r.latitude,
            longitude: r.longitude,
            camera_make: r.camera_make,
            camera_model: r.camera_model,
            description: r.description,
            state: r.state,
        }
    }
}

impl From<StoredItem> for ItemRecord {
    fn from(s: StoredItem) -> Self {
        ItemRecord {
            source: s.source,
            filename: s
                .filename
                .unwrap_or_else(|| last_component(&s.path).to_owned()),
            path: s.path,
            mime_type: s.mime_type,
            taken_ms: s.taken_ms,
            expected_size: s.expected_size,
            size: s.size,
            blake3: s.blake3,
            favorite: s.favorite,
            archived: s.archived,
            latitude: s.latitude,
            longitude: s.longitude,
            camera_make: s.camera_make,
            camera_model: s.camera_model,
            description: s.description,
            state: s.state,
        }
    }
}

impl ItemRecord {
    /// A record with no metadata yet, in `state`.
    pub fn empty(source: SourceKind, state: ItemState) -> Self {
        ItemRecord {
            source,
            path: String::new(),
            filename: String::new(),
            mime_type: String::new(),
            taken_ms: None,
            expected_size: None,
            size: None,
            blake3: None,
            favorite: false,
            archived: false,
            latitude: None,
            longitude: None,
            camera_make: None,
            camera_model: None,
            description: None,
            state,
        }
    }

    /// A fresh record for a newly listed item.
    pub fn from_remote(item: &RemoteItem, source: SourceKind) -> Self {
        let mut r = ItemRecord::empty(source, ItemState::Unplaced);
        r.update_metadata(item);
        r
    }

    /// Refreshes the metadata that may change remotely (never the path).
    pub fn update_metadata(&mut self, item: &RemoteItem) {
        self.filename = item.filename.clone();
        self.mime_type = item.mime_type.clone();
        self.taken_ms = item.taken_at.map(|t| t.timestamp_millis());
        self.expected_size = item.size;
        self.favorite = item.favorite;
        self.archived = item.archived;
        self.camera_make = item.camera_make.clone();
        self.camera_model = item.camera_model.clone();
        // An item merged with its Takeout original (takeout_import.rs) keeps the GPS and
        // caption Takeout gave it: the Library API never returns a location.
        let keep = self.source == SourceKind::Takeout;
        if !keep || item.latitude.is_some() {
            self.latitude = item.latitude;
            self.longitude = item.longitude;
        }
        if !keep || item.description.is_some() {
            self.description = item.description.clone();
        }
    }

    /// Capture time.
    pub fn taken_at(&self) -> Option<DateTime<Utc>> {
        self.taken_ms
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
    }
}

/// Retry bookkeeping for an item not yet in the library.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PendingRecord {
    /// Failed attempts so far.
    #[serde(rename = "a", default)]
    pub attempts: u32,
    /// Do not try before this time (ms since the epoch).
    #[serde(rename = "n", default)]
    pub next_retry_ms: i64,
    /// Last failure, for status.
    #[serde(rename = "e", default)]
    pub last_error: Option<String>,
    /// The last attempt found a video still processing (not counted as a failure).
    #[serde(rename = "v", default)]
    pub processing: bool,
}

/// One album as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlbumRecord {
    /// Source it came from.
    #[serde(rename = "k")]
    pub source: SourceKind,
    /// Title.
    #[serde(rename = "t")]
    pub title: String,
    /// Relative folder of its link tree, once built.
    #[serde(rename = "d", default)]
    pub dir: String,
    /// Remote item count at the last membership listing.
    #[serde(rename = "c", default)]
    pub count: Option<u64>,
    /// Membership must be (re)listed.
    #[serde(rename = "m", default)]
    pub members_stale: bool,
}

/// Per-source listing state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CursorRecord {
    /// Newest capture time seen (ms); incremental listings start here.
    #[serde(rename = "n", default, skip_serializing_if = "Option::is_none")]
    pub newest_taken_ms: Option<i64>,
    /// When the last *complete* full listing finished (ms).
    #[serde(rename = "f", default, skip_serializing_if = "Option::is_none")]
    pub last_full_ms: Option<i64>,
}

/// Who holds a path: a kind tag and a 64-bit hash of the owner string.
///
/// Claims are the biggest tree after items, and sled's cost per entry grows with key and
/// value length, so a claim is stored as 8 + 9 bytes instead of the path and the owner's
/// ~100-character media id. Callers only ever ask "is it this owner?", "is it an orphan?" or
/// "is it claimed at all?". A 64-bit collision between two owners is the only way to be
/// wrong (about 1 in 10^19 per comparison), and two paths sharing a hash make a name look
/// taken, so the item gets a suffixed name instead: never an overwrite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathOwner {
    orphan: bool,
    hash: [u8; 8],
}

const OWNER_TAG: u8 = b'i';
const ORPHAN_TAG: u8 = b'o';
/// Owners beginning with this are files found on disk that no item claims (`reindex`).
pub const ORPHAN_PREFIX: &str = "orphan:";

/// The first 8 bytes of blake3(`s`): the index's short fingerprint of a path or an id.
pub(crate) fn hash8(s: &str) -> [u8; 8] {
    let mut out = [0u8; 8];
    out.copy_from_slice(&blake3::hash(s.as_bytes()).as_bytes()[..8]);
    out
}

/// The key of a claimed path in [`Tree::Claims`].
fn claim_hash(claim: &str) -> [u8; 8] {
    hash8(claim)
}

impl PathOwner {
    /// The owner value for `owner`.
    pub fn of(owner: &str) -> Self {
        PathOwner {
            orphan: owner.starts_with(ORPHAN_PREFIX),
            hash: hash8(owner),
        }
    }

    /// Whether this claim belongs to `owner`.
    pub fn is(&self, owner: &str) -> bool {
        *self == PathOwner::of(owner)
    }

    /// Whether the path is a file found on disk that no item claimed.
    pub fn is_orphan(&self) -> bool {
        self.orphan
    }

    fn to_bytes(self) -> [u8; 9] {
        let mut out = [0u8; 9];
        out[0] = if self.orphan { ORPHAN_TAG } else { OWNER_TAG };
        out[1..].copy_from_slice(&self.hash);
        out
    }

    fn from_bytes(b: &[u8]) -> Result<Self, Error> {
        let corrupt = || Error::Corrupt {
            tree: "claims",
            detail: format!("a claim of {} bytes", b.len()),
        };
        let (&tag, rest) = b.split_first().ok_or_else(corrupt)?;
        let hash = <[u8; 8]>::try_from(rest).map_err(|_| corrupt())?;
        Ok(PathOwner {
            orphan: tag == ORPHAN_TAG,
            hash,
        })
    }
}

/// Typed access to the index.
#[derive(Clone)]
pub struct Index {
    store: Arc<dyn Store>,
}

/// JSON, for the few records meant to be readable in a raw dump (meta, cursors, runs).
fn enc_json<T: Serialize>(v: &T) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(v).map_err(|e| Error::Corrupt {
        tree: "encode",
        detail: e.to_string(),
    })
}

fn dec_json<T: DeserializeOwned>(tree: &'static str, b: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(b).map_err(|e| Error::Corrupt {
        tree,
        detail: e.to_string(),
    })
}

use crate::codec::{decode as dec, encode as enc};

/// `a \0 b` composite key.
pub(crate) fn key2(a: &str, b: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(a.len() + 1 + b.len());
    k.extend_from_slice(a.as_bytes());
    k.push(0);
    k.extend_from_slice(b);
    k
}

fn after_nul(k: &[u8]) -> &[u8] {
    match k.iter().position(|b| *b == 0) {
        Some(i) => &k[i + 1..],
        None => &[],
    }
}

fn utf8(tree: &'static str, b: &[u8]) -> Result<String, Error> {
    String::from_utf8(b.to_vec()).map_err(|e| Error::Corrupt {
        tree,
        detail: e.to_string(),
    })
}

impl Index {
    /// Wraps a store, creating or migrating the schema.
    pub fn new(store: Arc<dyn Store>) -> Result<Self, Error> {
        let idx = Index { store };
        let found = idx
            .store
            .get(Tree::Meta, b"schema")?
            .map(|v| dec_json::<u32>("meta", &v))
            .transpose()?;
        match found {
            None => idx
                .store
                .put(Tree::Meta, b"schema", &enc_json(&SCHEMA_VERSION)?)?,
            Some(v) if v > SCHEMA_VERSION => {
                return Err(Error::SchemaTooNew {
                    found: v,
                    supported: SCHEMA_VERSION,
                });
            }
            Some(v) if v < SCHEMA_VERSION => {
                idx.migrate(v)?;
                idx.store
                    .put(Tree::Meta, b"schema", &enc_json(&SCHEMA_VERSION)?)?;
            }
            Some(_) => {}
        }
        Ok(idx)
    }

    /// Upgrades records written by schema `from`. Each future version adds one step here; a
    /// migration must never require a re-download (gphotos-sync forced rescans: #34).
    fn migrate(&self, from: u32) -> Result<(), Error> {
        tracing::info!(from, to = SCHEMA_VERSION, "migrating index schema");
        if from < 2 {
            // 1 → 2: JSON records become postcard. `decode` reads both, so a migration
            // interrupted by a crash simply runs again (the schema is bumped only after it);
            // each batch is atomic, so no record is ever half-written.
            self.reencode::<ItemRecord>(Tree::Items, "items")?;
            self.reencode::<PendingRecord>(Tree::Pending, "pending")?;
            self.reencode::<AlbumRecord>(Tree::Albums, "albums")?;
            self.store.flush()?;
            // Path claims move to hashed keys in their own tree. Re-running after a crash
            // re-inserts the same entries; the old tree is cleared only at the end.
            self.rewrite(Tree::Paths, Tree::Claims, |claim, owner| {
                let claim = utf8("paths", claim)?;
                let owner = utf8("paths", owner)?;
                Ok(Some((
                    claim_hash(&claim).to_vec(),
                    PathOwner::of(&owner).to_bytes().to_vec(),
                )))
            })?;
            self.store.flush()?;
            self.store.clear(Tree::Paths)?;
            self.store.flush()?;
        }
        Ok(())
    }

    /// Rewrites every schema-1 JSON record of `tree` in the current encoding.
    fn reencode<T: Serialize + DeserializeOwned>(
        &self,
        tree: Tree,
        name: &'static str,
    ) -> Result<(), Error> {
        self.rewrite(tree, tree, |k, v| {
            if !crate::codec::is_legacy_json(v) {
                return Ok(None);
            }
            let rec: T = dec(name, v)?;
            Ok(Some((k.to_vec(), enc(&rec)?)))
        })
    }

    /// Writes `convert(key, value)` of every entry of `from` into `to` (`None`: skip it),
    /// streaming in atomic batches so memory stays flat whatever the library size.
    fn rewrite(
        &self,
        from: Tree,
        to: Tree,
        mut convert: impl FnMut(&[u8], &[u8]) -> Result<Option<(Vec<u8>, Vec<u8>)>, Error>,
    ) -> Result<(), Error> {
        const BATCH: usize = 1000;
        let mut batch = Vec::with_capacity(BATCH);
        for r in self.store.scan(from, b"") {
            let (k, v) = r?;
            if let Some((k, v)) = convert(&k, &v)? {
                batch.push((k, Some(v)));
            }
            if batch.len() == BATCH {
                self.store.apply(to, std::mem::take(&mut batch))?;
            }
        }
        if !batch.is_empty() {
            self.store.apply(to, batch)?;
        }
        Ok(())
    }

    /// The underlying store.
    pub fn store(&self) -> &dyn Store {
        &*self.store
    }

    /// Allocates the next run id.
    pub fn next_run_id(&self) -> Result<u64, Error> {
        let cur = self
            .store
            .get(Tree::Meta, b"next_run")?
            .map(|v| dec_json::<u64>("meta", &v))
            .transpose()?
            .unwrap_or(1);
        self.store
            .put(Tree::Meta, b"next_run", &enc_json(&(cur + 1))?)?;
        Ok(cur)
    }

    /// Reads an item.
    pub fn item(&self, id: &MediaId) -> Result<Option<ItemRecord>, Error> {
        self.store
            .get(Tree::Items, id.as_str().as_bytes())?
            .map(|v| dec("items", &v))
            .transpose()
    }

    /// Writes an item.
    pub fn put_item(&self, id: &MediaId, r: &ItemRecord) -> Result<(), Error> {
        self.store
            .put(Tree::Items, id.as_str().as_bytes(), &enc(r)?)
    }

    /// All items, streaming.
    pub fn items(&self) -> impl Iterator<Item = Result<(MediaId, ItemRecord), Error>> + '_ {
        self.store.scan(Tree::Items, b"").map(|r| {
            let (k, v) = r?;
            Ok((MediaId(utf8("items", &k)?), dec("items", &v)?))
        })
    }

    /// Who claims a path key.
    pub fn path_owner(&self, claim: &str) -> Result<Option<PathOwner>, Error> {
        self.store
            .get(Tree::Claims, &claim_hash(claim))?
            .map(|v| PathOwner::from_bytes(&v))
            .transpose()
    }

    /// Claims a path key for an owner (a media id, or a tagged owner such as `orphan:…`).
    pub fn claim_path(&self, claim: &str, owner: &str) -> Result<(), Error> {
        self.store.put(
            Tree::Claims,
            &claim_hash(claim),
            &PathOwner::of(owner).to_bytes(),
        )
    }

    /// Releases a path claim.
    pub fn release_path(&self, claim: &str) -> Result<(), Error> {
        self.store.remove(Tree::Claims, &claim_hash(claim))
    }

    /// Every path claim's owner (in no useful order: keys are hashes).
    pub fn path_owners(&self) -> impl Iterator<Item = Result<PathOwner, Error>> + '_ {
        self.store
            .scan(Tree::Claims, b"")
            .map(|r| PathOwner::from_bytes(&r?.1))
    }

    /// Queues an item for naming under `desired` (grouped by `claim`).
    pub fn add_unplaced(&self, claim: &str, id: &MediaId, desired: &str) -> Result<(), Error> {
        self.store.put(
            Tree::Unplaced,
            &key2(claim, id.as_str().as_bytes()),
            desired.as_bytes(),
        )
    }

    /// Unplaced items in (claim, id) order: (raw key, claim, id, desired path).
    #[allow(clippy::type_complexity)]
    pub fn unplaced(
        &self,
    ) -> impl Iterator<Item = Result<(Vec<u8>, String, MediaId, String), Error>> + '_ {
        self.store.scan(Tree::Unplaced, b"").map(|r| {
            let (k, v) = r?;
            let nul = k.iter().position(|b| *b == 0).unwrap_or(k.len());
            let claim = utf8("unplaced", &k[..nul])?;
            let id = MediaId(utf8("unplaced", after_nul(&k))?);
            Ok((k, claim, id, utf8("unplaced", &v)?))
        })
    }

    /// Removes an unplaced entry by its raw key.
    pub fn remove_unplaced(&self, key: &[u8]) -> Result<(), Error> {
        self.store.remove(Tree::Unplaced, key)
    }

    /// Retry state of a pending item.
    pub fn pending(&self, id: &MediaId) -> Result<Option<PendingRecord>, Error> {
        self.store
            .get(Tree::Pending, id.as_str().as_bytes())?
            .map(|v| dec("pending", &v))
            .transpose()
    }

    /// Writes retry state.
    pub fn put_pending(&self, id: &MediaId, p: &PendingRecord) -> Result<(), Error> {
        self.store
            .put(Tree::Pending, id.as_str().as_bytes(), &enc(p)?)
    }

    /// Drops retry state.
    pub fn remove_pending(&self, id: &MediaId) -> Result<(), Error> {
        self.store.remove(Tree::Pending, id.as_str().as_bytes())
    }

    /// All pending items, streaming.
    pub fn pendings(&self) -> impl Iterator<Item = Result<(MediaId, PendingRecord), Error>> + '_ {
        self.store.scan(Tree::Pending, b"").map(|r| {
            let (k, v) = r?;
            Ok((MediaId(utf8("pending", &k)?), dec("pending", &v)?))
        })
    }

    /// Reads an album.
    pub fn album(&self, id: &AlbumId) -> Result<Option<AlbumRecord>, Error> {
        self.store
            .get(Tree::Albums, id.as_str().as_bytes())?
            .map(|v| dec("albums", &v))
            .transpose()
    }

    /// Writes an album.
    pub fn put_album(&self, id: &AlbumId, a: &AlbumRecord) -> Result<(), Error> {
        self.store
            .put(Tree::Albums, id.as_str().as_bytes(), &enc(a)?)
    }

    /// All albums.
    pub fn albums(&self) -> impl Iterator<Item = Result<(AlbumId, AlbumRecord), Error>> + '_ {
        self.store.scan(Tree::Albums, b"").map(|r| {
            let (k, v) = r?;
            Ok((AlbumId(utf8("albums", &k)?), dec("albums", &v)?))
        })
    }

    /// Deletes an album and its memberships.
    pub fn remove_album(&self, id: &AlbumId) -> Result<(), Error> {
        self.clear_members(id)?;
        self.store.remove(Tree::Albums, id.as_str().as_bytes())
    }

    /// Members of an album in position order.
    pub fn members<'a>(
        &'a self,
        album: &AlbumId,
    ) -> impl Iterator<Item = Result<MediaId, Error>> + 'a {
        self.store
            .scan(Tree::Members, &key2(album.as_str(), b""))
            .map(|r| Ok(MediaId(utf8("members", &r?.1)?)))
    }

    /// Drops all memberships of an album.
    pub fn clear_members(&self, album: &AlbumId) -> Result<(), Error> {
        let keys: Vec<(Vec<u8>, Vec<u8>)> = self
            .store
            .scan(Tree::Members, &key2(album.as_str(), b""))
            .collect::<Result<_, _>>()?;
        // Bounded by one album (≤ 20,000 items per Google's limit).
        for (k, v) in keys {
            self.store.remove(Tree::Members, &k)?;
            let id = utf8("members", &v)?;
            self.store
                .remove(Tree::ItemAlbums, &key2(&id, album.as_str().as_bytes()))?;
        }
        Ok(())
    }

    /// Whether `members` (in order) is exactly the recorded membership of `album`.
    pub fn members_equal(&self, album: &AlbumId, members: &[MediaId]) -> Result<bool, Error> {
        let mut current = self.members(album);
        for want in members {
            match current.next() {
                Some(Ok(have)) if have == *want => {}
                Some(Err(e)) => return Err(e),
                _ => return Ok(false),
            }
        }
        Ok(current.next().is_none())
    }

    /// Makes `members` (in order) the membership of `album`, writing only what differs:
    /// one photo added to a 20,000-item album is a few writes, not 80,000 (sled's log
    /// grows with every write, changed or not). Each tree is one atomic batch; the two are
    /// not atomic together, so callers mark the album stale first, and a crash in between
    /// makes the next run list it again. That run finishes the job: back-references are
    /// checked (read, not rewritten) for every member, and those of items the old
    /// positions still name but `members` does not are removed.
    pub fn replace_members(&self, album: &AlbumId, members: &[MediaId]) -> Result<(), Error> {
        // Bounded by one album (≤ 20,000 items per Google's limit).
        let old: HashMap<Vec<u8>, Vec<u8>> = self
            .store
            .scan(Tree::Members, &key2(album.as_str(), b""))
            .collect::<Result<_, _>>()?;
        let mut positions: Batch = Vec::new();
        let mut wanted_keys: HashSet<Vec<u8>> = HashSet::with_capacity(members.len());
        for (pos, id) in members.iter().enumerate() {
            let pos = u32::try_from(pos).unwrap_or(u32::MAX);
            let key = key2(album.as_str(), &pos.to_be_bytes());
            if old.get(&key).map(Vec::as_slice) != Some(id.as_str().as_bytes()) {
                positions.push((key.clone(), Some(id.as_str().as_bytes().to_vec())));
            }
            wanted_keys.insert(key);
        }
        let kept: HashSet<&str> = members.iter().map(MediaId::as_str).collect();
        let mut back_refs: Batch = Vec::new();
        for (key, id) in &old {
            if !wanted_keys.contains(key) {
                positions.push((key.clone(), None));
            }
            let id = utf8("members", id)?;
            if !kept.contains(id.as_str()) {
                back_refs.push((key2(&id, album.as_str().as_bytes()), None));
            }
        }
        for id in kept {
            let key = key2(id, album.as_str().as_bytes());
            if self.store.get(Tree::ItemAlbums, &key)?.is_none() {
                back_refs.push((key, Some(Vec::new())));
            }
        }
        // Back-references first: cut off after them, the old positions still name every
        // item whose back-reference the next run must check or remove.
        if !back_refs.is_empty() {
            self.store.apply(Tree::ItemAlbums, back_refs)?;
        }
        if !positions.is_empty() {
            self.store.apply(Tree::Members, positions)?;
        }
        Ok(())
    }

    /// Records `id` at `pos` in `album`.
    pub fn add_member(&self, album: &AlbumId, pos: u32, id: &MediaId) -> Result<(), Error> {
        self.store.put(
            Tree::Members,
            &key2(album.as_str(), &pos.to_be_bytes()),
            id.as_str().as_bytes(),
        )?;
        self.store.put(
            Tree::ItemAlbums,
            &key2(id.as_str(), album.as_str().as_bytes()),
            b"",
        )
    }

    /// Albums an item belongs to.
    pub fn item_albums<'a>(
        &'a self,
        id: &MediaId,
    ) -> impl Iterator<Item = Result<AlbumId, Error>> + 'a {
        self.store
            .scan(Tree::ItemAlbums, &key2(id.as_str(), b""))
            .map(|r| Ok(AlbumId(utf8("item_albums", after_nul(&r?.0))?)))
    }

    /// Listing cursor of a source.
    pub fn cursor(&self, kind: SourceKind) -> Result<CursorRecord, Error> {
        Ok(self
            .store
            .get(Tree::Cursors, kind.as_str().as_bytes())?
            .map(|v| dec_json("cursors", &v))
            .transpose()?
            .unwrap_or_default())
    }

    /// Stores a listing cursor.
    pub fn put_cursor(&self, kind: SourceKind, c: &CursorRecord) -> Result<(), Error> {
        self.store
            .put(Tree::Cursors, kind.as_str().as_bytes(), &enc_json(c)?)
    }

    /// Stores a run record.
    pub fn put_run<T: Serialize>(&self, run: u64, r: &T) -> Result<(), Error> {
        self.store
            .put(Tree::Runs, &run.to_be_bytes(), &enc_json(r)?)
    }

    /// Run records, oldest first.
    pub fn runs<T: DeserializeOwned>(&self) -> impl Iterator<Item = Result<T, Error>> + '_ {
        self.store
            .scan(Tree::Runs, b"")
            .map(|r| dec_json("runs", &r?.1))
    }

    /// Makes everything durable.
    pub fn flush(&self) -> Result<(), Error> {
        self.store.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SledStore;

    fn typical_item() -> (MediaId, ItemRecord) {
        // Google media ids are ~100 characters.
        let id = MediaId::new("A".repeat(100));
        let mut item = RemoteItem::new(id.clone(), "PXL_20230815_123456789.MP.jpg", "image/jpeg");
        item.taken_at = Utc.timestamp_millis_opt(1_692_102_896_000).single();
        item.camera_make = Some("Google".into());
        item.camera_model = Some("Pixel 7".into());
        let mut rec = ItemRecord::from_remote(&item, SourceKind::LibraryApi);
        rec.path = "photos/2023/08/PXL_20230815_123456789.MP.jpg".into();
        rec.state = ItemState::Done;
        rec.size = Some(3_456_789);
        rec.blake3 = Some(ContentHash::of(b"x"));
        (id, rec)
    }

    #[test]
    fn a_typical_item_costs_under_700_bytes_of_keys_and_values() {
        let (id, rec) = typical_item();
        let value = enc(&rec).unwrap();
        // items (key + value) + paths (key + owner id) + one album membership both ways.
        let total = id.as_str().len()
            + value.len()
            + rec.path.len()
            + id.as_str().len()
            + 2 * (40 + 1 + 4 + id.as_str().len());
        assert!(total < 700, "{total} bytes: {value:?}");

        // And it round-trips through a real store.
        let dir = tempfile::tempdir().unwrap();
        let idx = Index::new(Arc::new(
            SledStore::open(&dir.path().join("index")).unwrap(),
        ))
        .unwrap();
        idx.put_item(&id, &rec).unwrap();
        assert_eq!(idx.item(&id).unwrap(), Some(rec));
    }

    /// Postcard writes fields by position and enum variants by index: reordering a field or
    /// a variant would silently misread every existing index. This pins the layout; a change
    /// that breaks it needs a schema bump and a migration (see `codec.rs`).
    #[test]
    fn codec_is_pinned() {
        let (_, rec) = typical_item();
        let bytes = enc(&rec).unwrap();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "002c70686f746f732f323032332f30382f50584c5f32303233303831355f3132333435363738392e4d50\
             2e6a7067000a696d6167652f6a7065670180a68993bf62000195fed201013ae7d805f6789a6402acb70a\
             d4096a85a56bf6804eaf25c0493ac697548d30b5000000000106476f6f676c650107506978656c203700\
             02"
        );
        let pending = PendingRecord {
            attempts: 3,
            next_retry_ms: 1_700_000_000_000,
            last_error: Some("503".into()),
            processing: true,
        };
        let album = AlbumRecord {
            source: SourceKind::Takeout,
            title: "Trip".into(),
            dir: "albums/2020/03 Trip".into(),
            count: Some(2),
            members_stale: false,
        };
        let hex2: String = enc(&pending)
            .unwrap()
            .iter()
            .chain(enc(&album).unwrap().iter())
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex2,
            "0380a0abfef96201033530330102045472697013616c62756d732f323032302f30332054726970010200"
        );
        // Variant indexes, appended only.
        let kinds: Vec<u8> = [
            SourceKind::LibraryApi,
            SourceKind::Picker,
            SourceKind::Takeout,
            SourceKind::Local,
        ]
        .iter()
        .map(|k| enc(k).unwrap()[0])
        .collect();
        assert_eq!(kinds, [0, 1, 2, 3]);
        let states: Vec<u8> = [
            ItemState::Unplaced,
            ItemState::Pending,
            ItemState::Done,
            ItemState::Removed,
        ]
        .iter()
        .map(|s| enc(s).unwrap()[0])
        .collect();
        assert_eq!(states, [0, 1, 2, 3]);
    }

    #[test]
    fn the_file_name_is_stored_only_when_the_path_does_not_imply_it() {
        let (_, mut rec) = typical_item();
        let implied = enc(&rec).unwrap();
        assert_eq!(dec::<ItemRecord>("items", &implied).unwrap(), rec);

        // A suffixed name, an unplaced item, an empty original name: all kept as they were.
        rec.path = "photos/2023/08/PXL_20230815_123456789.MP_1a2b3c4d.jpg".into();
        let suffixed = enc(&rec).unwrap();
        // 9 more path bytes, then the name with its length byte.
        assert_eq!(suffixed.len(), implied.len() + 9 + 1 + rec.filename.len());
        assert_eq!(dec::<ItemRecord>("items", &suffixed).unwrap(), rec);
        rec.path = String::new();
        assert_eq!(
            dec::<ItemRecord>("items", &enc(&rec).unwrap()).unwrap(),
            rec
        );
        rec.path = "photos/2023/08/unnamed".into();
        rec.filename = String::new();
        assert_eq!(
            dec::<ItemRecord>("items", &enc(&rec).unwrap()).unwrap(),
            rec
        );
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SledStore::open(&dir.path().join("index")).unwrap());
        store.put(Tree::Meta, b"schema", b"99").unwrap();
        assert!(matches!(
            Index::new(store),
            Err(Error::SchemaTooNew { found: 99, .. })
        ));
    }
}
