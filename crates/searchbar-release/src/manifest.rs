use crate::fusion::{Fusion, SearchMode};
use crate::layout::{MANIFEST_NAME, RELEASES_DIR};
use crate::table::PartList;
use crate::ReleaseError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Version of the manifest layout this build writes. Version 4's part tables carry proofs
/// (`proofs`: each part checks against its page's tree root, without its page); version 3's
/// keep 16 bytes of each sha256 (`digest`); version 2 may page its document shards and lexical
/// fragments ([`PartList::Paged`]) with whole ones; version 1 lists them all. All four read: a
/// build older than a manifest refuses it by its version, not by a field it does not know.
pub const MANIFEST_FORMAT: u32 = 4;
const OLDEST_MANIFEST_FORMAT: u32 = 1;

/// The live-release pointer: the one file a deploy replaces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pointer {
    pub release: String,
    /// Manifest path relative to the target root.
    pub manifest: String,
    /// When the pointer was written (RFC 3339, UTC).
    pub updated: String,
    /// Releases that were live before this one, oldest first (bounded); rollback pops it.
    /// Kept inside the pointer so history and the live release change in one atomic write.
    #[serde(default)]
    pub history: Vec<String>,
}

impl Pointer {
    pub fn for_release(release: &str, updated: String, history: Vec<String>) -> Self {
        Self {
            release: release.to_string(),
            manifest: format!("{RELEASES_DIR}/{release}/{MANIFEST_NAME}"),
            updated,
            history,
        }
    }
}

/// One artifact: where it is (relative to the release directory), its size and sha256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRef {
    pub path: String,
    pub bytes: u64,
    /// Lower-case hex: the whole sha256, or (a part table's entries) its first 16 bytes.
    pub sha256: String,
}

impl FileRef {
    /// Checks `bytes` against this entry; the error names the file.
    pub fn verify(&self, bytes: &[u8]) -> Result<(), ReleaseError> {
        if bytes.len() as u64 != self.bytes {
            return Err(ReleaseError::SizeMismatch {
                file: self.path.clone(),
                bytes: bytes.len() as u64,
                expected: self.bytes,
            });
        }
        let actual = sha256_hex(bytes);
        if !self.matches_sha256(&actual) {
            return Err(ReleaseError::HashMismatch {
                file: self.path.clone(),
                expected: self.sha256.clone(),
                actual,
            });
        }
        Ok(())
    }

    /// Whether `whole` (a sha256 in lower-case hex) is this entry's ([`sha256_matches`]).
    pub fn matches_sha256(&self, whole: &str) -> bool {
        sha256_matches(&self.sha256, whole)
    }
}

/// Whether `whole` (a sha256 in lower-case hex) is the one an entry's `sha256` names: equal to
/// it, or where the entry holds the first [`SHORT_SHA256`] bytes of one (a part table's),
/// starting with them. Shorter is never taken: an empty or short entry matches nothing.
pub fn sha256_matches(entry: &str, whole: &str) -> bool {
    whole.len() == 64 && entry.len() >= 2 * SHORT_SHA256 && whole.starts_with(entry)
}

/// The bytes of sha256 a part table keeps for each page and part: 128 bits, beyond any search
/// for other bytes with the same digest, at half the bytes a query reads of a table.
pub const SHORT_SHA256: usize = 16;

/// Everything a client downloads, by role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Files {
    pub encoder: FileRef,
    pub tokenizer: FileRef,
    pub index: FileRef,
    /// Display metadata in shards of `docs_per_shard` documents, in index ordinal order.
    pub docs: PartList,
    pub docs_per_shard: usize,
    /// The web bundle (JavaScript, WebAssembly, styles) the release's page loads.
    #[serde(default)]
    pub app: Vec<FileRef>,
    /// `rerank_store = "external"`: the index's re-ranking rows. Never downloaded whole by a
    /// page: each query fetches its candidates' records with range requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<FileRef>,
    /// `lists_file = true`: the index's inverted lists. Never downloaded whole by a page: each
    /// query fetches the lists it probes with range requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lists: Option<FileRef>,
    /// The lexical index (docs/lexical-format.md): fetched whole by the pipeline, by fragment
    /// as a page's queries need them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lexical: Option<LexicalFiles>,
    /// The encoder's word-embedding table, kept out of `encoder` (absent where the encoder
    /// holds its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<TokenFiles>,
}

