//! The service runtime end to end, in-process: a scripted CycleRunner, the real control
//! socket, a datagram socket standing in for systemd, a manual clock, and a plain TCP
//! server on 127.0.0.1 standing in for healthchecks.io. No test waits on a timer to
//! synchronise; every wait is on a message, with a generous timeout as a failure guard.

// Test helpers outside #[test] functions: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener as StdUnixListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use futures::future::BoxFuture;
use gphotos_backup::service::{
    CycleContext, CycleOutcome, CycleRequest, CycleRunner, DaemonEvent, FailureKind, ManualClock,
    Schedule, ServiceError, ServiceOptions, StopReason, Stopped, Trigger, request_run_now,
    request_status, run_daemon_with_events,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UnixDatagram};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

/// Failure guard only: no correct run comes anywhere near it.
const GUARD: Duration = Duration::from_secs(10);

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(GUARD, future)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// A runner that reports each start and, when `hold` is set, runs until released or
/// cancelled.
struct Scripted {
    started: mpsc::UnboundedSender<CycleRequest>,
    release: Arc<Notify>,
    hold: bool,
    ignore_cancel: bool,
    outcome: CycleOutcome,
}

impl CycleRunner for Scripted {
    fn run_cycle(
        &self,
        request: CycleRequest,
        cx: CycleContext,
    ) -> BoxFuture<'static, CycleOutcome> {
        let started = self.started.clone();
        let release = Arc::clone(&self.release);
        let (hold, ignore_cancel, outcome) = (self.hold, self.ignore_cancel, self.outcome.clone());
        Box::pin(async move {
            cx.status
                .set(format!("downloading 1/2 ({})", request.trigger));
            let _ = started.send(request);
            if !hold {
                return outcome;
            }
            if ignore_cancel {
                release.notified().await;
                return outcome;
            }
            tokio::select! {
                _ = release.notified() => outcome,
                _ = cx.cancel.cancelled() => CycleOutcome::Failed {
                    kind: FailureKind::Interrupted,
                    message: "stopped between files".into(),
                },
            }
        })
    }
}

struct Harness {
    _dir: tempfile::TempDir,
    state_dir: PathBuf,
    notify: UnixDatagram,
    started: mpsc::UnboundedReceiver<CycleRequest>,
    release: Arc<Notify>,
    events: mpsc::Sender<DaemonEvent>,
    daemon: JoinHandle<Result<Stopped, ServiceError>>,
}

struct Setup {
    cron: &'static str,
    clock: Option<ManualClock>,
    last_success: Option<DateTime<Utc>>,
    hold: bool,
    ignore_cancel: bool,
    outcome: CycleOutcome,
    healthcheck_url: Option<String>,
    watchdog: Option<Duration>,
    grace: Duration,
    reload: Box<dyn Fn() -> Result<ServiceOptions, String> + Send>,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            // Far from any test's "now": only tests that move the clock see it fire.
            cron: "0 17 3 * * *",
            clock: Some(ManualClock::new(
                Utc.with_ymd_and_hms(2026, 3, 28, 12, 0, 0).unwrap(),
            )),
            // Recent enough that no catch-up runs unless a test asks for one.
            last_success: Some(Utc.with_ymd_and_hms(2026, 3, 28, 2, 17, 0).unwrap()),
            hold: false,
            ignore_cancel: false,
            outcome: CycleOutcome::Success {
                summary: "3 new items".into(),
            },
            healthcheck_url: None,
            watchdog: None,
            grace: Duration::from_secs(5),
            reload: Box::new(|| Err("no reload in this test".into())),
        }
    }
}

fn write_last_success(state_dir: &Path, at: DateTime<Utc>) {
    std::fs::write(
        state_dir.join("daemon-last-success"),
        format!("{}\n", at.to_rfc3339()),
    )
    .unwrap();
}

