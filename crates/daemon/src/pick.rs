//! `gphotos-backup pick`: back up what the user picks by hand in Google Photos.
//!
//! The Picker API (spec §3) is the only official way left to read items a user owns, and it
//! needs a person for every session. So this command makes that easy: it asks for the picker
//! scope if the stored authorization lacks it (incremental authorization), creates a session,
//! shows its link on a line of its own and as a terminal QR code (to pick on a phone), polls
//! at the session's `pollInterval` until the user presses Done or `timeoutIn` runs out, then
//! saves the picked items with the same engine, layout, names and index as every other source
//! (`source = "picker"`), deletes the session and says what was and was not saved.
//!
//! If a daemon cycle holds the index when the picking is done, the command waits for it (for
//! a bounded time) instead of doing the daemon's work over the control socket.

use std::collections::HashSet;
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use api_client::{
    Downloader, PickerClient, PickerRequestId, PickerSessionId, Scope, TokenProvider,
};
use sync_engine::{
    Engine, MediaId, PickedSummary, PickerSource, ProgressSink, RunOutcome, Source, SourceError,
    SyncOptions,
};
use tokio_util::sync::CancellationToken;

use crate::app::{self, Google};
use crate::config::Config;
use crate::exit;
use crate::progress::{BarProgress, LogProgress};

/// Google's per-session limit when `maxItemCount` is unset (spec §3.2).
const DEFAULT_MAX_ITEMS: u32 = 2000;
/// How long to wait for a running sync to release the index: well inside the ~60 minutes
/// the picked items' base URLs live.
const LOCK_WAIT: Duration = Duration::from_secs(15 * 60);
/// Between attempts to open a busy index.
const LOCK_RETRY: Duration = Duration::from_secs(2);
/// Paths listed one by one in the final report; above this only counts are printed.
const LIST_LIMIT: usize = 20;

/// Runs `pick` to completion and returns the exit code.
///
/// `max_items` caps the session (1..=2000; `None` = Google's 2000), `no_qr` skips the QR
/// code, `port` is the loopback port if authorization is needed (0 = any free port).
pub async fn run(config: &Config, max_items: Option<u32>, no_qr: bool, port: u16) -> u8 {
    let google = match Google::from_config(config) {
        Ok(google) => google,
        Err(err) => return fail(format!("{err:#}"), exit::AUTH),
    };
    let tokens = match picker_tokens(config, &google, port).await {
        Ok(tokens) => tokens,
        Err(code) => return code,
    };
    let picker = PickerClient::new(google.http.clone(), tokens.clone(), &google.endpoints);
    let cancel = CancellationToken::new();
    let interrupt = crate::commands::spawn_interrupt_handler(cancel.clone());
    let code = loop {
        let end = one_session(config, &google, &picker, &tokens, max_items, no_qr, &cancel).await;
        match end {
            SessionEnd::Finished {
                code,
                limit_reached: true,
            } if code == exit::OK => {
                if offer_another_session().await {
                    continue;
                }
                break code;
            }
            SessionEnd::Finished { code, .. } | SessionEnd::Stopped(code) => break code,
        }
    };
    interrupt.abort();
    code
}

enum SessionEnd {
    /// The session ran its course.
    Finished { code: u8, limit_reached: bool },
    /// Interrupted, or an error before anything could be picked.
    Stopped(u8),
}

fn fail(message: impl std::fmt::Display, code: u8) -> u8 {
    eprintln!("gphotos-backup: {message}");
    code
}

fn flush() {
    let _ = std::io::stdout().flush();
}

// ---------------------------------------------------------------- authorization

/// The stored authorization, after adding the picker scope to it if it lacks it.
async fn picker_tokens(config: &Config, google: &Google, port: u16) -> Result<TokenProvider, u8> {
    let stored = google.store.load().map_err(|err| fail(err, exit::AUTH))?;
    match &stored {
        Some(tokens) if tokens.has_scope(&Scope::PICKER_READONLY) => {}
        _ => authorize_picker(config, google, port, stored.is_some()).await?,
    }
    TokenProvider::from_store(google.oauth.clone(), google.store.clone())
        .map_err(|err| fail(err, exit::AUTH))
}

