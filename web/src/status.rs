//! The loading status line (with per-artifact progress) and the release footer.

use crate::loader::Download;
use searchbar_release::{Manifest, TARGET_ROOT};
use yew::prelude::*;

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

/// The status line. A failed query (`query_error`) shows as an error without unloading.
/// `words`: the documents already searchable by words while the encoder loads (state
/// `words`).
pub fn view(phase: &Phase, words: Option<usize>, query_error: Option<&str>) -> Html {
    let searchable = matches!(phase, Phase::Ready { .. }) || words.is_some();
    let loading = match phase {
        Phase::Downloading(list) if !list.is_empty() => progress(list),
        _ => html! { "Loading model…" },
    };
    let body = match (phase, query_error) {
        (_, Some(message)) if searchable => html! { {message.to_string()} },
        (Phase::Error(message), _) => html! { {message.clone()} },
        (Phase::Downloading(_) | Phase::Model, _) if words.is_some() => html! {
            <>
                <span>{format!(
                    "Keyword search ready · {} documents · semantic model: ",
                    words.unwrap_or_default()
                )}</span>
                {loading}
            </>
        },
        (Phase::Idle, _) => html! { "Semantic search — the model loads on first use." },
        (Phase::Downloading(list), _) if list.is_empty() => html! { "Loading release…" },
        (Phase::Downloading(list), _) => progress(list),
        (Phase::Model, _) => html! { "Loading model…" },
        (Phase::Ready { documents }, _) => html! { format!("Ready · {documents} documents") },
    };
    let state = match (query_error, words) {
        (Some(_), _) if searchable => "error",
        (_, Some(_)) if phase.state() == "loading" => "words",
        _ => phase.state(),
    };
    let role = if state == "error" { "alert" } else { "status" };
    html! {
        <div id="status" class={classes!("status", state)} data-state={state} role={role}
             aria-live="polite">
            {body}
        </div>
    }
}

fn progress(list: &[Download]) -> Html {
    let loaded: u64 = list.iter().map(|d| d.loaded).sum();
    let total: u64 = list.iter().map(|d| d.total).sum::<u64>().max(1);
    let rows = list.iter().map(|d| {
        html! {
            <li>
                <span class="name">{d.name.clone()}</span>
                <span class="bytes">{format!("{} / {}", size(d.loaded), size(d.total))}</span>
            </li>
        }
    });
    html! {
        <>
            <span>{format!("Downloading {} of {}", size(loaded), size(total))}</span>
            <progress max={total.to_string()} value={loaded.to_string()}></progress>
            <ul class="downloads">{for rows}</ul>
        </>
    }
}

/// Human-readable byte count.
fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MB", b as f64 / (1 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.0} kB", b as f64 / (1 << 10) as f64),
        b => format!("{b} B"),
    }
}

/// Release id and evaluation scores, plus a reload link once another release is live.
pub fn footer(manifest: Option<&Manifest>, newer: Option<&str>) -> Html {
    let about = manifest.map(|m| {
        let eval = &m.evaluation;
        let ndcg = eval
            .ndcg_at_10
            .map_or_else(|| "n/a".to_string(), |v| format!("{v:.3}"));
        html! {
            <span id="release" data-release={m.release.clone()}>
                {format!(
                    "Release {} · nDCG@10 {ndcg} · recall@10 {:.3}",
                    m.release, eval.recall_at_10
                )}
            </span>
        }
    });
    let reload = newer.map(|id| {
        html! {
            <a id="newer" href={TARGET_ROOT} data-release={id.to_string()}>
                {"A newer release is available — reload"}
            </a>
        }
    });
    html! { <footer>{for about}{for reload}</footer> }
}
