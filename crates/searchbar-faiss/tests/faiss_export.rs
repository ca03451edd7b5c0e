//! Trains real FAISS IVF-PQ indexes on synthetic clustered unit vectors and
//! checks the export against FAISS itself: decoded codes, search results,
//! exact search, determinism and error handling.

use searchbar_faiss::serial::{pack_code, parse_ivfpq, set_by_residual};
use searchbar_faiss::{exact_search, train_ivfpq, FaissError, FaissIvfPq, IvfPqParams};
use searchbar_index::testing::clustered_unit_vectors;
use searchbar_index::{IvfPq, SearchParams};

const N: usize = 4000;
const NQ: usize = 200;

/// `N` corpus vectors and `NQ` queries drawn around the same centres.
fn data(dim: usize) -> (Vec<f32>, Vec<f32>) {
    let mut all = clustered_unit_vectors(N + NQ, dim, 40, 0.7, 7);
    let queries = all.split_off(N * dim);
    (all, queries)
}

fn params(nlist: usize, m: usize, nbits: u32, by_residual: bool) -> IvfPqParams {
    IvfPqParams {
        nlist,
        m,
        nbits,
        by_residual,
        seed: 42,
        train_sample: None,
    }
}

/// Every exported (list, code) decoded by `PqCodebook::decode` (+ the coarse
/// centroid when by_residual) equals FAISS's `sa_decode` of the same code
/// re-packed in FAISS's standalone format.
fn check_decode(dim: usize, p: IvfPqParams) {
    let (vectors, _) = data(dim);
    let faiss = FaissIvfPq::train(dim, &vectors, &p).unwrap();
    let ours = faiss.export(&vectors).unwrap();
    assert_eq!(ours.nlist(), p.nlist);
    assert_eq!(ours.by_residual(), p.by_residual);
    assert_eq!(ours.pq().nbits(), p.nbits);
    assert_eq!(ours.pq().m(), p.m);
    assert_eq!(ours.len(), N);

    let prefix = faiss.coarse_code_size();
    assert_eq!(
        faiss.sa_code_size().unwrap(),
        prefix + (p.m * p.nbits as usize).div_ceil(8)
    );
    let mut sa = Vec::new();
    let mut expected = Vec::new();
    let mut docs = Vec::new();
    for l in 0..ours.nlist() {
        let (ids, codes) = ours.list(l).unwrap();
        let centroid = &ours.centroids()[l * dim..(l + 1) * dim];
        for (&id, code) in ids.iter().zip(codes.chunks_exact(p.m)) {
            sa.extend_from_slice(&(l as u64).to_le_bytes()[..prefix]);
            sa.extend_from_slice(&pack_code(code, p.nbits).unwrap());
            let mut v = ours.pq().decode(code).unwrap();
            if p.by_residual {
                v.iter_mut().zip(centroid).for_each(|(x, c)| *x += c);
            }
            expected.extend(v);
            docs.push(id as usize);
        }
    }
    assert_eq!(docs.len(), N);
    let got = faiss.sa_decode(&sa).unwrap();
    assert_eq!(got.len(), expected.len());
    let max_diff = got
        .iter()
        .zip(&expected)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(max_diff <= 1e-6, "max |faiss - ours| = {max_diff}");
    let exact = got.iter().zip(&expected).filter(|(a, b)| a == b).count();
    eprintln!(
        "{}: {exact}/{} decoded floats bit-identical, max diff {max_diff}",
        p.factory_string(),
        got.len()
    );

    // The exported codes are FAISS's own standalone codes of the vectors.
    let enc = faiss.sa_encode(&vectors).unwrap();
    let size = faiss.sa_code_size().unwrap();
    let mut pos = 0;
    for l in 0..ours.nlist() {
        let (ids, codes) = ours.list(l).unwrap();
        for (&id, code) in ids.iter().zip(codes.chunks_exact(p.m)) {
            let doc = id as usize;
            let (list, unpacked) = faiss
                .split_sa_code(&enc[doc * size..(doc + 1) * size])
                .unwrap();
            assert_eq!((list, unpacked.as_slice()), (l, code), "doc {doc}");
            assert_eq!(docs[pos], doc);
            pos += 1;
        }
    }
}

#[test]
fn decode_matches_faiss_nbits8_residual() {
    check_decode(64, params(32, 16, 8, true));
}

#[test]
fn decode_matches_faiss_nbits4_residual() {
    check_decode(64, params(32, 16, 4, true));
}

#[test]
fn decode_matches_faiss_nbits6_two_byte_list_prefix() {
    // nlist 300 needs a 2-byte list number; nbits 6 packs across bytes.
    check_decode(64, params(300, 8, 6, true));
}

#[test]
fn decode_matches_faiss_no_residual() {
    check_decode(64, params(32, 16, 8, false));
}

