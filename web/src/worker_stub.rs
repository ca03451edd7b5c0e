//! Native builds of the web crate (type checks and tests) have no workers: the same functions as
//! `worker.rs`, doing nothing.

use crate::timing::HelperStats;
use searchbar_encoder::Encoder;

pub fn stats() -> HelperStats {
    HelperStats {
        state: "off: no workers in this build".into(),
        ..HelperStats::default()
    }
}

pub fn wake() {}

pub fn rest() {}

pub fn start(_encoder: &Encoder, _ready: impl FnOnce(Result<(), String>) + 'static) {}

pub fn install(_encoder: &Encoder) {}
