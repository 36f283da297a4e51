//! Helpers shared by the integration tests that build a library from a local folder.
#![allow(dead_code, clippy::unwrap_used)] // each test crate uses a subset; setup failures abort

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use sync_engine::{Engine, LocalDirSource, NoProgress, RunReport, Source, SyncOptions};
use tokio_util::sync::CancellationToken;

/// Writes a source file with a given mtime (= capture time for `LocalDirSource`).
pub fn put(src: &Path, rel: &str, bytes: &[u8], unix_secs: u64) {
    let p = src.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, bytes).unwrap();
    let f = std::fs::File::options().write(true).open(&p).unwrap();
    f.set_modified(UNIX_EPOCH + Duration::from_secs(unix_secs))
        .unwrap();
}

/// One sync of `engine` from the folder `src`.
pub async fn sync(engine: &Engine, src: &Path, rescan: bool) -> RunReport {
    let sources: Vec<Arc<dyn Source>> = vec![Arc::new(LocalDirSource::new(src))];
    engine
        .sync(
            &sources,
            SyncOptions { rescan },
            Arc::new(NoProgress),
            CancellationToken::new(),
        )
        .await
        .unwrap()
}
