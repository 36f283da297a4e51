//! Media ↔ sidecar pairing inside one folder (§3.2–3.6, §4.7).
//!
//! Everything here is a pure function of names (and sidecar titles), so it can be fuzzed
//! and property-tested. The search always goes from the media name to candidate sidecar
//! names, because truncation makes the reverse mapping ambiguous (§3.3); a candidate is
//! then confirmed by the sidecar's `title`.

use std::collections::{BTreeMap, HashMap, HashSet};

use unicode_normalization::UnicodeNormalization;

/// How a media file was paired with its sidecar, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PairMethod {
    /// `name.json` or `name.supplemental-metadata.json`.
    Exact,
    /// The 46-UTF-16-unit cut of the old or new scheme.
    Truncated,
    /// A collision index `(n)` moved behind the extension or the suffix.
    IndexMoved,
    /// Sidecar built from a title without extension (`20030616.json`).
    ExtensionDropped,
    /// A cut of `.supplemental-metadata` other than the 46-unit one (tolerance, §3.3 caveats).
    LooseSupplemental,
    /// An edited copy (`-edited`, `-modifié`, …) sharing its original's sidecar (§3.5).
    EditedCopy,
    /// The video half of a motion/live photo sharing the still's sidecar (§3.6).
    MotionCompanion,
    /// Last resort: the sidecar title is a prefix of the media name. Low confidence.
    PrefixHeuristic,
}

impl PairMethod {
    fn rank(self) -> u8 {
        self as u8
    }
}

/// A media file of one folder, as input to [`pair_folder`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FolderMedia {
    /// File name (NFC).
    pub name: String,
    /// True if the file is a video (by extension or content), for motion-photo rules.
    pub is_video: bool,
}

/// A sidecar of one folder, as input to [`pair_folder`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FolderSidecar {
    /// File name (NFC), e.g. `IMG_1.jpg.json`.
    pub name: String,
    /// Its `title`, if it has one.
    pub title: Option<String>,
}

/// The pairing decided for one media file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MediaPairing {
    /// Index into the sidecar slice.
    pub sidecar: Option<usize>,
    /// How it was found.
    pub method: Option<PairMethod>,
    /// True when the sidecar title agrees with the media name (§4.7 step 3).
    pub title_confirmed: bool,
    /// For an edited copy: index of the original media in the same folder.
    pub edited_of: Option<usize>,
    /// True when the name carries an edited/extra suffix.
    pub is_edited: bool,
    /// For a motion video: index of its still; for a still: index of its video.
    pub motion_partner: Option<usize>,
}

/// The result of [`pair_folder`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FolderPairing {
    /// One entry per input media, same order as the input.
    pub media: Vec<MediaPairing>,
    /// Indices of sidecars no media uses, ascending by name.
    pub orphan_sidecars: Vec<usize>,
}

const SUPPLEMENTAL: &str = "supplemental-metadata";

/// Localized edited suffixes (§3.5).
const EDITED_SUFFIXES: &[&str] = &[
    "-edited",
    "-bearbeitet",
    "-modifié",
    "-modificato",
    "-bewerkt",
    "-edytowane",
    "-編集済み",
    "-ha editado",
    "-editat",
    "-editado",
    "-编辑",
    "-отредактировано",
    "-편집됨",
    "-muokattu",
    "-redigeret",
    "-upravené",
];

/// "Extras" that tools strip to find a sidecar — tried only after the file's own name (§3.5).
const EXTRA_SUFFIXES: &[&str] = &[
    "-effects",
    "-smile",
    "-mix",
    "-motion",
    "-animation",
    "-collage",
    "-movie",
];

/// The first `n` UTF-16 code units of `s`. When the cut falls inside a surrogate pair the
/// character is dropped (`round_up = false`) or kept whole (`round_up = true`); both were
/// seen (§3.3, §7).
pub fn cut_utf16(s: &str, n: usize, round_up: bool) -> &str {
    let mut units = 0usize;
    for (i, c) in s.char_indices() {
        let l = c.len_utf16();
        if units + l > n {
            if round_up && units < n {
                return &s[..i + c.len_utf8()];
            }
            return &s[..i];
        }
        units += l;
    }
    s
}

fn utf16_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

