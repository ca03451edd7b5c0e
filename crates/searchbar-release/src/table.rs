//! Part tables: how a release names its many small parts of one kind (document shards,
//! lexical fragments) without a manifest that grows with the catalog.
//!
//! A kind with at most one page of parts is listed in the manifest ([`PartList::Listed`]). A
//! larger one is a table ([`PartList::Paged`]): the manifest names its root, the root holds
//! each page's digest, and a page holds its parts' sizes and digests. A page reads the root
//! with the manifest and then only the pages of the parts its queries need, so what it
//! downloads up front grows by 16 bytes per page, not by a manifest entry per part. Every file
//! is checked against the digest its parent names, as if the manifest listed it.
//!
//! A digest is the first [`SHORT_SHA256`] bytes of the file's sha256 (`digest = 16` in the
//! manifest entry); tables written before that keep whole ones (no `digest`: 32), and read as
//! they did. Layout (little-endian, no header: the parent's digest says what the bytes must be):
//!
//! ```text
//! root:  pages × [u8; digest]                  of page 0, 1, ...
//! page:  entries × (u32 bytes, [u8; digest])   parts p·per_page .. (p+1)·per_page
//! ```
//!
//! A table with `proofs` (every table written since; manifest format 4) lets a client check a
//! part without its page: each part begins with its path to the root of its page's hash tree
//! ([`crate::merkle`]), and the root holds that tree root before each page's digest. A client
//! reads the root and the parts; the pages stay for the tools that copy, check and collect
//! whole releases (their entries are the part files', path included). So a query fetches no
//! pages, and pages can be larger ([`page_entries`]), which makes the root smaller:
//!
//! ```text
//! root:  pages × ([u8; 16] tree root, [u8; 16] page digest)
//! part:  its path (16 bytes a level where it has a neighbour), then its bytes
//! ```
//!
//! Names follow the content addressing of every artifact ([`content_name`]), at the page's
//! grain for the parts: with the table's `name` `docs.json`, page `p` is
//! `docs-page-<p>-<16 hex of its sha256>.bin`, the root `docs-table-<16 hex>.bin`, and part `i`
//! is `docs-<i>-<16 hex of its page's sha256>.json`, all under [`FILES_PREFIX`]. So a part's
//! name is known from the root alone: a client fetches a part together with the page that
//! names it, in one round trip, and checks the part once the page is in ([`Fetch`]). A part
//! changes name when another part of its page changes; within an unchanged page it keeps its
//! name, and its cache entries, across releases.

use crate::layout::FILES_PREFIX;
use crate::manifest::{content_name, sha256_hex, SHORT_SHA256};
use crate::merkle;
use crate::{FileRef, ReleaseError};
use serde::{Deserialize, Serialize};

/// Up to this many parts are listed in the manifest when the writer sizes pages itself: for a
/// small release a listing costs fewer bytes than a query's pages, and no round trip.
pub const LIST_UP_TO: usize = 256;

/// How many parts of `parts` a page holds, where the writer chooses ([`LIST_UP_TO`]). What a
/// visit reads of a table with proofs is its root (32 bytes a page) and, with each part it
/// fetches, a path of 16 bytes per level of its page's tree. For a visit of four queries of
/// twenty parts each, `32 · parts / p + 80 · 16 · log2 p` is least at `p = parts · ln 2 / 40`.
/// Capped at 1,024: a part is renamed when another of its page changes, and past that the root
/// would save about 2 KB at a million documents. A million documents in shards of 8 make pages of
/// 1,024 shards, a root of 3.9 KB and paths of 160 bytes.
pub fn page_entries(parts: usize) -> usize {
    const PARTS_A_VISIT: f64 = 4.0 * 20.0;
    let balanced = (parts as f64) * (2 * SHORT_SHA256) as f64 * std::f64::consts::LN_2
        / (PARTS_A_VISIT * SHORT_SHA256 as f64);
    (balanced.round() as usize).clamp(8, 1024)
}
/// The most parts a page may hold.
pub const MAX_PER_PAGE: usize = 1 << 16;
/// The digest of a table written before short ones: a whole sha256.
const WHOLE_SHA256: usize = 32;

