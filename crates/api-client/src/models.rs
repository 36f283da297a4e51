//! Typed models of the Photos Library API (field names from the discovery document,
//! rev 20240605) and of the Picker API (spec §3). Unknown fields are ignored, enums carry
//! an `Unknown` fallback, so additions on Google's side do not break decoding.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps an id received from Google or stored earlier.
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }
            /// The id text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }
    };
}

string_id!(
    /// A media item id; persistent across sessions, shared by the Library and Picker APIs.
    MediaItemId
);
string_id!(
    /// An album id.
    AlbumId
);
string_id!(
    /// A Picker session id.
    PickerSessionId
);

/// A media base URL (valid ~60 minutes). Never fetch it bare; append parameters (spec §1.4).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BaseUrl(String);

impl BaseUrl {
    /// Wraps a base URL.
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }
    /// The bare URL text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// `=d`: the photo's bytes with EXIF (Google strips location).
    pub fn photo_download(&self) -> String {
        self.with_params("d")
    }
    /// `=dv`: the video's bytes (a high-quality transcode, not the original file).
    pub fn video_download(&self) -> String {
        self.with_params("dv")
    }
    /// `=wW-hH`: a rendition fitting inside `width`×`height`.
    pub fn sized(&self, width: u32, height: u32) -> String {
        self.with_params(&format!("w{width}-h{height}"))
    }
    /// `=<params>` with `params` already `-`-joined.
    pub fn with_params(&self, params: &str) -> String {
        format!("{}={params}", self.0)
    }
}

// ---------------------------------------------------------------- serde helpers

/// int64 fields: proto3 JSON writes them as strings; accept numbers too, write strings.
pub(crate) mod int64_string {
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Num(i64),
        Str(String),
    }

    pub(crate) fn parse<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        match Option::<Either>::deserialize(d)? {
            None => Ok(None),
            Some(Either::Num(n)) => Ok(Some(n)),
            Some(Either::Str(s)) if s.is_empty() => Ok(None),
            Some(Either::Str(s)) => s
                .parse()
                .map(Some)
                .map_err(|_| D::Error::custom(format!("not an int64: {s:?}"))),
        }
    }

    pub(crate) fn serialize<S: Serializer>(v: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(n) => s.serialize_str(&n.to_string()),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        parse(d)
    }
}

/// Picker integers: documented as JSON numbers; accept strings too, write numbers.
pub(crate) mod lenient_int {
    use serde::{Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(v: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(n) => s.serialize_i64(*n),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        super::int64_string::parse(d)
    }
}

/// google.protobuf.Duration in JSON: `"5s"`, `"3.5s"`, `"0.008s"`.
pub(crate) mod google_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub(crate) fn parse(s: &str) -> Option<Duration> {
        let secs = s.trim().strip_suffix('s')?;
        if secs.starts_with('-') {
            return None;
        }
        let (whole, frac) = secs.split_once('.').unwrap_or((secs, ""));
        if whole.is_empty() && frac.is_empty() {
            return None;
        }
        let whole: u64 = if whole.is_empty() {
            0
        } else {
            whole.parse().ok()?
        };
        if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let nanos: u32 = if frac.is_empty() {
            0
        } else {
            format!("{frac:0<9}").parse().ok()?
        };
        Some(Duration::new(whole, nanos))
    }

    pub(crate) fn format(d: Duration) -> String {
        if d.subsec_nanos() == 0 {
            format!("{}s", d.as_secs())
        } else {
            let frac = format!("{:09}", d.subsec_nanos());
            format!("{}.{}s", d.as_secs(), frac.trim_end_matches('0'))
        }
    }

    pub(crate) fn serialize<S: Serializer>(v: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(d) => s.serialize_str(&format(*d)),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(s) => parse(&s)
                .map(Some)
                .ok_or_else(|| D::Error::custom(format!("not a Duration: {s:?}"))),
        }
    }
}

// ---------------------------------------------------------------- Library API

