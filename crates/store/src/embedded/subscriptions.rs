//! Webhook subscriptions, as the writer keeps them.
//!
//! | keyspace   | key                                  | value                    |
//! |------------|--------------------------------------|--------------------------|
//! | `webhooks` | account, length-prefixed id          | JSON `Subscription`, its number |
//!
//! Subscriptions are written through the writer, like accounts: a change is
//! durable when it is answered, ordered with the commits around it, and
//! undone with them if their sync fails. The writer keeps its own view of
//! every subscription (ahead of readers, as with accounts) for one reason:
//! it records changes only for accounts with a folder subscription (reads
//! only for those that one asks reads of), and it must know those sets
//! without reading the engine per call. The
//! readers' view (`Shared::subscriptions`, which the change processor and the
//! API read) follows once the commit is durable (`syncer.rs`). The writer
//! gives each subscription made its number (`subscription_index.rs`).

use super::requests::{complete_with, Command};
use super::subscription_index::{self, Published, NEXT_NUMBER_KEY};
use super::syncer::Completion;
use super::undo::UndoEntry;
use super::Engine;
use crate::keys;
use crate::webhook_records::{Subscription, SubscriptionUpdate, Watch, MAX_SUBSCRIPTIONS_PER_ACCOUNT};
use crate::StoreError;
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// Subscription records written by a commit, to publish once it is durable
/// (`None`: deleted), by key, with their numbers, in the order written.
pub(crate) type Staged = Vec<(Vec<u8>, Option<(Subscription, u32)>)>;

/// The writer's view of the subscriptions.
pub(crate) struct WriterSubscriptions {
    /// Each with its number.
    all: HashMap<Vec<u8>, (Subscription, u32)>,
    /// The number the next subscription made takes (none is given twice).
    next_number: u32,
    /// Accounts with a subscription that asks for reads, and how many such subscriptions.
    reads_watched: HashMap<String, usize>,
    /// Accounts with a folder subscription (enabled or not), and how many.
    folders_watched: HashMap<String, usize>,
    /// Accounts with a subscription, and how many.
    counts: HashMap<String, usize>,
}

impl WriterSubscriptions {
    pub fn new(published: &Published, next_number: u32) -> WriterSubscriptions {
        let mut view = WriterSubscriptions {
            all: HashMap::new(),
            next_number,
            reads_watched: HashMap::new(),
            folders_watched: HashMap::new(),
            counts: HashMap::new(),
        };
        for (k, listed) in published.iter() {
            view.set(k.clone(), Some(((*listed.sub).clone(), listed.number)));
        }
        view
    }

    /// Whether calls of `account` are recorded as changes at all: only while
    /// it has a folder subscription. Others cost nothing (no change, no path
    /// index), however much they write.
    pub fn folders_watched(&self, account: &str) -> bool {
        !self.folders_watched.is_empty() && self.folders_watched.contains_key(account)
    }

    /// Whether calls of `account` that read are changes (a subscription asks for reads).
    pub fn reads_watched(&self, account: &str) -> bool {
        !self.reads_watched.is_empty() && self.reads_watched.contains_key(account)
    }

    /// The subscriptions `account` has with the commit's so far.
    fn count(&self, staged: &Staged, account: &str) -> usize {
        let committed = self.counts.get(account).copied().unwrap_or(0);
        let prefix = keys::account_prefix(account);
        let mut seen: Vec<&[u8]> = Vec::new();
        let (mut added, mut removed) = (0, 0);
        // Each key the commit wrote, as it last wrote it, against what it replaces.
        for (key, sub) in staged.iter().rev() {
            if !key.starts_with(&prefix) || seen.contains(&key.as_slice()) {
                continue;
            }
            seen.push(key);
            match (self.all.contains_key(key), sub.is_some()) {
                (false, true) => added += 1,
                (true, false) => removed += 1,
                _ => {}
            }
        }
        committed + added - removed
    }

    /// The subscription of `key` with the commit's writes so far, and its number.
    fn current(&self, staged: &Staged, key: &[u8]) -> Option<(Subscription, u32)> {
        match staged.iter().rev().find(|(k, _)| k == key) {
            Some((_, sub)) => sub.clone(),
            None => self.all.get(key).cloned(),
        }
    }

    /// Puts a subscription command into the commit: its answer once the
    /// commit is durable, or `None` when it was refused (and answered) at once.
    pub fn command(
        &mut self,
        engine: &Engine,
        batch: &mut fjall::OwnedWriteBatch,
        undo: &mut Vec<UndoEntry>,
        staged: &mut Staged,
        cmd: Command,
        now: DateTime<Utc>,
    ) -> Option<Completion> {
        match cmd {
            Command::CreateSubscription { sub, reply } => match self.create(engine, batch, undo, staged, sub) {
                Ok(sub) => Some(complete_with(reply, sub)),
                Err(e) => {
                    let _ = reply.send(Err(e));
                    None
                }
            },
            Command::UpdateSubscription { account, id, update, reply } => {
                match self.update(engine, batch, undo, staged, (&account, &id), &update, now) {
                    Ok(sub) => Some(complete_with(reply, sub)),
                    Err(e) => {
                        let _ = reply.send(Err(e));
                        None
                    }
                }
            }
            Command::DeleteSubscription { account, id, reply } => {
                Some(complete_with(reply, self.delete(engine, batch, undo, staged, (&account, &id))))
            }
            _ => unreachable!("only subscription commands come here"),
        }
    }