/// Average |ours ∩ faiss| / k over all queries, and the largest score gap
/// on shared docs.
fn compare_search(dim: usize, p: IvfPqParams, nprobe: usize) -> (f64, f32) {
    let (vectors, queries) = data(dim);
    let mut faiss = FaissIvfPq::train(dim, &vectors, &p).unwrap();
    let ours: IvfPq = faiss.export(&vectors).unwrap();
    let k = 10;
    let theirs = faiss.search(&queries, k, nprobe).unwrap();
    assert_eq!(theirs.len(), NQ);
    let sp = SearchParams { nprobe, rerank: 0 };
    let mut overlap = 0.0;
    let mut max_gap = 0.0f32;
    for (q, t) in queries.chunks_exact(dim).zip(&theirs) {
        let hits = ours.search(q, k, &sp, None).unwrap();
        assert_eq!(hits.len(), k);
        assert_eq!(t.len(), k);
        let shared = hits
            .iter()
            .filter(|h| t.iter().any(|&(d, _)| d == h.doc))
            .count();
        overlap += shared as f64 / k as f64;
        for h in &hits {
            if let Some(&(_, s)) = t.iter().find(|&&(d, _)| d == h.doc) {
                max_gap = max_gap.max((s - h.score).abs());
            }
        }
    }
    let avg = overlap / NQ as f64;
    eprintln!(
        "{} nprobe {nprobe}: top-{k} overlap {avg:.4}, max score gap {max_gap:e}",
        p.factory_string()
    );
    (avg, max_gap)
}

#[test]
fn search_matches_faiss_nbits8() {
    let (overlap, gap) = compare_search(64, params(32, 16, 8, true), 8);
    assert!(overlap >= 0.99, "overlap {overlap}");
    assert!(gap <= 1e-4, "score gap {gap}");
}

#[test]
fn search_matches_faiss_nbits4() {
    let (overlap, gap) = compare_search(64, params(32, 16, 4, true), 4);
    assert!(overlap >= 0.99, "overlap {overlap}");
    assert!(gap <= 1e-4, "score gap {gap}");
}

#[test]
fn search_matches_faiss_no_residual() {
    let (overlap, gap) = compare_search(64, params(32, 16, 8, false), 8);
    assert!(overlap >= 0.99, "overlap {overlap}");
    assert!(gap <= 1e-4, "score gap {gap}");
}

#[test]
fn search_matches_faiss_384d_minilm_shape() {
    // The production shape: 384-d, 48 sub-quantizers of 8 dims, 8 bits.
    let (overlap, gap) = compare_search(384, params(64, 48, 8, true), 16);
    assert!(overlap >= 0.99, "overlap {overlap}");
    assert!(gap <= 1e-4, "score gap {gap}");
}

#[test]
fn exact_search_matches_brute_force() {
    let dim = 64;
    let (vectors, queries) = data(dim);
    let k = 10;
    let got = exact_search(dim, &vectors, &queries, k).unwrap();
    assert_eq!(got.len(), NQ);
    for (q, hits) in queries.chunks_exact(dim).zip(&got) {
        let mut all: Vec<(u32, f32)> = (0u32..)
            .zip(vectors.chunks_exact(dim))
            .map(|(i, x)| (i, q.iter().zip(x).map(|(a, b)| a * b).sum()))
            .collect();
        all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        assert_eq!(hits.len(), k);
        for (rank, (&(doc, score), &(bdoc, bscore))) in hits.iter().zip(&all).enumerate() {
            assert!(
                (score - bscore).abs() <= 1e-5,
                "rank {rank}: {score} vs {bscore}"
            );
            // Same doc unless two brute-force scores tie within rounding.
            if doc != bdoc {
                let own = all.iter().find(|e| e.0 == doc).unwrap().1;
                assert!((own - bscore).abs() <= 1e-5, "rank {rank}: {doc} vs {bdoc}");
            }
        }
    }
    // k larger than the corpus, and k = 0.
    let small = exact_search(dim, &vectors[..3 * dim], &queries[..dim], 10).unwrap();
    assert_eq!(small[0].len(), 3);
    assert!(exact_search(dim, &vectors, &queries, 0).unwrap()[0].is_empty());
}

#[test]
fn training_is_deterministic() {
    let dim = 32;
    let (vectors, _) = data(dim);
    let p = IvfPqParams {
        train_sample: Some(2500),
        ..params(16, 8, 8, true)
    };
    let a = train_ivfpq(dim, &vectors, &p).unwrap();
    let b = train_ivfpq(dim, &vectors, &p).unwrap();
    assert_eq!(a, b, "same seed, same index");
    let c = train_ivfpq(dim, &vectors, &IvfPqParams { seed: 7, ..p }).unwrap();
    assert_ne!(a.centroids(), c.centroids(), "the seed reaches k-means");
}

