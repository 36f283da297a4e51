//! Media classification by extension, and by magic bytes when the extension is missing
//! or unknown (`MVIMG_x` videos without extension, §3.6 / §8 case 42).

/// Photo or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    /// A still image (including RAW and motion-photo stills).
    Photo,
    /// A video (including `.MP` motion-photo halves).
    Video,
}

const PHOTO_EXTS: &[&str] = &[
    "jpg", "jpeg", "jpe", "png", "gif", "webp", "heic", "heif", "avif", "bmp", "tif", "tiff",
    "dng", "raw", "cr2", "cr3", "crw", "nef", "nrw", "arw", "srf", "sr2", "raf", "rw2", "orf",
    "pef", "srw", "x3f", "3fr", "erf", "kdc", "mrw", "ico", "jxl",
];
const VIDEO_EXTS: &[&str] = &[
    "mp4", "m4v", "mov", "qt", "3gp", "3g2", "avi", "mkv", "webm", "mts", "m2ts", "ts", "mpg",
    "mpeg", "wmv", "flv", "mp", "mv", "vob", "asf", "divx",
];
/// Extensions that are never media; not worth reading to sniff.
pub(crate) const NOT_MEDIA_EXTS: &[&str] =
    &["html", "htm", "txt", "csv", "xml", "pdf", "ini", "db", "md"];

/// Kind implied by the extension alone.
pub fn kind_from_extension(ext: &str) -> Option<MediaKind> {
    let e = ext.to_ascii_lowercase();
    if PHOTO_EXTS.contains(&e.as_str()) {
        Some(MediaKind::Photo)
    } else if VIDEO_EXTS.contains(&e.as_str()) {
        Some(MediaKind::Video)
    } else {
        None
    }
}

/// Content types recognised from the first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    /// JPEG (`FF D8 FF`).
    Jpeg,
    /// Some other still image.
    OtherImage,
    /// A video container.
    Video,
}

/// Recognises a few container signatures.
pub fn sniff(head: &[u8]) -> Option<Sniffed> {
    if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Some(Sniffed::Jpeg);
    }
    if head.starts_with(b"\x89PNG\r\n\x1a\n")
        || head.starts_with(b"GIF87a")
        || head.starts_with(b"GIF89a")
        || head.starts_with(b"II*\0")
        || head.starts_with(b"MM\0*")
        || head.starts_with(b"BM")
        || (head.starts_with(b"RIFF") && head.get(8..12) == Some(b"WEBP"))
    {
        return Some(Sniffed::OtherImage);
    }
    if head.starts_with(b"RIFF") && head.get(8..12) == Some(b"AVI ")
        || head.starts_with(&[0x1A, 0x45, 0xDF, 0xA3])
    {
        return Some(Sniffed::Video);
    }
    if head.get(4..8) == Some(b"ftyp") {
        let brand = head.get(8..12).unwrap_or(b"");
        let image = [
            b"heic", b"heix", b"mif1", b"msf1", b"avif", b"heim", b"heis", b"hevc",
        ];
        if image.iter().any(|b| brand == *b) {
            return Some(Sniffed::OtherImage);
        }
        return Some(Sniffed::Video);
    }
    None
}
