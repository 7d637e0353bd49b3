//! What each subcommand does.

use crate::client::{segment, Api};
use anyhow::{Context, Result};
use callmeter_model::Money;
use callmeter_server::ServerOptions;
use reqwest::Method;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// `callmeter serve`.
pub fn serve(config: Option<PathBuf>, options: ServerOptions) -> Result<()> {
    let file = crate::import::load_config(config.as_deref())?;
    let settings = options.merge(file).resolve()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(callmeter_server::serve(settings))?;
    Ok(())
}

/// `callmeter usage`.
pub fn usage(api: &Api, account: &str, period: &str, json: bool) -> Result<()> {
    let v = api.get_json(&format!("/v1/accounts/{}/usage", segment(account)?), &[("period", period.to_owned())])?;
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
    // A JSON value ignores the width: numbers are printed as u64.
    let count = |c: &Value, k: &str| c[k].as_u64().unwrap_or(0);
    let o = &v["overage"];
    let price = Money::new(count(o, "price"), o["currency"].as_str().unwrap_or(""));
    println!("overage       {:>14} calls, {} blocks, {price}", count(o, "calls"), count(o, "blocks"));
    if let Some(p) = v.get("projected_calls").and_then(Value::as_u64) {
        println!("projected     {p:>14}");
    }
    println!("by interface:");
    for (name, c) in v["by_interface"].as_object().into_iter().flatten() {
        println!("  {name:<10}{:>14} calls {:>14} billable", count(c, "calls"), count(c, "billable_calls"));
    }
    Ok(())
}

/// `callmeter calls`.
pub fn calls(api: &Api, account: &str, filters: &[(&str, Option<String>)], limit: usize, json: bool) -> Result<()> {
    let mut query: Vec<(&str, String)> = filters.iter().filter_map(|(k, v)| v.clone().map(|v| (*k, v))).collect();
    query.push(("per_page", limit.clamp(1, 10_000).to_string()));
    let v = api.get_json(&format!("/v1/accounts/{}/calls", segment(account)?), &query)?;
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
                    .request(Method::POST, &format!("/v1/accounts/{}/keys", segment(&a)?))
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
            api.send(api.request(Method::DELETE, &format!("/v1/tokens/{}", segment(&id)?)))?;
            println!("revoked {id}");
        }
        TokenAction::RotateAdmin => {
            let v: Value = api.send(api.request(Method::POST, "/v1/admin/rotate-token"))?.json()?;
            println!("new admin token: {}", v["secret"].as_str().unwrap_or(""));
        }
    }
    Ok(())
}

/// `callmeter backup`. The server takes only absolute paths (its working
/// directory is not the operator's): a relative one is made absolute here.
pub fn backup(api: &Api, dir: &Path) -> Result<()> {
    let dir = std::path::absolute(dir).with_context(|| format!("backup folder {}", dir.display()))?;
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
