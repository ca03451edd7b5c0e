//! Round trips, search behaviour and load errors of both index kinds.

mod common;

use common::{ip, Fixture};
use searchbar_index::format::{HEADER_LEN, MAGIC};
use searchbar_index::metrics::recall_at_k;
use searchbar_index::testing::{exact_search, reseal};
use searchbar_index::{
    AllowList, FlatInt8, FormatError, Hit, Index, IndexKind, Int8Store, InvertedList, IvfPq,
    PqCodebook, SearchError, SearchParams, SectionKind,
};

const ENTRY_LEN: usize = 4 + 8 + 8 + 32;

fn docs(hits: &[Hit]) -> Vec<u32> {
    hits.iter().map(|h| h.doc).collect()
}

fn all_params(index: &Index) -> SearchParams {
    SearchParams {
        nprobe: usize::MAX,
        rerank: index.len(),
    }
}

fn assert_same_results(a: &Index, b: &Index, fx: &Fixture, params: &SearchParams) {
    for i in 0..fx.n_queries() {
        let q = fx.query(i);
        assert_eq!(
            a.search(q, 10, params, None).unwrap(),
            b.search(q, 10, params, None).unwrap()
        );
    }
}

#[test]
fn flat_round_trip() {
    let fx = Fixture::new(300, 24, 1);
    let index = fx.flat();
    assert_eq!(
        (index.kind(), index.len(), index.dim()),
        (IndexKind::FlatInt8, 300, 24)
    );
    let bytes = index.to_bytes();
    assert_eq!(&bytes[..8], &MAGIC);
    // Metadata = 4-byte params variant + 2 section entries of 52 bytes (docs/index-format.md).
    assert_eq!((u32_at(&bytes, 32), u32_at(&bytes, 36)), (4 + 2 * 52, 2));
    let loaded = Index::from_bytes(&bytes).unwrap();
    assert_eq!(loaded, index);
    assert_eq!(loaded.to_bytes(), bytes, "serialization is deterministic");
    assert_same_results(&index, &loaded, &fx, &SearchParams::default());
}

#[test]
fn ivfpq_round_trip_all_variants() {
    let fx = Fixture::new(400, 16, 2);
    for (nbits, by_residual) in [(8, true), (8, false), (4, true), (5, false)] {
        let index = fx.ivfpq(8, 4, nbits, by_residual);
        assert_eq!(index.kind(), IndexKind::IvfPq);
        let bytes = index.to_bytes();
        // Metadata = 17-byte IVF-PQ params + 7 section entries of 52 bytes.
        assert_eq!((u32_at(&bytes, 32), u32_at(&bytes, 36)), (17 + 7 * 52, 7));
        let loaded = Index::from_bytes(&bytes).unwrap();
        assert_eq!(loaded, index, "nbits {nbits} residual {by_residual}");
        let p = SearchParams {
            nprobe: 3,
            rerank: 0,
        };
        assert_same_results(&index, &loaded, &fx, &p);
        assert_same_results(
            &index,
            &loaded,
            &fx,
            &SearchParams {
                nprobe: 3,
                rerank: 40,
            },
        );
    }
}

