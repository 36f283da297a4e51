//! The crate's single error type, and the mapping of Google's error bodies onto it.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde::Deserialize;

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What the user must do to get a usable OAuth client file; repeated in several messages.
pub const CREATE_DESKTOP_CLIENT_HELP: &str = "Create one in Google Cloud Console: APIs & Services → Credentials → \
Create credentials → OAuth client ID → Application type \"Desktop app\", then click \"Download JSON\" \
and save the file at that path.";

/// Why a `client_secret.json` could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientSecretProblem {
    /// The file does not exist or cannot be read.
    Unreadable(String),
    /// The file is not JSON or lacks required fields.
    Malformed(String),
    /// The file describes a "Web application" client; loopback redirects need a Desktop client.
    WebClient,
}

impl std::fmt::Display for ClientSecretProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unreadable(e) => write!(f, "the file cannot be read ({e})"),
            Self::Malformed(e) => write!(f, "the file is not a Google OAuth client file ({e})"),
            Self::WebClient => f.write_str(
                "it is a \"Web application\" client, which cannot receive the sign-in redirect \
                 on this computer's loopback address; a \"Desktop app\" client is needed",
            ),
        }
    }
}

/// Everything that can go wrong talking to Google.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The OAuth client file is missing, malformed or of the wrong type.
    #[error("cannot use the OAuth client file {}: {problem}. {help}", path.as_ref().map_or_else(|| "(inline JSON)".to_owned(), |p| p.display().to_string()), help = CREATE_DESKTOP_CLIENT_HELP)]
    ClientSecret {
        /// The file, if the JSON came from one.
        path: Option<PathBuf>,
        /// What is wrong with it.
        problem: ClientSecretProblem,
    },

    /// A call was authorised only by a scope Google no longer honours, or lacks the scope.
    #[error(
        "Google refused the request for lack of an authorisation scope ({message}). Since \
         2025-03-31 Google has removed the photoslibrary.readonly scope: the Library API now only \
         returns photos and albums that this app itself uploaded, not your existing library. To \
         back up your whole library, use Google Takeout (configure [sources.takeout]) or pick \
         items by hand with `gphotos-backup pick` (Photos Picker API)."
    )]
    InsufficientScope {
        /// Google's message.
        message: String,
    },

    /// The project's daily request quota is used up; retrying today is pointless.
    #[error(
        "the Google API daily quota is exhausted ({message}); the backup resumes after the quota \
         resets (midnight Pacific time)"
    )]
    DailyQuotaExhausted {
        /// Google's message.
        message: String,
    },

    /// A short-term (per-minute) rate limit; retried after at least 30 s.
    #[error("rate limited by Google ({message})")]
    RateLimited {
        /// Google's message.
        message: String,
        /// The server's `Retry-After`, if any.
        retry_after: Option<Duration>,
    },

    /// The access token was missing, expired or revoked (HTTP 401).
    #[error("Google rejected the access token ({message})")]
    Unauthenticated {
        /// Google's message.
        message: String,
    },

    /// The refresh token no longer works; the user must sign in again.
    #[error(
        "the saved Google authorisation is no longer valid ({reason}). Run `gphotos-backup auth` \
         again. If this happens about every 7 days: OAuth apps left in the \"Testing\" publishing \
         status get refresh tokens that expire after 7 days; publish the app (Google Cloud Console \
         → APIs & Services → OAuth consent screen → Publish app) to avoid it."
    )]
    ReauthorizationRequired {
        /// Why (the token endpoint's answer, or a missing token file).
        reason: String,
    },

    /// The user clicked "Cancel"/"Deny" on Google's consent screen.
    #[error(
        "authorisation was denied in the browser ({error}); run `gphotos-backup auth` again and allow access"
    )]
    AccessDenied {
        /// The `error` parameter of the redirect (usually `access_denied`).
        error: String,
    },

    /// The redirect's `state` does not match the one we sent (stale tab or forged request).
    #[error(
        "the sign-in redirect does not belong to this authorisation attempt (state mismatch); \
         start `gphotos-backup auth` again and use the newly printed link"
    )]
    StateMismatch,

    /// The redirect URL lacks a `code` or cannot be parsed.
    #[error("invalid sign-in redirect: {0}")]
    InvalidRedirect(String),

    /// The token endpoint answered with an OAuth error other than `invalid_grant`.
    #[error("Google's token endpoint refused the request: {error}{}", description.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
    OAuth {
        /// OAuth error code, e.g. `invalid_client`.
        error: String,
        /// Human-readable description from Google.
        description: Option<String>,
    },

    /// The Picker session's polling window ran out before the user finished picking.
    #[error(
        "the picking session timed out before items were picked; start `gphotos-backup pick` again"
    )]
    PickingTimedOut,

    /// A media base URL is older than ~60 minutes (403 from the media host); re-fetch it with
    /// `mediaItems.batchGet` (Library) or list the picked items again (Picker).
    #[error("the media base URL has expired; fetch a fresh one and retry")]
    BaseUrlExpired,

    /// Any other error answered by a Google API, in google.rpc Status form.
    #[error("Google API error: HTTP {http_status} {}: {message}", status.as_deref().unwrap_or("(no status)"))]
    Api {
        /// HTTP status code.
        http_status: u16,
        /// Canonical code such as `INVALID_ARGUMENT`, if the body had one.
        status: Option<String>,
        /// Google's message (or the start of a non-JSON body).
        message: String,
        /// The server's `Retry-After`, if any.
        retry_after: Option<Duration>,
    },

    /// Could not connect, the connection broke, or a read stalled.
    #[error("network error talking to Google: {0}")]
    Transport(#[source] reqwest::Error),

    /// No data arrived on a download for longer than the idle timeout.
    #[error("the download stalled: no data for {0:?}")]
    IdleTimeout(Duration),

    /// The body ended before `Content-Length` bytes arrived.
    #[error("the download ended early: {received} of {expected} bytes")]
    ShortBody {
        /// `Content-Length`.
        expected: u64,
        /// Bytes actually received.
        received: u64,
    },

    /// A successful response could not be decoded.
    #[error("unexpected response from Google ({context}): {reason}")]
    Protocol {
        /// Which call.
        context: String,
        /// What was wrong.
        reason: String,
    },

    /// A URL (configured or received) is unusable.
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL text.
        url: String,
        /// Why it is invalid.
        reason: String,
    },

    /// The caller passed arguments Google would reject (checked before sending).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// Reading or writing the token file failed.
    #[error("token file {}: {source}", path.display())]
    TokenFile {
        /// The token file.
        path: PathBuf,
        /// The I/O or JSON error.
        #[source]
        source: std::io::Error,
    },

    /// Local I/O failed (the download writer, the loopback listener).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// Whether the same request may succeed if retried after a delay.
    ///
    /// 5xx, per-minute 429s, broken connections and stalls are retryable; other 4xx,
    /// the daily quota, expired base URLs and local errors are not (spec §1.5).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Api { http_status, .. } => {
                // 501 UNIMPLEMENTED will not start working on a retry.
                *http_status >= 500 && *http_status != 501
            }
            Self::RateLimited { .. }
            | Self::Transport(_)
            | Self::IdleTimeout(_)
            | Self::ShortBody { .. } => true,
            _ => false,
        }
    }

    /// The server's requested delay, if it sent `Retry-After`.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } | Self::Api { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// HTTP status of an API error, if this is one.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Self::Api { http_status, .. } => Some(*http_status),
            Self::InsufficientScope { .. } | Self::BaseUrlExpired => Some(403),
            Self::DailyQuotaExhausted { .. } | Self::RateLimited { .. } => Some(429),
            Self::Unauthenticated { .. } => Some(401),
            _ => None,
        }
    }

    /// Builds the error for a non-success API response from its status, headers and body.
    pub fn from_api_response(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Self {
        let retry_after = parse_retry_after(headers);
        let (canonical, message) = match serde_json::from_slice::<GoogleErrorBody>(body) {
            Ok(GoogleErrorBody { error }) => (error.status, error.message.unwrap_or_default()),
            Err(_) => (None, body_snippet(body)),
        };
        let lower = message.to_ascii_lowercase();
        match status.as_u16() {
            401 => Self::Unauthenticated { message },
            403 if lower.contains("insufficient authentication scopes") => {
                Self::InsufficientScope { message }
            }
            429 if is_daily_quota_message(&lower) => Self::DailyQuotaExhausted { message },
            429 => Self::RateLimited {
                message,
                retry_after,
            },
            code => Self::Api {
                http_status: code,
                status: canonical,
                message,
                retry_after,
            },
        }
    }
}

