//! Library API v1 with post-2025 semantics (spec §1, §6.2).

use std::cmp::Reverse;
use std::collections::HashSet;
use std::ops::Bound;

use chrono::{Datelike, NaiveDate};
use serde_json::{Map, Value, json};

use crate::config::{MissingItemResponse, PageQuirks};
use crate::faults::EndpointKind;
use crate::library::{AlbumRecord, ItemRecord, LibraryData, OrderKey, category_bit};
use crate::oauth::scopes;
use crate::rng::SplitMix64;
use crate::server::{
    Inner, MediaSource, PageToken, Reply, Req, Service, authorize, fingerprint, json_i64,
};

const TOKEN_LIST: u8 = 1;
const TOKEN_SEARCH: u8 = 2;
const TOKEN_ALBUM_SEARCH: u8 = 3;
const TOKEN_ALBUMS: u8 = 4;

const SERVICE_PREFIX: &str = "google.photos.library.v1.PhotosLibraryService.";

pub(crate) fn handle(inner: &Inner, kind: EndpointKind, req: &Req<'_>) -> Reply {
    use EndpointKind as K;
    let method = match kind {
        K::LibraryList => "ListMediaItems",
        K::LibrarySearch => "SearchMediaItems",
        K::LibraryGet => "GetMediaItem",
        K::LibraryBatchGet => "BatchGetMediaItems",
        K::LibraryAlbumsList => "ListAlbums",
        K::LibraryAlbumsGet => "GetAlbum",
        K::LibrarySharedAlbums => "ListSharedAlbums",
        _ => return Reply::error(404, "NOT_FOUND", "Method not found."),
    };
    let full_method = format!("{SERVICE_PREFIX}{method}");
    if let Err(r) = authorize(
        inner,
        req,
        &scopes::LIBRARY_READ,
        Service::Library,
        &full_method,
    ) {
        return r;
    }
    let result = match kind {
        K::LibraryList => list(inner, req),
        K::LibrarySearch => search(inner, req),
        K::LibraryGet => get(inner, req),
        K::LibraryBatchGet => batch_get(inner, req),
        K::LibraryAlbumsList => albums_list(inner, req),
        K::LibraryAlbumsGet => album_get(inner, req),
        // Every sharing method is gone since 2025-03-31 (spec §2).
        _ => Err(Reply::error(
            403,
            "PERMISSION_DENIED",
            "The caller does not have permission",
        )),
    };
    result.unwrap_or_else(|r| r)
}

fn page_size(raw: Option<i64>, default: usize, max: usize) -> Result<usize, Reply> {
    match raw {
        None | Some(0) => Ok(default),
        Some(n) if n < 0 => Err(Reply::invalid("Page size must be non-negative.")),
        Some(n) => Ok((n as usize).min(max)),
    }
}

fn query_page_size(req: &Req<'_>, default: usize, max: usize) -> Result<usize, Reply> {
    let raw = match req.q("pageSize") {
        None => None,
        Some(s) => Some(s.parse::<i64>().map_err(|_| {
            Reply::invalid(&format!(
                "Invalid value at 'page_size' (TYPE_INT32), \"{s}\""
            ))
        })?),
    };
    page_size(raw, default, max)
}

fn decode_token(
    inner: &Inner,
    token: Option<&str>,
    kind: u8,
    fp: u64,
) -> Result<Option<PageToken>, Reply> {
    match token {
        None | Some("") => Ok(None),
        Some(t) => PageToken::decode(&inner.secret, t, kind, fp)
            .map(Some)
            .ok_or_else(|| Reply::invalid("Invalid page token.")),
    }
}

/// How many items page `page` (1-based) carries under the quirks.
fn page_target(q: PageQuirks, page: u32, size: usize) -> usize {
    if q.empty_page_every >= 2 && page.is_multiple_of(q.empty_page_every) {
        0
    } else if q.short_page_every >= 1 && page.is_multiple_of(q.short_page_every) {
        (size / 2).max(1)
    } else {
        size
    }
}

// --- MediaItem JSON --------------------------------------------------------------------------

