#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Export (issue 7) against a real library built by syncing a [`LocalDirSource`].

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sync_engine::{Engine, EngineConfig, Error, ExportMode, ExportTarget, MediaFilter, Template};
use tokio_util::sync::CancellationToken;

mod common;
use common::{put, sync};

// 2020-03-15T12:00:00Z and 2021-07-01T00:30:05Z
const MAR_2020: u64 = 1_584_273_600;
const JUL_2021: u64 = 1_625_099_405;

struct Fixture {
    _tmp: tempfile::TempDir,
    src: PathBuf,
    lib: PathBuf,
    state: PathBuf,
    out: PathBuf,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let out = tmp.path().join("nas");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    Fixture {
        lib: tmp.path().join("lib"),
        state: tmp.path().join("state"),
        src,
        out,
        _tmp: tmp,
    }
}

/// Makes `rel` (a file at the source root) a member of album `title` via a symlink.
fn add_to_album(src: &Path, title: &str, rel: &str) {
    let dir = src.join("albums").join(title);
    std::fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink(format!("../../{rel}"), dir.join(rel)).unwrap();
}

async fn engine_with(f: &Fixture) -> Engine {
    let engine = Engine::open(EngineConfig::new(&f.lib, &f.state)).unwrap();
    let r = sync(&engine, &f.src, false).await;
    assert_eq!(r.failed, 0, "{:?}", r.errors);
    engine
}

/// A standard small library: two photos (one in two albums) and a video.
fn standard(f: &Fixture) {
    put(&f.src, "a.jpg", b"alpha", MAR_2020);
    put(&f.src, "b.mp4", b"video bytes", JUL_2021);
    put(&f.src, "c.png", b"gamma", JUL_2021);
    add_to_album(&f.src, "Rome", "a.jpg");
    add_to_album(&f.src, "Family", "a.jpg");
    add_to_album(&f.src, "Family", "c.png");
}

/// [`standard`], synced.
async fn standard_library() -> (Fixture, Engine) {
    let f = fixture();
    standard(&f);
    let engine = engine_with(&f).await;
    (f, engine)
}

fn target(f: &Fixture, template: &str, mode: ExportMode) -> ExportTarget {
    let mut t = ExportTarget::new("nas", &f.out, Template::parse(template).unwrap());
    t.mode = mode;
    t
}

