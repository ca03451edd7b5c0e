//! What a page fetches and how long a lexical query takes, for BENCHMARKS.md:
//!
//! ```text
//! cargo run --release -p searchbar-lexical --example lexical_bench -- scifact DIR
//! cargo run --release -p searchbar-lexical --example lexical_bench -- synthetic 1000000
//! cargo run --release -p searchbar-lexical --example lexical_bench -- scifact-distractors DIR N
//! ```
//!
//! A third argument sets the fragment size (`fragment_bytes`, default 4 KiB). `--dump DIR`
//! writes the index (`root.bin`, `N.bin`) and the queries (`queries.json`) for the Chromium
//! benchmark (tests/wasm_bench.rs, scripts/bench/lexical.sh).
//!
//! `--corpus DIR` writes the corpus instead, in BEIR's layout (`corpus.jsonl`, `queries.jsonl`,
//! `qrels/test.tsv`: each query judges the first document holding both its words), for a
//! release of it made by the pipeline (scripts/bench/million.sh), and stops.
//!
//! `scifact`: BEIR SciFact's documents (title, and title + text as the pipeline's template
//! renders them) and its 300 judged test queries. `synthetic`: N documents of 20 to 80 words
//! drawn from a Zipfian vocabulary of 200,000 made-up words (s = 1.0), titles of 5, and 200
//! two-word queries drawn the same way. For each query: the fragment bytes fetched to answer
//! it (finished, and as typed: the last word completing as a prefix), and the search time
//! with its fragments at hand. Then what the postings budget costs: each query's top 10 as
//! searched against the top 10 with every block read (and, for SciFact, nDCG@10 both ways).
//!
//! `scifact-distractors`: what the budget costs real queries when their words' lists are as
//! long as at N documents. SciFact's documents, and N minus them made of the sentences of its
//! unjudged documents (each as many sentences as an unjudged document has, drawn at random
//! from all of them, under an unjudged document's title), so that no distractor holds a
//! sentence of a document either split judges. Judged by the training queries (the split a
//! budget is chosen on) and the test queries, each reported on its own.