#[test]
fn serialization_parser_is_strict() {
    let dim = 16;
    let (vectors, _) = data(dim);
    let faiss = FaissIvfPq::train(dim, &vectors[..1000 * dim], &params(8, 4, 4, true)).unwrap();
    let bytes = faiss.to_faiss_bytes().unwrap();
    let parsed = parse_ivfpq(&bytes).unwrap();
    assert_eq!(
        (parsed.dim, parsed.nlist, parsed.pq_m, parsed.pq_nbits),
        (16, 8, 4, 4)
    );
    assert_eq!(parsed.ntotal, 1000);
    assert!(parsed.by_residual);
    assert_eq!(parsed.pq_centroids.len(), 16 * 16);
    // Every truncation is an error naming a field, never a panic.
    for len in 0..bytes.len() {
        match parse_ivfpq(&bytes[..len]) {
            Err(FaissError::Format { .. }) => {}
            other => panic!("truncated to {len}: {other:?}"),
        }
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(
        parse_ivfpq(&longer),
        Err(FaissError::Format {
            field: "end of index",
            ..
        })
    ));
    let mut flipped = bytes.clone();
    set_by_residual(&mut flipped, false).unwrap();
    assert!(!parse_ivfpq(&flipped).unwrap().by_residual);
    flipped[parsed.by_residual_offset] = 7;
    assert!(matches!(
        parse_ivfpq(&flipped),
        Err(FaissError::Format {
            field: "by_residual",
            ..
        })
    ));
}

#[test]
fn bad_params_are_errors() {
    let dim = 16;
    let (vectors, queries) = data(dim);
    let ok = params(8, 4, 8, true);
    let train = |d: usize, v: &[f32], p: IvfPqParams| FaissIvfPq::train(d, v, &p).map(|_| ());

    assert!(matches!(
        train(dim, &vectors, IvfPqParams { m: 5, ..ok }),
        Err(FaissError::MDoesNotDivideDim { m: 5, dim: 16 })
    ));
    assert!(matches!(
        train(dim, &vectors, IvfPqParams { m: 0, ..ok }),
        Err(FaissError::MDoesNotDivideDim { m: 0, .. })
    ));
    assert!(matches!(
        train(dim, &vectors, IvfPqParams { nbits: 0, ..ok }),
        Err(FaissError::BadNbits(0))
    ));
    assert!(matches!(
        train(dim, &vectors, IvfPqParams { nbits: 9, ..ok }),
        Err(FaissError::BadNbits(9))
    ));
    assert!(matches!(
        train(dim, &vectors, IvfPqParams { nlist: 0, ..ok }),
        Err(FaissError::BadNlist { nlist: 0, .. })
    ));
    assert!(matches!(
        train(dim, &vectors[..300 * dim], IvfPqParams { nlist: 301, ..ok }),
        Err(FaissError::BadNlist {
            nlist: 301,
            n_train: 300
        })
    ));
    assert!(matches!(
        train(dim, &vectors[..100 * dim], ok),
        Err(FaissError::TrainingSetTooSmall {
            n_train: 100,
            ksub: 256
        })
    ));
    assert!(matches!(
        train(
            dim,
            &vectors,
            IvfPqParams {
                train_sample: Some(200),
                ..ok
            }
        ),
        Err(FaissError::TrainingSetTooSmall { n_train: 200, .. })
    ));
    assert!(matches!(
        train(
            dim,
            &vectors,
            IvfPqParams {
                train_sample: Some(0),
                ..ok
            }
        ),
        Err(FaissError::InvalidParam(_))
    ));
    assert!(matches!(
        train(dim, &vectors[..dim * 500 + 3], ok),
        Err(FaissError::Dimension(_))
    ));
    assert!(matches!(
        train(0, &vectors, ok),
        Err(FaissError::Dimension(_))
    ));
    let mut nan = vectors[..500 * dim].to_vec();
    nan[17] = f32::NAN;
    assert!(matches!(
        train(dim, &nan, ok),
        Err(FaissError::NonFinite(_))
    ));

    assert!(matches!(
        exact_search(dim, &vectors, &queries[..dim - 1], 5),
        Err(FaissError::Dimension(_))
    ));
    let mut faiss = FaissIvfPq::train(dim, &vectors[..1000 * dim], &ok).unwrap();
    assert!(matches!(
        faiss.search(&queries[..dim + 1], 5, 4),
        Err(FaissError::Dimension(_))
    ));
    // Exporting with vectors other than those added.
    assert!(matches!(
        faiss.export(&vectors[..999 * dim]),
        Err(FaissError::Export(_))
    ));
    // A corrupt standalone code is rejected before FAISS sees it.
    let mut code = faiss.sa_encode(&vectors[..dim]).unwrap();
    code[0] = 200; // list 200 >= nlist 8
    assert!(matches!(
        faiss.sa_decode(&code),
        Err(FaissError::InvalidParam(_))
    ));
    assert!(faiss.sa_decode(&code[..code.len() - 1]).is_err());
}
