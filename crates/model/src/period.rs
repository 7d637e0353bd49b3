//! Usage periods (DESIGN §2): `30d` and `monthly` rules in an account's time
//! zone, and an account's schedule of plans, zones and anchors over time.
//!
//! Every boundary is the first instant of a local date ([`local_midnight`]),
//! so a period is a whole number of local days and, since zone offsets are
//! multiples of 15 minutes, a whole number of 15-minute buckets.

use crate::plan::Plan;
use chrono::{DateTime, Datelike, Days, LocalResult, NaiveDate, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// How a plan's periods run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PeriodKind {
    /// Consecutive 30-day periods of local days, from the anchor date.
    #[serde(rename = "30d")]
    ThirtyDays,
    /// From the anchor's day of month to the same day of the next month.
    #[serde(rename = "monthly")]
    Monthly,
}

impl PeriodKind {
    /// `30d` or `monthly`.
    pub fn as_str(self) -> &'static str {
        match self {
            PeriodKind::ThirtyDays => "30d",
            PeriodKind::Monthly => "monthly",
        }
    }
}

impl fmt::Display for PeriodKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A period kind that is neither `30d` nor `monthly`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown period {0:?} (expected 30d or monthly)")]
pub struct UnknownPeriodKind(pub String);

impl FromStr for PeriodKind {
    type Err = UnknownPeriodKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "30d" => Ok(PeriodKind::ThirtyDays),
            "monthly" => Ok(PeriodKind::Monthly),
            _ => Err(UnknownPeriodKind(s.to_owned())),
        }
    }
}

/// A usage period: the half-open interval `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UsagePeriod {
    /// The first instant in the period.
    pub start: DateTime<Utc>,
    /// The first instant after it.
    pub end: DateTime<Utc>,
}

impl UsagePeriod {
    /// Whether `t` falls in the period.
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.start <= t && t < self.end
    }

    /// When the period closes: `grace` after its end; its billable total is final from then on.
    pub fn closes_at(&self, grace: chrono::Duration) -> DateTime<Utc> {
        self.end.checked_add_signed(grace).unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

/// The first instant of `date` in `tz`.
///
/// When local midnight falls in a gap (a zone that springs forward at
/// midnight, or skips a whole day), the first valid instant after it; when
/// midnight happens twice, the earlier. Never panics: far outside chrono's
/// range it falls back to midnight UTC.
pub fn local_midnight(tz: Tz, date: NaiveDate) -> DateTime<Utc> {
    let midnight = date.and_time(chrono::NaiveTime::MIN);
    match tz.from_local_datetime(&midnight) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(a, b) => a.min(b).with_timezone(&Utc),
        LocalResult::None => first_valid_after(tz, midnight).unwrap_or_else(|| midnight.and_utc()),
    }
}

/// The first instant whose local time is at or after `local`, which lies in a gap.
///
/// Gaps last at most a day (Samoa skipped 2011-12-30), so probe forward in
/// doubling steps to a valid local time, then bisect to the second.
fn first_valid_after(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    let valid = |secs: i64| {
        let l = local.checked_add_signed(chrono::Duration::seconds(secs))?;
        tz.from_local_datetime(&l).earliest()
    };
    let (mut bad, mut good) = (0i64, 1i64);
    while valid(good).is_none() {
        bad = good;
        good *= 2;
        if good > 4 * 86_400 {
            return None;
        }
    }
    while good - bad > 1 {
        let mid = bad + (good - bad) / 2;
        if valid(mid).is_some() {
            good = mid;
        } else {
            bad = mid;
        }
    }
    valid(good).map(|t| t.with_timezone(&Utc))
}

/// The local date of `t` in `tz`, saturating where chrono's range ends
/// (`DateTime::date_naive` panics there).
fn local_date(tz: Tz, t: DateTime<Utc>) -> NaiveDate {
    let utc = t.naive_utc();
    let offset = tz.offset_from_utc_datetime(&utc).fix();
    match utc.checked_add_offset(offset) {
        Some(local) => local.date(),
        None if offset.local_minus_utc() > 0 => NaiveDate::MAX,
        None => NaiveDate::MIN,
    }
}

/// `date` moved by `days`, saturating at chrono's range instead of panicking.
fn add_days(date: NaiveDate, days: i64) -> NaiveDate {
    let moved = if days >= 0 {
        date.checked_add_days(Days::new(days.unsigned_abs()))
    } else {
        date.checked_sub_days(Days::new(days.unsigned_abs()))
    };
    moved.unwrap_or(if days >= 0 { NaiveDate::MAX } else { NaiveDate::MIN })
}

/// How one term's periods run: kind, zone and anchor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeriodRule {
    /// `30d` or `monthly`.
    pub kind: PeriodKind,
    /// The IANA zone whose local days the periods are made of.
    pub tz: Tz,
    /// `30d`: a local date on which a period starts. `monthly`: only its day
    /// of month counts (a day past a month's end means that month's last day).
    pub anchor: NaiveDate,
}