/// A page entry's bytes: a part's size and digest.
fn entry_len(digest: usize) -> usize {
    4 + digest
}

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
    /// Bytes of sha256 in the root and pages: [`SHORT_SHA256`], or 32 in a table written
    /// without this field.
    #[serde(default = "whole_sha256")]
    pub digest: usize,
    /// Whether each part begins with its path to its page's tree root, which the root holds
    /// beside each page's digest (the module's doc). Tables written before have none.
    #[serde(default, skip_serializing_if = "is_false")]
    pub proofs: bool,
}

fn whole_sha256() -> usize {
    WHOLE_SHA256
}

fn is_false(b: &bool) -> bool {
    !b
}

/// One file to fetch for a part list ([`Parts::wanted`]): where it is, and its entry where
/// known already. A part checked by its path to its page's tree root, or fetched with the page
/// that names it, has none yet: it is checked when inserted (after its page, in the latter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetch {
    pub want: Want,
    pub path: String,
    pub entry: Option<FileRef>,
}

/// What a fetched file is: a part, or a table page.
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

    /// Each part's entry and its bytes as written (without its path to its page's root, in a
    /// table with proofs), every file read through `read` and checked: for what reads a
    /// release's parts whole.
    pub fn contents<E: From<ReleaseError>>(
        &self,
        read: &mut dyn FnMut(&FileRef) -> Result<Vec<u8>, E>,
    ) -> Result<Vec<(FileRef, Vec<u8>)>, E> {
        let (_, parts, _) = self.read_table(read)?;
        (0..parts.len())
            .map(|n| {
                let entry = parts.entry(n).expect("every page is read");
                let bytes = read(&entry)?;
                let part = parts.verify(n, &bytes)?.1.to_vec();
                Ok((entry, part))
            })
            .collect()
    }

    /// The table's own files (root, pages; none where listed), and the parts' entries.
    fn table_and_parts<E: From<ReleaseError>>(
        &self,
        read: &mut dyn FnMut(&FileRef) -> Result<Vec<u8>, E>,
    ) -> Result<(Vec<FileRef>, Vec<FileRef>), E> {
        let (_, parts, pages) = self.read_table(read)?;
        let files = self
            .root()
            .cloned()
            .into_iter()
            .chain(pages.into_iter().map(|(_, entry, _)| entry))
            .collect();
        let entries = (0..parts.len()).filter_map(|n| parts.entry(n)).collect();
        Ok((files, entries))
    }

    /// Reads the table's root and every page through `read`, each checked: the root's bytes
    /// (where paged), the parts with every page in, and each page (number, entry, bytes).
    #[allow(clippy::type_complexity)]
    fn read_table<E: From<ReleaseError>>(
        &self,
        read: &mut dyn FnMut(&FileRef) -> Result<Vec<u8>, E>,
    ) -> Result<(Option<Vec<u8>>, Parts, Vec<(usize, FileRef, Vec<u8>)>), E> {
        let root = self.root().map(&mut *read).transpose()?;
        let mut parts = Parts::new(self, root.as_deref())?;
        let mut pages = Vec::new();
        for page in 0..parts.pages() {
            let entry = parts.page_file(page).expect("a page the root counts");
            let bytes = read(&entry)?;
            parts.insert_page(page, &bytes)?;
            pages.push((page, entry, bytes));
        }
        Ok((root, parts, pages))
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
        let (root, parts, pages) = list.read_table(read)?;
        let mut files: Vec<(Want, Vec<u8>)> = pages
            .into_iter()
            .map(|(page, _, bytes)| (Want::Page(page), bytes))
            .collect();
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

    /// Bytes of the root a page has: its digest, after its tree root where the table has proofs.
    fn root_entry_len(&self) -> usize {
        if self.proofs {
            SHORT_SHA256 + self.digest
        } else {
            self.digest
        }
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
        let plain = numbered(self.stem_ext().0, middle, ext);
        format!("{FILES_PREFIX}{}", content_name(&plain, sha256))
    }
}

/// `stem-<middle>.<ext>` (no dot where `ext` is empty): the name of a numbered part or page
/// before content addressing.
pub(crate) fn numbered(stem: &str, middle: &str, ext: &str) -> String {
    if ext.is_empty() {
        format!("{stem}-{middle}")
    } else {
        format!("{stem}-{middle}.{ext}")
    }
}

