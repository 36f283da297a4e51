//! The daemon's memory across restarts: when the last cycle that synced the library ended.
//! One RFC 3339 line in `state_dir/daemon-last-success`, replaced atomically so a crash
//! mid-write leaves the old value, never a torn one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

pub(crate) const LAST_SUCCESS_FILE: &str = "daemon-last-success";

/// Creates `dir` (mode 0700: it holds the token and the control socket) if missing.
pub(crate) fn ensure_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[derive(Debug, Clone)]
pub(crate) struct StateFile {
    path: PathBuf,
}

impl StateFile {
    pub(crate) fn new(state_dir: &Path) -> Self {
        StateFile {
            path: state_dir.join(LAST_SUCCESS_FILE),
        }
    }

    /// `None` when never recorded, or unreadable (logged: a damaged file only costs one
    /// catch-up run).
    pub(crate) fn last_success(&self) -> Option<DateTime<Utc>> {
        let text = match fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return None,
            Err(err) => {
                tracing::warn!(file = %self.path.display(), "cannot read the last success time: {err}");
                return None;
            }
        };
        match DateTime::parse_from_rfc3339(text.trim()) {
            Ok(at) => Some(at.with_timezone(&Utc)),
            Err(err) => {
                tracing::warn!(file = %self.path.display(), "ignoring a damaged last success time: {err}");
                None
            }
        }
    }

    pub(crate) fn record_success(&self, at: DateTime<Utc>) -> io::Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let temp = dir.join(format!(".{LAST_SUCCESS_FILE}.{}.tmp", std::process::id()));
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temp)?;
        writeln!(file, "{}", at.to_rfc3339())?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temp, &self.path)?;
        // The rename is durable only once the directory entry is.
        File::open(dir)?.sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn round_trips_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateFile::new(dir.path());
        assert_eq!(state.last_success(), None);
        let first = Utc.with_ymd_and_hms(2026, 3, 29, 1, 17, 0).unwrap();
        state.record_success(first).unwrap();
        assert_eq!(state.last_success(), Some(first));
        let second = first + chrono::Duration::days(1);
        state.record_success(second).unwrap();
        assert_eq!(state.last_success(), Some(second));
        // Only the file itself remains: no temporary left behind.
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [LAST_SUCCESS_FILE]);
    }

    #[test]
    fn damaged_file_reads_as_unknown() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(LAST_SUCCESS_FILE), "yesterday-ish\n").unwrap();
        assert_eq!(StateFile::new(dir.path()).last_success(), None);
    }
}
