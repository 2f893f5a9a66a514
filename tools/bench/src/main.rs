//! The `ingest-bench` binary: the benchmark, or (`bare-server`) the bare baseline endpoint it
//! starts as a separate process.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;
use dakoku_bench::cli::BareArgs;
use dakoku_bench::{Cli, Command, RunArgs, bare, run};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Some(Command::BareServer(args)) => bare_server(args).await.map(|()| ExitCode::SUCCESS),
        None => bench(cli.run).await,
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("ingest-bench: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn bench(args: RunArgs) -> anyhow::Result<ExitCode> {
    let json = args.json.clone();
    let report = run::run(args).await?;
    print!("{}", report.summary());
    if let Some(path) = json {
        let file =
            std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        serde_json::to_writer_pretty(std::io::BufWriter::new(file), &report)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("ingest-bench: results written to {}", path.display());
    }
    // Goals missed are findings, not failures; acks without records are a bug.
    Ok(if report.log_checks.iter().all(|c| c.holds) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn bare_server(args: BareArgs) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    eprintln!("bare-server: listening on {}", listener.local_addr()?);
    bare::serve(listener, async {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = terminate.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    })
    .await?;
    Ok(())
}
