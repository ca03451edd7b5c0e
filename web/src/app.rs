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

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use gloo_timers::callback::{Interval, Timeout};
use js_sys::{Function, Object, Reflect};
use searchbar_query::fetch::Fetched;
use searchbar_query::searchbar_lexical::{Matches, Outcome};
use searchbar_query::{
    Dense, Hit, QueryError, QueryHit, RowRequest, Searcher, Stage, Terms, TokenRequest,
};
use searchbar_release::{Manifest, Want};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::spawn_local;
use web_sys::{Element, Event, KeyboardEvent, MouseEvent};
use web_sys::{HtmlInputElement, ScrollIntoViewOptions, ScrollLogicalPosition};

use crate::cache;
use crate::encoder::{self, EmbedTask, Encoder};
use crate::keyboard::{self, Key};
use crate::link::Link;
use crate::loader::{self, Download};
use crate::results::{self, option_id, Rows};
use crate::status::{self, Phase};
use crate::timing;

/// How long a hybrid page waits for its first words-only results before it starts
/// downloading the encoder anyway.
const DENSE_FALLBACK_MS: u32 = 1_500;

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
    embed: EmbedTask,
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
    /// The manifest, and its bytes as served (the encoder's module reads them too).
    Manifest(Rc<Manifest>, Rc<Vec<u8>>),
    Progress(usize, u64),
    BuildingModel,
    /// The records and the lexical index: words can be searched.
    Records(Box<Searcher>),
    /// Ask for the root of the document shards' part table, where they are paged: once the
    /// records are in, after the first query's files where one is waiting (over HTTP/1.1 it
    /// would hold one of the six connections they need; results are ranked before it is).
    FetchShardTable,
    /// That root, come.
    ShardTable(Result<Vec<u8>, String>),
    /// Start downloading the dense half (idempotent): once the first words-only results are
    /// shown, so the encoder's megabytes never share the link with them.
    StartDense,
    /// The dense half (the vector index here, the encoder in its own module), to attach.
    Dense(Box<(Dense, Encoder)>),
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
    /// The inverted lists fetched for search number `seq`: kept, then its search begins again.
    Lists {
        seq: u64,
        text: String,
        start: f64,
        vector: Vec<f32>,
        url: String,
        lists: Result<Vec<(u32, Vec<u8>)>, String>,
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
        fetched: Result<Vec<(Want, Vec<u8>)>, String>,
    },
    /// The document shards of search number `seq`'s results (`ranked` for `text`), fetched
    /// after `spent` milliseconds of searching.
    Shards {
        seq: u64,
        text: String,
        spent: f64,
        ranked: Vec<(u32, f32)>,
        fetched: Result<Vec<(Want, Vec<u8>)>, String>,
    },
    Key(Key),
    Hover(usize),
    CheckLive,
    Live(Option<String>),
}

/// Search number `seq`'s ranking of `text`, after `spent` milliseconds of searching.
#[derive(Debug)]
struct Ranked {
    seq: u64,
    text: String,
    spent: f64,
    ranked: Vec<(u32, f32)>,
}

#[derive(Debug)]
pub struct App {
    phase: Phase,
    manifest: Option<Rc<Manifest>>,
    manifest_bytes: Rc<Vec<u8>>,
    searcher: Option<Searcher>,
    /// Whether the dense half is being downloaded (or needs none). `current.json` is first
    /// asked for when it turns true, after the first results (or the encoder's download), so
    /// that over HTTP/1.1 it holds none of the six connections their files need.
    dense_started: bool,
    /// Whether results (words-only ones, on a hybrid page) have been shown for a text.
    shown_any: bool,
    /// Starts it if the first results are slow to show (a query that fails, a slow shard).
    dense_fallback: Option<Timeout>,
    /// The query encoder, once the dense half is attached.
    encoder: Option<Encoder>,
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
    /// A search ranked before the shards' table root came, finished when it comes
    /// ([`Msg::ShardTable`]).
    awaiting_table: Option<Ranked>,
    /// Why the shards' table root could not be had, once it could not: every search says it.
    table_failed: Option<String>,
    poll: Option<Interval>,
    newer: Option<String>,
    /// The status line, what it and the footer last showed, the listbox and the footer.
    status: Element,
    drawn: RefCell<(Option<status::Status>, String)>,
    list: Element,
    footer: Element,
    /// The page's search box, taken over from the static shell (index.html), and the
    /// listeners on it.
    input: Option<HtmlInputElement>,
    _listeners: Vec<Listener>,
    /// The listbox's rows, set by [`App::show`] without a re-render.
    rows: Rows,
}

