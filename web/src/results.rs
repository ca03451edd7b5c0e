//! The result list: one option per hit, query words marked in title and snippet.
//!
//! The empty listbox is made once ([`create`]); a search's outcome reaches the page as one
//! string of HTML ([`Rows::show`], [`searchbar_query::rows_html`], which escapes every piece of
//! document text) instead of a diff of ten highlighted rows or a DOM call per element and text
//! run (about 300 calls), both a large share of a keystroke, and sets the ARIA state that
//! follows from them, so new results need no redraw of the page. The row that
//! the keyboard or the mouse highlights changes three attributes ([`Rows::set_active`]).
//!
//! Links only keep http(s) URLs.

use std::cell::RefCell;
use std::collections::HashMap;

use crate::link::Callback;
pub use searchbar_query::option_id;
use searchbar_query::{rows_html, QueryHit, Terms};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::{Element, Event, MouseEvent};

/// DOM id of the listbox, referenced by the input's `aria-controls`.
pub const LIST_ID: &str = "results";

/// Makes the empty listbox: it stays in the DOM while empty, so its `data-query` always names
/// the latest completed search (not necessarily what the box holds now). `hidden` and
/// `data-query` are only its initial state: [`Rows::show`] owns them. One `mouseover` listener
/// serves all rows ([`hovered`] says which); it lives as long as the page.
pub fn create(document: &web_sys::Document, onmouseover: Callback<MouseEvent>) -> Option<Element> {
    let list = document.create_element("ul").ok()?;
    for (name, value) in [
        ("id", LIST_ID),
        ("role", "listbox"),
        ("aria-label", "Search results"),
        ("data-query", ""),
        ("hidden", ""),
    ] {
        let _ = list.set_attribute(name, value);
    }
    let listener = Closure::<dyn Fn(Event)>::new(move |e: Event| onmouseover(e.unchecked_into()));
    let _ = list.add_event_listener_with_callback("mouseover", listener.as_ref().unchecked_ref());
    listener.forget();
    Some(list)
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

/// `url` resolved as the page's links resolve (against its base URL, the release's directory),
/// if it is an http(s) link (no `javascript:` and the like).
pub fn safe_url(url: &str) -> Option<String> {
    let parsed = crate::loader::resolve(url).ok()?;
    matches!(parsed.protocol().as_str(), "http:" | "https:").then(|| parsed.href())
}
