//! The schemas of what the API answers (and of the call event it takes), for
//! the answers whose Rust type lives in another crate (the store's records,
//! the model's plan and call event) or is written by hand (the ingest answer).
//!
//! The server's own answer types (`UsageReport`, `AuditSummary`, the error
//! envelope) derive their schemas where they are defined. The types here
//! mirror a serialized form field for field; each mirror is proved by a test
//! below to read back a real value's JSON, with no field unknown to it and
//! none lost, so that a field added to the real type fails the test until the
//! description has it too.

use super::{params, schema};
use crate::error::ErrorBody;
use callmeter_model::{RejectReason, MAX_COUNT, MAX_ID_BYTES, MAX_STATUS};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::borrow::Cow;
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

schema_types! {
    /// What became of an event.
    OutcomeStatus => json!({"type": "string", "enum": ["accepted", "duplicate", "rejected"]});
    /// Why an event was rejected.
    RejectReasonName => json!({"type": "string", "enum": RejectReason::ALL.map(|r| r.as_str())});
    /// A call id: 1 to 128 bytes.
    CallId => json!({"type": "string", "minLength": 1, "maxLength": MAX_ID_BYTES});
    /// A status code: HTTP, FTP reply, or 0/1 for SFTP.
    StatusCode => json!({"type": "integer", "minimum": 0, "maximum": MAX_STATUS});
    /// A count: 0 to 2^53 − 1.
    Count => json!({"type": "integer", "minimum": 0, "maximum": MAX_COUNT});
    /// A duration in milliseconds.
    Milliseconds => json!({"type": "number", "minimum": 0});
    /// How usage periods run.
    PeriodKindName => json!({"type": "string", "enum": ["30d", "monthly"]});
    /// A token's scope.
    ScopeName => json!({"type": "string", "enum": ["admin", "ingest", "support", "account"]});
    /// A finding's kind.
    FindingKindName => json!({"type": "string", "enum": ["polling", "list_after_write", "duplicate_requests"]});
    /// Who makes calls (DESIGN §6): an API key, else a user, else a client address and agent.
    SourceKeyDoc => json!({
        "type": "object",
        "required": ["by"],
        "properties": {
            "by": {"type": "string", "enum": ["api_key", "user", "client"]},
            "api_key": {"type": "string"},
            "user": {"type": "string"},
            "client_ip": {"type": "string"},
            "user_agent": {"type": "string"}
        }
    });
}

/// Every error answer: `{"error": {"code", "message"}}` (the table is in `crates/server/src/error.rs`).
#[derive(ToSchema)]
#[schema(as = Error)]
#[allow(dead_code)]
pub(crate) struct ErrorAnswer {
    error: ErrorBody,
}

/// The answer of `POST /v1/events`: totals, and each event's outcome in order.
#[derive(ToSchema, Deserialize, Serialize)]
pub(crate) struct IngestAnswer {
    /// Events stored and counted.
    accepted: u64,
    /// Events whose (account, id) was counted before: not counted again.
    duplicates: u64,
    /// Events refused, each with its reason.
    rejected: u64,
    /// One entry per event of the request, in order.
    results: Vec<EventOutcome>,
}