impl App {
    /// The app in `root` (the shell's `#app`, emptied): its status line, listbox and footer,
    /// and the shell's search box taken over.
    pub fn create(link: &Link, root: Element) -> Self {
        timing::publish(false, None, None);
        let key_wait = Rc::<Cell<f64>>::default();
        let (input, listeners) = take_over_box(link, &key_wait).unzip();
        let document = root.owner_document().expect("an element has a document");
        let on_hover = link.batch_callback(|e: MouseEvent| results::hovered(&e).map(Msg::Hover));
        // The box is the page's own (`take_over_box`); `aria-expanded` and
        // `aria-activedescendant` follow the results: `Rows` sets them.
        let status = document.create_element("div").expect("a div");
        let _ = status.set_attribute("id", "status");
        let _ = status.set_attribute("aria-live", "polite");
        let list = results::create(&document, on_hover).expect("a list");
        let footer = document.create_element("footer").expect("a footer");
        root.set_inner_html("");
        for part in [&status, &list, &footer] {
            let _ = root.append_child(part);
        }
        Self {
            phase: Phase::Idle,
            manifest: None,
            manifest_bytes: Rc::default(),
            searcher: None,
            dense_started: false,
            shown_any: false,
            dense_fallback: None,
            encoder: None,
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
            awaiting_table: None,
            table_failed: None,
            poll: None,
            newer: None,
            status,
            drawn: RefCell::new((None, String::new())),
            list,
            footer,
            input,
            _listeners: listeners.unwrap_or_default(),
            rows: Rows::default(),
        }
    }

    /// Starts loading at once: the box is the static HTML's, painted and usable before this
    /// module came, so waiting for a paint here would only hold the first query back (by a
    /// frame, 3-12 ms on a first visit).
    pub fn mounted(&self, link: &Link) {
        link.send_message(Msg::Start);
    }

    /// Handles `msg`; whether the status line or footer may have changed ([`App::render`]).
    pub fn update(&mut self, link: &Link, msg: Msg) -> bool {
        let changed = self.handle(link, msg);
        if self.shown_any && !self.dense_started && self.searcher.is_some() {
            link.send_message(Msg::StartDense);
        }
        changed
    }

    /// Draws the status line and the footer, where they changed.
    pub fn render(&self) {
        let status = status::view(&self.phase, self.words_ready(), self.query_error.as_deref());
        let footer = status::footer(self.manifest.as_deref(), self.newer.as_deref());
        let mut drawn = self.drawn.borrow_mut();
        if drawn.0.as_ref() != Some(&status) {
            status.draw(&self.status, drawn.0.as_ref());
            drawn.0 = Some(status);
        }
        if drawn.1 != footer {
            self.footer.set_inner_html(&footer);
            drawn.1 = footer;
        }
    }
}

