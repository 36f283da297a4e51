//! Name → sidecar matching: never panics, indices stay in bounds, originals are paired
//! one-to-one, and the result does not depend on input order.
//!
//! Input format: lines; `m:<name>` is a media file, `v:<name>` a video, `s:<name>|<title>`
//! a sidecar.
#![no_main]

use libfuzzer_sys::fuzz_target;
use takeout::{FolderMedia, FolderSidecar, PairMethod, pair_folder};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut media = Vec::new();
    let mut sidecars = Vec::new();
    for line in text.lines().take(64) {
        if let Some(n) = line.strip_prefix("m:") {
            media.push(FolderMedia {
                name: n.to_string(),
                is_video: false,
            });
        } else if let Some(n) = line.strip_prefix("v:") {
            media.push(FolderMedia {
                name: n.to_string(),
                is_video: true,
            });
        } else if let Some(rest) = line.strip_prefix("s:") {
            let (n, t) = rest
                .split_once('|')
                .map_or((rest, None), |(n, t)| (n, Some(t.to_string())));
            sidecars.push(FolderSidecar {
                name: n.to_string(),
                title: t,
            });
        }
    }
    for m in &media {
        let _ = takeout::sidecar_candidates(&m.name);
        for s in &sidecars {
            if let Some(t) = &s.title {
                let _ = takeout::title_confirms(&m.name, t);
            }
        }
    }
    let a = pair_folder(&media, &sidecars);
    assert_eq!(a.media.len(), media.len());
    let mut owners = std::collections::HashSet::new();
    for p in &a.media {
        if let Some(s) = p.sidecar {
            assert!(s < sidecars.len());
            if !matches!(
                p.method,
                Some(PairMethod::EditedCopy | PairMethod::MotionCompanion)
            ) {
                assert!(owners.insert(s), "sidecar {s} shared by originals");
            }
        }
    }
    let mut rm = media.clone();
    rm.reverse();
    let mut rs = sidecars.clone();
    rs.reverse();
    let b = pair_folder(&rm, &rs);
    // Compare by names (duplicate names make index-level comparison meaningless).
    let names = |ms: &[FolderMedia], ss: &[FolderSidecar], p: &takeout::FolderPairing| {
        let mut v: Vec<(String, Option<String>)> = ms
            .iter()
            .zip(&p.media)
            .map(|(m, r)| (m.name.clone(), r.sidecar.map(|s| ss[s].name.clone())))
            .collect();
        v.sort();
        v
    };
    let unique = {
        let mut n: Vec<&str> = media.iter().map(|m| m.name.as_str()).collect();
        n.sort_unstable();
        n.windows(2).all(|w| w[0] != w[1])
    };
    if unique {
        assert_eq!(names(&media, &sidecars, &a), names(&rm, &rs, &b));
    }
});
