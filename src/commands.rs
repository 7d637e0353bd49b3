//! What each subcommand does.

use crate::client::Api;
use anyhow::{bail, Context, Result};
use callmeter_server::{ServerOptions, MAX_BODY_BYTES};
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::Method;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `callmeter serve`.
pub fn serve(config: Option<PathBuf>, options: ServerOptions) -> Result<()> {
    let file = match config {
        Some(path) => ServerOptions::from_file(&path)?,
        None if Path::new("callmeter.toml").exists() => ServerOptions::from_file(Path::new("callmeter.toml"))?,
        None => ServerOptions::default(),
    };
    let settings = options.merge(file).resolve()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(callmeter_server::serve(settings))?;
    Ok(())
}

/// `callmeter import`: canonical NDJSON in batches, retried while the server is unavailable.
pub fn import(file: &Path, api: &Api, batch: usize) -> Result<()> {
    let batch = batch.clamp(1, callmeter_server::MAX_EVENTS_PER_REQUEST);
    let (reader, size): (Box<dyn Read>, Option<u64>) = if file == Path::new("-") {
        (Box::new(std::io::stdin()), None)
    } else {
        let f = std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
        let size = f.metadata().ok().map(|m| m.len());
        (Box::new(f), size)
    };
    let bar = match size {
        Some(n) => ProgressBar::new(n).with_style(
            ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {per_sec} eta {eta}").expect("template"),
        ),
        None => ProgressBar::new_spinner(),
    };
    let mut totals = Summary::default();
    let mut lines = BufReader::new(reader);
    let mut body = Vec::new();
    let mut first_line = 1u64;
    let mut line_no = 0u64;
    let mut events = 0usize;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = lines.read_until(b'\n', &mut buf)?;
        if n > 0 {
            line_no += 1;
            bar.inc(n as u64);
            if buf.iter().all(|b| b.is_ascii_whitespace()) {
                continue;
            }
            if body.len() + buf.len() > MAX_BODY_BYTES {
                send_batch(api, &mut body, first_line, &mut totals)?;
                events = 0;
                first_line = line_no;
            }
            if events == 0 {
                first_line = line_no;
            }
            body.extend_from_slice(&buf);
            if !buf.ends_with(b"\n") {
                body.push(b'\n');
            }
            events += 1;
        }
        if (n == 0 && events > 0) || events == batch {
            send_batch(api, &mut body, first_line, &mut totals)?;
            events = 0;
        }
        if n == 0 {
            break;
        }
    }
    bar.finish_and_clear();
    totals.print(line_no);
    Ok(())
}

#[derive(Default)]
struct Summary {
    accepted: u64,
    duplicates: u64,
    rejected: BTreeMap<String, Vec<u64>>,
}

impl Summary {
    fn print(&self, lines: u64) {
        println!("lines read:  {lines}");
        println!("imported:    {}", self.accepted);
        println!("duplicates:  {}", self.duplicates);
        let rejected: usize = self.rejected.values().map(Vec::len).sum();
        println!("rejected:    {rejected}");
        for (reason, at) in &self.rejected {
            let first: Vec<String> = at.iter().take(20).map(u64::to_string).collect();
            println!("  {reason}: {} (lines {})", at.len(), first.join(", "));
        }
    }
}

