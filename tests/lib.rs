//! End-to-end tests of the whole product live in this crate's `tests/` folder: they drive the
//! real `searchbar` binary, a real browser and real files (added with the pipeline and web issues).