impl PeriodRule {
    /// The period containing `t`, before or after the anchor alike (backfills).
    pub fn period_containing(&self, t: DateTime<Utc>) -> UsagePeriod {
        let local = local_date(self.tz, t);
        let mut k: i64 = match self.kind {
            PeriodKind::ThirtyDays => (local - self.anchor).num_days().div_euclid(30),
            PeriodKind::Monthly => {
                let m = month_index(local);
                if local >= self.monthly_start(m) {
                    m
                } else {
                    m - 1
                }
            }
        };
        // The local date points at the right period except around a zone's
        // fall-back across midnight; step until the instants agree.
        let (mut start, mut end) = (self.start_of(k), self.start_of(k + 1));
        for _ in 0..4 {
            if t < start {
                k -= 1;
                (start, end) = (self.start_of(k), start);
            } else if t >= end {
                k += 1;
                (start, end) = (end, self.start_of(k + 1));
            } else {
                break;
            }
        }
        UsagePeriod { start, end }
    }

    /// The first instant of period `k`: `30d`, the k-th after the anchor's;
    /// `monthly`, the one starting in month index `k` (see [`month_index`]).
    fn start_of(&self, k: i64) -> DateTime<Utc> {
        let date = match self.kind {
            PeriodKind::ThirtyDays => add_days(self.anchor, k.saturating_mul(30)),
            PeriodKind::Monthly => self.monthly_start(k),
        };
        local_midnight(self.tz, date)
    }

    /// The local date a monthly period starts on in month index `m`: the
    /// anchor's day, clamped to the month's last day.
    fn monthly_start(&self, m: i64) -> NaiveDate {
        let year = i32::try_from(m.div_euclid(12)).unwrap_or(if m < 0 { i32::MIN } else { i32::MAX });
        let month = (m.rem_euclid(12) + 1) as u32;
        let last = last_day_of_month(year, month);
        NaiveDate::from_ymd_opt(year, month, self.anchor.day().min(last)).unwrap_or(if m < 0 {
            NaiveDate::MIN
        } else {
            NaiveDate::MAX
        })
    }
}

/// Months counted from year 0: `year × 12 + month − 1`.
fn month_index(d: NaiveDate) -> i64 {
    i64::from(d.year()) * 12 + i64::from(d.month0())
}

fn last_day_of_month(year: i32, month: u32) -> u32 {
    let (y, m) = if month == 12 { (year.saturating_add(1), 1) } else { (year, month + 1) };
    NaiveDate::from_ymd_opt(y, m, 1).and_then(|d| d.pred_opt()).map_or(28, |d| d.day())
}

/// From `from` on, the account is on `plan` with periods by `rule`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Term {
    /// When the term starts: a period boundary of the term before it.
    pub from: DateTime<Utc>,
    /// The plan's name.
    pub plan: String,
    /// How its periods run.
    pub rule: PeriodRule,
}

/// An account's plans, zones and anchors over time.
///
/// Terms are sorted by `from`. The first term also covers all time before its
/// own `from` (backfills). A later term covers `[from, next term's from)`:
/// periods under it never start before its `from`, and a period under any
/// term is cut at the next term's `from`. A term's first period is
/// `[from, first boundary of its rule after from)`, except that when `from`
/// is not itself a local midnight in the term's zone and that boundary comes
/// within `from`'s local day (a zone change can leave such a sliver), the
/// sliver joins the period after it.
///
/// Deserializing sorts the terms and refuses an empty list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawSchedule")]
pub struct AccountSchedule {
    /// The terms, sorted by `from`; never empty when built by this crate.
    pub terms: Vec<Term>,
}

#[derive(Deserialize)]
struct RawSchedule {
    terms: Vec<Term>,
}

impl TryFrom<RawSchedule> for AccountSchedule {
    type Error = String;

    fn try_from(raw: RawSchedule) -> Result<Self, Self::Error> {
        let mut terms = raw.terms;
        if terms.is_empty() {
            return Err("an account schedule needs at least one term".to_owned());
        }
        terms.sort_by_key(|t| t.from);
        Ok(AccountSchedule { terms })
    }
}

/// What an empty schedule (one built by hand) behaves as, so that lookups never panic.
static EMPTY_TERM: Term = Term {
    from: DateTime::<Utc>::UNIX_EPOCH,
    plan: String::new(),
    rule: PeriodRule { kind: PeriodKind::ThirtyDays, tz: Tz::UTC, anchor: NaiveDate::MIN },
};

impl AccountSchedule {
    /// One `30d` term on `plan`, from local midnight of `anchor` in `tz`.
    ///
    /// The period kind belongs to the plan, which this does not see: use
    /// [`AccountSchedule::for_plan`] when the plan's kind is known.
    pub fn new(plan: String, tz: Tz, anchor: NaiveDate) -> Self {
        Self::with_kind(plan, PeriodKind::ThirtyDays, tz, anchor)
    }

