use super::*;
use chrono::Duration;
use chrono_tz::{America, Asia, Pacific};

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

fn p(start: &str, end: &str) -> UsagePeriod {
    UsagePeriod { start: t(start), end: t(end) }
}

fn plan(name: &str, period: PeriodKind) -> Plan {
    Plan { name: name.into(), period, included_calls: 1000, overage_price_per_1000: 1, currency: "USD".into() }
}

fn plans() -> Vec<Plan> {
    vec![
        plan("starter", PeriodKind::ThirtyDays),
        plan("pro", PeriodKind::ThirtyDays),
        plan("business", PeriodKind::Monthly),
    ]
}

#[test]
fn period_kind_names() {
    assert_eq!(serde_json::to_string(&PeriodKind::ThirtyDays).unwrap(), "\"30d\"");
    assert_eq!(serde_json::from_str::<PeriodKind>("\"monthly\"").unwrap(), PeriodKind::Monthly);
    assert_eq!("30d".parse::<PeriodKind>(), Ok(PeriodKind::ThirtyDays));
    assert_eq!(
        "weekly".parse::<PeriodKind>().unwrap_err().to_string(),
        "unknown period \"weekly\" (expected 30d or monthly)"
    );
}

#[test]
fn usage_period_is_half_open_and_closes_after_grace() {
    let q = p("2026-01-01T00:00:00Z", "2026-01-31T00:00:00Z");
    assert!(q.contains(q.start));
    assert!(q.contains(q.end - Duration::nanoseconds(1)));
    assert!(!q.contains(q.end));
    assert!(!q.contains(q.start - Duration::nanoseconds(1)));
    assert_eq!(q.closes_at(Duration::hours(72)), t("2026-02-03T00:00:00Z"));
}

#[test]
fn local_midnight_in_ordinary_zones() {
    assert_eq!(local_midnight(Tz::UTC, d(2026, 3, 1)), t("2026-03-01T00:00:00Z"));
    assert_eq!(local_midnight(America::New_York, d(2026, 2, 20)), t("2026-02-20T05:00:00Z"));
    assert_eq!(local_midnight(America::New_York, d(2026, 3, 22)), t("2026-03-22T04:00:00Z"));
    assert_eq!(local_midnight(Asia::Kathmandu, d(2026, 3, 1)), t("2026-02-28T18:15:00Z"));
}

#[test]
fn local_midnight_in_a_gap_is_the_first_instant_after_it() {
    // Cuba springs forward at 00:00 to 01:00 (second Sunday of March).
    assert_eq!(local_midnight(America::Havana, d(2024, 3, 10)), t("2024-03-10T05:00:00Z"));
    // Samoa skipped 2011-12-30 entirely: that date and the next start together.
    assert_eq!(local_midnight(Pacific::Apia, d(2011, 12, 30)), t("2011-12-30T10:00:00Z"));
    assert_eq!(local_midnight(Pacific::Apia, d(2011, 12, 31)), t("2011-12-30T10:00:00Z"));
    assert_eq!(local_midnight(Pacific::Apia, d(2011, 12, 29)), t("2011-12-29T10:00:00Z"));
}

#[test]
fn ambiguous_local_midnight_is_the_earlier() {
    // Cuba falls back at 01:00 CDT to 00:00 CST: midnight of 2024-11-03 happens twice.
    assert_eq!(local_midnight(America::Havana, d(2024, 11, 3)), t("2024-11-03T04:00:00Z"));
}