/// What became of one event.
#[derive(ToSchema, Deserialize, Serialize)]
pub(crate) struct EventOutcome {
    /// The event's place in the request, from 0.
    index: u64,
    /// `accepted`, `duplicate` or `rejected`.
    #[schema(value_type = OutcomeStatus, inline)]
    status: String,
    /// Why it was rejected (rejected only).
    #[schema(value_type = Option<RejectReasonName>, inline)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    /// The field to blame, if one is (rejected only).
    #[schema(value_type = Option<String>)]
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present_or_null")]
    field: Option<Option<String>>,
    /// What was wrong, for people (rejected only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// A field that is absent or null, told apart: `Some(None)` is a null.
fn present_or_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// A call event (DESIGN §3), as the request log shows it and ingest takes it.
#[derive(ToSchema, Deserialize, Serialize)]
#[schema(as = CallEvent)]
pub(crate) struct CallEventDoc {
    /// Unique per account: the idempotency key.
    #[schema(value_type = CallId, inline)]
    id: String,
    /// The customer site.
    #[schema(value_type = params::AccountName, inline)]
    account: String,
    /// When the request arrived (at most 5 minutes ahead of the server clock).
    time: DateTime<Utc>,
    /// The way the call reached the API servers.
    #[schema(value_type = params::InterfaceName, inline)]
    interface: String,
    /// What the call did; derived from `method` and `interface` when absent.
    #[schema(value_type = params::OperationName, inline)]
    operation: String,
    /// HTTP method, FTP command or SFTP request as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    method: Option<String>,
    /// The file or folder the call is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    /// The new path of a move or copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    destination: Option<String>,
    /// Response code (HTTP, FTP reply, or 0/1 for SFTP ok/fail).
    #[schema(value_type = Option<StatusCode>, inline)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<i64>,
    /// Id or short prefix of the API key used; never the secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    api_key: Option<String>,
    /// User name or id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    /// The real client address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_ip: Option<String>,
    /// The client's user agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user_agent: Option<String>,
    /// Name of the iPaaS integration or remote-server mount (a CloudEvent's `source` when the data has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    integration: Option<String>,
    /// The pagination cursor a list page was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cursor: Option<String>,
    /// Entries returned by a list page.
    #[schema(value_type = Option<Count>, inline)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    result_count: Option<u64>,
    /// Body bytes transferred.
    #[schema(value_type = Option<Count>, inline)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bytes: Option<u64>,
    /// How long the request took.
    #[schema(value_type = Option<Milliseconds>, inline)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    duration_ms: Option<f64>,
}

/// A stored call: the call event, and what metering decided about it.
#[derive(ToSchema)]
#[schema(as = StoredCall)]
#[allow(dead_code)]
pub(crate) struct StoredCallDoc {
    #[serde(flatten)]
    event: CallEventDoc,
    /// Billable by the rule in force at the call's time.
    billable: bool,
    /// Arrived after its usage period had closed.
    late: bool,
}

/// A page of the request log.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct CallsPage {
    /// The calls, oldest first.
    calls: Vec<StoredCallDoc>,
    /// The `cursor` of the next page; null on the last.
    next_cursor: Option<String>,
}

/// A plan (the config's `[[plans]]`).
#[derive(ToSchema, Deserialize, Serialize)]
#[schema(as = Plan)]
pub(crate) struct PlanDoc {
    /// Its name, as accounts refer to it.
    name: String,
    /// How its usage periods run.
    #[schema(value_type = PeriodKindName, inline)]
    period: String,
    /// Billable calls included per period.
    included_calls: u64,
    /// Price of each started block of 1,000 calls beyond, in minor units of `currency`.
    overage_price_per_1000: u64,
    /// ISO 4217 code of the prices.
    currency: String,
}

/// The configured plans.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct PlansAnswer {
    plans: Vec<PlanDoc>,
}

/// An account: its name, and its plans, zones and anchors over time.
#[derive(ToSchema, Deserialize, Serialize)]
#[schema(as = Account)]
pub(crate) struct AccountDoc {
    /// The account name.
    #[schema(value_type = params::AccountName, inline)]
    name: String,
    /// Its terms: each from a period boundary on, with its plan and how its periods run.
    schedule: ScheduleDoc,
    /// When the account was created.
    created_at: DateTime<Utc>,
    /// The widest time span of any of its call blocks, in nanoseconds (the request log's lookback).
    max_block_span_ns: i64,
    /// Entries one list request returns on this account, which its audits cost listings at; absent: the server's `[audit] list_page_size`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 1_000_000)]
    list_page_size: Option<u64>,
    /// Its usage alert thresholds, in percent of the included calls, in place of its plan's; absent: the plan's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<params::Thresholds>, inline)]
    alert_thresholds: Option<Vec<u32>>,
}

/// An account's terms, sorted by `from`.
#[derive(ToSchema, Deserialize, Serialize)]
#[schema(as = Schedule)]
pub(crate) struct ScheduleDoc {
    terms: Vec<TermDoc>,
}

/// A term: a plan and a period rule from a time on.
#[derive(ToSchema, Deserialize, Serialize)]
#[schema(as = Term)]
pub(crate) struct TermDoc {
    /// When the term starts.
    from: DateTime<Utc>,
    /// The plan's name.
    plan: String,
    /// How its periods run.
    rule: PeriodRuleDoc,
}

