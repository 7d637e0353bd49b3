//! `callmeter alerts ACCOUNT`: the usage alerts an account's usage fired
//! (DESIGN §7), newest first, through the server's API.

use crate::client::{segment, Api};
use anyhow::Result;
use serde_json::Value;

/// Prints an account's alerts, newest first, `limit` at most.
pub fn alerts(api: &Api, account: &str, limit: usize, json: bool) -> Result<()> {
    let query = [("per_page", limit.clamp(1, 1_000).to_string())];
    let v = api.get_json(&format!("/v1/accounts/{}/alerts", segment(account)?), &query)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!("{:<6} {:<24} {:<22} {:>8}  what", "id", "type", "fired", "used");
    for a in v["alerts"].as_array().into_iter().flatten() {
        println!(
            "{:<6} {:<24} {:<22} {:>7.1}%  {}",
            a["id"],
            a["type"].as_str().unwrap_or(""),
            a["fired_at"].as_str().unwrap_or("").get(..19).unwrap_or(""),
            a["percent_used"].as_f64().unwrap_or(0.0),
            what(a)
        );
        if let Some(summary) = a["top_finding"]["summary"].as_str() {
            println!("{:>66}{summary}", "");
        }
    }
    Ok(())
}

/// What an alert says, in a few words.
fn what(a: &Value) -> String {
    match a["type"].as_str() {
        Some("usage.threshold_reached") => {
            format!("{} % of {} calls reached", a["threshold_percent"], a["included_calls"])
        }
        Some("usage.projected_overage") => format!(
            "{} calls projected; the allowance runs out {}",
            a["projected_calls"],
            a["projected_overage_at"].as_str().unwrap_or("").get(..10).unwrap_or("")
        ),
        Some("usage.spike") => {
            format!(
                "{} calls on {} (median {})",
                a["day_calls"],
                a["day"].as_str().unwrap_or(""),
                a["trailing_median_calls"]
            )
        }
        _ => String::new(),
    }
}
