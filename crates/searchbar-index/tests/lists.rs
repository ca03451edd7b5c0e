//! IVF-PQ with its inverted lists in a separate lists file: the search a browser runs (the
//! probed lists fetched by range and verified, then the candidates' rows) gives exactly the
//! results of the same index in memory, the index file keeps nothing per document, neither do
//! the lists (each row carries its path to its list's root), and every bad list or row is
//! refused by name. The version 4 layout (each entry with its row's digest) still reads.

mod common;

use common::Fixture;
use searchbar_index::lists::entry_len;
use searchbar_index::rows::record_len;
use searchbar_index::testing::{reseal, split_version_4};
use searchbar_index::{
    FetchedLists, FetchedRows, FormatError, Hit, Index, IvfPq, RowError, SearchError, SearchParams,
    SectionKind,
};

/// The same index in memory, with external rows and split lists (root bytes, lists file, rows
/// file), and compact with split lists (root bytes, lists file).
struct Split {
    full: Index,
    root: Vec<u8>,
    lists: Vec<u8>,
    rows: Vec<u8>,
    compact_root: Vec<u8>,
    compact_lists: Vec<u8>,
}

fn split(fx: &Fixture) -> Split {
    let Index::IvfPq(full) = fx.ivfpq(8, 4, 8, true) else {
        unreachable!()
    };
    let (external, rows) = full.clone().into_external().unwrap();
    let (root, lists, rows) = external.into_split(Some(rows)).unwrap();
    let (compact_root, compact_lists, none) = full.clone().into_compact().into_split(None).unwrap();
    assert!(none.is_none());
    let rows = rows.unwrap();
    Split {
        full: full.into(),
        root: Index::from(root).to_bytes(),
        lists,
        rows,
        compact_root: Index::from(compact_root).to_bytes(),
        compact_lists,
    }
}

/// What a page does: fetch the lists the query probes (kept across queries in `have`), the
/// candidates' rows, then re-rank.
fn fetched_search(
    index: &Index,
    lists: &[u8],
    rows: &[u8],
    have: &mut FetchedLists,
    q: &[f32],
    p: &SearchParams,
) -> Vec<Hit> {
    for (l, r) in index.missing_lists(q, p, have).unwrap() {
        index
            .insert_list(have, l, &lists[r.start as usize..r.end as usize])
            .unwrap();
    }
    assert!(index.missing_lists(q, p, have).unwrap().is_empty());
    let candidates = index.candidates_in(q, 10, p, None, have).unwrap();
    let mut fetched = FetchedRows::new();
    for doc in candidates.docs() {
        let r = index.row_range(doc).unwrap();
        candidates
            .insert_row(&mut fetched, doc, &rows[r.start as usize..r.end as usize])
            .unwrap();
    }
    index.rerank(q, candidates, &fetched).unwrap()
}

