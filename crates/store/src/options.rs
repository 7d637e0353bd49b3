//! How a store meters: retention, grace, late calls, plans and rules.

use callmeter_model::{AccountSchedule, BillingRules, PeriodKind, Plan};
use serde::{Deserialize, Serialize};

/// What to do with a call that arrives after its period closed (DESIGN §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LatePolicy {
    /// Stored and reported as late, never billed.
    #[default]
    NotBilled,
    /// Stored as late in its own period and billed in the period open when it arrives.
    BillInOpenPeriod,
}

/// The metering settings a store applies to every call it takes.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Calls older than this are rejected, and their blocks expire.
    pub retention: chrono::Duration,
    /// A period closes this long after its end.
    pub grace: chrono::Duration,
    /// What happens to late calls.
    pub late_calls: LatePolicy,
    /// Whether an account first seen in a call is created.
    pub auto_create_accounts: bool,
    /// The plan of accounts created that way.
    pub default_plan: String,
    /// Their time zone.
    pub default_timezone: chrono_tz::Tz,
    /// Every plan.
    pub plans: Vec<Plan>,
    /// The effective-dated billing rules.
    pub rules: BillingRules,
    /// Commits are refused (507) while the data folder's file system has less free space than this.
    pub min_free_bytes: u64,
    /// The most ingest requests one commit (one sync) takes.
    pub max_requests_per_commit: usize,
    /// Memory for the engine's block cache.
    pub cache_bytes: u64,
    /// How often, at most, the dedup keys and aggregates of recent calls are
    /// written into the engine (a checkpoint); a start after a crash replays
    /// the calls since the last one.
    pub checkpoint_interval: std::time::Duration,
    /// Events waiting for the writer at most; an ingest past it is refused as busy.
    pub max_queued_events: usize,
    /// How long webhook events (the change log, finished or held deliveries)
    /// and delivery attempts are kept: replay reaches this far back.
    pub webhook_retention: chrono::Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            retention: chrono::Duration::days(400),
            grace: chrono::Duration::hours(72),
            late_calls: LatePolicy::NotBilled,
            auto_create_accounts: true,
            default_plan: "starter".into(),
            default_timezone: chrono_tz::UTC,
            plans: Vec::new(),
            rules: BillingRules::platform_default(),
            min_free_bytes: 64 << 20,
            max_requests_per_commit: 16,
            cache_bytes: 256 << 20,
            checkpoint_interval: std::time::Duration::from_secs(20),
            max_queued_events: 1 << 18,
            webhook_retention: chrono::Duration::days(30),
        }
    }
}

impl StoreOptions {
    /// The schedule of a new account on the plan named `plan`, with that plan's period kind.
    ///
    /// A plan the options do not list (possible only for the default plan of a
    /// misconfigured store) falls back to `30d` periods.
    pub fn schedule_for(&self, plan: &str, tz: chrono_tz::Tz, anchor: chrono::NaiveDate) -> AccountSchedule {
        match self.plans.iter().find(|p| p.name == plan) {
            Some(p) => AccountSchedule::for_plan(p, tz, anchor),
            None => AccountSchedule::with_kind(plan.to_owned(), PeriodKind::ThirtyDays, tz, anchor),
        }
    }
}
