//! Test helpers: build real zip/tgz parts in temp dirs, sidecar JSON in the real shape
//! (from `shared/fixtures/takeout-real/polish_export.json`), JPEGs with EXIF.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::Write;
use std::path::{Path, PathBuf};

use takeout::{Catalog, ImportOptions, MediaRecord, StreamReport, group_parts};

pub const GP: &str = "Takeout/Google Photos";

/// A sidecar in the real shape (fields as in the Polish export, §3.1).
pub fn sc(title: &str, ts: i64) -> String {
    sc_with(title, ts, "")
}

/// Like [`sc`], with extra top-level JSON members (`"favorited": true, …`).
pub fn sc_with(title: &str, ts: i64, extra: &str) -> String {
    let extra = if extra.is_empty() {
        String::new()
    } else {
        format!(",\n  {extra}")
    };
    format!(
        r#"{{
  "title": {title},
  "description": "",
  "imageViews": "0",
  "creationTime": {{
    "timestamp": "1613314035",
    "formatted": "14 lut 2021, 14:47:15 UTC"
  }},
  "photoTakenTime": {{
    "timestamp": "{ts}",
    "formatted": "6 sty 2015, 19:56:38 UTC"
  }},
  "geoData": {{
    "latitude": 0.0,
    "longitude": 0.0,
    "altitude": 0.0,
    "latitudeSpan": 0.0,
    "longitudeSpan": 0.0
  }},
  "geoDataExif": {{
    "latitude": 0.0,
    "longitude": 0.0,
    "altitude": 0.0,
    "latitudeSpan": 0.0,
    "longitudeSpan": 0.0
  }},
  "googlePhotosOrigin": {{
    "mobileUpload": {{
      "deviceType": "ANDROID_PHONE"
    }}
  }}{extra}
}}"#,
        title = serde_json::Value::String(title.to_string())
    )
}

/// Distinct media bytes that sniff as JPEG.
pub fn jpeg(tag: &str) -> Vec<u8> {
    let mut v = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0x00, 0x00, 0xFF, 0xDA];
    v.extend_from_slice(tag.as_bytes());
    v.extend_from_slice(&[0xFF, 0xD9]);
    v
}

/// Distinct bytes of an MP4 (`ftyp` box).
pub fn mp4(tag: &str) -> Vec<u8> {
    let mut v = vec![0, 0, 0, 0x18];
    v.extend_from_slice(b"ftypisom\0\0\x02\0isomiso2");
    v.extend_from_slice(tag.as_bytes());
    v
}

/// A JPEG with EXIF `DateTimeOriginal` and optional `OffsetTimeOriginal`.
pub fn jpeg_exif(dto: &str, offset: Option<&str>, tag: &str) -> Vec<u8> {
    let n: u16 = if offset.is_some() { 2 } else { 1 };
    let exif_ifd: u32 = 8 + 18;
    let data_start = exif_ifd + 2 + 12 * u32::from(n) + 4;
    let mut t = Vec::new();
    t.extend_from_slice(b"II*\0");
    t.extend_from_slice(&8u32.to_le_bytes());
    t.extend_from_slice(&1u16.to_le_bytes());
    t.extend_from_slice(&0x8769u16.to_le_bytes());
    t.extend_from_slice(&4u16.to_le_bytes());
    t.extend_from_slice(&1u32.to_le_bytes());
    t.extend_from_slice(&exif_ifd.to_le_bytes());
    t.extend_from_slice(&0u32.to_le_bytes());
    t.extend_from_slice(&n.to_le_bytes());
    t.extend_from_slice(&0x9003u16.to_le_bytes());
    t.extend_from_slice(&2u16.to_le_bytes());
    t.extend_from_slice(&20u32.to_le_bytes());
    t.extend_from_slice(&data_start.to_le_bytes());
    if offset.is_some() {
        t.extend_from_slice(&0x9011u16.to_le_bytes());
        t.extend_from_slice(&2u16.to_le_bytes());
        t.extend_from_slice(&7u32.to_le_bytes());
        t.extend_from_slice(&(data_start + 20).to_le_bytes());
    }
    t.extend_from_slice(&0u32.to_le_bytes());
    t.extend_from_slice(dto.as_bytes());
    t.push(0);
    if let Some(o) = offset {
        t.extend_from_slice(o.as_bytes());
        t.push(0);
    }
    let mut v = vec![0xFF, 0xD8, 0xFF, 0xE1];
    let len = u16::try_from(2 + 6 + t.len()).unwrap();
    v.extend_from_slice(&len.to_be_bytes());
    v.extend_from_slice(b"Exif\0\0");
    v.extend_from_slice(&t);
    v.extend_from_slice(&[0xFF, 0xDA]);
    v.extend_from_slice(tag.as_bytes());
    v.extend_from_slice(&[0xFF, 0xD9]);
    v
}

