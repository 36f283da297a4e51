//! The main loop: one timer for the schedule, the control socket, signals (as events) and
//! the systemd watchdog, all awaited together; cycles run in their own task so the loop
//! stays responsive (and keeps feeding the watchdog) while they run.

use std::future::pending;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use sd_notify::NotifyState;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::{Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::service::control::{self, ControlHandler, DaemonStatus};
use crate::service::notify::{Notifier, StatusReporter};
use crate::service::slot::{CycleHooks, RunSlot};
use crate::service::state::{self, StateFile};
use crate::service::{
    Clock, CycleOutcome, CycleRequest, CycleRunner, HealthOptions, Schedule, ServiceError,
    ServiceOptions, Trigger, health, signals,
};

/// What the main loop reacts to besides its timer and socket; signals map onto these
/// ([`crate::service::event_for_signal`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DaemonEvent {
    /// Stop scheduling, cancel the running cycle, wait for it, return.
    Shutdown,
    /// Call the reload closure; keep the current options if it fails.
    Reload,
    /// Run a cycle now (or join the running one).
    RunNow,
}

/// Why the daemon returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// A stop was requested (SIGTERM, SIGINT or [`DaemonEvent::Shutdown`]).
    Requested,
    /// The event channel closed: nobody can ask us anything any more.
    EventsClosed,
}

/// How the daemon stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped {
    pub reason: StopReason,
    /// A cycle was running when the stop began (it was cancelled).
    pub cycle_was_running: bool,
    /// The cancelled cycle returned within the grace period (always true if none ran).
    pub cycle_drained: bool,
}

impl Stopped {
    /// 0 for a clean stop (what systemd expects after SIGTERM); 1 when the engine did not
    /// stop in time, because files may then have been left mid-write.
    pub fn exit_code(&self) -> u8 {
        if self.cycle_drained {
            crate::exit::OK
        } else {
            crate::exit::FAILURE
        }
    }
}

/// Runs the daemon until SIGTERM or SIGINT. Installs the signal handlers itself.
///
/// `reload` is called on SIGHUP; it returns the new options or a reason to keep the old.
pub async fn run_daemon<R>(
    options: ServiceOptions,
    runner: Arc<dyn CycleRunner>,
    reload: R,
) -> Result<Stopped, ServiceError>
where
    R: Fn() -> Result<ServiceOptions, String> + Send + 'static,
{
    let (sender, events) = mpsc::channel(16);
    let forwarder = signals::forward_signals(sender)?;
    let result = run_daemon_with_events(options, runner, reload, events).await;
    forwarder.abort();
    result
}

