//! The waste an alert points at: the top finding of the account's latest
//! kept daily audit (`schedule.rs`), in one sentence. An alert says how much
//! is used, and this says what could go: "62 % of your calls are a 30 s poll
//! of /inbound; a webhook would save 81,000 calls".

use callmeter_audit::Finding;
use callmeter_store::{Store, WasteFinding};
use chrono::NaiveDate;
use serde::Deserialize;

/// How far back the latest kept audit is looked for: about a period.
const LOOKBACK_DAYS: u32 = 35;

/// The parts of a kept report the finding needs; the rest is skipped unread.
#[derive(Deserialize)]
struct KeptAudit {
    calls: u64,
    findings: Vec<Finding>,
}

/// The top finding of the latest audit kept for `account` on or before
/// `today` (UTC days); `None` when there is none, or it found no waste.
pub fn top_finding(store: &dyn Store, account: &str, today: NaiveDate) -> Option<WasteFinding> {
    let (day, json) = (0..=LOOKBACK_DAYS).find_map(|back| {
        let day = today - chrono::Duration::days(back.into());
        match store.audit(account, day) {
            Ok(Some(json)) => Some((day, json)),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(account, %day, error = %e, "cannot read a kept audit for an alert");
                None
            }
        }
    })?;
    let kept: KeptAudit = match serde_json::from_slice(&json) {
        Ok(k) => k,
        Err(e) => {
            tracing::warn!(account, %day, error = %e, "a kept audit does not read");
            return None;
        }
    };
    // Findings come biggest waste first.
    let top = kept.findings.first()?;
    let share = if kept.calls == 0 { 0.0 } else { top.calls as f64 * 100.0 / kept.calls as f64 };
    Some(WasteFinding {
        audit_day: day,
        kind: top.kind().as_str().to_owned(),
        source: top.source.key.to_string(),
        path: top.path.clone(),
        calls: top.calls,
        share_percent: (share * 10.0).round() / 10.0,
        avoidable_calls: top.avoidable_calls,
        summary: top.summary(kept.calls),
        recommendation: top.recommendation.clone(),
    })
}
