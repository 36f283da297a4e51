//! Streaming readers over parts: zip via its central directory, tgz in one sequential
//! pass, extracted folders by walking. Nothing is ever extracted to disk or held in memory
//! whole; every entry is handed out as a guarded [`Read`].

use std::cell::Cell;
use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;
use std::rc::Rc;

use crate::entry_path::{EntryPath, PathRejection, sanitize_entry_path};
use crate::error::TakeoutError;
use crate::parts::{Part, PartFormat, PartNumber};

/// Zip-bomb and size limits, enforced while streaming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest single entry accepted (declared and actual).
    pub max_entry_bytes: u64,
    /// Largest decompressed/compressed ratio accepted once an entry (zip) or the stream
    /// (tgz) has produced more than `ratio_floor_bytes`. Photos and videos barely
    /// compress, JSON about 10×; anything far above is a bomb.
    pub max_ratio: u64,
    /// Below this many decompressed bytes the ratio is not checked (tiny files compress well).
    pub ratio_floor_bytes: u64,
    /// Total decompressed bytes one part may produce in one pass.
    pub max_total_bytes: u64,
    /// Largest JSON file that will be parsed (sidecars are ~1 KiB).
    pub max_json_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            // Parts are at most 50 GB and bigger files come outside the archives (§1.1).
            max_entry_bytes: 64 << 30,
            max_ratio: 200,
            ratio_floor_bytes: 1 << 20,
            max_total_bytes: 256 << 30,
            max_json_bytes: 16 << 20,
        }
    }
}

/// A limit broken while reading an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitViolation {
    /// The entry produced more (or fewer) bytes than its header declared.
    SizeMismatch {
        /// Size in the header.
        declared: u64,
        /// Bytes produced (when more: the count at which reading stopped).
        actual: u64,
    },
    /// Decompressed/compressed ratio above [`Limits::max_ratio`].
    Ratio {
        /// Ratio observed.
        ratio: u64,
    },
    /// Entry larger than [`Limits::max_entry_bytes`].
    EntryTooLarge {
        /// Declared or observed size.
        size: u64,
    },
    /// The part produced more than [`Limits::max_total_bytes`].
    TotalExceeded,
}

impl fmt::Display for LimitViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SizeMismatch { declared, actual } => {
                write!(f, "size mismatch: declared {declared}, got {actual}")
            }
            Self::Ratio { ratio } => write!(f, "compression ratio {ratio} above limit"),
            Self::EntryTooLarge { size } => write!(f, "entry of {size} bytes above limit"),
            Self::TotalExceeded => f.write_str("part total size limit exceeded"),
        }
    }
}

/// Why an archive entry was not used. Entries are skipped, never fatal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// The entry name is unsafe.
    UnsafePath(PathRejection),
    /// Symbolic link entry (tgz or zip with unix mode).
    Symlink,
    /// Hard link entry (tgz).
    HardLink,
    /// Character or block device (tgz).
    Device,
    /// Named pipe (tgz).
    Fifo,
    /// Other non-regular entry type.
    OtherType,
    /// Encrypted zip entry.
    Encrypted,
    /// A size or ratio limit was broken.
    Limit(LimitViolation),
    /// The entry's bytes could not be read (CRC error, bad deflate data).
    ReadError(String),
    /// OS litter: AppleDouble `._*`, `.DS_Store`, `__MACOSX/`.
    Junk,
    /// Not media and not JSON (e.g. `archive_browser.html`).
    NotMedia,
    /// JSON that is not a sidecar or album (`print-subscriptions.json`, …).
    OtherJson,
    /// JSON that could not be parsed (invalid UTF-8 or syntax); reported, not fatal (§3.1).
    InvalidJson(String),
    /// The same path was already seen in an earlier part (§1.2).
    DuplicatePath {
        /// Part that supplied the kept copy.
        kept_in: PartNumber,
    },
    /// Trashed item while trashed items are excluded (§8 case 15).
    Trashed,
    /// In `Failed Videos/` (§2.4).
    FailedVideo,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnsafePath(r) => write!(f, "unsafe path: {r}"),
            Self::Symlink => f.write_str("symbolic link"),
            Self::HardLink => f.write_str("hard link"),
            Self::Device => f.write_str("device node"),
            Self::Fifo => f.write_str("fifo"),
            Self::OtherType => f.write_str("unsupported entry type"),
            Self::Encrypted => f.write_str("encrypted entry"),
            Self::Limit(v) => write!(f, "{v}"),
            Self::ReadError(e) => write!(f, "read error: {e}"),
            Self::Junk => f.write_str("OS junk file"),
            Self::NotMedia => f.write_str("not a media file"),
            Self::OtherJson => f.write_str("JSON that is neither sidecar nor album"),
            Self::InvalidJson(e) => write!(f, "invalid JSON: {e}"),
            Self::DuplicatePath { kept_in } => write!(f, "same path already in part {kept_in}"),
            Self::Trashed => f.write_str("trashed item excluded"),
            Self::FailedVideo => f.write_str("in Failed Videos"),
        }
    }
}

