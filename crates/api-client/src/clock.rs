//! Time, injectable: the real clock for production, a manual one for tests.
//!
//! Every delay the client takes (retry backoff) and every expiry decision (access-token
//! refresh) goes through a [`Clock`], so tests can assert "waited ≥ 30 s" without waiting.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;

/// A source of "now" and of sleeps.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current wall-clock time.
    fn now(&self) -> DateTime<Utc>;
    /// Waits for `duration`.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;
}

/// The system clock and `tokio::time::sleep`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// A clock for tests: sleeps return at once, are recorded, and move "now" forward.
///
/// Share it with `Arc` between the client and the test; [`ManualClock::sleeps`] returns every
/// delay the client asked for, in order.
#[derive(Debug)]
pub struct ManualClock {
    state: Mutex<ManualState>,
}

#[derive(Debug)]
struct ManualState {
    now: DateTime<Utc>,
    sleeps: Vec<Duration>,
}

impl ManualClock {
    /// A clock starting at `start`.
    pub fn new(start: DateTime<Utc>) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(ManualState {
                now: start,
                sleeps: Vec::new(),
            }),
        })
    }

    /// A clock starting at the current system time.
    pub fn starting_now() -> Arc<Self> {
        Self::new(Utc::now())
    }

    /// Moves "now" forward without recording a sleep.
    pub fn advance(&self, by: Duration) {
        let mut state = self.lock();
        state.now += chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX);
    }

    /// Every sleep requested so far, in order.
    pub fn sleeps(&self) -> Vec<Duration> {
        self.lock().sleeps.clone()
    }

    /// Forgets the recorded sleeps.
    pub fn clear_sleeps(&self) {
        self.lock().sleeps.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ManualState> {
        // A panicking test thread must not hide the data from the others.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        self.lock().now
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        {
            let mut state = self.lock();
            state.sleeps.push(duration);
            state.now += chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX);
        }
        Box::pin(std::future::ready(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn manual_clock_records_sleeps_and_advances() {
        let start = Utc::now();
        let clock = ManualClock::new(start);
        clock.sleep(Duration::from_secs(30)).await;
        clock.advance(Duration::from_secs(5));
        assert_eq!(clock.sleeps(), vec![Duration::from_secs(30)]);
        assert_eq!(clock.now() - start, chrono::Duration::seconds(35));
    }
}
