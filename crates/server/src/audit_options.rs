//! The `[audit]` table of the config file: the audit's thresholds (every key
//! of [`AuditConfig`], the same table `callmeter audit` reads) and the daily
//! schedule that keeps each account's audit of the previous day.
//!
//! Both live in one flat table, and a misspelt key is still an error: the
//! schedule's keys are taken out first and the rest must be [`AuditConfig`]'s,
//! which refuses unknown fields.

use callmeter_audit::AuditConfig;
use serde::{Deserialize, Deserializer};

/// The `[audit]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditOptions {
    /// Keep each account's audit of the previous UTC day, made on a schedule
    /// [default: true].
    pub daily: bool,
    /// The UTC hour (0–23) at which the daily run starts, late enough for the
    /// previous day's stragglers (tailed or imported logs) to have arrived. A
    /// server that starts after this hour and lacks the previous day's audits
    /// makes them at once [default: 2].
    pub run_at_hour: u32,
    /// Days back (from yesterday) a run fills in when their audits are missing,
    /// so that a server down over a weekend catches up [default: 1: yesterday].
    pub catch_up_days: u32,
    /// The audit's thresholds.
    pub config: AuditConfig,
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions { daily: true, run_at_hour: 2, catch_up_days: 1, config: AuditConfig::default() }
    }
}

impl AuditOptions {
    /// The first setting that makes no sense, by name, and why.
    pub fn check(&self) -> Result<(), String> {
        if self.run_at_hour > 23 {
            return Err(format!("run_at_hour: {} is not an hour from 0 to 23", self.run_at_hour));
        }
        if !(1..=366).contains(&self.catch_up_days) {
            return Err(format!("catch_up_days: {} is not from 1 to 366", self.catch_up_days));
        }
        self.config.validate().map_err(|e| e.to_string())
    }
}

/// The schedule's keys; whatever else the table holds is left for [`AuditConfig`].
#[derive(Deserialize)]
struct Table {
    daily: Option<bool>,
    run_at_hour: Option<u32>,
    catch_up_days: Option<u32>,
    #[serde(flatten)]
    thresholds: toml::Table,
}

impl<'de> Deserialize<'de> for AuditOptions {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let t = Table::deserialize(d)?;
        let config = AuditConfig::deserialize(toml::Value::Table(t.thresholds)).map_err(serde::de::Error::custom)?;
        let defaults = AuditOptions::default();
        Ok(AuditOptions {
            daily: t.daily.unwrap_or(defaults.daily),
            run_at_hour: t.run_at_hour.unwrap_or(defaults.run_at_hour),
            catch_up_days: t.catch_up_days.unwrap_or(defaults.catch_up_days),
            config,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct File {
        audit: AuditOptions,
    }

    #[test]
    fn schedule_and_thresholds_share_one_table() {
        let f: File = toml::from_str("[audit]\nrun_at_hour = 0\nbatch_gap_secs = 30\nlist_page_size = 2500\n").unwrap();
        assert_eq!(f.audit.run_at_hour, 0);
        assert!(f.audit.daily);
        assert_eq!(f.audit.config.batch_gap_secs, 30.0, "an integer where a float is wanted");
        assert_eq!(f.audit.config.list_page_size, 2500);
        assert_eq!(f.audit.config.top_n, AuditConfig::default().top_n);
        f.audit.check().unwrap();
        let f: File = toml::from_str("[audit]\n").unwrap();
        assert_eq!(f.audit, AuditOptions::default());
    }

    #[test]
    fn a_misspelt_key_is_an_error() {
        let e = toml::from_str::<File>("[audit]\nbatch_gap = 30\n").err().unwrap().to_string();
        assert!(e.contains("unknown field `batch_gap`"), "{e}");
        assert!(toml::from_str::<File>("[audit]\ndaily = \"yes\"\n").is_err());
    }

    #[test]
    fn bad_values_name_their_key() {
        let o = AuditOptions { run_at_hour: 24, ..AuditOptions::default() };
        assert!(o.check().unwrap_err().starts_with("run_at_hour"));
        let o = AuditOptions { catch_up_days: 0, ..AuditOptions::default() };
        assert!(o.check().unwrap_err().starts_with("catch_up_days"));
        let mut o = AuditOptions::default();
        o.config.polling_min_intervals = 1;
        assert!(o.check().unwrap_err().contains("polling_min_intervals"));
    }
}