#[test]
fn compact_ivfpq_ships_only_codes_and_refuses_rerank() {
    let fx = Fixture::new(400, 16, 4);
    let Index::IvfPq(full) = fx.ivfpq(8, 4, 8, true) else {
        unreachable!()
    };
    let compact: Index = full.clone().into_compact().into();
    let full: Index = full.into();
    assert!(compact.store().is_none());
    assert_eq!(compact.len(), full.len());
    let bytes = compact.to_bytes();
    // The int8 sections (n * dim codes + n scales, each padded to 16 bytes) are gone.
    let saved = full.to_bytes().len() - bytes.len();
    assert!(saved >= 400 * 16 + 400 * 4, "saved only {saved} bytes");
    assert_eq!(u32_at(&bytes, 36), 5, "five sections");
    let loaded = Index::from_bytes(&bytes).unwrap();
    assert_eq!(loaded, compact);
    let p = SearchParams {
        nprobe: 3,
        rerank: 0,
    };
    assert_same_results(&full, &loaded, &fx, &p);
    let rerank = SearchParams {
        nprobe: 3,
        rerank: 20,
    };
    assert_eq!(
        loaded.search(fx.query(0), 10, &rerank, None),
        Err(SearchError::NoRerankStore)
    );
    // A doc count that the lists do not cover is refused before anything is sized by it.
    let mut bad = bytes.clone();
    put_u64(&mut bad, 24, u64::from(u32::MAX));
    reseal(&mut bad);
    assert!(
        matches!(
            load_err(&bad),
            FormatError::InvalidSection {
                section: SectionKind::ListIds,
                ..
            }
        ),
        "{:?}",
        load_err(&bad)
    );
}

#[test]
fn ivfpq_full_probe_and_rerank_equals_flat() {
    let fx = Fixture::new(500, 32, 3);
    let flat = fx.flat();
    for by_residual in [true, false] {
        let ivf = fx.ivfpq(10, 8, 6, by_residual);
        for i in 0..fx.n_queries() {
            let q = fx.query(i);
            let a = flat.search(q, 10, &all_params(&flat), None).unwrap();
            let b = ivf.search(q, 10, &all_params(&ivf), None).unwrap();
            assert_eq!(a, b, "query {i}");
        }
    }
}

#[test]
fn flat_int8_recall_against_exact_f32() {
    let fx = Fixture::new(2000, 64, 4);
    let flat = fx.flat();
    let mut total = 0.0;
    for i in 0..fx.n_queries() {
        let q = fx.query(i);
        let exact = docs(&exact_search(&fx.data, fx.dim, q, 10));
        let got = docs(&flat.search(q, 10, &SearchParams::default(), None).unwrap());
        total += recall_at_k(&got, &exact, 10);
    }
    let recall = total / fx.n_queries() as f64;
    assert!(recall >= 0.98, "flat int8 recall@10 = {recall}");
}

#[test]
fn ivfpq_recall_with_partial_probe() {
    let fx = Fixture::new(2000, 32, 5);
    let ivf = fx.ivfpq(16, 8, 8, true);
    let params = SearchParams {
        nprobe: 8,
        rerank: 100,
    };
    let mut total = 0.0;
    for i in 0..fx.n_queries() {
        let q = fx.query(i);
        let exact = docs(&exact_search(&fx.data, fx.dim, q, 10));
        total += recall_at_k(
            &docs(&ivf.search(q, 10, &params, None).unwrap()),
            &exact,
            10,
        );
    }
    let recall = total / fx.n_queries() as f64;
    assert!(recall >= 0.9, "ivf-pq recall@10 = {recall}");
}

/// Without re-ranking, scores are FAISS's IP ADC estimate:
/// `<q, c_l> + <q, decode(code)>` (residual) or `<q, decode(code)>`.
#[test]
fn pq_scores_follow_faiss_ip_formula() {
    let fx = Fixture::new(400, 16, 6);
    for by_residual in [true, false] {
        let Index::IvfPq(ivf) = fx.ivfpq(4, 4, 6, by_residual) else {
            unreachable!()
        };
        let q = fx.query(0);
        let hits = ivf
            .search(
                q,
                400,
                &SearchParams {
                    nprobe: 4,
                    rerank: 0,
                },
                None,
            )
            .unwrap();
        assert_eq!(hits.len(), 400);
        for l in 0..ivf.nlist() {
            let (ids, codes) = ivf.list(l).unwrap();
            let c = &ivf.centroids()[l * 16..(l + 1) * 16];
            for (&id, code) in ids.iter().zip(codes.chunks_exact(4)) {
                let dec = ivf.pq().decode(code).unwrap();
                let want = ip(q, &dec) + if by_residual { ip(q, c) } else { 0.0 };
                let got = hits.iter().find(|h| h.doc == id).unwrap().score;
                assert!((got - want).abs() < 1e-4, "doc {id}: {got} vs {want}");
            }
        }
    }
}

