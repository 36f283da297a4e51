//! Grouping of input paths (archive parts, extracted folders, junk) into exports (§1.1).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// The 1-based part number from `-001`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartNumber(pub u32);

impl fmt::Display for PartNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:03}", self.0)
    }
}

/// Identity of one export: everything in the file name before the part number,
/// e.g. `takeout-20250912T060118Z-1` (§1.1: "group parts by everything before the part number").
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ExportId(pub String);

impl fmt::Display for ExportId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a part is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PartFormat {
    /// A zip archive, read through its central directory.
    Zip,
    /// A gzip-compressed tar, read in one sequential pass.
    Tgz,
    /// An already extracted part (a directory).
    Folder,
}

/// A file name parsed with the grammar
/// `^takeout-(\d{8}T\d{6}Z)(?:-(\d+))?-(\d{3})\.(zip|tgz)$` (extension optional for folders).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartName {
    /// Export identity (prefix before the part number).
    pub export: ExportId,
    /// `YYYYMMDDTHHMMSSZ` of the export start.
    pub timestamp: String,
    /// The optional extra number of newer exports (`-1-` in `…Z-1-001.zip`).
    pub job: Option<u32>,
    /// The part number.
    pub part: PartNumber,
    /// Zip, tgz, or folder when there is no extension.
    pub format: PartFormat,
}

/// Parses a Takeout part name. Returns `None` for anything that does not follow the grammar.
pub fn parse_part_name(name: &str) -> Option<PartName> {
    let lower_ok = |ext: &str| ext.eq_ignore_ascii_case("zip") || ext.eq_ignore_ascii_case("tgz");
    let (base, format) = match name.rsplit_once('.') {
        Some((b, ext)) if lower_ok(ext) => (
            b,
            if ext.eq_ignore_ascii_case("zip") {
                PartFormat::Zip
            } else {
                PartFormat::Tgz
            },
        ),
        _ => (name, PartFormat::Folder),
    };
    let rest = base.strip_prefix("takeout-")?;
    let ts = rest.get(..16)?;
    let tb = ts.as_bytes();
    let ts_ok = tb[..8].iter().all(u8::is_ascii_digit)
        && tb[8] == b'T'
        && tb[9..15].iter().all(u8::is_ascii_digit)
        && tb[15] == b'Z';
    if !ts_ok {
        return None;
    }
    let tail = rest.get(16..)?.strip_prefix('-')?;
    let (job, part_str) = match tail.split_once('-') {
        Some((job, p)) => {
            if job.is_empty() || !job.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            (Some(job.parse::<u32>().ok()?), p)
        }
        None => (None, tail),
    };
    if part_str.len() != 3 || !part_str.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let part: u32 = part_str.parse().ok()?;
    let export_len = base.len() - 4; // "-NNN"
    Some(PartName {
        export: ExportId(base[..export_len].to_string()),
        timestamp: ts.to_string(),
        job,
        part: PartNumber(part),
        format,
    })
}

/// One readable part of an export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Its number within the export.
    pub number: PartNumber,
    /// Where it is.
    pub path: PathBuf,
    /// How to read it.
    pub format: PartFormat,
}

/// All parts found for one export, sorted by part number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    /// Export identity.
    pub id: ExportId,
    /// Parts present, ascending.
    pub parts: Vec<Part>,
    /// Part numbers below the highest one present that were not given. Part numbers
    /// start at 001; the total count is not encoded in the names, so a missing *last*
    /// part cannot be detected.
    pub missing: Vec<PartNumber>,
    /// True when the name did not follow the Takeout grammar (e.g. a re-zipped archive).
    pub nonstandard_name: bool,
}

impl Export {
    /// True when some part numbers are known to be missing.
    pub fn is_incomplete(&self) -> bool {
        !self.missing.is_empty()
    }
}

/// Why an input path was not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IgnoreReason {
    /// macOS AppleDouble `._*` or `.DS_Store` and similar OS litter.
    Junk,
    /// A plain file that is not an archive (possibly a big media file delivered outside
    /// the zips, §1.1 / Neo #121 — reported so the user can look at it).
    LooseFile,
    /// A directory that is neither a part nor contains a `Takeout` folder.
    UnrecognisedDirectory,
    /// Same export and part number as an earlier input.
    DuplicatePart {
        /// The input that was kept.
        kept: PathBuf,
    },
    /// The path could not be inspected.
    Unreadable(String),
}

/// An input path that was not used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoredInput {
    /// The path.
    pub path: PathBuf,
    /// Why.
    pub reason: IgnoreReason,
}

/// Result of [`group_parts`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartGrouping {
    /// Exports, sorted by id.
    pub exports: Vec<Export>,
    /// Inputs that were not used.
    pub ignored: Vec<IgnoredInput>,
}

/// True for OS litter that is never content (§1.1: AppleDouble files from macOS re-packing).
pub fn is_junk_name(name: &str) -> bool {
    name.starts_with("._")
        || matches!(
            name,
            ".DS_Store" | "Thumbs.db" | "desktop.ini" | ".localized" | "__MACOSX" | "@eaDir"
        )
}