/// A photo or video in the Library API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaItem {
    /// Persistent id.
    pub id: MediaItemId,
    /// User description (< 1000 chars).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Google Photos URL for the signed-in user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_url: Option<String>,
    /// Base URL for the bytes (valid ~60 min).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<BaseUrl>,
    /// e.g. `image/jpeg`.
    #[serde(default)]
    pub mime_type: String,
    /// File name shown in Google Photos.
    #[serde(default)]
    pub filename: String,
    /// Capture metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_metadata: Option<MediaMetadata>,
    /// Only for shared-album items (practically never since 2025).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contributor_info: Option<ContributorInfo>,
}

impl MediaItem {
    /// Whether the item is a video (has video metadata, or a `video/*` MIME type).
    pub fn is_video(&self) -> bool {
        self.media_metadata
            .as_ref()
            .is_some_and(|m| m.video.is_some())
            || self.mime_type.starts_with("video/")
    }

    /// The URL that downloads the item's bytes (`=dv` for videos, `=d` for photos).
    pub fn download_url(&self) -> Option<String> {
        let base = self.base_url.as_ref()?;
        Some(if self.is_video() {
            base.video_download()
        } else {
            base.photo_download()
        })
    }
}

/// Metadata of a media item.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaMetadata {
    /// Capture time (not upload time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_time: Option<DateTime<Utc>>,
    /// Width in pixels (int64 as a JSON string).
    #[serde(
        default,
        with = "int64_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub width: Option<i64>,
    /// Height in pixels (int64 as a JSON string).
    #[serde(
        default,
        with = "int64_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub height: Option<i64>,
    /// Set for photos (may be empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub photo: Option<Photo>,
    /// Set for videos.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<Video>,
}

/// Photo metadata; every field optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Photo {
    /// Camera brand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub camera_make: Option<String>,
    /// Camera model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub camera_model: Option<String>,
    /// Focal length in mm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub focal_length: Option<f64>,
    /// Aperture f-number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aperture_f_number: Option<f64>,
    /// ISO.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iso_equivalent: Option<i32>,
    /// Exposure time (Duration string such as `"0.008s"`).
    #[serde(
        default,
        with = "google_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub exposure_time: Option<Duration>,
}

/// Processing state of a video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VideoStatus {
    /// Not specified.
    Unspecified,
    /// Still being processed; `=dv` may not work yet.
    Processing,
    /// Ready to download.
    Ready,
    /// Processing failed.
    Failed,
    /// A value this client does not know.
    #[serde(other)]
    Unknown,
}

/// Video metadata.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Video {
    /// Camera brand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub camera_make: Option<String>,
    /// Camera model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub camera_model: Option<String>,
    /// Frame rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fps: Option<f64>,
    /// Processing status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<VideoStatus>,
}

/// Who added an item to a shared album.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContributorInfo {
    /// Profile picture base URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_picture_base_url: Option<String>,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// An album (app-created only since 2025).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Album {
    /// Persistent id.
    pub id: AlbumId,
    /// Title (≤ 500 chars).
    #[serde(default)]
    pub title: String,
    /// Google Photos URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_url: Option<String>,
    /// Whether the app may add items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_writeable: Option<bool>,
    /// Number of items (int64 as a JSON string).
    #[serde(
        default,
        with = "int64_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub media_items_count: Option<i64>,
    /// Cover base URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cover_photo_base_url: Option<BaseUrl>,
    /// Cover item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cover_photo_media_item_id: Option<MediaItemId>,
    /// Sharing details (never sent since 2025; kept for old fixtures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_info: Option<serde_json::Value>,
}

/// A page of `mediaItems.list` / `mediaItems.search`. A missing `mediaItems` means empty.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListMediaItemsResponse {
    /// The items (absent = empty, per proto3 JSON).
    #[serde(default)]
    pub media_items: Vec<MediaItem>,
    /// Token for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// `mediaItems.search` responses have the same shape as list responses.
pub type SearchMediaItemsResponse = ListMediaItemsResponse;

/// A page of `albums.list`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListAlbumsResponse {
    /// The albums (absent = empty).
    #[serde(default)]
    pub albums: Vec<Album>,
    /// Token for the next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// Body of `mediaItems.search`. `album_id` and `filters` are mutually exclusive.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchMediaItemsRequest {
    /// Search inside this album (no filters allowed then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub album_id: Option<AlbumId>,
    /// Page size (the client sets 100 when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_size: Option<i32>,
    /// Continuation token (managed by the client's stream).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_token: Option<String>,
    /// Filters (AND-combined).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<Filters>,
    /// `MediaMetadata.creation_time` or `MediaMetadata.creation_time desc`; needs a date filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_by: Option<String>,
}

