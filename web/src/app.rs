//! The search bar: an ARIA combobox over the release's [`Searcher`], run on the main thread.
//!
//! Loading starts after the first paint (or on focus), so the box is usable at once. A hybrid
//! release answers by words as soon as its records and lexical root are here, and the same
//! results are ranked again, in place, when the encoder is ready (the active row stays on its
//! document). Typing is
//! throttled, not debounced: a keystroke after a pause is searched at once, inside its own input
//! event (embedding and search take milliseconds; keys queued behind other input get one search
//! posted after them instead), while a burst of keystrokes (fast typing, a held key) waits after
//! each search as long as that search took, so searching never takes more than about half of
//! the main thread and the newest text is always the one searched. Embedding runs in
//! slices of at most [`SLICE_MS`], each its own task, so even a long pasted text never holds
//! the main thread for long, and a newer text cancels a query still being embedded.

use std::cell::Cell;
use std::rc::Rc;

use futures::future::{self, FutureExt, LocalBoxFuture};
use gloo_timers::callback::{Interval, Timeout};
use js_sys::{Function, Object, Reflect};
use searchbar_encoder::EmbedJob;
use searchbar_query::fetch::Fetched;
use searchbar_query::searchbar_lexical::{Matches, Outcome};
use searchbar_query::{
    Dense, Hit, QueryError, QueryHit, RowRequest, Searcher, Stage, Terms, TokenRequest,
};
use searchbar_release::Manifest;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::spawn_local;
use web_sys::{HtmlInputElement, ScrollIntoViewOptions, ScrollLogicalPosition};
use yew::prelude::*;

use crate::cache;
use crate::keyboard::{self, Key};
use crate::loader::{self, Download};
use crate::results::{self, option_id, Rows};
use crate::status::{self, Phase};
use crate::timing;
use crate::worker;

/// How often to look for a newer live release.
const POLL_MS: u32 = 60_000;

/// The longest the page computes an embedding before giving the browser its main thread back
/// (input, paint). A short query finishes in one slice; a long pasted text
/// runs in slices, a node predicted not to fit starting the next one (`EmbedJob::step_for`).
const SLICE_MS: f64 = 30.0;

/// Queries up to this many bytes (about 25 tokens) take well under a slice: they run in one call,
/// without the slicing's per-node bookkeeping. Judged by length rather than tokens because
/// tokenizing costs milliseconds in wasm.
const ONE_CALL_BYTES: usize = 100;

/// A keydown that waited longer than this for the main thread is part of a queue of input.
const QUEUED_KEY_MS: f64 = 4.0;

/// A query being embedded, a slice per task.
struct Job {
    embed: EmbedJob,
    text: String,
    start: f64,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").field("text", &self.text).finish()
    }
}

#[derive(Debug)]
pub enum Msg {
    /// Start loading the release (idempotent).
    Start,
    Manifest(Rc<Manifest>),
    Progress(usize, u64),
    BuildingModel,
    /// The records and the lexical index: words can be searched.
    Records(Box<Searcher>),
    /// The dense half, to attach.
    Dense(Box<Dense>),
    /// The matmul helper's worker is ready (or failed to start).
    Helper(Result<(), String>),
    Failed(String),
    /// The box's new text and when the input event happened.
    Input(String, f64),
    Search,
    /// A search posted by [`post_task`].
    PostedSearch,
    /// Run the next slice of the query being embedded.
    Step,
    /// The re-ranking records fetched for search number `seq`.
    Rows {
        seq: u64,
        text: String,
        start: f64,
        vector: Vec<f32>,
        request: Box<RowRequest>,
        records: Result<Vec<(u32, Vec<u8>)>, String>,
    },
    /// The word-embedding rows fetched for search number `seq` (or the whole file, from a host
    /// that ignores range requests).
    Tokens {
        seq: u64,
        request: Box<TokenRequest>,
        fetched: Result<Fetched, String>,
    },
    /// Lexical fragments fetched for search number `seq`.
    Fragments {
        seq: u64,
        fetched: Result<Vec<(usize, Vec<u8>)>, String>,
    },
    /// The document shards of search number `seq`'s results (`ranked` for `text`), fetched
    /// after `spent` milliseconds of searching.
    Shards {
        seq: u64,
        text: String,
        spent: f64,
        ranked: Vec<(u32, f32)>,
        fetched: Result<Vec<(usize, Vec<u8>)>, String>,
    },
    Key(Key),
    Hover(usize),
    CheckLive,
    Live(Option<String>),
}