#[test]
fn thirty_days_across_new_york_spring_forward() {
    let rule = PeriodRule { kind: PeriodKind::ThirtyDays, tz: America::New_York, anchor: d(2026, 2, 20) };
    let q = rule.period_containing(t("2026-03-10T12:00:00Z"));
    // Starts at midnight EST (UTC−5), ends at midnight EDT (UTC−4).
    assert_eq!(q, p("2026-02-20T05:00:00Z", "2026-03-22T04:00:00Z"));
    assert_eq!(q.end - q.start, Duration::hours(30 * 24 - 1));
    assert_eq!(rule.period_containing(q.end), p("2026-03-22T04:00:00Z", "2026-04-21T04:00:00Z"));
    assert_eq!(rule.period_containing(q.end - Duration::nanoseconds(1)), q);
    assert_eq!(rule.period_containing(q.start), q);
    assert_eq!(rule.period_containing(q.start - Duration::seconds(1)).end, q.start);
}

#[test]
fn thirty_days_before_the_anchor_for_backfills() {
    let rule = PeriodRule { kind: PeriodKind::ThirtyDays, tz: Tz::UTC, anchor: d(2026, 2, 20) };
    assert_eq!(rule.period_containing(t("2026-01-25T00:00:00Z")), p("2026-01-21T00:00:00Z", "2026-02-20T00:00:00Z"));
    assert_eq!(rule.period_containing(t("2026-01-01T00:00:00Z")), p("2025-12-22T00:00:00Z", "2026-01-21T00:00:00Z"));
    assert_eq!(rule.period_containing(t("2025-12-01T08:00:00Z")), p("2025-11-22T00:00:00Z", "2025-12-22T00:00:00Z"));
    assert_eq!(rule.period_containing(t("2026-02-19T23:59:59Z")), p("2026-01-21T00:00:00Z", "2026-02-20T00:00:00Z"));
    assert_eq!(rule.period_containing(t("1969-12-31T23:59:59Z")).end.timestamp() % 86_400, 0);
    let monthly = PeriodRule { kind: PeriodKind::Monthly, tz: Tz::UTC, anchor: d(2026, 3, 15) };
    assert_eq!(monthly.period_containing(t("2025-12-20T00:00:00Z")), p("2025-12-15T00:00:00Z", "2026-01-15T00:00:00Z"));
    assert_eq!(monthly.period_containing(t("2025-12-14T23:59:59Z")), p("2025-11-15T00:00:00Z", "2025-12-15T00:00:00Z"));
}

#[test]
fn monthly_on_the_31st_in_a_leap_year() {
    let rule = PeriodRule { kind: PeriodKind::Monthly, tz: Tz::UTC, anchor: d(2024, 1, 31) };
    let at = |s: &str| rule.period_containing(t(s));
    assert_eq!(at("2024-01-15T00:00:00Z"), p("2023-12-31T00:00:00Z", "2024-01-31T00:00:00Z"));
    assert_eq!(at("2024-02-15T00:00:00Z"), p("2024-01-31T00:00:00Z", "2024-02-29T00:00:00Z"));
    assert_eq!(at("2024-02-29T00:00:00Z"), p("2024-02-29T00:00:00Z", "2024-03-31T00:00:00Z"));
    assert_eq!(at("2024-03-30T23:59:59Z"), p("2024-02-29T00:00:00Z", "2024-03-31T00:00:00Z"));
    assert_eq!(at("2024-04-15T00:00:00Z"), p("2024-03-31T00:00:00Z", "2024-04-30T00:00:00Z"));
    assert_eq!(at("2024-05-01T00:00:00Z"), p("2024-04-30T00:00:00Z", "2024-05-31T00:00:00Z"));
}

#[test]
fn monthly_on_the_31st_in_a_common_year() {
    let rule = PeriodRule { kind: PeriodKind::Monthly, tz: Tz::UTC, anchor: d(2024, 1, 31) };
    let at = |s: &str| rule.period_containing(t(s));
    assert_eq!(at("2025-02-01T00:00:00Z"), p("2025-01-31T00:00:00Z", "2025-02-28T00:00:00Z"));
    assert_eq!(at("2025-02-27T23:59:59Z"), p("2025-01-31T00:00:00Z", "2025-02-28T00:00:00Z"));
    assert_eq!(at("2025-02-28T00:00:00Z"), p("2025-02-28T00:00:00Z", "2025-03-31T00:00:00Z"));
    assert_eq!(at("2025-03-31T00:00:00Z"), p("2025-03-31T00:00:00Z", "2025-04-30T00:00:00Z"));
}

