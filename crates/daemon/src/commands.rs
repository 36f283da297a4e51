//! What each command line does. Every function returns the process exit code.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, RwLock};

use api_client::{PendingAuthorization, Scope, Tokens};
use sync_engine::ProgressSink;
use tokio_util::sync::CancellationToken;

use crate::app::{self, EngineRunner, Google};
use crate::cli::{Cli, Command};
use crate::config::{self, Config};
use crate::exit;
use crate::progress::{BarProgress, LogProgress};
use crate::service::{self, CycleOutcome, ServiceOptions};

/// Runs the parsed command line to completion.
pub async fn run(cli: Cli) -> u8 {
    if let Some(Command::Demo { dir, items }) = &cli.command {
        return crate::demo::run(dir, *items).await;
    }
    let config = match config::load(&cli.config) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("gphotos-backup: {err}");
            return exit::USAGE;
        }
    };
    match cli.command {
        Some(Command::Auth { port, paste }) => auth(&config, port, paste).await,
        Some(Command::List { json }) => list(&config, json),
        Some(Command::Verify { deep }) => verify(&config, deep),
        Some(Command::Status) => status(&config).await,
        Some(Command::Reindex) => reindex(&config),
        Some(Command::Pick {
            max_items,
            no_qr,
            port,
        }) => crate::pick::run(&config, max_items, no_qr, port).await,
        Some(Command::ImportTakeout { paths }) => crate::takeout_cmd::run(&config, paths).await,
        Some(Command::Export { name }) => crate::export_cmd::run(&config, name).await,
        Some(Command::Demo { .. }) => exit::USAGE,
        None if cli.run_now => run_now(&config, cli.rescan).await,
        None => daemon(config, cli.config.clone()).await,
    }
}

fn fail(message: impl std::fmt::Display, code: u8) -> u8 {
    eprintln!("gphotos-backup: {message}");
    code
}

/// The interactive authorization flow (loopback redirect, or a pasted URL).
async fn auth(config: &Config, port: u16, paste: bool) -> u8 {
    let google = match Google::from_config(config) {
        Ok(google) => google,
        Err(err) => return fail(format!("{err:#}"), exit::AUTH),
    };
    let scopes = Google::library_scopes(config);
    let pending = match google
        .oauth
        .start_authorization(&scopes, (port != 0).then_some(port))
        .await
    {
        Ok(pending) => pending,
        Err(err) => return fail(err, exit::AUTH),
    };
    let listen_port = pending.redirect_uri().port().unwrap_or(port);
    say!("Open this URL in a browser signed in to your Google account:");
    say!();
    say!("{}", pending.authorize_url());
    say!();
    if paste {
        say!(
            "After consenting, the browser will fail to load http://127.0.0.1:{listen_port}/?code=…; \
             copy that whole URL from the address bar and paste it here."
        );
    } else {
        say!(
            "Waiting for the browser to come back to http://127.0.0.1:{listen_port}/ …\n\
             On a remote server, forward the port from your desktop first:\n    \
             ssh -L {listen_port}:127.0.0.1:{listen_port} {}@<this-server>\n\
             or paste the URL the browser ends up on (address bar) here and press Enter.",
            std::env::var("USER").unwrap_or_else(|_| "user".into())
        );
    }
    let _ = std::io::stdout().flush();
    let tokens = if paste {
        match read_line().await {
            Some(url) => pending.complete_from_redirect_url(&url).await,
            None => return fail("no URL was pasted", exit::AUTH),
        }
    } else {
        wait_or_paste(&pending).await
    };
    let tokens = match tokens {
        Ok(tokens) => tokens,
        Err(err) => return fail(err, exit::AUTH),
    };
    if let Err(err) = ensure_private_dir(google.store.path()) {
        return fail(err, exit::FAILURE);
    }
    if let Err(err) = google.store.save(&tokens) {
        return fail(err, exit::FAILURE);
    }
    report_granted(&tokens, &scopes);
    say!(
        "Authorized. The token is stored in {} (mode 0600).",
        google.store.path().display()
    );
    exit::OK
}

/// Creates the token file's directory (mode 0700) on a fresh machine.
pub(crate) fn ensure_private_dir(token_file: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match token_file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.exists() => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir),
        _ => Ok(()),
    }
}

/// Waits for the redirect, but also accepts a pasted URL on standard input: over SSH the
/// loopback listener may be unreachable from the user's browser.
pub(crate) async fn wait_or_paste(pending: &PendingAuthorization) -> api_client::Result<Tokens> {
    tokio::select! {
        tokens = pending.wait_for_redirect() => tokens,
        Some(url) = read_line() => pending.complete_from_redirect_url(&url).await,
    }
}

