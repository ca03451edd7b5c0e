//! The writing side of the release format: content-addressed artifact names and their manifest
//! entries, document shards with their snippets, the page's entry and the release id. Where the
//! bytes are stored is the caller's (a directory target, later an object store): the writer
//! hands each artifact to a sink with its name under [`FILES_DIR`](crate::FILES_DIR).

use crate::docs::{shard_docs, DocRecord};
use crate::layout::{FILES_PREFIX, PAGE_NAME};
use crate::manifest::{content_name, sha256_hex, FileRef, Manifest};
use crate::table::{numbered, page_entries, write_table, PartList, LIST_UP_TO};

/// Names artifacts and records them for the manifest.
pub struct ReleaseWriter<'a> {
    /// Stores one artifact: its file name under `files/`, and its bytes.
    sink: &'a mut dyn FnMut(&str, &[u8]) -> std::io::Result<()>,
}

impl std::fmt::Debug for ReleaseWriter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReleaseWriter").finish_non_exhaustive()
    }
}

impl<'a> ReleaseWriter<'a> {
    pub fn new(sink: &'a mut dyn FnMut(&str, &[u8]) -> std::io::Result<()>) -> Self {
        Self { sink }
    }

    /// Stores `bytes` as `name`, content-addressed (`encoder-<16 hex>.onnx`) when `hashed`
    /// (files whose names already carry their hash, like trunk's, keep them), and returns the
    /// manifest entry.
    pub fn put(&mut self, name: &str, bytes: &[u8], hashed: bool) -> std::io::Result<FileRef> {
        let sha = sha256_hex(bytes);
        let file = if hashed {
            content_name(name, &sha)
        } else {
            name.to_string()
        };
        (self.sink)(&file, bytes)?;
        Ok(FileRef {
            path: format!("{FILES_PREFIX}{file}"),
            bytes: bytes.len() as u64,
            sha256: sha,
        })
    }

    /// Stores the document records as shards of `per_shard` (`docs-<i>-<hash>.json`), listed
    /// or in a part table as [`ReleaseWriter::put_parts`] says.
    pub fn put_docs(
        &mut self,
        records: &[DocRecord],
        per_shard: usize,
        per_page: Option<usize>,
    ) -> std::io::Result<PartList> {
        let shards = shard_docs(records, per_shard);
        self.put_parts("docs.json", shards.iter().map(Vec::as_slice), per_page)
    }

    /// Stores numbered parts named after `name` (`lexical.bin`: `lexical-<i>-<hash>.bin`), and
    /// names them in the manifest or in a part table: with `per_page`, listed where there are
    /// at most that many, else in pages of that many; without, listed up to [`LIST_UP_TO`],
    /// else in pages of [`page_entries`].
    pub fn put_parts<'p>(
        &mut self,
        name: &str,
        parts: impl Iterator<Item = &'p [u8]>,
        per_page: Option<usize>,
    ) -> std::io::Result<PartList> {
        let parts: Vec<&[u8]> = parts.collect();
        let (list_up_to, per_page) = match per_page {
            Some(n) => (n.max(1), n.max(1)),
            None => (LIST_UP_TO, page_entries(parts.len())),
        };
        if parts.len() > list_up_to {
            return write_table(name, &parts, per_page, self.sink).map(PartList::Paged);
        }
        let (stem, ext) = name.split_once('.').unwrap_or((name, ""));
        parts
            .iter()
            .enumerate()
            .map(|(i, part)| self.put(&numbered(stem, &i.to_string(), ext), part, true))
            .collect::<std::io::Result<Vec<_>>>()
            .map(PartList::Listed)
    }
}

/// The manifest entry of a release's page (stored beside the manifest, not under `files/`).
pub fn page_ref(page: &[u8]) -> FileRef {
    FileRef {
        path: PAGE_NAME.into(),
        bytes: page.len() as u64,
        sha256: sha256_hex(page),
    }
}

/// Cuts `text` to at most `max` characters on a word boundary, with an ellipsis.
pub fn snippet(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let cut: String = text.chars().take(max).collect();
    let cut = cut
        .rfind(' ')
        .map_or(cut.as_str(), |i| &cut[..i])
        .trim_end();
    format!("{cut}…")
}

impl Manifest {
    /// Gives the release its id, `<stamp>-<8 hex of the manifest's hash>`, from everything
    /// else in it: two releases made in the same second still differ when their content does.
    pub fn seal(&mut self, stamp: &str) -> &str {
        self.release.clear();
        let digest = sha256_hex(&self.to_json());
        self.release = format!("{stamp}-{}", &digest[..8]);
        &self.release
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippets_cut_on_a_word_with_an_ellipsis() {
        assert_eq!(snippet("short", 10), "short");
        assert_eq!(snippet("one two three four", 10), "one two…");
        assert_eq!(snippet("éééééééééééé", 5), "ééééé…");
    }

    #[test]
    fn artifacts_are_named_by_content_under_the_files_prefix() {
        let mut stored = Vec::new();
        let mut sink = |name: &str, bytes: &[u8]| {
            stored.push((name.to_string(), bytes.len()));
            Ok(())
        };
        let (a, b) = {
            let mut w = ReleaseWriter::new(&mut sink);
            let a = w.put("index.sbi", b"abc", true).unwrap();
            (a, w.put("app-0123.js", b"js", false).unwrap())
        };
        assert!(a.path.starts_with("../../files/index-") && a.path.ends_with(".sbi"));
        assert_eq!(b.path, "../../files/app-0123.js");
        a.verify(b"abc").unwrap();
        assert_eq!(
            stored,
            [(a.path[12..].to_string(), 3), ("app-0123.js".into(), 2)]
        );
    }
}
