//! The `[webhooks]` table of the config file: how the server delivers
//! webhooks (DESIGN §7, §8).

use serde::Deserialize;

/// The `[webhooks]` table, as given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookTable {
    /// Allow targets on loopback, private, link-local and other refused
    /// addresses (a closed network, tests) [default: false].
    pub allow_private_targets: Option<bool>,
    /// Delivery attempts in flight at once [default: 256; 1 to 1024].
    pub max_in_flight: Option<usize>,
    /// Delivery attempts in flight to one target (scheme, host, port) at once [default: 4; 1 to 64].
    pub per_target: Option<usize>,
    /// Deliveries of one account claimed at once (in flight or waiting for
    /// their target's room), so that an account with many slow targets
    /// leaves room for the others [default: 128; 1 to 1024].
    pub per_account: Option<usize>,
    /// Days webhook events and attempts are kept: how far back replay
    /// reaches [default: 30; 10 to 36500: at least as long as the longest
    /// retry schedule, `Retry-After`s included].
    pub retention_days: Option<u32>,
}

/// The webhook settings after defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSettings {
    /// See [`WebhookTable::allow_private_targets`].
    pub allow_private_targets: bool,
    /// See [`WebhookTable::max_in_flight`].
    pub max_in_flight: usize,
    /// See [`WebhookTable::per_target`].
    pub per_target: usize,
    /// See [`WebhookTable::per_account`].
    pub per_account: usize,
    /// See [`WebhookTable::retention_days`].
    pub retention_days: u32,
}

impl Default for WebhookSettings {
    /// The delivery engine's own defaults (written once, in `EngineOptions`).
    fn default() -> Self {
        let engine = callmeter_webhooks::EngineOptions::default();
        WebhookSettings {
            allow_private_targets: engine.allow_private_targets,
            max_in_flight: engine.max_in_flight,
            per_target: engine.per_target,
            per_account: engine.per_account,
            retention_days: 30,
        }
    }
}

impl WebhookTable {
    /// The settings, with `allow_private` (the flag or environment) winning
    /// over the table; the first value out of its range, by name.
    pub fn resolve(&self, allow_private: Option<bool>) -> Result<WebhookSettings, String> {
        let defaults = WebhookSettings::default();
        let max_in_flight = self.max_in_flight.unwrap_or(defaults.max_in_flight);
        if !(1..=1_024).contains(&max_in_flight) {
            return Err(format!("max_in_flight: {max_in_flight} is out of range: from 1 to 1024"));
        }
        let per_target = self.per_target.unwrap_or(defaults.per_target);
        if !(1..=64).contains(&per_target) {
            return Err(format!("per_target: {per_target} is out of range: from 1 to 64"));
        }
        let per_account = self.per_account.unwrap_or(defaults.per_account);
        if !(1..=1_024).contains(&per_account) {
            return Err(format!("per_account: {per_account} is out of range: from 1 to 1024"));
        }
        let retention_days = self.retention_days.unwrap_or(defaults.retention_days);
        if !(10..=36_500).contains(&retention_days) {
            return Err(format!("retention_days: {retention_days} is out of range: from 10 to 36500"));
        }
        Ok(WebhookSettings {
            allow_private_targets: allow_private.or(self.allow_private_targets).unwrap_or(false),
            max_in_flight,
            per_target,
            per_account,
            retention_days,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_wins_and_ranges_are_checked() {
        let t: WebhookTable = toml::from_str("allow_private_targets = true\nper_target = 2").unwrap();
        let s = t.resolve(None).unwrap();
        assert!(s.allow_private_targets);
        assert_eq!((s.per_target, s.max_in_flight), (2, 256));
        assert!(!t.resolve(Some(false)).unwrap().allow_private_targets, "the flag wins");
        assert_eq!(WebhookTable::default().resolve(None).unwrap(), WebhookSettings::default());
        let t: WebhookTable = toml::from_str("max_in_flight = 0").unwrap();
        assert!(t.resolve(None).unwrap_err().contains("max_in_flight"));
        let t: WebhookTable = toml::from_str("retention_days = 3").unwrap();
        assert!(t.resolve(None).unwrap_err().contains("retention_days"));
        assert!(toml::from_str::<WebhookTable>("allow_private = true").is_err(), "unknown keys are refused");
    }
}
