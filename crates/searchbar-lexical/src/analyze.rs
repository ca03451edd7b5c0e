//! Text analysis: the one place where text becomes index terms, for documents at build time
//! and for queries in the page and the CLI alike (the root carries the settings, so a page
//! analyses exactly as the pipeline did).

use crate::LexicalError;
#[cfg(feature = "snowball")]
use rust_stemmers::{Algorithm, Stemmer};
use serde::{Deserialize, Serialize};
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;
use unicode_segmentation::UnicodeSegmentation;

/// Words longer than this (in chars) are not indexed: they are hashes, base64 or run-on
/// garbage, and each would be a dictionary entry of its own.
pub const MAX_TERM_CHARS: usize = 40;

/// The stop words used for English unless configured otherwise: the 33 words of Lucene's
/// `EnglishAnalyzer` default set.
pub const ENGLISH_STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it",
    "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there", "these",
    "they", "this", "to", "was", "will", "with",
];

/// The languages with a Snowball stemmer (the `rust-stemmers` set), by their config name.
const LANGUAGES: &[&str] = &[
    "arabic",
    "danish",
    "dutch",
    "english",
    "finnish",
    "french",
    "german",
    "greek",
    "hungarian",
    "italian",
    "norwegian",
    "portuguese",
    "romanian",
    "russian",
    "spanish",
    "swedish",
    "tamil",
    "turkish",
];

/// [`LANGUAGES`]' algorithms, in the same order.
#[cfg(feature = "snowball")]
const ALGORITHMS: [Algorithm; 18] = [
    Algorithm::Arabic,
    Algorithm::Danish,
    Algorithm::Dutch,
    Algorithm::English,
    Algorithm::Finnish,
    Algorithm::French,
    Algorithm::German,
    Algorithm::Greek,
    Algorithm::Hungarian,
    Algorithm::Italian,
    Algorithm::Norwegian,
    Algorithm::Portuguese,
    Algorithm::Romanian,
    Algorithm::Russian,
    Algorithm::Spanish,
    Algorithm::Swedish,
    Algorithm::Tamil,
    Algorithm::Turkish,
];

/// The language names [`Analysis::language`] accepts, for error messages and docs.
pub fn languages() -> impl Iterator<Item = &'static str> {
    LANGUAGES.iter().copied()
}

/// A stemmer supplied at run time ([`use_stemmer`]): the language it stems and the function.
static SUPPLIED: std::sync::OnceLock<(String, StemFn)> = std::sync::OnceLock::new();

/// A supplied stemmer: a word (lower case) to its stem.
type StemFn = fn(&str) -> String;

/// Supplies `language`'s stemmer to every [`Analyzer`] of this program, where none is linked
/// in (no `snowball` feature: the page's first module installs the one its release needs
/// before it opens the lexical index; with it, the linked one is used). Once: a second call
/// for another language is an error.
pub fn use_stemmer(language: &str, stem: StemFn) -> Result<(), LexicalError> {
    let (have, _) = SUPPLIED.get_or_init(|| (language.to_string(), stem));
    if have != language {
        return Err(LexicalError::Config(format!(
            "a {have} stemmer is in use; a {language} one cannot replace it"
        )));
    }
    Ok(())
}

/// A language's stemmer: linked in, or supplied ([`use_stemmer`]).
enum Stem {
    #[cfg(feature = "snowball")]
    Linked(Stemmer),
    #[cfg(not(feature = "snowball"))]
    Supplied(StemFn),
}

impl Stem {
    fn of(language: &str) -> Result<Self, LexicalError> {
        let Some(at) = LANGUAGES.iter().position(|n| *n == language) else {
            return Err(LexicalError::Config(format!(
                "language {language:?} has no stemmer; use one of {} or \"none\"",
                LANGUAGES.join(", ")
            )));
        };
        #[cfg(feature = "snowball")]
        return Ok(Self::Linked(Stemmer::create(ALGORITHMS[at])));
        #[cfg(not(feature = "snowball"))]
        {
            let _ = at;
            match SUPPLIED.get() {
                Some((have, stem)) if have == language => Ok(Self::Supplied(*stem)),
                _ => Err(LexicalError::Config(format!(
                    "the {language} stemmer is not loaded"
                ))),
            }
        }
    }

    fn stem(&self, word: &str) -> String {
        match self {
            #[cfg(feature = "snowball")]
            Self::Linked(s) => s.stem(word).into_owned(),
            #[cfg(not(feature = "snowball"))]
            Self::Supplied(stem) => stem(word),
        }
    }
}

