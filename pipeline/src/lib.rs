//! The searchbar pipeline as a library: the stages (ingest, embed, train, evaluate with the
//! gate, export) and their graph, the deploy targets, the local server, and the commands over
//! them. The `searchbar` binary is [`cli::main`]; `searchbar-bench-index`, the tool that
//! compares index configurations, is [`commands::bench::main`].

pub mod cli;
mod clock;
pub mod commands;
mod config;
mod deploy;
mod fault;
pub mod model;
mod report;
mod serve;
mod stages;

pub use cli::ModelArgs;

/// Hash of the sources this binary was built from (see build.rs).
pub const SOURCE_HASH: &str = env!("SEARCHBAR_SOURCE_HASH");
