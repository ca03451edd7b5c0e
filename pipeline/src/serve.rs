//! `searchbar serve`: a target on localhost with CDN-like headers, for the demo and tests.

use anyhow::{Context, Result};
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt;
use std::path::PathBuf;
use tower_http::services::ServeDir;

/// Immutable for content-addressed files and release directories; always revalidated for
/// the pointer and the loader page, which change at every deploy.
fn cache_control(path: &str) -> &'static str {
    if path.starts_with("/files/") || path.starts_with("/releases/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    }
}

async fn headers(isolated: bool, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    // Locks and temporaries of a deploy in progress are never served.
    if path.split('/').any(|seg| seg.starts_with('.')) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let mut res = next.run(req).await;
    if res.status().is_success() || res.status() == StatusCode::NOT_MODIFIED {
        res.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(cache_control(&path)),
        );
    }
    let headers = res.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Cross-origin isolation: the page may then share memory with a worker, which embeds
    // queries on a second core (web/src/helper.rs). Every file here is same-origin.
    for (name, value) in ISOLATION_HEADERS.iter().filter(|_| isolated) {
        headers.insert(
            header::HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    res
}

/// The two headers that make a page cross-origin isolated. A static host that cannot send
/// them still serves a working page, searching on one core.
const ISOLATION_HEADERS: &[(&str, &str)] = &[
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-embedder-policy", "require-corp"),
];

/// `isolated`: send the cross-origin isolation headers.
pub fn router(root: PathBuf, isolated: bool) -> axum::Router {
    let files = ServeDir::new(root)
        .precompressed_br()
        .precompressed_gzip()
        .append_index_html_on_directories(true);
    axum::Router::new()
        .fallback_service(files)
        .layer(axum::middleware::from_fn(move |req, next| {
            headers(isolated, req, next)
        }))
}

/// Serves `root` on `listen` until interrupted; prints the URL once listening.
pub fn serve(root: PathBuf, listen: &str, env: &str, isolated: bool) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("listening on {listen} (is another server running there?)"))?;
        let addr = listener.local_addr()?;
        // A query against external rows makes a burst of small range requests on keep-alive
        // connections: Nagle's algorithm would hold responses for the peer's delayed ACK.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        println!("serving {env} ({}) on http://{addr}/", root.display());
        use std::io::Write;
        std::io::stdout().flush()?;
        axum::serve(listener, router(root, isolated))
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn pointer_is_revalidated_and_hashed_files_are_immutable() {
        assert_eq!(super::cache_control("/current.json"), "no-cache");
        assert_eq!(super::cache_control("/"), "no-cache");
        assert!(super::cache_control("/files/encoder-0123.onnx").contains("immutable"));
        assert!(super::cache_control("/releases/r1/index.html").contains("immutable"));
    }
}