/// One non-empty line from standard input; `None` at end of input (then only the listener counts).
pub(crate) async fn read_line() -> Option<String> {
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let line = line.trim();
        if !line.is_empty() {
            return Some(line.to_string());
        }
    }
    None
}

fn report_granted(tokens: &Tokens, requested: &[Scope]) {
    for scope in requested {
        if !tokens.has_scope(scope) {
            eprintln!(
                "warning: Google did not grant {} (it was unticked on the consent screen?). \
                 Run `auth` again and leave it ticked.",
                scope.as_str()
            );
        }
    }
}

/// `--run-now`: ask the running daemon, or run one cycle here.
async fn run_now(config: &Config, rescan: bool) -> u8 {
    match service::request_run_now(&config.state_dir, rescan).await {
        Ok(Some(outcome)) => {
            say!("the running daemon ran the cycle: {outcome}");
            return outcome.exit_code();
        }
        Ok(None) => {}
        Err(err) => return fail(err, exit::FAILURE),
    }
    let cancel = CancellationToken::new();
    let interrupt = spawn_interrupt_handler(cancel.clone());
    let bar = std::io::stderr().is_terminal().then(BarProgress::new);
    let progress: Arc<dyn ProgressSink> = match &bar {
        Some(bar) => bar.clone(),
        None => LogProgress::new(None),
    };
    let outcome = app::run_cycle(config, rescan, progress, cancel).await;
    if let Some(bar) = bar {
        bar.finish();
    }
    interrupt.abort();
    print_outcome(&outcome);
    outcome.exit_code()
}

fn print_outcome(outcome: &CycleOutcome) {
    match outcome {
        CycleOutcome::Success { summary } => say!("{summary}"),
        CycleOutcome::Partial { summary } => say!("finished with failures: {summary}"),
        CycleOutcome::Paused { summary } => say!("{summary}"),
        CycleOutcome::Failed { message, .. } => eprintln!("gphotos-backup: {message}"),
    }
}

/// SIGINT/SIGTERM during a one-shot run cancel it cleanly (no partial file is left).
pub(crate) fn spawn_interrupt_handler(cancel: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::warn!("stopping: finishing the index, abandoning files in flight");
        cancel.cancel();
    })
}

