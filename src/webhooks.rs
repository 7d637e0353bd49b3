//! `callmeter webhooks`: an account's webhook subscriptions (to a folder's
//! changes, or to its usage alerts), their deliveries, redelivery and replay,
//! through the server's API (DESIGN §7). `create --from-audit` subscribes to
//! the folders the account's audit finds polled (`from_audit.rs`).

use crate::client::{segment, Api};
use anyhow::{bail, Result};
use reqwest::Method;
use serde_json::{json, Map, Value};

/// What `callmeter webhooks` does.
#[derive(clap::Subcommand)]
pub enum WebhookAction {
    /// Subscribe a URL to a folder (subfolders included), to the account's usage alerts (`--events`),
    /// or to the folders its audit finds polled (`--from-audit ACCOUNT`); prints each signing secret once.
    Create {
        /// The account.
        #[arg(required_unless_present = "from_audit")]
        account: Option<String>,
        /// The target (http or https; public addresses only unless the server allows private ones).
        #[arg(long)]
        url: String,
        /// The folder [default: /, the whole account].
        #[arg(long, conflicts_with = "events")]
        folder: Option<String>,
        /// Comma-separated: create, update, destroy, move, copy, read [default: all but read].
        #[arg(long, value_delimiter = ',', conflicts_with = "events")]
        actions: Option<Vec<String>>,
        /// Usage alerts instead of a folder's changes, comma-separated: usage.threshold_reached,
        /// usage.projected_overage, usage.spike, or `all`.
        #[arg(long, value_delimiter = ',')]
        events: Option<Vec<String>>,
        /// The account whose audit (its current period so far, made by the server now) names the
        /// polled folders: one webhook each, in place of the polling.
        #[arg(long, value_name = "ACCOUNT", conflicts_with_all = ["account", "folder", "actions", "events"])]
        from_audit: Option<String>,
        /// With --from-audit: create them all without asking.
        #[arg(long, requires = "from_audit")]
        yes: bool,
        /// A header added to every delivery, `Name: value` (repeatable, at most 10).
        #[arg(long = "header")]
        headers: Vec<String>,
        /// Make it disabled (events are kept, not sent).
        #[arg(long)]
        disabled: bool,
    },
    /// An account's webhooks.
    List {
        /// The account.
        account: String,
        /// Print the server's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Change a webhook; what is not given stays.
    Update {
        /// The account.
        account: String,
        /// The webhook's id.
        id: String,
        /// A new target.
        #[arg(long)]
        url: Option<String>,
        /// A new folder.
        #[arg(long)]
        folder: Option<String>,
        /// New actions, comma-separated.
        #[arg(long, value_delimiter = ',')]
        actions: Option<Vec<String>>,
        /// Watch these usage alerts instead, comma-separated (or `all`).
        #[arg(long, value_delimiter = ',', conflicts_with_all = ["folder", "actions"])]
        events: Option<Vec<String>>,
        /// New headers, `Name: value` (replace all; repeatable).
        #[arg(long = "header")]
        headers: Vec<String>,
        /// Remove every custom header.
        #[arg(long, conflicts_with = "headers")]
        no_headers: bool,
        /// Enable it (clears the reason it was disabled).
        #[arg(long, conflicts_with = "disable")]
        enable: bool,
        /// Disable it (events are kept, to be replayed).
        #[arg(long)]
        disable: bool,
    },
    /// Delete a webhook.
    Delete {
        /// The account.
        account: String,
        /// The webhook's id.
        id: String,
    },
    /// A webhook's delivery attempts, newest first.
    Deliveries {
        /// The account.
        account: String,
        /// The webhook's id.
        id: String,
        /// How many at most (1 to 1,000).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u16).range(1..=1_000))]
        limit: u16,
        /// Attempts before this attempt id (the next page).
        #[arg(long)]
        before: Option<u64>,
        /// Print the server's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Send one delivery again (with the same webhook-id).
    Redeliver {
        /// The account.
        account: String,
        /// The webhook's id.
        id: String,
        /// The delivery's id (from `deliveries`).
        delivery: u64,
    },
    /// Send again every event that arrived since a time (kept while disabled, or delivered).
    Replay {
        /// The account.
        account: String,
        /// The webhook's id.
        id: String,
        /// RFC 3339 time.
        #[arg(long)]
        since: String,
    },
    /// Make a new signing secret; the old one still signs for 24 hours. Prints the new one once.
    RotateSecret {
        /// The account.
        account: String,
        /// The webhook's id.
        id: String,
    },
}

fn headers_json(headers: &[String]) -> Result<Value> {
    let mut out = Map::new();
    for h in headers {
        let Some((name, value)) = h.split_once(':') else { bail!("--header {h:?}: give it as `Name: value`") };
        out.insert(name.trim().to_owned(), Value::String(value.trim().to_owned()));
    }
    Ok(Value::Object(out))
}

/// A comma-separated list's names as JSON, each trimmed (`create, update`
/// is `create,update`), so that a space does not make an unknown name.
fn names(list: &[String]) -> Result<Value> {
    let names: Vec<&str> = list.iter().map(|n| n.trim()).collect();
    if names.iter().any(|n| n.is_empty()) {
        bail!("an empty name in {:?}: give names separated by commas", list.join(","));
    }
    Ok(json!(names))
}

/// `/v1/accounts/{account}/webhooks`, then `rest` (made of [`segment`]s).
pub(crate) fn path(account: &str, rest: &str) -> Result<String> {
    Ok(format!("/v1/accounts/{}/webhooks{rest}", segment(account)?))
}

/// Prints a created webhook's id and its secret (shown this once).
pub(crate) fn print_created(v: &Value) {
    println!("id:     {}", v["webhook"]["id"].as_str().unwrap_or(""));
    println!(
        "secret: {}  (shown once: verify each delivery's webhook-signature with it)",
        v["secret"].as_str().unwrap_or("")
    );
}

/// A webhook's line: id, folder (`alerts` for an alert subscription),
/// actions (its events), url, state.
fn webhook_row(w: &Value) -> [String; 5] {
    let s = |k: &str| w[k].as_str().unwrap_or("").to_owned();
    let names = |k: &str| -> Vec<&str> { w[k].as_array().into_iter().flatten().filter_map(Value::as_str).collect() };
    let (folder, actions) = match w.get("events") {
        Some(_) => ("alerts".to_owned(), names("events")),
        None => (s("folder"), names("actions")),
    };
    let state = if w["enabled"].as_bool().unwrap_or(false) {
        "enabled".to_owned()
    } else {
        format!("disabled ({})", w["disabled_reason"].as_str().unwrap_or("by its owner"))
    };
    [s("id"), folder, actions.join(","), s("url"), state]
}

/// Webhooks as a table, each column as wide as its longest value, under
/// a heading line if `heading`.
fn print_webhooks<'w>(webhooks: impl IntoIterator<Item = &'w Value>, heading: bool) {
    let head = ["id", "folder", "actions", "url", "state"].map(str::to_owned);
    let rows: Vec<[String; 5]> =
        heading.then_some(head).into_iter().chain(webhooks.into_iter().map(webhook_row)).collect();
    let width = |c: usize| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0);
    let widths = [width(0), width(1), width(2), width(3)];
    for [id, folder, actions, url, state] in &rows {
        let [a, b, c, d] = widths;
        println!("{id:<a$}  {folder:<b$}  {actions:<c$}  {url:<d$}  {state}");
    }
}