#[test]
fn filter_restricts_results() {
    let fx = Fixture::new(300, 16, 7);
    for index in [fx.flat(), fx.ivfpq(4, 4, 6, true)] {
        let q = fx.query(1);
        let p = all_params(&index);
        let top = index.search(q, 5, &p, None).unwrap();
        let mut allow = AllowList::all(index.len());
        allow.remove(top[0].doc);
        let filtered = index.search(q, 5, &p, Some(&allow)).unwrap();
        assert_eq!(docs(&filtered)[..4], docs(&top)[1..]);
        let evens: AllowList = (0..300).step_by(2).collect();
        let hits = index.search(q, 50, &p, Some(&evens)).unwrap();
        assert_eq!(hits.len(), 50);
        assert!(hits.iter().all(|h| h.doc % 2 == 0));
        assert!(index
            .search(q, 5, &p, Some(&AllowList::new(300)))
            .unwrap()
            .is_empty());
    }
}

#[test]
fn query_errors_and_edge_cases() {
    let fx = Fixture::new(100, 16, 8);
    for index in [fx.flat(), fx.ivfpq(2, 4, 4, true)] {
        let p = SearchParams::default();
        assert_eq!(
            index.search(&[0.0; 15], 5, &p, None),
            Err(SearchError::DimensionMismatch {
                expected: 16,
                got: 15
            })
        );
        let mut q = fx.query(0).to_vec();
        q[3] = f32::NAN;
        assert_eq!(
            index.search(&q, 5, &p, None),
            Err(SearchError::NonFiniteQuery)
        );
        assert!(index.search(fx.query(0), 0, &p, None).unwrap().is_empty());
        let all = index
            .search(fx.query(0), 1000, &all_params(&index), None)
            .unwrap();
        assert_eq!(all.len(), 100);
        assert!(all.windows(2).all(|w| w[0].score >= w[1].score));
        // A zero query scores every doc 0: order falls back to doc ordinal.
        let zeros = index
            .search(&[0.0; 16], 5, &all_params(&index), None)
            .unwrap();
        assert_eq!(docs(&zeros), vec![0, 1, 2, 3, 4]);
    }
}

#[test]
fn ties_break_on_doc_ordinal() {
    // Docs 0 and 2 are identical; doc 1 is orthogonal to the query.
    let data = [1.0, 0.0, 0.0, 1.0, 1.0, 0.0];
    let flat: Index = FlatInt8::build(2, &data).unwrap().into();
    let hits = flat
        .search(&[1.0, 0.0], 3, &SearchParams::default(), None)
        .unwrap();
    assert_eq!(docs(&hits), vec![0, 2, 1]);
    assert_eq!(hits[0].score, hits[1].score);
}