fn options(state_dir: &Path, setup: &Setup, notify: &Path) -> ServiceOptions {
    let schedule = Schedule::new(setup.cron, chrono_tz::Europe::Berlin).unwrap();
    let mut options = ServiceOptions::new(state_dir, schedule);
    if let Some(clock) = &setup.clock {
        options.clock = Arc::new(clock.clone());
    }
    options.health.healthcheck_url = setup.healthcheck_url.clone();
    options.health.ping_timeout = Duration::from_secs(5);
    options.systemd.notify_socket = Some(notify.to_path_buf());
    options.systemd.watchdog_timeout = setup.watchdog;
    options.shutdown_grace = setup.grace;
    options
}

async fn start(setup: Setup) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().join("state");
    std::fs::create_dir(&state_dir).unwrap();
    if let Some(at) = setup.last_success {
        write_last_success(&state_dir, at);
    }
    let notify_path = dir.path().join("notify");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    let (started_tx, started) = mpsc::unbounded_channel();
    let release = Arc::new(Notify::new());
    let runner = Scripted {
        started: started_tx,
        release: Arc::clone(&release),
        hold: setup.hold,
        ignore_cancel: setup.ignore_cancel,
        outcome: setup.outcome.clone(),
    };
    let options = options(&state_dir, &setup, &notify_path);
    let (events, events_rx) = mpsc::channel(8);
    let daemon = tokio::spawn(run_daemon_with_events(
        options,
        Arc::new(runner),
        setup.reload,
        events_rx,
    ));
    let mut harness = Harness {
        _dir: dir,
        state_dir,
        notify,
        started,
        release,
        events,
        daemon,
    };
    harness.datagram_with("READY=1").await;
    harness
}

impl Harness {
    /// The next datagram from the daemon that contains `needle`.
    async fn datagram_with(&mut self, needle: &str) -> String {
        within(needle, async {
            let mut buf = vec![0u8; 4096];
            loop {
                let n = self.notify.recv(&mut buf).await.unwrap();
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                if text.contains(needle) {
                    return text;
                }
            }
        })
        .await
    }

    async fn next_start(&mut self) -> CycleRequest {
        within("a cycle to start", self.started.recv())
            .await
            .expect("runner alive")
    }

    /// Returns once no cycle runs and `cycles` have started; each check is a round trip
    /// through the daemon's control socket.
    async fn wait_idle_after(&self, cycles: u64) {
        within("the cycle to finish", async {
            loop {
                let status = request_status(&self.state_dir).await.unwrap().unwrap();
                if status.running.is_none() && status.cycles_started == cycles {
                    return;
                }
                tokio::task::yield_now().await;
            }
        })
        .await;
    }

    async fn stop(self) -> Stopped {
        self.events.send(DaemonEvent::Shutdown).await.unwrap();
        within("the daemon to stop", self.daemon)
            .await
            .unwrap()
            .expect("daemon ran")
    }
}

#[tokio::test]
async fn run_now_round_trip_through_the_control_socket() {
    let mut h = start(Setup::default()).await;
    let socket = h.state_dir.join("control.sock");
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "control socket must be private");

    let outcome = within("run-now", request_run_now(&h.state_dir, false))
        .await
        .unwrap()
        .expect("a daemon answered");
    assert_eq!(
        outcome,
        CycleOutcome::Success {
            summary: "3 new items".into()
        }
    );
    assert_eq!(outcome.exit_code(), 0);
    let request = h.next_start().await;
    assert_eq!(
        request,
        CycleRequest {
            trigger: Trigger::RunNow,
            rescan: false
        }
    );

    let status = request_status(&h.state_dir).await.unwrap().unwrap();
    assert_eq!(status.cycles_started, 1);
    assert_eq!(status.running, None);
    assert_eq!(status.pid, std::process::id());
    assert_eq!(status.schedule, "0 17 3 * * *");
    // The success was recorded at the (manual) clock's time, and persisted.
    let now = Utc.with_ymd_and_hms(2026, 3, 28, 12, 0, 0).unwrap();
    assert_eq!(status.last_success, Some(now));
    let file = std::fs::read_to_string(h.state_dir.join("daemon-last-success")).unwrap();
    assert_eq!(file.trim(), now.to_rfc3339());

    let stopped = h.stop().await;
    assert_eq!(stopped.reason, StopReason::Requested);
    assert_eq!(stopped.exit_code(), 0);
    assert!(!socket.exists(), "socket removed on exit");
}