impl SearchMediaItemsRequest {
    /// A search for the items of one album, in album order.
    pub fn album(album_id: AlbumId) -> Self {
        Self {
            album_id: Some(album_id),
            ..Self::default()
        }
    }
}

/// Search filters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filters {
    /// Date filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_filter: Option<DateFilter>,
    /// Content categories.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_filter: Option<ContentFilter>,
    /// Photo/video.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type_filter: Option<MediaTypeFilter>,
    /// Favorites.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature_filter: Option<FeatureFilter>,
    /// Include archived items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_archived_media: Option<bool>,
    /// Ignored since 2025 (the read scope is app-created only anyway).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude_non_app_created_data: Option<bool>,
}

/// Dates and ranges (≤ 5 each).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DateFilter {
    /// Dates; zero parts are wildcards.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dates: Vec<Date>,
    /// Ranges.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ranges: Vec<DateRange>,
}

/// A calendar date; 0 in a field is a wildcard.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Date {
    /// Year, or 0.
    #[serde(default)]
    pub year: i32,
    /// Month 1–12, or 0.
    #[serde(default)]
    pub month: i32,
    /// Day 1–31, or 0.
    #[serde(default)]
    pub day: i32,
}

/// An inclusive date range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DateRange {
    /// First date.
    pub start_date: Date,
    /// Last date.
    pub end_date: Date,
}

/// Content categories, as Google's enum strings (e.g. `"LANDSCAPES"`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContentFilter {
    /// Included categories (≤ 10).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub included_content_categories: Vec<String>,
    /// Excluded categories (≤ 10).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded_content_categories: Vec<String>,
}

/// Media type filter: exactly one of `ALL_MEDIA`, `PHOTO`, `VIDEO`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaTypeFilter {
    /// One value.
    #[serde(default)]
    pub media_types: Vec<String>,
}

/// Feature filter (`FAVORITES`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeatureFilter {
    /// Features.
    #[serde(default)]
    pub included_features: Vec<String>,
}

/// google.rpc Status of one failed item inside a 200 batch response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemStatus {
    /// google.rpc code: 3 = INVALID_ARGUMENT, 5 = NOT_FOUND.
    #[serde(default)]
    pub code: i32,
    /// Message.
    #[serde(default)]
    pub message: String,
}

impl fmt::Display for ItemStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "code {}: {}", self.code, self.message)
    }
}

/// Raw wire shape of `mediaItems.batchGet`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BatchGetMediaItemsResponse {
    #[serde(default)]
    pub(crate) media_item_results: Vec<RawMediaItemResult>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawMediaItemResult {
    #[serde(default)]
    pub(crate) media_item: Option<MediaItem>,
    #[serde(default)]
    pub(crate) status: Option<ItemStatus>,
}

/// One entry of a batchGet answer, paired with the id that was asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchItemResult {
    /// The id from the request (same position).
    pub id: MediaItemId,
    /// The item, or Google's per-item failure.
    pub result: Result<MediaItem, ItemStatus>,
}

// ---------------------------------------------------------------- Picker API

/// A Picker session (spec §3.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PickingSession {
    /// Session id.
    pub id: PickerSessionId,
    /// The page the user opens to pick.
    #[serde(default)]
    pub picker_uri: String,
    /// Present only while `media_items_set` is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub polling_config: Option<PollingConfig>,
    /// After this, the session and its items are gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_time: Option<DateTime<Utc>>,
    /// The configuration chosen at creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picking_config: Option<PickingConfig>,
    /// True once the user pressed Done.
    #[serde(default)]
    pub media_items_set: bool,
}

/// How often to poll and for how long.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PollingConfig {
    /// Wait between polls (`"5s"`).
    #[serde(
        default,
        with = "google_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub poll_interval: Option<Duration>,
    /// Time left; zero means stop polling.
    #[serde(
        default,
        with = "google_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout_in: Option<Duration>,
}

