//! Deterministic media bytes: JPEG-shaped photos with a real EXIF block and MP4-shaped videos.
//!
//! Nothing is stored: every rendition is a pure function of (seed, item sequence number, item
//! metadata, rendition), so a 100,000-item library costs no media memory. The photo "original"
//! carries a GPS IFD; the `=d` download is the same file without it, as Google strips location
//! (spec §1.4). The `=dv` video is a "transcode": a different brand and different payload bytes.

use chrono::{DateTime, Datelike, TimeDelta, Timelike, Utc};

use crate::rng::SplitMix64;

/// Parameters appended to a base URL after `=` (spec §6.4), e.g. `w2048-h1024-c`, `d`, `dv`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MediaParams {
    /// `w<N>`: bounding-box width.
    pub width: Option<u32>,
    /// `h<N>`: bounding-box height.
    pub height: Option<u32>,
    /// `c`: crop to exactly the box.
    pub crop: bool,
    /// `d`: download the image (with its EXIF minus location).
    pub download: bool,
    /// `dv`: download the video bytes.
    pub video_download: bool,
    /// `no`: no play-button overlay on video thumbnails.
    pub no_overlay: bool,
}

impl MediaParams {
    /// Parses the part after `=`; an empty string means "no parameters".
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut p = MediaParams::default();
        if s.is_empty() {
            return Ok(p);
        }
        for part in s.split('-') {
            match part {
                "c" => p.crop = true,
                "d" => p.download = true,
                "dv" => p.video_download = true,
                "no" => p.no_overlay = true,
                _ => {
                    let (letter, digits) = part.split_at(part.len().min(1));
                    let n: u32 = digits
                        .parse()
                        .map_err(|_| format!("unknown base URL parameter {part:?}"))?;
                    match letter {
                        "w" => p.width = Some(n),
                        "h" => p.height = Some(n),
                        "s" => {
                            p.width = Some(n);
                            p.height = Some(n);
                        }
                        _ => return Err(format!("unknown base URL parameter {part:?}")),
                    }
                }
            }
        }
        Ok(p)
    }
}

/// Which bytes a request resolves to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rendition {
    /// The camera original (photo with GPS EXIF; untouched video). Never served by the API.
    Original,
    /// `=d` on a photo: original minus GPS.
    Download,
    /// `=dv` on a video: transcoded bytes.
    Transcoded,
    /// A resized JPEG (photos with `w`/`h`, video thumbnails, bare base URLs).
    Scaled { width: u32, height: u32 },
}

/// Everything the byte generator needs to know about one item.
#[derive(Debug, Clone)]
pub(crate) struct MediaSpec<'a> {
    pub seed: u64,
    pub seq: u32,
    pub is_video: bool,
    pub quicktime: bool,
    pub creation: DateTime<Utc>,
    pub tz_offset_min: i16,
    pub width: u32,
    pub height: u32,
    pub camera: Option<(&'a str, &'a str)>,
    pub photo_bytes: (usize, usize),
    pub video_bytes: (usize, usize),
}

/// Chooses the rendition for `params`, or an error message for nonsense such as `=dv` on a photo.
pub(crate) fn resolve(spec: &MediaSpec<'_>, params: &MediaParams) -> Result<Rendition, String> {
    if spec.is_video {
        if params.video_download {
            return Ok(Rendition::Transcoded);
        }
    } else {
        if params.video_download {
            return Err("dv requested on a photo".to_owned());
        }
        if params.download && params.width.is_none() && params.height.is_none() {
            return Ok(Rendition::Download);
        }
    }
    // A bare base URL gets a small default rendition (spec §6.4, unverified real behaviour).
    let (bw, bh) = match (params.width, params.height) {
        (None, None) => (512, 512),
        (w, h) => (w.unwrap_or(u32::MAX), h.unwrap_or(u32::MAX)),
    };
    let (width, height) = if params.crop {
        (bw.min(spec.width), bh.min(spec.height))
    } else {
        fit(spec.width, spec.height, bw, bh)
    };
    Ok(Rendition::Scaled {
        width: width.max(1),
        height: height.max(1),
    })
}

