//! Capture dates: EXIF from the head of a JPEG, file-name patterns, folder names (§4.5, §4.6).

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};

/// A capture time and how precise it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureTime {
    /// A true instant (sidecar timestamp, Pixel names, EXIF with an offset).
    Instant(DateTime<Utc>),
    /// A wall clock whose zone is unknown (EXIF without offset, most file names).
    Local(NaiveDateTime),
    /// Only a day (per-day folders of old exports, §2.2).
    Day(NaiveDate),
    /// Only a year (year folder, §8 case 45).
    Year(i32),
}

/// Where a capture time came from, in order of preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DateSource {
    /// `photoTakenTime.timestamp` of the sidecar.
    SidecarTaken,
    /// EXIF `DateTimeOriginal` (+ `OffsetTimeOriginal`).
    Exif,
    /// A date pattern in the file name.
    FileName,
    /// The folder name (year or day folder).
    Folder,
    /// `creationTime` of the sidecar: the upload time, a flagged last resort (§8 case 48).
    SidecarCreation,
}

/// How much to trust a date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Confidence {
    /// Sidecar timestamp or EXIF.
    High,
    /// File-name pattern.
    Medium,
    /// Folder or upload time.
    Low,
}

/// A resolved capture date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaptureDate {
    /// The time.
    pub time: CaptureTime,
    /// Its source.
    pub source: DateSource,
    /// Its confidence.
    pub confidence: Confidence,
}

/// EXIF `DateTimeOriginal` with its optional `OffsetTimeOriginal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExifTime {
    /// The camera's wall clock (better for display, §4.6).
    pub local: NaiveDateTime,
    /// The offset, when the camera wrote one.
    pub offset: Option<FixedOffset>,
}

impl ExifTime {
    /// As a [`CaptureTime`]: an instant when the offset is known.
    pub fn to_capture_time(self) -> CaptureTime {
        match self
            .offset
            .and_then(|o| o.from_local_datetime(&self.local).single())
        {
            Some(dt) => CaptureTime::Instant(dt.with_timezone(&Utc)),
            None => CaptureTime::Local(self.local),
        }
    }
}

fn u16_at(b: &[u8], off: usize, le: bool) -> Option<u16> {
    let s: [u8; 2] = b.get(off..off + 2)?.try_into().ok()?;
    Some(if le {
        u16::from_le_bytes(s)
    } else {
        u16::from_be_bytes(s)
    })
}

fn u32_at(b: &[u8], off: usize, le: bool) -> Option<u32> {
    let s: [u8; 4] = b.get(off..off + 4)?.try_into().ok()?;
    Some(if le {
        u32::from_le_bytes(s)
    } else {
        u32::from_be_bytes(s)
    })
}

/// Finds an IFD entry and returns (type, count, value-or-offset field position).
fn ifd_find(tiff: &[u8], ifd: usize, tag: u16, le: bool) -> Option<(u16, u32, usize)> {
    let n = usize::from(u16_at(tiff, ifd, le)?);
    for i in 0..n.min(512) {
        let e = ifd + 2 + i * 12;
        if u16_at(tiff, e, le)? == tag {
            return Some((u16_at(tiff, e + 2, le)?, u32_at(tiff, e + 4, le)?, e + 8));
        }
    }
    None
}

fn ifd_ascii(tiff: &[u8], ifd: usize, tag: u16, le: bool) -> Option<String> {
    let (typ, count, field) = ifd_find(tiff, ifd, tag, le)?;
    if typ != 2 {
        return None;
    }
    let count = usize::try_from(count).ok()?;
    let start = if count <= 4 {
        field
    } else {
        usize::try_from(u32_at(tiff, field, le)?).ok()?
    };
    let bytes = tiff.get(start..start.checked_add(count)?)?;
    let s = std::str::from_utf8(bytes).ok()?;
    Some(s.trim_end_matches('\0').trim().to_string())
}

