//! Parity of our embeddings with independent references (made by `reference/make_reference.py`):
//! onnxruntime on the same int8 model, and a float64 numpy BERT forward from the fp32 weights;
//! and of the encoder's graphs, ops and batching with each other. The same tests run natively
//! and, through wasm-bindgen-test, in headless Chromium, sharing one set of encoders.

use searchbar_encoder::int4::{pack_int4_weights, Int4Plan};
use searchbar_encoder::prepare::{prepare_onnx, split_token_rows, PrepareReport};
use searchbar_encoder::{Encoder, EncoderConfig, FusedOps, Pooling, TextTokenizer, TokenRows};
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

/// What the checks share, built once per test binary: each encoder build takes seconds in the
/// browser, where the tests run one after another in one page.
struct Models {
    fixture: Fixture,
    raw: Vec<u8>,
    tokenizer: Vec<u8>,
    prepared: Vec<u8>,
    report: PrepareReport,
    config: EncoderConfig,
    /// With padded batches: the pipeline's document encoder.
    encoder: Encoder,
    /// One text at a time, with the fused ops: the query path.
    singles: Encoder,
    /// Each fixture text through `singles`, and all of them as one padded batch.
    one_by_one: Vec<Vec<f32>>,
    batched: Vec<Vec<f32>>,
}

