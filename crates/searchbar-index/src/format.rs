//! The binary index format (spec: `docs/index-format.md`).
//!
//! A fixed 72-byte little-endian header, a small bincode-2 metadata block
//! (parameters + section table), then raw little-endian arrays at
//! [`ALIGN`]-byte offsets. Arrays are bulk-decoded in one pass with
//! `chunks_exact` + `from_le_bytes`; the alignment additionally lets a
//! JavaScript reader view them as typed arrays without copying.
//!
//! Loading is defensive: every length is checked against the bytes actually
//! present before anything is allocated from it, every section is
//! checksummed (SHA-256), and every structural invariant that search relies
//! on is validated, so any `Ok` index is safe to search.

use crate::error::FormatError;
use crate::flat::{validate_scales, FlatInt8, Int8Store};
use crate::ivfpq::{IvfPq, ListsFile};
use crate::lists::{ListRows, LIST_DIGEST_LEN};
use crate::pq::PqCodebook;
use crate::rows;
use crate::{Index, MAX_DIM};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// First 8 bytes of every index file.
pub const MAGIC: [u8; 8] = *b"SBINDEX\0";
/// The format version this build writes.
pub const FORMAT_VERSION: u32 = 5;
/// Oldest version this build reads. Version 1 is version 2 without compact
/// IVF-PQ files (its IVF-PQ files always carry the int8 sections), version 2
/// is version 3 without row digests, version 3 is version 4 without lists
/// files, version 4 is version 5 without row trees, so the same reader
/// handles all five.
pub const MIN_READ_VERSION: u32 = 1;
/// Every section starts at a multiple of this many bytes.
pub const ALIGN: u64 = 16;
/// Length of the fixed header.
pub const HEADER_LEN: usize = 72;
/// Upper bound on the metadata block (it holds a few dozen bytes).
pub const MAX_META_LEN: u32 = 64 * 1024;
/// Upper bound on the number of sections.
pub const MAX_SECTIONS: u32 = 16;

/// Header `kind` code of a flat int8 index.
pub const KIND_FLAT_INT8: u32 = 1;
/// Header `kind` code of an IVF-PQ index.
pub const KIND_IVF_PQ: u32 = 2;
/// Header `metric` code for inner product (the only metric).
pub const METRIC_INNER_PRODUCT: u32 = 1;

/// Sections a file can contain. The numeric code is what the table stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SectionKind {
    /// `n * dim` i8: int8 vectors, row-major.
    Int8Codes = 1,
    /// `n` f32: per-vector dequantization scales.
    Int8Scales = 2,
    /// `nlist * dim` f32: coarse centroids.
    CoarseCentroids = 3,
    /// `m * 2^nbits * dim/m` f32: PQ centroids.
    PqCentroids = 4,
    /// `nlist + 1` u64: start of each list in `ListIds`, then the total.
    ListOffsets = 5,
    /// `total` u32: doc ordinals of all lists, list after list.
    ListIds = 6,
    /// `total * m` u8: PQ codes, in `ListIds` order.
    ListCodes = 7,
    /// `n * 8` bytes: digest of each doc's record in the separate rows file.
    RowDigests = 8,
    /// `nlist * 8` bytes: digest of each list's record in the separate lists file.
    ListDigests = 9,
}

impl SectionKind {
    const ALL: [SectionKind; 9] = [
        Self::Int8Codes,
        Self::Int8Scales,
        Self::CoarseCentroids,
        Self::PqCentroids,
        Self::ListOffsets,
        Self::ListIds,
        Self::ListCodes,
        Self::RowDigests,
        Self::ListDigests,
    ];

    fn from_code(code: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|s| *s as u32 == code)
    }

    /// Name used in errors and the spec.
    pub fn name(self) -> &'static str {
        match self {
            Self::Int8Codes => "int8_codes",
            Self::Int8Scales => "int8_scales",
            Self::CoarseCentroids => "coarse_centroids",
            Self::PqCentroids => "pq_centroids",
            Self::ListOffsets => "list_offsets",
            Self::ListIds => "list_ids",
            Self::ListCodes => "list_codes",
            Self::RowDigests => "row_digests",
            Self::ListDigests => "list_digests",
        }
    }
}

