//! `callmeter`: the one binary. It parses the command line and hands each
//! command to the crate that does the work; it holds no logic of its own
//! beyond talking to a server and printing.

// First: its `println!` shadows std's in the modules below.
#[macro_use]
mod stdout;

mod alerts;
mod audit;
mod client;
mod commands;
mod from_audit;
mod import;
mod webhooks;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

// Every call event is a handful of small strings: a faster allocator pays for itself in every command.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Meter billable API calls exactly once, per account and usage period.
#[derive(Parser)]
#[command(name = "callmeter", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
// Parsed once at start: `serve`'s many settings make its variant the largest, which costs nothing.
#[allow(clippy::large_enum_variant)]
enum Command {
    /// Run the server: ingest API, usage, request log, accounts and tokens, on the embedded store.
    Serve {
        /// TOML config file; flags and CALLMETER_* variables win over it [default: ./callmeter.toml if present].
        #[arg(long, env = "CALLMETER_CONFIG")]
        config: Option<PathBuf>,
        #[command(flatten)]
        options: callmeter_server::ServerOptions,
    },
    /// Import log files (any format; plain, .gz or .zst) into a server or a data folder; each call once.
    Import {
        /// The files, or - for standard input.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        read: import::ReadArgs,
        #[command(flatten)]
        target: import::ImportTarget,
        /// Stop at the first line that is not a call of its format.
        #[arg(long)]
        strict: bool,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Follow growing logs (through rotation and truncation) and send each line's calls to a server once it ends.
    Tail {
        /// The files to follow; they need not exist yet.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        read: import::ReadArgs,
        /// Where the position in each file is kept between runs.
        #[arg(long, default_value = "callmeter-tail.json")]
        checkpoint: PathBuf,
        /// How often to look for new lines, in milliseconds.
        #[arg(long, default_value_t = 500)]
        poll_ms: u64,
        #[command(flatten)]
        server: client::ServerArgs,
    },
    /// An account's usage for a period against its plan.
    Usage {
        /// The account.
        account: String,
        /// current, previous, or a date (YYYY-MM-DD) inside the period.
        #[arg(long, default_value = "current")]
        period: String,
        /// Print the server's JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        server: client::ServerArgs,
    },
    /// An account's request log: every call, LIST included.
    Calls {
        /// The account.
        account: String,
        /// From this time (RFC 3339).
        #[arg(long)]
        from: Option<String>,
        /// Before this time (RFC 3339).
        #[arg(long)]
        to: Option<String>,
        /// Only this operation (list, read, write, …).
        #[arg(long)]
        operation: Option<String>,
        /// Only paths starting with this.
        #[arg(long)]
        path_prefix: Option<String>,
        /// How many calls at most.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Print NDJSON, one call per line.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        server: client::ServerArgs,
    },
    /// The accounts and their plans.
    Accounts {
        /// Print the server's JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        server: client::ServerArgs,
    },
    /// List, make or revoke tokens.
    Tokens {
        #[command(subcommand)]
        action: commands::TokenAction,
        #[command(flatten)]
        server: client::ServerArgs,
    },
    /// An account's usage alerts (thresholds reached, projected overage, spikes), newest first.
    Alerts {
        /// The account.
        account: String,
        /// How many at most (1 to 1,000).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u16).range(1..=1_000))]
        limit: u16,
        /// Print the server's JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        server: client::ServerArgs,
    },
    /// An account's webhooks: create (also for usage alerts, or from its audit's polling), list,
    /// update, delete; their deliveries, redelivery, replay; rotate a signing secret.
    Webhooks {
        #[command(subcommand)]
        action: webhooks::WebhookAction,
        #[command(flatten)]
        server: client::ServerArgs,
    },
    /// Where an account's calls come from and which could go away: polling, listing after
    /// each upload, repeated requests; from log files, a data folder or a server.
    Audit(Box<audit::AuditArgs>),
    /// Write a seeded workload with known waste (NDJSON and logs) and its truth, to try audit on.
    Simulate(audit::SimulateArgs),
    /// Have the server write a consistent copy of its store into an empty folder outside its data
    /// folder, while it runs.
    Backup {
        /// The folder, on the server's machine: empty or absent, outside the server's data folder and
        /// not containing it. A relative path is taken from this command's working directory and sent
        /// as an absolute one.
        dir: PathBuf,
        #[command(flatten)]
        server: client::ServerArgs,
    },
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("CALLMETER_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    private_files();
    no_transparent_huge_pages();
    let done = match cli.command {
        Command::Serve { config, options } => {
            lazy_purge();
            commands::serve(config, options)
        }
        Command::Import { files, read, target, strict, json } => import::import(&files, &read, target, strict, json),
        Command::Tail { files, read, checkpoint, poll_ms, server } => {
            import::tail(files, &read, server, checkpoint, poll_ms)
        }
        Command::Usage { account, period, json, server } => {
            commands::usage(&server.connect()?, &account, &period, json)
        }
        Command::Calls { account, from, to, operation, path_prefix, limit, json, server } => {
            let filters = [("from", from), ("to", to), ("operation", operation), ("path_prefix", path_prefix)];
            commands::calls(&server.connect()?, &account, &filters, limit, json)
        }
        Command::Accounts { json, server } => commands::accounts(&server.connect()?, json),
        Command::Tokens { action, server } => commands::tokens(&server.connect()?, action),
        Command::Backup { dir, server } => commands::backup(&server.connect()?, &dir),
        Command::Webhooks { action, server } => webhooks::webhooks(&server.connect()?, action),
        Command::Alerts { account, limit, json, server } => {
            alerts::alerts(&server.connect()?, &account, limit.into(), json)
        }
        Command::Audit(args) => audit::audit(*args),
        Command::Simulate(args) => audit::simulate(args),
    };
    match done {
        Err(e) if stdout::is_closed_pipe(&e) => Ok(()),
        done => done,
    }
}

/// mimalloc's `purge_decommits` option: the 6th of `mi_option_e` in the
/// mimalloc 3 that `libmimalloc-sys` 0.1.49 builds (pinned in Cargo.toml:
/// the crate names only some options, and the index is its C header's).
const MI_OPTION_PURGE_DECOMMITS: libmimalloc_sys::mi_option_t = 5;

/// The variables by which an operator sets how the allocator purges: when
/// one is set, [`lazy_purge`] leaves the allocator as they say.
const PURGE_VARIABLES: [&str; 3] = ["MIMALLOC_PURGE_DECOMMITS", "MIMALLOC_RESET_DECOMMITS", "MIMALLOC_PURGE_DELAY"];

/// Makes the allocator give freed memory back lazily (`MADV_FREE`: the
/// kernel takes the pages when it needs them), not at once
/// (`MADV_DONTNEED`, which the next use of the page pays for with a fault
/// and a zeroed page). The server frees and takes back memory all the
/// time: in one webhooks bench run, page faults were 482 perf samples of
/// the server with webhooks on and 57 with them off, and 68 and 56 once
/// purges were lazy (README, Performance). Freed pages then count in the
/// server's resident memory until the kernel takes them. The operator's
/// settings ([`PURGE_VARIABLES`]) win.
fn lazy_purge() {
    if !PURGE_VARIABLES.iter().any(|name| std::env::var_os(name).is_some()) {
        // SAFETY: sets one of the allocator's options (an integer); called at start, before other threads.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DECOMMITS, 0) };
    }
}

/// Makes every folder and file this process creates readable by its owner
/// only (0700, 0600), whatever the shell's umask: the data folder, its
/// backups, `tail` checkpoints and audit reports hold every call and the
/// token hashes (DESIGN §8).
fn private_files() {
    // SAFETY: umask only sets the process's file creation mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
}

/// Turns transparent huge pages off for this process's memory. The
/// allocator frees and takes memory back all the time under ingest and
/// import, and with huge pages each fault zeroes 2 MiB: on this project's
/// 2-core VM that zeroing took a quarter of the server's CPU and halved
/// ingest's top rate whenever the kernel had huge pages to give (the
/// webhooks bench: 370,000 against 680,000 calls a second), and made
/// `import --data` 1.6–2.1× slower (README, Performance). Small pages cost
/// a fault per 4 KiB touched instead, which the buffers repay.
fn no_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: prctl with PR_SET_THP_DISABLE takes plain integers and changes a flag of this process only.
        let result = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
        if result != 0 {
            tracing::warn!(error = %std::io::Error::last_os_error(), "cannot turn transparent huge pages off; running with them");
        }
    }
}

#[cfg(test)]
mod tests {
    /// The option set is the allocator's `purge_decommits` (on by default), and it is then off.
    #[test]
    fn the_allocator_gives_memory_back_lazily() {
        if super::PURGE_VARIABLES.iter().any(|name| std::env::var_os(name).is_some()) {
            return; // the environment's settings stand
        }
        // SAFETY: reads the allocator's options.
        let get = |option| unsafe { libmimalloc_sys::mi_option_get(option) };
        // The options around it have the defaults of mimalloc 3's list: its order is the one assumed.
        assert_eq!(get(super::MI_OPTION_PURGE_DECOMMITS), 1, "mimalloc decommits on purge by default");
        assert_eq!(get(super::MI_OPTION_PURGE_DECOMMITS + 10), 1_000, "purge_delay, 10 options further, is 1 s");
        super::lazy_purge();
        assert_eq!(get(super::MI_OPTION_PURGE_DECOMMITS), 0);
    }
}
