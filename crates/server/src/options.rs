//! The server's settings: one struct that is at once the command-line flags,
//! the `CALLMETER_*` environment variables and the TOML config file.
//!
//! A flag or variable wins over the file, and the file over the defaults
//! ([`ServerOptions::merge`], then [`ServerOptions::resolve`]).

use crate::alert_options::{AlertSettings, AlertTable, PlanEntry};
use crate::audit_options::AuditOptions;
use crate::limits::ServerLimits;
use crate::webhook_options::{WebhookSettings, WebhookTable};
use callmeter_model::{BillingRule, BillingRules, PeriodKind, Plan};
use callmeter_store::{LatePolicy, StoreOptions};
use serde::Deserialize;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Settings as given; every one optional so that flags, environment and file can be merged.
#[derive(Debug, Clone, Default, clap::Args, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerOptions {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "CALLMETER_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Data folder of the embedded store [default: ./callmeter-data].
    #[arg(long, env = "CALLMETER_DATA")]
    pub data: Option<PathBuf>,
    /// The admin token. Without one, the first start makes one and keeps it in DATA/admin-token.
    #[arg(long, env = "CALLMETER_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Serve /metrics without a token [default: false].
    #[arg(long, env = "CALLMETER_METRICS_PUBLIC")]
    pub metrics_public: Option<bool>,
    /// Days a call is kept in the request log (older ones are removed hourly) and accepted at all; ids stay recognised as duplicates [default: 400; 1 to 36500].
    #[arg(long, env = "CALLMETER_RETENTION_DAYS")]
    pub retention_days: Option<u32>,
    /// Hours after its end that a usage period closes; fractions allowed [default: 72; 0 to 8760].
    #[arg(long, env = "CALLMETER_GRACE_HOURS")]
    pub grace_hours: Option<f64>,
    /// Calls for a closed period: "not_billed" or "bill_in_open_period" [default: not_billed].
    #[arg(long, env = "CALLMETER_LATE_CALLS")]
    pub late_calls: Option<String>,
    /// Create an account the first time a call names it [default: true].
    #[arg(long, env = "CALLMETER_AUTO_CREATE_ACCOUNTS")]
    pub auto_create_accounts: Option<bool>,
    /// Plan of accounts created that way [default: the first plan].
    #[arg(long, env = "CALLMETER_DEFAULT_PLAN")]
    pub default_plan: Option<String>,
    /// IANA time zone of accounts created that way [default: UTC].
    #[arg(long, env = "CALLMETER_DEFAULT_TIMEZONE")]
    pub default_timezone: Option<String>,
    /// Refuse writes (507) while the data folder's disk has less free space than this [default: 64; 0 to 1048576].
    #[arg(long, env = "CALLMETER_MIN_FREE_MB")]
    pub min_free_mb: Option<u64>,
    /// Ingest requests that share one commit and one sync at most [default: 16; 1 to 1024].
    #[arg(long, env = "CALLMETER_REQUESTS_PER_COMMIT")]
    pub requests_per_commit: Option<usize>,
    /// Engine block cache in MiB [default: 256; 1 to 1048576].
    #[arg(long, env = "CALLMETER_CACHE_MB")]
    pub cache_mb: Option<u64>,
    /// Milliseconds between checkpoints of recent dedup keys and aggregates into the engine [default: 20000; 10 to 3600000].
    #[arg(long, env = "CALLMETER_CHECKPOINT_INTERVAL_MS")]
    pub checkpoint_interval_ms: Option<u64>,
    /// Connections open at once; one past it is answered 503 and closed [default: 512; 1 to 1000000].
    #[arg(long, env = "CALLMETER_MAX_CONNECTIONS")]
    pub max_connections: Option<u32>,
    /// Milliseconds from a request's first byte to the end of its headers [default: 10000; 100 to 3600000].
    #[arg(long, env = "CALLMETER_HEADER_TIMEOUT_MS")]
    pub header_timeout_ms: Option<u32>,
    /// Milliseconds to receive a whole request body [default: 60000; 100 to 3600000].
    #[arg(long, env = "CALLMETER_BODY_TIMEOUT_MS")]
    pub body_timeout_ms: Option<u32>,
    /// Milliseconds a connection with no request in progress stays open [default: 60000; 100 to 3600000].
    #[arg(long, env = "CALLMETER_IDLE_TIMEOUT_MS")]
    pub idle_timeout_ms: Option<u32>,
    /// Milliseconds a connection's writes may take nothing (an answer its client does not read) before it is closed [default: 30000; 100 to 3600000].
    #[arg(long, env = "CALLMETER_WRITE_TIMEOUT_MS")]
    pub write_timeout_ms: Option<u32>,
    /// Milliseconds an audit made for a request may run; past it, 400 asking for a shorter range [default: 30000; 100 to 3600000].
    #[arg(long, env = "CALLMETER_LIVE_AUDIT_TIMEOUT_MS")]
    pub live_audit_timeout_ms: Option<u32>,
    /// MiB of request bodies read or worked on at once; past it, 503 with Retry-After [default: 256; 16 to 1048576].
    #[arg(long, env = "CALLMETER_BODIES_IN_FLIGHT_MB")]
    pub bodies_in_flight_mb: Option<u32>,
    /// Mark the dashboard's cookies Secure: set it when a TLS proxy serves the dashboard (callmeter itself speaks plain HTTP, so it cannot tell) [default: false].
    #[arg(long, env = "CALLMETER_SECURE_COOKIES")]
    pub secure_cookies: Option<bool>,
    /// Plans, each with its alert thresholds (config file only). Boxed, as `audit`: the CLI's command enum stays small.
    #[arg(skip)]
    pub plans: Option<Box<Vec<PlanEntry>>>,
    /// Effective-dated billing rules (config file only) [default: DESIGN §1's rule].
    #[arg(skip)]
    pub billing_rules: Option<Vec<BillingRule>>,
    /// How `import` and `tail` classify log lines: route, user-agent, override and WebDAV tables
    /// (config file only) [default: the shipped tables].
    #[arg(skip)]
    pub import: Option<callmeter_formats::ImportConfig>,
    /// The audit's thresholds and the daily audits' schedule (config file only)
    /// [default: every threshold's default, daily at 02:00 UTC]. Boxed: the
    /// thresholds would more than double the size of the CLI's command enum.
    #[arg(skip)]
    pub audit: Option<Box<AuditOptions>>,
    /// Send webhooks to loopback, private, link-local and other refused addresses (a closed network,
    /// tests); `[webhooks] allow_private_targets` in the config file [default: false].
    #[arg(long, env = "CALLMETER_WEBHOOKS_ALLOW_PRIVATE_TARGETS")]
    #[serde(skip)]
    pub webhooks_allow_private_targets: Option<bool>,
    /// How webhooks are delivered (config file only) [default: no private targets, 256 attempts in
    /// flight, 4 per target]. Boxed, as `audit`: the CLI's command enum stays small.
    #[arg(skip)]
    pub webhooks: Option<Box<WebhookTable>>,
    /// Usage alerts: spikes and the projection (config file only) [default: 3× the
    /// 7-day median and at least 100 calls; the projection after 24 hours]. Boxed, as `audit`.
    #[arg(skip)]
    pub alerts: Option<Box<AlertTable>>,
}

