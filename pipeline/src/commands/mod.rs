pub mod bench;
pub mod drift;
pub mod encode;
pub mod model;
pub mod pipeline;
pub mod release;