#[test]
fn fetched_lists_search_equals_in_memory() {
    let fx = Fixture::new(400, 16, 11);
    let s = split(&fx);
    // Nothing per doc in the root; each entry: id and code; each list ends with its rows'
    // root (8 lists); each row carries its path beside its scale and codes.
    assert_eq!(s.lists.len(), 400 * entry_len(4, false) + 8 * 8);
    assert_eq!(s.compact_lists.len(), 400 * (4 + 4));
    let path = s.rows.len() / 400 - record_len(16);
    assert!(
        s.rows.len().is_multiple_of(400) && path.is_multiple_of(8) && path > 0,
        "{path}"
    );
    let in_file = Index::from_bytes(&s.full.to_bytes()).unwrap().to_bytes();
    assert!(
        s.root.len() < in_file.len() - 400 * (4 + 4 + 16),
        "{} vs {}",
        s.root.len(),
        in_file.len()
    );
    let root = Index::from_bytes(&s.root).unwrap();
    assert!(root.has_lists_file() && root.has_rows_file() && !root.lists_in_memory());
    assert!(!s.full.has_lists_file() && s.full.lists_in_memory());
    let mut have = FetchedLists::new();
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
            nprobe: 1,
            rerank: 5,
        },
    ] {
        for i in 0..fx.n_queries() {
            let q = fx.query(i);
            let want = s.full.search(q, 10, &p, None).unwrap();
            let got = fetched_search(&root, &s.lists, &s.rows, &mut have, q, &p);
            assert_eq!(got, want, "query {i} {p:?}");
        }
    }
    assert_eq!(have.len(), 8, "every list fetched once, then kept");
    assert_eq!(have.entries(), 400);

    // Compact: PQ scores, no rows.
    let compact = Index::from_bytes(&s.compact_root).unwrap();
    let Index::IvfPq(full) = &s.full else {
        unreachable!()
    };
    let in_memory = Index::from(full.clone().into_compact());
    let p = SearchParams {
        nprobe: 4,
        rerank: 0,
    };
    let mut have = FetchedLists::new();
    for i in 0..fx.n_queries() {
        let q = fx.query(i);
        for (l, r) in compact.missing_lists(q, &p, &have).unwrap() {
            let bytes = &s.compact_lists[r.start as usize..r.end as usize];
            compact.insert_list(&mut have, l, bytes).unwrap();
        }
        let c = compact.candidates_in(q, 10, &p, None, &have).unwrap();
        assert!(!c.needs_rows());
        assert_eq!(
            compact.rerank(q, c, &FetchedRows::new()).unwrap(),
            in_memory.search(q, 10, &p, None).unwrap()
        );
    }
}

#[test]
fn an_attached_lists_file_searches_in_memory_and_is_never_serialized() {
    let fx = Fixture::new(300, 16, 12);
    let s = split(&fx);
    let mut index = Index::from_bytes(&s.root).unwrap();
    let p = SearchParams {
        nprobe: 3,
        rerank: 30,
    };
    // Unattached: the one-call search names the list it lacks.
    assert!(matches!(
        index.search(fx.query(0), 10, &p, None),
        Err(SearchError::MissingList(_))
    ));
    index.attach_lists(&s.lists).unwrap();
    assert!(index.lists_in_memory() && index.has_lists_file());
    assert_eq!(index.to_bytes(), s.root);
    for i in 0..fx.n_queries() {
        let q = fx.query(i);
        assert!(index
            .missing_lists(q, &p, &FetchedLists::new())
            .unwrap()
            .is_empty());
        assert_eq!(
            index.search_rows_file(q, 10, &p, None, &s.rows).unwrap(),
            s.full.search(q, 10, &p, None).unwrap(),
            "query {i}"
        );
    }
    // The lists check the rows, so a row alone is refused; the whole rows file attaches,
    // each row checked along its path, and the index then searches in one call.
    let r = index.row_range(5).unwrap();
    let mut rows = FetchedRows::new();
    assert_eq!(
        index.insert_row(&mut rows, 5, &s.rows[r.start as usize..r.end as usize]),
        Err(RowError::DigestsInLists)
    );
    let Index::IvfPq(mut ivf) = index.clone() else {
        unreachable!()
    };
    let mut corrupt = s.rows.clone();
    corrupt[r.end as usize - 1] ^= 1;
    assert_eq!(
        ivf.clone().attach_rows(&corrupt),
        Err(RowError::DigestMismatch(5))
    );
    ivf.attach_rows(&s.rows).unwrap();
    let attached = Index::from(ivf);
    for i in 0..fx.n_queries() {
        let q = fx.query(i);
        assert_eq!(
            attached.search(q, 10, &p, None).unwrap(),
            s.full.search(q, 10, &p, None).unwrap()
        );
    }
    assert_eq!(
        attached.to_bytes(),
        s.root,
        "attached rows are never serialized"
    );
}