impl Models {
    fn texts(&self) -> Vec<&str> {
        self.fixture.cases.iter().map(|c| c.text.as_str()).collect()
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn model_files() -> (Vec<u8>, Vec<u8>) {
    let dir = searchbar_model::default_model_dir().unwrap_or_else(|e| panic!("{e}"));
    (
        std::fs::read(&dir.onnx).unwrap(),
        std::fs::read(&dir.tokenizer).unwrap(),
    )
}

// The model is compiled into the test module: a browser test has no file system.
#[cfg(target_arch = "wasm32")]
const RAW: &[u8] = include_bytes!(concat!(env!("SEARCHBAR_MODEL_DIR"), "/model.onnx"));
#[cfg(target_arch = "wasm32")]
const TOK: &[u8] = include_bytes!(concat!(env!("SEARCHBAR_MODEL_DIR"), "/tokenizer.json"));

#[cfg(target_arch = "wasm32")]
fn model_files() -> (Vec<u8>, Vec<u8>) {
    (RAW.to_vec(), TOK.to_vec())
}

fn models() -> &'static Models {
    static MODELS: std::sync::OnceLock<Models> = std::sync::OnceLock::new();
    MODELS.get_or_init(|| {
        let fixture: Fixture = serde_json::from_str(FIXTURE).unwrap();
        let (raw, tokenizer) = model_files();
        let (prepared, report) = prepare_onnx(&raw).unwrap();
        let config = EncoderConfig {
            max_tokens: fixture.max_tokens,
            ..Default::default()
        };
        let encoder = Encoder::new(&prepared, &tokenizer, config.clone()).unwrap();
        let singles = Encoder::new(
            &prepared,
            &tokenizer,
            EncoderConfig {
                padded_batches: false,
                ..config.clone()
            },
        )
        .unwrap();
        let texts: Vec<&str> = fixture.cases.iter().map(|c| c.text.as_str()).collect();
        let one_by_one = texts.iter().map(|t| singles.embed(t).unwrap()).collect();
        let batched = encoder.embed_batch(&texts).unwrap();
        Models {
            fixture,
            raw,
            tokenizer,
            prepared,
            report,
            config,
            encoder,
            singles,
            one_by_one,
            batched,
        }
    })
}

/// A check's measured bound, in the test's output (natively) or the browser's console.
fn report(line: &str) {
    #[cfg(not(target_arch = "wasm32"))]
    println!("{line}");
    #[cfg(target_arch = "wasm32")]
    wasm_bindgen_test::console_log!("{line}");
}

/// Two graphs that compute the same function agree to float rounding (a largest difference
/// relative to the vector's norm) with a float kernel. Where the int8 kernel quantizes each row
/// of activations to i16 (dot16.rs in wasm, native16.rs natively with AVX-512 VNNI or AVX2),
/// float rounding differences between two graphs can land on neighbouring i16 steps: measured
/// up to 1.2e-4 in wasm and 1.6e-4 natively, against the references' cosine >= 0.99999 checked
/// on every case.
fn same_function() -> f32 {
    if searchbar_encoder::matmul_kernel().1 {
        5e-4
    } else {
        1e-5
    }
}

/// [`max_abs_diff`] over `a`'s norm, for vectors that are not normalized.
fn scaled_diff(a: &[f32], b: &[f32]) -> f32 {
    max_abs_diff(a, b) / a.iter().map(|x| x * x).sum::<f32>().sqrt()
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn the_fast_tokenizer_gives_the_librarys_ids() {
    let m = models();
    check_fast_tokenizer(&m.tokenizer, &m.fixture);
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn preparing_rewrites_the_graph_once_and_is_a_fixed_point() {
    let m = models();
    let report = m.report;
    assert_eq!(
        report.gelus, 6,
        "one GELU per layer is reordered: {report:?}"
    );
    assert!(
        report.gathers >= 1,
        "the word-embedding lookup is rewritten: {report:?}"
    );
    assert_eq!(
        report.masks, 1,
        "the always-true attention-mask term is dropped: {report:?}"
    );
    let (again, second) = prepare_onnx(&m.prepared).unwrap();
    assert_eq!(
        second,
        Default::default(),
        "preparing twice changes nothing"
    );
    assert_eq!(again, m.prepared, "the prepared file is a fixed point");
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn embeddings_match_onnxruntime_and_the_fp32_model() {
    let m = models();
    assert_eq!(m.encoder.dim(), 384);
    let mut min_ort = f64::MAX;
    let mut min_fp = f64::MAX;
    for case in &m.fixture.cases {
        let label: String = case.text.chars().take(40).collect();
        let ids = m.encoder.tokenizer().ids(&case.text).unwrap();
        assert_eq!(ids, case.ids, "token ids of {label:?}");
        let v = m.encoder.embed(&case.text).unwrap();
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
    report(&format!(
        "{} cases: min cosine {min_ort:.7} to onnxruntime int8, {min_fp:.6} to fp32 on sentences",
        m.fixture.cases.len()
    ));
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn the_prepared_graph_computes_the_upstream_function() {
    let m = models();
    let mut max_diff = 0f32;
    // The CLS pooling (plain Rust after the model, the same code on both targets) is checked
    // natively only: each encoder build takes seconds in the browser.
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
            ..m.config.clone()
        };
        let raw = Encoder::new(&m.raw, &m.tokenizer, raw_cfg.clone()).unwrap();
        let prep = Encoder::new(&m.prepared, &m.tokenizer, raw_cfg).unwrap();
        for t in m.texts() {
            max_diff = max_diff.max(scaled_diff(&raw.embed(t).unwrap(), &prep.embed(t).unwrap()));
        }
    }
    assert!(
        max_diff <= same_function(),
        "prepared vs upstream graph: max abs diff {max_diff}"
    );
    report(&format!("prepared-vs-upstream max abs diff {max_diff:.2e}"));
}

/// The graph whose word-embedding table is a rows file ([`split_token_rows`]) gives the bits
/// of the graph that holds it: with the whole table (the pipeline, batched) and with only the
/// rows each query fetched (a page, one text at a time).
#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn the_split_graph_with_its_token_rows_gives_the_same_bits() {
    let m = models();
    let split = split_token_rows(&m.prepared).unwrap();
    let split = split.expect("MiniLM has a table");
    let (core, table) = (split.onnx, split.token_rows);
    let row = searchbar_encoder::token_row_len(384);
    assert_eq!(table.len(), 30522 * row);
    // The table was most of the graph; splitting again finds nothing.
    assert!(
        core.len() + table.len() / 2 < m.prepared.len(),
        "{}",
        core.len()
    );
    assert!(split_token_rows(&core).unwrap().is_none());
    let whole = TokenRows::whole(table.clone(), 384).unwrap();
    let texts = m.texts();
    if !cfg!(target_arch = "wasm32") {
        let mut batched = Encoder::new(&core, &m.tokenizer, m.config.clone()).unwrap();
        let e = batched.embed(texts[0]).unwrap_err().to_string();
        assert!(e.contains("no token rows were given"), "{e}");
        batched.set_token_rows(whole.clone()).unwrap();
        assert_eq!(batched.embed_batch(&texts).unwrap(), m.batched);
    }
    let single_cfg = EncoderConfig {
        padded_batches: false,
        ..m.config.clone()
    };
    let mut page = Encoder::new(&core, &m.tokenizer, single_cfg).unwrap();
    page.set_token_rows(TokenRows::fetched(whole.digests().unwrap(), 384).unwrap())
        .unwrap();
    let mut fetched_rows = 0;
    for (t, expected) in texts.iter().zip(&m.one_by_one) {
        let spans = page.missing_token_rows(t).unwrap();
        if !spans.is_empty() {
            let e = page.embed(t).unwrap_err().to_string();
            assert!(e.contains("has not been fetched"), "{e}");
        }
        let rows = page.token_rows_mut().unwrap();
        for s in spans {
            let r = rows.range(s);
            rows.insert_span(s, &table[r.start as usize..r.end as usize])
                .unwrap();
            fetched_rows += s.count as usize;
        }
        assert!(page.missing_token_rows(t).unwrap().is_empty());
        assert_eq!(&page.embed(t).unwrap(), expected, "{t:?}");
    }
    // A span may carry rows already at hand between the missing ones.
    let kept = page.token_rows().unwrap().at_hand();
    assert!(kept > 0 && kept <= fetched_rows, "{kept} {fetched_rows}");
    report(&format!(
        "split graph {} bytes + token rows {} bytes; the fixture's {} texts fetched \
         {fetched_rows} rows ({kept} distinct)",
        core.len(),
        table.len(),
        texts.len()
    ));
}

/// Mean `1 - cos` of each fixture text's embedding by `encoder` against `reference`, and the
/// smallest cosine.
fn drift(encoder: &Encoder, texts: &[&str], reference: &[Vec<f32>]) -> (f64, f64) {
    let cos: Vec<f64> = texts
        .iter()
        .zip(reference)
        .map(|(t, r)| cosine(&encoder.embed(t).unwrap(), r))
        .collect();
    let mean = cos.iter().map(|c| 1.0 - c).sum::<f64>() / cos.len() as f64;
    (mean, cos.iter().copied().fold(1.0, f64::min))
}

/// 4-bit layer weights (`int4.rs`) widen at load to int8 weights that the same kernels run, so
/// the 4-bit graph differs from the int8 one only by the rounding of its weights. Every matmul in
/// 4 bits (the worst plan) moves the fixture's embeddings by a mean `1 - cos` of 0.037 natively
/// (smallest cosine 0.910, among the fixture's edge cases; the same against onnxruntime and fp32,
/// since int8 is 0.99999 from onnxruntime); that is what costs 0.002-0.004 of SciFact's nDCG@10
/// (BENCHMARKS.md, "Encoder diet"). The bounds leave a third of headroom. Natively, the model
/// lock's plan (the matmuls it keeps int8, if any) must move them no more.
#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn the_4_bit_graph_stays_close_to_int8_onnxruntime_and_fp32() {
    let m = models();
    let (packed, packing) = pack_int4_weights(&m.prepared, &Int4Plan::default()).unwrap();
    assert_eq!(packing.packed.len(), 36);
    // 10.6 MB of int8 matmul weights become about 5.6 MB.
    assert!(
        packed.len() + 4_900_000 < m.prepared.len(),
        "{} vs {}",
        packed.len(),
        m.prepared.len()
    );
    let single_cfg = EncoderConfig {
        padded_batches: false,
        ..m.config.clone()
    };
    let page = Encoder::new(&packed, &m.tokenizer, single_cfg.clone()).unwrap();
    let texts = m.texts();
    let ort: Vec<Vec<f32>> = m
        .fixture
        .cases
        .iter()
        .map(|c| c.onnxruntime_int8.clone())
        .collect();
    let fp: Vec<Vec<f32>> = m
        .fixture
        .cases
        .iter()
        .map(|c| c.fp64_safetensors.clone())
        .collect();
    let to_int8 = drift(&page, &texts, &m.one_by_one);
    let to_ort = drift(&page, &texts, &ort);
    let to_fp = drift(&page, &texts, &fp);
    report(&format!(
        "all 36 matmuls in 4 bits ({} bytes, weights' relative error {:.3}): mean 1-cos / min cos \
         {:.4} / {:.4} to int8, {:.4} / {:.4} to onnxruntime int8, {:.4} / {:.4} to fp32",
        packed.len(),
        packing.relative_error(),
        to_int8.0,
        to_int8.1,
        to_ort.0,
        to_ort.1,
        to_fp.0,
        to_fp.1
    ));
    for (what, (mean, min)) in [("int8", to_int8), ("onnxruntime", to_ort), ("fp32", to_fp)] {
        assert!(mean <= 0.05 && min >= 0.88, "to {what}: {mean} {min}");
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        // The pipeline's batched graph over the same weights agrees with the page's.
        let batched = Encoder::new(&packed, &m.tokenizer, m.config.clone()).unwrap();
        for (t, v) in texts.iter().zip(batched.embed_batch(&texts).unwrap()) {
            assert!(cosine(&page.embed(t).unwrap(), &v) >= 0.99999, "{t:?}");
        }
        lock_plan_drifts_no_more(m, &single_cfg, to_int8.0);
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn lock_plan_drifts_no_more(m: &Models, config: &EncoderConfig, all_4_bit: f64) {
    let lock = searchbar_model::ModelLock::parse(searchbar_model::DEFAULT_LOCK, "lock").unwrap();
    let plan = Int4Plan {
        keep_int8: lock.int4.expect("the lock's [int4] plan").keep_int8,
    };
    let (packed, packing) = pack_int4_weights(&m.prepared, &plan).unwrap();
    assert_eq!(packing.packed.len() + packing.kept.len(), 36);
    let encoder = Encoder::new(&packed, &m.tokenizer, config.clone()).unwrap();
    let (mean, min) = drift(&encoder, &m.texts(), &m.one_by_one);
    report(&format!(
        "the lock's plan ({} kept int8): mean 1-cos {mean:.4}, min cos {min:.4} to int8",
        packing.kept.len()
    ));
    assert!(mean <= all_4_bit, "{mean} vs {all_4_bit}");
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn padding_inside_a_batch_changes_no_vector() {
    let m = models();
    let texts = m.texts();
    let sorted = m.encoder.embed_many(&texts, 4, |_| {}).unwrap();
    for ((t, b), s) in texts.iter().zip(&m.batched).zip(&sorted) {
        let single = m.encoder.embed(t).unwrap();
        assert!(cosine(&single, b) >= 0.99999, "batched {t:?}");
        // Other batch groupings round differently, but every vector stays in its place.
        assert!(cosine(&single, s) >= 0.99999, "embed_many order for {t:?}");
    }
}

/// Single texts and equal-length batches run a graph without the attention-mask work, whose
/// attention blocks, layer norms (with their residual adds) and GELUs run as fused ops
/// (attention.rs, layer_norm.rs, gelu.rs): it must agree with the full graph, which the padded
/// batch of mixed lengths ran.
#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn the_fused_one_text_graph_agrees_with_the_full_graph() {
    let m = models();
    assert!(
        m.encoder.has_unpadded_graph(),
        "the mask-free graph is built"
    );
    assert_eq!(
        m.singles.fused_ops(),
        FusedOps {
            attention: 6,
            layer_norms: 13,
            gelus: 6
        },
        "a fused block per layer, every layer norm, every GELU"
    );
    assert_eq!(
        m.singles.merged_projections(),
        6,
        "each block's q, k and v from one matmul"
    );
    assert_eq!(
        m.encoder.fused_ops(),
        FusedOps::default(),
        "padded batches keep tract's ops"
    );
    let mut pad_diff = 0f32;
    for (v, b) in m.one_by_one.iter().zip(&m.batched) {
        pad_diff = pad_diff.max(max_abs_diff(v, b));
    }
    assert!(
        pad_diff <= same_function(),
        "mask-free vs full graph: max abs diff {pad_diff}"
    );
    report(&format!(
        "mask-free-vs-full graph max abs diff {pad_diff:.2e}"
    ));
}

/// The int8 matmul kernel (the default) computes what tract's float32 matmuls compute on the
/// dequantized weights. Natively only: a float32 build takes seconds more in the browser,
/// where the references already check the kernel.
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn the_int8_kernel_computes_what_float32_matmuls_compute() {
    let m = models();
    let float = Encoder::new(
        &m.prepared,
        &m.tokenizer,
        EncoderConfig {
            padded_batches: false,
            int8_weights: false,
            ..m.config.clone()
        },
    )
    .unwrap();
    let mut f32_diff = 0f32;
    for (t, v) in m.texts().iter().zip(&m.one_by_one) {
        f32_diff = f32_diff.max(max_abs_diff(&float.embed(t).unwrap(), v));
    }
    assert!(
        f32_diff <= same_function(),
        "int8 kernel vs float32 matmuls: max abs diff {f32_diff}"
    );
    report(&format!(
        "int8-kernel-vs-float32 max abs diff {f32_diff:.2e}"
    ));
}

/// Sliced jobs (the browser's main thread) compute the same vectors, however they are cut:
/// one node per slice, or all at once, or by a clock. Every third text (the long one
/// included) keeps the browser run short.
#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn sliced_jobs_give_the_same_vectors_however_they_are_cut() {
    let m = models();
    let texts = m.texts();
    let singles = &m.singles;
    let sample = |i: usize| i.is_multiple_of(3) || texts[i].len() > 1000;
    for (_, (t, want)) in texts
        .iter()
        .zip(&m.one_by_one)
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
        check_node_work(singles, t);
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
}

/// Without padded batches, batch calls run text by text: same vectors, same order.
#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn batch_calls_without_padded_batches_run_text_by_text() {
    let m = models();
    let texts = m.texts();
    let few = &texts[..6];
    for (name, vectors) in [
        ("embed_batch", m.singles.embed_batch(few).unwrap()),
        ("embed_many", m.singles.embed_many(few, 4, |_| {}).unwrap()),
    ] {
        assert_eq!(vectors.len(), few.len());
        for ((t, v), w) in few.iter().zip(&vectors).zip(&m.one_by_one) {
            let d = max_abs_diff(v, w);
            assert!(
                d <= 1e-6,
                "{name} without padded batches, {t:?}: max abs diff {d}"
            );
        }
    }
}

#[cfg(target_arch = "wasm32")]
mod wasm {
    use wasm_bindgen_test::*;
    wasm_bindgen_test_configure!(run_in_browser);

    use super::{RAW, TOK};

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
        use searchbar_encoder::helper::{uninstall, MatmulHelper};
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
            encoder.share_matmuls(peer.clone());
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
}