/// The encoder's word embeddings as rows (docs/ARCHITECTURE.md, "Token rows"): a page reads
/// the rows of its queries' tokens by HTTP range and checks each against its digest. Both
/// depend on the model alone, so their names stay the same across data changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenFiles {
    /// One row per token id; never downloaded whole by a page.
    pub rows: FileRef,
    /// Each row's digest, downloaded with the encoder.
    pub digests: FileRef,
}

/// The lexical index's files: its root, then its fragments in the root's numbering.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LexicalFiles {
    pub root: FileRef,
    pub fragments: PartList,
}

impl Files {
    /// The files the manifest names itself: of a paged part list, only its table's root
    /// ([`Files::artifacts`] has every file).
    pub fn named(&self) -> impl Iterator<Item = &FileRef> {
        [&self.encoder, &self.tokenizer, &self.index]
            .into_iter()
            .chain(named_parts(&self.docs))
            .chain(self.app.iter())
            .chain(self.rows.iter())
            .chain(self.lists.iter())
            .chain(
                self.lexical
                    .iter()
                    .flat_map(|l| std::iter::once(&l.root).chain(named_parts(&l.fragments))),
            )
            .chain(self.tokens.iter().flat_map(|t| [&t.rows, &t.digests]))
    }

    /// Every artifact, for copying, verifying and garbage collection: the named files and the
    /// pages and parts of each part table, whose root and pages are read through `read`
    /// (bytes of an entry, from wherever the release is) and checked before they count.
    pub fn artifacts<E: From<ReleaseError>>(
        &self,
        read: &mut dyn FnMut(&FileRef) -> Result<Vec<u8>, E>,
    ) -> Result<Vec<FileRef>, E> {
        let mut all: Vec<FileRef> = self.named().cloned().collect();
        for list in std::iter::once(&self.docs).chain(self.lexical.as_ref().map(|l| &l.fragments)) {
            if let Some(root) = list.root() {
                all.extend(list.files(read)?.into_iter().filter(|f| f != root));
            }
        }
        Ok(all)
    }

    /// The files a client reads by HTTP range: the re-ranking rows, the inverted lists and the
    /// token rows. A host must serve them as they are (never from a compressed variant).
    pub fn fetched_by_range(&self) -> impl Iterator<Item = &FileRef> {
        self.rows
            .iter()
            .chain(self.lists.iter())
            .chain(self.tokens.as_ref().map(|t| &t.rows))
    }

    /// Whether a client reads `file` by HTTP range ([`Files::fetched_by_range`]); every other
    /// artifact is downloaded whole.
    pub fn is_fetched_by_range(&self, file: &FileRef) -> bool {
        self.fetched_by_range().any(|f| f.path == file.path)
    }
}

/// The files a part list names in the manifest: all its parts, or its table's root.
fn named_parts(list: &PartList) -> Vec<&FileRef> {
    match list {
        PartList::Listed(files) => files.iter().collect(),
        PartList::Paged(t) => vec![&t.root],
    }
}

/// How the encoder must be run to reproduce the pipeline's embeddings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelInfo {
    pub name: String,
    /// sha256 of the upstream ONNX file the prepared encoder was made from.
    pub source_sha256: String,
    pub dim: usize,
    pub max_tokens: usize,
    /// `"mean"` or `"cls"`.
    pub pooling: String,
    pub normalize: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataInfo {
    pub fingerprint: String,
    pub documents: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineInfo {
    pub version: String,
    /// Hash of the pipeline's source (or binary), so a code change is a new release.
    pub source_hash: String,
}

/// Query-time knobs the browser must use to match the evaluation. The ranking keys default
/// to what a release without a lexical index did (dense alone), so older manifests still read.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchInfo {
    pub k: usize,
    pub nprobe: usize,
    pub rerank: usize,
    #[serde(default = "SearchMode::dense")]
    pub mode: SearchMode,
    #[serde(default)]
    pub fusion: Fusion,
    /// Convex fusion: the dense list's weight (the lexical list gets 1 − alpha).
    #[serde(default = "one")]
    pub alpha: f32,
    /// A query whose best dense score is below this, and that matches no term, shows no
    /// results (chosen by the pipeline's evaluation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor: Option<f32>,
}

