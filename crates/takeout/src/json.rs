//! Classifying and parsing the JSON files of an export (§2.1, §2.3, §3.1).
//!
//! JSON is classified by content, not by file name: file names are localized and
//! root files such as `user-generated-memory-titles.json` may be arrays.

use serde_json::Value;

/// A point on Earth from `geoData`/`geoDataExif`/album enrichments.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeoPoint {
    /// Degrees north.
    pub latitude: f64,
    /// Degrees east.
    pub longitude: f64,
    /// Metres, when given and non-zero.
    pub altitude: Option<f64>,
}

/// The fields of a per-media sidecar that the importer uses (§3.1).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Sidecar {
    /// Original upload name (may contain `/`, may lack an extension).
    pub title: Option<String>,
    /// Caption, `None` when empty.
    pub description: Option<String>,
    /// `photoTakenTime.timestamp` in epoch seconds; `None` when absent, empty or `"0"` (§8 case 48).
    pub taken_time: Option<i64>,
    /// `creationTime.timestamp` (upload time).
    pub creation_time: Option<i64>,
    /// `geoData`, `None` when 0/0.
    pub geo_data: Option<GeoPoint>,
    /// `geoDataExif`, `None` when 0/0.
    pub geo_data_exif: Option<GeoPoint>,
    /// Named people.
    pub people: Vec<String>,
    /// `favorited: true`.
    pub favorited: bool,
    /// `archived: true`.
    pub archived: bool,
    /// `trashed: true`.
    pub trashed: bool,
    /// The `url` (`https://photos.google.com/photo/…`), useful to match API items.
    pub url: Option<String>,
    /// `googlePhotosOrigin.fromPartnerSharing` present.
    pub from_partner_sharing: bool,
}

/// Album metadata (`metadata.json` and its localized names), any of the three shapes of §2.3.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AlbumMeta {
    /// Title; empty for untitled albums.
    pub title: String,
    /// Description, plus narrative enrichment texts, one per line.
    pub description: Option<String>,
    /// The last location enrichment, else `geoData` when not 0/0.
    pub location: Option<GeoPoint>,
}

/// What a JSON file turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonKind {
    /// A per-media sidecar.
    Sidecar(Box<Sidecar>),
    /// Album metadata.
    Album(AlbumMeta),
    /// Something else (print orders, comments, memory titles, `{}`, arrays).
    Other,
}

/// Why a JSON file could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonProblem(pub String);

/// Parses and classifies a JSON file's bytes. A UTF-8 BOM is accepted; invalid UTF-8 or
/// syntax is reported as a [`JsonProblem`] (§3.1, §8 case 53).
pub fn classify_json(bytes: &[u8]) -> Result<JsonKind, JsonProblem> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| JsonProblem(format!("not UTF-8: {e}")))?;
    let v: Value = serde_json::from_str(text).map_err(|e| JsonProblem(e.to_string()))?;
    Ok(classify_value(&v))
}

fn classify_value(v: &Value) -> JsonKind {
    let Some(obj) = v.as_object() else {
        return JsonKind::Other;
    };
    if let Some(ad) = obj.get("albumData").and_then(Value::as_object) {
        return JsonKind::Album(album_from(ad));
    }
    const MEDIA_KEYS: [&str; 7] = [
        "photoTakenTime",
        "creationTime",
        "imageViews",
        "geoDataExif",
        "url",
        "googlePhotosOrigin",
        "photoLastModifiedTime",
    ];
    let has_title = obj.get("title").is_some_and(Value::is_string);
    if has_title && MEDIA_KEYS.iter().any(|k| obj.contains_key(*k)) {
        return JsonKind::Sidecar(Box::new(sidecar_from(obj)));
    }
    if has_title {
        return JsonKind::Album(album_from(obj));
    }
    JsonKind::Other
}

fn timestamp(obj: &serde_json::Map<String, Value>, key: &str) -> Option<i64> {
    let ts = obj.get(key)?.get("timestamp")?;
    let n = match ts {
        Value::String(s) => s.trim().parse::<i64>().ok()?,
        Value::Number(n) => n.as_i64()?,
        _ => return None,
    };
    (n != 0).then_some(n)
}

