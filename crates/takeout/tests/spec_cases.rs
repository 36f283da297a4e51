//! Every numbered case of §8 of shared/specs/takeout-format.md, on archives built here.

mod common;

use common::*;
use takeout::{
    CaptureTime, Confidence, DateSource, ImportOptions, MotionRole, PairMethod, PartNumber,
    RecordFlag, SkipReason,
};

const Y23: &str = "Photos from 2023";

// ---------- Archives ----------

#[test]
fn case01_sidecar_in_other_part_and_missing_part() {
    let dir = tempfile::tempdir().unwrap();
    let p1 = gp(&[(
        Y23,
        "PXL_20230815_152303067.jpg.json",
        sc("PXL_20230815_152303067.jpg", 1692112983).into_bytes(),
    )]);
    let p2 = gp(&[(Y23, "PXL_20230815_152303067.jpg", jpeg("a"))]);
    let run = import_zip_parts(dir.path(), &[(1, p1), (2, p2.clone())]);
    assert_eq!(run.streamed.len(), 1);
    let r = run.rec("PXL_20230815_152303067.jpg");
    assert_eq!(r.locator.part, PartNumber(2));
    assert_eq!(r.sidecar.as_ref().unwrap().part, PartNumber(1));
    assert_eq!(r.taken.unwrap().time, utc("2023-08-15T15:23:03Z"));
    assert!(run.catalog.report().orphan_sidecars.is_empty());
    assert!(run.catalog.report().missing_parts.is_empty());

    // Only part 002: flagged, export incomplete.
    let dir2 = tempfile::tempdir().unwrap();
    let p = dir2.path().join("takeout-20240525T201456Z-002.zip");
    write_zip(&p, &p2);
    let run = import_paths(&[p], &ImportOptions::default());
    assert_eq!(run.catalog.report().missing_parts, vec![PartNumber(1)]);
    let r = run.rec("PXL_20230815_152303067.jpg");
    assert!(r.flags.contains(&RecordFlag::SidecarMayBeInMissingPart));
    assert!(r.sidecar.is_none());
}

#[test]
fn case02_album_across_three_parts() {
    let dir = tempfile::tempdir().unwrap();
    let al = "Garros 19 Juillet 2018";
    let meta = r#"{"title":"Garros 19 Juillet 2018","description":"","access":"protected","date":{"timestamp":"1532000000","formatted":"x"}}"#;
    let p1 = gp(&[
        (al, "métadonnées.json", meta.into()),
        (al, "IMG_1.JPG", jpeg("1")),
        (al, "IMG_1.JPG.json", sc("IMG_1.JPG", 1532000001).into()),
    ]);
    let p2 = gp(&[
        (al, "IMG_2.JPG", jpeg("2")),
        (al, "IMG_2.JPG.json", sc("IMG_2.JPG", 1532000002).into()),
    ]);
    let p3 = gp(&[(al, "VID_3.MP4", mp4("3"))]);
    let run = import_zip_parts(dir.path(), &[(1, p1), (2, p2), (3, p3)]);
    assert_eq!(run.streamed.len(), 3);
    let albums = run.catalog.albums();
    assert_eq!(albums.len(), 1);
    let album = albums.values().next().unwrap();
    assert_eq!(album.title, al);
    for (r, _) in &run.streamed {
        assert_eq!(r.album.as_ref(), Some(&album.key), "{}", r.locator);
    }
}

#[test]
fn case04_part_grouping() {
    let dir = tempfile::tempdir().unwrap();
    let mk = |n: &str| {
        let p = dir.path().join(n);
        write_zip(&p, &vec![]);
        p
    };
    let a = mk("takeout-20240525T201456Z-001.zip");
    let c = mk("takeout-20240525T201456Z-003.zip");
    let n = mk("takeout-20250912T060118Z-1-001.zip");
    let t = dir.path().join("takeout-20230720T065335Z-001.tgz");
    write_tgz(&t, &vec![]);
    let junk = dir.path().join("._takeout-20240525T201456Z-001.zip");
    std::fs::write(&junk, b"\0\0").unwrap();
    let loose = dir.path().join("GH010015.MP4");
    std::fs::write(&loose, b"x").unwrap();
    let g = takeout::group_parts(&[dir.path()]);
    let ids: Vec<&str> = g.exports.iter().map(|e| e.id.0.as_str()).collect();
    assert_eq!(
        ids,
        [
            "takeout-20230720T065335Z",
            "takeout-20240525T201456Z",
            "takeout-20250912T060118Z-1"
        ]
    );
    let e = &g.exports[1];
    assert_eq!(
        e.parts.iter().map(|p| &p.path).collect::<Vec<_>>(),
        [&a, &c]
    );
    assert_eq!(e.missing, vec![PartNumber(2)]);
    assert_eq!(g.exports[0].parts[0].format, takeout::PartFormat::Tgz);
    assert_eq!(g.exports[2].parts[0].path, n);
    let reasons: Vec<_> = g
        .ignored
        .iter()
        .map(|i| (i.path.clone(), i.reason.clone()))
        .collect();
    assert!(reasons.contains(&(junk, takeout::IgnoreReason::Junk)));
    assert!(reasons.contains(&(loose, takeout::IgnoreReason::LooseFile)));
}

#[test]
fn case05_zip64_entry_sizes() {
    // Entries written with ZIP64 extra fields (large_file) must stream intact. (§1.1: parts
    // over 2 GB are ZIP64.) The >4 GiB variant is `zip64_over_4gib` in hostile.rs.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("takeout-20240525T201456Z-001.zip");
    let f = std::fs::File::create(&p).unwrap();
    let mut z = zip::ZipWriter::new(f);
    let body: Vec<u8> = (0..300_000u32).flat_map(|i| i.to_le_bytes()).collect();
    let mut img = jpeg("z64");
    img.extend_from_slice(&body);
    let opts = zip::write::SimpleFileOptions::default().large_file(true);
    z.start_file(format!("{GP}/{Y23}/big.jpg"), opts).unwrap();
    std::io::Write::write_all(&mut z, &img).unwrap();
    z.finish().unwrap();
    let run = import_paths(&[p], &ImportOptions::default());
    let (r, h) = &run.streamed[0];
    assert_eq!(r.size, img.len() as u64);
    assert_eq!(*h, *blake3::hash(&img).as_bytes());
}