pub(crate) fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// Per-item photo settings, derived from the seed (not stored).
pub(crate) struct PhotoExif {
    pub iso: i32,
    pub exposure: String,
}

pub(crate) fn photo_exif(seed: u64, seq: u32) -> PhotoExif {
    let mut r = SplitMix64::derive(seed, "exposure", u64::from(seq));
    let iso = *r.pick(&[50, 100, 200, 400, 800, 1600, 3200]);
    let exposure = r.pick(&[
        "0.000250s",
        "0.001s",
        "0.004s",
        "0.008s",
        "0.016666667s",
        "0.033333333s",
        "0.5s",
    ]);
    PhotoExif {
        iso,
        exposure: (*exposure).to_owned(),
    }
}

fn media_item_json(inner: &Inner, rec: &ItemRecord, album: Option<&AlbumRecord>) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(rec.id.as_str()));
    if let Some(d) = &rec.description {
        m.insert("description".into(), json!(d));
    }
    let product = match album {
        Some(a) => format!(
            "https://photos.google.com/lr/album/{}/photo/{}",
            a.id, rec.id
        ),
        None => format!("https://photos.google.com/lr/photo/{}", rec.id),
    };
    m.insert("productUrl".into(), json!(product));
    m.insert(
        "baseUrl".into(),
        json!(inner.base_url(rec.seq, MediaSource::Library)),
    );
    m.insert("mimeType".into(), json!(rec.mime));
    let mut meta = Map::new();
    meta.insert("creationTime".into(), json!(rfc3339(rec.creation_time())));
    // int64 fields are strings in proto3 JSON (spec §6.1).
    meta.insert("width".into(), json!(rec.width.to_string()));
    meta.insert("height".into(), json!(rec.height.to_string()));
    let mut sub = Map::new();
    if let Some(c) = rec.camera() {
        sub.insert("cameraMake".into(), json!(c.0));
        sub.insert("cameraModel".into(), json!(c.1));
    }
    if rec.is_video {
        if let Some(c) = rec.camera() {
            sub.insert("fps".into(), json!(c.4));
        }
        sub.insert("status".into(), json!(rec.video_status.as_str()));
        meta.insert("video".into(), Value::Object(sub));
    } else {
        if let Some(c) = rec.camera() {
            let e = photo_exif(inner.library.seed(), rec.seq);
            sub.insert("focalLength".into(), json!(c.2));
            sub.insert("apertureFNumber".into(), json!(c.3));
            sub.insert("isoEquivalent".into(), json!(e.iso));
            sub.insert("exposureTime".into(), json!(e.exposure));
        }
        meta.insert("photo".into(), Value::Object(sub));
    }
    m.insert("mediaMetadata".into(), Value::Object(meta));
    m.insert("filename".into(), json!(rec.filename));
    Value::Object(m)
}

fn page_json(key: &str, items: Vec<Value>, next: Option<String>) -> Value {
    // Proto3 JSON omits empty repeated fields: an empty page is `{}` (spec §6.1).
    let mut m = Map::new();
    if !items.is_empty() {
        m.insert(key.into(), Value::Array(items));
    }
    if let Some(t) = next {
        m.insert("nextPageToken".into(), json!(t));
    }
    Value::Object(m)
}

// --- list / search ----------------------------------------------------------------------------

/// A validated search (or the plain list) as the scanner needs it.
#[derive(Debug, Clone, Default)]
struct Query {
    dates: Vec<(i32, u32, u32)>,
    ranges: Vec<(NaiveDate, NaiveDate)>,
    include_categories: u32,
    exclude_categories: u32,
    media_type: Option<bool>, // Some(true) = videos only, Some(false) = photos only
    favorites: bool,
    include_archived: bool,
    ascending: bool,
}

