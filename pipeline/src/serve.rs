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

/// The top-level entries of a target that are released: the root page, the pointer, the
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
/// root page, the release page, its manifest, the pointer), which a release writes once and which
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

/// A certificate chain and its private key (PEM files) to serve HTTPS with.
#[derive(Debug, Clone)]
pub struct Tls {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The server side of TLS from `tls`'s files, offering HTTP/2 first: a browser speaks HTTP/2
/// only over TLS, and HTTP/2 sends a query's many small files (fragments, shards, their table
/// pages) over one connection at once, where HTTP/1.1 allows six at a time. A CDN does the
/// same; without TLS this server is what a plain HTTP/1.1 host would be.
fn tls_config(tls: &Tls) -> Result<std::sync::Arc<rustls::ServerConfig>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let cert = tls.cert.display();
    let certs = CertificateDer::pem_file_iter(&tls.cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow::anyhow!("{cert}: not a PEM certificate chain ({e})"))?;
    if certs.is_empty() {
        anyhow::bail!("{cert}: holds no certificate (PEM, \"BEGIN CERTIFICATE\")");
    }
    let key = PrivateKeyDer::from_pem_file(&tls.key)
        .map_err(|e| anyhow::anyhow!("{}: not a PEM private key ({e})", tls.key.display()))?;
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .with_context(|| format!("{cert} with the key {}", tls.key.display()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(std::sync::Arc::new(config))
}

/// Answers HTTPS connections on `listener` with `app` (HTTP/2 or HTTP/1.1, as the client's
/// TLS handshake chose) until `stop` completes. Each connection runs on its own task: a slow
/// or failed handshake holds up no other.
async fn serve_tls(
    listener: tokio::net::TcpListener,
    config: std::sync::Arc<rustls::ServerConfig>,
    app: axum::Router,
    stop: impl std::future::Future<Output = ()>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::pin!(stop);
    loop {
        let tcp = tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                // Out of descriptors, say: a later accept may succeed, once connections close.
                // Not at once: until then every accept fails, and the loop would spin.
                Err(_) => {
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let service = hyper_util::service::TowerToHyperService::new(app);
            let _ =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
        });
    }
}

/// Serves `root` on `listen` until interrupted, over HTTPS where `tls` is given; prints the
/// URL once listening.
pub fn serve(
    root: PathBuf,
    listen: &str,
    env: &str,
    isolated: bool,
    tls: Option<&Tls>,
) -> Result<()> {
    // Read before listening: a bad file is an error at once, not at the first connection.
    let tls = tls.map(tls_config).transpose()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("listening on {listen} (is another server running there?)"))?;
        let addr = listener.local_addr()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        println!("serving {env} ({}) on {scheme}://{addr}/", root.display());
        use std::io::Write;
        std::io::stdout().flush()?;
        let app = router(root, isolated);
        let stop = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        if let Some(config) = tls {
            serve_tls(listener, config, app, stop).await;
            return Ok(());
        }
        // A query against external rows makes a burst of small range requests on keep-alive
        // connections: Nagle's algorithm would hold responses for the peer's delayed ACK.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, app)
            .with_graceful_shutdown(stop)
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
