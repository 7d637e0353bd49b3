//! Usage answers: an account's calls in a period or range, against its plan.
//!
//! Everything here is computed from the 15-minute aggregates; no call is read.

use crate::error::ApiError;
use callmeter_model::{bucket_of, bucket_start, local_midnight, Direction, Plan, UsagePeriod};
use callmeter_store::{AccountRecord, Adjustment, BreakdownRow, CallFlags, TotalRow};
use chrono::{DateTime, NaiveDate, Timelike, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

/// A usage period as answered, with whether it has closed.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct PeriodInfo {
    /// First instant of the period.
    pub start: DateTime<Utc>,
    /// First instant after it.
    pub end: DateTime<Utc>,
    /// Whether its billable total is final.
    pub closed: bool,
    /// When it closes (or closed).
    pub closes_at: DateTime<Utc>,
}

impl PeriodInfo {
    /// A period as answered at `now`, closing at `closes_at`.
    pub fn new(period: UsagePeriod, closes_at: DateTime<Utc>, now: DateTime<Utc>) -> PeriodInfo {
        PeriodInfo { start: period.start, end: period.end, closed: closes_at <= now, closes_at }
    }
}

/// Calls and billable calls of one interface, group or time slot.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct CallCount {
    /// Calls.
    pub calls: u64,
    /// Of them, billable and on time (plus late calls carried into this period).
    pub billable_calls: u64,
}

/// Overage beyond the plan.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct OverageInfo {
    /// Calls beyond the allowance.
    pub calls: u64,
    /// Started blocks of 1,000 calls.
    pub blocks: u64,
    /// Price, in minor units of the currency.
    pub price: u64,
    /// The plan's currency.
    pub currency: String,
}

/// The answer of `GET /v1/accounts/{account}/usage`.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct UsageReport {
    /// The account.
    pub account: String,
    /// The plan in force for the period (or at the range's start).
    pub plan: String,
    /// The account's time zone.
    pub timezone: String,
    /// The period, when one was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<PeriodInfo>,
    /// Start of the range counted.
    pub from: DateTime<Utc>,
    /// End of the range counted (exclusive).
    pub to: DateTime<Utc>,
    /// Every call in the range, billable or not, late or not.
    pub calls: u64,
    /// Billable calls: billable by the rule at their time and on time, plus late calls billed in this period.
    pub billable_calls: u64,
    /// Calls that are not billable here (by the rule, or late).
    pub non_billable_calls: u64,
    /// Calls that arrived after their period closed.
    pub late_calls: u64,
    /// Reads: list, stat, read, login, other.
    pub read_calls: u64,
    /// Writes: write, delete, move, copy, mkdir.
    pub write_calls: u64,
    /// Calls by interface.
    pub by_interface: BTreeMap<String, CallCount>,
    /// Sum of the operator's adjustments to the period.
    pub adjustments: i64,
    /// What is billed: billable calls plus adjustments (never below zero).
    pub billed_calls: u64,
    /// Calls the plan includes per period.
    pub included_calls: u64,
    /// Calls left in the allowance.
    pub remaining_calls: u64,
    /// Overage and its price.
    pub overage: OverageInfo,
    /// Billed calls expected by the period's end at the pace so far (open periods only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub projected_calls: Option<u64>,
    /// Counts by the asked dimensions, largest first: at most the 1,000
    /// largest groups (`usage_groups.rs`), the others summed in `other_groups`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<Group>>,
    /// Whether `groups` leaves groups out (with `group_by` only): then
    /// `other_groups` sums them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups_truncated: Option<bool>,
    /// The groups left out of `groups`, summed (only when some were).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_groups: Option<OtherGroups>,
    /// Counts per local hour or day.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub series: Option<Vec<SeriesPoint>>,
}

/// Counts for one combination of the `group_by` dimensions.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Group {
    /// The dimension values, by dimension name.
    #[schema(value_type = BTreeMap<String, String>)]
    pub key: BTreeMap<&'static str, String>,
    /// The counts.
    #[serde(flatten)]
    pub count: CallCount,
}

/// The groups an answer leaves out, summed.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct OtherGroups {
    /// How many groups.
    pub groups: u64,
    /// Their counts, summed.
    #[serde(flatten)]
    pub count: CallCount,
}

/// Counts for one local hour or day.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct SeriesPoint {
    /// Start of the slot, in the account's zone.
    #[schema(format = DateTime)]
    pub start: String,
    /// The counts.
    #[serde(flatten)]
    pub count: CallCount,
}