fn number(v: &Value, key: &str) -> Option<f64> {
    match v.get(key)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn geo(v: Option<&Value>) -> Option<GeoPoint> {
    let v = v?;
    let latitude = number(v, "latitude")?;
    let longitude = number(v, "longitude")?;
    if (latitude == 0.0 && longitude == 0.0) || !latitude.is_finite() || !longitude.is_finite() {
        return None; // 0/0 means "no location" (§3.1).
    }
    if latitude.abs() > 90.0 || longitude.abs() > 180.0 {
        return None;
    }
    let altitude = number(v, "altitude").filter(|a| *a != 0.0 && a.is_finite());
    Some(GeoPoint {
        latitude,
        longitude,
        altitude,
    })
}

fn non_empty(s: Option<&Value>) -> Option<String> {
    s.and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn flag(obj: &serde_json::Map<String, Value>, key: &str) -> bool {
    obj.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn sidecar_from(obj: &serde_json::Map<String, Value>) -> Sidecar {
    let people = obj
        .get("people")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|p| non_empty(p.get("name"))).collect())
        .unwrap_or_default();
    Sidecar {
        title: obj.get("title").and_then(Value::as_str).map(str::to_string),
        description: non_empty(obj.get("description")),
        taken_time: timestamp(obj, "photoTakenTime"),
        creation_time: timestamp(obj, "creationTime"),
        geo_data: geo(obj.get("geoData")),
        geo_data_exif: geo(obj.get("geoDataExif")),
        people,
        favorited: flag(obj, "favorited"),
        archived: flag(obj, "archived"),
        trashed: flag(obj, "trashed"),
        url: non_empty(obj.get("url")),
        from_partner_sharing: obj
            .get("googlePhotosOrigin")
            .and_then(|o| o.get("fromPartnerSharing"))
            .is_some(),
    }
}

fn album_from(obj: &serde_json::Map<String, Value>) -> AlbumMeta {
    let mut lines: Vec<String> = non_empty(obj.get("description")).into_iter().collect();
    let mut location = geo(obj.get("geoData"));
    if let Some(en) = obj.get("enrichments").and_then(Value::as_array) {
        for e in en {
            if let Some(t) = non_empty(e.get("narrativeEnrichment").and_then(|n| n.get("text"))) {
                lines.push(t);
            }
            if let Some(locs) = e
                .get("locationEnrichment")
                .and_then(|l| l.get("location"))
                .and_then(Value::as_array)
            {
                for l in locs {
                    let name = non_empty(l.get("name"));
                    let desc = non_empty(l.get("description"));
                    match (name, desc) {
                        (Some(n), Some(d)) => lines.push(format!("{n} - {d}")),
                        (Some(n), None) => lines.push(n),
                        (None, Some(d)) => lines.push(d),
                        (None, None) => {}
                    }
                    let lat = number(l, "latitudeE7").map(|x| x / 1e7);
                    let lon = number(l, "longitudeE7").map(|x| x / 1e7);
                    if let (Some(latitude), Some(longitude)) = (lat, lon)
                        && !(latitude == 0.0 && longitude == 0.0)
                    {
                        location = Some(GeoPoint {
                            latitude,
                            longitude,
                            altitude: None,
                        });
                    }
                }
            }
        }
    }
    AlbumMeta {
        title: obj
            .get("title")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        description: (!lines.is_empty()).then(|| lines.join("\n")),
        location,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let s = br#"{"title":"a.jpg","photoTakenTime":{"timestamp":"1695394176","formatted":"x"},"favorited":true}"#;
        match classify_json(s).unwrap() {
            JsonKind::Sidecar(sc) => {
                assert_eq!(sc.taken_time, Some(1695394176));
                assert!(sc.favorited && !sc.archived && !sc.trashed);
            }
            other => panic!("{other:?}"),
        }
        let a = br#"{"albumData":{"title":"Trip to Gda\u0144sk","date":{"timestamp":"1"}}}"#;
        assert_eq!(
            classify_json(a).unwrap(),
            JsonKind::Album(AlbumMeta {
                title: "Trip to Gdańsk".into(),
                ..Default::default()
            })
        );
        assert_eq!(classify_json(b"[]").unwrap(), JsonKind::Other);
        assert_eq!(classify_json(b"{}").unwrap(), JsonKind::Other);
        assert!(classify_json(b"\xEF\xBB\xBF{}").is_ok());
        assert!(classify_json(b"{\"title\": \"\xff\"}").is_err());
        assert!(classify_json(b"\0\0\0").is_err());
    }
}
