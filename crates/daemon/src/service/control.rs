//! The control socket `state_dir/control.sock`: how `--run-now` and `status` reach a
//! running daemon. One JSON object per line; one request, one reply per connection:
//!
//! ```text
//! -> {"command":"run_now","rescan":false}
//! <- {"reply":"outcome","outcome":{"outcome":"success","summary":"12 new items"}}
//! -> {"command":"status"}
//! <- {"reply":"status","status":{"pid":812,"running":null,"phase":"idle",...}}
//! <- {"reply":"error","message":"..."}            (a request it cannot read)
//! ```
//!
//! The socket is mode 0600, so only the daemon's user (or root) can trigger runs.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use crate::service::{CycleOutcome, CycleRequest, ServiceError};

pub(crate) const SOCKET_FILE: &str = "control.sock";
/// Requests are tiny; a peer sending more is not a client of ours.
const MAX_LINE: u64 = 64 * 1024;
/// A peer that connects and says nothing must not hold a task forever.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
enum Request {
    RunNow {
        #[serde(default)]
        rescan: bool,
    },
    Status,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
enum Reply {
    Outcome { outcome: CycleOutcome },
    Status { status: DaemonStatus },
    Error { message: String },
}

/// What a running daemon says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonStatus {
    pub pid: u32,
    /// The cycle running now, if any.
    pub running: Option<CycleRequest>,
    /// The latest [`crate::service::StatusReporter`] text.
    pub phase: String,
    /// Cycles started since the daemon started (joined triggers do not count).
    pub cycles_started: u64,
    /// Triggers that arrived during a cycle and waited for it instead of starting another.
    pub triggers_joined: u64,
    pub next_run: Option<DateTime<Utc>>,
    pub last_success: Option<DateTime<Utc>>,
    /// The cron expression and zone in force (after any reload).
    pub schedule: String,
    pub timezone: String,
}

/// The daemon side of the protocol.
pub(crate) trait ControlHandler: Send + Sync + 'static {
    fn run_now(&self, rescan: bool) -> BoxFuture<'static, CycleOutcome>;
    fn status(&self) -> DaemonStatus;
}

pub(crate) fn socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join(SOCKET_FILE)
}

/// Binds `state_dir/control.sock`, replacing a stale socket file left by a daemon that
/// died, and refusing when a live daemon answers on it.
pub(crate) async fn bind(state_dir: &Path) -> Result<UnixListener, ServiceError> {
    let path = socket_path(state_dir);
    let socket_error = |source: io::Error| ServiceError::Socket {
        path: path.clone(),
        source,
    };
    match UnixStream::connect(&path).await {
        Ok(_) => return Err(ServiceError::AlreadyRunning { path }),
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(_) => {
            // A file nobody listens on: the previous daemon did not clean up.
            tracing::info!(socket = %path.display(), "removing a stale control socket");
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => return Err(socket_error(err)),
            }
        }
    }
    // Bind under a private name, restrict it, then rename into place: nobody can connect
    // to the socket while it still has the default (umask-derived) mode.
    let temp = state_dir.join(format!(".{SOCKET_FILE}.{}", std::process::id()));
    let _ = std::fs::remove_file(&temp);
    let listener = UnixListener::bind(&temp).map_err(socket_error)?;
    let placed = std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o600))
        .and_then(|()| std::fs::rename(&temp, &path));
    if let Err(err) = placed {
        let _ = std::fs::remove_file(&temp);
        return Err(socket_error(err));
    }
    Ok(listener)
}

/// Answers one connection.
pub(crate) async fn serve(stream: UnixStream, handler: Arc<dyn ControlHandler>) {
    let (read, mut write) = stream.into_split();
    let reply = match tokio::time::timeout(REQUEST_TIMEOUT, read_line(read)).await {
        Err(_) => return,
        Ok(Err(err)) => {
            tracing::debug!("control connection: {err}");
            return;
        }
        Ok(Ok(None)) => return,
        Ok(Ok(Some(line))) => match serde_json::from_str::<Request>(&line) {
            Ok(Request::RunNow { rescan }) => {
                tracing::info!(rescan, "run requested over the control socket");
                Reply::Outcome {
                    outcome: handler.run_now(rescan).await,
                }
            }
            Ok(Request::Status) => Reply::Status {
                status: handler.status(),
            },
            Err(err) => Reply::Error {
                message: format!("unreadable request: {err}"),
            },
        },
    };
    if let Err(err) = write_json(&mut write, &reply).await {
        // The client gave up waiting (Ctrl-C on --run-now): the cycle runs on regardless.
        tracing::debug!("control reply not delivered: {err}");
    }
}