#[derive(Debug)]
pub struct App {
    phase: Phase,
    manifest: Option<Rc<Manifest>>,
    searcher: Option<Searcher>,
    /// What the box holds.
    query: String,
    /// The latest input event's time stamp (the `performance.now()` clock).
    input_at: f64,
    /// The shown results and the query that produced them.
    hits: Vec<QueryHit>,
    hits_query: String,
    /// Whether the shown results are ranked by words only while the encoder loads (a
    /// hybrid release's first stage); `#results[data-stage]` is `words` then, else `complete`.
    hits_partial: bool,
    query_error: Option<String>,
    /// What started the last search: its input event, a posted task or the throttle's timer
    /// (published for the benchmark).
    started_by: &'static str,
    /// The pending search (replaced by every keystroke, so only the newest text is searched).
    debounce: Option<Timeout>,
    /// A search is posted as a prioritized task ([`post_task`]) and has not run yet.
    search_posted: bool,
    /// How long the latest keydown waited for the main thread (its handler sets it).
    key_wait: Rc<Cell<f64>>,
    /// The query being embedded (a newer search replaces it) and its next slice's timer.
    job: Option<Job>,
    next_slice: Option<Timeout>,
    /// When the last search ended and how long it took (the throttle).
    last_search_end: f64,
    last_search_ms: f64,
    /// Milliseconds the last query's embedding took (its share of `last_search_ms`).
    last_embed_ms: f64,
    /// Counts searches, so rows fetched for an older one are dropped.
    search_seq: u64,
    /// The lexical matches of the text being searched, fused with its dense list when that
    /// arrives.
    lexical: Option<(String, Matches)>,
    poll: Option<Interval>,
    newer: Option<String>,
    list_ref: NodeRef,
    /// The page's search box, taken over from the static shell (index.html), and the
    /// listeners on it.
    input: Option<HtmlInputElement>,
    _listeners: Vec<Listener>,
    /// The listbox's rows, set by [`App::show`] without a re-render.
    rows: Rows,
}

impl Component for App {
    type Message = Msg;
    type Properties = ();

    fn create(ctx: &Context<Self>) -> Self {
        timing::publish(false, None, None);
        let key_wait = Rc::<Cell<f64>>::default();
        let (input, listeners) = take_over_box(ctx.link(), &key_wait).unzip();
        Self {
            phase: Phase::Idle,
            manifest: None,
            searcher: None,
            query: String::new(),
            input_at: 0.0,
            hits: Vec::new(),
            hits_query: String::new(),
            hits_partial: false,
            query_error: None,
            started_by: "",
            debounce: None,
            search_posted: false,
            key_wait,
            job: None,
            next_slice: None,
            last_search_end: 0.0,
            last_search_ms: 0.0,
            last_embed_ms: 0.0,
            search_seq: 0,
            lexical: None,
            poll: None,
            newer: None,
            list_ref: NodeRef::default(),
            input,
            _listeners: listeners.unwrap_or_default(),
            rows: Rows::default(),
        }
    }

