//! A full disk stops the run with a clear error, leaves no partial file, and the next run
//! resumes. Needs a small filesystem: a 1 MiB tmpfs, which requires CAP_SYS_ADMIN (CI runs the
//! tests as root in a container). Without it the test reports why and checks nothing else.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use sync_engine::{Engine, EngineConfig, Error, LocalDirSource, NoProgress, Source, SyncOptions};
use tokio_util::sync::CancellationToken;

struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn mount_tmpfs(dir: &Path, size: &str) -> Option<Mount> {
    std::fs::create_dir_all(dir).unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir)
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then(|| Mount(dir.to_path_buf()))
}

#[tokio::test]
async fn disk_full_stops_cleanly_and_the_next_run_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    let Some(mount) = mount_tmpfs(&lib, "1m") else {
        eprintln!("skipping: cannot mount a tmpfs here (needs CAP_SYS_ADMIN)");
        return;
    };
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    // Someone else's 500 KiB on the same disk, and three 300 KiB photos: the second does
    // not fit in what is left of 1 MiB.
    std::fs::write(lib.join("filler"), vec![0u8; 500 * 1024]).unwrap();
    for i in 0..3u8 {
        std::fs::write(src.join(format!("f{i}.jpg")), vec![i; 300 * 1024]).unwrap();
    }
    let mut cfg = EngineConfig::new(&lib, tmp.path().join("state"));
    cfg.max_concurrent_downloads = 1;
    let engine = Engine::open(cfg).unwrap();
    let sources: Vec<Arc<dyn Source>> = vec![Arc::new(LocalDirSource::new(&src))];
    let sync = || {
        engine.sync(
            &sources,
            SyncOptions::default(),
            Arc::new(NoProgress),
            CancellationToken::new(),
        )
    };

    let err = sync().await.unwrap_err();
    assert!(matches!(err, Error::DiskFull { .. }), "{err}");
    assert!(err.to_string().contains("no space left"), "{err}");
    // Only complete files in the tree, and each of them recorded.
    let status = engine.status().unwrap();
    assert_eq!(status.done, 1);
    assert!(engine.verify(true).unwrap().is_clean());
    let names = walk(&lib);
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(names.iter().all(|n| !n.contains(".part-")), "{names:?}");

    // Make room (as a user would) and run again: it resumes with what is missing.
    std::fs::remove_file(lib.join("filler")).unwrap();
    let r = sync().await.unwrap();
    assert_eq!(r.downloaded, 2);
    assert_eq!(walk(&lib).len(), 3);
    assert!(engine.verify(true).unwrap().is_clean());
    drop(engine);
    drop(mount);
}

/// Fills the filesystem of `dir` until a write fails, then gives back `leave` bytes.
fn fill_leaving(dir: &Path, leave: u64) {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0xA5u8; 64 * 1024];
    while f.write_all(&chunk).and_then(|()| f.sync_all()).is_ok() {}
    let len = std::fs::metadata(&path).unwrap().len();
    f.set_len(len.saturating_sub(leave)).unwrap();
    f.sync_all().unwrap();
}

#[test]
fn a_state_disk_too_full_to_compact_the_index_still_opens_it() {
    use sync_engine::{SledStore, Store, Tree};
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let Some(mount) = mount_tmpfs(&state, "24m") else {
        eprintln!("skipping: cannot mount a tmpfs here (needs CAP_SYS_ADMIN)");
        return;
    };
    let dir = state.join("index");
    let value = |i: u32, pass: u8| {
        let mut v = blake3::hash(&i.to_be_bytes()).as_bytes().repeat(6);
        v[0] = pass;
        v
    };
    {
        let store = SledStore::open(&dir).unwrap();
        for pass in 0..4u8 {
            for i in 0..4000u32 {
                store
                    .put(Tree::Items, &i.to_be_bytes(), &value(i, pass))
                    .unwrap();
            }
            store.flush().unwrap();
        }
    }
    // The grown index wants compacting, and there is no room for a copy.
    fill_leaving(&state, 256 * 1024);

    let store = SledStore::open(&dir).unwrap();
    assert_eq!(store.len(Tree::Items), 4000);
    for i in (0..4000u32).step_by(97) {
        assert_eq!(
            store.get(Tree::Items, &i.to_be_bytes()).unwrap(),
            Some(value(i, 3))
        );
    }
    assert!(!state.join("index.compacting").exists());
    drop(store);
    // It does not retry (and fail) on every open; with room again, it compacts later.
    SledStore::open(&dir).unwrap();
    drop(mount);
}

fn walk(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.join("photos")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
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
    out
}
