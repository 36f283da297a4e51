//! Durable file operations: temp names, fsync, rename, directory fsync, mtimes, cleanup.

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::AsyncWrite;

use crate::error::Error;
use crate::naming::truncate_keep_ext;
use crate::types::ContentHash;

/// Marker that only our temp files carry. Library names never start with a dot (see
/// `naming::sanitize_component`), so cleanup can never hit a user's photo.
const TEMP_MARK: &str = ".part-";

/// A unique temp name in the same directory as `final_name`: `.<name>.part-<16 hex>`.
pub fn temp_name(final_name: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let seed = format!("{}:{n}:{nanos}:{final_name}", std::process::id());
    let rand = &blake3::hash(seed.as_bytes()).to_hex()[..16];
    // '.' + name + ".part-" + 16 hex must fit in 255 bytes.
    let base = truncate_keep_ext(final_name, 255 - 1 - TEMP_MARK.len() - 16);
    format!(".{base}{TEMP_MARK}{rand}")
}

/// Whether `name` is one of our temp files.
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with('.')
        && name
            .rsplit_once(TEMP_MARK)
            .is_some_and(|(_, r)| r.len() == 16 && r.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// fsyncs a directory so a rename or create inside it survives a crash.
pub fn fsync_dir(dir: &Path) -> Result<(), Error> {
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io("fsync directory", dir, e))
}

/// Creates `dir` and missing parents under `root`, fsyncing the parent of each directory it
/// creates (a new directory entry is only durable once its parent is synced).
pub fn ensure_dir(root: &Path, dir: &Path) -> Result<(), Error> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut missing = Vec::new();
    let mut cur = dir;
    while !cur.is_dir() {
        missing.push(cur.to_path_buf());
        match cur.parent() {
            Some(p) if p.starts_with(root) || p == root => cur = p,
            _ => break,
        }
    }
    for d in missing.iter().rev() {
        match std::fs::create_dir(d) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io("create directory", d, e)),
        }
        if let Some(p) = d.parent() {
            fsync_dir(p)?;
        }
    }
    Ok(())
}

/// Sets a file's mtime (and atime) to `t`, clamping to the epoch where the filesystem refuses
/// older dates (gphotos-sync clamps likewise).
pub fn set_times(file: &std::fs::File, t: SystemTime) -> io::Result<()> {
    let times = std::fs::FileTimes::new().set_modified(t).set_accessed(t);
    match file.set_times(times) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
            let clamped = t.max(UNIX_EPOCH);
            file.set_times(
                std::fs::FileTimes::new()
                    .set_modified(clamped)
                    .set_accessed(clamped),
            )
        }
        Err(e) => Err(e),
    }
}

/// `syncfs(2)` on the filesystem holding `dir`: one barrier for a whole batch of files, far
/// cheaper than one fsync per file on spinning disks and NAS.
pub fn syncfs(dir: &Path) -> Result<(), Error> {
    let f = std::fs::File::open(dir).map_err(|e| Error::io("open for syncfs", dir, e))?;
    #[cfg(target_os = "linux")]
    {
        rustix::fs::syncfs(&f).map_err(|e| Error::io("syncfs", dir, e.into()))
    }
    #[cfg(not(target_os = "linux"))]
    {
        f.sync_all().map_err(|e| Error::io("sync", dir, e))
    }
}

/// Removes leftover temp files under `root` (crash or kill mid-download). Returns how many.
pub fn remove_temp_files(root: &Path) -> Result<usize, Error> {
    let mut removed = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        removed += remove_temp_files_in(&dir, Some(&mut stack))?;
    }
    Ok(removed)
}

/// Removes our temp files directly in `dir` (a missing `dir` has none); its subfolders
/// (but `.trash`) are pushed onto `subdirs` when given. Returns how many were removed.
pub fn remove_temp_files_in(
    dir: &Path,
    mut subdirs: Option<&mut Vec<PathBuf>>,
) -> Result<usize, Error> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(Error::io("read directory", dir, e)),
    };
    let mut removed = 0;
    for e in rd {
        let e = e.map_err(|e| Error::io("read directory", dir, e))?;
        let name = e.file_name().to_string_lossy().into_owned();
        let ft = e
            .file_type()
            .map_err(|e| Error::io("stat", e_path(dir, &name), e))?;
        if ft.is_dir() {
            if let Some(subdirs) = subdirs.as_deref_mut()
                && name != ".trash"
            {
                subdirs.push(e.path());
            }
        } else if (ft.is_file() || ft.is_symlink()) && is_temp_name(&name) {
            // Links too: a symlink-mode export replaces a link through a temp-named one.
            std::fs::remove_file(e.path()).map_err(|err| Error::io("remove", e.path(), err))?;
            removed += 1;
        }
    }
    Ok(removed)
}