/// One skipped entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedEntry {
    /// The part it is in.
    pub part: PartNumber,
    /// The entry name as stored (lossily decoded for display).
    pub name: String,
    /// Why it was skipped.
    pub reason: SkipReason,
}

/// Header facts of a regular-file entry handed to a visitor.
#[derive(Debug, Clone)]
pub(crate) struct RawEntry {
    /// The sanitised path.
    pub path: EntryPath,
    /// The raw name bytes, kept for diagnostics (§1.1).
    pub raw_name: Vec<u8>,
    /// Size declared by the header.
    pub declared_size: u64,
}

/// A [`Read`] over one entry that enforces the [`Limits`] and remembers a violation.
pub struct EntryReader<'a> {
    inner: &'a mut dyn Read,
    read: u64,
    declared: u64,
    compressed: Option<u64>,
    limits: &'a Limits,
    total: &'a Cell<u64>,
    violation: Option<LimitViolation>,
    io_failed: Option<String>,
}

impl<'a> EntryReader<'a> {
    fn new(
        inner: &'a mut dyn Read,
        declared: u64,
        compressed: Option<u64>,
        limits: &'a Limits,
        total: &'a Cell<u64>,
    ) -> Self {
        Self {
            inner,
            read: 0,
            declared,
            compressed,
            limits,
            total,
            violation: None,
            io_failed: None,
        }
    }

    /// Bytes produced so far.
    pub fn bytes_read(&self) -> u64 {
        self.read
    }

    /// The limit that was broken, if any.
    pub fn violation(&self) -> Option<LimitViolation> {
        self.violation
    }

    /// The underlying archive read error, if one happened (bad CRC, broken stream).
    pub fn io_failure(&self) -> Option<&str> {
        self.io_failed.as_deref()
    }

    /// True when the bytes handed out so far are not trustworthy.
    pub fn failed(&self) -> bool {
        self.violation.is_some() || self.io_failed.is_some()
    }

    fn fail(&mut self, v: LimitViolation) -> io::Error {
        self.violation = Some(v);
        io::Error::new(io::ErrorKind::InvalidData, v.to_string())
    }
}

impl Read for EntryReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(v) = self.violation {
            return Err(io::Error::new(io::ErrorKind::InvalidData, v.to_string()));
        }
        // Never ask for more than one byte past the declared size: that byte proves a lie
        // without letting a bomb fill the caller's buffer.
        let allowed = self.declared.saturating_sub(self.read).saturating_add(1);
        let want = buf
            .len()
            .min(usize::try_from(allowed).unwrap_or(usize::MAX));
        let n = match self.inner.read(&mut buf[..want]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Err(e),
            Err(e) => {
                self.io_failed = Some(e.to_string());
                return Err(e);
            }
        };
        if n == 0 {
            if !buf.is_empty() && self.read != self.declared {
                let v = LimitViolation::SizeMismatch {
                    declared: self.declared,
                    actual: self.read,
                };
                return Err(self.fail(v));
            }
            return Ok(0);
        }
        self.read += n as u64;
        self.total.set(self.total.get().saturating_add(n as u64));
        if self.read > self.declared {
            let v = LimitViolation::SizeMismatch {
                declared: self.declared,
                actual: self.read,
            };
            return Err(self.fail(v));
        }
        if self.read > self.limits.max_entry_bytes {
            return Err(self.fail(LimitViolation::EntryTooLarge { size: self.read }));
        }
        if self.total.get() > self.limits.max_total_bytes {
            return Err(self.fail(LimitViolation::TotalExceeded));
        }
        if let Some(c) = self.compressed
            && self.read > self.limits.ratio_floor_bytes
        {
            let ratio = self.read / c.max(1);
            if ratio > self.limits.max_ratio {
                return Err(self.fail(LimitViolation::Ratio { ratio }));
            }
        }
        Ok(n)
    }
}

