//! Parity of our embeddings with independent references (made by `reference/make_reference.py`):
//! onnxruntime on the same int8 model, and a float64 numpy BERT forward from the fp32 weights.
//! The same checks run natively and, through wasm-bindgen-test, in headless Chromium.

use searchbar_encoder::prepare::prepare_onnx;
use searchbar_encoder::{Encoder, EncoderConfig, FusedOps, Pooling, TextTokenizer};
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixture {
    max_tokens: usize,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    text: String,
    edge: bool,
    ids: Vec<u32>,
    onnxruntime_int8: Vec<f32>,
    fp64_safetensors: Vec<f32>,
}

const FIXTURE: &str = include_str!("fixtures/reference.json");

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// A job's per-node work, which slices are budgeted by: each int8 matmul counts a
/// multiply-add per token and weight, each fused attention two per pair of tokens and
/// column, and the largest node is a feed-forward matmul (384 x 1536 weights a token).
fn check_node_work(encoder: &Encoder, text: &str) {
    let mut job = encoder.start(text).unwrap();
    let tokens = job.tokens() as f64;
    let (mut matmuls, mut attention, mut largest) = (0.0, 0.0, 0f64);
    while let Some(op) = job.next_op() {
        let work = job.next_work();
        match op.as_str() {
            "Int8MatMul" => matmuls += work,
            "Attention" => attention += work,
            _ => {}
        }
        largest = largest.max(work);
        job.step(|| true).unwrap();
    }
    let per_layer = 384.0 * 3.0 * 384.0 + 384.0 * 384.0 + 2.0 * 384.0 * 1536.0;
    assert_eq!(
        matmuls,
        6.0 * tokens * per_layer,
        "{text:?}: int8 matmul work"
    );
    assert_eq!(
        attention,
        6.0 * 2.0 * tokens * tokens * 384.0,
        "{text:?}: attention work"
    );
    assert_eq!(largest, tokens * 384.0 * 1536.0, "{text:?}: largest node");
}

/// The ASCII fast path gives the library's ids: on the fixture's texts and on generated
/// ones (letters of both cases, digits, punctuation, whitespace and control characters, long
/// words, pieces not in the vocabulary, text past the token limit); text it does not take
/// (non-ASCII, `[`) falls back to the library.
fn check_fast_tokenizer(tokenizer: &[u8], fixture: &Fixture) {
    let alphabet: Vec<char> = ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
        .to_string()
        + "      \t\n\r\x01\x0b\x0c\x1f\x7f!\"#$%&'()*+,-./:;<=>?@\\]^_`{|}~")
        .chars()
        .collect();
    let words = [
        "embedding",
        "unaffable",
        "tokenization",
        "GPT-style",
        "can't",
        "e-mail",
        "3.14",
        "xqzjvvk",
        "qwxzqwxz",
        "naïve",
        "中文",
        "🙂",
        "[CLS]",
        "a[b",
        "[MASK]x",
    ];
    let mut seed = 7u64;
    let mut next = |n: usize| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as usize % n
    };
    let mut texts: Vec<String> = fixture.cases.iter().map(|c| c.text.clone()).collect();
    texts.extend([
        "".into(),
        " ".into(),
        "\t\n".into(),
        "a".repeat(100),
        "a".repeat(101),
    ]);
    texts.push(format!("{} tail", "b".repeat(150)));
    for _ in 0..400 {
        let mut t = String::new();
        for _ in 0..next(40) {
            if next(4) == 0 {
                t.push_str(words[next(words.len())]);
            } else {
                t.push(alphabet[next(alphabet.len())]);
            }
        }
        texts.push(t);
    }
    for max_tokens in [256, 12, 3] {
        let tok = TextTokenizer::from_bytes(tokenizer, max_tokens).unwrap();
        assert!(
            tok.has_fast_path(),
            "all-MiniLM-L6-v2's tokenizer is BERT's"
        );
        for t in &texts {
            let library = tok.encode(t).unwrap().get_ids().to_vec();
            assert_eq!(tok.ids(t).unwrap(), library, "{t:?} at {max_tokens} tokens");
        }
    }
}

