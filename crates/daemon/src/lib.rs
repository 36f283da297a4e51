//! The `gphotos-backup` daemon: configuration, command line, scheduler, signals, systemd
//! integration and logging around `sync-engine`. The binary (`main.rs`) only calls [`commands::run`].
//!
//! Modules:
//! - [`config`]: the TOML file, validated with file/line/key in every message;
//! - [`cli`]: the command line;
//! - [`service`]: the long-running daemon (schedule, control socket, signals, systemd notify, health pings);
//! - [`logging`]: journald, human or JSON output;
//! - [`exit`]: the documented exit codes;
//! - [`app`]: Google clients and the engine built from the config, and one sync cycle;
//! - [`commands`]: what each command line does; [`demo`]: the no-account demo;
//!   [`pick`]: Picker sessions; [`takeout_cmd`]: Takeout imports; [`export_cmd`]: export targets;
//! - [`progress`]: progress bar, log lines and systemd status during a sync.

/// `println!` for every command's output that never panics: output piped into `head` or a closed terminal must not
/// turn into a crash report.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

pub mod app;
pub mod cli;
pub mod commands;
pub mod config;
pub mod demo;
pub mod exit;
pub mod export_cmd;
pub mod logging;
pub mod pick;
pub mod progress;
pub mod service;
pub mod takeout_cmd;
