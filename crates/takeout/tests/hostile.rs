//! Hostile and broken archives: traversal, absolute paths, links, bombs, truncation,
//! corruption. Every case must cost at most the entry (zip) or the part (tgz), never the run.
#![allow(clippy::unwrap_used)] // Helper fns here are test code; a panic is the failure.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

use common::*;
use takeout::{
    Catalog, ImportOptions, LimitViolation, Limits, PartNumber, PathRejection, SkipReason,
};

fn tgz_raw(path: &Path, entries: &[(&[u8], tar::EntryType, Vec<u8>)]) {
    let f = std::fs::File::create(path).unwrap();
    let gz = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
    let mut t = tar::Builder::new(gz);
    for (name, kind, data) in entries {
        let mut h = tar::Header::new_gnu();
        // Raw name bytes: the tar crate's own setters refuse `..`, a real attacker does not.
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(*kind);
        if matches!(kind, tar::EntryType::Symlink | tar::EntryType::Link) {
            h.set_link_name("target.jpg").unwrap();
        }
        h.set_cksum();
        t.append(&h, data.as_slice()).unwrap();
    }
    t.into_inner().unwrap().finish().unwrap();
}

fn reasons(c: &Catalog) -> Vec<(String, SkipReason)> {
    c.report()
        .skipped
        .iter()
        .map(|s| (s.name.clone(), s.reason.clone()))
        .collect()
}

fn part_path(dir: &Path, n: u32, ext: &str) -> PathBuf {
    dir.join(format!("takeout-20240525T201456Z-{n:03}.{ext}"))
}

#[test]
fn tgz_traversal_absolute_links_devices_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let p = part_path(dir.path(), 1, "tgz");
    let f = format!("{GP}/F");
    let ok = format!("{f}/ok.jpg");
    tgz_raw(
        &p,
        &[
            (b"../evil.jpg", tar::EntryType::Regular, jpeg("evil")),
            (
                b"/etc/cron.d/evil.jpg",
                tar::EntryType::Regular,
                jpeg("abs"),
            ),
            (
                b"Takeout\\..\\..\\evil.jpg",
                tar::EntryType::Regular,
                jpeg("bs"),
            ),
            (
                format!("{f}/link.jpg").as_bytes(),
                tar::EntryType::Symlink,
                vec![],
            ),
            (
                format!("{f}/hard.jpg").as_bytes(),
                tar::EntryType::Link,
                vec![],
            ),
            (
                format!("{f}/dev.jpg").as_bytes(),
                tar::EntryType::Char,
                vec![],
            ),
            (
                format!("{f}/fifo.jpg").as_bytes(),
                tar::EntryType::Fifo,
                vec![],
            ),
            (ok.as_bytes(), tar::EntryType::Regular, jpeg("ok")),
        ],
    );
    let run = import_paths(&[p], &ImportOptions::default());
    assert_eq!(run.streamed.len(), 1);
    assert_eq!(run.streamed[0].0.file_name, "ok.jpg");
    let r: Vec<SkipReason> = reasons(&run.catalog).into_iter().map(|x| x.1).collect();
    assert_eq!(
        r,
        [
            SkipReason::UnsafePath(PathRejection::ParentComponent),
            SkipReason::UnsafePath(PathRejection::Absolute),
            SkipReason::UnsafePath(PathRejection::ParentComponent),
            SkipReason::Symlink,
            SkipReason::HardLink,
            SkipReason::Device,
            SkipReason::Fifo,
        ]
    );
}

