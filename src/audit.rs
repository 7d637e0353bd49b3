//! `callmeter audit` and `callmeter simulate`: where an account's calls come
//! from and which could go away (DESIGN §6), read from log files, a data
//! folder or a running server; and a seeded workload with its truth to try it on.
//!
//! The analysis is `callmeter-audit`'s; this module only feeds it calls, one
//! at a time in time order, so memory stays flat however many there are.

use crate::import::{load_config, LineArgs};
use anyhow::{bail, Context, Result};
use callmeter_audit::simulate::{self, ScenarioShape};
use callmeter_audit::{AuditReport, Auditor};
use callmeter_import::{Delivery, Sink, Summary};
use callmeter_model::CallEvent;
use callmeter_server::ServerOptions;
use callmeter_store::{CallFilter, EmbeddedStore, Position, Store, StoreOptions, StoredCall};
use chrono::{DateTime, NaiveDate, Utc};
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

/// How the report is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// Tables for a terminal: the findings, biggest waste first, each with what to do.
    Text,
    /// The DESIGN §6 JSON object.
    Json,
    /// One self-contained HTML page with charts (no network needed to open it).
    Html,
}

/// `callmeter audit`'s flags.
#[derive(clap::Args)]
pub struct AuditArgs {
    /// Log files to audit (any format import reads; plain, .gz or .zst), oldest first, or - for standard input.
    #[arg(required_unless_present_any = ["data", "server"], conflicts_with_all = ["data", "server"])]
    files: Vec<PathBuf>,
    /// The files' log format, or auto to tell it from each file's first lines (as import does).
    #[arg(long, default_value = "auto")]
    log_format: String,
    #[command(flatten)]
    lines: LineArgs,
    /// Audit the account's calls stored in this data folder (no server may be running on it).
    #[arg(long, conflicts_with = "server")]
    data: Option<PathBuf>,
    /// Audit the account's calls streamed from this server (GET /v1/accounts/{a}/calls?format=ndjson).
    #[arg(long)]
    server: Option<String>,
    /// A token that may read the account, for --server [default: the admin token in ./callmeter-data/admin-token].
    #[arg(long, env = "CALLMETER_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Calls at or after this time: RFC 3339, or a date (UTC midnight).
    #[arg(long)]
    from: Option<String>,
    /// Calls before this time: RFC 3339, or a date (UTC midnight).
    #[arg(long)]
    to: Option<String>,
    /// The report: text, json or html.
    #[arg(long, value_enum, default_value = "text")]
    format: ReportFormat,
    /// Write the report to this file instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Entries one list request returns, to cost listings logged as one line [default: [audit] list_page_size, 10000].
    #[arg(long)]
    list_page_size: Option<u64>,
}

/// A time flag: RFC 3339, or a date meaning its UTC midnight.
fn parse_time(flag: &str, v: Option<&str>) -> Result<Option<DateTime<Utc>>> {
    let Some(v) = v else { return Ok(None) };
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    match NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        Ok(d) => Ok(Some(d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc())),
        Err(_) => bail!("--{flag} {v:?} is neither an RFC 3339 time nor a date (YYYY-MM-DD)"),
    }
}

/// `callmeter audit`.
pub fn audit(args: AuditArgs) -> Result<()> {
    let options = load_config(args.lines.config.as_deref())?;
    let settings = options.clone().resolve()?;
    let mut config = settings.audit.config.clone();
    if let Some(n) = args.list_page_size {
        config.list_page_size = n;
    }
    let from = parse_time("from", args.from.as_deref())?;
    let to = parse_time("to", args.to.as_deref())?;
    if let (Some(f), Some(t)) = (from, to) {
        if f >= t {
            bail!("--from must be before --to");
        }
    }
    let mut auditor =
        Auditor::new(config)?.range(from, to).plans(&settings.store.plans).billing_rules(settings.store.rules.clone());
    if args.data.is_some() {
        auditor = auditor.in_time_order(); // the store's request log is in time order
    }
    if let Some(a) = &args.lines.account {
        auditor = auditor.account(a);
    }

    if let Some(data) = &args.data {
        let account = needs_account(&args, "--data")?;
        audit_store(&mut auditor, data, &account, from, to, settings.store)?;
    } else if let Some(server) = &args.server {
        let account = needs_account(&args, "--server")?;
        audit_server(&mut auditor, server, args.token.clone(), &account, from, to)?;
    } else {
        audit_files(&mut auditor, &args, &options)?;
    }

    let report = auditor.finish();
    if report.calls == 0 {
        eprintln!(
            "no calls to audit{}",
            if report.skipped_calls > 0 {
                format!(" ({} outside the range or of other accounts)", report.skipped_calls)
            } else {
                String::new()
            }
        );
    }
    write_report(&report, args.format, args.out.as_deref())
}