    /// One term on `plan` with its period kind, from local midnight of `anchor` in `tz`.
    pub fn for_plan(plan: &Plan, tz: Tz, anchor: NaiveDate) -> Self {
        Self::with_kind(plan.name.clone(), plan.period, tz, anchor)
    }

    /// One term on the plan named `plan`, with periods of `kind`.
    pub fn with_kind(plan: String, kind: PeriodKind, tz: Tz, anchor: NaiveDate) -> Self {
        let from = local_midnight(tz, anchor);
        AccountSchedule { terms: vec![Term { from, plan, rule: PeriodRule { kind, tz, anchor } }] }
    }

    /// Index of the term in force at `t`: the last one started, else the first.
    fn term_index(&self, t: DateTime<Utc>) -> usize {
        self.terms.iter().rposition(|x| x.from <= t).unwrap_or(0)
    }

    /// The period containing `t`, and the term it belongs to.
    pub fn period_containing(&self, t: DateTime<Utc>) -> (UsagePeriod, &Term) {
        let i = self.term_index(t);
        let Some(term) = self.terms.get(i) else {
            return (EMPTY_TERM.rule.period_containing(t), &EMPTY_TERM);
        };
        let mut p = term.rule.period_containing(t);
        // Only a later term's first period needs more work; a period starting
        // days after `from` cannot be it (a sliver is at most a local day).
        let clearly_later = term.from.checked_add_signed(chrono::Duration::days(3)).is_some_and(|x| p.start > x);
        if i > 0 && !clearly_later {
            let first_end = first_period_end(term);
            p = if t < first_end {
                UsagePeriod { start: term.from, end: first_end }
            } else {
                UsagePeriod { start: p.start.max(term.from), end: p.end }
            };
        }
        if let Some(next) = self.terms.get(i + 1) {
            p.end = p.end.min(next.from);
        }
        (p, term)
    }

    /// The plan in force at `t`.
    pub fn plan_at(&self, t: DateTime<Utc>) -> &str {
        self.terms.get(self.term_index(t)).map_or("", |term| &term.plan)
    }

    /// Schedules a change of plan, zone and/or anchor; returns when it takes effect.
    ///
    /// The change starts at the end of the period containing `now`: a period's
    /// bounds never move once it has begun (DESIGN §2). A change already
    /// pending (a term starting after `now`) is replaced, not stacked; a
    /// change back to what is in force just cancels it. The period kind is
    /// the new plan's, looked up in `plans` (unchanged if the plan is not
    /// there). Without a new `anchor`:
    /// - same kind and zone: the old anchor (the boundaries carry on);
    /// - `30d` otherwise: the local date, in the new zone, of the change;
    /// - `monthly` from `monthly`: the old anchor (its day of month is kept);
    /// - `monthly` from `30d`: the local date, in the new zone, of the change.
    pub fn schedule_change(
        &mut self,
        now: DateTime<Utc>,
        plan: Option<String>,
        tz: Option<Tz>,
        anchor: Option<NaiveDate>,
        plans: &[Plan],
    ) -> DateTime<Utc> {
        if self.terms.len() > 1 {
            let keep = self.terms.iter().skip(1).take_while(|t| t.from <= now).count() + 1;
            self.terms.truncate(keep);
        }
        let (current, term) = self.period_containing(now);
        let effective = current.end;
        let old = term.clone();

        let plan = plan.unwrap_or_else(|| old.plan.clone());
        let tz = tz.unwrap_or(old.rule.tz);
        let kind = plans.iter().find(|p| p.name == plan).map_or(old.rule.kind, |p| p.period);
        let change_date = local_date(tz, effective);
        let anchor = anchor.unwrap_or(match kind {
            _ if kind == old.rule.kind && tz == old.rule.tz => old.rule.anchor,
            PeriodKind::Monthly if old.rule.kind == PeriodKind::Monthly => old.rule.anchor,
            _ => change_date,
        });
        let rule = PeriodRule { kind, tz, anchor };
        if plan == old.plan && rule == old.rule {
            return effective;
        }
        // Every kept term starts at or before `now`, so the new one goes last.
        self.terms.push(Term { from: effective, plan, rule });
        effective
    }
}

/// The end of a later term's first period (see [`AccountSchedule`]).
fn first_period_end(term: &Term) -> DateTime<Utc> {
    let rule = &term.rule;
    let first = rule.period_containing(term.from);
    let day = local_date(rule.tz, term.from);
    let partial_day = term.from != local_midnight(rule.tz, day);
    if partial_day && first.end <= local_midnight(rule.tz, add_days(day, 1)) {
        rule.period_containing(first.end).end
    } else {
        first.end
    }
}

#[cfg(test)]
mod tests;