/// Errors in the settings.
#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The config file is not valid TOML for these settings.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with its line.
        message: String,
    },
    /// A setting has a value that cannot be used.
    #[error("setting {name}: {message}")]
    Invalid {
        /// The setting.
        name: &'static str,
        /// Why.
        message: String,
    },
}

/// The settings after merging and defaults.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Data folder.
    pub data: PathBuf,
    /// The configured admin token, if any.
    pub admin_token: Option<String>,
    /// Serve /metrics without a token.
    pub metrics_public: bool,
    /// What the store applies to calls.
    pub store: StoreOptions,
    /// The `[audit]` table.
    pub audit: AuditOptions,
    /// Connections, timeouts and bodies in flight.
    pub limits: ServerLimits,
    /// The `[webhooks]` table.
    pub webhooks: WebhookSettings,
    /// Whether the dashboard's cookies are marked Secure (served through a TLS proxy).
    pub secure_cookies: bool,
    /// Each plan's alert thresholds and the `[alerts]` table.
    pub alerts: AlertSettings,
}

/// Days of `retention_days`: at least one, at most a century, so that
/// `now - retention` and the periods it reaches back to stay representable.
const RETENTION_DAYS: RangeInclusive<u32> = 1..=36_500;
/// Hours of `grace_hours`: at most a year, so that every `closes_at` stays representable.
const GRACE_HOURS: RangeInclusive<f64> = 0.0..=8_760.0;
/// MiB of `min_free_mb`: up to 1 TiB of reserve.
const MIN_FREE_MB: RangeInclusive<u64> = 0..=1 << 20;
/// MiB of `cache_mb`: at least 1 MiB, up to 1 TiB.
const CACHE_MB: RangeInclusive<u64> = 1..=1 << 20;
/// Ingest requests one commit may group: each waits for the commit, so more only adds latency.
const REQUESTS_PER_COMMIT: RangeInclusive<usize> = 1..=1_024;
/// Milliseconds between checkpoints: from 10 ms to an hour.
const CHECKPOINT_INTERVAL_MS: RangeInclusive<u64> = 10..=3_600_000;
/// Connections at once: one at least (a million is far past any file-descriptor limit).
const MAX_CONNECTIONS: RangeInclusive<u32> = 1..=1_000_000;
/// Milliseconds of each connection timeout: from 100 ms (tests) to an hour.
const TIMEOUT_MS: RangeInclusive<u32> = 100..=3_600_000;
/// MiB of bodies in flight: at least one whole body of [`MAX_BODY_BYTES`], up to 1 TiB.
const BODIES_IN_FLIGHT_MB: RangeInclusive<u32> = (MAX_BODY_BYTES as u32 >> 20)..=1 << 20;

