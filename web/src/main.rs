//! The searchbar web app: a Yew (CSR) page that loads its release and searches it in WASM.

mod app;
mod helper;
mod keyboard;
mod loader;
mod results;
mod status;
mod timing;

fn main() {
    // The module also starts in the matmul helper's worker (helper.rs), which has no page.
    if web_sys::window().is_none() {
        return;
    }
    yew::Renderer::<app::App>::new().render();
}