fn one() -> f32 {
    1.0
}

impl SearchInfo {
    /// What [`crate::rank`] needs of this section.
    pub fn ranking(&self) -> crate::Ranking {
        crate::Ranking {
            mode: self.mode,
            fusion: self.fusion,
            alpha: self.alpha,
            floor: self.floor,
        }
    }
}

/// The evaluation summary shown in the footer and compared by the next gate.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evaluation {
    /// nDCG@10 of the shipped (quantized) index on the judged queries.
    pub ndcg_at_10: Option<f64>,
    /// nDCG@10 with exact fp32 search, for the quantization cost.
    pub ndcg_at_10_exact: Option<f64>,
    pub mrr_at_10: Option<f64>,
    pub recall_at_100: Option<f64>,
    /// recall@10 of the shipped index against exact search.
    pub recall_at_10: f64,
    pub queries: usize,
    /// Deployed with `--force` despite a failed gate.
    pub forced: bool,
    /// nDCG@10 of each ranking on the same judged queries (`ndcg_at_10` is the shipped one's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modes: Option<ModeScores>,
}

/// nDCG@10 per ranking mode, side by side.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModeScores {
    pub lexical: Option<f64>,
    pub dense: Option<f64>,
    pub hybrid: Option<f64>,
}

/// A release's manifest: what it contains and how it was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: u32,
    pub release: String,
    /// RFC 3339, UTC.
    pub created: String,
    pub pipeline: PipelineInfo,
    pub model: ModelInfo,
    pub data: DataInfo,
    /// Index hyper-parameters as configured (kind, nlist, m, nbits, ...).
    pub params: serde_json::Value,
    pub search: SearchInfo,
    pub evaluation: Evaluation,
    pub files: Files,
    /// The release's page ([`PAGE_NAME`](crate::PAGE_NAME), path relative to the release
    /// directory), so that verifying a release covers every byte it serves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<FileRef>,
}

impl Manifest {
    /// Parses and checks the format version; `file` names the source in errors.
    pub fn from_json(bytes: &[u8], file: &str) -> Result<Self, ReleaseError> {
        #[derive(Deserialize)]
        struct Version {
            format: u32,
        }
        let invalid = |e: serde_json::Error| ReleaseError::Invalid {
            file: file.to_string(),
            message: e.to_string(),
        };
        let v: Version = serde_json::from_slice(bytes).map_err(invalid)?;
        if !(OLDEST_MANIFEST_FORMAT..=MANIFEST_FORMAT).contains(&v.format) {
            return Err(ReleaseError::UnsupportedFormat {
                found: v.format,
                oldest: OLDEST_MANIFEST_FORMAT,
                newest: MANIFEST_FORMAT,
            });
        }
        serde_json::from_slice(bytes).map_err(invalid)
    }

    pub fn to_json(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).expect("manifest serializes");
        out.push(b'\n');
        out
    }

    /// The lexical index, where the search mode reads it.
    pub fn lexical(&self) -> Option<&LexicalFiles> {
        self.files
            .lexical
            .as_ref()
            .filter(|_| self.search.mode.uses_lexical())
    }

    /// What a page downloads before it can search words: the lexical root where the mode
    /// reads it, the root of the part table that names the lexical fragments, where they
    /// are paged, and the stemmer module of the index's language ([`Manifest::stemmer`]).
    /// The release page asks for them as it opens, beside its own module
    /// (`<link rel=preload>`, written by export).
    pub fn record_files(&self) -> impl Iterator<Item = &FileRef> {
        let lexical = self.lexical();
        lexical
            .map(|l| &l.root)
            .into_iter()
            .chain(lexical.and_then(|l| l.fragments.root()))
            .chain(self.stemmer().map(|(f, _)| f))
    }

    /// The stemmer module among the page's files, and its language, where the mode reads the
    /// lexical index: the page analyses words with it ([`stemmer_language`]). A release
    /// whose index does not stem (`language = "none"`) carries none.
    pub fn stemmer(&self) -> Option<(&FileRef, &str)> {
        self.lexical()?;
        self.files.app.iter().find_map(|f| {
            let name = crate::layout::artifact_name(&f.path)?;
            Some((f, stemmer_language(name)?))
        })
    }

    /// The root of the part table that names the document shards, where they are paged: a
    /// page needs it only once a query is ranked, to name the shards of its results, so it
    /// asks for it when its module starts rather than beside the module, where it would
    /// share the link with it (40 KB at 1,000,000 documents).
    pub fn shard_table_root(&self) -> Option<&FileRef> {
        self.files.docs.root()
    }
}

