//! The loading status line (with per-artifact progress) and the release footer.

use crate::loader::Download;
use searchbar_query::escape_into;
use searchbar_release::{Manifest, TARGET_ROOT};
use web_sys::Element;

/// Where loading stands; `#status[data-state]` is [`Phase::state`].
#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    /// Nothing requested yet: the page is usable, the model is not.
    Idle,
    /// Fetching the manifest (empty list) or the artifacts.
    Downloading(Vec<Download>),
    /// All bytes are here; tract is building the model.
    Model,
    Ready {
        documents: usize,
    },
    Error(String),
}

impl Phase {
    pub fn state(&self) -> &'static str {
        match self {
            Phase::Idle => "idle",
            Phase::Downloading(_) | Phase::Model => "loading",
            Phase::Ready { .. } => "ready",
            Phase::Error(_) => "error",
        }
    }
}

/// What the status line shows: `(state, role, inner HTML)`. A failed query (`query_error`)
/// shows as an error without unloading. `words`: the documents already searchable by words
/// while the encoder loads (state `words`).
pub fn view(phase: &Phase, words: Option<usize>, query_error: Option<&str>) -> Status {
    let searchable = matches!(phase, Phase::Ready { .. }) || words.is_some();
    let loading = match phase {
        Phase::Downloading(list) if !list.is_empty() => progress(list),
        _ => text("Loading model…"),
    };
    let body = match (phase, query_error) {
        (_, Some(message)) if searchable => text(message),
        (Phase::Error(message), _) => text(message),
        (Phase::Downloading(_) | Phase::Model, _) if words.is_some() => {
            let ready = format!(
                "Keyword search ready · {} documents · semantic model: ",
                words.unwrap_or_default()
            );
            format!("<span>{}</span>{loading}", text(&ready))
        }
        (Phase::Idle, _) => text("Semantic search — the model loads on first use."),
        (Phase::Downloading(list), _) if list.is_empty() => text("Loading release…"),
        (Phase::Downloading(list), _) => progress(list),
        (Phase::Model, _) => text("Loading model…"),
        (Phase::Ready { documents }, _) => text(&format!("Ready · {documents} documents")),
    };
    let state = match (query_error, words) {
        (Some(_), _) if searchable => "error",
        (_, Some(_)) if phase.state() == "loading" => "words",
        _ => phase.state(),
    };
    let role = if state == "error" { "alert" } else { "status" };
    Status { state, role, body }
}

/// The status line's state (`data-state`, also a class), ARIA role and content.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    pub state: &'static str,
    pub role: &'static str,
    pub body: String,
}

impl Status {
    /// Sets `#status` (`element`) to show this, touching only what differs from `before`.
    pub fn draw(&self, element: &Element, before: Option<&Status>) {
        if before.map(|b| b.state) != Some(self.state) {
            let _ = element.set_attribute("class", &format!("status {}", self.state));
            let _ = element.set_attribute("data-state", self.state);
        }
        if before.map(|b| b.role) != Some(self.role) {
            let _ = element.set_attribute("role", self.role);
        }
        if before.map(|b| b.body.as_str()) != Some(self.body.as_str()) {
            element.set_inner_html(&self.body);
        }
    }
}

/// `t` as HTML text.
fn text(t: &str) -> String {
    let mut out = String::with_capacity(t.len());
    escape_into(&mut out, t);
    out
}

fn progress(list: &[Download]) -> String {
    let loaded: u64 = list.iter().map(|d| d.loaded).sum();
    let total: u64 = list.iter().map(|d| d.total).sum::<u64>().max(1);
    let percent = (loaded.min(total) * 100 / total).min(100);
    let mut rows = String::new();
    for d in list {
        rows.push_str(&format!(
            "<li><span class=\"name\">{}</span><span class=\"bytes\">{} / {}</span></li>",
            text(&d.name),
            size(d.loaded),
            size(d.total)
        ));
    }
    format!(
        "<span>Downloading {} of {} ({percent} %)</span><progress max=\"{total}\" \
         value=\"{loaded}\"></progress><ul class=\"downloads\">{rows}</ul>",
        size(loaded),
        size(total)
    )
}

/// Human-readable byte count.
fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MB", b as f64 / (1 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.0} kB", b as f64 / (1 << 10) as f64),
        b => format!("{b} B"),
    }
}

/// The footer's content: release id and evaluation scores, plus a reload link once another
/// release is live.
pub fn footer(manifest: Option<&Manifest>, newer: Option<&str>) -> String {
    let mut out = String::new();
    if let Some(m) = manifest {
        let eval = &m.evaluation;
        let ndcg = eval
            .ndcg_at_10
            .map_or_else(|| "n/a".to_string(), |v| format!("{v:.3}"));
        out.push_str(&format!(
            "<span id=\"release\" data-release=\"{}\">{}</span>",
            text(&m.release),
            text(&format!(
                "Release {} · nDCG@10 {ndcg} · recall@10 {:.3}",
                m.release, eval.recall_at_10
            ))
        ));
    }
    if let Some(id) = newer {
        out.push_str(&format!(
            "<a id=\"newer\" href=\"{}\" data-release=\"{}\">A newer release is available — \
             reload</a>",
            text(TARGET_ROOT),
            text(id)
        ));
    }
    out
}
