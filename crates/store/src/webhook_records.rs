//! What a store keeps for webhooks (DESIGN §7): subscriptions, the changes
//! of the change stream, deliveries in the outbox and their attempts.
//!
//! The shapes are the store's contract, not the embedded store's: a
//! PostgreSQL store keeps a row per [`Subscription`], per [`Change`], per
//! [`Delivery`] (claimed with `FOR UPDATE SKIP LOCKED` where `state =
//! 'pending' AND next_attempt_at <= now()`) and per [`Attempt`].
//!
//! Alert subscriptions (usage thresholds, projected overage, spikes) are the
//! same subscriptions with another [`Watch`], and their rows carry another
//! [`OutboxEvent`]: the outbox, the delivery engine, signing and retries are
//! the same for both.

use crate::alert_records::{Alert, AlertKind};
use callmeter_model::{Action, Interface, Operation};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Webhook subscriptions an account may have at most (folder and alert
/// subscriptions together): each costs a look at every change of the
/// account, and a claim's room.
pub const MAX_SUBSCRIPTIONS_PER_ACCOUNT: usize = 100;

/// What a subscription listens to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "watch", rename_all = "snake_case")]
pub enum Watch {
    /// Changes at or under a folder.
    Folder {
        /// The folder, normalized (no trailing `/` but for the root).
        folder: String,
    },
    /// The account's usage alerts of these kinds (its `actions` are empty).
    Alerts {
        /// The kinds, each once.
        events: Vec<AlertKind>,
    },
}

/// A signing secret (`whsec_` + base64): the current one, or one replaced
/// by a rotation that still signs until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningSecret {
    /// `whsec_` + base64 of the key bytes.
    pub secret: String,
    /// When it stops signing; `None` for the current secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

/// A webhook subscription of an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    /// Its id, unique in the store.
    pub id: String,
    /// The account it belongs to.
    pub account: String,
    /// Where deliveries are posted (`http` or `https`).
    pub url: String,
    /// What it listens to.
    #[serde(flatten)]
    pub watch: Watch,
    /// The actions it is told of.
    pub actions: Vec<Action>,
    /// Whether deliveries are sent; events for a disabled subscription are
    /// kept, to be replayed.
    pub enabled: bool,
    /// Why it was disabled, when the delivery engine disabled it (a 410, or
    /// five days of failures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    /// Headers added to every delivery.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The secrets that sign: the current one first, then those a rotation
    /// replaced, until they expire.
    pub secrets: Vec<SigningSecret>,
    /// When its deliveries began to fail without a success since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<DateTime<Utc>>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl Subscription {
    /// A new subscription made at `now`: enabled, signed with `secret`
    /// alone, with no custom headers and no failures.
    pub fn new(
        (account, id): (&str, &str),
        url: &str,
        (watch, actions): (Watch, Vec<Action>),
        secret: &str,
        now: DateTime<Utc>,
    ) -> Subscription {
        Subscription {
            id: id.into(),
            account: account.into(),
            url: url.into(),
            watch,
            actions,
            enabled: true,
            disabled_reason: None,
            headers: BTreeMap::new(),
            secrets: vec![SigningSecret { secret: secret.into(), expires_at: None }],
            failing_since: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// Whether a change of `action` at `path` (or to `destination`) is for
    /// this subscription: one at or under its folder, and a delete, move or
    /// copy of a folder that holds it, which changes what is under it too
    /// (a delete or move of `/data` takes `/data/inbox` with it; a move or
    /// copy to `/data` may bring one). A copy from a folder that holds it
    /// changes nothing there.
    pub fn wants(&self, action: Action, path: &str, destination: Option<&str>) -> bool {
        use callmeter_model::folder_contains;
        let Watch::Folder { folder } = &self.watch else { return false };
        if !self.actions.contains(&action) {
            return false;
        }
        let under = |p: &str| folder_contains(folder, p);
        let holds = |p: &str| folder_contains(p, folder);
        under(path)
            || destination.is_some_and(under)
            || match action {
                Action::Destroy => holds(path),
                Action::Move => holds(path) || destination.is_some_and(holds),
                Action::Copy => destination.is_some_and(holds),
                Action::Create | Action::Update | Action::Read => false,
            }
    }

    /// Whether an alert of `kind` is for this subscription.
    pub fn wants_alert(&self, kind: AlertKind) -> bool {
        matches!(&self.watch, Watch::Alerts { events } if events.contains(&kind))
    }

    /// Whether it asks to be told of reads (which makes the writer record them).
    pub fn watches_reads(&self) -> bool {
        self.actions.contains(&Action::Read)
    }

    /// The secrets that sign at `now`: the current one and those not yet expired.
    pub fn signing_secrets(&self, now: DateTime<Utc>) -> impl Iterator<Item = &str> {
        self.secrets.iter().filter(move |s| s.expires_at.is_none_or(|t| t > now)).map(|s| s.secret.as_str())
    }
}

/// A change to a subscription; each absent part stays as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscriptionUpdate {
    /// A new target.
    pub url: Option<String>,
    /// A new folder.
    pub watch: Option<Watch>,
    /// New actions.
    pub actions: Option<Vec<Action>>,
    /// Enable or disable (enabling clears the reason and the failures).
    pub enabled: Option<bool>,
    /// Why it is disabled (with `enabled: Some(false)` from the delivery engine).
    pub disabled_reason: Option<String>,
    /// New headers.
    pub headers: Option<BTreeMap<String, String>>,
    /// A rotation: the new secret, and until when the current one still signs.
    pub rotate_secret: Option<(String, DateTime<Utc>)>,
    /// Set (`Some(Some)`) or clear (`Some(None)`) when failures began.
    pub failing_since: Option<Option<DateTime<Utc>>>,
    /// Applied only if the subscription is still as read (its `updated_at`
    /// is this), else `Conflict`: for a change decided from what the
    /// subscription was (a masked header value kept for its own host).
    pub if_unchanged_since: Option<DateTime<Utc>>,
    /// Applied only if the subscription is enabled now, else `Conflict`:
    /// a disable the delivery engine decided (a 410 to several attempts at
    /// once) is made, and counted, once.
    pub if_enabled: bool,
}

impl SubscriptionUpdate {
    /// Applies the update to `sub` at `now`. `updated_at` moves only when
    /// something else changed: a `PATCH {}`, or one that sets what is
    /// already so, changes nothing a reader could see.
    pub fn apply(&self, sub: &mut Subscription, now: DateTime<Utc>) {
        let was = sub.clone();
        if let Some(url) = &self.url {
            sub.url = url.clone();
        }
        if let Some(watch) = &self.watch {
            sub.watch = watch.clone();
        }
        if let Some(actions) = &self.actions {
            sub.actions = actions.clone();
        }
        if let Some(enabled) = self.enabled {
            sub.enabled = enabled;
            if enabled {
                sub.disabled_reason = None;
                sub.failing_since = None;
            } else {
                sub.disabled_reason = self.disabled_reason.clone();
            }
        }
        if let Some(headers) = &self.headers {
            sub.headers = headers.clone();
        }
        if let Some((secret, old_until)) = &self.rotate_secret {
            // The current secret (the one without an expiry) signs beside the
            // new one until `old_until`; one rotated before it goes now. So at
            // most two sign, however often it is rotated (the header stays
            // small), and rotating again retires a leaked secret at once.
            sub.secrets.retain(|s| s.expires_at.is_none());
            for s in &mut sub.secrets {
                s.expires_at = Some(*old_until);
            }
            sub.secrets.insert(0, SigningSecret { secret: secret.clone(), expires_at: None });
        }
        if let Some(failing) = self.failing_since {
            sub.failing_since = failing;
        }
        if *sub != was {
            sub.updated_at = now;
        }
    }
}

/// One change of the change stream, as the writer recorded it with its call.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Its place in the store's one change sequence.
    pub seq: u64,
    /// The account.
    pub account: String,
    /// The call's id.
    pub call_id: String,
    /// The call's time.
    pub time: DateTime<Utc>,
    /// When the store took the call.
    pub arrival: DateTime<Utc>,
    /// What the call did.
    pub operation: Operation,
    /// How it came in.
    pub interface: Interface,
    /// The path, normalized.
    pub path: String,
    /// The destination of a move or copy, normalized.
    pub destination: Option<String>,
    /// The user.
    pub user: Option<String>,
    /// The api key.
    pub api_key: Option<String>,
}

