//! The audit's answer, in the JSON shape of DESIGN §6: `{"account", "from",
//! "to", "calls", "billable_calls", "findings": […], "top_sources": {…},
//! "what_if": {…}}`. The shape is a public interface: fields are only ever added.

use crate::source::Source;
use crate::timeline::Timeline;
use crate::top_sources::TopSources;
use crate::what_if::WhatIf;
use callmeter_model::{Action, Operation};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The audit of one account over a time range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditReport {
    /// The account audited (the first call's, unless the auditor was told).
    pub account: Option<String>,
    /// Start of the range: as asked, else the first call's time.
    pub from: Option<DateTime<Utc>>,
    /// End of the range: as asked, else the last call's time.
    pub to: Option<DateTime<Utc>>,
    /// Calls audited.
    pub calls: u64,
    /// Of those, the billable ones (by the billing rules at each call's time).
    pub billable_calls: u64,
    /// What could go away, biggest waste first.
    pub findings: Vec<Finding>,
    /// Where the calls come from.
    pub top_sources: TopSources,
    /// The calls with every recommendation applied.
    pub what_if: WhatIf,
    /// Calls fed to the auditor but left out: another account's, or outside the range.
    #[serde(default)]
    pub skipped_calls: u64,
    /// Calls over time, in total and for the biggest sources (for charts).
    #[serde(default)]
    pub timeline: Timeline,
    /// Repeats of a request whose answer failed (408, 429, 5xx, no answer)
    /// within the duplicate window: retries, as the recommendations ask; not
    /// avoidable, and in no finding.
    #[serde(default)]
    pub retries_after_errors: u64,
}

/// The kinds of finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// The same source repeating list, stat or read of one path at a regular interval.
    Polling,
    /// A source listing a folder after each upload into it during a batch.
    ListAfterWrite,
    /// Identical requests repeated within a short window with nothing in between.
    DuplicateRequests,
}

impl FindingKind {
    /// The name used in the JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::Polling => "polling",
            FindingKind::ListAfterWrite => "list_after_write",
            FindingKind::DuplicateRequests => "duplicate_requests",
        }
    }
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One pattern of waste: who, where, how many calls, how many could go, and what to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Who makes the calls.
    pub source: Source,
    /// The path they are about (for duplicates: the folder all of them are under).
    pub path: String,
    /// Their operation; `null` when they mix operations.
    pub operation: Option<Operation>,
    /// The calls the finding covers.
    pub calls: u64,
    /// The calls that would go away with the recommendation applied.
    pub avoidable_calls: u64,
    /// Of those, the billable ones.
    #[serde(default)]
    pub avoidable_billable_calls: u64,
    /// What to do, in plain words.
    pub recommendation: String,
    /// The kind, and what is particular to it.
    #[serde(flatten)]
    pub details: FindingDetails,
}

impl Finding {
    /// The finding's kind.
    pub fn kind(&self) -> FindingKind {
        match self.details {
            FindingDetails::Polling { .. } => FindingKind::Polling,
            FindingDetails::ListAfterWrite { .. } => FindingKind::ListAfterWrite,
            FindingDetails::DuplicateRequests { .. } => FindingKind::DuplicateRequests,
        }
    }
}

/// What each kind of finding adds; `kind` names it in the JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FindingDetails {
    /// A poller.
    Polling {
        /// The period between polls, in seconds (the median interval).
        interval_secs: f64,
        /// Polls seen (a multi-page listing is one poll).
        polls: u64,
        /// Polls that found a change since the one before.
        polls_with_change: u64,
        /// Intervals longer than the missed-poll limit: pauses, left out of the score
        /// (an estimate when the stream had more intervals than the sample keeps).
        pauses: u64,
        /// The regularity score, 0–1.
        regularity: f64,
        /// Bowley skew of the intervals (folded onto the period).
        bowley_skew: f64,
        /// Median absolute deviation of the intervals, over their median.
        relative_mad: f64,
        /// Share of the intervals (pauses left out) within tolerance of one period.
        fit: f64,
        /// The webhook that would replace the polling (`callmeter webhooks create --from-audit`);
        /// absent from audits kept by builds before it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        webhook: Option<ProposedWebhook>,
    },
    /// Listing after each upload.
    ListAfterWrite {
        /// Batches of uploads with more than one listing.
        batches: u64,
        /// Uploads in those batches.
        uploads: u64,
        /// Listings in those batches.
        listings: u64,
        /// The most entries a listing of the folder returned (from `result_count`).
        entries: u64,
        /// Requests the last listing took.
        pages_per_listing: u64,
    },
    /// Retries or loops.
    DuplicateRequests {
        /// Repeated requests (the avoidable ones).
        duplicates: u64,
        /// The window they came within, in seconds.
        window_secs: f64,
    },
}

/// A webhook subscription that would replace a poller: the folder the
/// recommendation names (the polled folder, or the folder of a polled file)
/// and the actions that are changes to it (DESIGN §7: every change but reads).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposedWebhook {
    /// The folder to subscribe to (subfolders included).
    pub folder: String,
    /// The actions to be told of.
    pub actions: Vec<Action>,
}

