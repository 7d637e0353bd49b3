//! Effective-dated billing rules: whether an interface's calls are billable at a time (DESIGN §1).

use crate::event::Interface;
use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// From `from` on (or since forever), calls through `interface` are (not) billable.
///
/// In TOML: `{ interface = "mount", from = "2023-09-26T00:00:00Z", billable = true }`
/// (`from` is an RFC 3339 string, quoted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BillingRule {
    /// The interface the rule is about.
    pub interface: Interface,
    /// When the rule comes into force; absent means since forever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<DateTime<Utc>>,
    /// Whether calls are billable while the rule is in force.
    pub billable: bool,
}

/// Every billing rule. Serializes as the plain list of rules.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BillingRules {
    /// The rules, in any order.
    pub rules: Vec<BillingRule>,
}

/// When `mount` and `ipaas` calls became billable on the platform (DESIGN §1).
pub fn platform_billing_start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2023, 9, 26, 0, 0, 0).single().unwrap_or(DateTime::<Utc>::MIN_UTC)
}

impl BillingRules {
    /// The platform's published rule: every interface always billable, except
    /// `mount` and `ipaas`, billable from 2023-09-26T00:00:00Z.
    pub fn platform_default() -> Self {
        let from = platform_billing_start();
        let rules = [Interface::Mount, Interface::Ipaas]
            .into_iter()
            .flat_map(|interface| {
                [
                    BillingRule { interface, from: None, billable: false },
                    BillingRule { interface, from: Some(from), billable: true },
                ]
            })
            .collect();
        BillingRules { rules }
    }

    /// Whether a call through `interface` at `time` is billable.
    ///
    /// The rule for that interface with the latest `from` at or before `time`
    /// wins (a rule without `from` is the earliest; between two rules with the
    /// same `from`, the later in the list). With no rule in force, billable:
    /// DESIGN §1 makes every request billable unless a rule says otherwise.
    pub fn is_billable(&self, interface: Interface, time: DateTime<Utc>) -> bool {
        let mut best: Option<&BillingRule> = None;
        for rule in self.rules.iter().filter(|r| r.interface == interface) {
            if rule.from.is_some_and(|f| f > time) {
                continue;
            }
            // `None < Some(_)`, so a dated rule beats an undated one.
            if best.is_none_or(|b| rule.from >= b.from) {
                best = Some(rule);
            }
        }
        best.is_none_or(|r| r.billable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn platform_default_switches_mount_and_ipaas_on_to_the_second() {
        let rules = BillingRules::platform_default();
        let start = t("2023-09-26T00:00:00Z");
        for i in [Interface::Mount, Interface::Ipaas] {
            assert!(!rules.is_billable(i, start - Duration::seconds(1)), "{i}");
            assert!(!rules.is_billable(i, start - Duration::nanoseconds(1)), "{i}");
            assert!(rules.is_billable(i, start), "{i}");
            assert!(!rules.is_billable(i, t("2001-01-01T00:00:00Z")), "{i}");
            assert!(rules.is_billable(i, t("2030-01-01T00:00:00Z")), "{i}");
        }
        for i in Interface::ALL.into_iter().filter(|i| !matches!(i, Interface::Mount | Interface::Ipaas)) {
            assert!(rules.is_billable(i, start - Duration::seconds(1)), "{i}");
            assert!(rules.is_billable(i, t("1990-01-01T00:00:00Z")), "{i}");
        }
    }

    #[test]
    fn latest_rule_in_force_wins() {
        let rules = BillingRules {
            rules: vec![
                BillingRule { interface: Interface::Share, from: Some(t("2025-01-01T00:00:00Z")), billable: true },
                BillingRule { interface: Interface::Share, from: Some(t("2024-01-01T00:00:00Z")), billable: false },
                BillingRule { interface: Interface::Share, from: Some(t("2026-01-01T00:00:00Z")), billable: false },
            ],
        };
        assert!(rules.is_billable(Interface::Share, t("2023-06-01T00:00:00Z")), "no rule in force yet");
        assert!(!rules.is_billable(Interface::Share, t("2024-06-01T00:00:00Z")));
        assert!(rules.is_billable(Interface::Share, t("2025-06-01T00:00:00Z")));
        assert!(!rules.is_billable(Interface::Share, t("2026-01-01T00:00:00Z")));
        assert!(rules.is_billable(Interface::Rest, t("2026-06-01T00:00:00Z")));
        assert!(BillingRules::default().is_billable(Interface::Mount, t("2020-01-01T00:00:00Z")));
    }

    #[test]
    fn later_rule_in_the_list_breaks_ties() {
        let rules = BillingRules {
            rules: vec![
                BillingRule { interface: Interface::Ftp, from: None, billable: true },
                BillingRule { interface: Interface::Ftp, from: None, billable: false },
            ],
        };
        assert!(!rules.is_billable(Interface::Ftp, t("2026-01-01T00:00:00Z")));
    }

    #[test]
    fn serde_shape() {
        let rule: BillingRule =
            serde_json::from_str(r#"{"interface":"mount","from":"2023-09-26T00:00:00Z","billable":true}"#).unwrap();
        assert_eq!(
            rule,
            BillingRule { interface: Interface::Mount, from: Some(t("2023-09-26T00:00:00Z")), billable: true }
        );
        let rule: BillingRule = serde_json::from_str(r#"{"interface":"ipaas","billable":false}"#).unwrap();
        assert_eq!(rule.from, None);
        assert!(serde_json::from_str::<BillingRule>(r#"{"interface":"ipaas","billable":false,"form":1}"#).is_err());
        let rules = BillingRules::platform_default();
        let json = serde_json::to_string(&rules).unwrap();
        assert!(json.starts_with(r#"[{"interface":"mount","billable":false},"#), "{json}");
        assert_eq!(serde_json::from_str::<BillingRules>(&json).unwrap(), rules);
    }
}
