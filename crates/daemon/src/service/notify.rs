//! systemd's notify protocol (sd_notify(3)): one datagram per state change on
//! `NOTIFY_SOCKET`. Messages are formatted by the sd-notify crate; we send them ourselves
//! because its `notify()` only reads the socket from the process environment, which tests
//! cannot set safely, and it does not handle abstract (`@name`) sockets.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sd_notify::NotifyState;
use tokio::sync::watch;

/// Sends notifications when systemd asked for them; does nothing otherwise.
#[derive(Debug, Clone, Default)]
pub(crate) struct Notifier {
    socket: Option<Arc<PathBuf>>,
}

impl Notifier {
    pub(crate) fn new(socket: Option<PathBuf>) -> Self {
        Notifier {
            socket: socket.map(Arc::new),
        }
    }

    /// Best effort: a missing or full socket must never stop the daemon, so failures are
    /// only logged.
    pub(crate) fn send(&self, states: &[NotifyState<'_>]) {
        let Some(path) = &self.socket else { return };
        let message: String = states.iter().map(|s| format!("{s}\n")).collect();
        if let Err(err) = send_datagram(path, message.as_bytes()) {
            tracing::debug!(socket = %path.display(), "systemd notification not delivered: {err}");
        }
    }
}

fn send_datagram(path: &Path, message: &[u8]) -> io::Result<()> {
    let socket = UnixDatagram::unbound()?;
    // The receiver's queue is short (net.unix.max_dgram_qlen, 10 by default): when the
    // manager is slow to read, drop this notification rather than stall the main loop.
    socket.set_nonblocking(true)?;
    let bytes = path.as_os_str().as_encoded_bytes();
    let sent = match bytes.strip_prefix(b"@") {
        #[cfg(target_os = "linux")]
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            let address = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            socket.send_to_addr(message, &address)?
        }
        #[cfg(not(target_os = "linux"))]
        Some(_) => {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "abstract sockets exist only on Linux",
            ));
        }
        None => socket.send_to(message, path)?,
    };
    if sent == message.len() {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "incomplete datagram",
        ))
    }
}

/// The current phase and progress of the daemon, in a line a human reads in
/// `systemctl status`. Cheap to clone and to call often: systemd hears the latest text at
/// most once per [`StatusReporter::MIN_INTERVAL`].
#[derive(Debug, Clone)]
pub struct StatusReporter {
    text: Arc<watch::Sender<String>>,
}

impl Default for StatusReporter {
    fn default() -> Self {
        StatusReporter::new()
    }
}

impl StatusReporter {
    /// Rate limit for STATUS= datagrams; per-file progress would otherwise flood systemd.
    pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

    pub fn new() -> Self {
        StatusReporter {
            text: Arc::new(watch::Sender::new(String::new())),
        }
    }

    /// Replaces the status line, e.g. `downloading 120/4000 (1.2 GB)`.
    pub fn set(&self, text: impl Into<String>) {
        let text = text.into();
        self.text.send_if_modified(|current| {
            if *current == text {
                false
            } else {
                *current = text;
                true
            }
        });
    }

    pub fn get(&self) -> String {
        self.text.borrow().clone()
    }

    /// Forwards every change to systemd until the reporter is dropped. Sleeps between
    /// changes (no polling); coalesces bursts into the latest text.
    pub(crate) fn forward_to(&self, notifier: Notifier) -> tokio::task::JoinHandle<()> {
        let mut changes = self.text.subscribe();
        tokio::spawn(async move {
            while changes.changed().await.is_ok() {
                let text = changes.borrow_and_update().clone();
                notifier.send(&[NotifyState::Status(&text)]);
                tokio::time::sleep(Self::MIN_INTERVAL).await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_reach_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let receiver = UnixDatagram::bind(&path).unwrap();
        Notifier::new(Some(path)).send(&[NotifyState::Ready, NotifyState::Status("up")]);
        let mut buf = [0u8; 256];
        let n = receiver.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=up\n");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn datagrams_reach_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("gphotos-backup-test-{}", std::process::id());
        let address = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let receiver = UnixDatagram::bind_addr(&address).unwrap();
        Notifier::new(Some(PathBuf::from(format!("@{name}")))).send(&[NotifyState::Stopping]);
        let mut buf = [0u8; 64];
        let n = receiver.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1\n");
    }

    #[test]
    fn a_full_receiver_never_blocks_the_sender() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let receiver = UnixDatagram::bind(&path).unwrap();
        let notifier = Notifier::new(Some(path));
        // Far more than any queue holds; with a blocking socket this would hang.
        for _ in 0..10_000 {
            notifier.send(&[NotifyState::Watchdog]);
        }
        let mut buf = [0u8; 64];
        let n = receiver.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"WATCHDOG=1\n");
    }

    #[test]
    fn no_socket_means_no_error() {
        Notifier::new(None).send(&[NotifyState::Ready]);
        let dir = tempfile::tempdir().unwrap();
        // Nobody listens: logged, not raised.
        Notifier::new(Some(dir.path().join("absent"))).send(&[NotifyState::Ready]);
    }

    #[test]
    fn status_reporter_keeps_the_latest_text() {
        let status = StatusReporter::new();
        status.set("listing");
        status.set("downloading 3/10");
        assert_eq!(status.get(), "downloading 3/10");
    }
}
