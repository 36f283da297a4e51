#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Google Takeout end to end: the real binary imports zip and tgz parts that the tests build
//! themselves, with real entry names and sidecar JSON (`/work/shared/fixtures/takeout-real/`,
//! spec `takeout-format.md` §6), and the library, index, album folders and XMP sidecars are
//! checked as a user would see them.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fake_google::{FakeConfig, FakeGoogle, scopes};
use system_tests::{Workspace, describe, files_under, mtime, parse_list, workspace};

const OK: i32 = 0;
const PARTIAL: i32 = 4;
const ROOT: &str = "Takeout/Google Photos";

enum Entry {
    File(String, Vec<u8>),
    /// A tar symlink entry (name, target).
    Symlink(String, String),
}

fn file(path: &str, data: impl Into<Vec<u8>>) -> Entry {
    Entry::File(path.to_string(), data.into())
}

/// Distinct JPEG-looking bytes.
fn jpeg(seed: &str, len: usize) -> Vec<u8> {
    let mut v = vec![0xFF, 0xD8, 0xFF, 0xE0];
    let mut h = blake3::Hasher::new();
    h.update(seed.as_bytes());
    let mut r = h.finalize_xof();
    let mut body = vec![0u8; len];
    r.fill(&mut body);
    v.extend_from_slice(&body);
    v
}

/// A sidecar in the real shape (§3.1): string timestamps, localized `formatted`.
fn sidecar(title: &str, ts: i64, geo: Option<(f64, f64)>, extra: &str) -> Vec<u8> {
    let (la, lo) = geo.unwrap_or((0.0, 0.0));
    format!(
        r#"{{
  "title": {title:?},
  "description": "",
  "imageViews": "3",
  "creationTime": {{ "timestamp": "1700000000", "formatted": "14 nov. 2023, 22:13:20 UTC" }},
  "photoTakenTime": {{ "timestamp": "{ts}", "formatted": "22 sept. 2023, 14:49:36 UTC" }},
  "geoData": {{ "latitude": 50.0411867, "longitude": 21.9991196, "altitude": 0.0, "latitudeSpan": 0.0728, "longitudeSpan": 0.1057 }},
  "geoDataExif": {{ "latitude": {la}, "longitude": {lo}, "altitude": 0.0, "latitudeSpan": 0.0, "longitudeSpan": 0.0 }},
  "url": "https://photos.google.com/photo/AF1QipN",
  "googlePhotosOrigin": {{ "mobileUpload": {{ "deviceType": "ANDROID_PHONE" }} }}{extra}
}}"#
    )
    .into_bytes()
}

fn write_zip(path: &Path, entries: &[Entry]) {
    let f = std::fs::File::create(path).unwrap();
    let mut z = zip::ZipWriter::new(f);
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for e in entries {
        match e {
            Entry::File(name, data) => {
                z.start_file(name.as_str(), opts).unwrap();
                z.write_all(data).unwrap();
            }
            Entry::Symlink(..) => unreachable!("zip parts carry no symlinks in these tests"),
        }
    }
    z.finish().unwrap();
}

/// Writes raw header names, so hostile names (`../x`, `/x`) reach the archive unchanged.
fn write_tgz(path: &Path, entries: &[Entry]) {
    let f = std::fs::File::create(path).unwrap();
    let gz = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
    let mut t = tar::Builder::new(gz);
    for e in entries {
        let mut h = tar::Header::new_gnu();
        let (name, data, link) = match e {
            Entry::File(n, d) => (n, d.as_slice(), None),
            Entry::Symlink(n, target) => (n, &[][..], Some(target)),
        };
        let raw = name.as_bytes();
        assert!(raw.len() < 100, "test names fit the plain tar header");
        h.as_gnu_mut().unwrap().name[..raw.len()].copy_from_slice(raw);
        h.set_mode(0o644);
        h.set_mtime(1_716_674_100);
        match link {
            Some(target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_link_name(target).unwrap();
                h.set_size(0);
            }
            None => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(data.len() as u64);
            }
        }
        h.set_cksum();
        t.append(&h, data).unwrap();
    }
    t.into_inner().unwrap().finish().unwrap();
}

fn takeout_only_config(ws: &Workspace, extra: &str) {
    ws.write_config(&format!(
        "library_dir = {:?}\nstate_dir = {:?}\n\n[sources.library_api]\nenabled = false\n{extra}",
        ws.library_dir(),
        ws.state_dir()
    ));
}

