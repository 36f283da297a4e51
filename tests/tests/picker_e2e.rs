//! `gphotos-backup pick` end to end: the real binary against the fake's Picker state machine
//! (google-photos-api.md §3, §6.3), with the fake's test hook playing the user who picks.
//!
//! The fake polls at 1 s instead of Google's 5 s so that each test waits at most a couple of
//! real seconds; timeouts and expiry are driven by the hook and the fake clock, never waited.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use fake_google::{
    EndpointKind, FakeConfig, FakeGoogle, Fault, ItemInfo, MediaItemId, PickerConfig, Schedule,
    SessionState, VideoStatus, scopes,
};
use system_tests::{
    Workspace, assert_served_file, describe, files_under, parse_list, temp_files_under, workspace,
};
use tokio::io::AsyncBufReadExt;
use tokio::sync::mpsc;

const OK: i32 = 0;
const PARTIAL: i32 = 4;
/// Longest wait for one expected line of output.
const LINE_TIMEOUT: Duration = Duration::from_secs(20);

async fn fake(items: usize, foreign: usize) -> FakeGoogle {
    FakeGoogle::start(FakeConfig {
        items,
        foreign_items: foreign,
        picker: PickerConfig {
            poll_interval: Duration::from_secs(1),
            ..PickerConfig::default()
        },
        ..FakeConfig::default()
    })
    .await
    .expect("start the fake Google")
}

fn setup(fake: &FakeGoogle, extra: &str) -> Workspace {
    let ws = workspace!();
    ws.write_config_for(fake, extra);
    ws.authorize(
        fake,
        &[scopes::LIBRARY_READONLY_APPCREATED, scopes::PICKER_READONLY],
    );
    ws
}

/// Items only the Picker reaches (owned by another client), that can be downloaded now.
fn pickable(fake: &FakeGoogle, n: usize) -> Vec<ItemInfo> {
    let items: Vec<ItemInfo> = fake
        .library()
        .foreign_items()
        .into_iter()
        .filter(|i| matches!(i.video_status, None | Some(VideoStatus::Ready)))
        .take(n)
        .collect();
    assert_eq!(items.len(), n, "the fake has too few pickable items");
    items
}

fn ids(items: &[ItemInfo]) -> Vec<MediaItemId> {
    items.iter().map(|i| i.id.clone()).collect()
}

/// The running `pick` command: its stdout line by line as it comes.
struct Pick {
    child: tokio::process::Child,
    lines: mpsc::UnboundedReceiver<String>,
    printed: String,
}

