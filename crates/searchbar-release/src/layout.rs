//! Where everything of a release sits on a target: the one definition the writer (export,
//! deploy), the server (`searchbar serve`), the page (relative URLs) and trunk's `public_url`
//! (checked by a test below) follow.
//!
//! ```text
//! <target>/current.json               pointer to the live release (never cached)
//! <target>/index.html                 stable loader: reads the pointer, opens the release
//! <target>/files/<name>-<hash>.<ext>  content-addressed artifacts shared by releases
//! <target>/releases/<id>/             one release: manifest.json, the web app's index.html
//! ```

use std::path::{Path, PathBuf};

/// File name of the live-release pointer at a target's root.
pub const POINTER_NAME: &str = "current.json";
/// File name of the stable loader page at a target's root.
pub const LOADER_NAME: &str = "index.html";
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
pub const PUBLIC_ENTRIES: [&str; 4] = [LOADER_NAME, POINTER_NAME, FILES_DIR, RELEASES_DIR];

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
}
