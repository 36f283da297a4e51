//! Retry policy: which failures to retry and how long to wait (spec §1.5, Google's best practices).

use std::time::Duration;

use crate::error::Error;

/// The longest `Retry-After` honoured: a proxy's `Retry-After: 86400` must not park a run,
/// which holds the index, for a day.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// How failed requests are retried.
///
/// - 5xx and broken connections: exponential backoff from `base_delay` (1 s, 2 s, 4 s, …,
///   capped at `max_delay`) plus up to `max_jitter` of random jitter, so many clients do not
///   retry in lock-step; a longer `Retry-After` wins, up to [`MAX_RETRY_AFTER`].
/// - Per-minute 429: at least `rate_limit_delay` (30 s), or `Retry-After` if longer.
/// - Other 4xx and the daily quota: never retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts including the first (so `max_attempts - 1` retries).
    pub max_attempts: u32,
    /// First backoff delay.
    pub base_delay: Duration,
    /// Backoff cap (before jitter).
    pub max_delay: Duration,
    /// Largest random delay added to each wait.
    pub max_jitter: Duration,
    /// Minimum wait after a per-minute 429.
    pub rate_limit_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(64),
            max_jitter: Duration::from_secs(1),
            rate_limit_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn no_retries() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The wait before retry number `retry` (0 for the first retry) after `error`, or `None`
    /// if the error must not be retried or the attempts are used up.
    ///
    /// `jitter` in `[0, 1)` scales `max_jitter`; production passes a random number, tests a
    /// fixed one.
    pub fn delay_for(&self, error: &Error, retry: u32, jitter: f64) -> Option<Duration> {
        if !error.is_retryable() || retry.saturating_add(1) >= self.max_attempts {
            return None;
        }
        let jitter = self.max_jitter.mul_f64(jitter.clamp(0.0, 1.0));
        let backoff = self.backoff(retry);
        let floor = match error {
            Error::RateLimited { .. } => self.rate_limit_delay.max(backoff),
            _ => backoff,
        };
        // A proxy's `Retry-After: 86400` must not park a run (holding the index) for a day:
        // honour it up to the longest backoff, and never overflow.
        let wait = error
            .retry_after()
            .map_or(floor, |ra| ra.min(MAX_RETRY_AFTER).max(floor));
        Some(wait.saturating_add(jitter))
    }

    fn backoff(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.min(31));
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// A uniformly random jitter fraction in `[0, 1)`.
pub(crate) fn random_jitter() -> f64 {
    rand::random::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_error() -> Error {
        Error::Api {
            http_status: 503,
            status: Some("UNAVAILABLE".into()),
            message: "x".into(),
            retry_after: None,
        }
    }

    #[test]
    fn server_errors_back_off_exponentially_from_one_second() {
        let p = RetryPolicy::default();
        let delays: Vec<_> = (0..5)
            .map(|n| p.delay_for(&server_error(), n, 0.0).unwrap())
            .collect();
        assert_eq!(delays, [1, 2, 4, 8, 16].map(Duration::from_secs).to_vec());
    }

    #[test]
    fn jitter_adds_at_most_max_jitter() {
        let p = RetryPolicy::default();
        let d = p.delay_for(&server_error(), 1, 0.999).unwrap();
        assert!(
            d >= Duration::from_secs(2) && d < Duration::from_secs(3),
            "{d:?}"
        );
    }

    #[test]
    fn backoff_is_capped() {
        let p = RetryPolicy {
            max_attempts: 100,
            ..RetryPolicy::default()
        };
        assert_eq!(
            p.delay_for(&server_error(), 40, 0.0),
            Some(Duration::from_secs(64))
        );
    }

    #[test]
    fn rate_limit_waits_at_least_30_seconds() {
        let p = RetryPolicy::default();
        let e = Error::RateLimited {
            message: "per minute".into(),
            retry_after: Some(Duration::from_secs(2)),
        };
        assert_eq!(p.delay_for(&e, 0, 0.0), Some(Duration::from_secs(30)));
        let e = Error::RateLimited {
            message: "per minute".into(),
            retry_after: Some(Duration::from_secs(90)),
        };
        assert_eq!(p.delay_for(&e, 0, 0.0), Some(Duration::from_secs(90)));
    }

    #[test]
    fn retry_after_on_503_is_honoured() {
        let p = RetryPolicy::default();
        let e = Error::Api {
            http_status: 503,
            status: None,
            message: String::new(),
            retry_after: Some(Duration::from_secs(7)),
        };
        assert_eq!(p.delay_for(&e, 0, 0.0), Some(Duration::from_secs(7)));
    }

    #[test]
    fn huge_retry_after_is_capped_and_never_overflows() {
        let p = RetryPolicy::default();
        for secs in [86_400, u64::MAX] {
            let e = Error::Api {
                http_status: 503,
                status: None,
                message: String::new(),
                retry_after: Some(Duration::from_secs(secs)),
            };
            let wait = p.delay_for(&e, 0, 1.0).unwrap();
            assert!(wait <= MAX_RETRY_AFTER + p.max_jitter, "{wait:?}");
            assert!(wait >= MAX_RETRY_AFTER);
        }
    }

    #[test]
    fn attempts_are_bounded() {
        let p = RetryPolicy {
            max_attempts: 3,
            ..RetryPolicy::default()
        };
        assert!(p.delay_for(&server_error(), 0, 0.0).is_some());
        assert!(p.delay_for(&server_error(), 1, 0.0).is_some());
        assert!(p.delay_for(&server_error(), 2, 0.0).is_none());
    }

    #[test]
    fn client_errors_and_daily_quota_are_not_retried() {
        let p = RetryPolicy::default();
        let bad_request = Error::Api {
            http_status: 400,
            status: Some("INVALID_ARGUMENT".into()),
            message: String::new(),
            retry_after: None,
        };
        assert_eq!(p.delay_for(&bad_request, 0, 0.0), None);
        let daily = Error::DailyQuotaExhausted {
            message: String::new(),
        };
        assert_eq!(p.delay_for(&daily, 0, 0.0), None);
        assert_eq!(p.delay_for(&Error::BaseUrlExpired, 0, 0.0), None);
    }
}
