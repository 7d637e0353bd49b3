//! Usage alert settings (DESIGN §7): each plan's thresholds (keys of its
//! `[[plans]]` entry), and the `[alerts]` table (spikes, the projection).
//!
//! A threshold is a percentage of the plan's included calls. Each plan has a
//! list (default 50, 80 and 100) and a step above 100 % (default 25: 125,
//! 150, 175 … fire too); an account may set its own list in place of its
//! plan's (`PUT /v1/accounts/{a}` `alert_thresholds`).

use callmeter_model::Plan;
use serde::Deserialize;
use std::collections::BTreeMap;

/// The thresholds of a plan with no `alert_thresholds`.
pub const DEFAULT_THRESHOLDS: [u32; 3] = [50, 80, 100];
/// The step above 100 % of a plan with no `alert_overage_step`.
pub const DEFAULT_OVERAGE_STEP: u32 = 25;
/// The highest threshold, in percent: a hundred times the allowance.
pub const MAX_THRESHOLD_PERCENT: u32 = 10_000;
/// Thresholds one plan or account may list.
pub const MAX_THRESHOLDS: usize = 20;

/// A `[[plans]]` entry: the plan, and its alert keys.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PlanEntry {
    /// The plan.
    #[serde(flatten)]
    pub plan: Plan,
    /// Its thresholds, in percent of its included calls [default: 50, 80, 100; each 1 to 10000].
    #[serde(default)]
    pub alert_thresholds: Option<Vec<u32>>,
    /// Above 100 %, a threshold every this many percent more; 0 for none [default: 25; 0 to 1000].
    #[serde(default)]
    pub alert_overage_step: Option<u32>,
}

impl From<Plan> for PlanEntry {
    fn from(plan: Plan) -> Self {
        PlanEntry { plan, alert_thresholds: None, alert_overage_step: None }
    }
}

/// A plan's thresholds after defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanThresholds {
    /// Percentages of the included calls, ascending, each once.
    pub thresholds: Vec<u32>,
    /// Above 100 %, one more every this many percent (0: none).
    pub overage_step: u32,
}

impl Default for PlanThresholds {
    fn default() -> Self {
        PlanThresholds { thresholds: DEFAULT_THRESHOLDS.to_vec(), overage_step: DEFAULT_OVERAGE_STEP }
    }
}

/// A list of thresholds, checked (at most [`MAX_THRESHOLDS`], each from 1 to
/// [`MAX_THRESHOLD_PERCENT`]), ascending, each once.
pub fn checked_thresholds(list: &[u32]) -> Result<Vec<u32>, String> {
    if list.len() > MAX_THRESHOLDS {
        return Err(format!("at most {MAX_THRESHOLDS} thresholds"));
    }
    if let Some(t) = list.iter().find(|t| !(1..=MAX_THRESHOLD_PERCENT).contains(*t)) {
        return Err(format!("{t} is not a percentage from 1 to {MAX_THRESHOLD_PERCENT}"));
    }
    let mut sorted = list.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    Ok(sorted)
}

/// The `[alerts]` table, as given.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertTable {
    /// `usage.spike`: a day's billable calls above this many times the median
    /// of the 7 days before it [default: 3; 1.5 to 1000].
    pub spike_factor: Option<f64>,
    /// … and at least this many [default: 100; 0 to 10^12].
    pub spike_min_calls: Option<u64>,
    /// `usage.projected_overage`: only once this many hours of the period
    /// have passed, so that the first calls of a period project nothing [default: 24; 0 to 744].
    pub projection_after_hours: Option<u32>,
}

/// The alert settings after defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertSettings {
    /// Each plan's thresholds, by plan name.
    pub plans: BTreeMap<String, PlanThresholds>,
    /// See [`AlertTable::spike_factor`].
    pub spike_factor: f64,
    /// See [`AlertTable::spike_min_calls`].
    pub spike_min_calls: u64,
    /// See [`AlertTable::projection_after_hours`].
    pub projection_after: chrono::Duration,
}

impl Default for AlertSettings {
    fn default() -> Self {
        AlertSettings {
            plans: BTreeMap::new(),
            spike_factor: 3.0,
            spike_min_calls: 100,
            projection_after: chrono::Duration::hours(24),
        }
    }
}

impl AlertSettings {
    /// The thresholds of the plan named `plan` (the defaults for a plan not configured).
    pub fn plan(&self, plan: &str) -> PlanThresholds {
        self.plans.get(plan).cloned().unwrap_or_default()
    }
}

