//! The `gphotos-backup` daemon: configuration, command line, scheduler, signals, systemd
//! integration and logging around `sync-engine`. The binary (`main.rs`) only calls [`run`].
//!
//! Modules:
//! - [`config`]: the TOML file, validated with file/line/key in every message;
//! - [`cli`]: the command line;
//! - [`service`]: the long-running daemon (schedule, control socket, signals, systemd notify, health pings);
//! - [`logging`]: journald, human or JSON output;
//! - [`exit`]: the documented exit codes.

pub mod cli;
pub mod config;
pub mod exit;
pub mod logging;
pub mod service;
