//! Real Unix signals through `run_daemon`: the test re-runs its own binary as a child
//! daemon (signals must not hit the test harness), then drives it with `kill` and
//! watches a datagram socket standing in for systemd's NOTIFY_SOCKET.

// Test helpers outside #[test] functions: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use gphotos_backup::service::{
    CycleContext, CycleOutcome, CycleRequest, CycleRunner, Schedule, ServiceOptions,
    request_status, run_daemon,
};
use tokio::net::UnixDatagram;

const CHILD_ENV: &str = "GPHOTOS_BACKUP_SIGNAL_TEST_DIR";
const GUARD: Duration = Duration::from_secs(10);

struct Counting(AtomicU64);

impl CycleRunner for Counting {
    fn run_cycle(
        &self,
        request: CycleRequest,
        _: CycleContext,
    ) -> BoxFuture<'static, CycleOutcome> {
        let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        Box::pin(async move {
            CycleOutcome::Success {
                summary: format!("cycle {n} ({})", request.trigger),
            }
        })
    }
}

fn child_options(dir: &Path) -> ServiceOptions {
    let schedule = Schedule::new("0 17 3 * * *", chrono_tz::Europe::Berlin).unwrap();
    let mut options = ServiceOptions::new(dir.join("state"), schedule);
    options.systemd.notify_socket = Some(dir.join("notify"));
    options
}

/// The daemon side: runs until SIGTERM, and must stop cleanly.
async fn child(dir: PathBuf) {
    std::fs::create_dir_all(dir.join("state")).unwrap();
    // A recent success: no catch-up cycle muddles the count.
    std::fs::write(
        dir.join("state/daemon-last-success"),
        format!("{}\n", chrono::Utc::now().to_rfc3339()),
    )
    .unwrap();
    let options = child_options(&dir);
    // Every reload fails, as with a config broken while the daemon runs.
    let reload = || Err("line 7: schedule.cron: not a cron expression".to_string());
    let stopped = run_daemon(options, Arc::new(Counting(AtomicU64::new(0))), reload)
        .await
        .unwrap();
    assert!(!stopped.cycle_was_running);
    assert_eq!(stopped.exit_code(), 0);
}

async fn datagram_with(socket: &UnixDatagram, needle: &str) -> String {
    tokio::time::timeout(GUARD, async {
        let mut buf = vec![0u8; 4096];
        loop {
            let n = socket.recv(&mut buf).await.unwrap();
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            if text.contains(needle) {
                return text;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no datagram with {needle:?}"))
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name} {pid}");
}

#[tokio::test]
async fn signals_run_reload_and_stop_the_daemon() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        child(PathBuf::from(dir)).await;
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let notify = UnixDatagram::bind(dir.path().join("notify")).unwrap();
    let mut daemon = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "signals_run_reload_and_stop_the_daemon",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = daemon.id().unwrap();
    datagram_with(&notify, "READY=1").await;
    let state_dir = dir.path().join("state");

    // SIGUSR1: one cycle, whose outcome becomes the systemd status.
    signal(pid, "USR1");
    let status = datagram_with(&notify, "STATUS=idle; last cycle").await;
    assert!(
        status.starts_with("STATUS=idle; last cycle success: cycle 1 (signal); next run 20"),
        "{status}"
    );

    // SIGHUP with a failing reload: systemd sees the reload end, the daemon keeps going
    // on the old schedule.
    signal(pid, "HUP");
    datagram_with(&notify, "RELOADING=1").await;
    datagram_with(&notify, "READY=1").await;
    let status = request_status(&state_dir)
        .await
        .unwrap()
        .expect("daemon alive");
    assert_eq!(status.schedule, "0 17 3 * * *");
    assert_eq!(status.cycles_started, 1);

    // SIGTERM: STOPPING=1, a clean exit 0, the socket gone.
    signal(pid, "TERM");
    datagram_with(&notify, "STOPPING=1").await;
    let exit = tokio::time::timeout(GUARD, daemon.wait())
        .await
        .expect("the daemon exits promptly")
        .unwrap();
    assert!(exit.success(), "{exit}");
    assert!(!state_dir.join("control.sock").exists());
}