impl Query {
    fn matches(&self, r: &ItemRecord) -> bool {
        if !r.library_visible() || (r.archived && !self.include_archived) {
            return false;
        }
        if self.media_type.is_some_and(|v| r.is_video != v) {
            return false;
        }
        if self.favorites && !r.favorite {
            return false;
        }
        if self.include_categories != 0 && r.categories & self.include_categories == 0 {
            return false;
        }
        if r.categories & self.exclude_categories != 0 {
            return false;
        }
        if !self.dates.is_empty() || !self.ranges.is_empty() {
            let day = r.creation_time().date_naive();
            let date_hit = self.dates.iter().any(|&(y, m, d)| {
                (y == 0 || day.year() == y)
                    && (m == 0 || day.month() == m)
                    && (d == 0 || day.day() == d)
            });
            let range_hit = self.ranges.iter().any(|(a, b)| *a <= day && day <= *b);
            if !date_hit && !range_hit {
                return false;
            }
        }
        true
    }
}

/// Keyset scan over the display order: the cursor is the last returned item's key, so items
/// added or removed between pages never cause duplicates (spec §6.2).
fn scan(d: &LibraryData, q: &Query, after: Option<OrderKey>, want: usize) -> (Vec<u32>, bool) {
    let iter: Box<dyn Iterator<Item = &OrderKey>> = match (after, q.ascending) {
        (None, false) => Box::new(d.order.iter()),
        (Some(k), false) => Box::new(d.order.range((Bound::Excluded(k), Bound::Unbounded))),
        (None, true) => Box::new(d.order.iter().rev()),
        (Some(k), true) => Box::new(d.order.range(..k).rev()),
    };
    let mut out = Vec::new();
    for (_, seq) in iter {
        if q.matches(&d.items[*seq as usize]) {
            if out.len() == want {
                return (out, true);
            }
            out.push(*seq);
        }
    }
    (out, false)
}

fn run_query(
    inner: &Inner,
    q: &Query,
    kind: u8,
    fp: u64,
    size: usize,
    token: Option<&str>,
) -> Result<Reply, Reply> {
    let tok = decode_token(inner, token, kind, fp)?;
    let page = tok.map_or(1, |t| t.page);
    let after = tok
        .filter(|t| t.page > 1 && t.b != u32::MAX)
        .map(|t| (Reverse(t.a), t.b));
    let target = page_target(inner.config.page_quirks, page, size);
    let d = inner.library.read();
    let (seqs, more) = scan(&d, q, after, target);
    let next = more.then(|| {
        let (a, b) = match seqs.last() {
            Some(s) => (d.items[*s as usize].creation_ms, *s),
            None => after.map_or((0, u32::MAX), |(Reverse(a), b)| (a, b)),
        };
        PageToken {
            kind,
            fingerprint: fp,
            page: page + 1,
            a,
            b,
        }
        .encode(&inner.secret)
    });
    let items = seqs
        .iter()
        .map(|s| media_item_json(inner, &d.items[*s as usize], None))
        .collect();
    Ok(Reply::ok(&page_json("mediaItems", items, next)))
}

fn list(inner: &Inner, req: &Req<'_>) -> Result<Reply, Reply> {
    req.check_query(&["pageSize", "pageToken"])?;
    let size = query_page_size(req, 25, 100)?;
    run_query(
        inner,
        &Query::default(),
        TOKEN_LIST,
        fingerprint("list"),
        size,
        req.q("pageToken"),
    )
}

fn unknown_field(name: &str, at: &str) -> Reply {
    let loc = if at.is_empty() {
        String::new()
    } else {
        format!(" at '{at}'")
    };
    Reply::invalid(&format!(
        "Invalid JSON payload received. Unknown name \"{name}\"{loc}: Cannot find field."
    ))
}

fn object<'a>(v: &'a Value, at: &str, allowed: &[&str]) -> Result<&'a Map<String, Value>, Reply> {
    let o = v.as_object().ok_or_else(|| {
        Reply::invalid(&format!(
            "Invalid JSON payload received. Expected an object at '{at}'."
        ))
    })?;
    for k in o.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(unknown_field(k, at));
        }
    }
    Ok(o)
}

fn string_list<'a>(o: &'a Map<String, Value>, key: &str) -> Result<Vec<&'a str>, Reply> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .ok_or_else(|| Reply::invalid(&format!("Invalid value at '{key}'.")))
            })
            .collect(),
        Some(_) => Err(Reply::invalid(&format!(
            "Invalid value at '{key}': expected a list."
        ))),
    }
}

