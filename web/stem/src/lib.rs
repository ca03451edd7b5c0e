//! The page's stemmer: a wasm module of plain exports, no glue, that stems one word at a time
//! with one Snowball algorithm. The page's first module links no stemmer (18 languages are 34
//! KB of its brotli) and calls this one for the release's language instead
//! (web/src/stem.rs).
//!
//! A module is built for one language, its feature (scripts/build-web.sh builds each): the
//! linker then leaves the other algorithms' code and tables out. A call: `input(n)` gives room
//! for `n` bytes of UTF-8 in the module's memory, the page writes the word there, `stem(n)`
//! stems it and returns the stem's length in bytes (`usize::MAX` where the bytes were not
//! UTF-8), and `output()` says where the stem is. One word at a time, on the page's one thread.

use rust_stemmers::{Algorithm, Stemmer};
use std::cell::RefCell;

// lol_alloc's free list instead of std's dlmalloc: 7 KB less code (11 KB of brotli for the
// module instead of 13.5 KB). SAFETY: the module runs on the page's one thread and is never
// shared with a worker, which is what `AssumeSingleThreaded` asks.
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
#[global_allocator]
static ALLOCATOR: lol_alloc::AssumeSingleThreaded<lol_alloc::FreeListAllocator> =
    unsafe { lol_alloc::AssumeSingleThreaded::new(lol_alloc::FreeListAllocator::new()) };

thread_local! {
    static INPUT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    static OUTPUT: RefCell<String> = const { RefCell::new(String::new()) };
}

// `no_mangle` counts as unsafe code: two exports of one name would clash at link time. These
// names are this module's interface to the page, and nothing else is linked into it.

/// Room for `len` bytes of input; where it is.
#[allow(unsafe_code)]
#[no_mangle]
pub extern "C" fn input(len: usize) -> *mut u8 {
    INPUT.with_borrow_mut(|i| {
        i.clear();
        i.resize(len, 0);
        i.as_mut_ptr()
    })
}

/// Where the last stem is.
#[allow(unsafe_code)]
#[no_mangle]
pub extern "C" fn output() -> *const u8 {
    OUTPUT.with_borrow(|o| o.as_ptr())
}

/// Stems the first `len` bytes of the input with `algorithm` into the output; its length.
/// (Unused in a native build for no language, but by the tests.)
#[cfg_attr(not(test), allow(dead_code))]
fn stem_with(algorithm: Algorithm, len: usize) -> usize {
    INPUT.with_borrow(|i| {
        let Some(word) = i.get(..len).and_then(|b| std::str::from_utf8(b).ok()) else {
            return usize::MAX;
        };
        let stem = Stemmer::create(algorithm).stem(word).into_owned();
        OUTPUT.with_borrow_mut(|o| {
            *o = stem;
            o.len()
        })
    })
}

/// The languages by their config name and algorithm; the one built for, by its feature (two
/// at once do not compile: `ALGORITHM` is defined twice).
macro_rules! languages {
    ($($name:literal $algorithm:ident),* $(,)?) => {
        /// The languages a module can be built for, by their config name (and feature).
        pub const LANGUAGES: &[&str] = &[$($name),*];

        /// Each language's algorithm, for the tests, which build for none.
        #[cfg(test)]
        const ALGORITHMS: &[Algorithm] = &[$(Algorithm::$algorithm),*];

        $(
            #[cfg(feature = $name)]
            const ALGORITHM: Algorithm = Algorithm::$algorithm;
        )*

        /// Stems the input in the language this module is built for.
        #[cfg(any($(feature = $name),*))]
        #[allow(unsafe_code)]
        #[no_mangle]
        pub extern "C" fn stem(len: usize) -> usize {
            stem_with(ALGORITHM, len)
        }
    };
}

languages!(
    "arabic" Arabic,
    "danish" Danish,
    "dutch" Dutch,
    "english" English,
    "finnish" Finnish,
    "french" French,
    "german" German,
    "greek" Greek,
    "hungarian" Hungarian,
    "italian" Italian,
    "norwegian" Norwegian,
    "portuguese" Portuguese,
    "romanian" Romanian,
    "russian" Russian,
    "spanish" Spanish,
    "swedish" Swedish,
    "tamil" Tamil,
    "turkish" Turkish,
);

#[cfg(test)]
mod tests {
    use super::*;
    use searchbar_lexical::{Analysis, Analyzer};

    /// Stems `bytes` through the exports, as the page does (writing where `input` says).
    fn through_exports(algorithm: Algorithm, bytes: &[u8]) -> Option<String> {
        let at = input(bytes.len());
        INPUT.with_borrow_mut(|i| {
            assert_eq!(i.as_mut_ptr(), at);
            i.copy_from_slice(bytes)
        });
        let len = stem_with(algorithm, bytes.len());
        (len != usize::MAX).then(|| {
            OUTPUT.with_borrow(|o| {
                assert_eq!((o.as_ptr(), o.len()), (output(), len));
                o.clone()
            })
        })
    }

    #[test]
    fn every_language_the_index_accepts_has_a_module_feature() {
        assert_eq!(
            LANGUAGES,
            searchbar_lexical::languages().collect::<Vec<_>>()
        );
        let manifest = include_str!("../Cargo.toml");
        for language in LANGUAGES {
            assert!(
                manifest.contains(&format!("\n{language} = []\n")),
                "no feature {language}"
            );
        }
    }

    #[test]
    fn the_exports_stem_as_the_pipeline_does() {
        for (language, words) in [
            ("english", ["running", "qualities"]),
            ("french", ["chevaux", "continuellement"]),
            ("russian", ["книгами", "бегущий"]),
        ] {
            let at = LANGUAGES.iter().position(|l| *l == language).unwrap();
            let analyzer = Analyzer::new(&Analysis {
                language: language.into(),
                stop_words: vec![],
            })
            .unwrap();
            for word in words {
                let term = &analyzer.words(word)[0].term;
                let stem = through_exports(ALGORITHMS[at], word.as_bytes()).unwrap();
                assert_eq!(&searchbar_lexical::fold(&stem), term);
                assert_ne!(term, word, "{language}: {word} is stemmed");
            }
        }
    }

    /// Each language's algorithm here is the one the index's analyzer uses for it: the two
    /// tables are written apart (a module's must name its algorithm literally), so every
    /// language stems a list of words in several scripts as the pipeline does.
    #[test]
    fn every_language_stems_as_the_pipeline_does() {
        let words = [
            "running",
            "nations",
            "chevaux",
            "continuellement",
            "bücher",
            "häuser",
            "книгами",
            "καλημέρες",
            "kitaplarımız",
            "boekentassen",
            "cantando",
            "libros",
            "ajattelemme",
            "gyerekeknek",
            "كتابات",
            "படிக்கிறார்கள்",
            "lærerne",
            "flickorna",
            "cărților",
        ];
        for (at, language) in LANGUAGES.iter().enumerate() {
            let analyzer = Analyzer::new(&Analysis {
                language: language.to_string(),
                stop_words: vec![],
            })
            .unwrap();
            for word in words {
                let analysed = analyzer.words(word);
                let [one] = analysed.as_slice() else {
                    continue;
                };
                let stem = through_exports(ALGORITHMS[at], word.as_bytes()).unwrap();
                assert_eq!(
                    searchbar_lexical::fold(&stem),
                    one.term,
                    "{language}: {word}"
                );
            }
        }
    }

    #[test]
    fn bytes_that_are_not_utf8_are_refused() {
        assert_eq!(through_exports(Algorithm::English, &[0xff, 0xfe]), None);
    }
}
