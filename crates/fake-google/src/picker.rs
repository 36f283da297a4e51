//! Picker API v1: the session state machine (spec §3, §6.3) and the test hook that plays the
//! user ([`PickerControl`]).

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Map, Value, json};

use crate::Error;
use crate::faults::EndpointKind;
use crate::library::MediaItemId;
use crate::library_api::{photo_exif, rfc3339};
use crate::oauth::scopes;
use crate::rng::{b64, sha256};
use crate::server::{
    Inner, MediaSource, PageToken, Reply, Req, Service, authorize, fingerprint, json_i64,
};

const MAX_ITEMS: i64 = 2000;
const TOKEN_PICKED: u8 = 5;
const SERVICE_PREFIX: &str = "google.photos.picker.v1.PickerService.";

/// Observable state of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// Waiting for the user; `pollingConfig` present.
    Created,
    /// The user pressed Done; `mediaItemsSet` is true.
    Picked,
    /// The user did nothing and `timeoutIn` reached 0s.
    TimedOut,
    /// Past `expireTime`: 403 on access.
    Expired,
    /// Deleted by the client: 404.
    Deleted,
}

/// Snapshot of a session for tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickerSessionInfo {
    /// Session id.
    pub id: String,
    /// Current state.
    pub state: SessionState,
    /// `pickingConfig.maxItemCount` after coercion.
    pub max_item_count: u32,
    /// Items the user picked, in pick order.
    pub picked: Vec<MediaItemId>,
    /// `requestId` given at creation.
    pub request_id: Option<String>,
}

#[derive(Debug)]
struct Session {
    id: String,
    created: DateTime<Utc>,
    expire: DateTime<Utc>,
    timeout: TimeDelta,
    max_items: u32,
    picked: Option<Vec<u32>>,
    timed_out: bool,
    deleted: bool,
    request_id: Option<String>,
}

impl Session {
    fn state(&self, now: DateTime<Utc>) -> SessionState {
        if self.deleted {
            SessionState::Deleted
        } else if now >= self.expire {
            SessionState::Expired
        } else if self.picked.is_some() {
            SessionState::Picked
        } else if self.timed_out || now >= self.created + self.timeout {
            SessionState::TimedOut
        } else {
            SessionState::Created
        }
    }
}

/// All sessions of the (single) fake user.
#[derive(Debug, Default)]
pub(crate) struct PickerState {
    sessions: Vec<Session>,
    by_id: HashMap<String, usize>,
}

impl PickerState {
    fn get(&self, id: &str) -> Option<&Session> {
        self.by_id.get(id).and_then(|i| self.sessions.get(*i))
    }

    fn get_mut(&mut self, id: &str) -> Option<&mut Session> {
        self.by_id
            .get(id)
            .copied()
            .and_then(move |i| self.sessions.get_mut(i))
    }

    /// The session `id`, if the user can still act on it (state CREATED at `now`).
    fn pickable(&mut self, id: &str, now: DateTime<Utc>) -> Result<&mut Session, Error> {
        let s = self
            .get_mut(id)
            .ok_or_else(|| Error::UnknownSession(id.to_owned()))?;
        let state = s.state(now);
        if state != SessionState::Created {
            return Err(Error::SessionNotPickable {
                id: id.to_owned(),
                state,
            });
        }
        Ok(s)
    }
}

/// Test hook playing the user in the Google Photos picker UI.
#[derive(Clone)]
pub struct PickerControl {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for PickerControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PickerControl").finish_non_exhaustive()
    }
}

impl PickerControl {
    /// The user picks `ids` (in this order) and taps Done: CREATED → PICKED.
    pub fn pick(&self, session_id: &str, ids: &[MediaItemId]) -> Result<(), Error> {
        pick(&self.inner, session_id, ids)
    }

    /// The user picks nothing and the timeout runs out: `timeoutIn` becomes `"0s"`.
    pub fn let_timeout(&self, session_id: &str) -> Result<(), Error> {
        let now = self.inner.now();
        self.inner
            .picker_state()
            .pickable(session_id, now)?
            .timed_out = true;
        Ok(())
    }

    /// Every session ever created, oldest first.
    pub fn sessions(&self) -> Vec<PickerSessionInfo> {
        let now = self.inner.now();
        let st = self.inner.picker_state();
        let lib = self.inner.library.read();
        st.sessions
            .iter()
            .map(|s| PickerSessionInfo {
                id: s.id.clone(),
                state: s.state(now),
                max_item_count: s.max_items,
                picked: s
                    .picked
                    .iter()
                    .flatten()
                    .filter_map(|q| lib.items.get(*q as usize).map(|r| r.id.clone()))
                    .collect(),
                request_id: s.request_id.clone(),
            })
            .collect()
    }

