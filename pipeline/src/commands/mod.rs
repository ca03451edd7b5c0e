pub mod bench;
pub mod bench_int4;
pub mod drift;
pub mod encode;
pub mod model;
pub mod pipeline;
pub mod release;