fn needs_account(args: &AuditArgs, mode: &str) -> Result<String> {
    if args.lines.account_from.is_some() {
        bail!("{mode} audits one account: give --account, not --account-from");
    }
    args.lines.account.clone().with_context(|| format!("{mode} needs --account"))
}

/// Renders the report and writes it to `out`, or standard output.
fn write_report(report: &AuditReport, format: ReportFormat, out: Option<&Path>) -> Result<()> {
    let text = match format {
        ReportFormat::Text => callmeter_audit::to_text(report),
        ReportFormat::Json => serde_json::to_string_pretty(report)? + "\n",
        ReportFormat::Html => callmeter_audit::to_html(report),
    };
    match out {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!(
                "wrote {} ({} calls, {} findings, {:.1}× fewer calls with every recommendation applied)",
                path.display(),
                report.calls,
                report.findings.len(),
                report.what_if.factor
            );
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(text.as_bytes()).context("cannot write the report")?;
            stdout.flush()?;
        }
    }
    Ok(())
}

/// The reading side of [`audit_pipelined`]: hands batches of calls to the
/// auditing thread, and frees (or reuses) the ones it has audited, so that
/// memory is freed on the thread that allocated it and reused at once.
struct Feed<T> {
    to_auditor: std::sync::mpsc::SyncSender<Vec<T>>,
    audited: std::sync::mpsc::Receiver<Vec<T>>,
}

impl<T> Feed<T> {
    /// Hands `batch` over and returns an empty vector to fill next (an audited
    /// batch's, when one is back); `None` once the auditor has stopped.
    fn send(&mut self, batch: Vec<T>) -> Option<Vec<T>> {
        let mut spare = None;
        for mut done in self.audited.try_iter() {
            done.clear();
            spare = Some(done);
        }
        self.to_auditor.send(batch).ok()?;
        Some(spare.unwrap_or_default())
    }
}

/// Reads batches of calls with `read` on one thread and audits them on this
/// one: reading (parsing logs, decoding blocks) and auditing each get a core.
fn audit_pipelined<T: Send>(
    auditor: &mut Auditor,
    event: fn(&T) -> &CallEvent,
    read: impl FnOnce(&mut Feed<T>) -> Result<()> + Send,
) -> Result<()> {
    let (to_auditor, batches) = std::sync::mpsc::sync_channel::<Vec<T>>(4);
    let (give_back, audited) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        // The feed moves into the reader, so the batches end when it does.
        let reader = scope.spawn(move || read(&mut Feed { to_auditor, audited }));
        for batch in batches {
            for item in &batch {
                auditor.push(event(item));
            }
            let _ = give_back.send(batch);
        }
        reader.join().unwrap_or_else(|_| bail!("the reader panicked"))
    })
}

/// The calls of log files go to the auditor instead of a store: every call accepted.
impl Sink for Feed<CallEvent> {
    fn deliver(&mut self, events: &mut Vec<CallEvent>) -> callmeter_import::Result<Vec<Delivery>> {
        let n = events.len();
        // A stopped auditor has panicked: joining it reports that.
        if let Some(next) = self.send(std::mem::take(events)) {
            *events = next;
        }
        Ok(vec![Delivery::Accepted; n])
    }
}

/// Reads the files as `import` does (format detection, ids, accounts, time
/// zone, classifier) on one thread, and audits their calls on this one.
fn audit_files(auditor: &mut Auditor, args: &AuditArgs, options: &ServerOptions) -> Result<()> {
    if args.files.iter().filter(|f| f.as_os_str() == "-").count() > 1 {
        bail!("standard input (-) can be read once");
    }
    let read = args.lines.options(&args.log_format, options, false, 1_000)?;
    let bar = crate::import::progress_bar();
    let mut summary = Summary::default();
    audit_pipelined(
        auditor,
        |e| e,
        |feed| {
            args.files.iter().try_for_each(|file| {
                let input = callmeter_import::Input::open(file)?;
                callmeter_import::import_input(input, &read, Some(feed), &mut summary, &bar)
                    .with_context(|| format!("reading {}", file.display()))
            })
        },
    )?;
    bar.finish_and_clear();
    if summary.rejected > 0 {
        let reasons: Vec<String> =
            summary.reasons.iter().map(|(reason, r)| format!("{reason} {} (first: {})", r.count, r.example)).collect();
        eprintln!(
            "{} of {} lines were not calls and were left out: {}",
            summary.rejected,
            summary.lines,
            reasons.join("; ")
        );
    }
    Ok(())
}

/// The engine's block cache while `audit --data` scans a data folder.
const AUDIT_CACHE_BYTES: u64 = 16 << 20;

