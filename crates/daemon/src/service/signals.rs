//! Unix signals, turned into [`DaemonEvent`]s for the main loop.

use futures::StreamExt;
use signal_hook::consts::signal::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
use signal_hook_tokio::Signals;
use tokio::sync::mpsc;

use crate::service::{DaemonEvent, ServiceError};

/// What each handled signal asks of the daemon: SIGTERM/SIGINT stop, SIGHUP reloads,
/// SIGUSR1 runs a cycle now. Anything else is not ours.
pub fn event_for_signal(signal: i32) -> Option<DaemonEvent> {
    match signal {
        SIGTERM | SIGINT => Some(DaemonEvent::Shutdown),
        SIGHUP => Some(DaemonEvent::Reload),
        SIGUSR1 => Some(DaemonEvent::RunNow),
        _ => None,
    }
}

/// Installs the handlers and forwards signals as events until the receiver is gone.
/// From here on SIGTERM no longer kills the process by default: the main loop must stop.
pub(crate) fn forward_signals(
    events: mpsc::Sender<DaemonEvent>,
) -> Result<tokio::task::JoinHandle<()>, ServiceError> {
    let mut signals =
        Signals::new([SIGTERM, SIGINT, SIGHUP, SIGUSR1]).map_err(ServiceError::Signals)?;
    let handle = signals.handle();
    Ok(tokio::spawn(async move {
        while let Some(signal) = signals.next().await {
            let Some(event) = event_for_signal(signal) else {
                continue;
            };
            tracing::debug!(signal, ?event, "signal received");
            if events.send(event).await.is_err() {
                break;
            }
        }
        handle.close();
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_map_to_events() {
        assert_eq!(event_for_signal(SIGTERM), Some(DaemonEvent::Shutdown));
        assert_eq!(event_for_signal(SIGINT), Some(DaemonEvent::Shutdown));
        assert_eq!(event_for_signal(SIGHUP), Some(DaemonEvent::Reload));
        assert_eq!(event_for_signal(SIGUSR1), Some(DaemonEvent::RunNow));
        assert_eq!(event_for_signal(signal_hook::consts::signal::SIGUSR2), None);
    }
}