/// How text is analysed. Stored in the index root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Analysis {
    /// A Snowball language (see [`languages`]), or `"none"`: no stemming.
    pub language: String,
    /// Words dropped from documents and queries, as analysed (lower case, folded).
    pub stop_words: Vec<String>,
}

impl Default for Analysis {
    fn default() -> Self {
        Self {
            language: "english".into(),
            stop_words: ENGLISH_STOP_WORDS.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// One word of a text, analysed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// Lower case, diacritics folded, not stemmed: what a prefix is matched from.
    pub folded: String,
    /// The index term: stemmed, then folded.
    pub term: String,
    /// A stop word (kept in the list so a query's last word can still complete).
    pub stop: bool,
}

/// An analyser built from [`Analysis`].
pub struct Analyzer {
    stemmer: Option<Stem>,
    stop: std::collections::HashSet<String>,
}

impl std::fmt::Debug for Analyzer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Analyzer")
            .field("stemming", &self.stemmer.is_some())
            .field("stop_words", &self.stop.len())
            .finish()
    }
}

impl Analyzer {
    pub fn new(a: &Analysis) -> Result<Self, LexicalError> {
        let stemmer = if a.language == "none" {
            None
        } else {
            Some(Stem::of(&a.language)?)
        };
        Ok(Self {
            stemmer,
            stop: a.stop_words.iter().map(|w| fold(w)).collect(),
        })
    }

    /// The words of `text`, in order (over-long ones left out).
    pub fn words(&self, text: &str) -> Vec<Word> {
        self.each_word(text).collect()
    }

    fn each_word<'a>(&'a self, text: &'a str) -> impl Iterator<Item = Word> + 'a {
        text.unicode_words()
            .filter(|w| w.chars().count() <= MAX_TERM_CHARS)
            .map(|w| self.word(w))
    }

    fn word(&self, raw: &str) -> Word {
        let lower = raw.to_lowercase();
        let folded = fold(&lower);
        let stop = self.stop.contains(&folded);
        // The stemmer reads the language's own letters (accents included); folding comes after.
        let term = match &self.stemmer {
            Some(s) => fold(&s.stem(&lower)),
            None => folded.clone(),
        };
        Word { folded, term, stop }
    }

    /// The index terms of `text` (stop words dropped), in order with repeats.
    pub fn terms<'a>(&'a self, text: &'a str) -> impl Iterator<Item = String> + 'a {
        self.each_word(text)
            .filter(|w| !w.stop && !w.term.is_empty())
            .map(|w| w.term)
    }
}

/// Lower case with diacritics removed (compatibility decomposition, combining marks dropped):
/// `Crème Brûlée` → `creme brulee`, `ﬁ` → `fi`.
pub fn fold(s: &str) -> String {
    s.nfkd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Whether the text ends inside a word (the user is still typing it), so that its last word
/// should match as a prefix.
pub fn ends_in_word(text: &str) -> bool {
    text.chars().last().is_some_and(char::is_alphanumeric)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_lowercased_folded_stemmed_and_stopped() {
        let a = Analyzer::new(&Analysis::default()).unwrap();
        let terms: Vec<String> = a.terms("The Crème BRÛLÉE of running, Qualities!").collect();
        assert_eq!(terms, ["creme", "brulee", "run", "qualiti"]);
        let w = a.words("Running");
        assert_eq!(w[0].folded, "running");
        assert_eq!(w[0].term, "run");
    }

    #[test]
    fn segmentation_follows_unicode_words() {
        let a = Analyzer::new(&Analysis {
            language: "none".into(),
            stop_words: vec![],
        })
        .unwrap();
        let terms: Vec<String> = a.terms("COVID-19 naïve café—résumé 東京").collect();
        assert_eq!(
            terms,
            ["covid", "19", "naive", "cafe", "resume", "東", "京"]
        );
    }

    #[test]
    fn an_unknown_language_is_an_error_listing_the_known_ones() {
        let e = Analyzer::new(&Analysis {
            language: "klingon".into(),
            stop_words: vec![],
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("klingon") && e.contains("english"), "{e}");
    }

    #[test]
    fn the_last_word_is_unfinished_unless_followed_by_a_separator() {
        assert!(ends_in_word("air qua"));
        assert!(!ends_in_word("air qua "));
        assert!(!ends_in_word("air quality?"));
        assert!(!ends_in_word(""));
    }
}