impl Pick {
    fn spawn(ws: &Workspace, args: &[&str]) -> Pick {
        let mut all = vec!["pick"];
        all.extend_from_slice(args);
        let mut command = tokio::process::Command::from(ws.command(&all));
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn pick");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = tokio::io::BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Pick {
            child,
            lines,
            printed: String::new(),
        }
    }

    /// The next line satisfying `want`; panics with everything printed so far otherwise.
    async fn line(&mut self, want: impl Fn(&str) -> bool) -> String {
        let found = tokio::time::timeout(LINE_TIMEOUT, async {
            while let Some(line) = self.lines.recv().await {
                self.printed.push_str(&line);
                self.printed.push('\n');
                if want(&line) {
                    return Some(line);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(line)) => line,
            _ => panic!("expected line not printed; got:\n{}", self.printed),
        }
    }

    /// The picker link, printed on a line of its own; returns the session id in it.
    async fn session_id(&mut self) -> String {
        let line = self.line(|l| l.contains("/picker-ui/")).await;
        assert!(
            !line.contains(' '),
            "the link is not on a line of its own: {line:?}"
        );
        line.rsplit('/').next().unwrap().to_string()
    }

    /// Waits for the exit; returns the exit code and all of stdout and stderr.
    async fn finish(mut self) -> (Option<i32>, String) {
        let output = tokio::time::timeout(LINE_TIMEOUT, self.child.wait_with_output())
            .await
            .expect("pick did not exit in time")
            .expect("wait for pick");
        while let Ok(line) = self.lines.try_recv() {
            self.printed.push_str(&line);
            self.printed.push('\n');
        }
        // The reader task may still hold the last lines: drain until it closes.
        while let Some(line) = self.lines.recv().await {
            self.printed.push_str(&line);
            self.printed.push('\n');
        }
        let text = format!(
            "{}\n--- stderr ---\n{}",
            self.printed,
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.code(), text)
    }
}

/// `list --json` rows by id.
async fn rows(ws: &Workspace) -> BTreeMap<String, serde_json::Value> {
    let listing = ws.run_async(&["list", "--json"]).await;
    assert_eq!(listing.status.code(), Some(OK), "{}", describe(&listing));
    parse_list(&listing)
        .into_iter()
        .map(|row| (row["id"].as_str().unwrap().to_string(), row))
        .collect()
}

/// Asserts `item` is in the library: byte-identical to what the media host serves for a
/// picked item (`=d` for photos, `=dv` for videos, spec §3.4 step 6), mtime = capture time,
/// recorded with `source = "picker"` and no location, description or album (spec §3.3).
fn assert_saved(
    ws: &Workspace,
    fake: &FakeGoogle,
    rows: &BTreeMap<String, serde_json::Value>,
    item: &ItemInfo,
) {
    let row = rows
        .get(item.id.as_str())
        .unwrap_or_else(|| panic!("{} is not in the index", item.id.as_str()));
    assert_eq!(row["state"], "done", "{row}");
    assert_eq!(row["source"], "picker", "{row}");
    assert!(
        row["latitude"].is_null() && row["longitude"].is_null(),
        "{row}"
    );
    assert!(row["description"].is_null(), "{row}");
    assert_eq!(row["albums"], serde_json::json!([]), "{row}");
    let rel = row["path"].as_str().unwrap();
    let folder = item.creation_time.format("photos/%Y/%m/").to_string();
    assert!(rel.starts_with(&folder), "{rel} not under {folder}");
    assert_served_file(&ws.library_dir(), fake, item, rel);
}

fn session_state(fake: &FakeGoogle, id: &str) -> SessionState {
    fake.picker()
        .sessions()
        .into_iter()
        .find(|s| s.id == id)
        .map(|s| s.state)
        .expect("session known to the fake")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_picked_items_become_five_identical_files_and_a_second_pick_fetches_nothing() {
    let fake = fake(10, 8).await;
    let ws = setup(&fake, "");
    let picked = pickable(&fake, 5);

    let mut pick = Pick::spawn(&ws, &[]);
    let session = pick.session_id().await;
    fake.picker().pick(&session, &ids(&picked)).unwrap();
    let (code, printed) = pick.finish().await;
    assert_eq!(code, Some(OK), "{printed}");
    assert!(printed.contains("Saved 5 of 5 picked items"), "{printed}");
    // The QR code for a phone, in Unicode half blocks.
    assert!(printed.contains('▀') || printed.contains('▄'), "{printed}");

    let rows = rows(&ws).await;
    for item in &picked {
        assert_saved(&ws, &fake, &rows, item);
    }
    assert_eq!(files_under(&ws.library_dir().join("photos")).len(), 5);
    assert!(temp_files_under(&ws.library_dir()).is_empty());
    // Picker base URLs are refused without `Authorization: Bearer` with the picker scope
    // (spec §6.4): every media fetch succeeded, so every one carried it.
    let media: Vec<u16> = fake
        .request_log()
        .iter()
        .filter(|r| r.kind == EndpointKind::Media)
        .map(|r| r.status)
        .collect();
    assert_eq!(media, vec![200; 5], "media responses");
    // Google asks for every session to be deleted (spec §3.1).
    assert_eq!(session_state(&fake, &session), SessionState::Deleted);

    // Picking the same items again: same index, nothing downloaded twice.
    fake.reset_stats();
    let mut again = Pick::spawn(&ws, &["--no-qr"]);
    let session = again.session_id().await;
    fake.picker().pick(&session, &ids(&picked)).unwrap();
    let (code, printed) = again.finish().await;
    assert_eq!(code, Some(OK), "{printed}");
    assert!(printed.contains("Saved 5 of 5"), "{printed}");
    assert!(printed.contains("5 already in the library"), "{printed}");
    assert!(
        !printed.contains('▀'),
        "--no-qr printed a QR code:\n{printed}"
    );
    assert_eq!(fake.stats().media_requests, 0);
    assert_eq!(files_under(&ws.library_dir().join("photos")).len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_picked_before_the_timeout_exits_cleanly_with_a_message() {
    let fake = fake(5, 3).await;
    let ws = setup(&fake, "");
    let mut pick = Pick::spawn(&ws, &["--no-qr"]);
    let session = pick.session_id().await;
    // The user never presses Done: timeoutIn reaches "0s" (spec §6.3).
    fake.picker().let_timeout(&session).unwrap();
    let (code, printed) = pick.finish().await;
    assert_eq!(code, Some(OK), "{printed}");
    assert!(printed.contains("Nothing was picked"), "{printed}");
    assert!(files_under(&ws.library_dir()).is_empty());
    assert_eq!(session_state(&fake, &session), SessionState::Deleted);
    assert_eq!(fake.stats().media_requests, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_session_reports_what_was_saved_and_a_new_pick_gets_the_rest() {
    let fake = fake(5, 8).await;
    // One download at a time, so "the third download" is well defined.
    let ws = setup(&fake, "[sync]\nmax_concurrent_downloads = 1\n");
    let mut picked = pickable(&fake, 6);
    let extra = picked.pop().unwrap();
    // The third media fetch is held for 3 s (real time); meanwhile the fake clock jumps past
    // the session's expireTime and the base URLs' 60 minutes (spec §1.4, §6.3).
    fake.faults().inject(
        EndpointKind::Media,
        Fault::Delay(Duration::from_secs(3)),
        Schedule::EveryNth(3),
    );

    let mut pick = Pick::spawn(&ws, &["--no-qr"]);
    let session = pick.session_id().await;
    fake.picker().pick(&session, &ids(&picked)).unwrap();
    tokio::time::timeout(LINE_TIMEOUT, fake.wait_for_stats(|s| s.faults_fired > 0))
        .await
        .expect("the third download never started");
    fake.clock().advance(Duration::from_secs(61 * 60));
    let (code, printed) = pick.finish().await;
    assert_eq!(code, Some(PARTIAL), "{printed}");
    assert!(printed.contains("Saved 2 of 5"), "{printed}");
    assert!(printed.contains("expired"), "{printed}");
    // Downloads go in index order, not pick order: any two of the five.
    let rows_now = rows(&ws).await;
    let (saved, unsaved): (Vec<&ItemInfo>, Vec<&ItemInfo>) = picked
        .iter()
        .partition(|i| rows_now[i.id.as_str()]["state"] == "done");
    assert_eq!(saved.len(), 2, "{rows_now:?}");
    for item in saved {
        assert_saved(&ws, &fake, &rows_now, item);
    }
    // The rest is named as not saved, left pending, and no partial file remains.
    for item in unsaved {
        assert!(
            printed.contains(&item.filename),
            "{} not reported:\n{printed}",
            item.filename
        );
        assert_eq!(rows_now[item.id.as_str()]["state"], "pending");
    }
    assert_eq!(files_under(&ws.library_dir().join("photos")).len(), 2);
    assert!(temp_files_under(&ws.library_dir()).is_empty());

    // A session without them leaves them pending, neither failed nor deferred.
    fake.faults().clear();
    let mut other = Pick::spawn(&ws, &["--no-qr"]);
    let session = other.session_id().await;
    fake.picker()
        .pick(&session, std::slice::from_ref(&extra.id))
        .unwrap();
    let (code, printed) = other.finish().await;
    assert_eq!(code, Some(OK), "{printed}");
    assert!(printed.contains("Saved 1 of 1"), "{printed}");

    // Picked again in a new session, the rest downloads at once: neither the expiry nor the
    // session without them was recorded as a failure with a retry back-off.
    let mut again = Pick::spawn(&ws, &["--no-qr"]);
    let session = again.session_id().await;
    let rest: Vec<MediaItemId> = picked
        .iter()
        .filter(|i| rows_now[i.id.as_str()]["state"] != "done")
        .map(|i| i.id.clone())
        .collect();
    fake.picker().pick(&session, &rest).unwrap();
    let (code, printed) = again.finish().await;
    assert_eq!(code, Some(OK), "{printed}");
    assert!(printed.contains("Saved 3 of 3"), "{printed}");
    let rows_after = rows(&ws).await;
    for item in &picked {
        assert_saved(&ws, &fake, &rows_after, item);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_without_the_picker_scope_asks_for_it_incrementally() {
    let fake = fake(5, 3).await;
    let ws = workspace!();
    ws.write_config_for(&fake, "");
    ws.authorize(&fake, &[scopes::LIBRARY_READONLY_APPCREATED]);
    let picked = pickable(&fake, 1);

    let mut pick = Pick::spawn(&ws, &["--no-qr"]);
    let url = pick
        .line(|l| l.starts_with("http://127.0.0.1") && l.contains("code_challenge="))
        .await;
    let decoded = url.replace("%2F", "/").replace("%3A", ":");
    assert!(decoded.contains(scopes::PICKER_READONLY), "{url}");
    // Incremental: the library scope is asked for again, so nothing is lost.
    assert!(
        decoded.contains(scopes::LIBRARY_READONLY_APPCREATED),
        "{url}"
    );
    // Play the browser: the fake's consent page redirects to the binary's listener.
    let page = reqwest::get(&url).await.unwrap();
    assert!(page.status().is_success(), "{}", page.status());

    let session = pick.session_id().await;
    fake.picker().pick(&session, &ids(&picked)).unwrap();
    let (code, printed) = pick.finish().await;
    assert_eq!(code, Some(OK), "{printed}");
    assert!(printed.contains("Saved 1 of 1"), "{printed}");
    assert_saved(&ws, &fake, &rows(&ws).await, &picked[0]);

    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ws.state_dir().join("token.json")).unwrap()).unwrap();
    let granted = saved["scopes"].to_string();
    assert!(granted.contains(scopes::PICKER_READONLY), "{granted}");
    assert!(
        granted.contains(scopes::LIBRARY_READONLY_APPCREATED),
        "{granted}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn picking_the_session_limit_offers_another_session() {
    let fake = fake(5, 4).await;
    let ws = setup(&fake, "");
    let picked = pickable(&fake, 2);
    let mut pick = Pick::spawn(&ws, &["--no-qr", "--max-items", "2"]);
    let session = pick.session_id().await;
    let info = fake.picker().sessions();
    assert_eq!(info.last().unwrap().max_item_count, 2);
    fake.picker().pick(&session, &ids(&picked)).unwrap();
    let (code, printed) = pick.finish().await;
    assert_eq!(code, Some(OK), "{printed}");
    assert!(printed.contains("Saved 2 of 2"), "{printed}");
    assert!(
        printed.contains("the most one picking session allows (2)"),
        "{printed}"
    );
    // Not on a terminal: it says how to start another session instead of asking.
    assert!(
        printed.contains("pick` again to pick the rest"),
        "{printed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pick_waits_for_a_running_sync_to_release_the_library() {
    let fake = fake(5, 3).await;
    let ws = setup(&fake, "");
    let picked = pickable(&fake, 1);
    // Creates the index.
    let listing = ws.run_async(&["list"]).await;
    assert_eq!(listing.status.code(), Some(OK), "{}", describe(&listing));
    // A daemon cycle (or --run-now) holds the index through sled's exclusive flock on
    // state/index/db; this test takes the same lock, so "the sync" ends exactly when it says.
    let db = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(ws.state_dir().join("index").join("db"))
        .unwrap();
    db.try_lock().unwrap();

    let mut pick = Pick::spawn(&ws, &["--no-qr"]);
    let session = pick.session_id().await;
    fake.picker().pick(&session, &ids(&picked)).unwrap();
    pick.line(|l| l.contains("A sync is running on this library; waiting"))
        .await;
    assert_eq!(fake.stats().media_requests, 0);
    db.unlock().unwrap();
    drop(db);

    let (code, printed) = pick.finish().await;
    assert_eq!(code, Some(OK), "{printed}");
    assert!(printed.contains("Saved 1 of 1"), "{printed}");
    assert_saved(&ws, &fake, &rows(&ws).await, &picked[0]);
}
