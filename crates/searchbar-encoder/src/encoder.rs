use crate::pool::{l2_normalize, masked_mean};
use crate::prepare::{drop_attention_mask, keep_int8_weights, TOKEN_ROWS_INPUT};
use crate::token_rows::{RowSpan, TokenRows};
use crate::tokenize::{TextTokenizer, TokenBatch};
use crate::{EncoderError, DEFAULT_MAX_TOKENS};
use prost::Message;
use std::sync::Arc;
use tokenizers::Encoding;
use tract_onnx::prelude::*;

/// How token vectors become one sentence vector (`1_Pooling/config.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// Attention-masked mean: what all-MiniLM-L6-v2 uses.
    Mean,
    /// The first (`[CLS]`) token's vector.
    Cls,
}

impl Pooling {
    /// The name a model lock, a release manifest and the pipeline's reports use.
    pub fn as_str(self) -> &'static str {
        match self {
            Pooling::Mean => "mean",
            Pooling::Cls => "cls",
        }
    }
}

impl std::str::FromStr for Pooling {
    type Err = String;

    /// The inverse of [`Pooling::as_str`]; the error says which names are supported.
    fn from_str(name: &str) -> Result<Self, String> {
        match name {
            "mean" => Ok(Pooling::Mean),
            "cls" => Ok(Pooling::Cls),
            other => Err(format!("pooling {other:?} is not \"mean\" or \"cls\"")),
        }
    }
}

/// The ops of a graph that run as the encoder's own fused ops, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FusedOps {
    /// Self-attention blocks (`attention.rs`).
    pub attention: usize,
    /// Layer norms, with the residual add before each (`layer_norm.rs`).
    pub layer_norms: usize,
    /// GELUs (`gelu.rs`).
    pub gelus: usize,
}

/// Settings that must match how the model was trained, plus the thread count.
#[derive(Debug, Clone)]
pub struct EncoderConfig {
    pub max_tokens: usize,
    pub pooling: Pooling,
    pub normalize: bool,
    /// Matmul threads; more than one needs the `threads` feature (native only).
    pub threads: usize,
    /// Also build the graph that runs padded batches (texts of different lengths in one
    /// call). Without it every text runs on its own through one graph with the batch size
    /// fixed to 1: right for query-only users such as the browser, which then hold one graph
    /// in memory instead of two, and a faster one.
    pub padded_batches: bool,
    /// Keep the int8 export's matmul weights int8 in memory and multiply with the encoder's
    /// own kernel (`linear.rs`) instead of tract's float32 one: a quarter of the weight memory,
    /// and faster for queries and documents alike (natively with AVX2/AVX-512 and FMA, in
    /// wasm with simd128's integer dot products). Off, tract expands them to float32 at load.
    /// Off by default only in a wasm build without simd128.
    pub int8_weights: bool,
    /// Run the one-text graph's attention blocks, layer norms and GELUs as the encoder's own
    /// fused ops (`attention.rs`, `layer_norm.rs`, `gelu.rs`), about a fifth of a short
    /// query's time in wasm.
    /// Off keeps tract's ops: for benchmarks that compare the two, and as a way out should a
    /// model need it.
    pub fused_ops: bool,
}

impl Default for EncoderConfig {
    fn default() -> Self {
        Self {
            max_tokens: DEFAULT_MAX_TOKENS,
            pooling: Pooling::Mean,
            normalize: true,
            threads: 1,
            padded_batches: true,
            int8_weights: cfg!(any(not(target_arch = "wasm32"), target_feature = "simd128")),
            fused_ops: true,
        }
    }
}

impl EncoderConfig {
    /// The settings a model's files declare, over the defaults: its token limit and its
    /// pooling by sentence-transformers name (`None` where the files say nothing). A pooling
    /// this encoder does not run is an error naming it.
    pub fn declared(
        max_tokens: Option<usize>,
        pooling: Option<&str>,
    ) -> Result<Self, EncoderError> {
        let mut config = Self::default();
        if let Some(max_tokens) = max_tokens {
            config.max_tokens = max_tokens;
        }
        if let Some(name) = pooling {
            config.pooling = name.parse().map_err(EncoderError::Model)?;
        }
        Ok(config)
    }
}

/// Below this many tokens in one call, matmuls stay on the calling thread.
const MIN_TOKENS_FOR_THREADS: usize = 256;

/// Which tensor each ONNX input takes; exports differ in names and order.
#[derive(Debug, Clone, Copy)]
enum InputRole {
    Ids,
    Mask,
    TypeIds,
    /// The word embeddings of the ids, looked up in [`TokenRows`] outside the graph.
    Embeds,
}

