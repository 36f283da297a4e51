//! Media host: renditions, EXIF, expiry, Range, picker auth (spec §1.4, §6.4).

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{base_url_of, body, client, first_photo, status};
use fake_google::{FakeConfig, FakeGoogle, ProcessingVideoResponse, VideoStatus};

/// A minimal EXIF reader, independent of the writer: returns (tags of IFD0, tags of the Exif
/// IFD with ASCII values) from a JPEG's APP1 segment.
fn exif_tags(jpeg: &[u8]) -> (Vec<u16>, Vec<(u16, String)>) {
    assert_eq!(&jpeg[..2], &[0xFF, 0xD8]);
    let mut i = 2;
    while i + 4 <= jpeg.len() {
        assert_eq!(jpeg[i], 0xFF);
        let marker = jpeg[i + 1];
        let len = u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]) as usize;
        let payload = &jpeg[i + 4..i + 2 + len];
        if marker == 0xE1 && payload.starts_with(b"Exif\0\0") {
            let t = &payload[6..];
            assert_eq!(&t[..4], b"II*\0");
            let u16_at = |o: usize| u16::from_le_bytes([t[o], t[o + 1]]);
            let u32_at =
                |o: usize| u32::from_le_bytes([t[o], t[o + 1], t[o + 2], t[o + 3]]) as usize;
            let ifd = |at: usize| -> Vec<(u16, u16, usize, usize)> {
                (0..u16_at(at) as usize)
                    .map(|k| {
                        let e = at + 2 + 12 * k;
                        (u16_at(e), u16_at(e + 2), u32_at(e + 4), e + 8)
                    })
                    .collect()
            };
            let ifd0 = ifd(u32_at(4));
            let exif_ptr = ifd0
                .iter()
                .find(|e| e.0 == 0x8769)
                .map(|e| u32_at(e.3))
                .unwrap();
            let exif: Vec<(u16, String)> = ifd(exif_ptr)
                .into_iter()
                .filter(|e| e.1 == 2)
                .map(|(tag, _, count, val)| {
                    let at = if count <= 4 { val } else { u32_at(val) };
                    (
                        tag,
                        String::from_utf8(t[at..at + count - 1].to_vec()).unwrap(),
                    )
                })
                .collect();
            return (ifd0.iter().map(|e| e.0).collect(), exif);
        }
        i += 2 + len;
    }
    panic!("no EXIF segment");
}