/// [`run_daemon`] driven by `events` instead of signals (tests, embedding). Dropping every
/// sender stops the daemon like [`DaemonEvent::Shutdown`].
pub async fn run_daemon_with_events<R>(
    mut options: ServiceOptions,
    runner: Arc<dyn CycleRunner>,
    reload: R,
    mut events: mpsc::Receiver<DaemonEvent>,
) -> Result<Stopped, ServiceError>
where
    R: Fn() -> Result<ServiceOptions, String> + Send + 'static,
{
    let clock = Arc::clone(&options.clock);
    let started_at = clock.now();
    let mut next_run =
        Some(
            options
                .schedule
                .next_after(started_at)
                .ok_or_else(|| ServiceError::NeverFires {
                    expression: options.schedule.expression().to_string(),
                })?,
        );
    state::ensure_dir(&options.state_dir).map_err(|source| ServiceError::StateDir {
        path: options.state_dir.clone(),
        source,
    })?;
    let listener = control::bind(&options.state_dir).await?;
    let _socket = RemoveOnDrop(control::socket_path(&options.state_dir));

    let notifier = Notifier::new(options.systemd.notify_socket.clone());
    let status = StatusReporter::new();
    let state_file = StateFile::new(&options.state_dir);
    let hooks = Arc::new(Hooks {
        last_success: Mutex::new(state_file.last_success()),
        state_file,
        health: Mutex::new(options.health.clone()),
        http: reqwest::Client::builder().build(),
        clock: Arc::clone(&clock),
    });
    let shutdown = CancellationToken::new();
    let slot = RunSlot::new(
        runner,
        shutdown.clone(),
        status.clone(),
        Arc::clone(&hooks) as Arc<dyn CycleHooks>,
    );
    let control = Arc::new(Control {
        slot: Arc::clone(&slot),
        status: status.clone(),
        hooks: Arc::clone(&hooks),
        info: Mutex::new(Info {
            next_run,
            schedule: options.schedule.clone(),
        }),
    });

    slot.set_idle_note(next_run_note(next_run, &options.schedule));
    let forwarder = status.forward_to(notifier.clone());
    notifier.send(&[NotifyState::Ready, NotifyState::Status(&status.get())]);
    tracing::info!(
        schedule = options.schedule.expression(),
        timezone = %options.schedule.timezone(),
        next_run = ?next_run,
        "daemon started"
    );

    let last_success = *lock(&hooks.last_success);
    if needs_catch_up(&options.schedule, last_success, started_at) {
        tracing::info!(
            last_success = ?last_success,
            "the last successful run is older than one schedule interval; catching up now"
        );
        spawn_cycle(&slot, Trigger::CatchUp);
    }

    let mut watchdog = options.systemd.watchdog_timeout.map(|timeout| {
        let mut interval = tokio::time::interval(timeout / 2);
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        interval
    });
    let mut connections = JoinSet::new();
    let mut sleep = sleep_until(clock.as_ref(), next_run);

    let reason = loop {
        tokio::select! {
            () = &mut sleep => {
                let now = clock.now();
                if let Some(due) = next_run.filter(|due| now >= *due) {
                    tracing::debug!(%due, "schedule fired");
                    next_run = options.schedule.next_after(now.max(due));
                    if next_run.is_none() {
                        tracing::warn!("the schedule never fires again; only run-now requests will start cycles");
                    }
                    lock(&control.info).next_run = next_run;
                    slot.set_idle_note(next_run_note(next_run, &options.schedule));
                    spawn_cycle(&slot, Trigger::Schedule);
                }
                sleep = sleep_until(clock.as_ref(), next_run);
            }
            event = events.recv() => match event {
                None => break StopReason::EventsClosed,
                Some(DaemonEvent::Shutdown) => break StopReason::Requested,
                Some(DaemonEvent::RunNow) => {
                    tracing::info!("run requested by signal");
                    spawn_cycle(&slot, Trigger::Signal);
                }
                Some(DaemonEvent::Reload) => {
                    let mut states = vec![NotifyState::Reloading];
                    if let Ok(now) = NotifyState::monotonic_usec_now() {
                        states.push(now);
                    }
                    notifier.send(&states);
                    match apply_reload(&mut options, reload()) {
                        ReloadResult::Kept(reason) => tracing::error!(
                            "configuration reload failed; keeping the previous configuration: {reason}"
                        ),
                        ReloadResult::Applied { schedule_changed } => {
                            *lock(&hooks.health) = options.health.clone();
                            if schedule_changed {
                                next_run = options.schedule.next_after(clock.now());
                                sleep = sleep_until(clock.as_ref(), next_run);
                            }
                            slot.set_idle_note(next_run_note(next_run, &options.schedule));
                            let mut info = lock(&control.info);
                            info.schedule = options.schedule.clone();
                            info.next_run = next_run;
                            tracing::info!(
                                schedule = options.schedule.expression(),
                                timezone = %options.schedule.timezone(),
                                next_run = ?next_run,
                                "configuration reloaded"
                            );
                        }
                    }
                    notifier.send(&[NotifyState::Ready]);
                }
            },
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(control::serve(
                        stream,
                        Arc::clone(&control) as Arc<dyn ControlHandler>,
                    ));
                }
                Err(err) => {
                    // E.g. out of file descriptors: back off instead of spinning on it.
                    tracing::warn!("control socket accept failed: {err}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            () = tick(&mut watchdog) => notifier.send(&[NotifyState::Watchdog]),
        }
    };

    tracing::info!("stopping: no new cycles; cancelling the running one");
    notifier.send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
    let in_flight = slot.close();
    shutdown.cancel();
    let cycle_was_running = in_flight.is_some();
    let cycle_drained = match in_flight {
        None => true,
        Some(drain) => {
            let insisted = async {
                while let Some(event) = events.recv().await {
                    if event == DaemonEvent::Shutdown {
                        return;
                    }
                }
                pending::<()>().await;
            };
            tokio::select! {
                outcome = tokio::time::timeout(options.shutdown_grace, drain) => match outcome {
                    Ok(outcome) => {
                        tracing::info!(outcome = outcome.label(), "the running cycle stopped");
                        true
                    }
                    Err(_) => {
                        tracing::error!(
                            "the running cycle did not stop within {:?}; exiting anyway",
                            options.shutdown_grace
                        );
                        false
                    }
                },
                () = insisted => {
                    tracing::warn!("second stop request; not waiting for the running cycle");
                    false
                }
            }
        }
    };
    // Clients waiting on the cancelled cycle now have its outcome; let them receive it.
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    connections.abort_all();
    forwarder.abort();
    Ok(Stopped {
        reason,
        cycle_was_running,
        cycle_drained,
    })
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Never held across user code; a panic elsewhere leaves the data consistent.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn spawn_cycle(slot: &Arc<RunSlot>, trigger: Trigger) {
    let slot = Arc::clone(slot);
    tokio::spawn(async move {
        // The slot logs the outcome; a joined trigger adds nothing.
        slot.trigger(CycleRequest {
            trigger,
            rescan: false,
        })
        .await;
    });
}

fn sleep_until(clock: &dyn Clock, next_run: Option<DateTime<Utc>>) -> BoxFuture<'static, ()> {
    match next_run {
        Some(at) => clock.sleep_until(at),
        None => Box::pin(pending()),
    }
}

async fn tick(watchdog: &mut Option<Interval>) {
    match watchdog {
        Some(interval) => {
            interval.tick().await;
        }
        None => pending().await,
    }
}

fn next_run_note(next_run: Option<DateTime<Utc>>, schedule: &Schedule) -> String {
    match next_run {
        Some(at) => format!(
            "next run {}",
            at.with_timezone(&schedule.timezone())
                .format("%Y-%m-%d %H:%M:%S %Z")
        ),
        None => "no further scheduled runs".to_string(),
    }
}

/// Whether to run a cycle at start-up: the last success is unknown, or older than the
/// interval between the next two scheduled runs (a run was missed while we were down).
pub(crate) fn needs_catch_up(
    schedule: &Schedule,
    last_success: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> bool {
    match last_success {
        None => true,
        // The clock moved back since; nothing sensible to conclude, wait for the schedule.
        Some(last) if last > now => false,
        Some(last) => schedule
            .interval_at(now)
            .is_some_and(|interval| now - last > interval),
    }
}

#[derive(Debug)]
pub(crate) enum ReloadResult {
    Kept(String),
    Applied { schedule_changed: bool },
}

/// Applies reloaded options: schedule and health take effect at once; the state directory
/// and systemd settings only at the next start (the socket and lock live there).
pub(crate) fn apply_reload(
    current: &mut ServiceOptions,
    reloaded: Result<ServiceOptions, String>,
) -> ReloadResult {
    let new = match reloaded {
        Ok(new) => new,
        Err(reason) => return ReloadResult::Kept(reason),
    };
    if new.schedule.next_after(current.clock.now()).is_none() {
        return ReloadResult::Kept(format!(
            "the schedule {:?} never fires again",
            new.schedule.expression()
        ));
    }
    if new.state_dir != current.state_dir {
        tracing::warn!(
            current = %current.state_dir.display(),
            new = %new.state_dir.display(),
            "state_dir changes take effect after a restart"
        );
    }
    let schedule_changed = new.schedule.expression() != current.schedule.expression()
        || new.schedule.timezone() != current.schedule.timezone();
    current.schedule = new.schedule;
    current.health = new.health;
    ReloadResult::Applied { schedule_changed }
}

struct Hooks {
    state_file: StateFile,
    last_success: Mutex<Option<DateTime<Utc>>>,
    health: Mutex<HealthOptions>,
    http: reqwest::Result<reqwest::Client>,
    clock: Arc<dyn Clock>,
}

impl CycleHooks for Hooks {
    fn finished(&self, _request: CycleRequest, outcome: &CycleOutcome) {
        if !outcome.completed_sync() {
            return;
        }
        let now = self.clock.now();
        *lock(&self.last_success) = Some(now);
        if let Err(err) = self.state_file.record_success(now) {
            // Costs at most one unneeded catch-up run after a restart.
            tracing::warn!("cannot record the time of this successful run: {err}");
        }
    }

    fn after(&self, request: CycleRequest, outcome: CycleOutcome) -> BoxFuture<'static, ()> {
        let health = lock(&self.health).clone();
        let http = match &self.http {
            Ok(client) => client.clone(),
            Err(err) => {
                tracing::warn!("no HTTP client for health pings: {err}");
                return Box::pin(async {});
            }
        };
        Box::pin(async move { health::report(&health, &http, request, &outcome).await })
    }
}

struct Info {
    next_run: Option<DateTime<Utc>>,
    schedule: Schedule,
}

struct Control {
    slot: Arc<RunSlot>,
    status: StatusReporter,
    hooks: Arc<Hooks>,
    info: Mutex<Info>,
}

impl ControlHandler for Control {
    fn run_now(&self, rescan: bool) -> BoxFuture<'static, CycleOutcome> {
        let slot = Arc::clone(&self.slot);
        Box::pin(async move {
            slot.trigger(CycleRequest {
                trigger: Trigger::RunNow,
                rescan,
            })
            .await
        })
    }

    fn status(&self) -> DaemonStatus {
        let info = lock(&self.info);
        let (cycles_started, triggers_joined) = self.slot.counters();
        DaemonStatus {
            pid: std::process::id(),
            running: self.slot.running(),
            phase: self.status.get(),
            cycles_started,
            triggers_joined,
            next_run: info.next_run,
            last_success: *lock(&self.hooks.last_success),
            schedule: info.schedule.expression().to_string(),
            timezone: info.schedule.timezone().to_string(),
        }
    }
}

