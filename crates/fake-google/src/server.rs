//! The HTTP side: one loopback listener, a single dispatcher that classifies each request into an
//! [`EndpointKind`], applies statistics, faults and quotas uniformly, then routes.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{self, HeaderName, HeaderValue};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use chrono::{DateTime, TimeDelta, Utc};
use futures::StreamExt as _;
use serde_json::{Value, json};

use crate::clock::FakeClock;
use crate::config::{FakeConfig, ProcessingVideoResponse};
use crate::faults::{EndpointKind, Fault, Faults};
use crate::library::GeneratedLibrary;
use crate::media::{self, MediaParams, Rendition};
use crate::oauth::{AuthFailure, OAuthState, scopes};
use crate::picker::{self, PickerState};
use crate::rng::{seal, unseal};
use crate::stats::{RequestRecord, StatsCell};
use crate::{library_api, rng};

/// Project number used in quota messages.
const PROJECT_NUMBER: &str = "123456789012";

/// Shared state of one running fake.
pub(crate) struct Inner {
    pub config: FakeConfig,
    pub base: String,
    pub secret: [u8; 32],
    pub clock: FakeClock,
    pub library: GeneratedLibrary,
    pub oauth: Mutex<OAuthState>,
    pub picker: Mutex<PickerState>,
    pub faults: Faults,
    pub stats: StatsCell,
    quota: Mutex<QuotaState>,
}

impl Inner {
    pub(crate) fn new(config: FakeConfig, base: String, secret: [u8; 32]) -> Self {
        let library = GeneratedLibrary::generate(&config);
        let oauth = OAuthState::new(
            secret,
            config.consent.clone(),
            config.removed_scope_policy,
            config.testing_mode,
            config.device_flow.clone(),
        );
        Self {
            clock: FakeClock::new(config.clock_start),
            library,
            oauth: Mutex::new(oauth),
            picker: Mutex::new(PickerState::default()),
            faults: Faults::default(),
            stats: StatsCell::default(),
            quota: Mutex::new(QuotaState::default()),
            config,
            base,
            secret,
        }
    }

    pub(crate) fn oauth(&self) -> std::sync::MutexGuard<'_, OAuthState> {
        self.oauth.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn picker_state(&self) -> std::sync::MutexGuard<'_, PickerState> {
        self.picker.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// A fresh base URL for item `seq`, valid for `base_url_ttl` from now (spec §6.4).
    pub(crate) fn base_url(&self, seq: u32, source: MediaSource) -> String {
        let mut data = vec![1u8, source as u8];
        data.extend_from_slice(&seq.to_le_bytes());
        data.extend_from_slice(&self.now().timestamp().to_le_bytes());
        format!("{}/media/{}", self.base, seal(&self.secret, &data))
    }
}

/// Who issued a base URL: picker URLs need a Bearer token with the picker scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MediaSource {
    Library = 0,
    Picker = 1,
}

#[derive(Debug, Default)]
struct QuotaState {
    library: (i64, u64),
    media: (i64, u64),
    picker: (i64, u64),
}

/// A response before it becomes an HTTP response: lets faults cut or trickle the body and lets
/// statistics see its size.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: StatusCode,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
}

impl Reply {
    pub(crate) fn json(status: u16, v: &Value) -> Reply {
        Reply {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            headers: vec![(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=UTF-8"),
            )],
            body: Bytes::from(serde_json::to_vec(v).unwrap_or_default()),
        }
    }

    pub(crate) fn ok(v: &Value) -> Reply {
        Reply::json(200, v)
    }

    /// `{"error":{"code","message","status"}}` (spec §1.5).
    pub(crate) fn error(code: u16, status: &str, message: &str) -> Reply {
        Reply::json(
            code,
            &json!({"error": {"code": code, "message": message, "status": status}}),
        )
    }

    pub(crate) fn invalid(message: &str) -> Reply {
        Reply::error(400, "INVALID_ARGUMENT", message)
    }