/// Incremental authorization: the library scopes `auth` asks for plus the picker scope, so
/// the new token replaces the old one without losing anything.
async fn authorize_picker(
    config: &Config,
    google: &Google,
    port: u16,
    had_token: bool,
) -> Result<(), u8> {
    let mut scopes = Google::library_scopes(config);
    scopes.push(Scope::PICKER_READONLY);
    let pending = google
        .oauth
        .start_authorization(&scopes, (port != 0).then_some(port))
        .await
        .map_err(|err| fail(err, exit::AUTH))?;
    let listen_port = pending.redirect_uri().port().unwrap_or(port);
    if had_token {
        say!(
            "Picking needs one more permission: the Google Photos Picker ({}), which the stored \
             authorization does not include.",
            Scope::PICKER_READONLY.as_str()
        );
    } else {
        say!("Not authorized yet: picking needs access to the Google Photos Picker.");
    }
    say!("Open this URL in a browser signed in to your Google account:");
    say!();
    say!("{}", pending.authorize_url());
    say!();
    say!(
        "Waiting for the browser to come back to http://127.0.0.1:{listen_port}/ …\n\
         On a remote server, forward the port first (ssh -L {listen_port}:127.0.0.1:{listen_port} \
         <this-server>) or paste the URL the browser ends up on here and press Enter."
    );
    flush();
    let tokens = crate::commands::wait_or_paste(&pending)
        .await
        .map_err(|err| fail(err, exit::AUTH))?;
    if !tokens.has_scope(&Scope::PICKER_READONLY) {
        return Err(fail(
            "Google did not grant the Picker permission (was it unticked on the consent \
             screen?); run `pick` again and leave it ticked",
            exit::AUTH,
        ));
    }
    crate::commands::ensure_private_dir(google.store.path())
        .map_err(|err| fail(err, exit::FAILURE))?;
    google
        .store
        .save(&tokens)
        .map_err(|err| fail(err, exit::FAILURE))?;
    say!("Authorized for picking.");
    Ok(())
}

// ---------------------------------------------------------------- one session

async fn one_session(
    config: &Config,
    google: &Google,
    picker: &PickerClient,
    tokens: &TokenProvider,
    max_items: Option<u32>,
    no_qr: bool,
    cancel: &CancellationToken,
) -> SessionEnd {
    let session = match picker
        .create_session(max_items, Some(&PickerRequestId::new_random()))
        .await
    {
        Ok(session) => session,
        Err(err) => return SessionEnd::Stopped(fail(create_error(&err), code_of(&err))),
    };
    let id = session.id.clone();
    show_link(&session.picker_uri, no_qr);

    let picked = tokio::select! {
        r = picker.wait_until_picked(&id) => r,
        () = cancel.cancelled() => {
            delete_session(picker, &id).await;
            return SessionEnd::Stopped(fail("interrupted; nothing was saved", exit::FAILURE));
        }
    };
    let picked = match picked {
        Ok(session) => session,
        Err(api_client::Error::PickingTimedOut) => {
            delete_session(picker, &id).await;
            say!(
                "Nothing was picked before the picking session timed out, so nothing was saved. \
                 Run `gphotos-backup pick` again when you are ready."
            );
            return SessionEnd::Stopped(exit::OK);
        }
        Err(api_client::Error::Api {
            http_status: 403 | 404,
            ..
        }) => {
            delete_session(picker, &id).await;
            say!(
                "The picking session expired before you pressed Done, so nothing was saved. \
                 Run `gphotos-backup pick` again to start a new one."
            );
            return SessionEnd::Stopped(exit::OK);
        }
        Err(err) => {
            delete_session(picker, &id).await;
            return SessionEnd::Stopped(fail(err.to_string(), code_of(&err)));
        }
    };
    let limit = picked
        .picking_config
        .and_then(|c| c.max_item_count)
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| *n > 0)
        .or(max_items)
        .unwrap_or(DEFAULT_MAX_ITEMS);
    say!(
        "Picking done; saving the picked items into {} …",
        config.library_dir.display()
    );
    flush();

    let end = save_picked(config, google, picker, tokens, &id, limit, cancel).await;
    delete_session(picker, &id).await;
    end
}

fn create_error(err: &api_client::Error) -> String {
    match err {
        api_client::Error::Api {
            status: Some(status),
            ..
        } if status == "FAILED_PRECONDITION" => format!(
            "Google refused to start a picking session: this account has no active Google \
             Photos library ({err})"
        ),
        api_client::Error::Api {
            http_status: 429, ..
        }
        | api_client::Error::RateLimited { .. } => format!(
            "Google refused to start a picking session: too many open sessions ({err}); wait a \
             few minutes and try again"
        ),
        other => format!("could not start a picking session: {other}"),
    }
}

fn code_of(err: &api_client::Error) -> u8 {
    use api_client::Error as E;
    match err {
        E::InsufficientScope { .. }
        | E::ReauthorizationRequired { .. }
        | E::Unauthenticated { .. }
        | E::AccessDenied { .. }
        | E::OAuth { .. } => exit::AUTH,
        E::DailyQuotaExhausted { .. } => exit::PAUSED,
        _ => exit::FAILURE,
    }
}