/// How a term's usage periods run.
#[derive(ToSchema, Deserialize, Serialize)]
#[schema(as = PeriodRule)]
pub(crate) struct PeriodRuleDoc {
    /// `30d` or `monthly`.
    #[schema(value_type = PeriodKindName, inline)]
    kind: String,
    /// The IANA zone whose local days the periods are made of.
    tz: String,
    /// `30d`: a local date on which a period starts; `monthly`: its day of month.
    anchor: NaiveDate,
}

/// The accounts the caller may read.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct AccountsAnswer {
    accounts: Vec<AccountDoc>,
}

/// An operator's signed correction of a period.
#[derive(ToSchema, Deserialize, Serialize)]
#[schema(as = Adjustment)]
pub(crate) struct AdjustmentDoc {
    /// The account.
    #[schema(value_type = params::AccountName, inline)]
    account: String,
    /// Start of the usage period it corrects.
    period_start: DateTime<Utc>,
    /// Calls added, or removed when negative.
    calls: i64,
    /// Why.
    reason: String,
    /// When it was made.
    created_at: DateTime<Utc>,
}

/// A period's adjustments.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct AdjustmentsAnswer {
    adjustments: Vec<AdjustmentDoc>,
}

/// A token (never its secret): its id, the hash of its secret, its scope.
#[derive(ToSchema, Deserialize, Serialize)]
#[schema(as = Token)]
pub(crate) struct TokenDoc {
    /// Public id, to revoke it by.
    id: String,
    /// BLAKE3 hash of the secret, hex.
    hash: String,
    /// What it may do: `admin`, `ingest`, `support`, or `account` (an account key).
    #[schema(value_type = ScopeName, inline)]
    scope: String,
    /// The account of an account key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    account: Option<String>,
    /// A note from whoever made it.
    label: String,
    /// When it was made.
    created_at: DateTime<Utc>,
}

/// Every token.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct TokensAnswer {
    tokens: Vec<TokenDoc>,
}

/// A token just made, with its secret: shown this once.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct CreatedToken {
    token: TokenDoc,
    /// The secret, to send as `Authorization: Bearer …`.
    secret: String,
}

/// The new admin token, shown this once.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct RotatedToken {
    secret: String,
}

/// A backup taken.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct BackupAnswer {
    /// The folder written.
    dir: String,
    /// Rows copied.
    rows: u64,
    /// Bytes written.
    bytes: u64,
    /// The store format's version.
    format_version: u32,
}

/// Every account's kept audit of a day, in one line each.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct AuditsAnswer {
    /// The UTC day.
    day: NaiveDate,
    /// Most avoidable calls first.
    accounts: Vec<crate::audit::AuditSummary>,
}

/// Every account's usage of a period.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct AllUsageAnswer {
    accounts: Vec<crate::routes::usage::AccountLine>,
}

/// The usage audit of an account (DESIGN §6): the same JSON as `callmeter
/// audit --format json`. A public shape that only ever gains fields, so the
/// schema names the fields it has and allows more.
pub(crate) struct AuditReportDoc;

impl PartialSchema for AuditReportDoc {
    fn schema() -> RefOr<Schema> {
        let count = json!({"type": "integer", "minimum": 0});
        let time = json!({"type": ["string", "null"], "format": "date-time"});
        schema(json!({
            "type": "object",
            "description": "The usage audit (DESIGN §6); fields are only ever added.",
            "required": ["account", "from", "to", "calls", "billable_calls", "findings", "top_sources", "what_if"],
            "properties": {
                "account": {"type": ["string", "null"]},
                "from": time,
                "to": time,
                "calls": count,
                "billable_calls": count,
                "findings": {"type": "array", "items": {
                    "type": "object",
                    "required": ["kind", "source", "path", "operation", "calls", "avoidable_calls", "recommendation"],
                    "properties": {
                        "kind": {"type": "string", "enum": ["polling", "list_after_write", "duplicate_requests"]},
                        "source": {"type": "object"},
                        "path": {"type": "string"},
                        "operation": {"type": ["string", "null"]},
                        "calls": count,
                        "avoidable_calls": count,
                        "recommendation": {"type": "string"}
                    }
                }},
                "top_sources": {"type": "object"},
                "what_if": {
                    "type": "object",
                    "required": ["calls", "calls_after", "factor"],
                    "properties": {"calls": count, "calls_after": count, "factor": {"type": ["number", "null"]}}
                }
            }
        }))
    }
}

