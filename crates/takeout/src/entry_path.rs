//! Sanitising archive entry names into safe, relative, NFC paths.
//!
//! This is deliberately a pure function over a string so that it can be fuzzed
//! (`fuzz/fuzz_targets/entry_path.rs`) and reasoned about without archives.

use std::fmt;
use unicode_normalization::UnicodeNormalization;

/// A validated entry path: relative, `/`-separated, NFC-normalised, with no empty,
/// `.` or `..` components, no NUL and no control characters.
///
/// Because it can never escape its root, the engine may join it below a destination
/// directory without further checks.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryPath(String);

impl EntryPath {
    /// The path as a `/`-separated string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last component (the file name).
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// Everything before the last component ("" for a top-level entry).
    pub fn parent(&self) -> &str {
        match self.0.rfind('/') {
            Some(i) => &self.0[..i],
            None => "",
        }
    }

    /// The components, outermost first.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }
}

impl fmt::Display for EntryPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why an entry name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PathRejection {
    /// Nothing left after removing separators and `.` components.
    Empty,
    /// Contains a NUL byte (C APIs would silently truncate it).
    Nul,
    /// Contains another control character.
    ControlChar,
    /// Starts with `/` or `\` (including UNC `\\server`).
    Absolute,
    /// Starts with a Windows drive (`C:`), or a component contains `:` in drive position.
    DriveLetter,
    /// Contains a `..` component (before or after backslash conversion).
    ParentComponent,
}

impl fmt::Display for PathRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Self::Empty => "empty path",
            Self::Nul => "NUL byte in path",
            Self::ControlChar => "control character in path",
            Self::Absolute => "absolute path",
            Self::DriveLetter => "drive-letter path",
            Self::ParentComponent => "`..` component in path",
        };
        f.write_str(s)
    }
}

/// Turns a raw entry name into an [`EntryPath`], or says why it is unsafe.
///
/// Backslashes are treated as separators *before* checking, so `..\evil.jpg` and
/// `a\..\..\b` are caught; a trailing `/` (directory entry) is dropped.
pub fn sanitize_entry_path(raw: &str) -> Result<EntryPath, PathRejection> {
    if raw.contains('\0') {
        return Err(PathRejection::Nul);
    }
    if raw.chars().any(|c| c.is_control()) {
        return Err(PathRejection::ControlChar);
    }
    let nfc: String = raw.nfc().collect();
    let unified = nfc.replace('\\', "/");
    if unified.starts_with('/') {
        return Err(PathRejection::Absolute);
    }
    let mut parts: Vec<&str> = Vec::new();
    for comp in unified.split('/') {
        match comp {
            "" | "." => {}
            ".." => return Err(PathRejection::ParentComponent),
            // Checked on the first *kept* component, so `./C:/x` cannot become `C:/x`.
            c if parts.is_empty() && is_drive(c) => return Err(PathRejection::DriveLetter),
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        return Err(PathRejection::Empty);
    }
    Ok(EntryPath(parts.join("/")))
}

fn is_drive(comp: &str) -> bool {
    let b = comp.as_bytes();
    b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_normal_and_normalises() {
        let p = sanitize_entry_path("Takeout/Google Photos/Photos from 2020/a.jpg").unwrap();
        assert_eq!(p.file_name(), "a.jpg");
        assert_eq!(p.parent(), "Takeout/Google Photos/Photos from 2020");
        // NFD "é" (e + U+0301) becomes NFC U+00E9 (§3.5: macOS NFD names).
        let p = sanitize_entry_path("Takeout/me\u{301}tadonne\u{301}es.json").unwrap();
        assert_eq!(p.as_str(), "Takeout/m\u{e9}tadonn\u{e9}es.json");
        assert_eq!(sanitize_entry_path("a//./b/").unwrap().as_str(), "a/b");
    }

    #[test]
    fn rejects_hostile() {
        use PathRejection::*;
        assert_eq!(sanitize_entry_path("../evil.jpg"), Err(ParentComponent));
        assert_eq!(
            sanitize_entry_path("a/../../evil.jpg"),
            Err(ParentComponent)
        );
        assert_eq!(
            sanitize_entry_path("a\\..\\..\\evil.jpg"),
            Err(ParentComponent)
        );
        assert_eq!(sanitize_entry_path("/etc/passwd"), Err(Absolute));
        assert_eq!(sanitize_entry_path("\\\\server\\share"), Err(Absolute));
        assert_eq!(sanitize_entry_path("C:/Windows/x.jpg"), Err(DriveLetter));
        assert_eq!(sanitize_entry_path("c:evil.jpg"), Err(DriveLetter));
        assert_eq!(sanitize_entry_path("./C:/evil.jpg"), Err(DriveLetter));
        assert_eq!(sanitize_entry_path("a\0b.jpg"), Err(Nul));
        assert_eq!(sanitize_entry_path("a\u{1b}b.jpg"), Err(ControlChar));
        assert_eq!(sanitize_entry_path("./"), Err(Empty));
    }
}
