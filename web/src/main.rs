//! The searchbar web app: a Yew (CSR) page that loads its release and searches it in WASM.

mod app;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod helper;
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
#[path = "helper_stub.rs"]
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