/// A loaded, optimised sentence encoder. Cheap to share across threads.
#[derive(Debug, Clone)]
pub struct Encoder {
    /// The graph for one text at a time, with the batch size fixed to 1 (and without the
    /// attention-mask work when the model allows): built instead of the other two when
    /// `padded_batches` is off. A fixed batch lets tract pick its fast paths: an 8-token query
    /// runs about 20 % faster than with a symbolic batch.
    single: Option<Arc<TypedRunnableModel>>,
    /// The graph without attention-mask work, for batches whose mask is all ones; `None`
    /// when the model has no mask pattern to drop (then `padded` runs everything).
    unpadded: Option<Arc<TypedRunnableModel>>,
    /// The full graph, for padded batches; `None` when `padded_batches` is off.
    padded: Option<Arc<TypedRunnableModel>>,
    /// Thread pool for one model call's matmuls; `None` runs on the calling thread.
    executor: Option<tract_linalg::multithread::Executor>,
    inputs: Vec<(InputRole, DatumType)>,
    tokenizer: TextTokenizer,
    config: EncoderConfig,
    dim: usize,
    /// What the one-text graph runs as fused ops.
    fused: FusedOps,
    /// The word-embedding table of a graph split by [`crate::prepare::split_token_rows`]
    /// (whole, or the rows fetched so far); `None` for a graph that holds its own.
    tokens: Option<Arc<TokenRows>>,
}

impl Encoder {
    /// Loads an ONNX encoder and its `tokenizer.json` from memory (the browser has no files).
    pub fn new(
        onnx: &[u8],
        tokenizer_json: &[u8],
        config: EncoderConfig,
    ) -> Result<Self, EncoderError> {
        crate::kernels::linear::check_choice().map_err(EncoderError::Model)?;
        let tokenizer = TextTokenizer::from_bytes(tokenizer_json, config.max_tokens)?;
        let mut proto = tract_onnx::pb::ModelProto::decode(onnx)
            .map_err(|e| EncoderError::Model(format!("not an ONNX model: {e}")))?;
        // 4-bit weights become the int8 weights they stand for before anything reads the graph.
        crate::int4::widen_int4_weights(&mut proto)?;
        if config.int8_weights {
            keep_int8_weights(&mut proto);
        }
        let mut unpadded_proto = proto.clone();
        // Only the one-text graph fuses attention and layer norms: short inputs are where
        // tract's per-op costs dominate, while long padded batches gain from its packed
        // matmuls.
        let mut fused = FusedOps::default();
        let mask_free = drop_attention_mask(&mut unpadded_proto) > 0;
        let (single, unpadded, padded) = if config.padded_batches {
            let unpadded = mask_free
                .then(|| optimize(&unpadded_proto, false))
                .transpose()?;
            (None, unpadded, Some(optimize(&proto, false)?))
        } else {
            let graph = if mask_free {
                if config.fused_ops {
                    fused = FusedOps {
                        attention: crate::ops::attention::fuse_attention(&mut unpadded_proto),
                        layer_norms: crate::ops::layer_norm::fuse_layer_norm(&mut unpadded_proto),
                        gelus: crate::ops::gelu::fuse_gelu(&mut unpadded_proto),
                    };
                }
                &unpadded_proto
            } else {
                &proto
            };
            (Some(optimize(graph, true)?), None, None)
        };
        drop((proto, unpadded_proto));
        let model = [&single, &unpadded, &padded]
            .into_iter()
            .find_map(Option::as_ref)
            .expect("one graph is built");
        let inputs = model
            .input_outlets()
            .map_err(EncoderError::model)?
            .iter()
            .map(|outlet| {
                let name = &model.node(outlet.node).name;
                let role = input_role(name).ok_or_else(|| {
                    EncoderError::Model(format!(
                        "unexpected model input {name:?}: expected input_ids, attention_mask, \
                         token_type_ids or {TOKEN_ROWS_INPUT}"
                    ))
                })?;
                let dt = model
                    .outlet_fact(*outlet)
                    .map_err(EncoderError::model)?
                    .datum_type;
                Ok((role, dt))
            })
            .collect::<Result<Vec<_>, EncoderError>>()?;
        if !inputs
            .iter()
            .any(|(r, _)| matches!(r, InputRole::Ids | InputRole::Embeds))
        {
            return Err(EncoderError::Model(format!(
                "the model has neither an input_ids nor an {TOKEN_ROWS_INPUT} input"
            )));
        }
        let out_fact = model.output_fact(0).map_err(EncoderError::model)?;
        let dim = out_fact
            .shape
            .as_concrete()
            .and_then(|s| s.last().copied())
            .or_else(|| {
                out_fact
                    .shape
                    .dims()
                    .last()
                    .and_then(|d| d.to_i64().ok().map(|v| v as usize))
            })
            .ok_or_else(|| EncoderError::Model("output's last dimension is not fixed".into()))?;
        // The plans carry no executor of their own: a per-plan executor would override the
        // single-threaded runs that `embed_many` spreads over its workers.
        let runnable = |m: Option<TypedModel>| {
            m.map(|m| m.into_runnable_with_options(&RunOptions::default()))
                .transpose()
                .map_err(EncoderError::model)
        };
        Ok(Self {
            executor: executor(config.threads),
            single: runnable(single)?,
            unpadded: runnable(unpadded)?,
            padded: runnable(padded)?,
            inputs,
            tokenizer,
            config,
            dim,
            fused,
            tokens: None,
        })
    }