/// Encodes a table's page digests (the root) or one page's entries: each sha256 (hex) cut to
/// its first `digest` bytes.
fn digest_bytes(entries: impl Iterator<Item = (Option<u32>, String)>, digest: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for (bytes, sha256) in entries {
        if let Some(b) = bytes {
            out.extend_from_slice(&b.to_le_bytes());
        }
        let whole = hex::decode(&sha256).expect("sha256 hex from sha256_hex");
        out.extend_from_slice(&whole[..digest]);
    }
    out
}

/// Writes a table named `name` for `parts` (their bytes, in order): each page, then the parts
/// it names (named by the page's hash), then the root, through `put` (file name under
/// `files/`, bytes); returns the manifest entry.
pub(crate) fn write_table(
    name: &str,
    parts: &[&[u8]],
    per_page: usize,
    put: &mut dyn FnMut(&str, &[u8]) -> std::io::Result<()>,
) -> std::io::Result<PartTable> {
    write_table_with(name, parts, per_page, (SHORT_SHA256, true), put)
}

/// [`write_table`] with digests of `digest` bytes and with or without proofs (the tests write
/// tables as they were written before).
fn write_table_with(
    name: &str,
    parts: &[&[u8]],
    per_page: usize,
    (digest, proofs): (usize, bool),
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
        digest,
        proofs,
    };
    let (_, ext) = table.stem_ext();
    let ext = ext.to_string();
    let stored = |path: &str| -> String {
        path.strip_prefix(FILES_PREFIX)
            .expect("named under files")
            .to_string()
    };
    let mut root = Vec::new();
    for (p, chunk) in parts.chunks(per_page).enumerate() {
        // With proofs, a part's file is its path, then its bytes; the page lists the files.
        let with_paths: Vec<Vec<u8>>;
        let chunk: Vec<&[u8]> = if proofs {
            let (tree, paths) = merkle::paths(chunk);
            root.extend_from_slice(&tree);
            with_paths = paths
                .into_iter()
                .zip(chunk)
                .map(|(path, part)| [path.as_slice(), part].concat())
                .collect();
            with_paths.iter().map(Vec::as_slice).collect()
        } else {
            chunk.to_vec()
        };
        let entries = chunk
            .iter()
            .map(|part| {
                let size = u32::try_from(part.len()).map_err(|_| {
                    std::io::Error::other(format!(
                        "{name}: a part of {} bytes does not fit a part table",
                        part.len()
                    ))
                })?;
                Ok((Some(size), sha256_hex(part)))
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        let page = digest_bytes(entries.into_iter(), table.digest);
        let sha = sha256_hex(&page);
        put(
            &stored(&table.named(&format!("page-{p}"), "bin", &sha)),
            &page,
        )?;
        for (i, part) in chunk.iter().enumerate() {
            let number = p * per_page + i;
            put(&stored(&table.named(&number.to_string(), &ext, &sha)), part)?;
        }
        root.extend(digest_bytes(std::iter::once((None, sha)), table.digest));
    }
    let sha = sha256_hex(&root);
    let path = table.named("table", "bin", &sha);
    put(&stored(&path), &root)?;
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
    /// Paged with proofs: each page's tree root (from the root).
    trees: Vec<merkle::Digest>,
    pages: Vec<Option<Vec<(u32, String)>>>,
}

impl Parts {
    /// The parts `list` names; `root` is the table's root where paged (checked here).
    pub fn new(list: &PartList, root: Option<&[u8]>) -> Result<Self, ReleaseError> {
        let mut parts = Self::awaiting_root(list)?;
        if let PartList::Paged(table) = list {
            let Some(root) = root else {
                return Err(ReleaseError::Invalid {
                    file: table.root.path.clone(),
                    message: "the part table's root was not loaded".into(),
                });
            };
            parts.insert_root(root)?;
        }
        Ok(parts)
    }

    /// The parts `list` names, a paged list's root to come ([`Parts::insert_root`]): until it
    /// does, no part has a path ([`Parts::awaited_root`]).
    pub fn awaiting_root(list: &PartList) -> Result<Self, ReleaseError> {
        let parts = Self {
            list: list.clone(),
            page_digests: Vec::new(),
            trees: Vec::new(),
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
        if ![SHORT_SHA256, WHOLE_SHA256].contains(&table.digest)
            || (table.proofs && table.digest != SHORT_SHA256)
        {
            return Err(invalid(format!(
                "{}: digest = {} must be {SHORT_SHA256} or {WHOLE_SHA256} ({SHORT_SHA256} with proofs)",
                table.name, table.digest
            )));
        }
        Ok(parts)
    }

    /// A paged list's root while it has yet to come ([`Parts::awaiting_root`]).
    pub fn awaited_root(&self) -> Option<&FileRef> {
        match &self.list {
            PartList::Paged(t) if t.parts > 0 && self.page_digests.is_empty() => Some(&t.root),
            _ => None,
        }
    }

    /// Checks a paged list's root and keeps its page digests (a listed list has none: an
    /// error). Once in, the same root again changes nothing.
    pub fn insert_root(&mut self, root: &[u8]) -> Result<(), ReleaseError> {
        let PartList::Paged(table) = &self.list else {
            return Err(ReleaseError::Invalid {
                file: crate::MANIFEST_NAME.into(),
                message: "a listed part list has no table root".into(),
            });
        };
        table.root.verify(root)?;
        if !self.page_digests.is_empty() {
            return Ok(());
        }
        let each = table.root_entry_len();
        if table.pages().checked_mul(each) != Some(root.len()) {
            return Err(ReleaseError::Invalid {
                file: table.root.path.clone(),
                message: format!(
                    "{} bytes; {} parts in pages of {} need {} page digests of {each} bytes",
                    root.len(),
                    table.parts,
                    table.per_page,
                    table.pages(),
                ),
            });
        }
        // Each page's entry: its tree root where the table has proofs, then its digest.
        let tree = each - table.digest;
        for e in root.chunks_exact(each) {
            if table.proofs {
                self.trees.push(e[..tree].try_into().expect("a tree root"));
            }
            self.page_digests.push(hex::encode(&e[tree..]));
        }
        self.pages = vec![None; table.pages()];
        Ok(())
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
            bytes: (table.entries(page) * entry_len(table.digest)) as u64,
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
        let PartList::Paged(table) = &self.list else {
            unreachable!("a page file is a paged list's")
        };
        self.pages[page] = Some(
            bytes
                .chunks_exact(entry_len(table.digest))
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
                Some(FileRef {
                    path: self.path(number)?,
                    bytes: u64::from(*bytes),
                    sha256: sha.clone(),
                })
            }
        }
    }

    /// Part `number`'s path, known from the root alone where paged (its page's hash names it).
    pub fn path(&self, number: usize) -> Option<String> {
        match &self.list {
            PartList::Listed(files) => files.get(number).map(|f| f.path.clone()),
            PartList::Paged(table) if number < table.parts => {
                let page = self.page_digests.get(number / table.per_page)?;
                Some(table.named(&number.to_string(), table.stem_ext().1, page))
            }
            PartList::Paged(_) => None,
        }
    }

    /// What to fetch for parts `numbers`, each file once: the table pages not at hand first
    /// (none in a table with proofs), then the parts, all in one round trip. Insert them in
    /// that order: a part whose page came with it is checked once the page is in. Numbers past
    /// the end are skipped.
    pub fn wanted(&self, numbers: impl IntoIterator<Item = usize>) -> Vec<Fetch> {
        // Numbers sorted as plain integers: a sort of `Want`s would add its own copy of the
        // sort to the page's first module.
        let (mut parts, mut pages) = (Vec::new(), Vec::new());
        for n in numbers.into_iter().filter(|&n| n < self.len()) {
            if let PartList::Paged(t) = &self.list {
                // A part with its path is checked without its page.
                if !t.proofs && self.entry(n).is_none() {
                    pages.push(n / t.per_page);
                }
            }
            parts.push(n);
        }
        for list in [&mut parts, &mut pages] {
            list.sort_unstable();
            list.dedup();
        }
        let pages = pages.into_iter().filter_map(|p| {
            let entry = self.page_file(p)?;
            Some(Fetch {
                want: Want::Page(p),
                path: entry.path.clone(),
                entry: Some(entry),
            })
        });
        let parts = parts.into_iter().filter_map(|n| {
            Some(Fetch {
                want: Want::Part(n),
                path: self.path(n)?,
                entry: self.entry(n),
            })
        });
        pages.chain(parts).collect()
    }

    /// Checks part `number`'s bytes, as fetched: against its entry (an error where it is not
    /// known yet), or, in a table with proofs, against its page's tree root (and its entry too
    /// where its page is at hand). Returns its path and its bytes without the path to the root.
    pub fn verify<'b>(
        &self,
        number: usize,
        bytes: &'b [u8],
    ) -> Result<(String, &'b [u8]), ReleaseError> {
        if let PartList::Paged(t) = &self.list {
            if t.proofs && number < t.parts {
                return self.verify_path(t, number, bytes);
            }
        }
        let entry = self.entry(number).ok_or_else(|| ReleaseError::Invalid {
            file: crate::MANIFEST_NAME.into(),
            message: if number < self.len() {
                format!("part {number}: its table page is not loaded")
            } else {
                format!("part {number} of {} does not exist", self.len())
            },
        })?;
        entry.verify(bytes)?;
        Ok((entry.path, bytes))
    }

    /// [`Parts::verify`] for a table with proofs.
    fn verify_path<'b>(
        &self,
        table: &PartTable,
        number: usize,
        bytes: &'b [u8],
    ) -> Result<(String, &'b [u8]), ReleaseError> {
        let (page, at) = (number / table.per_page, number % table.per_page);
        let (Some(path), Some(tree)) = (self.path(number), self.trees.get(page)) else {
            return Err(ReleaseError::Invalid {
                file: table.root.path.clone(),
                message: "the part table's root was not loaded".into(),
            });
        };
        let count = table.entries(page);
        let len = merkle::path_len(at, count);
        if bytes.len() < len {
            return Err(ReleaseError::Invalid {
                file: path,
                message: format!(
                    "{} bytes, fewer than its path to its page's root ({len} bytes)",
                    bytes.len()
                ),
            });
        }
        let (proof, part) = bytes.split_at(len);
        let reached = merkle::root_of(part, at, count, proof);
        if reached != *tree {
            return Err(ReleaseError::Invalid {
                file: path,
                message: format!(
                    "hashes up to {}, not to page {page}'s root in the part table ({}); \
                     refusing a corrupted or mixed release",
                    hex::encode(reached),
                    hex::encode(tree)
                ),
            });
        }
        if let Some(entry) = self.entry(number) {
            entry.verify(bytes)?;
        }
        Ok((path, part))
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

    type Written = (PartList, Vec<Vec<u8>>, BTreeMap<String, Vec<u8>>);

    /// `n` parts written by the release writer's rules, paged by `per_page`, a table as
    /// written before proofs (its pages are what a client checks parts against): the list,
    /// the parts, and every file stored (name under files/ → bytes).
    fn table(n: usize, per_page: usize) -> Written {
        written(n, per_page, false)
    }

    /// [`table`] as the writer writes it now, with proofs.
    fn table_with_proofs(n: usize, per_page: usize) -> Written {
        written(n, per_page, true)
    }

    fn written(n: usize, per_page: usize, proofs: bool) -> Written {
        let mut store = BTreeMap::new();
        let parts: Vec<Vec<u8>> = (0..n)
            .map(|i| format!("part {i}").repeat(i + 1).into_bytes())
            .collect();
        let mut put = |name: &str, bytes: &[u8]| {
            store.insert(name.to_string(), bytes.to_vec());
            Ok(())
        };
        let list = if n > per_page {
            let slices: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
            let t = write_table_with("docs.json", &slices, per_page, (16, proofs), &mut put);
            PartList::Paged(t.unwrap())
        } else {
            crate::ReleaseWriter::new(&mut put)
                .put_parts("docs.json", parts.iter().map(Vec::as_slice), Some(per_page))
                .unwrap()
        };
        (list, parts, store)
    }

    #[test]
    fn a_client_checks_a_part_by_its_path_without_its_page() {
        let (list, parts, store) = table_with_proofs(10, 4);
        let read_path = |path: &str| store[crate::layout::artifact_name(path).unwrap()].clone();
        let root = read_path(&list.root().unwrap().path);
        // Three pages, each a tree root and a page digest.
        assert_eq!(root.len(), 3 * 32);
        let p = Parts::new(&list, Some(&root)).unwrap();
        // The parts alone, known from the root.
        let want = p.wanted([9, 1, 2, 40]);
        assert_eq!(
            want.iter().map(|f| f.want).collect::<Vec<_>>(),
            [Want::Part(1), Want::Part(2), Want::Part(9)]
        );
        assert!(want.iter().all(|f| f.entry.is_none()));
        for f in &want {
            let Want::Part(n) = f.want else {
                unreachable!()
            };
            let bytes = read_path(&f.path);
            // Part 9 shares its page with part 8 alone: one level of 16 bytes; the others two.
            assert_eq!(bytes.len() - parts[n].len(), if n == 9 { 16 } else { 32 });
            let (path, part) = p.verify(n, &bytes).unwrap();
            assert_eq!(
                (path.as_str(), part),
                (f.path.as_str(), parts[n].as_slice())
            );
            // A changed byte anywhere, in the part or its path, is refused by name.
            for at in [0, bytes.len() - 1] {
                let mut bad = bytes.clone();
                bad[at] ^= 1;
                let e = p.verify(n, &bad).unwrap_err().to_string();
                assert!(e.contains(&f.path) && e.contains("refusing"), "{e}");
            }
        }
        // Another part in its place, a short file, and a part past the end.
        let one = read_path(&p.path(1).unwrap());
        let e = p.verify(2, &one).unwrap_err().to_string();
        assert!(e.contains("docs-2-"), "{e}");
        let e = p.verify(1, &one[..10]).unwrap_err().to_string();
        assert!(e.contains("fewer than its path"), "{e}");
        assert!(p.verify(10, &one).is_err());
        // Without its root nothing is checked.
        let waiting = Parts::awaiting_root(&list).unwrap();
        let e = waiting.verify(1, &one).unwrap_err().to_string();
        assert!(e.contains("not loaded"), "{e}");
    }

    #[test]
    fn the_tools_read_a_table_with_proofs_through_its_pages() {
        let (list, parts, store) = table_with_proofs(10, 4);
        let PartList::Paged(t) = &list else {
            panic!("{list:?}")
        };
        assert!(t.proofs);
        // Root, three pages, ten parts: each file checked against its parent, as stored.
        let all = list.files(&mut reader(&store)).unwrap();
        assert_eq!(all.len(), 14);
        for f in &all {
            f.verify(&store[crate::layout::artifact_name(&f.path).unwrap()])
                .unwrap();
        }
        // Read whole, as the CLI does: with the pages in, a part is checked both ways.
        let contents = list.contents(&mut reader(&store)).unwrap();
        assert_eq!(
            contents.iter().map(|c| &c.1).collect::<Vec<_>>(),
            parts.iter().collect::<Vec<_>>()
        );
        let read = ReadParts::read(&list, &mut reader(&store)).unwrap();
        let mut p = Parts::new(&list, read.root.as_deref()).unwrap();
        for (want, bytes) in &read.files {
            match *want {
                Want::Page(n) => p.insert_page(n, bytes).unwrap(),
                Want::Part(n) => assert_eq!(p.verify(n, bytes).unwrap().1, parts[n]),
            }
        }
        // The manifest says so; an older build refuses the field rather than misread parts.
        let json = serde_json::to_value(&list).unwrap();
        assert_eq!(json["proofs"], true);
        let (old, _, _) = table(10, 4);
        assert!(serde_json::to_value(&old).unwrap().get("proofs").is_none());
        // Proofs are only written with 16-byte digests.
        let mut odd = t.clone();
        odd.digest = 32;
        let e = Parts::awaiting_root(&PartList::Paged(odd))
            .unwrap_err()
            .to_string();
        assert!(e.contains("with proofs"), "{e}");
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
    fn a_client_fetches_parts_with_the_pages_that_name_them() {
        let (list, parts, store) = table(10, 4);
        let read_path = |path: &str| store[crate::layout::artifact_name(path).unwrap()].clone();
        let root = read_path(&list.root().unwrap().path);
        let mut p = Parts::new(&list, Some(&root)).unwrap();
        assert_eq!((p.len(), p.pages()), (10, 3));
        // Pages first, then the parts: each part's path is known from the root alone.
        let want = p.wanted([9, 1, 2, 40]);
        assert_eq!(
            want.iter().map(|f| f.want).collect::<Vec<_>>(),
            [
                Want::Page(0),
                Want::Page(2),
                Want::Part(1),
                Want::Part(2),
                Want::Part(9)
            ]
        );
        assert!(want[2..].iter().all(|f| f.entry.is_none()));
        assert!(p.verify(9, &parts[9]).is_err());
        for f in &want {
            let bytes = read_path(&f.path);
            match f.want {
                Want::Page(n) => p.insert_page(n, &bytes).unwrap(),
                Want::Part(n) => {
                    let (path, part) = p.verify(n, &bytes).unwrap();
                    assert_eq!(path, f.path);
                    assert_eq!(part, parts[n]);
                }
            }
        }
        // Their pages at hand: the parts alone, with their entries.
        let want = p.wanted([9, 1]);
        assert_eq!(
            want.iter().map(|f| f.want).collect::<Vec<_>>(),
            [Want::Part(1), Want::Part(9)]
        );
        assert!(want.iter().all(|f| f.entry.is_some()));
        // Part 5's page (1) is still missing.
        assert_eq!(
            p.wanted([5]).iter().map(|f| f.want).collect::<Vec<_>>(),
            [Want::Page(1), Want::Part(5)]
        );
    }

    #[test]
    fn a_root_that_comes_later_is_checked_before_any_part_is_named() {
        let (list, _, store) = table(10, 4);
        let root = store[crate::layout::artifact_name(&list.root().unwrap().path).unwrap()].clone();
        let mut p = Parts::awaiting_root(&list).unwrap();
        assert_eq!(p.awaited_root(), list.root());
        assert_eq!(p.len(), 10);
        // Nothing can be named without the root's page digests.
        assert!(p.wanted([0, 9]).is_empty());
        assert_eq!(p.path(0), None);
        // Another table's root is refused and leaves it waiting.
        let (other, _, other_store) = table(12, 4);
        let wrong =
            &other_store[crate::layout::artifact_name(&other.root().unwrap().path).unwrap()];
        let e = p.insert_root(wrong).unwrap_err().to_string();
        assert!(e.contains("sha256"), "{e}");
        assert!(p.awaited_root().is_some());
        p.insert_root(&root).unwrap();
        assert_eq!(p.awaited_root(), None);
        // Then as if it had come with the list, and the same root again changes nothing.
        let whole = Parts::new(&list, Some(&root)).unwrap();
        assert_eq!(p.wanted([0, 9]), whole.wanted([0, 9]));
        p.insert_root(&root).unwrap();
        assert_eq!(p.pages(), 3);
        // A listed list awaits nothing and takes no root.
        let (listed, _, _) = table(3, 4);
        assert!(matches!(listed, PartList::Listed(_)));
        let mut l = Parts::awaiting_root(&listed).unwrap();
        assert_eq!(l.awaited_root(), None);
        assert!(l.insert_root(&root).is_err());
    }

    #[test]
    fn a_part_is_named_by_its_page_and_keeps_its_name_while_the_page_does() {
        let (list, _, store) = table_with_proofs(10, 4);
        let mut changed: Vec<Vec<u8>> = (0..10)
            .map(|i| format!("part {i}").repeat(i + 1).into_bytes())
            .collect();
        changed[9] = b"another last part".to_vec();
        let mut again = std::collections::BTreeMap::new();
        let mut put = |name: &str, bytes: &[u8]| {
            again.insert(name.to_string(), bytes.to_vec());
            Ok(())
        };
        crate::ReleaseWriter::new(&mut put)
            .put_parts("docs.json", changed.iter().map(Vec::as_slice), Some(4))
            .unwrap();
        let names = |s: &BTreeMap<String, Vec<u8>>, n: usize| -> String {
            s.keys()
                .find(|k| k.starts_with(&format!("docs-{n}-")))
                .unwrap()
                .clone()
        };
        // Pages 0 and 1 are the same: their parts keep their names; page 2's are renamed.
        for n in 0..8 {
            assert_eq!(names(&store, n), names(&again, n));
        }
        assert_ne!(names(&store, 8), names(&again, 8));
        let _ = list;
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
        // SciFact's shards and fragments; a million documents' fragments, then its shards.
        assert_eq!(page_entries(649), 11);
        assert_eq!(page_entries(1_053), 18);
        assert_eq!(page_entries(32_856), 569);
        assert_eq!(page_entries(125_000), 1024);
        assert_eq!(page_entries(usize::MAX), 1024);
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
    fn a_table_keeps_sixteen_bytes_of_each_sha256() {
        let (list, parts, store) = table(10, 4);
        let PartList::Paged(t) = &list else {
            panic!("{list:?}")
        };
        assert_eq!(t.digest, SHORT_SHA256);
        let mut read = reader(&store);
        let root = read(&t.root).unwrap();
        // Three pages of 16 bytes; a page of four entries of 4 + 16 bytes.
        assert_eq!(root.len(), 3 * 16);
        let mut p = Parts::new(&list, Some(&root)).unwrap();
        let page = p.page_file(0).unwrap();
        assert_eq!(page.bytes, 4 * 20);
        assert_eq!(page.sha256.len(), 32);
        p.insert_page(0, &read(&page).unwrap()).unwrap();
        p.verify(3, &parts[3]).unwrap();
        let entry = p.entry(3).unwrap();
        assert_eq!(entry.sha256, sha256_hex(&parts[3])[..32]);
        assert!(entry.matches_sha256(&sha256_hex(&parts[3])));
        assert!(!entry.matches_sha256(&sha256_hex(&parts[2])));
        // The manifest says how long its digests are; none other than 16 or 32 is read.
        let json = serde_json::to_value(&list).unwrap();
        assert_eq!(json["digest"], 16);
        let mut odd = t.clone();
        odd.digest = 8;
        let e = Parts::new(&PartList::Paged(odd), Some(&root))
            .unwrap_err()
            .to_string();
        assert!(e.contains("digest = 8"), "{e}");
    }

    #[test]
    fn a_table_of_whole_sha256s_written_before_reads_as_it_did() {
        let parts: Vec<Vec<u8>> = (0..10).map(|i| format!("part {i}").into_bytes()).collect();
        let slices: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        let mut store = BTreeMap::new();
        let t = write_table_with("docs.json", &slices, 4, (32, false), &mut |name, bytes| {
            store.insert(name.to_string(), bytes.to_vec());
            Ok(())
        })
        .unwrap();
        // As such a manifest says it: no `digest`.
        let mut json = serde_json::to_value(PartList::Paged(t)).unwrap();
        json.as_object_mut().unwrap().remove("digest");
        let list: PartList = serde_json::from_value(json).unwrap();
        let PartList::Paged(t) = &list else {
            panic!("{list:?}")
        };
        assert_eq!(t.digest, 32);
        let files = list.files(&mut reader(&store)).unwrap();
        assert_eq!(files.len(), store.len());
        for f in &files {
            assert_eq!(f.sha256.len(), 64);
            f.verify(&store[crate::layout::artifact_name(&f.path).unwrap()])
                .unwrap();
        }
    }

    #[test]
    fn a_short_sha256_matches_only_the_whole_one_it_starts() {
        let whole = sha256_hex(b"x");
        assert!(crate::sha256_matches(&whole, &whole));
        assert!(crate::sha256_matches(&whole[..32], &whole));
        assert!(!crate::sha256_matches(&whole[..31], &whole));
        assert!(!crate::sha256_matches("", &whole));
        assert!(!crate::sha256_matches(&whole[..32], &whole[..32]));
        assert!(!crate::sha256_matches(&sha256_hex(b"y")[..32], &whole));
    }

    #[test]
    fn the_manifest_entry_round_trips_as_either_form() {
        let (paged, _, _) = table(5, 2);
        let (proofs, _, _) = table_with_proofs(5, 2);
        let (listed, _, _) = table(2, 2);
        for list in [paged, proofs, listed] {
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
