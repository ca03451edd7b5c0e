//! BERT's tokenizer for plain ASCII text, without the `tokenizers` pipeline's bookkeeping.
//!
//! The library keeps a normalized copy of the text with an alignment per byte, offsets, word
//! ids and an `Encoding`; a query needs only the ids. In the page's wasm that bookkeeping
//! was about 0.15 ms of every keystroke. [`WordPiece::from_json`] accepts a `tokenizer.json`
//! only when its pipeline is exactly BERT's (the normalizer cleans, lowercases; the
//! pre-tokenizer splits on whitespace and punctuation; WordPiece with `##`; `[CLS] text
//! [SEP]`), and [`WordPiece::ids`] takes only ASCII text without `[` (where the special
//! tokens' text could start). Everything else goes through the library. Tests compare the two
//! on the parity fixture and on generated text (`tests/parity.rs`).

use std::collections::HashMap;

/// The WordPiece vocabulary and the special tokens, read from `tokenizer.json`.
pub(crate) struct WordPiece {
    vocab: HashMap<String, u32>,
    unk: u32,
    cls: u32,
    sep: u32,
    max_word_chars: usize,
}

impl std::fmt::Debug for WordPiece {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WordPiece({} pieces)", self.vocab.len())
    }
}

impl WordPiece {
    /// The fast path for `json`, if its pipeline is the one this implements.
    pub(crate) fn from_json(json: &[u8]) -> Option<Self> {
        let v: serde_json::Value = serde_json::from_slice(json).ok()?;
        let norm = &v["normalizer"];
        let lowercases = norm["lowercase"] == true
            && (norm["strip_accents"].is_null() || norm["strip_accents"] == true);
        if norm["type"] != "BertNormalizer" || norm["clean_text"] != true || !lowercases {
            return None;
        }
        if v["pre_tokenizer"]["type"] != "BertPreTokenizer" {
            return None;
        }
        let model = &v["model"];
        if model["type"] != "WordPiece" || model["continuing_subword_prefix"] != "##" {
            return None;
        }
        let vocab = model["vocab"]
            .as_object()?
            .iter()
            .map(|(piece, id)| Some((piece.clone(), u32::try_from(id.as_u64()?).ok()?)))
            .collect::<Option<HashMap<_, _>>>()?;
        let id = |token: &str| vocab.get(token).copied();
        let (cls, sep) = special_tokens(&v["post_processor"], &id)?;
        // Added tokens match in the raw text: each must start with `[`, which `ids` refuses.
        let added = v["added_tokens"].as_array()?;
        if !added
            .iter()
            .all(|t| t["content"].as_str().is_some_and(|c| c.starts_with('[')))
        {
            return None;
        }
        Some(Self {
            unk: id(model["unk_token"].as_str()?)?,
            cls,
            sep,
            max_word_chars: usize::try_from(model["max_input_chars_per_word"].as_u64()?).ok()?,
            vocab,
        })
    }

    /// The ids of `text` with `[CLS]` and `[SEP]`, truncated to `max_tokens` in all as the
    /// library truncates; `None` for text the fast path does not take.
    pub(crate) fn ids(&self, text: &str, max_tokens: usize) -> Option<Vec<u32>> {
        if !text.is_ascii() || text.contains('[') || max_tokens < 2 {
            return None;
        }
        let room = max_tokens - 2;
        let mut ids = vec![self.cls];
        let (mut word, mut piece) = (String::new(), String::new());
        for b in text.bytes() {
            match b {
                b' ' | b'\t' | b'\n' | b'\r' => self.word(&mut word, &mut piece, &mut ids),
                // Other control characters are dropped (not word breaks).
                0..=0x1f | 0x7f => {}
                _ if b.is_ascii_punctuation() => {
                    self.word(&mut word, &mut piece, &mut ids);
                    word.push(char::from(b));
                    self.word(&mut word, &mut piece, &mut ids);
                }
                _ => word.push(char::from(b.to_ascii_lowercase())),
            }
            if ids.len() > room {
                break;
            }
        }
        self.word(&mut word, &mut piece, &mut ids);
        ids.truncate(room + 1);
        ids.push(self.sep);
        Some(ids)
    }

    /// Appends the pieces of `word` (then empties it): greedy longest match from the start,
    /// later pieces with `##`; a word with an unmatched rest, or too long, is `[UNK]`.
    fn word(&self, word: &mut String, piece: &mut String, ids: &mut Vec<u32>) {
        if word.is_empty() {
            return;
        }
        let before = ids.len();
        let mut start = 0;
        while start < word.len() && word.len() <= self.max_word_chars {
            let found = (start + 1..=word.len()).rev().find_map(|end| {
                piece.clear();
                if start > 0 {
                    piece.push_str("##");
                }
                piece.push_str(&word[start..end]);
                self.vocab.get(piece.as_str()).map(|&id| (id, end))
            });
            let Some((id, end)) = found else { break };
            ids.push(id);
            start = end;
        }
        if start < word.len() {
            ids.truncate(before);
            ids.push(self.unk);
        }
        word.clear();
    }
}

/// `[CLS]` and `[SEP]`'s ids from a post-processor that makes `[CLS] text [SEP]`.
fn special_tokens(pp: &serde_json::Value, id: &impl Fn(&str) -> Option<u32>) -> Option<(u32, u32)> {
    match pp["type"].as_str()? {
        "BertProcessing" => Some((
            u32::try_from(pp["cls"][1].as_u64()?).ok()?,
            u32::try_from(pp["sep"][1].as_u64()?).ok()?,
        )),
        "TemplateProcessing" => {
            let single = pp["single"].as_array()?;
            let special = |i: usize| -> Option<&str> {
                let t = &single.get(i)?["SpecialToken"];
                (t["type_id"] == 0).then(|| t["id"].as_str())?
            };
            let sequence = &single.get(1)?["Sequence"];
            if single.len() != 3 || sequence["id"] != "A" || sequence["type_id"] != 0 {
                return None;
            }
            // The ids the template gives each special token (one each here).
            let ids_of = |name: &str| -> Option<u32> {
                match pp["special_tokens"][name]["ids"]
                    .as_array()
                    .map(Vec::as_slice)
                {
                    Some([one]) => u32::try_from(one.as_u64()?).ok(),
                    _ => None,
                }
            };
            let (cls, sep) = (special(0)?, special(2)?);
            // The vocabulary must agree, or the library's ids and ours could differ.
            if ids_of(cls)? != id(cls)? || ids_of(sep)? != id(sep)? {
                return None;
            }
            Some((ids_of(cls)?, ids_of(sep)?))
        }
        _ => None,
    }
}
