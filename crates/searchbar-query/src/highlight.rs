//! Query words marked in result text.

use searchbar_lexical::{Analysis, Analyzer};

/// A query's words of two or more letters (single letters are noise), lowercased once for all
/// the texts they mark. Whole words match, case-insensitively, in any script; with the
/// lexical index's matches, so does every word that analyses to a matched term (`quality`
/// and `qualities` for `qualiti`, `quadcopter` for the prefix `qua`).
#[derive(Debug, Default)]
pub struct Terms {
    words: Vec<String>,
    matched: Option<(Analyzer, Vec<String>)>,
}

impl Terms {
    pub fn new(query: &str) -> Self {
        let mut terms: Vec<String> = words(query)
            .filter(|(_, w)| w.chars().nth(1).is_some())
            .map(|(_, w)| w.to_lowercase())
            .collect();
        terms.sort_unstable();
        terms.dedup();
        Self {
            words: terms,
            matched: None,
        }
    }

    /// The query's words plus the index terms its lexical search matched, analysed as the
    /// index was ([`Analysis`] from its root).
    pub fn with_matches(query: &str, analysis: &Analysis, matched: &[String]) -> Self {
        let mut terms = Self::new(query);
        if let Ok(analyzer) = Analyzer::new(analysis) {
            let mut matched = matched.to_vec();
            matched.sort_unstable();
            terms.matched = Some((analyzer, matched));
        }
        terms
    }

    /// Calls `f` with the runs of `text` in order, each with whether it is a marked word.
    /// Words are compared without allocating where both sides are ASCII, which is nearly
    /// every word of a catalog.
    pub fn runs<'t>(&self, text: &'t str, mut f: impl FnMut(&'t str, bool)) {
        let mut last = 0;
        for (start, word) in words(text) {
            if self.matches(word) {
                if last < start {
                    f(&text[last..start], false);
                }
                f(word, true);
                last = start + word.len();
            }
        }
        if last < text.len() {
            f(&text[last..], false);
        }
    }

    fn matches(&self, word: &str) -> bool {
        let exact = if word.is_ascii() {
            self.words
                .iter()
                .any(|t| t.len() == word.len() && t.eq_ignore_ascii_case(word))
        } else {
            self.words.contains(&word.to_lowercase())
        };
        exact
            || self.matched.as_ref().is_some_and(|(analyzer, matched)| {
                analyzer
                    .terms(word)
                    .any(|t| matched.binary_search(&t).is_ok())
            })
    }
}

/// Alphanumeric words with their byte offsets.
fn words(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut chars = text.char_indices().peekable();
    std::iter::from_fn(move || {
        while let Some(&(_, c)) = chars.peek() {
            if c.is_alphanumeric() {
                break;
            }
            chars.next();
        }
        let (start, _) = *chars.peek()?;
        let mut end = start;
        while let Some(&(i, c)) = chars.peek() {
            if !c.is_alphanumeric() {
                break;
            }
            end = i + c.len_utf8();
            chars.next();
        }
        Some((start, &text[start..end]))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marked(text: &str, query: &str) -> String {
        let mut out = String::new();
        Terms::new(query).runs(text, |run, hit| {
            if hit {
                out.push_str(&format!("[{run}]"));
            } else {
                out.push_str(run);
            }
        });
        out
    }

    #[test]
    fn marks_whole_words_case_insensitively() {
        assert_eq!(
            marked("Air quality at home, AIR!", "air Quality"),
            "[Air] [quality] at home, [AIR]!"
        );
        assert_eq!(marked("repair", "air"), "repair");
    }

    #[test]
    fn lexical_matches_mark_every_form_of_their_terms() {
        let analysis = Analysis::default();
        let analyzer = Analyzer::new(&analysis).unwrap();
        // What a search for "qua" (completed) and "qualities" (stemmed) matched.
        let matched: Vec<String> = analyzer.terms("quadcopter qualities").collect();
        let terms = Terms::with_matches("qua", &analysis, &matched);
        let mut out = String::new();
        terms.runs(
            "A Quadcopter of quality, with two quadcopters",
            |run, hit| {
                if hit {
                    out.push_str(&format!("[{run}]"));
                } else {
                    out.push_str(run);
                }
            },
        );
        assert_eq!(out, "A [Quadcopter] of [quality], with two [quadcopters]");
    }

    #[test]
    fn odd_queries_leave_text_whole() {
        for q in ["", "a", "!!!", "🙂🙂", &"x".repeat(5000)] {
            assert_eq!(marked("Grüße, 東京 <b>", q), "Grüße, 東京 <b>");
        }
        assert_eq!(marked("Grüße aus 東京", "grüße 東京"), "[Grüße] aus [東京]");
    }
}
