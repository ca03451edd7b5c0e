//! The result list: one option per hit, query words marked in title and snippet.
//!
//! Yew creates the empty listbox once; a search's outcome reaches the page without Yew:
//! [`Rows::show`] sets the rows as one string of HTML ([`searchbar_query::rows_html`], which
//! escapes every piece of document text) instead of Yew's diff of ten highlighted rows or a DOM
//! call per element and text run (about 300 calls), both a large share of a keystroke, and sets the
//! ARIA state that follows from them, so new results need no re-render of the page. The row that
//! the keyboard or the mouse highlights changes three attributes ([`Rows::set_active`]).
//!
//! Links only keep http(s) URLs.

use std::cell::RefCell;
use std::collections::HashMap;

pub use searchbar_query::option_id;
use searchbar_query::{rows_html, QueryHit, Terms};
use wasm_bindgen::JsCast;
use web_sys::Element;
use yew::prelude::*;

/// DOM id of the listbox, referenced by the input's `aria-controls`.
pub const LIST_ID: &str = "results";

/// The empty listbox: it stays in the DOM while empty, so its `data-query` always names the
/// latest completed search (not necessarily what the box holds now). `hidden` and `data-query`
/// are only its initial state: [`Rows::show`] owns them (Yew writes an attribute only when its
/// own value for it changes, and these never do). `onmouseover` is the one listener for all
/// rows ([`hovered`] says which).
pub fn view(onmouseover: Callback<MouseEvent>, list_ref: &NodeRef) -> Html {
    html! {
        <ul id={LIST_ID} role="listbox" aria-label="Search results" ref={list_ref.clone()}
            data-query="" hidden=true {onmouseover}>
        </ul>
    }
}

/// The index of the row a `mouseover` in the listbox is over.
pub fn hovered(e: &MouseEvent) -> Option<usize> {
    let target = e.target()?.dyn_into::<Element>().ok()?;
    let row = target.closest("li.result").ok()??;
    row.get_attribute("data-index")?.parse().ok()
}

/// The rows in the listbox, which one is active, and the combobox (the search box) whose
/// ARIA attributes follow them.
#[derive(Debug, Default)]
pub struct Rows {
    rows: Vec<Element>,
    active: Option<usize>,
    combobox: Option<Element>,
    expanded: bool,
}

impl Rows {
    /// Replaces `list`'s rows with `hits` for `query`, none active, and sets the listbox's
    /// `hidden` and `data-query` and the combobox's `aria-expanded` and
    /// `aria-activedescendant` to match.
    pub fn show(
        &mut self,
        list: &Element,
        combobox: &Element,
        hits: &[QueryHit],
        query: &str,
        terms: &Terms,
    ) {
        if self.active.take().is_some() {
            let _ = combobox.remove_attribute("aria-activedescendant");
        }
        list.set_inner_html(&rows_html(hits, terms, link));
        let _ = list.set_attribute("data-query", query);
        let expanded = !hits.is_empty();
        if expanded != self.expanded || self.combobox.is_none() {
            let _ = list.toggle_attribute_with_force("hidden", !expanded);
            let _ =
                combobox.set_attribute("aria-expanded", if expanded { "true" } else { "false" });
            self.expanded = expanded;
        }
        self.combobox = Some(combobox.clone());
        let rows = list.children();
        self.rows = (0..rows.length()).filter_map(|i| rows.item(i)).collect();
    }

    /// The highlighted row, if any.
    pub fn active(&self) -> Option<usize> {
        self.active
    }

    /// Marks row `active` (and unmarks the previous one); the combobox names it.
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
        if let Some(combobox) = &self.combobox {
            let _ = match active {
                Some(i) => combobox.set_attribute("aria-activedescendant", &option_id(i)),
                None => combobox.remove_attribute("aria-activedescendant"),
            };
        }
        self.active = active;
    }
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