/// Every non-directory under `root`: relative path → (inode, ctime s, ctime ns).
fn tree(root: &Path) -> BTreeMap<String, (u64, i64, i64)> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, (u64, i64, i64)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let m = std::fs::symlink_metadata(e.path()).unwrap();
            if m.is_dir() {
                walk(root, &e.path(), out);
            } else {
                let rel = e.path().strip_prefix(root).unwrap().display().to_string();
                out.insert(rel, (m.ino(), m.ctime(), m.ctime_nsec()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn names(root: &Path) -> Vec<String> {
    tree(root).into_keys().collect()
}

/// What a user does to put a folder of the target on another disk: moves it away and
/// leaves a symlink in its place. Returns where it went.
fn move_away_and_link(f: &Fixture, folder: &str) -> PathBuf {
    let elsewhere = f.out.parent().unwrap().join("elsewhere");
    std::fs::rename(f.out.join(folder), &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, f.out.join(folder)).unwrap();
    elsewhere
}

#[tokio::test]
async fn every_token_renders_and_copies_keep_bytes_and_capture_mtime() {
    let (f, engine) = standard_library().await;
    let t = target(
        &f,
        "{source}/{year}-{month}-{day}/{hour}{minute}{second} {album|Unsorted}/\
         {camera_make|NoMake}-{camera_model|NoModel}/{stem}.{ext}|{filename}|{id}",
        ExportMode::Copy,
    );
    let r = engine.export(&t, &CancellationToken::new()).unwrap();
    assert_eq!((r.placed, r.failed, r.wanted), (4, 0, 4), "{r:?}");
    // a.jpg is in Family and Rome: once per album.
    assert_eq!(
        names(&f.out),
        [
            "local/2020-03-15/120000 Family/NoMake-NoModel/a.jpg|a.jpg|local:a.jpg",
            "local/2020-03-15/120000 Rome/NoMake-NoModel/a.jpg|a.jpg|local:a.jpg",
            "local/2021-07-01/003005 Family/NoMake-NoModel/c.png|c.png|local:c.png",
            "local/2021-07-01/003005 Unsorted/NoMake-NoModel/b.mp4|b.mp4|local:b.mp4",
        ]
    );
    let copy = f
        .out
        .join("local/2020-03-15/120000 Rome/NoMake-NoModel/a.jpg|a.jpg|local:a.jpg");
    assert_eq!(std::fs::read(&copy).unwrap(), b"alpha");
    let m = std::fs::metadata(&copy).unwrap();
    assert_eq!(m.mtime(), MAR_2020 as i64);
    assert_eq!(m.nlink(), 1, "a copy, not a link");
    // The manifest records both placements of a.jpg.
    let manifest = engine.export_manifest("nas").unwrap();
    assert_eq!(manifest.len(), 4);
    assert_eq!(
        manifest
            .iter()
            .filter(|(id, _)| id.as_str() == "local:a.jpg")
            .count(),
        2
    );
}

#[tokio::test]
async fn filters_select_media_albums_and_dates() {
    let (f, engine) = standard_library().await;
    let mut t = target(&f, "{filename}", ExportMode::Hardlink);
    t.filter.media = MediaFilter::Video;
    engine.export(&t, &CancellationToken::new()).unwrap();
    assert_eq!(names(&f.out), ["b.mp4"]);

    let mut t = target(&f, "{album}/{filename}", ExportMode::Symlink);
    t.name = "family".into();
    t.filter.albums = vec!["Family".into()];
    t.filter.since = chrono::NaiveDate::from_ymd_opt(2021, 1, 1);
    let out2 = f.out.join("family");
    std::fs::create_dir(&out2).unwrap();
    t.path = out2.clone();
    engine.export(&t, &CancellationToken::new()).unwrap();
    assert_eq!(names(&out2), ["Family/c.png"]);
    let link = std::fs::read_link(out2.join("Family/c.png")).unwrap();
    assert_eq!(std::fs::read(&link).unwrap(), b"gamma");
    assert!(link.is_absolute());
}

#[tokio::test]
async fn second_export_changes_nothing_same_inodes_and_ctimes() {
    for mode in [
        ExportMode::Copy,
        ExportMode::Hardlink,
        ExportMode::Symlink,
        ExportMode::Reflink,
    ] {
        let f = fixture();
        standard(&f);
        let engine = engine_with(&f).await;
        let t = target(&f, "{year}/{month}/{album|Unsorted}/{filename}", mode);
        let r1 = engine.export(&t, &CancellationToken::new()).unwrap();
        assert_eq!(r1.placed, 4, "{mode:?} {r1:?}");
        let before = tree(&f.out);
        let r2 = engine.export(&t, &CancellationToken::new()).unwrap();
        assert_eq!((r2.placed, r2.renamed, r2.unchanged), (0, 0, 4), "{mode:?}");
        assert_eq!(tree(&f.out), before, "{mode:?}: inodes or ctimes changed");
        if mode == ExportMode::Hardlink {
            let lib = std::fs::metadata(f.lib.join("photos/2020/03/a.jpg")).unwrap();
            let out = std::fs::metadata(f.out.join("2020/03/Rome/a.jpg")).unwrap();
            assert_eq!(lib.ino(), out.ino());
        }
    }
}

#[tokio::test]
async fn template_change_renames_only() {
    let (f, engine) = standard_library().await;
    engine
        .export(
            &target(&f, "{year}/{filename}", ExportMode::Copy),
            &CancellationToken::new(),
        )
        .unwrap();
    let before: BTreeMap<u64, String> = tree(&f.out)
        .into_iter()
        .map(|(p, (ino, ..))| (ino, p))
        .collect();
    assert_eq!(before.len(), 3);

    let r = engine
        .export(
            &target(&f, "by-month/{year}-{month}/{filename}", ExportMode::Copy),
            &CancellationToken::new(),
        )
        .unwrap();
    assert_eq!((r.renamed, r.placed, r.bytes_copied), (3, 0, 0), "{r:?}");
    let after: BTreeMap<u64, String> = tree(&f.out)
        .into_iter()
        .map(|(p, (ino, ..))| (ino, p))
        .collect();
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>(),
        "the same files (inodes), moved"
    );
    assert_eq!(
        names(&f.out),
        [
            "by-month/2020-03/a.jpg",
            "by-month/2021-07/b.mp4",
            "by-month/2021-07/c.png"
        ]
    );
    // The old folders were emptied and removed; the root stays.
    assert!(!f.out.join("2020").exists());
    assert!(f.out.is_dir());
}

#[tokio::test]
async fn a_template_that_adds_or_drops_album_moves_files_instead_of_copying_them() {
    let (f, engine) = standard_library().await;
    let by_year = |prune| {
        let mut t = target(&f, "{year}/{filename}", ExportMode::Copy);
        t.prune = prune;
        t
    };
    let by_album = {
        let mut t = target(&f, "{album|Unsorted}/{filename}", ExportMode::Copy);
        t.prune = true;
        t
    };
    let inode = |rel: &str| tree(&f.out)[rel].0;
    engine
        .export(&by_year(true), &CancellationToken::new())
        .unwrap();
    let (a, b, c) = (
        inode("2020/a.jpg"),
        inode("2021/b.mp4"),
        inode("2021/c.png"),
    );

    // a.jpg is in two albums: one of them gets the file it had, the other a new copy.
    let r = engine.export(&by_album, &CancellationToken::new()).unwrap();
    assert_eq!((r.renamed, r.placed, r.pruned), (3, 1, 0), "{r:?}");
    assert_eq!(
        names(&f.out),
        [
            "Family/a.jpg",
            "Family/c.png",
            "Rome/a.jpg",
            "Unsorted/b.mp4"
        ]
    );
    assert_eq!((inode("Unsorted/b.mp4"), inode("Family/c.png")), (b, c));
    assert!(
        [inode("Family/a.jpg"), inode("Rome/a.jpg")].contains(&a),
        "a.jpg was moved, not copied twice"
    );

    // Back: each item keeps one of its files, and the second copy of a.jpg is pruned.
    let r = engine
        .export(&by_year(true), &CancellationToken::new())
        .unwrap();
    assert_eq!((r.renamed, r.placed, r.pruned), (3, 0, 1), "{r:?}");
    assert_eq!(names(&f.out), ["2020/a.jpg", "2021/b.mp4", "2021/c.png"]);
    assert_eq!((inode("2021/b.mp4"), inode("2021/c.png")), (b, c));

    // Without prune, the switch there and back copies only a.jpg's second album file, and
    // that one copy is all it leaves behind.
    let mut by_album_kept = by_album.clone();
    by_album_kept.prune = false;
    let r = engine
        .export(&by_album_kept, &CancellationToken::new())
        .unwrap();
    assert_eq!((r.renamed, r.placed), (3, 1), "{r:?}");
    let r = engine
        .export(&by_year(false), &CancellationToken::new())
        .unwrap();
    assert_eq!((r.renamed, r.placed, r.pruned), (3, 0, 0), "{r:?}");
    let left: Vec<String> = names(&f.out)
        .into_iter()
        .filter(|n| !["2020/a.jpg", "2021/b.mp4", "2021/c.png"].contains(&n.as_str()))
        .collect();
    assert!(
        left == ["Family/a.jpg"] || left == ["Rome/a.jpg"],
        "{left:?}"
    );
}

#[tokio::test]
async fn a_symlinked_folder_in_the_target_is_not_followed() {
    let (f, engine) = standard_library().await;
    // Someone made 2020 a link to a folder outside the target.
    let outside = f.out.parent().unwrap().join("elsewhere");
    std::fs::create_dir(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, f.out.join("2020")).unwrap();

    // Two folder levels: not even the month folder may be created through the link.
    let t = target(&f, "{year}/{month}/{filename}", ExportMode::Copy);
    let r = engine.export(&t, &CancellationToken::new()).unwrap();
    assert_eq!((r.placed, r.failed), (2, 1), "{r:?}");
    assert!(r.errors[0].contains("symbolic link to"), "{:?}", r.errors);
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    assert!(f.out.join("2021/07/b.mp4").is_file());

    // Once it is a real folder, the next run places the file.
    std::fs::remove_file(f.out.join("2020")).unwrap();
    let r = engine.export(&t, &CancellationToken::new()).unwrap();
    assert_eq!((r.placed, r.failed, r.unchanged), (1, 0, 2), "{r:?}");
    assert!(f.out.join("2020/03/a.jpg").is_file());
}

#[tokio::test]
async fn prune_never_removes_through_a_symlinked_folder() {
    let (f, engine) = standard_library().await;
    let mut t = target(&f, "{year}/{filename}", ExportMode::Copy);
    engine.export(&t, &CancellationToken::new()).unwrap();
    let elsewhere = move_away_and_link(&f, "2021");

    // b.mp4 is no longer wanted, but what the link leads to is not the export's to delete.
    t.filter.media = MediaFilter::Photo;
    t.prune = true;
    let r = engine.export(&t, &CancellationToken::new()).unwrap();
    assert_eq!(r.pruned, 0, "{r:?}");
    assert!(elsewhere.join("b.mp4").is_file());
    assert!(elsewhere.join("c.png").is_file());
    assert!(f.out.join("2020/a.jpg").is_file());
}

#[tokio::test]
async fn a_template_change_never_moves_files_out_of_a_symlinked_folder() {
    let (f, engine) = standard_library().await;
    let by_year = target(&f, "{year}/{filename}", ExportMode::Copy);
    engine.export(&by_year, &CancellationToken::new()).unwrap();
    let elsewhere = move_away_and_link(&f, "2021");

    // What the link leads to stays there; those items are placed anew.
    let r = engine
        .export(
            &target(&f, "{filename}", ExportMode::Copy),
            &CancellationToken::new(),
        )
        .unwrap();
    assert_eq!((r.renamed, r.placed, r.failed), (1, 2, 0), "{r:?}");
    assert!(elsewhere.join("b.mp4").is_file() && elsewhere.join("c.png").is_file());
    for name in ["a.jpg", "b.mp4", "c.png"] {
        assert!(f.out.join(name).is_file(), "{name}");
    }
}

#[tokio::test]
async fn an_album_filter_change_leaves_the_old_albums_files_where_they_are() {
    let (f, engine) = standard_library().await;
    let mut t = target(&f, "{album}/{filename}", ExportMode::Copy);
    t.filter.albums = vec!["Rome".into()];
    engine.export(&t, &CancellationToken::new()).unwrap();
    assert_eq!(names(&f.out), ["Rome/a.jpg"]);
    let rome = tree(&f.out)["Rome/a.jpg"].0;

    // Without prune, what the user saw in Rome/ stays there; Family/ is filled anew.
    t.filter.albums = vec!["Family".into()];
    let r = engine.export(&t, &CancellationToken::new()).unwrap();
    assert_eq!((r.renamed, r.placed, r.pruned), (0, 2, 0), "{r:?}");
    assert_eq!(
        names(&f.out),
        ["Family/a.jpg", "Family/c.png", "Rome/a.jpg"]
    );
    assert_eq!(tree(&f.out)["Rome/a.jpg"].0, rome);
}

#[tokio::test]
async fn prune_touches_only_own_files() {
    let (f, engine) = standard_library().await;
    let mut t = target(&f, "{year}/{filename}", ExportMode::Hardlink);
    engine.export(&t, &CancellationToken::new()).unwrap();
    // The user's own file, next to ours.
    std::fs::write(f.out.join("2021/notes.txt"), b"mine").unwrap();

    // Narrow the export to photos: b.mp4 is no longer wanted.
    t.filter.media = MediaFilter::Photo;
    let r = engine.export(&t, &CancellationToken::new()).unwrap();
    assert_eq!(r.pruned, 0, "prune is off by default");
    assert!(f.out.join("2021/b.mp4").exists());

    t.prune = true;
    let r = engine.export(&t, &CancellationToken::new()).unwrap();
    assert_eq!(r.pruned, 1);
    assert_eq!(
        names(&f.out),
        ["2020/a.jpg", "2021/c.png", "2021/notes.txt"]
    );
    // The library itself is untouched.
    assert!(f.lib.join("photos/2021/07/b.mp4").exists());

    // A placed file the user replaced is not ours any more: prune forgets it, keeps it.
    std::fs::remove_file(f.out.join("2021/c.png")).unwrap();
    std::fs::write(f.out.join("2021/c.png"), b"edited by hand").unwrap();
    t.filter.media = MediaFilter::Video;
    let r = engine.export(&t, &CancellationToken::new()).unwrap();
    assert_eq!(r.pruned, 1, "only a.jpg: {r:?}");
    assert_eq!(
        std::fs::read(f.out.join("2021/c.png")).unwrap(),
        b"edited by hand"
    );
    assert!(f.out.join("2021/notes.txt").exists());
    assert!(f.out.join("2021/b.mp4").exists());
    assert!(!f.out.join("2020").exists());
}

#[tokio::test]
async fn a_name_freed_by_prune_goes_to_the_newcomer_that_wants_it_in_the_same_run() {
    let f = fixture();
    put(&f.src, "a.jpg", b"alpha", MAR_2020);
    put(&f.src, "d.jpg", b"delta", JUL_2021);
    let engine = engine_with(&f).await;
    let mut t = target(&f, "latest.{ext}", ExportMode::Copy);
    t.prune = true;
    t.filter.until = chrono::NaiveDate::from_ymd_opt(2020, 12, 31);
    engine.export(&t, &CancellationToken::new()).unwrap();
    assert_eq!(names(&f.out), ["latest.jpg"]);

    // a.jpg leaves the selection and d.jpg joins it: d.jpg takes the name a.jpg had.
    t.filter.until = None;
    t.filter.since = chrono::NaiveDate::from_ymd_opt(2021, 1, 1);
    let r = engine.export(&t, &CancellationToken::new()).unwrap();
    assert_eq!((r.pruned, r.placed, r.foreign_kept), (1, 1, 0), "{r:?}");
    assert_eq!(names(&f.out), ["latest.jpg"]);
    assert_eq!(std::fs::read(f.out.join("latest.jpg")).unwrap(), b"delta");
}

#[tokio::test]
async fn a_foreign_file_is_kept_and_the_item_gets_a_suffixed_name() {
    let (f, engine) = standard_library().await;
    std::fs::create_dir_all(f.out.join("2020")).unwrap();
    std::fs::write(f.out.join("2020/a.jpg"), b"someone else's").unwrap();
    let t = target(&f, "{year}/{filename}", ExportMode::Copy);
    let r = engine.export(&t, &CancellationToken::new()).unwrap();
    assert_eq!((r.foreign_kept, r.placed), (1, 3), "{r:?}");
    assert_eq!(
        std::fs::read(f.out.join("2020/a.jpg")).unwrap(),
        b"someone else's"
    );
    let placed: Vec<String> = names(&f.out)
        .into_iter()
        .filter(|n| n.starts_with("2020/a_"))
        .collect();
    assert_eq!(placed.len(), 1, "{:?}", names(&f.out));
    // Deterministic: the suffix is 8 hex digits of blake3(media id).
    let hash = blake3::hash(b"local:a.jpg").to_hex();
    assert_eq!(placed[0], format!("2020/a_{}.jpg", &hash[..8]));
    assert_eq!(std::fs::read(f.out.join(&placed[0])).unwrap(), b"alpha");
    // Stable on the next run too.
    let r = engine.export(&t, &CancellationToken::new()).unwrap();
    assert_eq!((r.placed, r.unchanged), (0, 3));
}

#[tokio::test]
async fn colliding_items_get_deterministic_suffixes() {
    let f = fixture();
    put(&f.src, "x/IMG.jpg", b"one", MAR_2020);
    put(&f.src, "y/IMG.jpg", b"two", MAR_2020);
    let engine = engine_with(&f).await;
    let r = engine
        .export(
            &target(&f, "{filename}", ExportMode::Copy),
            &CancellationToken::new(),
        )
        .unwrap();
    assert_eq!(r.placed, 2);
    let h = blake3::hash(b"local:y/IMG.jpg").to_hex();
    assert_eq!(
        names(&f.out),
        ["IMG.jpg".to_string(), format!("IMG_{}.jpg", &h[..8])]
    );
    assert_eq!(std::fs::read(f.out.join("IMG.jpg")).unwrap(), b"one");
}

#[tokio::test]
async fn an_unmounted_share_whose_mount_point_remains_is_skipped_not_refilled() {
    let (f, engine) = standard_library().await;
    let t = target(&f, "{year}/{filename}", ExportMode::Copy);
    let r = engine.export(&t, &CancellationToken::new()).unwrap();
    assert_eq!(r.placed, 3, "{r:?}");
    let before = names(&f.out);

    // Unmounted: the share's files are elsewhere, its empty mount point is left.
    let share = f.out.with_extension("share");
    std::fs::rename(&f.out, &share).unwrap();
    std::fs::create_dir(&f.out).unwrap();
    let r = engine.export(&t, &CancellationToken::new()).unwrap();
    let why = r.skipped.expect("skipped");
    assert!(
        why.contains("3 of the 3") && why.contains("mounted"),
        "{why}"
    );
    assert_eq!(r.placed, 0);
    assert!(
        names(&f.out).is_empty(),
        "nothing copied onto the root disk"
    );
    assert_eq!(engine.export_manifest("nas").unwrap().len(), 3);

    // Mounted again: nothing to do, no suffixed duplicates.
    std::fs::remove_dir(&f.out).unwrap();
    std::fs::rename(&share, &f.out).unwrap();
    let r = engine.export(&t, &CancellationToken::new()).unwrap();
    assert_eq!((r.placed, r.unchanged, r.foreign_kept), (0, 3, 0), "{r:?}");
    assert_eq!(names(&f.out), before);
}

#[tokio::test]
async fn a_placed_folder_replaced_by_a_file_counts_as_gone_not_as_an_unreadable_share() {
    let (f, engine) = standard_library().await;
    let t = target(&f, "{year}/{filename}", ExportMode::Copy);
    let r = engine.export(&t, &CancellationToken::new()).unwrap();
    assert_eq!(r.placed, 3, "{r:?}");
    // The user turned the 2020 folder into a file: stat of 2020/a.jpg fails with ENOTDIR.
    std::fs::remove_dir_all(f.out.join("2020")).unwrap();
    std::fs::write(f.out.join("2020"), b"not a folder").unwrap();
    let r = engine.export(&t, &CancellationToken::new()).unwrap();
    assert!(r.skipped.is_none(), "{r:?}");
    assert_eq!(r.unchanged, 2, "{r:?}");
    assert_eq!(std::fs::read(f.out.join("2020")).unwrap(), b"not a folder");
}

#[tokio::test]
async fn a_missing_target_root_is_skipped_with_a_warning_and_nothing_is_created() {
    let (f, engine) = standard_library().await;
    let mut t = target(&f, "{year}/{filename}", ExportMode::Copy);
    t.path = f.out.join("unmounted-share");
    let r = engine.export(&t, &CancellationToken::new()).unwrap();
    let why = r.skipped.expect("skipped");
    assert!(
        why.contains("unmounted-share") && why.contains("mounted"),
        "{why}"
    );
    assert_eq!(r.placed, 0);
    assert!(!t.path.exists());
    assert!(names(&f.out).is_empty());
    assert!(engine.export_manifest("nas").unwrap().is_empty());
}

#[tokio::test]
async fn hardlink_mode_across_filesystems_is_a_clear_error() {
    let (f, engine) = standard_library().await;
    // /dev/shm is a tmpfs, the test's temp dir usually is not; skip the check where they match.
    let other = Path::new("/dev/shm");
    let same_fs = std::fs::metadata(other).map(|m| m.dev()).ok()
        == std::fs::metadata(&f.lib).map(|m| m.dev()).ok();
    if !other.is_dir() || same_fs {
        return;
    }
    let dir = tempfile::tempdir_in(other).unwrap();
    let mut t = target(&f, "{filename}", ExportMode::Hardlink);
    t.path = dir.path().to_path_buf();
    match engine.export(&t, &CancellationToken::new()) {
        Err(Error::Config(msg)) => assert!(msg.contains("same filesystem"), "{msg}"),
        other => panic!("expected a config error, got {other:?}"),
    }
    assert!(names(dir.path()).is_empty());
}

#[tokio::test]
async fn a_cancelled_export_stops_cleanly_and_the_next_one_finishes() {
    let (f, engine) = standard_library().await;
    let t = target(&f, "{year}/{filename}", ExportMode::Copy);
    let cancel = CancellationToken::new();
    cancel.cancel();
    let r = engine.export(&t, &cancel).unwrap();
    assert!(r.cancelled);
    assert_eq!(r.placed, 0);
    // Intents recorded before the stop are settled by the next run.
    let r = engine.export(&t, &CancellationToken::new()).unwrap();
    assert_eq!((r.placed, r.failed, r.foreign_kept), (3, 0, 0), "{r:?}");
    assert_eq!(names(&f.out), ["2020/a.jpg", "2021/b.mp4", "2021/c.png"]);
}