fn list_by_name(ws: &Workspace) -> BTreeMap<String, Vec<serde_json::Value>> {
    let out = ws.run(&["list", "--json"]);
    assert_eq!(out.status.code(), Some(OK), "{}", describe(&out));
    let mut m: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
    for row in parse_list(&out) {
        m.entry(row["filename"].as_str().unwrap().to_string())
            .or_default()
            .push(row);
    }
    m
}

fn one<'a>(m: &'a BTreeMap<String, Vec<serde_json::Value>>, name: &str) -> &'a serde_json::Value {
    let rows = m
        .get(name)
        .unwrap_or_else(|| panic!("{name} not indexed: {m:#?}"));
    assert_eq!(rows.len(), 1, "{name}: {rows:#?}");
    &rows[0]
}

fn at(secs: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs as u64)
}

/// (inode, mtime, ctime) of everything under `root`, symlinks not followed.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, (u64, i64, i64, i64)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let m = std::fs::symlink_metadata(e.path()).unwrap();
            if m.is_dir() {
                stack.push(e.path());
                continue;
            }
            out.insert(
                e.path().strip_prefix(root).unwrap().to_path_buf(),
                (m.ino(), m.mtime(), m.ctime(), m.ctime_nsec()),
            );
        }
    }
    out
}

const LISBON: &str = "🇵🇹 Lisbonne ❤️ en famille 👨‍👩‍👦‍👦";
const TS_PXL: i64 = 1_692_113_000; // 2023-08-15T15:23:20Z
const TS_1005: i64 = 1_692_000_000; // 2023-08-14
const TS_1005_1: i64 = 1_692_500_000; // 2023-08-20

/// Two zip parts shaped like immich-go's real `small.lst` (§1.2): the `PXL_…` media in
/// part 002 and its sidecar in part 001, the same photo again in an album folder
/// (French `métadonnées.json`, emoji title), and `IMG_1005.JPG`/`IMG_1005(1).JPG` (§8 case 20).
fn build_zip_export(dir: &Path) -> (PathBuf, PathBuf, Vec<u8>) {
    let pxl = jpeg("pxl", 40_000);
    let img = jpeg("img1005", 30_000);
    let img1 = jpeg("img1005-1", 30_000);
    let fav = ",\n  \"favorited\": true,\n  \"people\": [{ \"name\": \"Ana\" }]";
    let p1 = dir.join("takeout-20240525T201456Z-001.zip");
    write_zip(
        &p1,
        &[
            file("Takeout/archive_browser.html", "<html></html>"),
            file(
                &format!("{ROOT}/Photos from 2023/PXL_20230815_152303067.jpg.json"),
                sidecar(
                    "PXL_20230815_152303067.jpg",
                    TS_PXL,
                    Some((49.2132972, 22.6288417)),
                    fav,
                ),
            ),
            file(
                &format!("{ROOT}/{LISBON}/métadonnées.json"),
                format!(
                    r#"{{"title": "{LISBON}", "description": "", "access": "protected", "date": {{"timestamp": "1692113000", "formatted": "15 août 2023"}}}}"#
                ),
            ),
            file(
                &format!("{ROOT}/{LISBON}/PXL_20230815_152303067.jpg"),
                pxl.clone(),
            ),
            file(
                &format!("{ROOT}/{LISBON}/PXL_20230815_152303067.jpg.json"),
                sidecar(
                    "PXL_20230815_152303067.jpg",
                    TS_PXL,
                    Some((49.2132972, 22.6288417)),
                    fav,
                ),
            ),
            file(&format!("{ROOT}/Photos from 2023/IMG_1005.JPG"), img),
            file(
                &format!("{ROOT}/Photos from 2023/IMG_1005.JPG.json"),
                sidecar("IMG_1005.JPG", TS_1005, None, ""),
            ),
            file(
                &format!("{ROOT}/Photos from 2023/DSC_0001.JPG"),
                jpeg("dsc-year", 20_000),
            ),
            file(
                &format!("{ROOT}/Photos from 2023/DSC_0001.JPG.supplemental-metadata.json"),
                sidecar("DSC_0001.JPG", TS_1005 + 60, None, ""),
            ),
            file(
                &format!("{ROOT}/Trip/metadata.json"),
                r#"{"title": "Trip"}"#,
            ),
            file(
                &format!("{ROOT}/Trip/DSC_0001.JPG"),
                jpeg("dsc-trip", 20_000),
            ),
            file(
                &format!("{ROOT}/Trip/DSC_0001.JPG.supplemental-metadata.json"),
                sidecar("DSC_0001.JPG", TS_1005 + 120, None, ""),
            ),
            file(&format!("{ROOT}/print-subscriptions.json"), "{}"),
            file(&format!("{ROOT}/user-generated-memory-titles.json"), "[]"),
        ],
    );
    let p2 = dir.join("takeout-20240525T201456Z-002.zip");
    write_zip(
        &p2,
        &[
            file(
                &format!("{ROOT}/Photos from 2023/PXL_20230815_152303067.jpg"),
                pxl.clone(),
            ),
            file(&format!("{ROOT}/Photos from 2023/IMG_1005(1).JPG"), img1),
            file(
                &format!("{ROOT}/Photos from 2023/IMG_1005.JPG(1).json"),
                sidecar("IMG_1005.JPG", TS_1005_1, None, ""),
            ),
            file(
                &format!("{ROOT}/Photos from 2023/._IMG_1005.JPG.json"),
                vec![0u8; 64],
            ),
        ],
    );
    (p1, p2, pxl)
}

