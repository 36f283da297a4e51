//! The single run slot: at most one cycle at a time in this process. A trigger that finds a
//! cycle running joins it (waits for it and gets its outcome); only a rescan request that
//! finds a plain cycle running waits for it and then starts its own, because the user
//! asked for work the running cycle does not do. The library lock of the engine keeps
//! other processes out; this keeps concurrent triggers inside the daemon out.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::service::notify::StatusReporter;
use crate::service::{CycleContext, CycleOutcome, CycleRequest, CycleRunner};

/// What happens around each cycle: persisted before the outcome is published, reported
/// after (so a `--run-now` client is not kept waiting for a slow monitor).
pub(crate) trait CycleHooks: Send + Sync + 'static {
    fn finished(&self, request: CycleRequest, outcome: &CycleOutcome);
    fn after(&self, request: CycleRequest, outcome: CycleOutcome) -> BoxFuture<'static, ()>;
}

type Done = watch::Receiver<Option<CycleOutcome>>;

struct Running {
    request: CycleRequest,
    done: Done,
}

#[derive(Default)]
struct SlotState {
    current: Option<Running>,
    closed: bool,
    cycles_started: u64,
    triggers_joined: u64,
    /// How the last cycle ended, for the idle status line.
    last_outcome: Option<String>,
    /// Appended to the idle status line, e.g. `next run 2026-03-29 03:17:00 CEST`.
    idle_note: String,
}

impl SlotState {
    fn idle_text(&self) -> String {
        let mut text = String::from("idle");
        if let Some(last) = &self.last_outcome {
            text.push_str("; last cycle ");
            text.push_str(last);
        }
        if !self.idle_note.is_empty() {
            text.push_str("; ");
            text.push_str(&self.idle_note);
        }
        text
    }
}

pub(crate) struct RunSlot {
    state: Mutex<SlotState>,
    runner: Arc<dyn CycleRunner>,
    cancel: CancellationToken,
    status: StatusReporter,
    hooks: Arc<dyn CycleHooks>,
}

enum Next {
    Join(Done),
    WaitThenRetry(Done),
}

impl RunSlot {
    pub(crate) fn new(
        runner: Arc<dyn CycleRunner>,
        cancel: CancellationToken,
        status: StatusReporter,
        hooks: Arc<dyn CycleHooks>,
    ) -> Arc<Self> {
        Arc::new(RunSlot {
            state: Mutex::new(SlotState::default()),
            runner,
            cancel,
            status,
            hooks,
        })
    }

    fn lock(&self) -> MutexGuard<'_, SlotState> {
        // The lock is never held across user code, so a poisoned state is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs a cycle for `request`, or joins the one running; resolves with its outcome.
    pub(crate) async fn trigger(self: &Arc<Self>, request: CycleRequest) -> CycleOutcome {
        loop {
            let next = {
                let mut state = self.lock();
                if state.closed {
                    return CycleOutcome::interrupted("the daemon is shutting down");
                }
                let running = state
                    .current
                    .as_ref()
                    .map(|running| (running.request, running.done.clone()));
                match running {
                    Some((running, done)) if !request.rescan || running.rescan => {
                        state.triggers_joined += 1;
                        tracing::info!(
                            trigger = %request.trigger,
                            running = %running.trigger,
                            "a cycle is already running; waiting for its outcome instead of starting another"
                        );
                        Next::Join(done)
                    }
                    Some((_, done)) => Next::WaitThenRetry(done),
                    None => Next::Join(self.start(&mut state, request)),
                }
            };
            match next {
                Next::Join(done) => return wait(done).await,
                Next::WaitThenRetry(done) => {
                    wait(done).await;
                }
            }
        }
    }

    fn start(self: &Arc<Self>, state: &mut SlotState, request: CycleRequest) -> Done {
        let (publish, done) = watch::channel(None);
        state.current = Some(Running {
            request,
            done: done.clone(),
        });
        state.cycles_started += 1;
        let slot = Arc::clone(self);
        tokio::spawn(async move {
            // Frees the slot even if this task is aborted or the engine panics.
            let release = Release(Arc::clone(&slot));
            let started = Instant::now();
            slot.status
                .set(format!("running a cycle ({})", request.trigger));
            tracing::info!(trigger = %request.trigger, rescan = request.rescan, "cycle started");
            let context = CycleContext {
                cancel: slot.cancel.child_token(),
                status: slot.status.clone(),
            };
            let outcome = AssertUnwindSafe(slot.runner.run_cycle(request, context))
                .catch_unwind()
                .await
                .unwrap_or_else(|_| CycleOutcome::Failed {
                    kind: crate::service::FailureKind::Error,
                    message: "the sync cycle panicked; see the log".into(),
                });
            let seconds = started.elapsed().as_secs_f64();
            if outcome.is_failure() {
                tracing::warn!(
                    outcome = outcome.label(),
                    duration_s = seconds,
                    "cycle ended: {}",
                    outcome.text()
                );
            } else {
                tracing::info!(
                    outcome = outcome.label(),
                    duration_s = seconds,
                    "cycle ended: {}",
                    outcome.text()
                );
            }
            slot.hooks.finished(request, &outcome);
            let idle = {
                let mut state = slot.lock();
                state.current = None;
                state.last_outcome = Some(outcome.to_string());
                state.idle_text()
            };
            drop(release);
            // After the release: whoever sees "idle" can start the next cycle.
            slot.status.set(idle);
            publish.send_replace(Some(outcome.clone()));
            slot.hooks.after(request, outcome).await;
        });
        done
    }

