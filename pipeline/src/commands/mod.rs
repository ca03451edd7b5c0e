pub mod encode;
pub mod model;