/// Removes the control socket when the daemon returns, so the next `--run-now` does not
/// have to tell a stale socket from a live one.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn options(cron: &str) -> ServiceOptions {
        ServiceOptions::new("/nonexistent", Schedule::new(cron, chrono_tz::UTC).unwrap())
    }

    #[test]
    fn catch_up_only_after_a_missed_interval() {
        let schedule = Schedule::new("0 17 3 * * *", chrono_tz::Europe::Berlin).unwrap();
        let now = Utc.with_ymd_and_hms(2026, 6, 10, 12, 0, 0).unwrap();
        assert!(needs_catch_up(&schedule, None, now), "never ran");
        let hours = |h| Some(now - chrono::Duration::hours(h));
        assert!(
            !needs_catch_up(&schedule, hours(9), now),
            "ran this morning"
        );
        assert!(
            needs_catch_up(&schedule, hours(30), now),
            "missed today's run"
        );
        assert!(!needs_catch_up(
            &schedule,
            Some(now + chrono::Duration::hours(2)),
            now
        ));
    }

    #[test]
    fn failed_reload_keeps_the_old_options() {
        let mut current = options("0 17 3 * * *");
        let result = apply_reload(&mut current, Err("line 3: bad key".into()));
        assert!(matches!(result, ReloadResult::Kept(ref r) if r.contains("line 3")));
        assert_eq!(current.schedule.expression(), "0 17 3 * * *");
    }

    #[test]
    fn reload_to_a_never_firing_schedule_is_refused() {
        let mut current = options("0 17 3 * * *");
        let result = apply_reload(&mut current, Ok(options("0 0 0 30 2 *")));
        assert!(matches!(result, ReloadResult::Kept(_)));
        assert_eq!(current.schedule.expression(), "0 17 3 * * *");
    }

    #[test]
    fn good_reload_applies_schedule_and_health() {
        let mut current = options("0 17 3 * * *");
        let mut new = options("*/2 * * * * *");
        new.health.healthcheck_url = Some("http://127.0.0.1:9/ping".into());
        let result = apply_reload(&mut current, Ok(new));
        assert!(matches!(
            result,
            ReloadResult::Applied {
                schedule_changed: true
            }
        ));
        assert_eq!(current.schedule.expression(), "*/2 * * * * *");
        assert_eq!(
            current.health.healthcheck_url.as_deref(),
            Some("http://127.0.0.1:9/ping")
        );
        let same = apply_reload(&mut current, Ok(options("*/2 * * * * *")));
        assert!(matches!(
            same,
            ReloadResult::Applied {
                schedule_changed: false
            }
        ));
    }
}