use rand::{RngExt, SeedableRng};
use rand_distr::Zipf;
use searchbar_lexical::{build, Analysis, BuildConfig, Fragment, LexicalIndex, Outcome};
use std::collections::{HashMap, HashSet};
use std::time::Instant;

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let dump = args.iter().position(|a| a == "--dump").map(|i| {
        let dir = args.get(i + 1).expect("--dump DIR").clone();
        args.drain(i..i + 2);
        dir
    });
    let corpus = args.iter().position(|a| a == "--corpus").map(|i| {
        let dir = args.get(i + 1).expect("--corpus DIR").clone();
        args.drain(i..i + 2);
        dir
    });
    let (docs, queries, judged, splits) = match args.first().map(String::as_str) {
        Some("scifact") => scifact(args.get(1).expect("the SciFact directory"), &["test"], 0),
        Some("scifact-distractors") => scifact(
            args.get(1).expect("the SciFact directory"),
            &["train", "test"],
            args.get(2).expect("the documents in all").parse().unwrap(),
        ),
        Some("synthetic") => synthetic(args.get(1).map_or(1_000_000, |n| n.parse().unwrap())),
        _ => panic!("usage: lexical_bench scifact DIR | scifact-distractors DIR N | synthetic N"),
    };
    // The fragment size follows the corpus's own arguments.
    let args: Vec<String> = if args.first().map(String::as_str) == Some("scifact-distractors") {
        args.into_iter().skip(1).collect()
    } else {
        args
    };
    if let Some(dir) = corpus {
        return write_corpus(&dir, &docs, &queries);
    }
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
    if let Some(dir) = &dump {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(format!("{dir}/root.bin"), &built.root).unwrap();
        for (n, b) in built.fragments.iter().enumerate() {
            std::fs::write(format!("{dir}/{n}.bin"), b).unwrap();
        }
        std::fs::write(
            format!("{dir}/queries.json"),
            serde_json::to_vec(&queries).unwrap(),
        )
        .unwrap();
    }
    let index = LexicalIndex::from_root(&built.root, "root").unwrap();
    println!(
        "{} documents: built in {build_s:.1} s; {} terms, {} postings; root {} B, {} fragments, \
         {total} B in all (largest {largest} B); {} lists continue in {} postings blocks",
        docs.len(),
        built.terms,
        built.postings,
        built.root.len(),
        built.fragments.len(),
        built.long_lists,
        built.fragments.len() - index.root().first_block(),
    );
    let parsed: Vec<Fragment> = built
        .fragments
        .iter()
        .enumerate()
        .map(|(n, b)| index.fragment(n, b, "fragment").unwrap())
        .collect();
    let fetch_bytes = |index: &LexicalIndex, suffix: &str| -> (Vec<usize>, usize) {
        let mut fetched: Vec<usize> = Vec::new();
        let mut rounds = 0;
        for q in &queries {
            let text = format!("{q}{suffix}");
            let mut have: HashSet<usize> = HashSet::new();
            let (mut bytes, mut round) = (0, 0);
            while let Outcome::Need(need) = index
                .search(&text, 100, &|n| have.contains(&n).then(|| &parsed[n]))
                .unwrap()
            {
                round += 1;
                for n in need {
                    bytes += built.fragments[n].len();
                    have.insert(n);
                }
            }
            fetched.push(bytes);
            rounds = rounds.max(round);
        }
        fetched.sort_unstable();
        (fetched, rounds)
    };
    for (label, suffix) in [("finished (text ends in a space)", " "), ("as typed", "")] {
        let (fetched, rounds) = fetch_bytes(&index, suffix);
        let mean = fetched.iter().sum::<usize>() as f64 / fetched.len() as f64;
        println!(
            "{} queries, {label}: fetched bytes p50 {} B, p95 {} B, max {} B, mean {mean:.0} B; \
             at most {rounds} fetch rounds",
            queries.len(),
            fetched[fetched.len() / 2],
            fetched[fetched.len() * 95 / 100],
            fetched[fetched.len() - 1],
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

    // What the budget costs and saves: each finished query's top 10 against the top 10 with
    // every block read.
    let with = |budget: u32| {
        LexicalIndex::from_root(&built.root, "root")
            .unwrap()
            .with_budget(budget)
    };
    let exhaustive = with(u32::MAX);
    let top = |index: &LexicalIndex, q: &str, k: usize| -> Vec<searchbar_lexical::Hit> {
        match index
            .search(&format!("{q} "), k, &|n| Some(&parsed[n]))
            .unwrap()
        {
            Outcome::Done(m) => m.hits,
            Outcome::Need(_) => unreachable!("every fragment is at hand"),
        }
    };
    // Every matching document's full score, and the full ranking's top 10. Many documents
    // share a score (impacts are integers): a document whose full score ties the full
    // ranking's 10th is as good a 10th, so count those too.
    let mut full: Vec<Vec<u32>> = Vec::new();
    let mut exact: Vec<(HashMap<u32, f32>, f32)> = Vec::new();
    for q in &queries {
        let all = top(&exhaustive, q, docs.len());
        full.push(all.iter().take(10).map(|h| h.doc).collect());
        let tenth = all.get(9).or(all.last()).map_or(0.0, |h| h.score);
        exact.push((all.into_iter().map(|h| (h.doc, h.score)).collect(), tenth));
    }
    let root_budget = index.root().meta.budget;
    let mut budgets = vec![
        2048,
        4096,
        8192,
        12288,
        16384,
        32768,
        65536,
        root_budget,
        u32::MAX,
    ];
    budgets.sort_unstable();
    budgets.dedup();
    // Each judged query's nDCG@10 with every block read, to set each budget's against: the
    // mean of the paired differences and its standard error, per split.
    let base: Vec<f64> = judged
        .iter()
        .zip(&full)
        .map(|(gains, top10)| ndcg10(top10, gains))
        .collect();
    for budget in budgets {
        let index = with(budget);
        let (mut same, mut overlap, mut qualified) = (0, 0.0, 0.0);
        // Per split: sum of nDCG@10, of the difference to every block's, of its square, and
        // the count.
        let mut ndcg: Vec<(&str, [f64; 3], usize)> = Vec::new();
        for (i, q) in queries.iter().enumerate() {
            let got: Vec<u32> = top(&index, q, 10).iter().map(|h| h.doc).collect();
            same += usize::from(got == full[i]);
            let common = got.iter().filter(|d| full[i].contains(d)).count();
            overlap += common as f64 / full[i].len().max(1) as f64;
            let (scores, tenth) = &exact[i];
            let good = got.iter().filter(|d| scores[d] >= *tenth).count();
            qualified += good as f64 / got.len().max(1) as f64;
            if let Some(gains) = judged.get(i) {
                let score = ndcg10(&got, gains);
                let diff = score - base[i];
                let at = match ndcg.iter().position(|(s, ..)| *s == splits[i]) {
                    Some(at) => at,
                    None => {
                        ndcg.push((splits[i], [0.0; 3], 0));
                        ndcg.len() - 1
                    }
                };
                let (_, sums, n) = &mut ndcg[at];
                sums[0] += score;
                sums[1] += diff;
                sums[2] += diff * diff;
                *n += 1;
            }
        }
        let (fetched, _) = fetch_bytes(&index, " ");
        let n = queries.len() as f64;
        let judged_ndcg: String = ndcg
            .iter()
            .map(|(split, [sum, diff, square], n)| {
                let n = *n as f64;
                let mean = diff / n;
                let se = ((square / n - mean * mean).max(0.0) / n).sqrt();
                format!(
                    ", nDCG@10 {split} ({n}) {:.4} ({mean:+.4} ± {se:.4} against every block)",
                    sum / n
                )
            })
            .collect();
        println!(
            "budget {}{}: finished queries fetch p50 {} B, p95 {} B; top 10 as with every block \
             for {same} of {}, mean overlap {:.3}, of which or tied {:.3}{judged_ndcg}",
            if budget == u32::MAX {
                "unlimited".to_string()
            } else {
                budget.to_string()
            },
            if budget == root_budget {
                " (the root's)"
            } else {
                ""
            },
            fetched[fetched.len() / 2],
            fetched[fetched.len() * 95 / 100],
            queries.len(),
            overlap / n,
            qualified / n,
        );
    }
}

/// nDCG@10 of a ranking against graded judgments (document ordinal → gain).
fn ndcg10(ranked: &[u32], gains: &HashMap<u32, f64>) -> f64 {
    let dcg = |g: &mut dyn Iterator<Item = f64>| -> f64 {
        g.take(10)
            .enumerate()
            .map(|(i, g)| g / (i as f64 + 2.0).log2())
            .sum()
    };
    let mut ideal: Vec<f64> = gains.values().copied().collect();
    ideal.sort_by(|a, b| b.total_cmp(a));
    let best = dcg(&mut ideal.into_iter());
    let got = dcg(&mut ranked.iter().map(|d| gains.get(d).copied().unwrap_or(0.0)));
    if best > 0.0 {
        got / best
    } else {
        0.0
    }
}

/// Documents (title, text), queries, for judged queries their gains by document ordinal, and
/// each judged query's split.
type Corpus = (
    Vec<(String, String)>,
    Vec<String>,
    Vec<HashMap<u32, f64>>,
    Vec<&'static str>,
);

/// SciFact judged by `splits`' queries, with distractors up to `total` documents.
fn scifact(dir: &str, splits: &[&'static str], total: usize) -> Corpus {
    let read = |name: &str| std::fs::read_to_string(format!("{dir}/{name}")).unwrap();
    let mut ordinals: HashMap<String, u32> = HashMap::new();
    let mut bodies: Vec<String> = Vec::new();
    let mut docs: Vec<(String, String)> = read("corpus.jsonl")
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let title = v["title"].as_str().unwrap_or("").to_string();
            bodies.push(v["text"].as_str().unwrap_or("").to_string());
            let text = format!("{title}. {}", bodies[bodies.len() - 1]);
            let next = ordinals.len() as u32;
            ordinals.insert(v["_id"].as_str().unwrap().to_string(), next);
            (title, text)
        })
        .collect();
    let (mut queries, mut gains, mut labels) = (Vec::new(), Vec::new(), Vec::new());
    let mut judged_docs: HashSet<u32> = HashSet::new();
    let all_queries = read("queries.jsonl");
    for &split in splits {
        let mut judged: HashMap<String, HashMap<u32, f64>> = HashMap::new();
        for l in read(&format!("qrels/{split}.tsv")).lines().skip(1) {
            let f: Vec<&str> = l.split('\t').collect();
            if let (Some(q), Some(d), Some(g)) = (f.first(), f.get(1), f.get(2)) {
                let gains = judged.entry(q.to_string()).or_default();
                if let (Some(&d), Ok(g)) = (ordinals.get(*d), g.parse::<f64>()) {
                    gains.insert(d, g);
                    judged_docs.insert(d);
                }
            }
        }
        for l in all_queries.lines() {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            if let Some(g) = judged.remove(v["_id"].as_str().unwrap()) {
                queries.push(v["text"].as_str().unwrap().to_string());
                gains.push(g);
                labels.push(split);
            }
        }
    }
    // Distractors: unjudged documents' sentences, recombined.
    let unjudged: Vec<usize> = (0..docs.len())
        .filter(|d| !judged_docs.contains(&(*d as u32)))
        .collect();
    let sentences: Vec<Vec<&str>> = unjudged
        .iter()
        .map(|&d| bodies[d].split_inclusive(". ").map(str::trim).collect())
        .collect();
    let pool: Vec<&str> = sentences.iter().flatten().copied().collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let mut extra = Vec::with_capacity(total.saturating_sub(docs.len()));
    while docs.len() + extra.len() < total {
        let shape = &sentences[rng.random_range(0..sentences.len())];
        let body: Vec<&str> = (0..shape.len())
            .map(|_| pool[rng.random_range(0..pool.len())])
            .collect();
        let body = body.join(" ");
        let title = docs[unjudged[rng.random_range(0..unjudged.len())]]
            .0
            .clone();
        let text = format!("{title}. {body}");
        extra.push((title, text));
    }
    docs.extend(extra);
    (docs, queries, gains, labels)
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
    (docs, queries, Vec::new(), Vec::new())
}