#[test]
fn monthly_in_a_zone() {
    let rule = PeriodRule { kind: PeriodKind::Monthly, tz: America::New_York, anchor: d(2026, 1, 1) };
    assert_eq!(rule.period_containing(t("2026-03-10T00:00:00Z")), p("2026-03-01T05:00:00Z", "2026-04-01T04:00:00Z"));
    // 2026-03-01T04:59Z is still February in New York.
    assert_eq!(rule.period_containing(t("2026-03-01T04:59:59Z")).end, t("2026-03-01T05:00:00Z"));
}

#[test]
fn kathmandu_days_start_at_18_15_utc() {
    let rule = PeriodRule { kind: PeriodKind::ThirtyDays, tz: Asia::Kathmandu, anchor: d(2026, 3, 1) };
    let q = p("2026-02-28T18:15:00Z", "2026-03-30T18:15:00Z");
    assert_eq!(rule.period_containing(t("2026-02-28T18:15:00Z")), q);
    assert_eq!(rule.period_containing(t("2026-03-30T18:14:59Z")), q);
    assert_eq!(rule.period_containing(t("2026-02-28T18:14:59Z")).end, q.start);
    let schedule = AccountSchedule::new("starter".into(), Asia::Kathmandu, d(2026, 3, 1));
    assert_eq!(schedule.terms[0].from, t("2026-02-28T18:15:00Z"));
}

#[test]
fn periods_tile_time_without_gaps_or_overlaps() {
    let rules = [
        PeriodRule { kind: PeriodKind::ThirtyDays, tz: America::New_York, anchor: d(2025, 10, 30) },
        PeriodRule { kind: PeriodKind::Monthly, tz: America::Havana, anchor: d(2024, 3, 31) },
        PeriodRule { kind: PeriodKind::Monthly, tz: Pacific::Apia, anchor: d(2011, 1, 30) },
    ];
    for rule in rules {
        let mut q = rule.period_containing(t("2010-01-01T00:00:00Z"));
        while q.end < t("2030-01-01T00:00:00Z") {
            let next = rule.period_containing(q.end);
            assert_eq!(next.start, q.end, "{rule:?}");
            assert!(next.end > next.start, "{rule:?}");
            assert_eq!(rule.period_containing(next.end - Duration::nanoseconds(1)), next, "{rule:?}");
            q = next;
        }
    }
}

#[test]
fn extreme_times_do_not_panic() {
    for kind in [PeriodKind::ThirtyDays, PeriodKind::Monthly] {
        let rule = PeriodRule { kind, tz: Asia::Kathmandu, anchor: d(2026, 1, 31) };
        for x in
            [DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC, t("0000-01-01T00:00:00Z"), t("9999-12-31T23:59:59Z")]
        {
            let _ = rule.period_containing(x);
        }
    }
    let _ = local_midnight(America::New_York, NaiveDate::MAX);
    let _ = local_midnight(America::New_York, NaiveDate::MIN);
    let q = p("2026-01-01T00:00:00Z", "2026-01-31T00:00:00Z");
    assert_eq!(q.closes_at(Duration::MAX), DateTime::<Utc>::MAX_UTC);
}

#[test]
fn plan_change_takes_effect_next_period_and_keeps_current_bounds() {
    let mut s = AccountSchedule::new("starter".into(), Tz::UTC, d(2026, 1, 1));
    let now = t("2026-01-15T10:00:00Z");
    let (before, _) = s.period_containing(now);
    assert_eq!(before, p("2026-01-01T00:00:00Z", "2026-01-31T00:00:00Z"));
    let at = s.schedule_change(now, Some("pro".into()), None, None, &plans());
    assert_eq!(at, before.end);
    assert_eq!(s.period_containing(now).0, before, "the current period's bounds never move");
    assert_eq!(s.plan_at(now), "starter");
    assert_eq!(s.plan_at(at - Duration::nanoseconds(1)), "starter");
    assert_eq!(s.plan_at(at), "pro");
    assert_eq!(s.period_containing(at).0, p("2026-01-31T00:00:00Z", "2026-03-02T00:00:00Z"));
    assert_eq!(s.plan_at(t("2025-06-01T00:00:00Z")), "starter", "the first term covers earlier times");
}