/// A dimension of `group_by`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dimension {
    /// The interface.
    Interface,
    /// The operation.
    Operation,
    /// The api key.
    ApiKey,
    /// The user.
    User,
}

impl Dimension {
    /// Every dimension, in the order of `group_by`'s documentation.
    pub const ALL: [Dimension; 4] = [Dimension::Interface, Dimension::Operation, Dimension::ApiKey, Dimension::User];

    /// Parses `interface,operation,api_key,user`: each known dimension at
    /// most once, so at most four. A repeat is refused rather than ignored:
    /// grouping by a dimension thousands of times once took a core for
    /// seconds per request (issue 12).
    pub fn parse_list(s: &str) -> Result<Vec<Dimension>, ApiError> {
        const KNOWN: &str = "interface, operation, api_key, user, each at most once";
        // The longest valid list, with some room for spaces: anything longer is refused unread.
        if s.len() > 64 {
            return Err(ApiError::BadRequest(format!("group_by: {} bytes is too long: {KNOWN}", s.len())));
        }
        let mut dims = Vec::with_capacity(4);
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let d = match part {
                "interface" => Dimension::Interface,
                "operation" => Dimension::Operation,
                "api_key" => Dimension::ApiKey,
                "user" => Dimension::User,
                other => return Err(ApiError::BadRequest(format!("group_by: {other:?} is not one of {KNOWN}"))),
            };
            if dims.contains(&d) {
                return Err(ApiError::BadRequest(format!("group_by: {part:?} is given twice: {KNOWN}")));
            }
            dims.push(d);
        }
        Ok(dims)
    }

    /// Whether its counts come from the breakdown (a row per api key and
    /// user) rather than the totals.
    pub fn needs_breakdown(self) -> bool {
        matches!(self, Dimension::ApiKey | Dimension::User)
    }

    /// The dimension's name in `group_by` and in a group's `key`.
    pub fn name(self) -> &'static str {
        match self {
            Dimension::Interface => "interface",
            Dimension::Operation => "operation",
            Dimension::ApiKey => "api_key",
            Dimension::User => "user",
        }
    }
}

/// Time-series slot size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granularity {
    /// Local hours.
    Hour,
    /// Local days.
    Day,
}

/// The dates `period=` takes: no call is before 1970 (a date of year 0 once
/// answered a period starting in year -1), and the period of the last one
/// still ends in a year RFC 3339 can write.
pub const PERIOD_DATES: std::ops::RangeInclusive<NaiveDate> = {
    let (Some(first), Some(last)) = (NaiveDate::from_ymd_opt(1970, 1, 1), NaiveDate::from_ymd_opt(9998, 12, 31)) else {
        panic!("valid dates")
    };
    first..=last
};

/// The usage period that `period=` names for an account: `current`, `previous`, or a local date inside it.
pub fn select_period(account: &AccountRecord, selector: &str, now: DateTime<Utc>) -> Result<UsagePeriod, ApiError> {
    let (current, term) = account.schedule.period_containing(now);
    match selector {
        "current" => Ok(current),
        "previous" => Ok(account.schedule.period_containing(current.start - chrono::Duration::nanoseconds(1)).0),
        date => {
            let d = NaiveDate::parse_from_str(date, "%Y-%m-%d").map_err(|_| {
                ApiError::BadRequest(format!("period: {date:?} is not current, previous or a date YYYY-MM-DD"))
            })?;
            if !PERIOD_DATES.contains(&d) {
                return Err(ApiError::BadRequest(format!(
                    "period: {date:?} is outside the dates a period may be asked by, from {} to {}",
                    PERIOD_DATES.start(),
                    PERIOD_DATES.end()
                )));
            }
            Ok(account.schedule.period_containing(local_midnight(term.rule.tz, d)).0)
        }
    }
}

/// Whether a totals row counts as a call of its bucket (carried rows only count towards billing).
fn is_call(flags: CallFlags) -> bool {
    !flags.carried
}

/// Whether a row's calls are billed in the bucket's period.
fn is_billed(flags: CallFlags) -> bool {
    flags.billable && (!flags.late || flags.carried)
}