/// What a visitor tells the walker.
#[derive(Debug)]
pub(crate) enum VisitError {
    /// Reading the entry failed; the walker decides whether that is a skip or a part error.
    Io(io::Error),
    /// The visitor wants to stop walking (its own error is kept by the visitor).
    Stop,
}

impl From<io::Error> for VisitError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

pub(crate) type Visitor<'v> =
    dyn FnMut(&RawEntry, &mut EntryReader<'_>) -> Result<(), VisitError> + 'v;

/// Outcome of walking one part.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum WalkEnd {
    Completed,
    Stopped,
}

/// Walks every regular-file entry of `part` once, in archive order.
pub(crate) fn walk_part(
    part: &Part,
    limits: &Limits,
    skipped: &mut Vec<SkippedEntry>,
    visit: &mut Visitor<'_>,
) -> Result<WalkEnd, TakeoutError> {
    match part.format {
        PartFormat::Zip => walk_zip(part, limits, skipped, visit),
        PartFormat::Tgz => walk_tgz(part, limits, skipped, visit),
        PartFormat::Folder => walk_folder(part, limits, skipped, visit),
    }
}

fn io_err(path: &Path, source: io::Error) -> TakeoutError {
    TakeoutError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn skip(skipped: &mut Vec<SkippedEntry>, part: PartNumber, name: &[u8], reason: SkipReason) {
    tracing::debug!(part = %part, name = %String::from_utf8_lossy(name), %reason, "skipping entry");
    skipped.push(SkippedEntry {
        part,
        name: String::from_utf8_lossy(name).into_owned(),
        reason,
    });
}

/// Checks header-declared facts before any byte is read.
fn precheck(declared: u64, compressed: Option<u64>, limits: &Limits) -> Option<LimitViolation> {
    if declared > limits.max_entry_bytes {
        return Some(LimitViolation::EntryTooLarge { size: declared });
    }
    if let Some(c) = compressed
        && declared > limits.ratio_floor_bytes
    {
        let ratio = declared / c.max(1);
        if ratio > limits.max_ratio {
            return Some(LimitViolation::Ratio { ratio });
        }
    }
    None
}

fn walk_zip(
    part: &Part,
    limits: &Limits,
    skipped: &mut Vec<SkippedEntry>,
    visit: &mut Visitor<'_>,
) -> Result<WalkEnd, TakeoutError> {
    let file = File::open(&part.path).map_err(|e| io_err(&part.path, e))?;
    let mut zip =
        zip::ZipArchive::new(BufReader::new(file)).map_err(|source| TakeoutError::Zip {
            path: part.path.clone(),
            source,
        })?;
    let total = Cell::new(0u64);
    for i in 0..zip.len() {
        let listed_name = zip.name_for_index(i).unwrap_or("").as_bytes().to_vec();
        let mut zf = match zip.by_index(i) {
            Ok(f) => f,
            Err(e) => {
                // A bad local header costs one entry; the central directory is still good.
                skip(
                    skipped,
                    part.number,
                    &listed_name,
                    SkipReason::ReadError(e.to_string()),
                );
                continue;
            }
        };
        let raw = zf.name_raw().to_vec();
        if zf.is_dir() {
            continue;
        }
        if zf.is_symlink() {
            skip(skipped, part.number, &raw, SkipReason::Symlink);
            continue;
        }
        if zf.encrypted() {
            skip(skipped, part.number, &raw, SkipReason::Encrypted);
            continue;
        }
        // `name()` honours the UTF-8 flag and falls back to CP437, as the format requires.
        let path = match sanitize_entry_path(zf.name()) {
            Ok(p) => p,
            Err(r) => {
                skip(skipped, part.number, &raw, SkipReason::UnsafePath(r));
                continue;
            }
        };
        let declared = zf.size();
        let compressed = Some(zf.compressed_size());
        if let Some(v) = precheck(declared, compressed, limits) {
            skip(skipped, part.number, &raw, SkipReason::Limit(v));
            continue;
        }
        let entry = RawEntry {
            path,
            raw_name: raw,
            declared_size: declared,
        };
        let mut reader = EntryReader::new(&mut zf, declared, compressed, limits, &total);
        let res = visit(&entry, &mut reader);
        if let Some(end) = settle(part, limits, skipped, &entry, &reader, res, false)? {
            return Ok(end);
        }
    }
    Ok(WalkEnd::Completed)
}

/// Decides what one visited entry means for the walk: `Ok(None)` to go on,
/// `Ok(Some(Stopped))` when the visitor asked to stop, `Err` when the part is done for.
///
/// In a sequential stream (tgz) a read error or a short entry means the stream itself is
/// broken, so the part fails; in a zip or a folder entries are independent and only the
/// entry is skipped.
fn settle(
    part: &Part,
    limits: &Limits,
    skipped: &mut Vec<SkippedEntry>,
    entry: &RawEntry,
    reader: &EntryReader<'_>,
    res: Result<(), VisitError>,
    sequential: bool,
) -> Result<Option<WalkEnd>, TakeoutError> {
    let broken = |msg: String| TakeoutError::Tgz {
        path: part.path.clone(),
        message: format!("{}: {msg}", entry.path),
    };
    let entry_skip =
        |skipped: &mut Vec<SkippedEntry>, r| skip(skipped, part.number, &entry.raw_name, r);
    match (res, reader.violation()) {
        (_, Some(LimitViolation::TotalExceeded)) => Err(TakeoutError::TotalLimit {
            path: part.path.clone(),
            limit: limits.max_total_bytes,
        }),
        (_, Some(v @ LimitViolation::SizeMismatch { declared, actual }))
            if sequential && actual < declared =>
        {
            Err(broken(v.to_string()))
        }
        (_, Some(v)) => {
            entry_skip(skipped, SkipReason::Limit(v));
            Ok(None)
        }
        (_, None) if reader.io_failure().is_some() => {
            let msg = reader.io_failure().unwrap_or("read error").to_string();
            if sequential {
                return Err(broken(msg));
            }
            entry_skip(skipped, SkipReason::ReadError(msg));
            Ok(None)
        }
        (Ok(()), None) => Ok(None),
        (Err(VisitError::Stop), None) => Ok(Some(WalkEnd::Stopped)),
        (Err(VisitError::Io(e)), None) => {
            if sequential {
                return Err(broken(e.to_string()));
            }
            entry_skip(skipped, SkipReason::ReadError(e.to_string()));
            Ok(None)
        }
    }
}

/// Counts compressed bytes consumed by the gzip decoder.
struct Counting<R> {
    inner: R,
    count: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// Guards the whole decompressed tgz stream (headers and padding included) against a
/// ratio bomb; tar entries themselves are bounded by their header size.
struct RatioGuard<R> {
    inner: R,
    compressed: Rc<Cell<u64>>,
    produced: u64,
    max_ratio: u64,
    floor: u64,
    tripped: Rc<Cell<Option<u64>>>,
}

impl<R: Read> Read for RatioGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.produced += n as u64;
        if self.produced > self.floor {
            let ratio = self.produced / self.compressed.get().max(1);
            if ratio > self.max_ratio {
                self.tripped.set(Some(ratio));
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "tgz compression ratio above limit",
                ));
            }
        }
        Ok(n)
    }
}

