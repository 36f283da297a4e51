//! The TOML configuration file: parsing, defaults and validation.
//!
//! Every problem is reported with the file, line, column and key it concerns, and
//! validation collects all problems before giving up, so a user fixes the file in one
//! pass instead of one error per restart. Relative paths are resolved against the
//! directory holding the config file, not the daemon's working directory (systemd
//! starts us in `/`).

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use sync_engine::{AlbumLinks, Durability, FilesystemRules};
use toml::Spanned;

/// Google's real endpoints; tests and the demo point them at the fake on loopback.
pub const DEFAULT_LIBRARY_API_URL: &str = "https://photoslibrary.googleapis.com";
pub const DEFAULT_PICKER_API_URL: &str = "https://photospicker.googleapis.com";

/// One thing wrong with the config file, located precisely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub file: PathBuf,
    /// 1-based; 0 when the problem has no position (e.g. the file is missing).
    pub line: usize,
    pub column: usize,
    /// Dotted key path such as `sync.max_concurrent_downloads`; empty for whole-file problems.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if !self.key.is_empty() {
            write!(f, ": key `{}`", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// All the problems found in a config file.
#[derive(Debug, Clone)]
pub struct ConfigError {
    pub problems: Vec<ConfigProblem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.problems.len();
        writeln!(
            f,
            "the configuration has {count} problem{}:",
            if count == 1 { "" } else { "s" }
        )?;
        for problem in &self.problems {
            writeln!(f, "  {problem}")?;
        }
        write!(
            f,
            "See config/example.toml for every key with its meaning and default."
        )
    }
}

impl std::error::Error for ConfigError {}

/// The validated configuration the rest of the daemon uses.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this was read from, for messages and reloads.
    pub source_file: PathBuf,
    pub library_dir: PathBuf,
    pub state_dir: PathBuf,
    pub google: GoogleConfig,
    pub library_api: LibraryApiSourceConfig,
    pub takeout: Option<TakeoutSourceConfig>,
    pub sync: SyncConfig,
    pub schedule: ScheduleConfig,
    pub notify: NotifyConfig,
    /// `[[export]]` targets, run after every successful sync cycle and by `export`.
    pub exports: Vec<sync_engine::ExportTarget>,
}

#[derive(Debug, Clone)]
pub struct GoogleConfig {
    pub client_secret_file: PathBuf,
    pub token_file: PathBuf,
    /// Overrides of the auth and token endpoints; by default they come from the client secret file.
    pub auth_url: Option<String>,
    pub token_url: Option<String>,
    pub revoke_url: Option<String>,
    pub library_api_url: String,
    pub picker_api_url: String,
    /// Opt-in for projects that still hold the broad scope removed on 2025-03-31.
    pub use_removed_readonly_scope: bool,
}

#[derive(Debug, Clone)]
pub struct LibraryApiSourceConfig {
    pub enabled: bool,
}

#[derive(Debug, Clone)]
pub struct TakeoutSourceConfig {
    pub inbox: PathBuf,
    pub settle_time: Duration,
    pub delete_after_import: bool,
    pub include_trashed: bool,
    pub write_xmp: bool,
}

#[derive(Debug, Clone)]
pub struct SyncConfig {
    pub max_concurrent_downloads: usize,
    pub album_links: AlbumLinks,
    pub filesystem: FilesystemRules,
    pub folder_timezone: chrono_tz::Tz,
    pub delete_removed: bool,
    pub max_removal_fraction: f64,
    pub full_rescan_interval: Duration,
    pub durability: Durability,
}

#[derive(Debug, Clone)]
pub struct ScheduleConfig {
    /// Six-field cron expression, seconds first, as tokio-cron-scheduler reads it.
    pub cron: String,
    pub timezone: chrono_tz::Tz,
}

#[derive(Debug, Clone, Default)]
pub struct NotifyConfig {
    pub healthcheck_url: Option<String>,
    pub on_failure_command: Option<String>,
}

