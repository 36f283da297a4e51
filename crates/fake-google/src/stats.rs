//! Request statistics, for assertions and benchmark reports.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};

use crate::faults::EndpointKind;

/// Entries kept in the request log; older ones are dropped so benchmarks stay bounded.
const LOG_CAP: usize = 100_000;

/// One answered request, for asserting client timing (e.g. back-off after 429/5xx).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// Endpoint kind.
    pub kind: EndpointKind,
    /// HTTP method.
    pub method: String,
    /// Path without the query (tokens never appear in it).
    pub path: String,
    /// Response status.
    pub status: u16,
    /// Fake-clock time of the request.
    pub fake_time: DateTime<Utc>,
    /// Tokio's monotonic time the response was produced: real time, or virtual time under
    /// `tokio::time::pause()`, so a client test can check it waited 30 s after a 429 without
    /// waiting 30 s.
    pub at: tokio::time::Instant,
}

/// A snapshot of what the fake has served so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Requests per endpoint kind (faulted ones included).
    pub requests: BTreeMap<EndpointKind, u64>,
    /// Responses per HTTP status code.
    pub statuses: BTreeMap<u16, u64>,
    /// Base URL fetches.
    pub media_requests: u64,
    /// Media body bytes handed to the connection (a reset counts what was sent before it).
    pub media_bytes: u64,
    /// 429 responses sent (injected or quota).
    pub rate_limited: u64,
    /// Injected faults that fired.
    pub faults_fired: u64,
    /// Access tokens issued (code, refresh and test-hook grants).
    pub access_tokens_issued: u64,
}

impl Stats {
    /// Requests to one endpoint kind.
    pub fn requests_to(&self, kind: EndpointKind) -> u64 {
        self.requests.get(&kind).copied().unwrap_or(0)
    }

    /// All requests.
    pub fn total_requests(&self) -> u64 {
        self.requests.values().sum()
    }

    /// Responses with this HTTP status.
    pub fn responses_with(&self, status: u16) -> u64 {
        self.statuses.get(&status).copied().unwrap_or(0)
    }
}

/// Counters, the request log, and a notification on every change (so tests wait for an
/// event instead of polling with sleeps).
#[derive(Debug, Clone, Default)]
pub(crate) struct StatsCell(
    Arc<Mutex<Stats>>,
    Arc<Mutex<VecDeque<RequestRecord>>>,
    Arc<tokio::sync::Notify>,
);

impl StatsCell {
    pub(crate) fn log(&self, record: RequestRecord) {
        let mut log = self.1.lock().unwrap_or_else(PoisonError::into_inner);
        if log.len() == LOG_CAP {
            log.pop_front();
        }
        log.push_back(record);
    }

    pub(crate) fn request_log(&self) -> Vec<RequestRecord> {
        self.1
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }

    pub(crate) fn update(&self, f: impl FnOnce(&mut Stats)) {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner));
        self.2.notify_waiters();
    }

    /// Returns once `condition` holds for the counters.
    pub(crate) async fn wait_until(&self, condition: impl Fn(&Stats) -> bool) {
        loop {
            let changed = self.2.notified();
            tokio::pin!(changed);
            // Registered before the check, so a change between check and await is not lost.
            changed.as_mut().enable();
            if condition(&self.snapshot()) {
                return;
            }
            changed.await;
        }
    }

    pub(crate) fn snapshot(&self) -> Stats {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn reset(&self) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Stats::default();
        self.1
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}
