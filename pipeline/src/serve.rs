//! `searchbar serve`: a target on localhost with CDN-like headers, for the demo and tests.

use crate::deploy::encoding::ENCODINGS;
use crate::deploy::headers::{cache_control, ISOLATION_HEADERS};
use anyhow::{Context, Result};
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tower_http::compression::CompressionLayer;
use tower_http::services::ServeDir;

/// The top-level entries of a target that are released: the loader page, the pointer, the
/// artifacts and the releases. Locks, admission records and anything else placed there by hand
/// are not for the web.
const PUBLIC: [&str; 5] = {
    let [a, b, c, d] = searchbar_release::layout::PUBLIC_ENTRIES;
    ["", a, b, c, d]
};

/// Whether `raw` (a request path, still percent-encoded) names something released under
/// `root`. Checked on the decoded path, as the file service will read it: no segment may be
/// hidden (dotfiles: locks, temporaries, half-copied releases under `.tmp-*`, `..`), and no
/// path component, nor a precompressed variant beside the file, may be a symbolic link.
fn released(root: &Path, raw: &str) -> bool {
    let Ok(path) = percent_encoding::percent_decode_str(raw).decode_utf8() else {
        return false;
    };
    if path.contains(['\\', '\0']) {
        return false;
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if !PUBLIC.contains(&segments[0]) || segments.iter().any(|s| s.starts_with('.')) {
        return false;
    }
    let mut at = root.to_path_buf();
    for seg in segments.iter().filter(|s| !s.is_empty()) {
        at.push(seg);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => return false,
            Ok(_) => {}
            // Missing: the file service answers 404 itself.
            Err(_) => return true,
        }
    }
    ENCODINGS.iter().all(|e| {
        !std::fs::symlink_metadata(e.variant_of(&at)).is_ok_and(|m| m.file_type().is_symlink())
    })
}

async fn headers(root: Arc<PathBuf>, isolated: bool, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    if !released(&root, &path) {
        return StatusCode::NOT_FOUND.into_response();
    }
    // A range is of the bytes the manifest describes (the re-ranking rows): the file service
    // would otherwise cut it from a precompressed variant.
    if req.headers().contains_key(header::RANGE) {
        req.headers_mut().remove(header::ACCEPT_ENCODING);
    }
    let mut res = next.run(req).await;
    // The same URL answers with different bytes by Accept-Encoding: a shared cache must key
    // on it (tower-http's ServeDir does not say so itself).
    res.headers_mut()
        .insert(header::VARY, HeaderValue::from_static("accept-encoding"));
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
    // queries on a second core (web/encoder/src/worker.rs). Every file here is same-origin.
    for (name, value) in ISOLATION_HEADERS.iter().filter(|_| isolated) {
        headers.insert(
            header::HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    res
}

/// Whether a response is compressed as it is sent: the pages and the JSON beside them (the
/// loader, the release page, its manifest, the pointer), which a release writes once and which
/// are small; as a CDN does for text. Content-addressed files come with precompressed variants
/// (sent as they are, `Content-Encoding` set) or are not worth compressing.
fn compress_on_the_fly(
    _: StatusCode,
    _: axum::http::Version,
    headers: &axum::http::HeaderMap,
    _: &axum::http::Extensions,
) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/html") || t.starts_with("application/json"))
}

/// `isolated`: send the cross-origin isolation headers.
pub fn router(root: PathBuf, isolated: bool) -> axum::Router {
    let shared = Arc::new(root.clone());
    let files = ServeDir::new(root)
        .precompressed_br()
        .precompressed_gzip()
        .append_index_html_on_directories(true);
    axum::Router::new()
        .fallback_service(files)
        .layer(CompressionLayer::new().compress_when(compress_on_the_fly))
        .layer(axum::middleware::from_fn(move |req, next| {
            headers(shared.clone(), isolated, req, next)
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
    use super::released;

    #[test]
    fn only_released_paths_pass_however_they_are_spelled() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("files")).unwrap();
        std::fs::create_dir_all(root.join("releases/r1")).unwrap();
        std::fs::create_dir_all(root.join("releases/.tmp-1-x")).unwrap();
        std::fs::write(root.join("files/a-0123.json"), b"{}").unwrap();
        std::fs::write(root.join(".p"), b"secret").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("files/z.txt")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("releases/r2")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("files/a-0123.json.br")).unwrap();
        for ok in [
            "/",
            "/index.html",
            "/current.json",
            "/releases/r1/manifest.json",
        ] {
            assert!(released(root, ok), "{ok}");
        }
        for bad in [
            "/.p",
            "/%2ep",
            "/%2Ep",
            "/releases/%2Etmp-1-x/m",
            "/releases/.tmp-1-x/m",
            "/files/%2e%2e/.p",
            "/files%2f..%2f.p",
            "/files/z.txt",
            "/releases/r2/passwd",
            "/files/a-0123.json",
            "/.deploy.lock",
            "/admissions/r1.json",
            "/stray.txt",
            "/files/%ff",
            "/files/a%00b",
        ] {
            assert!(!released(root, bad), "{bad}");
        }
    }
}