/// Runs every parity check on the raw upstream ONNX bytes; returns a one-line summary.
fn check_parity(raw_onnx: &[u8], tokenizer: &[u8]) -> String {
    let fixture: Fixture = serde_json::from_str(FIXTURE).unwrap();
    check_fast_tokenizer(tokenizer, &fixture);
    let (prepared, report) = prepare_onnx(raw_onnx).unwrap();
    assert_eq!(
        report.gelus, 6,
        "one GELU per layer is reordered: {report:?}"
    );
    assert!(
        report.gathers >= 1,
        "the word-embedding lookup is rewritten: {report:?}"
    );
    let (again, second) = prepare_onnx(&prepared).unwrap();
    assert_eq!(
        report.masks, 1,
        "the always-true attention-mask term is dropped: {report:?}"
    );
    assert_eq!(
        second,
        Default::default(),
        "preparing twice changes nothing"
    );
    assert_eq!(again, prepared, "the prepared file is a fixed point");

    let config = EncoderConfig {
        max_tokens: fixture.max_tokens,
        ..Default::default()
    };
    let encoder = Encoder::new(&prepared, tokenizer, config.clone()).unwrap();
    assert_eq!(encoder.dim(), 384);
    let mut min_ort = f64::MAX;
    let mut min_fp = f64::MAX;
    for case in &fixture.cases {
        let label: String = case.text.chars().take(40).collect();
        let ids = encoder.tokenizer().ids(&case.text).unwrap();
        assert_eq!(ids, case.ids, "token ids of {label:?}");
        let v = encoder.embed(&case.text).unwrap();
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!(
            (norm - 1.0).abs() < 1e-5,
            "{label:?} is not unit length: {norm}"
        );
        let ort = cosine(&v, &case.onnxruntime_int8);
        assert!(
            ort >= 0.99999,
            "{label:?}: cosine {ort} to onnxruntime int8"
        );
        let fp = cosine(&v, &case.fp64_safetensors);
        // The int8 weights bound how close any runtime gets to fp32: we must be as close as
        // onnxruntime is on the same file, and >= 0.999 on natural-language sentences.
        let ort_fp = cosine(&case.onnxruntime_int8, &case.fp64_safetensors);
        assert!(
            fp >= ort_fp - 1e-4,
            "{label:?}: cosine {fp} to fp32, onnxruntime gets {ort_fp}"
        );
        if !case.edge {
            assert!(fp >= 0.999, "{label:?}: cosine {fp} to the fp32 original");
        }
        min_ort = min_ort.min(ort);
        min_fp = min_fp.min(if case.edge { 1.0 } else { fp });
    }

    // Two graphs that compute the same function agree to float rounding natively. In wasm
    // the int8 kernel quantizes each row of activations to i16 (dot16.rs), so float rounding
    // differences between two graphs can land on neighbouring i16 steps: measured up to
    // 1.2e-4 there, against the references' cosine >= 0.99999 checked above.
    let same_function = if cfg!(all(target_arch = "wasm32", target_feature = "simd128")) {
        5e-4
    } else {
        1e-5
    };

    // The prepared graph computes the same function as the upstream one.
    let texts: Vec<&str> = fixture.cases.iter().map(|c| c.text.as_str()).collect();
    let mut max_diff = 0f32;
    // Each encoder build takes seconds in the browser, where the whole test must stay well
    // inside chromedriver's 30 s wait on a busy renderer: the CLS pooling (plain Rust after the
    // model, the same code on both targets) is checked natively only.
    let poolings: &[Pooling] = if cfg!(target_arch = "wasm32") {
        &[Pooling::Mean]
    } else {
        &[Pooling::Mean, Pooling::Cls]
    };
    for &pooling in poolings {
        let raw_cfg = EncoderConfig {
            normalize: false,
            pooling,
            padded_batches: false,
            ..config.clone()
        };
        let raw = Encoder::new(raw_onnx, tokenizer, raw_cfg.clone()).unwrap();
        let prep = Encoder::new(&prepared, tokenizer, raw_cfg).unwrap();
        for t in &texts {
            max_diff = max_diff.max(max_abs_diff(
                &raw.embed(t).unwrap(),
                &prep.embed(t).unwrap(),
            ));
        }
    }
    assert!(
        max_diff <= same_function,
        "prepared vs upstream graph: max abs diff {max_diff}"
    );

    // Padding inside a batch must not change any vector.
    let batched = encoder.embed_batch(&texts).unwrap();
    let sorted = encoder.embed_many(&texts, 4, |_| {}).unwrap();
    for ((t, b), s) in texts.iter().zip(&batched).zip(&sorted) {
        let single = encoder.embed(t).unwrap();
        assert!(cosine(&single, b) >= 0.99999, "batched {t:?}");
        // Other batch groupings round differently, but every vector stays in its place.
        assert!(cosine(&single, s) >= 0.99999, "embed_many order for {t:?}");
    }

    // Single texts and equal-length batches run a graph without the attention-mask work; it
    // must agree with the full graph, which `batched` ran (padded, mixed lengths).
    assert!(encoder.has_unpadded_graph(), "the mask-free graph is built");
    let singles = Encoder::new(
        &prepared,
        tokenizer,
        EncoderConfig {
            padded_batches: false,
            ..config.clone()
        },
    )
    .unwrap();
    // ...whose attention blocks, layer norms (with their residual adds) and GELUs run as fused
    // ops (attention.rs, layer_norm.rs, gelu.rs): this comparison checks those ops.
    assert_eq!(
        singles.fused_ops(),
        FusedOps {
            attention: 6,
            layer_norms: 13,
            gelus: 6
        },
        "a fused block per layer, every layer norm, every GELU"
    );
    assert_eq!(
        singles.merged_projections(),
        6,
        "each block's q, k and v from one matmul"
    );
    assert_eq!(
        encoder.fused_ops(),
        FusedOps::default(),
        "padded batches keep tract's ops"
    );
    let mut pad_diff = 0f32;
    let one_by_one: Vec<Vec<f32>> = texts.iter().map(|t| singles.embed(t).unwrap()).collect();
    for (v, b) in one_by_one.iter().zip(&batched) {
        pad_diff = pad_diff.max(max_abs_diff(v, b));
    }
    assert!(
        pad_diff <= same_function,
        "mask-free vs full graph: max abs diff {pad_diff}"
    );
    // The int8 matmul kernel (the default) computes what tract's float32 matmuls compute on
    // the dequantized weights. Natively only: a float32 build takes seconds more in the
    // browser, where the references above already check the kernel.
    let mut f32_diff = 0f32;
    if cfg!(not(target_arch = "wasm32")) {
        let float = Encoder::new(
            &prepared,
            tokenizer,
            EncoderConfig {
                padded_batches: false,
                int8_weights: false,
                ..config.clone()
            },
        )
        .unwrap();
        for (t, v) in texts.iter().zip(&one_by_one) {
            f32_diff = f32_diff.max(max_abs_diff(&float.embed(t).unwrap(), v));
        }
        assert!(
            f32_diff <= 1e-5,
            "int8 kernel vs float32 matmuls: max abs diff {f32_diff}"
        );
    }
    // Sliced jobs (the browser's main thread) compute the same vectors, however they are cut:
    // one node per slice, or all at once. Every third text (the long one included) keeps the
    // browser run of this test well inside chromedriver's 30 s wait on a busy renderer.
    let sample = |i: usize| i.is_multiple_of(3) || texts[i].len() > 1000;
    for (_, (t, want)) in texts
        .iter()
        .zip(&one_by_one)
        .enumerate()
        .filter(|(i, _)| sample(*i))
    {
        for nodes_per_slice in [1, 1000] {
            let mut job = singles.start(t).unwrap();
            let mut slices = 0;
            let v = loop {
                let mut left = nodes_per_slice;
                let step = job.step(|| {
                    left -= 1;
                    left == 0
                });
                slices += 1;
                if let Some(v) = step.unwrap() {
                    break v;
                }
            };
            let (done, all) = job.progress();
            assert_eq!(done, all);
            assert!(slices > 1 || nodes_per_slice > all, "{slices} slices");
            let d = max_abs_diff(&v, want);
            assert!(d <= 1e-6, "sliced job for {t:?}: max abs diff {d}");
        }
        check_node_work(&singles, t);
        // Slices by a clock (one tick a reading): a budget nothing fits runs a node a slice,
        // an endless one the whole model; both give the same vector.
        for (budget, want_slices) in [
            (0.0, Some(singles.start(t).unwrap().progress().1)),
            (f64::INFINITY, Some(1)),
        ] {
            let tick = std::cell::Cell::new(0.0);
            let clock = || {
                tick.set(tick.get() + 1.0);
                tick.get()
            };
            let mut job = singles.start(t).unwrap();
            let mut slices = 0;
            let v = loop {
                slices += 1;
                if let Some(v) = job.step_for(budget, clock).unwrap() {
                    break v;
                }
            };
            assert_eq!(Some(slices), want_slices, "budget {budget} ms");
            let d = max_abs_diff(&v, want);
            assert!(d <= 1e-6, "step_for({budget}) for {t:?}: max abs diff {d}");
        }
    }
    // Without padded batches, batch calls run text by text: same vectors, same order.
    let few = &texts[..6];
    for (name, vectors) in [
        ("embed_batch", singles.embed_batch(few).unwrap()),
        ("embed_many", singles.embed_many(few, 4, |_| {}).unwrap()),
    ] {
        assert_eq!(vectors.len(), few.len());
        for ((t, v), w) in few.iter().zip(&vectors).zip(&one_by_one) {
            let d = max_abs_diff(v, w);
            assert!(
                d <= 1e-6,
                "{name} without padded batches, {t:?}: max abs diff {d}"
            );
        }
    }
    format!(
        "{} cases: min cosine {min_ort:.7} to onnxruntime int8, {min_fp:.6} to fp32 on sentences, \
         prepared-vs-upstream max abs diff {max_diff:.2e}, mask-free-vs-full graph {pad_diff:.2e}, \
         int8-kernel-vs-float32 {f32_diff:.2e} (native only)",
        fixture.cases.len()
    )
}