/// Splits `name` into stem and extension. An extension is 1–8 ASCII alphanumerics after
/// the last dot, with a non-empty stem (so `27_06_12 - 1` and `Mr. Smith party` have none).
pub fn split_ext(name: &str) -> (&str, Option<&str>) {
    match name.rfind('.') {
        Some(i) if i > 0 => {
            let ext = &name[i + 1..];
            if !ext.is_empty() && ext.len() <= 8 && ext.bytes().all(|b| b.is_ascii_alphanumeric()) {
                (&name[..i], Some(ext))
            } else {
                (name, None)
            }
        }
        _ => (name, None),
    }
}

/// Splits a collision index `(n)` off a stem: `IMG_3479(1)` → (`IMG_3479`, `(1)`).
/// A space before the parenthesis means it is part of the title (` (38)`, §3.2 rule 4).
pub fn split_index(stem: &str) -> (&str, Option<&str>) {
    let Some(body) = stem.strip_suffix(')') else {
        return (stem, None);
    };
    let Some(open) = body.rfind('(') else {
        return (stem, None);
    };
    let digits = &body[open + 1..];
    let base = &stem[..open];
    if digits.is_empty()
        || digits.len() > 6
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || base.is_empty()
        || base.ends_with(' ')
    {
        return (stem, None);
    }
    (base, Some(&stem[open..]))
}

fn join(stem: &str, ext: Option<&str>) -> String {
    match ext {
        Some(e) => format!("{stem}.{e}"),
        None => stem.to_string(),
    }
}

