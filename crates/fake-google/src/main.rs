//! `fake-google`: serve a fake Google (OAuth, Photos Library, Picker, media) on loopback until
//! Ctrl-C. Prints BASE (`http://127.0.0.1:PORT`) as the first line of stdout.

use std::process::ExitCode;

use clap::Parser;
use fake_google::{Error, FakeConfig, FakeGoogle, PageQuirks, Quotas};

#[derive(Debug, Parser)]
#[command(
    name = "fake-google",
    about = "A fake Google Photos/OAuth server on 127.0.0.1 for tests and demos"
)]
struct Args {
    /// Port on 127.0.0.1 (0 = any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Number of generated library items.
    #[arg(long, default_value_t = 300)]
    items: usize,
    /// Number of generated albums.
    #[arg(long, default_value_t = 8)]
    albums: usize,
    /// Generator seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Items owned by another OAuth client (visible only through the Picker).
    #[arg(long, default_value_t = 0)]
    foreign_items: usize,
    /// Disable Google's daily/minute quotas (for large benchmarks).
    #[arg(long)]
    no_quotas: bool,
    /// Full list pages only (no short or empty pages carrying a nextPageToken).
    #[arg(long)]
    no_quirks: bool,
    /// OAuth app in "Testing" status: refresh tokens expire after 7 days (fake clock).
    #[arg(long)]
    testing_mode: bool,
    /// Write a Google "installed" client secret file pointing at this server.
    #[arg(long, value_name = "FILE")]
    write_client_secret: Option<std::path::PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fake-google: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Error> {
    let config = FakeConfig {
        port: args.port,
        items: args.items,
        albums: args.albums,
        seed: args.seed,
        foreign_items: args.foreign_items,
        quotas: if args.no_quotas {
            Quotas::UNLIMITED
        } else {
            Quotas::default()
        },
        page_quirks: if args.no_quirks {
            PageQuirks::NONE
        } else {
            PageQuirks::default()
        },
        testing_mode: args.testing_mode,
        ..FakeConfig::default()
    };
    let fake = FakeGoogle::start(config).await?;
    if let Some(path) = &args.write_client_secret {
        std::fs::write(path, fake.client_secret_json()).map_err(|source| Error::Write {
            path: path.display().to_string(),
            source,
        })?;
    }
    println!("{}", fake.base_url());
    eprintln!(
        "fake-google: {} items; library {} picker {} token {}; consent is auto-approved; \
         pick by hand at <pickerUri>/pick?count=N; Ctrl-C to stop",
        fake.library().len(),
        fake.library_api_url(),
        fake.picker_api_url(),
        fake.token_url()
    );
    let _ = tokio::signal::ctrl_c().await;
    fake.shutdown().await;
    Ok(())
}
