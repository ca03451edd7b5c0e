//! The end-to-end tests: the real `searchbar` binary, real files, a real server and Chromium.
//! One test binary with a module per area, so the workspace links it once rather than once an
//! area. Run one area with `cargo test --workspace --test e2e -- deploy::`.
//!
//! `tests/browser.rs` stays a binary of its own: it bounds how long the page holds the main
//! thread while typing, which a pipeline test running beside it on a 2-core machine would
//! make meaningless.

mod browser;
mod browser_lexical;
mod browser_rows;
mod daily_data;
mod deploy;
mod hybrid;
mod jenkinsfile;
mod pipeline;
mod report;
mod s3;
