//! Property tests: pairing is deterministic and independent of entry order, and
//! originals are paired one-to-one.

use std::collections::BTreeMap;

use proptest::prelude::*;
use takeout::{FolderMedia, FolderSidecar, PairMethod, pair_folder};

/// Real-shaped names from §3.3 / §8 (media, and sidecars with their titles).
const MEDIA: &[&str] = &[
    "IMG_1005.JPG",
    "IMG_1005(1).JPG",
    "IMG_1005(2).JPG",
    "IMG_1.jpg",
    "IMG_10.jpg",
    "DSC_0104(1).JPG",
    "Scan35.jpg",
    "Scan35(1).jpg",
    "IMAG0061.JPG",
    "IMAG0061-edited.JPG",
    "PXL_20221228_185930354.MP",
    "PXL_20221228_185930354.MP.jpg",
    "MVIMG_20180722_120942",
    "MVIMG_20180722_120942.jpg",
    "IMG_4573.HEIC",
    "IMG_4573.MP4",
    "Screenshot_20231027_123303_Facebook.jpg",
    "Screenshot_20231027_123303_Facebook(1).jpg",
    "13039_327707840323_537645323_9470255_27214_n(1).jpg",
    "13039_327707840323_537645323_9470255_27214_n.jpg",
    "20030616.jpg",
    "original_0e1b_P.jpg",
    "original_0e1b_P~2.jpg",
];
const SIDECARS: &[(&str, &str)] = &[
    ("IMG_1005.JPG.json", "IMG_1005.JPG"),
    ("IMG_1005.JPG(1).json", "IMG_1005.JPG"),
    ("IMG_1005.JPG(2).json", "IMG_1005.JPG"),
    ("IMG_1.jpg.json", "IMG_1.jpg"),
    ("DSC_0104.JPG.json", "DSC_0104.JPG"),
    ("Scan35.jpg.supplemental-metadata.json", "Scan35.jpg"),
    ("Scan35.jpg.supplemental-metadata(1).json", "Scan35.jpg"),
    ("IMAG0061.JPG.supplemental-metadata.json", "IMAG0061.JPG"),
    (
        "PXL_20221228_185930354.MP.jpg.json",
        "PXL_20221228_185930354.MP.jpg",
    ),
    (
        "MVIMG_20180722_120942.jpg.json",
        "MVIMG_20180722_120942.jpg",
    ),
    ("IMG_4573.HEIC.json", "IMG_4573.HEIC"),
    (
        "Screenshot_20231027_123303_Facebook.jpg.supple.json",
        "Screenshot_20231027_123303_Facebook.jpg",
    ),
    (
        "Screenshot_20231027_123303_Facebook.jpg.supple(1).json",
        "Screenshot_20231027_123303_Facebook.jpg",
    ),
    (
        "13039_327707840323_537645323_9470255_27214_n.j(1).json",
        "13039_327707840323_537645323_9470255_27214_n.jpg",
    ),
    (
        "13039_327707840323_537645323_9470255_27214_n.j.json",
        "13039_327707840323_537645323_9470255_27214_n.jpg",
    ),
    ("20030616.json", "20030616"),
    (
        "original_0e1b_.json",
        "original_0e1b_PXL_20220516_164814158.jpg",
    ),
];

fn is_video(n: &str) -> bool {
    let l = n.to_ascii_lowercase();
    l.ends_with(".mp") || l.ends_with(".mp4") || !l.contains('.')
}

type Outcome = BTreeMap<String, (Option<String>, Option<PairMethod>, Option<String>)>;

fn outcome(media: &[FolderMedia], sidecars: &[FolderSidecar]) -> Outcome {
    let p = pair_folder(media, sidecars);
    media
        .iter()
        .zip(&p.media)
        .map(|(m, r)| {
            (
                m.name.clone(),
                (
                    r.sidecar.map(|s| sidecars[s].name.clone()),
                    r.method,
                    r.motion_partner.map(|o| media[o].name.clone()),
                ),
            )
        })
        .collect()
}

fn inputs(mask_m: &[bool], mask_s: &[bool]) -> (Vec<FolderMedia>, Vec<FolderSidecar>) {
    let media = MEDIA
        .iter()
        .zip(mask_m)
        .filter(|(_, k)| **k)
        .map(|(n, _)| FolderMedia {
            name: n.to_string(),
            is_video: is_video(n),
        })
        .collect();
    let sidecars = SIDECARS
        .iter()
        .zip(mask_s)
        .filter(|(_, k)| **k)
        .map(|((n, t), _)| FolderSidecar {
            name: n.to_string(),
            title: Some(t.to_string()),
        })
        .collect();
    (media, sidecars)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn pairing_is_independent_of_entry_order(
        mask_m in prop::collection::vec(any::<bool>(), MEDIA.len()),
        mask_s in prop::collection::vec(any::<bool>(), SIDECARS.len()),
        perm_m in any::<u64>(),
        perm_s in any::<u64>(),
    ) {
        let (media, sidecars) = inputs(&mask_m, &mask_s);
        let base = outcome(&media, &sidecars);
        let mut m2 = media.clone();
        let mut s2 = sidecars.clone();
        shuffle(&mut m2, perm_m);
        shuffle(&mut s2, perm_s);
        prop_assert_eq!(&base, &outcome(&m2, &s2));
        // Originals (not edited copies or motion videos) never share a sidecar.
        let mut owners: BTreeMap<String, String> = BTreeMap::new();
        for (m, (s, method, _)) in &base {
            if let (Some(s), Some(method)) = (s, method)
                && !matches!(method, PairMethod::EditedCopy | PairMethod::MotionCompanion)
            {
                prop_assert!(owners.insert(s.clone(), m.clone()).is_none(), "{} shared", s);
            }
        }
        // The prefix trap (§8 case 35) holds in every subset.
        if let Some((s, _, _)) = base.get("IMG_10.jpg") {
            prop_assert_eq!(s, &None);
        }
    }
}

/// Deterministic Fisher–Yates from a seed (xorshift), so failures replay exactly.
fn shuffle<T>(v: &mut [T], mut seed: u64) {
    seed |= 1;
    for i in (1..v.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        v.swap(i, (seed % (i as u64 + 1)) as usize);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Stable-toolchain companion of `fuzz/fuzz_targets/entry_path.rs`.
    #[test]
    fn sanitised_paths_cannot_escape(raw in "[a./\\\\:C\u{0}\u{301}e é~ ]{0,24}") {
        if let Ok(p) = takeout::sanitize_entry_path(&raw) {
            let s = p.as_str();
            prop_assert!(!s.is_empty() && !s.starts_with('/') && !s.contains('\\') && !s.contains('\0'));
            for c in p.components() {
                prop_assert!(!c.is_empty() && c != "." && c != "..");
            }
            prop_assert_eq!(takeout::sanitize_entry_path(s), Ok(p.clone()));
        } else {
            // Rejections are only for real hazards.
            let hazard = raw.contains('\0')
                || raw.starts_with('/')
                || raw.starts_with('\\')
                || raw.replace('\\', "/").split('/').any(|c| c == "..")
                || raw.trim_matches(|c| c == '/' || c == '\\' || c == '.').is_empty()
                || raw
                    .replace('\\', "/")
                    .split('/')
                    .find(|c| !c.is_empty() && *c != ".")
                    .is_some_and(|c| c.as_bytes().get(1) == Some(&b':'));
            prop_assert!(hazard, "rejected harmless {:?}", raw);
        }
    }
}
