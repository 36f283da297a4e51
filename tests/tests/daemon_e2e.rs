//! The real daemon: cron-fired runs, systemd notify, `--run-now` handed to the running
//! daemon, SIGHUP with a broken config, health pings, and SIGTERM mid-download.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use fake_google::{EndpointKind, FakeConfig, FakeGoogle, Fault, NewItem, Schedule, scopes};
use system_tests::{Workspace, describe, temp_files_under, workspace};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UnixDatagram};
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(60);

/// A minimal HTTP server on 127.0.0.1 that records the path of every request.
async fn ping_server() -> (String, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/ping", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut seen = Vec::new();
                // Read until the end of the headers (bodies are small and ignored).
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&seen);
                let path = text.split_whitespace().nth(1).unwrap_or("").to_string();
                let _ = socket
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .await;
                let _ = tx.send(path);
            });
        }
    });
    (url, rx)
}

/// Reads notify datagrams until one contains `needle`; returns it.
async fn notified(socket: &UnixDatagram, needle: &str) -> String {
    let mut buf = vec![0u8; 4096];
    tokio::time::timeout(WAIT, async {
        loop {
            let n = socket.recv(&mut buf).await.unwrap();
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            if text.contains(needle) {
                return text;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no notify message containing {needle:?}"))
}

async fn next_ping(rx: &mut mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("a health ping")
        .expect("ping server alive")
}

fn signal(pid: u32, name: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

fn config_text(ws: &Workspace, fake: &FakeGoogle, ping: &str) -> String {
    let secret = ws.path().join("client_secret.json");
    std::fs::write(&secret, fake.client_secret_json()).unwrap();
    format!(
        "library_dir = {:?}\nstate_dir = {:?}\n\n[google]\nclient_secret_file = {:?}\n\
         revoke_url = {:?}\nlibrary_api_url = {:?}\npicker_api_url = {:?}\n\n\
         [schedule]\ncron = \"*/2 * * * * *\"\n\n[notify]\nhealthcheck_url = {ping:?}\n",
        ws.library_dir(),
        ws.state_dir(),
        secret,
        fake.revoke_url(),
        fake.library_api_url(),
        fake.picker_api_url(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_schedules_notifies_hands_over_run_now_reloads_and_stops_cleanly() {
    let fake = FakeGoogle::start(FakeConfig::with_items(12)).await.unwrap();
    let ws = workspace!();
    let (ping_url, mut pings) = ping_server().await;
    let good_config = config_text(&ws, &fake, &ping_url);
    ws.write_config(&good_config);
    ws.authorize(&fake, &[scopes::LIBRARY_READONLY_APPCREATED]);

    let notify_path = ws.path().join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    let mut daemon = tokio::process::Command::from(ws.command(&[]))
        .env("NOTIFY_SOCKET", &notify_path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = daemon.id().unwrap();

    notified(&notify, "READY=1").await;
    // The first cycle (catch-up at start, or the 2-second cron) succeeds and pings.
    assert_eq!(next_ping(&mut pings).await, "/ping");
    notified(&notify, "STATUS=").await;
    // The cron keeps firing on its own: another successful cycle follows.
    assert_eq!(next_ping(&mut pings).await, "/ping");

    // --run-now is done by the daemon, not beside it (sled would refuse a second opener).
    let run_now = ws.run_async(&["--run-now"]).await;
    assert_eq!(run_now.status.code(), Some(0), "{}", describe(&run_now));
    let stdout = String::from_utf8_lossy(&run_now.stdout);
    assert!(stdout.contains("running daemon"), "{stdout}");

    // SIGHUP with a broken config: the daemon keeps running on the old one.
    ws.write_config("library_dir = [\n");
    signal(pid, "HUP");
    ws.write_config(&good_config);
    let still = ws.run_async(&["--run-now"]).await;
    assert_eq!(still.status.code(), Some(0), "{}", describe(&still));
    assert!(
        daemon.try_wait().unwrap().is_none(),
        "the daemon died on a bad reload"
    );

    // A failing cycle pings <url>/fail.
    let token = ws.state_dir().join("token.json");
    let saved = std::fs::read(&token).unwrap();
    std::fs::remove_file(&token).unwrap();
    let failed = ws.run_async(&["--run-now"]).await;
    assert_eq!(failed.status.code(), Some(3), "{}", describe(&failed));
    loop {
        if next_ping(&mut pings).await == "/ping/fail" {
            break;
        }
    }
    std::fs::write(&token, saved).unwrap();

    // SIGTERM while a slow download is in flight: exit 0 within 10 s, no partial file.
    let day = fake.clock().now() - chrono::Duration::days(1);
    fake.add_items(&[
        NewItem::photo("IMG_slow.jpg", day),
        NewItem::photo("IMG_slow2.jpg", day),
    ])
    .unwrap();
    fake.faults().inject(
        EndpointKind::Media,
        Fault::SlowBody {
            chunk_bytes: 512,
            delay: Duration::from_millis(200),
        },
        Schedule::Always,
    );
    signal(pid, "USR1");
    notified(&notify, "downloading").await;
    let stopping = std::time::Instant::now();
    signal(pid, "TERM");
    let status = tokio::time::timeout(Duration::from_secs(10), daemon.wait())
        .await
        .expect("the daemon exits within 10 s of SIGTERM")
        .unwrap();
    let mut stderr = String::new();
    daemon
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .await
        .unwrap();
    assert_eq!(
        status.code(),
        Some(0),
        "after {:?}: {stderr}",
        stopping.elapsed()
    );
    assert!(temp_files_under(&ws.library_dir()).is_empty());
    assert!(!Path::new(&ws.state_dir().join("control.sock")).exists());
    notified(&notify, "STOPPING=1").await;
}