    fn update(&mut self, ctx: &Context<Self>, msg: Msg) -> bool {
        match msg {
            Msg::Start => {
                if self.phase != Phase::Idle {
                    return false;
                }
                self.phase = Phase::Downloading(Vec::new());
                spawn_local(load(ctx.link().clone()));
            }
            Msg::Manifest(manifest) => {
                self.phase = Phase::Downloading(Download::list(&manifest));
                self.manifest = Some(manifest);
                let link = ctx.link().clone();
                self.poll = Some(Interval::new(POLL_MS, move || {
                    link.send_message(Msg::CheckLive)
                }));
                ctx.link().send_message(Msg::CheckLive);
            }
            Msg::Progress(i, loaded) => match &mut self.phase {
                Phase::Downloading(list) if i < list.len() => list[i].loaded = loaded,
                _ => return false,
            },
            Msg::BuildingModel => self.phase = Phase::Model,
            Msg::Records(searcher) => {
                let complete = searcher.complete_ranking();
                if complete {
                    self.phase = Phase::Ready {
                        documents: searcher.len(),
                    };
                }
                self.searcher = Some(*searcher);
                timing::publish(complete, None, None);
                // Whatever was typed while loading gets its answer now (by words, where the
                // encoder is still on its way).
                if !self.query.is_empty() {
                    ctx.link().send_message(Msg::Search);
                }
            }
            Msg::Dense(dense) => {
                let Some(searcher) = &mut self.searcher else {
                    return false;
                };
                if let Err(e) = searcher.attach(*dense) {
                    self.phase = Phase::Error(e.to_string());
                    return true;
                }
                self.phase = Phase::Ready {
                    documents: searcher.len(),
                };
                let link = ctx.link().clone();
                if let Some(encoder) = searcher.encoder() {
                    worker::start(encoder, move |r| link.send_message(Msg::Helper(r)));
                }
                timing::publish(true, None, None);
                // Results shown by words are ranked again with the dense list, in place.
                if !self.query.is_empty() {
                    ctx.link().send_message(Msg::Search);
                }
            }
            Msg::Helper(outcome) => {
                let encoder = self.searcher.as_ref().and_then(|s| s.encoder());
                if let (Ok(()), Some(encoder)) = (outcome, encoder) {
                    worker::install(encoder);
                }
                timing::publish(self.ready(), None, None);
                return false;
            }
            Msg::Failed(message) => self.phase = Phase::Error(message),
            // A `change` after the `input` that already carried this text.
            Msg::Input(text, _) if text == self.query => return false,
            Msg::Input(text, at) => {
                ctx.link().send_message(Msg::Start);
                self.query = text;
                self.input_at = at;
                // The box already shows the new text: nothing of Yew's view changes.
                self.rows.set_active(None);
                if self.query.trim().is_empty() {
                    self.debounce = None;
                    self.job = None;
                    self.next_slice = None;
                    // Rows, fragments or shards still on their way are for a text now gone.
                    self.search_seq += 1;
                    self.show("", Vec::new(), 0.0);
                    return false;
                }
                // 0 after a pause.
                let wait = (self.last_search_end + self.last_search_ms - at).max(0.0);
                // Whether this text's key waited in a queue of input (a burst of keys).
                let queued = self.key_wait.replace(0.0) > QUEUED_KEY_MS;
                self.debounce = None;
                if wait == 0.0 && self.job.is_none() && self.query.len() <= ONE_CALL_BYTES {
                    // After a pause a short query is searched at once: right here, in the input
                    // event's own task (before the frame that shows the keystroke, which would
                    // otherwise share the CPU with the search), unless its key waited in a
                    // queue of input (a burst of keys): then in a task posted at `user-blocking`
                    // priority, which runs after the queued input, so the burst gets one search
                    // for its last text instead of searches between its keys.
                    if !queued {
                        return self.search(ctx, "input");
                    }
                    if self.search_posted {
                        return false;
                    }
                    let link = ctx.link().clone();
                    self.search_posted = post_task(move || link.send_message(Msg::PostedSearch));
                    if self.search_posted {
                        return false;
                    }
                }
                let link = ctx.link().clone();
                self.debounce = Some(Timeout::new(wait.ceil() as u32, move || {
                    link.send_message(Msg::Search)
                }));
                return false;
            }
            Msg::Search => return self.search(ctx, "timer"),
            Msg::PostedSearch => {
                self.search_posted = false;
                // The box's text may have been searched at once since this was posted.
                if self.hits_query == self.query {
                    return false;
                }
                return self.search(ctx, "task");
            }
            Msg::Step => return self.step(ctx),
            Msg::Rows { seq, .. } if seq != self.search_seq => return false,
            Msg::Rows {
                text,
                start,
                vector,
                request,
                records,
                ..
            } => {
                let Some(searcher) = &self.searcher else {
                    return false;
                };
                let result = records
                    .map_err(|e| QueryError::Invalid {
                        file: request.url.clone(),
                        message: e,
                    })
                    .and_then(|records| searcher.complete(&vector, *request, &records))
                    .map(|dense| self.rank(&text, Some(&dense)));
                self.hits_partial = false;
                return self.finish(ctx, &text, start, result);
            }
            Msg::Tokens {
                seq,
                request,
                fetched,
            } => {
                let Some(searcher) = self.searcher.as_mut() else {
                    return false;
                };
                let kept = fetched.and_then(|fetched| {
                    match fetched {
                        Fetched::Ranges(rows) => searcher.insert_token_rows(&request, &rows),
                        Fetched::Whole(file) => searcher.insert_token_file(file),
                    }
                    .map_err(|e| e.to_string())
                });
                if let Err(e) = kept {
                    self.query_error = Some(format!("Search failed: {e}"));
                    return true;
                }
                if let Some(manifest) = &self.manifest {
                    loader::save_tokens(manifest, searcher);
                }
                // Kept for later queries either way; searched again if still the newest.
                if seq == self.search_seq {
                    return self.search(ctx, self.started_by);
                }
                return false;
            }
            Msg::Fragments { seq, fetched } => {
                if let Some(changed) = self.keep(fetched, Searcher::insert_fragment) {
                    return changed;
                }
                // Kept for later queries either way; searched again if still the newest.
                if seq == self.search_seq {
                    return self.search(ctx, self.started_by);
                }
                return false;
            }
            Msg::Shards {
                seq,
                text,
                spent,
                ranked,
                fetched,
            } => {
                if let Some(changed) = self.keep(fetched, Searcher::insert_shard) {
                    return changed;
                }
                // Kept for later queries either way; shown if still the newest. The wait for
                // the network is left out of the search's time (the throttle's measure).
                if seq == self.search_seq {
                    return self.finish(ctx, &text, timing::now() - spent, Ok(ranked));
                }
                return false;
            }
            Msg::Key(key) => return self.key(key),
            Msg::Hover(i) => {
                self.rows.set_active(Some(i));
                return false;
            }
            Msg::CheckLive => {
                let link = ctx.link().clone();
                spawn_local(
                    async move { link.send_message(Msg::Live(loader::live_release().await)) },
                );
                return false;
            }
            Msg::Live(live) => {
                let own = self.manifest.as_ref().map(|m| m.release.as_str());
                // An unreadable pointer says nothing about newer releases: keep what we know.
                let Some(live) = live else { return false };
                let newer = (Some(live.as_str()) != own).then_some(live);
                if newer == self.newer {
                    return false;
                }
                self.newer = newer;
            }
        }
        true
    }