/// Scans the account's calls in the data folder, in time order: one thread
/// reads and decodes pages while this one audits them.
fn audit_store(
    auditor: &mut Auditor,
    data: &Path,
    account: &str,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    options: StoreOptions,
) -> Result<()> {
    // Opening makes a store where there is none: an audit must not leave one behind a typo.
    if !data.is_dir() {
        bail!("no data folder at {}", data.display());
    }
    // One pass over the calls reads each block once: a big cache would only
    // fill with blocks never read again.
    let store = EmbeddedStore::open(data, StoreOptions { cache_bytes: AUDIT_CACHE_BYTES, ..options })
        .with_context(|| format!("cannot open the data folder {} (is a server running on it?)", data.display()))?;
    if store.account(account).is_none() {
        store.shutdown();
        bail!("no account {account:?} in {}", data.display());
    }
    let filter = CallFilter { from, to, ..CallFilter::default() };
    let (store_ref, filter) = (&store, &filter);
    let scanned = audit_pipelined(
        auditor,
        |(_, call): &(Position, StoredCall)| &call.event,
        move |feed| {
            let mut after = None;
            loop {
                let page = store_ref.calls(account, filter, after, 10_000)?;
                let next = page.next;
                if feed.send(page.calls).is_none() {
                    return Ok(()); // the auditor stopped
                }
                match next {
                    Some(p) => after = Some(p),
                    None => return Ok(()),
                }
            }
        },
    );
    store.shutdown();
    scanned.with_context(|| format!("reading the calls of {account} in {}", data.display()))
}

/// Streams the account's calls from a server as NDJSON: constant memory whatever the range.
fn audit_server(
    auditor: &mut Auditor,
    server: &str,
    token: Option<String>,
    account: &str,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<()> {
    let token = match token {
        Some(t) => t,
        None => crate::client::ServerArgs::admin_token_in(Path::new("callmeter-data"))?,
    };
    let api = crate::client::Api::streaming(server, token)?;
    let base = api.base();
    let mut query = vec![("format", "ndjson".to_owned())];
    let rfc = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    query.extend(from.map(|t| ("from", rfc(t))));
    query.extend(to.map(|t| ("to", rfc(t))));
    let resp = api.send(api.request(reqwest::Method::GET, &format!("/v1/accounts/{account}/calls")).query(&query))?;
    // The server's calls carry their ids and accounts: nothing is filled in.
    let ctx = callmeter_formats::Context::new(callmeter_formats::AccountRule::Unset);
    let reader = BufReader::with_capacity(1 << 20, resp);
    let summary = callmeter_audit::audit_log(auditor, callmeter_formats::Format::Ndjson, ctx, reader)
        .with_context(|| format!("reading the calls of {account} from {base}"))?;
    if summary.bad_lines > 0 {
        bail!(
            "the server sent {} lines that are not call events, the first: {}",
            summary.bad_lines,
            summary.first_errors.first().map(String::as_str).unwrap_or("")
        );
    }
    Ok(())
}

/// Which log formats `simulate` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SimFormat {
    /// Canonical call events, every field (calls.ndjson).
    Ndjson,
    /// An Apache/nginx Combined access log of the calls as REST requests (access.log).
    Combined,
    /// A vsftpd log with log_ftp_protocol=YES (vsftpd.log).
    Vsftpd,
    /// An OpenSSH sftp-server log at VERBOSE through syslog (sftp.log).
    Sftp,
}

impl SimFormat {
    fn file_name(self) -> &'static str {
        match self {
            SimFormat::Ndjson => "calls.ndjson",
            SimFormat::Combined => "access.log",
            SimFormat::Vsftpd => "vsftpd.log",
            SimFormat::Sftp => "sftp.log",
        }
    }
}

/// A count or a range of counts, `N` or `MIN-MAX`.
#[derive(Debug, Clone, Copy)]
pub struct CountRange(u64, u64);

impl std::str::FromStr for CountRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{s:?} is not a number or a range MIN-MAX");
        match s.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (a.trim().parse().map_err(|_| bad())?, b.trim().parse().map_err(|_| bad())?);
                if a > b {
                    return Err(bad());
                }
                Ok(CountRange(a, b))
            }
            None => s.trim().parse().map(|n| CountRange(n, n)).map_err(|_| bad()),
        }
    }
}

/// `callmeter simulate`'s flags.
#[derive(clap::Args)]
pub struct SimulateArgs {
    /// The seed: the same seed and start give the same calls.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The folder to write into (made when missing).
    #[arg(long)]
    out: PathBuf,
    /// Which files to write, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "ndjson,combined,vsftpd,sftp")]
    formats: Vec<SimFormat>,
    /// How long the traffic runs, in hours.
    #[arg(long, default_value_t = 48.0)]
    hours: f64,
    /// When it starts: RFC 3339 or a date [default: midnight UTC, as many whole days ago as the traffic lasts].
    #[arg(long)]
    start: Option<String>,
    /// The account.
    #[arg(long, default_value = "acme")]
    account: String,
    /// Entries a list request returns [default: 2500 or 10000, picked by the seed].
    #[arg(long)]
    page_size: Option<u64>,
    /// Pollers, N or MIN-MAX [default: 2-5].
    #[arg(long)]
    pollers: Option<CountRange>,
    /// Sources uploading batches with a listing after each upload, N or MIN-MAX [default: 1-2].
    #[arg(long)]
    uploaders: Option<CountRange>,
    /// Clients that send every request twice, N or MIN-MAX [default: 1-2].
    #[arg(long)]
    duplicate_clients: Option<CountRange>,
    /// People browsing at random (never waste), N or MIN-MAX [default: 2-5].
    #[arg(long)]
    people: Option<CountRange>,
}

