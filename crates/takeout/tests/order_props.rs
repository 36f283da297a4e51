//! Property: the whole catalog (records, albums, report counts) does not depend on the
//! order of entries inside the parts, nor on which part of the export an entry is in.

mod common;

use common::*;
use proptest::prelude::*;
use takeout::{Catalog, ImportOptions, group_parts};

fn tricky_folder() -> Entries {
    let mut e = gp(&[
        ("Album", "metadata.json", br#"{"title":"Album"}"#.to_vec()),
        ("Album", "IMG_1005.JPG", jpeg("a0")),
        ("Album", "IMG_1005(1).JPG", jpeg("a1")),
        (
            "Album",
            "IMG_1005.JPG.json",
            sc("IMG_1005.JPG", 1000).into(),
        ),
        (
            "Album",
            "IMG_1005.JPG(1).json",
            sc("IMG_1005.JPG", 2000).into(),
        ),
        ("Album", "IMG_1005-edited.JPG", jpeg("a2")),
        ("Photos from 2023", "IMG_1.jpg", jpeg("b0")),
        ("Photos from 2023", "IMG_10.jpg", jpeg("b1")),
        (
            "Photos from 2023",
            "IMG_1.jpg.json",
            sc("IMG_1.jpg", 3000).into(),
        ),
        ("Photos from 2023", "PXL_20221228_185930354.MP", mp4("c0")),
        (
            "Photos from 2023",
            "PXL_20221228_185930354.MP.jpg",
            jpeg("c1"),
        ),
        (
            "Photos from 2023",
            "PXL_20221228_185930354.MP.jpg.json",
            sc("PXL_20221228_185930354.MP.jpg", 4000).into(),
        ),
        (
            "Photos from 2023",
            "Screenshot_20231027_123303_Facebook.jpg",
            jpeg("d0"),
        ),
        (
            "Photos from 2023",
            "Screenshot_20231027_123303_Facebook(1).jpg",
            jpeg("d1"),
        ),
        (
            "Photos from 2023",
            "Screenshot_20231027_123303_Facebook.jpg.supple.json",
            sc("Screenshot_20231027_123303_Facebook.jpg", 5000).into(),
        ),
        (
            "Photos from 2023",
            "Screenshot_20231027_123303_Facebook.jpg.supple(1).json",
            sc("Screenshot_20231027_123303_Facebook.jpg", 6000).into(),
        ),
        (
            "Photos from 2023",
            "image000000.jpg(1).json",
            sc("image000000.jpg", 7000).into(),
        ),
    ]);
    e.push(("Takeout/archive_browser.html".into(), b"<html/>".to_vec()));
    e
}

fn catalog_of(parts: &[Entries]) -> Catalog {
    let dir = tempfile::tempdir().expect("tempdir");
    let paths: Vec<_> = parts
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let p = dir
                .path()
                .join(format!("takeout-20240525T201456Z-{:03}.zip", i + 1));
            write_zip(&p, e);
            p
        })
        .collect();
    let g = group_parts(&paths);
    Catalog::build(&g.exports[0], &ImportOptions::default())
}

/// What must not change: per path, everything but the part number.
fn essence(c: &Catalog) -> Vec<String> {
    let mut v: Vec<String> = c
        .records()
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r.locator.part = takeout::PartNumber(0);
            if let Some(s) = r.sidecar.as_mut() {
                s.part = takeout::PartNumber(0);
            }
            if let Some(s) = r.edited_of.as_mut() {
                s.part = takeout::PartNumber(0);
            }
            if let Some((_, s)) = r.motion.as_mut() {
                s.part = takeout::PartNumber(0);
            }
            r.flags.clear(); // SidecarMayBeInMissingPart depends on part numbering only.
            format!("{r:?}")
        })
        .collect();
    v.sort();
    let rep = c.report();
    v.push(format!(
        "{} {} {} {:?}",
        rep.media,
        rep.paired,
        rep.orphan_sidecars.len(),
        rep.paired_by_method
    ));
    v.push(format!(
        "{:?}",
        c.albums().values().map(|a| &a.title).collect::<Vec<_>>()
    ));
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn catalog_independent_of_entry_order_and_part(
        keys in prop::collection::vec(any::<u32>(), 19),
        part_of in prop::collection::vec(0usize..3, 19),
    ) {
        let base = tricky_folder();
        let reference = essence(&catalog_of(std::slice::from_ref(&base)));
        let mut order: Vec<usize> = (0..base.len()).collect();
        order.sort_by_key(|&i| (keys[i % keys.len()], i));
        let mut parts = vec![Entries::new(), Entries::new(), Entries::new()];
        for i in order {
            parts[part_of[i % part_of.len()]].push(base[i].clone());
        }
        prop_assert_eq!(reference, essence(&catalog_of(&parts)));
    }
}