    pub(crate) fn text(status: u16, content_type: &'static str, body: impl Into<Bytes>) -> Reply {
        Reply {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            headers: vec![(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
            body: body.into(),
        }
    }

    pub(crate) fn header(mut self, name: HeaderName, value: &str) -> Reply {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.push((name, v));
        }
        self
    }
}

/// Parsed request pieces handed to routes.
pub(crate) struct Req<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub query: Vec<(String, String)>,
    pub headers: &'a HeaderMap,
    pub body: &'a Bytes,
}

impl Req<'_> {
    /// Last value of a query parameter.
    pub(crate) fn q(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn bearer(&self) -> Option<&str> {
        let v = self.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
        let (scheme, token) = v.split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim())
            .filter(|t| !t.is_empty())
    }

    /// 400 for query parameters the method does not know (Google rejects them), ignoring the
    /// system parameters every Google API accepts (spec §6.1).
    pub(crate) fn check_query(&self, allowed: &[&str]) -> Result<(), Reply> {
        const SYSTEM: [&str; 6] = [
            "fields",
            "prettyPrint",
            "alt",
            "key",
            "quotaUser",
            "$.xgafv",
        ];
        for (k, _) in &self.query {
            if !allowed.contains(&k.as_str()) && !SYSTEM.contains(&k.as_str()) {
                return Err(Reply::invalid(&format!(
                    "Invalid JSON payload received. Unknown name \"{k}\": Cannot bind query parameter. Field '{k}' could not be found in request message."
                )));
            }
        }
        Ok(())
    }
}

/// Which Google service a request belongs to, for messages and scope errors.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Service {
    Library,
    Picker,
}

impl Service {
    fn host(self) -> &'static str {
        match self {
            Service::Library => "photoslibrary.googleapis.com",
            Service::Picker => "photospicker.googleapis.com",
        }
    }
}

/// Authenticates an API call: 401 without a live token, 403 without one of `any_of` (spec §6.1).
pub(crate) fn authorize(
    inner: &Inner,
    req: &Req<'_>,
    any_of: &[&str],
    service: Service,
    method: &str,
) -> Result<(), Reply> {
    let oauth = inner.oauth();
    match oauth.check_access(req.bearer(), inner.now()) {
        Err(AuthFailure::Missing) => Err(unauthenticated(
            "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
            "Bearer realm=\"https://accounts.google.com/\"",
        )),
        Err(AuthFailure::Invalid) => Err(unauthenticated(
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
            "Bearer realm=\"https://accounts.google.com/\", error=\"invalid_token\"",
        )),
        Ok(granted) if granted.iter().any(|s| any_of.contains(&s.as_str())) => Ok(()),
        Ok(_) => Err(insufficient_scope(service, method, any_of)),
    }
}

fn unauthenticated(message: &str, www: &str) -> Reply {
    Reply::error(401, "UNAUTHENTICATED", message).header(header::WWW_AUTHENTICATE, www)
}

/// The exact 403 Google sends for a token without the needed scope, removed scopes included.
pub(crate) fn insufficient_scope(service: Service, method: &str, any_of: &[&str]) -> Reply {
    let body = json!({"error": {
        "code": 403,
        "message": "Request had insufficient authentication scopes.",
        "status": "PERMISSION_DENIED",
        "details": [{
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
            "domain": "googleapis.com",
            "metadata": {"service": service.host(), "method": method}
        }]
    }});
    let www = format!(
        "Bearer realm=\"https://accounts.google.com/\", error=\"insufficient_scope\", scope=\"{}\"",
        any_of.join(" ")
    );
    Reply::json(403, &body).header(header::WWW_AUTHENTICATE, &www)
}

fn quota_message(service: &str, per_minute: bool) -> String {
    let limit = if per_minute {
        "All requests per minute per user"
    } else {
        "All requests per day"
    };
    format!(
        "Quota exceeded for quota metric 'All requests' and limit '{limit}' of service '{service}' for consumer 'project_number:{PROJECT_NUMBER}'."
    )
}