#[tokio::test]
async fn photo_download_matches_library_and_strips_gps() {
    let fake = FakeGoogle::start(FakeConfig::with_items(40)).await.unwrap();
    // A photo with a sub-second capture time exercises SubSecTimeOriginal as well.
    let item = fake
        .library()
        .items()
        .into_iter()
        .find(|i| !i.is_video && i.creation_time.timestamp_subsec_millis() != 0)
        .unwrap();
    let base = base_url_of(&fake, &item.id).await;
    let r = client().get(format!("{base}=d")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    let len: usize = r.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body = r.bytes().await.unwrap();
    assert_eq!(body.len(), len);
    assert_eq!(
        body.to_vec(),
        fake.library().download_bytes(&item.id, "d").unwrap()
    );

    let original = fake.library().original_bytes(&item.id).unwrap();
    let (ifd0_orig, _) = exif_tags(&original);
    let (ifd0_down, exif_down) = exif_tags(&body);
    assert!(ifd0_orig.contains(&0x8825), "original has a GPS IFD");
    assert!(
        !ifd0_down.contains(&0x8825),
        "=d strips location (spec §1.4)"
    );
    // DateTimeOriginal is local time; with OffsetTimeOriginal it gives back creationTime.
    let dto = exif_down
        .iter()
        .find(|(t, _)| *t == 0x9003)
        .unwrap()
        .1
        .clone();
    let off = exif_down
        .iter()
        .find(|(t, _)| *t == 0x9011)
        .unwrap()
        .1
        .clone();
    let subsec = exif_down
        .iter()
        .find(|(t, _)| *t == 0x9291)
        .map_or("000".to_owned(), |(_, v)| v.clone());
    let local = chrono::DateTime::parse_from_str(
        &format!("{dto}.{subsec} {off}"),
        "%Y:%m:%d %H:%M:%S%.3f %:z",
    )
    .unwrap();
    assert_eq!(local, item.creation_time);
}

#[tokio::test]
async fn video_dv_is_transcoded_and_processing_videos_fail() {
    let fake = FakeGoogle::start(FakeConfig::with_items(60)).await.unwrap();
    let items = fake.library().items();
    let ready = items
        .iter()
        .find(|i| i.video_status == Some(VideoStatus::Ready))
        .unwrap();
    let base = base_url_of(&fake, &ready.id).await;
    let r = client().get(format!("{base}=dv")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "video/mp4");
    let body = r.bytes().await.unwrap().to_vec();
    assert_eq!(&body[4..8], b"ftyp");
    assert_eq!(
        body,
        fake.library().download_bytes(&ready.id, "dv").unwrap()
    );
    assert_ne!(body, fake.library().original_bytes(&ready.id).unwrap());

    let processing = items
        .iter()
        .find(|i| i.video_status == Some(VideoStatus::Processing))
        .unwrap();
    let base = base_url_of(&fake, &processing.id).await;
    assert_eq!(status(&format!("{base}=dv")).await, 404);
    assert!(fake.set_video_ready(&processing.id));
    assert_eq!(status(&format!("{base}=dv")).await, 200);

    let cfg = FakeConfig {
        processing_video: ProcessingVideoResponse::Forbidden,
        ..FakeConfig::with_items(60)
    };
    let fake = FakeGoogle::start(cfg).await.unwrap();
    let processing = fake
        .library()
        .items()
        .into_iter()
        .find(|i| i.video_status == Some(VideoStatus::Processing))
        .unwrap();
    let base = base_url_of(&fake, &processing.id).await;
    assert_eq!(status(&format!("{base}=dv")).await, 403);
}

#[tokio::test]
async fn sized_renditions_and_bad_params() {
    let fake = FakeGoogle::start(FakeConfig::with_items(40)).await.unwrap();
    let item = first_photo(&fake);
    let base = base_url_of(&fake, &item.id).await;
    let small = body(&format!("{base}=w200-h200")).await;
    assert_eq!(&small[..2], &[0xFF, 0xD8]);
    assert_eq!(
        small.to_vec(),
        fake.library()
            .download_bytes(&item.id, "w200-h200")
            .unwrap()
    );
    assert_ne!(
        small.to_vec(),
        fake.library().download_bytes(&item.id, "d").unwrap()
    );
    assert_eq!(status(&format!("{base}=dv")).await, 400);
    assert_eq!(status(&format!("{base}=zz")).await, 400);
    let bare = client().get(&base).send().await.unwrap();
    assert_eq!(bare.status(), 200);
    let tampered = format!("{}x=d", base);
    assert_eq!(status(&tampered).await, 404);
}

#[tokio::test]
async fn base_urls_expire_after_sixty_minutes_on_the_fake_clock() {
    let fake = FakeGoogle::start(FakeConfig::with_items(30)).await.unwrap();
    let item = first_photo(&fake);
    let base = base_url_of(&fake, &item.id).await;
    fake.clock().advance(Duration::from_secs(59 * 60 + 59));
    assert_eq!(status(&format!("{base}=d")).await, 200);
    fake.clock().advance(Duration::from_secs(1));
    assert_eq!(status(&format!("{base}=d")).await, 403);
    // A re-fetched item carries a fresh URL.
    let fresh = base_url_of(&fake, &item.id).await;
    assert_eq!(status(&format!("{fresh}=d")).await, 200);
}

#[tokio::test]
async fn range_requests_resume_downloads() {
    let fake = FakeGoogle::start(FakeConfig::with_items(30)).await.unwrap();
    let item = first_photo(&fake);
    let full = fake.library().download_bytes(&item.id, "d").unwrap();
    let base = base_url_of(&fake, &item.id).await;
    let r = client()
        .get(format!("{base}=d"))
        .header("range", "bytes=100-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes 100-{}/{}", full.len() - 1, full.len()).as_str()
    );
    assert_eq!(r.bytes().await.unwrap().to_vec(), full[100..].to_vec());
    let r = client()
        .get(format!("{base}=d"))
        .header("range", format!("bytes={}-", full.len()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 416);
}

#[tokio::test]
async fn removed_items_404() {
    let fake = FakeGoogle::start(FakeConfig::with_items(30)).await.unwrap();
    let item = fake.library().items()[3].clone();
    let base = base_url_of(&fake, &item.id).await;
    fake.remove_item(&item.id);
    assert_eq!(status(&format!("{base}=d")).await, 404);
}

#[tokio::test]
async fn stats_count_media_bytes() {
    let fake = FakeGoogle::start(FakeConfig::with_items(30)).await.unwrap();
    let item = first_photo(&fake);
    let base = base_url_of(&fake, &item.id).await;
    let body = body(&format!("{base}=d")).await;
    let s = fake.stats();
    assert_eq!(s.media_requests, 1);
    assert_eq!(s.media_bytes, body.len() as u64);
    assert_eq!(s.requests_to(fake_google::EndpointKind::LibraryGet), 1);
}

#[tokio::test]
async fn head_reports_length_without_body() {
    let fake = FakeGoogle::start(FakeConfig::with_items(30)).await.unwrap();
    let item = first_photo(&fake);
    let full = fake.library().download_bytes(&item.id, "d").unwrap();
    let base = base_url_of(&fake, &item.id).await;
    let r = client().head(format!("{base}=d")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-length"],
        full.len().to_string().as_str()
    );
    assert!(r.bytes().await.unwrap().is_empty());
}

/// Reads (latitude, longitude) from the GPS IFD of a JPEG's EXIF, independently of the writer.
fn gps_of(jpeg: &[u8]) -> Option<(f64, f64)> {
    let start = jpeg.windows(6).position(|w| w == b"Exif\0\0")? + 6;
    let t = &jpeg[start..];
    let u16_at = |o: usize| u16::from_le_bytes([t[o], t[o + 1]]);
    let u32_at = |o: usize| u32::from_le_bytes([t[o], t[o + 1], t[o + 2], t[o + 3]]) as usize;
    let entries = |at: usize| (0..u16_at(at) as usize).map(move |k| at + 2 + 12 * k);
    let gps = entries(u32_at(4))
        .find(|e| u16_at(*e) == 0x8825)
        .map(|e| u32_at(e + 8))?;
    let mut lat = (0.0, 'N');
    let mut lon = (0.0, 'E');
    for e in entries(gps) {
        let dms = |e: usize| {
            let at = u32_at(e + 8);
            let r = |i: usize| u32_at(at + 8 * i) as f64 / u32_at(at + 8 * i + 4) as f64;
            r(0) + r(1) / 60.0 + r(2) / 3600.0
        };
        match u16_at(e) {
            1 => lat.1 = t[e + 8] as char,
            2 => lat.0 = dms(e),
            3 => lon.1 = t[e + 8] as char,
            4 => lon.0 = dms(e),
            _ => {}
        }
    }
    let sign = |(v, r): (f64, char)| if r == 'S' || r == 'W' { -v } else { v };
    Some((sign(lat), sign(lon)))
}

#[tokio::test]
async fn original_gps_matches_the_reported_location() {
    let fake = FakeGoogle::start(FakeConfig::with_items(30)).await.unwrap();
    for item in fake
        .library()
        .items()
        .iter()
        .filter(|i| !i.is_video)
        .take(10)
    {
        let loc = item.location.unwrap();
        let (lat, lon) = gps_of(&fake.library().original_bytes(&item.id).unwrap()).unwrap();
        assert!(
            (lat - loc.latitude).abs() < 1e-5,
            "{lat} vs {}",
            loc.latitude
        );
        assert!(
            (lon - loc.longitude).abs() < 1e-5,
            "{lon} vs {}",
            loc.longitude
        );
        assert_eq!(
            gps_of(&fake.library().download_bytes(&item.id, "d").unwrap()),
            None
        );
    }
    assert!(
        fake.library()
            .items()
            .iter()
            .filter(|i| i.is_video)
            .all(|i| i.location.is_none())
    );
}