#[test]
fn from_parts_validates() {
    let store = Int8Store::quantize(4, &[1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0]).unwrap();
    let pq = PqCodebook::new(4, 2, 1, vec![0., 0., 1., 1., 2., 0., 0., 2.]).unwrap();
    let cents = vec![1.0, 0.0, 0.0, 0.0];
    let list = |ids: Vec<u32>, codes: Vec<u8>| vec![InvertedList { ids, codes }];
    let ok = IvfPq::from_parts(
        4,
        cents.clone(),
        pq.clone(),
        list(vec![0, 1], vec![0, 1, 1, 0]),
        true,
        store.clone(),
    );
    assert!(ok.is_ok());
    for (ids, codes) in [
        (vec![0, 1], vec![0, 1, 1]),    // code length
        (vec![0, 2], vec![0, 1, 1, 0]), // doc out of range
        (vec![0, 0], vec![0, 1, 1, 0]), // duplicate doc
        (vec![0, 1], vec![0, 2, 1, 0]), // code >= ksub
    ] {
        let r = IvfPq::from_parts(
            4,
            cents.clone(),
            pq.clone(),
            list(ids, codes),
            true,
            store.clone(),
        );
        assert!(r.is_err());
    }
    assert!(IvfPq::from_parts(4, vec![1.0; 3], pq.clone(), vec![], true, store.clone()).is_err());
    assert!(
        IvfPq::from_parts(4, cents, pq, vec![], true, store).is_err(),
        "list count != nlist"
    );
    assert!(Int8Store::from_parts(4, vec![0; 7], vec![1.0, 1.0]).is_err());
    assert!(Int8Store::from_parts(4, vec![0; 8], vec![1.0, f32::NAN]).is_err());
    assert!(FlatInt8::build(0, &[]).is_err());
    assert!(FlatInt8::build(3, &[1.0; 4]).is_err());
}

// ---------------------------------------------------------------- load errors