#[test]
fn zip_symlink_drive_letter_and_backslash_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let p = part_path(dir.path(), 1, "zip");
    let f = std::fs::File::create(&p).unwrap();
    let mut z = zip::ZipWriter::new(f);
    let o = zip::write::SimpleFileOptions::default();
    z.add_symlink(format!("{GP}/F/link.jpg"), "/etc/passwd", o)
        .unwrap();
    for name in ["C:/Windows/evil.jpg", "..\\evil.jpg", "a/\0/b.jpg"] {
        z.start_file(name, o).unwrap();
        z.write_all(&jpeg(name)).unwrap();
    }
    z.start_file(format!("{GP}/F/ok.jpg"), o).unwrap();
    z.write_all(&jpeg("ok")).unwrap();
    z.finish().unwrap();
    let run = import_paths(&[p], &ImportOptions::default());
    assert_eq!(run.streamed.len(), 1);
    let r: Vec<SkipReason> = reasons(&run.catalog).into_iter().map(|x| x.1).collect();
    assert_eq!(
        r,
        [
            SkipReason::Symlink,
            SkipReason::UnsafePath(PathRejection::DriveLetter),
            SkipReason::UnsafePath(PathRejection::ParentComponent),
            SkipReason::UnsafePath(PathRejection::Nul),
        ]
    );
}

#[test]
fn zip_bomb_ratio_skipped_by_header() {
    let zeros = vec![0u8; 20 << 20];
    let (_d, run) = import_one(gp(&[("F", "bomb.jpg", zeros), ("F", "ok.jpg", jpeg("ok"))]));
    assert_eq!(run.streamed.len(), 1);
    assert!(matches!(
        reasons(&run.catalog)[..],
        [(_, SkipReason::Limit(LimitViolation::Ratio { ratio }))] if ratio > 200
    ));
}

/// Patches the uncompressed size of entry `name` in both headers: a lying header.
fn patch_declared_size(path: &Path, name: &str, size: u32) {
    let mut b = std::fs::read(path).unwrap();
    let nb = name.as_bytes();
    let mut i = 0;
    while i + 4 <= b.len() {
        let sig: [u8; 4] = b[i..i + 4].try_into().unwrap();
        if &sig == b"PK\x03\x04" && b[i + 30..].starts_with(nb) {
            b[i + 22..i + 26].copy_from_slice(&size.to_le_bytes());
        }
        if &sig == b"PK\x01\x02" && b[i + 46..].starts_with(nb) {
            b[i + 24..i + 28].copy_from_slice(&size.to_le_bytes());
        }
        i += 1;
    }
    std::fs::write(path, b).unwrap();
}

#[test]
fn zip_entry_bigger_than_declared_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let p = part_path(dir.path(), 1, "zip");
    let name = format!("{GP}/F/liar.jpg");
    let mut big = jpeg("liar");
    big.extend(vec![0u8; 4 << 20]);
    write_zip(
        &p,
        &vec![(name.clone(), big), (format!("{GP}/F/ok.jpg"), jpeg("ok"))],
    );
    patch_declared_size(&p, &name, 100);
    let run = import_paths(&[p], &ImportOptions::default());
    assert_eq!(run.streamed_names(), ["ok.jpg"]);
    assert!(
        reasons(&run.catalog)
            .iter()
            .any(|(n, r)| n.ends_with("liar.jpg")
                && *r
                    == SkipReason::Limit(LimitViolation::SizeMismatch {
                        declared: 100,
                        actual: 101
                    }))
    );
}

#[test]
fn truncated_zip_part_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let p1 = part_path(dir.path(), 1, "zip");
    let p2 = part_path(dir.path(), 2, "zip");
    let mut noise: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    noise.splice(0..0, jpeg("n"));
    write_zip(&p1, &gp(&[("F", "a.jpg", noise)]));
    write_zip(
        &p2,
        &gp(&[
            ("F", "b.jpg", jpeg("b")),
            ("F", "a.jpg.json", sc("a.jpg", 5).into()),
        ]),
    );
    let len = std::fs::metadata(&p1).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&p1)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let run = import_paths(&[p1, p2], &ImportOptions::default());
    let rep = run.catalog.report();
    assert_eq!(rep.part_errors.len(), 1);
    assert_eq!(rep.part_errors[0].part, PartNumber(1));
    assert_eq!(run.streamed_names(), ["b.jpg"]);
    assert_eq!(rep.orphan_sidecars.len(), 1);
}

