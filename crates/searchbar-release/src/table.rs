//! Part tables: how a release names its many small parts of one kind (document shards,
//! lexical fragments) without a manifest that grows with the catalog.
//!
//! A kind with at most one page of parts is listed in the manifest ([`PartList::Listed`]). A
//! larger one is a table ([`PartList::Paged`]): the manifest names its root, the root holds
//! each page's sha256, and a page holds its parts' sizes and sha256s. A page reads the root
//! with the manifest and then only the pages of the parts its queries need, so what it
//! downloads up front grows by 32 bytes per page, not by a manifest entry per part. Every file
//! is checked against the full sha256 its parent names, as if the manifest listed it.
//!
//! Layout (little-endian, no header: the parent's sha256 says what the bytes must be):
//!
//! ```text
//! root:  pages × [u8; 32]              sha256 of page 0, 1, ...
//! page:  entries × (u32 bytes, [u8; 32] sha256)    parts p·per_page .. (p+1)·per_page
//! ```
//!
//! Names follow the content addressing of every artifact ([`content_name`]): with the table's
//! `name` `docs.json`, part `i` is `docs-<i>-<16 hex>.json`, page `p` is
//! `docs-page-<p>-<16 hex>.bin` and the root is `docs-table-<16 hex>.bin`, all under
//! [`FILES_PREFIX`]. So a table entry needs no path: it is made from the part's number and hash.

use crate::layout::FILES_PREFIX;
use crate::manifest::{content_name, sha256_hex};
use crate::{FileRef, ReleaseError};
use serde::{Deserialize, Serialize};

/// Up to this many parts are listed in the manifest when the writer sizes pages itself: for a
/// small release a listing costs fewer bytes than a query's pages, and no round trip.
pub const LIST_UP_TO: usize = 256;

/// How many parts of `parts` a page holds, where the writer chooses ([`LIST_UP_TO`]): what a
/// first query reads of a table is its root (32 bytes a page) and about ten pages (36 bytes a
/// part each), least when both are equal, at √(parts · 32 / 360) parts a page. A million
/// documents in shards of 8 make pages of 105 shards (3.8 KB) and a root of 38 KB.
pub fn page_entries(parts: usize) -> usize {
    let balanced = ((parts as f64) * (DIGEST_LEN as f64) / (10.0 * ENTRY_LEN as f64)).sqrt();
    (balanced.round() as usize).clamp(8, MAX_PER_PAGE)
}
/// The most parts a page may hold.
pub const MAX_PER_PAGE: usize = 1 << 16;
const DIGEST_LEN: usize = 32;
const ENTRY_LEN: usize = 4 + DIGEST_LEN;

/// The parts of one kind, in their numbering: listed in the manifest (a JSON array), or in a
/// table (an object).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum PartList {
    Listed(Vec<FileRef>),
    Paged(PartTable),
}

/// By the JSON's shape, without serde's buffering `untagged` deserializer: that one adds about
/// 10 KB of brotli to the page's first module.
impl<'de> Deserialize<'de> for PartList {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Shape;
        impl<'de> serde::de::Visitor<'de> for Shape {
            type Value = PartList;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of files or a part table")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, a: A) -> Result<PartList, A::Error> {
                let files =
                    Deserialize::deserialize(serde::de::value::SeqAccessDeserializer::new(a))?;
                Ok(PartList::Listed(files))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, a: A) -> Result<PartList, A::Error> {
                let table =
                    Deserialize::deserialize(serde::de::value::MapAccessDeserializer::new(a))?;
                Ok(PartList::Paged(table))
            }
        }
        d.deserialize_any(Shape)
    }
}

/// A table's entry in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartTable {
    /// Each page's sha256.
    pub root: FileRef,
    pub parts: usize,
    pub per_page: usize,
    /// The parts' name before content addressing (`docs.json`: `docs-<i>-<hash>.json`).
    pub name: String,
}

/// One file to fetch for a part: the part itself, or first the table page that names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Want {
    Part(usize),
    Page(usize),
}