/// What the page's stemmer modules are named in a web bundle: `searchbar-stem-<language>-<16
/// hex>.wasm` (scripts/build-web.sh builds one a language, web/stem). Export puts the
/// lexical index's own in the release, and no other.
pub const STEMMER_PREFIX: &str = "searchbar-stem-";

/// The language of the stemmer module file `name` ([`STEMMER_PREFIX`]); `None` where `name`
/// is not one.
pub fn stemmer_language(name: &str) -> Option<&str> {
    let rest = name.strip_prefix(STEMMER_PREFIX)?.strip_suffix(".wasm")?;
    let (language, hash) = rest.rsplit_once('-')?;
    (!language.is_empty() && hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
        .then_some(language)
}

/// Lower-case hex sha256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Content-addressed file name: `encoder.onnx` + hash -> `encoder-<16 hex>.onnx`.
/// Same bytes, same name, so a CDN and the browser cache it across releases.
pub fn content_name(name: &str, sha256: &str) -> String {
    let short = &sha256[..16.min(sha256.len())];
    match name.split_once('.') {
        Some((stem, ext)) => format!("{stem}-{short}.{ext}"),
        None => format!("{name}-{short}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stemmer_module_is_known_by_its_name() {
        assert_eq!(
            stemmer_language("searchbar-stem-french-0123456789abcdef.wasm"),
            Some("french")
        );
        for other in [
            "searchbar-stem-french-0123456789abcdef.wasm.br",
            "searchbar-stem-french.wasm",
            "searchbar-stem--0123456789abcdef.wasm",
            "searchbar-stem-french-0123456789abcdeg.wasm",
            "searchbar-web-0123456789abcdef_bg.wasm",
        ] {
            assert_eq!(stemmer_language(other), None, "{other}");
        }
    }

    #[test]
    fn content_names_keep_the_extension() {
        let h = sha256_hex(b"x");
        assert_eq!(
            content_name("encoder.onnx", &h),
            format!("encoder-{}.onnx", &h[..16])
        );
        assert_eq!(
            content_name("docs-0.json", &h),
            format!("docs-0-{}.json", &h[..16])
        );
        assert_eq!(content_name("blob", &h), format!("blob-{}", &h[..16]));
    }

    #[test]
    fn verify_names_the_file_on_mismatch() {
        let r = FileRef {
            path: "../../files/a.bin".into(),
            bytes: 3,
            sha256: sha256_hex(b"abc"),
        };
        r.verify(b"abc").unwrap();
        let e = r.verify(b"abd").unwrap_err().to_string();
        assert!(
            e.contains("../../files/a.bin") && e.contains("sha256"),
            "{e}"
        );
        let e = r.verify(b"ab").unwrap_err().to_string();
        assert!(e.contains("2 bytes"), "{e}");
    }

    #[test]
    fn other_manifest_formats_are_refused() {
        for format in [0, MANIFEST_FORMAT + 1] {
            let e = Manifest::from_json(format!(r#"{{"format": {format}}}"#).as_bytes(), "m.json")
                .unwrap_err();
            assert!(
                e.to_string().contains(&format!("format {format} is not")),
                "{e}"
            );
        }
        let e = Manifest::from_json(b"{", "m.json").unwrap_err();
        assert!(e.to_string().starts_with("m.json:"), "{e}");
    }
}