/// What a delivery carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OutboxEvent {
    /// A change of the change stream, as this action.
    Change {
        /// The change's sequence.
        seq: u64,
        /// What it is to the subscription.
        action: Action,
    },
    /// A usage alert.
    Alert {
        /// The alert's id.
        id: u64,
    },
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// To be attempted at `next_attempt_at`.
    Pending,
    /// A 2xx answered it.
    Delivered,
    /// Every attempt of the schedule failed.
    Failed,
    /// Kept without being sent: its subscription was disabled. Replay sends it.
    Held,
}

/// One event for one subscription: a row of the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// Its id, unique in the store.
    pub id: u64,
    /// The subscription's account.
    pub account: String,
    /// The subscription.
    pub subscription: String,
    /// What it carries.
    pub event: OutboxEvent,
    /// Where it stands.
    pub state: DeliveryState,
    /// Attempts made so far (since the last replay or redelivery).
    pub attempts: u32,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: DateTime<Utc>,
    /// When the event arrived (the call's arrival): replay picks by it.
    pub created_at: DateTime<Utc>,
}

impl Delivery {
    /// The `webhook-id`: the same on every attempt of one event for one
    /// subscription (the change's sequence number or the alert's id in hex).
    pub fn webhook_id(&self) -> String {
        match self.event {
            OutboxEvent::Change { seq, .. } => format!("msg_{}_{seq:x}", self.subscription),
            OutboxEvent::Alert { id } => format!("msg_{}_alert_{id:x}", self.subscription),
        }
    }
}