#[test]
fn a_version_4_lists_file_with_row_digests_still_searches() {
    let fx = Fixture::new(300, 16, 15);
    let Index::IvfPq(full) = fx.ivfpq(8, 4, 8, true) else {
        unreachable!()
    };
    let (external, rows) = full.clone().into_external().unwrap();
    let (root, lists) = split_version_4(&external).unwrap();
    assert_eq!(u32::from_le_bytes(root[8..12].try_into().unwrap()), 4);
    assert_eq!(lists.len(), 300 * entry_len(4, true));
    let index = Index::from_bytes(&root).unwrap();
    let full = Index::from(full);
    let mut have = FetchedLists::new();
    let p = SearchParams {
        nprobe: 3,
        rerank: 20,
    };
    for i in 0..fx.n_queries() {
        let q = fx.query(i);
        let got = fetched_search(&index, &lists, &rows, &mut have, q, &p);
        assert_eq!(got, full.search(q, 10, &p, None).unwrap(), "query {i}");
    }
    // Attached, its entries' digests check a row alone, as before.
    let mut attached = index.clone();
    attached.attach_lists(&lists).unwrap();
    let r = attached.row_range(7).unwrap();
    attached
        .insert_row(
            &mut FetchedRows::new(),
            7,
            &rows[r.start as usize..r.end as usize],
        )
        .unwrap();
}

#[test]
fn bad_lists_and_rows_are_refused() {
    let fx = Fixture::new(300, 16, 13);
    let s = split(&fx);
    let index = Index::from_bytes(&s.root).unwrap();
    let Index::IvfPq(ivf) = &index else {
        unreachable!()
    };
    let list = |l: u32| {
        let r = ivf.list_range(l).unwrap();
        &s.lists[r.start as usize..r.end as usize]
    };
    let non_empty: Vec<u32> = (0..8).filter(|&l| !list(l).is_empty()).collect();
    let (a, b) = (non_empty[0], non_empty[1]);
    let mut have = FetchedLists::new();
    let mut flipped = list(a).to_vec();
    flipped[5] ^= 1;
    assert_eq!(
        index.insert_list(&mut have, a, &flipped),
        Err(RowError::ListDigestMismatch(a))
    );
    // Another list's bytes, cut to this one's length where they are longer.
    let other = &list(b)[..list(b).len().min(list(a).len())];
    assert!(index.insert_list(&mut have, a, other).is_err());
    assert!(matches!(
        index.insert_list(&mut have, a, &list(a)[1..]),
        Err(RowError::Length { .. })
    ));
    assert_eq!(
        index.insert_list(&mut have, 8, b""),
        Err(RowError::ListOutOfRange { list: 8, nlist: 8 })
    );
    assert!(have.is_empty(), "nothing bad was kept");
    assert_eq!(
        s.full.insert_list(&mut have, 0, list(0)),
        Err(RowError::NoListsFile)
    );
    assert_eq!(
        fx.flat()
            .missing_lists(fx.query(0), &SearchParams::default(), &have),
        Ok(vec![])
    );

    // Rows: only the candidates', each against the digest its list gave.
    let p = SearchParams {
        nprobe: 8,
        rerank: 20,
    };
    for (l, r) in index.missing_lists(fx.query(0), &p, &have).unwrap() {
        index
            .insert_list(&mut have, l, &s.lists[r.start as usize..r.end as usize])
            .unwrap();
    }
    let c = index
        .candidates_in(fx.query(0), 10, &p, None, &have)
        .unwrap();
    let docs = c.docs();
    let outsider = (0..300u32).find(|d| !docs.contains(d)).unwrap();
    let row = |doc: u32| {
        let r = index.row_range(doc).unwrap();
        &s.rows[r.start as usize..r.end as usize]
    };
    let mut rows = FetchedRows::new();
    assert_eq!(
        c.insert_row(&mut rows, docs[0], row(docs[1])),
        Err(RowError::DigestMismatch(docs[0]))
    );
    // A changed byte in the row or in its path, or a record cut short.
    for at in [6, row(docs[0]).len() - 3] {
        let mut changed = row(docs[0]).to_vec();
        changed[at] ^= 0x10;
        assert_eq!(
            c.insert_row(&mut rows, docs[0], &changed),
            Err(RowError::DigestMismatch(docs[0])),
            "byte {at}"
        );
    }
    assert!(matches!(
        c.insert_row(&mut rows, docs[0], &row(docs[0])[..record_len(16)]),
        Err(RowError::Length { .. })
    ));
    assert_eq!(
        c.insert_row(&mut rows, outsider, row(outsider)),
        Err(RowError::NotACandidate(outsider))
    );
    assert_eq!(
        index.insert_row(&mut rows, docs[0], row(docs[0])),
        Err(RowError::DigestsInLists)
    );
    assert!(rows.is_empty());

    // Whole files: wrong length, one corrupt list.
    let mut attach = index.clone();
    assert!(matches!(
        attach.attach_lists(&s.lists[..s.lists.len() - 1]),
        Err(RowError::Length { .. })
    ));
    let mut corrupt = s.lists.clone();
    let r = ivf.list_range(b).unwrap();
    corrupt[r.start as usize] ^= 0x80;
    assert_eq!(
        attach.attach_lists(&corrupt),
        Err(RowError::ListDigestMismatch(b))
    );
    assert!(!attach.lists_in_memory());

    // A lists file needs the vectors outside the index.
    let Index::IvfPq(embedded) = s.full.clone() else {
        unreachable!()
    };
    assert!(embedded.clone().into_split(None).is_err());
    assert!(IvfPq::into_split(embedded.clone().into_compact(), None).is_ok());
    // External rows split with their own rows file, and only with it.
    let (external, plain) = embedded.clone().into_external().unwrap();
    assert!(external.clone().into_split(None).is_err());
    let mut foreign = plain.clone();
    foreign[1] ^= 1;
    assert!(external.clone().into_split(Some(foreign)).is_err());
    assert!(external
        .clone()
        .into_split(Some(plain[..plain.len() - 1].to_vec()))
        .is_err());
    assert!(embedded.into_compact().into_split(Some(plain)).is_err());
}