#[cfg(not(target_arch = "wasm32"))]
#[test]
fn matches_references_natively() {
    let dir = searchbar_model::default_model_dir().unwrap_or_else(|e| panic!("{e}"));
    let raw = std::fs::read(&dir.onnx).unwrap();
    let tok = std::fs::read(&dir.tokenizer).unwrap();
    println!("{}", check_parity(&raw, &tok));
}

#[cfg(target_arch = "wasm32")]
mod wasm {
    use wasm_bindgen_test::*;
    wasm_bindgen_test_configure!(run_in_browser);

    // The model is compiled into the test module: a browser test has no file system.
    const RAW: &[u8] = include_bytes!(concat!(env!("SEARCHBAR_MODEL_DIR"), "/model.onnx"));
    const TOK: &[u8] = include_bytes!(concat!(env!("SEARCHBAR_MODEL_DIR"), "/tokenizer.json"));

    #[wasm_bindgen_test]
    fn matches_references_in_the_browser() {
        let summary = super::check_parity(RAW, TOK);
        web_sys_log(&summary);
    }

    /// A helper in this same instance, which claims every other chunk (or none, as a worker
    /// that is asleep): the chunking, the matrix ids and the packed weights are what a worker
    /// gets; only the transport (a `SharedArrayBuffer`) is the page's.
    struct Loopback {
        helper: searchbar_encoder::helper::MatmulHelper,
        share: std::cell::RefCell<Option<Offer>>,
        next: std::cell::Cell<usize>,
        results: std::cell::RefCell<Vec<f32>>,
        claims: bool,
        its_turn: std::cell::Cell<bool>,
        chunks: std::cell::Cell<usize>,
    }