async fn daemon(config: Config, config_path: std::path::PathBuf) -> u8 {
    let options = match ServiceOptions::from_config(&config) {
        Ok(options) => options,
        Err(err) => return fail(err, exit::USAGE),
    };
    let shared = Arc::new(RwLock::new(config));
    let runner = Arc::new(EngineRunner::new(shared.clone()));
    let reload = move || -> Result<ServiceOptions, String> {
        let fresh = config::load(&config_path).map_err(|err| err.to_string())?;
        let options = ServiceOptions::from_config(&fresh).map_err(|err| err.to_string())?;
        match shared.write() {
            Ok(mut guard) => *guard = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
        Ok(options)
    };
    match service::run_daemon(options, runner, reload).await {
        Ok(stopped) => stopped.exit_code(),
        Err(err) => fail(err, exit::FAILURE),
    }
}

fn with_engine(config: &Config, f: impl FnOnce(sync_engine::Engine) -> u8) -> u8 {
    match app::open_engine(config) {
        Ok(engine) => f(engine),
        Err(outcome) => {
            let hint = if outcome.exit_code() == exit::LOCKED {
                " (a sync is running; try again when it ends)"
            } else {
                ""
            };
            fail(format!("{}{hint}", outcome.text()), outcome.exit_code())
        }
    }
}

fn list(config: &Config, json: bool) -> u8 {
    with_engine(config, |engine| {
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        for item in engine.items() {
            let item = match item {
                Ok(item) => item,
                Err(err) => return fail(err, exit::FAILURE),
            };
            let written = if json {
                match serde_json::to_string(&item) {
                    Ok(line) => writeln!(out, "{line}"),
                    Err(err) => return fail(err, exit::FAILURE),
                }
            } else {
                writeln!(
                    out,
                    "{}\t{}\t{}",
                    item.taken_at.as_deref().unwrap_or("-"),
                    item.path,
                    item.albums.join(", ")
                )
            };
            if let Err(err) = written {
                // A closed pipe (`| head`) is not an error worth a message.
                if err.kind() == std::io::ErrorKind::BrokenPipe {
                    return exit::OK;
                }
                return fail(err, exit::FAILURE);
            }
        }
        match out.flush() {
            Ok(()) => exit::OK,
            Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => exit::OK,
            Err(err) => fail(err, exit::FAILURE),
        }
    })
}

fn verify(config: &Config, deep: bool) -> u8 {
    with_engine(config, |engine| match engine.verify(deep) {
        Ok(report) => {
            say!(
                "checked {} files{}: {} ok, {} missing, {} size mismatch, {} content mismatch, {} extra",
                report.checked,
                if deep { " (blake3)" } else { "" },
                report.ok,
                report.missing_count,
                report.size_mismatch_count,
                report.hash_mismatch_count,
                report.extra_count
            );
            for (label, paths) in [
                ("missing", &report.missing),
                ("size mismatch", &report.size_mismatch),
                ("content mismatch", &report.hash_mismatch),
                ("extra (not in the index)", &report.extra),
            ] {
                for path in paths {
                    say!("  {label}: {path}");
                }
            }
            if report.is_clean() {
                exit::OK
            } else {
                exit::VERIFY_FAILED
            }
        }
        Err(err) => fail(err, exit::FAILURE),
    })
}

fn reindex(config: &Config) -> u8 {
    match sync_engine::Engine::reindex(app::engine_config(config)) {
        Ok(report) => {
            say!(
                "scanned {} files under photos/: {} already indexed, {} recorded for adoption \
                 by the next sync (no download), {} indexed items without a file queued again",
                report.files,
                report.known,
                report.orphans,
                report.requeued
            );
            exit::OK
        }
        Err(err @ sync_engine::Error::IndexLocked { .. }) => fail(
            format!("{err} (a sync is running; try again when it ends)"),
            exit::LOCKED,
        ),
        Err(err) => fail(err, exit::FAILURE),
    }
}

async fn status(config: &Config) -> u8 {
    match service::request_status(&config.state_dir).await {
        Ok(Some(daemon)) => {
            say!("daemon: running (pid {})", daemon.pid);
            match &daemon.running {
                Some(request) => say!("  now: {} ({})", daemon.phase, request.trigger),
                None => say!("  now: idle"),
            }
            if let Some(next) = daemon.next_run {
                say!(
                    "  next run: {next} ({} {})",
                    daemon.schedule,
                    daemon.timezone
                );
            }
            if let Some(last) = daemon.last_success {
                say!("  last success: {last}");
            }
        }
        Ok(None) => say!("daemon: not running"),
        Err(err) => say!("daemon: not answering ({err})"),
    }
    print_token_state(config);
    match app::open_engine(config) {
        Ok(engine) => match engine.status() {
            Ok(report) => {
                print_index_status(&report);
                crate::takeout_cmd::print_last_import(&engine);
                exit::OK
            }
            Err(err) => fail(err, exit::FAILURE),
        },
        Err(outcome) if outcome.exit_code() == exit::LOCKED => {
            say!("index: in use by the running sync; counts are shown when it is idle");
            exit::OK
        }
        Err(outcome) => fail(outcome.text(), outcome.exit_code()),
    }
}

fn print_token_state(config: &Config) {
    let store = api_client::TokenStore::new(&config.google.token_file);
    match store.load() {
        Ok(Some(tokens)) => {
            let scopes: Vec<String> = tokens
                .scopes
                .iter()
                .map(|s| s.as_str().to_string())
                .collect();
            say!(
                "authorization: present ({}), scopes: {}",
                if tokens.refresh_token.is_some() {
                    "refreshable"
                } else {
                    "no refresh token: run `auth` again"
                },
                scopes.join(" ")
            );
            if let Some(expires) = tokens.expires_at {
                say!("  access token valid until {expires} (refreshed automatically)");
            }
            // The token file is rewritten on every refresh, so its age is the time since
            // the last refresh; Google's answer does not say when consent was given.
            let age_days = std::fs::metadata(store.path())
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .map(|d| d.as_secs() / 86_400);
            if let Some(days) = age_days.filter(|d| *d >= 5) {
                say!(
                    "  warning: the token was last refreshed {days} days ago. If your OAuth \
                     consent screen is in \"Testing\", Google revokes refresh tokens 7 days \
                     after consent: publish the app (README, step 2) or run `auth` again."
                );
            }
        }
        Ok(None) => say!(
            "authorization: none yet (run `gphotos-backup --config {} auth`)",
            config.source_file.display()
        ),
        Err(err) => say!("authorization: unreadable ({err})"),
    }
}

fn print_index_status(report: &sync_engine::StatusReport) {
    say!(
        "index: {} items ({} done, {} pending, {} failed, {} processing on Google, {} removed on Google), {} albums, {} on disk",
        report.items,
        report.done,
        report.pending,
        report.failed,
        report.processing,
        report.removed,
        report.albums,
        crate::progress::human_bytes(report.index_bytes)
    );
    if report.paused {
        say!("  paused: Google's daily quota ran out; the next run resumes");
    }
    for (source, when) in &report.last_full_scan {
        match when {
            Some(when) => say!("  last full listing of {source}: {when}"),
            None => say!("  last full listing of {source}: never"),
        }
    }
    for run in &report.last_runs {
        say!(
            "  run {} at {}: {:?}, {} downloaded, {} failed",
            run.run_id,
            run.started_at,
            run.outcome,
            run.downloaded,
            run.failed
        );
    }
}
