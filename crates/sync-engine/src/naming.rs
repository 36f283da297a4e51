//! File and folder names: sanitising, NFC, length limits and deterministic collision suffixes.

use chrono::{DateTime, Datelike, Utc};
use unicode_normalization::UnicodeNormalization;

/// Which filename rules the library filesystem imposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FilesystemRules {
    /// Only NUL and `/` are forbidden (we also replace control characters, as gphotos-sync does).
    Posix,
    /// Windows rules (NTFS, exFAT, SMB shares): `<>:"/\|?*` and control characters replaced,
    /// trailing dots and spaces dropped, reserved device names escaped, case-insensitive paths.
    Ntfs,
    /// Probe the library directory at open: a case-insensitive filesystem gets [`Self::Ntfs`].
    #[default]
    Auto,
}

/// Longest file name most filesystems accept, in bytes.
pub const MAX_NAME_BYTES: usize = 255;

const RESERVED: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// Makes one path component safe: NFC, forbidden characters → `_`, no leading dot (dot files
/// are ours: temp files, `.trash`), ≤ 255 bytes with the extension kept. `rules` must be
/// resolved (not `Auto`; `Auto` is treated as `Posix`).
pub fn sanitize_component(name: &str, rules: FilesystemRules) -> String {
    // Runs per path segment of every item (export templates, library names): most names
    // are plain ASCII that no rule changes.
    if is_sanitized(name, rules) {
        return name.to_owned();
    }
    sanitize_in_full(name, rules)
}

/// Whether [`sanitize_component`] would return `name` unchanged, decided cheaply for the
/// common case: printable ASCII (NFC of ASCII is itself) without `/`, not starting with a
/// dot, not ending in a space, short enough. NTFS rules always take the full path.
pub fn is_sanitized(name: &str, rules: FilesystemRules) -> bool {
    rules != FilesystemRules::Ntfs
        && !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && !name.starts_with('.')
        && !name.ends_with(' ')
        && name.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'/')
}

fn sanitize_in_full(name: &str, rules: FilesystemRules) -> String {
    let ntfs = rules == FilesystemRules::Ntfs;
    let mut s: String = name
        .nfc()
        .map(|c| {
            let bad = c == '/'
                || c == '\0'
                || c.is_control()
                || (ntfs && matches!(c, '<' | '>' | ':' | '"' | '\\' | '|' | '?' | '*'));
            if bad { '_' } else { c }
        })
        .collect();
    // gphotos-sync strips trailing whitespace; Windows also drops trailing dots.
    let trimmed_len = if ntfs {
        s.trim_end_matches(|c: char| c.is_whitespace() || c == '.')
            .len()
    } else {
        s.trim_end().len()
    };
    s.truncate(trimmed_len);
    if s.starts_with('.') {
        s.replace_range(0..1, "_");
    }
    if s.is_empty() {
        s.push('_');
    }
    if ntfs {
        let stem = s.split('.').next().unwrap_or("");
        if RESERVED
            .iter()
            .any(|r| r.eq_ignore_ascii_case(stem.trim_end()))
        {
            s.insert(0, '_');
        }
    }
    truncate_keep_ext(&s, MAX_NAME_BYTES)
}

/// Splits `name` into (stem, extension-with-dot). Extensions longer than 16 bytes or
/// containing spaces are not treated as extensions.
pub fn split_ext(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(i) if i > 0 && name.len() - i <= 16 && !name[i..].contains(' ') => {
            (&name[..i], &name[i..])
        }
        _ => (name, ""),
    }
}

/// Cuts `name` to at most `max` bytes on a char boundary, keeping the extension.
pub fn truncate_keep_ext(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_owned();
    }
    let (stem, ext) = split_ext(name);
    let budget = max.saturating_sub(ext.len());
    let mut cut = budget.min(stem.len());
    while !stem.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{}", &stem[..cut], ext)
}

/// A short, stable hash of an id: the first `len` hex digits of its blake3.
pub fn id_hash(id: &str, len: usize) -> String {
    let h = blake3::hash(id.as_bytes()).to_hex();
    h[..len.min(h.len())].to_owned()
}

/// The name used when `name` is taken in its folder: `stem_<hash of id>.ext`, ≤ 255 bytes.
/// `len` grows (8, 16, 32) in the astronomically unlikely case the first form is taken too.
pub fn suffixed_name(name: &str, id: &str, len: usize) -> String {
    let (stem, ext) = split_ext(name);
    let suffix = format!("_{}", id_hash(id, len));
    let stem = truncate_keep_ext(stem, MAX_NAME_BYTES - ext.len() - suffix.len());
    format!("{stem}{suffix}{ext}")
}