impl fmt::Display for SectionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Kind-specific parameters (first item of the metadata block).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Params {
    FlatInt8,
    IvfPq {
        nlist: u32,
        m: u32,
        nbits: u32,
        by_residual: bool,
    },
    /// IVF-PQ with its lists in a lists file (version 4).
    IvfPqLists {
        nlist: u32,
        m: u32,
        nbits: u32,
        by_residual: bool,
        /// Whether each list entry carries its row's digest (external rows).
        row_digests: bool,
    },
    /// IVF-PQ with its lists in a lists file and its external rows checked by a tree over each
    /// list's rows (version 5): each list ends with its tree's root, each record of the rows
    /// file carries its path of `row_levels` digests.
    IvfPqRowTrees {
        nlist: u32,
        m: u32,
        nbits: u32,
        by_residual: bool,
        row_levels: u32,
    },
}

impl Params {
    fn kind_code(&self) -> u32 {
        match self {
            Params::FlatInt8 => KIND_FLAT_INT8,
            Params::IvfPq { .. } | Params::IvfPqLists { .. } | Params::IvfPqRowTrees { .. } => {
                KIND_IVF_PQ
            }
        }
    }
}

/// One row of the section table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct SectionEntry {
    kind: u32,
    offset: u64,
    len: u64,
    sha256: [u8; 32],
}

/// Fixed-int encoding makes every metadata item a fixed size independent of
/// its values (so the writer knows where sections start before filling in
/// their offsets) and keeps the block trivial to read from other languages.
/// The limit caps what bincode may ever pre-allocate.
fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard()
        .with_little_endian()
        .with_fixed_int_encoding()
        .with_limit::<{ MAX_META_LEN as usize }>()
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

fn align_up(x: u64) -> u64 {
    x.div_ceil(ALIGN) * ALIGN
}

// ---------------------------------------------------------------- writing

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn i8_bytes(v: &[i8]) -> Vec<u8> {
    v.iter().map(|&x| x as u8).collect()
}

pub(crate) fn write(index: &Index) -> Vec<u8> {
    let (kind, params, store, mut sections) = match index {
        Index::FlatInt8(f) => (KIND_FLAT_INT8, Params::FlatInt8, Some(&f.store), Vec::new()),
        Index::IvfPq(ivf) => {
            let (nlist, m, nbits, by_residual) = (
                ivf.nlist() as u32,
                ivf.pq.m as u32,
                ivf.pq.nbits,
                ivf.by_residual,
            );
            let mut sections = vec![
                (SectionKind::CoarseCentroids, f32_bytes(&ivf.centroids)),
                (SectionKind::PqCentroids, f32_bytes(&ivf.pq.centroids)),
                (
                    SectionKind::ListOffsets,
                    ivf.offsets
                        .iter()
                        .flat_map(|&o| (o as u64).to_le_bytes())
                        .collect(),
                ),
            ];
            match &ivf.lists_file {
                // A root: nothing per doc; the lists (with the row digests) are in their file.
                Some(file) => {
                    sections.push((SectionKind::ListDigests, file.digests.concat()));
                    let params = match file.rows {
                        ListRows::Tree { levels } => Params::IvfPqRowTrees {
                            nlist,
                            m,
                            nbits,
                            by_residual,
                            row_levels: levels,
                        },
                        rows => Params::IvfPqLists {
                            nlist,
                            m,
                            nbits,
                            by_residual,
                            row_digests: rows == ListRows::Digests,
                        },
                    };
                    (KIND_IVF_PQ, params, None, sections)
                }
                None => {
                    sections.push((
                        SectionKind::ListIds,
                        ivf.ids.iter().flat_map(|x| x.to_le_bytes()).collect(),
                    ));
                    sections.push((SectionKind::ListCodes, ivf.codes.clone()));
                    let params = Params::IvfPq {
                        nlist,
                        m,
                        nbits,
                        by_residual,
                    };
                    match &ivf.digests {
                        // External rows: the digests ship, the (attached) store never does.
                        Some(d) => {
                            sections.push((SectionKind::RowDigests, d.concat()));
                            (KIND_IVF_PQ, params, None, sections)
                        }
                        None => (KIND_IVF_PQ, params, ivf.store.as_ref(), sections),
                    }
                }
            }
        }
    };
    // A compact IVF-PQ index simply has no int8 sections.
    if let Some(store) = store {
        sections.insert(0, (SectionKind::Int8Codes, i8_bytes(&store.codes)));
        sections.insert(1, (SectionKind::Int8Scales, f32_bytes(&store.scales)));
    }

    let encode_meta = |entries: &[SectionEntry]| -> Vec<u8> {
        // Encoding plain structs into a Vec cannot fail.
        let mut meta = bincode::serde::encode_to_vec(&params, bincode_config()).unwrap_or_default();
        for e in entries {
            meta.extend(bincode::serde::encode_to_vec(e, bincode_config()).unwrap_or_default());
        }
        meta
    };
    let mut entries: Vec<SectionEntry> = sections
        .iter()
        .map(|(k, bytes)| SectionEntry {
            kind: *k as u32,
            offset: 0,
            len: bytes.len() as u64,
            sha256: sha256(&[bytes]),
        })
        .collect();
    let meta_len = encode_meta(&entries).len();
    let mut pos = align_up((HEADER_LEN + meta_len) as u64);
    for e in &mut entries {
        e.offset = pos;
        pos = align_up(pos + e.len);
    }
    let meta = encode_meta(&entries);
    debug_assert_eq!(meta.len(), meta_len);

    let mut out = Vec::with_capacity(pos as usize);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&METRIC_INNER_PRODUCT.to_le_bytes());
    out.extend_from_slice(&(index.dim() as u32).to_le_bytes());
    out.extend_from_slice(&(index.len() as u64).to_le_bytes());
    out.extend_from_slice(&(meta.len() as u32).to_le_bytes());
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    let digest = sha256(&[&out, &meta]);
    out.extend_from_slice(&digest);
    out.extend_from_slice(&meta);
    for (e, (_, bytes)) in entries.iter().zip(&sections) {
        out.resize(e.offset as usize, 0);
        out.extend_from_slice(bytes);
    }
    out.resize(pos as usize, 0);
    out
}