fn fit(w: u32, h: u32, bw: u32, bh: u32) -> (u32, u32) {
    if w <= bw && h <= bh {
        return (w, h);
    }
    let sx = f64::from(bw) / f64::from(w);
    let sy = f64::from(bh) / f64::from(h);
    let s = sx.min(sy);
    (
        (f64::from(w) * s).round() as u32,
        (f64::from(h) * s).round() as u32,
    )
}

/// The bytes and Content-Type of a rendition.
pub(crate) fn render(spec: &MediaSpec<'_>, rendition: Rendition) -> (Vec<u8>, &'static str) {
    let mut sizes = SplitMix64::derive(spec.seed, "size", u64::from(spec.seq));
    match rendition {
        Rendition::Original | Rendition::Download if !spec.is_video => {
            let total = sizes.range(spec.photo_bytes.0 as u64, spec.photo_bytes.1 as u64) as usize;
            let tiff = exif_tiff(spec, rendition == Rendition::Original);
            (
                jpeg(spec, Some(&tiff), spec.width, spec.height, total),
                "image/jpeg",
            )
        }
        Rendition::Original | Rendition::Download | Rendition::Transcoded if spec.is_video => {
            let total = sizes.range(spec.video_bytes.0 as u64, spec.video_bytes.1 as u64) as usize;
            let mime = if spec.quicktime {
                "video/quicktime"
            } else {
                "video/mp4"
            };
            if rendition == Rendition::Transcoded {
                // Transcodes come out smaller and always as MP4 (spec §1.4: "transcoded version").
                let t = total * (60 + sizes.below(30) as usize) / 100;
                (mp4(spec, b"mp42", "transcoded", t), "video/mp4")
            } else {
                let brand = if spec.quicktime { b"qt  " } else { b"isom" };
                (mp4(spec, brand, "original", total), mime)
            }
        }
        Rendition::Scaled { width, height } => {
            let area = u64::from(width) * u64::from(height);
            let total = (area / 6).clamp(1024, 512 * 1024) as usize;
            (jpeg(spec, None, width, height, total), "image/jpeg")
        }
        // Transcoded on a photo is rejected by `resolve`; serve the download if asked directly.
        _ => render(spec, Rendition::Download),
    }
}

/// Bytes that stand in for a video that is still PROCESSING.
pub(crate) fn processing_placeholder() -> Vec<u8> {
    b"video is still processing".to_vec()
}

fn jpeg(
    spec: &MediaSpec<'_>,
    tiff: Option<&[u8]>,
    width: u32,
    height: u32,
    total: usize,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(total.max(256));
    out.extend_from_slice(&[0xFF, 0xD8]);
    if let Some(tiff) = tiff {
        segment(&mut out, 0xE1, &[b"Exif\0\0".as_slice(), tiff].concat());
    }
    let comment = format!("fake-google seed={} item={}", spec.seed, spec.seq);
    segment(&mut out, 0xFE, comment.as_bytes());
    // SOF0 so that tools reading dimensions from the header find the right ones.
    let (w, h) = (width.min(65_535) as u16, height.min(65_535) as u16);
    let mut sof = vec![8];
    sof.extend_from_slice(&h.to_be_bytes());
    sof.extend_from_slice(&w.to_be_bytes());
    sof.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
    segment(&mut out, 0xC0, &sof);
    segment(&mut out, 0xDA, &[3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0]);
    // Entropy-coded filler: the same stream for every rendition of an item, without 0xFF so no
    // marker appears inside it.
    let fill = total.saturating_sub(out.len() + 2).max(16);
    let start = out.len();
    out.resize(start + fill, 0);
    let mut rng = SplitMix64::derive(spec.seed, "jpeg", u64::from(spec.seq));
    rng.fill(&mut out[start..]);
    for b in &mut out[start..] {
        if *b == 0xFF {
            *b = 0xFE;
        }
    }
    out.extend_from_slice(&[0xFF, 0xD9]);
    out
}