#[test]
fn list_digest_section_is_validated_on_load() {
    let fx = Fixture::new(300, 16, 14);
    let s = split(&fx);
    // The digest section is the root's last (8 lists: 64 bytes, no padding after it), so
    // 16 bytes from the end is list 6's digest. Flipped, the checksum refuses the root; resealed,
    // the root loads and list 6 is refused.
    let mut damaged = s.root.clone();
    let at = s.root.len() - 16;
    damaged[at] ^= 1;
    assert!(matches!(
        Index::from_bytes(&damaged),
        Err(FormatError::ChecksumMismatch(SectionKind::ListDigests))
    ));
    reseal(&mut damaged);
    let resealed = Index::from_bytes(&damaged).unwrap();
    let Index::IvfPq(ivf) = &resealed else {
        unreachable!()
    };
    let mut have = FetchedLists::new();
    let list = |l: u32| {
        let r = ivf.list_range(l).unwrap();
        &s.lists[r.start as usize..r.end as usize]
    };
    assert_eq!(
        resealed.insert_list(&mut have, 6, list(6)),
        Err(RowError::ListDigestMismatch(6))
    );
    resealed.insert_list(&mut have, 7, list(7)).unwrap();
    // Row trees are version 5's: a root that says 4 is refused.
    let mut old = s.root.clone();
    old[8..12].copy_from_slice(&4u32.to_le_bytes());
    reseal(&mut old);
    assert!(matches!(
        Index::from_bytes(&old),
        Err(FormatError::BadMetadata(_))
    ));
    // Truncated: the file ends inside a section.
    assert!(Index::from_bytes(&s.root[..s.root.len() - 40]).is_err());
}