impl PartList {
    /// How many parts.
    pub fn len(&self) -> usize {
        match self {
            Self::Listed(files) => files.len(),
            Self::Paged(t) => t.parts,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The table's root, which a client reads with the manifest; `None` where listed.
    pub fn root(&self) -> Option<&FileRef> {
        match self {
            Self::Listed(_) => None,
            Self::Paged(t) => Some(&t.root),
        }
    }

    /// Every file of the list: where paged, the root, the pages and the parts, each page read
    /// through `read` and checked against the root (itself checked against the manifest).
    pub fn files<E: From<ReleaseError>>(
        &self,
        read: &mut dyn FnMut(&FileRef) -> Result<Vec<u8>, E>,
    ) -> Result<Vec<FileRef>, E> {
        let (mut files, parts) = self.table_and_parts(read)?;
        files.extend(parts);
        Ok(files)
    }

    /// The parts' entries in their numbering, a table's pages read through `read` and checked.
    pub fn parts<E: From<ReleaseError>>(
        &self,
        read: &mut dyn FnMut(&FileRef) -> Result<Vec<u8>, E>,
    ) -> Result<Vec<FileRef>, E> {
        Ok(self.table_and_parts(read)?.1)
    }

    /// The table's own files (root, pages; none where listed), and the parts' entries.
    fn table_and_parts<E: From<ReleaseError>>(
        &self,
        read: &mut dyn FnMut(&FileRef) -> Result<Vec<u8>, E>,
    ) -> Result<(Vec<FileRef>, Vec<FileRef>), E> {
        let table = match self {
            Self::Listed(files) => return Ok((Vec::new(), files.clone())),
            Self::Paged(t) => t,
        };
        let mut parts = Parts::new(self, Some(&read(&table.root)?))?;
        let mut files = vec![table.root.clone()];
        for page in 0..parts.pages() {
            let entry = parts.page_file(page).expect("a page the root counts");
            parts.insert_page(page, &read(&entry)?)?;
            files.push(entry);
        }
        let entries = (0..parts.len()).filter_map(|n| parts.entry(n)).collect();
        Ok((files, entries))
    }
}

/// A part list's files as read from where the release is (the pipeline's disk, a target):
/// the table's root where paged, then every page and part, in an order [`Parts`] takes them.
#[derive(Debug, Default)]
pub struct ReadParts {
    pub root: Option<Vec<u8>>,
    pub files: Vec<(Want, Vec<u8>)>,
}

impl ReadParts {
    /// Reads every file of `list` through `read`; each page is checked here (its parts' names
    /// are in it), the parts are left to whoever inserts them.
    pub fn read<E: From<ReleaseError>>(
        list: &PartList,
        read: &mut dyn FnMut(&FileRef) -> Result<Vec<u8>, E>,
    ) -> Result<Self, E> {
        let root = list.root().map(&mut *read).transpose()?;
        let mut parts = Parts::new(list, root.as_deref())?;
        let mut files = Vec::new();
        for page in 0..parts.pages() {
            let entry = parts.page_file(page).expect("a page the root counts");
            let bytes = read(&entry)?;
            parts.insert_page(page, &bytes)?;
            files.push((Want::Page(page), bytes));
        }
        for n in 0..parts.len() {
            let entry = parts.entry(n).expect("every page is read");
            files.push((Want::Part(n), read(&entry)?));
        }
        Ok(Self { root, files })
    }
}

impl PartTable {
    /// What the names of the table's files (root, pages, parts) start with, as a manifest
    /// path: `../../files/docs-`.
    pub fn prefix(&self) -> String {
        format!("{FILES_PREFIX}{}-", self.stem_ext().0)
    }

    /// Pages the table has.
    fn pages(&self) -> usize {
        self.parts.div_ceil(self.per_page.max(1))
    }

    /// Entries page `page` holds.
    fn entries(&self, page: usize) -> usize {
        self.per_page
            .min(self.parts.saturating_sub(page * self.per_page))
    }

    fn stem_ext(&self) -> (&str, &str) {
        self.name.split_once('.').unwrap_or((&self.name, ""))
    }

    /// `stem-<middle>.<ext>`, content-addressed by `sha256`.
    fn named(&self, middle: &str, ext: &str, sha256: &str) -> String {
        let (stem, _) = self.stem_ext();
        let plain = if ext.is_empty() {
            format!("{stem}-{middle}")
        } else {
            format!("{stem}-{middle}.{ext}")
        };
        format!("{FILES_PREFIX}{}", content_name(&plain, sha256))
    }
}

/// Encodes a table's page digests (the root) or one page's entries.
fn digest_bytes(entries: impl Iterator<Item = (Option<u32>, String)>) -> Vec<u8> {
    let mut out = Vec::new();
    for (bytes, sha256) in entries {
        if let Some(b) = bytes {
            out.extend_from_slice(&b.to_le_bytes());
        }
        out.extend_from_slice(&hex::decode(&sha256).expect("sha256 hex from sha256_hex"));
    }
    out
}

/// Writes a table for `parts` (bytes and sha256 of each, in order) named `name`: its pages and
/// root through `put` (file name under `files/`, bytes), and returns the manifest entry.
pub(crate) fn write_table(
    name: &str,
    parts: &[FileRef],
    per_page: usize,
    put: &mut dyn FnMut(&str, &[u8]) -> std::io::Result<()>,
) -> std::io::Result<PartTable> {
    let per_page = per_page.max(1);
    let mut table = PartTable {
        root: FileRef {
            path: String::new(),
            bytes: 0,
            sha256: String::new(),
        },
        parts: parts.len(),
        per_page,
        name: name.to_string(),
    };
    let mut pages = Vec::new();
    for (p, chunk) in parts.chunks(per_page).enumerate() {
        let too_big = |f: &FileRef| {
            std::io::Error::other(format!(
                "{}: {} bytes do not fit a part table",
                f.path, f.bytes
            ))
        };
        let entries = chunk
            .iter()
            .map(|f| {
                Ok((
                    Some(u32::try_from(f.bytes).map_err(|_| too_big(f))?),
                    f.sha256.clone(),
                ))
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        let page = digest_bytes(entries.into_iter());
        let sha = sha256_hex(&page);
        let path = table.named(&format!("page-{p}"), "bin", &sha);
        put(
            path.strip_prefix(FILES_PREFIX).expect("named under files"),
            &page,
        )?;
        pages.push(sha);
    }
    let root = digest_bytes(pages.into_iter().map(|sha| (None, sha)));
    let sha = sha256_hex(&root);
    let path = table.named("table", "bin", &sha);
    put(
        path.strip_prefix(FILES_PREFIX).expect("named under files"),
        &root,
    )?;
    table.root = FileRef {
        path,
        bytes: root.len() as u64,
        sha256: sha,
    };
    Ok(table)
}

/// A part list as a client learns it: every entry at once where listed; where paged, the root
/// first, then page by page as queries need them, each checked before it counts.
#[derive(Debug, Clone)]
pub struct Parts {
    list: PartList,
    /// Paged: each page's sha256 (from the root), and the entries of the pages at hand.
    page_digests: Vec<String>,
    pages: Vec<Option<Vec<(u32, String)>>>,
}

impl Parts {
    /// The parts `list` names; `root` is the table's root where paged (checked here).
    pub fn new(list: &PartList, root: Option<&[u8]>) -> Result<Self, ReleaseError> {
        let mut parts = Self {
            list: list.clone(),
            page_digests: Vec::new(),
            pages: Vec::new(),
        };
        let PartList::Paged(table) = list else {
            return Ok(parts);
        };
        let invalid = |message: String| ReleaseError::Invalid {
            file: crate::MANIFEST_NAME.into(),
            message,
        };
        // Names are made from it under files/: it must be a plain file name.
        let path = format!("{FILES_PREFIX}{}", table.name);
        if crate::layout::artifact_name(&path).is_none() || table.name.contains("..") {
            return Err(invalid(format!(
                "part table name {:?} is not a plain file name",
                table.name
            )));
        }
        // The root's length bounds the pages; this bounds what a page can claim, so no count
        // read from the manifest sizes anything beyond what the root's bytes allow.
        if !(1..=MAX_PER_PAGE).contains(&table.per_page) {
            return Err(invalid(format!(
                "{}: per_page = {} must be 1 to {MAX_PER_PAGE}",
                table.name, table.per_page
            )));
        }
        let Some(root) = root else {
            return Err(ReleaseError::Invalid {
                file: table.root.path.clone(),
                message: "the part table's root was not loaded".into(),
            });
        };
        table.root.verify(root)?;
        if table.pages().checked_mul(DIGEST_LEN) != Some(root.len()) {
            return Err(ReleaseError::Invalid {
                file: table.root.path.clone(),
                message: format!(
                    "{} bytes; {} parts in pages of {} need {} page digests of {DIGEST_LEN} bytes",
                    root.len(),
                    table.parts,
                    table.per_page,
                    table.pages()
                ),
            });
        }
        parts.page_digests = root.chunks_exact(DIGEST_LEN).map(hex::encode).collect();
        parts.pages = vec![None; table.pages()];
        Ok(parts)
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Pages of a paged list (0 where listed).
    pub fn pages(&self) -> usize {
        self.pages.len()
    }

    /// The entry of table page `page`, to fetch it.
    pub fn page_file(&self, page: usize) -> Option<FileRef> {
        let PartList::Paged(table) = &self.list else {
            return None;
        };
        let sha = self.page_digests.get(page)?;
        Some(FileRef {
            path: table.named(&format!("page-{page}"), "bin", sha),
            bytes: (table.entries(page) * ENTRY_LEN) as u64,
            sha256: sha.clone(),
        })
    }

    /// Checks page `page` against the root and keeps its entries.
    pub fn insert_page(&mut self, page: usize, bytes: &[u8]) -> Result<(), ReleaseError> {
        let entry = self.page_file(page).ok_or_else(|| ReleaseError::Invalid {
            file: crate::MANIFEST_NAME.into(),
            message: format!("table page {page} of {} does not exist", self.pages()),
        })?;
        entry.verify(bytes)?;
        self.pages[page] = Some(
            bytes
                .chunks_exact(ENTRY_LEN)
                .map(|e| {
                    let size = u32::from_le_bytes(e[..4].try_into().expect("4 bytes"));
                    (size, hex::encode(&e[4..]))
                })
                .collect(),
        );
        Ok(())
    }

    /// Part `number`'s entry, where it is known (listed, or its page at hand).
    pub fn entry(&self, number: usize) -> Option<FileRef> {
        match &self.list {
            PartList::Listed(files) => files.get(number).cloned(),
            PartList::Paged(table) => {
                let page = self.pages.get(number / table.per_page)?.as_ref()?;
                let (bytes, sha) = page.get(number % table.per_page)?;
                let (_, ext) = table.stem_ext();
                Some(FileRef {
                    path: table.named(&number.to_string(), ext, sha),
                    bytes: u64::from(*bytes),
                    sha256: sha.clone(),
                })
            }
        }
    }

    /// What to fetch for parts `numbers`, each file once, in order: a part whose entry is
    /// known, else its table page (then, once that is inserted, the part). Numbers past the
    /// end are skipped.
    pub fn wanted(&self, numbers: impl IntoIterator<Item = usize>) -> Vec<(Want, FileRef)> {
        // Numbers sorted as plain integers: a sort of `Want`s would add its own copy of the
        // sort to the page's first module.
        let (mut parts, mut pages) = (Vec::new(), Vec::new());
        for n in numbers.into_iter().filter(|&n| n < self.len()) {
            match &self.list {
                PartList::Paged(t) if self.entry(n).is_none() => pages.push(n / t.per_page),
                _ => parts.push(n),
            }
        }
        for list in [&mut parts, &mut pages] {
            list.sort_unstable();
            list.dedup();
        }
        let parts = parts
            .into_iter()
            .filter_map(|n| Some((Want::Part(n), self.entry(n)?)));
        let pages = pages
            .into_iter()
            .filter_map(|p| Some((Want::Page(p), self.page_file(p)?)));
        parts.chain(pages).collect()
    }

    /// Checks part `number`'s bytes against its entry (an error where it is not known yet)
    /// and returns the entry.
    pub fn verify(&self, number: usize, bytes: &[u8]) -> Result<FileRef, ReleaseError> {
        let entry = self.entry(number).ok_or_else(|| ReleaseError::Invalid {
            file: crate::MANIFEST_NAME.into(),
            message: if number < self.len() {
                format!("part {number}: its table page is not loaded")
            } else {
                format!("part {number} of {} does not exist", self.len())
            },
        })?;
        entry.verify(bytes)?;
        Ok(entry)
    }

    /// Sum of the listed parts' sizes, where listed (a paged list's sizes are in its pages).
    pub fn listed_bytes(&self) -> Option<u64> {
        match &self.list {
            PartList::Listed(files) => {
                Some(files.iter().fold(0u64, |n, f| n.saturating_add(f.bytes)))
            }
            PartList::Paged(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// `n` parts written by the release writer's rules, paged by `per_page`: the list, and
    /// every file stored (name under files/ → bytes).
    fn table(n: usize, per_page: usize) -> (PartList, Vec<Vec<u8>>, BTreeMap<String, Vec<u8>>) {
        let mut store = BTreeMap::new();
        let parts: Vec<Vec<u8>> = (0..n)
            .map(|i| format!("part {i}").repeat(i + 1).into_bytes())
            .collect();
        let mut put = |name: &str, bytes: &[u8]| {
            store.insert(name.to_string(), bytes.to_vec());
            Ok(())
        };
        let list = crate::ReleaseWriter::new(&mut put)
            .put_parts("docs.json", parts.iter().map(Vec::as_slice), Some(per_page))
            .unwrap();
        (list, parts, store)
    }

    fn reader(
        store: &BTreeMap<String, Vec<u8>>,
    ) -> impl FnMut(&FileRef) -> Result<Vec<u8>, ReleaseError> + '_ {
        |f: &FileRef| {
            let name = crate::layout::artifact_name(&f.path).unwrap();
            Ok(store[name].clone())
        }
    }

    #[test]
    fn a_page_or_less_is_listed_more_is_paged() {
        let (listed, parts, store) = table(3, 3);
        let PartList::Listed(files) = &listed else {
            panic!("{listed:?}")
        };
        assert_eq!(files.len(), 3);
        assert_eq!(store.len(), 3);
        assert!(
            files[2].path.starts_with("../../files/docs-2-"),
            "{}",
            files[2].path
        );
        files[2].verify(&parts[2]).unwrap();

        let (paged, parts, store) = table(7, 3);
        let PartList::Paged(t) = &paged else {
            panic!("{paged:?}")
        };
        assert_eq!((t.parts, t.per_page, t.name.as_str()), (7, 3, "docs.json"));
        // 7 parts, 3 pages, 1 root.
        assert_eq!(store.len(), 11);
        let all = paged.files(&mut reader(&store)).unwrap();
        assert_eq!(all.len(), 11);
        for f in &all {
            f.verify(&store[crate::layout::artifact_name(&f.path).unwrap()])
                .unwrap();
        }
        let parts_named: Vec<_> = all.iter().filter(|f| f.path.contains("docs-6-")).collect();
        assert_eq!(parts_named.len(), 1);
        parts_named[0].verify(&parts[6]).unwrap();
    }

    #[test]
    fn a_client_reads_the_pages_of_the_parts_it_wants() {
        let (list, parts, store) = table(10, 4);
        let mut read = reader(&store);
        let root = read(list.root().unwrap()).unwrap();
        let mut p = Parts::new(&list, Some(&root)).unwrap();
        assert_eq!((p.len(), p.pages()), (10, 3));
        let want = p.wanted([9, 1, 2, 40]);
        assert_eq!(
            want.iter().map(|w| w.0).collect::<Vec<_>>(),
            [Want::Page(0), Want::Page(2)]
        );
        assert!(p.verify(9, &parts[9]).is_err());
        for (w, f) in want {
            let Want::Page(n) = w else { unreachable!() };
            p.insert_page(n, &read(&f).unwrap()).unwrap();
        }
        let want = p.wanted([9, 1, 2]);
        assert_eq!(
            want.iter().map(|w| w.0).collect::<Vec<_>>(),
            [Want::Part(1), Want::Part(2), Want::Part(9)]
        );
        for (w, f) in &want {
            let Want::Part(n) = *w else { unreachable!() };
            assert_eq!(p.verify(n, &read(f).unwrap()).unwrap(), *f);
        }
        // Part 5's page (1) is still missing.
        assert_eq!(p.wanted([5]).first().map(|w| w.0), Some(Want::Page(1)));
    }

    #[test]
    fn damaged_tables_are_refused_naming_the_file() {
        let (list, parts, store) = table(10, 4);
        let mut read = reader(&store);
        let root = read(list.root().unwrap()).unwrap();
        let root_path = &list.root().unwrap().path;

        let mut bad = root.clone();
        bad[0] ^= 1;
        let e = Parts::new(&list, Some(&bad)).unwrap_err().to_string();
        assert!(
            e.contains(root_path.as_str()) && e.contains("sha256"),
            "{e}"
        );
        let e = Parts::new(&list, None).unwrap_err().to_string();
        assert!(e.contains("not loaded"), "{e}");

        let mut p = Parts::new(&list, Some(&root)).unwrap();
        let page = p.page_file(0).unwrap();
        let mut bytes = read(&page).unwrap();
        bytes[5] ^= 1;
        let e = p.insert_page(0, &bytes).unwrap_err().to_string();
        assert!(e.contains(&page.path) && e.contains("sha256"), "{e}");
        assert!(p.insert_page(7, &bytes).is_err());

        p.insert_page(0, &read(&page).unwrap()).unwrap();
        let e = p.verify(1, &parts[2]).unwrap_err().to_string();
        assert!(e.contains("docs-1-"), "{e}");

        // A name that would lead out of files/.
        let PartList::Paged(mut t) = list.clone() else {
            unreachable!()
        };
        t.name = "../x.json".into();
        let e = Parts::new(&PartList::Paged(t), Some(&root))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a plain file name"), "{e}");

        // A root whose length does not match the counts (a manifest edited to say more parts).
        let PartList::Paged(mut t) = list.clone() else {
            unreachable!()
        };
        t.parts = 20;
        let e = Parts::new(&PartList::Paged(t), Some(&root))
            .unwrap_err()
            .to_string();
        assert!(e.contains("page digests"), "{e}");
    }

    #[test]
    fn the_writer_sizes_pages_by_the_count_where_not_told() {
        assert_eq!(page_entries(100), 8);
        assert_eq!(page_entries(31_250), 53);
        assert_eq!(page_entries(125_000), 105);
        assert_eq!(page_entries(usize::MAX), MAX_PER_PAGE);
        let mut put = |_: &str, _: &[u8]| Ok(());
        let parts = vec![vec![1u8]; LIST_UP_TO + 1];
        let mut w = crate::ReleaseWriter::new(&mut put);
        let listed = w
            .put_parts("x.bin", parts[1..].iter().map(Vec::as_slice), None)
            .unwrap();
        assert!(matches!(listed, PartList::Listed(ref f) if f.len() == LIST_UP_TO));
        let paged = w
            .put_parts("x.bin", parts.iter().map(Vec::as_slice), None)
            .unwrap();
        let PartList::Paged(t) = paged else {
            panic!("{paged:?}")
        };
        assert_eq!((t.parts, t.per_page), (LIST_UP_TO + 1, 8));
    }

    #[test]
    fn the_manifest_entry_round_trips_as_either_form() {
        let (paged, _, _) = table(5, 2);
        let (listed, _, _) = table(2, 2);
        for list in [paged, listed] {
            let json = serde_json::to_string(&list).unwrap();
            assert_eq!(serde_json::from_str::<PartList>(&json).unwrap(), list);
        }
        let e = serde_json::from_str::<PartList>("5")
            .unwrap_err()
            .to_string();
        assert!(e.contains("a list of files or a part table"), "{e}");
        let e = serde_json::from_str::<PartList>(r#"{"root": 1}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("invalid type"), "{e}");
    }
}