/// Sends one NDJSON batch; retries with backoff on 503 and connection errors (ids make retries safe).
fn send_batch(api: &Api, body: &mut Vec<u8>, first_line: u64, totals: &mut Summary) -> Result<()> {
    let payload = std::mem::take(body);
    let mut delay = Duration::from_millis(200);
    let answer: Value = loop {
        let req = api
            .request(Method::POST, "/v1/events")
            .header("content-type", "application/x-ndjson")
            .body(payload.clone());
        match req.send() {
            Ok(resp) if resp.status().is_success() => break resp.json()?,
            Ok(resp) if resp.status().as_u16() == 503 => {}
            Ok(resp) => {
                let status = resp.status();
                bail!("server answered {status}: {}", resp.text().unwrap_or_default());
            }
            Err(e) if e.is_connect() || e.is_timeout() => {
                tracing::warn!(error = %e, "server unreachable; retrying");
            }
            Err(e) => return Err(e.into()),
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_secs(30));
    };
    totals.accepted += answer["accepted"].as_u64().unwrap_or(0);
    totals.duplicates += answer["duplicates"].as_u64().unwrap_or(0);
    // The server numbers events in the batch; blank lines were skipped, so map back through the body.
    let line_of: Vec<u64> =
        (first_line..).zip(payload.split(|b| *b == b'\n')).filter(|(_, l)| !l.is_empty()).map(|(n, _)| n).collect();
    for r in answer["results"].as_array().into_iter().flatten() {
        if r["status"] == "rejected" {
            let idx = r["index"].as_u64().unwrap_or(0) as usize;
            let reason = r["error"].as_str().or(r["reason"].as_str()).unwrap_or("rejected");
            let key = r["reason"].as_str().unwrap_or(reason).to_owned();
            totals.rejected.entry(key).or_default().push(line_of.get(idx).copied().unwrap_or(0));
        }
    }
    Ok(())
}

/// `callmeter usage`.
pub fn usage(api: &Api, account: &str, period: &str, json: bool) -> Result<()> {
    let v = api.get_json(&format!("/v1/accounts/{account}/usage"), &[("period", period.to_owned())])?;
    if json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let n = |k: &str| v[k].as_u64().unwrap_or(0);
    println!(
        "account       {}   plan {}   zone {}",
        v["account"].as_str().unwrap_or(""),
        v["plan"].as_str().unwrap_or(""),
        v["timezone"].as_str().unwrap_or("")
    );
    if let Some(p) = v.get("period") {
        let state = if p["closed"].as_bool().unwrap_or(false) { "closed" } else { "open" };
        println!(
            "period        {} .. {} ({state}, closes {})",
            p["start"].as_str().unwrap_or(""),
            p["end"].as_str().unwrap_or(""),
            p["closes_at"].as_str().unwrap_or("")
        );
    }
    println!("calls         {:>14}", n("calls"));
    println!("  billable    {:>14}", n("billable_calls"));
    println!("  not billable{:>14}", n("non_billable_calls"));
    println!("  late        {:>14}", n("late_calls"));
    println!("  read/write  {:>14} / {}", n("read_calls"), n("write_calls"));
    println!("adjustments   {:>14}", v["adjustments"].as_i64().unwrap_or(0));
    println!(
        "billed        {:>14} of {} included, {} remaining",
        n("billed_calls"),
        n("included_calls"),
        n("remaining_calls")
    );
    let o = &v["overage"];
    println!(
        "overage       {:>14} calls, {} blocks, {} {} (minor units)",
        o["calls"],
        o["blocks"],
        o["price"],
        o["currency"].as_str().unwrap_or("")
    );
    if let Some(p) = v.get("projected_calls") {
        println!("projected     {p:>14}");
    }
    println!("by interface:");
    for (name, c) in v["by_interface"].as_object().into_iter().flatten() {
        println!("  {name:<10}{:>14} calls {:>14} billable", c["calls"], c["billable_calls"]);
    }
    Ok(())
}

/// `callmeter calls`.
pub fn calls(api: &Api, account: &str, filters: &[(&str, Option<String>)], limit: usize, json: bool) -> Result<()> {
    let mut query: Vec<(&str, String)> = filters.iter().filter_map(|(k, v)| v.clone().map(|v| (*k, v))).collect();
    query.push(("per_page", limit.clamp(1, 10_000).to_string()));
    let v = api.get_json(&format!("/v1/accounts/{account}/calls"), &query)?;
    let calls = v["calls"].as_array().cloned().unwrap_or_default();
    if json {
        for c in calls {
            println!("{c}");
        }
        return Ok(());
    }
    println!("{:<30} {:<8} {:<7} {:<6} {:<40} source", "time", "iface", "op", "status", "path");
    for c in &calls {
        let s = |k: &str| c[k].as_str().unwrap_or("").to_owned();
        let source = [s("api_key"), s("user"), s("client_ip")].into_iter().find(|x| !x.is_empty()).unwrap_or_default();
        println!(
            "{:<30} {:<8} {:<7} {:<6} {:<40} {}",
            s("time"),
            s("interface"),
            s("operation"),
            c["status"].as_i64().map(|x| x.to_string()).unwrap_or_default(),
            s("path"),
            source
        );
    }
    if let Some(next) = v["next_cursor"].as_str() {
        println!("(more: cursor {next})");
    }
    Ok(())
}

