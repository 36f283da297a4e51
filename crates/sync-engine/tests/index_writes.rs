//! What the index writes, and what it keeps on disk: the real sled store, wrapped in a layer
//! that counts writes per tree; and an index written by schema 1 (JSON records) upgraded in
//! place.
#![allow(clippy::unwrap_used)] // test helpers: a failed setup step should abort the test

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use sync_engine::{
    Batch, Engine, EngineConfig, Entry, Error, LocalDirSource, NoProgress, SledStore, Source,
    Store, SyncOptions, Tree,
};
use tokio_util::sync::CancellationToken;

mod common;
use common::{put, sync};

/// The real store, counting the keys written (put, remove, batch entries) to each tree, and
/// able to fail one chosen write (a crash or a full disk between two related writes).
struct CountingStore {
    inner: SledStore,
    writes: Mutex<HashMap<&'static str, u64>>,
    /// (tree, n): the n-th put to that tree from now on fails.
    fail: Mutex<Option<(&'static str, u64)>>,
}

impl CountingStore {
    /// An engine over a counting wrapper of the real store in `state`.
    fn engine(lib: &Path, state: &Path) -> (Arc<CountingStore>, Engine) {
        let store = Arc::new(CountingStore {
            inner: SledStore::open(&state.join("index")).unwrap(),
            writes: Mutex::default(),
            fail: Mutex::default(),
        });
        let engine = Engine::open_with_store(EngineConfig::new(lib, state), store.clone()).unwrap();
        (store, engine)
    }

    /// Fails if the chosen write is among the next `n` writes to `tree`.
    fn maybe_fail(&self, tree: Tree, n: u64) -> Result<(), Error> {
        let mut fail = self.fail.lock().unwrap();
        if let Some((name, left)) = fail.as_mut()
            && *name == tree.name()
        {
            if *left <= n {
                *fail = None;
                return Err(Error::Config("injected failure".into()));
            }
            *left -= n;
        }
        Ok(())
    }

    fn count(&self, tree: Tree, n: u64) {
        *self.writes.lock().unwrap().entry(tree.name()).or_default() += n;
    }
    fn take(&self) -> HashMap<&'static str, u64> {
        std::mem::take(&mut *self.writes.lock().unwrap())
    }
}

impl Store for CountingStore {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        self.inner.get(tree, key)
    }
    fn put(&self, tree: Tree, key: &[u8], value: &[u8]) -> Result<(), Error> {
        self.count(tree, 1);
        self.maybe_fail(tree, 1)?;
        self.inner.put(tree, key, value)
    }
    fn remove(&self, tree: Tree, key: &[u8]) -> Result<(), Error> {
        self.count(tree, 1);
        self.inner.remove(tree, key)
    }
    fn apply(&self, tree: Tree, batch: Batch) -> Result<(), Error> {
        self.count(tree, batch.len() as u64);
        // A batch is atomic: it fails as a whole if it holds the chosen write.
        self.maybe_fail(tree, batch.len() as u64)?;
        self.inner.apply(tree, batch)
    }
    fn scan<'a>(
        &'a self,
        tree: Tree,
        prefix: &[u8],
    ) -> Box<dyn Iterator<Item = Result<Entry, Error>> + Send + 'a> {
        self.inner.scan(tree, prefix)
    }
    fn len(&self, tree: Tree) -> usize {
        self.inner.len(tree)
    }
    fn clear(&self, tree: Tree) -> Result<(), Error> {
        self.count(tree, 1);
        self.inner.clear(tree)
    }
    fn flush(&self) -> Result<(), Error> {
        self.inner.flush()
    }
    fn size_on_disk(&self) -> Result<u64, Error> {
        self.inner.size_on_disk()
    }
}

/// Trees that hold per-item or per-membership records.
const PER_ITEM: [&str; 7] = [
    "items",
    "claims",
    "unplaced",
    "pending",
    "albums",
    "members",
    "item_albums",
];

#[tokio::test]
async fn an_unchanged_library_rescanned_in_full_rewrites_no_record() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    for i in 0..40u64 {
        let rel = if i % 4 == 0 {
            format!("albums/Trip/t{i:02}.jpg")
        } else {
            format!("p{i:02}.jpg")
        };
        put(
            &src,
            &rel,
            format!("photo {i}").as_bytes(),
            1_584_273_600 + i * 86_400,
        );
    }
    let state = tmp.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let (store, engine) = CountingStore::engine(&tmp.path().join("lib"), &state);

    let first = sync(&engine, &src, false).await;
    assert_eq!(first.downloaded, 40, "{:?}", first.errors);
    let writes = store.take();
    assert!(
        writes.get("items").copied().unwrap_or(0) >= 40,
        "{writes:?}"
    );
    assert!(
        writes.get("members").copied().unwrap_or(0) >= 10,
        "{writes:?}"
    );

    for rescan in [true, false, true] {
        let r = sync(&engine, &src, rescan).await;
        assert_eq!((r.new_items, r.downloaded, r.removed), (0, 0, 0));
        let writes = store.take();
        for tree in PER_ITEM {
            assert_eq!(writes.get(tree), None, "rescan={rescan}: {writes:?}");
        }
    }

    // A real change is still written: an album member disappears at the source.
    std::fs::remove_file(src.join("albums/Trip/t04.jpg")).unwrap();
    let r = sync(&engine, &src, true).await;
    assert_eq!((r.downloaded, r.removed), (0, 1));
    let writes = store.take();
    assert!(
        writes.get("members").copied().unwrap_or(0) > 0,
        "{writes:?}"
    );
    let items: Vec<_> = engine.items().collect::<Result<_, _>>().unwrap();
    let in_album = items.iter().filter(|i| !i.albums.is_empty()).count();
    assert_eq!(in_album, 9);
}

