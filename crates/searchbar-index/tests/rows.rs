//! IVF-PQ with a separate rows file: the two-stage search a browser runs
//! (candidates, fetch the records, verify, re-rank) gives exactly the results
//! of the same index with its vectors in memory, and every bad record, file
//! or section is refused by name.

mod common;

use common::Fixture;
use searchbar_index::rows::record_len;
use searchbar_index::testing::reseal;
use searchbar_index::{
    FetchedRows, FormatError, Index, IvfPq, RerankRows, RowError, SearchError, SearchParams,
    SectionKind,
};

fn parts(fx: &Fixture) -> (Index, Index, Vec<u8>) {
    let Index::IvfPq(full) = fx.ivfpq(8, 4, 8, true) else {
        unreachable!()
    };
    let (external, rows) = full.clone().into_external().unwrap();
    (full.into(), external.into(), rows)
}

/// What a client does: first stage, fetch each candidate's record by range,
/// verify it against the index, second stage.
fn two_stage(
    index: &Index,
    rows_file: &[u8],
    q: &[f32],
    p: &SearchParams,
) -> Vec<searchbar_index::Hit> {
    let candidates = index.candidates(q, 10, p, None).unwrap();
    let mut fetched = FetchedRows::new();
    for doc in candidates.docs() {
        let r = index.row_range(doc).unwrap();
        index
            .insert_row(
                &mut fetched,
                doc,
                &rows_file[r.start as usize..r.end as usize],
            )
            .unwrap();
    }
    assert_eq!(fetched.len(), candidates.docs().len());
    index.rerank(q, candidates, &fetched).unwrap()
}

#[test]
fn external_rows_search_equals_embedded() {
    let fx = Fixture::new(400, 16, 5);
    let (full, external, rows) = parts(&fx);
    assert_eq!(rows.len(), 400 * record_len(16));
    let bytes = external.to_bytes();
    // The int8 sections are replaced by 8 bytes per doc.
    let compact = match &full {
        Index::IvfPq(i) => Index::from(i.clone().into_compact()).to_bytes().len(),
        Index::FlatInt8(_) => unreachable!(),
    };
    assert_eq!(
        bytes.len() - compact,
        400 * 8 + 52 /* section entry */ + 12 /* padding */
    );
    let loaded = Index::from_bytes(&bytes).unwrap();
    assert_eq!(loaded, external);
    let Index::IvfPq(ivf) = &loaded else {
        unreachable!()
    };
    assert_eq!(ivf.rerank_rows(), RerankRows::External { attached: false });
    assert!(loaded.has_rows_file() && !full.has_rows_file() && !fx.flat().has_rows_file());
    for p in [
        SearchParams {
            nprobe: 3,
            rerank: 40,
        },
        SearchParams {
            nprobe: 8,
            rerank: 400,
        },
        SearchParams {
            nprobe: 2,
            rerank: 5,
        },
    ] {
        for i in 0..fx.n_queries() {
            let q = fx.query(i);
            let want = full.search(q, 10, &p, None).unwrap();
            assert_eq!(two_stage(&loaded, &rows, q, &p), want, "query {i} {p:?}");
        }
        // Without re-ranking nothing is fetched.
        let p0 = SearchParams { rerank: 0, ..p };
        let c = loaded.candidates(fx.query(0), 10, &p0, None).unwrap();
        assert!(!c.needs_rows() && c.docs().is_empty());
        assert_eq!(
            loaded.rerank(fx.query(0), c, &FetchedRows::new()).unwrap(),
            full.search(fx.query(0), 10, &p0, None).unwrap()
        );
    }
    // The one-call search needs the rows in memory.
    let p = SearchParams::default();
    assert_eq!(
        loaded.search(fx.query(0), 10, &p, None),
        Err(SearchError::RowsNotAttached)
    );
    let mut attached = ivf.clone();
    attached.attach_rows(&rows).unwrap();
    assert_eq!(
        attached.rerank_rows(),
        RerankRows::External { attached: true }
    );
    let attached = Index::from(attached);
    assert_eq!(
        attached.to_bytes(),
        bytes,
        "an attached rows file is never serialized"
    );
    for i in 0..fx.n_queries() {
        let q = fx.query(i);
        assert_eq!(
            attached.search(q, 10, &p, None),
            full.search(q, 10, &p, None)
        );
    }
}