#[test]
fn corrupt_zip_entry_costs_one_entry() {
    let dir = tempfile::tempdir().unwrap();
    let p = part_path(dir.path(), 1, "zip");
    let f = std::fs::File::create(&p).unwrap();
    let mut z = zip::ZipWriter::new(f);
    let o =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let bad = jpeg("BROKEN-ENTRY-MARKER");
    z.start_file(format!("{GP}/F/bad.jpg"), o).unwrap();
    z.write_all(&bad).unwrap();
    z.start_file(format!("{GP}/F/good.jpg"), o).unwrap();
    z.write_all(&jpeg("good")).unwrap();
    z.finish().unwrap();
    let mut b = std::fs::read(&p).unwrap();
    let at = b
        .windows(19)
        .position(|w| w == b"BROKEN-ENTRY-MARKER")
        .unwrap();
    b[at] ^= 0xFF;
    std::fs::write(&p, b).unwrap();
    let run = import_paths(&[p], &ImportOptions::default());
    assert_eq!(run.streamed_names(), ["good.jpg"]);
    assert!(
        reasons(&run.catalog)
            .iter()
            .any(|(n, r)| n.ends_with("bad.jpg") && matches!(r, SkipReason::ReadError(_)))
    );
}

#[test]
fn tgz_bomb_and_truncated_tgz_fail_their_part_only() {
    let dir = tempfile::tempdir().unwrap();
    let bomb = part_path(dir.path(), 1, "tgz");
    write_tgz(&bomb, &gp(&[("F", "bomb.jpg", vec![0u8; 30 << 20])]));
    let trunc = part_path(dir.path(), 2, "tgz");
    let noise: Vec<u8> = (0..400_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 11) as u8)
        .collect();
    let mut early = jpeg("early");
    early.extend_from_slice(&noise[..1000]);
    let mut late = jpeg("late");
    late.extend_from_slice(&noise);
    write_tgz(
        &trunc,
        &gp(&[("F", "early.jpg", early), ("F", "late.jpg", late)]),
    );
    let len = std::fs::metadata(&trunc).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&trunc)
        .unwrap()
        .set_len(len * 2 / 3)
        .unwrap();
    let fine = part_path(dir.path(), 3, "zip");
    write_zip(&fine, &gp(&[("F", "fine.jpg", jpeg("fine"))]));
    let run = import_paths(&[bomb, trunc, fine], &ImportOptions::default());
    let rep = run.catalog.report();
    let failed: Vec<PartNumber> = rep.part_errors.iter().map(|e| e.part).collect();
    assert_eq!(
        failed,
        [PartNumber(1), PartNumber(2)],
        "{:?}",
        rep.part_errors
    );
    assert!(
        rep.part_errors[0].message.contains("ratio"),
        "{}",
        rep.part_errors[0].message
    );
    let mut names = run.streamed_names();
    names.sort();
    assert_eq!(names, ["early.jpg", "fine.jpg"]);
    assert_eq!(run.stream_report.part_errors.len(), 2);
}

#[test]
fn total_limit_stops_the_part() {
    let dir = tempfile::tempdir().unwrap();
    let p = part_path(dir.path(), 1, "zip");
    let mut e = Entries::new();
    for i in 0..10 {
        let mut b = jpeg(&format!("{i}"));
        b.extend(vec![i as u8; 1000]);
        e.push((format!("{GP}/F/{i}.jpg"), b));
    }
    write_zip(&p, &e);
    let g = takeout::group_parts(&[p]);
    let opts = ImportOptions {
        limits: Limits {
            max_total_bytes: 5000,
            ..Limits::default()
        },
        ..Default::default()
    };
    let c = Catalog::build(&g.exports[0], &opts);
    assert_eq!(c.report().part_errors.len(), 1);
    assert!(c.records().len() < 10);
}

