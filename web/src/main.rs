//! The searchbar web app: a page that loads its release and searches it in WASM.
//! This is the page's first module (the box, lexical and vector search, fusion, the rows); the
//! query encoder is a second one (web/encoder), loaded once words are searchable, and the
//! release language's stemmer a third (web/stem), loaded beside this one.

mod app;
mod cache;
mod encoder;
mod keyboard;
mod link;
mod loader;
mod results;
mod status;
mod stem;
mod timing;

fn main() {
    // The page's shell (index.html) holds the box and `#app`, where the rest goes: the
    // placeholder status there is replaced in the same task, before the next paint.
    let document = web_sys::window().and_then(|w| w.document());
    let root = document.as_ref().and_then(|d| {
        d.get_element_by_id("app").or_else(|| {
            let root = d.create_element("div").ok()?;
            d.body()?.append_child(&root).ok()?;
            Some(root)
        })
    });
    if let Some(root) = root {
        link::Link::mount(root);
    }
}