#[test]
fn bad_rows_are_refused() {
    let fx = Fixture::new(300, 16, 6);
    let (full, external, rows) = parts(&fx);
    let rec = record_len(16);
    let record = |doc: usize| &rows[doc * rec..(doc + 1) * rec];
    let mut fetched = FetchedRows::new();
    // A flipped code byte, another doc's record, a short record, a doc past the end.
    let mut flipped = record(3).to_vec();
    flipped[7] ^= 1;
    assert_eq!(
        external.insert_row(&mut fetched, 3, &flipped),
        Err(RowError::DigestMismatch(3))
    );
    assert_eq!(
        external.insert_row(&mut fetched, 3, record(4)),
        Err(RowError::DigestMismatch(3))
    );
    assert!(matches!(
        external.insert_row(&mut fetched, 3, &record(3)[1..]),
        Err(RowError::Length {
            expected: 20,
            got: 19,
            ..
        })
    ));
    assert_eq!(
        external.insert_row(&mut fetched, 300, record(0)),
        Err(RowError::DocOutOfRange { doc: 300, n: 300 })
    );
    assert_eq!(external.row_range(300), None);
    assert_eq!(external.row_range(2), Some(40..60));
    assert!(fetched.is_empty(), "nothing bad was kept");
    // Indexes without a rows file have no rows to take.
    assert_eq!(
        full.insert_row(&mut fetched, 0, record(0)),
        Err(RowError::NotExternal)
    );
    assert_eq!(fx.flat().row_range(0), None);
    // A candidate whose row was not fetched.
    let p = SearchParams {
        nprobe: 8,
        rerank: 50,
    };
    let c = external.candidates(fx.query(0), 10, &p, None).unwrap();
    let first = c.docs()[0];
    assert_eq!(
        external.rerank(fx.query(0), c, &fetched),
        Err(SearchError::MissingRow(first))
    );
    // Whole files: wrong length, one corrupt record.
    let Index::IvfPq(mut ivf) = external else {
        unreachable!()
    };
    assert!(matches!(
        ivf.attach_rows(&rows[..rows.len() - 1]),
        Err(RowError::Length { .. })
    ));
    let mut corrupt = rows.clone();
    corrupt[250 * rec] ^= 0x80;
    assert_eq!(
        ivf.attach_rows(&corrupt),
        Err(RowError::DigestMismatch(250))
    );
    assert!(ivf.store().is_none());
    let Index::IvfPq(embedded) = full else {
        unreachable!()
    };
    assert!(IvfPq::into_external(embedded.into_compact()).is_err());
}

#[test]
fn digest_section_is_validated_on_load() {
    let fx = Fixture::new(300, 16, 7);
    let (full, external, _) = parts(&fx);
    let bytes = external.to_bytes();
    assert_eq!(u32::from_le_bytes(bytes[8..12].try_into().unwrap()), 5);
    // Digests next to the int8 sections: a file has one kind of store.
    let full_bytes = full.to_bytes();
    let both = splice_digests(&full_bytes, &bytes);
    assert_eq!(
        Index::from_bytes(&both),
        Err(FormatError::UnexpectedSection(SectionKind::RowDigests))
    );
    // Version 2 files have no digest section.
    let mut v2 = bytes.clone();
    v2[8..12].copy_from_slice(&2u32.to_le_bytes());
    reseal(&mut v2);
    assert_eq!(
        Index::from_bytes(&v2),
        Err(FormatError::UnexpectedSection(SectionKind::RowDigests))
    );
    // A flipped digest byte fails the section checksum.
    let (off, _) = digest_section(&bytes);
    let mut flipped = bytes.clone();
    flipped[off] ^= 1;
    assert_eq!(
        Index::from_bytes(&flipped),
        Err(FormatError::ChecksumMismatch(SectionKind::RowDigests))
    );
    // A digest section of the wrong length.
    let mut short = bytes.clone();
    let entry = entry_of(&short, SectionKind::RowDigests);
    let len = u64::from_le_bytes(short[entry + 12..entry + 20].try_into().unwrap());
    short[entry + 12..entry + 20].copy_from_slice(&(len - 8).to_le_bytes());
    reseal(&mut short);
    assert!(matches!(
        Index::from_bytes(&short),
        Err(FormatError::SectionLength {
            section: SectionKind::RowDigests,
            ..
        })
    ));
}

/// Byte position of the section-table entry of `kind`.
fn entry_of(b: &[u8], kind: SectionKind) -> usize {
    let meta_start = searchbar_index::format::HEADER_LEN + 17;
    let count = u32::from_le_bytes(b[36..40].try_into().unwrap()) as usize;
    (0..count)
        .map(|i| meta_start + i * 52)
        .find(|&e| u32::from_le_bytes(b[e..e + 4].try_into().unwrap()) == kind as u32)
        .unwrap()
}

fn digest_section(b: &[u8]) -> (usize, usize) {
    let e = entry_of(b, SectionKind::RowDigests);
    let off = u64::from_le_bytes(b[e + 4..e + 12].try_into().unwrap()) as usize;
    let len = u64::from_le_bytes(b[e + 12..e + 20].try_into().unwrap()) as usize;
    (off, len)
}