#[test]
fn case06_traversal_rejected_import_continues() {
    let mut e = gp(&[(Y23, "ok.jpg", jpeg("ok"))]);
    e.push(("../evil.jpg".into(), jpeg("evil")));
    e.push(("/abs/evil.jpg".into(), jpeg("abs")));
    let (_d, run) = import_one(e);
    assert_eq!(run.streamed.len(), 1);
    let reasons: Vec<_> = run
        .catalog
        .report()
        .skipped
        .iter()
        .map(|s| s.reason.clone())
        .collect();
    assert!(reasons.contains(&SkipReason::UnsafePath(
        takeout::PathRejection::ParentComponent
    )));
    assert!(reasons.contains(&SkipReason::UnsafePath(takeout::PathRejection::Absolute)));
}

#[test]
fn case07_appledouble_and_ds_store_are_junk() {
    let mut nul_json = vec![0u8, 5, 22, 7, 0, 2, 0, 0];
    nul_json.extend([0u8; 64]);
    let e = gp(&[
        (
            "Photos from 2022",
            "IMG_1337.HEIC",
            b"\0\0\0\x18ftypheic".to_vec(),
        ),
        ("Photos from 2022", "._IMG_1337.HEIC.json", nul_json),
        ("Photos from 2022", ".DS_Store", vec![0, 0, 0, 1]),
    ]);
    let (_d, run) = import_one(e);
    let rep = run.catalog.report();
    assert_eq!(rep.junk, 2);
    assert!(rep.skipped.is_empty(), "{:?}", rep.skipped);
    assert_eq!(run.streamed.len(), 1);
}

// ---------- Layout ----------

#[test]
fn case09_polish_export_fixture() {
    // Real names and sidecar texts (fixtures/takeout-real/polish_export.json).
    let fx: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("polish_export.json")).unwrap(),
    )
    .unwrap();
    let mut entries = Vec::new();
    for e in fx["entries"].as_array().unwrap() {
        let path = format!("Takeout/{}", e["path"].as_str().unwrap());
        let bytes = match e["kind"].as_str().unwrap() {
            "json" => e["text"].as_str().unwrap().as_bytes().to_vec(),
            "html" => b"<html></html>".to_vec(),
            _ => jpeg(&path),
        };
        entries.push((path, bytes));
    }
    for txt in ["{}", "[]"] {
        let mut e = entries.clone();
        e.retain(|(p, _)| !p.ends_with("user-generated-memory-titles.json"));
        e.push((
            "Takeout/Zdjęcia Google/user-generated-memory-titles.json".into(),
            txt.into(),
        ));
        let (_d, run) = import_one(e);
        let rep = run.catalog.report();
        assert!(rep.part_errors.is_empty());
        let r = run.rec("Photos from 2020/IMG_20200516_154811.jpg");
        assert_eq!(r.pair_method, Some(PairMethod::Exact));
        assert_eq!(r.taken.unwrap().source, DateSource::SidecarTaken);
        // Only the GIF has no sidecar (§3.4).
        let unpaired: Vec<_> = run
            .streamed
            .iter()
            .filter(|(r, _)| r.sidecar.is_none())
            .map(|(r, _)| r.file_name.clone())
            .collect();
        assert_eq!(unpaired, ["tia3059641059518022454.gif"]);
        assert!(rep.orphan_sidecars.is_empty(), "{:?}", rep.orphan_sidecars);
        let other_json = rep
            .skipped
            .iter()
            .filter(|s| s.reason == SkipReason::OtherJson)
            .count();
        assert_eq!(other_json, 3);
        assert!(
            rep.skipped
                .iter()
                .any(|s| s.name.ends_with("przeglądarka_archiwum.html")
                    && s.reason == SkipReason::NotMedia)
        );
        assert!(
            !rep.skipped
                .iter()
                .any(|s| matches!(s.reason, SkipReason::InvalidJson(_)))
        );
    }
}

