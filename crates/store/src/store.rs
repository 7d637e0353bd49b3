//! The storage trait: everything the server asks of a store.
//!
//! The embedded store implements it today; a PostgreSQL store can follow
//! (DESIGN §9) without the server changing. Writes go through `ingest` and
//! the account, token and adjustment calls; reads never block writes.

use crate::aggregate::{BreakdownRow, TotalRow};
use crate::alert_records::{Alert, AlertPage};
use crate::records::{AccountRecord, Adjustment, CallFilter, CallPage, Outcome, Position, TokenRecord};
use crate::webhook_records::{AttemptPage, ClaimedDelivery, Completion, Delivery, Subscription, SubscriptionUpdate};
use crate::StoreError;
use callmeter_model::CallEvent;
use chrono::{DateTime, NaiveDate, Utc};
use std::path::Path;

/// Resolves once a batch of events is durable (or has failed as a whole).
pub struct IngestTicket(pub(crate) tokio::sync::oneshot::Receiver<Result<Vec<Outcome>, StoreError>>);

impl IngestTicket {
    /// Waits for the outcome from async code.
    pub async fn wait(self) -> Result<Vec<Outcome>, StoreError> {
        self.0.await.unwrap_or(Err(StoreError::ShuttingDown))
    }

    /// A ticket that resolves to `error` at once.
    pub fn failed(error: StoreError) -> IngestTicket {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let _ = tx.send(Err(error));
        IngestTicket(rx)
    }

    /// Waits for the outcome from a plain thread.
    pub fn wait_blocking(self) -> Result<Vec<Outcome>, StoreError> {
        self.0.blocking_recv().unwrap_or(Err(StoreError::ShuttingDown))
    }
}

/// A change to an account's plan, zone, anchor or list page size; each absent part stays as it is.
#[derive(Debug, Clone, Default)]
pub struct AccountChange {
    /// The new plan's name.
    pub plan: Option<String>,
    /// The new IANA time zone.
    pub timezone: Option<chrono_tz::Tz>,
    /// The new period anchor date.
    pub anchor: Option<NaiveDate>,
    /// The account's list page size (an audit setting: it applies at once, not from the next period).
    pub list_page_size: Option<u64>,
    /// The account's alert thresholds, in percent of the included calls, in
    /// place of its plan's (they apply at once); an empty list goes back to the plan's.
    pub alert_thresholds: Option<Vec<u32>>,
}

/// What a backup copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupReport {
    /// Key-value rows copied.
    pub rows: u64,
    /// Bytes of keys and values copied.
    pub bytes: u64,
}

/// What opening a store took: after a crash, the calls since the last
/// checkpoint are replayed (and checkpointed at once), so this stays bounded
/// by the checkpoint interval however many crashes came before.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// Blocks replayed from the block log.
    pub replayed_blocks: u64,
    /// Calls in them.
    pub replayed_calls: u64,
    /// Of those, the calls the open could not checkpoint (the engine's
    /// compaction behind, a full disk): they wait in memory and the block log
    /// for the next checkpoint, and a crash before it replays them again.
    pub replayed_calls_waiting: u64,
    /// How long the open took.
    pub elapsed: std::time::Duration,
}

