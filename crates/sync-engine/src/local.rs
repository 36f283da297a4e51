//! [`LocalDirSource`]: serves files from a directory tree. Used to import loose folders and
//! as a real (not mocked) source in the engine's own tests.

use std::path::{Path, PathBuf};
use std::time::Instant;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::stream::{self, BoxStream, StreamExt};
use tokio::io::AsyncWriteExt;

use crate::source::{ListScope, MediaWriter, Prepared, Source, SourceError};
use crate::types::{AlbumId, MediaId, RemoteAlbum, RemoteItem, SourceKind};

/// A directory as a source.
///
/// * every regular file under `root` (recursively, dot files skipped) is an item whose id is
///   `local:<relative path>`, capture time is the file's mtime and size is its length;
/// * every directory directly under `root/albums/` is an album (title = directory name) whose
///   items are the files inside it, in name order. Its id is the directory name, or the
///   contents of a `.id` file inside it (so renaming the directory renames the album). A
///   symlink inside an album directory makes the file it points to (under `root`) a member
///   without duplicating it.
#[derive(Debug, Clone)]
pub struct LocalDirSource {
    root: PathBuf,
}

impl LocalDirSource {
    /// Serves the tree at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalDirSource { root: root.into() }
    }

    fn item_for(&self, rel: &str) -> Result<RemoteItem, SourceError> {
        let path = self.root.join(rel);
        let meta = std::fs::metadata(&path)
            .map_err(|e| SourceError::NotFound(format!("{}: {e}", path.display())))?;
        if !meta.is_file() {
            return Err(SourceError::NotFound(rel.to_owned()));
        }
        let filename = Path::new(rel)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| rel.to_owned());
        let taken_at = meta.modified().ok().map(DateTime::<Utc>::from);
        Ok(RemoteItem {
            taken_at,
            size: Some(meta.len()),
            ..RemoteItem::new(
                MediaId::new(format!("local:{rel}")),
                filename.clone(),
                guess_mime(&filename),
            )
        })
    }

    /// The album directory whose `.id` (or name) is `key`.
    fn album_dir(&self, key: &str) -> Option<String> {
        let dir = self.root.join("albums");
        let rd = std::fs::read_dir(&dir).ok()?;
        let mut by_name = None;
        for e in rd.filter_map(Result::ok) {
            let n = e.file_name().to_string_lossy().into_owned();
            match std::fs::read_to_string(e.path().join(".id")) {
                Ok(id) if id.trim() == key => return Some(n),
                Ok(_) => {}
                Err(_) if n == key => by_name = Some(n),
                Err(_) => {}
            }
        }
        by_name
    }

    fn rel_of(id: &MediaId) -> Result<&str, SourceError> {
        let rel = id
            .as_str()
            .strip_prefix("local:")
            .ok_or_else(|| SourceError::NotFound(id.to_string()))?;
        // Never serve anything outside the root.
        if rel.split('/').any(|c| c == ".." || c.is_empty()) {
            return Err(SourceError::NotFound(id.to_string()));
        }
        Ok(rel)
    }
}

/// Relative paths of the regular files under `dir`, sorted, dot entries skipped.
fn walk(root: &Path, sub: &str, out: &mut Vec<String>) -> std::io::Result<()> {
    let dir = if sub.is_empty() {
        root.to_path_buf()
    } else {
        root.join(sub)
    };
    let mut entries: Vec<_> = std::fs::read_dir(&dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let rel = if sub.is_empty() {
            name
        } else {
            format!("{sub}/{name}")
        };
        let ft = e.file_type()?;
        if ft.is_dir() {
            walk(root, &rel, out)?;
        } else if ft.is_file() {
            out.push(rel);
        }
    }
    Ok(())
}

fn guess_mime(name: &str) -> &'static str {
    let ext = name.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "heic" => "image/heic",
        "webp" => "image/webp",
        "mp4" => "video/mp4",
        "mov" => "video/quicktime",
        _ => "application/octet-stream",
    }
}

