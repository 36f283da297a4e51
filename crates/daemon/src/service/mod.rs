//! The long-running service around the sync engine: it decides *when* a cycle runs and
//! reports how it went, without knowing what a cycle does.
//!
//! - **Schedule** ([`Schedule`]): `[schedule] cron` (six fields, seconds first) in
//!   `[schedule] timezone`, correct across DST; one timer re-armed after each fire, so an
//!   idle daemon wakes at most once a minute ([`clock::MAX_SLEEP`]).
//! - **Catch-up**: at start, a cycle runs at once when the last success (kept in
//!   `state_dir/daemon-last-success`) is older than one schedule interval, or unknown.
//! - **One run at a time**: a single run slot; a trigger that arrives during a cycle joins
//!   it and receives its outcome instead of starting another. A `rescan` trigger that finds
//!   a plain cycle running waits for it, then runs its own.
//! - **Control socket** `state_dir/control.sock` (mode 0600, JSON lines): `--run-now` uses
//!   [`request_run_now`]; `status` can use [`request_status`].
//! - **Signals**: SIGTERM/SIGINT stop (the in-flight cycle is cancelled through its
//!   [`CancellationToken`] and drained, bounded by [`ServiceOptions::shutdown_grace`]),
//!   SIGHUP reloads (the old options stay on error), SIGUSR1 runs a cycle now.
//! - **systemd** `Type=notify`: READY=1, STATUS= (from [`StatusReporter`]), WATCHDOG=1 at
//!   half of `WATCHDOG_USEC` while the main loop is responsive, STOPPING=1.
//! - **Health**: after each cycle `[notify] healthcheck_url` is pinged (`<url>/fail` on
//!   failure, the healthchecks.io convention) and `on_failure_command` runs on failure.
//!
//! The engine plugs in through [`CycleRunner`]:
//!
//! ```no_run
//! use std::sync::Arc;
//! use futures::future::BoxFuture;
//! use gphotos_backup::service::{
//!     run_daemon, CycleContext, CycleOutcome, CycleRequest, CycleRunner, ServiceOptions,
//! };
//!
//! struct Engine;
//! impl CycleRunner for Engine {
//!     fn run_cycle(&self, request: CycleRequest, cx: CycleContext) -> BoxFuture<'static, CycleOutcome> {
//!         Box::pin(async move {
//!             cx.status.set("listing media items");
//!             // ... stop promptly once cx.cancel is cancelled ...
//!             CycleOutcome::Success { summary: format!("nothing new ({:?})", request.trigger) }
//!         })
//!     }
//! }
//!
//! # async fn example(config: gphotos_backup::config::Config) -> Result<(), Box<dyn std::error::Error>> {
//! let path = config.source_file.clone();
//! let options = ServiceOptions::from_config(&config)?;
//! let reload = move || {
//!     let config = gphotos_backup::config::load(&path).map_err(|e| e.to_string())?;
//!     ServiceOptions::from_config(&config).map_err(|e| e.to_string())
//! };
//! let stopped = run_daemon(options, Arc::new(Engine), reload).await?;
//! std::process::exit(i32::from(stopped.exit_code()));
//! # }
//! ```

pub mod clock;
mod control;
mod daemon;
mod health;
mod notify;
pub mod schedule;
mod signals;
mod slot;
mod state;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
pub use tokio_util::sync::CancellationToken;

pub use clock::{Clock, ManualClock, SystemClock};
pub use control::{DaemonStatus, request_run_now, request_status};
pub use daemon::{DaemonEvent, StopReason, Stopped, run_daemon, run_daemon_with_events};
pub use notify::StatusReporter;
pub use schedule::{Schedule, ScheduleError};
pub use signals::event_for_signal;

use crate::config::Config;
use crate::exit;

/// Why a cycle was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// The cron schedule fired.
    Schedule,
    /// At start-up: the last success is older than one interval.
    CatchUp,
    /// `--run-now` over the control socket.
    RunNow,
    /// SIGUSR1.
    Signal,
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Trigger::Schedule => "schedule",
            Trigger::CatchUp => "catch-up",
            Trigger::RunNow => "run-now",
            Trigger::Signal => "signal",
        })
    }
}

