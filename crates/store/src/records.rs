//! The records a store keeps besides calls: accounts, tokens, adjustments,
//! and the answers of ingest and of the request log.

use crate::codec::StoredCall;
use callmeter_model::{AccountSchedule, Interface, Operation, RejectReason};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A customer account: its plan schedule and what the store knows of its calls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountRecord {
    /// The account name (DESIGN §3).
    pub name: String,
    /// Its plans, time zones and anchors over time.
    pub schedule: AccountSchedule,
    /// When the account was created.
    pub created_at: DateTime<Utc>,
    /// The widest time span of any of its call blocks, in nanoseconds: how far
    /// before a time the request log must start looking for blocks that reach it.
    #[serde(default)]
    pub max_block_span_ns: i64,
    /// Entries one list request returns on this account, for the audit's
    /// estimates (DESIGN §1); unset, the server's `[audit] list_page_size`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_page_size: Option<u64>,
    /// The usage alert thresholds, in percent of the included calls, in
    /// place of its plan's (DESIGN §7); unset, the plan's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_thresholds: Option<Vec<u32>>,
}

/// What a token may do (DESIGN §8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "scope", content = "account")]
pub enum Scope {
    /// Everything.
    Admin,
    /// Only post calls: for tail hosts and proxies.
    Ingest,
    /// Read every account, change nothing.
    Support,
    /// Read and manage one account.
    Account(String),
}

/// A stored token: never the secret, only its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// Public id, used to revoke it.
    pub id: String,
    /// BLAKE3 hash of the secret, hex.
    pub hash: String,
    /// What it may do.
    #[serde(flatten)]
    pub scope: Scope,
    /// A note from whoever made it.
    #[serde(default)]
    pub label: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
}

/// A signed correction of a period's calls, made by an operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Adjustment {
    /// The account.
    pub account: String,
    /// Start of the usage period it corrects.
    pub period_start: DateTime<Utc>,
    /// Calls added (or removed, when negative).
    pub calls: i64,
    /// Why.
    pub reason: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
}

/// What became of one ingested event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Stored and counted.
    Accepted,
    /// An event with the same (account, id) was counted before; nothing changed.
    Duplicate,
    /// Not stored, for this reason.
    Rejected(RejectReason),
}

/// Where a call stands in an account's request log: its time, then the block and index that hold it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// The call's time, nanoseconds since the epoch.
    pub time_ns: i64,
    /// The block's commit sequence.
    pub seq: u64,
    /// The index inside the block.
    pub idx: u32,
}

impl Position {
    /// An opaque cursor string for this position.
    pub fn to_cursor(&self) -> String {
        format!("{:x}.{:x}.{:x}", self.time_ns as u64, self.seq, self.idx)
    }

    /// Reads a cursor made by [`Position::to_cursor`].
    pub fn from_cursor(s: &str) -> Option<Position> {
        let mut it = s.split('.');
        let time_ns = u64::from_str_radix(it.next()?, 16).ok()? as i64;
        let seq = u64::from_str_radix(it.next()?, 16).ok()?;
        let idx = u32::from_str_radix(it.next()?, 16).ok()?;
        it.next().is_none().then_some(Position { time_ns, seq, idx })
    }
}

/// Filters on the request log; every one given must match.
#[derive(Debug, Clone, Default)]
pub struct CallFilter {
    /// Calls at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Calls before this time.
    pub to: Option<DateTime<Utc>>,
    /// Only this interface.
    pub interface: Option<Interface>,
    /// Only this operation.
    pub operation: Option<Operation>,
    /// Only paths starting with this.
    pub path_prefix: Option<String>,
    /// Only this api key.
    pub api_key: Option<String>,
    /// Only this user.
    pub user: Option<String>,
    /// Only this client address.
    pub client_ip: Option<String>,
    /// Only statuses of this class: 2 for 2xx, 4 for 4xx, …
    pub status_class: Option<i64>,
}

impl CallFilter {
    /// Whether a call passes every filter but the time range.
    pub fn matches(&self, c: &StoredCall) -> bool {
        let e = &c.event;
        fn eq(want: &Option<String>, have: &Option<String>) -> bool {
            want.as_ref().is_none_or(|w| have.as_deref() == Some(w.as_str()))
        }
        self.interface.is_none_or(|i| i == e.interface)
            && self.operation.is_none_or(|o| o == e.operation)
            && self
                .path_prefix
                .as_ref()
                .is_none_or(|p| e.path.as_deref().is_some_and(|path| path.starts_with(p.as_str())))
            && eq(&self.api_key, &e.api_key)
            && eq(&self.user, &e.user)
            && eq(&self.client_ip, &e.client_ip)
            && self.status_class.is_none_or(|c| e.status.is_some_and(|s| s / 100 == c))
    }
}

/// One page of the request log.
#[derive(Debug, Clone)]
pub struct CallPage {
    /// The calls, in time order.
    pub calls: Vec<(Position, StoredCall)>,
    /// Where the next page starts, when there is one.
    pub next: Option<Position>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_record_without_a_page_size_reads_and_writes_as_before() {
        let schedule =
            AccountSchedule::new("free".into(), chrono_tz::UTC, chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap());
        let rec = AccountRecord {
            name: "acme".into(),
            schedule,
            created_at: Utc::now(),
            max_block_span_ns: 0,
            list_page_size: None,
            alert_thresholds: None,
        };
        let json = serde_json::to_value(&rec).unwrap();
        assert!(json.get("list_page_size").is_none(), "unset, it is not written: {json}");
        assert!(json.get("alert_thresholds").is_none(), "unset, it is not written: {json}");
        let back: AccountRecord = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, rec, "a record of an earlier build reads");
        let set = AccountRecord { list_page_size: Some(2_500), ..rec };
        let json = serde_json::to_value(&set).unwrap();
        assert_eq!(json["list_page_size"], 2_500);
        assert_eq!(serde_json::from_value::<AccountRecord>(json).unwrap(), set);
    }
}