    /// The most recently created session that is still waiting for the user.
    pub fn latest_waiting(&self) -> Option<String> {
        let now = self.inner.now();
        let st = self.inner.picker_state();
        st.sessions
            .iter()
            .rev()
            .find(|s| s.state(now) == SessionState::Created)
            .map(|s| s.id.clone())
    }
}

/// The user picks `ids` and taps Done (shared by [`PickerControl`] and the fake picker page).
pub(crate) fn pick(inner: &Inner, session_id: &str, ids: &[MediaItemId]) -> Result<(), Error> {
    let seqs = {
        let lib = inner.library.read();
        ids.iter()
            .map(|id| {
                lib.get(id.as_str())
                    .filter(|r| !r.removed)
                    .map(|r| r.seq)
                    .ok_or_else(|| Error::UnknownItem(id.clone()))
            })
            .collect::<Result<Vec<u32>, Error>>()?
    };
    let now = inner.now();
    let mut st = inner.picker_state();
    let s = st.pickable(session_id, now)?;
    if seqs.len() > s.max_items as usize {
        return Err(Error::TooManyPicked {
            max: s.max_items,
            picked: seqs.len(),
        });
    }
    s.picked = Some(seqs);
    Ok(())
}

/// The fake picker "UI" for people driving the `fake-google` binary by hand:
/// `GET /picker-ui/{id}` describes the session, `GET /picker-ui/{id}/pick?count=N` picks the N
/// newest library items and `?ids=A,B` picks those ids.
pub(crate) fn ui(inner: &Inner, path: &str, query: &[(String, String)]) -> Reply {
    let rest = path.trim_start_matches("/picker-ui/");
    let (session_id, action) = rest.split_once('/').unwrap_or((rest, ""));
    let html = |status: u16, body: String| {
        Reply::text(
            status,
            "text/html; charset=utf-8",
            format!("<!doctype html><title>Fake Google Photos picker</title>{body}"),
        )
    };
    let q = |k: &str| {
        query
            .iter()
            .rev()
            .find(|(a, _)| a == k)
            .map(|(_, v)| v.as_str())
    };
    match action {
        "" => html(
            200,
            format!(
                "<p>Fake picker for session {session_id}. Tests use fake_google::PickerControl; by hand, open \
                 <a href=\"/picker-ui/{session_id}/pick?count=10\">/picker-ui/{session_id}/pick?count=10</a> \
                 or /picker-ui/{session_id}/pick?ids=ID1,ID2.</p>"
            ),
        ),
        "pick" => {
            let ids: Vec<MediaItemId> = match (q("ids"), q("count")) {
                (Some(ids), _) => ids
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(MediaItemId::from)
                    .collect(),
                (None, count) => {
                    let n = count.and_then(|c| c.parse::<usize>().ok()).unwrap_or(10);
                    let lib = inner.library.read();
                    lib.order
                        .iter()
                        .take(n)
                        .map(|(_, seq)| lib.items[*seq as usize].id.clone())
                        .collect()
                }
            };
            match pick(inner, session_id, &ids) {
                Ok(()) => html(
                    200,
                    format!(
                        "<p>Picked {} items. You can close this page.</p>",
                        ids.len()
                    ),
                ),
                Err(e) => html(400, format!("<p>{e}</p>")),
            }
        }
        _ => html(404, "<p>Not found</p>".to_owned()),
    }
}

fn duration(d: TimeDelta) -> String {
    format!("{}s", d.num_seconds().max(0))
}

fn session_json(inner: &Inner, s: &Session, now: DateTime<Utc>) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(s.id));
    m.insert(
        "pickerUri".into(),
        json!(format!("{}/picker-ui/{}", inner.base, s.id)),
    );
    if s.picked.is_none() {
        // pollingConfig only while mediaItemsSet is false (spec §3.2).
        let left = if s.timed_out {
            TimeDelta::zero()
        } else {
            s.created + s.timeout - now
        };
        let poll =
            TimeDelta::from_std(inner.config.picker.poll_interval).unwrap_or(TimeDelta::seconds(5));
        m.insert(
            "pollingConfig".into(),
            json!({"pollInterval": duration(poll), "timeoutIn": duration(left)}),
        );
    }
    m.insert("expireTime".into(), json!(rfc3339(s.expire)));
    m.insert(
        "pickingConfig".into(),
        json!({"maxItemCount": s.max_items.to_string()}),
    );
    m.insert("mediaItemsSet".into(), json!(s.picked.is_some()));
    Value::Object(m)
}