#[test]
fn next_period_follows_the_new_rule() {
    let mut s = AccountSchedule::new("starter".into(), Tz::UTC, d(2026, 1, 1));
    let now = t("2026-01-15T00:00:00Z");
    let at = s.schedule_change(now, Some("business".into()), None, None, &plans());
    assert_eq!(at, t("2026-01-31T00:00:00Z"));
    assert_eq!(s.terms[1].rule, PeriodRule { kind: PeriodKind::Monthly, tz: Tz::UTC, anchor: d(2026, 1, 31) });
    assert_eq!(s.period_containing(now).0, p("2026-01-01T00:00:00Z", "2026-01-31T00:00:00Z"));
    assert_eq!(s.period_containing(at).0, p("2026-01-31T00:00:00Z", "2026-02-28T00:00:00Z"));
    assert_eq!(s.period_containing(t("2026-03-01T00:00:00Z")).0, p("2026-02-28T00:00:00Z", "2026-03-31T00:00:00Z"));
}

#[test]
fn anchor_change_starts_after_the_current_period() {
    let mut s = AccountSchedule::with_kind("business".into(), PeriodKind::Monthly, Tz::UTC, d(2026, 1, 1));
    let now = t("2026-02-10T00:00:00Z");
    let at = s.schedule_change(now, None, None, Some(d(2026, 3, 15)), &plans());
    assert_eq!(at, t("2026-03-01T00:00:00Z"));
    assert_eq!(s.period_containing(now).0, p("2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z"));
    assert_eq!(s.period_containing(at).0, p("2026-03-01T00:00:00Z", "2026-03-15T00:00:00Z"));
    assert_eq!(s.period_containing(t("2026-03-20T00:00:00Z")).0, p("2026-03-15T00:00:00Z", "2026-04-15T00:00:00Z"));
}

#[test]
fn pending_change_is_replaced_not_stacked() {
    let mut s = AccountSchedule::new("starter".into(), Tz::UTC, d(2026, 1, 1));
    let at = s.schedule_change(t("2026-01-10T00:00:00Z"), Some("pro".into()), None, None, &plans());
    let again = s.schedule_change(t("2026-01-20T00:00:00Z"), Some("business".into()), None, None, &plans());
    assert_eq!(at, again);
    assert_eq!(s.terms.len(), 2);
    assert_eq!(s.plan_at(at), "business");
    // Changing back to what is in force cancels the pending change.
    s.schedule_change(t("2026-01-21T00:00:00Z"), Some("starter".into()), None, None, &plans());
    assert_eq!(s.terms.len(), 1);
    // Once a term has started it stays; the next change goes after its first period.
    let at = s.schedule_change(t("2026-01-22T00:00:00Z"), Some("pro".into()), None, None, &plans());
    let later = s.schedule_change(at + Duration::days(3), Some("starter".into()), None, None, &plans());
    assert_eq!(s.terms.len(), 3);
    assert_eq!(later, t("2026-03-02T00:00:00Z"));
    assert_eq!((s.plan_at(at), s.plan_at(later)), ("pro", "starter"));
}

