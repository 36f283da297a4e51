//! Identifiers and plain data shared by sources, the index and reports.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A media item id as the source knows it (Google ids are opaque, long and persistent).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MediaId(pub String);

impl MediaId {
    /// Wraps a source id.
    pub fn new(s: impl Into<String>) -> Self {
        MediaId(s.into())
    }
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MediaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An album id as the source knows it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AlbumId(pub String);

impl AlbumId {
    /// Wraps a source id.
    pub fn new(s: impl Into<String>) -> Self {
        AlbumId(s.into())
    }
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AlbumId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where an item came from. Serialised as `"library_api"`, `"picker"`, `"takeout"`, `"local"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// Google Photos Library API (app-created items since 2025).
    LibraryApi,
    /// Google Photos Picker API sessions.
    Picker,
    /// A Google Takeout export.
    Takeout,
    /// A plain local directory ([`crate::LocalDirSource`]), for imports and tests.
    Local,
}

impl SourceKind {
    /// The stable text form used in the index and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::LibraryApi => "library_api",
            SourceKind::Picker => "picker",
            SourceKind::Takeout => "takeout",
            SourceKind::Local => "local",
        }
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether the bytes of an item can be fetched now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Readiness {
    /// Downloadable.
    #[default]
    Ready,
    /// A video Google is still processing: skip now, retry next run.
    Processing,
    /// Google gave up processing it: recorded as a failure.
    Failed,
}

/// One media item as a source lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteItem {
    /// Persistent id.
    pub id: MediaId,
    /// File name as uploaded.
    pub filename: String,
    /// e.g. `image/jpeg`.
    pub mime_type: String,
    /// Capture time (Google's `creationTime`), UTC.
    pub taken_at: Option<DateTime<Utc>>,
    /// Byte size when the source knows it (the Library API does not).
    pub size: Option<u64>,
    /// Starred.
    pub favorite: bool,
    /// Archived.
    pub archived: bool,
    /// Latitude, when the source has it (Takeout sidecars).
    pub latitude: Option<f64>,
    /// Longitude, when the source has it.
    pub longitude: Option<f64>,
    /// Camera make from the metadata block.
    pub camera_make: Option<String>,
    /// Camera model from the metadata block.
    pub camera_model: Option<String>,
    /// User description.
    pub description: Option<String>,
    /// Video processing state.
    pub readiness: Readiness,
}

impl RemoteItem {
    /// A minimal item; fill the rest with struct update syntax.
    pub fn new(id: MediaId, filename: impl Into<String>, mime_type: impl Into<String>) -> Self {
        RemoteItem {
            id,
            filename: filename.into(),
            mime_type: mime_type.into(),
            taken_at: None,
            size: None,
            favorite: false,
            archived: false,
            latitude: None,
            longitude: None,
            camera_make: None,
            camera_model: None,
            description: None,
            readiness: Readiness::Ready,
        }
    }

    /// Videos are fetched with `=dv`, everything else with `=d`.
    pub fn is_video(&self) -> bool {
        self.mime_type.starts_with("video/")
    }
}

/// One album as a source lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteAlbum {
    /// Persistent id.
    pub id: AlbumId,
    /// Title (may be empty).
    pub title: String,
    /// `mediaItemsCount`, used to skip re-listing unchanged albums on incremental runs.
    pub item_count: Option<u64>,
}

/// The blake3 of a file's bytes. Kept as its 32 bytes (hex text costs twice the memory and
/// an allocation per record read); shown, and written to JSON, as 64 hex digits. In the
/// index's binary records it is the 32 raw bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ContentHash(pub [u8; 32]);

impl ContentHash {
    /// The hash of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        ContentHash(*blake3::hash(bytes).as_bytes())
    }

    /// Parses 64 hex digits.
    pub fn from_hex(hex: &str) -> Option<Self> {
        blake3::Hash::from_hex(hex).ok().map(Self::from)
    }

    /// The 64 hex digits.
    pub fn to_hex(&self) -> String {
        self.to_string()
    }
}

impl From<blake3::Hash> for ContentHash {
    fn from(h: blake3::Hash) -> Self {
        ContentHash(*h.as_bytes())
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&blake3::Hash::from_bytes(self.0).to_hex())
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentHash({self})")
    }
}

impl Serialize for ContentHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            self.0.serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for ContentHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let hex = std::borrow::Cow::<str>::deserialize(d)?;
            ContentHash::from_hex(&hex).ok_or_else(|| {
                serde::de::Error::custom(format!("`{hex}` is not a 64-digit hex blake3"))
            })
        } else {
            <[u8; 32]>::deserialize(d).map(ContentHash)
        }
    }
}