impl AlertTable {
    /// The settings, with each plan's thresholds; the first value out of its range, by name.
    pub fn resolve(&self, plans: &[PlanEntry]) -> Result<AlertSettings, String> {
        let defaults = AlertSettings::default();
        let spike_factor = self.spike_factor.unwrap_or(defaults.spike_factor);
        if !(1.5..=1_000.0).contains(&spike_factor) {
            return Err(format!("spike_factor: {spike_factor} is out of range: from 1.5 to 1000"));
        }
        let spike_min_calls = self.spike_min_calls.unwrap_or(defaults.spike_min_calls);
        if spike_min_calls > 1_000_000_000_000 {
            return Err(format!("spike_min_calls: {spike_min_calls} is out of range: from 0 to 1000000000000"));
        }
        let hours = self.projection_after_hours.unwrap_or(24);
        if hours > 744 {
            return Err(format!("projection_after_hours: {hours} is out of range: from 0 to 744"));
        }
        let mut by_plan = BTreeMap::new();
        for entry in plans {
            let name = &entry.plan.name;
            let thresholds = match &entry.alert_thresholds {
                Some(list) => checked_thresholds(list).map_err(|e| format!("plan {name:?}: alert_thresholds: {e}"))?,
                None => DEFAULT_THRESHOLDS.to_vec(),
            };
            let overage_step = entry.alert_overage_step.unwrap_or(DEFAULT_OVERAGE_STEP);
            if overage_step > 1_000 {
                return Err(format!(
                    "plan {name:?}: alert_overage_step: {overage_step} is out of range: from 0 to 1000"
                ));
            }
            by_plan.insert(name.clone(), PlanThresholds { thresholds, overage_step });
        }
        Ok(AlertSettings {
            plans: by_plan,
            spike_factor,
            spike_min_calls,
            projection_after: chrono::Duration::hours(hours.into()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plans(toml: &str) -> Vec<PlanEntry> {
        #[derive(Deserialize)]
        struct File {
            plans: Vec<PlanEntry>,
        }
        toml::from_str::<File>(toml).unwrap().plans
    }

    #[test]
    fn plans_take_their_alert_keys_and_the_defaults_fill_the_rest() {
        let entries = plans(
            "[[plans]]\nname = \"a\"\nperiod = \"30d\"\nincluded_calls = 10\noverage_price_per_1000 = 1\n\
             alert_thresholds = [90, 50, 90]\nalert_overage_step = 0\n\
             [[plans]]\nname = \"b\"\nperiod = \"monthly\"\nincluded_calls = 5\noverage_price_per_1000 = 2\n",
        );
        assert_eq!(entries[0].plan.included_calls, 10);
        assert_eq!(entries[1].plan.currency, "USD", "the plan's own defaults still apply");
        let s = AlertTable::default().resolve(&entries).unwrap();
        assert_eq!(s.plan("a"), PlanThresholds { thresholds: vec![50, 90], overage_step: 0 });
        assert_eq!(s.plan("b"), PlanThresholds::default());
        assert_eq!(s.plan("gone"), PlanThresholds::default());
        assert_eq!((s.spike_factor, s.spike_min_calls), (3.0, 100));
    }

    #[test]
    fn ranges_are_checked_by_name() {
        let bad = |toml: &str| AlertTable::default().resolve(&plans(toml)).unwrap_err();
        let plan = "[[plans]]\nname = \"a\"\nperiod = \"30d\"\nincluded_calls = 10\noverage_price_per_1000 = 1\n";
        assert!(bad(&format!("{plan}alert_thresholds = [0]")).contains("alert_thresholds"));
        assert!(bad(&format!("{plan}alert_thresholds = [10001]")).contains("from 1 to 10000"));
        assert!(bad(&format!("{plan}alert_overage_step = 1001")).contains("alert_overage_step"));
        let table: AlertTable = toml::from_str("spike_factor = 1.0").unwrap();
        assert!(table.resolve(&[]).unwrap_err().contains("spike_factor"));
        let table: AlertTable = toml::from_str("projection_after_hours = 745").unwrap();
        assert!(table.resolve(&[]).unwrap_err().contains("projection_after_hours"));
        assert!(toml::from_str::<AlertTable>("spike = 2").is_err(), "unknown keys are refused");
        assert_eq!(checked_thresholds(&[100, 50, 50]).unwrap(), [50, 100]);
        assert!(checked_thresholds(&[1; 21]).unwrap_err().contains("at most 20"));
    }
}
