//! `cameodb serve`: start a node with embedded defaults, a TOML file, `CAMEODB_*` environment
//! variables and flags — in rising order of precedence.

mod config;

/// mimalloc instead of glibc malloc: after a bulk load glibc kept over a gigabyte of freed
/// indexing buffers resident (fragmented per-thread arenas it never trims); mimalloc hands
/// freed pages back to the OS (see `release_freed_memory_at_once`). Wrapped by the memory
/// breaker's counter, which charges what each request allocates to its account.
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static GLOBAL: cameodb_memory::CountingAlloc<mimalloc::MiMalloc> =
    cameodb_memory::CountingAlloc(mimalloc::MiMalloc);

/// The C library's malloc, for heap profilers that hook it (heaptrack, valgrind's massif):
/// `cargo build --release -p cameodb --features system-allocator`. Never for serving.
#[cfg(feature = "system-allocator")]
#[global_allocator]
static GLOBAL: cameodb_memory::CountingAlloc<std::alloc::System> =
    cameodb_memory::CountingAlloc(std::alloc::System);

/// mimalloc option `purge_delay`: the bindings do not name it; in the bundled mimalloc.h it is
/// the entry just before `mi_option_use_numa_nodes`, which they do name.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t =
    libmimalloc_sys::mi_option_use_numa_nodes - 1;

/// Purge freed pages immediately instead of after mimalloc's default delay: tantivy's indexing
/// threads end at every commit, and what they freed was otherwise never purged — a node that
/// had created and deleted a few bulk-loaded indexes kept ~1 GB resident. Measured: with the
/// delay, 310 MB stayed after three load+delete cycles and grew each cycle; without, ~50 MB.
fn release_freed_memory_at_once() {
    // SAFETY: mi_option_set only stores an integer in mimalloc's option table; it is called
    // once at start-up, before any other thread exists, with an option id from mimalloc's own
    // header.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
}

use clap::{Parser, Subcommand};
use tokio::net::TcpListener;
use tracing::{error, info};

#[derive(Parser)]
#[command(
    name = "cameodb",
    version,
    about = "A durable document store and search engine in one binary"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a node.
    Serve(config::ServeArgs),
}

fn main() -> std::process::ExitCode {
    release_freed_memory_at_once();
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CAMEODB_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    let Command::Serve(args) = cli.command;
    let settings = match config::Settings::resolve(args) {
        Ok(settings) => settings,
        Err(err) => {
            error!(error = %err, "invalid configuration");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            error!(error = %err, "failed to start the async runtime");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(settings)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            error!(error = %err, "cameodb stopped with an error");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(settings: config::Settings) -> Result<(), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind(settings.http_addr).await?;
    cameodb_server::run(listener, settings.server, shutdown_signal()).await?;
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    info!("shutdown signal received; finishing in-flight requests");
}
