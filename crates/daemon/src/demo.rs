//! `gphotos-backup demo`: the whole product on a fake Google, no account needed.
//!
//! It starts the fake Google from `fake-google` on 127.0.0.1, writes a real config file
//! pointing at it, authorizes with the real OAuth flow (the fake's scripted consent screen
//! plays the user), and runs a normal sync cycle into the demo directory.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use fake_google::{FakeConfig, FakeGoogle};
use sync_engine::ProgressSink;
use tokio_util::sync::CancellationToken;

use crate::app::{self, Google};
use crate::config;
use crate::exit;
use crate::progress::{BarProgress, LogProgress, human_bytes};
use crate::service::CycleOutcome;

/// Where the demo keeps its index, token and config, inside the demo directory.
const STATE_SUBDIR: &str = ".gphotos-backup";

pub async fn run(dir: &Path, items: usize) -> u8 {
    match run_inner(dir, items).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("gphotos-backup demo: {err:#}");
            exit::FAILURE
        }
    }
}

async fn run_inner(dir: &Path, items: usize) -> anyhow::Result<u8> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = dir
        .canonicalize()
        .with_context(|| format!("resolving {}", dir.display()))?;
    let state_dir = dir.join(STATE_SUBDIR);
    std::fs::create_dir_all(&state_dir)
        .with_context(|| format!("creating {}", state_dir.display()))?;

    let fake = FakeGoogle::start(FakeConfig::with_items(items))
        .await
        .context("starting the fake Google")?;
    say!(
        "Fake Google listening on {} with {items} generated photos and videos.",
        fake.base_url()
    );

    let config_path = write_demo_config(&dir, &state_dir, &fake)?;
    let config = config::load(&config_path).map_err(|err| anyhow::anyhow!("{err}"))?;

    authorize(&config).await?;
    say!("Authorized with the fake Google (OAuth loopback flow, PKCE).");

    let bar = std::io::stderr().is_terminal().then(BarProgress::new);
    let progress: Arc<dyn ProgressSink> = match &bar {
        Some(bar) => bar.clone(),
        None => LogProgress::new(None),
    };
    let outcome = app::run_cycle(&config, false, progress, CancellationToken::new()).await;
    if let Some(bar) = bar {
        bar.finish();
    }
    let stats = fake.stats();
    fake.shutdown().await;

    match &outcome {
        CycleOutcome::Success { summary } | CycleOutcome::Partial { summary } => {
            say!("{summary}");
            say!(
                "Fetched {} from the fake's media host in {} requests.",
                human_bytes(stats.media_bytes),
                stats.media_requests
            );
            say!();
            say!("Your demo library is in {}:", dir.display());
            say!("  photos/YYYY/MM/…        the files, mtime = capture time");
            say!("  albums/YYYY/MM Title/   relative links into photos/");
            say!();
            say!("Try:");
            let cfg = config_path.display();
            // The binary's real path: after `cargo run` it is not on PATH.
            let exe = std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| "gphotos-backup".to_string());
            say!("  {exe} --config {cfg} list --json | head");
            say!("  {exe} --config {cfg} verify --deep");
            say!("  {exe} --config {cfg} status");
            say!("Run the demo again: nothing is downloaded twice.");
        }
        CycleOutcome::Paused { summary } => say!("{summary}"),
        CycleOutcome::Failed { message, .. } => eprintln!("gphotos-backup demo: {message}"),
    }
    // The generated library has a video Google "failed to process": a partial run is the
    // expected demo result, not a failure of the demo.
    Ok(match outcome {
        CycleOutcome::Partial { .. } => exit::OK,
        other => other.exit_code(),
    })
}

/// A normal config file, so the demo exercises the same loading path as a real setup and
/// the user can run `list`, `verify` and `status` against the result afterwards.
fn write_demo_config(dir: &Path, state_dir: &Path, fake: &FakeGoogle) -> anyhow::Result<PathBuf> {
    let secret_path = state_dir.join("client_secret.json");
    std::fs::write(&secret_path, fake.client_secret_json())
        .with_context(|| format!("writing {}", secret_path.display()))?;
    let text = format!(
        "# Written by `gphotos-backup demo`: a library synced from a fake Google on loopback.\n\
         library_dir = {library:?}\n\
         state_dir = {state:?}\n\n\
         [google]\n\
         client_secret_file = {secret:?}\n\
         revoke_url = {revoke:?}\n\
         library_api_url = {library_api:?}\n\
         picker_api_url = {picker_api:?}\n",
        library = dir.display().to_string(),
        state = state_dir.display().to_string(),
        secret = secret_path.display().to_string(),
        revoke = fake.revoke_url(),
        library_api = fake.library_api_url(),
        picker_api = fake.picker_api_url(),
    );
    let path = state_dir.join("config.toml");
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Runs the real loopback flow; a small HTTP client plays the browser.
async fn authorize(config: &config::Config) -> anyhow::Result<()> {
    let google = Google::from_config(config)?;
    let pending = google
        .oauth
        .start_authorization(&Google::library_scopes(config), None)
        .await?;
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::limited(5))
        .build()?;
    let consent_url = pending.authorize_url().to_string();
    let (tokens, page) = tokio::join!(pending.wait_for_redirect(), browser.get(consent_url).send());
    page.context("the demo browser could not open the consent page")?;
    google.store.save(&tokens?)?;
    Ok(())
}