#[tokio::test]
async fn two_run_now_requests_during_a_cycle_share_it() {
    let mut h = start(Setup {
        hold: true,
        ..Setup::default()
    })
    .await;
    let first = tokio::spawn({
        let dir = h.state_dir.clone();
        async move { request_run_now(&dir, false).await }
    });
    assert_eq!(h.next_start().await.trigger, Trigger::RunNow);
    let second = tokio::spawn({
        let dir = h.state_dir.clone();
        async move { request_run_now(&dir, false).await }
    });
    // SIGUSR1 while it runs joins too.
    h.events.send(DaemonEvent::RunNow).await.unwrap();
    // Release only once both have reached the run slot and joined the running cycle;
    // each status request is a round trip through the daemon, not a timed wait.
    let status = within("both triggers to join", async {
        loop {
            let status = request_status(&h.state_dir).await.unwrap().unwrap();
            if status.triggers_joined == 2 {
                return status;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert_eq!(status.running.map(|r| r.trigger), Some(Trigger::RunNow));
    assert!(status.phase.contains("downloading 1/2"), "{}", status.phase);
    h.release.notify_one();
    let (a, b) = (
        within("first client", first).await.unwrap().unwrap(),
        within("second client", second).await.unwrap().unwrap(),
    );
    assert_eq!(a, b);
    assert_eq!(a.map(|o| o.label()), Some("success"));
    let status = request_status(&h.state_dir).await.unwrap().unwrap();
    assert_eq!(status.cycles_started, 1, "{status:?}");
    assert!(h.started.try_recv().is_err());
    h.stop().await;
}

#[tokio::test]
async fn no_daemon_and_stale_socket_mean_none() {
    let dir = tempfile::tempdir().unwrap();
    assert!(request_run_now(dir.path(), false).await.unwrap().is_none());
    assert!(request_status(dir.path()).await.unwrap().is_none());

    // A socket file left by a daemon that died: nobody accepts on it.
    let path = dir.path().join("control.sock");
    drop(StdUnixListener::bind(&path).unwrap());
    assert!(path.exists());
    assert!(request_run_now(dir.path(), false).await.unwrap().is_none());
}

#[tokio::test]
async fn daemon_replaces_a_stale_socket_and_refuses_a_second_instance() {
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().to_path_buf();
    drop(StdUnixListener::bind(state_dir.join("control.sock")).unwrap());
    write_last_success(
        &state_dir,
        Utc.with_ymd_and_hms(2026, 3, 28, 2, 17, 0).unwrap(),
    );
    let notify_path = dir.path().join("notify");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    let setup = Setup::default();
    let (tx, _started) = mpsc::unbounded_channel();
    let runner = || Scripted {
        started: tx.clone(),
        release: Arc::new(Notify::new()),
        hold: false,
        ignore_cancel: false,
        outcome: CycleOutcome::Success {
            summary: String::new(),
        },
    };
    let (events, events_rx) = mpsc::channel(1);
    let first = tokio::spawn(run_daemon_with_events(
        options(&state_dir, &setup, &notify_path),
        Arc::new(runner()),
        || Err("none".to_string()),
        events_rx,
    ));
    let mut buf = [0u8; 512];
    within("READY", async {
        loop {
            let n = notify.recv(&mut buf).await.unwrap();
            if buf[..n].starts_with(b"READY=1") {
                break;
            }
        }
    })
    .await;
    assert!(request_status(&state_dir).await.unwrap().is_some());

    let (_events2, events_rx2) = mpsc::channel(1);
    let second = run_daemon_with_events(
        options(&state_dir, &setup, &notify_path),
        Arc::new(runner()),
        || Err("none".to_string()),
        events_rx2,
    )
    .await;
    assert!(
        matches!(second, Err(ServiceError::AlreadyRunning { .. })),
        "{second:?}"
    );
    // The refused instance must not have removed the live socket.
    assert!(request_status(&state_dir).await.unwrap().is_some());

    drop(events); // closing the event channel stops the daemon too
    let stopped = within("stop", first).await.unwrap().unwrap();
    assert_eq!(stopped.reason, StopReason::EventsClosed);
}

#[tokio::test]
async fn systemd_hears_ready_status_watchdog_and_stopping() {
    let mut h = start(Setup {
        watchdog: Some(Duration::from_millis(200)),
        hold: true,
        ..Setup::default()
    })
    .await;
    h.datagram_with("WATCHDOG=1").await;
    h.events.send(DaemonEvent::RunNow).await.unwrap();
    // The runner's own progress text reaches systemd while the cycle runs.
    let progress = h.datagram_with("STATUS=downloading").await;
    assert_eq!(progress, "STATUS=downloading 1/2 (signal)\n");
    h.release.notify_one();
    let idle = h.datagram_with("STATUS=idle; last cycle success").await;
    assert!(idle.contains("3 new items"), "{idle}");
    h.events.send(DaemonEvent::Shutdown).await.unwrap();
    h.datagram_with("STOPPING=1").await;
    let stopped = within("stop", h.daemon).await.unwrap().unwrap();
    assert!(!stopped.cycle_was_running);
}

#[tokio::test]
async fn ready_datagram_carries_the_next_run_in_local_time() {
    let dir = tempfile::tempdir().unwrap();
    let notify_path = dir.path().join("notify");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    let setup = Setup::default();
    let (tx, _rx) = mpsc::unbounded_channel();
    let (events, events_rx) = mpsc::channel(1);
    write_last_success(
        dir.path(),
        Utc.with_ymd_and_hms(2026, 3, 28, 2, 17, 0).unwrap(),
    );
    let daemon = tokio::spawn(run_daemon_with_events(
        options(dir.path(), &setup, &notify_path),
        Arc::new(Scripted {
            started: tx,
            release: Arc::new(Notify::new()),
            hold: false,
            ignore_cancel: false,
            outcome: setup.outcome.clone(),
        }),
        || Err("none".to_string()),
        events_rx,
    ));
    let mut buf = [0u8; 512];
    let n = within("READY", notify.recv(&mut buf)).await.unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    // 2026-03-29 is the spring-forward day: 03:17 is CEST there.
    assert_eq!(
        text,
        "READY=1\nSTATUS=idle; next run 2026-03-29 03:17:00 CEST\n"
    );
    drop(events);
    within("stop", daemon).await.unwrap().unwrap();
}

#[tokio::test]
async fn schedule_fires_on_the_local_wall_clock_across_both_dst_changes() {
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 3, 28, 12, 0, 0).unwrap());
    let mut h = start(Setup {
        clock: Some(clock.clone()),
        ..Setup::default()
    })
    .await;
    let status = request_status(&h.state_dir).await.unwrap().unwrap();
    // 03:17 CEST, not 03:17 CET (02:17 UTC) as a frozen offset would give.
    let first = Utc.with_ymd_and_hms(2026, 3, 29, 1, 17, 0).unwrap();
    assert_eq!(status.next_run, Some(first));

    clock.set(first);
    assert_eq!(h.next_start().await.trigger, Trigger::Schedule);
    let status = request_status(&h.state_dir).await.unwrap().unwrap();
    assert_eq!(
        status.next_run,
        Some(Utc.with_ymd_and_hms(2026, 3, 30, 1, 17, 0).unwrap())
    );

    h.wait_idle_after(1).await;
    // Months later (a suspended machine): the overdue run fires once, not once per
    // missed day, and the schedule continues from now.
    clock.set(Utc.with_ymd_and_hms(2026, 10, 24, 12, 0, 0).unwrap());
    assert_eq!(h.next_start().await.trigger, Trigger::Schedule);
    let status = request_status(&h.state_dir).await.unwrap().unwrap();
    // 2026-10-25 is the fall-back day: 03:17 is CET there, 02:17 UTC.
    let autumn = Utc.with_ymd_and_hms(2026, 10, 25, 2, 17, 0).unwrap();
    assert_eq!(status.next_run, Some(autumn));
    h.wait_idle_after(2).await;
    clock.set(autumn);
    assert_eq!(h.next_start().await.trigger, Trigger::Schedule);
    let status = request_status(&h.state_dir).await.unwrap().unwrap();
    assert_eq!(
        status.next_run,
        Some(Utc.with_ymd_and_hms(2026, 10, 26, 2, 17, 0).unwrap())
    );
    assert_eq!(status.cycles_started, 3);
    h.stop().await;
}

#[tokio::test]
async fn missed_run_is_caught_up_at_start() {
    let mut h = start(Setup {
        last_success: Some(Utc.with_ymd_and_hms(2026, 3, 25, 2, 17, 0).unwrap()),
        ..Setup::default()
    })
    .await;
    assert_eq!(h.next_start().await.trigger, Trigger::CatchUp);
    h.stop().await;
}

#[tokio::test]
async fn recent_success_means_no_catch_up() {
    let mut h = start(Setup::default()).await;
    // If a catch-up had started, this request would have joined it and the runner would
    // have seen CatchUp first.
    request_run_now(&h.state_dir, false).await.unwrap().unwrap();
    assert_eq!(h.next_start().await.trigger, Trigger::RunNow);
    h.stop().await;
}

#[tokio::test]
async fn sighup_with_a_broken_config_keeps_the_old_schedule() {
    let answers: Arc<Mutex<Vec<Result<&'static str, String>>>> = Arc::new(Mutex::new(vec![
        Ok("0 0 12 * * *"),
        Err("/etc/gphotos-backup/config.toml:3:1: key `schedule.cron`: 5 fields".into()),
    ]));
    let state_dir_cell: Arc<Mutex<Option<PathBuf>>> = Arc::new(Mutex::new(None));
    let reload = {
        let answers = Arc::clone(&answers);
        let cell = Arc::clone(&state_dir_cell);
        move || {
            let answer = answers.lock().unwrap().pop().expect("no more reloads");
            let cron = answer?;
            let dir = cell.lock().unwrap().clone().expect("state dir known");
            Ok(ServiceOptions::new(
                dir,
                Schedule::new(cron, chrono_tz::Europe::Berlin).map_err(|e| e.to_string())?,
            ))
        }
    };
    let mut h = start(Setup {
        reload: Box::new(reload),
        ..Setup::default()
    })
    .await;
    *state_dir_cell.lock().unwrap() = Some(h.state_dir.clone());

    h.events.send(DaemonEvent::Reload).await.unwrap();
    h.datagram_with("RELOADING=1").await;
    h.datagram_with("READY=1").await;
    let status = request_status(&h.state_dir).await.unwrap().unwrap();
    assert_eq!(status.schedule, "0 17 3 * * *", "old schedule kept");

    h.events.send(DaemonEvent::Reload).await.unwrap();
    h.datagram_with("RELOADING=1").await;
    h.datagram_with("READY=1").await;
    let status = request_status(&h.state_dir).await.unwrap().unwrap();
    assert_eq!(status.schedule, "0 0 12 * * *");
    // Noon Berlin on 2026-03-28 (the clock's day) has passed; next is the 29th, CEST.
    assert_eq!(
        status.next_run,
        Some(Utc.with_ymd_and_hms(2026, 3, 29, 10, 0, 0).unwrap())
    );
    assert!(answers.lock().unwrap().is_empty());
    h.stop().await;
}

