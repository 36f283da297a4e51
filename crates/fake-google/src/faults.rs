//! Switchable faults per endpoint kind (spec §6.1).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::rng::SplitMix64;

/// The endpoint a request was classified as. Faults and statistics are keyed by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EndpointKind {
    /// `GET /accounts/o/oauth2/v2/auth` (consent screen).
    OAuthAuthorize,
    /// `POST /oauth2/token`.
    OAuthToken,
    /// `POST /oauth2/revoke`.
    OAuthRevoke,
    /// `POST /oauth2/device/code` (device authorization flow).
    OAuthDeviceCode,
    /// `GET /library/v1/mediaItems`.
    LibraryList,
    /// `POST /library/v1/mediaItems:search`.
    LibrarySearch,
    /// `GET /library/v1/mediaItems/{id}`.
    LibraryGet,
    /// `GET /library/v1/mediaItems:batchGet`.
    LibraryBatchGet,
    /// `GET /library/v1/albums`.
    LibraryAlbumsList,
    /// `GET /library/v1/albums/{id}`.
    LibraryAlbumsGet,
    /// Shared-album and share/unshare methods (always 403).
    LibrarySharedAlbums,
    /// Any other `/library/...` path.
    LibraryOther,
    /// `POST /picker/v1/sessions`.
    PickerCreateSession,
    /// `GET /picker/v1/sessions/{id}`.
    PickerGetSession,
    /// `DELETE /picker/v1/sessions/{id}`.
    PickerDeleteSession,
    /// `GET /picker/v1/mediaItems`.
    PickerListItems,
    /// Any other `/picker/...` path.
    PickerOther,
    /// A base URL fetch under `/media/`.
    Media,
    /// Anything else.
    Other,
}

impl EndpointKind {
    /// Library API endpoints (count against the daily request quota).
    pub fn is_library(self) -> bool {
        matches!(
            self,
            EndpointKind::LibraryList
                | EndpointKind::LibrarySearch
                | EndpointKind::LibraryGet
                | EndpointKind::LibraryBatchGet
                | EndpointKind::LibraryAlbumsList
                | EndpointKind::LibraryAlbumsGet
                | EndpointKind::LibrarySharedAlbums
                | EndpointKind::LibraryOther
        )
    }

    /// Picker API endpoints.
    pub fn is_picker(self) -> bool {
        matches!(
            self,
            EndpointKind::PickerCreateSession
                | EndpointKind::PickerGetSession
                | EndpointKind::PickerDeleteSession
                | EndpointKind::PickerListItems
                | EndpointKind::PickerOther
        )
    }

    /// OAuth endpoints (flat error bodies instead of google.rpc.Status).
    pub fn is_oauth(self) -> bool {
        matches!(
            self,
            EndpointKind::OAuthAuthorize
                | EndpointKind::OAuthToken
                | EndpointKind::OAuthRevoke
                | EndpointKind::OAuthDeviceCode
        )
    }
}

/// What goes wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 429 RESOURCE_EXHAUSTED with the per-minute quota message and, if set, `Retry-After`.
    RateLimited {
        /// Value of the `Retry-After` header, in whole seconds.
        retry_after: Option<Duration>,
    },
    /// 429 RESOURCE_EXHAUSTED with the per-day quota message.
    DailyQuotaExceeded,
    /// 500 INTERNAL.
    Internal,
    /// 503 UNAVAILABLE.
    Unavailable,
    /// The real response's headers (with its full Content-Length) and its first `after_bytes`
    /// body bytes, then the connection is aborted, so the client sees a short body. With
    /// `after_bytes` at or beyond the body length the body completes and only the connection
    /// drops; keep it below the size of the response under test.
    ResetMidBody {
        /// Body bytes sent before the abort.
        after_bytes: usize,
    },
    /// The real response, trickled in `chunk_bytes` pieces with `delay` (real time) between them.
    SlowBody {
        /// Size of each piece.
        chunk_bytes: usize,
        /// Pause between pieces.
        delay: Duration,
    },
    /// Wait this long (real time) before handling the request at all.
    Delay(Duration),
}

/// When a fault fires, counted over requests to its endpoint kind after injection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Schedule {
    /// Every request.
    Always,
    /// The next N requests, then never again.
    Next(u32),
    /// Every Nth request (the Nth, 2Nth, …).
    EveryNth(u32),
    /// Each request independently with probability `p`, from a seeded generator (reproducible).
    Probability {
        /// Probability in 0..=1.
        p: f64,
        /// Seed of this rule's generator.
        seed: u64,
    },
}

#[derive(Debug)]
struct Rule {
    kind: EndpointKind,
    fault: Fault,
    schedule: Schedule,
    seen: u64,
    fired: u64,
    rng: SplitMix64,
}

/// Handle to the fault table of a running fake. Cloning shares the table.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    rules: Arc<Mutex<Vec<Rule>>>,
}

impl Faults {
    /// Adds a rule. Several rules may match one request; the first injected that fires wins.
    pub fn inject(&self, kind: EndpointKind, fault: Fault, schedule: Schedule) {
        let seed = match schedule {
            Schedule::Probability { seed, .. } => seed,
            _ => 0,
        };
        self.lock().push(Rule {
            kind,
            fault,
            schedule,
            seen: 0,
            fired: 0,
            rng: SplitMix64::new(seed),
        });
    }

    /// Removes every rule.
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// Removes the rules for one endpoint kind.
    pub fn clear_kind(&self, kind: EndpointKind) {
        self.lock().retain(|r| r.kind != kind);
    }

    /// Decides whether the current request to `kind` gets a fault.
    pub(crate) fn check(&self, kind: EndpointKind) -> Option<Fault> {
        let mut rules = self.lock();
        let mut hit = None;
        // Every matching rule sees the request, so each schedule counts independently.
        for r in rules.iter_mut().filter(|r| r.kind == kind) {
            r.seen += 1;
            let fires = match r.schedule {
                Schedule::Always => true,
                Schedule::Next(n) => r.fired < u64::from(n),
                Schedule::EveryNth(n) => n > 0 && r.seen % u64::from(n) == 0,
                Schedule::Probability { p, .. } => r.rng.chance(p),
            };
            if fires && hit.is_none() {
                r.fired += 1;
                hit = Some(r.fault);
            }
        }
        hit
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Rule>> {
        self.rules.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules() {
        let f = Faults::default();
        f.inject(EndpointKind::Media, Fault::Internal, Schedule::Next(2));
        let got: Vec<bool> = (0..4)
            .map(|_| f.check(EndpointKind::Media).is_some())
            .collect();
        assert_eq!(got, [true, true, false, false]);
        assert_eq!(f.check(EndpointKind::LibraryList), None);
        f.clear();
        f.inject(
            EndpointKind::Media,
            Fault::Unavailable,
            Schedule::EveryNth(3),
        );
        let got: Vec<bool> = (0..6)
            .map(|_| f.check(EndpointKind::Media).is_some())
            .collect();
        assert_eq!(got, [false, false, true, false, false, true]);
        f.clear();
        f.inject(
            EndpointKind::Media,
            Fault::Unavailable,
            Schedule::Probability { p: 0.5, seed: 9 },
        );
        let n = (0..1000)
            .filter(|_| f.check(EndpointKind::Media).is_some())
            .count();
        assert!((400..600).contains(&n), "{n}");
    }
}