/// The picker URI on a line of its own (to click or copy) and as a QR code (for a phone).
fn show_link(uri: &str, no_qr: bool) {
    say!("Open this link and pick the photos and videos to back up, then press Done:");
    say!();
    say!("{uri}");
    say!();
    if !no_qr && let Some(qr) = qr_code(uri) {
        say!("Or scan this code with your phone:");
        say!("{qr}");
    }
    say!("Waiting for you to finish picking …");
    flush();
}

/// The URI as a QR code in Unicode half blocks (two modules per character cell), light on
/// dark like most terminals; `None` if the URI is too long for a QR code.
pub fn qr_code(uri: &str) -> Option<String> {
    use qrcode::render::unicode::Dense1x2;
    let code = qrcode::QrCode::new(uri.as_bytes()).ok()?;
    Some(
        code.render::<Dense1x2>()
            .dark_color(Dense1x2::Light)
            .light_color(Dense1x2::Dark)
            .quiet_zone(true)
            .build(),
    )
}

async fn delete_session(picker: &PickerClient, id: &PickerSessionId) {
    // Google asks apps to delete every session; an expired one may already be gone.
    if let Err(err) = picker.delete_session(id).await {
        tracing::debug!(session = %id, "deleting the picking session failed: {err}");
    }
}

/// Opens the index, waiting (bounded) while a daemon cycle or `--run-now` holds it.
async fn open_engine_waiting(config: &Config, cancel: &CancellationToken) -> Result<Engine, u8> {
    let deadline = Instant::now() + LOCK_WAIT;
    let mut told = false;
    loop {
        match app::open_engine(config) {
            Ok(engine) => return Ok(engine),
            Err(outcome) if outcome.exit_code() == exit::LOCKED && Instant::now() < deadline => {
                if !told {
                    say!(
                        "A sync is running on this library; waiting for it to finish (at most {} \
                         minutes) …",
                        LOCK_WAIT.as_secs() / 60
                    );
                    flush();
                    told = true;
                }
                tokio::select! {
                    () = tokio::time::sleep(LOCK_RETRY) => {}
                    () = cancel.cancelled() => {
                        return Err(fail("interrupted; nothing was saved", exit::FAILURE));
                    }
                }
            }
            Err(outcome) => {
                let hint = if outcome.exit_code() == exit::LOCKED {
                    " (a sync is still running; run `pick` again when it ends)"
                } else {
                    ""
                };
                return Err(fail(
                    format!("{}{hint}", outcome.text()),
                    outcome.exit_code(),
                ));
            }
        }
    }
}

