//! Storage for callmeter: the [`Store`] trait the server is written against,
//! and [`EmbeddedStore`], which keeps everything in one data folder with the
//! fjall storage engine.
//!
//! # Layout
//!
//! - `store.rs`: the [`Store`] trait and its request types.
//! - `records.rs`: accounts, tokens, adjustments, outcomes, request-log pages.
//! - `webhook_records.rs`: webhook subscriptions, changes, outbox deliveries and attempts.
//! - `alert_records.rs`: usage alerts, each fired once per account, period and threshold.
//! - `options.rs`: [`StoreOptions`], the metering settings a store applies.
//! - `codec.rs`: how a block of calls is laid out on disk.
//! - `aggregate.rs`: the 15-minute aggregates kept on write.
//! - `keys.rs`: byte layouts of the keys.
//! - `disk.rs`: free space, checked before every commit.
//! - `failpoint.rs`: fault injection at every step that writes (test builds only).
//! - `embedded/`: the fjall store: open and reads (`mod.rs`), the data
//!   folder's check (`folder.rs`), the single writer (`writer.rs`) and its
//!   syncer with group commit (`syncer.rs`), recent keys and aggregates and
//!   their checkpoints (`derived.rs`), undo of failed syncs (`undo.rs`), the
//!   time-ordered request-log scan (`scan.rs`), retention (`expiry.rs`),
//!   online backup (`backup.rs`) and the kept daily audits (`audits.rs`);
//!   format upgrades (`upgrade.rs`, `upgrade/`);
//!   for webhooks, the change log (`changelog.rs`), subscriptions
//!   (`subscriptions.rs`; as readers see them, with their numbers,
//!   `subscription_index.rs`), the change processor (`processor.rs`) with
//!   its path index (`paths.rs`) and its memory of it (`path_memory.rs`),
//!   and the outbox (`outbox.rs`, its fresh rows `outbox_fresh.rs`, its
//!   completions `outbox_complete.rs`, its rows' encoding `outbox_rows.rs`,
//!   `webhook_store.rs`);
//!   for alerts, the accounts whose usage changed (`usage_signal.rs`) and
//!   the alerts fired (`alerts.rs`).
//! - `error.rs`: [`StoreError`].

mod aggregate;
mod alert_records;
mod codec;
mod disk;
mod embedded;
mod error;
mod failpoint;
mod keys;
mod options;
mod records;
mod store;
mod webhook_records;

pub use aggregate::{BreakdownRow, CallFlags, TotalRow};
pub use alert_records::{Alert, AlertKind, AlertPage, WasteFinding};
pub use codec::StoredCall;
pub use embedded::{EmbeddedStore, FORMAT_VERSION};
pub use error::{is_disk_full, StoreError};
pub use options::{LatePolicy, StoreOptions};
pub use records::{AccountRecord, Adjustment, CallFilter, CallPage, Outcome, Position, Scope, TokenRecord};
pub use store::{AccountChange, BackupReport, IngestTicket, OpenReport, Store};
pub use webhook_records::{
    Attempt, AttemptPage, AttemptStatus, Change, ClaimedDelivery, Completion, DeliveredEvent, Delivery, DeliveryState,
    NextStep, OutboxEvent, SigningSecret, Subscription, SubscriptionUpdate, Watch, MAX_SUBSCRIPTIONS_PER_ACCOUNT,
};