/// Builds the report from the rows of `[from, to)`.
#[allow(clippy::too_many_arguments)]
pub fn report(
    account: &AccountRecord,
    plan: &Plan,
    period: Option<(UsagePeriod, DateTime<Utc>)>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    rows: &[TotalRow],
    adjustments: i64,
    now: DateTime<Utc>,
) -> UsageReport {
    let mut r = UsageReport {
        account: account.name.clone(),
        plan: plan.name.clone(),
        timezone: account.schedule.period_containing(from).1.rule.tz.name().to_owned(),
        period: period.map(|(p, closes_at)| PeriodInfo::new(p, closes_at, now)),
        from,
        to,
        calls: 0,
        billable_calls: 0,
        non_billable_calls: 0,
        late_calls: 0,
        read_calls: 0,
        write_calls: 0,
        by_interface: BTreeMap::new(),
        adjustments,
        billed_calls: 0,
        included_calls: plan.included_calls,
        remaining_calls: 0,
        overage: OverageInfo { calls: 0, blocks: 0, price: 0, currency: plan.currency.clone() },
        projected_calls: None,
        groups: None,
        groups_truncated: None,
        other_groups: None,
        series: None,
    };
    for row in rows {
        let entry = r.by_interface.entry(row.interface.as_str().to_owned()).or_default();
        if is_billed(row.flags) {
            r.billable_calls += row.calls;
            entry.billable_calls += row.calls;
        }
        if !is_call(row.flags) {
            continue;
        }
        entry.calls += row.calls;
        r.calls += row.calls;
        if row.flags.late {
            r.late_calls += row.calls;
        }
        match row.operation.direction() {
            Direction::Read => r.read_calls += row.calls,
            Direction::Write => r.write_calls += row.calls,
        }
    }
    let on_time_billable: u64 = rows.iter().filter(|x| is_call(x.flags) && is_billed(x.flags)).map(|x| x.calls).sum();
    r.non_billable_calls = r.calls - on_time_billable;
    r.billed_calls = adjusted(r.billable_calls, adjustments);
    r.remaining_calls = plan.included_calls.saturating_sub(r.billed_calls);
    let over = plan.overage(r.billed_calls);
    r.overage =
        OverageInfo { calls: over.calls, blocks: over.blocks, price: over.price, currency: plan.currency.clone() };
    if let Some((p, _)) = period {
        if p.contains(now) {
            // The metered calls come at a pace; an adjustment is a one-off,
            // so it is added once, not scaled with the period.
            let elapsed = (now - p.start).num_seconds().max(1) as f64;
            let length = (p.end - p.start).num_seconds() as f64;
            let metered = (r.billable_calls as f64 * length / elapsed).round() as u64;
            r.projected_calls = Some(adjusted(metered, adjustments));
        }
    }
    r
}

/// Billable calls with the adjustments applied: never below zero, and never
/// wrapping however large either is.
fn adjusted(billable: u64, adjustments: i64) -> u64 {
    (i128::from(billable) + i128::from(adjustments)).clamp(0, i128::from(u64::MAX)) as u64
}

/// The sum of a period's adjustments, saturating: adjustments are bounded one
/// by one when they are made, but their number is not, and a sum must not wrap
/// into the opposite sign.
pub fn sum_adjustments(adjustments: &[Adjustment]) -> i64 {
    adjustments.iter().fold(0i64, |sum, a| sum.saturating_add(a.calls))
}

/// Counts by the asked dimensions, from totals rows (interface and operation only).
pub fn groups_from_totals(rows: &[TotalRow], dims: &[Dimension]) -> Vec<Group> {
    let mut map: BTreeMap<Vec<String>, CallCount> = BTreeMap::new();
    for row in rows {
        let key = dims
            .iter()
            .map(|d| match d {
                Dimension::Interface => row.interface.as_str().to_owned(),
                Dimension::Operation => row.operation.as_str().to_owned(),
                Dimension::ApiKey | Dimension::User => String::new(),
            })
            .collect();
        add(map.entry(key).or_default(), row.flags, row.calls);
    }
    finish_groups(map, dims)
}

/// Counts by the asked dimensions, from breakdown rows (any dimension).
pub fn groups_from_breakdown(rows: &[BreakdownRow], dims: &[Dimension]) -> Vec<Group> {
    let mut map: BTreeMap<Vec<String>, CallCount> = BTreeMap::new();
    for row in rows {
        let key = dims
            .iter()
            .map(|d| match d {
                Dimension::Interface => row.interface.as_str().to_owned(),
                Dimension::Operation => row.operation.as_str().to_owned(),
                Dimension::ApiKey => row.api_key.clone(),
                Dimension::User => row.user.clone(),
            })
            .collect();
        add(map.entry(key).or_default(), row.flags, row.calls);
    }
    finish_groups(map, dims)
}