fn bool_field(o: &Map<String, Value>, key: &str) -> Result<bool, Reply> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(Reply::invalid(&format!(
            "Invalid value at '{key}' (TYPE_BOOL)."
        ))),
    }
}

fn parse_date(v: &Value, at: &str) -> Result<(i32, u32, u32), Reply> {
    let o = object(v, at, &["year", "month", "day"])?;
    let num = |k: &str| -> Result<i64, Reply> {
        match o.get(k) {
            None | Some(Value::Null) => Ok(0),
            Some(v) => json_i64(v).ok_or_else(|| {
                Reply::invalid(&format!("Invalid value at '{at}.{k}' (TYPE_INT32)."))
            }),
        }
    };
    let (y, m, d) = (num("year")?, num("month")?, num("day")?);
    // Allowed: Y-M-D, Y-M-0, Y-0-0, 0-M-D (spec §1.1 Date wildcards).
    let shape_ok = matches!(
        (y != 0, m != 0, d != 0),
        (true, true, true) | (true, true, false) | (true, false, false) | (false, true, true)
    );
    if !shape_ok || !(0..=9999).contains(&y) || !(0..=12).contains(&m) || !(0..=31).contains(&d) {
        return Err(Reply::invalid("The date provided is invalid."));
    }
    Ok((y as i32, m as u32, d as u32))
}

fn range_bound(date: (i32, u32, u32), end: bool) -> Result<NaiveDate, Reply> {
    let (y, m, d) = date;
    if y == 0 {
        return Err(Reply::invalid("The date range provided is invalid."));
    }
    let m = if m == 0 { if end { 12 } else { 1 } } else { m };
    let day = if d != 0 {
        d
    } else if end {
        // Last day of the month.
        let first_next = if m == 12 {
            NaiveDate::from_ymd_opt(y + 1, 1, 1)
        } else {
            NaiveDate::from_ymd_opt(y, m + 1, 1)
        };
        first_next
            .and_then(|f| f.pred_opt())
            .map_or(28, |l| l.day())
    } else {
        1
    };
    NaiveDate::from_ymd_opt(y, m, day)
        .ok_or_else(|| Reply::invalid("The date range provided is invalid."))
}