    /// Whether the graph takes its word embeddings from a [`TokenRows`] table
    /// ([`crate::prepare::split_token_rows`]) rather than holding them.
    pub fn takes_token_rows(&self) -> bool {
        self.inputs
            .iter()
            .any(|(r, _)| matches!(r, InputRole::Embeds))
    }

    /// Gives a split graph its word-embedding table (whole, or to be filled by
    /// [`Encoder::token_rows_mut`]); an error for a graph that holds its own, or a table of
    /// another width.
    pub fn set_token_rows(&mut self, rows: TokenRows) -> Result<(), EncoderError> {
        if !self.takes_token_rows() {
            return Err(EncoderError::Model(
                "this encoder holds its own word embeddings: it takes no token rows".into(),
            ));
        }
        if rows.dim() != self.dim {
            return Err(EncoderError::Model(format!(
                "token rows of width {} for an encoder of width {}",
                rows.dim(),
                self.dim
            )));
        }
        self.tokens = Some(Arc::new(rows));
        Ok(())
    }

    /// The word-embedding table given by [`Encoder::set_token_rows`].
    pub fn token_rows(&self) -> Option<&TokenRows> {
        self.tokens.as_deref()
    }

    /// The table to add fetched rows to (copied first if a clone of this encoder shares it).
    pub fn token_rows_mut(&mut self) -> Option<&mut TokenRows> {
        self.tokens.as_mut().map(Arc::make_mut)
    }

    /// The rows `text` needs that the table does not have yet, as spans to fetch (none for a
    /// graph that holds its own table, or a whole one).
    pub fn missing_token_rows(&self, text: &str) -> Result<Vec<RowSpan>, EncoderError> {
        match &self.tokens {
            Some(rows) => rows.spans(&self.tokenizer.ids(text)?),
            None if self.takes_token_rows() => Err(no_token_rows()),
            None => Ok(Vec::new()),
        }
    }

    /// How many self-attention blocks, layer norms and GELUs the one-text graph runs as one
    /// fused op each; none with `padded_batches`, or for a graph the rewrites do not know.
    pub fn fused_ops(&self) -> FusedOps {
        self.fused
    }

    /// How many of the one-text graph's attention blocks take q, k and v from one int8
    /// matmul over the three projections' weights (`attention.rs`); 0 without fused ops.
    pub fn merged_projections(&self) -> usize {
        self.single.as_ref().map_or(0, |plan| {
            let nodes = plan.model().nodes();
            nodes
                .iter()
                .filter_map(|n| n.op_as::<crate::ops::attention::Attention>())
                .filter(|a| a.packed())
                .count()
        })
    }

    /// Whether batches without padding skip the attention-mask work (with `padded_batches`).
    pub fn has_unpadded_graph(&self) -> bool {
        self.unpadded.is_some()
    }

    /// Embedding width (384 for all-MiniLM-L6-v2).
    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn tokenizer(&self) -> &TextTokenizer {
        &self.tokenizer
    }

    pub fn config(&self) -> &EncoderConfig {
        &self.config
    }

    /// One text to one vector: the query path, no padding at all.
    pub fn embed(&self, text: &str) -> Result<Vec<f32>, EncoderError> {
        let batch = self.tokenizer.batch(&[text])?;
        Ok(self
            .run_batch(&batch, true)?
            .pop()
            .expect("one text gives one vector"))
    }