// ---- the file as written -------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    library_dir: Spanned<PathBuf>,
    state_dir: Option<Spanned<PathBuf>>,
    #[serde(default)]
    google: RawGoogle,
    #[serde(default)]
    sources: RawSources,
    #[serde(default)]
    sync: RawSync,
    #[serde(default)]
    schedule: RawSchedule,
    #[serde(default)]
    notify: RawNotify,
    #[serde(default)]
    export: Vec<RawExport>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGoogle {
    client_secret_file: Option<Spanned<PathBuf>>,
    token_file: Option<Spanned<PathBuf>>,
    auth_url: Option<Spanned<String>>,
    token_url: Option<Spanned<String>>,
    revoke_url: Option<Spanned<String>>,
    library_api_url: Option<Spanned<String>>,
    picker_api_url: Option<Spanned<String>>,
    #[serde(default)]
    use_removed_readonly_scope: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSources {
    #[serde(default)]
    library_api: RawLibraryApi,
    takeout: Option<RawTakeout>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLibraryApi {
    #[serde(default = "yes")]
    enabled: bool,
}

impl Default for RawLibraryApi {
    fn default() -> Self {
        RawLibraryApi { enabled: true }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTakeout {
    inbox: Spanned<PathBuf>,
    settle_time: Option<Spanned<String>>,
    #[serde(default)]
    delete_after_import: bool,
    #[serde(default)]
    include_trashed: bool,
    #[serde(default = "yes")]
    write_xmp: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSync {
    max_concurrent_downloads: Option<Spanned<i64>>,
    album_links: Option<AlbumLinks>,
    filesystem: Option<FilesystemRules>,
    folder_timezone: Option<Spanned<String>>,
    #[serde(default)]
    delete_removed: bool,
    max_removal_fraction: Option<Spanned<f64>>,
    full_rescan_interval: Option<Spanned<String>>,
    durability: Option<Durability>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    cron: Option<Spanned<String>>,
    timezone: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotify {
    healthcheck_url: Option<Spanned<String>>,
    on_failure_command: Option<String>,
}

/// One `[[export]]` table (issue 7).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExport {
    name: Option<Spanned<String>>,
    path: Spanned<PathBuf>,
    template: Spanned<String>,
    mode: Option<sync_engine::ExportMode>,
    #[serde(default)]
    albums: Vec<String>,
    media: Option<sync_engine::MediaFilter>,
    #[serde(default)]
    favorites_only: bool,
    since: Option<Spanned<toml::Value>>,
    until: Option<Spanned<toml::Value>>,
    #[serde(default)]
    sources: Vec<sync_engine::SourceKind>,
    #[serde(default)]
    prune: bool,
}

fn yes() -> bool {
    true
}

// ---- loading ---------------------------------------------------------------------------

/// Reads and validates `path`. Touches nothing on disk besides reading the file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|err| ConfigError {
        problems: vec![ConfigProblem {
            file: path.to_path_buf(),
            line: 0,
            column: 0,
            key: String::new(),
            message: format!(
                "cannot read the config file: {err}. Pass --config with the path of your \
                 config (start from config/example.toml)."
            ),
        }],
    })?;
    parse(path, &text)
}

/// Parses config text; `path` is used for messages and to resolve relative paths.
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let raw = parse_raw(path, text)?;
    Validator::new(path, text).validate(raw)
}

fn parse_raw(path: &Path, text: &str) -> Result<RawConfig, ConfigError> {
    let locate = |key: String, message: String, span: Option<Range<usize>>| {
        let (line, column) = span.map_or((0, 0), |s| line_col(text, s.start));
        ConfigError {
            problems: vec![ConfigProblem {
                file: path.to_path_buf(),
                line,
                column,
                key,
                message,
            }],
        }
    };
    let deserializer = toml::de::Deserializer::parse(text)
        .map_err(|err| locate(String::new(), err.message().to_string(), err.span()))?;
    serde_path_to_error::deserialize(deserializer).map_err(|err| {
        // Spanned<T> adds a private segment to the path; users never wrote it.
        let key = err
            .path()
            .to_string()
            .replace(".$__serde_spanned_private_value", "");
        let key = if key == "." { String::new() } else { key };
        let inner = err.into_inner();
        locate(key, inner.message().to_string(), inner.span())
    })
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(before.chars().count(), |nl| {
        before[nl + 1..].chars().count()
    }) + 1;
    (line, column)
}

struct Validator<'a> {
    file: &'a Path,
    base_dir: PathBuf,
    text: &'a str,
    problems: Vec<ConfigProblem>,
}

impl<'a> Validator<'a> {
    fn new(file: &'a Path, text: &'a str) -> Self {
        let base_dir = file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        Validator {
            file,
            base_dir,
            text,
            problems: Vec::new(),
        }
    }

