//! Bad config input gets a clear, located error, a non-zero exit, and touches nothing.

use system_tests::{describe, files_under, workspace};

const USAGE_EXIT: i32 = 2;

#[test]
fn missing_config_file_says_where_it_looked() {
    let ws = workspace!();
    let out = ws.run(&["status"]);
    assert_eq!(out.status.code(), Some(USAGE_EXIT), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("config.toml"), "{stderr}");
    assert!(stderr.contains("cannot read the config file"), "{stderr}");
}

#[test]
fn malformed_config_names_file_line_and_key_and_touches_nothing() {
    let ws = workspace!();
    ws.write_config(&format!(
        "library_dir = {:?}\nstate_dir = {:?}\n\n[sync]\nmax_concurrent_downloads = \"lots\"\n",
        ws.library_dir(),
        ws.state_dir()
    ));
    let out = ws.run(&["--run-now"]);
    assert_eq!(out.status.code(), Some(USAGE_EXIT), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let location = format!("{}:5:", ws.config_path().display());
    assert!(stderr.contains(&location), "{stderr}");
    assert!(stderr.contains("sync.max_concurrent_downloads"), "{stderr}");
    // Nothing was created: no library, no state.
    assert!(!ws.library_dir().exists());
    assert!(!ws.state_dir().exists());
    assert_eq!(
        files_under(ws.path()),
        vec![std::path::PathBuf::from("config.toml")]
    );
}

#[test]
fn every_semantic_problem_is_listed_at_once() {
    let ws = workspace!();
    ws.write_config(
        "library_dir = \"/tmp/x\"\n[schedule]\ncron = \"every day\"\ntimezone = \"Europe/Atlantis\"\n",
    );
    let out = ws.run(&["--run-now"]);
    assert_eq!(out.status.code(), Some(USAGE_EXIT), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("2 problems"), "{stderr}");
    assert!(
        stderr.contains(":3:") && stderr.contains("schedule.cron"),
        "{stderr}"
    );
    assert!(
        stderr.contains(":4:") && stderr.contains("schedule.timezone"),
        "{stderr}"
    );
}
