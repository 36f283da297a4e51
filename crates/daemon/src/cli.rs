//! Command-line interface. The binary is a daemon by default; subcommands do one job and exit.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Keeps a complete, verified copy of a Google Photos library on a local disk or NAS.
///
/// Without a subcommand it runs as a daemon on the configured schedule; `--run-now`
/// runs one cycle and exits (or asks the running daemon to run one).
#[derive(Debug, Parser)]
#[command(name = "gphotos-backup", version, about, long_about = None)]
pub struct Cli {
    /// The TOML config file.
    #[arg(
        short,
        long,
        global = true,
        env = "GPHOTOS_BACKUP_CONFIG",
        default_value = "/etc/gphotos-backup/config.toml"
    )]
    pub config: PathBuf,

    /// Run one sync cycle now and exit with its outcome.
    #[arg(long)]
    pub run_now: bool,

    /// With --run-now: list everything instead of only what is new (catches deletions
    /// and items uploaded with old capture dates).
    #[arg(long, requires = "run_now")]
    pub rescan: bool,

    /// Log format: `auto` picks journald under systemd, human lines otherwise.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Auto)]
    pub log_format: LogFormat,

    /// More log detail (-v: debug, -vv: trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Auto,
    Human,
    Json,
    Journald,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Authorize access to Google Photos once; stores a refresh token (mode 0600).
    Auth {
        /// Port for the loopback listener (use with `ssh -L PORT:127.0.0.1:PORT server`).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Do not listen; paste the address-bar URL the browser was redirected to.
        #[arg(long)]
        paste: bool,
    },
    /// Try everything on a built-in fake Google library; no Google account needed.
    Demo {
        /// Where the demo library is written.
        #[arg(long, default_value = "./demo-library")]
        dir: PathBuf,
        /// How many items the fake library holds.
        #[arg(long, default_value_t = 300)]
        items: usize,
    },
    /// Print the indexed items.
    List {
        /// JSON Lines, one object per item.
        #[arg(long)]
        json: bool,
    },
    /// Compare the index with the files on disk; non-zero exit on any problem.
    Verify {
        /// Re-hash every file with blake3 (reads the whole library).
        #[arg(long)]
        deep: bool,
    },
    /// Show counts, recent runs and what is pending, failed or paused.
    Status,
    /// Rebuild the index from the files under `photos/` after it was lost or corrupted;
    /// the next sync adopts the files it finds instead of downloading them again.
    Reindex,
    /// Place the library into the `[[export]]` targets of the config (as after every sync).
    Export {
        /// Only the target with this name.
        #[arg(long)]
        name: Option<String>,
    },
    /// Back up photos you pick by hand in Google Photos (Picker API): prints a link and a QR
    /// code, waits until you press Done, then saves what you picked into the library.
    Pick {
        /// At most this many items in the session (Google's limit and default: 2000).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=2000))]
        max_items: Option<u32>,
        /// Do not print the link as a QR code.
        #[arg(long)]
        no_qr: bool,
        /// Port for the loopback listener, if the Picker permission must be granted first.
        #[arg(long, default_value_t = 0)]
        port: u16,
    },
    /// Import Google Takeout exports (zip/tgz parts or extracted folders) into the library.
    ImportTakeout {
        /// Parts, extracted folders, or folders holding them.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
}
