#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Export (issue 7) through the real binary: a sync from the fake Google exports into the
//! configured `[[export]]` target, `export` alone changes nothing the second time, a missing
//! target is skipped without being created, and a bad template token is reported with the
//! file, line, column and key.

use std::os::unix::fs::MetadataExt;

use fake_google::{FakeConfig, FakeGoogle, scopes};
use system_tests::{describe, files_under, mtime, parse_list, workspace};

const OK: i32 = 0;
const USAGE: i32 = 2;
const PARTIAL: i32 = 4;

/// Under 24 items the generator adds no edge cases (no failed video): a clean sync.
async fn fake() -> FakeGoogle {
    FakeGoogle::start(FakeConfig::with_items(12))
        .await
        .expect("start the fake Google")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_cycle_exports_and_a_second_export_changes_nothing() {
    let fake = fake().await;
    let ws = workspace!();
    let nas = ws.path().join("nas");
    std::fs::create_dir(&nas).unwrap();
    ws.write_config_for(
        &fake,
        &format!(
            "\n[[export]]\nname = \"nas\"\npath = {nas:?}\n\
             template = \"{{year}}/{{month}}/{{album|Unsorted}}/{{filename}}\"\nmode = \"copy\"\n"
        ),
    );
    ws.authorize(&fake, &[scopes::LIBRARY_READONLY_APPCREATED]);

    let run = ws.run_async(&["--run-now"]).await;
    assert_eq!(run.status.code(), Some(OK), "{}", describe(&run));

    // Every downloaded item is in the export at least once, byte-identical, mtime kept.
    let listing = ws.run_async(&["list", "--json"]).await;
    let items = parse_list(&listing);
    let exported: Vec<_> = files_under(&nas).iter().map(|p| nas.join(p)).collect();
    assert!(!items.is_empty());
    assert!(exported.len() >= items.len(), "{exported:?}");
    for item in &items {
        let rel = item["path"].as_str().unwrap();
        let lib = ws.library_dir().join(rel);
        let bytes = std::fs::read(&lib).unwrap();
        let name = item["filename"].as_str().unwrap();
        let copies: Vec<_> = exported
            .iter()
            .filter(|p| p.file_name().unwrap().to_string_lossy() == name)
            .collect();
        assert!(!copies.is_empty(), "{name} not exported: {exported:?}");
        for copy in copies {
            assert_eq!(std::fs::read(copy).unwrap(), bytes, "{copy:?}");
            assert_eq!(mtime(copy), mtime(&lib), "{copy:?}");
        }
    }

    let inodes = |root: &std::path::Path| -> Vec<(std::path::PathBuf, u64, i64)> {
        files_under(root)
            .into_iter()
            .map(|p| {
                let m = std::fs::symlink_metadata(root.join(&p)).unwrap();
                (p, m.ino(), m.ctime_nsec() + m.ctime() * 1_000_000_000)
            })
            .collect()
    };
    let before = inodes(&nas);
    let again = ws.run_async(&["export"]).await;
    assert_eq!(again.status.code(), Some(OK), "{}", describe(&again));
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(
        stdout.contains("export nas: 0 placed, 0 renamed"),
        "{}",
        describe(&again)
    );
    assert_eq!(
        inodes(&nas),
        before,
        "a second export must not touch the files"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_target_is_skipped_and_not_created() {
    let fake = fake().await;
    let ws = workspace!();
    let share = ws.path().join("mnt/share");
    ws.write_config_for(
        &fake,
        &format!("\n[[export]]\npath = {share:?}\ntemplate = \"{{filename}}\"\n"),
    );
    ws.authorize(&fake, &[scopes::LIBRARY_READONLY_APPCREATED]);
    let run = ws.run_async(&["--run-now"]).await;
    // The backup itself worked; the skipped export makes the cycle partial.
    assert_eq!(run.status.code(), Some(PARTIAL), "{}", describe(&run));
    let export = ws.run_async(&["export"]).await;
    assert_eq!(export.status.code(), Some(PARTIAL), "{}", describe(&export));
    assert!(
        String::from_utf8_lossy(&export.stdout).contains("is the share mounted?"),
        "{}",
        describe(&export)
    );
    assert!(!ws.path().join("mnt").exists(), "nothing may be created");
}

#[test]
fn a_bad_template_token_names_file_line_column_and_key() {
    let ws = workspace!();
    ws.write_config(
        "library_dir = \"/srv/photos\"\nstate_dir = \"/tmp/unused-state\"\n\n\
         [[export]]\npath = \"/mnt/nas\"\ntemplate = \"{year}/{albm|Unsorted}/{filename}\"\n",
    );
    let out = ws.run(&["export"]);
    assert_eq!(out.status.code(), Some(USAGE), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Line 6; `template = "` is 12 characters and `{albm` is at column 8 of the value.
    let at = format!(
        "{}:6:20: key `export[0].template`",
        ws.config_path().display()
    );
    assert!(stderr.contains(&at), "{at}\n{}", describe(&out));
    assert!(stderr.contains("{albm}"), "{}", describe(&out));
    assert!(!std::path::Path::new("/tmp/unused-state").exists());
}
