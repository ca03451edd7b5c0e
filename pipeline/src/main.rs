//! `searchbar`: the pipeline that keeps a static semantic search bar fresh. The command line
//! is the library's ([`searchbar::cli`]).

fn main() -> std::process::ExitCode {
    searchbar::cli::main()
}