pub(crate) fn handle(inner: &Inner, kind: EndpointKind, req: &Req<'_>) -> Reply {
    use EndpointKind as K;
    let method = match kind {
        K::PickerCreateSession => "CreateSession",
        K::PickerGetSession => "GetSession",
        K::PickerDeleteSession => "DeleteSession",
        K::PickerListItems => "ListMediaItems",
        _ => return Reply::error(404, "NOT_FOUND", "Method not found."),
    };
    let full_method = format!("{SERVICE_PREFIX}{method}");
    if let Err(r) = authorize(
        inner,
        req,
        &[scopes::PICKER_READONLY],
        Service::Picker,
        &full_method,
    ) {
        return r;
    }
    let id = req.path.rsplit('/').next().unwrap_or("");
    let result = match kind {
        K::PickerCreateSession => create(inner, req),
        K::PickerGetSession => get(inner, id),
        K::PickerDeleteSession => delete(inner, id),
        _ => list_items(inner, req),
    };
    result.unwrap_or_else(|r| r)
}

fn is_uuid_v4(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            14 => *c == b'4',
            19 => matches!(c.to_ascii_lowercase(), b'8' | b'9' | b'a' | b'b'),
            _ => c.is_ascii_hexdigit(),
        })
}

fn create(inner: &Inner, req: &Req<'_>) -> Result<Reply, Reply> {
    req.check_query(&["requestId"])?;
    let request_id = req.q("requestId").map(str::to_owned);
    if let Some(r) = &request_id
        && !is_uuid_v4(r)
    {
        return Err(Reply::invalid("Request ID must be a valid UUID version 4."));
    }
    let body: Value = if req.body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(req.body)
            .map_err(|e| Reply::invalid(&format!("Invalid JSON payload received. {e}")))?
    };
    let requested = match body
        .get("pickingConfig")
        .and_then(|p| p.get("maxItemCount"))
    {
        None | Some(Value::Null) => 0,
        Some(v) => json_i64(v).ok_or_else(|| {
            Reply::invalid("Invalid value at 'picking_config.max_item_count' (TYPE_INT64).")
        })?,
    };
    if requested < 0 {
        return Err(Reply::invalid("maxItemCount must be non-negative."));
    }
    // 0/unset means 2000; larger values are coerced to 2000 (spec §3.2).
    let max_items = if requested == 0 {
        MAX_ITEMS
    } else {
        requested.min(MAX_ITEMS)
    } as u32;
    let cfg = &inner.config.picker;
    if cfg.no_photos_account {
        return Err(Reply::error(
            400,
            "FAILED_PRECONDITION",
            "The user does not have an active Google Photos account.",
        ));
    }
    let now = inner.now();
    let mut st = inner.picker_state();
    let live = st
        .sessions
        .iter()
        .filter(|s| {
            matches!(
                s.state(now),
                SessionState::Created | SessionState::Picked | SessionState::TimedOut
            )
        })
        .count();
    if live >= cfg.max_live_sessions {
        return Err(Reply::error(
            429,
            "RESOURCE_EXHAUSTED",
            "Too many sessions have been created for this user.",
        ));
    }
    let n = st.sessions.len() as u64;
    let h = sha256(&[&inner.secret, b"session", &n.to_le_bytes()]);
    let id = format!("{}-{}", &b64(&h)[..8], n);
    let session = Session {
        id: id.clone(),
        created: now,
        expire: now + TimeDelta::from_std(cfg.session_ttl).unwrap_or(TimeDelta::hours(1)),
        timeout: TimeDelta::from_std(cfg.timeout).unwrap_or(TimeDelta::minutes(10)),
        max_items,
        picked: None,
        timed_out: false,
        deleted: false,
        request_id,
    };
    let body = session_json(inner, &session, now);
    let idx = st.sessions.len();
    st.sessions.push(session);
    st.by_id.insert(id, idx);
    Ok(Reply::ok(&body))
}

fn not_found() -> Reply {
    Reply::error(404, "NOT_FOUND", "Requested entity was not found.")
}

fn expired() -> Reply {
    Reply::error(403, "PERMISSION_DENIED", "The session has expired.")
}

fn get(inner: &Inner, id: &str) -> Result<Reply, Reply> {
    let now = inner.now();
    let st = inner.picker_state();
    let s = st.get(id).ok_or_else(not_found)?;
    match s.state(now) {
        SessionState::Deleted => Err(not_found()),
        SessionState::Expired => Err(expired()),
        _ => Ok(Reply::ok(&session_json(inner, s, now))),
    }
}