    fn problem(&mut self, key: &str, span: Range<usize>, message: impl Into<String>) {
        let (line, column) = line_col(self.text, span.start);
        self.problems.push(ConfigProblem {
            file: self.file.to_path_buf(),
            line,
            column,
            key: key.to_string(),
            message: message.into(),
        });
    }

    fn path(&self, value: &Path) -> PathBuf {
        if value.is_absolute() {
            value.to_path_buf()
        } else {
            self.base_dir.join(value)
        }
    }

    fn timezone(&mut self, key: &str, value: Option<Spanned<String>>) -> chrono_tz::Tz {
        let Some(value) = value else {
            return chrono_tz::UTC;
        };
        match value.get_ref().parse::<chrono_tz::Tz>() {
            Ok(tz) => tz,
            Err(_) => {
                self.problem(
                    key,
                    value.span(),
                    format!(
                        "unknown time zone {:?}; use an IANA name such as \"Europe/Berlin\" or \"UTC\"",
                        value.get_ref()
                    ),
                );
                chrono_tz::UTC
            }
        }
    }

    fn duration(
        &mut self,
        key: &str,
        value: Option<Spanned<String>>,
        default: Duration,
    ) -> Duration {
        let Some(value) = value else {
            return default;
        };
        match humantime::parse_duration(value.get_ref()) {
            Ok(d) if !d.is_zero() => d,
            Ok(_) => {
                self.problem(key, value.span(), "must be longer than zero");
                default
            }
            Err(err) => {
                self.problem(
                    key,
                    value.span(),
                    format!("not a duration ({err}); write it like \"7d\", \"12h\" or \"90s\""),
                );
                default
            }
        }
    }

