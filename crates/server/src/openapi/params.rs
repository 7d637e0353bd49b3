//! The schemas of the API's parameters and body fields, each the exact set of
//! values the server takes, built from the constants and enums the checks
//! themselves use (so that a limit changed in the code changes here too).
//!
//! "Exact" both ways: a contract tester sends values the schema allows and
//! expects them taken, and values it forbids and expects them refused. So a
//! schema is neither looser than the server (a refusal of a valid request)
//! nor stricter (a forbidden value taken).

use crate::extract::MAX_PARAM_BYTES;
use crate::routes::adjustments::MAX_ADJUSTMENT_CALLS;
use crate::routes::calls::MAX_PER_PAGE;
use crate::usage::Dimension;
use callmeter_model::{Action, Interface, Operation, ACCOUNT_PATTERN, MAX_ACCOUNT_BYTES};
use callmeter_store::AlertKind;
use serde_json::json;
use utoipa::IntoParams;

schema_types! {
    /// An account name (DESIGN §3).
    AccountName => json!({"type": "string", "pattern": ACCOUNT_PATTERN, "minLength": 1, "maxLength": MAX_ACCOUNT_BYTES});
    /// A token's public id: 12 hexadecimal digits (`auth::new_token_id`).
    TokenId => json!({"type": "string", "pattern": "^[0-9a-f]{12}$"});
    /// A usage period: `current`, `previous`, or a local date inside it, from 1970 to 9998 (`usage::PERIOD_DATES`).
    Period => json!({"oneOf": [
        {"type": "string", "enum": ["current", "previous"]},
        {"type": "string", "format": "date", "pattern": PERIOD_DATE_PATTERN},
    ]});
    /// An RFC 3339 time.
    Rfc3339Time => json!({"type": "string", "format": "date-time"});
    /// A date, `YYYY-MM-DD`.
    CalendarDay => json!({"type": "string", "format": "date"});
    /// One of the interfaces (DESIGN §3).
    InterfaceName => json!({"type": "string", "enum": Interface::ALL.map(Interface::as_str)});
    /// One of the operations (DESIGN §3).
    OperationName => json!({"type": "string", "enum": Operation::ALL.map(Operation::as_str)});
    /// A free-form filter or text: at most [`MAX_PARAM_BYTES`].
    FreeText => json!({"type": "string", "maxLength": MAX_PARAM_BYTES});
    /// A class of status codes: `2xx`, `4xx`….
    StatusClass => json!({"type": "string", "pattern": "^[0-9]xx$"});
    /// A request-log cursor as `next_cursor` gave it (`Position::to_cursor`: three hexadecimal numbers).
    Cursor => json!({"type": "string", "pattern": "^[0-9a-f]{1,16}\\.[0-9a-f]{1,16}\\.[0-9a-f]{1,8}$"});
    /// Calls in a page.
    PerPage => json!({"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE});
    /// The request log's formats.
    CallsFormat => json!({"type": "string", "enum": ["json", "csv", "ndjson"]});
    /// The tables' formats (every account's usage, the kept audits).
    TableFormat => json!({"type": "string", "enum": ["json", "csv"]});
    /// The slots of a usage series.
    Granularity => json!({"type": "string", "enum": ["hour", "day"]});
    /// Dimensions, comma-separated, each at most once, in any order; empty groups by nothing.
    GroupBy => json!({"type": "string", "enum": group_by_lists()});
    /// Calls of one adjustment.
    AdjustmentCalls => json!({"type": "integer", "format": "int64", "minimum": -MAX_ADJUSTMENT_CALLS, "maximum": MAX_ADJUSTMENT_CALLS});
    /// A reason: not blank, at most [`MAX_PARAM_BYTES`].
    /// (JSON Schema's `\s` is ECMAScript's, which leaves out U+0085; `trim` does not.)
    Reason => json!({"type": "string", "minLength": 1, "maxLength": MAX_PARAM_BYTES, "pattern": "[^\\s\\u0085]"});
    /// The scopes a token can be made with (account keys are made under their account).
    TokenScope => json!({"type": "string", "enum": ["admin", "ingest", "support"]});
    /// An IANA time zone name.
    TimeZone => json!({"type": "string", "enum": chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name()).collect::<Vec<_>>()});
    /// A configured plan's name: `describe` puts the configuration's names in the enum.
    PlanName => json!({"type": "string", "enum": []});
    /// A webhook's id, as `POST /v1/accounts/{account}/webhooks` answered it (`routes/webhooks.rs`).
    WebhookId => json!({"type": "string", "pattern": "^wh_[0-9a-f]{16}$"});
    /// What a change is to a subscriber (DESIGN §7).
    ActionName => json!({"type": "string", "enum": Action::ALL.map(Action::as_str)});
    /// A usage alert's event type (DESIGN §7).
    AlertEventName => json!({"type": "string", "enum": AlertKind::ALL.map(AlertKind::as_str)});
    /// A usage alert's event type in a request, or `all` for every one.
    AlertEventChoice => {
        let mut names = AlertKind::ALL.map(AlertKind::as_str).to_vec();
        names.push(crate::routes::webhooks::ALL_EVENTS);
        json!({"type": "string", "enum": names})
    };
    /// An id of a delivery or an attempt.
    RecordId => json!({"type": "integer", "minimum": 0, "maximum": u64::MAX});
    /// Entries in a page of attempts or alerts.
    SmallPage => json!({"type": "integer", "minimum": 1, "maximum": 1_000});
    /// Alert thresholds: percentages of the included calls, at most 20 (an empty list: the plan's).
    Thresholds => json!({"type": "array", "maxItems": crate::alert_options::MAX_THRESHOLDS,
        "items": {"type": "integer", "minimum": 1, "maximum": crate::alert_options::MAX_THRESHOLD_PERCENT}});
}

/// The years of [`crate::usage::PERIOD_DATES`], 1970 to 9998, as a pattern (a test holds them together).
const PERIOD_DATE_PATTERN: &str = "^(19[7-9][0-9]|[2-8][0-9][0-9][0-9]|9[0-8][0-9][0-9]|99[0-8][0-9]|999[0-8])-";

/// The `{account}` of a path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub(crate) struct AccountPath {
    /// The account name.
    #[param(value_type = AccountName, inline)]
    account: String,
}

