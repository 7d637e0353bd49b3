//! `callmeter webhooks create --from-audit ACCOUNT --url URL`: from audit to
//! webhook. The server audits the account's current period so far (`GET
//! …/audit`, made for the request); each `polling` finding names the webhook
//! that would replace it (`webhook`: a folder and its actions). One
//! subscription per folder (the actions of every finding on it together),
//! none where a webhook to this URL watches the folder already; each asked
//! for on the terminal unless `--yes`.

use crate::client::segment;
use crate::webhooks::{path, print_created};
use anyhow::Result;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, Write};

/// A webhook the audit proposes, with the findings it would replace.
struct Proposal {
    actions: Vec<String>,
    findings: Vec<String>,
    avoidable_calls: u64,
}

/// The proposals of an audit's polling findings, by folder.
fn proposals(audit: &Value) -> BTreeMap<String, Proposal> {
    let mut out: BTreeMap<String, Proposal> = BTreeMap::new();
    for f in audit["findings"].as_array().into_iter().flatten().filter(|f| f["kind"] == "polling") {
        let Some(folder) = f["webhook"]["folder"].as_str() else { continue };
        let p =
            out.entry(folder.to_owned()).or_insert(Proposal { actions: vec![], findings: vec![], avoidable_calls: 0 });
        for a in f["webhook"]["actions"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            if !p.actions.iter().any(|x| x == a) {
                p.actions.push(a.to_owned());
            }
        }
        let avoidable = f["avoidable_calls"].as_u64().unwrap_or(0);
        p.avoidable_calls += avoidable;
        p.findings.push(format!(
            "{} polls {} every {:.0} s: {avoidable} avoidable calls",
            source_words(&f["source"]),
            f["path"].as_str().unwrap_or(""),
            f["interval_secs"].as_f64().unwrap_or(0.0),
        ));
    }
    out
}

/// A finding's source in words: its api key, user, or client.
fn source_words(source: &Value) -> String {
    let s = |k: &str| source[k].as_str().unwrap_or("").to_owned();
    match source["by"].as_str() {
        Some("api_key") => format!("api key {}", s("api_key")),
        Some("user") => format!("user {}", s("user")),
        _ => format!("client {} {}", s("client_ip"), s("user_agent")).trim_end().to_owned(),
    }
}

/// Asks on the terminal; anything but y or yes (or the end of input) is no.
fn confirm(question: &str) -> Result<bool> {
    print!("{question} [y/N] ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
}

/// Creates the webhooks `account`'s audit proposes, each with `body`'s url, headers and state.
pub fn create(api: &crate::client::Api, account: &str, body: &Value, yes: bool) -> Result<()> {
    let audit = api.get_json(&format!("/v1/accounts/{}/audit", segment(account)?), &[])?;
    let proposed = proposals(&audit);
    if proposed.is_empty() {
        println!("the audit of {account} finds no polling: no webhook to propose");
        return Ok(());
    }
    let existing = api.get_json(&path(account, "")?, &[])?;
    let url = body["url"].as_str().unwrap_or("");
    let (mut created, mut skipped) = (0, 0);
    for (folder, p) in &proposed {
        println!("webhook on {folder} ({}), in place of:", p.actions.join(","));
        for f in &p.findings {
            println!("  {f}");
        }
        // The server keeps the URL as it parsed it (`http://h` becomes `http://h/`).
        let watched = existing["webhooks"].as_array().into_iter().flatten().any(|w| {
            w["folder"].as_str() == Some(folder)
                && w["url"].as_str().map(|u| u.trim_end_matches('/')) == Some(url.trim_end_matches('/'))
        });
        if watched {
            println!("  already subscribed: skipped");
            skipped += 1;
            continue;
        }
        if !yes && !confirm(&format!("create it (about {} calls fewer)?", p.avoidable_calls))? {
            skipped += 1;
            continue;
        }
        let mut post = body.clone();
        post["folder"] = json!(folder);
        post["actions"] = json!(p.actions);
        let v: Value = api.send(api.request(Method::POST, &path(account, "")?).json(&post))?.json()?;
        print_created(&v);
        created += 1;
    }
    println!("{created} created, {skipped} not created");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_webhook_per_folder_with_the_actions_of_every_finding_on_it() {
        let audit = json!({"findings": [
            {"kind": "polling", "source": {"by": "api_key", "api_key": "k1"}, "path": "/in", "interval_secs": 30.0,
             "avoidable_calls": 100, "webhook": {"folder": "/in", "actions": ["create", "update"]}},
            {"kind": "polling", "source": {"by": "user", "user": "bob"}, "path": "/in/a.csv", "interval_secs": 60.0,
             "avoidable_calls": 50, "webhook": {"folder": "/in", "actions": ["update", "destroy"]}},
            {"kind": "duplicate_requests", "path": "/out", "avoidable_calls": 7},
            {"kind": "polling", "path": "/old", "avoidable_calls": 9}
        ]});
        let p = proposals(&audit);
        assert_eq!(p.keys().collect::<Vec<_>>(), ["/in"], "a finding without a webhook (an older audit) proposes none");
        assert_eq!(p["/in"].actions, ["create", "update", "destroy"]);
        assert_eq!(p["/in"].avoidable_calls, 150);
        assert_eq!(p["/in"].findings[0], "api key k1 polls /in every 30 s: 100 avoidable calls");
        assert_eq!(p["/in"].findings[1], "user bob polls /in/a.csv every 60 s: 50 avoidable calls");
    }
}