#[tokio::test]
async fn shutdown_cancels_and_drains_the_running_cycle() {
    let mut h = start(Setup {
        hold: true,
        ..Setup::default()
    })
    .await;
    let client = tokio::spawn({
        let dir = h.state_dir.clone();
        async move { request_run_now(&dir, false).await }
    });
    h.next_start().await;
    let stopped = h.stop().await;
    assert_eq!(
        stopped,
        Stopped {
            reason: StopReason::Requested,
            cycle_was_running: true,
            cycle_drained: true
        }
    );
    assert_eq!(stopped.exit_code(), 0);
    // The waiting --run-now client hears how the cycle ended.
    let outcome = within("client", client).await.unwrap().unwrap().unwrap();
    assert_eq!(outcome.label(), "interrupted");
    assert_eq!(outcome.exit_code(), 1);
}

#[tokio::test]
async fn an_engine_that_ignores_cancellation_is_abandoned_after_the_grace() {
    let mut h = start(Setup {
        hold: true,
        ignore_cancel: true,
        grace: Duration::from_millis(200),
        ..Setup::default()
    })
    .await;
    h.events.send(DaemonEvent::RunNow).await.unwrap();
    h.next_start().await;
    let stopped = h.stop().await;
    assert!(stopped.cycle_was_running);
    assert!(!stopped.cycle_drained);
    assert_eq!(stopped.exit_code(), 1);
}