    /// Embeds texts in one model call, padded to the longest. Use [`Encoder::embed_many`] for
    /// corpora: it groups texts of similar length so little work is spent on padding.
    pub fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EncoderError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let encodings = texts
            .iter()
            .map(|t| self.tokenizer.encode(t))
            .collect::<Result<Vec<_>, _>>()?;
        self.run_group(&encodings.iter().collect::<Vec<_>>(), true)
    }

    /// Embeds a corpus in length-sorted batches of `batch_size`, calling `progress` with the
    /// number of texts finished so far; vectors come back in input order. With more than one
    /// thread, whole batches run in parallel (one single-threaded model call per core), which
    /// scales better than splitting each matmul.
    pub fn embed_many(
        &self,
        texts: &[&str],
        batch_size: usize,
        mut progress: impl FnMut(usize),
    ) -> Result<Vec<Vec<f32>>, EncoderError> {
        let encodings = texts
            .iter()
            .map(|t| self.tokenizer.encode(t))
            .collect::<Result<Vec<_>, _>>()?;
        let lens: Vec<usize> = encodings.iter().map(|e| e.get_ids().len()).collect();
        let batches = cap_attention(plan_batches(&lens, batch_size.max(1)), &lens);
        let mut out = vec![Vec::new(); texts.len()];
        let mut done = 0;
        let mut store = |chunk: &[usize], vectors: Vec<Vec<f32>>| {
            for (&i, v) in chunk.iter().zip(vectors) {
                out[i] = v;
            }
            done += chunk.len();
            progress(done);
        };
        let embed = |chunk: &[usize]| {
            let group: Vec<&Encoding> = chunk.iter().map(|&i| &encodings[i]).collect();
            self.run_group(&group, false)
        };
        let workers = self.config.threads.min(batches.len());
        if cfg!(feature = "threads") && workers > 1 {
            let next = std::sync::atomic::AtomicUsize::new(0);
            std::thread::scope(|scope| {
                let (tx, rx) = std::sync::mpsc::channel();
                for _ in 0..workers {
                    let tx = tx.clone();
                    let (next, batches, embed) = (&next, &batches, &embed);
                    scope.spawn(move || loop {
                        let b = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(chunk) = batches.get(b) else { break };
                        let failed = tx.send((b, embed(chunk))).is_err();
                        if failed {
                            break;
                        }
                    });
                }
                drop(tx);
                for (b, result) in rx {
                    match result {
                        Ok(vectors) => store(&batches[b], vectors),
                        Err(e) => {
                            // Stop the other workers early; they exit on their next batch.
                            next.store(batches.len(), std::sync::atomic::Ordering::Relaxed);
                            return Err(e);
                        }
                    }
                }
                Ok(())
            })?;
        } else {
            for chunk in &batches {
                store(chunk, embed(chunk)?);
            }
        }
        Ok(out)
    }

    /// Runs tokenized texts as one batch padded to the longest, or one text at a time when
    /// this encoder has no graph for padded batches (one text is never padded).
    /// `threads`: whether the matmuls may use the executor (`embed_many` runs whole batches
    /// on its own workers instead).
    fn run_group(&self, group: &[&Encoding], threads: bool) -> Result<Vec<Vec<f32>>, EncoderError> {
        let batch = TokenBatch::pad(group);
        if group.len() > 1 && self.plan_for(&batch).is_none() {
            return group
                .iter()
                .map(|e| Ok(self.run_group(&[*e], threads)?.remove(0)))
                .collect();
        }
        self.run_batch(&batch, threads)
    }

    /// Runs one batch (see [`Self::run_group`]).
    fn run_batch(&self, batch: &TokenBatch, threads: bool) -> Result<Vec<Vec<f32>>, EncoderError> {
        // Splitting tract's own ops over threads costs more in wake-ups than it saves on a
        // short call.
        let executor = self
            .executor
            .as_ref()
            .filter(|_| threads && batch.batch * batch.len >= MIN_TOKENS_FOR_THREADS);
        // The int8 matmuls split over the pool either way; for a short call, through helpers
        // that spin for its duration (see split.rs), while tract's own small ops stay here.
        #[cfg(feature = "threads")]
        if let (true, Some(tract_linalg::multithread::Executor::MultiThread(pool))) =
            (threads, &self.executor)
        {
            let spinning = executor.is_none();
            return crate::kernels::split::with_threads(pool, spinning, || {
                self.run_on(batch, executor)
            });
        }
        self.run_on(batch, executor)
    }

    /// The int8 matrices of the graph a single text runs, in node order, each once.
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    pub(crate) fn int8_matrices(&self) -> Vec<Arc<crate::kernels::linear::Int8Matrix>> {
        let plan = [&self.single, &self.unpadded, &self.padded]
            .into_iter()
            .find_map(Option::as_ref)
            .expect("one graph is built");
        let mut out: Vec<Arc<crate::kernels::linear::Int8Matrix>> = Vec::new();
        for node in plan.model().nodes() {
            if let Some(op) = node.op_as::<crate::ops::int8_matmul::Int8MatMul>() {
                if !out.iter().any(|w| Arc::ptr_eq(w, op.weights())) {
                    out.push(op.weights().clone());
                }
            }
        }
        out
    }

    /// The query graph's int8 matrices, packed for
    /// [`MatmulHelper::from_bytes`](crate::helper::MatmulHelper::from_bytes) in a helper
    /// worker. [`Encoder::share_matmuls`] numbers them the same way.
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    pub fn matmul_weights(&self) -> Vec<u8> {
        crate::kernels::helper::pack(&self.int8_matrices())
    }

    /// [`Encoder::matmul_weights`]' length, and its bytes handed to `sink` a piece at a time
    /// (a matrix's panels at most): a page copies them into a JS buffer for the worker without
    /// their 11 MB ever being in its own memory, which never shrinks back.
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    pub fn matmul_weights_len(&self) -> usize {
        crate::kernels::helper::packed_len(&self.int8_matrices())
    }

    /// See [`Encoder::matmul_weights_len`].
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    pub fn write_matmul_weights(&self, sink: &mut dyn FnMut(&[u8])) {
        crate::kernels::helper::pack_into(&self.int8_matrices(), sink)
    }

    /// Splits this thread's int8 matmuls with `peer`, whose helper was built from
    /// [`Encoder::matmul_weights`], until [`crate::helper::uninstall`].
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    pub fn share_matmuls(&self, peer: std::rc::Rc<dyn crate::helper::Peer>) {
        crate::kernels::helper::install(&self.int8_matrices(), peer);
    }

    /// The graph for this batch: the mask-free one when nothing in it is padding.
    fn plan_for(&self, batch: &TokenBatch) -> Option<&Arc<TypedRunnableModel>> {
        let unpadded = batch.attention_mask.iter().all(|&m| m == 1);
        match (&self.single, &self.unpadded, &self.padded) {
            // One text is never padded.
            (Some(plan), _, _) if batch.batch == 1 => Some(plan),
            (_, Some(plan), _) if unpadded => Some(plan),
            (_, _, padded) => padded.as_ref(),
        }
    }

    fn run_on(
        &self,
        batch: &TokenBatch,
        executor: Option<&tract_linalg::multithread::Executor>,
    ) -> Result<Vec<Vec<f32>>, EncoderError> {
        let plan = self.plan_for(batch).ok_or_else(|| {
            EncoderError::Inference("padded batches are off for this encoder".into())
        })?;
        let inputs = self.inputs_for(batch)?;
        let outputs = match executor {
            Some(ex) => {
                tract_linalg::multithread::multithread_tract_scope(ex.clone(), || plan.run(inputs))
            }
            None => plan.run(inputs),
        }
        .map_err(EncoderError::inference)?;
        pool_outputs(&outputs, batch, self.dim, &self.config)
    }

    /// The model's input tensors for a batch, in the model's input order.
    fn inputs_for(&self, batch: &TokenBatch) -> Result<TVec<TValue>, EncoderError> {
        let shape = [batch.batch, batch.len];
        self.inputs
            .iter()
            .map(|(role, dt)| {
                let data = match role {
                    InputRole::Ids => &batch.ids,
                    InputRole::Mask => &batch.attention_mask,
                    InputRole::TypeIds => &batch.type_ids,
                    InputRole::Embeds => {
                        let rows = self.tokens.as_ref().ok_or_else(no_token_rows)?;
                        let values = rows.lookup(&batch.ids)?;
                        let t = Tensor::from_shape(&[batch.batch, batch.len, self.dim], &values)
                            .map_err(EncoderError::inference)?;
                        return Ok(t.into_tvalue());
                    }
                };
                let t = Tensor::from_shape(&shape, data).map_err(EncoderError::inference)?;
                let t = t
                    .cast_to_dt(*dt)
                    .map_err(EncoderError::inference)?
                    .into_owned();
                Ok(t.into_tvalue())
            })
            .collect()
    }

    /// Starts embedding one text a slice at a time: [`EmbedJob::step`] runs the model until
    /// the caller says the slice is over. A browser's main thread uses it to stay responsive
    /// while a long text is embedded; the vector is the one [`Encoder::embed`] gives.
    pub fn start(&self, text: &str) -> Result<EmbedJob, EncoderError> {
        let batch = self.tokenizer.batch(&[text])?;
        let plan = self
            .plan_for(&batch)
            .ok_or_else(|| EncoderError::Inference("no graph for a single text".into()))?
            .clone();
        let mut state = TypedSimpleState::new(&plan).map_err(EncoderError::inference)?;
        state
            .set_inputs(self.inputs_for(&batch)?)
            .map_err(EncoderError::inference)?;
        let order = plan.order_without_consts().to_vec();
        let flush = flush_lists(&plan, &order);
        let work = node_work(&plan, &order, &state.turn_state.resolved_symbols);
        Ok(EmbedJob {
            state,
            order,
            flush,
            work,
            spent_ms: 0.0,
            next: 0,
            batch,
            dim: self.dim,
            config: self.config.clone(),
        })
    }
}

