//! What a page fetches and how long a lexical query takes, for BENCHMARKS.md:
//!
//! ```text
//! cargo run --release -p searchbar-lexical --example lexical_bench -- scifact DIR
//! cargo run --release -p searchbar-lexical --example lexical_bench -- synthetic 1000000
//! ```
//!
//! A third argument sets the fragment size (`fragment_bytes`, default 4 KiB).
//!
//! `scifact`: BEIR SciFact's documents (title, and title + text as the pipeline's template
//! renders them) and its 300 judged test queries. `synthetic`: N documents of 20 to 80 words
//! drawn from a Zipfian vocabulary of 200,000 made-up words (s = 1.0), titles of 5, and 200
//! two-word queries drawn the same way. For each query: the fragment bytes fetched to answer
//! it (finished, and as typed: the last word completing as a prefix), and the search time
//! with its fragments at hand.

use rand::{RngExt, SeedableRng};
use rand_distr::Zipf;
use searchbar_lexical::{build, Analysis, BuildConfig, Fragment, LexicalIndex, Outcome};
use std::collections::HashSet;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (docs, queries) = match args.first().map(String::as_str) {
        Some("scifact") => scifact(args.get(1).expect("the SciFact directory")),
        Some("synthetic") => synthetic(args.get(1).map_or(1_000_000, |n| n.parse().unwrap())),
        _ => panic!("usage: lexical_bench scifact DIR | synthetic N"),
    };
    let mut cfg = BuildConfig {
        analysis: Analysis::default(),
        title_weight: 2.0,
        ..BuildConfig::default()
    };
    if let Some(bytes) = args.get(2) {
        cfg.fragment_bytes = bytes.parse().unwrap();
    }
    let started = Instant::now();
    let built = build(&cfg, docs.iter().map(|(t, x)| (t.as_str(), x.as_str()))).unwrap();
    let build_s = started.elapsed().as_secs_f64();
    let total: usize = built.fragments.iter().map(Vec::len).sum();
    let largest = built.fragments.iter().map(Vec::len).max().unwrap_or(0);
    println!(
        "{} documents: built in {build_s:.1} s; {} terms, {} postings; root {} B, {} fragments, \
         {total} B in all (largest {largest} B)",
        docs.len(),
        built.terms,
        built.postings,
        built.root.len(),
        built.fragments.len()
    );
    let index = LexicalIndex::from_root(&built.root, "root").unwrap();
    let parsed: Vec<Fragment> = built
        .fragments
        .iter()
        .enumerate()
        .map(|(n, b)| index.fragment(n, b, "fragment").unwrap())
        .collect();
    for (label, suffix) in [("finished (text ends in a space)", " "), ("as typed", "")] {
        let mut fetched: Vec<usize> = Vec::new();
        let mut rounds: Vec<usize> = Vec::new();
        for q in &queries {
            let text = format!("{q}{suffix}");
            let mut have: HashSet<usize> = HashSet::new();
            let (mut bytes, mut round) = (0, 0);
            loop {
                let outcome = index
                    .search(&text, 100, &|n| have.contains(&n).then(|| &parsed[n]))
                    .unwrap();
                match outcome {
                    Outcome::Done(_) => break,
                    Outcome::Need(need) => {
                        round += 1;
                        for n in need {
                            bytes += built.fragments[n].len();
                            have.insert(n);
                        }
                    }
                }
            }
            fetched.push(bytes);
            rounds.push(round);
        }
        fetched.sort_unstable();
        let mean = fetched.iter().sum::<usize>() as f64 / fetched.len() as f64;
        println!(
            "{} queries, {label}: fetched bytes p50 {} B, p95 {} B, max {} B, mean {mean:.0} B; \
             at most {} fetch rounds",
            queries.len(),
            fetched[fetched.len() / 2],
            fetched[fetched.len() * 95 / 100],
            fetched[fetched.len() - 1],
            rounds.iter().max().unwrap_or(&0)
        );
    }
    let mut ms: Vec<f64> = Vec::new();
    for _ in 0..3 {
        for q in &queries {
            let t = Instant::now();
            let outcome = index.search(q, 100, &|n| Some(&parsed[n])).unwrap();
            ms.push(t.elapsed().as_secs_f64() * 1e3);
            assert!(matches!(outcome, Outcome::Done(_)));
        }
    }
    ms.sort_by(f64::total_cmp);
    println!(
        "search with every fragment at hand (as typed, top 100): p50 {:.3} ms, p95 {:.3} ms",
        ms[ms.len() / 2],
        ms[ms.len() * 95 / 100]
    );
}

type Corpus = (Vec<(String, String)>, Vec<String>);

fn scifact(dir: &str) -> Corpus {
    let read = |name: &str| std::fs::read_to_string(format!("{dir}/{name}")).unwrap();
    let docs = read("corpus.jsonl")
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let title = v["title"].as_str().unwrap_or("").to_string();
            let text = format!("{title}. {}", v["text"].as_str().unwrap_or(""));
            (title, text)
        })
        .collect();
    let judged: HashSet<String> = read("qrels/test.tsv")
        .lines()
        .skip(1)
        .filter_map(|l| l.split('\t').next().map(str::to_string))
        .collect();
    let queries = read("queries.jsonl")
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| judged.contains(v["_id"].as_str().unwrap()))
        .map(|v| v["text"].as_str().unwrap().to_string())
        .collect();
    (docs, queries)
}

/// A made-up word for vocabulary rank `r`: consonant-vowel syllables, so that stemming and
/// the stop list leave it alone.
fn word(r: u64) -> String {
    const C: &[u8] = b"bdfgklmnprstvz";
    const V: &[u8] = b"aeiou";
    let mut out = String::new();
    let mut r = r + 70;
    while r > 0 {
        out.push(C[(r % 14) as usize] as char);
        r /= 14;
        out.push(V[(r % 5) as usize] as char);
        r /= 5;
    }
    out
}

fn synthetic(n: usize) -> Corpus {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let zipf = Zipf::new(200_000.0, 1.0).unwrap();
    let draw = |k: usize, rng: &mut rand::rngs::StdRng| -> String {
        (0..k)
            .map(|_| word(rng.sample(zipf) as u64 - 1))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let docs = (0..n)
        .map(|_| {
            let len = rng.random_range(20..=80);
            (draw(5, &mut rng), draw(len, &mut rng))
        })
        .collect();
    let queries = (0..200).map(|_| draw(2, &mut rng)).collect();
    (docs, queries)
}