fn ivf_bytes() -> Vec<u8> {
    Fixture::new(200, 16, 9).ivfpq(4, 4, 4, true).to_bytes()
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Byte position of section-table entry `i` (entries end the metadata block).
fn entry_pos(b: &[u8], i: usize) -> usize {
    let meta_end = HEADER_LEN + u32_at(b, 32) as usize;
    let count = u32_at(b, 36) as usize;
    meta_end - (count - i) * ENTRY_LEN
}

/// (kind, offset, len) of section `kind`.
fn section(b: &[u8], kind: SectionKind) -> (usize, usize, usize) {
    let count = u32_at(b, 36) as usize;
    (0..count)
        .map(|i| {
            let p = entry_pos(b, i);
            let off = u64::from_le_bytes(b[p + 4..p + 12].try_into().unwrap()) as usize;
            let len = u64::from_le_bytes(b[p + 12..p + 20].try_into().unwrap()) as usize;
            (i, off, len, u32_at(b, p))
        })
        .find(|e| e.3 == kind as u32)
        .map(|(i, off, len, _)| (i, off, len))
        .unwrap()
}

fn load_err(b: &[u8]) -> FormatError {
    Index::from_bytes(b).unwrap_err()
}

#[test]
fn error_bad_magic_and_version() {
    let good = ivf_bytes();
    let mut b = good.clone();
    b[0] ^= 0xff;
    assert_eq!(load_err(&b), FormatError::BadMagic);
    assert_eq!(load_err(b"hello world"), FormatError::BadMagic);
    let mut b = good.clone();
    put_u32(&mut b, 8, 6);
    assert_eq!(load_err(&b), FormatError::UnsupportedVersion(6));
    // Version is reported even when the rest is missing.
    assert_eq!(load_err(&b[..12]), FormatError::UnsupportedVersion(6));
    put_u32(&mut b, 8, 0);
    assert_eq!(load_err(&b), FormatError::UnsupportedVersion(0));
    // Version 1 to 4 files (without row digests, lists files or row trees) still load.
    for v in [1, 2, 3, 4] {
        let mut b = good.clone();
        put_u32(&mut b, 8, v);
        reseal(&mut b);
        assert!(Index::from_bytes(&b).is_ok());
    }
}

#[test]
fn error_truncation() {
    let good = ivf_bytes();
    assert!(matches!(
        load_err(&[]),
        FormatError::Truncated { what: "header", .. }
    ));
    assert!(matches!(
        load_err(&good[..40]),
        FormatError::Truncated { what: "header", .. }
    ));
    assert!(matches!(
        load_err(&good[..HEADER_LEN + 5]),
        FormatError::Truncated {
            what: "metadata",
            ..
        }
    ));
    let last = good.len() - 1;
    assert!(matches!(
        load_err(&good[..last]),
        FormatError::SectionTruncated {
            section: SectionKind::ListCodes,
            ..
        }
    ));
    // Every truncation point fails cleanly.
    for cut in (0..good.len()).step_by(7) {
        assert!(Index::from_bytes(&good[..cut]).is_err());
    }
}

#[test]
fn error_checksums() {
    let good = ivf_bytes();
    for kind in [
        SectionKind::Int8Scales,
        SectionKind::PqCentroids,
        SectionKind::ListIds,
    ] {
        let (_, off, len) = section(&good, kind);
        let mut b = good.clone();
        b[off + len / 2] ^= 0x10;
        assert_eq!(load_err(&b), FormatError::ChecksumMismatch(kind));
    }
    let mut b = good.clone();
    b[HEADER_LEN + 1] ^= 1;
    assert_eq!(load_err(&b), FormatError::HeaderChecksumMismatch);
    let mut b = good.clone();
    put_u64(&mut b, 24, 201);
    assert_eq!(load_err(&b), FormatError::HeaderChecksumMismatch);
}

#[test]
fn error_header_fields() {
    let good = ivf_bytes();
    let resealed = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = good.clone();
        f(&mut b);
        reseal(&mut b);
        load_err(&b)
    };
    assert!(matches!(
        resealed(&|b| put_u64(b, 24, u64::from(u32::MAX))),
        FormatError::CountExceedsFileSize {
            field: "n_docs",
            ..
        }
    ));
    assert!(matches!(
        resealed(&|b| put_u64(b, 24, 1 << 40)),
        FormatError::InvalidField {
            field: "n_docs",
            ..
        }
    ));
    assert!(matches!(
        resealed(&|b| put_u64(b, 24, 199)),
        FormatError::SectionLength {
            section: SectionKind::Int8Codes,
            ..
        }
    ));
    assert!(matches!(
        resealed(&|b| put_u32(b, 20, 0)),
        FormatError::InvalidField { field: "dim", .. }
    ));
    assert_eq!(
        resealed(&|b| put_u32(b, 12, 9)),
        FormatError::UnknownKind(9)
    );
    assert_eq!(
        resealed(&|b| put_u32(b, 12, 1)),
        FormatError::KindMismatch { header: 1, meta: 2 }
    );
    assert_eq!(
        resealed(&|b| put_u32(b, 16, 2)),
        FormatError::UnsupportedMetric(2)
    );
    assert!(matches!(
        resealed(&|b| put_u32(b, 36, 99)),
        FormatError::InvalidField {
            field: "section_count",
            ..
        }
    ));
    assert!(matches!(
        resealed(&|b| put_u32(b, 32, u32::MAX)),
        FormatError::InvalidField {
            field: "meta_len",
            ..
        }
    ));
    assert!(matches!(
        resealed(&|b| put_u32(b, 32, 60_000)),
        FormatError::Truncated {
            what: "metadata",
            ..
        }
    ));
    // Params enum variant index 7 does not exist.
    assert!(matches!(
        resealed(&|b| put_u32(b, HEADER_LEN, 7)),
        FormatError::BadMetadata(_)
    ));
    // nlist (first params field) larger than the file can hold.
    assert!(matches!(
        resealed(&|b| put_u32(b, HEADER_LEN + 4, u32::MAX)),
        FormatError::CountExceedsFileSize { field: "nlist", .. }
    ));
    // m = 3 does not divide dim 16; nbits 9 is out of range.
    assert!(matches!(
        resealed(&|b| put_u32(b, HEADER_LEN + 8, 3)),
        FormatError::InvalidField { field: "m", .. }
    ));
    assert!(matches!(
        resealed(&|b| put_u32(b, HEADER_LEN + 12, 9)),
        FormatError::InvalidField { field: "nbits", .. }
    ));
}