/// One text's embedding in progress (see [`Encoder::start`]).
#[derive(Debug)]
pub struct EmbedJob {
    state: TypedSimpleState,
    /// The plan's nodes in evaluation order, and after each one the nodes whose values no
    /// later node reads (dropped as the job goes, as tract's own runs do).
    order: Vec<usize>,
    flush: Vec<Vec<usize>>,
    /// Each step's multiply-adds for this text, and the milliseconds the job's timed slices
    /// have spent so far (see [`EmbedJob::step_for`]).
    work: Vec<f64>,
    spent_ms: f64,
    next: usize,
    batch: TokenBatch,
    dim: usize,
    config: EncoderConfig,
}

impl EmbedJob {
    /// Runs model nodes until `slice_over` says to stop (asked between nodes) or the model is
    /// done; returns the vector once done.
    pub fn step(
        &mut self,
        mut slice_over: impl FnMut() -> bool,
    ) -> Result<Option<Vec<f32>>, EncoderError> {
        while let Some(&node) = self.order.get(self.next) {
            self.state
                .compute_one(node)
                .map_err(EncoderError::inference)?;
            for &done in &self.flush[self.next] {
                self.state.turn_state.values[done] = None;
            }
            self.next += 1;
            if self.next < self.order.len() && slice_over() {
                return Ok(None);
            }
        }
        let outputs = self.state.outputs().map_err(EncoderError::inference)?;
        let mut vectors = pool_outputs(&outputs, &self.batch, self.dim, &self.config)?;
        Ok(vectors.pop())
    }

