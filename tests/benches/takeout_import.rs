//! Takeout import speed and memory against `unzip -q` of the same parts, in the same run.
//!
//! `cargo bench -p system-tests --bench takeout_import [-- TOTAL_MB [FILES]]`
//! (default 2048 MB in 20,000 photos; pass e.g. `200 4000` for a quick run).
//!
//! 1. Builds a synthetic multi-part export in `CARGO_TARGET_TMPDIR` (same disk as the
//!    outputs): parts of at most 512 MB, deflate, each photo with a real-shape sidecar,
//!    sidecars of a tenth of the photos in the *next* part (cross-part pairs, §1.2), and
//!    one photo in twenty also in an album folder (duplicate copies, §2.5).
//! 2. Ours: the real `gphotos-backup import-takeout` (batch durability) as a child process;
//!    peak RSS from getrusage(RUSAGE_CHILDREN), read before any other child runs.
//! 3. Baseline: `unzip -q` of every part into a fresh folder, then `sync`, since our import
//!    ends with its data on disk.
//!
//! Prints both times, the ratio (target <= 1.25) and our peak RSS.

#![allow(clippy::unwrap_used, clippy::expect_used)]
// getrusage(RUSAGE_CHILDREN) is the only way to read a finished child's peak RSS.
#![allow(unsafe_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use system_tests::{Workspace, describe};

const PART_LIMIT: u64 = 512 * 1024 * 1024;
const ROOT: &str = "Takeout/Google Photos";

fn peak_rss_of_children_kib() -> i64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a complete rusage into the pointer we pass.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr()) };
    assert_eq!(rc, 0, "getrusage failed");
    // SAFETY: initialised by the successful call above.
    unsafe { usage.assume_init() }.ru_maxrss
}

fn proc_status(key: &str) -> i64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn sidecar(title: &str, ts: u64) -> String {
    format!(
        r#"{{
  "title": "{title}",
  "description": "",
  "imageViews": "1",
  "creationTime": {{ "timestamp": "{ts}", "formatted": "x" }},
  "photoTakenTime": {{ "timestamp": "{ts}", "formatted": "x" }},
  "geoData": {{ "latitude": 48.85, "longitude": 2.35, "altitude": 0.0, "latitudeSpan": 0.0, "longitudeSpan": 0.0 }},
  "geoDataExif": {{ "latitude": 48.85, "longitude": 2.35, "altitude": 0.0, "latitudeSpan": 0.0, "longitudeSpan": 0.0 }},
  "url": "https://photos.google.com/photo/AF1Qip{ts}"
}}"#
    )
}

struct Part {
    path: PathBuf,
    writer: zip::ZipWriter<std::fs::File>,
    bytes: u64,
}

fn new_part(dir: &Path, n: usize) -> Part {
    let path = dir.join(format!("takeout-20260101T000000Z-{n:03}.zip"));
    Part {
        writer: zip::ZipWriter::new(std::fs::File::create(&path).unwrap()),
        path,
        bytes: 0,
    }
}

