//! `callmeter audit` and `callmeter simulate`: where an account's calls come
//! from and which could go away (DESIGN §6), read from log files, a data
//! folder or a running server; and a seeded workload with its truth to try it on.
//!
//! The analysis is `callmeter-audit`'s; this module only feeds it calls, one
//! at a time in time order, so memory stays flat however many there are.
//! Several log files are one stream merged by time ([`log_files`]).

mod log_files;

use crate::client::segment;
use crate::import::{load_config, LineArgs};
use anyhow::{bail, Context, Result};
use callmeter_audit::simulate::{self, ScenarioShape};
use callmeter_audit::{log_file_order, AuditConfig, AuditReport, Auditor, SeenIds, TimeMerge};
use callmeter_import::Summary;
use callmeter_model::{CallEvent, Interface};
use callmeter_server::ServerOptions;
use callmeter_store::{CallFilter, EmbeddedStore, Position, Store, StoreOptions, StoredCall};
use chrono::{DateTime, NaiveDate, Utc};
use log_files::LogFile;
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
    /// Log files to audit (any format import reads, each told from its content; plain, .gz or .zst), in any
    /// order, or - for standard input. All of them are one stream merged by time: an upload in an SFTP server's
    /// log ends the waste of a poller in an HTTP server's log. The rotated files of one log are told by their
    /// names (access.log, access.log.1, access.log.2.gz, access.log-20261102.gz) and read oldest first; a call
    /// read twice (a log given with its rotated or gzipped copy) counts once, as import would count it.
    #[arg(required_unless_present_any = ["data", "server"], conflicts_with_all = ["data", "server"])]
    files: Vec<PathBuf>,
    /// The log format of every file, or auto to tell each file's from its first lines (as import does; logs of
    /// several formats, an HTTP and an SFTP server's, need auto).
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
    /// Entries one list request returns, to cost listings logged as one line [default: with --data or --server,
    /// the account's own list_page_size where one is set; else [audit] list_page_size, 10000].
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
    let from = parse_time("from", args.from.as_deref())?;
    let to = parse_time("to", args.to.as_deref())?;
    if let (Some(f), Some(t)) = (from, to) {
        if f >= t {
            bail!("--from must be before --to");
        }
    }
    // The page size: the flag's, else the account's own (when the store knows it), else [audit]'s.
    let auditor_for = |account_page_size: Option<u64>| -> Result<Auditor> {
        let mut config: AuditConfig = settings.audit.config.clone();
        if let Some(n) = args.list_page_size.or(account_page_size) {
            config.list_page_size = n;
        }
        let mut auditor = Auditor::new(config)?
            .range(from, to)
            .plans(&settings.store.plans)
            .billing_rules(settings.store.rules.clone());
        if args.data.is_some() {
            auditor = auditor.in_time_order(); // the store's request log is in time order
        }
        if let Some(a) = &args.lines.account {
            auditor = auditor.account(a);
        }
        Ok(auditor)
    };

    // Files refused whole (their format cannot be told): the others are audited, and the exit says so.
    let mut read = Summary::default();
    let auditor = if let Some(data) = &args.data {
        let account = needs_account(&args, "--data")?;
        audit_store(auditor_for, data, &account, from, to, settings.store.clone())?
    } else if let Some(server) = &args.server {
        let account = needs_account(&args, "--server")?;
        audit_server(auditor_for, server, args.token.clone(), &account, from, to)?
    } else {
        let mut auditor = auditor_for(None)?;
        read = audit_files(&mut auditor, &args, &options)?;
        auditor
    };

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
    write_report(&report, args.format, args.out.as_deref())?;
    crate::import::refused_files(&read)
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

/// Calls handed to the auditing thread at a time.
const BATCH: usize = 1_000;