    /// Runs model nodes for about `budget_ms` of `now`'s clock (milliseconds): at least one,
    /// then each next one only if its predicted time still fits. A node's time is predicted
    /// from its multiply-adds at the job's rate so far, so one long node (a 256-token
    /// feed-forward matmul) starts a slice of its own instead of running past the budget.
    pub fn step_for(
        &mut self,
        budget_ms: f64,
        now: impl Fn() -> f64,
    ) -> Result<Option<Vec<f32>>, EncoderError> {
        let start = now();
        let spent_before = self.spent_ms;
        // `step` borrows the job; its cost table is lent out for the slice.
        let work = std::mem::take(&mut self.work);
        let mut ran = self.next;
        let mut done: f64 = work[..ran].iter().sum();
        let result = self.step(|| {
            done += work[ran];
            ran += 1;
            let elapsed = now() - start;
            let ms_per_work = if done > 0.0 {
                (spent_before + elapsed) / done
            } else {
                0.0
            };
            elapsed + work[ran] * ms_per_work > budget_ms
        });
        self.work = work;
        self.spent_ms = spent_before + (now() - start);
        result
    }

    /// The name of the op the next model node runs (`None` once all have run): with a step
    /// per node, what a profiler charges each step's time to.
    pub fn next_op(&self) -> Option<String> {
        let &node = self.order.get(self.next)?;
        Some(self.state.plan().model().node(node).op().name().to_string())
    }

    /// The multiply-adds the next model node does for this text, as its op counts them (0
    /// where it does not say, and once all have run): what [`EmbedJob::step_for`] predicts
    /// its time from.
    pub fn next_work(&self) -> f64 {
        self.work.get(self.next).copied().unwrap_or(0.0)
    }

    /// The text's length in tokens, after truncation.
    pub fn tokens(&self) -> usize {
        self.batch.ids.len()
    }

    /// How far the job is: model nodes run, and nodes in all.
    pub fn progress(&self) -> (usize, usize) {
        (self.next, self.order.len())
    }
}

/// Each step's multiply-adds (and divisions) as its ops count them, for this text's resolved
/// sequence length; 0 where an op does not say.
fn node_work(plan: &TypedRunnableModel, order: &[usize], symbols: &SymbolValues) -> Vec<f64> {
    let model = plan.model();
    order
        .iter()
        .map(|&n| {
            let node = model.node(n);
            let Ok(inputs) = model.node_input_facts(n) else {
                return 0.0;
            };
            let Ok(costs) = node.op.cost(&inputs) else {
                return 0.0;
            };
            costs
                .iter()
                .filter(|(kind, _)| kind.is_compute())
                .filter_map(|(_, count)| count.eval(symbols).to_i64().ok())
                .sum::<i64>() as f64
        })
        .collect()
}

/// For each step of `order`, the nodes whose outputs no later step (nor the model's outputs)
/// reads.
fn flush_lists(plan: &TypedRunnableModel, order: &[usize]) -> Vec<Vec<usize>> {
    let model = plan.model();
    let mut last_use = vec![None; model.nodes().len()];
    for (step, &n) in order.iter().enumerate() {
        for input in &model.node(n).inputs {
            last_use[input.node] = Some(step);
        }
    }
    let outputs: Vec<usize> = model
        .output_outlets()
        .map_or_else(|_| Vec::new(), |o| o.iter().map(|o| o.node).collect());
    let mut flush = vec![Vec::new(); order.len()];
    for (node, step) in last_use.into_iter().enumerate() {
        if let Some(step) = step.filter(|_| !outputs.contains(&node)) {
            flush[step].push(node);
        }
    }
    flush
}