    fn url(&mut self, key: &str, value: Option<Spanned<String>>) -> Option<String> {
        let value = value?;
        match url::Url::parse(value.get_ref()) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => {
                Some(value.get_ref().trim_end_matches('/').to_string())
            }
            Ok(_) => {
                self.problem(key, value.span(), "must be an http:// or https:// URL");
                None
            }
            Err(err) => {
                self.problem(key, value.span(), format!("not a URL: {err}"));
                None
            }
        }
    }

    fn validate(mut self, raw: RawConfig) -> Result<Config, ConfigError> {
        let library_dir = self.path(raw.library_dir.get_ref());
        let state_dir = match &raw.state_dir {
            Some(dir) => self.path(dir.get_ref()),
            None => default_state_dir(),
        };

        let google = raw.google;
        let client_secret_file = google.client_secret_file.as_ref().map_or_else(
            || state_dir.join("client_secret.json"),
            |f| self.path(f.get_ref()),
        );
        let token_file = google
            .token_file
            .as_ref()
            .map_or_else(|| state_dir.join("token.json"), |f| self.path(f.get_ref()));
        let google = GoogleConfig {
            client_secret_file,
            token_file,
            auth_url: self.url("google.auth_url", google.auth_url),
            token_url: self.url("google.token_url", google.token_url),
            revoke_url: self.url("google.revoke_url", google.revoke_url),
            library_api_url: self
                .url("google.library_api_url", google.library_api_url)
                .unwrap_or_else(|| DEFAULT_LIBRARY_API_URL.to_string()),
            picker_api_url: self
                .url("google.picker_api_url", google.picker_api_url)
                .unwrap_or_else(|| DEFAULT_PICKER_API_URL.to_string()),
            use_removed_readonly_scope: google.use_removed_readonly_scope,
        };

        let takeout = raw.sources.takeout.map(|t| TakeoutSourceConfig {
            inbox: self.path(t.inbox.get_ref()),
            settle_time: self.duration(
                "sources.takeout.settle_time",
                t.settle_time,
                Duration::from_secs(3600),
            ),
            delete_after_import: t.delete_after_import,
            include_trashed: t.include_trashed,
            write_xmp: t.write_xmp,
        });

        let sync = raw.sync;
        let max_concurrent_downloads = match sync.max_concurrent_downloads {
            None => 8,
            Some(n) => match usize::try_from(*n.get_ref()) {
                Ok(v @ 1..=64) => v,
                _ => {
                    self.problem(
                        "sync.max_concurrent_downloads",
                        n.span(),
                        format!("must be between 1 and 64, got {}", n.get_ref()),
                    );
                    8
                }
            },
        };
        let max_removal_fraction = match sync.max_removal_fraction {
            None => 0.10,
            Some(f) if (0.0..=1.0).contains(f.get_ref()) => *f.get_ref(),
            Some(f) => {
                self.problem(
                    "sync.max_removal_fraction",
                    f.span(),
                    format!("must be between 0.0 and 1.0, got {}", f.get_ref()),
                );
                0.10
            }
        };
        let sync = SyncConfig {
            max_concurrent_downloads,
            album_links: sync.album_links.unwrap_or(AlbumLinks::Symlink),
            filesystem: sync.filesystem.unwrap_or(FilesystemRules::Auto),
            folder_timezone: self.timezone("sync.folder_timezone", sync.folder_timezone),
            delete_removed: sync.delete_removed,
            max_removal_fraction,
            full_rescan_interval: self.duration(
                "sync.full_rescan_interval",
                sync.full_rescan_interval,
                Duration::from_secs(7 * 24 * 3600),
            ),
            durability: sync.durability.unwrap_or(Durability::Batch),
        };

        let timezone = self.timezone("schedule.timezone", raw.schedule.timezone);
        let cron = match raw.schedule.cron {
            None => DEFAULT_CRON.to_string(),
            Some(expr) => {
                let checked = check_cron(expr.get_ref()).and_then(|()| {
                    // The scheduler's own parser: catches what the light check cannot
                    // (a day 31 in no month, an hour 25) with the config's position.
                    crate::service::Schedule::new(expr.get_ref(), timezone)
                        .map(|_| ())
                        .map_err(|err| err.to_string())
                });
                if let Err(message) = checked {
                    self.problem("schedule.cron", expr.span(), message);
                }
                expr.into_inner()
            }
        };
        let schedule = ScheduleConfig { cron, timezone };

        let exports = self.exports(raw.export, &library_dir);

        let notify = NotifyConfig {
            healthcheck_url: self.url("notify.healthcheck_url", raw.notify.healthcheck_url),
            on_failure_command: raw.notify.on_failure_command,
        };

        if !self.problems.is_empty() {
            return Err(ConfigError {
                problems: self.problems,
            });
        }
        Ok(Config {
            source_file: self.file.to_path_buf(),
            library_dir,
            state_dir,
            google,
            library_api: LibraryApiSourceConfig {
                enabled: raw.sources.library_api.enabled,
            },
            takeout,
            sync,
            schedule,
            notify,
            exports,
        })
    }

    // ---- [[export]] (issue 7) ----

    fn exports(
        &mut self,
        raw: Vec<RawExport>,
        library_dir: &Path,
    ) -> Vec<sync_engine::ExportTarget> {
        let mut out: Vec<sync_engine::ExportTarget> = Vec::new();
        for (i, e) in raw.into_iter().enumerate() {
            let key = |k: &str| format!("export[{i}].{k}");
            let path = self.path(e.path.get_ref());
            if path.starts_with(library_dir) || library_dir.starts_with(&path) {
                self.problem(
                    &key("path"),
                    e.path.span(),
                    "an export target must be outside the library directory (and not contain it)",
                );
            }
            let template = match sync_engine::Template::parse(e.template.get_ref()) {
                Ok(t) => Some(t),
                Err(err) => {
                    // Point at the token itself: the value starts after its opening quote.
                    let value = e.template.get_ref();
                    let at = value
                        .char_indices()
                        .nth(err.column.saturating_sub(1))
                        .map_or(value.len(), |(b, _)| b);
                    let start = e.template.span().start + 1 + at;
                    self.problem(&key("template"), start..start, err.to_string());
                    None
                }
            };
            let name = match &e.name {
                Some(n) if n.get_ref().trim().is_empty() || n.get_ref().contains('\0') => {
                    self.problem(&key("name"), n.span(), "must be a non-empty name");
                    n.get_ref().clone()
                }
                Some(n) => n.get_ref().clone(),
                // The manifest is keyed by the name: without one, the target's path is it.
                None => path.display().to_string(),
            };
            if out.iter().any(|t| t.name == name) {
                let span = e.name.as_ref().map_or(e.path.span(), |n| n.span());
                self.problem(
                    &key("name"),
                    span,
                    format!("another [[export]] already uses the name {name:?}"),
                );
            }
            let since = self.date(&key("since"), e.since);
            let until = self.date(&key("until"), e.until);
            if let Some(template) = template {
                let mut target = sync_engine::ExportTarget::new(name, path, template);
                target.mode = e.mode.unwrap_or_default();
                target.prune = e.prune;
                target.filter = sync_engine::ExportFilter {
                    albums: e.albums,
                    media: e.media.unwrap_or_default(),
                    favorites_only: e.favorites_only,
                    since,
                    until,
                    sources: e.sources,
                };
                out.push(target);
            }
        }
        out
    }

    /// A date written as a TOML date (`2020-01-31`) or a string (`"2020-01-31"`).
    fn date(
        &mut self,
        key: &str,
        value: Option<Spanned<toml::Value>>,
    ) -> Option<chrono::NaiveDate> {
        let value = value?;
        let text = match value.get_ref() {
            toml::Value::String(s) => s.clone(),
            toml::Value::Datetime(d) if d.time.is_none() && d.offset.is_none() => d.to_string(),
            _ => String::new(),
        };
        match chrono::NaiveDate::parse_from_str(&text, "%Y-%m-%d") {
            Ok(d) => Some(d),
            Err(_) => {
                self.problem(key, value.span(), "must be a date like 2020-01-31");
                None
            }
        }
    }
}