/// `YYYY/MM` of `t` in `tz`, or `undated` for items without a capture time.
pub fn month_folder(t: Option<DateTime<Utc>>, tz: chrono_tz::Tz) -> String {
    match t {
        Some(t) => {
            let local = t.with_timezone(&tz);
            format!("{:04}/{:02}", local.year(), local.month())
        }
        None => "undated".to_owned(),
    }
}

/// The key under which a relative path is claimed: case-folded on case-insensitive targets.
pub fn claim_key(rel: &str, rules: FilesystemRules) -> String {
    if rules == FilesystemRules::Ntfs {
        rel.to_lowercase()
    } else {
        rel.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use FilesystemRules::*;

    #[test]
    fn the_fast_path_agrees_with_the_full_sanitiser() {
        let long = "x".repeat(300);
        for name in [
            "IMG_0001.jpg",
            "2023",
            "Trip Rome",
            ".hidden",
            "trailing ",
            "a\tb",
            "",
            "caf\u{e9}",
            "e\u{301}",
            "a:b*c",
            "CON",
            "x\u{7f}",
            long.as_str(),
        ] {
            for rules in [FilesystemRules::Posix, FilesystemRules::Ntfs] {
                if is_sanitized(name, rules) {
                    assert_eq!(sanitize_in_full(name, rules), name, "{name:?}");
                }
            }
        }
        assert!(is_sanitized("IMG_0001.jpg", FilesystemRules::Posix));
        assert!(!is_sanitized("IMG_0001.jpg", FilesystemRules::Ntfs));
        assert!(!is_sanitized(".hidden", FilesystemRules::Posix));
        assert!(!is_sanitized("trailing ", FilesystemRules::Posix));
        assert!(!is_sanitized("caf\u{e9}", FilesystemRules::Posix));
        assert!(!is_sanitized(&long, FilesystemRules::Posix));
    }

    #[test]
    fn posix_replaces_only_slash_nul_and_controls() {
        assert_eq!(
            sanitize_component("a/b\0c\nd:e?.jpg", Posix),
            "a_b_c_d:e?.jpg"
        );
        assert_eq!(sanitize_component("trailing  ", Posix), "trailing");
        assert_eq!(sanitize_component(".hidden.jpg", Posix), "_hidden.jpg");
        assert_eq!(sanitize_component("", Posix), "_");
    }

    #[test]
    fn ntfs_rules() {
        assert_eq!(
            sanitize_component(r#"a<b>c:d"e\f|g?h*.jpg"#, Ntfs),
            "a_b_c_d_e_f_g_h_.jpg"
        );
        assert_eq!(sanitize_component("name. . ", Ntfs), "name");
        assert_eq!(sanitize_component("CON.jpg", Ntfs), "_CON.jpg");
        assert_eq!(sanitize_component("com1", Ntfs), "_com1");
        assert_eq!(sanitize_component("CONSOLE.jpg", Ntfs), "CONSOLE.jpg");
    }

    #[test]
    fn nfc_normalises() {
        // "e" + combining acute accent becomes the precomposed U+00E9.
        assert_eq!(
            sanitize_component("cafe\u{301}.jpg", Posix),
            "caf\u{e9}.jpg"
        );
    }

    #[test]
    fn long_names_are_cut_to_255_bytes_keeping_extension() {
        let long = format!("{}.jpeg", "é".repeat(200));
        let s = sanitize_component(&long, Posix);
        assert!(s.len() <= 255, "{}", s.len());
        assert!(s.ends_with(".jpeg"));
        let suffixed = suffixed_name(&s, "some-id", 8);
        assert!(suffixed.len() <= 255);
        assert!(suffixed.ends_with(&format!("_{}.jpeg", id_hash("some-id", 8))));
    }

    #[test]
    fn suffix_depends_only_on_id() {
        assert_eq!(
            suffixed_name("IMG_1.JPG", "abc", 8),
            suffixed_name("IMG_1.JPG", "abc", 8)
        );
        assert_ne!(
            suffixed_name("IMG_1.JPG", "abc", 8),
            suffixed_name("IMG_1.JPG", "abd", 8)
        );
        assert_eq!(
            suffixed_name("noext", "abc", 8),
            format!("noext_{}", id_hash("abc", 8))
        );
    }

    #[test]
    fn month_folder_uses_timezone() {
        let t = DateTime::parse_from_rfc3339("2020-01-31T23:30:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(month_folder(Some(t), chrono_tz::UTC), "2020/01");
        assert_eq!(month_folder(Some(t), chrono_tz::Europe::Berlin), "2020/02");
        assert_eq!(month_folder(None, chrono_tz::UTC), "undated");
    }
}