fn parse_filters(v: &Value, q: &mut Query) -> Result<bool, Reply> {
    let o = object(
        v,
        "filters",
        &[
            "dateFilter",
            "contentFilter",
            "mediaTypeFilter",
            "featureFilter",
            "includeArchivedMedia",
            "excludeNonAppCreatedData",
        ],
    )?;
    q.include_archived = bool_field(o, "includeArchivedMedia")?;
    // excludeNonAppCreatedData is accepted and ignored under appcreateddata scopes (spec §1.1).
    bool_field(o, "excludeNonAppCreatedData")?;
    let mut other_filters = false;
    if let Some(df) = o.get("dateFilter") {
        let df = object(df, "filters.date_filter", &["dates", "ranges"])?;
        let dates = df
            .get("dates")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let ranges = df
            .get("ranges")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if dates.len() > 5 || ranges.len() > 5 {
            return Err(Reply::invalid(
                "A date filter may contain at most 5 dates and 5 ranges.",
            ));
        }
        for d in &dates {
            q.dates.push(parse_date(d, "filters.date_filter.dates")?);
        }
        for r in &ranges {
            let ro = object(r, "filters.date_filter.ranges", &["startDate", "endDate"])?;
            let (Some(s), Some(e)) = (ro.get("startDate"), ro.get("endDate")) else {
                return Err(Reply::invalid("The date range provided is invalid."));
            };
            let s = range_bound(
                parse_date(s, "filters.date_filter.ranges.start_date")?,
                false,
            )?;
            let e = range_bound(parse_date(e, "filters.date_filter.ranges.end_date")?, true)?;
            if s > e {
                return Err(Reply::invalid("The date range provided is invalid."));
            }
            q.ranges.push((s, e));
        }
    }
    if let Some(cf) = o.get("contentFilter") {
        other_filters = true;
        let cf = object(
            cf,
            "filters.content_filter",
            &["includedContentCategories", "excludedContentCategories"],
        )?;
        let inc = string_list(cf, "includedContentCategories")?;
        let exc = string_list(cf, "excludedContentCategories")?;
        if inc.len() > 10 || exc.len() > 10 {
            return Err(Reply::invalid(
                "A content filter may contain at most 10 categories per list.",
            ));
        }
        for (list, mask) in [
            (&inc, &mut q.include_categories),
            (&exc, &mut q.exclude_categories),
        ] {
            for c in list.iter() {
                let bit = category_bit(c).ok_or_else(|| {
                    Reply::invalid(&format!("Invalid value at 'filters.content_filter' (type.googleapis.com/google.photos.library.v1.ContentCategory), \"{c}\""))
                })?;
                // NONE is ignored when other categories are present.
                if *c != "NONE" {
                    *mask |= bit;
                }
            }
        }
        if q.include_categories & q.exclude_categories != 0 {
            return Err(Reply::invalid(
                "A content category cannot be both included and excluded.",
            ));
        }
    }
    if let Some(mf) = o.get("mediaTypeFilter") {
        other_filters = true;
        let mf = object(mf, "filters.media_type_filter", &["mediaTypes"])?;
        let types = string_list(mf, "mediaTypes")?;
        if types.len() > 1 {
            return Err(Reply::invalid(
                "Only one media type may be specified in a media type filter.",
            ));
        }
        q.media_type = match types.first().copied() {
            None | Some("ALL_MEDIA") => None,
            Some("PHOTO") => Some(false),
            Some("VIDEO") => Some(true),
            Some(other) => {
                return Err(Reply::invalid(&format!(
                    "Invalid value at 'filters.media_type_filter.media_types[0]' (type.googleapis.com/google.photos.library.v1.MediaTypeFilter.MediaType), \"{other}\""
                )));
            }
        };
    }
    if let Some(ff) = o.get("featureFilter") {
        other_filters = true;
        let ff = object(ff, "filters.feature_filter", &["includedFeatures"])?;
        for f in string_list(ff, "includedFeatures")? {
            match f {
                "FAVORITES" => q.favorites = true,
                "NONE" => {}
                other => {
                    return Err(Reply::invalid(&format!(
                        "Invalid value at 'filters.feature_filter.included_features[0]' (type.googleapis.com/google.photos.library.v1.FeatureFilter.Feature), \"{other}\""
                    )));
                }
            }
        }
    }
    Ok(other_filters)
}

fn search(inner: &Inner, req: &Req<'_>) -> Result<Reply, Reply> {
    req.check_query(&[])?;
    let body: Value = if req.body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(req.body)
            .map_err(|e| Reply::invalid(&format!("Invalid JSON payload received. {e}")))?
    };
    let o = object(
        &body,
        "",
        &["albumId", "pageSize", "pageToken", "filters", "orderBy"],
    )?;
    let size = match o.get("pageSize") {
        None | Some(Value::Null) => page_size(None, 25, 100)?,
        Some(v) => page_size(
            Some(
                json_i64(v)
                    .ok_or_else(|| Reply::invalid("Invalid value at 'page_size' (TYPE_INT32)."))?,
            ),
            25,
            100,
        )?,
    };
    let token = o.get("pageToken").and_then(Value::as_str);
    let album_id = o
        .get("albumId")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let filters = o.get("filters").filter(|v| !v.is_null());
    if album_id.is_some() && filters.is_some() {
        return Err(Reply::invalid(
            "Filters and album id cannot be set together.",
        ));
    }
    if let Some(album_id) = album_id {
        if o.get("orderBy").is_some() {
            return Err(Reply::invalid(
                "Order by is only supported with a date filter.",
            ));
        }
        return album_search(inner, album_id, size, token);
    }
    let mut q = Query::default();
    let other_filters = match filters {
        Some(f) => parse_filters(f, &mut q)?,
        None => false,
    };
    match o.get("orderBy").and_then(Value::as_str).map(str::trim) {
        None | Some("") => {}
        Some(order) => {
            if q.dates.is_empty() && q.ranges.is_empty() {
                return Err(Reply::invalid(
                    "Order by is only supported with a date filter.",
                ));
            }
            if other_filters {
                return Err(Reply::invalid(
                    "Order by is only supported with a date filter, includeArchivedMedia and excludeNonAppCreatedData.",
                ));
            }
            q.ascending = match order {
                "MediaMetadata.creation_time" => true,
                "MediaMetadata.creation_time desc" => false,
                _ => return Err(Reply::invalid(&format!("Invalid order by: \"{order}\"."))),
            };
        }
    }
    let fp = fingerprint(&format!("search {q:?}"));
    run_query(inner, &q, TOKEN_SEARCH, fp, size, token)
}