    /// Creates a subscription; an error if its id is taken.
    pub fn create(
        &mut self,
        engine: &Engine,
        batch: &mut fjall::OwnedWriteBatch,
        undo: &mut Vec<UndoEntry>,
        staged: &mut Staged,
        sub: Subscription,
    ) -> Result<Subscription, StoreError> {
        let key = keys::subscription_key(&sub.account, &sub.id);
        if self.current(staged, &key).is_some() {
            return Err(StoreError::Conflict(format!("a webhook with id {:?} exists", sub.id)));
        }
        if self.count(staged, &sub.account) >= MAX_SUBSCRIPTIONS_PER_ACCOUNT {
            return Err(StoreError::Conflict(format!(
                "an account has at most {MAX_SUBSCRIPTIONS_PER_ACCOUNT} webhooks"
            )));
        }
        // Taken for good, even if the commit fails: a number is never given twice.
        let number = self.next_number;
        self.next_number =
            number.checked_add(1).ok_or_else(|| StoreError::Conflict("no webhook numbers left".into()))?;
        batch.insert(&engine.meta, NEXT_NUMBER_KEY, self.next_number.to_be_bytes());
        self.write(engine, batch, undo, staged, key, Some((sub.clone(), number)));
        Ok(sub)
    }

    /// Updates a subscription; `None` when there is none with that id;
    /// `Conflict` when it changed since the update's `if_unchanged_since`, or
    /// is disabled and the update is `if_enabled`.
    #[allow(clippy::too_many_arguments)]
    pub fn update(
        &self,
        engine: &Engine,
        batch: &mut fjall::OwnedWriteBatch,
        undo: &mut Vec<UndoEntry>,
        staged: &mut Staged,
        (account, id): (&str, &str),
        update: &SubscriptionUpdate,
        now: DateTime<Utc>,
    ) -> Result<Option<Subscription>, StoreError> {
        let key = keys::subscription_key(account, id);
        let Some((mut sub, number)) = self.current(staged, &key) else { return Ok(None) };
        if update.if_enabled && !sub.enabled {
            return Err(StoreError::Conflict(format!("webhook {id:?} is disabled already")));
        }
        let was = sub.clone();
        update.apply(&mut sub, now);
        // What is already so (`updated_at` included: it moves only with a
        // change) is nothing to write, and nothing a change made since the
        // update's read can conflict with.
        if sub == was {
            return Ok(Some(sub));
        }
        if update.if_unchanged_since.is_some_and(|read| read != was.updated_at) {
            return Err(StoreError::Conflict(format!("webhook {id:?} changed meanwhile: read it again")));
        }
        self.write(engine, batch, undo, staged, key, Some((sub.clone(), number)));
        Ok(Some(sub))
    }

    /// Deletes a subscription; false when there was none.
    pub fn delete(
        &self,
        engine: &Engine,
        batch: &mut fjall::OwnedWriteBatch,
        undo: &mut Vec<UndoEntry>,
        staged: &mut Staged,
        (account, id): (&str, &str),
    ) -> bool {
        let key = keys::subscription_key(account, id);
        if self.current(staged, &key).is_none() {
            return false;
        }
        self.write(engine, batch, undo, staged, key, None);
        true
    }

    /// Writes a record into the commit, with its undo (the record before the
    /// commit: a second write in one commit needs none).
    fn write(
        &self,
        engine: &Engine,
        batch: &mut fjall::OwnedWriteBatch,
        undo: &mut Vec<UndoEntry>,
        staged: &mut Staged,
        key: Vec<u8>,
        sub: Option<(Subscription, u32)>,
    ) {
        match &sub {
            Some((s, number)) => batch.insert(&engine.webhooks, key.as_slice(), subscription_index::record(s, *number)),
            None => batch.remove(&engine.webhooks, key.as_slice()),
        }
        if !staged.iter().any(|(k, _)| *k == key) {
            let previous = self.all.get(&key).map(|(s, number)| subscription_index::record(s, *number));
            undo.push(UndoEntry { keyspace: "webhooks", key: key.clone(), previous });
        }
        staged.push((key, sub));
    }

    /// The commit's records are in the engine: the writer's view follows.
    pub fn committed(&mut self, staged: &Staged) {
        for (key, sub) in staged {
            self.set(key.clone(), sub.clone());
        }
    }

    fn set(&mut self, key: Vec<u8>, sub: Option<(Subscription, u32)>) {
        if let Some((old, _)) = self.all.remove(&key) {
            uncount(&mut self.counts, &old.account);
            if old.watches_reads() {
                uncount(&mut self.reads_watched, &old.account);
            }
            if matches!(old.watch, Watch::Folder { .. }) {
                uncount(&mut self.folders_watched, &old.account);
            }
        }
        if let Some((sub, number)) = sub {
            *self.counts.entry(sub.account.clone()).or_default() += 1;
            if sub.watches_reads() {
                *self.reads_watched.entry(sub.account.clone()).or_default() += 1;
            }
            if matches!(sub.watch, Watch::Folder { .. }) {
                *self.folders_watched.entry(sub.account.clone()).or_default() += 1;
            }
            self.all.insert(key, (sub, number));
        }
    }
}

/// One fewer subscription of `account` in `counts`.
fn uncount(counts: &mut HashMap<String, usize>, account: &str) {
    if let Some(n) = counts.get_mut(account) {
        *n -= 1;
        if *n == 0 {
            counts.remove(account);
        }
    }
}