/// Adds a row's calls to a count: as calls unless carried, as billable when billed.
pub(crate) fn add(c: &mut CallCount, flags: CallFlags, calls: u64) {
    if is_billed(flags) {
        c.billable_calls += calls;
    }
    if is_call(flags) {
        c.calls += calls;
    }
}

fn finish_groups(map: BTreeMap<Vec<String>, CallCount>, dims: &[Dimension]) -> Vec<Group> {
    let mut groups: Vec<Group> = map
        .into_iter()
        .map(|(values, count)| Group { key: dims.iter().map(|d| d.name()).zip(values).collect(), count })
        .collect();
    groups.sort_by_key(|g| std::cmp::Reverse(g.count.calls));
    groups
}

/// Counts per local hour or day of the account's zone.
pub fn series(rows: &[TotalRow], tz: chrono_tz::Tz, granularity: Granularity) -> Vec<SeriesPoint> {
    let mut by_bucket: BTreeMap<i64, CallCount> = BTreeMap::new();
    for row in rows {
        add(by_bucket.entry(row.bucket).or_default(), row.flags, row.calls);
    }
    let mut slots: BTreeMap<DateTime<Utc>, CallCount> = BTreeMap::new();
    for (bucket, count) in by_bucket {
        let local = bucket_start(bucket).with_timezone(&tz);
        let slot = match granularity {
            Granularity::Hour => local
                .with_minute(0)
                .and_then(|t| t.with_second(0))
                .map_or(local.with_timezone(&Utc), |t| t.with_timezone(&Utc)),
            Granularity::Day => local_midnight(tz, local.date_naive()),
        };
        let c = slots.entry(slot).or_default();
        c.calls += count.calls;
        c.billable_calls += count.billable_calls;
    }
    slots.into_iter().map(|(t, count)| SeriesPoint { start: t.with_timezone(&tz).to_rfc3339(), count }).collect()
}