fn invalid_album() -> Reply {
    Reply::invalid("Invalid album ID.")
}

fn album_search(
    inner: &Inner,
    album_id: &str,
    size: usize,
    token: Option<&str>,
) -> Result<Reply, Reply> {
    let d = inner.library.read();
    let album = d.album(album_id).ok_or_else(invalid_album)?;
    let fp = fingerprint(&format!("album {album_id}"));
    let tok = decode_token(inner, token, TOKEN_ALBUM_SEARCH, fp)?;
    let page = tok.map_or(1, |t| t.page);
    let start = tok.map_or(0, |t| t.a.max(0) as usize);
    let target = page_target(inner.config.page_quirks, page, size);
    // Positions index the member list, where removed items stay as tombstones.
    let live: Vec<usize> = (start..album.members.len())
        .filter(|i| d.items[album.members[*i] as usize].library_visible())
        .collect();
    let taken = &live[..target.min(live.len())];
    let more = live.len() > taken.len();
    let next_pos = taken.last().map_or(start, |i| i + 1);
    let next = more.then(|| {
        PageToken {
            kind: TOKEN_ALBUM_SEARCH,
            fingerprint: fp,
            page: page + 1,
            a: next_pos as i64,
            b: 0,
        }
        .encode(&inner.secret)
    });
    let items = taken
        .iter()
        .map(|i| media_item_json(inner, &d.items[album.members[*i] as usize], Some(album)))
        .collect();
    Ok(Reply::ok(&page_json("mediaItems", items, next)))
}

// --- get / batchGet ----------------------------------------------------------------------------

fn missing_item(inner: &Inner) -> Reply {
    match inner.config.missing_item {
        MissingItemResponse::InvalidArgument => Reply::invalid("Invalid media item id."),
        MissingItemResponse::NotFound => {
            Reply::error(404, "NOT_FOUND", "Requested entity was not found.")
        }
    }
}

fn get(inner: &Inner, req: &Req<'_>) -> Result<Reply, Reply> {
    req.check_query(&[])?;
    let id = req.path.rsplit('/').next().unwrap_or("");
    let d = inner.library.read();
    // Foreign items behave as if they did not exist (spec §6.2).
    let rec = d
        .get(id)
        .filter(|r| r.library_visible())
        .ok_or_else(|| missing_item(inner))?;
    Ok(Reply::ok(&media_item_json(inner, rec, None)))
}

fn batch_get(inner: &Inner, req: &Req<'_>) -> Result<Reply, Reply> {
    req.check_query(&["mediaItemIds"])?;
    let ids: Vec<&str> = req
        .query
        .iter()
        .filter(|(k, _)| k == "mediaItemIds")
        .map(|(_, v)| v.as_str())
        .collect();
    if ids.is_empty() {
        return Err(Reply::invalid(
            "Request must contain at least one media item id.",
        ));
    }
    if ids.len() > 50 {
        return Err(Reply::invalid(
            "Request must not contain more than 50 media item ids.",
        ));
    }
    let mut seen = HashSet::new();
    if !ids.iter().all(|i| seen.insert(*i)) {
        return Err(Reply::invalid(
            "Request must not contain duplicate media item ids.",
        ));
    }
    let d = inner.library.read();
    let results: Vec<Value> = ids
        .iter()
        .map(|id| match d.get(id).filter(|r| r.library_visible()) {
            Some(rec) => json!({"mediaItem": media_item_json(inner, rec, None)}),
            None => match inner.config.missing_item {
                MissingItemResponse::InvalidArgument => {
                    json!({"status": {"code": 3, "message": "Invalid media item id."}})
                }
                MissingItemResponse::NotFound => {
                    json!({"status": {"code": 5, "message": "Requested entity was not found."}})
                }
            },
        })
        .collect();
    Ok(Reply::ok(&json!({"mediaItemResults": results})))
}

