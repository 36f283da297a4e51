//! The typed index on top of [`Store`]: items, albums, memberships, cursors, runs, schema.
//!
//! Records are JSON with one- or two-letter field names: readable with any sled dump tool, and
//! small (a typical item with a 100-character Google id costs ~0.5 KiB across all trees).

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::store::{Store, Tree};
use crate::types::{AlbumId, MediaId, RemoteItem, SourceKind};

/// The schema this build writes.
pub const SCHEMA_VERSION: u32 = 1;

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

fn is_false(b: &bool) -> bool {
    !*b
}

/// One item as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemRecord {
    /// Source it came from.
    #[serde(rename = "k")]
    pub source: SourceKind,
    /// Relative path in the library; empty while unplaced. Never changes once set.
    #[serde(rename = "p", default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    /// Original file name.
    #[serde(rename = "n")]
    pub filename: String,
    /// MIME type.
    #[serde(rename = "m")]
    pub mime_type: String,
    /// Capture time, ms since the epoch.
    #[serde(rename = "t", default, skip_serializing_if = "Option::is_none")]
    pub taken_ms: Option<i64>,
    /// Size the source announced (if any).
    #[serde(rename = "x", default, skip_serializing_if = "Option::is_none")]
    pub expected_size: Option<u64>,
    /// Size of the file in the library.
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// blake3 of the file in the library (hex).
    #[serde(rename = "h", default, skip_serializing_if = "Option::is_none")]
    pub blake3: Option<String>,
    /// Favourite.
    #[serde(rename = "f", default, skip_serializing_if = "is_false")]
    pub favorite: bool,
    /// Archived.
    #[serde(rename = "a", default, skip_serializing_if = "is_false")]
    pub archived: bool,
    /// Latitude.
    #[serde(rename = "la", default, skip_serializing_if = "Option::is_none")]
    pub latitude: Option<f64>,
    /// Longitude.
    #[serde(rename = "lo", default, skip_serializing_if = "Option::is_none")]
    pub longitude: Option<f64>,
    /// Camera make.
    #[serde(rename = "cm", default, skip_serializing_if = "Option::is_none")]
    pub camera_make: Option<String>,
    /// Camera model.
    #[serde(rename = "cn", default, skip_serializing_if = "Option::is_none")]
    pub camera_model: Option<String>,
    /// Description.
    #[serde(rename = "de", default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Lifecycle state.
    #[serde(rename = "st")]
    pub state: ItemState,
    /// Last run whose listing (main or album) contained the item.
    #[serde(rename = "r", default)]
    pub last_seen_run: u64,
}

impl ItemRecord {
    /// A record with no metadata yet, in `state`.
    pub fn empty(source: SourceKind, state: ItemState, run: u64) -> Self {
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
            last_seen_run: run,
        }
    }

    /// A fresh record for a newly listed item.
    pub fn from_remote(item: &RemoteItem, source: SourceKind, run: u64) -> Self {
        let mut r = ItemRecord::empty(source, ItemState::Unplaced, run);
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
    #[serde(rename = "e", default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The last attempt found a video still processing (not counted as a failure).
    #[serde(rename = "v", default, skip_serializing_if = "is_false")]
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
    #[serde(rename = "d", default, skip_serializing_if = "String::is_empty")]
    pub dir: String,
    /// Remote item count at the last membership listing.
    #[serde(rename = "c", default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// Last run that listed it.
    #[serde(rename = "r", default)]
    pub last_seen_run: u64,
    /// Membership must be (re)listed.
    #[serde(rename = "m", default, skip_serializing_if = "is_false")]
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

/// Typed access to the index.
#[derive(Clone)]
pub struct Index {
    store: Arc<dyn Store>,
}

fn enc<T: Serialize>(v: &T) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(v).map_err(|e| Error::Corrupt {
        tree: "encode",
        detail: e.to_string(),
    })
}