/// Downloads the session's items with the engine and reports what was saved.
async fn save_picked(
    config: &Config,
    google: &Google,
    picker: &PickerClient,
    tokens: &TokenProvider,
    id: &PickerSessionId,
    limit: u32,
    cancel: &CancellationToken,
) -> SessionEnd {
    let engine = match open_engine_waiting(config, cancel).await {
        Ok(engine) => engine,
        Err(code) => return SessionEnd::Stopped(code),
    };
    // The source cancels only this run's token when the session expires, so an interrupt
    // (the parent) and an expiry can be told apart afterwards.
    let run = cancel.child_token();
    let source = Arc::new(
        PickerSource::new(
            picker.clone(),
            tokens.clone(),
            Downloader::new(google.http.clone()),
            google.http.clone(),
            id.clone(),
        )
        .stop_run_when_session_ends(run.clone()),
    );
    let sources: Vec<Arc<dyn Source>> = vec![source.clone()];
    let bar = std::io::stderr().is_terminal().then(BarProgress::new);
    let progress: Arc<dyn ProgressSink> = match &bar {
        Some(bar) => bar.clone(),
        None => LogProgress::new(None),
    };
    let result = engine
        .sync(&sources, SyncOptions::default(), progress, run)
        .await;
    if let Some(bar) = bar {
        bar.finish();
    }
    if let Err(err) = engine.flush() {
        tracing::warn!("flushing the index failed: {err}");
    }
    let picked = source.picked();
    let saved = match saved_paths(&engine, &picked) {
        Ok(saved) => saved,
        Err(err) => return SessionEnd::Stopped(fail(err, exit::FAILURE)),
    };
    drop(engine);

    let session_ended = source.session_ended();
    let listed_all = source.listing_complete();
    let interrupted = cancel.is_cancelled();
    let (downloaded, failed_error) = match &result {
        Ok(report) => (report.downloaded + report.adopted, None),
        Err(err) => (0, Some(err)),
    };
    let all = picked.len();
    let missing: Vec<&PickedSummary> = picked
        .iter()
        .filter(|p| !saved.contains_key(&p.id))
        .collect();

    if all == 0 && listed_all && !session_ended && failed_error.is_none() {
        say!("Nothing was picked, so nothing was saved.");
        return SessionEnd::Finished {
            code: exit::OK,
            limit_reached: false,
        };
    }
    let fresh = usize::try_from(downloaded)
        .unwrap_or(usize::MAX)
        .min(saved.len());
    say!(
        "Saved {} of {all} picked items in {} ({fresh} downloaded now, {} already in the library).",
        saved.len(),
        config.library_dir.display(),
        saved.len() - fresh,
    );
    if saved.len() <= LIST_LIMIT {
        for p in &picked {
            if let Some(path) = saved.get(&p.id) {
                say!("  {path}");
            }
        }
    }
    if !missing.is_empty() {
        let names: Vec<&str> = missing
            .iter()
            .take(LIST_LIMIT)
            .map(|p| p.filename.as_str())
            .collect();
        let more = missing.len().saturating_sub(LIST_LIMIT);
        say!(
            "Not saved ({}): {}{}",
            missing.len(),
            names.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        );
    }
    if session_ended {
        say!(
            "The picking session expired before everything was downloaded: {} of {all} picked \
             items were saved and {} were not. Run `gphotos-backup pick` again and pick the ones \
             listed above.",
            saved.len(),
            missing.len()
        );
        return SessionEnd::Finished {
            code: exit::PARTIAL,
            limit_reached: false,
        };
    }
    if interrupted {
        return SessionEnd::Stopped(fail(
            "interrupted; what was saved stays, run `pick` again for the rest",
            exit::FAILURE,
        ));
    }
    if let Some(err) = failed_error {
        let code = match err {
            sync_engine::Error::Source {
                error: SourceError::Unauthorized(_),
                ..
            } => exit::AUTH,
            _ => exit::FAILURE,
        };
        return SessionEnd::Stopped(fail(err, code));
    }
    if let Ok(report) = &result
        && let RunOutcome::Paused { reason } = &report.outcome
    {
        return SessionEnd::Stopped(fail(
            format!("paused: {reason}; run `pick` again later for the rest"),
            exit::PAUSED,
        ));
    }
    let problems: &[String] = result.as_ref().map_or(&[], |r| r.errors.as_slice());
    for problem in problems.iter().take(3) {
        say!("  problem: {problem}");
    }
    if !listed_all {
        say!(
            "Google's list of the picked items broke off, so more may have been picked than the \
             {all} above. Run `gphotos-backup pick` again and pick the missing ones."
        );
        return SessionEnd::Finished {
            code: exit::PARTIAL,
            limit_reached: false,
        };
    }
    if !missing.is_empty() {
        say!("Run `gphotos-backup pick` again and pick the ones not saved to try them again.");
    }
    let limit_reached = u32::try_from(all).unwrap_or(u32::MAX) >= limit;
    if limit_reached {
        say!(
            "You picked {all} items, the most one picking session allows ({limit}). To back up \
             more, pick the rest in another session."
        );
    }
    SessionEnd::Finished {
        code: if missing.is_empty() {
            exit::OK
        } else {
            exit::PARTIAL
        },
        limit_reached,
    }
}

/// Library paths of the picked items whose file is in the library.
fn saved_paths(
    engine: &Engine,
    picked: &[PickedSummary],
) -> Result<std::collections::HashMap<MediaId, String>, sync_engine::Error> {
    let wanted: HashSet<&MediaId> = picked.iter().map(|p| &p.id).collect();
    let mut saved = std::collections::HashMap::new();
    for item in engine.items() {
        let item = item?;
        if item.state == "done" && wanted.contains(&item.id) {
            saved.insert(item.id, item.path);
        }
    }
    Ok(saved)
}

/// Asks (on a terminal only) whether to start another session; otherwise says how.
async fn offer_another_session() -> bool {
    if !std::io::stdin().is_terminal() {
        say!("Run `gphotos-backup pick` again to pick the rest.");
        return false;
    }
    print!("Start another picking session now? [y/N] ");
    flush();
    matches!(
        crate::commands::read_line()
            .await
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("y" | "yes")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qr_code_is_half_blocks_and_square() {
        let qr = qr_code("https://photos.google.com/picker/abc-123").unwrap_or_default();
        let lines: Vec<&str> = qr.lines().collect();
        assert!(!lines.is_empty());
        let width = lines[0].chars().count();
        assert!(lines.iter().all(|l| l.chars().count() == width));
        // Two modules per cell: about half as many rows as columns.
        assert!(
            lines.len() * 2 >= width && lines.len() * 2 <= width + 2,
            "{qr}"
        );
        assert!(
            qr.chars()
                .all(|c| matches!(c, ' ' | '█' | '▀' | '▄' | '\n'))
        );
    }
}