/// What the service asks the engine to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CycleRequest {
    pub trigger: Trigger,
    /// List everything instead of only what is new.
    pub rescan: bool,
}

/// Why a cycle failed; decides the exit code of `--run-now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// Any failure not listed below.
    Error,
    /// Google needs the user to authorize again, or a scope is missing.
    Auth,
    /// Another process holds the library.
    Locked,
    /// The cycle was cancelled because the daemon is stopping.
    Interrupted,
}

/// How a cycle ended, as the engine reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum CycleOutcome {
    Success {
        summary: String,
    },
    /// Finished, but some items failed; they are retried next run.
    Partial {
        summary: String,
    },
    /// Google's daily quota ran out; the next run resumes.
    Paused {
        summary: String,
    },
    Failed {
        kind: FailureKind,
        message: String,
    },
}

impl CycleOutcome {
    /// The documented exit code (`crate::exit`) for this outcome.
    pub fn exit_code(&self) -> u8 {
        match self {
            CycleOutcome::Success { .. } => exit::OK,
            CycleOutcome::Partial { .. } => exit::PARTIAL,
            CycleOutcome::Paused { .. } => exit::PAUSED,
            CycleOutcome::Failed { kind, .. } => match kind {
                FailureKind::Auth => exit::AUTH,
                FailureKind::Locked => exit::LOCKED,
                FailureKind::Error | FailureKind::Interrupted => exit::FAILURE,
            },
        }
    }

    /// Whether this run counts as "the library was synced" for catch-up. A quota pause
    /// does not: the library is incomplete, and the next scheduled run resumes it.
    pub fn completed_sync(&self) -> bool {
        matches!(
            self,
            CycleOutcome::Success { .. } | CycleOutcome::Partial { .. }
        )
    }

    /// Whether monitoring should hear about a failure. An interrupted cycle is a normal
    /// stop, not a broken backup.
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            CycleOutcome::Failed { kind, .. } if *kind != FailureKind::Interrupted
        )
    }

    /// A short machine-readable name: `success`, `partial`, `paused`, `failed`, `interrupted`.
    pub fn label(&self) -> &'static str {
        match self {
            CycleOutcome::Success { .. } => "success",
            CycleOutcome::Partial { .. } => "partial",
            CycleOutcome::Paused { .. } => "paused",
            CycleOutcome::Failed {
                kind: FailureKind::Interrupted,
                ..
            } => "interrupted",
            CycleOutcome::Failed { .. } => "failed",
        }
    }

    /// The engine's summary or error message.
    pub fn text(&self) -> &str {
        match self {
            CycleOutcome::Success { summary }
            | CycleOutcome::Partial { summary }
            | CycleOutcome::Paused { summary } => summary,
            CycleOutcome::Failed { message, .. } => message,
        }
    }

    pub(crate) fn interrupted(message: impl Into<String>) -> Self {
        CycleOutcome::Failed {
            kind: FailureKind::Interrupted,
            message: message.into(),
        }
    }
}

impl fmt::Display for CycleOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.label(), self.text())
    }
}

/// What a running cycle gets from the service.
#[derive(Debug, Clone)]
pub struct CycleContext {
    /// Cancelled when the daemon stops; the engine finishes or abandons in-flight files
    /// cleanly and returns (the daemon waits [`ServiceOptions::shutdown_grace`] for it).
    pub cancel: CancellationToken,
    /// Current phase and progress, shown in `systemctl status` and by `status`.
    pub status: StatusReporter,
}

/// The seam between the service and the sync engine.
pub trait CycleRunner: Send + Sync + 'static {
    /// Runs one cycle. Never called twice concurrently by the service.
    fn run_cycle(
        &self,
        request: CycleRequest,
        context: CycleContext,
    ) -> BoxFuture<'static, CycleOutcome>;
}

/// `[notify]`: who hears about finished cycles.
#[derive(Debug, Clone)]
pub struct HealthOptions {
    /// Pinged on success (and partial or paused runs); `<url>/fail` on failure.
    pub healthcheck_url: Option<String>,
    /// Run with `sh -c` after a failed cycle; the outcome is in `GPHOTOS_BACKUP_*` variables.
    pub on_failure_command: Option<String>,
    /// Bound on each ping; a slow monitor never delays or fails a cycle.
    pub ping_timeout: Duration,
    /// Bound on `on_failure_command`; it is killed after this.
    pub command_timeout: Duration,
}