/// `callmeter accounts`.
pub fn accounts(api: &Api, json: bool) -> Result<()> {
    let v = api.get_json("/v1/accounts", &[])?;
    if json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!("{:<32} {:<12} {:<20} created", "account", "plan", "zone");
    for a in v["accounts"].as_array().into_iter().flatten() {
        let term = a["schedule"]["terms"].as_array().and_then(|t| t.last()).cloned().unwrap_or_default();
        println!(
            "{:<32} {:<12} {:<20} {}",
            a["name"].as_str().unwrap_or(""),
            term["plan"].as_str().unwrap_or(""),
            term["rule"]["tz"].as_str().unwrap_or(""),
            a["created_at"].as_str().unwrap_or("")
        );
    }
    Ok(())
}

/// What `callmeter tokens` does.
#[derive(clap::Subcommand)]
pub enum TokenAction {
    /// List tokens (never their secrets).
    List,
    /// Make a token: admin, ingest or support; or an account key with --account.
    Create {
        /// admin, ingest or support.
        #[arg(long, default_value = "ingest")]
        scope: String,
        /// Make a key for this account instead.
        #[arg(long)]
        account: Option<String>,
        /// A note.
        #[arg(long, default_value = "")]
        label: String,
    },
    /// Revoke a token by id.
    Revoke {
        /// The token's id.
        id: String,
    },
    /// Replace the admin token; prints the new one.
    RotateAdmin,
}

/// `callmeter tokens`.
pub fn tokens(api: &Api, action: TokenAction) -> Result<()> {
    match action {
        TokenAction::List => {
            let v = api.get_json("/v1/tokens", &[])?;
            println!("{:<14} {:<10} {:<24} label", "id", "scope", "account");
            for t in v["tokens"].as_array().into_iter().flatten() {
                println!(
                    "{:<14} {:<10} {:<24} {}",
                    t["id"].as_str().unwrap_or(""),
                    t["scope"].as_str().unwrap_or(""),
                    t["account"].as_str().unwrap_or(""),
                    t["label"].as_str().unwrap_or("")
                );
            }
        }
        TokenAction::Create { scope, account, label } => {
            let req = match account {
                Some(a) => api
                    .request(Method::POST, &format!("/v1/accounts/{a}/keys"))
                    .json(&serde_json::json!({ "label": label })),
                None => {
                    api.request(Method::POST, "/v1/tokens").json(&serde_json::json!({ "scope": scope, "label": label }))
                }
            };
            let v: Value = api.send(req)?.json()?;
            println!("id:     {}", v["token"]["id"].as_str().unwrap_or(""));
            println!("secret: {}  (shown once)", v["secret"].as_str().unwrap_or(""));
        }
        TokenAction::Revoke { id } => {
            api.send(api.request(Method::DELETE, &format!("/v1/tokens/{id}")))?;
            println!("revoked {id}");
        }
        TokenAction::RotateAdmin => {
            let v: Value = api.send(api.request(Method::POST, "/v1/admin/rotate-token"))?.json()?;
            println!("new admin token: {}", v["secret"].as_str().unwrap_or(""));
        }
    }
    Ok(())
}

/// `callmeter backup`.
pub fn backup(api: &Api, dir: &Path) -> Result<()> {
    let dir = std::path::absolute(dir)?;
    let v: Value =
        api.send(api.request(Method::POST, "/v1/admin/backup").json(&serde_json::json!({ "dir": dir })))?.json()?;
    println!(
        "backup written to {}: {} rows, {} bytes, format version {}",
        dir.display(),
        v["rows"],
        v["bytes"],
        v["format_version"]
    );
    Ok(())
}
