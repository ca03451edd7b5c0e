//! The release's stemmer, a wasm module of its own (web/stem): this page's module links no
//! Snowball stemmer (18 languages, 34 KB of its brotli) and stems the words it analyses,
//! queries and the result text it highlights, by calling the one for its index's language.
//! The module is among the page's files in the manifest ([`Manifest::stemmer`]), preloaded
//! beside this one, checked against its sha256 and instantiated before the lexical index opens.
//! It has plain exports and no glue: the word goes into its memory, the stem comes back out.

use js_sys::{Function, Object, Reflect, Uint8Array, WebAssembly};
use searchbar_query::fetch::describe;
use searchbar_release::FileRef;
use std::cell::RefCell;
use std::collections::HashMap;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// The module's exports (web/stem's interface).
#[derive(Debug)]
struct Exports {
    memory: WebAssembly::Memory,
    input: Function,
    stem: Function,
    output: Function,
}

thread_local! {
    static MODULE: RefCell<Option<Exports>> = const { RefCell::new(None) };
    /// Stems asked before: results are drawn again at each keystroke, mostly the same words.
    static SEEN: RefCell<HashMap<String, String>> = RefCell::new(HashMap::new());
}

/// Stems kept at most ([`SEEN`]; forgotten all at once past it).
const SEEN_AT_MOST: usize = 20_000;

/// Checks the module's bytes against `file`, instantiates it and makes it the lexical index's
/// stemmer for `language` (`searchbar_lexical::use_stemmer`).
pub async fn install(file: &FileRef, language: &str, bytes: &[u8]) -> Result<(), String> {
    file.verify(bytes).map_err(|e| e.to_string())?;
    let fail = |e: JsValue| format!("{}: {}", file.path, describe(&e));
    let made = JsFuture::from(WebAssembly::instantiate_buffer(bytes, &Object::new()))
        .await
        .map_err(fail)?;
    let instance: WebAssembly::Instance = Reflect::get(&made, &"instance".into())
        .map_err(fail)?
        .dyn_into()
        .map_err(fail)?;
    let exports = instance.exports();
    let get = |name: &str| {
        Reflect::get(&exports, &name.into())
            .ok()
            .filter(|v| !v.is_undefined())
            .ok_or_else(|| format!("{}: the stemmer module has no export {name:?}", file.path))
    };
    let function = |name: &str| get(name)?.dyn_into::<Function>().map_err(fail);
    let module = Exports {
        memory: get("memory")?.dyn_into().map_err(fail)?,
        input: function("input")?,
        stem: function("stem")?,
        output: function("output")?,
    };
    MODULE.set(Some(module));
    searchbar_lexical::use_stemmer(language, stem).map_err(|e| e.to_string())
}

/// `word` stemmed by the module; as it is where the module cannot answer (it has trapped),
/// which only costs the word its other forms.
fn stem(word: &str) -> String {
    if let Some(stem) = SEEN.with_borrow(|seen| seen.get(word).cloned()) {
        return stem;
    }
    let Some(stem) = MODULE.with_borrow(|m| m.as_ref().and_then(|m| m.stem(word))) else {
        return word.to_string();
    };
    SEEN.with_borrow_mut(|seen| {
        if seen.len() >= SEEN_AT_MOST {
            seen.clear();
        }
        seen.insert(word.to_string(), stem.clone());
    });
    stem
}

impl Exports {
    fn stem(&self, word: &str) -> Option<String> {
        let len = u32::try_from(word.len()).ok()?;
        let number = |v: Result<JsValue, JsValue>| v.ok()?.as_f64();
        let at = number(self.input.call1(&JsValue::NULL, &len.into()))? as u32;
        // The memory's buffer is read after each call: a call that grows the memory detaches
        // the one before.
        let memory = || Uint8Array::new(&self.memory.buffer());
        memory().subarray(at, at + len).copy_from(word.as_bytes());
        // An i32 to JS: the module's "not UTF-8" (usize::MAX) reads as -1.
        let stemmed = number(self.stem.call1(&JsValue::NULL, &len.into()))?;
        if stemmed < 0.0 {
            return None;
        }
        let out = number(self.output.call0(&JsValue::NULL))? as u32;
        let mut bytes = vec![0; stemmed as usize];
        memory()
            .subarray(out, out + stemmed as u32)
            .copy_to(&mut bytes);
        String::from_utf8(bytes).ok()
    }
}