/// Google's per-day quota messages name the limit "… per day" (or the older `…PerDay` metric).
fn is_daily_quota_message(lower: &str) -> bool {
    lower.contains("per day") || lower.contains("perday") || lower.contains("per_day")
}

/// google.rpc Status envelope: `{"error":{"code","message","status","details"}}` (spec §1.5).
#[derive(Debug, Deserialize)]
struct GoogleErrorBody {
    error: GoogleErrorStatus,
}

#[derive(Debug, Deserialize)]
struct GoogleErrorStatus {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    status: Option<String>,
}

/// `Retry-After` in delta-seconds form; the HTTP-date form is not used by Google APIs and is
/// ignored (the policy's own minimum delays still apply).
pub(crate) fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// The start of a non-JSON body, for messages; bounded so an HTML error page stays readable.
pub(crate) fn body_snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let trimmed = text.trim();
    let mut out: String = trimmed.chars().take(300).collect();
    if trimmed.chars().count() > 300 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn err(status: u16, body: &str) -> Error {
        Error::from_api_response(
            StatusCode::from_u16(status).unwrap(),
            &HeaderMap::new(),
            body.as_bytes(),
        )
    }

    #[test]
    fn removed_scope_403_explains_the_2025_change() {
        // Body observed in the field (spec §1.5).
        let e = err(
            403,
            r#"{"error":{"code":403,"message":"Request had insufficient authentication scopes.","status":"PERMISSION_DENIED"}}"#,
        );
        assert!(matches!(e, Error::InsufficientScope { .. }));
        let text = e.to_string();
        assert!(text.contains("2025-03-31"), "{text}");
        assert!(text.contains("photoslibrary.readonly"), "{text}");
        assert!(text.contains("[sources.takeout]"), "{text}");
        assert!(text.contains("gphotos-backup pick"), "{text}");
        assert!(!e.is_retryable());
    }

    #[test]
    fn other_403_stays_a_plain_api_error() {
        let e = err(
            403,
            r#"{"error":{"code":403,"message":"Photos Library API has not been used in project 1","status":"PERMISSION_DENIED"}}"#,
        );
        match e {
            Error::Api {
                http_status,
                status,
                ..
            } => {
                assert_eq!(http_status, 403);
                assert_eq!(status.as_deref(), Some("PERMISSION_DENIED"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn daily_quota_429_is_not_retryable() {
        let e = err(
            429,
            r#"{"error":{"code":429,"message":"Quota exceeded for quota metric 'All requests' and limit 'All requests per day' of service 'photoslibrary.googleapis.com' for consumer 'project_number:1'.","status":"RESOURCE_EXHAUSTED"}}"#,
        );
        assert!(matches!(e, Error::DailyQuotaExhausted { .. }));
        assert!(!e.is_retryable());
    }

    #[test]
    fn per_minute_429_is_retryable_and_keeps_retry_after() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("42"));
        let e = Error::from_api_response(
            StatusCode::TOO_MANY_REQUESTS,
            &headers,
            br#"{"error":{"code":429,"message":"Quota exceeded for quota metric 'Write requests' and limit 'Write requests per minute per user'","status":"RESOURCE_EXHAUSTED"}}"#,
        );
        assert!(matches!(e, Error::RateLimited { .. }));
        assert!(e.is_retryable());
        assert_eq!(e.retry_after(), Some(Duration::from_secs(42)));
    }

    #[test]
    fn status_401_is_unauthenticated() {
        let e = err(
            401,
            r#"{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}}"#,
        );
        assert!(matches!(e, Error::Unauthenticated { .. }));
    }

    #[test]
    fn server_errors_retry_but_client_errors_do_not() {
        assert!(
            err(
                503,
                r#"{"error":{"code":503,"message":"x","status":"UNAVAILABLE"}}"#
            )
            .is_retryable()
        );
        assert!(err(500, "<html>oops</html>").is_retryable());
        assert!(!err(501, "").is_retryable());
        let bad = err(
            400,
            r#"{"error":{"code":400,"message":"Invalid media item id.","status":"INVALID_ARGUMENT"}}"#,
        );
        assert!(!bad.is_retryable());
        assert!(bad.to_string().contains("Invalid media item id."));
        assert!(bad.to_string().contains("INVALID_ARGUMENT"));
    }

    #[test]
    fn non_json_body_is_kept_as_a_bounded_snippet() {
        let long = "x".repeat(1000);
        match err(502, &long) {
            Error::Api {
                message, status, ..
            } => {
                assert_eq!(status, None);
                assert!(message.chars().count() <= 301);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn reauthorization_message_mentions_testing_status() {
        let text = Error::ReauthorizationRequired {
            reason: "invalid_grant".into(),
        }
        .to_string();
        assert!(text.contains("gphotos-backup auth"));
        assert!(text.contains("Testing"));
        assert!(text.contains("7 days"));
    }
}