/// Picking limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PickingConfig {
    /// Maximum items (int64 as a string; 0/unset = 2000).
    #[serde(
        default,
        with = "int64_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_item_count: Option<i64>,
}

/// Kind of a picked item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PickedMediaType {
    /// Unspecified.
    TypeUnspecified,
    /// A photo.
    Photo,
    /// A video.
    Video,
    /// A value this client does not know.
    #[serde(other)]
    Unknown,
}

/// An item the user picked (spec §3.3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PickedMediaItem {
    /// Persistent id.
    pub id: MediaItemId,
    /// Creation (capture) time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_time: Option<DateTime<Utc>>,
    /// Photo or video.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<PickedMediaType>,
    /// The bytes' location and metadata.
    pub media_file: MediaFile,
}

impl PickedMediaItem {
    /// Whether the item is a video.
    pub fn is_video(&self) -> bool {
        self.media_type == Some(PickedMediaType::Video)
            || self.media_file.mime_type.starts_with("video/")
    }

    /// The URL that downloads the bytes (`=dv` for videos, `=d` for photos); needs a Bearer.
    pub fn download_url(&self) -> String {
        if self.is_video() {
            self.media_file.base_url.video_download()
        } else {
            self.media_file.base_url.photo_download()
        }
    }
}

/// The file behind a picked item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaFile {
    /// Base URL; fetching it needs `Authorization: Bearer`.
    pub base_url: BaseUrl,
    /// MIME type.
    #[serde(default)]
    pub mime_type: String,
    /// File name.
    #[serde(default)]
    pub filename: String,
    /// Metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_file_metadata: Option<MediaFileMetadata>,
}

/// Metadata of a picked file; width/height are JSON integers here (not strings).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaFileMetadata {
    /// Width in pixels.
    #[serde(default, with = "lenient_int", skip_serializing_if = "Option::is_none")]
    pub width: Option<i64>,
    /// Height in pixels.
    #[serde(default, with = "lenient_int", skip_serializing_if = "Option::is_none")]
    pub height: Option<i64>,
    /// Camera brand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub camera_make: Option<String>,
    /// Camera model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub camera_model: Option<String>,
    /// Set for photos.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub photo_metadata: Option<PickedPhotoMetadata>,
    /// Set for videos.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_metadata: Option<PickedVideoMetadata>,
}

/// Photo details of a picked item.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PickedPhotoMetadata {
    /// Focal length in mm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub focal_length: Option<f64>,
    /// Aperture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aperture_f_number: Option<f64>,
    /// ISO.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iso_equivalent: Option<i32>,
    /// Exposure time.
    #[serde(
        default,
        with = "google_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub exposure_time: Option<Duration>,
}

/// Video details of a picked item.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PickedVideoMetadata {
    /// Frame rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fps: Option<f64>,
    /// Processing status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processing_status: Option<VideoStatus>,
}

