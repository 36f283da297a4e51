//! Configuration of a [`crate::FakeGoogle`] instance.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

/// Everything that shapes a fake: the generated library, the quirks it shows and the policies it
/// follows where Google's behaviour varies or is undocumented.
#[derive(Debug, Clone)]
pub struct FakeConfig {
    /// Seed of every generated thing (items, albums, media bytes). Same seed, same library.
    pub seed: u64,
    /// Number of generated media items owned by the fake's OAuth client (visible to the Library API).
    /// The special edge-case items (odd names, duplicates, …) are part of this count when it is large
    /// enough (at least 24).
    pub items: usize,
    /// Number of generated albums (app-created; overlapping membership, one empty album when ≥ 3).
    pub albums: usize,
    /// Items owned by another client: invisible to the Library API (post-2025 rule, spec §6.2) but
    /// pickable through the Picker API.
    pub foreign_items: usize,
    /// Capture times spread over this many years before [`FakeConfig::clock_start`].
    pub years: u32,
    /// Initial value of the fake clock.
    pub clock_start: DateTime<Utc>,
    /// Minimum and maximum size in bytes of a generated photo file.
    pub photo_bytes: (usize, usize),
    /// Minimum and maximum size in bytes of a generated video file.
    pub video_bytes: (usize, usize),
    /// Short and empty list pages that still carry a `nextPageToken` (spec §6.2).
    pub page_quirks: PageQuirks,
    /// What happens to the scopes Google removed on 2025-03-31 (spec §6.5).
    pub removed_scope_policy: RemovedScopePolicy,
    /// OAuth app in "Testing" publishing status: refresh tokens die 7 days after issue (spec §4.4).
    pub testing_mode: bool,
    /// What the scripted user does on the consent screen.
    pub consent: ConsentBehaviour,
    /// Daily/minute quotas; `None` disables a quota.
    pub quotas: Quotas,
    /// How `mediaItems.get`/`batchGet` report an unknown or foreign id (both seen in the wild).
    pub missing_item: MissingItemResponse,
    /// What `=dv` on a still-PROCESSING video returns.
    pub processing_video: ProcessingVideoResponse,
    /// Picker session behaviour.
    pub picker: PickerConfig,
    /// Device authorization flow behaviour (spec §4.5, §6.5).
    pub device_flow: DeviceFlowConfig,
    /// How long a media base URL stays valid after issue (Google: about 60 minutes).
    pub base_url_ttl: Duration,
    /// Port to bind on 127.0.0.1; 0 picks a free one.
    pub port: u16,
}

impl Default for FakeConfig {
    /// 300 items over 5 years, 8 albums, seed 42, moderate page quirks.
    fn default() -> Self {
        Self {
            seed: 42,
            items: 300,
            albums: 8,
            foreign_items: 0,
            years: 5,
            clock_start: default_clock_start(),
            photo_bytes: (16 * 1024, 160 * 1024),
            video_bytes: (96 * 1024, 768 * 1024),
            page_quirks: PageQuirks::default(),
            removed_scope_policy: RemovedScopePolicy::GrantThenForbid,
            testing_mode: false,
            consent: ConsentBehaviour::Approve,
            quotas: Quotas::default(),
            missing_item: MissingItemResponse::InvalidArgument,
            processing_video: ProcessingVideoResponse::NotFound,
            picker: PickerConfig::default(),
            device_flow: DeviceFlowConfig::default(),
            base_url_ttl: Duration::from_secs(60 * 60),
            port: 0,
        }
    }
}

impl FakeConfig {
    /// A configuration with `items` items and otherwise default settings.
    pub fn with_items(items: usize) -> Self {
        Self {
            items,
            ..Self::default()
        }
    }
}

/// 2026-06-01T12:00:00Z: a fixed start keeps generated data and tests reproducible.
pub(crate) fn default_clock_start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

/// Paging irregularities Google is allowed to show: "fewer may be returned" and an empty page
/// that still carries a `nextPageToken` (spec §6.2). Page numbers count from 1 per query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageQuirks {
    /// Every Nth page returns about half of `pageSize` (0 = never).
    pub short_page_every: u32,
    /// Every Nth page returns no items but a `nextPageToken` (0 or 1 = never).
    pub empty_page_every: u32,
}