impl ProposedWebhook {
    /// A webhook on `folder` for every change the audit counts as one (write, delete, move, copy, mkdir).
    pub fn on(folder: &str) -> ProposedWebhook {
        let actions = vec![Action::Create, Action::Update, Action::Destroy, Action::Move, Action::Copy];
        ProposedWebhook { folder: callmeter_model::normalize_path(folder).into_owned(), actions }
    }
}

impl Finding {
    /// The finding in one sentence for whoever pays for the calls: its
    /// share of `total_calls`, what the calls are, and what the
    /// recommendation saves ("62 % of your calls are a 30 s poll of
    /// /inbound; a webhook would save 81,000 calls").
    pub fn summary(&self, total_calls: u64) -> String {
        let share = if total_calls == 0 { 0.0 } else { self.calls as f64 * 100.0 / total_calls as f64 };
        let share = if share > 0.0 && share < 1.0 { "under 1 %".to_owned() } else { format!("{share:.0} %") };
        let saved = thousands(self.avoidable_calls);
        match &self.details {
            FindingDetails::Polling { interval_secs, .. } => format!(
                "{share} of your calls are a {} poll of {}; a webhook would save {saved} calls",
                duration_words(*interval_secs),
                self.path
            ),
            FindingDetails::ListAfterWrite { .. } => format!(
                "{share} of your calls list {} after each upload into it; listing once per batch would save {saved} calls",
                self.path
            ),
            FindingDetails::DuplicateRequests { .. } => format!(
                "{share} of your calls repeat a request under {} within seconds; sending each once would save {saved} calls",
                self.path
            ),
        }
    }
}

/// `1234567` as `1,234,567`, for recommendations.
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A duration in plain words: `1 s`, `90 s`, `15 min`, `1 h`, `2.5 h`.
pub(crate) fn duration_words(secs: f64) -> String {
    if secs < 100.0 {
        format!("{} s", round_sig(secs))
    } else if secs < 5_400.0 {
        format!("{} min", round_sig(secs / 60.0))
    } else {
        format!("{} h", round_sig(secs / 3_600.0))
    }
}

fn round_sig(v: f64) -> String {
    if v >= 10.0 {
        format!("{}", v.round())
    } else {
        let r = (v * 10.0).round() / 10.0;
        if r.fract() == 0.0 {
            format!("{}", r as i64)
        } else {
            format!("{r:.1}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(details: FindingDetails, path: &str, calls: u64, avoidable_calls: u64) -> Finding {
        Finding {
            source: crate::source::Source {
                key: crate::source::SourceKey::User { user: "alice".into() },
                interface: None,
                seen_user: None,
                seen_client_ip: None,
                seen_user_agent: None,
                integration: None,
            },
            path: path.into(),
            operation: Some(Operation::List),
            calls,
            avoidable_calls,
            avoidable_billable_calls: avoidable_calls,
            recommendation: String::new(),
            details,
        }
    }

    #[test]
    fn a_finding_in_one_sentence() {
        let polling = FindingDetails::Polling {
            interval_secs: 30.2,
            polls: 86_000,
            polls_with_change: 5_000,
            pauses: 0,
            regularity: 0.9,
            bowley_skew: 0.0,
            relative_mad: 0.01,
            fit: 0.95,
            webhook: Some(ProposedWebhook::on("/inbound/")),
        };
        assert_eq!(
            finding(polling, "/inbound", 86_000, 81_000).summary(138_710),
            "62 % of your calls are a 30 s poll of /inbound; a webhook would save 81,000 calls"
        );
        let duplicates = FindingDetails::DuplicateRequests { duplicates: 2, window_secs: 2.0 };
        assert_eq!(
            finding(duplicates, "/in", 3, 2).summary(1_000),
            "under 1 % of your calls repeat a request under /in within seconds; sending each once would save 2 calls"
        );
    }

    #[test]
    fn a_polling_finding_carries_its_webhook_and_reads_without_one() {
        let w = ProposedWebhook::on("/inbound/");
        assert_eq!(
            serde_json::to_value(&w).unwrap(),
            serde_json::json!({"folder": "/inbound", "actions": ["create", "update", "destroy", "move", "copy"]})
        );
        let old = serde_json::json!({"kind": "polling", "interval_secs": 30.0, "polls": 3, "polls_with_change": 0,
            "pauses": 0, "regularity": 1.0, "bowley_skew": 0.0, "relative_mad": 0.0, "fit": 1.0});
        let details: FindingDetails = serde_json::from_value(old).unwrap();
        assert!(matches!(details, FindingDetails::Polling { webhook: None, .. }), "an audit kept before the field");
    }

    #[test]
    fn numbers_in_words() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(11_000), "11,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(duration_words(1.02), "1 s");
        assert_eq!(duration_words(900.0), "15 min");
        assert_eq!(duration_words(3_600.0), "60 min");
        assert_eq!(duration_words(7_200.0), "2 h");
        assert_eq!(duration_words(2.5), "2.5 s");
    }
}