fn segment(out: &mut Vec<u8>, marker: u8, payload: &[u8]) {
    out.extend_from_slice(&[0xFF, marker]);
    out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(payload);
}

// --- Minimal little-endian TIFF/EXIF writer ---------------------------------------------------

const ASCII: u16 = 2;
const SHORT: u16 = 3;
const LONG: u16 = 4;
const RATIONAL: u16 = 5;
const BYTE: u16 = 1;

struct Entry {
    tag: u16,
    kind: u16,
    count: u32,
    data: Vec<u8>,
}

fn ascii(tag: u16, s: &str) -> Entry {
    let mut data = s.as_bytes().to_vec();
    data.push(0);
    Entry {
        tag,
        kind: ASCII,
        count: data.len() as u32,
        data,
    }
}

fn long(tag: u16, v: u32) -> Entry {
    Entry {
        tag,
        kind: LONG,
        count: 1,
        data: v.to_le_bytes().to_vec(),
    }
}

fn rationals(tag: u16, vals: &[(u32, u32)]) -> Entry {
    let mut data = Vec::new();
    for (n, d) in vals {
        data.extend_from_slice(&n.to_le_bytes());
        data.extend_from_slice(&d.to_le_bytes());
    }
    Entry {
        tag,
        kind: RATIONAL,
        count: vals.len() as u32,
        data,
    }
}

/// Size of an IFD including its out-of-line values.
fn ifd_len(entries: &[Entry]) -> usize {
    let extra: usize = entries
        .iter()
        .filter(|e| e.data.len() > 4)
        .map(|e| e.data.len().next_multiple_of(2))
        .sum();
    2 + 12 * entries.len() + 4 + extra
}

/// Writes an IFD that starts at TIFF offset `at`.
fn write_ifd(out: &mut Vec<u8>, at: usize, entries: &[Entry]) {
    let mut data_at = at + 2 + 12 * entries.len() + 4;
    let mut data = Vec::new();
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    for e in entries {
        out.extend_from_slice(&e.tag.to_le_bytes());
        out.extend_from_slice(&e.kind.to_le_bytes());
        out.extend_from_slice(&e.count.to_le_bytes());
        if e.data.len() <= 4 {
            let mut inline = [0u8; 4];
            inline[..e.data.len()].copy_from_slice(&e.data);
            out.extend_from_slice(&inline);
        } else {
            out.extend_from_slice(&(data_at as u32).to_le_bytes());
            data.extend_from_slice(&e.data);
            if e.data.len() % 2 == 1 {
                data.push(0);
            }
            data_at += e.data.len().next_multiple_of(2);
        }
    }
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&data);
}