/// Daily at 03:17: off the hour, so thousands of daemons do not hit Google in the same second.
pub const DEFAULT_CRON: &str = "0 17 3 * * *";

/// A light syntax check of a six-field cron expression (seconds first); the scheduler
/// does the full parse, but a typo must be caught at load time with its position.
fn check_cron(expr: &str) -> Result<(), String> {
    let fields: Vec<&str> = expr.split_whitespace().collect();
    if !(6..=7).contains(&fields.len()) {
        return Err(format!(
            "a cron expression needs 6 fields, seconds first (\"sec min hour day month weekday\"), \
             e.g. \"0 17 3 * * *\" for 03:17 daily; got {} field(s)",
            fields.len()
        ));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '*' | ',' | '-' | '/' | '?');
    if let Some(bad) = fields.iter().find(|f| !f.chars().all(allowed)) {
        return Err(format!(
            "cron field {bad:?} contains characters cron does not use"
        ));
    }
    Ok(())
}

/// `$STATE_DIRECTORY` (set by systemd's `StateDirectory=`), else the XDG state dir.
fn default_state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("STATE_DIRECTORY") {
        // systemd may pass several colon-separated directories; the first is ours.
        let first = dir
            .to_string_lossy()
            .split(':')
            .next()
            .unwrap_or("")
            .to_string();
        if !first.is_empty() {
            return PathBuf::from(first);
        }
    }
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME") {
        return PathBuf::from(dir).join("gphotos-backup");
    }
    if let Some(home) = std::env::var_os("HOME") {
        return PathBuf::from(home).join(".local/state/gphotos-backup");
    }
    PathBuf::from("/var/lib/gphotos-backup")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<ConfigProblem> {
        parse(Path::new("/etc/gb/config.toml"), text)
            .expect_err("config should be rejected")
            .problems
    }

    #[test]
    fn minimal_config_gets_defaults_and_resolves_relative_paths() {
        let config = parse(
            Path::new("/etc/gb/config.toml"),
            "library_dir = \"photos\"\nstate_dir = \"/var/lib/gb\"\n",
        )
        .unwrap();
        assert_eq!(config.library_dir, PathBuf::from("/etc/gb/photos"));
        assert_eq!(
            config.google.token_file,
            PathBuf::from("/var/lib/gb/token.json")
        );
        assert_eq!(config.google.library_api_url, DEFAULT_LIBRARY_API_URL);
        assert_eq!(config.sync.max_concurrent_downloads, 8);
        assert_eq!(config.sync.album_links, AlbumLinks::Symlink);
        assert!(config.library_api.enabled);
        assert_eq!(config.schedule.cron, DEFAULT_CRON);
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        let p = problems("library_dir = \"/x\"\n[sync]\nmax_concurent_downloads = 4\n");
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].line, 3);
        assert_eq!(p[0].key, "sync.max_concurent_downloads");
        assert!(
            p[0].message.contains("max_concurent_downloads"),
            "{}",
            p[0].message
        );
    }

    #[test]
    fn wrong_type_names_the_key() {
        let p = problems("library_dir = \"/x\"\n[sync]\nmax_concurrent_downloads = \"eight\"\n");
        assert_eq!(p[0].key, "sync.max_concurrent_downloads");
        assert_eq!(p[0].line, 3);
    }

    #[test]
    fn syntax_error_has_a_position() {
        let p = problems("library_dir = \"/x\"\n\n[sync\n");
        assert_eq!(p[0].line, 3);
    }

    #[test]
    fn all_semantic_problems_are_reported_at_once() {
        let p = problems(
            "library_dir = \"/x\"\n[sync]\nmax_concurrent_downloads = 0\nfolder_timezone = \"Mars/Olympus\"\n\
             [schedule]\ncron = \"0 3 * *\"\n[google]\nlibrary_api_url = \"ftp://x\"\n",
        );
        let keys: Vec<&str> = p.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "google.library_api_url",
                "sync.max_concurrent_downloads",
                "sync.folder_timezone",
                "schedule.cron"
            ]
        );
        assert_eq!(p[1].line, 3);
        assert_eq!(p[2].line, 4);
        let text = ConfigError { problems: p }.to_string();
        assert!(text.contains("/etc/gb/config.toml:3:"), "{text}");
    }

    #[test]
    fn sync_enums_use_the_engine_types_and_their_config_spelling() {
        let config = parse(
            Path::new("/etc/gb/config.toml"),
            "library_dir = \"/x\"\n[sync]\nalbum_links = \"hardlink\"\nfilesystem = \"ntfs\"\ndurability = \"file\"\n",
        )
        .unwrap();
        assert_eq!(config.sync.album_links, AlbumLinks::Hardlink);
        assert_eq!(config.sync.filesystem, FilesystemRules::Ntfs);
        assert_eq!(config.sync.durability, Durability::PerFile);
        let p = problems("library_dir = \"/x\"\n[sync]\ndurability = \"perfile\"\n");
        assert_eq!((p[0].key.as_str(), p[0].line), ("sync.durability", 3));
    }

    #[test]
    fn cron_is_checked_by_the_schedulers_own_parser() {
        let p = problems("library_dir = \"/x\"\n[schedule]\ncron = \"0 0 25 * * *\"\n");
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!((p[0].key.as_str(), p[0].line), ("schedule.cron", 3));
    }

    #[test]
    fn export_tables_are_read_and_a_bad_token_is_located() {
        let config = parse(
            Path::new("/etc/gb/config.toml"),
            "library_dir = \"/srv/photos\"\n[[export]]\nname = \"nas\"\npath = \"/mnt/nas\"\n\
             template = \"{year}/{album|Unsorted}/{filename}\"\nmode = \"hardlink\"\n\
             media = \"photo\"\nsince = 2020-01-31\nprune = true\n",
        )
        .unwrap();
        let t = &config.exports[0];
        assert_eq!(
            (t.name.as_str(), t.mode),
            ("nas", sync_engine::ExportMode::Hardlink)
        );
        assert!(t.prune && t.template.uses_album());
        assert_eq!(t.filter.since, chrono::NaiveDate::from_ymd_opt(2020, 1, 31));

        let p = problems(
            "library_dir = \"/x\"\n[[export]]\npath = \"/nas\"\ntemplate = \"{year}/{albm}/{filename}\"\n\
             [[export]]\npath = \"/x/inside\"\ntemplate = \"{filename}\"\nuntil = \"last year\"\n",
        );
        let keys: Vec<&str> = p.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            ["export[0].template", "export[1].path", "export[1].until"]
        );
        // `template = "` is 12 characters; `{albm}` starts at column 8 of the value.
        assert_eq!((p[0].line, p[0].column), (4, 20));
        assert!(p[0].message.contains("{albm}"), "{}", p[0].message);
    }

    #[test]
    fn missing_library_dir_is_named() {
        let p = problems("[sync]\ndelete_removed = true\n");
        assert!(p[0].message.contains("library_dir"), "{}", p[0].message);
    }

    #[test]
    fn line_col_counts_characters_not_bytes() {
        assert_eq!(line_col("é = 1\nab", 7), (2, 1));
        assert_eq!(line_col("é = 1", 4), (1, 4));
    }
}

#[cfg(test)]
mod example_tests {
    use super::*;

    /// The shipped example must always load: users start from it.
    #[test]
    fn example_config_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/example.toml");
        let config = load(&path).unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(config.library_dir, PathBuf::from("/srv/photos/google"));
        assert!(!config.google.use_removed_readonly_scope);
    }
}