/// `full` (with int8 sections) with `external`'s digest section appended and
/// listed in its table, resealed.
fn splice_digests(full: &[u8], external: &[u8]) -> Vec<u8> {
    let (off, len) = digest_section(external);
    let e = entry_of(external, SectionKind::RowDigests);
    let mut entry = external[e..e + 52].to_vec();
    let count = u32::from_le_bytes(full[36..40].try_into().unwrap());
    let meta_len = u32::from_le_bytes(full[32..36].try_into().unwrap()) as usize;
    let meta_end = searchbar_index::format::HEADER_LEN + meta_len;
    // Shift every existing section by the 52-byte entry plus padding to 16.
    let shift = 64usize;
    let mut out = full[..meta_end].to_vec();
    for i in 0..count as usize {
        let at = searchbar_index::format::HEADER_LEN + 17 + i * 52 + 4;
        let o = u64::from_le_bytes(out[at..at + 8].try_into().unwrap());
        out[at..at + 8].copy_from_slice(&(o + shift as u64).to_le_bytes());
    }
    let new_off = (full.len() + shift).div_ceil(16) * 16;
    entry[4..12].copy_from_slice(&(new_off as u64).to_le_bytes());
    out.extend_from_slice(&entry);
    out[32..36].copy_from_slice(&((meta_len + 52) as u32).to_le_bytes());
    out[36..40].copy_from_slice(&(count + 1).to_le_bytes());
    out.resize(meta_end + shift, 0);
    out.extend_from_slice(&full[meta_end..]);
    out.resize(new_off, 0);
    out.extend_from_slice(&external[off..off + len]);
    reseal(&mut out);
    out
}

#[test]
fn search_with_the_rows_file_at_hand() {
    let fx = Fixture::new(300, 16, 8);
    let (full, external, rows) = parts(&fx);
    let p = SearchParams {
        nprobe: 4,
        rerank: 30,
    };
    for i in 0..fx.n_queries() {
        let q = fx.query(i);
        let want = full.search(q, 10, &p, None).unwrap();
        assert_eq!(
            external.search_rows_file(q, 10, &p, None, &rows).unwrap(),
            want
        );
        // Indexes without a rows file ignore the argument.
        assert_eq!(full.search_rows_file(q, 10, &p, None, &[]).unwrap(), want);
    }
    // A rows file cut short, or from another build, is refused by doc.
    let err = external
        .search_rows_file(fx.query(0), 10, &p, None, &rows[..rows.len() / 2])
        .unwrap_err();
    assert!(matches!(err, SearchError::MissingRow(_)), "{err}");
    let (_, _, other) = parts(&Fixture::new(300, 16, 9));
    let err = external
        .search_rows_file(fx.query(0), 10, &p, None, &other)
        .unwrap_err();
    assert!(
        matches!(err, SearchError::Row(RowError::DigestMismatch(_))),
        "{err}"
    );
}

/// A hybrid query reads a deeper dense list (`FUSION_DEPTH`) than it re-ranks: with `rerank`
/// below `k` only the best `rerank` candidates' records are fetched and re-scored, the rest keep
/// their PQ scores, and the list is sorted over both, as the index with its vectors in memory
/// sorts it.
#[test]
fn a_list_deeper_than_rerank_fetches_only_the_rows_it_rescores() {
    let fx = Fixture::new(400, 16, 5);
    let (full, external, rows) = parts(&fx);
    let k = 30;
    let p = SearchParams {
        nprobe: 8,
        rerank: 7,
    };
    for i in 0..fx.n_queries() {
        let q = fx.query(i);
        let first = full
            .search(q, k, &SearchParams { rerank: 0, ..p }, None)
            .unwrap();
        let exact = full
            .search(q, k, &SearchParams { rerank: k, ..p }, None)
            .unwrap();
        let candidates = external.candidates(q, k, &p, None).unwrap();
        let mut best: Vec<u32> = first[..7].iter().map(|h| h.doc).collect();
        best.sort_unstable();
        assert_eq!(candidates.docs(), best, "query {i}: the rows fetched");
        let mut fetched = FetchedRows::new();
        for doc in candidates.docs() {
            let r = external.row_range(doc).unwrap();
            let record = &rows[r.start as usize..r.end as usize];
            candidates.insert_row(&mut fetched, doc, record).unwrap();
        }
        let got = external.rerank(q, candidates, &fetched).unwrap();
        // The best 7 with the scores a full re-ranking gives them, the others as found.
        let mut want: Vec<_> = first
            .iter()
            .enumerate()
            .map(|(j, h)| match j < 7 {
                true => *exact.iter().find(|e| e.doc == h.doc).unwrap(),
                false => *h,
            })
            .collect();
        want.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.doc.cmp(&b.doc)));
        assert_eq!(got, want, "query {i}");
        assert_eq!(full.search(q, k, &p, None).unwrap(), got, "query {i}");
    }
}