async fn read_line(read: impl AsyncRead + Unpin) -> io::Result<Option<String>> {
    let mut reader = BufReader::new(read.take(MAX_LINE));
    let mut line = String::new();
    if reader.read_line(&mut line).await? == 0 {
        return Ok(None);
    }
    Ok(Some(line))
}

async fn write_json(
    write: &mut (impl AsyncWriteExt + Unpin),
    value: &impl Serialize,
) -> io::Result<()> {
    let mut line = serde_json::to_vec(value).map_err(io::Error::other)?;
    line.push(b'\n');
    write.write_all(&line).await?;
    write.flush().await
}

/// Asks the daemon using `state_dir` to run a cycle now and waits for its outcome (which
/// may be the outcome of a cycle that was already running: the daemon never runs two).
/// `Ok(None)`: no daemon is listening (no socket, or a stale one); run in-process.
pub async fn request_run_now(
    state_dir: &Path,
    rescan: bool,
) -> Result<Option<CycleOutcome>, ServiceError> {
    let path = socket_path(state_dir);
    match exchange(&path, &Request::RunNow { rescan }).await? {
        None => Ok(None),
        Some(Reply::Outcome { outcome }) => Ok(Some(outcome)),
        Some(Reply::Error { message }) => Err(ServiceError::Refused(message)),
        Some(other) => Err(ServiceError::Protocol {
            path,
            detail: format!("{other:?}"),
        }),
    }
}

/// Asks the daemon using `state_dir` how it is doing. `Ok(None)`: no daemon is listening.
pub async fn request_status(state_dir: &Path) -> Result<Option<DaemonStatus>, ServiceError> {
    let path = socket_path(state_dir);
    match exchange(&path, &Request::Status).await? {
        None => Ok(None),
        Some(Reply::Status { status }) => Ok(Some(status)),
        Some(Reply::Error { message }) => Err(ServiceError::Refused(message)),
        Some(other) => Err(ServiceError::Protocol {
            path,
            detail: format!("{other:?}"),
        }),
    }
}

async fn exchange(path: &Path, request: &Request) -> Result<Option<Reply>, ServiceError> {
    let socket_error = |source: io::Error| ServiceError::Socket {
        path: path.to_path_buf(),
        source,
    };
    let stream = match UnixStream::connect(path).await {
        Ok(stream) => stream,
        // No file, or a file nobody listens on (the daemon died): no daemon.
        Err(err)
            if matches!(
                err.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None);
        }
        Err(err) => return Err(socket_error(err)),
    };
    let (read, mut write) = stream.into_split();
    write_json(&mut write, request)
        .await
        .map_err(socket_error)?;
    // No timeout: a cycle may legitimately take hours, and the daemon answers when done.
    let line = read_line(read).await.map_err(socket_error)?;
    let Some(line) = line else {
        return Err(ServiceError::Protocol {
            path: path.to_path_buf(),
            detail: "the daemon closed the connection without answering (did it stop?)".into(),
        });
    };
    serde_json::from_str(&line)
        .map(Some)
        .map_err(|err| ServiceError::Protocol {
            path: path.to_path_buf(),
            detail: format!("{err}: {}", line.trim_end()),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format_is_stable() {
        let request = serde_json::to_string(&Request::RunNow { rescan: true }).unwrap();
        assert_eq!(request, r#"{"command":"run_now","rescan":true}"#);
        let reply = Reply::Outcome {
            outcome: CycleOutcome::Partial {
                summary: "2 failed".into(),
            },
        };
        assert_eq!(
            serde_json::to_string(&reply).unwrap(),
            r#"{"reply":"outcome","outcome":{"outcome":"partial","summary":"2 failed"}}"#
        );
        // `rescan` may be left out by hand-written clients (`socat`).
        let parsed: Request = serde_json::from_str(r#"{"command":"run_now"}"#).unwrap();
        assert!(matches!(parsed, Request::RunNow { rescan: false }));
    }
}