fn dec<T: DeserializeOwned>(tree: &'static str, b: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(b).map_err(|e| Error::Corrupt {
        tree,
        detail: e.to_string(),
    })
}

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
            .map(|v| dec::<u32>("meta", &v))
            .transpose()?;
        match found {
            None => idx
                .store
                .put(Tree::Meta, b"schema", &enc(&SCHEMA_VERSION)?)?,
            Some(v) if v > SCHEMA_VERSION => {
                return Err(Error::SchemaTooNew {
                    found: v,
                    supported: SCHEMA_VERSION,
                });
            }
            Some(v) if v < SCHEMA_VERSION => {
                idx.migrate(v)?;
                idx.store
                    .put(Tree::Meta, b"schema", &enc(&SCHEMA_VERSION)?)?;
            }
            Some(_) => {}
        }
        Ok(idx)
    }

    /// Upgrades records written by schema `from`. Each future version adds one step here; a
    /// migration must never require a re-download (gphotos-sync forced rescans: #34).
    fn migrate(&self, from: u32) -> Result<(), Error> {
        tracing::info!(from, to = SCHEMA_VERSION, "migrating index schema");
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
            .map(|v| dec::<u64>("meta", &v))
            .transpose()?
            .unwrap_or(1);
        self.store.put(Tree::Meta, b"next_run", &enc(&(cur + 1))?)?;
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
    pub fn path_owner(&self, claim: &str) -> Result<Option<String>, Error> {
        self.store
            .get(Tree::Paths, claim.as_bytes())?
            .map(|v| utf8("paths", &v))
            .transpose()
    }

    /// Claims a path key for an owner.
    pub fn claim_path(&self, claim: &str, owner: &str) -> Result<(), Error> {
        self.store
            .put(Tree::Paths, claim.as_bytes(), owner.as_bytes())
    }

    /// Releases a path claim.
    pub fn release_path(&self, claim: &str) -> Result<(), Error> {
        self.store.remove(Tree::Paths, claim.as_bytes())
    }

    /// All path claims.
    pub fn paths(&self) -> impl Iterator<Item = Result<(String, String), Error>> + '_ {
        self.store.scan(Tree::Paths, b"").map(|r| {
            let (k, v) = r?;
            Ok((utf8("paths", &k)?, utf8("paths", &v)?))
        })
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
            .map(|v| dec("cursors", &v))
            .transpose()?
            .unwrap_or_default())
    }

    /// Stores a listing cursor.
    pub fn put_cursor(&self, kind: SourceKind, c: &CursorRecord) -> Result<(), Error> {
        self.store
            .put(Tree::Cursors, kind.as_str().as_bytes(), &enc(c)?)
    }

    /// Stores a run record.
    pub fn put_run<T: Serialize>(&self, run: u64, r: &T) -> Result<(), Error> {
        self.store.put(Tree::Runs, &run.to_be_bytes(), &enc(r)?)
    }

    /// Run records, oldest first.
    pub fn runs<T: DeserializeOwned>(&self) -> impl Iterator<Item = Result<T, Error>> + '_ {
        self.store.scan(Tree::Runs, b"").map(|r| dec("runs", &r?.1))
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

    #[test]
    fn a_typical_item_costs_well_under_one_kib() {
        // Google media ids are ~100 characters.
        let id = MediaId::new("A".repeat(100));
        let mut item = RemoteItem::new(id.clone(), "PXL_20230815_123456789.MP.jpg", "image/jpeg");
        item.taken_at = Some(Utc::now());
        item.camera_make = Some("Google".into());
        item.camera_model = Some("Pixel 7".into());
        let mut rec = ItemRecord::from_remote(&item, SourceKind::LibraryApi, 12345);
        rec.path = "photos/2023/08/PXL_20230815_123456789.MP.jpg".into();
        rec.state = ItemState::Done;
        rec.size = Some(3_456_789);
        rec.blake3 = Some(blake3::hash(b"x").to_hex().to_string());
        let value = enc(&rec).unwrap();
        // items (key + value) + paths (key + owner id) + one album membership both ways.
        let total = id.as_str().len()
            + value.len()
            + rec.path.len()
            + id.as_str().len()
            + 2 * (40 + 1 + 4 + id.as_str().len());
        assert!(
            total < 1024,
            "{total} bytes: {}",
            String::from_utf8_lossy(&value)
        );

        // And it round-trips through a real store.
        let dir = tempfile::tempdir().unwrap();
        let idx = Index::new(Arc::new(SledStore::open(dir.path()).unwrap())).unwrap();
        idx.put_item(&id, &rec).unwrap();
        assert_eq!(idx.item(&id).unwrap(), Some(rec));
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SledStore::open(dir.path()).unwrap());
        store.put(Tree::Meta, b"schema", b"99").unwrap();
        assert!(matches!(
            Index::new(store),
            Err(Error::SchemaTooNew { found: 99, .. })
        ));
    }
}