fn rate_limited(kind: EndpointKind, per_minute: bool, retry_after: Option<Duration>) -> Reply {
    let service = if kind.is_picker() {
        "photospicker.googleapis.com"
    } else {
        "photoslibrary.googleapis.com"
    };
    let body = json!({"error": {
        "code": 429,
        "message": quota_message(service, per_minute),
        "status": "RESOURCE_EXHAUSTED",
        "details": [{
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "RATE_LIMIT_EXCEEDED",
            "domain": "googleapis.com",
            "metadata": {"service": service, "consumer": format!("projects/{PROJECT_NUMBER}")}
        }]
    }});
    let reply = Reply::json(429, &body);
    match retry_after {
        Some(d) => reply.header(header::RETRY_AFTER, &d.as_secs().to_string()),
        None => reply,
    }
}

fn fault_reply(kind: EndpointKind, fault: Fault) -> Option<Reply> {
    let oauth_flat = |status: u16, error: &str, desc: &str| {
        Reply::json(status, &json!({"error": error, "error_description": desc}))
    };
    Some(match fault {
        Fault::RateLimited { retry_after } => rate_limited(kind, true, retry_after),
        Fault::DailyQuotaExceeded => rate_limited(kind, false, None),
        Fault::Internal if kind.is_oauth() => oauth_flat(500, "internal_failure", "Backend Error"),
        Fault::Internal => Reply::error(500, "INTERNAL", "Internal error encountered."),
        Fault::Unavailable if kind.is_oauth() => {
            oauth_flat(503, "temporarily_unavailable", "Service Unavailable")
        }
        Fault::Unavailable => {
            Reply::error(503, "UNAVAILABLE", "The service is currently unavailable.")
        }
        Fault::ResetMidBody { .. } | Fault::SlowBody { .. } | Fault::Delay(_) => return None,
    })
}

/// Counts the request against its quota; `Some(429)` once exhausted (spec §6.1, §1.6).
fn charge_quota(inner: &Inner, kind: EndpointKind) -> Option<Reply> {
    let q = inner.config.quotas;
    let now = inner.now().timestamp();
    // Google's quota day starts at midnight Pacific; a fixed UTC−8 is close enough for tests.
    let day = (now - 8 * 3600).div_euclid(86_400);
    let minute = now.div_euclid(60);
    let mut st = inner.quota.lock().unwrap_or_else(PoisonError::into_inner);
    let (slot, period, limit, per_minute) = if kind.is_library() {
        (&mut st.library, day, q.library_requests_per_day, false)
    } else if kind == EndpointKind::Media {
        (&mut st.media, day, q.media_requests_per_day, false)
    } else if kind.is_picker() {
        (&mut st.picker, minute, q.picker_requests_per_minute, true)
    } else {
        return None;
    };
    if slot.0 != period {
        *slot = (period, 0);
    }
    slot.1 += 1;
    match limit {
        Some(l) if slot.1 > l => Some(rate_limited(kind, per_minute, None)),
        _ => None,
    }
}

pub(crate) fn classify(method: &Method, path: &str) -> EndpointKind {
    use EndpointKind as K;
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segs.as_slice() {
        ["accounts", "o", "oauth2", "v2", "auth"] => K::OAuthAuthorize,
        ["oauth2", "token"] => K::OAuthToken,
        ["oauth2", "revoke"] => K::OAuthRevoke,
        ["oauth2", "device", "code"] => K::OAuthDeviceCode,
        ["media", ..] => K::Media,
        ["library", "v1", "mediaItems"] if method == Method::GET => K::LibraryList,
        ["library", "v1", "mediaItems:search"] if method == Method::POST => K::LibrarySearch,
        ["library", "v1", "mediaItems:batchGet"] if method == Method::GET => K::LibraryBatchGet,
        ["library", "v1", "mediaItems", _] if method == Method::GET => K::LibraryGet,
        ["library", "v1", "albums"] if method == Method::GET => K::LibraryAlbumsList,
        ["library", "v1", s, ..] if s.starts_with("sharedAlbums") => K::LibrarySharedAlbums,
        ["library", "v1", "albums", a] if a.ends_with(":share") || a.ends_with(":unshare") => {
            K::LibrarySharedAlbums
        }
        ["library", "v1", "albums", _] if method == Method::GET => K::LibraryAlbumsGet,
        ["library", ..] => K::LibraryOther,
        ["picker", "v1", "sessions"] if method == Method::POST => K::PickerCreateSession,
        ["picker", "v1", "sessions", _] if method == Method::GET => K::PickerGetSession,
        ["picker", "v1", "sessions", _] if method == Method::DELETE => K::PickerDeleteSession,
        ["picker", "v1", "mediaItems"] if method == Method::GET => K::PickerListItems,
        ["picker", ..] => K::PickerOther,
        _ => K::Other,
    }
}