/// Reads the files as `import` does (format detection, ids, accounts, time
/// zone, classifier), merged by time into one stream with each call once, on
/// one thread, and audits their calls on this one. Returns what reading found.
fn audit_files(auditor: &mut Auditor, args: &AuditArgs, options: &ServerOptions) -> Result<Summary> {
    if args.files.iter().filter(|f| f.as_os_str() == "-").count() > 1 {
        bail!("standard input (-) can be read once");
    }
    let read = args.lines.options(&args.log_format, options, false, BATCH)?;
    let bar = crate::import::progress_bar();
    let mut summary = Summary::default();
    let mut read_twice = 0u64;
    let (summary_ref, read_twice_ref, read, bar_ref) = (&mut summary, &mut read_twice, &read, &bar);
    audit_pipelined(
        auditor,
        |e| e,
        move |feed| {
            let progress = log_files::Progress::default();
            let files = args.files.iter().map(|f| LogFile::probe(f, read, &progress)).collect::<Result<Vec<_>>>()?;
            bar_ref.set_length(files.iter().filter_map(|f| f.size).sum());
            let inputs = files.into_iter().map(|f| (log_file_order(f.name()), f)).collect();
            let mut merged = TimeMerge::new(inputs);
            let mut seen = SeenIds::default();
            let mut batch = Vec::with_capacity(BATCH);
            let mut calls = 0u64;
            for c in merged.by_ref() {
                let c = c?;
                if !seen.first_time(&c) {
                    *read_twice_ref += 1;
                    continue;
                }
                batch.push(c);
                if batch.len() == BATCH {
                    let Some(next) = feed.send(std::mem::take(&mut batch)) else { return Ok(()) };
                    batch = next;
                    calls += BATCH as u64;
                    if calls.is_multiple_of(16 * BATCH as u64) {
                        bar_ref.set_position(log_files::bytes_read(&progress));
                        bar_ref.set_message(format!("{calls} calls"));
                    }
                }
            }
            if !batch.is_empty() {
                feed.send(batch);
            }
            for file in merged.into_inputs() {
                log_files::add_summary(summary_ref, file.summary());
            }
            Ok(())
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
    if read_twice > 0 {
        eprintln!(
            "{read_twice} calls had an id already read (a log given with its copy, overlapping rotations, or an id \
             repeated) and were counted once"
        );
    }
    if !summary.empty_files.is_empty() {
        eprintln!("no line to read yet (empty): {}", summary.empty_files.join(", "));
    }
    for r in &summary.refused_files {
        eprintln!("{} was refused and left out of the audit: {}", r.file, r.why);
    }
    Ok(summary)
}

/// The engine's block cache while `audit --data` scans a data folder.
const AUDIT_CACHE_BYTES: u64 = 16 << 20;

/// Scans the account's calls in the data folder, in time order: one thread
/// reads and decodes pages while this one audits them.
fn audit_store(
    auditor_for: impl FnOnce(Option<u64>) -> Result<Auditor>,
    data: &Path,
    account: &str,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    options: StoreOptions,
) -> Result<Auditor> {
    // Opening makes a store where there is none: an audit must not leave one behind a typo.
    if !data.is_dir() {
        bail!("no data folder at {}", data.display());
    }
    // One pass over the calls reads each block once: a big cache would only
    // fill with blocks never read again.
    let store = EmbeddedStore::open(data, StoreOptions { cache_bytes: AUDIT_CACHE_BYTES, ..options })
        .with_context(|| format!("cannot open the data folder {} (is a server running on it?)", data.display()))?;
    let Some(record) = store.account(account) else {
        store.shutdown();
        bail!("no account {account:?} in {}", data.display());
    };
    let mut auditor = match auditor_for(record.list_page_size) {
        Ok(a) => a,
        Err(e) => {
            store.shutdown();
            return Err(e);
        }
    };
    let filter = CallFilter { from, to, ..CallFilter::default() };
    let (store_ref, filter) = (&store, &filter);
    let scanned = audit_pipelined(
        &mut auditor,
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
    scanned.with_context(|| format!("reading the calls of {account} in {}", data.display()))?;
    Ok(auditor)
}

/// Streams the account's calls from a server as NDJSON: constant memory whatever the range.
fn audit_server(
    auditor_for: impl FnOnce(Option<u64>) -> Result<Auditor>,
    server: &str,
    token: Option<String>,
    account: &str,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<Auditor> {
    let token = match token {
        Some(t) => t,
        None => crate::client::ServerArgs::admin_token_in(Path::new("callmeter-data"))?,
    };
    let api = crate::client::Api::streaming(server, token)?;
    let base = api.base();
    let record = api.get_json(&format!("/v1/accounts/{}", segment(account)?), &[])?;
    let mut auditor = auditor_for(record["list_page_size"].as_u64())?;
    let mut query = vec![("format", "ndjson".to_owned())];
    let rfc = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    query.extend(from.map(|t| ("from", rfc(t))));
    query.extend(to.map(|t| ("to", rfc(t))));
    let resp = api
        .send(api.request(reqwest::Method::GET, &format!("/v1/accounts/{}/calls", segment(account)?)).query(&query))?;
    // The server's calls carry their ids and accounts: nothing is filled in.
    let ctx = callmeter_formats::Context::new(callmeter_formats::AccountRule::Unset);
    let reader = BufReader::with_capacity(1 << 20, resp);
    let summary = callmeter_audit::audit_log(&mut auditor, callmeter_formats::Format::Ndjson, ctx, reader)
        .with_context(|| format!("reading the calls of {account} from {base}"))?;
    if summary.bad_lines > 0 {
        bail!(
            "the server sent {} lines that are not call events, the first: {}",
            summary.bad_lines,
            summary.first_errors.first().map(String::as_str).unwrap_or("")
        );
    }
    Ok(auditor)
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
    /// Two logs to audit together: the SFTP calls as an sftp-server log (sftp-server.log), every other call as a
    /// Combined log (http-access.log).
    Split,
}

/// A writer of calls as a log.
type LogWriter = fn(&[CallEvent], &mut BufWriter<std::fs::File>) -> Result<(), callmeter_audit::AuditError>;

impl SimFormat {
    /// The files it writes: each name, which calls go into it (all, or the SFTP ones or the others), and how.
    fn files(self) -> Vec<(&'static str, Option<bool>, LogWriter)> {
        match self {
            SimFormat::Ndjson => vec![("calls.ndjson", None, |e, o| simulate::write_ndjson(e, o))],
            SimFormat::Combined => vec![("access.log", None, |e, o| simulate::write_combined(e, o))],
            SimFormat::Vsftpd => vec![("vsftpd.log", None, |e, o| simulate::write_vsftpd(e, o))],
            SimFormat::Sftp => vec![("sftp.log", None, |e, o| simulate::write_sftp(e, o))],
            SimFormat::Split => vec![
                ("http-access.log", Some(false), |e, o| simulate::write_combined(e, o)),
                ("sftp-server.log", Some(true), |e, o| simulate::write_sftp(e, o)),
            ],
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
    #[arg(long, value_enum, value_delimiter = ',', default_value = "ndjson,combined,vsftpd,sftp,split")]
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
    for (name, sftp, write) in formats.iter().flat_map(|f| f.files()) {
        let path = args.out.join(name);
        let file = std::fs::File::create(&path).with_context(|| format!("cannot write {}", path.display()))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        let part: Vec<CallEvent>;
        let events = match sftp {
            None => &sim.events,
            Some(sftp) => {
                part = sim.events.iter().filter(|e| (e.interface == Interface::Sftp) == sftp).cloned().collect();
                &part
            }
        };
        write(events, &mut out).with_context(|| format!("writing {}", path.display()))?;
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
    println!(
        "and {} retries after 503 and 429 answers (retries_after_errors), which are not waste either",
        t.retries_after_errors
    );
    let dir = args.out.display();
    println!("\naudit it:");
    for format in &formats {
        let account = if *format == SimFormat::Ndjson { String::new() } else { format!(" --account {}", t.account) };
        let files: Vec<String> = format.files().iter().map(|(name, ..)| format!("{dir}/{name}")).collect();
        println!("  callmeter audit {}{account} --list-page-size {}", files.join(" "), t.list_page_size);
    }
    Ok(())
}
