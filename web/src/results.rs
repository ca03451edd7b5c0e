//! The result list: one option per hit, query words marked in title and snippet.
//!
//! Document text only ever becomes text nodes (never HTML), and links only keep http(s) URLs.

use std::cell::RefCell;
use std::collections::HashMap;

use searchbar_release::{highlight, QueryHit};
use yew::prelude::*;

/// DOM id of the listbox, referenced by the input's `aria-controls`.
pub const LIST_ID: &str = "results";

/// DOM id of result `i`, referenced by the input's `aria-activedescendant`.
pub fn option_id(i: usize) -> String {
    format!("result-{i}")
}

/// The listbox for `hits`, which answer `query` (not necessarily what the box holds now).
/// It stays in the DOM while empty so `data-query` always names the latest completed search.
pub fn view(
    hits: &[QueryHit],
    query: &str,
    active: Option<usize>,
    on_hover: &Callback<usize>,
    list_ref: &NodeRef,
) -> Html {
    let items = hits.iter().enumerate().map(|(i, hit)| {
        let selected = active == Some(i);
        let record = &hit.record;
        let body = html! {
            <>
                <span class="title">{marked(&record.title, query)}</span>
                <span class="snippet">{marked(&record.snippet, query)}</span>
            </>
        };
        // The whole row is the link, so a click anywhere on it opens the document.
        let body = match record.url.as_deref().and_then(link) {
            Some(href) => html! { <a class="hit" href={href} tabindex="-1">{body}</a> },
            None => html! { <div class="hit">{body}</div> },
        };
        html! {
            <li id={option_id(i)} role="option" aria-selected={selected.to_string()}
                class={classes!("result", selected.then_some("active"))}
                data-id={record.id.clone()} data-score={hit.score.to_string()}
                title={format!("score {:.4}", hit.score)}
                onmouseenter={on_hover.reform(move |_: MouseEvent| i)}>
                {body}
            </li>
        }
    });
    html! {
        <ul id={LIST_ID} role="listbox" aria-label="Search results" ref={list_ref.clone()}
            data-query={query.to_string()} hidden={hits.is_empty()}>
            {for items}
        </ul>
    }
}

/// `text` as text nodes, with the words that match `query` in `<mark>`.
fn marked(text: &str, query: &str) -> Html {
    highlight(text, query)
        .into_iter()
        .map(|s| {
            if s.hit {
                html! { <mark>{s.text}</mark> }
            } else {
                html! { {s.text} }
            }
        })
        .collect()
}

thread_local! {
    /// [`safe_url`] of each document link shown so far: each takes a few calls into the
    /// browser's URL parser, and the same documents come back keystroke after keystroke.
    static LINKS: RefCell<HashMap<String, Option<String>>> = RefCell::new(HashMap::new());
}

/// [`safe_url`], remembered per link (the page's own URL, its base, never changes).
fn link(url: &str) -> Option<String> {
    if let Some(known) = LINKS.with_borrow(|links| links.get(url).cloned()) {
        return known;
    }
    let safe = safe_url(url);
    LINKS.with_borrow_mut(|links| links.insert(url.to_string(), safe.clone()));
    safe
}

/// `url` resolved against the page, if it is an http(s) link (no `javascript:` and the like).
pub fn safe_url(url: &str) -> Option<String> {
    let base = web_sys::window()?.location().href().ok()?;
    let parsed = web_sys::Url::new_with_base(url, &base).ok()?;
    matches!(parsed.protocol().as_str(), "http:" | "https:").then(|| parsed.href())
}
