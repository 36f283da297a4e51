//! Exit codes, documented in README.md ("Exit codes"). Scripts and systemd rely on them.

/// Everything asked for was done.
pub const OK: u8 = 0;
/// The run failed for a reason not listed below (see the log).
pub const FAILURE: u8 = 1;
/// Bad command line or config file: nothing was touched.
pub const USAGE: u8 = 2;
/// Google needs the user: authorize again (`gphotos-backup auth`), or a scope is missing.
pub const AUTH: u8 = 3;
/// The run finished but some items failed; they are retried next run.
pub const PARTIAL: u8 = 4;
/// Google's daily quota is used up; the run paused and resumes next run.
pub const PAUSED: u8 = 5;
/// Another run holds the library (a daemon or a second `--run-now`).
pub const LOCKED: u8 = 6;
/// `verify` found problems.
pub const VERIFY_FAILED: u8 = 7;
