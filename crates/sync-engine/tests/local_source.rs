//! End-to-end runs of the engine against a real directory source ([`LocalDirSource`]).
#![allow(clippy::unwrap_used)] // test helpers: a failed setup step should abort the test

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sync_engine::{
    AlbumLinks, Durability, Engine, EngineConfig, Error, LocalDirSource, NoProgress, RunOutcome,
    Source, SyncOptions,
};
use tokio_util::sync::CancellationToken;

mod common;
use common::{put, sync};

struct Fixture {
    _tmp: tempfile::TempDir,
    src: PathBuf,
    lib: PathBuf,
    state: PathBuf,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let lib = tmp.path().join("lib");
    let state = tmp.path().join("state");
    std::fs::create_dir_all(&src).unwrap();
    Fixture {
        src,
        lib,
        state,
        _tmp: tmp,
    }
}

// 2020-03-15T12:00:00Z and 2021-07-01T00:30:00Z
const MAR_2020: u64 = 1_584_273_600;
const JUL_2021: u64 = 1_625_099_400;

fn config(f: &Fixture) -> EngineConfig {
    let mut c = EngineConfig::new(&f.lib, &f.state);
    c.max_concurrent_downloads = 3;
    c.retry_backoff = Duration::ZERO;
    c
}

fn mtime_secs(p: &Path) -> u64 {
    std::fs::metadata(p)
        .unwrap()
        .modified()
        .unwrap()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn library_files(lib: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let t = e.file_type().unwrap();
            if t.is_dir() {
                walk(root, &e.path(), out);
            } else {
                out.push(
                    e.path()
                        .strip_prefix(root)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    let mut v = Vec::new();
    if lib.join("photos").exists() {
        walk(lib, &lib.join("photos"), &mut v);
    }
    v.sort();
    v
}

#[tokio::test]
async fn full_sync_is_byte_identical_with_capture_mtimes_and_second_run_is_a_no_op() {
    let f = fixture();
    put(&f.src, "a.jpg", b"alpha", MAR_2020);
    put(&f.src, "b.mp4", b"video bytes", JUL_2021);
    put(&f.src, "sub/c.png", b"gamma", MAR_2020);
    let engine = Engine::open(config(&f)).unwrap();

    let r1 = sync(&engine, &f.src, false).await;
    assert_eq!(r1.outcome, RunOutcome::Completed);
    assert_eq!((r1.new_items, r1.downloaded, r1.failed), (3, 3, 0));
    assert!(r1.full_scan, "the first run is always a full listing");
    assert_eq!(
        library_files(&f.lib),
        vec![
            "photos/2020/03/a.jpg",
            "photos/2020/03/c.png",
            "photos/2021/07/b.mp4"
        ]
    );
    assert_eq!(
        std::fs::read(f.lib.join("photos/2020/03/a.jpg")).unwrap(),
        b"alpha"
    );
    assert_eq!(
        std::fs::read(f.lib.join("photos/2021/07/b.mp4")).unwrap(),
        b"video bytes"
    );
    assert_eq!(mtime_secs(&f.lib.join("photos/2020/03/a.jpg")), MAR_2020);
    assert_eq!(mtime_secs(&f.lib.join("photos/2021/07/b.mp4")), JUL_2021);

    let r2 = sync(&engine, &f.src, false).await;
    assert_eq!(
        (r2.new_items, r2.downloaded, r2.bytes_downloaded),
        (0, 0, 0)
    );
    assert!(
        !r2.full_scan,
        "second run within the rescan interval is incremental"
    );

    let v = engine.verify(true).unwrap();
    assert!(v.is_clean(), "{v:?}");
    assert_eq!(v.ok, 3);

    let items: Vec<_> = engine.items().collect::<Result<_, _>>().unwrap();
    assert_eq!(items.len(), 3);
    let a = items.iter().find(|i| i.filename == "a.jpg").unwrap();
    assert_eq!(a.path, "photos/2020/03/a.jpg");
    assert_eq!(a.taken_at.as_deref(), Some("2020-03-15T12:00:00Z"));
    assert_eq!(a.size, Some(5));
    assert_eq!(a.blake3, Some(sync_engine::ContentHash::of(b"alpha")));
    let json = serde_json::to_value(a).unwrap();
    assert_eq!(json["source"], "local");
    assert_eq!(json["state"], "done");
    // `list --json` shows the hash as hex.
    assert_eq!(json["blake3"], blake3::hash(b"alpha").to_hex().as_str());

    let s = engine.status().unwrap();
    assert_eq!((s.items, s.done, s.pending, s.failed), (3, 3, 0, 0));
    assert_eq!(s.last_runs.len(), 2);
}

#[tokio::test]
async fn colliding_names_get_id_hash_suffixes_and_a_fresh_resync_gives_the_same_names() {
    let f = fixture();
    put(&f.src, "x/IMG_0001.JPG", b"one", MAR_2020);
    put(&f.src, "y/IMG_0001.JPG", b"two", MAR_2020);
    put(&f.src, "z/IMG_0001.JPG", b"three", MAR_2020);
    let engine = Engine::open(config(&f)).unwrap();
    sync(&engine, &f.src, false).await;
    let names = library_files(&f.lib);
    assert_eq!(names.len(), 3, "{names:?}");
    // The smallest id ("local:x/...") keeps the plain name; the others are suffixed.
    assert!(names.contains(&"photos/2020/03/IMG_0001.JPG".to_owned()));
    assert_eq!(
        std::fs::read(f.lib.join("photos/2020/03/IMG_0001.JPG")).unwrap(),
        b"one"
    );
    assert_eq!(names.iter().filter(|n| n.contains("IMG_0001_")).count(), 2);
    let mut paths: Vec<(String, String)> = engine
        .items()
        .map(|i| i.map(|i| (i.id.to_string(), i.path)))
        .collect::<Result<_, _>>()
        .unwrap();
    paths.sort();
    drop(engine);

    // A fresh machine: new library, new index, same source.
    let g = fixture();
    for (rel, bytes) in [("z", &b"three"[..]), ("y", b"two"), ("x", b"one")] {
        put(&g.src, &format!("{rel}/IMG_0001.JPG"), bytes, MAR_2020);
    }
    let mut cfg = config(&g);
    cfg.max_concurrent_downloads = 1;
    let engine2 = Engine::open(cfg).unwrap();
    sync(&engine2, &g.src, false).await;
    let mut paths2: Vec<(String, String)> = engine2
        .items()
        .map(|i| i.map(|i| (i.id.to_string(), i.path)))
        .collect::<Result<_, _>>()
        .unwrap();
    paths2.sort();
    assert_eq!(paths, paths2);
}

#[tokio::test]
async fn a_newcomer_never_takes_an_existing_items_name() {
    let f = fixture();
    put(&f.src, "y/IMG.JPG", b"old", MAR_2020);
    let engine = Engine::open(config(&f)).unwrap();
    sync(&engine, &f.src, false).await;
    assert_eq!(
        std::fs::read(f.lib.join("photos/2020/03/IMG.JPG")).unwrap(),
        b"old"
    );
    // "x" sorts before "y" but arrives later: the existing file keeps its name.
    put(&f.src, "x/IMG.JPG", b"new", MAR_2020);
    let r = sync(&engine, &f.src, true).await;
    assert_eq!(r.downloaded, 1);
    assert_eq!(
        std::fs::read(f.lib.join("photos/2020/03/IMG.JPG")).unwrap(),
        b"old"
    );
    assert_eq!(library_files(&f.lib).len(), 2);
}

#[tokio::test]
async fn albums_become_relative_symlink_folders_dated_by_newest_item() {
    let f = fixture();
    put(&f.src, "albums/Trip/p1.jpg", b"p1", MAR_2020);
    put(&f.src, "albums/Trip/p2.jpg", b"p2", JUL_2021);
    let engine = Engine::open(config(&f)).unwrap();
    let r = sync(&engine, &f.src, false).await;
    assert_eq!(r.albums_updated, 1);
    let dir = f.lib.join("albums/2021/07 Trip");
    let link = dir.join("0000_p1.jpg");
    let target = std::fs::read_link(&link).unwrap();
    assert_eq!(target, Path::new("../../../photos/2020/03/p1.jpg"));
    assert_eq!(std::fs::read(&link).unwrap(), b"p1");
    assert_eq!(std::fs::read(dir.join("0001_p2.jpg")).unwrap(), b"p2");
    let items: Vec<_> = engine.items().collect::<Result<_, _>>().unwrap();
    assert!(items.iter().all(|i| i.albums == vec!["Trip".to_owned()]));

    // Unchanged album: nothing rewritten.
    let r2 = sync(&engine, &f.src, true).await;
    assert_eq!(r2.albums_updated, 0);

    // The newest item leaves the album: the folder is re-dated by renaming, not rebuilt.
    std::fs::remove_file(f.src.join("albums/Trip/p2.jpg")).unwrap();
    put(&f.src, "p2.jpg", b"p2", JUL_2021);
    let mut cfg = config(&f);
    cfg.max_removal_fraction = 1.0;
    drop(engine);
    let engine = Engine::open(cfg).unwrap();
    let r3 = sync(&engine, &f.src, true).await;
    assert_eq!(r3.albums_updated, 1);
    assert!(!f.lib.join("albums/2021").exists());
    let dir = f.lib.join("albums/2020/03 Trip");
    assert!(dir.join("0000_p1.jpg").exists());
    assert!(!dir.join("0001_p2.jpg").exists());
}

#[tokio::test]
async fn hardlink_and_copy_album_modes() {
    for mode in [AlbumLinks::Hardlink, AlbumLinks::Copy] {
        let f = fixture();
        put(&f.src, "albums/A/p.jpg", b"pp", MAR_2020);
        let mut cfg = config(&f);
        cfg.album_links = mode;
        let engine = Engine::open(cfg).unwrap();
        sync(&engine, &f.src, false).await;
        let entry = f.lib.join("albums/2020/03 A/0000_p.jpg");
        let m = std::fs::symlink_metadata(&entry).unwrap();
        assert!(m.is_file(), "{mode:?}");
        assert_eq!(std::fs::read(&entry).unwrap(), b"pp");
        let r = sync(&engine, &f.src, true).await;
        assert_eq!(r.albums_updated, 0, "{mode:?}");
    }
}

#[tokio::test]
async fn removals_need_a_full_listing_respect_the_safety_fraction_and_trash_only_on_request() {
    let f = fixture();
    for i in 0..20 {
        put(
            &f.src,
            &format!("f{i:02}.jpg"),
            format!("bytes {i}").as_bytes(),
            MAR_2020,
        );
    }
    let mut cfg = config(&f);
    cfg.delete_removed = true;
    let engine = Engine::open(cfg).unwrap();
    sync(&engine, &f.src, false).await;

    // One of 20 (5% < 10%) removed at the source.
    std::fs::remove_file(f.src.join("f00.jpg")).unwrap();
    let inc = sync(&engine, &f.src, false).await;
    assert_eq!(inc.removed, 0, "an incremental listing never removes");
    let full = sync(&engine, &f.src, true).await;
    assert_eq!(full.removed, 1);
    assert!(!f.lib.join("photos/2020/03/f00.jpg").exists());
    assert_eq!(
        std::fs::read(f.lib.join(".trash/photos/2020/03/f00.jpg")).unwrap(),
        b"bytes 0"
    );

    // Half of the listing vanishes: suspicious, nothing removed.
    for i in 1..11 {
        std::fs::remove_file(f.src.join(format!("f{i:02}.jpg"))).unwrap();
    }
    let r = sync(&engine, &f.src, true).await;
    assert_eq!(r.removed, 0);
    assert_eq!(r.removal_suppressed, Some(10));
    assert!(f.lib.join("photos/2020/03/f01.jpg").exists());
}

#[tokio::test]
async fn existing_tree_is_adopted_and_leftover_temp_files_are_cleaned() {
    let f = fixture();
    put(&f.src, "a.jpg", b"alpha", MAR_2020);
    put(&f.src, "b.jpg", b"beta", MAR_2020);
    // A previous tool already downloaded a.jpg; a crash left a temp file.
    std::fs::create_dir_all(f.lib.join("photos/2020/03")).unwrap();
    std::fs::write(f.lib.join("photos/2020/03/a.jpg"), b"alpha").unwrap();
    let leftover = f.lib.join("photos/2020/03/.b.jpg.part-0123456789abcdef");
    std::fs::write(&leftover, b"be").unwrap();
    // A foreign file with the right name but the wrong size is never overwritten.
    std::fs::write(f.lib.join("photos/2020/03/b.jpg"), b"not beta").unwrap();

    let engine = Engine::open(config(&f)).unwrap();
    let r = sync(&engine, &f.src, false).await;
    assert_eq!(r.temp_files_removed, 1);
    assert!(!leftover.exists());
    assert_eq!((r.adopted, r.downloaded), (1, 1));
    assert_eq!(
        std::fs::read(f.lib.join("photos/2020/03/b.jpg")).unwrap(),
        b"not beta"
    );
    let b = engine
        .items()
        .map(Result::unwrap)
        .find(|i| i.filename == "b.jpg")
        .unwrap();
    assert!(b.path.starts_with("photos/2020/03/b_"), "{}", b.path);
    assert_eq!(std::fs::read(f.lib.join(&b.path)).unwrap(), b"beta");
}

#[tokio::test]
async fn lost_index_is_rebuilt_from_the_tree_without_downloads() {
    let f = fixture();
    put(&f.src, "a.jpg", b"alpha", MAR_2020);
    put(&f.src, "b.jpg", b"beta", JUL_2021);
    {
        let engine = Engine::open(config(&f)).unwrap();
        sync(&engine, &f.src, false).await;
    }
    std::fs::remove_dir_all(&f.state).unwrap();
    let rep = Engine::reindex(config(&f)).unwrap();
    assert_eq!((rep.files, rep.orphans), (2, 2));
    let engine = Engine::open(config(&f)).unwrap();
    assert_eq!(engine.status().unwrap().orphans, 2);
    let r = sync(&engine, &f.src, false).await;
    assert_eq!((r.downloaded, r.adopted), (0, 2));
    assert!(engine.verify(true).unwrap().is_clean());
}

#[tokio::test]
async fn verify_finds_missing_changed_and_extra_files() {
    let f = fixture();
    put(&f.src, "a.jpg", b"alpha", MAR_2020);
    put(&f.src, "b.jpg", b"beta", MAR_2020);
    put(&f.src, "c.jpg", b"gamma", MAR_2020);
    let engine = Engine::open(config(&f)).unwrap();
    sync(&engine, &f.src, false).await;
    std::fs::remove_file(f.lib.join("photos/2020/03/a.jpg")).unwrap();
    std::fs::write(f.lib.join("photos/2020/03/b.jpg"), b"BETA").unwrap();
    std::fs::write(f.lib.join("photos/2020/03/stray.jpg"), b"?").unwrap();
    let shallow = engine.verify(false).unwrap();
    assert_eq!(shallow.missing, vec!["photos/2020/03/a.jpg"]);
    assert_eq!(shallow.extra, vec!["photos/2020/03/stray.jpg"]);
    assert_eq!(
        shallow.hash_mismatch_count, 0,
        "same size: only deep sees it"
    );
    let deep = engine.verify(true).unwrap();
    assert_eq!(deep.hash_mismatch, vec!["photos/2020/03/b.jpg"]);
    assert_eq!(deep.ok, 1);
}

#[tokio::test]
async fn a_second_opener_gets_index_locked() {
    let f = fixture();
    let _engine = Engine::open(config(&f)).unwrap();
    match Engine::open(config(&f)) {
        Err(e @ Error::IndexLocked { .. }) => {
            assert!(e.to_string().contains("another"), "{e}");
        }
        other => panic!("expected IndexLocked, got {:?}", other.err()),
    }
}

#[tokio::test]
async fn batch_durability_and_timezone_folders() {
    let f = fixture();
    // 2020-01-31T23:30:00Z is already February in Berlin.
    put(&f.src, "late.jpg", b"late", 1_580_513_400);
    let mut cfg = config(&f);
    cfg.durability = Durability::Batch;
    cfg.folder_timezone = sync_engine::Tz::Europe__Berlin;
    let engine = Engine::open(cfg).unwrap();
    let r = sync(&engine, &f.src, false).await;
    assert_eq!(r.downloaded, 1);
    assert_eq!(library_files(&f.lib), vec!["photos/2020/02/late.jpg"]);
    assert_eq!(
        mtime_secs(&f.lib.join("photos/2020/02/late.jpg")),
        1_580_513_400
    );
    assert!(engine.verify(true).unwrap().is_clean());
}

#[tokio::test]
async fn cancelled_before_start_downloads_nothing_and_resumes() {
    let f = fixture();
    put(&f.src, "a.jpg", b"alpha", MAR_2020);
    let engine = Engine::open(config(&f)).unwrap();
    let token = CancellationToken::new();
    token.cancel();
    let sources: Vec<Arc<dyn Source>> = vec![Arc::new(LocalDirSource::new(&f.src))];
    let r = engine
        .sync(
            &sources,
            SyncOptions::default(),
            Arc::new(NoProgress),
            token,
        )
        .await
        .unwrap();
    assert_eq!(r.outcome, RunOutcome::Cancelled);
    assert_eq!(r.downloaded, 0);
    let r = sync(&engine, &f.src, false).await;
    assert_eq!(r.downloaded, 1);
    let _ = SystemTime::now();
}

/// The daemon spawns runs on a multi-threaded runtime and shares the engine.
#[test]
fn engine_and_its_sync_future_are_send_and_sync() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: T) {}
    let f = fixture();
    let engine = Engine::open(config(&f)).unwrap();
    send_sync(&engine);
    let sources: Vec<Arc<dyn Source>> = vec![Arc::new(LocalDirSource::new(&f.src))];
    send(engine.sync(
        &sources,
        SyncOptions::default(),
        Arc::new(NoProgress),
        CancellationToken::new(),
    ));
}

#[tokio::test]
async fn a_renamed_album_is_renamed_on_disk_not_rebuilt() {
    let f = fixture();
    put(&f.src, "p1.jpg", b"p1", MAR_2020);
    std::fs::create_dir_all(f.src.join("albums/Holiday")).unwrap();
    std::os::unix::fs::symlink("../../p1.jpg", f.src.join("albums/Holiday/p1.jpg")).unwrap();
    std::fs::write(f.src.join("albums/Holiday/.id"), "album-1").unwrap();
    let engine = Engine::open(config(&f)).unwrap();
    sync(&engine, &f.src, false).await;
    let old = f.lib.join("albums/2020/03 Holiday");
    let link = old.join("0000_p1.jpg");
    assert!(link.exists());
    // Remember the link's identity: a rename keeps the inode, a rebuild would not.
    use std::os::unix::fs::MetadataExt;
    let ino = std::fs::symlink_metadata(&link).unwrap().ino();

    std::fs::rename(
        f.src.join("albums/Holiday"),
        f.src.join("albums/Summer 2020"),
    )
    .unwrap();
    let r = sync(&engine, &f.src, false).await;
    assert_eq!(r.albums_updated, 1);
    assert!(!old.exists());
    let new_link = f.lib.join("albums/2020/03 Summer 2020/0000_p1.jpg");
    assert_eq!(std::fs::symlink_metadata(&new_link).unwrap().ino(), ino);
    let titles: Vec<_> = engine.items().map(|i| i.unwrap().albums).collect();
    assert!(
        titles.iter().any(|t| t == &vec!["Summer 2020".to_owned()]),
        "{titles:?}"
    );
}

#[tokio::test]
async fn ntfs_rules_escape_reserved_names_and_treat_case_as_one_name() {
    let f = fixture();
    put(&f.src, "a/Photo.JPG", b"upper", MAR_2020);
    put(&f.src, "b/photo.jpg", b"lower", MAR_2020);
    put(&f.src, "c/con.jpg", b"device", MAR_2020);
    put(&f.src, "d/what?.jpg", b"question", MAR_2020);
    let mut cfg = config(&f);
    cfg.filesystem = sync_engine::FilesystemRules::Ntfs;
    let engine = Engine::open(cfg).unwrap();
    sync(&engine, &f.src, false).await;
    let names = library_files(&f.lib);
    assert!(
        names.contains(&"photos/2020/03/Photo.JPG".to_owned()),
        "{names:?}"
    );
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("photos/2020/03/photo_") && n.ends_with(".jpg")),
        "case-insensitive clash resolved by suffix: {names:?}"
    );
    assert!(
        names.contains(&"photos/2020/03/_con.jpg".to_owned()),
        "{names:?}"
    );
    assert!(
        names.contains(&"photos/2020/03/what_.jpg".to_owned()),
        "{names:?}"
    );
}