    /// Sets the note shown after "idle" (the next scheduled run) and shows it now if
    /// no cycle runs.
    pub(crate) fn set_idle_note(&self, note: String) {
        let idle = {
            let mut state = self.lock();
            state.idle_note = note;
            (state.current.is_none() && !state.closed).then(|| state.idle_text())
        };
        if let Some(idle) = idle {
            self.status.set(idle);
        }
    }

    /// Refuses new cycles from now on; returns the running one to wait for, if any.
    pub(crate) fn close(&self) -> Option<impl Future<Output = CycleOutcome> + use<>> {
        let mut state = self.lock();
        state.closed = true;
        state
            .current
            .as_ref()
            .map(|running| wait(running.done.clone()))
    }

    /// The request of the running cycle, if one runs.
    pub(crate) fn running(&self) -> Option<CycleRequest> {
        self.lock().current.as_ref().map(|r| r.request)
    }

    /// How many cycles this slot has started, and how many triggers joined a running one.
    pub(crate) fn counters(&self) -> (u64, u64) {
        let state = self.lock();
        (state.cycles_started, state.triggers_joined)
    }
}

struct Release(Arc<RunSlot>);

impl Drop for Release {
    fn drop(&mut self) {
        self.0.lock().current = None;
    }
}

async fn wait(mut done: Done) -> CycleOutcome {
    match done.wait_for(Option::is_some).await {
        Ok(outcome) => outcome
            .clone()
            .unwrap_or_else(|| CycleOutcome::interrupted("the cycle ended without an outcome")),
        Err(_) => CycleOutcome::interrupted("the cycle was aborted before it finished"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::{FailureKind, Trigger};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::sync::{Notify, mpsc};

    /// Reports each start on a channel and finishes when the test releases it.
    struct Gate {
        started: mpsc::UnboundedSender<CycleRequest>,
        release: Arc<Notify>,
        concurrent: Arc<AtomicUsize>,
        max_concurrent: Arc<AtomicUsize>,
    }

    impl CycleRunner for Gate {
        fn run_cycle(
            &self,
            request: CycleRequest,
            cx: CycleContext,
        ) -> BoxFuture<'static, CycleOutcome> {
            let started = self.started.clone();
            let release = Arc::clone(&self.release);
            let concurrent = Arc::clone(&self.concurrent);
            let max = Arc::clone(&self.max_concurrent);
            Box::pin(async move {
                let now = concurrent.fetch_add(1, Ordering::SeqCst) + 1;
                max.fetch_max(now, Ordering::SeqCst);
                let _ = started.send(request);
                let outcome = tokio::select! {
                    _ = release.notified() => CycleOutcome::Success {
                        summary: format!("rescan={}", request.rescan),
                    },
                    _ = cx.cancel.cancelled() => CycleOutcome::interrupted("cancelled"),
                };
                concurrent.fetch_sub(1, Ordering::SeqCst);
                outcome
            })
        }
    }

    struct Recorder(Mutex<Vec<String>>);
    impl CycleHooks for Recorder {
        fn finished(&self, _: CycleRequest, outcome: &CycleOutcome) {
            self.0.lock().unwrap().push(outcome.to_string());
        }
        fn after(&self, _: CycleRequest, _: CycleOutcome) -> BoxFuture<'static, ()> {
            Box::pin(async {})
        }
    }

    fn setup() -> (
        Arc<RunSlot>,
        mpsc::UnboundedReceiver<CycleRequest>,
        Arc<Notify>,
        Arc<AtomicUsize>,
        CancellationToken,
    ) {
        let (tx, rx) = mpsc::unbounded_channel();
        let release = Arc::new(Notify::new());
        let max = Arc::new(AtomicUsize::new(0));
        let gate = Gate {
            started: tx,
            release: Arc::clone(&release),
            concurrent: Arc::new(AtomicUsize::new(0)),
            max_concurrent: Arc::clone(&max),
        };
        let cancel = CancellationToken::new();
        let slot = RunSlot::new(
            Arc::new(gate),
            cancel.clone(),
            StatusReporter::new(),
            Arc::new(Recorder(Mutex::new(Vec::new()))),
        );
        (slot, rx, release, max, cancel)
    }

    fn req(trigger: Trigger, rescan: bool) -> CycleRequest {
        CycleRequest { trigger, rescan }
    }

    #[tokio::test]
    async fn concurrent_triggers_share_one_cycle_and_its_outcome() {
        let (slot, mut started, release, max, _cancel) = setup();
        let first = tokio::spawn({
            let slot = Arc::clone(&slot);
            async move { slot.trigger(req(Trigger::Schedule, false)).await }
        });
        assert_eq!(started.recv().await.unwrap().trigger, Trigger::Schedule);
        // The cycle is running now; a second trigger must join it. Polling it once
        // proves it reached the slot and parked before the cycle is released.
        let second = slot.trigger(req(Trigger::RunNow, false));
        tokio::pin!(second);
        assert!(futures::poll!(&mut second).is_pending());
        assert_eq!(slot.running().map(|r| r.trigger), Some(Trigger::Schedule));
        release.notify_one();
        let (a, b) = (first.await.unwrap(), second.await);
        assert_eq!(a, b);
        assert_eq!(a.label(), "success");
        assert_eq!(slot.counters().0, 1);
        assert_eq!(max.load(Ordering::SeqCst), 1);
        assert!(started.try_recv().is_err(), "no second cycle started");
        assert_eq!(slot.running(), None);
    }

    #[tokio::test]
    async fn rescan_waits_for_a_plain_cycle_then_runs_its_own() {
        let (slot, mut started, release, max, _cancel) = setup();
        let plain = tokio::spawn({
            let slot = Arc::clone(&slot);
            async move { slot.trigger(req(Trigger::Schedule, false)).await }
        });
        assert!(!started.recv().await.unwrap().rescan);
        let rescan = slot.trigger(req(Trigger::RunNow, true));
        tokio::pin!(rescan);
        // Parked behind the plain cycle, not joined to it and not running beside it.
        assert!(futures::poll!(&mut rescan).is_pending());
        assert_eq!(slot.counters(), (1, 0));
        release.notify_one();
        assert_eq!(plain.await.unwrap().text(), "rescan=false");
        let (outcome, second) = tokio::join!(&mut rescan, async {
            let second = started.recv().await.unwrap();
            release.notify_one();
            second
        });
        assert!(second.rescan);
        assert_eq!(outcome.text(), "rescan=true");
        assert_eq!(slot.counters().0, 2);
        assert_eq!(max.load(Ordering::SeqCst), 1, "never two at once");
    }

    #[tokio::test]
    async fn closing_cancels_nothing_by_itself_but_refuses_new_cycles() {
        let (slot, mut started, _release, _max, cancel) = setup();
        let running = tokio::spawn({
            let slot = Arc::clone(&slot);
            async move { slot.trigger(req(Trigger::Schedule, false)).await }
        });
        started.recv().await.unwrap();
        let drain = slot.close().expect("a cycle is running");
        let refused = slot.trigger(req(Trigger::RunNow, false)).await;
        assert!(matches!(
            refused,
            CycleOutcome::Failed {
                kind: FailureKind::Interrupted,
                ..
            }
        ));
        cancel.cancel();
        assert_eq!(drain.await.label(), "interrupted");
        assert_eq!(running.await.unwrap().label(), "interrupted");
        assert_eq!(slot.counters().0, 1);
    }

    #[tokio::test]
    async fn a_panicking_engine_frees_the_slot() {
        struct Panics;
        impl CycleRunner for Panics {
            fn run_cycle(
                &self,
                _: CycleRequest,
                _: CycleContext,
            ) -> BoxFuture<'static, CycleOutcome> {
                Box::pin(async { panic!("engine bug") })
            }
        }
        let recorder = Arc::new(Recorder(Mutex::new(Vec::new())));
        let slot = RunSlot::new(
            Arc::new(Panics),
            CancellationToken::new(),
            StatusReporter::new(),
            recorder.clone(),
        );
        let outcome = slot.trigger(req(Trigger::Signal, false)).await;
        assert_eq!(outcome.exit_code(), crate::exit::FAILURE);
        assert!(outcome.is_failure());
        assert_eq!(slot.running(), None);
        assert_eq!(recorder.0.lock().unwrap().len(), 1);
    }
}
