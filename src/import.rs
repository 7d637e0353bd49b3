//! `callmeter import` and `callmeter tail`: the flags, the config tables and
//! the progress bar; the reading and delivering is `callmeter-import`'s.

use crate::client::ServerArgs;
use anyhow::{bail, Context, Result};
use callmeter_formats::{AccountFrom, AccountRule, Classifier, Format};
use callmeter_import::{ImportError, ReadOptions, ServerSink, Sink, StoreSink, Summary, TailOptions, Tailer};
use callmeter_server::ServerOptions;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

/// How lines become calls: the flags `import` and `tail` share.
#[derive(clap::Args)]
pub struct ReadArgs {
    /// The log format, or auto to tell it from each file's first lines:
    /// common, combined, vhost-combined, nginx-json, w3c, xferlog, vsftpd, proftpd, sftp, syslog (several programs,
    /// each line read by its own: sftp-server's and vsftpd's), ndjson, cloudevents.
    #[arg(long, default_value = "auto")]
    format: String,
    #[command(flatten)]
    pub lines: LineArgs,
    /// Calls per request to the server.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
}

/// Whose calls the lines are, and how to read their times and classify them:
/// shared by `import`, `tail` and `audit` (which names its log format `--log-format`,
/// its `--format` being the report's).
#[derive(clap::Args)]
pub struct LineArgs {
    /// Every call is this account's.
    #[arg(long, conflicts_with = "account_from")]
    pub account: Option<String>,
    /// Where each call's account comes from: host (first label of the host name) or user:MAPFILE.
    #[arg(long)]
    pub account_from: Option<String>,
    /// IANA time zone of times written without one (xferlog, vsftpd, syslog).
    #[arg(long, default_value = "UTC")]
    timezone: String,
    /// A name mixed into the id of every line, for servers that could write byte-identical lines
    /// (ids are made of a line's bytes and its count among identical lines; the same name makes the same ids).
    #[arg(long)]
    source_id: Option<String>,
    /// Config file whose [import] tables (routes, user agents, overrides, WebDAV) to use
    /// [default: ./callmeter.toml if present].
    #[arg(long, env = "CALLMETER_CONFIG")]
    pub config: Option<PathBuf>,
}

impl ReadArgs {
    fn options(&self, config: &ServerOptions, strict: bool) -> Result<ReadOptions> {
        self.lines.options(&self.format, config, strict, self.batch)
    }
}

impl LineArgs {
    /// The reading options for log format `format` (a name, or `auto`).
    pub fn options(&self, format: &str, config: &ServerOptions, strict: bool, batch: usize) -> Result<ReadOptions> {
        let format = match format {
            "auto" => None,
            name => Some(name.parse::<Format>()?),
        };
        let accounts = match (&self.account, &self.account_from) {
            (Some(name), _) => AccountRule::fixed(name)?,
            (None, Some(spec)) => AccountRule::from_spec(&spec.parse::<AccountFrom>()?)?,
            (None, None) => AccountRule::Unset,
        };
        let timezone =
            self.timezone.parse().map_err(|_| anyhow::anyhow!("{:?} is not an IANA time zone", self.timezone))?;
        let tables = config.import.clone().unwrap_or_default();
        let classifier = Classifier::new(&tables).context("the [import] tables of the config file")?;
        Ok(ReadOptions {
            format,
            accounts,
            timezone,
            source_id: self.source_id.clone(),
            classifier: Arc::new(classifier),
            strict,
            batch: batch.clamp(1, callmeter_server::MAX_EVENTS_PER_REQUEST),
        })
    }
}

/// The config file named, else `./callmeter.toml` when present, else nothing.
pub fn load_config(path: Option<&Path>) -> Result<ServerOptions> {
    Ok(match path {
        Some(path) => ServerOptions::from_file(path)?,
        None if Path::new("callmeter.toml").exists() => ServerOptions::from_file(Path::new("callmeter.toml"))?,
        None => ServerOptions::default(),
    })
}

/// Where `import` delivers.
#[derive(clap::Args)]
pub struct ImportTarget {
    /// Write straight into this data folder instead of a server (no server may be running on it).
    #[arg(long, conflicts_with_all = ["server", "dry_run"])]
    data: Option<PathBuf>,
    /// The server's base URL.
    #[arg(long, env = "CALLMETER_SERVER")]
    server: Option<String>,
    /// A token with the ingest scope [default: the admin token in ./callmeter-data/admin-token].
    #[arg(long, env = "CALLMETER_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Read and classify only: deliver nothing, print what would be imported.
    #[arg(long)]
    dry_run: bool,
    /// Give up on a server that stays unreachable this long, in seconds.
    #[arg(long, default_value_t = 300)]
    retry_for: u64,
}