/// A page of Picker `mediaItems.list`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListPickedMediaItemsResponse {
    /// Items (absent = empty).
    #[serde(default)]
    pub media_items: Vec<PickedMediaItem>,
    /// Next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_item_with_string_dimensions_and_unknown_fields() {
        let item: MediaItem = serde_json::from_str(
            r#"{"id":"A1","baseUrl":"https://lh3/x","mimeType":"image/jpeg","filename":"a.jpg",
                "someFutureField":{"x":1},
                "mediaMetadata":{"creationTime":"2020-01-02T03:04:05.123456789Z","width":"4032","height":"3024",
                  "photo":{"cameraMake":"Pixel","focalLength":4.4,"apertureFNumber":1.8,"isoEquivalent":100,"exposureTime":"0.008s"}}}"#,
        )
        .unwrap();
        let md = item.media_metadata.as_ref().unwrap();
        assert_eq!(md.width, Some(4032));
        assert_eq!(md.height, Some(3024));
        assert_eq!(
            md.photo.as_ref().unwrap().exposure_time,
            Some(Duration::from_millis(8))
        );
        assert!(!item.is_video());
        assert_eq!(item.download_url().as_deref(), Some("https://lh3/x=d"));
        // int64 round-trips as a string.
        let back = serde_json::to_value(&item).unwrap();
        assert_eq!(back["mediaMetadata"]["width"], "4032");
    }

    #[test]
    fn video_status_and_unknown_enum_value() {
        let v: Video = serde_json::from_str(r#"{"fps":29.97,"status":"PROCESSING"}"#).unwrap();
        assert_eq!(v.status, Some(VideoStatus::Processing));
        let v: Video = serde_json::from_str(r#"{"status":"SOMETHING_NEW"}"#).unwrap();
        assert_eq!(v.status, Some(VideoStatus::Unknown));
        let item: MediaItem = serde_json::from_str(
            r#"{"id":"V","baseUrl":"b","mimeType":"video/mp4","mediaMetadata":{"video":{}}}"#,
        )
        .unwrap();
        assert_eq!(item.download_url().as_deref(), Some("b=dv"));
    }

    #[test]
    fn missing_media_items_is_an_empty_page() {
        let page: ListMediaItemsResponse =
            serde_json::from_str(r#"{"nextPageToken":"t"}"#).unwrap();
        assert!(page.media_items.is_empty());
        assert_eq!(page.next_page_token.as_deref(), Some("t"));
        let page: ListAlbumsResponse = serde_json::from_str("{}").unwrap();
        assert!(page.albums.is_empty() && page.next_page_token.is_none());
    }

    #[test]
    fn album_count_is_a_string() {
        let a: Album = serde_json::from_str(
            r#"{"id":"AL","title":"Trip","mediaItemsCount":"12","isWriteable":true}"#,
        )
        .unwrap();
        assert_eq!(a.media_items_count, Some(12));
        assert_eq!(a.id, AlbumId::new("AL"));
    }

    #[test]
    fn search_request_serialises_camel_case_and_skips_empty() {
        let req = SearchMediaItemsRequest::album(AlbumId::new("AL"));
        assert_eq!(serde_json::to_string(&req).unwrap(), r#"{"albumId":"AL"}"#);
    }

    #[test]
    fn picking_session_durations_and_string_int64() {
        let s: PickingSession = serde_json::from_str(
            r#"{"id":"S","pickerUri":"https://photos.google.com/picker/S",
                "pollingConfig":{"pollInterval":"5s","timeoutIn":"1799.5s"},
                "expireTime":"2026-01-01T00:00:00Z","pickingConfig":{"maxItemCount":"2000"},"mediaItemsSet":false}"#,
        )
        .unwrap();
        let pc = s.polling_config.unwrap();
        assert_eq!(pc.poll_interval, Some(Duration::from_secs(5)));
        assert_eq!(pc.timeout_in, Some(Duration::from_millis(1_799_500)));
        assert_eq!(s.picking_config.unwrap().max_item_count, Some(2000));
    }

    #[test]
    fn picked_item_integer_dimensions() {
        let p: PickedMediaItem = serde_json::from_str(
            r#"{"id":"P","createTime":"2021-05-05T10:00:00Z","type":"VIDEO",
                "mediaFile":{"baseUrl":"http://m/p","mimeType":"video/mp4","filename":"v.mp4",
                  "mediaFileMetadata":{"width":1920,"height":1080,"videoMetadata":{"fps":30,"processingStatus":"READY"}}}}"#,
        )
        .unwrap();
        let md = p.media_file.media_file_metadata.as_ref().unwrap();
        assert_eq!((md.width, md.height), (Some(1920), Some(1080)));
        assert_eq!(
            md.video_metadata.as_ref().unwrap().processing_status,
            Some(VideoStatus::Ready)
        );
        assert_eq!(p.download_url(), "http://m/p=dv");
        assert_eq!(
            serde_json::to_value(&p).unwrap()["mediaFile"]["mediaFileMetadata"]["width"],
            1920
        );
    }

    #[test]
    fn duration_parsing() {
        use google_duration::{format, parse};
        assert_eq!(parse("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse("0.000000001s"), Some(Duration::from_nanos(1)));
        assert_eq!(parse(".5s"), Some(Duration::from_millis(500)));
        assert_eq!(parse("5"), None);
        assert_eq!(parse("-1s"), None);
        assert_eq!(parse("s"), None);
        assert_eq!(parse("1.0000000001s"), None);
        assert_eq!(format(Duration::from_millis(3500)), "3.5s");
        assert_eq!(format(Duration::from_secs(5)), "5s");
    }
}