/// Sentence vectors from the model's output: pooled token vectors, or vectors as they are
/// for exports that pool themselves.
fn pool_outputs(
    outputs: &[TValue],
    batch: &TokenBatch,
    dim: usize,
    config: &EncoderConfig,
) -> Result<Vec<Vec<f32>>, EncoderError> {
    let hidden = outputs[0]
        .to_plain_array_view::<f32>()
        .map_err(EncoderError::inference)?;
    let hidden = hidden.as_standard_layout();
    let data = hidden
        .as_slice()
        .ok_or_else(|| EncoderError::Inference("output is not contiguous".into()))?;
    let mut vectors = match hidden.shape() {
        // Token vectors [batch, len, dim]: pool them.
        [b, len, d] if *b == batch.batch && *len == batch.len && *d == dim => data
            .chunks_exact(len * d)
            .zip(batch.attention_mask.chunks_exact(batch.len))
            .map(|(rows, mask)| match config.pooling {
                Pooling::Mean => masked_mean(rows, mask, *d),
                Pooling::Cls => rows[..*d].to_vec(),
            })
            .collect::<Vec<_>>(),
        // Exports that already pool give [batch, dim].
        [b, d] if *b == batch.batch && *d == dim => {
            data.chunks_exact(*d).map(<[f32]>::to_vec).collect()
        }
        other => {
            return Err(EncoderError::Inference(format!(
                "unexpected output shape {other:?} for a batch of {} x {} tokens",
                batch.batch, batch.len
            )))
        }
    };
    if config.normalize {
        vectors.iter_mut().for_each(|v| l2_normalize(v));
    }
    Ok(vectors)
}

/// Groups texts (by index) into batches of at most `size`, longest first. Texts of one
/// length make batches of their own, which need no padding and so run the mask-free graph;
/// what is left of each length (less than half a batch) is padded together with its
/// neighbours in length.
fn plan_batches(lens: &[usize], size: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lens.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(lens[i]));
    let mut batches = Vec::new();
    let mut rest = Vec::new();
    for run in order.chunk_by(|&a, &b| lens[a] == lens[b]) {
        for chunk in run.chunks(size) {
            if chunk.len() * 2 >= size {
                batches.push(chunk.to_vec());
            } else {
                rest.extend_from_slice(chunk);
            }
        }
    }
    batches.extend(rest.chunks(size).map(<[usize]>::to_vec));
    // Longest first again: the largest allocation comes first, and two workers finish
    // together instead of one taking the long tail.
    batches.sort_by_key(|b| std::cmp::Reverse(lens[b[0]]));
    batches
}

/// Token pairs one batch's attention scores may hold: 16 texts of 128 tokens. A batch of 16
/// texts of 256 tokens holds 50 MB of scores per layer (12 heads), above the 32 MB beyond which
/// glibc's allocator maps and unmaps every buffer from the kernel, so each layer paid page
/// faults on fresh pages (about a tenth of the time); such batches are split.
const MAX_ATTENTION_PAIRS: usize = 16 * 128 * 128;

/// Splits each batch of [`plan_batches`] whose texts (padded to its longest) would make more
/// than [`MAX_ATTENTION_PAIRS`] token pairs.
fn cap_attention(batches: Vec<Vec<usize>>, lens: &[usize]) -> Vec<Vec<usize>> {
    let mut batches = batches
        .into_iter()
        .flat_map(|b| {
            let longest = b.iter().map(|&i| lens[i]).max().unwrap_or(1).max(1);
            let most = (MAX_ATTENTION_PAIRS / (longest * longest)).max(1);
            b.chunks(most).map(<[usize]>::to_vec).collect::<Vec<_>>()
        })
        .collect::<Vec<_>>();
    // Longest first again, as `plan_batches` orders them (a split padded batch's shorter
    // halves would otherwise come before longer batches).
    batches.sort_by_key(|b| std::cmp::Reverse(lens[b[0]]));
    batches
}