#[test]
fn error_section_table() {
    let good = ivf_bytes();
    let resealed = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = good.clone();
        f(&mut b);
        reseal(&mut b);
        load_err(&b)
    };
    let p1 = entry_pos(&good, 1);
    let p2 = entry_pos(&good, 2);
    let (_, off1, _) = section(&good, SectionKind::Int8Scales);
    assert_eq!(
        resealed(&|b| put_u32(b, p1, 99)),
        FormatError::UnknownSection(99)
    );
    assert_eq!(
        resealed(&|b| put_u32(b, p2, 1)),
        FormatError::DuplicateSection(SectionKind::Int8Codes)
    );
    assert!(matches!(
        resealed(&|b| put_u64(b, p1 + 4, off1 as u64 + 4)),
        FormatError::Misaligned {
            section: SectionKind::Int8Scales,
            ..
        }
    ));
    assert_eq!(
        resealed(&|b| put_u64(b, p1 + 4, 0)),
        FormatError::SectionOverlap(SectionKind::Int8Scales)
    );
    assert!(matches!(
        resealed(&|b| put_u64(b, p1 + 12, u64::MAX - 8)),
        FormatError::SectionTruncated {
            section: SectionKind::Int8Scales,
            ..
        }
    ));
    assert!(matches!(
        resealed(&|b| put_u64(b, p1 + 12, 4)),
        FormatError::SectionLength {
            section: SectionKind::Int8Scales,
            ..
        }
    ));
    let (_, off0, _) = section(&good, SectionKind::Int8Codes);
    assert!(matches!(
        resealed(&|b| put_u64(b, p1 + 4, off0 as u64 + 16)),
        FormatError::SectionOverlap(_)
    ));
    // A flat file must not carry IVF sections, and an IVF file needs them all.
    let mut flat = Fixture::new(50, 16, 3).flat().to_bytes();
    let p = entry_pos(&flat, 1);
    put_u32(&mut flat, p, SectionKind::ListIds as u32);
    reseal(&mut flat);
    assert_eq!(
        load_err(&flat),
        FormatError::UnexpectedSection(SectionKind::ListIds)
    );
}

#[test]
fn error_section_contents() {
    let good = ivf_bytes();
    let resealed = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = good.clone();
        f(&mut b);
        reseal(&mut b);
        load_err(&b)
    };
    let (_, ids, _) = section(&good, SectionKind::ListIds);
    let (_, codes, _) = section(&good, SectionKind::ListCodes);
    let (_, offsets, _) = section(&good, SectionKind::ListOffsets);
    let (_, scales, _) = section(&good, SectionKind::Int8Scales);
    let (_, cents, _) = section(&good, SectionKind::CoarseCentroids);
    let invalid = |e: FormatError| match e {
        FormatError::InvalidSection { section, .. } => section,
        other => panic!("expected InvalidSection, got {other:?}"),
    };
    assert_eq!(
        invalid(resealed(&|b| put_u32(b, ids, 200))),
        SectionKind::ListIds
    );
    assert_eq!(
        invalid(resealed(&|b| {
            let second = u32_at(b, ids + 4);
            put_u32(b, ids, second)
        })),
        SectionKind::ListIds
    );
    // nbits = 4: a code byte of 16 is out of range.
    assert_eq!(
        invalid(resealed(&|b| b[codes] = 16)),
        SectionKind::ListCodes
    );
    assert_eq!(
        invalid(resealed(&|b| put_u64(b, offsets + 8, 10_000))),
        SectionKind::ListOffsets
    );
    assert_eq!(
        invalid(resealed(&|b| put_u64(b, offsets, 1))),
        SectionKind::ListOffsets
    );
    assert_eq!(
        invalid(resealed(&|b| put_u32(b, scales, f32::NAN.to_bits()))),
        SectionKind::Int8Scales
    );
    assert_eq!(
        invalid(resealed(&|b| put_u32(b, cents, f32::INFINITY.to_bits()))),
        SectionKind::CoarseCentroids
    );
}