/// Groups input paths into exports.
///
/// Each path may be a part archive (`takeout-…-001.zip`/`.tgz`), an extracted part folder
/// (`takeout-…-001/`), a folder that contains `Takeout/` (treated as a one-part export
/// named after the folder), a directory holding any of these (looked into one level
/// deep), an archive with a non-standard name (one-part export, flagged), or junk.
pub fn group_parts<P: AsRef<Path>>(inputs: &[P]) -> PartGrouping {
    let mut candidates: Vec<PathBuf> = Vec::new();
    let mut ignored = Vec::new();
    for input in inputs {
        let p = input.as_ref();
        if p.is_dir() && !is_part_dir(p) {
            // A download directory: look one level into it, sorted for determinism.
            match std::fs::read_dir(p) {
                Ok(rd) => {
                    let mut kids: Vec<PathBuf> =
                        rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
                    kids.sort();
                    for k in kids {
                        candidates.push(k);
                    }
                }
                Err(e) => ignored.push(IgnoredInput {
                    path: p.to_path_buf(),
                    reason: IgnoreReason::Unreadable(e.to_string()),
                }),
            }
        } else {
            candidates.push(p.to_path_buf());
        }
    }

    let mut by_export: BTreeMap<ExportId, (bool, BTreeMap<PartNumber, Part>)> = BTreeMap::new();
    for path in candidates {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if is_junk_name(&name) {
            ignored.push(IgnoredInput {
                path,
                reason: IgnoreReason::Junk,
            });
            continue;
        }
        let is_dir = path.is_dir();
        let (id, number, format, nonstandard) = match parse_part_name(&name) {
            Some(pn) if (pn.format == PartFormat::Folder) == is_dir => {
                (pn.export, pn.part, pn.format, false)
            }
            _ => {
                let lower = name.to_ascii_lowercase();
                if is_dir && path.join("Takeout").is_dir() {
                    (
                        ExportId(name.clone()),
                        PartNumber(1),
                        PartFormat::Folder,
                        true,
                    )
                } else if !is_dir
                    && (lower.ends_with(".zip")
                        || lower.ends_with(".tgz")
                        || lower.ends_with(".tar.gz"))
                {
                    let fmt = if lower.ends_with(".zip") {
                        PartFormat::Zip
                    } else {
                        PartFormat::Tgz
                    };
                    (ExportId(name.clone()), PartNumber(1), fmt, true)
                } else if is_dir {
                    ignored.push(IgnoredInput {
                        path,
                        reason: IgnoreReason::UnrecognisedDirectory,
                    });
                    continue;
                } else {
                    ignored.push(IgnoredInput {
                        path,
                        reason: IgnoreReason::LooseFile,
                    });
                    continue;
                }
            }
        };
        let entry = by_export
            .entry(id)
            .or_insert_with(|| (nonstandard, BTreeMap::new()));
        if let Some(kept) = entry.1.get(&number) {
            ignored.push(IgnoredInput {
                path,
                reason: IgnoreReason::DuplicatePart {
                    kept: kept.path.clone(),
                },
            });
            continue;
        }
        entry.1.insert(
            number,
            Part {
                number,
                path,
                format,
            },
        );
    }

    let exports = by_export
        .into_iter()
        .map(|(id, (nonstandard_name, parts))| {
            let max = parts.keys().next_back().map(|p| p.0).unwrap_or(0);
            let missing = (1..max)
                .map(PartNumber)
                .filter(|n| !parts.contains_key(n))
                .collect();
            Export {
                id,
                parts: parts.into_values().collect(),
                missing,
                nonstandard_name,
            }
        })
        .collect();
    PartGrouping { exports, ignored }
}

fn is_part_dir(p: &Path) -> bool {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    matches!(parse_part_name(&name), Some(pn) if pn.format == PartFormat::Folder)
        || p.join("Takeout").is_dir()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grammar() {
        // §8 case 4.
        let a = parse_part_name("takeout-20240525T201456Z-001.zip").unwrap();
        assert_eq!(a.export.0, "takeout-20240525T201456Z");
        assert_eq!(
            (a.part, a.format, a.job),
            (PartNumber(1), PartFormat::Zip, None)
        );
        let b = parse_part_name("takeout-20250912T060118Z-1-001.zip").unwrap();
        assert_eq!(b.export.0, "takeout-20250912T060118Z-1");
        assert_eq!((b.part, b.job), (PartNumber(1), Some(1)));
        let c = parse_part_name("takeout-20230720T065335Z-001.tgz").unwrap();
        assert_eq!(
            (c.export.0.as_str(), c.format),
            ("takeout-20230720T065335Z", PartFormat::Tgz)
        );
        assert_eq!(parse_part_name("takeout-20230720T065335Z-01.zip"), None);
        assert_eq!(parse_part_name("takeout-2023072OT065335Z-001.zip"), None);
        assert_eq!(parse_part_name("takeout-20230720T065335Z-001.rar"), None);
        assert_eq!(parse_part_name("takeout-20230720T065335Z--001.zip"), None);
    }
}
