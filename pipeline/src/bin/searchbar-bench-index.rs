//! `searchbar-bench-index`: index configurations side by side on a project's embeddings or a
//! synthetic set, for choosing `[index]` settings ([`searchbar::commands::bench`]).

fn main() -> std::process::ExitCode {
    searchbar::commands::bench::main()
}
