use crate::wordpiece::FastPath;
use crate::EncoderError;
use tokenizers::{Encoding, Tokenizer, TruncationParams};

/// The token ids of a batch, padded to the longest member, row-major `[batch, len]`.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenBatch {
    pub ids: Vec<i64>,
    pub attention_mask: Vec<i64>,
    pub type_ids: Vec<i64>,
    pub batch: usize,
    pub len: usize,
}

/// A `tokenizer.json` with sentence-transformers' settings forced on it.
///
/// The shipped all-MiniLM-L6-v2 tokenizer pads and truncates to 128 tokens, while
/// sentence-transformers truncates at `max_seq_length` (256) and pads only within a batch.
#[derive(Debug, Clone)]
pub struct TextTokenizer {
    inner: Tokenizer,
    max_tokens: usize,
    /// BERT's pipeline for ASCII text, without the library's bookkeeping, when the file is
    /// BERT's (`wordpiece.rs`): the ids of [`Self::ids`] and one-text [`Self::batch`]es.
    fast: Option<FastPath>,
}

impl TextTokenizer {
    pub fn from_bytes(json: &[u8], max_tokens: usize) -> Result<Self, EncoderError> {
        let mut inner = Tokenizer::from_bytes(json)
            .map_err(|e| EncoderError::Tokenizer(format!("cannot read tokenizer.json: {e}")))?;
        inner.with_padding(None);
        inner
            .with_truncation(Some(TruncationParams {
                max_length: max_tokens,
                ..Default::default()
            }))
            .map_err(|e| EncoderError::Tokenizer(format!("truncation at {max_tokens}: {e}")))?;
        let fast = FastPath::new(&inner, max_tokens);
        Ok(Self {
            inner,
            max_tokens,
            fast,
        })
    }

    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// Token ids of one text, special tokens included (truncated to the limit).
    pub fn ids(&self, text: &str) -> Result<Vec<u32>, EncoderError> {
        if let Some(ids) = self.fast_ids(text) {
            return Ok(ids);
        }
        Ok(self.encode(text)?.get_ids().to_vec())
    }

    /// [`Self::ids`] by the fast path, if it takes `text`.
    fn fast_ids(&self, text: &str) -> Option<Vec<u32>> {
        self.fast?.ids(&self.inner, text, self.max_tokens)
    }

    /// Whether this tokenizer has the ASCII fast path (a BERT `tokenizer.json`).
    pub fn has_fast_path(&self) -> bool {
        self.fast.is_some()
    }

    /// Tokenizes one text (special tokens included, truncated to the limit) with the library,
    /// offsets and all.
    pub fn encode(&self, text: &str) -> Result<Encoding, EncoderError> {
        self.inner
            .encode(text, true)
            .map_err(|e| EncoderError::Tokenizer(e.to_string()))
    }

    /// Tokenizes `texts` and pads them to the longest one (the mask marks real tokens).
    pub fn batch(&self, texts: &[&str]) -> Result<TokenBatch, EncoderError> {
        if let [text] = texts {
            if let Some(ids) = self.fast_ids(text) {
                return Ok(TokenBatch::one(&ids));
            }
        }
        // One text at a time: the batch API would fan out to rayon and needs padding settings
        // on a clone of the whole vocabulary; padding by hand is cheaper.
        let encs = texts
            .iter()
            .map(|t| self.encode(t))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TokenBatch::pad(&encs.iter().collect::<Vec<_>>()))
    }
}

impl TokenBatch {
    /// One text's ids, unpadded.
    fn one(ids: &[u32]) -> Self {
        TokenBatch {
            ids: ids.iter().map(|&id| i64::from(id)).collect(),
            attention_mask: vec![1; ids.len()],
            type_ids: vec![0; ids.len()],
            batch: 1,
            len: ids.len(),
        }
    }

    /// Pads already tokenized texts to the longest of them.
    pub fn pad(encs: &[&Encoding]) -> Self {
        let len = encs.iter().map(|e| e.get_ids().len()).max().unwrap_or(0);
        let mut out = TokenBatch {
            ids: Vec::with_capacity(len * encs.len()),
            attention_mask: Vec::with_capacity(len * encs.len()),
            type_ids: Vec::with_capacity(len * encs.len()),
            batch: encs.len(),
            len,
        };
        for e in encs {
            let pad = len - e.get_ids().len();
            for (dst, src) in [
                (&mut out.ids, e.get_ids()),
                (&mut out.attention_mask, e.get_attention_mask()),
                (&mut out.type_ids, e.get_type_ids()),
            ] {
                dst.extend(src.iter().map(|&x| x as i64));
                dst.extend(std::iter::repeat_n(0, pad));
            }
        }
        out
    }
}