// ---------------------------------------------------------------- reading

/// The fixed header, decoded but not yet validated beyond magic/version.
#[derive(Debug, Clone, Copy)]
struct Header {
    version: u32,
    kind: u32,
    metric: u32,
    dim: u32,
    n_docs: u64,
    meta_len: u32,
    section_count: u32,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Magic, version and header length checks, in that order, so a file of a
/// newer version reports its version rather than a checksum failure.
fn read_header(bytes: &[u8]) -> Result<Header, FormatError> {
    let file_len = bytes.len() as u64;
    let magic_prefix = &bytes[..bytes.len().min(MAGIC.len())];
    if magic_prefix != &MAGIC[..magic_prefix.len()] {
        return Err(FormatError::BadMagic);
    }
    if bytes.len() >= 12 {
        let version = u32_at(bytes, 8);
        if !(MIN_READ_VERSION..=FORMAT_VERSION).contains(&version) {
            return Err(FormatError::UnsupportedVersion(version));
        }
    }
    if bytes.len() < HEADER_LEN {
        return Err(FormatError::Truncated {
            what: "header",
            needed: HEADER_LEN as u64,
            available: file_len,
        });
    }
    Ok(Header {
        version: u32_at(bytes, 8),
        kind: u32_at(bytes, 12),
        metric: u32_at(bytes, 16),
        dim: u32_at(bytes, 20),
        n_docs: u64_at(bytes, 24),
        meta_len: u32_at(bytes, 32),
        section_count: u32_at(bytes, 36),
    })
}

/// Header plus decoded metadata, before section validation.
struct Parsed {
    header: Header,
    params: Params,
    entries: Vec<SectionEntry>,
    data_start: u64,
}

/// Reads header and metadata. `verify` is false only for the test-only
/// [`reseal`] helper, which must read files whose checksums are stale.
fn parse_meta(bytes: &[u8], verify: bool) -> Result<Parsed, FormatError> {
    let header = read_header(bytes)?;
    if header.meta_len > MAX_META_LEN {
        return Err(FormatError::InvalidField {
            field: "meta_len",
            value: header.meta_len.into(),
            reason: "exceeds 65536",
        });
    }
    if header.section_count > MAX_SECTIONS {
        return Err(FormatError::InvalidField {
            field: "section_count",
            value: header.section_count.into(),
            reason: "exceeds 16",
        });
    }
    let meta_end = HEADER_LEN + header.meta_len as usize;
    if bytes.len() < meta_end {
        return Err(FormatError::Truncated {
            what: "metadata",
            needed: meta_end as u64,
            available: bytes.len() as u64,
        });
    }
    let meta = &bytes[HEADER_LEN..meta_end];
    if verify && sha256(&[&bytes[..40], meta]) != bytes[40..HEADER_LEN] {
        return Err(FormatError::HeaderChecksumMismatch);
    }
    let bad = |e: bincode::error::DecodeError| FormatError::BadMetadata(e.to_string());
    let (params, mut used): (Params, usize) =
        bincode::serde::decode_from_slice(meta, bincode_config()).map_err(bad)?;
    // section_count <= MAX_SECTIONS was checked above: this allocation is tiny.
    let mut entries = Vec::with_capacity(header.section_count as usize);
    for _ in 0..header.section_count {
        let (entry, n): (SectionEntry, usize) =
            bincode::serde::decode_from_slice(&meta[used..], bincode_config()).map_err(bad)?;
        used += n;
        entries.push(entry);
    }
    if used != meta.len() {
        return Err(FormatError::BadMetadata(format!(
            "{} trailing bytes after the section table",
            meta.len() - used
        )));
    }
    Ok(Parsed {
        header,
        params,
        entries,
        data_start: meta_end as u64,
    })
}

/// Located, length-checked and checksummed section bytes.
struct Sections<'a> {
    found: Vec<(SectionKind, &'a [u8])>,
}

impl<'a> Sections<'a> {
    fn has(&self, kind: SectionKind) -> bool {
        self.found.iter().any(|(k, _)| *k == kind)
    }

