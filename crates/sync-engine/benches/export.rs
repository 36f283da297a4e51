#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Export throughput (issue 7): exports a library of small files by hard link and by copy,
//! and times `cp -al` / `cp -a` of the same `photos/` tree in the same run, on the same disk.
//!
//! `cargo bench -p sync-engine --bench export [-- ITEMS [ROUNDS]]` (default 50,000 items, 3
//! rounds). Each round runs `cp -al`, a first hardlink export, `cp -a` and a first copy export,
//! each into a fresh directory (a fresh export target, so a fresh manifest), interleaved so
//! that a disturbance from other work on the machine hits both sides alike. Prints every
//! round, then the median time per item of each and the ratio of the medians, export / cp
//! (target: ≤ 1.5×). The library is built by syncing a `LocalDirSource` with batch
//! durability.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use sync_engine::{
    Durability, Engine, EngineConfig, ExportMode, ExportTarget, LocalDirSource, NoProgress, Source,
    SyncOptions, Template,
};
use tokio_util::sync::CancellationToken;

fn main() {
    let numbers: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let items = numbers.first().copied().unwrap_or(50_000);
    let rounds = numbers.get(1).copied().unwrap_or(3).max(1);
    let tmp = tempfile::tempdir_in(std::env::var_os("BENCH_DIR").unwrap_or_else(|| ".".into()))
        .expect("temp dir");
    let root = tmp.path();
    let src = root.join("src");

    let t = Instant::now();
    for i in 0..items {
        let dir = src.join(format!("d{:03}", i / 1000));
        if i % 1000 == 0 {
            std::fs::create_dir_all(&dir).unwrap();
        }
        let p = dir.join(format!("IMG_{i:06}.jpg"));
        std::fs::write(&p, format!("photo {i} {}", "x".repeat(i % 200))).unwrap();
        // Spread capture times over ten years so the template makes many folders.
        let secs = 1_300_000_000 + (i as u64 * 6_311) % 315_000_000;
        let f = std::fs::File::options().write(true).open(&p).unwrap();
        f.set_modified(UNIX_EPOCH + Duration::from_secs(secs))
            .unwrap();
    }
    println!("generated {items} source files in {:.1?}", t.elapsed());

    let mut config = EngineConfig::new(root.join("lib"), root.join("state"));
    config.durability = Durability::Batch;
    let engine = Engine::open(config).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let t = Instant::now();
    let sources: Vec<Arc<dyn Source>> = vec![Arc::new(LocalDirSource::new(&src))];
    let report = rt
        .block_on(engine.sync(
            &sources,
            SyncOptions::default(),
            Arc::new(NoProgress),
            CancellationToken::new(),
        ))
        .unwrap();
    assert_eq!(report.downloaded as usize, items, "{:?}", report.errors);
    println!("indexed the library in {:.1?}", t.elapsed());

    let template = Template::parse("{year}/{month}/{filename}").unwrap();
    let export = |name: &str, mode: ExportMode| {
        let out = root.join(name);
        std::fs::create_dir(&out).unwrap();
        let mut target = ExportTarget::new(name, &out, template.clone());
        target.mode = mode;
        let t = Instant::now();
        let r = engine.export(&target, &CancellationToken::new()).unwrap();
        let first = t.elapsed();
        assert_eq!(r.placed as usize, items, "{r:?}");
        let t = Instant::now();
        let r = engine.export(&target, &CancellationToken::new()).unwrap();
        let again = t.elapsed();
        assert_eq!(r.unchanged as usize, items, "{r:?}");
        (first, again)
    };
    let cp = |flags: &str, name: &str| {
        let out = root.join(name);
        sync_fs(root);
        let t = Instant::now();
        let status = Command::new("cp")
            .arg(flags)
            .arg(root.join("lib/photos"))
            .arg(&out)
            .status()
            .expect("run cp");
        sync_fs(root);
        assert!(status.success());
        t.elapsed()
    };
    // Each measurement includes a final sync of the filesystem, as export's syncfs does.
    let timed = |f: &dyn Fn() -> (Duration, Duration)| {
        sync_fs(root);
        let (first, again) = f();
        let t = Instant::now();
        sync_fs(root);
        (first + t.elapsed(), again)
    };
    let per = |d: Duration| d.as_secs_f64() * 1e6 / items as f64;
    let (mut hl, mut cp_al, mut copy, mut cp_a) = (vec![], vec![], vec![], vec![]);
    let (mut hl_again, mut copy_again) = (Duration::ZERO, Duration::ZERO);
    for round in 0..rounds {
        cp_al.push(cp("-al", &format!("cp_al{round}")));
        let (first, again) = timed(&|| export(&format!("hardlink{round}"), ExportMode::Hardlink));
        hl.push(first);
        cp_a.push(cp("-a", &format!("cp_a{round}")));
        let (first_copy, again_copy) = timed(&|| export(&format!("copy{round}"), ExportMode::Copy));
        copy.push(first_copy);
        if round == 0 {
            (hl_again, copy_again) = (again, again_copy);
        }
        println!(
            "  round {round}: hardlink {:.1} vs cp -al {:.1} µs/item; copy {:.1} vs cp -a {:.1} µs/item",
            per(first),
            per(cp_al[round]),
            per(first_copy),
            per(cp_a[round])
        );
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (hl, cp_al, copy, cp_a) = (
        median(&mut hl),
        median(&mut cp_al),
        median(&mut copy),
        median(&mut cp_a),
    );
    println!("{items} items, median of {rounds} rounds:");
    println!(
        "  export hardlink  {:>8.1?}  {:>6.1} µs/item   cp -al {:>8.1?}  {:>6.1} µs/item   ratio {:.2}x",
        hl,
        per(hl),
        cp_al,
        per(cp_al),
        hl.as_secs_f64() / cp_al.as_secs_f64()
    );
    println!(
        "  export copy      {:>8.1?}  {:>6.1} µs/item   cp -a  {:>8.1?}  {:>6.1} µs/item   ratio {:.2}x",
        copy,
        per(copy),
        cp_a,
        per(cp_a),
        copy.as_secs_f64() / cp_a.as_secs_f64()
    );
    println!(
        "  second export (nothing to do): hardlink {:.1?} ({:.1} µs/item), copy {:.1?} ({:.1} µs/item)",
        hl_again,
        per(hl_again),
        copy_again,
        per(copy_again)
    );
}

fn sync_fs(dir: &Path) {
    let _ = Command::new("sync").arg("-f").arg(dir).status();
}
