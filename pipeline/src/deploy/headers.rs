//! What a host sends with each released file: one definition that `searchbar serve`, the
//! object-store targets (as per-object metadata) and the header files for static hosts
//! (`_headers`, an nginx snippet) all follow.

use searchbar_release::layout::{FILES_DIR, POINTER_NAME, RELEASES_DIR, ROOT_PAGE_NAME};

/// Immutable for content-addressed files and release directories; always revalidated for
/// the pointer and the root page, which change at every deploy. `path` is the URL path
/// below the target's root, with or without its leading `/`.
pub fn cache_control(path: &str) -> &'static str {
    // Called for every request `searchbar serve` answers: compares the first segment, with no
    // allocation.
    match path.trim_start_matches('/').split_once('/') {
        Some((dir, _)) if dir == FILES_DIR || dir == RELEASES_DIR => IMMUTABLE,
        _ => "no-cache",
    }
}

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// The media type of a released file, by its name's extension, as `searchbar serve` sends it
/// (both use the same table).
pub fn content_type(path: &str) -> String {
    mime_guess::from_path(path)
        .first_or_octet_stream()
        .essence_str()
        .to_string()
}

/// The two headers that make a page cross-origin isolated. A static host that cannot send
/// them still serves a working page, searching on one core.
pub const ISOLATION_HEADERS: &[(&str, &str)] = &[
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-embedder-policy", "require-corp"),
];

/// File name of the Netlify / Cloudflare Pages header rules a directory target carries.
pub const HEADERS_FILE: &str = "_headers";
/// File name of the nginx snippet a directory target carries.
pub const NGINX_FILE: &str = "searchbar.nginx.conf";

/// Header rules for hosts that read a `_headers` file at the site's root (Netlify,
/// Cloudflare Pages): the cache policy of [`cache_control`], `nosniff` and cross-origin
/// isolation.
pub fn headers_file() -> String {
    let mut out = String::from(
        "# Written by searchbar at every deploy: the headers `searchbar serve` sends.\n",
    );
    let isolation: String = ISOLATION_HEADERS
        .iter()
        .map(|(k, v)| format!("  {}: {v}\n", title_case(k)))
        .collect();
    out += &format!("/*\n  X-Content-Type-Options: nosniff\n{isolation}");
    for path in [
        "/",
        &format!("/{ROOT_PAGE_NAME}"),
        &format!("/{POINTER_NAME}"),
    ] {
        out += &format!("\n{path}\n  Cache-Control: {}\n", cache_control(path));
    }
    for dir in [FILES_DIR, RELEASES_DIR] {
        out += &format!("\n/{dir}/*\n  Cache-Control: {IMMUTABLE}\n");
    }
    out
}

/// An nginx `server` block fragment serving a directory target at `/` with the same headers:
/// only the released entries (no locks, admission records or temporaries), precompressed
/// variants by `Accept-Encoding`, the pages and JSON compressed as they are sent, and the cache
/// policy of [`cache_control`].
pub fn nginx_snippet() -> String {
    let isolation: String = ISOLATION_HEADERS
        .iter()
        .map(|(k, v)| format!("add_header {k} \"{v}\" always;\n    "))
        .collect();
    let common = format!("add_header X-Content-Type-Options nosniff always;\n    {isolation}");
    format!(
        "# Written by searchbar at every deploy. Include it in a `server` block whose `root` is\n\
         # this target's directory, with nginx's mime.types (wasm as application/wasm).\n\
         # gzip_static is nginx's own; for brotli add brotli_static with ngx_brotli.\n\
         # The pages and JSON without variants (root page, release page, manifest, pointer) are\n\
         # compressed as they are sent. Serve it over HTTPS with HTTP/2 (`http2 on;`): a query\n\
         # fetches many small files at once, which HTTP/1.1 sends six at a time.\n\
         gzip on;\ngzip_types application/json;\ngzip_vary on;\n\
         location ~ /\\. {{ return 404; }}\n\
         location = / {{\n    {common}add_header Cache-Control \"no-cache\" always;\n    try_files /{ROOT_PAGE_NAME} =404;\n}}\n\
         location = /{ROOT_PAGE_NAME} {{\n    {common}add_header Cache-Control \"no-cache\" always;\n}}\n\
         location = /{POINTER_NAME} {{\n    {common}add_header Cache-Control \"no-cache\" always;\n}}\n\
         location ~ ^/({FILES_DIR}|{RELEASES_DIR})/ {{\n    {common}add_header Cache-Control \"{IMMUTABLE}\" always;\n    \
         add_header Vary Accept-Encoding always;\n    gzip_static on;\n}}\n\
         location / {{ return 404; }}\n"
    )
}

fn title_case(header: &str) -> String {
    header
        .split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointer_is_revalidated_and_hashed_files_are_immutable() {
        assert_eq!(cache_control("/current.json"), "no-cache");
        assert_eq!(cache_control("/"), "no-cache");
        assert_eq!(cache_control("index.html"), "no-cache");
        assert!(cache_control("/files/encoder-0123.onnx").contains("immutable"));
        assert!(cache_control("releases/r1/index.html").contains("immutable"));
        assert_eq!(content_type("files/app-01.wasm"), "application/wasm");
        assert_eq!(content_type("current.json"), "application/json");
        assert_eq!(content_type("files/x.sbi"), "application/octet-stream");
    }

    #[test]
    fn the_header_files_carry_the_same_policy() {
        let h = headers_file();
        assert!(
            h.contains("/current.json\n  Cache-Control: no-cache"),
            "{h}"
        );
        assert!(
            h.contains(&format!("/files/*\n  Cache-Control: {IMMUTABLE}")),
            "{h}"
        );
        assert!(
            h.contains("Cross-Origin-Embedder-Policy: require-corp"),
            "{h}"
        );
        let n = nginx_snippet();
        assert!(n.contains("location = /current.json"), "{n}");
        assert!(
            n.contains("cross-origin-opener-policy \"same-origin\""),
            "{n}"
        );
        assert!(n.contains(IMMUTABLE), "{n}");
        assert_eq!(n.matches('{').count(), n.matches('}').count(), "{n}");
    }
}
