//! Wall-clock time and waiting, injectable so schedule behaviour is tested without waiting.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use tokio::sync::watch;

/// The longest a [`SystemClock`] sleep lasts before the caller re-reads the clock. Tokio
/// timers run on the monotonic clock, which stops during suspend and ignores wall-clock
/// corrections; re-checking every minute bounds how late a cycle can start after either,
/// at one wake-up a minute (no measurable CPU).
pub const MAX_SLEEP: StdDuration = StdDuration::from_secs(60);

/// Where the daemon gets "now" and how it waits for a wall-clock instant.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;

    /// Resolves at `deadline` or earlier; callers compare [`Clock::now`] with the deadline
    /// again before acting, so an early wake-up is harmless.
    fn sleep_until(&self, deadline: DateTime<Utc>) -> BoxFuture<'static, ()>;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> BoxFuture<'static, ()> {
        let wait = (deadline - Utc::now())
            .to_std()
            .unwrap_or(StdDuration::ZERO)
            .min(MAX_SLEEP);
        Box::pin(tokio::time::sleep(wait))
    }
}

/// A clock that only moves when told to; sleepers wake when it passes their deadline.
/// For tests of the schedule and catch-up logic.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<watch::Sender<DateTime<Utc>>>,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        ManualClock {
            now: Arc::new(watch::Sender::new(start)),
        }
    }

    /// Moves the clock to `to` (never backwards) and wakes every sleeper it passes.
    pub fn set(&self, to: DateTime<Utc>) {
        self.now.send_if_modified(|now| {
            if to > *now {
                *now = to;
                true
            } else {
                false
            }
        });
    }

    pub fn advance(&self, by: chrono::Duration) {
        let to = *self.now.borrow() + by;
        self.set(to);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.borrow()
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> BoxFuture<'static, ()> {
        let mut receiver = self.now.subscribe();
        Box::pin(async move {
            // The sender lives as long as any ManualClock clone; if all are gone, nobody
            // can move time any more and the sleep never ends, like a real far deadline.
            if receiver.wait_for(|now| *now >= deadline).await.is_err() {
                futures::future::pending::<()>().await;
            }
        })
    }
}
