#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    agentry::cli::run()
}