/// Builds the export; returns the part paths and the total media bytes.
fn build_export(dir: &Path, total: u64, files: usize) -> (Vec<PathBuf>, u64) {
    let per_file = (total / files as u64).max(1024) as usize;
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(1))
        .large_file(false);
    let mut parts = vec![new_part(dir, 1)];
    let mut pending_sidecars: Vec<(String, String)> = Vec::new();
    let mut media_bytes = 0u64;
    let mut buf = vec![0u8; per_file];
    // Album metadata once per album and part (a zip cannot hold a name twice).
    let mut albums_here = std::collections::HashSet::new();
    for i in 0..files {
        let ts = 1_500_000_000 + (i as u64) * 3_600;
        let year = 2017 + (i * 8 / files.max(1));
        let name = format!("IMG_{i:06}.jpg");
        let mut h = blake3::Hasher::new();
        h.update(&(i as u64).to_le_bytes());
        h.finalize_xof().fill(&mut buf);
        buf[..4].copy_from_slice(&[0xFF, 0xD8, 0xFF, 0xE0]);
        let folder = format!("{ROOT}/Photos from {year}");
        {
            let p = parts.last_mut().unwrap();
            p.writer
                .start_file(format!("{folder}/{name}"), opts)
                .unwrap();
            p.writer.write_all(&buf).unwrap();
            p.bytes += buf.len() as u64;
            media_bytes += buf.len() as u64;
            let json = sidecar(&name, ts);
            if i % 10 == 3 {
                pending_sidecars.push((format!("{folder}/{name}.json"), json.clone()));
            } else {
                p.writer
                    .start_file(format!("{folder}/{name}.json"), opts)
                    .unwrap();
                p.writer.write_all(json.as_bytes()).unwrap();
            }
            if i % 20 == 7 {
                let album = format!("{ROOT}/Album {}", i / 1000);
                p.writer
                    .start_file(format!("{album}/{name}"), opts)
                    .unwrap();
                p.writer.write_all(&buf).unwrap();
                p.writer
                    .start_file(format!("{album}/{name}.json"), opts)
                    .unwrap();
                p.writer.write_all(json.as_bytes()).unwrap();
                if albums_here.insert(album.clone()) {
                    p.writer
                        .start_file(format!("{album}/metadata.json"), opts)
                        .unwrap();
                    p.writer
                        .write_all(format!(r#"{{"title": "Album {}"}}"#, i / 1000).as_bytes())
                        .unwrap();
                }
                p.bytes += buf.len() as u64;
            }
        }
        if parts.last().unwrap().bytes >= PART_LIMIT {
            let n = parts.len() + 1;
            parts.push(new_part(dir, n));
            albums_here.clear();
            // Sidecars whose media went into the finished part land in the next one.
            let p = parts.last_mut().unwrap();
            for (path, json) in pending_sidecars.drain(..) {
                p.writer.start_file(path, opts).unwrap();
                p.writer.write_all(json.as_bytes()).unwrap();
            }
        }
    }
    let mut paths = Vec::new();
    let last = parts.len() - 1;
    for (k, mut p) in parts.into_iter().enumerate() {
        if k == last {
            for (path, json) in pending_sidecars.drain(..) {
                p.writer.start_file(path, opts).unwrap();
                p.writer.write_all(json.as_bytes()).unwrap();
            }
        }
        p.writer.finish().unwrap();
        paths.push(p.path);
    }
    (paths, media_bytes)
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let total_mb: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(2048);
    let files: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let base = tmp.path().to_path_buf();
    // TAKEOUT_BENCH_KEEP=1 leaves the export and both outputs behind for a closer look.
    let _cleanup = if std::env::var_os("TAKEOUT_BENCH_KEEP").is_some() {
        println!("keeping {}", tmp.keep().display());
        None
    } else {
        Some(tmp)
    };

    let t = Instant::now();
    let (parts, media_bytes) = build_export(&base, total_mb << 20, files);
    let archive_bytes: u64 = parts
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    println!(
        "export: {} parts, {files} photos (+5% album copies), {:.0} MB media, {:.0} MB archives, built in {:.1}s",
        parts.len(),
        media_bytes as f64 / 1e6,
        archive_bytes as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    let _ = Command::new("sync").status();
    println!(
        "bench process: VmRSS {} kB, VmHWM {} kB",
        proc_status("VmRSS:"),
        proc_status("VmHWM:")
    );

    // Ours first, so RUSAGE_CHILDREN's peak is ours alone.
    let ws = Workspace::new(env!("CARGO_BIN_EXE_gphotos-backup-under-test"));
    ws.write_config(&format!(
        "library_dir = {:?}\nstate_dir = {:?}\n\n[sources.library_api]\nenabled = false\n\n[sync]\ndurability = \"batch\"\n",
        base.join("library"),
        base.join("state")
    ));
    let mut args: Vec<&str> = vec!["import-takeout"];
    args.extend(parts.iter().map(|p| p.to_str().unwrap()));
    let t = Instant::now();
    let out = ws.run(&args);
    let ours = t.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let rss_kib = peak_rss_of_children_kib();
    print!("{}", String::from_utf8_lossy(&out.stdout));

    let unzip_dir = base.join("unzipped");
    std::fs::create_dir_all(&unzip_dir).unwrap();
    let t = Instant::now();
    for p in &parts {
        let s = Command::new("unzip")
            .arg("-q")
            .arg("-o")
            .arg(p)
            .arg("-d")
            .arg(&unzip_dir)
            .status()
            .expect("unzip is installed");
        assert!(s.success(), "unzip failed on {}", p.display());
    }
    let _ = Command::new("sync").status();
    let unzip = t.elapsed();

    let mbps = |d: Duration| media_bytes as f64 / 1e6 / d.as_secs_f64();
    println!(
        "unzip -q + sync: {:.2}s ({:.0} MB/s)",
        unzip.as_secs_f64(),
        mbps(unzip)
    );
    println!(
        "import-takeout:  {:.2}s ({:.0} MB/s)",
        ours.as_secs_f64(),
        mbps(ours)
    );
    println!(
        "ratio ours/unzip: {:.2} (target <= 1.25); our peak RSS: {:.1} MB",
        ours.as_secs_f64() / unzip.as_secs_f64(),
        rss_kib as f64 / 1024.0
    );
}