#[test]
fn zone_change_to_the_east_rebases_thirty_days() {
    let mut s = AccountSchedule::new("starter".into(), Tz::UTC, d(2026, 1, 1));
    let at = s.schedule_change(t("2026-01-10T00:00:00Z"), None, Some(Asia::Tokyo), None, &plans());
    assert_eq!(at, t("2026-01-31T00:00:00Z"));
    assert_eq!(s.terms[1].rule.anchor, d(2026, 1, 31));
    // From the change to 2026-03-02 00:00 in Tokyo.
    assert_eq!(s.period_containing(at).0, p("2026-01-31T00:00:00Z", "2026-03-01T15:00:00Z"));
    assert_eq!(s.period_containing(t("2026-03-01T15:00:00Z")).0, p("2026-03-01T15:00:00Z", "2026-03-31T15:00:00Z"));
}

#[test]
fn zone_change_to_the_west_folds_the_sliver_into_the_first_period() {
    let mut s = AccountSchedule::with_kind("business".into(), PeriodKind::Monthly, Tz::UTC, d(2026, 1, 31));
    let now = t("2026-03-10T00:00:00Z");
    let at = s.schedule_change(now, None, Some(America::New_York), None, &plans());
    assert_eq!(at, t("2026-03-31T00:00:00Z"));
    assert_eq!(s.terms[1].rule.anchor, d(2026, 1, 31), "monthly keeps its day of month");
    assert_eq!(s.period_containing(now).0, p("2026-02-28T00:00:00Z", "2026-03-31T00:00:00Z"));
    // 00:00Z is 20:00 the day before in New York; midnight there is 4 hours later: no 4-hour period.
    assert_eq!(s.period_containing(at).0, p("2026-03-31T00:00:00Z", "2026-04-30T04:00:00Z"));
    assert_eq!(s.period_containing(t("2026-03-31T05:00:00Z")).0, p("2026-03-31T00:00:00Z", "2026-04-30T04:00:00Z"));
    assert_eq!(s.period_containing(t("2026-05-01T00:00:00Z")).0, p("2026-04-30T04:00:00Z", "2026-05-31T04:00:00Z"));
}

#[test]
fn hand_made_terms_are_cut_not_panicked_on() {
    let rule = PeriodRule { kind: PeriodKind::ThirtyDays, tz: Tz::UTC, anchor: d(2026, 1, 1) };
    let s = AccountSchedule {
        terms: vec![
            Term { from: t("2026-01-01T00:00:00Z"), plan: "a".into(), rule },
            Term { from: t("2026-01-10T06:00:00Z"), plan: "b".into(), rule },
        ],
    };
    assert_eq!(s.period_containing(t("2026-01-05T00:00:00Z")).0, p("2026-01-01T00:00:00Z", "2026-01-10T06:00:00Z"));
    assert_eq!(s.period_containing(t("2026-01-10T07:00:00Z")).0, p("2026-01-10T06:00:00Z", "2026-01-31T00:00:00Z"));
    let empty = AccountSchedule { terms: vec![] };
    assert_eq!(empty.plan_at(t("2026-01-05T00:00:00Z")), "");
    let mut empty = empty;
    let at = empty.schedule_change(t("2026-01-05T00:00:00Z"), Some("x".into()), None, None, &[]);
    assert_eq!(empty.plan_at(at), "x");
}

#[test]
fn schedule_serde_round_trips_and_refuses_empty() {
    let mut s = AccountSchedule::new("starter".into(), America::New_York, d(2026, 2, 20));
    s.schedule_change(t("2026-03-01T00:00:00Z"), Some("business".into()), None, None, &plans());
    let json = serde_json::to_string(&s).unwrap();
    assert!(json.contains(r#""tz":"America/New_York""#) && json.contains(r#""kind":"30d""#), "{json}");
    assert_eq!(serde_json::from_str::<AccountSchedule>(&json).unwrap(), s);
    assert!(serde_json::from_str::<AccountSchedule>(r#"{"terms":[]}"#).is_err());
    let for_plan = AccountSchedule::for_plan(&plan("business", PeriodKind::Monthly), Tz::UTC, d(2026, 1, 1));
    assert_eq!(for_plan.terms[0].rule.kind, PeriodKind::Monthly);
}