    fn get(&self, kind: SectionKind) -> &'a [u8] {
        // Presence of every required section is checked in `locate`.
        self.found
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(&[][..], |(_, b)| *b)
    }
}

/// Resolves the table against the file: known kinds, no duplicates, all the
/// sections `required` and none but those and `optional`, aligned, inside the
/// file, non-overlapping.
fn locate<'a>(
    bytes: &'a [u8],
    parsed: &Parsed,
    required: &[SectionKind],
    optional: &[SectionKind],
) -> Result<Sections<'a>, FormatError> {
    let file_len = bytes.len() as u64;
    let mut found: Vec<(SectionKind, u64, u64)> = Vec::new();
    for e in &parsed.entries {
        let kind = SectionKind::from_code(e.kind).ok_or(FormatError::UnknownSection(e.kind))?;
        if found.iter().any(|(k, ..)| *k == kind) {
            return Err(FormatError::DuplicateSection(kind));
        }
        if !required.contains(&kind) && !optional.contains(&kind) {
            return Err(FormatError::UnexpectedSection(kind));
        }
        if e.offset % ALIGN != 0 {
            return Err(FormatError::Misaligned {
                section: kind,
                offset: e.offset,
            });
        }
        if e.offset < parsed.data_start {
            return Err(FormatError::SectionOverlap(kind));
        }
        match e.offset.checked_add(e.len) {
            Some(end) if end <= file_len => found.push((kind, e.offset, end)),
            end => {
                return Err(FormatError::SectionTruncated {
                    section: kind,
                    end: end.unwrap_or(u64::MAX),
                    file_len,
                })
            }
        }
    }
    if let Some(missing) = required
        .iter()
        .find(|r| !found.iter().any(|(k, ..)| k == *r))
    {
        return Err(FormatError::MissingSection(*missing));
    }
    let mut by_offset = found.clone();
    by_offset.sort_by_key(|&(_, start, _)| start);
    if let Some(w) = by_offset.windows(2).find(|w| w[1].1 < w[0].2) {
        return Err(FormatError::SectionOverlap(w[1].0));
    }
    // Bounds were checked against `file_len`, so these casts and slices are in range.
    Ok(Sections {
        found: found
            .into_iter()
            .map(|(k, start, end)| (k, &bytes[start as usize..end as usize]))
            .collect(),
    })
}

fn check_len(sections: &Sections<'_>, kind: SectionKind, expected: u64) -> Result<(), FormatError> {
    let found = sections.get(kind).len() as u64;
    if found != expected {
        return Err(FormatError::SectionLength {
            section: kind,
            expected,
            found,
        });
    }
    Ok(())
}