/// The `{account}` and `{id}` of an account key's path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub(crate) struct AccountKeyPath {
    /// The account name.
    #[param(value_type = AccountName, inline)]
    account: String,
    /// The key's id, as `POST /v1/accounts/{account}/keys` answered it.
    #[param(value_type = TokenId, inline)]
    id: String,
}

/// The `{account}` and `{id}` of a webhook's path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub(crate) struct WebhookPath {
    /// The account name.
    #[param(value_type = AccountName, inline)]
    account: String,
    /// The webhook's id.
    #[param(value_type = WebhookId, inline)]
    id: String,
}

/// The `{account}`, `{id}` and `{delivery}` of a delivery's path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub(crate) struct DeliveryPath {
    /// The account name.
    #[param(value_type = AccountName, inline)]
    account: String,
    /// The webhook's id.
    #[param(value_type = WebhookId, inline)]
    id: String,
    /// The delivery's id, as an attempt names it (`delivery`).
    #[param(value_type = RecordId, inline)]
    delivery: u64,
}

/// The `{id}` of a token's path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub(crate) struct TokenPath {
    /// The token's id, as `POST /v1/tokens` answered it.
    #[param(value_type = TokenId, inline)]
    id: String,
}

/// Every list `group_by` takes (without spaces): each ordering of each subset of the dimensions.
fn group_by_lists() -> Vec<String> {
    fn extend(prefix: &mut Vec<&'static str>, rest: &[&'static str], out: &mut Vec<String>) {
        out.push(prefix.join(","));
        for (i, d) in rest.iter().enumerate() {
            let mut others = rest.to_vec();
            others.remove(i);
            prefix.push(d);
            extend(prefix, &others, out);
            prefix.pop();
        }
    }
    let mut out = Vec::new();
    extend(&mut Vec::new(), &Dimension::ALL.map(Dimension::name), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Datelike;
    use utoipa::openapi::{RefOr, Schema};
    use utoipa::PartialSchema;

    #[test]
    fn every_group_by_list_is_taken_and_listed_once() {
        let lists = group_by_lists();
        // 1 empty + 4 + 12 + 24 + 24 orderings.
        assert_eq!(lists.len(), 65);
        let mut unique = lists.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), lists.len());
        for list in &lists {
            assert!(Dimension::parse_list(list).is_ok(), "{list}");
        }
    }

    #[test]
    fn the_period_pattern_takes_the_years_of_the_period_dates() {
        // The pattern's alternatives are four digits or classes of digits each: read them as (lowest, highest).
        let inner = PERIOD_DATE_PATTERN.trim_start_matches("^(").trim_end_matches(")-");
        let alternatives: Vec<Vec<(u8, u8)>> = inner
            .split('|')
            .map(|alt| {
                let mut digits = Vec::new();
                let mut bytes = alt.bytes();
                while let Some(b) = bytes.next() {
                    digits.push(if b == b'[' {
                        let (lo, _, hi, _) = (bytes.next(), bytes.next(), bytes.next(), bytes.next());
                        (lo.unwrap(), hi.unwrap())
                    } else {
                        (b, b)
                    });
                }
                digits
            })
            .collect();
        let takes = |year: i32| {
            let digits = format!("{year:04}");
            alternatives.iter().any(|alt| alt.iter().zip(digits.bytes()).all(|(&(lo, hi), d)| lo <= d && d <= hi))
        };
        let (first, last) = (crate::usage::PERIOD_DATES.start().year(), crate::usage::PERIOD_DATES.end().year());
        for year in 0..=9999 {
            assert_eq!(takes(year), (first..=last).contains(&year), "{year}");
        }
    }

    #[test]
    fn every_time_zone_listed_is_read() {
        let RefOr::T(Schema::Object(o)) = TimeZone::schema() else { panic!("an object schema") };
        let names = o.enum_values.unwrap();
        assert!(names.len() > 400);
        for n in names {
            assert!(n.as_str().unwrap().parse::<chrono_tz::Tz>().is_ok(), "{n}");
        }
    }
}
