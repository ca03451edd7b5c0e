//! Native builds of the encoder module (type checks and tests) have no workers: the same
//! functions as `worker.rs`, doing nothing.

use crate::HelperStats;
use searchbar_encoder::Encoder;

pub fn stats() -> HelperStats {
    HelperStats {
        state: "off: no workers in this build".into(),
        ..HelperStats::default()
    }
}

pub fn wake() {}

pub fn rest() {}

pub fn start(
    _encoder: &Encoder,
    _glue: &str,
    _ready: impl FnOnce(Result<(), String>) + 'static,
) -> Result<(), String> {
    Err("no workers in this build".into())
}

pub fn install(_encoder: &Encoder) {}
