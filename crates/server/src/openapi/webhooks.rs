//! The schemas of the webhook and alert routes: the request bodies of a
//! subscription (a folder with actions, or alerts with events: one or the
//! other, never both), and mirrors of the store's attempts and alerts that
//! tests hold to the real types (as `answers.rs` does).

use super::params::{ActionName, AlertEventChoice, AlertEventName};
use super::schema;
use crate::extract::MAX_PARAM_BYTES;
use callmeter_webhooks::{MAX_HEADERS, MAX_HEADER_NAME_BYTES, MAX_HEADER_VALUE_BYTES, RESERVED_HEADERS};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::borrow::Cow;
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

/// `name` matched in any case, as a regular expression (`[Hh][Oo][Ss][Tt]`).
fn any_case(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphabetic() {
                format!("[{}{}]", c.to_ascii_uppercase(), c.to_ascii_lowercase())
            } else {
                regex_escape(c)
            }
        })
        .collect()
}

fn regex_escape(c: char) -> String {
    if "\\^$.|?*+()[]{}-".contains(c) {
        format!("\\{c}")
    } else {
        c.to_string()
    }
}

/// The names a custom header may have (`callmeter_webhooks::check_headers`):
/// a token of 1 to 64 characters, none of the reserved names, not starting
/// with `webhook-`, in any case.
fn header_name_pattern() -> String {
    let reserved: Vec<String> = RESERVED_HEADERS.iter().map(|n| any_case(n)).collect();
    format!(
        "^(?!{}-)(?!(?:{})$)[A-Za-z0-9!#$%&'*+.^_`|~-]{{1,{MAX_HEADER_NAME_BYTES}}}$",
        any_case("webhook"),
        reserved.join("|")
    )
}

/// A schema, or `null` (a field given as `null` is a field left out).
fn nullable(schema: Value) -> Value {
    json!({"anyOf": [schema, {"type": "null"}]})
}

/// The fields of a subscription's body, each as the server takes it.
fn fields() -> [(&'static str, Value); 6] {
    [
        (
            "url",
            json!({"type": "string", "format": "uri", "maxLength": MAX_PARAM_BYTES,
                "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://[^/?#@\\s]+([/?#]\\S*)?$",
                "description": "The target: http or https, with a host and without user or password; \
                    on a public address unless the server allows private ones, and a host name must resolve to such addresses"}),
        ),
        (
            "folder",
            nullable(json!({"type": "string", "pattern": "^/[^\\u0000-\\u001f\\u007f-\\u009f]*$",
                "maxLength": MAX_PARAM_BYTES, "description": "The folder watched, subfolders included [default: /]"})),
        ),
        (
            "actions",
            nullable(json!({"type": "array", "minItems": 1, "items": ActionName::schema(),
                "description": "The actions told of, each at least once [default: create, update, destroy, move, copy]"})),
        ),
        (
            "events",
            json!({"type": "array", "minItems": 1, "items": AlertEventChoice::schema(),
                "description": "The usage alerts told of (`all`: every one): an alert subscription (no folder, no actions)"}),
        ),
        ("enabled", nullable(json!({"type": "boolean", "description": "Whether deliveries are sent [default: true]"}))),
        (
            "headers",
            nullable(json!({"type": "object", "maxProperties": MAX_HEADERS,
                // utoipa's model has no `propertyNames`: `to_json` renames this extension to it.
                "x-property-names": {"pattern": header_name_pattern()},
                "additionalProperties": {"type": "string", "maxLength": MAX_HEADER_VALUE_BYTES, "pattern": "^[\\t\\u0020-\\u007e]*$"},
                "description": "Headers added to every delivery; no name twice in any case"})),
        ),
    ]
}

/// A body that watches a folder, or one that watches alerts (`events`): the
/// other kind's fields may only be absent or `null`.
fn subscription_body(url_required: bool, description: &str) -> Value {
    let all = fields();
    let get = |name: &str| all.iter().find(|(n, _)| *n == name).map(|(_, s)| s.clone()).expect("a field");
    let required = |rest: &[&str]| -> Vec<String> {
        url_required.then_some("url").into_iter().chain(rest.iter().copied()).map(str::to_owned).collect()
    };
    // A change may name the url `null` (it stays); a new subscription needs one.
    let url = if url_required { get("url") } else { nullable(get("url")) };
    let folder = json!({
        "type": "object",
        "title": "a folder's changes",
        "additionalProperties": false,
        "required": required(&[]),
        "properties": {
            "url": url, "folder": get("folder"), "actions": get("actions"),
            "events": {"type": "null"}, "enabled": get("enabled"), "headers": get("headers")
        }
    });
    let alerts = json!({
        "type": "object",
        "title": "usage alerts",
        "additionalProperties": false,
        "required": required(&["events"]),
        "properties": {
            "url": url, "events": get("events"), "folder": {"type": "null"}, "actions": {"type": "null"},
            "enabled": get("enabled"), "headers": get("headers")
        }
    });
    json!({"description": description, "anyOf": [folder, alerts]})
}

macro_rules! body_schema {
    ($name:ident, $schema_name:literal, $json:expr) => {
        pub(crate) struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                schema($json)
            }
        }

        impl ToSchema for $name {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed($schema_name)
            }
        }
    };
}