#[test]
fn multi_part_zip_import_builds_the_library_and_a_reimport_changes_nothing() {
    let ws = workspace!();
    takeout_only_config(&ws, "");
    let inputs = tempfile::tempdir().unwrap();
    let (p1, p2, pxl) = build_zip_export(inputs.path());

    let out = ws.run(&["import-takeout", p1.to_str().unwrap(), p2.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(OK), "{}", describe(&out));
    let lib = ws.library_dir();

    let items = list_by_name(&ws);
    // The PXL photo is in its year folder (part 002) and in the album (part 001): one asset.
    let p = one(&items, "PXL_20230815_152303067.jpg");
    assert_eq!(p["source"], "takeout");
    assert_eq!(p["path"], "photos/2023/08/PXL_20230815_152303067.jpg");
    assert_eq!(p["favorite"], true);
    // geoDataExif wins over geoData (§8 case 49).
    assert_eq!(p["latitude"].as_f64(), Some(49.2132972));
    assert_eq!(p["longitude"].as_f64(), Some(22.6288417));
    assert_eq!(p["albums"], serde_json::json!([LISBON]));
    assert_eq!(p["taken_at"], "2023-08-15T15:23:20Z");
    let pxl_path = lib.join("photos/2023/08/PXL_20230815_152303067.jpg");
    assert_eq!(
        std::fs::read(&pxl_path).unwrap(),
        pxl,
        "byte-identical original"
    );
    assert_eq!(mtime(&pxl_path), at(TS_PXL), "mtime = capture time");

    // IMG_1005.JPG and IMG_1005(1).JPG are both titled IMG_1005.JPG: each keeps its own
    // sidecar date (§8 case 20), and the `(1)` name stays apart.
    let a = one(&items, "IMG_1005.JPG");
    assert_eq!(a["taken_at"], "2023-08-14T08:00:00Z");
    assert_eq!(a["path"], "photos/2023/08/IMG_1005.JPG");
    let b = one(&items, "IMG_1005(1).JPG");
    assert_eq!(b["taken_at"], "2023-08-20T02:53:20Z");
    assert_eq!(b["path"], "photos/2023/08/IMG_1005(1).JPG");

    // Two different photos named DSC_0001.JPG in the same month (one only in the album
    // "Trip"): the one stored second gets the engine's collision suffix `_<8 hex>`.
    let rows = items.get("DSC_0001.JPG").expect("DSC_0001 indexed");
    assert_eq!(rows.len(), 2, "{rows:#?}");
    let mut paths: Vec<&str> = rows.iter().map(|r| r["path"].as_str().unwrap()).collect();
    paths.sort();
    assert_eq!(paths[0], "photos/2023/08/DSC_0001.JPG");
    assert!(
        paths[1].starts_with("photos/2023/08/DSC_0001_")
            && paths[1].len() == "photos/2023/08/DSC_0001_.JPG".len() + 8,
        "{paths:?}"
    );
    let trip = rows
        .iter()
        .find(|r| r["albums"] == serde_json::json!(["Trip"]));
    assert!(
        trip.is_some(),
        "the album-only photo is imported: {rows:#?}"
    );
    assert_eq!(items.values().map(Vec::len).sum::<usize>(), 5, "{items:#?}");

    // The album folder links to the one file.
    let album_dir = lib.join(format!("albums/2023/08 {LISBON}"));
    let links: Vec<_> = std::fs::read_dir(&album_dir)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e}; tree {:#?}",
                album_dir.display(),
                files_under(&lib)
            )
        })
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(links.len(), 1, "{links:?}");
    assert_eq!(
        std::fs::canonicalize(&links[0]).unwrap(),
        std::fs::canonicalize(&pxl_path).unwrap()
    );

    // XMP sidecar, in the namespaces digiKam/Immich/PhotoPrism read.
    let xmp =
        std::fs::read_to_string(lib.join("photos/2023/08/PXL_20230815_152303067.jpg.xmp")).unwrap();
    for needle in [
        "<photoshop:DateCreated>2023-08-15T15:23:20Z</photoshop:DateCreated>",
        "<exif:GPSLatitude>49,12.797832N</exif:GPSLatitude>",
        "<exif:GPSLongitude>22,37.730502E</exif:GPSLongitude>",
        "<xmp:Rating>5</xmp:Rating>",
        &format!("<rdf:li>Albums|{LISBON}</rdf:li>"),
        "<rdf:li>Ana</rdf:li>",
    ] {
        assert!(xmp.contains(needle), "missing {needle} in\n{xmp}");
    }

    // Nothing but the library's own files (no temp files, no archive paths).
    for f in files_under(&lib) {
        let s = f.to_string_lossy();
        assert!(s.starts_with("photos/") || s.starts_with("albums/"), "{s}");
        assert!(!s.contains(".part-"), "{s}");
    }

    // `verify --deep` knows every file, XMP sidecars included.
    let v = ws.run(&["verify", "--deep"]);
    assert_eq!(v.status.code(), Some(OK), "{}", describe(&v));

    // Re-import (same parts, then the parts as a folder of downloads): nothing changes.
    let before = snapshot(&lib);
    let listed_before = ws.run(&["list", "--json"]).stdout;
    let again = ws.run(&["import-takeout", inputs.path().to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(OK), "{}", describe(&again));
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(stdout.contains("takeout: 0 imported"), "{stdout}");
    assert_eq!(
        snapshot(&lib),
        before,
        "a re-import must not touch any file"
    );
    assert_eq!(ws.run(&["list", "--json"]).stdout, listed_before);

    // status shows the last import.
    let status = ws.run(&["status"]);
    let s = String::from_utf8_lossy(&status.stdout);
    assert!(s.contains("last takeout import"), "{}", describe(&status));
    assert!(s.contains("0 imported"), "{s}");
}