/// Normalises a sidecar title the way Google derives file names from it: NFC, and `/`
/// (illegal in file names) replaced by `_` (§3.2 rule 1, §8 case 52).
pub fn title_to_file_name(title: &str) -> String {
    title
        .nfc()
        .map(|c| {
            if c == '/' || c == '\\' || c == '\0' {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// The sidecar names that `media_name` may have, best first (§3.3, §4.7 step 3).
pub fn sidecar_candidates(media_name: &str) -> Vec<(String, PairMethod)> {
    let mut out: Vec<(String, PairMethod)> = Vec::new();
    let mut seen = HashSet::new();
    let mut push = |name: String, m: PairMethod| {
        if seen.insert(name.clone()) {
            out.push((name, m));
        }
    };
    let m = media_name;
    let sup = format!(".{SUPPLEMENTAL}");
    push(format!("{m}{sup}.json"), PairMethod::Exact);
    push(format!("{m}.json"), PairMethod::Exact);
    for ru in [false, true] {
        push(
            format!("{}.json", cut_utf16(&format!("{m}{sup}"), 46, ru)),
            PairMethod::Truncated,
        );
        push(
            format!("{}.json", cut_utf16(m, 46, ru)),
            PairMethod::Truncated,
        );
    }
    let (stem, ext) = split_ext(m);
    let (base, idx) = split_index(stem);
    let idx_s = idx.unwrap_or("");
    if idx.is_some() {
        let n = join(base, ext);
        for ru in [false, true] {
            push(
                format!("{}{idx_s}.json", cut_utf16(&format!("{n}{sup}"), 46, ru)),
                PairMethod::IndexMoved,
            );
            push(
                format!("{}{idx_s}.json", cut_utf16(&n, 46, ru)),
                PairMethod::IndexMoved,
            );
        }
        push(format!("{n}{sup}{idx_s}.json"), PairMethod::IndexMoved);
        push(format!("{n}{idx_s}.json"), PairMethod::IndexMoved);
        push(format!("{n}{idx_s}{sup}.json"), PairMethod::IndexMoved);
    }
    if ext.is_some() {
        for ru in [false, true] {
            push(
                format!("{}{idx_s}.json", cut_utf16(&format!("{base}{sup}"), 46, ru)),
                PairMethod::ExtensionDropped,
            );
            push(
                format!("{}{idx_s}.json", cut_utf16(base, 46, ru)),
                PairMethod::ExtensionDropped,
            );
        }
    }
    let n = join(base, ext);
    for k in (1..SUPPLEMENTAL.len()).rev() {
        push(
            format!("{n}.{}{idx_s}.json", &SUPPLEMENTAL[..k]),
            PairMethod::LooseSupplemental,
        );
    }
    out
}

/// The media names Google may have produced for `title`, given the media extension.
fn names_from_title(title: &str, media_ext: Option<&str>) -> Vec<String> {
    let t = title_to_file_name(title);
    let mut v = vec![t.clone()];
    let (ts, te) = split_ext(&t);
    for ru in [false, true] {
        if te.is_some() {
            v.push(join(cut_utf16(ts, 47, ru), te));
        }
        if let Some(me) = media_ext {
            // Title without an extension, or a double extension added from the content
            // (`20030616` → `20030616.jpg`, `x.gif` → `x.gif.jpg`, §3.2 rule 2).
            v.push(join(cut_utf16(&t, 47, ru), Some(me)));
        }
    }
    v
}

/// True if `title` explains `media_name`: equal, or its 47-unit cut, possibly with a
/// collision index and an added extension (§4.7 step 3).
pub fn title_confirms(media_name: &str, title: &str) -> bool {
    let (stem, ext) = split_ext(media_name);
    let (base, idx) = split_index(stem);
    let pre = join(base, ext);
    let forms = names_from_title(title, ext);
    forms.iter().any(|f| {
        f.eq_ignore_ascii_case(media_name) || (idx.is_some() && f.eq_ignore_ascii_case(&pre))
    })
}

fn ends_with_ci(s: &str, suffix: &str) -> Option<usize> {
    if s.len() < suffix.len() {
        return None;
    }
    let at = s.len() - suffix.len();
    (s.is_char_boundary(at) && s[at..].eq_ignore_ascii_case(suffix)).then_some(at)
}

/// Names of the original an edited copy may come from: (name, partial-suffix?) (§3.5).
/// The edited copy's own `(n)` is a collision index of the copy and is dropped.
pub fn edited_originals(media_name: &str) -> Vec<(String, bool)> {
    let (stem, ext) = split_ext(media_name);
    let (base, _) = split_index(stem);
    let mut out = Vec::new();
    for s in EDITED_SUFFIXES.iter().chain(EXTRA_SUFFIXES) {
        if let Some(at) = ends_with_ci(base, s)
            && at > 0
        {
            out.push((join(&base[..at], ext), false));
        }
    }
    if out.is_empty() && utf16_len(base) >= 44 {
        // The suffix counts toward the 47-unit budget and may be cut (`-ha edi`, §3.2 rule 5).
        for s in EDITED_SUFFIXES {
            let chars: Vec<(usize, char)> = s.char_indices().collect();
            for k in (2..chars.len()).rev() {
                let p = &s[..chars[k].0];
                if let Some(at) = ends_with_ci(base, p)
                    && at > 0
                {
                    out.push((join(&base[..at], ext), true));
                    break;
                }
            }
        }
    }
    out
}

fn sidecar_has_index(name: &str) -> bool {
    name.strip_suffix(".json")
        .is_some_and(|s| split_index(s).1.is_some())
}

/// Pairs the media and sidecars of one folder.
///
/// Deterministic and independent of input order: inputs are processed in name order and
/// ties are broken by name. Originals are paired one-to-one; edited copies and motion
/// videos may share a sidecar; the prefix heuristic runs last and only on unused sidecars.
pub fn pair_folder(media: &[FolderMedia], sidecars: &[FolderSidecar]) -> FolderPairing {
    let mut result = vec![MediaPairing::default(); media.len()];
    let mut m_order: Vec<usize> = (0..media.len()).collect();
    m_order.sort_by(|&a, &b| {
        (&media[a].name, media[a].is_video).cmp(&(&media[b].name, media[b].is_video))
    });
    // Name → sidecar; with duplicate names the first in name order (stable by title) wins.
    let mut s_order: Vec<usize> = (0..sidecars.len()).collect();
    s_order.sort_by(|&a, &b| {
        (&sidecars[a].name, &sidecars[a].title).cmp(&(&sidecars[b].name, &sidecars[b].title))
    });
    let mut by_name: HashMap<&str, usize> = HashMap::new();
    for &si in &s_order {
        by_name.entry(sidecars[si].name.as_str()).or_insert(si);
    }
    let mut media_by_name: BTreeMap<&str, usize> = BTreeMap::new();
    for &mi in &m_order {
        media_by_name.entry(media[mi].name.as_str()).or_insert(mi);
    }
    let confirms = |name: &str, si: usize| {
        sidecars[si]
            .title
            .as_deref()
            .is_some_and(|t| title_confirms(name, t))
    };

    // Phase A: originals, one-to-one, globally best candidates first.
    let mut proposals: Vec<(u8, usize, &str, &str, usize, usize, bool)> = Vec::new();
    for &mi in &m_order {
        let name = media[mi].name.as_str();
        for (pos, (cand, method)) in sidecar_candidates(name).into_iter().enumerate() {
            if let Some(&si) = by_name.get(cand.as_str()) {
                let ok = confirms(name, si);
                if ok || method == PairMethod::Exact {
                    proposals.push((
                        method.rank(),
                        pos,
                        name,
                        sidecars[si].name.as_str(),
                        mi,
                        si,
                        ok,
                    ));
                }
            }
        }
    }
    proposals.sort();
    let mut owner: HashMap<usize, usize> = HashMap::new();
    for (rank, _, _, _, mi, si, ok) in proposals {
        if result[mi].sidecar.is_some() || owner.contains_key(&si) {
            continue;
        }
        owner.insert(si, mi);
        let method = [
            PairMethod::Exact,
            PairMethod::Truncated,
            PairMethod::IndexMoved,
            PairMethod::ExtensionDropped,
            PairMethod::LooseSupplemental,
        ][usize::from(rank.min(4))];
        result[mi] = MediaPairing {
            sidecar: Some(si),
            method: Some(method),
            title_confirmed: ok,
            ..Default::default()
        };
    }
    let mut used: HashSet<usize> = owner.keys().copied().collect();

    // Phase B1: edited copies and extras share their original's sidecar.
    for &mi in &m_order {
        let name = media[mi].name.as_str();
        let origins = edited_originals(name);
        if origins.iter().any(|(_, p)| !p) {
            result[mi].is_edited = true;
        }
        for (orig, partial) in origins {
            if result[mi].edited_of.is_none()
                && let Some(&oi) = media_by_name.get(orig.as_str())
                && oi != mi
            {
                result[mi].edited_of = Some(oi);
            }
            if result[mi].sidecar.is_some() {
                continue;
            }
            let found = if partial {
                // The original's name is itself cut: accept a sidecar whose title starts with it.
                let (ostem, oext) = split_ext(&orig);
                s_order
                    .iter()
                    .copied()
                    .find(|&si| {
                        sidecars[si].title.as_deref().is_some_and(|t| {
                            let t = title_to_file_name(t);
                            let (ts, te) = split_ext(&t);
                            ts.starts_with(ostem)
                                && (te.is_none()
                                    || oext.is_none()
                                    || te.map(str::to_ascii_lowercase)
                                        == oext.map(str::to_ascii_lowercase))
                        })
                    })
                    .map(|si| (si, false))
            } else {
                sidecar_candidates(&orig)
                    .into_iter()
                    .find_map(|(cand, method)| {
                        let &si = by_name.get(cand.as_str())?;
                        let ok = confirms(&orig, si);
                        (ok || method == PairMethod::Exact).then_some((si, ok))
                    })
            };
            if let Some((si, ok)) = found {
                used.insert(si);
                result[mi].sidecar = Some(si);
                result[mi].method = Some(PairMethod::EditedCopy);
                result[mi].title_confirmed = ok;
                if result[mi].edited_of.is_none() {
                    result[mi].edited_of = owner.get(&si).copied().filter(|&o| o != mi);
                }
                result[mi].is_edited = true;
            }
        }
    }

    // Phase B2: motion/live photo videos and their stills (§3.6).
    let mut stills_lower: BTreeMap<String, usize> = BTreeMap::new();
    for &mi in &m_order {
        if !media[mi].is_video {
            stills_lower
                .entry(media[mi].name.to_lowercase())
                .or_insert(mi);
        }
    }
    for &mi in &m_order {
        if !media[mi].is_video {
            continue;
        }
        let lower = media[mi].name.to_lowercase();
        let (stem, ext) = split_ext(&lower);
        let keys: Vec<String> = match ext {
            None | Some("mp") | Some("mv") => ["jpg", "jpeg", "heic"]
                .iter()
                .map(|e| format!("{lower}.{e}"))
                .collect(),
            Some(_) => ["heic", "heif", "jpg", "jpeg"]
                .iter()
                .map(|e| format!("{stem}.{e}"))
                .collect(),
        };
        let Some(still) = keys.iter().find_map(|k| stills_lower.get(k).copied()) else {
            continue;
        };
        if result[still].motion_partner.is_some() {
            continue; // First video in name order wins; the still has exactly one partner.
        }
        result[mi].motion_partner = Some(still);
        result[still].motion_partner = Some(mi);
        if result[mi].sidecar.is_none()
            && let Some(si) = result[still].sidecar
        {
            result[mi].sidecar = Some(si);
            result[mi].method = Some(PairMethod::MotionCompanion);
            result[mi].title_confirmed = result[still].title_confirmed;
        }
    }

    // Phase C: prefix heuristic on unused sidecars, flagged.
    for &mi in &m_order {
        if result[mi].sidecar.is_some() || result[mi].motion_partner.is_some() {
            continue;
        }
        let name = media[mi].name.as_str();
        let (mstem, mext) = split_ext(name);
        if split_index(mstem).1.is_some() {
            continue; // §8 case 19: an indexed name never falls back to another index.
        }
        let mut best: Option<(usize, usize)> = None; // (title stem len, sidecar)
        for &si in &s_order {
            if used.contains(&si) || sidecar_has_index(&sidecars[si].name) {
                continue;
            }
            let Some(t) = sidecars[si].title.as_deref() else {
                continue;
            };
            let t = title_to_file_name(t);
            let (ts, te) = split_ext(&t);
            let ext_ok = match (te, mext) {
                (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                _ => true,
            };
            let Some(rest) = mstem.strip_prefix(ts) else {
                continue;
            };
            let first = rest.chars().next();
            // `IMG_10` must not take `IMG_1`'s sidecar (§8 case 35).
            if ts.is_empty() || !ext_ok || first.is_none_or(|c| c.is_ascii_digit() || c == '(') {
                continue;
            }
            if best.is_none_or(|(l, _)| ts.len() > l) {
                best = Some((ts.len(), si));
            }
        }
        if let Some((_, si)) = best {
            used.insert(si);
            result[mi].sidecar = Some(si);
            result[mi].method = Some(PairMethod::PrefixHeuristic);
            result[mi].title_confirmed = false;
        }
    }

    let orphan_sidecars = s_order
        .into_iter()
        .filter(|si| !used.contains(si))
        .collect();
    FolderPairing {
        media: result,
        orphan_sidecars,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_units() {
        assert_eq!(cut_utf16("abc", 2, false), "ab");
        assert_eq!(cut_utf16("a😀", 2, false), "a");
        assert_eq!(cut_utf16("a😀", 2, true), "a😀");
    }

    #[test]
    fn index_split() {
        assert_eq!(split_index("IMG_3479(1)"), ("IMG_3479", Some("(1)")));
        assert_eq!(split_index("Schneifel (38)"), ("Schneifel (38)", None));
        assert_eq!(split_index("(1)"), ("(1)", None));
    }

    #[test]
    fn candidates_cover_spec_table() {
        // §3.3 table rows.
        let has = |m: &str, s: &str| sidecar_candidates(m).iter().any(|(c, _)| c == s);
        assert!(has("IMG_3479(1).JPG", "IMG_3479.JPG(1).json"));
        assert!(has(
            "Scan35(1).jpg",
            "Scan35.jpg.supplemental-metadata(1).json"
        ));
        assert!(has(
            "CLIP0001(10).AVI",
            "CLIP0001.AVI.supplemental-metadata(10).json"
        ));
        assert!(has(
            "Urlaub in Knaufspesch in der Schneifel (38).JPG",
            "Urlaub in Knaufspesch in der Schneifel (38).JP.json"
        ));
        assert!(has(
            "alignment-temple-5D-32-temple-V-reconstructed.png",
            "alignment-temple-5D-32-temple-V-reconstructed..json"
        ));
        assert!(has(
            "13039_327707840323_537645323_9470255_27214_n(1).jpg",
            "13039_327707840323_537645323_9470255_27214_n.j(1).json"
        ));
        assert!(has(
            "Screenshot_20231027_123303_Facebook(1).jpg",
            "Screenshot_20231027_123303_Facebook.jpg.supple(1).json"
        ));
        assert!(has("20030616.jpg", "20030616.json"));
    }

    #[test]
    fn cut_edited_suffix_finds_original() {
        // §3.2 rule 5: the suffix counts toward the 47-unit budget (`-ha edi`).
        let stem = "Vacaciones en la playa de Benidorm 2019";
        let orig = format!("{stem}.jpg");
        let edited = format!(
            "{}.jpg",
            cut_utf16(&format!("{stem}-ha editado"), 47, false)
        );
        assert!(
            edited.contains("-ha edi") && !edited.contains("-ha editado"),
            "{edited}"
        );
        let media = [
            FolderMedia {
                name: orig.clone(),
                is_video: false,
            },
            FolderMedia {
                name: edited,
                is_video: false,
            },
        ];
        let sidecars = [FolderSidecar {
            name: format!("{orig}.json"),
            title: Some(orig.clone()),
        }];
        let p = pair_folder(&media, &sidecars);
        assert_eq!(p.media[0].sidecar, Some(0));
        assert_eq!(p.media[1].sidecar, Some(0));
        assert_eq!(p.media[1].method, Some(PairMethod::EditedCopy));
        assert_eq!(p.media[1].edited_of, Some(0));
    }
}
