//! Harness for the end-to-end tests in `tests/tests/`: they run the real daemon binary
//! (built from `crates/daemon/src/main.rs` by this package) against the fake Google on
//! 127.0.0.1, and check what a user would see: exit codes, messages, files on disk.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use api_client::{AccessToken, RefreshToken, Scope, TokenStore, Tokens};
use fake_google::{FakeGoogle, IssuedTokens};

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

    /// The command line for the binary with `--config <this workspace's config>` and `args`;
    /// the environment is cleaned of anything that would change its logging or notify systemd.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .arg("--config")
            .arg(self.config_path())
            .args(args)
            .env_remove("JOURNAL_STREAM")
            .env_remove("NOTIFY_SOCKET")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null());
        command
    }

    /// Runs the binary to completion (blocking; use [`Workspace::run_async`] while a fake
    /// Google is served from the same test).
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("spawn the binary")
    }

    /// Runs the binary to completion without blocking the async runtime serving the fake.
    pub async fn run_async(&self, args: &[&str]) -> Output {
        tokio::process::Command::from(self.command(args))
            .output()
            .await
            .expect("spawn the binary")
    }

    /// Writes a config whose Google endpoints all point at `fake`, plus the fake's client
    /// secret file; `extra` is appended verbatim (more sections or keys).
    pub fn write_config_for(&self, fake: &FakeGoogle, extra: &str) {
        let secret = self.path().join("client_secret.json");
        std::fs::write(&secret, fake.client_secret_json()).expect("write client secret");
        self.write_config(&format!(
            "library_dir = {:?}\nstate_dir = {:?}\n\n[google]\nclient_secret_file = {:?}\n\
             revoke_url = {:?}\nlibrary_api_url = {:?}\npicker_api_url = {:?}\n{extra}",
            self.library_dir(),
            self.state_dir(),
            secret,
            fake.revoke_url(),
            fake.library_api_url(),
            fake.picker_api_url(),
        ));
    }

    /// Stores tokens the fake issued for `scopes`, as `auth` would have (skips the consent
    /// dance, which has its own test).
    pub fn authorize(&self, fake: &FakeGoogle, scopes: &[&str]) -> IssuedTokens {
        let issued = fake.issue_tokens(scopes);
        let tokens = Tokens {
            access_token: AccessToken::new(issued.access_token.clone()),
            refresh_token: Some(RefreshToken::new(issued.refresh_token.clone())),
            expires_at: Some(
                chrono::Utc::now()
                    + chrono::Duration::seconds(i64::try_from(issued.expires_in).unwrap_or(0)),
            ),
            scopes: issued
                .scopes
                .iter()
                .map(|s| Scope::new(s.clone()))
                .collect(),
        };
        std::fs::create_dir_all(self.state_dir()).expect("create state dir");
        TokenStore::new(self.state_dir().join("token.json"))
            .save(&tokens)
            .expect("save tokens");
        issued
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

/// The modification time of `path` (not following a final symlink's target).
pub fn mtime(path: &Path) -> std::time::SystemTime {
    std::fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .expect("mtime")
}

/// Parses `list --json` output.
pub fn parse_list(output: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("list --json line is JSON"))
        .collect()
}

/// Files whose name marks them as temporary (a download in flight), anywhere under `root`.
pub fn temp_files_under(root: &Path) -> Vec<PathBuf> {
    files_under(root)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.contains(".part-") || n.ends_with(".tmp"))
        })
        .collect()
}

/// Asserts that `rel` (relative to `library`) holds exactly what the fake's media host
/// serves for `item` (`=d` for photos, `=dv` for videos) and that its mtime is the capture
/// time; returns the bytes' length.
pub fn assert_served_file(
    library: &Path,
    fake: &FakeGoogle,
    item: &fake_google::ItemInfo,
    rel: &str,
) -> u64 {
    let path = library.join(rel);
    let expected = fake
        .library()
        .download_bytes(&item.id, if item.is_video { "dv" } else { "d" })
        .expect("the fake serves this item");
    let actual = std::fs::read(&path).unwrap_or_else(|e| panic!("{rel}: {e}"));
    assert!(
        actual == expected,
        "{rel}: bytes differ from what Google served"
    );
    let capture = u64::try_from(item.creation_time.timestamp()).expect("capture after 1970");
    let want = std::time::UNIX_EPOCH + std::time::Duration::from_secs(capture);
    let got = mtime(&path);
    let diff = got.duration_since(want).unwrap_or_else(|e| e.duration());
    assert!(
        diff < std::time::Duration::from_secs(1),
        "{rel}: mtime {got:?}, capture time {want:?}"
    );
    expected.len() as u64
}