/// Entries for one archive: (path inside the archive, bytes).
pub type Entries = Vec<(String, Vec<u8>)>;

/// `GP/folder/name` entries from (folder, name, bytes).
pub fn gp(items: &[(&str, &str, Vec<u8>)]) -> Entries {
    items
        .iter()
        .map(|(f, n, b)| (format!("{GP}/{f}/{n}"), b.clone()))
        .collect()
}

pub fn write_zip(path: &Path, entries: &Entries) {
    let f = std::fs::File::create(path).unwrap();
    let mut z = zip::ZipWriter::new(f);
    for (name, bytes) in entries {
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        z.start_file(name.as_str(), opts).unwrap();
        z.write_all(bytes).unwrap();
    }
    z.finish().unwrap();
}

pub fn write_tgz(path: &Path, entries: &Entries) {
    let f = std::fs::File::create(path).unwrap();
    let gz = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
    let mut t = tar::Builder::new(gz);
    for (name, bytes) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        t.append_data(&mut h, name, bytes.as_slice()).unwrap();
    }
    t.into_inner().unwrap().finish().unwrap();
}

/// What a full import produced: the catalog and every streamed (record, bytes hash, bytes).
pub struct Run {
    pub catalog: Catalog,
    pub streamed: Vec<(MediaRecord, [u8; 32])>,
    pub stream_report: StreamReport,
}

impl Run {
    /// File names of the streamed records, in stream order.
    pub fn streamed_names(&self) -> Vec<&str> {
        self.streamed
            .iter()
            .map(|s| s.0.file_name.as_str())
            .collect()
    }

    /// The unique streamed record whose path ends with `/name` (panics when 0 or ≥ 2).
    pub fn rec(&self, path_suffix: &str) -> &MediaRecord {
        let hits: Vec<&MediaRecord> = self
            .streamed
            .iter()
            .map(|(r, _)| r)
            .filter(|r| {
                r.locator
                    .path
                    .as_str()
                    .ends_with(&format!("/{path_suffix}"))
            })
            .collect();
        assert_eq!(
            hits.len(),
            1,
            "records ending with {path_suffix}: {hits:#?}"
        );
        hits[0]
    }

    pub fn sidecar_name(&self, path_suffix: &str) -> Option<String> {
        self.rec(path_suffix)
            .sidecar
            .as_ref()
            .map(|l| l.path.file_name().to_string())
    }

    pub fn merged(&self) -> takeout::AssetMerger {
        let mut m = takeout::AssetMerger::new();
        for (r, h) in &self.streamed {
            m.add(r, takeout::ContentKey(*h));
        }
        m
    }
}

pub fn import_paths(paths: &[PathBuf], opts: &ImportOptions) -> Run {
    let g = group_parts(paths);
    assert_eq!(g.exports.len(), 1, "exports: {g:#?}");
    let catalog = Catalog::build(&g.exports[0], opts);
    let mut streamed = Vec::new();
    let stream_report = catalog
        .stream_media(|r, rd| -> std::io::Result<()> {
            let mut h = blake3::Hasher::new();
            let mut buf = vec![0u8; 1 << 16];
            loop {
                let n = rd.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
            streamed.push((r.clone(), *h.finalize().as_bytes()));
            Ok(())
        })
        .unwrap();
    Run {
        catalog,
        streamed,
        stream_report,
    }
}

/// Writes each entry list as one zip part `takeout-20240525T201456Z-00N.zip` and imports.
pub fn import_zip_parts(dir: &Path, parts: &[(u32, Entries)]) -> Run {
    let paths: Vec<PathBuf> = parts
        .iter()
        .map(|(n, e)| {
            let p = dir.join(format!("takeout-20240525T201456Z-{n:03}.zip"));
            write_zip(&p, e);
            p
        })
        .collect();
    import_paths(&paths, &ImportOptions::default())
}

/// One zip part with these entries.
pub fn import_one(entries: Entries) -> (tempfile::TempDir, Run) {
    let dir = tempfile::tempdir().unwrap();
    let run = import_zip_parts(dir.path(), &[(1, entries)]);
    (dir, run)
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/takeout-real")
}

pub fn utc(s: &str) -> takeout::CaptureTime {
    takeout::CaptureTime::Instant(s.parse().unwrap())
}