impl PageQuirks {
    /// Full pages only.
    pub const NONE: PageQuirks = PageQuirks {
        short_page_every: 0,
        empty_page_every: 0,
    };
}

impl Default for PageQuirks {
    fn default() -> Self {
        Self {
            short_page_every: 3,
            empty_page_every: 7,
        }
    }
}

/// Handling of `photoslibrary`, `photoslibrary.readonly` and `photoslibrary.sharing` (spec §6.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemovedScopePolicy {
    /// Consent grants them, and API calls authorised only by them get 403 (observed behaviour).
    GrantThenForbid,
    /// Consent refuses the request: redirect with `error=invalid_scope`.
    RejectAtConsent,
}

/// The scripted user's answer on the consent screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsentBehaviour {
    /// Grant every requested scope.
    Approve,
    /// Press "Cancel": redirect with `error=access_denied`.
    Deny,
    /// Untick these scopes (full URLs); the rest are granted and reported in `scope=`.
    ReduceScope(Vec<String>),
}

/// Quotas from spec §1.6, counted on the fake clock. Days roll over at midnight Pacific,
/// approximated as a fixed UTC−8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    /// Library API calls per day (Google: 10,000).
    pub library_requests_per_day: Option<u64>,
    /// Media (base URL) fetches per day (Google: 75,000).
    pub media_requests_per_day: Option<u64>,
    /// Picker API calls per minute (Google: 100,000).
    pub picker_requests_per_minute: Option<u64>,
}

impl Quotas {
    /// No quota at all: for benchmarks that fetch more than a day's worth.
    pub const UNLIMITED: Quotas = Quotas {
        library_requests_per_day: None,
        media_requests_per_day: None,
        picker_requests_per_minute: None,
    };
}

impl Default for Quotas {
    fn default() -> Self {
        Self {
            library_requests_per_day: Some(10_000),
            media_requests_per_day: Some(75_000),
            picker_requests_per_minute: Some(100_000),
        }
    }
}

/// Reply for an id the caller may not see (spec §6.2: both have been observed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingItemResponse {
    /// `400 INVALID_ARGUMENT "Invalid media item id."` (batchGet: status code 3).
    InvalidArgument,
    /// `404 NOT_FOUND` (batchGet: status code 5).
    NotFound,
}

/// What `=dv` returns while a video is still PROCESSING (spec §6.2, real behaviour unverified).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessingVideoResponse {
    /// 404.
    NotFound,
    /// 403.
    Forbidden,
    /// 200 with a short placeholder stream that is not the video.
    Placeholder,
}

/// Picker API behaviour (spec §3, §6.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickerConfig {
    /// `pollingConfig.pollInterval`.
    pub poll_interval: Duration,
    /// Initial `pollingConfig.timeoutIn`.
    pub timeout: Duration,
    /// Session lifetime: `expireTime` = creation + this.
    pub session_ttl: Duration,
    /// Live (undeleted, unexpired) sessions allowed per user before `RESOURCE_EXHAUSTED`.
    pub max_live_sessions: usize,
    /// The user has no Google Photos account: `sessions.create` gives `FAILED_PRECONDITION`.
    pub no_photos_account: bool,
}

impl Default for PickerConfig {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(5),
            timeout: Duration::from_secs(600),
            session_ttl: Duration::from_secs(60 * 60),
            max_live_sessions: 50,
            no_photos_account: false,
        }
    }
}

/// Device authorization flow ("TVs and limited input devices", spec §4.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceFlowConfig {
    /// Whether `photospicker.mediaitems.readonly` may be requested (unverified upstream;
    /// `photoslibrary*` scopes are always refused with `invalid_scope`).
    pub picker_scope_allowed: bool,
    /// `interval` reported to the client; polling faster (in real time) gets `slow_down`.
    pub interval: Duration,
    /// Lifetime of a device code on the fake clock.
    pub expires_in: Duration,
}

impl Default for DeviceFlowConfig {
    fn default() -> Self {
        Self {
            picker_scope_allowed: true,
            interval: Duration::from_secs(5),
            expires_in: Duration::from_secs(1800),
        }
    }
}