/// A store of calls, aggregates, accounts and tokens.
pub trait Store: Send + Sync + 'static {
    /// Submits validated events. Each is deduplicated, checked against retention
    /// and its account, and counted; the ticket resolves once every accepted
    /// event is durable, with one outcome per event in order. It may read the
    /// store on the calling thread: call it off an async runtime's workers.
    fn ingest(&self, events: Vec<CallEvent>) -> IngestTicket;

    /// One account.
    fn account(&self, name: &str) -> Option<AccountRecord>;

    /// Every account, by name.
    fn accounts(&self) -> Vec<AccountRecord>;

    /// Creates an account, or schedules a change of plan, zone or anchor from its next period on.
    fn upsert_account(&self, name: &str, change: AccountChange) -> Result<AccountRecord, StoreError>;

    /// Per-bucket totals of an account for buckets in `[from_bucket, to_bucket)`.
    fn totals(&self, account: &str, from_bucket: i64, to_bucket: i64) -> Result<Vec<TotalRow>, StoreError>;

    /// Per-bucket counts with api key and user for buckets in `[from_bucket, to_bucket)`.
    fn breakdown(&self, account: &str, from_bucket: i64, to_bucket: i64) -> Result<Vec<BreakdownRow>, StoreError>;

    /// A page of the request log in time order, after `after` when given.
    fn calls(
        &self,
        account: &str,
        filter: &CallFilter,
        after: Option<Position>,
        limit: usize,
    ) -> Result<CallPage, StoreError>;

    /// Records an adjustment.
    fn add_adjustment(&self, adjustment: Adjustment) -> Result<(), StoreError>;

    /// The adjustments of the period of an account that starts at `period_start`.
    fn adjustments(
        &self,
        account: &str,
        period_start: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<Adjustment>, StoreError>;

    /// Stores a token (replacing one with the same id).
    fn put_token(&self, token: TokenRecord) -> Result<(), StoreError>;

    /// Revokes a token; false when there was none with that id.
    fn delete_token(&self, id: &str) -> Result<bool, StoreError>;

    /// Every token.
    fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError>;

    /// Keeps the audit report of an account for one day (DESIGN §6 JSON, as
    /// given), replacing one kept before. Durable when it returns. Refused
    /// below the free-space reserve, like every write.
    fn put_audit(&self, account: &str, day: NaiveDate, report_json: &[u8]) -> Result<(), StoreError>;

    /// The audit report kept for an account and day, if any.
    fn audit(&self, account: &str, day: NaiveDate) -> Result<Option<Vec<u8>>, StoreError>;

    /// Every account's audit report kept for a day, by account name.
    fn audits(&self, day: NaiveDate) -> Result<Vec<(String, Vec<u8>)>, StoreError>;

    /// Writes a consistent copy of the store into an empty folder, while it keeps running.
    fn backup(&self, dir: &Path) -> Result<BackupReport, StoreError>;

    /// Whether the store can take writes (false after a failed sync, until restart).
    fn is_writable(&self) -> bool;

    /// Bytes the store takes on disk.
    fn disk_bytes(&self) -> u64;

    /// What opening the store replayed and how long it took.
    fn open_report(&self) -> OpenReport;

    // Webhooks (DESIGN §7, docs/webhooks.md). Subscriptions are written like
    // accounts: durable when answered. The change stream is the store's own
    // (written with the calls); the outbox is claimed and completed by the
    // delivery engine, which decides the schedule and passes its times in.

    /// Stores a new subscription; `Conflict` when its id is taken, or its
    /// account has [`MAX_SUBSCRIPTIONS_PER_ACCOUNT`](crate::MAX_SUBSCRIPTIONS_PER_ACCOUNT)
    /// already (decided with the write: requests at once cannot pass it).
    fn create_subscription(&self, sub: Subscription) -> Result<Subscription, StoreError>;

    /// Changes a subscription; `None` when the account has none with that
    /// id; `Conflict` when it changed since `update.if_unchanged_since`, or is
    /// disabled and the update is `if_enabled`.
    fn update_subscription(
        &self,
        account: &str,
        id: &str,
        update: SubscriptionUpdate,
    ) -> Result<Option<Subscription>, StoreError>;

    /// Deletes a subscription (its undelivered events go with it); false when there was none.
    fn delete_subscription(&self, account: &str, id: &str) -> Result<bool, StoreError>;

    /// One subscription of an account, as it is now (shared: the delivery
    /// engine reads it at every attempt).
    fn subscription(&self, account: &str, id: &str) -> Option<std::sync::Arc<Subscription>>;

    /// Every subscription of an account, by id.
    fn subscriptions(&self, account: &str) -> Vec<Subscription>;

    /// Claims up to `limit` deliveries due at `now` that no one else holds
    /// and that `admit` takes, earliest due first, with their subscriptions
    /// and changes. A claim holds until completed (or the process ends: then
    /// the delivery is due again). A delivery `admit` refuses (its target or
    /// its account has no room now) is left as it is, for a later claim, and
    /// the claim looks further: one slow receiver holds back no one else.
    /// (PostgreSQL: `FOR UPDATE SKIP LOCKED` with the refused subscriptions
    /// excluded.)
    fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        admit: &mut dyn FnMut(&Subscription) -> bool,
    ) -> Result<Vec<ClaimedDelivery>, StoreError>;

    /// Records attempts of claimed deliveries and what becomes of each, all
    /// or none (one write for many: a busy engine completes in batches), and
    /// releases their claims. On an error the rows stay pending where they
    /// were, to be claimed again: at least once.
    fn complete_deliveries(&self, done: &[Completion]) -> Result<(), StoreError>;

    /// When the earliest unclaimed pending delivery is due, if any.
    fn next_delivery_due(&self) -> Result<Option<DateTime<Utc>>, StoreError>;

    /// Notified when deliveries may have become due (new events, retries, replays).
    fn deliveries_notify(&self) -> std::sync::Arc<tokio::sync::Notify>;

    /// Stored changes not yet turned into deliveries: the change
    /// processor's backlog (`/metrics`; it should stay near zero).
    fn changes_unprocessed(&self) -> u64;

    /// A subscription's attempts, newest first, before the attempt id `before`.
    fn delivery_attempts(
        &self,
        account: &str,
        id: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<AttemptPage, StoreError>;

    /// Every delivery of a subscription, oldest first.
    fn deliveries(&self, account: &str, id: &str) -> Result<Vec<Delivery>, StoreError>;

    /// Sends one delivery again (same `webhook-id`), due at `now`; false when there is no such delivery.
    fn redeliver(&self, account: &str, id: &str, delivery: u64, now: DateTime<Utc>) -> Result<bool, StoreError>;

    /// Sends again every event of a subscription that arrived at or after
    /// `since` (kept while it was disabled, or delivered), due at `now`; how many.
    fn replay(&self, account: &str, id: &str, since: DateTime<Utc>, now: DateTime<Utc>) -> Result<u64, StoreError>;

    // Usage alerts (DESIGN §7, docs/webhooks.md §8). The server decides when
    // an alert is due; the store fires each at most once, with its
    // deliveries to the account's alert subscriptions, atomically.

    /// The accounts whose usage changed (durable calls, adjustments, a
    /// changed record) since the last call, each once; every account on the
    /// first call after the store opened. Waits up to `wait` while there is
    /// none. For one consumer: the alert evaluator.
    fn accounts_with_new_usage(&self, wait: std::time::Duration) -> Vec<String>;

    /// Fires the alerts that were never fired (by [`Alert::fired_key`]): each
    /// gets its id, and a delivery for every alert subscription of its
    /// account that wants its kind, all durable before this returns, or none
    /// of it. The alerts fired now.
    fn fire_alerts(&self, alerts: Vec<Alert>) -> Result<Vec<Alert>, StoreError>;

    /// An account's alerts, newest first, before the alert id `before`.
    fn alerts(&self, account: &str, before: Option<u64>, limit: usize) -> Result<AlertPage, StoreError>;
}
