//! `gphotos-backup`: see the library crate's documentation.

use std::process::ExitCode;

use clap::Parser;
use gphotos_backup::{cli, commands, exit, logging};

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    logging::init(cli.log_format, cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("gphotos-backup: cannot start the async runtime: {err}");
            return ExitCode::from(exit::FAILURE);
        }
    };
    let code = runtime.block_on(commands::run(cli));
    // Do not wait for stray blocking tasks (e.g. a stdin reader in `auth`).
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    ExitCode::from(code)
}
