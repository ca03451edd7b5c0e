//! The CLI's contract on bad input (this file also makes `cargo test` build the `searchbar`
//! binary that the end-to-end tests in tests/ drive).

use std::process::Command;

fn searchbar(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_searchbar"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn unknown_config_keys_and_bad_values_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("searchbar.toml"), "[index]\nnlsit = 64\n").unwrap();
    let out = searchbar(dir.path(), &["status"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("searchbar.toml") && err.contains("nlsit"),
        "{err}"
    );

    std::fs::write(dir.path().join("searchbar.toml"), "[index]\nnbits = 12\n").unwrap();
    let err = String::from_utf8_lossy(&searchbar(dir.path(), &["status"]).stderr).to_string();
    assert!(err.contains("index.nbits = 12"), "{err}");

    std::fs::write(
        dir.path().join("searchbar.toml"),
        "[gate]\nmin_recall_at_10 = 1.5\n",
    )
    .unwrap();
    let err = String::from_utf8_lossy(&searchbar(dir.path(), &["status"]).stderr).to_string();
    assert!(err.contains("gate.min_recall_at_10"), "{err}");
}

#[test]
fn a_missing_config_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let out = searchbar(dir.path(), &["run"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("searchbar.toml") && err.contains("--config"),
        "{err}"
    );
}

#[test]
fn usage_errors_exit_with_2_and_help_lists_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        searchbar(dir.path(), &["deploy", "--bogus"]).status.code(),
        Some(2)
    );
    let help = String::from_utf8_lossy(&searchbar(dir.path(), &["--help"]).stdout).to_string();
    assert!(help.contains("3 gate refused"), "{help}");
}
