//! Log output: native journald records under systemd, readable lines on a terminal,
//! JSON Lines for log shippers. Token values never reach any of them (api-client redacts).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::cli::LogFormat;

/// True when stderr is the journal stream systemd set up for us (not merely inherited
/// by a child shell), as `sd_journal_stream_fd(3)` recommends checking.
fn stderr_is_journal() -> bool {
    use std::os::unix::fs::MetadataExt;
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = stream.to_str().and_then(|s| s.split_once(':')) else {
        return false;
    };
    match std::fs::metadata("/proc/self/fd/2") {
        Ok(meta) => {
            dev.parse::<u64>().ok() == Some(meta.dev())
                && ino.parse::<u64>().ok() == Some(meta.ino())
        }
        Err(_) => false,
    }
}

pub fn init(format: LogFormat, verbose: u8) {
    let default_level = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    // Our crates at the chosen level; noisy dependencies stay at warn unless RUST_LOG says otherwise.
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| {
        EnvFilter::new(format!(
            "warn,gphotos_backup={default_level},sync_engine={default_level},api_client={default_level},takeout={default_level}"
        ))
    });
    let format = match format {
        LogFormat::Auto if stderr_is_journal() => LogFormat::Journald,
        LogFormat::Auto => LogFormat::Human,
        other => other,
    };
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Journald => match tracing_journald::layer() {
            Ok(layer) => registry
                .with(layer.with_syslog_identifier("gphotos-backup".into()))
                .init(),
            Err(err) => {
                registry
                    .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
                    .init();
                tracing::warn!("journald is not reachable ({err}); logging to stderr");
            }
        },
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            )
            .init(),
        LogFormat::Human | LogFormat::Auto => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::stderr().is_terminal())
                    .with_target(false),
            )
            .init(),
    }
}