    /// The posted share, owned: matrix, end panel, chunk, rows and steps.
    struct Offer(u32, usize, usize, Vec<i32>, Vec<f32>);

    impl searchbar_encoder::helper::Peer for Loopback {
        fn post(&self, s: &searchbar_encoder::helper::Share) -> bool {
            let rows = s.steps.len();
            *self.results.borrow_mut() = vec![f32::NAN; rows * s.panels.end * 8];
            *self.share.borrow_mut() = Some(Offer(
                s.matrix,
                s.panels.end,
                s.chunk,
                s.xq.to_vec(),
                s.steps.to_vec(),
            ));
            self.next.set(s.panels.start);
            self.its_turn.set(true);
            true
        }

        fn claim(&self) -> Option<usize> {
            let share = self.share.borrow();
            let Offer(matrix, end, chunk, xq, steps) = share.as_ref().expect("posted");
            loop {
                let p = self.next.get();
                if p >= *end {
                    return None;
                }
                self.next.set(p + chunk);
                if self.claims && self.its_turn.replace(false) {
                    let mut out = Vec::new();
                    self.helper
                        .run(*matrix, p..(p + chunk).min(*end), xq, steps, &mut out)
                        .unwrap();
                    let at = steps.len() * p * 8;
                    self.results.borrow_mut()[at..at + out.len()].copy_from_slice(&out);
                    self.chunks.set(self.chunks.get() + 1);
                    continue;
                }
                self.its_turn.set(true);
                return Some(p);
            }
        }

