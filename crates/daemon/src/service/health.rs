//! After-cycle reporting to the user's monitoring: a healthchecks.io-style ping and an
//! optional `on_failure_command`. Both are bounded in time and can only log on error;
//! monitoring trouble must never turn a good backup into a failed one.

use std::process::Stdio;

use crate::service::{CycleOutcome, CycleRequest, HealthOptions};

/// Longest body sent with a ping; healthchecks.io keeps the first 100 kB, a summary fits.
const MAX_PING_BODY: usize = 10_000;

/// The URL to ping for `outcome`, or `None` when this outcome is not reported (an
/// interrupted cycle is a normal stop).
pub(crate) fn ping_url(base: &str, outcome: &CycleOutcome) -> Option<url::Url> {
    if matches!(outcome, CycleOutcome::Failed { .. }) && !outcome.is_failure() {
        return None;
    }
    let mut url = match url::Url::parse(base) {
        Ok(url) => url,
        Err(err) => {
            tracing::warn!("healthcheck_url is not a URL: {err}");
            return None;
        }
    };
    if outcome.is_failure() {
        // healthchecks.io convention: `<check url>/fail`, keeping any query string.
        match url.path_segments_mut() {
            Ok(mut segments) => {
                segments.pop_if_empty().push("fail");
            }
            Err(()) => return None,
        }
    }
    Some(url)
}

/// Pings the healthcheck (POST with the summary as body) and runs the failure command.
pub(crate) async fn report(
    health: &HealthOptions,
    client: &reqwest::Client,
    request: CycleRequest,
    outcome: &CycleOutcome,
) {
    if let Some(url) = health
        .healthcheck_url
        .as_deref()
        .and_then(|base| ping_url(base, outcome))
    {
        let mut body = outcome.to_string();
        if body.len() > MAX_PING_BODY {
            let mut end = MAX_PING_BODY;
            while !body.is_char_boundary(end) {
                end -= 1;
            }
            body.truncate(end);
        }
        let sent = client
            .post(url.clone())
            .timeout(health.ping_timeout)
            .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(body)
            .send()
            .await;
        // The URL is a capability (anyone holding the check's UUID can ping it): log the
        // host only, and strip the URL from reqwest's error text.
        let host = url.host_str().unwrap_or("?").to_string();
        match sent.and_then(reqwest::Response::error_for_status) {
            Ok(_) => tracing::debug!(host, "healthcheck pinged"),
            Err(err) => tracing::warn!(host, "healthcheck ping failed: {}", err.without_url()),
        }
    }
    if outcome.is_failure()
        && let Some(command) = &health.on_failure_command
    {
        run_failure_command(health, command, request, outcome).await;
    }
}

async fn run_failure_command(
    health: &HealthOptions,
    command: &str,
    request: CycleRequest,
    outcome: &CycleOutcome,
) {
    let spawned = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .env("GPHOTOS_BACKUP_OUTCOME", outcome.label())
        .env("GPHOTOS_BACKUP_MESSAGE", outcome.text())
        .env("GPHOTOS_BACKUP_EXIT_CODE", outcome.exit_code().to_string())
        .env("GPHOTOS_BACKUP_TRIGGER", request.trigger.to_string())
        // The command is not the service: it must not talk to systemd as if it were.
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env_remove("WATCHDOG_PID")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(err) => {
            tracing::warn!("on_failure_command could not start: {err}");
            return;
        }
    };
    match tokio::time::timeout(health.command_timeout, child.wait()).await {
        Ok(Ok(status)) if status.success() => tracing::debug!("on_failure_command finished"),
        Ok(Ok(status)) => tracing::warn!("on_failure_command exited with {status}"),
        Ok(Err(err)) => tracing::warn!("on_failure_command: {err}"),
        Err(_) => {
            // kill_on_drop would also do it; an explicit kill is logged with the reason.
            let _ = child.kill().await;
            tracing::warn!(
                "on_failure_command ran longer than {:?} and was killed",
                health.command_timeout
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::{FailureKind, Trigger};

    fn failed() -> CycleOutcome {
        CycleOutcome::Failed {
            kind: FailureKind::Auth,
            message: "token revoked".into(),
        }
    }

    #[test]
    fn fail_suffix_only_on_failure() {
        let base = "https://hc-ping.com/abc";
        let ok = CycleOutcome::Success {
            summary: "3 new".into(),
        };
        assert_eq!(ping_url(base, &ok).unwrap().as_str(), base);
        assert_eq!(
            ping_url(base, &failed()).unwrap().as_str(),
            "https://hc-ping.com/abc/fail"
        );
        assert_eq!(
            ping_url("https://hc.example/ping/abc/?rid=1", &failed())
                .unwrap()
                .as_str(),
            "https://hc.example/ping/abc/fail?rid=1"
        );
        assert!(ping_url(base, &CycleOutcome::interrupted("stopping")).is_none());
    }

    #[tokio::test]
    async fn failure_command_sees_the_outcome() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let health = HealthOptions {
            on_failure_command: Some(format!(
                "printf '%s|%s|%s|%s' \"$GPHOTOS_BACKUP_OUTCOME\" \"$GPHOTOS_BACKUP_EXIT_CODE\" \
                 \"$GPHOTOS_BACKUP_TRIGGER\" \"$GPHOTOS_BACKUP_MESSAGE\" > '{}'",
                out.display()
            )),
            ..HealthOptions::default()
        };
        let request = CycleRequest {
            trigger: Trigger::Schedule,
            rescan: false,
        };
        report(&health, &reqwest::Client::new(), request, &failed()).await;
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "failed|3|schedule|token revoked"
        );
        // Not on success.
        std::fs::remove_file(&out).unwrap();
        let ok = CycleOutcome::Success {
            summary: "ok".into(),
        };
        report(&health, &reqwest::Client::new(), request, &ok).await;
        assert!(!out.exists());
    }

    #[tokio::test]
    async fn slow_failure_command_is_killed() {
        let health = HealthOptions {
            on_failure_command: Some("exec sleep 30".into()),
            command_timeout: std::time::Duration::from_millis(200),
            ..HealthOptions::default()
        };
        let request = CycleRequest {
            trigger: Trigger::RunNow,
            rescan: false,
        };
        let started = std::time::Instant::now();
        report(&health, &reqwest::Client::new(), request, &failed()).await;
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }
}