    fn view(&self, ctx: &Context<Self>) -> Html {
        let on_hover = ctx
            .link()
            .batch_callback(|e: MouseEvent| results::hovered(&e).map(Msg::Hover));
        // The box is the page's own (`take_over_box`); `aria-expanded` and
        // `aria-activedescendant` follow the results: `Rows` sets them.
        html! {
            <>
                {status::view(&self.phase, self.words_ready(), self.query_error.as_deref())}
                {results::view(on_hover, &self.list_ref)}
                {status::footer(self.manifest.as_deref(), self.newer.as_deref())}
            </>
        }
    }

    fn rendered(&mut self, ctx: &Context<Self>, first_render: bool) {
        if first_render {
            let link = ctx.link().clone();
            spawn_local(async move {
                loader::next_paint().await;
                link.send_message(Msg::Start);
            });
        }
    }
}

impl App {
    /// Searches the box's text now (the throttle decided when). A short text is embedded in
    /// one call; a longer one starts a job that runs a slice per task.
    fn search(&mut self, ctx: &Context<Self>, started_by: &'static str) -> bool {
        self.debounce = None;
        self.started_by = started_by;
        let Some(searcher) = &self.searcher else {
            return false;
        };
        // A release ranked by its encoder alone has nothing to show until the encoder is here.
        if !searcher.complete_ranking() && !searcher.ranking().mode.uses_lexical() {
            return false;
        }
        // A newer text replaces a query still being embedded: only the newest counts.
        self.next_slice = None;
        self.job = None;
        self.search_seq += 1;
        if !Searcher::searchable(&self.query) {
            let cleared = self.query_error.take().is_some();
            let query = self.query.clone();
            self.show(&query, Vec::new(), 0.0);
            return cleared;
        }
        // The lexical list first: it may need fragments fetched (then this search runs
        // again when they arrive), and a lexical-only release needs nothing else.
        let start = timing::now();
        self.lexical = None;
        if let Some(lexical) = searcher.lexical_index() {
            match lexical.search(&self.query, searcher.depth(None)) {
                Ok(Outcome::Done(matches)) => self.lexical = Some((self.query.clone(), matches)),
                Ok(Outcome::Need(numbers)) => {
                    let files = numbers
                        .into_iter()
                        .filter_map(|n| Some((n, lexical.file(n)?.clone())))
                        .collect();
                    let (link, seq) = (ctx.link().clone(), self.search_seq);
                    spawn_local(async move {
                        let fetched = loader::fetch_parts(files).await;
                        link.send_message(Msg::Fragments { seq, fetched });
                    });
                    return false;
                }
                Err(e) => {
                    self.query_error = Some(format!("Search failed: {e}"));
                    return true;
                }
            }
        }
        let Some(encoder) = searcher
            .encoder()
            .filter(|_| searcher.ranking().mode.uses_dense())
        else {
            // A lexical release, or a hybrid one whose encoder is still loading (ranked again
            // when it arrives).
            let partial = !searcher.complete_ranking();
            let query = self.query.clone();
            let ranked = self.rank(&query, None);
            self.hits_partial = partial;
            return self.finish(ctx, &query, start, Ok(ranked));
        };
        // The rows of the query's tokens not yet at hand come first (then this search runs
        // again when they arrive).
        match searcher.token_request(&self.query) {
            Ok(None) => {}
            Ok(Some(request)) => {
                let (link, seq) = (ctx.link().clone(), self.search_seq);
                spawn_local(async move {
                    let fetched = loader::fetch_tokens(&request).await;
                    link.send_message(Msg::Tokens {
                        seq,
                        request: Box::new(request),
                        fetched,
                    });
                });
                return false;
            }
            Err(e) => {
                self.query_error = Some(format!("Search failed: {e}"));
                return true;
            }
        }
        if self.query.len() <= ONE_CALL_BYTES {
            let query = self.query.clone();
            return match encoder.embed(&query) {
                Ok(vector) => self.search_vector(ctx, query, start, vector),
                Err(e) => {
                    self.finish(ctx, &query, start, Err(e.into()));
                    true
                }
            };
        }
        match encoder.start(&self.query) {
            Ok(embed) => {
                self.job = Some(Job {
                    embed,
                    text: self.query.clone(),
                    start: timing::now(),
                });
                self.step(ctx)
            }
            Err(e) => {
                self.query_error = Some(format!("Search failed: {e}"));
                true
            }
        }
    }