/// The real Polish export (`polish_export.json`: real entry paths and verbatim sidecar
/// text) as a tgz, plus hostile entries: `../` traversal, an absolute path, a symlink to
/// `/etc/passwd`, AppleDouble junk.
#[test]
fn tgz_with_hostile_entries_imports_the_rest_and_writes_nothing_outside_the_library() {
    let ws = workspace!();
    takeout_only_config(&ws, "");
    let fixture: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string("/work/shared/fixtures/takeout-real/polish_export.json").unwrap(),
    )
    .unwrap();
    let mut entries = vec![
        file("../evil.jpg", jpeg("evil", 100)),
        file("/tmp/gphotos-backup-abs-evil.jpg", jpeg("abs", 100)),
        Entry::Symlink(
            "Takeout/Zdjęcia Google/Photos from 2020/link.jpg".into(),
            "/etc/passwd".into(),
        ),
        file(
            "Takeout/Zdjęcia Google/Photos from 2020/._IMG_20200516_154811.jpg.json",
            vec![0u8; 82],
        ),
    ];
    let mut media = 0;
    for e in fixture["entries"].as_array().unwrap() {
        let path = format!("Takeout/{}", e["path"].as_str().unwrap());
        match e["kind"].as_str().unwrap() {
            "media" => {
                media += 1;
                entries.push(file(&path, jpeg(&path, 5_000)));
            }
            "json" => entries.push(file(&path, e["text"].as_str().unwrap().as_bytes().to_vec())),
            _ => entries.push(file(&path, "<html></html>")),
        }
    }
    let inputs = tempfile::tempdir().unwrap();
    let part = inputs.path().join("takeout-20230720T065335Z-001.tgz");
    write_tgz(&part, &entries);

    let out = ws.run(&["import-takeout", part.to_str().unwrap()]);
    // Entries were skipped: partial, with the reasons printed.
    assert_eq!(out.status.code(), Some(PARTIAL), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("evil.jpg"), "{stdout}");
    assert!(stdout.contains("unsafe path"), "{stdout}");
    assert!(stdout.contains("symbolic link"), "{stdout}");

    assert!(!ws.path().join("evil.jpg").exists());
    assert!(!inputs.path().join("../evil.jpg").exists());
    assert!(!Path::new("/tmp/gphotos-backup-abs-evil.jpg").exists());
    let lib = ws.library_dir();
    for f in files_under(&lib) {
        let m = std::fs::symlink_metadata(lib.join(&f)).unwrap();
        assert!(m.is_file(), "{} is not a regular file", f.display());
        assert!(!f.to_string_lossy().contains("evil"), "{}", f.display());
    }

    let items = list_by_name(&ws);
    assert_eq!(
        items.values().map(Vec::len).sum::<usize>(),
        media,
        "{items:#?}"
    );
    assert!(items.values().flatten().all(|r| r["source"] == "takeout"));
    // JSON beats the name (§8 case 57): photoTakenTime 1420574198.
    let webm = one(&items, "signal-2020-07-18-183333.webm");
    assert_eq!(webm["taken_at"], "2015-01-06T19:56:38Z");
    assert_eq!(
        mtime(&lib.join(webm["path"].as_str().unwrap())),
        at(1_420_574_198)
    );
    // geoDataExif preferred (§8 case 49).
    let img = one(&items, "IMG_20210127_193339.jpg");
    // The real sidecar has more digits than the spec's rounded 49.2132972 / 22.6288417.
    assert!(
        (img["latitude"].as_f64().unwrap() - 49.2132972).abs() < 1e-6,
        "{img}"
    );
    assert!(
        (img["longitude"].as_f64().unwrap() - 22.6288417).abs() < 1e-6,
        "{img}"
    );
    // No sidecar, no EXIF: dated by its year folder, never the archive mtime (§8 case 45).
    let gif = one(&items, "tia3059641059518022454.gif");
    assert!(
        gif["path"].as_str().unwrap().starts_with("photos/2019/"),
        "{gif}"
    );
    assert!(stdout.contains("1 without sidecar"), "{stdout}");
}

