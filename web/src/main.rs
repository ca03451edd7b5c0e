//! The searchbar web app: a Yew (CSR) page that loads its release and searches it in WASM.

mod app;
mod cache;
mod keyboard;
mod loader;
mod results;
mod status;
mod timing;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod worker;
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
#[path = "worker_stub.rs"]
mod worker;

#[cfg(target_arch = "wasm32")]
extern "C" {
    /// The static constructors (`inventory` registrations in tract), made by the linker.
    fn __wasm_call_ctors();
}

fn main() {
    // Run once, here. A module none of whose exports calls this counts as a "command" to the
    // linker, which then makes every export (each call from JS into wasm: event closures, the
    // glue's externref slots, the helper worker's per-chunk calls) run all the constructors
    // first, a visible share of each search.
    #[cfg(target_arch = "wasm32")]
    // SAFETY: the constructors only register statics (`inventory` skips a node registered
    // before), and nothing here runs before them.
    #[allow(unsafe_code)]
    unsafe {
        __wasm_call_ctors()
    };
    // The module also starts in the matmul helper's worker (worker.rs), which has no page.
    if web_sys::window().is_none() {
        return;
    }
    // The page's shell (index.html) holds the box and `#app`, where the rest goes: the
    // placeholder status there is replaced in the same task, before the next paint.
    let root = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.get_element_by_id("app"));
    match root {
        Some(root) => {
            root.set_inner_html("");
            yew::Renderer::<app::App>::with_root(root).render();
        }
        None => {
            yew::Renderer::<app::App>::new().render();
        }
    }
}