/// What the request log records about a request.
struct Call {
    kind: EndpointKind,
    method: Method,
    path: String,
}

/// The one handler behind the listener.
pub(crate) async fn dispatch(State(inner): State<Arc<Inner>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let kind = classify(&parts.method, &path);
    let call = Call {
        kind,
        method: parts.method.clone(),
        path: path.clone(),
    };
    inner
        .stats
        .update(|s| *s.requests.entry(kind).or_default() += 1);
    let body = match axum::body::to_bytes(body, 16 << 20).await {
        Ok(b) => b,
        Err(_) => {
            return finish(
                &inner,
                &call,
                Reply::invalid("Request body too large or unreadable."),
                None,
            );
        }
    };

    let mut body_fault = None;
    if let Some(fault) = inner.faults.check(kind) {
        inner.stats.update(|s| s.faults_fired += 1);
        match fault {
            Fault::Delay(d) => tokio::time::sleep(d).await,
            Fault::ResetMidBody { .. } | Fault::SlowBody { .. } => body_fault = Some(fault),
            _ => {
                if let Some(reply) = fault_reply(kind, fault) {
                    return finish(&inner, &call, reply, None);
                }
            }
        }
    }
    if let Some(reply) = charge_quota(&inner, kind) {
        return finish(&inner, &call, reply, None);
    }

    let query: Vec<(String, String)> = parts
        .uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let r = Req {
        method: &parts.method,
        path: &path,
        query,
        headers: &parts.headers,
        body: &body,
    };
    let reply = route(&inner, kind, &r);
    finish(&inner, &call, reply, body_fault)
}

fn route(inner: &Inner, kind: EndpointKind, req: &Req<'_>) -> Reply {
    use EndpointKind as K;
    match kind {
        K::OAuthAuthorize => oauth_authorize(inner, req),
        K::OAuthToken => oauth_token(inner, req),
        K::OAuthRevoke => oauth_revoke(inner, req),
        K::OAuthDeviceCode => oauth_device_code(inner, req),
        K::Media => serve_media(inner, req),
        K::LibraryList
        | K::LibrarySearch
        | K::LibraryGet
        | K::LibraryBatchGet
        | K::LibraryAlbumsList
        | K::LibraryAlbumsGet
        | K::LibrarySharedAlbums
        | K::LibraryOther => library_api::handle(inner, kind, req),
        K::PickerCreateSession
        | K::PickerGetSession
        | K::PickerDeleteSession
        | K::PickerListItems
        | K::PickerOther => picker::handle(inner, kind, req),
        K::Other if req.path == "/device" => device_page(inner, req),
        K::Other if req.path.starts_with("/picker-ui/") => picker::ui(inner, req.path, &req.query),
        K::Other => Reply::text(
            404,
            "text/html; charset=UTF-8",
            "<!DOCTYPE html><title>Error 404 (Not Found)</title>",
        ),
    }
}

