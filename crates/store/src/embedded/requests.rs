//! The way into the writer thread: the commands it takes, how each is
//! answered, and the dedup lookups made on the caller's thread before a
//! request is queued, so that the writer need not wait on the disk for them.

use super::syncer::Completion;
use super::{warn_if_slow, Engine, Shared};
use crate::records::{AccountRecord, Adjustment, Outcome, TokenRecord};
use crate::store::{AccountChange, IngestTicket};
use crate::webhook_records::{Subscription, SubscriptionUpdate};
use crate::StoreError;
use callmeter_model::{CallEvent, DedupKey};
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::thread::JoinHandle;
use tokio::sync::oneshot;

/// The dedup keys of a request's events and whether the engine held each,
/// looked up on the caller's thread so that the writer need not.
pub(crate) struct DiskCheck {
    /// Checkpoints finished when the lookups began: they saw every key those wrote.
    pub epoch: u64,
    /// One key per event.
    pub keys: Vec<DedupKey>,
    /// One answer per event.
    pub on_disk: Vec<bool>,
}

impl DiskCheck {
    /// Looks up the key of every event in the engine.
    pub fn run(engine: &Engine, shared: &Shared, events: &[CallEvent]) -> Result<DiskCheck, StoreError> {
        let epoch = shared.checkpoints_done.load(Ordering::Acquire);
        let keys: Vec<DedupKey> = events.iter().map(|e| DedupKey::of(&e.account, &e.id)).collect();
        let started = std::time::Instant::now();
        let on_disk = keys.iter().map(|k| engine.dedup.contains_key(k.0)).collect::<Result<_, _>>()?;
        warn_if_slow("dedup lookups", started, 1);
        Ok(DiskCheck { epoch, keys, on_disk })
    }
}

pub(crate) type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

pub(crate) enum Command {
    Ingest { events: Vec<CallEvent>, checked: DiskCheck, reply: Reply<Vec<Outcome>>, reserved: Reserved },
    UpsertAccount { name: String, change: AccountChange, reply: Reply<AccountRecord> },
    AddAdjustment { adjustment: Adjustment, reply: Reply<()> },
    PutToken { token: TokenRecord, reply: Reply<()> },
    DeleteToken { id: String, reply: Reply<bool> },
    CreateSubscription { sub: Subscription, reply: Reply<Subscription> },
    UpdateSubscription { account: String, id: String, update: SubscriptionUpdate, reply: Reply<Option<Subscription>> },
    DeleteSubscription { account: String, id: String, reply: Reply<bool> },
}

/// The way into the writer thread.
pub(crate) struct WriterHandle {
    pub(crate) tx: parking_lot::Mutex<Option<mpsc::Sender<Command>>>,
    pub(crate) threads: parking_lot::Mutex<Vec<JoinHandle<()>>>,
    /// Events queued for the writer and not yet taken; shared with it.
    pub(crate) queued: std::sync::Arc<QueuedEvents>,
    /// To tell the change processor to stop with the writer.
    pub(crate) shared: std::sync::Arc<Shared>,
}

/// The events waiting in the writer's queue, against a limit: past it an
/// ingest is refused at once (`Busy`, a 503 with `Retry-After`) rather than
/// queued, so a flood of requests cannot grow memory without bound.
pub(crate) struct QueuedEvents {
    pub(crate) events: std::sync::atomic::AtomicUsize,
    pub(crate) limit: usize,
}

impl QueuedEvents {
    /// Takes room for `n` events, or says there is none.
    fn reserve(&self, n: usize) -> bool {
        self.events
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| (q + n <= self.limit || q == 0).then_some(q + n))
            .is_ok()
    }
}

/// Room for a request's events in the queue, given back when dropped: when
/// the request is answered, whatever the answer.
pub(crate) struct Reserved {
    queued: std::sync::Arc<QueuedEvents>,
    n: usize,
}

impl Drop for Reserved {
    fn drop(&mut self) {
        let before = self.queued.events.fetch_sub(self.n, Ordering::AcqRel);
        debug_assert!(before >= self.n, "released more events than were queued");
    }
}

impl WriterHandle {
    fn send<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> oneshot::Receiver<Result<T, StoreError>> {
        let (reply, rx) = oneshot::channel();
        let cmd = make(reply);
        if let Some(tx) = self.tx.lock().as_ref() {
            // A send error drops the command and its reply sender: the receiver then reads ShuttingDown.
            let _ = tx.send(cmd);
        }
        rx
    }

    fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, StoreError> {
        self.send(make).blocking_recv().unwrap_or(Err(StoreError::ShuttingDown))
    }

    pub fn ingest(&self, events: Vec<CallEvent>, checked: DiskCheck) -> IngestTicket {
        if !self.queued.reserve(events.len()) {
            return IngestTicket::failed(StoreError::Busy(format!(
                "more than {} events are waiting to be written",
                self.queued.limit
            )));
        }
        let reserved = Reserved { queued: self.queued.clone(), n: events.len() };
        IngestTicket(self.send(|reply| Command::Ingest { events, checked, reply, reserved }))
    }

    pub fn upsert_account(&self, name: String, change: AccountChange) -> Result<AccountRecord, StoreError> {
        self.call(|reply| Command::UpsertAccount { name, change, reply })
    }

    pub fn add_adjustment(&self, adjustment: Adjustment) -> Result<(), StoreError> {
        self.call(|reply| Command::AddAdjustment { adjustment, reply })
    }

    pub fn put_token(&self, token: TokenRecord) -> Result<(), StoreError> {
        self.call(|reply| Command::PutToken { token, reply })
    }

    pub fn delete_token(&self, id: String) -> Result<bool, StoreError> {
        self.call(|reply| Command::DeleteToken { id, reply })
    }

    pub fn create_subscription(&self, sub: Subscription) -> Result<Subscription, StoreError> {
        self.call(|reply| Command::CreateSubscription { sub, reply })
    }

    pub fn update_subscription(
        &self,
        account: String,
        id: String,
        update: SubscriptionUpdate,
    ) -> Result<Option<Subscription>, StoreError> {
        self.call(|reply| Command::UpdateSubscription { account, id, update, reply })
    }

    pub fn delete_subscription(&self, account: String, id: String) -> Result<bool, StoreError> {
        self.call(|reply| Command::DeleteSubscription { account, id, reply })
    }

    /// Closes the queue and waits for the writer and syncer to finish what they hold.
    pub fn stop(&self) {
        // The change processor stops after the batch in hand; the changes it
        // leaves are processed after the next open, from its cursor.
        self.shared.changes.stop();
        self.tx.lock().take();
        for t in self.threads.lock().drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for WriterHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

pub(crate) fn complete_with<T: Send + 'static>(reply: Reply<T>, value: T) -> Completion {
    Box::new(move |r: Result<(), &StoreError>| {
        let _ = reply.send(match r {
            Ok(()) => Ok(value),
            Err(e) => Err(copy_error(e)),
        });
    })
}

/// A completion that can only fail: for commands not gathered at all.
pub(crate) fn fail_only(cmd: Command) -> Completion {
    fn fail<T: Send + 'static>(reply: Reply<T>) -> Completion {
        Box::new(move |r: Result<(), &StoreError>| {
            let _ = reply.send(Err(r.err().map_or(StoreError::ShuttingDown, copy_error)));
        })
    }
    match cmd {
        Command::Ingest { reply, .. } => fail(reply),
        Command::UpsertAccount { reply, .. } => fail(reply),
        Command::AddAdjustment { reply, .. } | Command::PutToken { reply, .. } => fail(reply),
        Command::DeleteToken { reply, .. } | Command::DeleteSubscription { reply, .. } => fail(reply),
        Command::CreateSubscription { reply, .. } => fail(reply),
        Command::UpdateSubscription { reply, .. } => fail(reply),
    }
}

/// The same error for every request of a failed commit.
pub(crate) fn copy_error(e: &StoreError) -> StoreError {
    match e {
        StoreError::DiskFull(m) => StoreError::DiskFull(m.clone()),
        other => StoreError::Unavailable(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_refuses_past_its_limit_and_takes_back_room_when_answered() {
        let queued = std::sync::Arc::new(QueuedEvents { events: Default::default(), limit: 10 });
        let take = |n| queued.reserve(n).then(|| Reserved { queued: queued.clone(), n });
        let a = take(6).expect("room");
        assert!(take(6).is_none(), "6 + 6 > 10");
        let b = take(4).expect("6 + 4 fits");
        drop(a);
        let c = take(6).expect("room again once the first is answered");
        drop((b, c));
        assert_eq!(queued.events.load(Ordering::Acquire), 0);
        let big = take(50).expect("an empty queue takes any one request");
        assert!(take(1).is_none());
        drop(big);
    }
}
