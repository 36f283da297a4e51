//! Export (issue 7): the `export` subcommand, and the export step that follows every
//! successful sync cycle. The work itself is `sync_engine::Engine::export`; this module picks
//! the targets from the config, runs them off the async threads and turns the reports into
//! lines a user reads and an exit code / cycle outcome.

use sync_engine::{Engine, ExportReport, ExportTarget};
use tokio_util::sync::CancellationToken;

use crate::app;
use crate::config::Config;
use crate::exit;
use crate::service::CycleOutcome;

/// How one target's export ended.
pub enum TargetResult {
    Done(ExportReport),
    Failed { target: String, error: String },
}

impl TargetResult {
    /// One line for the log and the terminal.
    pub fn line(&self) -> String {
        match self {
            TargetResult::Failed { target, error } => format!("export {target}: failed: {error}"),
            TargetResult::Done(r) => match &r.skipped {
                Some(why) => format!("export {}: skipped: {why}", r.target),
                None => {
                    let mut parts = vec![
                        format!("{} placed", r.placed),
                        format!("{} renamed", r.renamed),
                        format!("{} unchanged", r.unchanged),
                    ];
                    for (n, what) in [
                        (r.pruned, "pruned"),
                        (r.foreign_kept, "kept foreign file(s), used suffixed names"),
                        (r.reflink_fallbacks, "reflink(s) fell back to copies"),
                        (r.failed, "failed"),
                    ] {
                        if n > 0 {
                            parts.push(format!("{n} {what}"));
                        }
                    }
                    if r.cancelled {
                        parts.push("interrupted".into());
                    }
                    format!("export {}: {}", r.target, parts.join(", "))
                }
            },
        }
    }

    /// Whether the target was fully exported (a missing target root counts as not).
    pub fn is_clean(&self) -> bool {
        matches!(self, TargetResult::Done(r) if r.skipped.is_none() && r.failed == 0 && !r.cancelled)
    }
}

/// Runs every target (or only `only`) in config order. Blocking: call off the async threads.
pub fn run_targets(
    engine: &Engine,
    targets: &[ExportTarget],
    only: Option<&str>,
    cancel: &CancellationToken,
) -> Vec<TargetResult> {
    let mut out = Vec::new();
    for target in targets.iter().filter(|t| only.is_none_or(|n| n == t.name)) {
        if cancel.is_cancelled() {
            break;
        }
        let result = match engine.export(target, cancel) {
            Ok(report) => TargetResult::Done(report),
            Err(err) => TargetResult::Failed {
                target: target.name.clone(),
                error: err.to_string(),
            },
        };
        out.push(result);
    }
    out
}

/// The export step of a sync cycle: after a successful (or partial) sync, every configured
/// target. A failed or skipped target makes the cycle partial, never failed: the backup
/// itself succeeded. Runs on the current worker with [`crate::app::blocking`] (the engine
/// is borrowed from the cycle).
pub fn after_cycle(
    config: &Config,
    engine: &Engine,
    outcome: CycleOutcome,
    cancel: &CancellationToken,
) -> CycleOutcome {
    let summary = match &outcome {
        CycleOutcome::Success { summary } | CycleOutcome::Partial { summary } => summary.clone(),
        _ => return outcome,
    };
    if config.exports.is_empty() || cancel.is_cancelled() {
        return outcome;
    }
    let results = crate::app::blocking(|| run_targets(engine, &config.exports, None, cancel));
    let mut clean = matches!(outcome, CycleOutcome::Success { .. });
    let mut lines = Vec::new();
    for r in &results {
        let line = r.line();
        if r.is_clean() {
            tracing::info!("{line}");
        } else {
            tracing::warn!("{line}");
            clean = false;
            lines.push(line);
        }
    }
    if lines.is_empty() {
        return outcome;
    }
    let summary = format!("{summary}; {}", lines.join("; "));
    if clean {
        CycleOutcome::Success { summary }
    } else {
        CycleOutcome::Partial { summary }
    }
}

/// `gphotos-backup export [--name NAME]`: exports what the index holds now, without syncing.
pub async fn run(config: &Config, only: Option<String>) -> u8 {
    if config.exports.is_empty() {
        eprintln!(
            "gphotos-backup: no [[export]] target in {}; see config/example.toml",
            config.source_file.display()
        );
        return exit::USAGE;
    }
    if let Some(name) = &only
        && !config.exports.iter().any(|t| t.name == *name)
    {
        let names: Vec<&str> = config.exports.iter().map(|t| t.name.as_str()).collect();
        eprintln!(
            "gphotos-backup: no export target named {name:?}; configured: {}",
            names.join(", ")
        );
        return exit::USAGE;
    }
    let engine = match app::open_engine(config) {
        Ok(engine) => engine,
        Err(outcome) => {
            eprintln!("gphotos-backup: {}", outcome.text());
            return outcome.exit_code();
        }
    };
    let cancel = CancellationToken::new();
    let on_signal = cancel.clone();
    let watcher = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_signal.cancel();
        }
    });
    let targets = config.exports.clone();
    let task_cancel = cancel.clone();
    let results = tokio::task::spawn_blocking(move || {
        run_targets(&engine, &targets, only.as_deref(), &task_cancel)
    })
    .await;
    watcher.abort();
    let results = match results {
        Ok(results) => results,
        Err(err) => {
            eprintln!("gphotos-backup: the export stopped unexpectedly: {err}");
            return exit::FAILURE;
        }
    };
    let mut code = exit::OK;
    for r in &results {
        say!("{}", r.line());
        match r {
            TargetResult::Failed { .. } => code = exit::FAILURE,
            r if !r.is_clean() && code == exit::OK => code = exit::PARTIAL,
            _ => {}
        }
    }
    code
}