/// A minimal HTTP/1.1 server: reports (method, path, body) of each request, answers 200.
async fn ping_server() -> (String, mpsc::UnboundedReceiver<(String, String, String)>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut data = Vec::new();
                let mut buf = [0u8; 4096];
                let (head, body_start) = loop {
                    let n = stream.read(&mut buf).await.unwrap();
                    if n == 0 {
                        return;
                    }
                    data.extend_from_slice(&buf[..n]);
                    if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                        break (String::from_utf8_lossy(&data[..end]).into_owned(), end + 4);
                    }
                };
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                while data.len() < body_start + length {
                    let n = stream.read(&mut buf).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    data.extend_from_slice(&buf[..n]);
                }
                let mut first = head.lines().next().unwrap_or("").split(' ');
                let method = first.next().unwrap_or("").to_string();
                let path = first.next().unwrap_or("").to_string();
                let body = String::from_utf8_lossy(&data[body_start..]).into_owned();
                stream
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nOK",
                    )
                    .await
                    .unwrap();
                let _ = tx.send((method, path, body));
            });
        }
    });
    (format!("http://{address}/ping/abc-123"), rx)
}

#[tokio::test]
async fn healthcheck_is_pinged_on_success() {
    let (url, mut pings) = ping_server().await;
    let h = start(Setup {
        healthcheck_url: Some(url),
        ..Setup::default()
    })
    .await;
    request_run_now(&h.state_dir, false).await.unwrap().unwrap();
    let (method, path, body) = within("ping", pings.recv()).await.unwrap();
    assert_eq!((method.as_str(), path.as_str()), ("POST", "/ping/abc-123"));
    assert_eq!(body, "success: 3 new items");
    h.stop().await;
}