fn walk_tgz(
    part: &Part,
    limits: &Limits,
    skipped: &mut Vec<SkippedEntry>,
    visit: &mut Visitor<'_>,
) -> Result<WalkEnd, TakeoutError> {
    let file = File::open(&part.path).map_err(|e| io_err(&part.path, e))?;
    let compressed = Rc::new(Cell::new(0u64));
    let tripped = Rc::new(Cell::new(None));
    let counting = Counting {
        inner: BufReader::new(file),
        count: compressed.clone(),
    };
    let gz = flate2::read::MultiGzDecoder::new(counting);
    let guard = RatioGuard {
        inner: gz,
        compressed,
        produced: 0,
        max_ratio: limits.max_ratio,
        floor: limits.ratio_floor_bytes.max(64 << 10),
        tripped: tripped.clone(),
    };
    let mut ar = tar::Archive::new(guard);
    let tgz_err = |message: String| TakeoutError::Tgz {
        path: part.path.clone(),
        message,
    };
    let entries = ar.entries().map_err(|e| tgz_err(e.to_string()))?;
    let total = Cell::new(0u64);
    for ent in entries {
        let mut ent = match ent {
            Ok(e) => e,
            Err(e) => {
                if let Some(r) = tripped.get() {
                    return Err(tgz_err(format!("compression ratio {r} above limit")));
                }
                return Err(tgz_err(e.to_string()));
            }
        };
        let raw = ent.path_bytes().into_owned();
        use tar::EntryType as T;
        let reason = match ent.header().entry_type() {
            T::Regular | T::Continuous => None,
            T::Directory => continue,
            T::Symlink => Some(SkipReason::Symlink),
            T::Link => Some(SkipReason::HardLink),
            T::Char | T::Block => Some(SkipReason::Device),
            T::Fifo => Some(SkipReason::Fifo),
            _ => Some(SkipReason::OtherType),
        };
        if let Some(r) = reason {
            skip(skipped, part.number, &raw, r);
            continue;
        }
        let Ok(name) = std::str::from_utf8(&raw) else {
            // tar has no encoding flag; a non-UTF-8 name is reported, never guessed at.
            skip(
                skipped,
                part.number,
                &raw,
                SkipReason::ReadError("entry name is not UTF-8".into()),
            );
            continue;
        };
        let path = match sanitize_entry_path(name) {
            Ok(p) => p,
            Err(r) => {
                skip(skipped, part.number, &raw, SkipReason::UnsafePath(r));
                continue;
            }
        };
        let declared = ent.size();
        if let Some(v) = precheck(declared, None, limits) {
            skip(skipped, part.number, &raw, SkipReason::Limit(v));
            continue;
        }
        let entry = RawEntry {
            path,
            raw_name: raw,
            declared_size: declared,
        };
        let mut reader = EntryReader::new(&mut ent, declared, None, limits, &total);
        let res = visit(&entry, &mut reader);
        if let Some(r) = tripped.get() {
            return Err(tgz_err(format!("compression ratio {r} above limit")));
        }
        if let Some(end) = settle(part, limits, skipped, &entry, &reader, res, true)? {
            return Ok(end);
        }
    }
    Ok(WalkEnd::Completed)
}