    /// Runs one slice of the query being embedded; when the vector is ready, searches and
    /// shows the results, else schedules the next slice as a new task.
    fn step(&mut self, ctx: &Context<Self>) -> bool {
        self.next_slice = None;
        let Some(job) = &mut self.job else {
            return false;
        };
        let vector = match job.embed.step_for(SLICE_MS, timing::now) {
            Ok(Some(vector)) => vector,
            Ok(None) => {
                let link = ctx.link().clone();
                self.next_slice = Some(Timeout::new(0, move || link.send_message(Msg::Step)));
                return false;
            }
            Err(e) => {
                self.job = None;
                self.query_error = Some(format!("Search failed: {e}"));
                return true;
            }
        };
        let job = self.job.take().expect("a job was running");
        self.search_vector(ctx, job.text, job.start, vector)
    }

    /// Searches the index with an embedded query. An index that keeps its re-ranking rows on
    /// the server first fetches its candidates' records (range requests), without blocking.
    fn search_vector(
        &mut self,
        ctx: &Context<Self>,
        text: String,
        start: f64,
        vector: Vec<f32>,
    ) -> bool {
        self.last_embed_ms = timing::now() - start;
        // The helper worker's part is over: its core is the browser's again.
        worker::rest();
        let Some(searcher) = &self.searcher else {
            return false;
        };
        match searcher.begin(&vector, None) {
            Ok(Stage::Done(dense)) => {
                let ranked = self.rank(&text, Some(&dense));
                self.hits_partial = false;
                self.finish(ctx, &text, start, Ok(ranked))
            }
            Ok(Stage::NeedRows(request)) => {
                let (link, seq) = (ctx.link().clone(), self.search_seq);
                spawn_local(async move {
                    let records = loader::fetch_rows(&request).await;
                    link.send_message(Msg::Rows {
                        seq,
                        text,
                        start,
                        vector,
                        request: Box::new(request),
                        records,
                    });
                });
                false
            }
            Err(e) => self.finish(ctx, &text, start, Err(e)),
        }
    }

