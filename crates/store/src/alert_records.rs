//! What a store keeps for usage alerts (DESIGN §7): each alert fired, once
//! per account, usage period and threshold (or day, for a spike).
//!
//! The server decides when an alert is due (`crates/server/src/alerts/`);
//! the store decides whether it was fired before, by its [`Alert::fired_key`],
//! and fires it (the record, its "fired" mark and one outbox row per alert
//! subscription of the account that wants it) in one atomic write. So an
//! alert is fired once however often, and on however many nodes, it is
//! found due: after a crash it was fired, with its deliveries, or not at all.
//!
//! The record carries everything its delivery body says (usage, the
//! projection, the spike's figures, the top waste finding), as it was when
//! it fired: every attempt of one alert sends the same bytes.

use callmeter_model::UsagePeriod;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The kinds of alert, named as their webhook event types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AlertKind {
    /// Billed calls reached a threshold (a percentage of the included calls).
    #[serde(rename = "usage.threshold_reached")]
    ThresholdReached,
    /// The period's projection passed the included calls.
    #[serde(rename = "usage.projected_overage")]
    ProjectedOverage,
    /// A day's calls passed a multiple of the trailing 7-day median.
    #[serde(rename = "usage.spike")]
    Spike,
}

impl AlertKind {
    /// Every kind.
    pub const ALL: [AlertKind; 3] = [AlertKind::ThresholdReached, AlertKind::ProjectedOverage, AlertKind::Spike];

    /// The event type: `usage.threshold_reached`, `usage.projected_overage`, `usage.spike`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::ThresholdReached => "usage.threshold_reached",
            AlertKind::ProjectedOverage => "usage.projected_overage",
            AlertKind::Spike => "usage.spike",
        }
    }

    /// The kind named `name`, if any.
    pub fn parse(name: &str) -> Option<AlertKind> {
        AlertKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Its byte in a fired key.
    fn code(self) -> u8 {
        match self {
            AlertKind::ThresholdReached => 1,
            AlertKind::ProjectedOverage => 2,
            AlertKind::Spike => 3,
        }
    }
}

impl fmt::Display for AlertKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The biggest waste of an account, from its latest kept audit, in short.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WasteFinding {
    /// The UTC day of the kept audit it comes from.
    pub audit_day: NaiveDate,
    /// `polling`, `list_after_write` or `duplicate_requests`.
    pub kind: String,
    /// Who makes the calls, in words (`api key k-17`).
    pub source: String,
    /// The path they are about.
    pub path: String,
    /// The calls it covers that day.
    pub calls: u64,
    /// Its share of the day's calls, in percent.
    pub share_percent: f64,
    /// The calls that would go away.
    pub avoidable_calls: u64,
    /// One sentence: "62 % of your calls are a 30 s poll of /inbound; a webhook would save 81,000 calls".
    pub summary: String,
    /// What to do, as the audit says it.
    pub recommendation: String,
}

/// An alert, as fired and as delivered (the `data` of its webhook body).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Its id, unique in the store (given when it fires).
    pub id: u64,
    /// The account.
    pub account: String,
    /// What it says.
    #[serde(rename = "type")]
    pub kind: AlertKind,
    /// When it fired.
    pub fired_at: DateTime<Utc>,
    /// The usage period it is about.
    pub period: UsagePeriod,
    /// The plan of the period.
    pub plan: String,
    /// Calls the plan includes per period.
    pub included_calls: u64,
    /// Calls billed in the period so far (adjustments included).
    pub billed_calls: u64,
    /// `billed_calls` as a percentage of `included_calls` (0 when the plan includes none).
    pub percent_used: f64,
    /// The threshold reached, in percent of the included calls (`usage.threshold_reached`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold_percent: Option<u64>,
    /// Billed calls expected by the period's end at the pace so far (`usage.projected_overage`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub projected_calls: Option<u64>,
    /// When the included calls run out at that pace (`usage.projected_overage`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub projected_overage_at: Option<DateTime<Utc>>,
    /// The local day of a spike (`usage.spike`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day: Option<NaiveDate>,
    /// Billable calls that day (`usage.spike`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day_calls: Option<u64>,
    /// The median of the 7 days before it (`usage.spike`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trailing_median_calls: Option<f64>,
    /// The account's biggest waste, from its latest kept audit, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_finding: Option<WasteFinding>,
}

