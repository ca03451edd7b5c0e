//! The searchbar web app: a Yew (CSR) page that loads its release and searches it in WASM.

mod app;
mod keyboard;
mod loader;
mod results;
mod status;
mod timing;

fn main() {
    yew::Renderer::<app::App>::new().render();
}