/// The corpus in BEIR's layout, for the pipeline: documents `m<i>`, queries `q<i>`, each
/// judging the first document that holds both of its words (a query no document answers is
/// left out).
fn write_corpus(dir: &str, docs: &[(String, String)], queries: &[String]) {
    use std::io::Write;
    std::fs::create_dir_all(format!("{dir}/qrels")).unwrap();
    let mut out =
        std::io::BufWriter::new(std::fs::File::create(format!("{dir}/corpus.jsonl")).unwrap());
    for (i, (title, text)) in docs.iter().enumerate() {
        let line = serde_json::json!({"_id": format!("m{i}"), "title": title, "text": text});
        writeln!(out, "{line}").unwrap();
    }
    out.flush().unwrap();
    let words: Vec<HashSet<&str>> = docs
        .iter()
        .map(|(t, x)| t.split(' ').chain(x.split(' ')).collect())
        .collect();
    let mut qs =
        std::io::BufWriter::new(std::fs::File::create(format!("{dir}/queries.jsonl")).unwrap());
    let mut qrels =
        std::io::BufWriter::new(std::fs::File::create(format!("{dir}/qrels/test.tsv")).unwrap());
    writeln!(qrels, "query-id\tcorpus-id\tscore").unwrap();
    for (i, q) in queries.iter().enumerate() {
        let Some(doc) = words
            .iter()
            .position(|w| q.split(' ').all(|t| w.contains(t)))
        else {
            continue;
        };
        writeln!(
            qs,
            "{}",
            serde_json::json!({"_id": format!("q{i}"), "text": q})
        )
        .unwrap();
        writeln!(qrels, "q{i}\tm{doc}\t1").unwrap();
    }
    qs.flush().unwrap();
    qrels.flush().unwrap();
}