    /// Keeps fetched lexical fragments or document shards, each verified by `insert`. `None`
    /// when all were kept; else what `update` returns: `true` with the error on the status
    /// line, `false` where there is no searcher to keep them in.
    fn keep(
        &mut self,
        fetched: Result<Vec<(usize, Vec<u8>)>, String>,
        insert: fn(&mut Searcher, usize, &[u8]) -> Result<(), QueryError>,
    ) -> Option<bool> {
        let Some(searcher) = self.searcher.as_mut() else {
            return Some(false);
        };
        let kept = fetched.and_then(|parts| {
            parts
                .iter()
                .try_for_each(|(n, bytes)| insert(searcher, *n, bytes))
                .map_err(|e| e.to_string())
        });
        let e = kept.err()?;
        self.query_error = Some(format!("Search failed: {e}"));
        Some(true)
    }

    /// The ranking of `text`: its dense list (when the mode has one) fused with its lexical
    /// matches, as the manifest says ([`Searcher::rank`], the pipeline's own ranking).
    fn rank(&self, text: &str, dense: Option<&[Hit]>) -> Vec<(u32, f32)> {
        let Some(searcher) = &self.searcher else {
            return Vec::new();
        };
        let lexical = self
            .lexical
            .as_ref()
            .filter(|(t, _)| t == text)
            .map(|(_, m)| m);
        searcher.rank(dense, lexical, None)
    }

    /// Shows the outcome of the search for `query`, first fetching the document shards its
    /// results need where they are not at hand yet (then it is shown when they arrive, if
    /// still the newest); records how long the search took (the throttle). Returns whether
    /// Yew's view changed (the status line shows or clears an error).
    fn finish(
        &mut self,
        ctx: &Context<Self>,
        query: &str,
        start: f64,
        result: Result<Vec<(u32, f32)>, QueryError>,
    ) -> bool {
        let now = timing::now();
        let result = match (result, &self.searcher) {
            (Ok(ranked), Some(searcher)) => {
                let missing = searcher.missing_shards(&ranked);
                if !missing.is_empty() {
                    let (link, seq) = (ctx.link().clone(), self.search_seq);
                    let (text, spent) = (query.to_string(), now - start);
                    spawn_local(async move {
                        let fetched = loader::fetch_parts(missing).await;
                        link.send_message(Msg::Shards {
                            seq,
                            text,
                            spent,
                            ranked,
                            fetched,
                        });
                    });
                    return false;
                }
                searcher.hits(&ranked)
            }
            (Ok(_), None) => Ok(Vec::new()),
            (Err(e), _) => Err(e),
        };
        self.last_search_end = now;
        self.last_search_ms = now - start;
        match result {
            Ok(hits) => {
                self.show(query, hits, self.last_search_ms);
                self.query_error.take().is_some()
            }
            Err(e) => {
                self.query_error = Some(format!("Search failed: {e}"));
                true
            }
        }
    }

    /// Shows results for `query` (the text they were computed for, which the box may have
    /// moved past since) and publishes the search's timings. The rows and their ARIA state
    /// are set here, without Yew's update (`Rows::show`).
    fn show(&mut self, query: &str, hits: Vec<QueryHit>, search_ms: f64) {
        // The same text ranked again (words, then hybrid): the active row follows its document.
        let keep = self
            .rows
            .active()
            .filter(|_| query == self.hits_query)
            .and_then(|i| self.hits.get(i))
            .and_then(|active| hits.iter().position(|h| h.doc == active.doc));
        self.hits = hits;
        self.hits_query = query.to_string();
        let (Some(list), Some(input)) = (
            self.list_ref.cast::<web_sys::Element>(),
            self.input.as_ref().map(AsRef::<web_sys::Element>::as_ref),
        ) else {
            return;
        };
        // Marked: the query's words, and every form of the index terms it matched.
        let matched = self.lexical.as_ref().filter(|(t, _)| t == query);
        let analysis = self
            .searcher
            .as_ref()
            .and_then(|s| s.lexical_index())
            .map(|l| &l.index().root().meta.analysis);
        let terms = match (analysis, matched) {
            (Some(a), Some((_, m))) => Terms::with_matches(query, a, &m.terms),
            _ => Terms::new(query),
        };
        self.rows.show(&list, input, &self.hits, query, &terms);
        self.rows.set_active(keep);
        let stage = if self.hits_partial {
            "words"
        } else {
            "complete"
        };
        let _ = list.set_attribute("data-stage", stage);
        let now = timing::now();
        let total = now - self.input_at;
        // From the search's end to here: the new rows.
        let render = now - self.last_search_end;
        let _ = list.set_attribute("data-ms", &format!("{total:.1}"));
        let _ = list.set_attribute("data-search-ms", &format!("{search_ms:.1}"));
        let _ = list.set_attribute("data-embed-ms", &format!("{:.2}", self.last_embed_ms));
        let _ = list.set_attribute("data-render-ms", &format!("{render:.2}"));
        let _ = list.set_attribute("data-started-by", self.started_by);
        timing::publish(self.ready(), Some(total), Some(search_ms));
    }