impl Default for HealthOptions {
    fn default() -> Self {
        HealthOptions {
            healthcheck_url: None,
            on_failure_command: None,
            ping_timeout: Duration::from_secs(10),
            command_timeout: Duration::from_secs(120),
        }
    }
}

/// How to talk to systemd; [`SystemdOptions::from_env`] reads what systemd set.
#[derive(Debug, Clone, Default)]
pub struct SystemdOptions {
    /// `NOTIFY_SOCKET`: a path, or `@name` for an abstract socket. `None`: no notifications.
    pub notify_socket: Option<PathBuf>,
    /// `WATCHDOG_USEC`: WATCHDOG=1 is sent every half of it.
    pub watchdog_timeout: Option<Duration>,
}

impl SystemdOptions {
    pub fn from_env() -> Self {
        let mut usec = 0;
        // `false`: keep the variables; children we spawn get them removed explicitly.
        let watchdog_timeout = sd_notify::watchdog_enabled(false, &mut usec)
            .then(|| Duration::from_micros(usec))
            .filter(|d| !d.is_zero());
        SystemdOptions {
            notify_socket: std::env::var_os("NOTIFY_SOCKET").map(PathBuf::from),
            watchdog_timeout,
        }
    }
}

/// Everything the service needs; rebuilt from the config on SIGHUP.
#[derive(Clone)]
pub struct ServiceOptions {
    /// Holds `control.sock` and `daemon-last-success`. Not changed by a reload.
    pub state_dir: PathBuf,
    pub schedule: Schedule,
    pub health: HealthOptions,
    pub systemd: SystemdOptions,
    pub clock: Arc<dyn Clock>,
    /// How long a stop waits for the cancelled cycle; systemd's default stop timeout is
    /// 90 s, the issue promises 10 s.
    pub shutdown_grace: Duration,
}

impl fmt::Debug for ServiceOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceOptions")
            .field("state_dir", &self.state_dir)
            .field("schedule", &self.schedule)
            .field("health", &self.health)
            .field("systemd", &self.systemd)
            .field("shutdown_grace", &self.shutdown_grace)
            .finish_non_exhaustive()
    }
}

impl ServiceOptions {
    /// Default grace for a stop: the engine promises a few seconds; 8 s keeps the whole
    /// stop under the 10 s the issue allows.
    pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(8);

    /// Options for `state_dir` and `schedule` with everything else at its default
    /// (no systemd, no health pings, the real clock).
    pub fn new(state_dir: impl Into<PathBuf>, schedule: Schedule) -> Self {
        ServiceOptions {
            state_dir: state_dir.into(),
            schedule,
            health: HealthOptions::default(),
            systemd: SystemdOptions::default(),
            clock: Arc::new(SystemClock),
            shutdown_grace: Self::DEFAULT_SHUTDOWN_GRACE,
        }
    }

    /// Options from a validated config, with systemd settings from the environment.
    pub fn from_config(config: &Config) -> Result<Self, ServiceError> {
        let schedule = Schedule::new(&config.schedule.cron, config.schedule.timezone)?;
        let mut options = ServiceOptions::new(config.state_dir.clone(), schedule);
        options.health.healthcheck_url = config.notify.healthcheck_url.clone();
        options.health.on_failure_command = config.notify.on_failure_command.clone();
        options.systemd = SystemdOptions::from_env();
        Ok(options)
    }
}

/// Why the service could not start or a control request failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    #[error("the schedule {expression:?} never fires again; fix [schedule] cron")]
    NeverFires { expression: String },
    #[error("cannot use the state directory {path}: {source}")]
    StateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("control socket {path}: {source}")]
    Socket {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("another daemon is already running with this state directory (it answers on {path})")]
    AlreadyRunning { path: PathBuf },
    #[error("cannot install signal handlers: {0}")]
    Signals(#[source] std::io::Error),
    #[error("the daemon answered on {path} with something unexpected: {detail}")]
    Protocol { path: PathBuf, detail: String },
    #[error("the daemon refused the request: {0}")]
    Refused(String),
}