fn walk_folder(
    part: &Part,
    limits: &Limits,
    skipped: &mut Vec<SkippedEntry>,
    visit: &mut Visitor<'_>,
) -> Result<WalkEnd, TakeoutError> {
    let total = Cell::new(0u64);
    // Explicit stack, children sorted: deterministic order without recursion depth limits.
    let mut stack: Vec<(std::path::PathBuf, String)> = vec![(part.path.clone(), String::new())];
    while let Some((dir, rel)) = stack.pop() {
        let rd = std::fs::read_dir(&dir).map_err(|e| io_err(&dir, e))?;
        let mut kids: Vec<std::fs::DirEntry> = rd.filter_map(Result::ok).collect();
        kids.sort_by_key(|k| std::cmp::Reverse(k.file_name()));
        let mut files = Vec::new();
        for k in kids {
            let name_os = k.file_name();
            let raw = name_os.as_encoded_bytes().to_vec();
            let Some(name) = name_os.to_str() else {
                skip(
                    skipped,
                    part.number,
                    &raw,
                    SkipReason::ReadError("file name is not UTF-8".into()),
                );
                continue;
            };
            let relp = if rel.is_empty() {
                name.to_string()
            } else {
                format!("{rel}/{name}")
            };
            let ft = match k.file_type() {
                Ok(t) => t,
                Err(e) => {
                    skip(
                        skipped,
                        part.number,
                        relp.as_bytes(),
                        SkipReason::ReadError(e.to_string()),
                    );
                    continue;
                }
            };
            if ft.is_symlink() {
                skip(skipped, part.number, relp.as_bytes(), SkipReason::Symlink);
            } else if ft.is_dir() {
                stack.push((k.path(), relp));
            } else if ft.is_file() {
                files.push((k.path(), relp));
            } else {
                skip(skipped, part.number, relp.as_bytes(), SkipReason::OtherType);
            }
        }
        files.reverse();
        for (fs_path, relp) in files {
            let path = match sanitize_entry_path(&relp) {
                Ok(p) => p,
                Err(r) => {
                    skip(
                        skipped,
                        part.number,
                        relp.as_bytes(),
                        SkipReason::UnsafePath(r),
                    );
                    continue;
                }
            };
            let mut f = match File::open(&fs_path) {
                Ok(f) => f,
                Err(e) => {
                    skip(
                        skipped,
                        part.number,
                        relp.as_bytes(),
                        SkipReason::ReadError(e.to_string()),
                    );
                    continue;
                }
            };
            let declared = f.metadata().map(|m| m.len()).unwrap_or(0);
            let entry = RawEntry {
                path,
                raw_name: relp.into_bytes(),
                declared_size: declared,
            };
            let mut reader = EntryReader::new(&mut f, declared, None, limits, &total);
            let res = visit(&entry, &mut reader);
            if let Some(end) = settle(part, limits, skipped, &entry, &reader, res, false)? {
                return Ok(end);
            }
        }
    }
    Ok(WalkEnd::Completed)
}
