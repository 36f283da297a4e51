//! The real 3-part listing `shared/fixtures/takeout-real/small.lst` (immich-go TESTDATA):
//! every entry name rebuilt into three zip parts with our own bytes. Sidecar titles are
//! synthesised from the media names (the listing has no JSON text).

mod common;

use std::collections::BTreeMap;

use common::*;
use takeout::{PairMethod, PartNumber, SkipReason};

fn parse_listing() -> BTreeMap<u32, Vec<String>> {
    let text = std::fs::read_to_string(fixtures().join("small.lst")).expect("fixture small.lst");
    let mut parts: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    let mut current = 0;
    for line in text.lines() {
        if let Some(name) = line.strip_suffix(": ").or_else(|| line.strip_suffix(':'))
            && let Some(p) = takeout::parse_part_name(name.trim())
        {
            current = p.part.0;
            continue;
        }
        // "  Length      Date    Time   Name": the name starts after the time column.
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() >= 4
            && cols[0].bytes().all(|b| b.is_ascii_digit())
            && let Some(at) = line.find("Takeout/")
        {
            parts
                .entry(current)
                .or_default()
                .push(line[at..].to_string());
        }
    }
    parts
}

#[test]
fn real_three_part_listing() {
    let parts = parse_listing();
    assert_eq!(parts.values().map(Vec::len).sum::<usize>(), 968);
    // Media names per folder across all parts, to give each sidecar a realistic title.
    let mut media_by_folder: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in parts.values() {
        for path in p {
            if !path.ends_with(".json") {
                let (d, n) = path.rsplit_once('/').unwrap();
                media_by_folder
                    .entry(d.to_string())
                    .or_default()
                    .push(n.to_string());
            }
        }
    }
    let mut built = Vec::new();
    for (n, paths) in &parts {
        let mut entries = Entries::new();
        for path in paths {
            let (dir, name) = path.rsplit_once('/').unwrap();
            let bytes = if name == "métadonnées.json" {
                format!(
                    "{{\"title\": {}}}",
                    serde_json::Value::String(dir.rsplit('/').next().unwrap().into())
                )
                .into_bytes()
            } else if let Some(stem) = name.strip_suffix(".json") {
                let title = media_by_folder
                    .get(dir)
                    .and_then(|ms| {
                        ms.iter()
                            .filter(|m| m.starts_with(stem.trim_end_matches('.')))
                            .min_by_key(|m| m.len())
                    })
                    .cloned()
                    .unwrap_or_else(|| stem.to_string());
                sc(&title, 1_700_000_000).into_bytes()
            } else if name.to_ascii_lowercase().ends_with(".mp4")
                || name.to_ascii_lowercase().ends_with(".m4v")
            {
                mp4(path)
            } else {
                jpeg(path)
            };
            entries.push((path.clone(), bytes));
        }
        built.push((*n, entries));
    }
    let dir = tempfile::tempdir().unwrap();
    let run = import_zip_parts(dir.path(), &built);
    let rep = run.catalog.report();
    println!(
        "media {} paired {:?} cross-part",
        rep.media, rep.paired_by_method
    );
    assert!(rep.part_errors.is_empty());
    assert!(rep.orphan_sidecars.is_empty(), "{:#?}", rep.orphan_sidecars);
    assert_eq!(rep.paired_by_method.get(&PairMethod::PrefixHeuristic), None);
    assert!(
        rep.skipped
            .iter()
            .any(|s| s.name.ends_with("archive_browser.html") && s.reason == SkipReason::NotMedia)
    );
    // §1.2: many pairs have media and sidecar in different parts.
    let cross = run
        .streamed
        .iter()
        .filter(|(r, _)| r.sidecar.as_ref().is_some_and(|s| s.part != r.locator.part))
        .count();
    assert!(cross >= 150, "cross-part pairs: {cross}");
    // The album spread over parts 001..003 is one album holding all its media.
    let garros: Vec<_> = run
        .streamed
        .iter()
        .filter(|(r, _)| r.folder.ends_with("Garros 19 Juillet 2018"))
        .collect();
    let parts_seen: std::collections::BTreeSet<PartNumber> =
        garros.iter().map(|(r, _)| r.locator.part).collect();
    assert_eq!(parts_seen.len(), 3);
    assert!(garros.iter().all(|(r, _)| r.album.is_some()));
    // Every media item without a sidecar is explained: edited copy or motion-video half.
    for (r, _) in &run.streamed {
        if r.sidecar.is_none() {
            panic!("unpaired: {}", r.locator);
        }
    }
    assert_eq!(run.stream_report.delivered, run.catalog.records().len());
}
