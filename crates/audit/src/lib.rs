//! callmeter's usage audit (DESIGN §6): for one account and a time range,
//! who made the calls, and which of them could go away.
//!
//! Feed an [`Auditor`] the account's calls, one [`CallEvent`](callmeter_model::CallEvent)
//! at a time in time order (or a log through [`audit_log`], several logs
//! merged by time through [`audit_logs`]), then
//! [`Auditor::finish`] gives the [`AuditReport`]: `top_sources`, the findings
//! (`polling`, `list_after_write`, `duplicate_requests`, biggest waste first,
//! each with a recommendation in plain words) and `what_if`. Pure code: no
//! I/O beyond the readers and writers passed in, no clock, no threads.
//!
//! ```
//! use callmeter_audit::{AuditConfig, Auditor};
//! use callmeter_audit::simulate::{scenario, ScenarioShape};
//! let sim = scenario(7, &ScenarioShape::default());
//! let mut auditor = Auditor::new(AuditConfig { list_page_size: sim.truth.list_page_size, ..AuditConfig::default() })?;
//! for e in &sim.events {
//!     auditor.push(e);
//! }
//! let report = auditor.finish();
//! assert_eq!(report.calls, sim.events.len() as u64);
//! println!("{}", serde_json::to_string_pretty(&report).unwrap());
//! # Ok::<(), callmeter_audit::AuditError>(())
//! ```
//!
//! # Precedence
//!
//! Each avoidable call is in one finding only, so `what_if` never subtracts a
//! call twice: a duplicate request is a duplicate and nothing else; of the
//! rest, a listing that an upload batch takes belongs to `list_after_write`;
//! `polling` counts what is left.
//!
//! # Layout
//!
//! - [`config`]: [`AuditConfig`], every threshold, with defaults (the server's `[audit]` table).
//! - [`auditor`]: the engine: reorder buffer, repeat lookahead, the analyses in precedence order.
//! - [`source`]: who made a call: API key, else user, else client IP and user agent.
//! - `repeats`: which repeated request is a duplicate, a retry after a failed answer, or neither.
//! - `failed_answer`: the statuses a client should retry (408, 429, 5xx, no answer).
//! - [`duplicates`]: the duplicate finding of each source.
//! - [`list_after_write`]: upload batches and the listings after each upload.
//! - [`polling`]: regular repeats, scored by Bowley skew and MAD of the intervals.
//! - [`what_if`]: the calls with every recommendation applied, and the plans that fit.
//! - [`top_sources`]: calls by interface, source, key, user, address, agent, operation, path prefix.
//! - [`timeline`]: calls over time, in total and for the biggest sources.
//! - [`report`]: the report types, in DESIGN §6's JSON shape.
//! - [`report_text`]: the report as plain text and as an HTML page.
//! - [`log`]: auditing straight from log lines through the formats crate, one log or several.
//! - [`merge`]: several inputs as one stream in time order, whatever order they are named in.
//! - [`rotation`]: which files are the rotated files of one log, and their order.
//! - [`seen_ids`]: the ids read lately, so that a call read twice (a log and its copy) counts once.
//! - [`simulate`]: a seeded workload generator with a truth file, and log writers.
//! - [`paths`]: path normal form, parents, common folders; interning.
//! - `changes`: when each path last changed (writes at or under it).
//! - `intervals`: the bounded interval sample and the robust statistics.
//! - `listing`: what one listing costs, in calls.
//! - `call`: a call as the audit keeps it between stages.
//! - [`error`]: the crate's one error.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod auditor;
mod call;
mod changes;
pub mod config;
pub mod duplicates;
pub mod error;
mod failed_answer;
mod intervals;
pub mod list_after_write;
mod listing;
pub mod log;
pub mod merge;
pub mod paths;
pub mod polling;
mod repeats;
pub mod report;
pub mod report_text;
pub mod rotation;
pub mod seen_ids;
pub mod simulate;
pub mod source;
pub mod timeline;
pub mod top_sources;
pub mod what_if;

pub use auditor::Auditor;
pub use config::AuditConfig;
pub use error::AuditError;
pub use log::{audit_log, audit_logs, audit_merged, LogCalls, LogInput, LogSummary};
pub use merge::TimeMerge;
pub use polling::{regularity, Regularity};
pub use report::{AuditReport, Finding, FindingDetails, FindingKind};
pub use report_text::{to_html, to_text};
pub use rotation::{log_file_order, LogFileOrder};
pub use seen_ids::{SeenIds, SEEN_IDS_WINDOW_SECS};
pub use source::{Source, SourceKey};
pub use timeline::{SourceSeries, Timeline};
pub use top_sources::{Share, TopSources};
pub use what_if::{AvoidableByKind, PlanFit, WhatIf};

/// The audit's hash maps: a fast hasher (the keys are short paths and ids,
/// hashed once per call), seeded per process so that crafted paths cannot
/// pick the collisions.
pub(crate) type Map<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