fn finish(inner: &Inner, call: &Call, reply: Reply, body_fault: Option<Fault>) -> Response {
    let kind = call.kind;
    let status = reply.status.as_u16();
    inner.stats.log(RequestRecord {
        kind,
        method: call.method.to_string(),
        path: call.path.clone(),
        status,
        fake_time: inner.now(),
        at: tokio::time::Instant::now(),
    });
    let full_len = reply.body.len();
    let sent = match body_fault {
        Some(Fault::ResetMidBody { after_bytes }) => after_bytes.min(full_len),
        _ => full_len,
    };
    inner.stats.update(|s| {
        *s.statuses.entry(status).or_default() += 1;
        if status == 429 {
            s.rate_limited += 1;
        }
        if kind == EndpointKind::Media {
            s.media_requests += 1;
            s.media_bytes += sent as u64;
        }
    });

    let body = match body_fault {
        Some(Fault::ResetMidBody { .. }) => {
            let head = reply.body.slice(..sent);
            let abort = futures::stream::once(async {
                // Returning Pending once makes hyper flush the headers and the partial body
                // before the error tears the connection down.
                tokio::task::yield_now().await;
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "fake-google: injected reset",
                ))
            });
            Body::from_stream(futures::stream::once(async { Ok(head) }).chain(abort))
        }
        Some(Fault::SlowBody { chunk_bytes, delay }) => {
            let data = reply.body.clone();
            let step = chunk_bytes.max(1);
            let stream = futures::stream::unfold(0usize, move |pos| {
                let data = data.clone();
                async move {
                    if pos >= data.len() {
                        return None;
                    }
                    if pos > 0 {
                        tokio::time::sleep(delay).await;
                    }
                    let end = (pos + step).min(data.len());
                    Some((Ok::<Bytes, Infallible>(data.slice(pos..end)), end))
                }
            });
            Body::from_stream(stream)
        }
        _ => Body::from(reply.body),
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = reply.status;
    let h = resp.headers_mut();
    for (k, v) in reply.headers {
        h.append(k, v);
    }
    // Streamed bodies would otherwise go out chunked; the client must see the promised length
    // so that a cut body is detectably short.
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(full_len));
    resp
}

// --- OAuth glue ------------------------------------------------------------------------------

fn oauth_error(e: crate::oauth::OAuthError) -> Reply {
    Reply::json(
        e.status,
        &json!({"error": e.error, "error_description": e.description}),
    )
}

fn oauth_authorize(inner: &Inner, req: &Req<'_>) -> Reply {
    if req.method != Method::GET {
        return Reply::text(405, "text/html; charset=utf-8", "Method not allowed");
    }
    let q: HashMap<String, String> = req.query.iter().cloned().collect();
    let now = inner.now();
    match inner.oauth().authorize(&q, now) {
        crate::oauth::Consent::Redirect(to) => {
            Reply::text(302, "text/html; charset=UTF-8", "").header(header::LOCATION, &to)
        }
        crate::oauth::Consent::ErrorPage { status, message } => Reply::text(
            status,
            "text/html; charset=utf-8",
            format!("<!doctype html><title>Error</title><p>{message}</p>"),
        ),
    }
}

fn form(req: &Req<'_>) -> HashMap<String, String> {
    url::form_urlencoded::parse(req.body).into_owned().collect()
}

/// The device verification page: `GET /device?user_code=ABCD-EFGH` enters the code and
/// answers per the current consent behaviour (for people driving the binary by hand).
fn device_page(inner: &Inner, req: &Req<'_>) -> Reply {
    let page = |status: u16, body: &str| {
        Reply::text(
            status,
            "text/html; charset=utf-8",
            format!("<!doctype html><title>Fake device verification</title><p>{body}</p>"),
        )
    };
    match req.q("user_code") {
        None => page(
            200,
            "Open /device?user_code=XXXX-XXXX to enter a code (tests use FakeGoogle::approve_device).",
        ),
        Some(code) if inner.oauth().decide_device(code) => {
            page(200, "Done. Return to your device.")
        }
        Some(_) => page(400, "Unknown or already used code."),
    }
}

fn oauth_method_not_allowed() -> Reply {
    oauth_error(crate::oauth::OAuthError {
        status: 405,
        error: "invalid_request",
        description: "Method not allowed".into(),
    })
}