#[tokio::test]
async fn an_album_update_cut_off_between_its_two_trees_is_repaired_by_the_next_run() {
    // Whichever of the two writes is cut off.
    for tree in ["item_albums", "members"] {
        album_update_cut_off_at(tree).await;
    }
}

async fn album_update_cut_off_at(tree: &'static str) {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    for i in 0..3u64 {
        let rel = format!("albums/Trip/t{i}.jpg");
        put(
            &src,
            &rel,
            format!("photo {i}").as_bytes(),
            1_584_273_600 + i * 86_400,
        );
    }
    for i in 0..30u64 {
        put(&src, &format!("p{i:02}.jpg"), b"other", 1_584_273_600);
    }
    let state = tmp.path().join("state");
    let (store, engine) = CountingStore::engine(&tmp.path().join("lib"), &state);
    sync(&engine, &src, false).await;

    // t1 leaves the album; the first write to `tree` fails.
    std::fs::remove_file(src.join("albums/Trip/t1.jpg")).unwrap();
    *store.fail.lock().unwrap() = Some((tree, 1));
    let sources: Vec<Arc<dyn Source>> = vec![Arc::new(LocalDirSource::new(&src))];
    let failed = engine
        .sync(
            &sources,
            SyncOptions { rescan: true },
            Arc::new(NoProgress),
            CancellationToken::new(),
        )
        .await;
    assert!(failed.is_err(), "{tree}: {failed:?}");

    sync(&engine, &src, true).await;
    sync(&engine, &src, true).await;
    let items: Vec<_> = engine.items().collect::<Result<_, _>>().unwrap();
    for name in ["t0.jpg", "t2.jpg"] {
        let item = items.iter().find(|i| i.path.ends_with(name)).unwrap();
        assert_eq!(item.albums, vec!["Trip".to_owned()], "{tree}: {name}");
    }
    let t1 = items.iter().find(|i| i.path.ends_with("t1.jpg")).unwrap();
    assert!(t1.albums.is_empty(), "{tree}: {:?}", t1.albums);
}

/// Schema-1 records exactly as that version wrote them (JSON with short field names).
fn write_schema_1_index(dir: &Path, lib_rel: &str, hash: &str) {
    let store = SledStore::open(dir).unwrap();
    store.put(Tree::Meta, b"schema", b"1").unwrap();
    store.put(Tree::Meta, b"next_run", b"3").unwrap();
    let item = format!(
        r#"{{"k":"local","p":"{lib_rel}","n":"a.jpg","m":"image/jpeg","t":1584273600000,"s":5,"h":"{hash}","f":true,"cm":"Canon","st":"d","r":2}}"#
    );
    store
        .put(Tree::Items, b"local:a.jpg", item.as_bytes())
        .unwrap();
    store
        .put(Tree::Paths, lib_rel.as_bytes(), b"local:a.jpg")
        .unwrap();
    store
        .put(
            Tree::Albums,
            b"local:Trip",
            br#"{"k":"local","t":"Trip","c":1,"r":2}"#,
        )
        .unwrap();
    store
        .put(
            Tree::Pending,
            b"local:b.jpg",
            br#"{"a":2,"n":0,"e":"timed out"}"#,
        )
        .unwrap();
    store.flush().unwrap();
}

#[test]
fn a_schema_1_index_is_upgraded_in_place_without_losing_anything() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let lib = tmp.path().join("lib");
    std::fs::create_dir_all(lib.join("photos/2020/03")).unwrap();
    std::fs::write(lib.join("photos/2020/03/a.jpg"), b"alpha").unwrap();
    let hash = blake3::hash(b"alpha").to_hex().to_string();
    write_schema_1_index(&state.join("index"), "photos/2020/03/a.jpg", &hash);
    let json_bytes = SledStore::open(&state.join("index"))
        .unwrap()
        .get(Tree::Items, b"local:a.jpg")
        .unwrap()
        .unwrap()
        .len();

    let engine = Engine::open(EngineConfig::new(&lib, &state)).unwrap();
    let items: Vec<_> = engine.items().collect::<Result<_, _>>().unwrap();
    assert_eq!(items.len(), 1);
    let a = &items[0];
    assert_eq!(a.path, "photos/2020/03/a.jpg");
    assert_eq!(a.blake3.map(|h| h.to_hex()), Some(hash));
    assert_eq!(a.camera_make.as_deref(), Some("Canon"));
    assert!(a.favorite);
    let verify = engine.verify(true).unwrap();
    assert!(verify.is_clean(), "{verify:?}");
    let status = engine.status().unwrap();
    assert_eq!(status.failed, 1, "{status:?}");
    drop(engine);

    // Stored as schema 2 now, and smaller.
    let store = SledStore::open(&state.join("index")).unwrap();
    assert_eq!(store.get(Tree::Meta, b"schema").unwrap().unwrap(), b"2");
    let v2 = store.get(Tree::Items, b"local:a.jpg").unwrap().unwrap();
    assert_ne!(v2.first(), Some(&b'{'));
    assert!(v2.len() * 2 < json_bytes, "{} vs {json_bytes}", v2.len());
    assert_eq!(store.len(Tree::Paths), 0);
    assert_eq!(store.len(Tree::Claims), 1);
    for tree in [Tree::Albums, Tree::Pending] {
        for entry in store.scan(tree, b"") {
            assert_ne!(entry.unwrap().1.first(), Some(&b'{'), "{tree:?}");
        }
    }
}