impl Alert {
    /// What makes an alert the same alert: its kind, the start of its
    /// period, and its threshold (or its day, for a spike). An alert whose
    /// key was fired before is never fired again.
    pub fn fired_key(&self) -> [u8; 17] {
        let detail: u64 = match self.kind {
            AlertKind::ThresholdReached => self.threshold_percent.unwrap_or(0),
            AlertKind::ProjectedOverage => 0,
            AlertKind::Spike => self.day.map_or(0, |d| chrono::Datelike::num_days_from_ce(&d) as u64),
        };
        let mut k = [0u8; 17];
        k[0] = self.kind.code();
        k[1..9].copy_from_slice(&((crate::codec::time_ns(self.period.start) as u64) ^ (1 << 63)).to_be_bytes());
        k[9..].copy_from_slice(&detail.to_be_bytes());
        k
    }
}

/// A page of an account's alerts, newest first.
#[derive(Debug, Clone)]
pub struct AlertPage {
    /// The alerts.
    pub alerts: Vec<Alert>,
    /// The id to pass as `before` for the next page, when there is one.
    pub next_before: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(kind: AlertKind, threshold: Option<u64>, day: Option<NaiveDate>) -> Alert {
        let start: DateTime<Utc> = "2026-11-01T00:00:00Z".parse().unwrap();
        Alert {
            id: 0,
            account: "acme".into(),
            kind,
            fired_at: start,
            period: UsagePeriod { start, end: start + chrono::Duration::days(30) },
            plan: "starter".into(),
            included_calls: 1000,
            billed_calls: 800,
            percent_used: 80.0,
            threshold_percent: threshold,
            projected_calls: None,
            projected_overage_at: None,
            day,
            day_calls: None,
            trailing_median_calls: None,
            top_finding: None,
        }
    }

    #[test]
    fn the_fired_key_tells_thresholds_kinds_periods_and_days_apart_and_nothing_else() {
        let t80 = alert(AlertKind::ThresholdReached, Some(80), None);
        let mut later = t80.clone();
        later.billed_calls = 900;
        later.fired_at += chrono::Duration::hours(1);
        assert_eq!(t80.fired_key(), later.fired_key(), "the same alert, whatever its figures");
        assert_ne!(t80.fired_key(), alert(AlertKind::ThresholdReached, Some(100), None).fired_key());
        let mut next_period = t80.clone();
        next_period.period.start += chrono::Duration::days(30);
        assert_ne!(t80.fired_key(), next_period.fired_key());
        assert_ne!(t80.fired_key(), alert(AlertKind::ProjectedOverage, None, None).fired_key());
        let d = |n| Some(NaiveDate::from_ymd_opt(2026, 11, n).unwrap());
        assert_ne!(alert(AlertKind::Spike, None, d(2)).fired_key(), alert(AlertKind::Spike, None, d(3)).fired_key());
    }

    #[test]
    fn kinds_are_named_as_their_event_types() {
        for kind in AlertKind::ALL {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
            assert_eq!(AlertKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(AlertKind::parse("usage.other"), None);
        let json = serde_json::to_value(alert(AlertKind::ThresholdReached, Some(80), None)).unwrap();
        assert_eq!(json["type"], "usage.threshold_reached");
        assert_eq!(json["period"]["start"], "2026-11-01T00:00:00Z");
        assert!(json.get("day").is_none(), "kind-specific fields only where they apply");
    }
}
