//! The glue between the validated config and the workers: Google clients from
//! `api-client`, the engine from `sync-engine`, and one sync cycle as the service runs it.

use std::sync::{Arc, RwLock};
use std::time::Instant;

use api_client::{
    ClientSecret, Downloader, Endpoints, HttpClient, LibraryClient, OAuthClient, Scope,
    TokenProvider, TokenStore,
};
use futures::future::BoxFuture;
use sync_engine::{
    Engine, EngineConfig, LibraryApiSource, ProgressSink, RunOutcome, RunReport, Source,
    SourceError, SyncOptions,
};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::progress;
use crate::service::{CycleContext, CycleOutcome, CycleRequest, CycleRunner, FailureKind};

/// The Google side, built from the config: one HTTP client shared by everything.
pub struct Google {
    pub http: HttpClient,
    pub endpoints: Endpoints,
    pub oauth: OAuthClient,
    pub store: TokenStore,
}

impl Google {
    pub fn from_config(config: &Config) -> anyhow::Result<Google> {
        let mut secret = ClientSecret::from_file(&config.google.client_secret_file)?;
        let defaults = Endpoints::default();
        let endpoints = Endpoints::from_strs(
            config
                .google
                .auth_url
                .as_deref()
                .unwrap_or(secret.auth_uri.as_str()),
            config
                .google
                .token_url
                .as_deref()
                .unwrap_or(secret.token_uri.as_str()),
            config
                .google
                .revoke_url
                .as_deref()
                .unwrap_or(defaults.revoke_url.as_str()),
            &config.google.library_api_url,
            &config.google.picker_api_url,
        )?;
        secret.auth_uri = endpoints.auth_url.clone();
        secret.token_uri = endpoints.token_url.clone();
        let http = HttpClient::builder()
            .user_agent(concat!("gphotos-backup/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let oauth = OAuthClient::new(http.clone(), secret, &endpoints);
        let store = TokenStore::new(&config.google.token_file);
        Ok(Google {
            http,
            endpoints,
            oauth,
            store,
        })
    }

    /// The scopes `auth` asks for: the one read scope Google still grants, or the removed
    /// broad one for projects that opted in.
    pub fn library_scopes(config: &Config) -> Vec<Scope> {
        if config.google.use_removed_readonly_scope {
            vec![Scope::LIBRARY_READONLY_REMOVED]
        } else {
            vec![Scope::LIBRARY_READONLY_APPCREATED]
        }
    }

    /// A token provider from the stored authorization, or a message telling the user to
    /// authorize first.
    pub fn token_provider(&self, config: &Config) -> Result<TokenProvider, CycleOutcome> {
        match self.store.load() {
            Ok(Some(_)) => TokenProvider::from_store(self.oauth.clone(), self.store.clone())
                .map_err(|err| auth_failure(err.to_string())),
            Ok(None) => Err(auth_failure(format!(
                "not authorized yet: run `gphotos-backup --config {} auth` once",
                config.source_file.display()
            ))),
            Err(err) => Err(auth_failure(err.to_string())),
        }
    }
}

fn auth_failure(message: String) -> CycleOutcome {
    CycleOutcome::Failed {
        kind: FailureKind::Auth,
        message,
    }
}

/// The engine's settings from the config.
pub fn engine_config(config: &Config) -> EngineConfig {
    let mut engine = EngineConfig::new(&config.library_dir, &config.state_dir);
    engine.max_concurrent_downloads = config.sync.max_concurrent_downloads;
    engine.album_links = config.sync.album_links;
    engine.filesystem = config.sync.filesystem;
    engine.folder_timezone = config.sync.folder_timezone;
    engine.delete_removed = config.sync.delete_removed;
    engine.max_removal_fraction = config.sync.max_removal_fraction;
    engine.full_rescan_interval = config.sync.full_rescan_interval;
    engine.durability = config.sync.durability;
    engine
}

/// Runs blocking index work (opening or compacting it can take seconds on a big library)
/// without stalling the async tasks that share this worker thread (the control socket,
/// signal handling). `block_in_place`, not `spawn_blocking`: a fresh blocking thread
/// allocates from a new malloc arena while the sync's freed memory sits in the workers'
/// ones, which raised the peak RSS of a 100k first sync from 110 to 174 MB. Outside a
/// multi-threaded runtime it simply runs.
pub fn blocking<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

/// Opens the index, mapping "another process has it" to the outcome users understand. The
/// open may compact the index first (see `SledStore::open`).
pub fn open_engine(config: &Config) -> Result<Engine, CycleOutcome> {
    blocking(|| Engine::open(engine_config(config))).map_err(|err| match err {
        sync_engine::Error::IndexLocked { .. } => CycleOutcome::Failed {
            kind: FailureKind::Locked,
            message: err.to_string(),
        },
        other => CycleOutcome::Failed {
            kind: FailureKind::Error,
            message: other.to_string(),
        },
    })
}

/// One full sync cycle: every enabled source, then the layout. Never panics on bad input;
/// every way it can end is a [`CycleOutcome`].
pub async fn run_cycle(
    config: &Config,
    rescan: bool,
    progress: Arc<dyn ProgressSink>,
    cancel: CancellationToken,
) -> CycleOutcome {
    let started = Instant::now();
    // A Library API that cannot be used (no token yet, no client file) must not keep the
    // Takeout inbox from being imported: the cycle still fails with the API's reason.
    let (sources, api_failure) = match build_sources(config) {
        Ok(sources) => (sources, None),
        Err(outcome) if config.takeout.is_some() => {
            tracing::error!(
                "Library API skipped: {}; importing the Takeout inbox anyway",
                outcome.text()
            );
            (Vec::new(), Some(outcome))
        }
        Err(outcome) => return outcome,
    };
    if sources.is_empty() && config.takeout.is_none() {
        return CycleOutcome::Failed {
            kind: FailureKind::Error,
            message: "no source is enabled: enable [sources.library_api] or configure \
                      [sources.takeout] in the config"
                .to_string(),
        };
    }
    let engine = match open_engine(config) {
        Ok(engine) => engine,
        Err(outcome) => return outcome,
    };
    // Takeout (issue 5) needs the engine on a blocking thread and its own cancel handle.
    let engine = Arc::new(engine);
    let takeout_cancel = cancel.clone();
    let export_cancel = cancel.clone(); // export step (issue 7), below
    let result = engine
        .sync(&sources, SyncOptions { rescan }, progress, cancel)
        .await;
    if let Err(err) = engine.flush() {
        tracing::warn!("flushing the index failed: {err}");
    }
    let (run_id, downloaded, bytes, failed) = match &result {
        Ok(r) => (r.run_id, r.downloaded, r.bytes_downloaded, r.failed),
        Err(_) => (0, 0, 0, 0),
    };
    let outcome = match api_failure {
        Some(failure) => failure,
        None => outcome_of(result, started),
    };
    let export_engine = Arc::clone(&engine); // export step (issue 7), below
    // --- Takeout inbox (issue 5): after the API sources, in the same cycle. ---
    let outcome = match crate::takeout_cmd::cycle_import(config, engine, takeout_cancel).await {
        Some(takeout) => crate::takeout_cmd::fold_outcome(outcome, takeout),
        None => outcome,
    };
    // --- end of the Takeout inbox ---
    // --- export targets (issue 7): after a successful sync and import, same engine. ---
    let outcome = crate::export_cmd::after_cycle(config, &export_engine, outcome, &export_cancel);
    drop(export_engine);
    // --- end of export ---
    // The cycle's last handle on the index is gone: a first sync that wrote every record
    // several times leaves sled's log several times the live data; compact it now rather
    // than at the next open. Not while shutting down: it would only delay the exit.
    if !export_cancel.is_cancelled() {
        let engine_config = engine_config(config);
        if let Err(err) = blocking(|| Engine::maintain_index(&engine_config)) {
            tracing::warn!("index maintenance skipped: {err}");
        }
    }
    // Structured fields become journal fields (RUN_ID, OUTCOME, …) under journald.
    let duration_s = started.elapsed().as_secs();
    match &outcome {
        CycleOutcome::Success { summary } | CycleOutcome::Partial { summary } => {
            tracing::info!(
                run_id,
                outcome = outcome.label(),
                downloaded,
                bytes,
                failed,
                duration_s,
                "sync cycle finished: {summary}"
            );
        }
        CycleOutcome::Paused { summary } => {
            tracing::warn!(
                run_id,
                outcome = "paused",
                downloaded,
                bytes,
                failed,
                duration_s,
                "sync cycle paused: {summary}"
            );
        }
        CycleOutcome::Failed { message, .. } => {
            tracing::error!(
                run_id,
                outcome = outcome.label(),
                downloaded,
                bytes,
                failed,
                duration_s,
                "sync cycle failed: {message}"
            );
        }
    }
    outcome
}

fn build_sources(config: &Config) -> Result<Vec<Arc<dyn Source>>, CycleOutcome> {
    let mut sources: Vec<Arc<dyn Source>> = Vec::new();
    if config.library_api.enabled {
        let google = Google::from_config(config).map_err(|err| CycleOutcome::Failed {
            kind: FailureKind::Auth,
            message: format!("{err:#}"),
        })?;
        let tokens = google.token_provider(config)?;
        let library = LibraryClient::new(google.http.clone(), tokens, &google.endpoints);
        let downloader = Downloader::new(google.http.clone());
        sources.push(Arc::new(LibraryApiSource::new(
            library,
            downloader,
            google.http,
        )));
    }
    Ok(sources)
}

fn outcome_of(result: Result<RunReport, sync_engine::Error>, started: Instant) -> CycleOutcome {
    match result {
        Ok(report) => {
            let summary = summarize(&report, started);
            match report.outcome {
                RunOutcome::Completed if report.failed == 0 => CycleOutcome::Success { summary },
                RunOutcome::Completed => CycleOutcome::Partial { summary },
                RunOutcome::Paused { reason } => CycleOutcome::Paused {
                    summary: format!("{summary}; paused: {reason}. The next run resumes."),
                },
                RunOutcome::Cancelled => CycleOutcome::Failed {
                    kind: FailureKind::Interrupted,
                    message: format!("stopped before the end ({summary})"),
                },
                RunOutcome::Failed { error } => CycleOutcome::Failed {
                    kind: FailureKind::Error,
                    message: error,
                },
            }
        }
        Err(sync_engine::Error::Source {
            error: SourceError::Unauthorized(message),
            ..
        }) => auth_failure(message),
        Err(err @ sync_engine::Error::IndexLocked { .. }) => CycleOutcome::Failed {
            kind: FailureKind::Locked,
            message: err.to_string(),
        },
        Err(err) => CycleOutcome::Failed {
            kind: FailureKind::Error,
            message: err.to_string(),
        },
    }
}

/// One line a user can read at a glance in `journalctl` or a terminal.
pub fn summarize(report: &RunReport, started: Instant) -> String {
    let mut parts = vec![
        format!(
            "{} listed{}",
            report.listed,
            if report.full_scan { " (full scan)" } else { "" }
        ),
        format!(
            "{} downloaded ({})",
            report.downloaded,
            progress::human_bytes(report.bytes_downloaded)
        ),
    ];
    for (count, what) in [
        (report.adopted, "adopted"),
        (report.failed, "failed (retried next run)"),
        (report.processing, "still processing on Google"),
        (report.deferred, "waiting for retry"),
        (report.removed, "removed on Google"),
        (report.albums_updated, "albums updated"),
    ] {
        if count > 0 {
            parts.push(format!("{count} {what}"));
        }
    }
    if let Some(suppressed) = report.removal_suppressed {
        parts.push(format!(
            "{suppressed} removals NOT applied (listing shrank too much)"
        ));
    }
    format!(
        "run {}: {} in {:.1}s",
        report.run_id,
        parts.join(", "),
        started.elapsed().as_secs_f64()
    )
}

/// The daemon's [`CycleRunner`]: reads the current config (SIGHUP may replace it) and runs.
pub struct EngineRunner {
    config: Arc<RwLock<Config>>,
}

impl EngineRunner {
    pub fn new(config: Arc<RwLock<Config>>) -> EngineRunner {
        EngineRunner { config }
    }
}

impl CycleRunner for EngineRunner {
    fn run_cycle(
        &self,
        request: CycleRequest,
        context: CycleContext,
    ) -> BoxFuture<'static, CycleOutcome> {
        let config = match self.config.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        Box::pin(async move {
            tracing::info!(trigger = %request.trigger, rescan = request.rescan, "sync cycle starting");
            let progress = progress::for_service(context.status.clone());
            run_cycle(&config, request.rescan, progress, context.cancel).await
        })
    }
}