/// Parses and optimises one graph; `single` fixes its batch size to 1. Exporters'
/// intermediate shape annotations can be wrong (this model's attention-mask broadcast is), so
/// tract infers shapes itself. The inputs keep the model's own symbols (batch, sequence):
/// declaring other symbol names makes tract fail to unify them.
fn optimize(proto: &tract_onnx::pb::ModelProto, single: bool) -> Result<TypedModel, EncoderError> {
    let model = crate::ops::onnx()
        .with_ignore_value_info(true)
        .with_ignore_output_shapes(true)
        .model_for_proto_model(proto)
        .and_then(|m| m.into_typed())
        .map_err(EncoderError::model)?;
    let model = if single {
        // The batch symbol is whatever the first input's first dimension is called.
        let batch = model
            .input_fact(0)
            .ok()
            .and_then(|f| f.shape.dims().first().cloned());
        match batch {
            Some(TDim::Sym(sym)) => model
                .set_symbols(&std::collections::HashMap::from([(sym, TDim::Val(1))]))
                .map_err(EncoderError::model)?,
            _ => model,
        }
    } else {
        model
    };
    // Sequences hold at least one token. Without that fact tract cannot prove that an
    // elementwise op over `[1, sequence, 384]` is big enough for its vector kernels, and runs
    // the residual adds and the attention's scalings through a generic broadcasting loop, a
    // large share of a short query in wasm.
    if let Some(TDim::Sym(sequence)) = model
        .input_fact(0)
        .ok()
        .and_then(|f| f.shape.dims().get(1).cloned())
    {
        model
            .symbols
            .add_assertion(format!("{sequence}>=1"))
            .map_err(EncoderError::model)?;
    }
    model.into_optimized().map_err(EncoderError::model)
}

fn no_token_rows() -> EncoderError {
    EncoderError::Model(format!(
        "the graph takes its word embeddings as {TOKEN_ROWS_INPUT}, and no token rows were given"
    ))
}

fn input_role(name: &str) -> Option<InputRole> {
    match name {
        "input_ids" => Some(InputRole::Ids),
        "attention_mask" => Some(InputRole::Mask),
        "token_type_ids" => Some(InputRole::TypeIds),
        TOKEN_ROWS_INPUT => Some(InputRole::Embeds),
        _ => None,
    }
}

#[cfg(feature = "threads")]
fn executor(threads: usize) -> Option<tract_linalg::multithread::Executor> {
    (threads > 1).then(|| tract_linalg::multithread::Executor::multithread(threads))
}

#[cfg(not(feature = "threads"))]
fn executor(_threads: usize) -> Option<tract_linalg::multithread::Executor> {
    None
}

#[cfg(test)]
mod tests {
    use super::{cap_attention, plan_batches, EncoderConfig, Pooling};

    #[test]
    fn a_models_declared_settings_override_the_defaults_and_unknown_pooling_is_named() {
        for p in [Pooling::Mean, Pooling::Cls] {
            assert_eq!(p.as_str().parse::<Pooling>(), Ok(p));
        }
        let c = EncoderConfig::declared(Some(512), Some("cls")).unwrap();
        assert_eq!((c.max_tokens, c.pooling), (512, Pooling::Cls));
        let d = EncoderConfig::declared(None, None).unwrap();
        let default = EncoderConfig::default();
        assert_eq!(
            (d.max_tokens, d.pooling),
            (default.max_tokens, default.pooling)
        );
        let e = EncoderConfig::declared(None, Some("max"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("pooling \"max\" is not \"mean\" or \"cls\""),
            "{e}"
        );
    }

    /// Each batch's texts' lengths, after checking that every text is in one batch.
    fn lengths(batches: &[Vec<usize>], lens: &[usize]) -> Vec<Vec<usize>> {
        let mut seen: Vec<usize> = batches.concat();
        seen.sort_unstable();
        assert_eq!(seen, (0..lens.len()).collect::<Vec<_>>(), "every text once");
        batches
            .iter()
            .map(|b| b.iter().map(|&i| lens[i]).collect())
            .collect()
    }

    #[test]
    fn equal_lengths_fill_unpadded_batches_and_remainders_pad_together() {
        // Lengths: five of 9, three of 7, one of 5, four of 3.
        let lens = [9, 7, 9, 3, 9, 5, 3, 9, 7, 3, 9, 7, 3];
        let batches = plan_batches(&lens, 4);
        assert_eq!(
            lengths(&batches, &lens),
            vec![
                vec![9, 9, 9, 9],
                vec![9, 5],
                vec![7, 7, 7],
                vec![3, 3, 3, 3],
            ]
        );
        assert!(batches.iter().all(|b| b.len() <= 4));
    }

    #[test]
    fn long_texts_make_smaller_batches() {
        // 20 texts of 256 tokens: 16 of them fill a batch, four times the cap of pairs, and
        // the other 4 pad with the texts of 300 and 10 tokens, 2 a batch at 300; the last
        // half of that batch, one text of 10 tokens, still comes last.
        let mut lens = vec![256; 20];
        lens.extend([128; 16]);
        lens.extend([300, 10, 10]);
        let batches = cap_attention(plan_batches(&lens, 16), &lens);
        assert_eq!(
            lengths(&batches, &lens),
            [
                vec![300, 256],
                vec![256, 256],
                vec![256, 10],
                vec![256; 4],
                vec![256; 4],
                vec![256; 4],
                vec![256; 4],
                vec![128; 16],
                vec![10],
            ]
        );
    }

    #[test]
    fn no_texts_no_batches() {
        assert!(plan_batches(&[], 16).is_empty());
    }
}