fn oauth_token(inner: &Inner, req: &Req<'_>) -> Reply {
    if req.method != Method::POST {
        return oauth_method_not_allowed();
    }
    let now = inner.now();
    let mut form = form(req);
    // client_secret_basic (RFC 6749 §2.3.1), the default of many OAuth libraries.
    if let Some((id, secret)) = basic_credentials(req) {
        form.entry("client_id".into()).or_insert(id);
        form.entry("client_secret".into()).or_insert(secret);
    }
    let result = inner.oauth().token(&form, now);
    match result {
        Ok(v) => {
            inner.stats.update(|s| s.access_tokens_issued += 1);
            Reply::ok(&v).header(
                header::CACHE_CONTROL,
                "no-cache, no-store, max-age=0, must-revalidate",
            )
        }
        Err(e) => oauth_error(e),
    }
}

fn oauth_device_code(inner: &Inner, req: &Req<'_>) -> Reply {
    if req.method != Method::POST {
        return oauth_method_not_allowed();
    }
    let now = inner.now();
    let verification = format!("{}/device", inner.base);
    match inner.oauth().device_code(&form(req), now, &verification) {
        Ok(v) => Reply::ok(&v),
        Err(e) => oauth_error(e),
    }
}

/// `Authorization: Basic base64(urlencode(id):urlencode(secret))`.
fn basic_credentials(req: &Req<'_>) -> Option<(String, String)> {
    use base64::Engine as _;
    let v = req.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, b64) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (id, secret) = text.split_once(':')?;
    let decode = |s: &str| -> String {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Some((decode(id), decode(secret)))
}

fn oauth_revoke(inner: &Inner, req: &Req<'_>) -> Reply {
    let token = req
        .q("token")
        .map(str::to_owned)
        .or_else(|| form(req).remove("token"));
    let Some(token) = token else {
        return oauth_error(crate::oauth::OAuthError {
            status: 400,
            error: "invalid_request",
            description: "Missing required parameter: token".into(),
        });
    };
    match inner.oauth().revoke(&token) {
        Ok(()) => Reply::ok(&json!({})),
        Err(e) => oauth_error(e),
    }
}

// --- Media host --------------------------------------------------------------------------------

fn media_error(status: u16) -> Reply {
    let reason = match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        _ => "Not Found",
    };
    Reply::text(
        status,
        "text/html; charset=UTF-8",
        format!("<!DOCTYPE html><title>Error {status} ({reason})</title>"),
    )
}

fn serve_media(inner: &Inner, req: &Req<'_>) -> Reply {
    if req.method != Method::GET && req.method != Method::HEAD {
        return media_error(405);
    }
    let rest = req.path.trim_start_matches("/media/");
    let (blob, params) = rest.split_once('=').unwrap_or((rest, ""));
    let Some(data) = unseal(&inner.secret, blob) else {
        return media_error(404);
    };
    if data.len() != 14 || data[0] != 1 {
        return media_error(404);
    }
    let source = if data[1] == MediaSource::Picker as u8 {
        MediaSource::Picker
    } else {
        MediaSource::Library
    };
    let seq = u32::from_le_bytes([data[2], data[3], data[4], data[5]]);
    let mut issued = [0u8; 8];
    issued.copy_from_slice(&data[6..14]);
    let issued = i64::from_le_bytes(issued);
    let ttl = TimeDelta::from_std(inner.config.base_url_ttl).unwrap_or(TimeDelta::hours(1));
    if inner.now().timestamp() - issued >= ttl.num_seconds() {
        return media_error(403);
    }
    if source == MediaSource::Picker {
        // Picker base URLs need the picker scope (spec §1.4, §6.4).
        let oauth = inner.oauth();
        match oauth.check_access(req.bearer(), inner.now()) {
            Err(_) => return media_error(401),
            Ok(granted) if !granted.iter().any(|s| s == scopes::PICKER_READONLY) => {
                return media_error(403);
            }
            Ok(_) => {}
        }
    }
    let Ok(params) = MediaParams::parse(params) else {
        return media_error(400);
    };
    let lib = inner.library.read();
    let Some(rec) = lib.items.get(seq as usize).filter(|r| !r.removed) else {
        return media_error(404);
    };
    let spec = inner.library.spec(rec);
    let Ok(rendition) = media::resolve(&spec, &params) else {
        return media_error(400);
    };
    if rendition == Rendition::Transcoded && rec.video_status != crate::library::VideoStatus::Ready
    {
        match inner.config.processing_video {
            ProcessingVideoResponse::NotFound => return media_error(404),
            ProcessingVideoResponse::Forbidden => return media_error(403),
            ProcessingVideoResponse::Placeholder => {
                return Reply::text(200, "video/mp4", media::processing_placeholder());
            }
        }
    }
    let (bytes, content_type) = media::render(&spec, rendition);
    drop(lib);
    ranged(req, Bytes::from(bytes), content_type)
}

