//! The result list: one option per hit, query words marked in title and snippet.
//!
//! Yew renders the listbox itself; its rows are built here with DOM calls ([`Rows::show`]),
//! once per search, after Yew's update. Yew's diff of ten highlighted rows (a virtual node per
//! text run, listeners re-registered on every row) took about 0.7 ms of each keystroke in
//! the page; building them directly takes a fraction of that, and the row that the keyboard
//! or the mouse highlights changes two attributes ([`Rows::set_active`]).
//!
//! Document text only ever becomes text nodes (never HTML), and links only keep http(s) URLs.

use std::cell::RefCell;
use std::collections::HashMap;

use searchbar_release::{highlight, QueryHit};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{Document, Element};
use yew::prelude::*;

/// DOM id of the listbox, referenced by the input's `aria-controls`.
pub const LIST_ID: &str = "results";

/// DOM id of result `i`, referenced by the input's `aria-activedescendant`.
pub fn option_id(i: usize) -> String {
    format!("result-{i}")
}

/// The (empty) listbox for results that answer `query` (not necessarily what the box holds
/// now): it stays in the DOM while empty so `data-query` always names the latest completed
/// search. `onmouseover` is the one listener for all rows ([`hovered`] says which).
pub fn view(
    query: &str,
    empty: bool,
    onmouseover: Callback<MouseEvent>,
    list_ref: &NodeRef,
) -> Html {
    html! {
        <ul id={LIST_ID} role="listbox" aria-label="Search results" ref={list_ref.clone()}
            data-query={query.to_string()} hidden={empty} {onmouseover}>
        </ul>
    }
}

/// The index of the row a `mouseover` in the listbox is over.
pub fn hovered(e: &MouseEvent) -> Option<usize> {
    let target = e.target()?.dyn_into::<Element>().ok()?;
    let row = target.closest("li.result").ok()??;
    row.get_attribute("data-index")?.parse().ok()
}

/// The rows in the listbox and which one is active.
#[derive(Debug, Default)]
pub struct Rows {
    rows: Vec<Element>,
    active: Option<usize>,
}

impl Rows {
    /// Replaces the listbox's rows with `hits` for `query`, none active.
    pub fn show(&mut self, list: &Element, hits: &[QueryHit], query: &str) {
        self.active = None;
        let Some(doc) = web_sys::window().and_then(|w| w.document()) else {
            return;
        };
        self.rows = hits
            .iter()
            .enumerate()
            .filter_map(|(i, hit)| row(&doc, i, hit, query).ok())
            .collect();
        let rows: js_sys::Array = self.rows.iter().map(JsValue::from).collect();
        list.replace_children_with_node(&rows);
    }

    /// Marks row `active` (and unmarks the previous one).
    pub fn set_active(&mut self, active: Option<usize>) {
        if active == self.active {
            return;
        }
        for (i, on) in [(self.active, false), (active, true)] {
            if let Some(row) = i.and_then(|i| self.rows.get(i)) {
                let _ = row.set_attribute("aria-selected", if on { "true" } else { "false" });
                let _ = row.class_list().toggle_with_force("active", on);
            }
        }
        self.active = active;
    }
}

/// One option: the whole row is the link, so a click anywhere on it opens the document.
fn row(doc: &Document, i: usize, hit: &QueryHit, query: &str) -> Result<Element, JsValue> {
    let record = &hit.record;
    let li = doc.create_element("li")?;
    li.set_id(&option_id(i));
    li.set_class_name("result");
    for (name, value) in [
        ("role", "option"),
        ("aria-selected", "false"),
        ("data-index", &i.to_string()),
        ("data-id", &record.id),
        ("data-score", &hit.score.to_string()),
        ("title", &format!("score {:.4}", hit.score)),
    ] {
        li.set_attribute(name, value)?;
    }
    let body = match record.url.as_deref().and_then(link) {
        Some(href) => {
            let a = doc.create_element("a")?;
            a.set_attribute("href", &href)?;
            a.set_attribute("tabindex", "-1")?;
            a
        }
        None => doc.create_element("div")?,
    };
    body.set_class_name("hit");
    for (class, text) in [("title", &record.title), ("snippet", &record.snippet)] {
        let span = marked(doc, class, text, query)?;
        body.append_child(&span)?;
    }
    li.append_child(&body)?;
    Ok(li)
}

/// A span of class `class` holding `text` as text nodes, with the words that match `query`
/// in `<mark>`.
fn marked(doc: &Document, class: &str, text: &str, query: &str) -> Result<Element, JsValue> {
    let span = doc.create_element("span")?;
    span.set_class_name(class);
    for s in highlight(text, query) {
        if s.hit {
            let mark = doc.create_element("mark")?;
            mark.set_text_content(Some(&s.text));
            span.append_child(&mark)?;
        } else {
            span.append_with_str_1(&s.text)?;
        }
    }
    Ok(span)
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