fn e_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

/// blake3 of a file, streamed.
pub fn hash_file(path: &Path) -> io::Result<(u64, ContentHash)> {
    let mut h = blake3::Hasher::new();
    let mut f = std::fs::File::open(path)?;
    let n = io::copy(&mut f, &mut h)?;
    Ok((n, h.finalize().into()))
}

/// Converts ms since the epoch to a `SystemTime` (negative = before 1970).
pub fn system_time_from_ms(ms: i64) -> SystemTime {
    if ms >= 0 {
        UNIX_EPOCH + Duration::from_millis(ms.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_millis(ms.unsigned_abs())
    }
}

/// Wraps the temp file: hashes and counts what passes through, and remembers whether a write
/// failed for lack of space, so the engine can tell "disk full" from a network failure whatever the source says.
pub struct HashingWriter<W> {
    inner: W,
    hasher: blake3::Hasher,
    written: u64,
    disk_full: bool,
}

impl<W> HashingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: blake3::Hasher::new(),
            written: 0,
            disk_full: false,
        }
    }
    /// Whether a write failed because the disk is full.
    pub fn disk_full(&self) -> bool {
        self.disk_full
    }
    /// Finishes: (inner, bytes, blake3).
    pub fn finish(self) -> (W, u64, ContentHash) {
        (self.inner, self.written, self.hasher.finalize().into())
    }

    fn note(&mut self, e: &io::Error) {
        if crate::error::is_disk_full(e) {
            self.disk_full = true;
        }
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for HashingWriter<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => {
                this.hasher.update(&buf[..n]);
                this.written += n as u64;
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => {
                this.note(&e);
                Poll::Ready(Err(e))
            }
            Poll::Pending => Poll::Pending,
        }
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Ready(Err(e)) => {
                this.note(&e);
                Poll::Ready(Err(e))
            }
            other => other,
        }
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_are_recognised_and_bounded() {
        let t = temp_name("IMG_0001.JPG");
        assert!(is_temp_name(&t), "{t}");
        assert!(!is_temp_name("IMG_0001.JPG"));
        assert!(!is_temp_name(".IMG.part-notahexnumber!"));
        let long = "x".repeat(255);
        assert!(temp_name(&long).len() <= 255);
        assert_ne!(temp_name("a"), temp_name("a"));
    }

    #[tokio::test]
    async fn hashing_writer_notices_a_full_disk() {
        use tokio::io::AsyncWriteExt;
        // /dev/full answers every write with ENOSPC.
        let f = tokio::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .await
            .unwrap();
        let mut w = HashingWriter::new(f);
        let r = async {
            w.write_all(&[0u8; 4096]).await?;
            w.flush().await
        }
        .await;
        assert!(r.is_err());
        assert!(w.disk_full());

        let mut ok = HashingWriter::new(Vec::new());
        ok.write_all(b"abc").await.unwrap();
        assert!(!ok.disk_full());
        let (buf, n, h) = ok.finish();
        assert_eq!((buf.as_slice(), n), (&b"abc"[..], 3));
        assert_eq!(h, ContentHash::of(b"abc"));
    }

    #[test]
    fn cleanup_removes_only_temp_files() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("photos/2020/01")).unwrap();
        let keep = d.path().join("photos/2020/01/a.jpg");
        std::fs::write(&keep, b"x").unwrap();
        let tmp = d.path().join("photos/2020/01").join(temp_name("a.jpg"));
        std::fs::write(&tmp, b"partial").unwrap();
        let link = d.path().join("photos/2020/01").join(temp_name("b.jpg"));
        std::os::unix::fs::symlink("a.jpg", &link).unwrap();
        assert_eq!(remove_temp_files(d.path()).unwrap(), 2);
        assert!(keep.exists());
        assert!(!tmp.exists());
        assert!(std::fs::symlink_metadata(&link).is_err());
    }
}
