//! The path index: which paths the store knows of each account, so that a
//! write can be told a `create` (a path new to the store) from an `update`.
//!
//! | keyspace | key                    | value |
//! |----------|------------------------|-------|
//! | `paths`  | account, path (normalized) | empty |
//!
//! Only the change processor (`processor.rs`) writes it, in the same batch
//! as the outbox rows its answers decided and the cursor past the changes
//! they came from: after a crash the index and the cursor agree, so the
//! changes processed again are classified as before. A batch's edits are
//! held in an overlay until it commits, so that two changes of one path in
//! one batch see each other. What the processor remembers of the index
//! (`path_memory.rs`) answers for most paths without a look-up.
//!
//! A path is known once a stored write or mkdir names it; a delete forgets
//! it and everything under it; a move carries it and everything under it to
//! the destination, a copy copies them there.

use super::path_memory::PathMemory;
use super::Engine;
use crate::keys;
use crate::StoreError;
use callmeter_model::{Action, Operation};
use std::collections::BTreeMap;

/// The index as one batch of the processor sees it: the engine's, with the batch's edits on top.
pub(crate) struct PathEdits<'e> {
    engine: &'e Engine,
    /// What the processor remembers of the index: told each committed edit.
    memory: &'e mut PathMemory,
    /// Edits not yet committed: true for known, false for forgotten.
    overlay: BTreeMap<Vec<u8>, bool>,
}

fn key(account: &str, path: &str) -> Vec<u8> {
    let mut k = keys::account_prefix(account);
    k.extend_from_slice(path.as_bytes());
    k
}

/// Where a move or copy of `path` to `dest` carries the key `k` of `path`
/// (`own`) or of a path under it: `dest` itself, or `dest` and what follows
/// `path`, one `/` between them, also when either is the root.
fn carried(account: &str, (path, dest): (&str, &str), own: &[u8], k: &[u8]) -> Vec<u8> {
    if k == own {
        return key(account, dest);
    }
    // What follows `path`, from the `/` before it (the root's own `/` for the root's children).
    let rest = &k[own.len() - usize::from(path == "/")..];
    let mut to = key(account, dest.strip_suffix('/').unwrap_or(dest));
    to.extend_from_slice(rest);
    to
}

impl<'e> PathEdits<'e> {
    pub fn new(engine: &'e Engine, memory: &'e mut PathMemory) -> PathEdits<'e> {
        PathEdits { engine, memory, overlay: BTreeMap::new() }
    }

    fn contains(&mut self, k: &[u8]) -> Result<bool, StoreError> {
        if let Some(known) = self.overlay.get(k) {
            return Ok(*known);
        }
        if let Some(known) = self.memory.recall(k) {
            // A debug build checks the answer against the index (when it can be read).
            if cfg!(debug_assertions) {
                if let Ok(stored) = self.engine.paths.contains_key(k) {
                    assert_eq!(known, stored, "memory is the index");
                }
            }
            return Ok(known);
        }
        let known = self.engine.paths.contains_key(k)?;
        if known {
            self.memory.found(k);
        }
        Ok(known)
    }

    /// The keys of `path` and of every path under it that are known.
    fn tree(&mut self, account: &str, path: &str) -> Result<Vec<Vec<u8>>, StoreError> {
        let own = key(account, path);
        let mut children = own.clone();
        if path != "/" {
            children.push(b'/');
        }
        let mut known: BTreeMap<Vec<u8>, bool> = BTreeMap::new();
        if self.contains(&own)? {
            known.insert(own, true);
        }
        for item in self.engine.paths.prefix(&children) {
            known.insert(item.key()?.to_vec(), true);
        }
        let end = keys::prefix_end(&children);
        let range = match &end {
            Some(end) => self.overlay.range(children.clone()..end.clone()),
            None => self.overlay.range(children.clone()..),
        };
        for (k, v) in range {
            known.insert(k.clone(), *v);
        }
        Ok(known.into_iter().filter(|(_, v)| *v).map(|(k, _)| k).collect())
    }

    /// Applies a change of `operation` at `path` (to `destination`) and says
    /// what it is to subscribers (`None`: not a change).
    pub fn apply(
        &mut self,
        account: &str,
        operation: Operation,
        path: &str,
        destination: Option<&str>,
    ) -> Result<Option<Action>, StoreError> {
        let own = key(account, path);
        let path_is_new = !self.contains(&own)?;
        match operation {
            // A path already known stays known: no edit to write again.
            Operation::Write | Operation::Mkdir if path_is_new => {
                self.overlay.insert(own, true);
            }
            Operation::Write | Operation::Mkdir => {}
            Operation::Delete => {
                for k in self.tree(account, path)? {
                    self.overlay.insert(k, false);
                }
            }
            Operation::Move | Operation::Copy => {
                if let Some(dest) = destination {
                    let from = self.tree(account, path)?;
                    if from.is_empty() {
                        self.overlay.insert(key(account, dest), true);
                    }
                    for k in from {
                        let to = carried(account, (path, dest), &own, &k);
                        if operation == Operation::Move {
                            self.overlay.insert(k, false);
                        }
                        self.overlay.insert(to, true);
                    }
                }
            }
            Operation::Read | Operation::List | Operation::Stat | Operation::Login | Operation::Other => {}
        }
        Ok(Action::of(operation, path_is_new))
    }

    /// Tells the processor's memory the edits, once their batch is committed.
    pub fn committed(self) {
        for (k, known) in self.overlay {
            self.memory.committed(k, known);
        }
    }

    /// Puts the edits into the batch.
    pub fn write(&self, batch: &mut fjall::OwnedWriteBatch) {
        for (k, known) in &self.overlay {
            if *known {
                batch.insert(&self.engine.paths, k.as_slice(), []);
            } else {
                batch.remove(&self.engine.paths, k);
            }
        }
    }
}