/// The TIFF body of the APP1 Exif segment. DateTimeOriginal is local time at the item's UTC
/// offset, with OffsetTimeOriginal saying which, exactly as cameras write it; local − offset is
/// the item's `creationTime`.
fn exif_tiff(spec: &MediaSpec<'_>, with_gps: bool) -> Vec<u8> {
    let local = spec.creation + TimeDelta::minutes(i64::from(spec.tz_offset_min));
    let stamp = format!(
        "{:04}:{:02}:{:02} {:02}:{:02}:{:02}",
        local.year(),
        local.month(),
        local.day(),
        local.hour(),
        local.minute(),
        local.second()
    );
    let off = i32::from(spec.tz_offset_min);
    let offset = format!(
        "{}{:02}:{:02}",
        if off < 0 { '-' } else { '+' },
        off.abs() / 60,
        off.abs() % 60
    );

    let mut exif = vec![
        ascii(0x9003, &stamp),
        ascii(0x9004, &stamp),
        ascii(0x9011, &offset),
        long(0xA002, spec.width),
        long(0xA003, spec.height),
    ];
    let millis = spec.creation.timestamp_subsec_millis();
    if millis != 0 {
        // SubSecTimeOriginal: the fraction DateTimeOriginal cannot hold.
        exif.push(ascii(0x9291, &format!("{millis:03}")));
    }
    exif.sort_by_key(|e| e.tag);

    let (lat, lon) = gps_micro_degrees(spec.seed, spec.seq);
    let gps = vec![
        Entry {
            tag: 0x0000,
            kind: BYTE,
            count: 4,
            data: vec![2, 3, 0, 0],
        },
        ascii(0x0001, if lat < 0 { "S" } else { "N" }),
        rationals(0x0002, &dms(lat.unsigned_abs())),
        ascii(0x0003, if lon < 0 { "W" } else { "E" }),
        rationals(0x0004, &dms(lon.unsigned_abs())),
    ];

    let (make, model) = spec.camera.unwrap_or(("", ""));
    let mut ifd0 = Vec::new();
    if !make.is_empty() {
        ifd0.push(ascii(0x010F, make));
        ifd0.push(ascii(0x0110, model));
    }
    ifd0.push(Entry {
        tag: 0x0112,
        kind: SHORT,
        count: 1,
        data: 1u16.to_le_bytes().to_vec(),
    });
    ifd0.push(ascii(0x0132, &stamp));
    ifd0.push(long(0x8769, 0)); // patched below
    if with_gps {
        ifd0.push(long(0x8825, 0)); // patched below
    }

    let ifd0_at = 8;
    let exif_at = ifd0_at + ifd_len(&ifd0);
    let gps_at = exif_at + ifd_len(&exif);
    for e in &mut ifd0 {
        match e.tag {
            0x8769 => e.data = (exif_at as u32).to_le_bytes().to_vec(),
            0x8825 => e.data = (gps_at as u32).to_le_bytes().to_vec(),
            _ => {}
        }
    }

    let mut out = b"II*\0".to_vec();
    out.extend_from_slice(&(ifd0_at as u32).to_le_bytes());
    write_ifd(&mut out, ifd0_at, &ifd0);
    write_ifd(&mut out, exif_at, &exif);
    if with_gps {
        write_ifd(&mut out, gps_at, &gps);
    }
    out
}

/// Where a photo was taken, in micro-degrees (latitude, longitude); only the original carries it.
pub(crate) fn gps_micro_degrees(seed: u64, seq: u32) -> (i64, i64) {
    let mut rng = SplitMix64::derive(seed, "gps", u64::from(seq));
    let lat = rng.range(0, 130_000_000) as i64 - 60_000_000;
    let lon = rng.range(0, 360_000_000) as i64 - 180_000_000;
    (lat, lon)
}

/// Micro-degrees to degrees/minutes/seconds rationals.
fn dms(micro: u64) -> [(u32, u32); 3] {
    let deg = micro / 1_000_000;
    let rem_min = (micro % 1_000_000) * 60;
    let min = rem_min / 1_000_000;
    let sec_centi = (rem_min % 1_000_000) * 60 / 10_000;
    [(deg as u32, 1), (min as u32, 1), (sec_centi as u32, 100)]
}

// --- MP4 ------------------------------------------------------------------------------------