/// Serves `Range: bytes=a-b` / `a-` / `-n` with 206, anything unparsable as a full 200.
fn ranged(req: &Req<'_>, bytes: Bytes, content_type: &'static str) -> Reply {
    let total = bytes.len();
    let range = req
        .headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes="))
        .filter(|v| !v.contains(','))
        .and_then(|v| v.split_once('-'));
    let base = |status: u16, body: Bytes| {
        Reply::text(status, content_type, body).header(header::ACCEPT_RANGES, "bytes")
    };
    let Some((a, b)) = range else {
        return base(200, bytes);
    };
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => match n.parse::<usize>() {
            Ok(n) if n > 0 => (total.saturating_sub(n), total.saturating_sub(1)),
            _ => return base(200, bytes),
        },
        (s, "") => match s.parse::<usize>() {
            Ok(s) => (s, total.saturating_sub(1)),
            Err(_) => return base(200, bytes),
        },
        (s, e) => match (s.parse::<usize>(), e.parse::<usize>()) {
            (Ok(s), Ok(e)) if s <= e => (s, e.min(total.saturating_sub(1))),
            _ => return base(200, bytes),
        },
    };
    if start >= total {
        return Reply::text(416, "text/html; charset=UTF-8", "")
            .header(header::CONTENT_RANGE, &format!("bytes */{total}"));
    }
    base(206, bytes.slice(start..=end)).header(
        header::CONTENT_RANGE,
        &format!("bytes {start}-{end}/{total}"),
    )
}

/// Parses a proto3 JSON int32 that may arrive as a number or a string.
pub(crate) fn json_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// An opaque page token: `(kind, fingerprint of the query, page number, cursor a, cursor b)`,
/// sealed so garbled or foreign tokens are detected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PageToken {
    pub kind: u8,
    pub fingerprint: u64,
    pub page: u32,
    pub a: i64,
    pub b: u32,
}

impl PageToken {
    pub(crate) fn encode(&self, secret: &[u8; 32]) -> String {
        let mut d = vec![1u8, self.kind];
        d.extend_from_slice(&self.fingerprint.to_le_bytes());
        d.extend_from_slice(&self.page.to_le_bytes());
        d.extend_from_slice(&self.a.to_le_bytes());
        d.extend_from_slice(&self.b.to_le_bytes());
        seal(secret, &d)
    }

    /// `None` for garbled, foreign, or other-query tokens.
    pub(crate) fn decode(
        secret: &[u8; 32],
        token: &str,
        kind: u8,
        fingerprint: u64,
    ) -> Option<PageToken> {
        let d = unseal(secret, token)?;
        if d.len() != 26 || d[0] != 1 || d[1] != kind {
            return None;
        }
        let u64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&d[i..i + 8]);
            b
        };
        let t = PageToken {
            kind,
            fingerprint: u64::from_le_bytes(u64_at(2)),
            page: u32::from_le_bytes([d[10], d[11], d[12], d[13]]),
            a: i64::from_le_bytes(u64_at(14)),
            b: u32::from_le_bytes([d[22], d[23], d[24], d[25]]),
        };
        (t.fingerprint == fingerprint).then_some(t)
    }
}

/// Hash of a query description, binding page tokens to the query that produced them.
pub(crate) fn fingerprint(desc: &str) -> u64 {
    rng::hash_u64(&[desc.as_bytes()])
}
