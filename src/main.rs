#![forbid(unsafe_code)]

// mimalloc: measurably faster than the system allocator on the request path
// (many short-lived allocations across threads).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    agentry::cli::run()
}