/// `a * b`, or a "count exceeds file size" error naming `field` when the
/// product overflows or cannot fit in the file.
fn bounded_mul(field: &'static str, a: u64, b: u64, file_len: u64) -> Result<u64, FormatError> {
    match a.checked_mul(b) {
        Some(p) if p <= file_len => Ok(p),
        _ => Err(FormatError::CountExceedsFileSize {
            field,
            value: a,
            file_len,
        }),
    }
}

fn verify_checksums(parsed: &Parsed, sections: &Sections<'_>) -> Result<(), FormatError> {
    for e in &parsed.entries {
        // `locate` accepted every entry, so the kind is known.
        if let Some(kind) = SectionKind::from_code(e.kind) {
            if sha256(&[sections.get(kind)]) != e.sha256 {
                return Err(FormatError::ChecksumMismatch(kind));
            }
        }
    }
    Ok(())
}

// Bulk decoders: lengths were validated to be exact multiples beforehand,
// and each output is at most as large as its input section.
fn to_f32(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn to_u32(b: &[u8]) -> Vec<u32> {
    b.chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn to_i8(b: &[u8]) -> Vec<i8> {
    b.iter().map(|&x| x as i8).collect()
}

fn invalid(section: SectionKind, reason: impl Into<String>) -> FormatError {
    FormatError::InvalidSection {
        section,
        reason: reason.into(),
    }
}

pub(crate) fn read(bytes: &[u8]) -> Result<Index, FormatError> {
    let parsed = parse_meta(bytes, true)?;
    let file_len = bytes.len() as u64;
    let h = parsed.header;
    if h.metric != METRIC_INNER_PRODUCT {
        return Err(FormatError::UnsupportedMetric(h.metric));
    }
    if h.kind != KIND_FLAT_INT8 && h.kind != KIND_IVF_PQ {
        return Err(FormatError::UnknownKind(h.kind));
    }
    if parsed.params.kind_code() != h.kind {
        return Err(FormatError::KindMismatch {
            header: h.kind,
            meta: parsed.params.kind_code(),
        });
    }
    if h.dim == 0 || h.dim as usize > MAX_DIM {
        return Err(FormatError::InvalidField {
            field: "dim",
            value: h.dim.into(),
            reason: "must be in 1..=65536",
        });
    }
    if h.n_docs > u64::from(u32::MAX) {
        return Err(FormatError::InvalidField {
            field: "n_docs",
            value: h.n_docs,
            reason: "doc ordinals are u32",
        });
    }
    let (dim, n) = (u64::from(h.dim), h.n_docs);
    // Only computed where the int8 store is present (a compact IVF-PQ has none).
    let codes_len = || bounded_mul("n_docs", n, dim, file_len);
    let scales_len = || bounded_mul("n_docs", n, 4, file_len);

    use SectionKind::*;
    let index = match parsed.params {
        Params::FlatInt8 => {
            let sections = locate(bytes, &parsed, &[Int8Codes, Int8Scales], &[])?;
            check_len(&sections, Int8Codes, codes_len()?)?;
            check_len(&sections, Int8Scales, scales_len()?)?;
            verify_checksums(&parsed, &sections)?;
            Index::FlatInt8(FlatInt8 {
                store: read_store(&sections, h.dim as usize)?,
            })
        }
        Params::IvfPq {
            nlist,
            m,
            nbits,
            by_residual,
        } => read_ivf(bytes, &parsed, (nlist, m, nbits, by_residual), None)?,
        Params::IvfPqLists {
            nlist,
            m,
            nbits,
            by_residual,
            row_digests,
        } => {
            if h.version < 4 {
                return Err(FormatError::BadMetadata(format!(
                    "lists in a lists file need format version 4, the file says {}",
                    h.version
                )));
            }
            let rows = if row_digests {
                ListRows::Digests
            } else {
                ListRows::None
            };
            read_ivf(bytes, &parsed, (nlist, m, nbits, by_residual), Some(rows))?
        }
        Params::IvfPqRowTrees {
            nlist,
            m,
            nbits,
            by_residual,
            row_levels,
        } => {
            if h.version < 5 {
                return Err(FormatError::BadMetadata(format!(
                    "row trees need format version 5, the file says {}",
                    h.version
                )));
            }
            // A list holds at most every doc, and doc ordinals are u32.
            if row_levels > 32 {
                return Err(FormatError::InvalidField {
                    field: "row_levels",
                    value: row_levels.into(),
                    reason: "must be at most 32",
                });
            }
            let rows = ListRows::Tree { levels: row_levels };
            read_ivf(bytes, &parsed, (nlist, m, nbits, by_residual), Some(rows))?
        }
    };
    Ok(index)
}

/// An IVF-PQ file: `params` is (nlist, m, nbits, by_residual); `lists` is `None` for lists
/// inside the file, else what the lists file says of the rows (a root).
fn read_ivf(
    bytes: &[u8],
    parsed: &Parsed,
    (nlist, m, nbits, by_residual): (u32, u32, u32, bool),
    lists: Option<ListRows>,
) -> Result<Index, FormatError> {
    use SectionKind::*;
    let h = parsed.header;
    let file_len = bytes.len() as u64;
    let (dim, n) = (u64::from(h.dim), h.n_docs);
    check_ivf_params(&h, nlist, m, nbits)?;
    let sections = match lists {
        Some(_) => locate(
            bytes,
            parsed,
            &[CoarseCentroids, PqCentroids, ListOffsets, ListDigests],
            &[],
        )?,
        // The int8 re-ranking store: both sections, or neither (compact, or external with
        // row digests from version 3 on).
        None => locate(
            bytes,
            parsed,
            &[
                CoarseCentroids,
                PqCentroids,
                ListOffsets,
                ListIds,
                ListCodes,
            ],
            if h.version >= 3 {
                &[Int8Codes, Int8Scales, RowDigests]
            } else {
                &[Int8Codes, Int8Scales]
            },
        )?,
    };
    let nlist_dim = bounded_mul("nlist", nlist.into(), dim, file_len)?;
    check_len(
        &sections,
        CoarseCentroids,
        bounded_mul("nlist", nlist_dim, 4, file_len)?,
    )?;
    // m * ksub * dsub = ksub * dim floats.
    check_len(&sections, PqCentroids, (1u64 << nbits) * dim * 4)?;
    let offsets_len = bounded_mul("nlist", u64::from(nlist) + 1, 8, file_len)?;
    check_len(&sections, ListOffsets, offsets_len)?;
    let has_store = sections.has(Int8Codes);
    let external = sections.has(RowDigests);
    // Entries in the lists: in the file, counted by its ids; in a lists file, every doc (the
    // root's offsets say so, checked by `validate`).
    let total = match lists {
        Some(_) => {
            let digests_len = bounded_mul("nlist", nlist.into(), LIST_DIGEST_LEN as u64, file_len)?;
            check_len(&sections, ListDigests, digests_len)?;
            n
        }
        None => {
            if external && has_store {
                return Err(FormatError::UnexpectedSection(RowDigests));
            }
            if external {
                check_len(
                    &sections,
                    RowDigests,
                    bounded_mul("n_docs", n, 8, file_len)?,
                )?;
            }
            if has_store != sections.has(Int8Scales) {
                return Err(FormatError::MissingSection(if has_store {
                    Int8Scales
                } else {
                    Int8Codes
                }));
            }
            if has_store {
                check_len(
                    &sections,
                    Int8Codes,
                    bounded_mul("n_docs", n, dim, file_len)?,
                )?;
                check_len(
                    &sections,
                    Int8Scales,
                    bounded_mul("n_docs", n, 4, file_len)?,
                )?;
            }
            let ids_len = sections.get(ListIds).len() as u64;
            if !ids_len.is_multiple_of(4) {
                return Err(invalid(ListIds, "length is not a multiple of 4"));
            }
            let total = ids_len / 4;
            // Every doc is in exactly one list, which also bounds n_docs by the file.
            if total != n {
                return Err(invalid(
                    ListIds,
                    format!("{total} list entries for {n} docs (every doc must be in one list)"),
                ));
            }
            check_len(
                &sections,
                ListCodes,
                bounded_mul("list entries", total, m.into(), file_len)?,
            )?;
            total
        }
    };
    verify_checksums(parsed, &sections)?;
    let store = has_store
        .then(|| read_store(&sections, h.dim as usize))
        .transpose()?;
    let pq = PqCodebook::new(
        h.dim as usize,
        m as usize,
        nbits,
        to_f32(sections.get(PqCentroids)),
    )
    .map_err(|e| invalid(PqCentroids, e.to_string()))?;
    let ivf = IvfPq {
        dim: h.dim as usize,
        centroids: to_f32(sections.get(CoarseCentroids)),
        pq,
        by_residual,
        offsets: read_offsets(sections.get(ListOffsets), total),
        // Empty in a root: nothing is allocated from its doc count until the lists come.
        ids: to_u32(sections.get(ListIds)),
        codes: sections.get(ListCodes).to_vec(),
        // n_docs <= u32::MAX was checked by the caller.
        n_docs: usize::try_from(n).unwrap_or(usize::MAX),
        store,
        digests: match lists {
            Some(ListRows::None) => None,
            Some(_) => Some(Vec::new()),
            None => external.then(|| rows::digests(sections.get(RowDigests))),
        },
        lists_file: lists.map(|rows| ListsFile {
            digests: rows::digests(sections.get(ListDigests)),
            attached: false,
            rows,
            row_roots: Vec::new(),
        }),
    };
    ivf.validate().map_err(|(s, r)| invalid(s, r))?;
    Ok(Index::IvfPq(ivf))
}

fn check_ivf_params(h: &Header, nlist: u32, m: u32, nbits: u32) -> Result<(), FormatError> {
    if nlist == 0 {
        return Err(FormatError::InvalidField {
            field: "nlist",
            value: 0,
            reason: "must be >= 1",
        });
    }
    if m == 0 || m > h.dim || !h.dim.is_multiple_of(m) {
        return Err(FormatError::InvalidField {
            field: "m",
            value: m.into(),
            reason: "must divide dim",
        });
    }
    if !(1..=8).contains(&nbits) {
        return Err(FormatError::InvalidField {
            field: "nbits",
            value: nbits.into(),
            reason: "must be in 1..=8",
        });
    }
    Ok(())
}

/// The list offsets, each clamped to `total + 1`: offsets beyond the entry count are rejected
/// by `validate`, and the clamp keeps the cast lossless on 32-bit targets too.
fn read_offsets(b: &[u8], total: u64) -> Vec<usize> {
    b.chunks_exact(8)
        .map(|c| {
            let v = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            usize::try_from(v.min(total + 1)).unwrap_or(usize::MAX)
        })
        .collect()
}

fn read_store(sections: &Sections<'_>, dim: usize) -> Result<Int8Store, FormatError> {
    let scales = to_f32(sections.get(SectionKind::Int8Scales));
    validate_scales(&scales).map_err(|r| invalid(SectionKind::Int8Scales, r))?;
    Ok(Int8Store {
        dim,
        codes: to_i8(sections.get(SectionKind::Int8Codes)),
        scales,
    })
}

/// Test/fuzz helper: recomputes every checksum of a (possibly mutated) file
/// so that mutations reach the structural validation behind the checksums.
/// Leaves bytes it cannot parse alone. Not for production use.
pub(crate) fn reseal(bytes: &mut [u8]) {
    let Ok(header) = read_header(bytes) else {
        return;
    };
    let meta_end = HEADER_LEN.saturating_add(header.meta_len as usize);
    if header.meta_len > MAX_META_LEN || bytes.len() < meta_end {
        return;
    }
    if let Ok(parsed) = parse_meta(bytes, false) {
        let file_len = bytes.len() as u64;
        let mut meta =
            bincode::serde::encode_to_vec(&parsed.params, bincode_config()).unwrap_or_default();
        for e in &parsed.entries {
            let mut e = e.clone();
            if let Some(end) = e.offset.checked_add(e.len).filter(|&end| end <= file_len) {
                e.sha256 = sha256(&[&bytes[e.offset as usize..end as usize]]);
            }
            meta.extend(bincode::serde::encode_to_vec(&e, bincode_config()).unwrap_or_default());
        }
        if meta.len() == meta_end - HEADER_LEN {
            bytes[HEADER_LEN..meta_end].copy_from_slice(&meta);
        }
    }
    let digest = sha256(&[&bytes[..40], &bytes[HEADER_LEN..meta_end]]);
    bytes[40..HEADER_LEN].copy_from_slice(&digest);
}
