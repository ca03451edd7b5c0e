// Peer benchmark for the browser: the same queries embedded by transformers.js (pipeline) and by
// onnxruntime-web called directly, both on the int8 model file our app ships, in the same page
// session a WebDriver test measures our app in. Results go to window.__peers (see README.md).
//
// Query string: ?warmup_ms=N (untimed passes over all queries first, default 2000),
// ?warmup=N (untimed calls per query just before its timed ones, default 3), ?runs=N (timed calls
// per query, at least 30), ?order=onnxruntime_web,transformers_js (default: transformers.js
// first), ?timeout_s=N (watchdog, default 600), ?threads=N (ORT's wasm threads for both peers,
// default 1; more than 1 needs a cross-origin-isolated page).

import { env, pipeline, AutoTokenizer } from './transformers/transformers.web.min.js';
// onnxruntime-web as a user picks it today, its own release; transformers.js runs on the ORT
// build it depends on (index.html's import map, staged in ort-tjs/). Each peer initialises its
// own wasm runtime, so each load_ms includes one.
import * as ort from './ort/ort.wasm.min.mjs';

const MODEL = 'all-MiniLM-L6-v2';
const ORT_DIR = new URL('./ort/', import.meta.url).href;
const TJS_ORT_DIR = new URL('./ort-tjs/', import.meta.url).href;
// A path, not a URL: transformers.js 4 only looks a local model's files up (to find its
// tokenizer) under a localModelPath that is not an http(s) URL. Same origin either way.
const MODEL_ROOT = new URL('./models/', import.meta.url).pathname;
// Short natural queries (about 8 tokens with [CLS] and [SEP]) from data/catalog/queries.jsonl.
const DEFAULT_QUERIES = [
  'monitor air quality at home',
  'kids coding games',
  'find out which appliances are eating my electricity',
  'sort out my monthly spending',
  'robot that builds a map of its surroundings',
  'online multiplayer lag feels terrible',
  'spot sick plants from leaf photos',
  'how much power will my panels make tomorrow',
];

const params = new URLSearchParams(location.search);
const num = (key, dflt) => {
  const v = Number(params.get(key) ?? dflt);
  return Number.isFinite(v) && v >= 0 ? v : dflt;
};
const WARMUP_MS = num('warmup_ms', 2000);
const WARMUP = num('warmup', 3);
const RUNS = Math.max(30, num('runs', 30));
const TIMEOUT_S = num('timeout_s', 600);
const ORDER = (params.get('order') ?? 'transformers_js,onnxruntime_web').split(',');
const THREADS = Math.max(1, Math.floor(num('threads', 1)));

let stage = 'start';
const setStage = (s) => {
  stage = s;
  document.getElementById('peer-status').textContent = s;
};

// Same wasm settings for both runtimes: files from our own server (transformers.js would
// otherwise point ORT at a CDN), ?threads (default 1: ORT's own default on a 2-core machine,
// and all a page that is not cross-origin isolated gets), SIMD (the only build ORT 1.22 ships;
// the flag is kept for older versions), no proxy worker.
function configureOrt(ortEnv, dir) {
  ortEnv.wasm.wasmPaths = dir;
  ortEnv.wasm.numThreads = THREADS;
  ortEnv.wasm.simd = true;
  ortEnv.wasm.proxy = false;
}

async function loadQueries() {
  // A 404 here (no queries.json staged) is expected and selects the built-in list.
  const res = await fetch(new URL('./queries.json', import.meta.url), { cache: 'no-store' });
  if (!res.ok) return DEFAULT_QUERIES;
  const q = await res.json();
  if (!Array.isArray(q) || q.length === 0 || !q.every((s) => typeof s === 'string')) {
    throw new Error('queries.json must be a non-empty JSON array of strings');
  }
  return q;
}

// transformers.js settings, set before either peer loads (peer (b) uses its tokenizer): local
// files only, never the Hugging Face hub or a CDN.
env.allowRemoteModels = false;
env.allowLocalModels = true;
env.localModelPath = MODEL_ROOT;
env.useBrowserCache = false; // load_ms always includes fetching the model, as on a first visit
configureOrt(env.backends.onnx, TJS_ORT_DIR);

// Peer (a): the transformers.js pipeline, as its docs use it for sentence embeddings.
async function loadTransformersJs() {
  // dtype q8 selects onnx/model_quantized.onnx (transformers.js's suffix for q8 is "_quantized").
  const extractor = await pipeline('feature-extraction', MODEL, { dtype: 'q8', device: 'wasm' });
  return {
    version: env.version,
    embed: async (text) => (await extractor(text, { pooling: 'mean', normalize: true })).data,
    tokens: null,
  };
}