body_schema!(
    WebhookPostDoc,
    "WebhookPost",
    subscription_body(
        true,
        "A subscription: a folder's changes (`folder`, `actions`), or the account's usage alerts (`events`)"
    )
);
body_schema!(
    WebhookPatchDoc,
    "WebhookPatch",
    subscription_body(
        false,
        "What to change; what is left out (or `null`) stays. `folder` or `actions` make it watch a folder \
         (the one it watched, else /), `events` make it watch alerts."
    )
);

/// One delivery attempt (the store's `Attempt`).
#[derive(ToSchema, Deserialize, Serialize)]
#[schema(as = Attempt)]
pub(crate) struct AttemptDoc {
    /// Its id (pass it as `before` for the attempts before it).
    id: u64,
    /// The delivery it was made for (redeliver takes it).
    delivery: u64,
    /// The delivery's `webhook-id`.
    webhook_id: String,
    /// When it started.
    at: DateTime<Utc>,
    /// `delivered` (a 2xx) or `failed`.
    #[schema(value_type = AttemptStatusName, inline)]
    status: String,
    /// The target's HTTP status, when it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    response_code: Option<u16>,
    /// From connect to the end of the answer (or the failure).
    latency_ms: u64,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// The retry the schedule set when this failed attempt was recorded (a
    /// snapshot: a later redelivery, replay or disable does not change it);
    /// absent when no retry was set (delivered, the tenth attempt, the
    /// webhook disabled, or the delivery asked for again while the attempt ran).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    next_attempt_at: Option<DateTime<Utc>>,
}

super::schema_types! {
    /// Whether an attempt delivered.
    AttemptStatusName => json!({"type": "string", "enum": ["delivered", "failed"]});
}

/// A page of attempts, newest first.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct AttemptsPage {
    attempts: Vec<AttemptDoc>,
    /// The `before` of the next page; null on the last.
    next_before: Option<u64>,
}

/// A usage period.
#[derive(ToSchema, Deserialize, Serialize)]
#[schema(as = Period)]
pub(crate) struct PeriodDoc {
    /// Its first instant.
    start: DateTime<Utc>,
    /// The first instant after it.
    end: DateTime<Utc>,
}

/// The biggest waste of the account, from its latest kept audit (the store's `WasteFinding`).
#[derive(ToSchema, Deserialize, Serialize)]
#[schema(as = WasteFinding)]
pub(crate) struct WasteFindingDoc {
    /// The UTC day of the audit.
    audit_day: NaiveDate,
    /// `polling`, `list_after_write` or `duplicate_requests`.
    #[schema(value_type = super::FindingKindName, inline)]
    kind: String,
    /// Who makes the calls.
    source: String,
    /// The path they are about.
    path: String,
    /// The calls it covers that day.
    calls: u64,
    /// Its share of the day's calls, in percent.
    share_percent: f64,
    /// The calls that would go away.
    avoidable_calls: u64,
    /// The finding in one sentence.
    summary: String,
    /// What to do.
    recommendation: String,
}