/// Reads `DateTimeOriginal` (+ `OffsetTimeOriginal`) from the first bytes of a JPEG.
/// Sentinel values written by broken software are ignored (§8 case 55).
pub fn exif_datetime(head: &[u8]) -> Option<ExifTime> {
    if !head.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let mut pos = 2usize;
    while pos + 4 <= head.len() {
        if head[pos] != 0xFF {
            return None;
        }
        let marker = head[pos + 1];
        if marker == 0xD8 || (0xD0..=0xD7).contains(&marker) || marker == 0x01 || marker == 0xFF {
            pos += if marker == 0xFF { 1 } else { 2 };
            continue;
        }
        if marker == 0xDA || marker == 0xD9 {
            return None; // Image data starts: no EXIF before it.
        }
        let len = usize::from(u16_at(head, pos + 2, false)?);
        let data = head.get(pos + 4..(pos + 2 + len).min(head.len()))?;
        if marker == 0xE1 && data.starts_with(b"Exif\0\0") {
            return parse_tiff(&data[6..]);
        }
        pos += 2 + len;
    }
    None
}

fn parse_tiff(tiff: &[u8]) -> Option<ExifTime> {
    let le = match tiff.get(..2)? {
        b"II" => true,
        b"MM" => false,
        _ => return None,
    };
    if u16_at(tiff, 2, le)? != 42 {
        return None;
    }
    let ifd0 = usize::try_from(u32_at(tiff, 4, le)?).ok()?;
    let (_, _, field) = ifd_find(tiff, ifd0, 0x8769, le)?;
    let exif_ifd = usize::try_from(u32_at(tiff, field, le)?).ok()?;
    let dto = ifd_ascii(tiff, exif_ifd, 0x9003, le)?;
    let local = parse_exif_clock(&dto)?;
    let offset = ifd_ascii(tiff, exif_ifd, 0x9011, le).and_then(|s| parse_offset(&s));
    Some(ExifTime { local, offset })
}

fn parse_exif_clock(s: &str) -> Option<NaiveDateTime> {
    let dt = NaiveDateTime::parse_from_str(s.get(..19)?, "%Y:%m:%d %H:%M:%S").ok()?;
    let txt = dt.format("%Y-%m-%d %H:%M:%S").to_string();
    // Sentinels seen in the field (§4.2 step 4, §8 case 55).
    const BAD: [&str; 3] = [
        "1970-01-01 00:00:00",
        "1904-01-01 00:00:00",
        "2036-01-01 23:59:59",
    ];
    if BAD.contains(&txt.as_str()) || dt.year() < 1901 {
        return None;
    }
    Some(dt)
}