fn mp4(spec: &MediaSpec<'_>, brand: &[u8; 4], stream: &str, total: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(total.max(256));
    // ftyp first, as every MP4/QuickTime reader expects.
    let mut ftyp = brand.to_vec();
    ftyp.extend_from_slice(&0x200u32.to_be_bytes());
    for b in [brand, b"isom", b"iso2", b"mp41"] {
        ftyp.extend_from_slice(b);
    }
    mp4_box(&mut out, b"ftyp", &ftyp);

    // moov/mvhd carries the creation time (seconds since 1904) that video tools read.
    let since_1904 =
        (spec.creation.timestamp() + 2_082_844_800).clamp(0, i64::from(u32::MAX)) as u32;
    let mut mvhd = vec![0u8; 4];
    mvhd.extend_from_slice(&since_1904.to_be_bytes());
    mvhd.extend_from_slice(&since_1904.to_be_bytes());
    mvhd.extend_from_slice(&1000u32.to_be_bytes());
    let duration_ms = 1000 + (spec.seq % 60) * 1000;
    mvhd.extend_from_slice(&duration_ms.to_be_bytes());
    mvhd.extend_from_slice(&0x0001_0000u32.to_be_bytes());
    mvhd.extend_from_slice(&0x0100u16.to_be_bytes());
    mvhd.extend_from_slice(&[0u8; 10]);
    for v in [0x0001_0000u32, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] {
        mvhd.extend_from_slice(&v.to_be_bytes());
    }
    mvhd.extend_from_slice(&[0u8; 24]);
    mvhd.extend_from_slice(&2u32.to_be_bytes());
    let mut moov = Vec::new();
    mp4_box(&mut moov, b"mvhd", &mvhd);
    mp4_box(&mut out, b"moov", &moov);

    let payload_len = total.saturating_sub(out.len() + 8).max(16);
    let mut payload = vec![0u8; payload_len];
    SplitMix64::derive(spec.seed, stream, u64::from(spec.seq)).fill(&mut payload);
    mp4_box(&mut out, b"mdat", &payload);
    out
}

fn mp4_box(out: &mut Vec<u8>, kind: &[u8; 4], payload: &[u8]) {
    out.extend_from_slice(&((payload.len() + 8) as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn spec(is_video: bool) -> MediaSpec<'static> {
        MediaSpec {
            seed: 1,
            seq: 3,
            is_video,
            quicktime: false,
            creation: Utc.with_ymd_and_hms(2021, 7, 4, 10, 30, 0).unwrap(),
            tz_offset_min: 120,
            width: 4032,
            height: 3024,
            camera: Some(("Google", "Pixel 7")),
            photo_bytes: (4000, 6000),
            video_bytes: (8000, 9000),
        }
    }

    #[test]
    fn params_parse() {
        let p = MediaParams::parse("w100-h200-c").unwrap();
        assert_eq!((p.width, p.height, p.crop), (Some(100), Some(200), true));
        assert!(MediaParams::parse("dv").unwrap().video_download);
        assert!(MediaParams::parse("x").is_err());
        assert!(MediaParams::parse("w").is_err());
    }

    #[test]
    fn photo_download_is_original_minus_gps() {
        let s = spec(false);
        let (orig, ct) = render(&s, Rendition::Original);
        let (down, _) = render(&s, Rendition::Download);
        assert_eq!(ct, "image/jpeg");
        assert_eq!(&orig[..2], &[0xFF, 0xD8]);
        assert_eq!(&orig[orig.len() - 2..], &[0xFF, 0xD9]);
        assert!(orig.len() >= 4000 && orig.len() <= 6000, "{}", orig.len());
        assert_ne!(orig, down);
        // The GPS pointer tag 0x8825 (LE: 25 88) is present in the original's IFD0 only.
        let has_gps_tag = |b: &[u8]| {
            b.windows(4)
                .take(200)
                .any(|w| w == [0x25, 0x88, 0x04, 0x00])
        };
        assert!(has_gps_tag(&orig));
        assert!(!has_gps_tag(&down));
        // DateTimeOriginal is local time (UTC+2).
        let needle = b"2021:07:04 12:30:00";
        assert!(down.windows(needle.len()).any(|w| w == needle));
    }

    #[test]
    fn video_transcode_differs() {
        let s = spec(true);
        let (orig, _) = render(&s, Rendition::Original);
        let (tr, ct) = render(&s, Rendition::Transcoded);
        assert_eq!(&orig[4..8], b"ftyp");
        assert_eq!(&tr[4..8], b"ftyp");
        assert_eq!(ct, "video/mp4");
        assert_ne!(orig, tr);
    }

    #[test]
    fn fit_keeps_aspect() {
        assert_eq!(fit(4000, 3000, 400, 400), (400, 300));
        assert_eq!(fit(100, 50, 400, 400), (100, 50));
    }
}
