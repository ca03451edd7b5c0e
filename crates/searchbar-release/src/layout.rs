//! Where everything of a release sits on a target: the one definition the writer (export,
//! deploy), the server (`searchbar serve`), the page (relative URLs) and trunk's `public_url`
//! (checked by a test below) follow.
//!
//! ```text
//! <target>/current.json               pointer to the live release (never cached)
//! <target>/index.html                 the live release's page, its URLs based in its directory
//! <target>/files/<name>-<hash>.<ext>  content-addressed artifacts shared by releases
//! <target>/releases/<id>/             one release: manifest.json, the web app's index.html
//! ```

use std::path::{Path, PathBuf};

/// File name of the live-release pointer at a target's root.
pub const POINTER_NAME: &str = "current.json";
/// File name of the root page: the live release's page, written after each pointer write
/// ([`root_page`]).
pub const ROOT_PAGE_NAME: &str = "index.html";
/// Directory of the content-addressed artifacts at a target's root.
pub const FILES_DIR: &str = "files";
/// Directory of the release directories at a target's root.
pub const RELEASES_DIR: &str = "releases";
/// File name of a release's manifest inside `releases/<id>/`.
pub const MANIFEST_NAME: &str = "manifest.json";
/// File name of a release's own page inside `releases/<id>/`.
pub const PAGE_NAME: &str = "index.html";
/// The target root as seen from a release directory (and its page).
pub const TARGET_ROOT: &str = "../../";
/// Where artifacts live, relative to a release directory: `TARGET_ROOT` + `FILES_DIR` + `/`.
pub const FILES_PREFIX: &str = "../../files/";
/// The top-level entries of a target that are for the web; locks, admission records and
/// temporaries beside them are not.
pub const PUBLIC_ENTRIES: [&str; 4] = [ROOT_PAGE_NAME, POINTER_NAME, FILES_DIR, RELEASES_DIR];

/// `<root>/files`.
pub fn files_dir(root: &Path) -> PathBuf {
    root.join(FILES_DIR)
}

/// `<root>/releases`.
pub fn releases_dir(root: &Path) -> PathBuf {
    root.join(RELEASES_DIR)
}

/// `<root>/releases/<id>`.
pub fn release_dir(root: &Path, id: &str) -> PathBuf {
    releases_dir(root).join(id)
}

/// The name in `files/` of the artifact a manifest names by `rel` (`../../files/<name>`), or
/// `None` where `rel` is anything else: a deeper path, a hidden name, another directory.
pub fn artifact_name(rel: &str) -> Option<&str> {
    rel.strip_prefix(FILES_PREFIX)
        .filter(|n| !n.is_empty() && !n.contains(['/', '\\']) && !n.starts_with('.'))
}

/// The page at a target's root for release `id`: that release's own page (`page`, the bytes of
/// `releases/<id>/index.html`) with a `<base>` naming the release's directory, so every URL in
/// it (preloads, modules, the app's fetches, the Cache API's keys) resolves as on the release's
/// own page. A first visit opens the release at once, where a page that read the pointer first
/// and then opened the release's page spent two round trips. The `<base>` goes first in the
/// head, before any element with a URL; a page without a `<head>` tag gets it after its
/// doctype, where the parser opens the head itself.
pub fn root_page(page: &[u8], id: &str) -> Vec<u8> {
    // Release ids are the writer's `<stamp>-<hash>`; anything else is percent-encoded, which
    // also keeps the attribute's quotes and the tag closed.
    let mut href = format!("{RELEASES_DIR}/");
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            href.push(b as char);
        } else {
            href.push_str(&format!("%{b:02X}"));
        }
    }
    let base = format!("<base href=\"{href}/\">");
    let lower = page.to_ascii_lowercase();
    // Just past the first tag named `name` (`<head>` or `<head ...>`, not `<header>`).
    let after = |name: &[u8]| {
        let mut from = 0;
        while let Some(i) = lower[from..].windows(name.len()).position(|w| w == name) {
            let at = from + i + name.len();
            match lower.get(at) {
                Some(b'>' | b' ' | b'\t' | b'\n' | b'\r') => {
                    return lower[at..]
                        .iter()
                        .position(|&c| c == b'>')
                        .map(|e| at + e + 1);
                }
                _ => from = at,
            }
        }
        None
    };
    let at = after(b"<head").or_else(|| after(b"<!doctype")).unwrap_or(0);
    let mut out = Vec::with_capacity(page.len() + base.len());
    out.extend_from_slice(&page[..at]);
    out.extend_from_slice(base.as_bytes());
    out.extend_from_slice(&page[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefixes_are_made_of_the_names() {
        assert_eq!(FILES_PREFIX, format!("{TARGET_ROOT}{FILES_DIR}/"));
        assert_eq!(
            release_dir(Path::new("t"), "r")
                .join(FILES_PREFIX)
                .join("a"),
            Path::new("t/releases/r/../../files/a")
        );
    }

    #[test]
    fn only_plain_names_under_files_are_artifacts() {
        assert_eq!(artifact_name("../../files/a-01.json"), Some("a-01.json"));
        for bad in [
            "files/a",
            "../../files/",
            "../../files/.lock",
            "../../files/a/b",
            "../../x",
        ] {
            assert_eq!(artifact_name(bad), None, "{bad}");
        }
    }

    /// trunk cannot read a Rust constant: its `public_url`, where the page's own bundle is
    /// fetched from, is held to the layout here.
    #[test]
    fn trunk_serves_the_bundle_from_the_files_directory() {
        let trunk =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Trunk.toml"))
                .unwrap();
        let line = trunk
            .lines()
            .find(|l| l.trim_start().starts_with("public_url"))
            .expect("Trunk.toml sets public_url");
        assert_eq!(line.trim(), format!("public_url = \"{FILES_PREFIX}\""));
    }

    #[test]
    fn the_root_page_is_the_release_page_based_in_its_directory() {
        let page = b"<!doctype html>\n<html lang=\"en\">\n  <HEAD>\n<link rel=\"preload\" \
                     href=\"manifest.json\"></head><body></body></html>";
        let root = String::from_utf8(root_page(page, "20261206-ab12cd34")).unwrap();
        assert_eq!(
            root,
            "<!doctype html>\n<html lang=\"en\">\n  <HEAD><base \
             href=\"releases/20261206-ab12cd34/\">\n<link rel=\"preload\" \
             href=\"manifest.json\"></head><body></body></html>"
        );
        // The page written when a release has no web bundle has no head tag.
        let bare = root_page(b"<!doctype html><meta charset=utf-8><p>x</p>", "r");
        assert_eq!(
            bare,
            b"<!doctype html><base href=\"releases/r/\"><meta charset=utf-8><p>x</p>"
        );
        // An id no writer makes cannot leave the attribute or the directory.
        let odd = root_page(b"<head>", "a\"b/../c d");
        assert_eq!(odd, b"<head><base href=\"releases/a%22b%2F..%2Fc%20d/\">");
        assert_eq!(root_page(b"", "r"), b"<base href=\"releases/r/\">");
        let header = root_page(b"<!DOCTYPE html><header>h</header><head >", "r");
        assert_eq!(
            header,
            b"<!DOCTYPE html><header>h</header><head ><base href=\"releases/r/\">"
        );
    }
}