// Peer (b): onnxruntime-web directly on the same bytes, with transformers.js's tokenizer from the
// same local files (so both peers see identical ids), then masked mean pooling and L2 in JS.
async function loadOrtWeb() {
  configureOrt(ort.env, ORT_DIR);
  const tokenizer = await AutoTokenizer.from_pretrained(MODEL);
  const res = await fetch(`${MODEL_ROOT}${MODEL}/onnx/model_quantized.onnx`);
  if (!res.ok) throw new Error(`model fetch: HTTP ${res.status}`);
  const bytes = new Uint8Array(await res.arrayBuffer());
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'] });
  const outName = session.outputNames.includes('last_hidden_state')
    ? 'last_hidden_state' : session.outputNames[0];

  // Truncate at model_max_length (256) like our tokenizer; a single text is never padded.
  const encode = (text) => tokenizer(text, { truncation: true });

  const embed = async (text) => {
    const enc = encode(text);
    const dims = enc.input_ids.dims;
    const ids = enc.input_ids.data; // BigInt64Array
    const mask = enc.attention_mask.data;
    const types = enc.token_type_ids?.data ?? new BigInt64Array(ids.length);
    const all = { input_ids: ids, attention_mask: mask, token_type_ids: types };
    const feeds = {};
    for (const name of session.inputNames) feeds[name] = new ort.Tensor('int64', all[name], dims);
    const out = (await session.run(feeds))[outName];
    const [, seq, hidden] = out.dims;
    const h = out.data;
    const v = new Float32Array(hidden);
    let n = 0;
    for (let t = 0; t < seq; t++) {
      if (mask[t] === 0n) continue;
      n++;
      for (let j = 0, o = t * hidden; j < hidden; j++) v[j] += h[o + j];
    }
    let norm = 0;
    for (let j = 0; j < hidden; j++) { v[j] /= Math.max(n, 1e-9); norm += v[j] * v[j]; }
    norm = Math.max(Math.sqrt(norm), 1e-12);
    for (let j = 0; j < hidden; j++) v[j] /= norm;
    return v;
  };
  return { version: ort.env.versions?.web ?? 'unknown', embed, tokens: (t) => encode(t).input_ids.dims[1] };
}

let loadedAny = false;
const round = (x, d = 3) => Math.round(x * 10 ** d) / 10 ** d;
const sorted = (xs) => [...xs].sort((a, b) => a - b);
const median = (xs) => {
  const s = sorted(xs), m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const p90 = (xs) => { const s = sorted(xs); return s[Math.ceil(0.9 * s.length) - 1]; }; // nearest rank
const dot = (a, b) => a.reduce((acc, x, i) => acc + x * b[i], 0);

// Loads a peer, warms it up over all queries for WARMUP_MS (V8 tiers wasm and JS up in the
// background: with only per-query warm-up, the first peer's first query measured about twice
// its later median), then per query: WARMUP untimed calls, RUNS timed calls. Each timing covers
// the whole "text -> normalised vector" call, tokenisation included.
async function bench(label, load, queries) {
  setStage(`${label}: loading`);
  const t0 = performance.now();
  const peer = await load();
  const load_ms = performance.now() - t0;
  const first = !loadedAny;
  loadedAny = true;
  setStage(`${label}: warm-up`);
  for (const w0 = performance.now(); performance.now() - w0 < WARMUP_MS;) {
    for (const q of queries) await peer.embed(q);
  }
  const all = [];
  const perQuery = [];
  for (const [i, q] of queries.entries()) {
    setStage(`${label}: query ${i + 1}/${queries.length}`);
    for (let w = 0; w < WARMUP; w++) await peer.embed(q);
    const ms = [];
    let vec;
    for (let r = 0; r < RUNS; r++) {
      const s = performance.now();
      vec = await peer.embed(q);
      ms.push(performance.now() - s);
    }
    all.push(...ms);
    perQuery.push({ vec: Array.from(vec), median_ms: median(ms), tokens: peer.tokens?.(q) });
  }
  const summary = {
    version: peer.version,
    load_ms: round(load_ms, 1),
    loaded_first: first, // the second peer loads from the HTTP cache and V8's wasm code cache
    median_ms: round(median(all)),
    p90_ms: round(p90(all)),
    runs: all.length,
  };
  return { summary, perQuery };
}

export async function run() {
  const watchdog = setTimeout(
    () => window.__peersFail(new Error(`timed out after ${TIMEOUT_S} s during "${stage}"`)),
    TIMEOUT_S * 1000,
  );
  document.body.dataset.state = 'running';
  setStage('reading queries');
  const queries = await loadQueries();
  const peers = {
    transformers_js: () => bench('transformers.js', loadTransformersJs, queries),
    onnxruntime_web: () => bench('onnxruntime-web', loadOrtWeb, queries),
  };
  if (ORDER.length !== 2 || !ORDER.every((k) => k in peers) || ORDER[0] === ORDER[1]) {
    throw new Error(`order must name both peers: ${ORDER}`);
  }
  const done = {};
  for (const k of ORDER) done[k] = await peers[k]();
  const a = done.transformers_js, b = done.onnxruntime_web;
  const rows = queries.map((text, i) => {
    const va = a.perQuery[i].vec, vb = b.perQuery[i].vec;
    return {
      text,
      tokens: b.perQuery[i].tokens,
      cosine: dot(va, vb) / Math.sqrt(dot(va, va) * dot(vb, vb)),
      transformers_js: { median_ms: round(a.perQuery[i].median_ms), head: va.slice(0, 4).map((x) => round(x, 6)) },
      onnxruntime_web: { median_ms: round(b.perQuery[i].median_ms), head: vb.slice(0, 4).map((x) => round(x, 6)) },
    };
  });
  const result = {
    transformers_js: { ...a.summary, ort_version: env.backends.onnx.versions?.web },
    onnxruntime_web: b.summary,
    queries: rows,
    cosine_min: Math.min(...rows.map((r) => r.cosine)),
    order: ORDER,
    warmup_ms: WARMUP_MS,
    warmup_per_query: WARMUP,
    runs_per_query: RUNS,
    threads: THREADS,
    cross_origin_isolated: self.crossOriginIsolated,
    user_agent: navigator.userAgent,
  };
  clearTimeout(watchdog);
  if (document.body.dataset.state === 'error') return; // the watchdog or a stray error won
  window.__peers = result;
  document.getElementById('peer-results').textContent = JSON.stringify(result, null, 2);
  setStage('done');
  document.body.dataset.state = 'done';
}