/// The value when it lies in `range`, else an error naming the setting and the range.
fn within<T: PartialOrd + std::fmt::Display>(
    name: &'static str,
    value: T,
    range: RangeInclusive<T>,
) -> Result<T, OptionsError> {
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(OptionsError::Invalid {
            name,
            message: format!("{value} is out of range: from {} to {}", range.start(), range.end()),
        })
    }
}

/// Events one ingest request may carry.
pub const MAX_EVENTS_PER_REQUEST: usize = 10_000;
/// Bytes one ingest request may carry.
pub const MAX_BODY_BYTES: usize = 16 << 20;

impl ServerOptions {
    /// Reads a TOML config file.
    pub fn from_file(path: &Path) -> Result<ServerOptions, OptionsError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| OptionsError::Read { path: path.to_owned(), source })?;
        toml::from_str(&text).map_err(|e| OptionsError::Parse { path: path.to_owned(), message: e.to_string() })
    }

    /// Each setting from `self` (flags and environment) when given, else from `file`.
    pub fn merge(self, file: ServerOptions) -> ServerOptions {
        ServerOptions {
            listen: self.listen.or(file.listen),
            data: self.data.or(file.data),
            admin_token: self.admin_token.or(file.admin_token),
            metrics_public: self.metrics_public.or(file.metrics_public),
            retention_days: self.retention_days.or(file.retention_days),
            grace_hours: self.grace_hours.or(file.grace_hours),
            late_calls: self.late_calls.or(file.late_calls),
            auto_create_accounts: self.auto_create_accounts.or(file.auto_create_accounts),
            default_plan: self.default_plan.or(file.default_plan),
            default_timezone: self.default_timezone.or(file.default_timezone),
            min_free_mb: self.min_free_mb.or(file.min_free_mb),
            requests_per_commit: self.requests_per_commit.or(file.requests_per_commit),
            cache_mb: self.cache_mb.or(file.cache_mb),
            checkpoint_interval_ms: self.checkpoint_interval_ms.or(file.checkpoint_interval_ms),
            max_connections: self.max_connections.or(file.max_connections),
            header_timeout_ms: self.header_timeout_ms.or(file.header_timeout_ms),
            body_timeout_ms: self.body_timeout_ms.or(file.body_timeout_ms),
            idle_timeout_ms: self.idle_timeout_ms.or(file.idle_timeout_ms),
            write_timeout_ms: self.write_timeout_ms.or(file.write_timeout_ms),
            live_audit_timeout_ms: self.live_audit_timeout_ms.or(file.live_audit_timeout_ms),
            bodies_in_flight_mb: self.bodies_in_flight_mb.or(file.bodies_in_flight_mb),
            secure_cookies: self.secure_cookies.or(file.secure_cookies),
            plans: self.plans.or(file.plans),
            billing_rules: self.billing_rules.or(file.billing_rules),
            import: self.import.or(file.import),
            audit: self.audit.or(file.audit),
            webhooks_allow_private_targets: self.webhooks_allow_private_targets.or(file.webhooks_allow_private_targets),
            webhooks: self.webhooks.or(file.webhooks),
            alerts: self.alerts.or(file.alerts),
        }
    }

    /// Applies the defaults and checks the values.
    pub fn resolve(self) -> Result<Settings, OptionsError> {
        let limits = self.limits()?;
        let invalid = |name, message: String| OptionsError::Invalid { name, message };
        let entries = self.plans.map_or_else(|| default_plans().into_iter().map(PlanEntry::from).collect(), |p| *p);
        let plans: Vec<Plan> = entries.iter().map(|e| e.plan.clone()).collect();
        if plans.is_empty() {
            return Err(invalid("plans", "at least one plan is needed".into()));
        }
        let default_plan = self.default_plan.unwrap_or_else(|| plans[0].name.clone());
        if !plans.iter().any(|p| p.name == default_plan) {
            return Err(invalid("default_plan", format!("no plan is named {default_plan:?}")));
        }
        let tz_name = self.default_timezone.unwrap_or_else(|| "UTC".into());
        let default_timezone: chrono_tz::Tz = tz_name
            .parse()
            .map_err(|_| invalid("default_timezone", format!("{tz_name:?} is not an IANA time zone")))?;
        let late_calls = match self.late_calls.as_deref().unwrap_or("not_billed") {
            "not_billed" => LatePolicy::NotBilled,
            "bill_in_open_period" => LatePolicy::BillInOpenPeriod,
            other => {
                return Err(invalid("late_calls", format!("{other:?}: use \"not_billed\" or \"bill_in_open_period\"")))
            }
        };
        let retention_days = within("retention_days", self.retention_days.unwrap_or(400), RETENTION_DAYS)?;
        let grace_hours = self.grace_hours.unwrap_or(72.0);
        if !grace_hours.is_finite() {
            return Err(invalid("grace_hours", format!("{grace_hours} is not a number of hours")));
        }
        let grace_hours = within("grace_hours", grace_hours, GRACE_HOURS)?;
        let min_free_mb = within("min_free_mb", self.min_free_mb.unwrap_or(64), MIN_FREE_MB)?;
        let cache_mb = within("cache_mb", self.cache_mb.unwrap_or(256), CACHE_MB)?;
        let requests_per_commit =
            within("requests_per_commit", self.requests_per_commit.unwrap_or(16), REQUESTS_PER_COMMIT)?;
        let checkpoint_interval_ms =
            within("checkpoint_interval_ms", self.checkpoint_interval_ms.unwrap_or(20_000), CHECKPOINT_INTERVAL_MS)?;
        let audit = self.audit.map_or_else(AuditOptions::default, |a| *a);
        audit.check().map_err(|message| invalid("audit", message))?;
        let webhooks = self
            .webhooks
            .map(|w| *w)
            .unwrap_or_default()
            .resolve(self.webhooks_allow_private_targets)
            .map_err(|message| invalid("webhooks", message))?;
        let alerts = self
            .alerts
            .map(|a| *a)
            .unwrap_or_default()
            .resolve(&entries)
            .map_err(|message| invalid("alerts", message))?;
        Ok(Settings {
            listen: self.listen.unwrap_or_else(|| "127.0.0.1:8080".parse().expect("valid address")),
            data: self.data.unwrap_or_else(|| PathBuf::from("callmeter-data")),
            admin_token: self.admin_token.filter(|t| !t.is_empty()),
            metrics_public: self.metrics_public.unwrap_or(false),
            store: StoreOptions {
                retention: chrono::Duration::days(retention_days.into()),
                grace: chrono::Duration::milliseconds((grace_hours * 3_600_000.0) as i64),
                late_calls,
                auto_create_accounts: self.auto_create_accounts.unwrap_or(true),
                default_plan,
                default_timezone,
                plans,
                rules: self.billing_rules.map_or_else(BillingRules::platform_default, |rules| BillingRules { rules }),
                min_free_bytes: min_free_mb << 20,
                max_requests_per_commit: requests_per_commit,
                cache_bytes: cache_mb << 20,
                checkpoint_interval: std::time::Duration::from_millis(checkpoint_interval_ms),
                webhook_retention: chrono::Duration::days(webhooks.retention_days.into()),
                ..StoreOptions::default()
            },
            audit,
            limits,
            webhooks,
            secure_cookies: self.secure_cookies.unwrap_or(false),
            alerts,
        })
    }

    /// The connection and body bounds, each checked against its range. (Their
    /// settings are `u32`: the options are a variant of the CLI's command enum,
    /// which must stay small.)
    fn limits(&self) -> Result<ServerLimits, OptionsError> {
        let defaults = ServerLimits::default();
        let ms = |name, given: Option<u32>, default: Duration| {
            let default = u32::try_from(default.as_millis()).expect("default timeouts fit");
            within(name, given.unwrap_or(default), TIMEOUT_MS).map(|ms| Duration::from_millis(ms.into()))
        };
        let default_connections = u32::try_from(defaults.max_connections).expect("the default fits");
        let default_in_flight_mb = u32::try_from(defaults.bodies_in_flight >> 20).expect("the default fits");
        let in_flight_mb = within(
            "bodies_in_flight_mb",
            self.bodies_in_flight_mb.unwrap_or(default_in_flight_mb),
            BODIES_IN_FLIGHT_MB,
        )?;
        Ok(ServerLimits {
            max_connections: within(
                "max_connections",
                self.max_connections.unwrap_or(default_connections),
                MAX_CONNECTIONS,
            )? as usize,
            header_timeout: ms("header_timeout_ms", self.header_timeout_ms, defaults.header_timeout)?,
            body_timeout: ms("body_timeout_ms", self.body_timeout_ms, defaults.body_timeout)?,
            idle_timeout: ms("idle_timeout_ms", self.idle_timeout_ms, defaults.idle_timeout)?,
            write_timeout: ms("write_timeout_ms", self.write_timeout_ms, defaults.write_timeout)?,
            live_audit_timeout: ms("live_audit_timeout_ms", self.live_audit_timeout_ms, defaults.live_audit_timeout)?,
            bodies_in_flight: (in_flight_mb as usize) << 20,
        })
    }
}

