//! BERT's tokenizer for plain ASCII text, without the `tokenizers` pipeline's bookkeeping.
//!
//! The library keeps a normalized copy of the text with an alignment per byte, offsets, word
//! ids and an `Encoding`; a query needs only the ids, and in the page's wasm the bookkeeping
//! is paid on every keystroke. [`FastPath::new`] accepts a loaded tokenizer only
//! when its pipeline is exactly BERT's (the normalizer cleans, lowercases; the pre-tokenizer
//! splits on whitespace and punctuation; WordPiece with `##`; `[CLS] text [SEP]`, as the
//! library itself tokenizes a probe), and [`FastPath::ids`] takes only ASCII text without `[`
//! (where the special tokens' text could start), looking pieces up in the library's own
//! vocabulary. Everything else goes through the library. Tests compare the two on the parity
//! fixture and on generated text (`tests/parity.rs`).

use tokenizers::models::wordpiece::WordPiece;
use tokenizers::models::ModelWrapper;
use tokenizers::normalizers::NormalizerWrapper;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::{Model, Tokenizer};

/// What the fast path needs beyond the library's WordPiece model: the special tokens' ids.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FastPath {
    unk: u32,
    cls: u32,
    sep: u32,
}

impl FastPath {
    /// The fast path for `tokenizer` (truncating at `max_tokens`), if its pipeline is the one
    /// this implements.
    pub(crate) fn new(tokenizer: &Tokenizer, max_tokens: usize) -> Option<Self> {
        let Some(NormalizerWrapper::BertNormalizer(norm)) = tokenizer.get_normalizer() else {
            return None;
        };
        if !norm.clean_text || !norm.lowercase || norm.strip_accents == Some(false) {
            return None;
        }
        let Some(PreTokenizerWrapper::BertPreTokenizer(_)) = tokenizer.get_pre_tokenizer() else {
            return None;
        };
        let model = model(tokenizer)?;
        if model.continuing_subword_prefix != "##" {
            return None;
        }
        // Added tokens match in the raw text: each must start with `[`, which `ids` refuses.
        let added = tokenizer.get_added_tokens_decoder();
        if !added.values().all(|t| t.content.starts_with('[')) {
            return None;
        }
        // The post-processor, as the library applies it: `[CLS] [SEP]` around the text, all of
        // type 0.
        let probe = |text: &str| {
            let e = tokenizer.encode(text, true).ok()?;
            e.get_type_ids()
                .iter()
                .all(|&t| t == 0)
                .then(|| e.get_ids().to_vec())
        };
        let [cls, sep] = probe("")?[..] else {
            return None;
        };
        let a = model.token_to_id("a")?;
        let want = if max_tokens >= 3 {
            vec![cls, a, sep]
        } else {
            vec![cls, sep]
        };
        if probe("a")? != want {
            return None;
        }
        Some(Self {
            unk: model.token_to_id(&model.unk_token)?,
            cls,
            sep,
        })
    }

    /// The ids of `text` with `[CLS]` and `[SEP]`, truncated to `max_tokens` in all as the
    /// library truncates; `None` for text the fast path does not take.
    pub(crate) fn ids(
        &self,
        tokenizer: &Tokenizer,
        text: &str,
        max_tokens: usize,
    ) -> Option<Vec<u32>> {
        if !text.is_ascii() || text.contains('[') || max_tokens < 2 {
            return None;
        }
        let room = max_tokens - 2;
        let mut ids = vec![self.cls];
        let mut word = Word {
            model: model(tokenizer)?,
            unk: self.unk,
            text: String::new(),
            piece: String::new(),
        };
        for b in text.bytes() {
            match b {
                b' ' | b'\t' | b'\n' | b'\r' => word.end(&mut ids),
                // Other control characters are dropped (not word breaks).
                0..=0x1f | 0x7f => {}
                _ if b.is_ascii_punctuation() => {
                    word.end(&mut ids);
                    word.text.push(char::from(b));
                    word.end(&mut ids);
                }
                _ => word.text.push(char::from(b.to_ascii_lowercase())),
            }
            if ids.len() > room {
                break;
            }
        }
        word.end(&mut ids);
        ids.truncate(room + 1);
        ids.push(self.sep);
        Some(ids)
    }
}

/// The library's WordPiece model, if that is what `tokenizer` runs.
fn model(tokenizer: &Tokenizer) -> Option<&WordPiece> {
    match tokenizer.get_model() {
        ModelWrapper::WordPiece(model) => Some(model),
        _ => None,
    }
}

/// The word being read, and the buffer its pieces are looked up in.
struct Word<'a> {
    model: &'a WordPiece,
    unk: u32,
    text: String,
    piece: String,
}

impl Word<'_> {
    /// Appends the pieces of the word (then empties it): greedy longest match from the start,
    /// later pieces with `##`; a word with an unmatched rest, or too long, is `[UNK]`.
    fn end(&mut self, ids: &mut Vec<u32>) {
        let Self {
            model,
            unk,
            text,
            piece,
        } = self;
        if text.is_empty() {
            return;
        }
        let before = ids.len();
        let mut start = 0;
        while start < text.len() && text.len() <= model.max_input_chars_per_word {
            let found = (start + 1..=text.len()).rev().find_map(|end| {
                piece.clear();
                if start > 0 {
                    piece.push_str("##");
                }
                piece.push_str(&text[start..end]);
                model.token_to_id(piece).map(|id| (id, end))
            });
            let Some((id, end)) = found else { break };
            ids.push(id);
            start = end;
        }
        if start < text.len() {
            ids.truncate(before);
            ids.push(*unk);
        }
        text.clear();
    }
}
