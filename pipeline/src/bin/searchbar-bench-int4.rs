//! `searchbar-bench-int4`: what 4-bit layer weights cost in retrieval quality, matmul by matmul
//! and per plan, for choosing a model lock's `[int4]` table ([`searchbar::commands::bench_int4`]).

fn main() -> std::process::ExitCode {
    searchbar::commands::bench_int4::main()
}