/// `callmeter webhooks`.
pub fn webhooks(api: &Api, action: WebhookAction) -> Result<()> {
    match action {
        WebhookAction::Create { account, url, folder, actions, events, from_audit, yes, headers, disabled } => {
            let mut body = json!({ "url": url, "enabled": !disabled, "headers": headers_json(&headers)? });
            if let Some(account) = from_audit {
                return crate::from_audit::create(api, &account, &body, yes);
            }
            let Some(account) = account else { bail!("give the account, or --from-audit ACCOUNT") };
            if let Some(f) = folder {
                body["folder"] = json!(f);
            }
            if let Some(a) = actions {
                body["actions"] = names(&a)?;
            }
            if let Some(e) = events {
                body["events"] = names(&e)?;
            }
            let v: Value = api.send(api.request(Method::POST, &path(&account, "")?).json(&body))?.json()?;
            print_created(&v);
        }
        WebhookAction::List { account, json } => {
            let v = api.get_json(&path(&account, "")?, &[])?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            print_webhooks(v["webhooks"].as_array().into_iter().flatten(), true);
        }
        WebhookAction::Update { account, id, url, folder, actions, events, headers, no_headers, enable, disable } => {
            let mut body = Map::new();
            if let Some(u) = url {
                body.insert("url".into(), json!(u));
            }
            if let Some(f) = folder {
                body.insert("folder".into(), json!(f));
            }
            if let Some(a) = actions {
                body.insert("actions".into(), names(&a)?);
            }
            if let Some(e) = events {
                body.insert("events".into(), names(&e)?);
            }
            if !headers.is_empty() || no_headers {
                body.insert("headers".into(), headers_json(&headers)?);
            }
            if enable || disable {
                body.insert("enabled".into(), json!(enable));
            }
            let req =
                api.request(Method::PATCH, &path(&account, &format!("/{}", segment(&id)?))?).json(&Value::Object(body));
            let v: Value = api.send(req)?.json()?;
            print_webhooks([&v["webhook"]], false);
        }
        WebhookAction::Delete { account, id } => {
            api.send(api.request(Method::DELETE, &path(&account, &format!("/{}", segment(&id)?))?))?;
            println!("deleted {id}");
        }
        WebhookAction::Deliveries { account, id, limit, before, json } => {
            let mut query = vec![("per_page", limit.clamp(1, 1_000).to_string())];
            if let Some(b) = before {
                query.push(("before", b.to_string()));
            }
            let v = api.get_json(&path(&account, &format!("/{}/deliveries", segment(&id)?))?, &query)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            println!(
                "{:<8} {:<9} {:<30} {:<9} {:<5} {:>8}  {:<30} error",
                "attempt", "delivery", "at", "status", "code", "ms", "next try"
            );
            for a in v["attempts"].as_array().into_iter().flatten() {
                // (As strings: a JSON value prints with no padding.)
                println!(
                    "{:<8} {:<9} {:<30} {:<9} {:<5} {:>8}  {:<30} {}",
                    a["id"].to_string(),
                    a["delivery"].to_string(),
                    a["at"].as_str().unwrap_or(""),
                    a["status"].as_str().unwrap_or(""),
                    a["response_code"].as_u64().map(|c| c.to_string()).unwrap_or_default(),
                    a["latency_ms"].to_string(),
                    a["next_attempt_at"].as_str().unwrap_or("–"),
                    a["error"].as_str().unwrap_or("")
                );
            }
            if let Some(next) = v["next_before"].as_u64() {
                println!("(more: --before {next})");
            }
        }
        WebhookAction::Redeliver { account, id, delivery } => {
            let req = api.request(
                Method::POST,
                &path(&account, &format!("/{}/deliveries/{delivery}/redeliver", segment(&id)?))?,
            );
            api.send(req)?;
            println!("delivery {delivery} will be sent again");
        }
        WebhookAction::Replay { account, id, since } => {
            let req = api
                .request(Method::POST, &path(&account, &format!("/{}/replay", segment(&id)?))?)
                .json(&json!({ "since": since }));
            let v: Value = api.send(req)?.json()?;
            println!("{} events will be sent again", v["replaying"]);
            // The server took the time (RFC 3339) already: only a hint if it is yet to come.
            let ahead = chrono::DateTime::parse_from_rfc3339(&since).is_ok_and(|t| t > chrono::Utc::now());
            if ahead && v["replaying"] == 0 {
                eprintln!("note: --since {since} is in the future: no event has arrived after it yet");
            }
        }
        WebhookAction::RotateSecret { account, id } => {
            let req = api.request(Method::POST, &path(&account, &format!("/{}/rotate-secret", segment(&id)?))?);
            let v: Value = api.send(req)?.json()?;
            println!(
                "secret: {}  (shown once; the previous one still signs for 24 hours)",
                v["secret"].as_str().unwrap_or("")
            );
        }
    }
    Ok(())
}
