//! The usage page's chart: calls per local hour or day of the period, stacked
//! by interface, by read and write, or billable and not.
//!
//! The counting is the API's (`usage::series`, the same function behind
//! `granularity=`), applied to the rows of each interface or direction. What
//! is added here is the time axis: every slot of the period up to now, so
//! that an hour without calls shows as a gap and not as nothing at all.

use super::charts::Series;
use crate::usage::{self, Granularity, SeriesPoint};
use callmeter_model::{bucket_start, local_midnight, Direction, Interface};
use callmeter_store::TotalRow;
use chrono::{DateTime, Timelike, Utc};
use chrono_tz::Tz;
use std::collections::HashMap;

/// What the chart stacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stacking {
    /// One layer per interface.
    Interface,
    /// Reads and writes.
    Direction,
    /// Billable calls, and the rest.
    Billable,
}

impl Stacking {
    /// From the page's `view=`.
    pub fn parse(v: Option<&str>) -> Stacking {
        match v {
            Some("direction") => Stacking::Direction,
            Some("billable") => Stacking::Billable,
            _ => Stacking::Interface,
        }
    }

    /// The value of `view=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stacking::Interface => "interface",
            Stacking::Direction => "direction",
            Stacking::Billable => "billable",
        }
    }

    /// In words, for the chart's tabs.
    pub fn label(self) -> &'static str {
        match self {
            Stacking::Interface => "By interface",
            Stacking::Direction => "Read and write",
            Stacking::Billable => "Billable and not",
        }
    }
}

/// The slots of `[from, to)` as `usage::series` names them (local hour or day starts, RFC 3339 in the zone).
pub fn slots(from: DateTime<Utc>, to: DateTime<Utc>, tz: Tz, granularity: Granularity) -> Vec<(String, DateTime<Utc>)> {
    let (first, end) = usage::bucket_range(from, to);
    let mut out: Vec<(String, DateTime<Utc>)> = Vec::new();
    for bucket in first..end {
        let local = bucket_start(bucket).with_timezone(&tz);
        let slot = match granularity {
            Granularity::Hour => local
                .with_minute(0)
                .and_then(|t| t.with_second(0))
                .map_or(local.with_timezone(&Utc), |t| t.with_timezone(&Utc)),
            Granularity::Day => local_midnight(tz, local.date_naive()),
        };
        if out.last().is_none_or(|(_, last)| *last != slot) {
            out.push((slot.with_timezone(&tz).to_rfc3339(), slot));
        }
    }
    out
}

/// The layers of the chart, each with a value per slot.
pub fn layers(
    rows: &[TotalRow],
    tz: Tz,
    granularity: Granularity,
    slots: &[(String, DateTime<Utc>)],
    stacking: Stacking,
) -> Vec<Series> {
    let index: HashMap<&str, usize> = slots.iter().enumerate().map(|(i, (k, _))| (k.as_str(), i)).collect();
    let spread = |points: &[SeriesPoint], pick: &dyn Fn(&SeriesPoint) -> u64| {
        let mut values = vec![0u64; slots.len()];
        for p in points {
            if let Some(i) = index.get(p.start.as_str()) {
                values[*i] += pick(p);
            }
        }
        values
    };
    let calls = |p: &SeriesPoint| p.count.calls;
    match stacking {
        Stacking::Interface => {
            let mut by_interface: Vec<(Interface, u64)> = Interface::ALL
                .iter()
                .map(|i| (*i, rows.iter().filter(|r| r.interface == *i && !r.flags.carried).map(|r| r.calls).sum()))
                .filter(|(_, n)| *n > 0)
                .collect();
            by_interface.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
            by_interface
                .into_iter()
                .map(|(interface, _)| {
                    let mine: Vec<TotalRow> = rows.iter().filter(|r| r.interface == interface).copied().collect();
                    Series {
                        name: interface.as_str().into(),
                        values: spread(&usage::series(&mine, tz, granularity), &calls),
                    }
                })
                .collect()
        }
        Stacking::Direction => [(Direction::Read, "read"), (Direction::Write, "write")]
            .into_iter()
            .map(|(direction, name)| {
                let mine: Vec<TotalRow> =
                    rows.iter().filter(|r| r.operation.direction() == direction).copied().collect();
                Series { name: name.into(), values: spread(&usage::series(&mine, tz, granularity), &calls) }
            })
            .collect(),
        Stacking::Billable => {
            let all = usage::series(rows, tz, granularity);
            vec![
                Series {
                    name: "billable".into(),
                    values: spread(&all, &|p| p.count.billable_calls.min(p.count.calls)),
                },
                Series {
                    name: "not billable".into(),
                    values: spread(&all, &|p| p.count.calls.saturating_sub(p.count.billable_calls)),
                },
            ]
        }
    }
}