    /// Whether the release ranks as its manifest says (the encoder is here, or not needed).
    fn ready(&self) -> bool {
        self.searcher
            .as_ref()
            .is_some_and(Searcher::complete_ranking)
    }

    /// The documents searchable by words while the encoder is still loading.
    fn words_ready(&self) -> Option<usize> {
        self.searcher
            .as_ref()
            .filter(|s| !s.complete_ranking() && s.ranking().mode.uses_lexical())
            .map(Searcher::len)
    }

    fn key(&mut self, key: Key) -> bool {
        match key {
            Key::Down | Key::Up => {
                let active = keyboard::step(self.rows.active(), self.hits.len(), key);
                self.rows.set_active(active);
                self.scroll_to_active();
                false
            }
            Key::Enter => {
                let url = keyboard::step(self.rows.active(), self.hits.len(), key)
                    .and_then(|i| self.hits[i].record.url.as_deref())
                    .and_then(results::safe_url);
                if let (Some(url), Some(window)) = (url, web_sys::window()) {
                    let _ = window.location().assign(&url);
                }
                false
            }
            Key::Escape => {
                self.query.clear();
                if let Some(input) = &self.input {
                    input.set_value("");
                }
                self.input_at = timing::now();
                self.debounce = None;
                self.job = None;
                self.next_slice = None;
                self.query_error = None;
                self.search_seq += 1;
                self.show("", Vec::new(), 0.0);
                true
            }
        }
    }

    fn scroll_to_active(&self) {
        let element = self.rows.active().and_then(|i| {
            web_sys::window()?
                .document()?
                .get_element_by_id(&option_id(i))
        });
        if let Some(element) = element {
            let options = ScrollIntoViewOptions::new();
            options.set_block(ScrollLogicalPosition::Nearest);
            element.scroll_into_view_with_scroll_into_view_options(&options);
        }
    }
}

/// An event listener the page keeps for its life.
type Listener = Closure<dyn Fn(Event)>;

/// Takes over the search box of the page's static shell (index.html), which has been usable
/// since the first paint: listens to it as it is, so its text, caret and focus stay, and
/// searches what was typed before the app arrived. None (and a console error) where the page
/// has no `#q`.
fn take_over_box(
    link: &html::Scope<App>,
    key_wait: &Rc<Cell<f64>>,
) -> Option<(HtmlInputElement, Vec<Listener>)> {
    let document = web_sys::window()?.document()?;
    let Some(input) = document
        .get_element_by_id("q")
        .and_then(|e| e.dyn_into::<HtmlInputElement>().ok())
    else {
        web_sys::console::error_1(&"searchbar: the page has no <input id=\"q\">".into());
        return None;
    };
    // Timed from the event's own time stamp (when the key produced it), on the same clock as
    // `performance.now()`. Some changes fire only `change` (a WebDriver clear, some
    // autofill).
    let on_text = link.callback(|e: Event| {
        let input: HtmlInputElement = e.target_unchecked_into();
        Msg::Input(input.value(), e.time_stamp())
    });
    let key_wait = key_wait.clone();
    let on_key = link.batch_callback(move |e: KeyboardEvent| {
        key_wait.set(timing::now() - e.time_stamp());
        worker::wake();
        let key = Key::from_name(&e.key())?;
        e.prevent_default();
        Some(Msg::Key(key))
    });
    let on_focus = link.callback(|_: Event| Msg::Start);
    let listen = |kind: &str, f: Box<dyn Fn(Event)>| {
        let closure = Closure::<dyn Fn(Event)>::wrap(f);
        let _ = input.add_event_listener_with_callback(kind, closure.as_ref().unchecked_ref());
        closure
    };
    let listeners = vec![
        listen(
            "input",
            Box::new({
                let on_text = on_text.clone();
                move |e| on_text.emit(e)
            }),
        ),
        listen("change", Box::new(move |e| on_text.emit(e))),
        listen(
            "keydown",
            Box::new(move |e| on_key.emit(e.unchecked_into())),
        ),
        listen("focus", Box::new(move |e| on_focus.emit(e))),
    ];
    let typed = input.value();
    if !typed.is_empty() {
        link.send_message(Msg::Input(typed, timing::now()));
    }
    // Tests and the first-visit benchmark wait for this.
    let _ = input.set_attribute("data-app", "");
    if document
        .active_element()
        .is_some_and(|a| &a == AsRef::<web_sys::Element>::as_ref(&input))
    {
        link.send_message(Msg::Start);
    }
    Some((input, listeners))
}

