//! `punchctl`: the operator CLI. Parsing and wiring only; the work lives in the library.

use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = punchctl::Cli::parse();
    punchctl::init_tracing();
    match punchctl::run(cli).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("punchctl: error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