fn io_err(e: std::io::Error) -> SourceError {
    SourceError::Other(e.to_string())
}

#[async_trait]
impl Source for LocalDirSource {
    fn kind(&self) -> SourceKind {
        SourceKind::Local
    }

    fn list(&self, _scope: ListScope) -> BoxStream<'_, Result<RemoteItem, SourceError>> {
        let mut rels = Vec::new();
        if let Err(e) = walk(&self.root, "", &mut rels) {
            return stream::once(async move { Err(io_err(e)) }).boxed();
        }
        stream::iter(rels)
            .map(move |rel| self.item_for(&rel))
            .boxed()
    }

    fn albums(&self) -> BoxStream<'_, Result<RemoteAlbum, SourceError>> {
        let dir = self.root.join("albums");
        let mut out = Vec::new();
        if let Ok(rd) = std::fs::read_dir(&dir) {
            let mut names: Vec<String> = rd
                .filter_map(Result::ok)
                .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect();
            names.sort();
            for n in names {
                let count = std::fs::read_dir(dir.join(&n)).ok().map(|rd| {
                    rd.filter_map(Result::ok)
                        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                        .count() as u64
                });
                let key = std::fs::read_to_string(dir.join(&n).join(".id"))
                    .map(|s| s.trim().to_owned())
                    .unwrap_or_else(|_| n.clone());
                out.push(Ok(RemoteAlbum {
                    id: AlbumId::new(format!("local-album:{key}")),
                    title: n,
                    item_count: count,
                }));
            }
        }
        stream::iter(out).boxed()
    }

    fn album_items<'a>(
        &'a self,
        album: &'a AlbumId,
    ) -> BoxStream<'a, Result<RemoteItem, SourceError>> {
        let Some(key) = album.as_str().strip_prefix("local-album:") else {
            return stream::once(async move { Err(SourceError::NotFound(album.to_string())) })
                .boxed();
        };
        let Some(name) = self.album_dir(key) else {
            return stream::once(async move { Err(SourceError::NotFound(album.to_string())) })
                .boxed();
        };
        let dir = self.root.join("albums").join(&name);
        let mut entries: Vec<_> = match std::fs::read_dir(&dir) {
            Ok(rd) => rd.filter_map(Result::ok).collect(),
            Err(e) => return stream::once(async move { Err(io_err(e)) }).boxed(),
        };
        entries.sort_by_key(|e| e.file_name());
        let root = std::fs::canonicalize(&self.root).unwrap_or_else(|_| self.root.clone());
        let mut rels = Vec::new();
        for e in entries {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with('.') {
                continue;
            }
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_file() {
                rels.push(format!("albums/{name}/{n}"));
            } else if ft.is_symlink() {
                let target = std::fs::canonicalize(e.path()).ok();
                if let Some(rel) = target
                    .as_deref()
                    .and_then(|t| t.strip_prefix(&root).ok())
                    .and_then(|r| r.to_str())
                {
                    rels.push(rel.to_owned());
                }
            }
        }
        stream::iter(rels)
            .map(move |rel| self.item_for(&rel))
            .boxed()
    }

    async fn prepare(
        &self,
        ids: &[MediaId],
    ) -> Result<Vec<Result<Prepared, SourceError>>, SourceError> {
        Ok(ids
            .iter()
            .map(|id| {
                let rel = Self::rel_of(id)?;
                let item = self.item_for(rel)?;
                Ok(Prepared {
                    item,
                    locator: self.root.join(rel).to_string_lossy().into_owned(),
                    issued_at: Instant::now(),
                })
            })
            .collect())
    }

    async fn fetch(&self, item: &Prepared, out: MediaWriter<'_>) -> Result<u64, SourceError> {
        let mut f = tokio::fs::File::open(&item.locator)
            .await
            .map_err(|e| SourceError::NotFound(format!("{}: {e}", item.locator)))?;
        let n = tokio::io::copy(&mut f, out)
            .await
            .map_err(SourceError::Write)?;
        out.flush().await.map_err(SourceError::Write)?;
        Ok(n)
    }
}