/// The buckets covering `[from, to)`: every bucket that starts inside it.
pub fn bucket_range(from: DateTime<Utc>, to: DateTime<Utc>) -> (i64, i64) {
    let first = bucket_of(from) + i64::from(bucket_start(bucket_of(from)) < from);
    let end = bucket_of(to) + i64::from(bucket_start(bucket_of(to)) < to);
    (first, end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use callmeter_model::{AccountSchedule, Interface, Operation, PeriodKind};
    use chrono::Datelike;

    fn plan() -> Plan {
        Plan {
            name: "p".into(),
            period: PeriodKind::Monthly,
            included_calls: 1000,
            overage_price_per_1000: 7,
            currency: "EUR".into(),
        }
    }

    fn account() -> AccountRecord {
        AccountRecord {
            name: "acme".into(),
            schedule: AccountSchedule::new("p".into(), chrono_tz::UTC, NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()),
            created_at: Utc::now(),
            max_block_span_ns: 0,
            list_page_size: None,
            alert_thresholds: None,
        }
    }

    fn row(i: Interface, o: Operation, billable: bool, late: bool, carried: bool, calls: u64) -> TotalRow {
        TotalRow { bucket: 0, interface: i, operation: o, flags: CallFlags { billable, late, carried }, calls }
    }

    #[test]
    fn counts_billable_late_and_carried_apart() {
        let rows = vec![
            row(Interface::Rest, Operation::List, true, false, false, 1500),
            row(Interface::Mount, Operation::Write, false, false, false, 10),
            row(Interface::Rest, Operation::Read, true, true, false, 4),
            row(Interface::Rest, Operation::Read, true, true, true, 2),
        ];
        let now = Utc::now();
        let r = report(&account(), &plan(), None, now, now, &rows, -100, now);
        assert_eq!(r.calls, 1514);
        assert_eq!(r.billable_calls, 1502);
        assert_eq!(r.non_billable_calls, 14);
        assert_eq!(r.late_calls, 4);
        assert_eq!((r.read_calls, r.write_calls), (1504, 10));
        assert_eq!(r.billed_calls, 1402);
        assert_eq!(r.overage, OverageInfo { calls: 402, blocks: 1, price: 7, currency: "EUR".into() });
        assert_eq!(r.by_interface["rest"], CallCount { calls: 1504, billable_calls: 1502 });
    }

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn the_projection_scales_metered_calls_and_adds_adjustments_once() {
        // A 30-day period, a quarter of it gone.
        let period = account().schedule.period_containing(t("2026-01-10T00:00:00Z")).0;
        assert_eq!((period.start, period.end), (t("2026-01-01T00:00:00Z"), t("2026-01-31T00:00:00Z")));
        let now = period.start + (period.end - period.start) / 4;
        let rows = vec![row(Interface::Rest, Operation::Read, true, false, false, 100)];
        let r = report(&account(), &plan(), Some((period, period.end)), period.start, now, &rows, 50, now);
        assert_eq!(r.billed_calls, 150);
        assert_eq!(r.projected_calls, Some(400 + 50), "100 calls a quarter is 400 a period; the 50 come once");
        let r = report(&account(), &plan(), Some((period, period.end)), period.start, now, &rows, -1000, now);
        assert_eq!(r.projected_calls, Some(0), "a credit larger than the projection leaves nothing to bill");
        // A closed or past period has no projection.
        let later = period.end + chrono::Duration::days(1);
        let r = report(&account(), &plan(), Some((period, period.end)), period.start, period.end, &rows, 50, later);
        assert_eq!(r.projected_calls, None);
    }

    #[test]
    fn adjustments_never_wrap() {
        let rows = vec![row(Interface::Rest, Operation::Read, true, false, false, 10)];
        let now = Utc::now();
        let r = report(&account(), &plan(), None, now, now, &rows, i64::MAX, now);
        assert_eq!(r.billed_calls, 10 + i64::MAX as u64);
        let r = report(&account(), &plan(), None, now, now, &rows, i64::MIN, now);
        assert_eq!(r.billed_calls, 0);
        assert_eq!(adjusted(u64::MAX, i64::MAX), u64::MAX);
        let adj = |calls| Adjustment {
            account: "acme".into(),
            period_start: now,
            calls,
            reason: "r".into(),
            created_at: now,
        };
        assert_eq!(sum_adjustments(&[adj(i64::MAX), adj(i64::MAX)]), i64::MAX, "not -2");
        assert_eq!(sum_adjustments(&[adj(i64::MIN), adj(-1)]), i64::MIN);
        assert_eq!(sum_adjustments(&[adj(5), adj(-7)]), -2);
        assert_eq!(sum_adjustments(&[]), 0);
    }

    #[test]
    fn bucket_range_takes_buckets_starting_inside() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let (a, b) = bucket_range(t("2026-01-01T00:00:00Z"), t("2026-01-01T01:00:00Z"));
        assert_eq!(b - a, 4);
        let (a2, b2) = bucket_range(t("2026-01-01T00:05:00Z"), t("2026-01-01T01:00:01Z"));
        assert_eq!((a2, b2), (a + 1, b + 1));
    }

    #[test]
    fn a_period_is_asked_by_a_date_from_1970_to_9998() {
        let now = Utc::now();
        for date in ["0000-01-01", "1969-12-31", "9999-01-01", "+10000-01-01"] {
            let e = select_period(&account(), date, now).unwrap_err();
            assert_eq!(e.code_and_status().1, 400, "{date}");
            assert!(e.to_string().starts_with("period:"), "{date}: {e}");
        }
        let e = select_period(&account(), "0000-01-01", now).unwrap_err().to_string();
        assert!(e.contains("from 1970-01-01 to 9998-12-31"), "{e}");
        for date in ["1970-01-01", "9998-12-31"] {
            let p = select_period(&account(), date, now).unwrap();
            assert!(p.start.year() >= 1969 && p.end.year() <= 9999, "{date}: {p:?}");
            assert!(!p.end.to_rfc3339().starts_with('+'), "{date}: RFC 3339 writes its end");
        }
    }

    #[test]
    fn group_by_takes_each_dimension_once() {
        let all = Dimension::parse_list("interface, operation,api_key,user").unwrap();
        assert_eq!(all, vec![Dimension::Interface, Dimension::Operation, Dimension::ApiKey, Dimension::User]);
        assert!(Dimension::parse_list("").unwrap().is_empty());
        let twice = Dimension::parse_list("interface,interface").unwrap_err();
        assert!(twice.to_string().contains("given twice"), "{twice}");
        assert!(Dimension::parse_list("color").is_err());
        let many = vec!["interface"; 5_000].join(",");
        assert!(Dimension::parse_list(&many).unwrap_err().to_string().contains("too long"));
    }
}
