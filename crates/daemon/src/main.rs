//! `gphotos-backup`: see the library crate's documentation.

use std::process::ExitCode;

use clap::Parser;
use gphotos_backup::{cli, config, exit, logging};

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    logging::init(cli.log_format, cli.verbose);
    match config::load(&cli.config) {
        Ok(config) => {
            tracing::info!(library = %config.library_dir.display(), "configuration is valid");
            ExitCode::from(exit::OK)
        }
        Err(err) => {
            eprintln!("gphotos-backup: {err}");
            ExitCode::from(exit::USAGE)
        }
    }
}