#[tokio::test]
async fn healthcheck_fail_endpoint_on_failure() {
    let (url, mut pings) = ping_server().await;
    let h = start(Setup {
        healthcheck_url: Some(url),
        outcome: CycleOutcome::Failed {
            kind: FailureKind::Auth,
            message: "refresh token revoked; run `gphotos-backup auth`".into(),
        },
        ..Setup::default()
    })
    .await;
    let outcome = request_run_now(&h.state_dir, false).await.unwrap().unwrap();
    assert_eq!(outcome.exit_code(), 3);
    let (method, path, body) = within("ping", pings.recv()).await.unwrap();
    assert_eq!(
        (method.as_str(), path.as_str()),
        ("POST", "/ping/abc-123/fail")
    );
    assert!(body.starts_with("failed: refresh token revoked"), "{body}");
    h.stop().await;
}

#[tokio::test]
async fn unreachable_healthcheck_does_not_fail_the_cycle() {
    // A port nobody listens on: bind, note the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let h = start(Setup {
        healthcheck_url: Some(format!("http://127.0.0.1:{port}/ping/x")),
        ..Setup::default()
    })
    .await;
    let outcome = request_run_now(&h.state_dir, false).await.unwrap().unwrap();
    assert_eq!(outcome.label(), "success");
    h.stop().await;
}