fn parse_offset(s: &str) -> Option<FixedOffset> {
    let b = s.as_bytes();
    if b.len() != 6 || b[3] != b':' {
        return None;
    }
    let sign = match b[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let h: i32 = s.get(1..3)?.parse().ok()?;
    let m: i32 = s.get(4..6)?.parse().ok()?;
    FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

/// Matches `template` (`D` = ASCII digit, anything else literal) at `at` in `s`.
fn matches_at(s: &[u8], at: usize, template: &[u8]) -> bool {
    s.len() >= at + template.len()
        && template.iter().zip(&s[at..]).all(|(t, c)| {
            if *t == b'D' {
                c.is_ascii_digit()
            } else {
                t == c
            }
        })
}

fn digits(s: &[u8], at: usize, n: usize) -> Option<u32> {
    std::str::from_utf8(s.get(at..at + n)?).ok()?.parse().ok()
}

/// A date encoded in a file name (§4.5). Pixel `PXL_YYYYMMDD_HHMMSSmmm` names are UTC;
/// all other patterns are a wall clock of unknown zone.
pub fn date_from_file_name(name: &str) -> Option<CaptureTime> {
    let s = name.as_bytes();
    // (template, offsets of Y, M, D, h, m, s)
    const PATTERNS: [(&[u8], [usize; 6]); 6] = [
        (b"DDDDDDDD-DDDDDD", [0, 4, 6, 9, 11, 13]),
        (b"DDDDDDDD_DDDDDD", [0, 4, 6, 9, 11, 13]),
        (b"DDDD-DD-DD-DD-DD-DD", [0, 5, 8, 11, 14, 17]),
        (b"DDDD-DD-DD-DDDDDD", [0, 5, 8, 11, 13, 15]),
        (b"DDDDDDDDDDDDDD", [0, 4, 6, 8, 10, 12]),
        (b"DDDD_DD_DD_DD_DD_DD", [0, 5, 8, 11, 14, 17]),
    ];
    if let Some(rest) = name.strip_prefix("PXL_")
        && matches_at(rest.as_bytes(), 0, b"DDDDDDDD_DDDDDDDDD")
    {
        let r = rest.as_bytes();
        let date =
            NaiveDate::from_ymd_opt(digits(r, 0, 4)? as i32, digits(r, 4, 2)?, digits(r, 6, 2)?)?;
        let t = date.and_hms_milli_opt(
            digits(r, 9, 2)?,
            digits(r, 11, 2)?,
            digits(r, 13, 2)?,
            digits(r, 15, 3)?,
        )?;
        return Some(CaptureTime::Instant(Utc.from_utc_datetime(&t)));
    }
    for (tpl, off) in PATTERNS {
        for at in 0..s.len() {
            if at > 0 && s[at - 1].is_ascii_digit() {
                continue;
            }
            if !matches_at(s, at, tpl) {
                continue;
            }
            let y = digits(s, at + off[0], 4)?;
            if !(1800..2100).contains(&y) {
                continue;
            }
            let parsed = NaiveDate::from_ymd_opt(
                y as i32,
                digits(s, at + off[1], 2)?,
                digits(s, at + off[2], 2)?,
            )
            .and_then(|d| {
                d.and_hms_opt(
                    digits(s, at + off[3], 2)?,
                    digits(s, at + off[4], 2)?,
                    digits(s, at + off[5], 2)?,
                )
            });
            if let Some(t) = parsed {
                return Some(CaptureTime::Local(t));
            }
        }
    }
    None
}

/// A year (`Photos from 2019`, `Fotos von 2019`) or day (`2016-06-16`, `2016-06-16 #2`)
/// from a timeline folder name (§2.2).
pub fn date_from_folder_name(folder: &str) -> Option<CaptureTime> {
    let s = folder.as_bytes();
    if matches_at(s, 0, b"DDDD-DD-DD") && (s.len() == 10 || s[10] == b' ') {
        let d =
            NaiveDate::from_ymd_opt(digits(s, 0, 4)? as i32, digits(s, 5, 2)?, digits(s, 8, 2)?)?;
        return Some(CaptureTime::Day(d));
    }
    if s.len() >= 4 {
        let at = s.len() - 4;
        let before_ok = at == 0 || s[at - 1] == b' ';
        if before_ok && matches_at(s, at, b"DDDD") {
            let y = digits(s, at, 4)?;
            if (1800..2100).contains(&y) {
                return Some(CaptureTime::Year(y as i32));
            }
        }
    }
    None
}

/// Epoch seconds to an instant.
pub fn instant_from_epoch(secs: i64) -> Option<DateTime<Utc>> {
    DateTime::<Utc>::from_timestamp(secs, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(s: &str) -> CaptureTime {
        CaptureTime::Local(NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap())
    }

    #[test]
    fn file_names_case_54() {
        // §8 case 54, every example.
        assert_eq!(
            date_from_file_name("PXL_20230809_203449253.jpg"),
            Some(CaptureTime::Instant(
                "2023-08-09T20:34:49.253Z".parse().unwrap()
            ))
        );
        assert_eq!(
            date_from_file_name("IMG_20190509_154733-edited.jpg"),
            Some(local("2019-05-09 15:47:33"))
        );
        assert_eq!(
            date_from_file_name("Screenshot_2019-04-16-11-19-37-232_com.jpg"),
            Some(local("2019-04-16 11:19:37"))
        );
        assert_eq!(
            date_from_file_name("signal-2020-10-26-163832.jpg"),
            Some(local("2020-10-26 16:38:32"))
        );
        assert_eq!(
            date_from_file_name("201801261147521000.jpg"),
            Some(local("2018-01-26 11:47:52"))
        );
        assert_eq!(
            date_from_file_name("2016_01_30_11_49_15.mp4"),
            Some(local("2016-01-30 11:49:15"))
        );
        assert_eq!(
            date_from_file_name("00004XTR_00004_BURST20190216172030.jpg"),
            Some(local("2019-02-16 17:20:30"))
        );
        assert_eq!(date_from_file_name("tia3059641059518022454.gif"), None);
    }

    #[test]
    fn folders() {
        assert_eq!(
            date_from_folder_name("Photos from 2019"),
            Some(CaptureTime::Year(2019))
        );
        assert_eq!(
            date_from_folder_name("Fotos von 2019"),
            Some(CaptureTime::Year(2019))
        );
        assert_eq!(
            date_from_folder_name("2016-06-16 #2"),
            Some(CaptureTime::Day(
                NaiveDate::from_ymd_opt(2016, 6, 16).unwrap()
            ))
        );
        assert_eq!(date_from_folder_name("Trip 12019"), None);
    }
}