// --- albums -------------------------------------------------------------------------------------

fn album_json(inner: &Inner, d: &LibraryData, a: &AlbumRecord) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(a.id.as_str()));
    m.insert("title".into(), json!(a.title));
    m.insert(
        "productUrl".into(),
        json!(format!("https://photos.google.com/lr/album/{}", a.id)),
    );
    m.insert("isWriteable".into(), json!(true));
    m.insert("mediaItemsCount".into(), json!(d.live_count(a).to_string()));
    if let Some(cover) = a
        .members
        .iter()
        .map(|s| &d.items[*s as usize])
        .find(|r| r.library_visible())
    {
        m.insert(
            "coverPhotoBaseUrl".into(),
            json!(inner.base_url(cover.seq, MediaSource::Library)),
        );
        m.insert("coverPhotoMediaItemId".into(), json!(cover.id.as_str()));
    }
    Value::Object(m)
}

fn albums_list(inner: &Inner, req: &Req<'_>) -> Result<Reply, Reply> {
    req.check_query(&["pageSize", "pageToken", "excludeNonAppCreatedData"])?;
    if let Some(v) = req.q("excludeNonAppCreatedData")
        && v != "true"
        && v != "false"
    {
        return Err(Reply::invalid(&format!(
            "Invalid value at 'exclude_non_app_created_data' (TYPE_BOOL), \"{v}\""
        )));
    }
    let size = query_page_size(req, 20, 50)?;
    let fp = fingerprint("albums");
    let tok = decode_token(inner, req.q("pageToken"), TOKEN_ALBUMS, fp)?;
    let page = tok.map_or(1, |t| t.page);
    let start = tok.map_or(0, |t| t.a.max(0) as usize);
    let d = inner.library.read();
    let total = d.albums.len();
    let end = (start + page_target(inner.config.page_quirks, page, size)).min(total);
    let next = (end < total).then(|| {
        PageToken {
            kind: TOKEN_ALBUMS,
            fingerprint: fp,
            page: page + 1,
            a: end as i64,
            b: 0,
        }
        .encode(&inner.secret)
    });
    let albums = d.albums[start.min(total)..end]
        .iter()
        .map(|a| album_json(inner, &d, a))
        .collect();
    Ok(Reply::ok(&page_json("albums", albums, next)))
}

fn album_get(inner: &Inner, req: &Req<'_>) -> Result<Reply, Reply> {
    req.check_query(&[])?;
    let id = req.path.rsplit('/').next().unwrap_or("");
    let d = inner.library.read();
    let a = d.album(id).ok_or_else(invalid_album)?;
    Ok(Reply::ok(&album_json(inner, &d, a)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quirk_targets() {
        let q = PageQuirks {
            short_page_every: 3,
            empty_page_every: 7,
        };
        let t: Vec<usize> = (1..=7).map(|p| page_target(q, p, 10)).collect();
        assert_eq!(t, [10, 10, 5, 10, 10, 5, 0]);
        assert_eq!(page_target(PageQuirks::NONE, 7, 10), 10);
    }

    #[test]
    fn range_bounds_expand_wildcards() {
        assert_eq!(
            range_bound((2024, 2, 0), true).unwrap(),
            NaiveDate::from_ymd_opt(2024, 2, 29).unwrap()
        );
        assert_eq!(
            range_bound((2023, 0, 0), false).unwrap(),
            NaiveDate::from_ymd_opt(2023, 1, 1).unwrap()
        );
        assert!(range_bound((0, 2, 3), false).is_err());
    }
}