/// `callmeter import`.
pub fn import(files: &[PathBuf], read: &ReadArgs, target: ImportTarget, strict: bool, json: bool) -> Result<()> {
    let config = load_config(read.lines.config.as_deref())?;
    let options = read.options(&config, strict)?;
    if files.iter().filter(|f| f.as_os_str() == "-").count() > 1 {
        bail!("standard input (-) can be read once");
    }
    let mut sink: Option<Box<dyn Sink>> = if target.dry_run {
        None
    } else if let Some(data) = &target.data {
        let settings = ServerOptions { data: Some(data.clone()), ..Default::default() }.merge(config).resolve()?;
        let opened = StoreSink::open(data, settings.store)
            .with_context(|| format!("cannot open the data folder {} (is a server running on it?)", data.display()))?;
        Some(Box::new(opened))
    } else {
        let server = target.server.unwrap_or_else(|| "http://127.0.0.1:8080".into());
        let token = match target.token {
            Some(t) => t,
            None => ServerArgs::admin_token_in(Path::new("callmeter-data"))?,
        };
        Some(Box::new(ServerSink::new(&server, &token, Some(Duration::from_secs(target.retry_for)))?))
    };
    let bar = progress_bar();
    let mut summary = Summary::default();
    let mut outcome = Ok(());
    for file in files {
        // A file that cannot be opened, or whose format cannot be told, is refused whole; the others are read.
        let input = match callmeter_import::Input::open(file) {
            Ok(input) => input,
            Err(e) => {
                refuse(&mut summary, &file.display().to_string(), &e);
                continue;
            }
        };
        let name = input.name.clone();
        match callmeter_import::import_input(input, &options, sink.as_deref_mut(), &mut summary, &bar) {
            Ok(()) => {}
            Err(e @ ImportError::UnknownFormat { .. }) => refuse(&mut summary, &name, &e),
            Err(e) => {
                outcome = Err(e);
                break;
            }
        }
    }
    bar.finish_and_clear();
    // With --data, this closes the store; every delivered call was synced before its answer.
    drop(sink);
    if json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!("{summary}");
        if target.dry_run {
            println!("(dry run: nothing was delivered)");
        }
    }
    outcome?;
    refused_files(&summary)
}

/// Counts a file refused whole in the summary, and says so now.
pub fn refuse(summary: &mut Summary, file: &str, e: &ImportError) {
    tracing::warn!(file, error = %e, "file refused; reading the others");
    summary.refuse_file(file, e.about_the_file());
}

/// An error (a non-zero exit, once the rest is read and reported) when some file was refused whole.
pub fn refused_files(summary: &Summary) -> Result<()> {
    match summary.refused_files.as_slice() {
        [] => Ok(()),
        refused => {
            let names: Vec<&str> = refused.iter().map(|r| r.file.as_str()).collect();
            bail!(
                "{} file{} refused and not read: {}",
                refused.len(),
                if refused.len() == 1 { " was" } else { "s were" },
                names.join(", ")
            )
        }
    }
}

/// A progress bar on standard error when it is a terminal, else a hidden one.
pub fn progress_bar() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {bytes}/{total_bytes} eta {eta} {msg}").expect("valid template"),
    );
    bar
}

/// `callmeter tail`.
pub fn tail(files: Vec<PathBuf>, read: &ReadArgs, server: ServerArgs, checkpoint: PathBuf, poll_ms: u64) -> Result<()> {
    let config = load_config(read.lines.config.as_deref())?;
    let options = read.options(&config, false)?;
    let (url, token) = server.url_and_token()?;
    let sink = ServerSink::new(&url, &token, None)?;
    let options = TailOptions {
        read: options,
        checkpoint,
        poll: Duration::from_millis(poll_ms.max(10)),
        rotate_grace: Duration::from_secs(5),
    };
    let mut tailer = Tailer::new(files, options, Box::new(sink))?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, stop.clone())?;
    }
    tracing::info!(server = %url, "tailing");
    tailer.run(&stop)?;
    println!("{}", tailer.summary());
    Ok(())
}