#[test]
fn duplicate_path_in_two_parts_streams_once() {
    let dir = tempfile::tempdir().unwrap();
    let same = gp(&[
        ("F", "a.jpg", jpeg("a")),
        ("F", "a.jpg.json", sc("a.jpg", 9).into()),
    ]);
    let run = import_zip_parts(dir.path(), &[(1, same.clone()), (2, same)]);
    assert_eq!(run.streamed.len(), 1);
    let dups = run
        .catalog
        .report()
        .skipped
        .iter()
        .filter(|s| {
            s.reason
                == SkipReason::DuplicatePath {
                    kept_in: PartNumber(1),
                }
        })
        .count();
    assert_eq!(dups, 2);
}

#[test]
fn tgz_sidecar_after_media_and_in_other_part() {
    // §1.2: in a tgz the sidecar may follow the media, or sit in another part.
    let dir = tempfile::tempdir().unwrap();
    let p1 = part_path(dir.path(), 1, "tgz");
    let p2 = part_path(dir.path(), 2, "tgz");
    write_tgz(
        &p1,
        &gp(&[
            ("F", "a.jpg", jpeg("a")),
            ("F", "b.jpg", jpeg("b")),
            ("F", "a.jpg.json", sc("a.jpg", 100).into()),
        ]),
    );
    write_tgz(
        &p2,
        &gp(&[(
            "F",
            "b.jpg.supplemental-metadata.json",
            sc("b.jpg", 200).into(),
        )]),
    );
    let run = import_paths(&[p1, p2], &ImportOptions::default());
    assert_eq!(
        run.rec("a.jpg").taken.unwrap().time,
        utc("1970-01-01T00:01:40Z")
    );
    assert_eq!(
        run.rec("b.jpg").taken.unwrap().time,
        utc("1970-01-01T00:03:20Z")
    );
    assert_eq!(run.stream_report.delivered, 2);
}

#[cfg(unix)]
#[test]
fn extracted_folder_part_skips_symlinks() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("takeout-20240525T201456Z-001");
    let f = root.join("Takeout/Google Photos/F");
    std::fs::create_dir_all(&f).unwrap();
    std::fs::write(f.join("a.jpg"), jpeg("a")).unwrap();
    std::fs::write(f.join("a.jpg.json"), sc("a.jpg", 7)).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", f.join("b.jpg")).unwrap();
    let run = import_paths(&[root], &ImportOptions::default());
    assert_eq!(run.streamed.len(), 1);
    assert_eq!(
        run.rec("a.jpg").taken.unwrap().time,
        utc("1970-01-01T00:00:07Z")
    );
    assert!(
        reasons(&run.catalog)
            .iter()
            .any(|(n, r)| n.ends_with("b.jpg") && *r == SkipReason::Symlink)
    );
}

#[test]
fn consumer_error_stops_the_stream() {
    let (_d, run) = import_one(gp(&[("F", "a.jpg", jpeg("a")), ("F", "b.jpg", jpeg("b"))]));
    let mut seen = 0;
    let res = run.catalog.stream_media(|_, _| {
        seen += 1;
        Err::<(), _>(std::io::Error::other("disk full"))
    });
    assert!(matches!(res, Err(takeout::StreamError::Consumer(e)) if e.to_string() == "disk full"));
    assert_eq!(seen, 1);
}

/// Raw deflate bytes for `data` that end byte-aligned and reference nothing before them,
/// so such pieces can be concatenated (a full flush resets the window).
fn deflate_piece(data: &[u8], last: bool) -> Vec<u8> {
    let mut c = flate2::Compress::new(flate2::Compression::fast(), false);
    let mut out = Vec::with_capacity(data.len() / 100 + 1024);
    let flush = if last {
        flate2::FlushCompress::Finish
    } else {
        flate2::FlushCompress::Full
    };
    loop {
        let consumed = c.total_in() as usize;
        if out.capacity() - out.len() < 1024 {
            out.reserve(1 << 16);
        }
        let st = c.compress_vec(&data[consumed..], &mut out, flush).unwrap();
        if c.total_in() as usize == data.len()
            && (st == flate2::Status::StreamEnd || (!last && out.capacity() > out.len()))
        {
            break;
        }
    }
    out
}

