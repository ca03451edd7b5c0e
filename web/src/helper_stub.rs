//! Native builds of the web crate (type checks and tests) have no workers: the same functions as
//! `helper.rs`, doing nothing.

use searchbar_encoder::Encoder;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    pub state: String,
    pub panels: u64,
    pub page_panels: u64,
    pub worker_memory: f64,
}

pub fn stats() -> Stats {
    Stats {
        state: "off: no workers in this build".into(),
        ..Stats::default()
    }
}

pub fn wake() {}

pub fn start(_encoder: &Encoder, _ready: impl FnOnce(Result<(), String>) + 'static) {}

pub fn install(_encoder: &Encoder) {}
