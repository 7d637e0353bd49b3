//! callmeter's data model: what a billable call is, and how calls are
//! counted into periods and priced (DESIGN §1–§3).
//!
//! Pure code: no I/O, no threads, no clock reads. Functions that need the
//! time take `now` from the caller.
//!
//! # Layout
//!
//! - [`event`]: the call event, its `interface` and `operation` enums with
//!   their stable on-disk codes, and deriving an operation from a method.
//! - [`parse`]: one JSON object to a validated [`CallEvent`] (every field in
//!   its domain: no control characters, status 0–999, finite durations), or an
//!   [`EventError`] naming the field and the [`RejectReason`].
//! - [`cloudevent`]: a CloudEvent whose data is a call event, mapped onto
//!   that call event (envelope `id`, `time`, `source`, `subject`), the one
//!   mapping of the server's three CloudEvents modes and of the log importer.
//! - [`rules`]: effective-dated billing rules per interface.
//! - [`plan`]: plans, overage in started blocks of 1,000, picking a plan.
//! - [`money`]: prices in minor units shown as money (`$12.50`, `12.50 CHF`).
//! - [`period`]: `30d` and `monthly` usage periods in an IANA zone, and an
//!   account's schedule of plan, zone and anchor changes.
//! - [`bucket`]: the 15-minute buckets aggregates are kept in.
//! - [`pages`]: how many requests a folder listing takes.
//! - [`key`]: the 128-bit dedup key of (account, id).
//! - [`change`]: which calls are changes that webhooks tell about, and what
//!   each is to a subscriber (`create`, `update`, …); folders and paths.
//! - [`text`]: characters that make text shown to people misread.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bucket;
pub mod change;
pub mod cloudevent;
pub mod event;
pub mod key;
pub mod money;
pub mod pages;
pub mod parse;
pub mod period;
pub mod plan;
pub mod rules;
pub mod text;

pub use bucket::{bucket_of, bucket_start, BUCKET_SECONDS};
pub use change::{folder_contains, is_change, normalize_path, Action, UnknownAction};
pub use cloudevent::{is_json_media_type, CloudEventEnvelope, CLOUDEVENTS_SPEC_VERSION};
pub use event::{derive_operation, CallEvent, Direction, Interface, Operation, UnknownName};
pub use key::DedupKey;
pub use money::{minor_digits, Money};
pub use pages::{list_pages, DEFAULT_LIST_PAGE_SIZE};
pub use parse::{
    check_event, event_from_value, is_valid_account, parse_event, EventError, EventLimits, RejectReason,
    ACCOUNT_PATTERN, MAX_ACCOUNT_BYTES, MAX_COUNT, MAX_ID_BYTES, MAX_STATUS,
};
pub use period::{local_midnight, AccountSchedule, PeriodKind, PeriodRule, Term, UnknownPeriodKind, UsagePeriod};
pub use plan::{pick_plan, Overage, Plan, OVERAGE_BLOCK_CALLS};
pub use rules::{platform_billing_start, BillingRule, BillingRules};
pub use text::misleads;