fn delete(inner: &Inner, id: &str) -> Result<Reply, Reply> {
    let mut st = inner.picker_state();
    match st.get_mut(id) {
        Some(s) if !s.deleted => {
            s.deleted = true;
            Ok(Reply::ok(&json!({})))
        }
        _ => Err(not_found()),
    }
}

fn list_items(inner: &Inner, req: &Req<'_>) -> Result<Reply, Reply> {
    req.check_query(&["sessionId", "pageSize", "pageToken"])?;
    if !req.body.is_empty() {
        return Err(Reply::invalid("The request body must be empty."));
    }
    let session_id = req
        .q("sessionId")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Reply::invalid("sessionId is required."))?;
    let size = match req.q("pageSize") {
        None => 50,
        Some(s) => match s.parse::<i64>() {
            Ok(0) => 50,
            Ok(n) if n < 0 => return Err(Reply::invalid("Page size must be non-negative.")),
            Ok(n) => n.min(100) as usize,
            Err(_) => {
                return Err(Reply::invalid(&format!(
                    "Invalid value at 'page_size' (TYPE_INT32), \"{s}\""
                )));
            }
        },
    };
    let now = inner.now();
    let picked: Vec<u32> = {
        let st = inner.picker_state();
        let s = st.get(session_id).ok_or_else(not_found)?;
        match s.state(now) {
            SessionState::Deleted => return Err(not_found()),
            SessionState::Expired => return Err(expired()),
            SessionState::Picked => s.picked.clone().unwrap_or_default(),
            SessionState::Created | SessionState::TimedOut => {
                return Err(Reply::error(
                    400,
                    "FAILED_PRECONDITION",
                    "The user has not finished picking media items.",
                ));
            }
        }
    };
    let fp = fingerprint(&format!("picked {session_id}"));
    let start = match req.q("pageToken").filter(|t| !t.is_empty()) {
        None => 0,
        Some(t) => PageToken::decode(&inner.secret, t, TOKEN_PICKED, fp)
            .ok_or_else(|| Reply::invalid("Invalid page token."))?
            .a
            .max(0) as usize,
    };
    let lib = inner.library.read();
    let end = (start + size).min(picked.len());
    let items: Vec<Value> = picked[start.min(end)..end]
        .iter()
        .filter_map(|s| lib.items.get(*s as usize))
        .map(|r| {
            let mut meta = Map::new();
            meta.insert("width".into(), json!(r.width));
            meta.insert("height".into(), json!(r.height));
            if let Some(c) = r.camera() {
                meta.insert("cameraMake".into(), json!(c.0));
                meta.insert("cameraModel".into(), json!(c.1));
            }
            if r.is_video {
                let mut v = Map::new();
                if let Some(c) = r.camera() {
                    v.insert("fps".into(), json!(c.4));
                }
                v.insert("processingStatus".into(), json!(r.video_status.as_str()));
                meta.insert("videoMetadata".into(), Value::Object(v));
            } else {
                let mut p = Map::new();
                if let Some(c) = r.camera() {
                    let e = photo_exif(inner.library.seed(), r.seq);
                    p.insert("focalLength".into(), json!(c.2));
                    p.insert("apertureFNumber".into(), json!(c.3));
                    p.insert("isoEquivalent".into(), json!(e.iso));
                    p.insert("exposureTime".into(), json!(e.exposure));
                }
                meta.insert("photoMetadata".into(), Value::Object(p));
            }
            json!({
                "id": r.id.as_str(),
                "createTime": rfc3339(r.creation_time()),
                "type": if r.is_video { "VIDEO" } else { "PHOTO" },
                "mediaFile": {
                    "baseUrl": inner.base_url(r.seq, MediaSource::Picker),
                    "mimeType": r.mime,
                    "filename": r.filename,
                    "mediaFileMetadata": Value::Object(meta),
                }
            })
        })
        .collect();
    let mut m = Map::new();
    if !items.is_empty() {
        m.insert("mediaItems".into(), Value::Array(items));
    }
    if end < picked.len() {
        let t = PageToken {
            kind: TOKEN_PICKED,
            fingerprint: fp,
            page: 0,
            a: end as i64,
            b: 0,
        };
        m.insert("nextPageToken".into(), json!(t.encode(&inner.secret)));
    }
    Ok(Reply::ok(&Value::Object(m)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_v4_check() {
        assert!(is_uuid_v4("3f2504e0-4f89-41d3-9a0c-0305e82c3301"));
        assert!(!is_uuid_v4("3f2504e0-4f89-11d3-9a0c-0305e82c3301"));
        assert!(!is_uuid_v4("not-a-uuid"));
    }
}
