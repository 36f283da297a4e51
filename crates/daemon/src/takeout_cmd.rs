//! Google Takeout imports: `gphotos-backup import-takeout PATH…`, the `[sources.takeout]`
//! inbox processed on every sync cycle, and the last import's line in `status`.
//!
//! The work itself is `sync_engine::Engine::import_takeout` (blocking, run on a blocking
//! thread); this module only maps the config to its options and prints the report.

use std::path::PathBuf;
use std::sync::Arc;

use sync_engine::{
    ArchiveDisposal, Engine, NoProgress, TakeoutOptions, TakeoutReport, takeout_inbox_inputs,
};
use tokio_util::sync::CancellationToken;

use crate::app;
use crate::config::Config;
use crate::exit;
use crate::service::CycleOutcome;

/// Options for a manual import: everything given is imported now, complete or not, and the
/// archives stay where they are.
fn manual_options(config: &Config) -> TakeoutOptions {
    let mut o = TakeoutOptions::default();
    if let Some(t) = &config.takeout {
        o.include_trashed = t.include_trashed;
        o.write_xmp = t.write_xmp;
    }
    o
}

/// `import-takeout PATH…`: imports the given parts/folders and prints the report.
pub async fn run(config: &Config, paths: Vec<PathBuf>) -> u8 {
    let engine = match app::open_engine(config) {
        Ok(engine) => Arc::new(engine),
        Err(outcome) => {
            eprintln!("gphotos-backup: {}", outcome.text());
            return outcome.exit_code();
        }
    };
    let options = manual_options(config);
    let cancel = CancellationToken::new();
    let on_signal = cancel.clone();
    let signal = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_signal.cancel();
        }
    });
    let worker = Arc::clone(&engine);
    let result = tokio::task::spawn_blocking(move || {
        worker.import_takeout(&paths, &options, &NoProgress, &cancel)
    })
    .await;
    signal.abort();
    let report = match result {
        Ok(Ok(report)) => report,
        Ok(Err(err)) => {
            eprintln!("gphotos-backup: takeout import failed: {err}");
            return exit::FAILURE;
        }
        Err(err) => {
            eprintln!("gphotos-backup: takeout import task failed: {err}");
            return exit::FAILURE;
        }
    };
    print_report(&report);
    if report.cancelled {
        exit::FAILURE
    } else if report.skipped > 0 || !report.part_errors.is_empty() || report.exports.is_empty() {
        exit::PARTIAL
    } else {
        exit::OK
    }
}

/// The inbox step of a sync cycle: imports ready exports from `[sources.takeout] inbox`.
/// Returns `None` when no inbox is configured.
pub async fn cycle_import(
    config: &Config,
    engine: Arc<Engine>,
    cancel: CancellationToken,
) -> Option<Result<TakeoutReport, String>> {
    let t = config.takeout.as_ref()?;
    let inbox = t.inbox.clone();
    let done = inbox.join("done");
    let options = TakeoutOptions {
        settle_time: Some(t.settle_time),
        disposal: if t.delete_after_import {
            ArchiveDisposal::Delete(done)
        } else {
            ArchiveDisposal::MoveTo(done)
        },
        include_trashed: t.include_trashed,
        write_xmp: t.write_xmp,
    };
    let result = tokio::task::spawn_blocking(move || {
        let inputs = takeout_inbox_inputs(&inbox)?;
        if inputs.is_empty() {
            return Ok(None);
        }
        engine
            .import_takeout(&inputs, &options, &NoProgress, &cancel)
            .map(Some)
    })
    .await;
    match result {
        Ok(Ok(Some(report))) => Some(Ok(report)),
        Ok(Ok(None)) => None,
        Ok(Err(err)) => Some(Err(format!("takeout import failed: {err}"))),
        Err(err) => Some(Err(format!("takeout import task failed: {err}"))),
    }
}

/// The last import, for `status`.
pub fn print_last_import(engine: &Engine) {
    match engine.last_takeout_report() {
        Ok(Some(r)) => {
            let when = r
                .finished_at
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_else(|| "?".into());
            say!("last takeout import: {when}");
            say!("  {}", r.summary());
            for w in &r.waiting {
                say!("  waiting: {} ({})", w.export, w.reason);
            }
        }
        Ok(None) => {}
        Err(err) => say!("last takeout import: unreadable ({err})"),
    }
}

fn print_report(r: &TakeoutReport) {
    say!("{}", r.summary());
    for e in &r.exports {
        say!("export {e}: imported");
    }
    for w in &r.waiting {
        say!("export {}: waiting ({})", w.export, w.reason);
    }
    for p in &r.part_errors {
        say!("part error: {p}");
    }
    for s in &r.skipped_list {
        say!("skipped: {} ({})", s.what, s.reason);
    }
    if r.skipped > r.skipped_list.len() as u64 {
        say!(
            "skipped: … and {} more",
            r.skipped - r.skipped_list.len() as u64
        );
    }
    for o in &r.orphan_sidecar_list {
        say!("orphan sidecar: {o}");
    }
}

/// Adds the inbox import to a cycle's outcome: its summary joins the sync's, and a failed
/// or incomplete import makes a successful cycle partial (a failed sync stays failed).
pub fn fold_outcome(outcome: CycleOutcome, takeout: Result<TakeoutReport, String>) -> CycleOutcome {
    let (line, clean) = match &takeout {
        Ok(r) => (
            r.summary(),
            !r.cancelled && r.skipped == 0 && r.part_errors.is_empty(),
        ),
        Err(e) => (e.clone(), false),
    };
    if takeout.is_err() {
        tracing::error!("{line}");
    }
    match outcome {
        CycleOutcome::Success { summary } if clean => CycleOutcome::Success {
            summary: format!("{summary}; {line}"),
        },
        CycleOutcome::Success { summary } | CycleOutcome::Partial { summary } => {
            CycleOutcome::Partial {
                summary: format!("{summary}; {line}"),
            }
        }
        CycleOutcome::Paused { summary } => CycleOutcome::Paused {
            summary: format!("{summary}; {line}"),
        },
        failed @ CycleOutcome::Failed { .. } => failed,
    }
}