#[tokio::test]
async fn an_item_synced_from_the_api_and_the_same_photo_from_takeout_are_one_asset() {
    let fake = FakeGoogle::start(FakeConfig::with_items(6)).await.unwrap();
    let ws = workspace!();
    ws.write_config_for(&fake, "");
    ws.authorize(&fake, &[scopes::LIBRARY_READONLY_APPCREATED]);
    let out = ws.run_async(&["--run-now"]).await;
    assert_eq!(out.status.code(), Some(OK), "{}", describe(&out));
    let rows = parse_list(&ws.run_async(&["list", "--json"]).await);
    let n_before = rows.len();

    let photos: Vec<_> = fake
        .library()
        .items()
        .into_iter()
        .filter(|i| !i.is_video)
        .take(2)
        .collect();
    assert_eq!(photos.len(), 2);
    // Photo 1: Takeout has the very same bytes. Photo 2: Takeout has the full-quality
    // original (other bytes) under the same name at the same moment.
    let same = &photos[0];
    let orig = &photos[1];
    let same_bytes = fake.library().download_bytes(&same.id, "d").unwrap();
    let original_bytes = jpeg("full quality original", 50_000);
    let path_of = |id: &str| -> String {
        rows.iter().find(|r| r["id"] == id).unwrap()["path"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let same_path = ws.library_dir().join(path_of(same.id.as_str()));
    let orig_path = ws.library_dir().join(path_of(orig.id.as_str()));
    let same_ino = std::fs::metadata(&same_path).unwrap().ino();

    let inputs = tempfile::tempdir().unwrap();
    let part = inputs.path().join("takeout-20250912T060118Z-1-001.zip");
    let dir = format!("{ROOT}/Photos from 2020");
    write_zip(
        &part,
        &[
            file(&format!("{dir}/{}", same.filename), same_bytes.clone()),
            file(
                &format!("{dir}/{}.json", same.filename),
                sidecar(
                    &same.filename,
                    same.creation_time.timestamp(),
                    Some((10.5, 20.25)),
                    "",
                ),
            ),
            file(&format!("{dir}/{}", orig.filename), original_bytes.clone()),
            file(
                &format!("{dir}/{}.supplemental-metadata.json", orig.filename),
                sidecar(
                    &orig.filename,
                    orig.creation_time.timestamp(),
                    Some((-33.5, 151.25)),
                    "",
                ),
            ),
        ],
    );
    let out = ws
        .run_async(&["import-takeout", part.to_str().unwrap()])
        .await;
    assert_eq!(out.status.code(), Some(OK), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("2 merged with API/Picker items (1 replaced"),
        "{stdout}"
    );

    let after = parse_list(&ws.run_async(&["list", "--json"]).await);
    assert_eq!(after.len(), n_before, "no new asset: {after:#?}");
    let row = |id: &str| after.iter().find(|r| r["id"] == id).unwrap().clone();
    let s = row(same.id.as_str());
    assert_eq!(s["source"], "takeout");
    assert_eq!(s["latitude"].as_f64(), Some(10.5));
    assert_eq!(
        std::fs::metadata(&same_path).unwrap().ino(),
        same_ino,
        "same bytes: untouched"
    );
    assert_eq!(std::fs::read(&same_path).unwrap(), same_bytes);
    let o = row(orig.id.as_str());
    assert_eq!(o["source"], "takeout");
    assert_eq!(o["latitude"].as_f64(), Some(-33.5));
    assert_eq!(
        o["path"].as_str().unwrap(),
        path_of(orig.id.as_str()),
        "path never changes"
    );
    assert_eq!(
        std::fs::read(&orig_path).unwrap(),
        original_bytes,
        "the original is stored"
    );
    assert_eq!(o["size"].as_u64(), Some(original_bytes.len() as u64));

    // verify agrees with the replaced file, and the next API sync does not undo it.
    let v = ws.run_async(&["verify", "--deep"]).await;
    assert_eq!(v.status.code(), Some(OK), "{}", describe(&v));
    let out = ws.run_async(&["--run-now"]).await;
    assert_eq!(out.status.code(), Some(OK), "{}", describe(&out));
    assert_eq!(std::fs::read(&orig_path).unwrap(), original_bytes);
    let o = parse_list(&ws.run_async(&["list", "--json"]).await)
        .into_iter()
        .find(|r| r["id"] == orig.id.as_str())
        .unwrap();
    assert_eq!(
        o["latitude"].as_f64(),
        Some(-33.5),
        "the API sync keeps Takeout's GPS"
    );
}

#[test]
fn the_inbox_is_imported_by_a_sync_cycle_and_archives_move_to_done() {
    let ws = workspace!();
    let inbox = ws.path().join("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    takeout_only_config(
        &ws,
        &format!("\n[sources.takeout]\ninbox = {inbox:?}\nsettle_time = \"1h\"\n"),
    );
    let (p1, p2, _) = build_zip_export(&inbox);
    // A set with a gap (001 and 003 of another export), fresh: it must wait for part 002.
    let gap1 = inbox.join("takeout-20250101T000000Z-001.zip");
    let gap3 = inbox.join("takeout-20250101T000000Z-003.zip");
    write_zip(
        &gap1,
        &[file(
            &format!("{ROOT}/Photos from 2024/a.jpg"),
            jpeg("a", 10),
        )],
    );
    write_zip(
        &gap3,
        &[file(
            &format!("{ROOT}/Photos from 2024/b.jpg"),
            jpeg("b", 10),
        )],
    );
    // The complete set was downloaded two hours ago.
    let old = SystemTime::now() - Duration::from_secs(7200);
    for p in [&p1, &p2] {
        std::fs::File::options()
            .write(true)
            .open(p)
            .unwrap()
            .set_modified(old)
            .unwrap();
    }

    let out = ws.run(&["--run-now"]);
    assert_eq!(out.status.code(), Some(OK), "{}", describe(&out));
    let items = list_by_name(&ws);
    assert_eq!(items.values().map(Vec::len).sum::<usize>(), 5, "{items:#?}");
    assert!(!p1.exists() && !p2.exists());
    assert!(
        inbox
            .join("done/takeout-20240525T201456Z-001.zip")
            .is_file()
    );
    assert!(
        inbox
            .join("done/takeout-20240525T201456Z-002.zip")
            .is_file()
    );
    assert!(
        gap1.is_file() && gap3.is_file(),
        "the incomplete export waits"
    );
    let status = ws.run(&["status"]);
    let s = String::from_utf8_lossy(&status.stdout);
    assert!(
        s.contains("waiting: takeout-20250101T000000Z (part 002 missing"),
        "{s}"
    );
}

/// §8 cases 36/38 (edited copies kept; two byte-identical edited copies are one asset) and
/// 40 (the `.MP` video half of a Pixel motion photo is kept, dated by the still's sidecar).
#[test]
fn edited_copies_and_motion_photo_videos_are_kept_and_duplicates_collapse() {
    let ws = workspace!();
    takeout_only_config(&ws, "");
    let dir = format!("{ROOT}/Photos from 2020");
    let edited = jpeg("edited", 9_000);
    let ts_simple = 1_577_880_000; // 2020-01-01T12:00:00Z
    let ts_pxl = 1_672_253_970; // 2022-12-28T18:59:30Z
    let mut mp = vec![0, 0, 0, 0x18];
    mp.extend_from_slice(b"ftypmp42");
    mp.extend_from_slice(&jpeg("motion", 7_000));
    let inputs = tempfile::tempdir().unwrap();
    let part = inputs.path().join("takeout-20240525T201456Z-001.zip");
    write_zip(
        &part,
        &[
            file(
                &format!("{dir}/simple_file_20200101.jpg"),
                jpeg("simple", 8_000),
            ),
            file(
                &format!("{dir}/simple_file_20200101-edited.jpg"),
                edited.clone(),
            ),
            file(
                &format!("{dir}/simple_file_20200101-edited(1).jpg"),
                edited.clone(),
            ),
            file(
                &format!("{dir}/simple_file_20200101.jpg.json"),
                sidecar("simple_file_20200101.jpg", ts_simple, None, ""),
            ),
            file(
                &format!("{dir}/PXL_20221228_185930354.MP.jpg"),
                jpeg("still", 8_000),
            ),
            file(&format!("{dir}/PXL_20221228_185930354.MP"), mp.clone()),
            file(
                &format!("{dir}/PXL_20221228_185930354.MP.jpg.json"),
                sidecar("PXL_20221228_185930354.MP.jpg", ts_pxl, None, ""),
            ),
        ],
    );
    let out = ws.run(&["import-takeout", part.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(OK), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("takeout: 4 imported"), "{stdout}");
    assert!(stdout.contains("1 duplicates"), "{stdout}");

    let items = list_by_name(&ws);
    assert_eq!(items.values().map(Vec::len).sum::<usize>(), 4, "{items:#?}");
    let lib = ws.library_dir();
    let original = one(&items, "simple_file_20200101.jpg");
    assert_eq!(original["taken_at"], "2020-01-01T12:00:00Z");
    let edited_rows: Vec<&serde_json::Value> = items
        .iter()
        .filter(|(k, _)| k.contains("-edited"))
        .flat_map(|(_, v)| v)
        .collect();
    assert_eq!(edited_rows.len(), 1, "{edited_rows:#?}");
    let e = edited_rows[0];
    assert_eq!(
        e["taken_at"], "2020-01-01T12:00:00Z",
        "dated from the original's JSON"
    );
    assert_eq!(
        std::fs::read(lib.join(e["path"].as_str().unwrap())).unwrap(),
        edited
    );

    let video = one(&items, "PXL_20221228_185930354.MP");
    assert_eq!(video["taken_at"], "2022-12-28T18:59:30Z");
    assert!(
        video["mime_type"].as_str().unwrap().starts_with("video/"),
        "{video}"
    );
    let vpath = lib.join(video["path"].as_str().unwrap());
    assert_eq!(std::fs::read(&vpath).unwrap(), mp);
    assert_eq!(mtime(&vpath), at(ts_pxl));
    one(&items, "PXL_20221228_185930354.MP.jpg");
    // No temp file survived the collapsed duplicate.
    assert!(
        files_under(&lib)
            .iter()
            .all(|f| !f.to_string_lossy().contains(".part-"))
    );
}

/// A user's own XMP next to a photo (darktable, digiKam) is never replaced, and with
/// `delete_after_import` a part holding an entry that could not be read (here a CRC error)
/// is moved to `done/`, not deleted: it may hold the only original.
#[test]
fn user_xmp_is_kept_and_a_part_with_an_unreadable_entry_is_never_deleted() {
    let ws = workspace!();
    let inbox = ws.path().join("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    takeout_only_config(
        &ws,
        &format!(
            "\n[sources.takeout]\ninbox = {inbox:?}\nsettle_time = \"1h\"\ndelete_after_import = true\n"
        ),
    );
    let ts = 1_695_394_176; // 2023-09-22T14:49:36Z → photos/2023/09
    let good = jpeg("good", 4000);
    let bad = jpeg("bad", 4000);
    let dir = format!("{ROOT}/Photos from 2023");
    let part = inbox.join("takeout-20240601T000000Z-001.zip");
    write_zip(
        &part,
        &[
            file(&format!("{dir}/IMG_GOOD.jpg"), good.clone()),
            file(
                &format!("{dir}/IMG_GOOD.jpg.json"),
                sidecar("IMG_GOOD.jpg", ts, Some((48.85, 2.35)), ""),
            ),
            file(&format!("{dir}/IMG_BAD.jpg"), bad.clone()),
            file(
                &format!("{dir}/IMG_BAD.jpg.json"),
                sidecar("IMG_BAD.jpg", ts, None, ""),
            ),
        ],
    );
    // Random bytes are stored verbatim by deflate: flip one inside IMG_BAD.jpg's data.
    let mut bytes = std::fs::read(&part).unwrap();
    let needle = &bad[1000..1064];
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("entry bytes stored verbatim");
    bytes[at + 10] ^= 0xFF;
    std::fs::write(&part, &bytes).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&part)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(7200))
        .unwrap();

    let user_xmp = ws.library_dir().join("photos/2023/09/IMG_GOOD.jpg.xmp");
    std::fs::create_dir_all(user_xmp.parent().unwrap()).unwrap();
    std::fs::write(&user_xmp, "<x:xmpmeta>my darktable edits</x:xmpmeta>").unwrap();

    let out = ws.run(&["--run-now"]);
    assert_eq!(out.status.code(), Some(PARTIAL), "{}", describe(&out));
    assert_eq!(
        std::fs::read(ws.library_dir().join("photos/2023/09/IMG_GOOD.jpg")).unwrap(),
        good
    );
    assert_eq!(
        std::fs::read_to_string(&user_xmp).unwrap(),
        "<x:xmpmeta>my darktable edits</x:xmpmeta>",
        "the user's XMP was replaced"
    );
    assert!(!part.exists(), "the part stays in the inbox");
    assert!(
        inbox
            .join("done/takeout-20240601T000000Z-001.zip")
            .is_file(),
        "a part with an unreadable entry must be kept, not deleted"
    );
}

/// A library file lost after its import (deleted by hand, `verify` reports it missing)
/// comes back when the same export is imported again.
#[test]
fn reimporting_an_export_restores_a_lost_library_file() {
    let ws = workspace!();
    takeout_only_config(&ws, "");
    let ts = 1_695_394_176; // 2023-09-22T14:49:36Z → photos/2023/09
    let photo = jpeg("restore-me", 3000);
    let dir = format!("{ROOT}/Photos from 2023");
    let part = ws.path().join("takeout-20240601T000000Z-001.zip");
    write_zip(
        &part,
        &[
            file(&format!("{dir}/IMG_LOST.jpg"), photo.clone()),
            file(
                &format!("{dir}/IMG_LOST.jpg.json"),
                sidecar("IMG_LOST.jpg", ts, None, ""),
            ),
        ],
    );
    let part_arg = part.to_string_lossy().into_owned();
    let first = ws.run(&["import-takeout", &part_arg]);
    assert_eq!(first.status.code(), Some(OK), "{}", describe(&first));
    let path = ws.library_dir().join("photos/2023/09/IMG_LOST.jpg");
    assert_eq!(std::fs::read(&path).unwrap(), photo);

    std::fs::remove_file(&path).unwrap();
    let verify = ws.run(&["verify"]);
    assert_eq!(verify.status.code(), Some(7), "{}", describe(&verify));

    let again = ws.run(&["import-takeout", &part_arg]);
    assert!(
        matches!(again.status.code(), Some(OK | PARTIAL)),
        "{}",
        describe(&again)
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        photo,
        "the lost file was not restored"
    );
    let verify = ws.run(&["verify", "--deep"]);
    assert_eq!(verify.status.code(), Some(OK), "{}", describe(&verify));
}