        fn wait(&self, _panels: usize) -> bool {
            true
        }

        fn read(&self, offset: usize, out: &mut [f32]) {
            out.copy_from_slice(&self.results.borrow()[offset..offset + out.len()]);
        }
    }

    #[wasm_bindgen_test]
    fn a_helper_worker_changes_no_bit() {
        use searchbar_encoder::helper::{install, uninstall, MatmulHelper};
        use searchbar_encoder::{Encoder, EncoderConfig};
        let (prepared, _) = searchbar_encoder::prepare::prepare_onnx(RAW).unwrap();
        let config = EncoderConfig {
            padded_batches: false,
            ..EncoderConfig::default()
        };
        let encoder = Encoder::new(&prepared, TOK, config).unwrap();
        let texts = [
            "heart disease",
            "a slightly longer query about air quality sensors",
        ];
        let alone: Vec<Vec<f32>> = texts.iter().map(|t| encoder.embed(t).unwrap()).collect();
        for claims in [true, false] {
            let peer = std::rc::Rc::new(Loopback {
                helper: MatmulHelper::from_bytes(&encoder.matmul_weights()).unwrap(),
                share: Default::default(),
                next: Default::default(),
                results: Default::default(),
                claims,
                its_turn: Default::default(),
                chunks: Default::default(),
            });
            assert_eq!(
                peer.helper.len(),
                24,
                "6 layers x 4 weight matmuls (q, k and v as one)"
            );
            install(&encoder, peer.clone());
            for (t, want) in texts.iter().zip(&alone) {
                assert_eq!(
                    &encoder.embed(t).unwrap(),
                    want,
                    "{t:?} (helper claims: {claims})"
                );
            }
            uninstall();
            if claims {
                assert!(
                    peer.chunks.get() >= 36,
                    "chunks the helper computed: {}",
                    peer.chunks.get()
                );
            }
        }
    }

    fn web_sys_log(s: &str) {
        wasm_bindgen_test::console_log!("{s}");
    }
}