/// The plans used when the config file names none (the same as `config/callmeter.example.toml`).
pub fn default_plans() -> Vec<Plan> {
    vec![
        Plan {
            name: "starter".into(),
            period: PeriodKind::ThirtyDays,
            included_calls: 1_000_000,
            overage_price_per_1000: 100,
            currency: "USD".into(),
        },
        Plan {
            name: "business".into(),
            period: PeriodKind::Monthly,
            included_calls: 20_000_000,
            overage_price_per_1000: 50,
            currency: "USD".into(),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_file_and_defaults_fill_the_rest() {
        let cli = ServerOptions { grace_hours: Some(1.0), ..Default::default() };
        let file: ServerOptions = toml::from_str(
            "grace_hours = 5\nretention_days = 10\n[[plans]]\nname = \"p\"\nperiod = \"monthly\"\nincluded_calls = 5\noverage_price_per_1000 = 1\n",
        )
        .unwrap();
        let s = cli.merge(file).resolve().unwrap();
        assert_eq!(s.store.grace, chrono::Duration::hours(1));
        assert_eq!(s.store.retention, chrono::Duration::days(10));
        assert_eq!(s.store.default_plan, "p");
        assert_eq!(s.listen.port(), 8080);
    }

    #[test]
    fn bad_values_name_the_setting() {
        let o = ServerOptions { default_timezone: Some("Mars/Base".into()), ..Default::default() };
        assert!(o.resolve().unwrap_err().to_string().contains("default_timezone"));
        let o = ServerOptions { late_calls: Some("later".into()), ..Default::default() };
        assert!(o.resolve().unwrap_err().to_string().contains("late_calls"));
        assert!(toml::from_str::<ServerOptions>("listn = 1").is_err());
    }

    #[test]
    fn every_number_is_checked_against_its_range() {
        let refused = |o: ServerOptions| o.resolve().unwrap_err().to_string();
        let e = refused(ServerOptions { retention_days: Some(u32::MAX), ..Default::default() });
        assert!(e.contains("retention_days") && e.contains("from 1 to 36500"), "{e}");
        let e = refused(ServerOptions { retention_days: Some(0), ..Default::default() });
        assert!(e.contains("retention_days"), "{e}");
        let e = refused(ServerOptions { grace_hours: Some(1e12), ..Default::default() });
        assert!(e.contains("grace_hours") && e.contains("from 0 to 8760"), "{e}");
        let e = refused(ServerOptions { grace_hours: Some(-1.0), ..Default::default() });
        assert!(e.contains("grace_hours"), "{e}");
        let e = refused(ServerOptions { grace_hours: Some(f64::NAN), ..Default::default() });
        assert!(e.contains("grace_hours"), "{e}");
        let e = refused(ServerOptions { min_free_mb: Some(u64::MAX), ..Default::default() });
        assert!(e.contains("min_free_mb") && e.contains("from 0 to 1048576"), "{e}");
        let e = refused(ServerOptions { cache_mb: Some(1 << 44), ..Default::default() });
        assert!(e.contains("cache_mb") && e.contains("from 1 to 1048576"), "{e}");
        let e = refused(ServerOptions { cache_mb: Some(0), ..Default::default() });
        assert!(e.contains("cache_mb"), "{e}");
        let e = refused(ServerOptions { requests_per_commit: Some(0), ..Default::default() });
        assert!(e.contains("requests_per_commit") && e.contains("from 1 to 1024"), "{e}");
        let e = refused(ServerOptions { requests_per_commit: Some(usize::MAX), ..Default::default() });
        assert!(e.contains("requests_per_commit"), "{e}");
        let e = refused(ServerOptions { checkpoint_interval_ms: Some(5), ..Default::default() });
        assert!(e.contains("checkpoint_interval_ms") && e.contains("from 10 to 3600000"), "{e}");
        let e = refused(ServerOptions { max_connections: Some(0), ..Default::default() });
        assert!(e.contains("max_connections") && e.contains("from 1 to 1000000"), "{e}");
        let e = refused(ServerOptions { header_timeout_ms: Some(99), ..Default::default() });
        assert!(e.contains("header_timeout_ms") && e.contains("from 100 to 3600000"), "{e}");
        let e = refused(ServerOptions { body_timeout_ms: Some(u32::MAX), ..Default::default() });
        assert!(e.contains("body_timeout_ms"), "{e}");
        let e = refused(ServerOptions { idle_timeout_ms: Some(0), ..Default::default() });
        assert!(e.contains("idle_timeout_ms"), "{e}");
        let e = refused(ServerOptions { write_timeout_ms: Some(99), ..Default::default() });
        assert!(e.contains("write_timeout_ms") && e.contains("from 100 to 3600000"), "{e}");
        let e = refused(ServerOptions { live_audit_timeout_ms: Some(3_600_001), ..Default::default() });
        assert!(e.contains("live_audit_timeout_ms"), "{e}");
        let e = refused(ServerOptions { bodies_in_flight_mb: Some(15), ..Default::default() });
        assert!(e.contains("bodies_in_flight_mb") && e.contains("from 16 to 1048576"), "{e}");
    }

    #[test]
    fn limits_come_from_the_settings() {
        let s = ServerOptions {
            max_connections: Some(3),
            header_timeout_ms: Some(100),
            body_timeout_ms: Some(3_600_000),
            idle_timeout_ms: Some(250),
            write_timeout_ms: Some(400),
            live_audit_timeout_ms: Some(5_000),
            bodies_in_flight_mb: Some(16),
            ..Default::default()
        }
        .resolve()
        .unwrap();
        let expected = ServerLimits {
            max_connections: 3,
            header_timeout: Duration::from_millis(100),
            body_timeout: Duration::from_secs(3_600),
            idle_timeout: Duration::from_millis(250),
            write_timeout: Duration::from_millis(400),
            live_audit_timeout: Duration::from_secs(5),
            bodies_in_flight: MAX_BODY_BYTES,
        };
        assert_eq!(s.limits, expected);
        assert_eq!(ServerOptions::default().resolve().unwrap().limits, ServerLimits::default());
    }

    #[test]
    fn the_ends_of_each_range_are_accepted() {
        let s = ServerOptions {
            retention_days: Some(36_500),
            grace_hours: Some(8_760.0),
            min_free_mb: Some(1 << 20),
            cache_mb: Some(1 << 20),
            requests_per_commit: Some(1_024),
            ..Default::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(s.store.retention, chrono::Duration::days(36_500));
        assert_eq!(s.store.grace, chrono::Duration::hours(8_760));
        assert_eq!((s.store.min_free_bytes, s.store.cache_bytes), (1 << 40, 1 << 40));
        // The farthest period end plus the longest grace, and now minus the
        // longest retention, are still times.
        let far = chrono::DateTime::<chrono::Utc>::MAX_UTC - chrono::Duration::days(365 * 1000);
        assert!(far.checked_add_signed(s.store.grace).is_some());
        assert!(chrono::Utc::now().checked_sub_signed(s.store.retention).is_some());
        let s = ServerOptions { grace_hours: Some(0.0), min_free_mb: Some(0), ..Default::default() }.resolve().unwrap();
        assert_eq!(s.store.min_free_bytes, 0);
    }

    #[test]
    fn the_shipped_example_config_is_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/callmeter.example.toml");
        let example = ServerOptions::from_file(&path).unwrap().resolve().unwrap();
        let defaults = ServerOptions::default().resolve().unwrap();
        assert_eq!(example.listen, defaults.listen);
        assert_eq!(example.data, defaults.data);
        assert_eq!(example.store.plans, defaults.store.plans);
        assert_eq!(example.store.rules, defaults.store.rules);
        assert_eq!(example.store.grace, defaults.store.grace);
        assert_eq!(example.store.retention, defaults.store.retention);
        assert_eq!(example.store.min_free_bytes, defaults.store.min_free_bytes);
        assert_eq!(example.store.checkpoint_interval, defaults.store.checkpoint_interval);
        assert_eq!(ServerOptions::from_file(&path).unwrap().import, None, "the shipped tables");
        assert_eq!(example.audit, defaults.audit);
        assert_eq!(example.limits, defaults.limits);
        assert_eq!(example.store.max_requests_per_commit, defaults.store.max_requests_per_commit);
        assert_eq!(example.store.cache_bytes, defaults.store.cache_bytes);
        assert_eq!(example.webhooks, defaults.webhooks);
        assert_eq!(example.alerts, defaults.alerts);
    }

    #[test]
    fn the_commented_alerts_table_of_the_example_is_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/callmeter.example.toml");
        let text = std::fs::read_to_string(path).unwrap();
        let start = text.find("# [alerts]").unwrap();
        let end = start + text[start..].find("\n\n").unwrap();
        let uncommented: String =
            text[start..end].lines().map(|l| l.strip_prefix("# ").unwrap_or(l).to_owned() + "\n").collect();
        let o: ServerOptions = toml::from_str(&uncommented).unwrap();
        assert!(o.alerts.is_some());
        assert_eq!(o.resolve().unwrap().alerts, ServerOptions::default().resolve().unwrap().alerts);
    }

    #[test]
    fn the_commented_audit_table_of_the_example_is_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/callmeter.example.toml");
        let text = std::fs::read_to_string(path).unwrap();
        let start = text.find("# [audit]").unwrap();
        let end = start + text[start..].find("\n\n").unwrap();
        let uncommented: String =
            text[start..end].lines().map(|l| l.strip_prefix("# ").unwrap_or(l).to_owned() + "\n").collect();
        let o: ServerOptions = toml::from_str(&uncommented).unwrap();
        assert_eq!(*o.audit.unwrap(), crate::AuditOptions::default());
    }

    #[test]
    fn the_commented_webhooks_table_of_the_example_is_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/callmeter.example.toml");
        let text = std::fs::read_to_string(path).unwrap();
        let start = text.find("# [webhooks]").unwrap();
        let end = start + text[start..].find("\n\n").unwrap();
        let uncommented: String =
            text[start..end].lines().map(|l| l.strip_prefix("# ").unwrap_or(l).to_owned() + "\n").collect();
        let o: ServerOptions = toml::from_str(&uncommented).unwrap();
        assert_eq!(o.resolve().unwrap().webhooks, crate::WebhookSettings::default());
    }

    #[test]
    fn a_bad_audit_setting_stops_the_start() {
        let o: ServerOptions = toml::from_str("[audit]\nrun_at_hour = 25\n").unwrap();
        let e = o.resolve().unwrap_err().to_string();
        assert!(e.contains("audit") && e.contains("run_at_hour"), "{e}");
        assert!(toml::from_str::<ServerOptions>("[audit]\nbatch_gap = 1\n").is_err());
    }

    #[test]
    fn the_commented_import_tables_of_the_example_parse() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/callmeter.example.toml");
        let text = std::fs::read_to_string(path).unwrap();
        let import = &text[text.find("# [import.webdav]").unwrap()..];
        let uncommented: String = import.lines().map(|l| l.strip_prefix("# ").unwrap_or(l).to_owned() + "\n").collect();
        let o: ServerOptions = toml::from_str(&uncommented).unwrap();
        let tables = o.import.unwrap();
        assert_eq!(tables.routes.0.len(), 1);
        assert_eq!(tables.overrides.0[0].interface.as_str(), "mount");
        callmeter_formats::Classifier::new(&tables).unwrap();
    }
}