/// Runs `f` as a task of `user-blocking` priority (`scheduler.postTask`), ahead of timers;
/// false where the browser has no such scheduler.
fn post_task(f: impl FnOnce() + 'static) -> bool {
    let Some(window) = web_sys::window() else {
        return false;
    };
    let Ok(scheduler) = Reflect::get(&window, &"scheduler".into()) else {
        return false;
    };
    let Some(post) = Reflect::get(&scheduler, &"postTask".into())
        .ok()
        .and_then(|p| p.dyn_into::<Function>().ok())
    else {
        return false;
    };
    let options = Object::new();
    let _ = Reflect::set(&options, &"priority".into(), &"user-blocking".into());
    post.call2(&scheduler, &Closure::once_into_js(f), &options)
        .is_ok()
}

/// Loads the page's release, reporting each step to the component.
async fn load(link: html::Scope<App>) {
    let manifest = match loader::fetch_manifest().await {
        Ok(m) => Rc::new(m),
        Err(e) => return link.send_message(Msg::Failed(e)),
    };
    link.send_message(Msg::Manifest(manifest.clone()));
    let progress = link.callback(|(i, loaded)| Msg::Progress(i, loaded));
    let progress = move |i, n| progress.emit((i, n));
    let records = loader::fetch_records(&manifest, progress.clone());
    let mode = manifest.search.mode;
    // Words first where the mode reads them: the dense half starts downloading once they are
    // searchable, so the two never split the link. A dense release needs both at once.
    type Stage<'a> = LocalBoxFuture<'a, Result<searchbar_query::Artifacts, String>>;
    let (records, dense): (_, Option<Stage>) = if mode.uses_lexical() {
        let records = records.await;
        let dense = (records.is_ok() && mode.uses_dense())
            .then(|| loader::fetch_dense(&manifest, progress).boxed_local());
        (records, dense)
    } else {
        let (records, dense) = futures::join!(records, loader::fetch_dense(&manifest, progress));
        (records, Some(future::ready(dense).boxed_local()))
    };
    let searcher = records.and_then(|a| loader::open_records(&manifest, &a));
    match searcher {
        Ok(s) => link.send_message(Msg::Records(Box::new(s))),
        Err(e) => return link.send_message(Msg::Failed(e)),
    }
    // Files kept for releases this page does not read go, once this one is known to load.
    let kept = manifest.clone();
    spawn_local(async move {
        if let Some(cache) = cache::open().await {
            cache::prune(&cache, &kept).await;
        }
    });
    let Some(dense) = dense else {
        return;
    };
    let artifacts = match dense.await {
        Ok(a) => a,
        Err(e) => return link.send_message(Msg::Failed(e)),
    };
    link.send_message(Msg::BuildingModel);
    // Let "Loading model…" paint before tract holds the main thread.
    loader::next_paint().await;
    match loader::open_dense(&manifest, &artifacts) {
        Ok(dense) => link.send_message(Msg::Dense(Box::new(dense))),
        Err(e) => link.send_message(Msg::Failed(e)),
    }
}