/// A usage alert (the store's `Alert`): the `data` of its webhook delivery too.
#[derive(ToSchema, Deserialize, Serialize)]
#[schema(as = Alert)]
pub(crate) struct AlertDoc {
    /// Its id.
    id: u64,
    /// The account.
    account: String,
    /// What it says.
    #[serde(rename = "type")]
    #[schema(value_type = AlertEventName, inline)]
    kind: String,
    /// When it fired.
    fired_at: DateTime<Utc>,
    /// The usage period it is about.
    period: PeriodDoc,
    /// The plan of the period.
    plan: String,
    /// Calls the plan includes per period.
    included_calls: u64,
    /// Calls billed in the period so far (adjustments included).
    billed_calls: u64,
    /// `billed_calls` in percent of `included_calls`.
    percent_used: f64,
    /// `usage.threshold_reached`: the threshold, in percent of the included calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    threshold_percent: Option<u64>,
    /// `usage.projected_overage`: billed calls expected by the period's end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    projected_calls: Option<u64>,
    /// `usage.projected_overage`: when the included calls run out at the pace so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    projected_overage_at: Option<DateTime<Utc>>,
    /// `usage.spike`: the local day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    day: Option<NaiveDate>,
    /// `usage.spike`: its billable calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    day_calls: Option<u64>,
    /// `usage.spike`: the median of the 7 days before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    trailing_median_calls: Option<f64>,
    /// The account's biggest waste, from its latest kept audit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    top_finding: Option<WasteFindingDoc>,
}

/// A page of alerts, newest first.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct AlertsPage {
    alerts: Vec<AlertDoc>,
    /// The `before` of the next page; null on the last.
    next_before: Option<u64>,
}

/// A redelivery under way.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct Redelivering {
    /// The delivery sent again.
    redelivering: u64,
}

/// A replay under way.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct Replaying {
    /// How many events will be sent again.
    replaying: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use callmeter_store::{Alert, AlertKind, Attempt, AttemptStatus, WasteFinding};

    fn mirrors<M: serde::de::DeserializeOwned + Serialize>(real: &impl Serialize) {
        let json = serde_json::to_value(real).unwrap();
        let mirror: M = serde_json::from_value(json.clone()).unwrap_or_else(|e| panic!("{e}: {json}"));
        assert_eq!(serde_json::to_value(&mirror).unwrap(), json);
    }

    #[test]
    fn the_mirrors_know_every_field_of_attempts_and_alerts() {
        let attempt = Attempt {
            id: 3,
            delivery: 2,
            webhook_id: "msg_wh_1_2".into(),
            at: Utc::now(),
            status: AttemptStatus::Failed,
            response_code: Some(500),
            latency_ms: 12,
            error: Some("HTTP 500".into()),
            next_attempt_at: Some(Utc::now()),
        };
        mirrors::<AttemptDoc>(&attempt);
        mirrors::<AttemptDoc>(&Attempt { response_code: None, error: None, next_attempt_at: None, ..attempt });
        let now = Utc::now();
        let alert = Alert {
            id: 1,
            account: "acme".into(),
            kind: AlertKind::Spike,
            fired_at: now,
            period: callmeter_model::UsagePeriod { start: now, end: now },
            plan: "starter".into(),
            included_calls: 10,
            billed_calls: 5,
            percent_used: 50.0,
            threshold_percent: Some(50),
            projected_calls: Some(20),
            projected_overage_at: Some(now),
            day: Some(now.date_naive()),
            day_calls: Some(4),
            trailing_median_calls: Some(1.0),
            top_finding: Some(WasteFinding {
                audit_day: now.date_naive(),
                kind: "polling".into(),
                source: "api key k".into(),
                path: "/in".into(),
                calls: 9,
                share_percent: 90.0,
                avoidable_calls: 8,
                summary: "s".into(),
                recommendation: "r".into(),
            }),
        };
        mirrors::<AlertDoc>(&alert);
        mirrors::<AlertDoc>(&Alert {
            threshold_percent: None,
            projected_calls: None,
            projected_overage_at: None,
            day: None,
            day_calls: None,
            trailing_median_calls: None,
            top_finding: None,
            ..alert
        });
    }

    #[test]
    fn the_header_name_pattern_names_every_reserved_name_in_any_case() {
        let pattern = header_name_pattern();
        assert!(pattern.starts_with("^(?![Ww][Ee][Bb][Hh][Oo][Oo][Kk]-)"), "{pattern}");
        for name in RESERVED_HEADERS {
            assert!(pattern.contains(&any_case(name)), "{name}");
        }
        assert_eq!(any_case("keep-alive"), "[Kk][Ee][Ee][Pp]\\-[Aa][Ll][Ii][Vv][Ee]");
    }
}
