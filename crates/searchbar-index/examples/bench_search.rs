//! Rough native timing on a synthetic 5,183 x 384 corpus (SciFact-sized).
//! `cargo run --release -p searchbar-index --example bench_search`
use searchbar_index::metrics::recall_at_k;
use searchbar_index::testing::{clustered_unit_vectors, exact_search, kmeans, train_pq};
use searchbar_index::{FlatInt8, Index, IvfPq, SearchParams};
use std::time::Instant;

fn main() {
    let (n, d, nq) = (5183, 384, 300);
    let data = clustered_unit_vectors(n, d, 200, 0.8, 1);
    let queries = clustered_unit_vectors(nq, d, 200, 0.8, 1_000);
    let truth: Vec<Vec<u32>> = queries
        .chunks_exact(d)
        .map(|q| {
            exact_search(&data, d, q, 10)
                .iter()
                .map(|h| h.doc)
                .collect()
        })
        .collect();
    let t = Instant::now();
    let centroids = kmeans(&data, d, 64, 8, 3);
    let pq = train_pq(&data[..4096 * d], d, 48, 8, 6, 5).unwrap();
    eprintln!("train {:?}", t.elapsed());
    let flat: Index = FlatInt8::build(d, &data).unwrap().into();
    let ivf: Index = IvfPq::build(&data, centroids.clone(), pq, false)
        .unwrap()
        .into();
    let res: Vec<f32> = data
        .chunks_exact(d)
        .flat_map(|x| {
            let c = centroids
                .chunks_exact(d)
                .max_by(|a, b| dot(x, a).total_cmp(&dot(x, b)))
                .unwrap();
            x.iter().zip(c).map(|(a, b)| a - b).collect::<Vec<_>>()
        })
        .collect();
    let pq_r = train_pq(&res[..4096 * d], d, 48, 8, 6, 5).unwrap();
    let ivf_r: Index = IvfPq::build(&data, centroids, pq_r, true).unwrap().into();
    eprintln!(
        "bytes flat {} ivf {}",
        flat.to_bytes().len(),
        ivf.to_bytes().len()
    );
    let t = Instant::now();
    let _ = Index::from_bytes(&ivf.to_bytes()).unwrap();
    eprintln!("to+from bytes ivf {:?}", t.elapsed());
    for (name, index, params) in [
        (
            "flat rerank0",
            &flat,
            SearchParams {
                nprobe: 0,
                rerank: 0,
            },
        ),
        (
            "flat rerank100",
            &flat,
            SearchParams {
                nprobe: 0,
                rerank: 100,
            },
        ),
        (
            "ivf np8 rr100",
            &ivf,
            SearchParams {
                nprobe: 8,
                rerank: 100,
            },
        ),
        (
            "ivf np16 rr100",
            &ivf,
            SearchParams {
                nprobe: 16,
                rerank: 100,
            },
        ),
        (
            "ivf np16 rr200",
            &ivf,
            SearchParams {
                nprobe: 16,
                rerank: 200,
            },
        ),
        (
            "ivf np64 rr100",
            &ivf,
            SearchParams {
                nprobe: 64,
                rerank: 100,
            },
        ),
        (
            "ivfR np8 rr100",
            &ivf_r,
            SearchParams {
                nprobe: 8,
                rerank: 100,
            },
        ),
        (
            "ivfR np16 rr100",
            &ivf_r,
            SearchParams {
                nprobe: 16,
                rerank: 100,
            },
        ),
        (
            "ivfR np16 rr0",
            &ivf_r,
            SearchParams {
                nprobe: 16,
                rerank: 0,
            },
        ),
    ] {
        let t = Instant::now();
        let mut recall = 0.0;
        for _ in 0..3 {
            recall = 0.0;
            for (q, tr) in queries.chunks_exact(d).zip(&truth) {
                let hits = index.search(q, 10, &params, None).unwrap();
                let docs: Vec<u32> = hits.iter().map(|h| h.doc).collect();
                recall += recall_at_k(&docs, tr, 10);
            }
        }
        let per = t.elapsed().as_secs_f64() * 1e6 / (3 * nq) as f64;
        println!(
            "{name:16} {per:8.1} us/query  recall@10 {:.4}",
            recall / nq as f64
        );
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