/// How a slot is named on the time axis: `27 Nov` for days, `27 Nov 14h` for hours.
pub fn axis_label(t: DateTime<Utc>, tz: Tz, granularity: Granularity) -> String {
    let local = t.with_timezone(&tz);
    match granularity {
        Granularity::Day => local.format("%-d %b").to_string(),
        Granularity::Hour => local.format("%-d %b %Hh").to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use callmeter_model::{bucket_of, Operation};
    use callmeter_store::CallFlags;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn row(at: &str, interface: Interface, operation: Operation, billable: bool, calls: u64) -> TotalRow {
        TotalRow {
            bucket: bucket_of(t(at)),
            interface,
            operation,
            flags: CallFlags { billable, late: false, carried: false },
            calls,
        }
    }

    #[test]
    fn every_slot_is_on_the_axis_in_the_zone() {
        let kolkata: Tz = "Asia/Kolkata".parse().unwrap(); // +05:30: local hours start at :30 UTC
        let hours = slots(t("2026-11-27T00:00:00Z"), t("2026-11-27T03:00:00Z"), kolkata, Granularity::Hour);
        assert_eq!(hours.len(), 4, "05:30–06:00, then 06, 07, 08 local: {hours:?}");
        assert_eq!(hours[1].0, "2026-11-27T06:00:00+05:30");
        let days = slots(t("2026-11-01T00:00:00Z"), t("2026-11-04T00:00:00Z"), chrono_tz::UTC, Granularity::Day);
        assert_eq!(days.len(), 3);
    }

    #[test]
    fn layers_add_up_to_the_api_series() {
        let rows = vec![
            row("2026-11-01T01:00:00Z", Interface::Rest, Operation::List, true, 5),
            row("2026-11-01T01:15:00Z", Interface::Sftp, Operation::Write, true, 2),
            row("2026-11-02T10:00:00Z", Interface::Mount, Operation::Read, false, 3),
        ];
        let s = slots(t("2026-11-01T00:00:00Z"), t("2026-11-04T00:00:00Z"), chrono_tz::UTC, Granularity::Day);
        let by_interface = layers(&rows, chrono_tz::UTC, Granularity::Day, &s, Stacking::Interface);
        let names: Vec<&str> = by_interface.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["rest", "mount", "sftp"], "largest first");
        assert_eq!(by_interface[0].values, [5, 0, 0]);
        let direction = layers(&rows, chrono_tz::UTC, Granularity::Day, &s, Stacking::Direction);
        assert_eq!(direction[0].values, [5, 3, 0]);
        assert_eq!(direction[1].values, [2, 0, 0]);
        let billable = layers(&rows, chrono_tz::UTC, Granularity::Day, &s, Stacking::Billable);
        assert_eq!(billable[0].values, [7, 0, 0]);
        assert_eq!(billable[1].values, [0, 3, 0]);
        let api = usage::series(&rows, chrono_tz::UTC, Granularity::Day);
        let total: u64 = api.iter().map(|p| p.count.calls).sum();
        assert_eq!(by_interface.iter().flat_map(|l| &l.values).sum::<u64>(), total);
    }
}
