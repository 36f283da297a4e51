//! Authorization over loopback, and the bad inputs a self-hoster meets: a missing or wrong
//! client file, a revoked token, the scope Google removed, a full disk.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;

use fake_google::{FakeConfig, FakeGoogle, scopes};
use system_tests::{describe, files_under, temp_files_under, workspace};

const OK: i32 = 0;
const AUTH: i32 = 3;

async fn fake(items: usize) -> FakeGoogle {
    FakeGoogle::start(FakeConfig::with_items(items))
        .await
        .expect("start the fake Google")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_runs_the_loopback_flow_and_stores_a_private_token() {
    let fake = fake(5).await;
    let ws = workspace!();
    ws.write_config_for(&fake, "");
    let mut child = ws
        .command(&["auth"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    // The URL is printed on a line of its own; read until it appears.
    let (url, mut printed, mut rest) = tokio::task::spawn_blocking(move || {
        let mut printed = String::new();
        let mut url = None;
        let mut reader = BufReader::new(stdout);
        for line in (&mut reader).lines() {
            let line = line.unwrap();
            printed.push_str(&line);
            printed.push('\n');
            if line.starts_with("http://127.0.0.1") && line.contains("code_challenge=") {
                url = Some(line.clone());
            }
            // The instructions for headless servers follow the URL.
            if url.is_some() && line.contains("ssh -L") {
                break;
            }
        }
        let url = url.unwrap_or_else(|| panic!("no authorization URL printed:\n{printed}"));
        (url, printed, reader)
    })
    .await
    .unwrap();
    assert!(url.contains("code_challenge_method=S256"), "{url}");
    assert!(url.contains("state="), "{url}");
    assert!(printed.contains("ssh -L"), "{printed}");
    // Play the browser: the fake's consent page redirects to the binary's listener.
    let page = reqwest::get(&url).await.unwrap();
    assert!(page.status().is_success(), "{}", page.status());
    let (output, tail) = tokio::task::spawn_blocking(move || {
        let mut tail = String::new();
        std::io::Read::read_to_string(&mut rest, &mut tail).unwrap();
        (child.wait_with_output().unwrap(), tail)
    })
    .await
    .unwrap();
    printed.push_str(&tail);
    assert!(printed.contains("Authorized"), "{printed}");
    assert_eq!(output.status.code(), Some(OK), "{}", describe(&output));

    let token_file = ws.state_dir().join("token.json");
    let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "token file mode {mode:o}");
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&token_file).unwrap()).unwrap();
    let refresh = saved["refresh_token"].as_str().expect("a refresh token");
    let everything_printed = format!(
        "{printed}{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !everything_printed.contains(refresh),
        "the refresh token was printed"
    );

    // The token works: a sync succeeds with it.
    let run = ws.run_async(&["--run-now"]).await;
    assert_eq!(run.status.code(), Some(OK), "{}", describe(&run));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_client_secret_says_what_to_create() {
    let fake = fake(5).await;
    let ws = workspace!();
    ws.write_config_for(&fake, "");
    std::fs::remove_file(ws.path().join("client_secret.json")).unwrap();
    for args in [&["auth"][..], &["--run-now"][..]] {
        let out = ws.run_async(args).await;
        assert_eq!(out.status.code(), Some(AUTH), "{}", describe(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("client_secret.json"), "{stderr}");
        assert!(stderr.contains("Desktop app"), "{stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_client_file_is_refused_with_instructions() {
    let fake = fake(5).await;
    let ws = workspace!();
    ws.write_config_for(&fake, "");
    std::fs::write(
        ws.path().join("client_secret.json"),
        r#"{"web":{"client_id":"x.apps.googleusercontent.com","client_secret":"s"}}"#,
    )
    .unwrap();
    let out = ws.run_async(&["auth"]).await;
    assert_eq!(out.status.code(), Some(AUTH), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Desktop app"), "{stderr}");
    assert!(stderr.to_lowercase().contains("web"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_token_asks_to_authorize_again_and_loses_nothing() {
    let fake = fake(30).await;
    let ws = workspace!();
    ws.write_config_for(&fake, "");
    let issued = ws.authorize(&fake, &[scopes::LIBRARY_READONLY_APPCREATED]);
    let first = ws.run_async(&["--run-now"]).await;
    assert!(
        first.status.code() == Some(OK) || first.status.code() == Some(4),
        "{}",
        describe(&first)
    );
    let before = files_under(&ws.library_dir());
    assert!(!before.is_empty());

    let revoked = reqwest::Client::new()
        .post(format!(
            "{}?token={}",
            fake.revoke_url(),
            issued.refresh_token
        ))
        .send()
        .await
        .unwrap();
    assert!(revoked.status().is_success());

    let out = ws.run_async(&["--run-now"]).await;
    assert_eq!(out.status.code(), Some(AUTH), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("auth"), "{stderr}");
    assert!(stderr.contains("7 days"), "{stderr}");
    assert!(!stderr.contains(&issued.refresh_token));
    assert_eq!(
        files_under(&ws.library_dir()),
        before,
        "nothing may be lost"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_scope_gets_the_march_2025_explanation() {
    let fake = fake(5).await;
    let ws = workspace!();
    ws.write_config_for(&fake, "use_removed_readonly_scope = true\n");
    // google-photos-api.md §2 and §6.5: the removed scope is granted, then every call is 403.
    ws.authorize(&fake, &[scopes::LIBRARY_READONLY_REMOVED]);
    let out = ws.run_async(&["--run-now"]).await;
    assert_eq!(out.status.code(), Some(AUTH), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("2025"), "{stderr}");
    assert!(stderr.contains("Takeout"), "{stderr}");
    assert!(stderr.contains("pick"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// A small tmpfs as the library: fills up mid-run. Needs root (as CI and the dev machines
/// run); elsewhere the test says so and checks nothing.
struct SmallDisk {
    path: std::path::PathBuf,
}

impl SmallDisk {
    fn mount(path: &std::path::Path, size: &str) -> Option<SmallDisk> {
        std::fs::create_dir_all(path).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .stderr(Stdio::null())
            .status()
            .ok()?;
        status.success().then(|| SmallDisk {
            path: path.to_path_buf(),
        })
    }

    fn grow(&self, size: &str) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.path)
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.path)
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_stops_cleanly_and_the_next_run_resumes() {
    let fake = fake(40).await;
    let ws = workspace!();
    let Some(disk) = SmallDisk::mount(&ws.library_dir(), "1m") else {
        eprintln!("SKIPPED: mounting a tmpfs needs root");
        return;
    };
    ws.write_config_for(&fake, "");
    ws.authorize(&fake, &[scopes::LIBRARY_READONLY_APPCREATED]);

    let full = ws.run_async(&["--run-now"]).await;
    assert_ne!(full.status.code(), Some(OK), "{}", describe(&full));
    let stderr = String::from_utf8_lossy(&full.stderr).to_lowercase();
    assert!(
        stderr.contains("full") || stderr.contains("space"),
        "{stderr}"
    );
    assert!(
        temp_files_under(&ws.library_dir()).is_empty(),
        "partial files left: {:?}",
        temp_files_under(&ws.library_dir())
    );

    disk.grow("64m");
    let resumed = ws.run_async(&["--run-now"]).await;
    assert!(
        matches!(resumed.status.code(), Some(0 | 4)),
        "{}",
        describe(&resumed)
    );
    let verify = ws.run_async(&["verify", "--deep"]).await;
    assert_eq!(verify.status.code(), Some(OK), "{}", describe(&verify));
    let listing = ws.run_async(&["list", "--json"]).await;
    let done = system_tests::parse_list(&listing)
        .into_iter()
        .filter(|row| row["state"] == "done")
        .count();
    assert!(done >= 35, "only {done} items done after resuming");
}
