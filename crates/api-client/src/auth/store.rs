//! The token file: JSON, mode 0600, replaced atomically.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Tokens;
use crate::error::{Error, Result};

/// Where the tokens live on disk.
///
/// Saves write a temporary file in the same directory (so the rename cannot cross file
/// systems), fsync it, rename it over the old file and fsync the directory: a crash leaves
/// either the old or the new tokens, never a torn file. On Unix the file is created 0600.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenStore {
    path: PathBuf,
}

/// On-disk shape; versioned so the format can evolve.
#[derive(Serialize, Deserialize)]
struct TokenFile {
    version: u32,
    #[serde(flatten)]
    tokens: Tokens,
}

const FORMAT_VERSION: u32 = 1;

impl TokenStore {
    /// A store at `path` (nothing is touched until load/save).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The token file path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Loads the tokens; `Ok(None)` if the file does not exist.
    pub fn load(&self) -> Result<Option<Tokens>> {
        let text = match fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.err(e)),
        };
        warn_if_readable_by_others(&self.path);
        let file: TokenFile = serde_json::from_str(&text)
            .map_err(|e| self.err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
        if file.version != FORMAT_VERSION {
            return Err(self.err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("unsupported token file version {}", file.version),
            )));
        }
        Ok(Some(file.tokens))
    }

    /// Saves the tokens atomically with mode 0600.
    pub fn save(&self, tokens: &Tokens) -> Result<()> {
        let json = serde_json::to_vec_pretty(&TokenFile {
            version: FORMAT_VERSION,
            tokens: tokens.clone(),
        })
        .map_err(|e| self.err(std::io::Error::other(e)))?;
        let dir = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "tokens.json".to_owned());
        let tmp = dir.join(format!(".{name}.tmp-{:016x}", rand::random::<u64>()));
        let result = write_new_private(&tmp, &json)
            .and_then(|()| fs::rename(&tmp, &self.path))
            .and_then(|()| sync_dir(&dir));
        if result.is_err() {
            // Best effort: do not leave token copies lying around.
            let _ = fs::remove_file(&tmp);
        }
        result.map_err(|e| self.err(e))
    }

    /// Deletes the token file (after a revoke); missing is fine.
    pub fn delete(&self) -> Result<()> {
        match fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.err(e)),
        }
    }

    fn err(&self, source: std::io::Error) -> Error {
        Error::TokenFile {
            path: self.path.clone(),
            source,
        }
    }
}

fn write_new_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            path = %path.display(),
            "the token file is readable by other users; it will be rewritten with mode 0600 on the next refresh"
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{AccessToken, RefreshToken, Scope};

    fn tokens(access: &str) -> Tokens {
        Tokens {
            access_token: AccessToken::new(access),
            refresh_token: Some(RefreshToken::new("refresh")),
            expires_at: Some(chrono::Utc::now()),
            scopes: vec![Scope::LIBRARY_READONLY_APPCREATED, Scope::PICKER_READONLY],
        }
    }

    #[test]
    fn missing_file_loads_as_none() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            TokenStore::new(dir.path().join("t.json")).load().unwrap(),
            None
        );
    }

    #[test]
    fn save_then_load_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::new(dir.path().join("t.json"));
        store.save(&tokens("a1")).unwrap();
        assert_eq!(store.load().unwrap(), Some(tokens_with_same_time(&store)));
        store.save(&tokens("a2")).unwrap();
        assert_eq!(
            store.load().unwrap().unwrap().access_token,
            AccessToken::new("a2")
        );
        // No temporary files are left behind.
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("t.json")]);
    }

    fn tokens_with_same_time(store: &TokenStore) -> Tokens {
        // Timestamps round-trip exactly through RFC 3339; compare everything else too.
        let loaded = store.load().unwrap().unwrap();
        assert_eq!(loaded.refresh_token, Some(RefreshToken::new("refresh")));
        assert_eq!(loaded.scopes.len(), 2);
        loaded
    }

    #[cfg(unix)]
    #[test]
    fn file_is_private_even_when_replacing_a_world_readable_one() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.json");
        fs::write(&path, "{}").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        TokenStore::new(&path).save(&tokens("a")).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn failed_save_keeps_the_old_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.json");
        let store = TokenStore::new(&path);
        store.save(&tokens("old")).unwrap();
        // Make the rename fail: the target is now a non-empty directory.
        let blocked = TokenStore::new(dir.path().join("sub"));
        fs::create_dir(dir.path().join("sub")).unwrap();
        fs::write(dir.path().join("sub/x"), "x").unwrap();
        assert!(blocked.save(&tokens("new")).is_err());
        assert_eq!(
            store.load().unwrap().unwrap().access_token,
            AccessToken::new("old")
        );
        let leftovers = fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains(".tmp-")
            })
            .count();
        assert_eq!(leftovers, 0);
    }

    #[test]
    fn file_holds_no_debug_redaction_but_the_real_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.json");
        TokenStore::new(&path).save(&tokens("ya29.real")).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains("ya29.real"));
        assert!(text.contains("\"version\": 1"));
    }

    #[test]
    fn corrupt_file_is_an_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.json");
        fs::write(&path, "garbage").unwrap();
        let e = TokenStore::new(&path).load().unwrap_err();
        assert!(e.to_string().contains("t.json"), "{e}");
    }
}