#[test]
fn case11_album_json_shapes_and_localized_names() {
    let e = gp(&[
        ("A1", "metadata.json", r#"{"albumData":{"title":"Trip to Gdańsk","description":"","access":"protected","date":{"timestamp":"1","formatted":"x"}}}"#.as_bytes().to_vec()),
        ("A2", "métadonnées.json", br#"{"title":"Flat album","description":"d","access":"protected","date":{"timestamp":"1","formatted":"x"},"location":"","geoData":{"latitude":0.0,"longitude":0.0}}"#.to_vec()),
        ("A3", "Metadaten.json", br#"{"title":"basement finishing"}"#.to_vec()),
        ("A4", "metaadatok.json", br#"{"title":"Magyar album","enrichments":[{"narrativeEnrichment":{"text":"hi"}}]}"#.to_vec()),
        ("A5", "метаданные.json", "{\"title\":\"Русский альбом\"}".as_bytes().to_vec()),
        ("A1", "x.jpg", jpeg("1")),
    ]);
    let (_d, run) = import_one(e);
    let mut titles: Vec<&str> = run
        .catalog
        .albums()
        .values()
        .map(|a| a.title.as_str())
        .collect();
    titles.sort();
    assert_eq!(
        titles,
        [
            "Flat album",
            "Magyar album",
            "Trip to Gdańsk",
            "basement finishing",
            "Русский альбом"
        ]
    );
}

#[test]
fn case12_album_title_from_json() {
    let e = gp(&[
        (
            "Album test 6-10-23",
            "metadata.json",
            br#"{"title":"Album test 6/10/23","description":"desc"}"#.to_vec(),
        ),
        ("Album test 6-10-23", "a.jpg", jpeg("a")),
    ]);
    let (_d, run) = import_one(e);
    let a = run.catalog.albums().values().next().unwrap();
    assert_eq!(a.title, "Album test 6/10/23");
    assert_eq!(run.rec("a.jpg").album.as_ref(), Some(&a.key));
}

#[test]
fn case14_untitled_albums_distinct() {
    let e = gp(&[
        (
            "Sans titre(9)",
            "métadonnées.json",
            br#"{"title":""}"#.to_vec(),
        ),
        ("Sans titre(9)", "a.jpg", jpeg("a")),
        ("Untitled(1)", "metadata.json", br#"{"title":""}"#.to_vec()),
        ("Untitled(1)", "b.jpg", jpeg("b")),
        (
            "Titled",
            "metadata.json",
            br#"{"title":"Untitled(1)"}"#.to_vec(),
        ),
        ("Titled", "c.jpg", jpeg("c")),
    ]);
    let (_d, run) = import_one(e);
    assert_eq!(run.catalog.albums().len(), 3);
    let keys: std::collections::BTreeSet<_> = ["a.jpg", "b.jpg", "c.jpg"]
        .iter()
        .map(|n| run.rec(n).album.clone().unwrap())
        .collect();
    assert_eq!(keys.len(), 3);
    assert_eq!(
        run.catalog.albums().values().filter(|a| a.untitled).count(),
        2
    );
}

#[test]
fn case15_trash_excluded_unless_requested() {
    let e = gp(&[
        ("Trash", "x.jpg", jpeg("x")),
        (
            "Trash",
            "x.jpg.json",
            sc_with("x.jpg", 1600000000, r#""trashed": true"#).into(),
        ),
        ("Bin", "y.jpg", jpeg("y")),
        ("Bin", "y.jpg.json", sc("y.jpg", 1600000001).into()),
        ("Papierkorb", "z.jpg", jpeg("z")),
        ("Photos from 2020", "live.jpg", jpeg("live")),
    ]);
    let (_d, run) = import_one(e.clone());
    assert_eq!(run.streamed_names(), ["live.jpg"]);
    assert_eq!(
        run.catalog
            .report()
            .skipped
            .iter()
            .filter(|s| s.reason == SkipReason::Trashed)
            .count(),
        3
    );

    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("takeout-20240525T201456Z-001.zip");
    write_zip(&p, &e);
    let run = import_paths(
        &[p],
        &ImportOptions {
            include_trashed: true,
            ..Default::default()
        },
    );
    assert_eq!(run.streamed.len(), 4);
    for n in ["x.jpg", "y.jpg", "z.jpg"] {
        assert!(run.rec(n).trashed, "{n}");
    }
    assert!(
        run.rec("y.jpg")
            .flags
            .contains(&RecordFlag::TrashedByFolder)
    );
    assert!(
        !run.rec("x.jpg")
            .flags
            .contains(&RecordFlag::TrashedByFolder)
    );
}

#[test]
fn case16_archive_flag() {
    let e = gp(&[
        ("Archive", "x.jpg", jpeg("x")),
        (
            "Archive",
            "x.jpg.json",
            sc_with("x.jpg", 1600000000, r#""archived": true"#).into(),
        ),
    ]);
    let (_d, run) = import_one(e);
    let r = run.rec("x.jpg");
    assert!(r.archived && !r.trashed);
    assert!(r.album.is_none());
    assert!(run.catalog.albums().is_empty());
}

// ---------- Sidecar pairing ----------

/// One folder with `media` and `sidecars` (name, title, timestamp).
fn folder(media: &[&str], sidecars: &[(&str, &str, i64)]) -> (tempfile::TempDir, Run) {
    let mut e: Entries = media
        .iter()
        .map(|m| (format!("{GP}/F/{m}"), jpeg(m)))
        .collect();
    for (n, t, ts) in sidecars {
        e.push((format!("{GP}/F/{n}"), sc(t, *ts).into_bytes()));
    }
    import_one(e)
}

fn assert_pairs(run: &Run, pairs: &[(&str, Option<&str>)]) {
    for (m, s) in pairs {
        assert_eq!(run.sidecar_name(m).as_deref(), *s, "media {m}");
    }
}

#[test]
fn case18_no_stealing() {
    let (_d, run) = folder(
        &["PXL_20211013_220651983.jpg", "PXL_20211013_220651958.jpg"],
        &[(
            "PXL_20211013_220651983.jpg.json",
            "PXL_20211013_220651983.jpg",
            1,
        )],
    );
    assert_pairs(
        &run,
        &[
            (
                "PXL_20211013_220651983.jpg",
                Some("PXL_20211013_220651983.jpg.json"),
            ),
            ("PXL_20211013_220651958.jpg", None),
        ],
    );
}

#[test]
fn case19_index_moved_and_negatives() {
    let (_d, run) = folder(
        &[
            "DSC_0101(1).JPG",
            "IMG_2710(1).HEIC",
            "DSC_0102(1).JPG",
            "DSC_0103.JPG",
            "DSC_0104(1).JPG",
        ],
        &[
            ("DSC_0101.JPG(1).json", "DSC_0101.JPG", 1),
            ("IMG_2710.HEIC(1).json", "IMG_2710.HEIC", 2),
            ("DSC_0102.JPG(2).json", "DSC_0102.JPG", 3),
            ("DSC_0103.JPG(1).json", "DSC_0103.JPG", 4),
            ("DSC_0104.JPG.json", "DSC_0104.JPG", 5),
        ],
    );
    assert_pairs(
        &run,
        &[
            ("DSC_0101(1).JPG", Some("DSC_0101.JPG(1).json")),
            ("IMG_2710(1).HEIC", Some("IMG_2710.HEIC(1).json")),
            ("DSC_0102(1).JPG", None),
            ("DSC_0103.JPG", None),
            ("DSC_0104(1).JPG", None),
        ],
    );
}

#[test]
fn case20_each_index_own_date() {
    let (_d, run) = folder(
        &["IMG_1005.JPG", "IMG_1005(1).JPG", "IMG_1005(2).JPG"],
        &[
            ("IMG_1005.JPG.json", "IMG_1005.JPG", 1000),
            ("IMG_1005.JPG(1).json", "IMG_1005.JPG", 2000),
            ("IMG_1005.JPG(2).json", "IMG_1005.JPG", 3000),
        ],
    );
    for (m, t) in [
        ("IMG_1005.JPG", "1970-01-01T00:16:40Z"),
        ("IMG_1005(1).JPG", "1970-01-01T00:33:20Z"),
        ("IMG_1005(2).JPG", "1970-01-01T00:50:00Z"),
    ] {
        assert_eq!(run.rec(m).taken.unwrap().time, utc(t), "{m}");
    }
}

#[test]
fn case22_truncated_media_name_restored() {
    let m = "PXL_20230809_203449253.LONG_EXPOSURE-02.ORIGINA.jpg";
    let s = "PXL_20230809_203449253.LONG_EXPOSURE-02.ORIGIN.json";
    let (_d, run) = folder(
        &[m],
        &[(s, "PXL_20230809_203449253.LONG_EXPOSURE-02.ORIGINAL.jpg", 1)],
    );
    assert_eq!(run.sidecar_name(m).as_deref(), Some(s));
    assert_eq!(
        run.rec(m).original_name,
        "PXL_20230809_203449253.LONG_EXPOSURE-02.ORIGINAL.jpg"
    );
}

#[test]
fn case23_25_27_cut_forms() {
    let pairs = [
        (
            "05yqt21kruxwwlhhgrwrdyb6chhwszi9bqmzu16w0 2.jpg",
            "05yqt21kruxwwlhhgrwrdyb6chhwszi9bqmzu16w0 2.jp.json",
            "05yqt21kruxwwlhhgrwrdyb6chhwszi9bqmzu16w0 2.jpg",
        ),
        (
            "Screenshot_2022-10-28-09-31-43-118_com.snapchat.jpg",
            "Screenshot_2022-10-28-09-31-43-118_com.snapcha.json",
            "Screenshot_2022-10-28-09-31-43-118_com.snapchat.jpg",
        ),
        (
            "13039_327707840323_537645323_9470255_27214_n(1).jpg",
            "13039_327707840323_537645323_9470255_27214_n.j(1).json",
            "13039_327707840323_537645323_9470255_27214_n.jpg",
        ),
        (
            "alignment-temple-5D-32-temple-V-reconstructed.png",
            "alignment-temple-5D-32-temple-V-reconstructed..json",
            "alignment-temple-5D-32-temple-V-reconstructed.png",
        ),
        (
            "PXL_20230814_201154491.LONG_EXPOSURE-01.COVER.jpg",
            "PXL_20230814_201154491.LONG_EXPOSURE-01.COVER..json",
            "PXL_20230814_201154491.LONG_EXPOSURE-01.COVER.jpg",
        ),
    ];
    let media: Vec<&str> = pairs.iter().map(|p| p.0).collect();
    let scs: Vec<(&str, &str, i64)> = pairs.iter().map(|p| (p.1, p.2, 5)).collect();
    let (_d, run) = folder(&media, &scs);
    for (m, s, _) in pairs {
        assert_eq!(run.sidecar_name(m).as_deref(), Some(s), "{m}");
        assert!(!run.rec(m).flags.contains(&RecordFlag::TitleMismatch));
    }
    assert!(run.catalog.report().orphan_sidecars.is_empty());
}

#[test]
fn case30_new_scheme_cuts() {
    let pairs = [
        (
            "20161105_170829.jpg",
            "20161105_170829.jpg.supplemental-metadata.json",
        ),
        (
            "Screenshot_20231027_123303_Facebook.jpg",
            "Screenshot_20231027_123303_Facebook.jpg.supple.json",
        ),
        (
            "MVIMG_20191230_232926.jpg",
            "MVIMG_20191230_232926.jpg.supplemental-metadat.json",
        ),
        (
            "Screenshot_20200301-161151.png",
            "Screenshot_20200301-161151.png.supplemental-me.json",
        ),
        (
            "MVIMG_20200207_134534~2.jpg",
            "MVIMG_20200207_134534~2.jpg.supplemental-metad.json",
        ),
        (
            "Screenshot_2024-08-31-00-53-48-647_com.snapchat.jpg",
            "Screenshot_2024-08-31-00-53-48-647_com.snapcha.json",
        ),
    ];
    let media: Vec<&str> = pairs.iter().map(|p| p.0).collect();
    let scs: Vec<(&str, &str, i64)> = pairs.iter().map(|p| (p.1, p.0, 5)).collect();
    let (_d, run) = folder(&media, &scs);
    for (m, s) in pairs {
        assert_eq!(run.sidecar_name(m).as_deref(), Some(s), "{m}");
    }
}

#[test]
fn case31_new_scheme_with_index_no_cross_pairing() {
    let (_d, run) = folder(
        &[
            "Scan35.jpg",
            "Scan35(1).jpg",
            "CLIP0001(10).AVI",
            "Screenshot_20231027_123303_Facebook(1).jpg",
            "Screenshot_20231027_123303_Facebook.jpg",
        ],
        &[
            ("Scan35.jpg.supplemental-metadata.json", "Scan35.jpg", 1),
            ("Scan35.jpg.supplemental-metadata(1).json", "Scan35.jpg", 2),
            (
                "CLIP0001.AVI.supplemental-metadata(10).json",
                "CLIP0001.AVI",
                3,
            ),
            (
                "Screenshot_20231027_123303_Facebook.jpg.supple(1).json",
                "Screenshot_20231027_123303_Facebook.jpg",
                4,
            ),
            (
                "Screenshot_20231027_123303_Facebook.jpg.supple.json",
                "Screenshot_20231027_123303_Facebook.jpg",
                5,
            ),
        ],
    );
    assert_pairs(
        &run,
        &[
            ("Scan35.jpg", Some("Scan35.jpg.supplemental-metadata.json")),
            (
                "Scan35(1).jpg",
                Some("Scan35.jpg.supplemental-metadata(1).json"),
            ),
            (
                "CLIP0001(10).AVI",
                Some("CLIP0001.AVI.supplemental-metadata(10).json"),
            ),
            (
                "Screenshot_20231027_123303_Facebook(1).jpg",
                Some("Screenshot_20231027_123303_Facebook.jpg.supple(1).json"),
            ),
            (
                "Screenshot_20231027_123303_Facebook.jpg",
                Some("Screenshot_20231027_123303_Facebook.jpg.supple.json"),
            ),
        ],
    );
}

#[test]
fn case33_long_untruncated_supplemental() {
    let m = "A very long title of a holiday picture taken somewhere nice.jpg";
    let s = format!("{m}.supplemental-metadata.json");
    let (_d, run) = folder(&[m], &[(&s, m, 7)]);
    assert_eq!(run.sidecar_name(m), Some(s));
    assert_eq!(run.rec(m).pair_method, Some(PairMethod::Exact));
}

#[test]
fn case34_titles_without_extension() {
    let (_d, run) = folder(
        &[
            "20030616.jpg",
            "2234089303984509579.jpg",
            "2234089303984509579-edited.jpg",
        ],
        &[
            ("20030616.json", "20030616", 1),
            (
                "2234089303984509579.supplemental-metadata.json",
                "2234089303984509579",
                2,
            ),
        ],
    );
    assert_pairs(
        &run,
        &[
            ("20030616.jpg", Some("20030616.json")),
            (
                "2234089303984509579.jpg",
                Some("2234089303984509579.supplemental-metadata.json"),
            ),
            (
                "2234089303984509579-edited.jpg",
                Some("2234089303984509579.supplemental-metadata.json"),
            ),
        ],
    );
    let ed = run.rec("2234089303984509579-edited.jpg");
    assert_eq!(
        ed.edited_of.as_ref().unwrap().path.file_name(),
        "2234089303984509579.jpg"
    );
}

#[test]
fn case35_prefix_trap() {
    let (_d, run) = folder(
        &["IMG_1.jpg", "IMG_10.jpg"],
        &[("IMG_1.jpg.json", "IMG_1.jpg", 1)],
    );
    assert_pairs(
        &run,
        &[("IMG_1.jpg", Some("IMG_1.jpg.json")), ("IMG_10.jpg", None)],
    );
    // Even when IMG_1.jpg itself is absent (e.g. in a missing part).
    let (_d, run) = folder(&["IMG_10.jpg"], &[("IMG_1.jpg.json", "IMG_1.jpg", 1)]);
    assert_pairs(&run, &[("IMG_10.jpg", None)]);
}

// ---------- Edited copies, NFD ----------

#[test]
fn case36_edited_copy_linked() {
    let (_d, run) = folder(
        &[
            "IMAG0061.JPG",
            "IMAG0061-edited.JPG",
            "IMG_8416-modifie\u{301}.JPG",
            "IMG_8416.JPG",
        ],
        &[
            (
                "IMAG0061.JPG.supplemental-metadata.json",
                "IMAG0061.JPG",
                1_500_000_000,
            ),
            ("IMG_8416.JPG.json", "IMG_8416.JPG", 1_500_000_001),
        ],
    );
    assert_eq!(run.streamed.len(), 4);
    let orig = run.rec("IMAG0061.JPG");
    let ed = run.rec("IMAG0061-edited.JPG");
    assert_eq!(ed.edited_of.as_ref(), Some(&orig.locator));
    assert_eq!(ed.taken, orig.taken);
    assert!(ed.flags.contains(&RecordFlag::EditedCopy));
    // NFD `-modifié` from a macOS re-pack is normalised and recognised (§3.5).
    let fr = run.rec("IMG_8416-modifié.JPG");
    assert_eq!(fr.pair_method, Some(PairMethod::EditedCopy));
    assert_eq!(
        fr.edited_of.as_ref().unwrap().path.file_name(),
        "IMG_8416.JPG"
    );
}

#[test]
fn case38_edited_duplicates_collapse() {
    let same = jpeg("same-bytes");
    let e = gp(&[
        ("F", "simple_file_20200101-edited.jpg", same.clone()),
        ("F", "simple_file_20200101-edited(1).jpg", same),
        (
            "F",
            "simple_file_20200101.jpg.json",
            sc("simple_file_20200101.jpg", 1577880000).into(),
        ),
    ]);
    let (_d, run) = import_one(e);
    for m in [
        "simple_file_20200101-edited.jpg",
        "simple_file_20200101-edited(1).jpg",
    ] {
        assert_eq!(
            run.sidecar_name(m).as_deref(),
            Some("simple_file_20200101.jpg.json")
        );
        assert_eq!(run.rec(m).taken.unwrap().source, DateSource::SidecarTaken);
    }
    let merged = run.merged();
    assert_eq!(merged.len(), 1);
    assert!(merged.assets().next().unwrap().edited);
}

// ---------- Motion / live photos ----------

#[test]
fn case40_pixel_motion_photo() {
    let e = gp(&[
        (Y23, "PXL_20221228_185930354.MP", mp4("v")),
        (Y23, "PXL_20221228_185930354.MP.jpg", jpeg("s")),
        (
            Y23,
            "PXL_20221228_185930354.MP.jpg.json",
            sc("PXL_20221228_185930354.MP.jpg", 1672253970).into(),
        ),
    ]);
    let (_d, run) = import_one(e);
    assert_eq!(run.streamed.len(), 2);
    let v = run.rec("PXL_20221228_185930354.MP");
    let s = run.rec("PXL_20221228_185930354.MP.jpg");
    assert_eq!(v.kind, takeout::MediaKind::Video);
    assert_eq!(v.motion, Some((MotionRole::Video, s.locator.clone())));
    assert_eq!(s.motion, Some((MotionRole::Still, v.locator.clone())));
    assert_eq!(v.taken.unwrap().time, utc("2022-12-28T18:59:30Z"));
    assert_eq!(v.pair_method, Some(PairMethod::MotionCompanion));
}

#[test]
fn case42_mvimg_without_extension() {
    let e = gp(&[
        ("Photos from 2018", "MVIMG_20180722_120942", mp4("v")),
        ("Photos from 2018", "MVIMG_20180722_120942.jpg", jpeg("s")),
        (
            "Photos from 2018",
            "MVIMG_20180722_120942.jpg.json",
            sc("MVIMG_20180722_120942.jpg", 1532261382).into(),
        ),
    ]);
    let (_d, run) = import_one(e);
    let v = run.rec("MVIMG_20180722_120942");
    assert_eq!(v.kind, takeout::MediaKind::Video);
    assert!(matches!(v.motion, Some((MotionRole::Video, _))));
    assert_eq!(v.taken.unwrap().source, DateSource::SidecarTaken);
}

#[test]
fn case43_live_photo_in_year_and_two_albums() {
    let heic = b"\0\0\0\x18ftypheic\0\0\0\0heic-bytes".to_vec();
    let mov = mp4("live-video");
    let json = sc("IMG_4573.HEIC", 1656000000);
    let mut e = Entries::new();
    for f in [
        "Photos from 2022",
        "2022 - Germany",
        "2022 - Germany - Private",
    ] {
        e.extend(gp(&[
            (f, "IMG_4573.HEIC", heic.clone()),
            (f, "IMG_4573.MP4", mov.clone()),
            (f, "IMG_4573.HEIC.json", json.clone().into()),
        ]));
    }
    e.extend(gp(&[(
        "2022 - Germany",
        "metadata.json",
        br#"{"title":"2022 - Germany"}"#.to_vec(),
    )]));
    e.extend(gp(&[(
        "2022 - Germany - Private",
        "metadata.json",
        br#"{"title":"2022 - Germany - Private"}"#.to_vec(),
    )]));
    let (_d, run) = import_one(e);
    let merged = run.merged();
    assert_eq!(merged.len(), 2);
    let still = merged.assets().find(|a| !a.motion_video).unwrap();
    let titles: Vec<_> = still
        .albums
        .iter()
        .map(|k| run.catalog.albums()[k].title.clone())
        .collect();
    assert_eq!(titles, ["2022 - Germany", "2022 - Germany - Private"]);
    let video = merged.assets().find(|a| a.motion_video).unwrap();
    assert_eq!(video.entries.len(), 3);
    assert!(
        video.best.motion.is_some(),
        "MP4 is the live photo's video half, not a timeline item"
    );
}

// ---------- Missing data ----------

#[test]
fn case45_year_folder_low_confidence() {
    let e = gp(&[(
        "Photos from 2019",
        "tia3059641059518022454.gif",
        b"GIF89a\x01\0\x01\0".to_vec(),
    )]);
    let (_d, run) = import_one(e);
    let r = run.rec("tia3059641059518022454.gif");
    let d = r.taken.unwrap();
    assert_eq!(
        (d.time, d.source, d.confidence),
        (CaptureTime::Year(2019), DateSource::Folder, Confidence::Low)
    );
    assert_eq!(r.confidence, Confidence::Low);
}

#[test]
fn case46_orphan_sidecar() {
    let e = gp(&[
        (
            "F",
            "image000000.jpg(1).json",
            sc("image000000.jpg", 1).into(),
        ),
        ("F", "image000000.jpg", jpeg("a")),
        ("F", "image000000.jpg.json", sc("image000000.jpg", 2).into()),
    ]);
    let (_d, run) = import_one(e);
    let orphans: Vec<_> = run
        .catalog
        .report()
        .orphan_sidecars
        .iter()
        .map(|l| l.path.file_name().to_string())
        .collect();
    assert_eq!(orphans, ["image000000.jpg(1).json"]);
    assert_eq!(run.streamed.len(), 1);
}

// ---------- JSON semantics ----------

#[test]
fn case47_formatted_is_ignored() {
    for formatted in [
        "22 sept. 2023, 14:49:36 UTC",
        "2022年7月9日 UTC 04:53:45",
        "garbage",
    ] {
        let json = sc("a.jpg", 1695394176).replace("6 sty 2015, 19:56:38 UTC", formatted);
        let (_d, run) = import_one(gp(&[
            ("F", "a.jpg", jpeg("a")),
            ("F", "a.jpg.json", json.into()),
        ]));
        assert_eq!(
            run.rec("a.jpg").taken.unwrap().time,
            utc("2023-09-22T14:49:36Z")
        );
    }
}

#[test]
fn case48_absent_or_zero_taken_time() {
    let zero = sc("IMG_20190509_154733.jpg", 0);
    let absent = zero.replace("\"photoTakenTime\"", "\"ignoredTime\"");
    for json in [zero, absent] {
        let (_d, run) = import_one(gp(&[
            ("F", "IMG_20190509_154733.jpg", jpeg("a")),
            ("F", "IMG_20190509_154733.jpg.json", json.into_bytes()),
        ]));
        let d = run.rec("IMG_20190509_154733.jpg").taken.unwrap();
        assert_eq!(d.source, DateSource::FileName);
    }
    // No name date either: the upload time, flagged.
    let (_d, run) = import_one(gp(&[
        ("F", "x.jpg", jpeg("a")),
        ("F", "x.jpg.json", sc("x.jpg", 0).into()),
    ]));
    let r = run.rec("x.jpg");
    assert_eq!(r.taken.unwrap().source, DateSource::SidecarCreation);
    assert!(r.flags.contains(&RecordFlag::DateFromUploadTime));
}

#[test]
fn case49_geo_exif_preferred() {
    let json = sc("IMG_20210127_193339.jpg", 1611772419)
        .replacen(
            r#""latitude": 0.0,
    "longitude": 0.0,"#,
            r#""latitude": 50.0411867,
    "longitude": 21.9991196,"#,
            1,
        )
        .replacen(
            r#""latitude": 0.0,
    "longitude": 0.0,"#,
            r#""latitude": 49.2132972,
    "longitude": 22.6288417,"#,
            1,
        );
    let (_d, run) = import_one(gp(&[
        ("F", "IMG_20210127_193339.jpg", jpeg("a")),
        ("F", "IMG_20210127_193339.jpg.json", json.into()),
    ]));
    let r = run.rec("IMG_20210127_193339.jpg");
    let p = r.position.unwrap();
    assert_eq!((p.latitude, p.longitude), (49.2132972, 22.6288417));
    let g = r.google_position.unwrap();
    assert_eq!((g.latitude, g.longitude), (50.0411867, 21.9991196));
    let (_d, run) = import_one(gp(&[
        ("F", "b.jpg", jpeg("b")),
        ("F", "b.jpg.json", sc("b.jpg", 1).into()),
    ]));
    assert!(run.rec("b.jpg").position.is_none());
}

#[test]
fn case50_flags() {
    let json = sc_with(
        "a.jpg",
        1,
        r#""favorited": true, "people": [{"name": "Ala"}], "description": "x""#,
    )
    .replacen(r#""description": "","#, "", 1);
    let (_d, run) = import_one(gp(&[
        ("F", "a.jpg", jpeg("a")),
        ("F", "a.jpg.json", json.into()),
    ]));
    let r = run.rec("a.jpg");
    assert!(r.favorited && !r.archived && !r.trashed);
    assert_eq!(r.people, ["Ala"]);
    assert_eq!(r.description.as_deref(), Some("x"));
}

#[test]
fn case52_slash_in_title() {
    let (_d, run) = folder(
        &["27_06_12 - 1.mov"],
        &[("27_06_12 - 1.json", "27/06/12 - 1", 1)],
    );
    let r = run.rec("27_06_12 - 1.mov");
    assert!(r.sidecar.is_some());
    assert_eq!(r.original_name, "27_06_12 - 1.mov");
}

#[test]
fn case53_bom_and_invalid_utf8() {
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend(sc("a.jpg", 1_600_000_000).into_bytes());
    let mut bad = sc("b.jpg", 1_600_000_000).into_bytes();
    bad[20] = 0xFF;
    let (_d, run) = import_one(gp(&[
        ("F", "a.jpg", jpeg("a")),
        ("F", "a.jpg.json", bom),
        ("F", "b.jpg", jpeg("b")),
        ("F", "b.jpg.json", bad),
    ]));
    assert_eq!(
        run.rec("a.jpg").taken.unwrap().source,
        DateSource::SidecarTaken
    );
    assert!(run.rec("b.jpg").sidecar.is_none());
    assert!(
        run.catalog
            .report()
            .skipped
            .iter()
            .any(|s| s.name.ends_with("b.jpg.json")
                && matches!(s.reason, SkipReason::InvalidJson(_)))
    );
}

// ---------- Dates ----------

#[test]
fn case54_file_name_dates_end_to_end() {
    let (_d, run) = folder(
        &[
            "PXL_20230809_203449253.jpg",
            "IMG_20190509_154733-edited.jpg",
        ],
        &[],
    );
    assert_eq!(
        run.rec("PXL_20230809_203449253.jpg").taken.unwrap().time,
        utc("2023-08-09T20:34:49.253Z")
    );
    let d = run.rec("IMG_20190509_154733-edited.jpg").taken.unwrap();
    assert_eq!(
        d.time,
        CaptureTime::Local("2019-05-09T15:47:33".parse().unwrap())
    );
    assert_eq!(d.confidence, Confidence::Medium);
}

#[test]
fn case55_exif_sentinels_ignored_and_real_exif_used() {
    for bad in [
        "0000:00:00 00:00:00",
        "1970:01:01 00:00:00",
        "1904:01:01 00:00:00",
        "2036:01:01 23:59:59",
    ] {
        assert_eq!(
            takeout::exif_datetime(&jpeg_exif(bad, None, "x")),
            None,
            "{bad}"
        );
    }
    let e = gp(&[
        ("F", "a.jpg", jpeg_exif("2022:12:16 16:06:47", None, "a")),
        (
            "F",
            "b.jpg",
            jpeg_exif("2024:07:29 04:45:07", Some("+09:00"), "b"),
        ),
        ("F", "c.jpg", jpeg_exif("1970:01:01 00:00:00", None, "c")),
    ]);
    let (_d, run) = import_one(e);
    let a = run.rec("a.jpg").taken.unwrap();
    assert_eq!(
        (a.time, a.source),
        (
            CaptureTime::Local("2022-12-16T16:06:47".parse().unwrap()),
            DateSource::Exif
        )
    );
    // §3.1: EXIF 04:45:07 +09:00 is 2024-07-28 19:45:07 UTC.
    assert_eq!(
        run.rec("b.jpg").taken.unwrap().time,
        utc("2024-07-28T19:45:07Z")
    );
    assert!(run.rec("c.jpg").taken.is_none());
}

#[test]
fn case57_json_beats_name() {
    let (_d, run) = import_one(gp(&[
        (
            "Photos from 2015",
            "signal-2020-07-18-183333.webm",
            b"\x1a\x45\xdf\xa3webm".to_vec(),
        ),
        (
            "Photos from 2015",
            "signal-2020-07-18-183333.webm.json",
            sc("signal-2020-07-18-183333.webm", 1420574198).into(),
        ),
    ]));
    assert_eq!(
        run.rec("signal-2020-07-18-183333.webm").taken.unwrap().time,
        utc("2015-01-06T19:56:38Z")
    );
}

// ---------- Deduplication, albums, re-runs ----------

#[test]
fn case58_same_name_different_bytes() {
    let small = vec![7u8; 25];
    let big = vec![9u8; 52];
    let (_d, run) = import_one(gp(&[
        ("Photos from 2020", "IMG_8172.jpg", small),
        ("Photos from 2023", "IMG_8172.jpg", big.clone()),
        ("Album", "IMG_8172.jpg", big),
        ("Album", "metadata.json", br#"{"title":"Album"}"#.to_vec()),
    ]));
    let merged = run.merged();
    assert_eq!(merged.len(), 2);
    for a in merged.assets() {
        let in_2023 = a
            .entries
            .iter()
            .any(|l| l.path.as_str().contains("Photos from 2023"));
        assert_eq!(a.albums.len(), usize::from(in_2023), "{a:?}");
    }
}

#[test]
fn case60_three_indexed_copies() {
    let (_d, run) = folder(
        &["IMG_3479.JPG", "IMG_3479(1).JPG", "IMG_3479(2).JPG"],
        &[
            ("IMG_3479.JPG.json", "IMG_3479.JPG", 1),
            ("IMG_3479.JPG(1).json", "IMG_3479.JPG", 2),
            ("IMG_3479.JPG(2).json", "IMG_3479.JPG", 3),
        ],
    );
    assert_eq!(run.merged().len(), 3);
    assert_pairs(&run, &[("IMG_3479(2).JPG", Some("IMG_3479.JPG(2).json"))]);
}

#[test]
fn case62_second_full_export_albums() {
    // The engine replaces album membership with the latest full export (§1.1: scheduled
    // exports are full, not deltas); here: content keys are stable across exports and the
    // second export alone yields A = {p1, p4}, B = {p1, p2}.
    let p = |n: &str| jpeg(n);
    let e1 = gp(&[
        ("A", "metadata.json", br#"{"title":"A"}"#.to_vec()),
        ("A", "p1.jpg", p("1")),
        ("Photos from 2020", "p1.jpg", p("1")),
        ("Photos from 2020", "p2.jpg", p("2")),
        ("Photos from 2020", "p3.jpg", p("3")),
    ]);
    let e2 = gp(&[
        ("A", "metadata.json", br#"{"title":"A"}"#.to_vec()),
        ("B", "metadata.json", br#"{"title":"B"}"#.to_vec()),
        ("A", "p1.jpg", p("1")),
        ("B", "p1.jpg", p("1")),
        ("B", "p2.jpg", p("2")),
        ("A", "p4.jpg", p("4")),
        ("Photos from 2020", "p1.jpg", p("1")),
        ("Photos from 2020", "p2.jpg", p("2")),
        ("Photos from 2020", "p3.jpg", p("3")),
        ("Photos from 2020", "p4.jpg", p("4")),
    ]);
    let (_d1, r1) = import_one(e1);
    let (_d2, r2) = import_one(e2);
    let k1: std::collections::BTreeSet<_> = r1.merged().assets().map(|a| a.content).collect();
    let m2 = r2.merged();
    let k2: std::collections::BTreeSet<_> = m2.assets().map(|a| a.content).collect();
    assert!(k1.is_subset(&k2));
    assert_eq!(m2.len(), 4);
    let members = |title: &str| -> Vec<String> {
        let mut v: Vec<String> = m2
            .assets()
            .filter(|a| {
                a.albums
                    .iter()
                    .any(|k| r2.catalog.albums()[k].title == title)
            })
            .map(|a| a.entries[0].path.file_name().to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(members("A"), ["p1.jpg", "p4.jpg"]);
    assert_eq!(members("B"), ["p1.jpg", "p2.jpg"]);
}

#[test]
fn case63_same_name_distinct_assets_deterministic() {
    let e = gp(&[
        ("Photos from 2020", "IMG_0001.jpg", jpeg("one")),
        ("Photos from 2021", "IMG_0001.jpg", jpeg("two")),
    ]);
    let (_d1, a) = import_one(e.clone());
    let (_d2, b) = import_one(e);
    assert_eq!(a.merged().len(), 2);
    let la: Vec<_> = a
        .streamed
        .iter()
        .map(|(r, h)| (r.locator.path.clone(), *h))
        .collect();
    let lb: Vec<_> = b
        .streamed
        .iter()
        .map(|(r, h)| (r.locator.path.clone(), *h))
        .collect();
    assert_eq!(la, lb);
}

#[test]
fn album_copy_sidecar_fields_are_merged() {
    // §2.3: album-folder sidecars are not exact duplicates; merge field by field.
    let img = jpeg("shared");
    let (_d, run) = import_one(gp(&[
        ("Photos from 2020", "a.jpg", img.clone()),
        (
            "Photos from 2020",
            "a.jpg.json",
            sc("a.jpg", 1_600_000_000).into(),
        ),
        ("Trip", "metadata.json", br#"{"title":"Trip"}"#.to_vec()),
        ("Trip", "a.jpg", img),
        (
            "Trip",
            "a.jpg.json",
            sc_with(
                "a.jpg",
                1_600_000_000,
                r#""favorited": true, "people": [{"name": "Ola"}]"#,
            )
            .into(),
        ),
    ]));
    let m = run.merged();
    assert_eq!(m.len(), 1);
    let a = m.assets().next().unwrap();
    assert!(a.best.favorited);
    assert_eq!(a.best.people, ["Ola"]);
    assert_eq!(a.albums.len(), 1);
}
