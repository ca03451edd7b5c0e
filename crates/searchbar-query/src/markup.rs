//! The result rows as HTML, built as one string so the page sets them with one call instead
//! of a DOM call per element and text run (about 300 for ten rows through wasm-bindgen).
//! Every piece of document text is escaped ([`escape_into`]), so a title or snippet can only
//! ever be text, and an id or link only an attribute value.

use crate::highlight::Terms;
use crate::QueryHit;
use std::fmt::Write;

/// DOM id of result `i`, which the search box's `aria-activedescendant` names.
pub fn option_id(i: usize) -> String {
    format!("result-{i}")
}

/// Appends `text` with the five characters that HTML gives meaning to, in text or in a
/// quoted attribute, escaped.
pub fn escape_into(out: &mut String, text: &str) {
    let mut last = 0;
    for (i, c) in text.char_indices() {
        let entity = match c {
            '&' => "&amp;",
            '<' => "&lt;",
            '>' => "&gt;",
            '"' => "&quot;",
            '\'' => "&#39;",
            _ => continue,
        };
        out.push_str(&text[last..i]);
        out.push_str(entity);
        last = i + 1;
    }
    out.push_str(&text[last..]);
}

/// One `<li role="option">` per hit, the query's `terms` in `<mark>`: the whole row is the
/// link (`link` turns a document's URL into a safe href, or `None` for a row without one).
pub fn rows_html(
    hits: &[QueryHit],
    terms: &Terms,
    mut link: impl FnMut(&str) -> Option<String>,
) -> String {
    let mut out = String::with_capacity(hits.len() * 512);
    for (i, hit) in hits.iter().enumerate() {
        let record = &hit.record;
        let _ = write!(
            out,
            "<li id=\"{}\" class=\"result\" role=\"option\" aria-selected=\"false\" \
             data-index=\"{i}\" data-score=\"{}\" title=\"score {:.4}\" data-id=\"",
            option_id(i),
            hit.score,
            hit.score
        );
        escape_into(&mut out, &record.id);
        out.push_str("\">");
        let href = record.url.as_deref().and_then(&mut link);
        let tag = match &href {
            Some(href) => {
                out.push_str("<a class=\"hit\" tabindex=\"-1\" href=\"");
                escape_into(&mut out, href);
                out.push_str("\">");
                "a"
            }
            None => {
                out.push_str("<div class=\"hit\">");
                "div"
            }
        };
        for (class, text) in [("title", &record.title), ("snippet", &record.snippet)] {
            let _ = write!(out, "<span class=\"{class}\">");
            terms.runs(text, |run, hit| {
                if hit {
                    out.push_str("<mark>");
                }
                escape_into(&mut out, run);
                if hit {
                    out.push_str("</mark>");
                }
            });
            out.push_str("</span>");
        }
        let _ = write!(out, "</{tag}></li>");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use searchbar_release::DocRecord;

    fn hit(id: &str, title: &str, url: Option<&str>, snippet: &str) -> QueryHit {
        QueryHit {
            doc: 0,
            score: 0.5,
            record: DocRecord {
                id: id.into(),
                title: title.into(),
                url: url.map(Into::into),
                snippet: snippet.into(),
            },
        }
    }

    #[test]
    fn escapes_what_html_would_read() {
        let mut out = String::new();
        escape_into(&mut out, r#"<script>a & "b" 'c'</script> é"#);
        assert_eq!(
            out,
            "&lt;script&gt;a &amp; &quot;b&quot; &#39;c&#39;&lt;/script&gt; é"
        );
    }

    #[test]
    fn rows_mark_query_words_and_keep_document_text_as_text() {
        let hits = [
            hit(
                "x\"><img src=x onerror=alert(1)>",
                "Air <b>quality</b> & you",
                Some("https://example.org/?a=1&b=\"2\""),
                "Measure the air.",
            ),
            hit("p2", "No link", None, "plain"),
        ];
        let html = rows_html(&hits, &Terms::new("AIR quality"), |url| {
            Some(url.to_string())
        });
        assert_eq!(
            html,
            "<li id=\"result-0\" class=\"result\" role=\"option\" aria-selected=\"false\" \
             data-index=\"0\" data-score=\"0.5\" title=\"score 0.5000\" \
             data-id=\"x&quot;&gt;&lt;img src=x onerror=alert(1)&gt;\">\
             <a class=\"hit\" tabindex=\"-1\" href=\"https://example.org/?a=1&amp;b=&quot;2&quot;\">\
             <span class=\"title\"><mark>Air</mark> &lt;b&gt;<mark>quality</mark>&lt;/b&gt; &amp; you</span>\
             <span class=\"snippet\">Measure the <mark>air</mark>.</span></a></li>\
             <li id=\"result-1\" class=\"result\" role=\"option\" aria-selected=\"false\" \
             data-index=\"1\" data-score=\"0.5\" title=\"score 0.5000\" data-id=\"p2\">\
             <div class=\"hit\"><span class=\"title\">No link</span>\
             <span class=\"snippet\">plain</span></div></li>"
        );
    }

    #[test]
    fn a_rejected_link_leaves_a_row_without_one() {
        let hits = [hit("p1", "t", Some("javascript:alert(1)"), "s")];
        let html = rows_html(&hits, &Terms::new(""), |_| None);
        assert!(!html.contains("href") && html.contains("<div class=\"hit\">"));
    }
}