/// A due delivery, claimed by one sender, with what it needs to be sent.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    /// The outbox row.
    pub delivery: Delivery,
    /// Its subscription, as it is now (shared with the store's view).
    pub subscription: std::sync::Arc<Subscription>,
    /// What it carries.
    pub event: DeliveredEvent,
}

/// What a claimed delivery carries, read from the store.
#[derive(Debug, Clone)]
pub enum DeliveredEvent {
    /// A change, as this action.
    Change(Change, Action),
    /// A usage alert.
    Alert(Alert),
}

/// What one attempt found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// Its id, unique in the store.
    pub id: u64,
    /// The delivery it was made for.
    pub delivery: u64,
    /// The delivery's `webhook-id`.
    pub webhook_id: String,
    /// When it started.
    pub at: DateTime<Utc>,
    /// `delivered` or `failed`.
    pub status: AttemptStatus,
    /// The target's HTTP status, when it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_code: Option<u16>,
    /// From connect to the end of the answer (or the failure).
    pub latency_ms: u64,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The retry the schedule set when this failed attempt was recorded (a
    /// snapshot: a later redelivery, replay or disable changes the delivery,
    /// not this); none when no retry was set: delivered, the tenth attempt,
    /// the webhook disabled, or the delivery asked for again (redeliver,
    /// replay) while the attempt ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// Whether an attempt delivered its event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptStatus {
    /// A 2xx.
    Delivered,
    /// Anything else.
    Failed,
}

/// What becomes of a delivery after an attempt: the delivery engine's
/// decision (its schedule), which the store records with the attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    /// Done: delivered.
    Delivered,
    /// Try again at this time.
    RetryAt(DateTime<Utc>),
    /// No more attempts.
    GiveUp,
    /// Keep it without sending (its subscription was disabled).
    Hold,
}

/// An attempt of a claimed delivery, to record, and what becomes of the delivery.
#[derive(Debug, Clone)]
pub struct Completion {
    /// The claimed row.
    pub delivery: Delivery,
    /// The attempt made (its id is given when it is recorded); none when the
    /// row was not sent (its subscription was disabled while it waited).
    pub attempt: Option<Attempt>,
    /// What follows.
    pub next: NextStep,
}