impl ToSchema for AuditReportDoc {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("AuditReport")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use callmeter_model::{AccountSchedule, CallEvent, Interface, Operation, Plan};
    use callmeter_store::{AccountRecord, Adjustment, Outcome, Scope, TokenRecord};
    use serde::de::DeserializeOwned;

    /// The JSON of `real` reads into the mirror `M` and writes back the same:
    /// a field the mirror does not know would be lost.
    fn mirrors<M: DeserializeOwned + Serialize>(real: &impl Serialize) {
        let json = serde_json::to_value(real).unwrap();
        let mirror: M = serde_json::from_value(json.clone()).unwrap_or_else(|e| panic!("{e}: {json}"));
        assert_eq!(serde_json::to_value(&mirror).unwrap(), json);
    }

    fn event() -> CallEvent {
        CallEvent {
            id: "e1".into(),
            account: "acme".into(),
            time: Utc::now(),
            interface: Interface::Webdav,
            operation: Operation::Move,
            method: Some("MOVE".into()),
            path: Some("/a".into()),
            destination: Some("/b".into()),
            status: Some(201),
            api_key: Some("k".into()),
            user: Some("u".into()),
            client_ip: Some("10.0.0.1".into()),
            user_agent: Some("ua".into()),
            integration: Some("nas".into()),
            cursor: Some("c".into()),
            result_count: Some(3),
            bytes: Some(9),
            duration_ms: Some(1.5),
        }
    }

    #[test]
    fn the_mirrors_know_every_field_of_the_real_types() {
        mirrors::<CallEventDoc>(&event());
        let bare = CallEvent::new("e2".into(), "acme".into(), Utc::now(), Interface::Rest, Operation::Other);
        mirrors::<CallEventDoc>(&bare);
        for plan in crate::default_plans() {
            mirrors::<PlanDoc>(&plan);
        }
        mirrors::<PlanDoc>(&Plan { currency: "CHF".into(), ..crate::default_plans()[0].clone() });
        let schedule = AccountSchedule::new("starter".into(), chrono_tz::Europe::Zurich, Utc::now().date_naive());
        mirrors::<AccountDoc>(&AccountRecord {
            name: "acme".into(),
            schedule,
            created_at: Utc::now(),
            max_block_span_ns: 7,
            list_page_size: None,
            alert_thresholds: None,
        });
        mirrors::<AccountDoc>(&AccountRecord {
            name: "acme".into(),
            schedule: AccountSchedule::new("starter".into(), chrono_tz::UTC, Utc::now().date_naive()),
            created_at: Utc::now(),
            max_block_span_ns: 7,
            list_page_size: Some(2_500),
            alert_thresholds: Some(vec![90, 100]),
        });
        mirrors::<AdjustmentDoc>(&Adjustment {
            account: "acme".into(),
            period_start: Utc::now(),
            calls: -3,
            reason: "r".into(),
            created_at: Utc::now(),
        });
        for scope in [Scope::Admin, Scope::Ingest, Scope::Support, Scope::Account("acme".into())] {
            mirrors::<TokenDoc>(&TokenRecord {
                id: "0123456789ab".into(),
                hash: "00".into(),
                scope,
                label: "l".into(),
                created_at: Utc::now(),
            });
        }
    }

    #[test]
    fn the_ingest_answer_reads_as_described() {
        let rejected = callmeter_model::parse_event(b"{}", Utc::now(), &Default::default()).unwrap_err();
        let no_field = callmeter_model::parse_event(b"[]", Utc::now(), &Default::default()).unwrap_err();
        let written = crate::ingest::answer(
            &[None, Some(rejected), None, Some(no_field), None],
            &[Outcome::Accepted, Outcome::Duplicate, Outcome::Rejected(RejectReason::UnknownAccount)],
        );
        let answer: IngestAnswer = serde_json::from_str(&written).unwrap();
        assert_eq!(serde_json::to_string(&answer).unwrap(), written);
        assert_eq!(answer.results[3].field, Some(None), "a reason without a field names null");
    }
}