/// `callmeter simulate`.
pub fn simulate(args: SimulateArgs) -> Result<()> {
    if !(args.hours.is_finite() && args.hours > 0.0 && args.hours <= 24.0 * 366.0) {
        bail!("--hours must be above 0 and at most a year");
    }
    let start = match parse_time("start", args.start.as_deref())? {
        Some(t) => t,
        // Whole days back from today's midnight: the traffic is over, recent enough for any store's
        // retention, and the same all day long.
        None => {
            let today = Utc::now().date_naive().and_hms_opt(0, 0, 0).expect("midnight exists").and_utc();
            today - chrono::Duration::days((args.hours / 24.0).ceil() as i64)
        }
    };
    if !callmeter_model::is_valid_account(&args.account) {
        bail!("--account {:?} is not an account name ([a-z0-9][a-z0-9._-]{{0,63}})", args.account);
    }
    let mut shape =
        ScenarioShape { account: args.account.clone(), start, hours: args.hours, ..ScenarioShape::default() };
    if let Some(p) = args.page_size {
        if p == 0 {
            bail!("--page-size must be at least 1");
        }
        shape.page_sizes = vec![p];
    }
    let set = |slot: &mut (u64, u64), r: Option<CountRange>| {
        if let Some(CountRange(a, b)) = r {
            *slot = (a, b);
        }
    };
    set(&mut shape.pollers, args.pollers);
    set(&mut shape.uploaders, args.uploaders);
    set(&mut shape.duplicate_clients, args.duplicate_clients);
    set(&mut shape.people, args.people);

    let mut sim = simulate::scenario(args.seed, &shape);
    // Ids name the seed and the start, so that several runs can go into one store without
    // their calls being taken for duplicates of each other.
    let prefix = format!("sim{}-{}", args.seed, start.timestamp());
    for (i, e) in sim.events.iter_mut().enumerate() {
        e.id = format!("{prefix}-{}", i + 1);
    }
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot make {}", args.out.display()))?;
    let mut formats = args.formats.clone();
    formats.dedup();
    for format in &formats {
        let path = args.out.join(format.file_name());
        let file = std::fs::File::create(&path).with_context(|| format!("cannot write {}", path.display()))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        match format {
            SimFormat::Ndjson => simulate::write_ndjson(&sim.events, &mut out),
            SimFormat::Combined => simulate::write_combined(&sim.events, &mut out),
            SimFormat::Vsftpd => simulate::write_vsftpd(&sim.events, &mut out),
            SimFormat::Sftp => simulate::write_sftp(&sim.events, &mut out),
        }
        .with_context(|| format!("writing {}", path.display()))?;
        out.flush().with_context(|| format!("writing {}", path.display()))?;
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        println!("wrote {:<40} {:>9} KiB", path.display(), size.div_ceil(1024));
    }
    let truth_path = args.out.join("truth.json");
    let truth = serde_json::to_vec_pretty(&sim.truth)?;
    std::fs::write(&truth_path, truth).with_context(|| format!("cannot write {}", truth_path.display()))?;
    let t = &sim.truth;
    let end = start + chrono::Duration::milliseconds((args.hours * 3_600_000.0) as i64);
    println!("wrote {}", truth_path.display());
    println!(
        "\n{} calls of account {} from {} to {}, {} entries a list page",
        t.calls,
        t.account,
        start.to_rfc3339(),
        end.to_rfc3339(),
        t.list_page_size
    );
    println!("the waste it holds (truth.json):");
    for p in &t.patterns {
        println!(
            "  {:<18} {:<32} {:>9} avoidable  {} ({})",
            p.kind.as_str(),
            p.path,
            p.avoidable_calls,
            p.source,
            p.note
        );
    }
    println!("and {} people browsing at random, who are not waste", t.people.len());
    let dir = args.out.display();
    println!("\naudit it:");
    for format in &formats {
        let account = if *format == SimFormat::Ndjson { String::new() } else { format!(" --account {}", t.account) };
        println!("  callmeter audit {dir}/{}{account} --list-page-size {}", format.file_name(), t.list_page_size);
    }
    Ok(())
}