/// A page of a subscription's attempts, newest first.
#[derive(Debug, Clone)]
pub struct AttemptPage {
    /// The attempts.
    pub attempts: Vec<Attempt>,
    /// The id to pass as `before` for the next page, when there is one.
    pub next_before: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A webhook on a folder is told of changes under it, and of a delete,
    /// move or copy of a folder that holds it; not of a copy from one, nor
    /// of changes beside it.
    #[test]
    fn a_folder_webhook_wants_changes_under_it_and_to_what_holds_it() {
        let every = vec![Action::Create, Action::Update, Action::Destroy, Action::Move, Action::Copy];
        let watch = (Watch::Folder { folder: "/data/inbox".into() }, every);
        let sub = Subscription::new(("acme", "wh_1"), "https://x.example/hook", watch, "whsec_x", Utc::now());
        let wants = |action, path, dest: Option<&str>| sub.wants(action, path, dest);
        assert!(wants(Action::Create, "/data/inbox/a.csv", None));
        assert!(wants(Action::Update, "/data/inbox", None));
        assert!(!wants(Action::Create, "/data", None), "a parent made holds nothing yet");
        assert!(!wants(Action::Create, "/data/inboxes/a", None), "beside it");
        assert!(wants(Action::Destroy, "/data", None));
        assert!(wants(Action::Destroy, "/", None));
        assert!(!wants(Action::Destroy, "/data/other", None));
        assert!(wants(Action::Move, "/data", Some("/archive")), "moved away");
        assert!(wants(Action::Move, "/archive", Some("/data")), "moved in");
        assert!(wants(Action::Move, "/data/inbox/a", Some("/elsewhere")));
        assert!(wants(Action::Copy, "/archive", Some("/data")), "copied in");
        assert!(wants(Action::Copy, "/data/inbox/a", Some("/elsewhere")), "copied out, as before");
        assert!(!wants(Action::Copy, "/data", Some("/archive")), "a copy from a parent changes nothing here");
        let some = (Watch::Folder { folder: "/data/inbox".into() }, vec![Action::Create]);
        let creates = Subscription::new(("acme", "wh_2"), "https://x.example/hook", some, "whsec_x", Utc::now());
        assert!(!creates.wants(Action::Destroy, "/data", None), "an action it did not ask for");
    }

    /// An update that changes nothing (a `PATCH {}`, or one that sets what
    /// is already so) leaves `updated_at`; one that changes something moves it.
    #[test]
    fn only_a_change_moves_updated_at() {
        let t0 = Utc::now();
        let folder = (Watch::Folder { folder: "/".into() }, vec![Action::Create]);
        let mut sub = Subscription::new(("acme", "wh_1"), "https://x.example/hook", folder, "whsec_first", t0);
        let t1 = t0 + chrono::Duration::minutes(5);
        SubscriptionUpdate::default().apply(&mut sub, t1);
        assert_eq!(sub.updated_at, t0, "nothing asked");
        let same = SubscriptionUpdate { url: Some(sub.url.clone()), enabled: Some(true), ..Default::default() };
        same.apply(&mut sub, t1);
        assert_eq!(sub.updated_at, t0, "what is already so");
        let moved = SubscriptionUpdate { url: Some("https://y.example/hook".into()), ..Default::default() };
        moved.apply(&mut sub, t1);
        assert_eq!((sub.url.as_str(), sub.updated_at), ("https://y.example/hook", t1));
    }

    /// A rotation keeps the current secret signing until its end and retires
    /// the one rotated before: two sign at most, however often it rotates.
    #[test]
    fn a_rotation_keeps_two_secrets_at_most() {
        let t0 = Utc::now();
        let folder = (Watch::Folder { folder: "/".into() }, vec![Action::Create]);
        let mut sub = Subscription::new(("acme", "wh_1"), "https://x.example/hook", folder, "whsec_first", t0);
        let day = chrono::Duration::hours(24);
        let rotate = |secret: &str, at: DateTime<Utc>| SubscriptionUpdate {
            rotate_secret: Some((secret.into(), at + day)),
            ..Default::default()
        };
        rotate("whsec_second", t0).apply(&mut sub, t0);
        let signing: Vec<&str> = sub.signing_secrets(t0).collect();
        assert_eq!(signing, ["whsec_second", "whsec_first"]);
        let t1 = t0 + chrono::Duration::minutes(5);
        for i in 0..50 {
            rotate(&format!("whsec_{i}"), t1).apply(&mut sub, t1);
        }
        let signing: Vec<&str> = sub.signing_secrets(t1).collect();
        assert_eq!(signing, ["whsec_49", "whsec_48"], "the first is retired by the rotations after it");
        assert_eq!(sub.secrets[1].expires_at, Some(t1 + day));
        assert_eq!(sub.signing_secrets(t1 + day).collect::<Vec<_>>(), ["whsec_49"]);
    }
}