impl App {
    /// [`App::update`]'s work: what `msg` changes; whether the status line or footer may have
    /// changed.
    fn handle(&mut self, link: &Link, msg: Msg) -> bool {
        match msg {
            Msg::Start => {
                if self.phase != Phase::Idle {
                    return false;
                }
                self.phase = Phase::Downloading(Vec::new());
                spawn_local(load(link.clone()));
            }
            Msg::Manifest(manifest, bytes) => {
                self.phase = Phase::Downloading(Download::list(&manifest));
                self.manifest_bytes = bytes;
                // A release ranked by its encoder alone downloads it with the records.
                self.dense_started = !manifest.search.mode.uses_lexical();
                self.manifest = Some(manifest);
                let poller = link.clone();
                self.poll = Some(Interval::new(POLL_MS, move || {
                    poller.send_message(Msg::CheckLive)
                }));
                if self.dense_started {
                    link.send_message(Msg::CheckLive);
                }
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
                // encoder is still on its way); the encoder follows once it is shown.
                if self.query.trim().is_empty() {
                    link.send_message(Msg::FetchShardTable);
                    link.send_message(Msg::StartDense);
                } else {
                    link.send_message(Msg::Search);
                    link.send_message(Msg::FetchShardTable);
                    let link = link.clone();
                    self.dense_fallback = Some(Timeout::new(DENSE_FALLBACK_MS, move || {
                        link.send_message(Msg::StartDense)
                    }));
                }
            }
            Msg::FetchShardTable => {
                let root = self.manifest.as_ref().and_then(|m| m.shard_table_root());
                if let Some(root) = root.cloned() {
                    let link = link.clone();
                    spawn_local(async move {
                        link.send_message(Msg::ShardTable(loader::fetch_root(&root).await));
                    });
                }
                return false;
            }
            Msg::ShardTable(root) => {
                let Some(searcher) = &mut self.searcher else {
                    return false;
                };
                // As any file the records need: without it no result can be shown.
                let inserted =
                    root.and_then(|r| searcher.insert_docs_table(&r).map_err(|e| e.to_string()));
                if let Err(e) = inserted {
                    self.awaiting_table = None;
                    self.query_error = Some(format!("Search failed: {e}"));
                    self.table_failed = Some(e);
                    return true;
                }
                return match self.awaiting_table.take() {
                    Some(r) if r.seq == self.search_seq => {
                        self.finish(link, &r.text, timing::now() - r.spent, Ok(r.ranked))
                    }
                    _ => false,
                };
            }
            Msg::StartDense => {
                self.dense_fallback = None;
                if self.dense_started {
                    return false;
                }
                self.dense_started = true;
                link.send_message(Msg::CheckLive);
                let (Some(manifest), Some(searcher)) = (&self.manifest, &self.searcher) else {
                    return false;
                };
                if searcher.complete_ranking() {
                    return false;
                }
                spawn_local(load_dense(
                    link.clone(),
                    manifest.clone(),
                    self.manifest_bytes.clone(),
                ));
                return false;
            }
            Msg::Dense(parts) => {
                let Some(searcher) = &mut self.searcher else {
                    return false;
                };
                let (dense, encoder) = *parts;
                if let Err(e) = searcher.attach(dense) {
                    self.phase = Phase::Error(e.to_string());
                    return true;
                }
                self.phase = Phase::Ready {
                    documents: searcher.len(),
                };
                encoder::set_current(&encoder);
                let (to_app, helper) = (link.clone(), encoder.clone());
                spawn_local(async move {
                    to_app.send_message(Msg::Helper(helper.start_helper().await));
                });
                self.encoder = Some(encoder);
                timing::publish(true, None, None);
                // Results shown by words are ranked again with the dense list, in place.
                if !self.query.is_empty() {
                    link.send_message(Msg::Search);
                }
            }
            Msg::Helper(outcome) => {
                if let (Ok(()), Some(encoder)) = (outcome, &self.encoder) {
                    encoder.install_helper();
                }
                timing::publish(self.ready(), None, None);
                return false;
            }
            Msg::Failed(message) => self.phase = Phase::Error(message),
            // A `change` after the `input` that already carried this text.
            Msg::Input(text, _) if text == self.query => return false,
            Msg::Input(text, at) => {
                link.send_message(Msg::Start);
                self.query = text;
                self.input_at = at;
                // The box already shows the new text: nothing else is drawn for it.
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
                        return self.search(link, "input");
                    }
                    if self.search_posted {
                        return false;
                    }
                    let link = link.clone();
                    self.search_posted = post_task(move || link.send_message(Msg::PostedSearch));
                    if self.search_posted {
                        return false;
                    }
                }
                let link = link.clone();
                self.debounce = Some(Timeout::new(wait.ceil() as u32, move || {
                    link.send_message(Msg::Search)
                }));
                return false;
            }
            Msg::Search => return self.search(link, "timer"),
            Msg::PostedSearch => {
                self.search_posted = false;
                // The box's text may have been searched at once since this was posted.
                if self.hits_query == self.query {
                    return false;
                }
                return self.search(link, "task");
            }
            Msg::Step => return self.step(link),
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
                return self.finish(link, &text, start, result);
            }
            Msg::Lists {
                seq,
                text,
                start,
                vector,
                url,
                lists,
            } => {
                let Some(searcher) = self.searcher.as_mut() else {
                    return false;
                };
                // Kept even for an older search: verified lists serve the next ones too.
                let kept = lists
                    .map_err(|e| QueryError::Invalid {
                        file: url,
                        message: e,
                    })
                    .and_then(|lists| searcher.insert_lists(&lists));
                if seq != self.search_seq {
                    return false;
                }
                return match kept {
                    Ok(()) => self.begin_dense(link, text, start, vector),
                    Err(e) => self.finish(link, &text, start, Err(e)),
                };
            }
            Msg::Tokens {
                seq,
                request,
                fetched,
            } => {
                let Some(encoder) = &self.encoder else {
                    return false;
                };
                let kept = fetched.and_then(|fetched| match fetched {
                    Fetched::Ranges(rows) => encoder.insert_token_rows(&request, &rows),
                    Fetched::Whole(file) => encoder.insert_token_file(&file),
                });
                if let Err(e) = kept {
                    self.query_error = Some(format!("Search failed: {e}"));
                    return true;
                }
                if let Some(manifest) = &self.manifest {
                    loader::save_tokens(manifest, encoder);
                }
                // Kept for later queries either way; searched again if still the newest.
                if seq == self.search_seq {
                    return self.search(link, self.started_by);
                }
                return false;
            }
            Msg::Fragments { seq, fetched } => {
                if let Some(changed) = self.keep(fetched, Searcher::insert_fragment) {
                    return changed;
                }
                // Kept for later queries either way; searched again if still the newest.
                if seq == self.search_seq {
                    return self.search(link, self.started_by);
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
                    return self.finish(link, &text, timing::now() - spent, Ok(ranked));
                }
                return false;
            }
            Msg::Key(key) => return self.key(key),
            Msg::Hover(i) => {
                self.rows.set_active(Some(i));
                return false;
            }
            Msg::CheckLive => {
                let link = link.clone();
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

    /// Searches the box's text now (the throttle decided when). A short text is embedded in
    /// one call; a longer one starts a job that runs a slice per task.
    fn search(&mut self, link: &Link, started_by: &'static str) -> bool {
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
                    // The fragments (and the pages that name them, in an older table).
                    let files = lexical.wanted(numbers);
                    let (link, seq) = (link.clone(), self.search_seq);
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
        let Some(encoder) = self
            .encoder
            .clone()
            .filter(|_| searcher.ranking().mode.uses_dense())
        else {
            // A lexical release, or a hybrid one whose encoder is still loading (ranked again
            // when it arrives) or failed.
            let partial = searcher.ranking().mode.uses_dense();
            let query = self.query.clone();
            let ranked = self.rank(&query, None);
            self.hits_partial = partial;
            return self.finish(link, &query, start, Ok(ranked));
        };
        // The rows of the query's tokens not yet at hand come first (then this search runs
        // again when they arrive).
        let tokens = self
            .manifest
            .as_ref()
            .and_then(|m| m.files.tokens.as_ref())
            .map_or("", |t| t.rows.path.as_str());
        match encoder.token_request(&self.query, tokens) {
            Ok(None) => {}
            Ok(Some(request)) => {
                let (link, seq) = (link.clone(), self.search_seq);
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
                Ok(vector) => self.search_vector(link, query, start, vector),
                Err(e) => self.encoder_failed(link, e),
            };
        }
        match encoder.start(&self.query) {
            Ok(embed) => {
                self.job = Some(Job {
                    embed,
                    text: self.query.clone(),
                    start: timing::now(),
                });
                self.step(link)
            }
            Err(e) => self.encoder_failed(link, e),
        }
    }

    /// The encoder's module failed to embed a text (it trapped, or refused it): it is not asked
    /// again. A release that reads words goes on ranking by them, the status line saying why;
    /// one ranked by its encoder alone shows the error.
    fn encoder_failed(&mut self, link: &Link, e: String) -> bool {
        self.job = None;
        let uses_lexical = self
            .searcher
            .as_ref()
            .is_some_and(|s| s.ranking().mode.uses_lexical());
        if !uses_lexical {
            self.query_error = Some(format!("Search failed: {e}"));
            return true;
        }
        self.encoder = None;
        self.phase = Phase::Error(format!(
            "The semantic model failed ({e}): searching by words only"
        ));
        link.send_message(Msg::Search);
        true
    }

    /// Runs one slice of the query being embedded; when the vector is ready, searches and
    /// shows the results, else schedules the next slice as a new task.
    fn step(&mut self, link: &Link) -> bool {
        self.next_slice = None;
        let Some(job) = &mut self.job else {
            return false;
        };
        let vector = match job.embed.step(SLICE_MS) {
            Ok(Some(vector)) => vector,
            Ok(None) => {
                let link = link.clone();
                self.next_slice = Some(Timeout::new(0, move || link.send_message(Msg::Step)));
                return false;
            }
            Err(e) => return self.encoder_failed(link, e),
        };
        let job = self.job.take().expect("a job was running");
        self.search_vector(link, job.text, job.start, vector)
    }

    /// Searches the index with an embedded query. An index that keeps its inverted lists or its
    /// re-ranking rows on the server first fetches the lists the query probes, then its
    /// candidates' records (range requests), without blocking.
    fn search_vector(&mut self, link: &Link, text: String, start: f64, vector: Vec<f32>) -> bool {
        self.last_embed_ms = timing::now() - start;
        // The helper worker's part is over: its core is the browser's again.
        encoder::rest();
        self.begin_dense(link, text, start, vector)
    }

    /// The dense search of an embedded query, from its start or again once its lists are in.
    fn begin_dense(&mut self, link: &Link, text: String, start: f64, vector: Vec<f32>) -> bool {
        let Some(searcher) = &self.searcher else {
            return false;
        };
        match searcher.begin(&vector, None) {
            Ok(Stage::Done(dense)) => {
                let ranked = self.rank(&text, Some(&dense));
                self.hits_partial = false;
                self.finish(link, &text, start, Ok(ranked))
            }
            Ok(Stage::NeedLists(request)) => {
                let (link, seq) = (link.clone(), self.search_seq);
                spawn_local(async move {
                    let lists = loader::fetch_numbered(&request.url, &request.ranges).await;
                    link.send_message(Msg::Lists {
                        seq,
                        text,
                        start,
                        vector,
                        url: request.url,
                        lists,
                    });
                });
                false
            }
            Ok(Stage::NeedRows(request)) => {
                let (link, seq) = (link.clone(), self.search_seq);
                spawn_local(async move {
                    let records = loader::fetch_numbered(&request.url, &request.ranges).await;
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
            Err(e) => self.finish(link, &text, start, Err(e)),
        }
    }

    /// Keeps fetched lexical fragments or document shards, each verified by `insert`. `None`
    /// when all were kept; else what `update` returns: `true` with the error on the status
    /// line, `false` where there is no searcher to keep them in.
    fn keep(
        &mut self,
        fetched: Result<Vec<(Want, Vec<u8>)>, String>,
        insert: fn(&mut Searcher, Want, &[u8]) -> Result<(), QueryError>,
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
    /// the status line changed (it shows or clears an error).
    fn finish(
        &mut self,
        link: &Link,
        query: &str,
        start: f64,
        result: Result<Vec<(u32, f32)>, QueryError>,
    ) -> bool {
        let now = timing::now();
        let result = match (result, &self.searcher) {
            (Ok(ranked), Some(searcher)) if searcher.awaits_docs_table() => {
                if let Some(e) = &self.table_failed {
                    self.query_error = Some(format!("Search failed: {e}"));
                    return true;
                }
                // Its shards are named by the table root asked for as the page started.
                self.awaiting_table = Some(Ranked {
                    seq: self.search_seq,
                    text: query.to_string(),
                    spent: now - start,
                    ranked,
                });
                return false;
            }
            (Ok(ranked), Some(searcher)) => {
                let missing = match searcher.missing_shards(&ranked) {
                    Ok(missing) => missing,
                    Err(e) => return self.finish(link, query, start, Err(e)),
                };
                if !missing.is_empty() {
                    let (link, seq) = (link.clone(), self.search_seq);
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
    /// are set here, without redrawing the status line (`Rows::show`).
    fn show(&mut self, query: &str, hits: Vec<QueryHit>, search_ms: f64) {
        self.shown_any = true;
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
            Some(self.list.clone()),
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
    link: &Link,
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
    let on_text = link.batch_callback(|e: Event| {
        let input: HtmlInputElement = e.target()?.dyn_into().ok()?;
        Some(Msg::Input(input.value(), e.time_stamp()))
    });
    let key_wait = key_wait.clone();
    let on_key = link.batch_callback(move |e: KeyboardEvent| {
        key_wait.set(timing::now() - e.time_stamp());
        encoder::wake();
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
                move |e| on_text(e)
            }),
        ),
        listen("change", Box::new(move |e| on_text(e))),
        listen("keydown", Box::new(move |e| on_key(e.unchecked_into()))),
        listen("focus", Box::new(move |e| on_focus(e))),
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

/// Loads the page's release, reporting each step to the app: the manifest, then the
/// records stage. A release ranked by its encoder alone downloads the dense half next; a
/// hybrid one leaves it to [`Msg::StartDense`].
async fn load(link: Link) {
    let (manifest, manifest_bytes) = match loader::fetch_manifest().await {
        Ok((m, bytes)) => (Rc::new(m), Rc::new(bytes)),
        Err(e) => return link.send_message(Msg::Failed(e)),
    };
    link.send_message(Msg::Manifest(manifest.clone(), manifest_bytes.clone()));
    // A dense release's records stage holds no file: it is at hand at once.
    let searcher = match loader::fetch_records(&manifest, progress(&link)).await {
        Ok(records) => loader::open_records(&manifest, records).await,
        Err(e) => Err(e),
    };
    match searcher {
        Ok(s) => link.send_message(Msg::Records(Box::new(s))),
        Err(e) => return link.send_message(Msg::Failed(e)),
    }
    if !manifest.search.mode.uses_lexical() {
        load_dense(link.clone(), manifest.clone(), manifest_bytes).await;
    }
    // Files kept for releases this page does not read go, once this one is known to load.
    if let Some(cache) = cache::open().await {
        cache::prune(&cache, &manifest).await;
    }
}

/// Downloads the dense half (the index, the encoder's module and files) and opens it.
async fn load_dense(link: Link, manifest: Rc<Manifest>, manifest_bytes: Rc<Vec<u8>>) {
    let parts = match loader::fetch_dense(&manifest, progress(&link)).await {
        Ok(parts) => parts,
        Err(e) => return link.send_message(Msg::Failed(e)),
    };
    link.send_message(Msg::BuildingModel);
    // Let "Loading model…" paint before tract holds the main thread.
    loader::next_paint().await;
    match loader::open_dense(&manifest, &manifest_bytes, parts) {
        Ok(dense) => link.send_message(Msg::Dense(Box::new(dense))),
        Err(e) => link.send_message(Msg::Failed(e)),
    }
}

/// Reports a download's bytes so far to the app: `(index in Download::list, bytes)`.
fn progress(link: &Link) -> impl Fn(usize, u64) + Clone + 'static {
    let progress = link.callback(|(i, loaded)| Msg::Progress(i, loaded));
    move |i, n| progress((i, n))
}
