//! The `fake-google` binary prints BASE and serves until stopped.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::Value;

#[tokio::test]
async fn binary_serves_and_writes_client_secret() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("client_secret.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_fake-google"))
        .args([
            "--port",
            "0",
            "--items",
            "40",
            "--seed",
            "7",
            "--write-client-secret",
        ])
        .arg(&secret)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line.trim().to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");

    let file: Value = serde_json::from_str(&std::fs::read_to_string(&secret).unwrap()).unwrap();
    assert_eq!(
        file["installed"]["token_uri"],
        format!("{base}/oauth2/token").as_str()
    );
    assert_eq!(file["installed"]["client_id"], fake_google::CLIENT_ID);

    // An unauthenticated call reaches the Library API and is refused as Google would.
    let r = reqwest::get(format!("{base}/library/v1/mediaItems"))
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    child.kill().unwrap();
    child.wait().unwrap();
}