/// Writes a real ZIP64 archive with one deflated entry of `size` bytes: `head`, zeros,
/// `tail`. The zeros are one 1 MiB deflate piece repeated, so a >4 GiB entry costs a
/// few MiB on disk and no compression time. Returns the BLAKE3 of the content.
fn write_zip64_deflated(path: &Path, name: &str, head: &[u8], tail: &[u8], size: u64) -> [u8; 32] {
    const CHUNK: u64 = 1 << 20;
    let zeros_len = size - head.len() as u64 - tail.len() as u64;
    assert_eq!(zeros_len % CHUNK, 0);
    let zero_chunk = vec![0u8; CHUNK as usize];
    let mut crc = flate2::Crc::new();
    let mut h = blake3::Hasher::new();
    crc.update(head);
    h.update(head);
    for _ in 0..zeros_len / CHUNK {
        crc.update(&zero_chunk);
        h.update(&zero_chunk);
    }
    crc.update(tail);
    h.update(tail);
    let crc = crc.sum();
    let p_head = deflate_piece(head, false);
    let p_zero = deflate_piece(&zero_chunk, false);
    let p_tail = deflate_piece(tail, true);
    let csize = (p_head.len() + p_tail.len()) as u64 + p_zero.len() as u64 * (zeros_len / CHUNK);

    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let nb = name.as_bytes();
    let mut lfh = Vec::new();
    lfh.extend_from_slice(b"PK\x03\x04");
    lfh.extend_from_slice(&45u16.to_le_bytes());
    lfh.extend_from_slice(&0x0800u16.to_le_bytes());
    lfh.extend_from_slice(&8u16.to_le_bytes()); // deflate
    lfh.extend_from_slice(&0u16.to_le_bytes());
    lfh.extend_from_slice(&0x21u16.to_le_bytes());
    lfh.extend_from_slice(&crc.to_le_bytes());
    lfh.extend_from_slice(&u32::MAX.to_le_bytes());
    lfh.extend_from_slice(&u32::MAX.to_le_bytes());
    lfh.extend_from_slice(&(nb.len() as u16).to_le_bytes());
    lfh.extend_from_slice(&20u16.to_le_bytes());
    lfh.extend_from_slice(nb);
    lfh.extend_from_slice(&1u16.to_le_bytes());
    lfh.extend_from_slice(&16u16.to_le_bytes());
    lfh.extend_from_slice(&size.to_le_bytes());
    lfh.extend_from_slice(&csize.to_le_bytes());
    f.write_all(&lfh).unwrap();
    f.write_all(&p_head).unwrap();
    for _ in 0..zeros_len / CHUNK {
        f.write_all(&p_zero).unwrap();
    }
    f.write_all(&p_tail).unwrap();

    let cd_offset = lfh.len() as u64 + csize;
    let mut cd = Vec::new();
    cd.extend_from_slice(b"PK\x01\x02");
    cd.extend_from_slice(&((3u16 << 8) | 45).to_le_bytes());
    cd.extend_from_slice(&45u16.to_le_bytes());
    cd.extend_from_slice(&0x0800u16.to_le_bytes());
    cd.extend_from_slice(&8u16.to_le_bytes());
    cd.extend_from_slice(&0u16.to_le_bytes());
    cd.extend_from_slice(&0x21u16.to_le_bytes());
    cd.extend_from_slice(&crc.to_le_bytes());
    cd.extend_from_slice(&u32::MAX.to_le_bytes());
    cd.extend_from_slice(&u32::MAX.to_le_bytes());
    cd.extend_from_slice(&(nb.len() as u16).to_le_bytes());
    cd.extend_from_slice(&28u16.to_le_bytes());
    cd.extend_from_slice(&0u16.to_le_bytes());
    cd.extend_from_slice(&0u16.to_le_bytes());
    cd.extend_from_slice(&0u16.to_le_bytes());
    cd.extend_from_slice(&((0o100644u32) << 16).to_le_bytes());
    cd.extend_from_slice(&u32::MAX.to_le_bytes());
    cd.extend_from_slice(nb);
    cd.extend_from_slice(&1u16.to_le_bytes());
    cd.extend_from_slice(&24u16.to_le_bytes());
    cd.extend_from_slice(&size.to_le_bytes());
    cd.extend_from_slice(&csize.to_le_bytes());
    cd.extend_from_slice(&0u64.to_le_bytes());
    let eocd64_offset = cd_offset + cd.len() as u64;
    let mut end = Vec::new();
    end.extend_from_slice(b"PK\x06\x06");
    end.extend_from_slice(&44u64.to_le_bytes());
    end.extend_from_slice(&45u16.to_le_bytes());
    end.extend_from_slice(&45u16.to_le_bytes());
    end.extend_from_slice(&0u32.to_le_bytes());
    end.extend_from_slice(&0u32.to_le_bytes());
    end.extend_from_slice(&1u64.to_le_bytes());
    end.extend_from_slice(&1u64.to_le_bytes());
    end.extend_from_slice(&(cd.len() as u64).to_le_bytes());
    end.extend_from_slice(&cd_offset.to_le_bytes());
    end.extend_from_slice(b"PK\x06\x07");
    end.extend_from_slice(&0u32.to_le_bytes());
    end.extend_from_slice(&eocd64_offset.to_le_bytes());
    end.extend_from_slice(&1u32.to_le_bytes());
    end.extend_from_slice(b"PK\x05\x06");
    end.extend_from_slice(&0u16.to_le_bytes());
    end.extend_from_slice(&0u16.to_le_bytes());
    end.extend_from_slice(&1u16.to_le_bytes());
    end.extend_from_slice(&1u16.to_le_bytes());
    end.extend_from_slice(&(cd.len() as u32).to_le_bytes());
    end.extend_from_slice(&u32::MAX.to_le_bytes());
    end.extend_from_slice(&0u16.to_le_bytes());
    f.write_all(&cd).unwrap();
    f.write_all(&end).unwrap();
    f.flush().unwrap();
    *h.finalize().as_bytes()
}

#[test]
fn case05_zip64_over_4gib() {
    // §8 case 5: a ZIP64 part with one entry > 4 GiB; the size comes from the ZIP64 extra
    // field and the streamed hash equals the hash of the content. (The part itself is
    // small because zeros compress; the ratio limit is raised for that reason only.)
    let dir = tempfile::tempdir().unwrap();
    let p = part_path(dir.path(), 1, "zip");
    let head = mp4("zip64-head");
    let tail = [0xABu8; 4096];
    let size = (4u64 << 30) + (1 << 20) + head.len() as u64 + tail.len() as u64;
    let name = format!("{GP}/Photos from 2023/VID_20230101_120000.mp4");
    let expected = write_zip64_deflated(&p, &name, &head, &tail, size);
    let opts = ImportOptions {
        limits: Limits {
            max_ratio: 100_000,
            ..Limits::default()
        },
        ..Default::default()
    };
    let run = import_paths(&[p], &opts);
    assert!(
        run.catalog.report().skipped.is_empty(),
        "{:?}",
        run.catalog.report().skipped
    );
    let (r, h) = &run.streamed[0];
    assert_eq!(r.size, size);
    assert!(r.size > u64::from(u32::MAX));
    assert_eq!(*h, expected);
}
