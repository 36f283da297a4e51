//! Harness for the end-to-end tests in `tests/tests/`: they run the real daemon binary
//! (built from `crates/daemon/src/main.rs` by this package) against the fake Google on
//! 127.0.0.1, and check what a user would see: exit codes, messages, files on disk.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A new [`Workspace`] running the binary under test. A macro because Cargo tells only
/// integration tests (not this library) where it built the binary.
#[macro_export]
macro_rules! workspace {
    () => {
        $crate::Workspace::new(env!("CARGO_BIN_EXE_gphotos-backup-under-test"))
    };
}

/// A scratch directory with a config file, a library and a state directory.
pub struct Workspace {
    pub dir: tempfile::TempDir,
    pub binary: PathBuf,
}

impl Workspace {
    pub fn new(binary: impl Into<PathBuf>) -> Workspace {
        Workspace {
            dir: tempfile::tempdir().expect("temp dir"),
            binary: binary.into(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn library_dir(&self) -> PathBuf {
        self.path().join("library")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.path().join("state")
    }

    pub fn config_path(&self) -> PathBuf {
        self.path().join("config.toml")
    }

    /// Writes `text` as the config file.
    pub fn write_config(&self, text: &str) {
        std::fs::write(self.config_path(), text).expect("write config");
    }

    /// Runs the binary with `--config <this workspace's config>` and `args`.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(&self.binary)
            .arg("--config")
            .arg(self.config_path())
            .args(args)
            .env_remove("JOURNAL_STREAM")
            .env_remove("NOTIFY_SOCKET")
            .env("RUST_LOG", "warn")
            .output()
            .expect("spawn the binary")
    }
}

/// Every regular file under `root`, relative, sorted; for comparing trees.
pub fn files_under(root: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                walk(root, &path, out);
            } else if let Ok(rel) = path.strip_prefix(root) {
                out.push(rel.to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// Stdout and stderr of a finished command, for assertion messages.
pub fn describe(output: &Output) -> String {
    format!(
        "exit: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
