//! Webhook subscriptions as readers see them (the change processor, the
//! outbox, the API): by key (account, id) and by number.
//!
//! Every subscription has a number, given by the writer when it is made
//! (`subscriptions.rs`) and never given again: `meta` keeps the next one,
//! and a subscription's record keeps its own, beside its fields. The keys of
//! its outbox rows and attempts begin with that number (`outbox.rs`): 4
//! bytes where the account and the id took 30 and more, so that a row's key
//! is 12 bytes and its due entry's 20, what the engine's memtables keep
//! inside a skiplist node. A longer key is kept apart from its node, and a
//! delivery's inserts and look-ups read one more cache line at every step
//! of their searches (docs/adr/0002-delivery-path-cost.md). Since a number
//! is never given twice, rows and attempts left under a deleted
//! subscription's number are never taken for a later subscription's, even
//! one made again with the same id.

use super::Engine;
use crate::keys;
use crate::webhook_records::Subscription;
use crate::StoreError;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The `meta` key of the number the next subscription made takes.
pub(crate) const NEXT_NUMBER_KEY: &str = "next_subscription_number";

/// A subscription and its number.
#[derive(Debug, Clone)]
pub(crate) struct Listed {
    pub number: u32,
    pub sub: Arc<Subscription>,
}

/// Every published subscription, by key and by number.
#[derive(Debug, Clone, Default)]
pub(crate) struct Published {
    by_key: BTreeMap<Vec<u8>, Listed>,
    by_number: HashMap<u32, Arc<Subscription>>,
}

impl Published {
    /// The subscription of a key (`keys::subscription_key`).
    pub fn get(&self, key: &[u8]) -> Option<&Listed> {
        self.by_key.get(key)
    }

    /// The subscription numbered `number`: none once it is deleted.
    pub fn numbered(&self, number: u32) -> Option<&Arc<Subscription>> {
        self.by_number.get(&number)
    }

    /// The subscriptions of `account`, in key order.
    pub fn of_account<'a>(&'a self, account: &str) -> impl Iterator<Item = &'a Listed> + 'a {
        let prefix = keys::account_prefix(account);
        self.by_key.range(prefix.clone()..).take_while(move |(k, _)| k.starts_with(&prefix)).map(|(_, l)| l)
    }

    /// Every subscription, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&Vec<u8>, &Listed)> {
        self.by_key.iter()
    }

    /// Puts (or, with `None`, removes) the subscription of `key`.
    pub fn set(&mut self, key: Vec<u8>, listed: Option<Listed>) {
        if let Some(old) = self.by_key.remove(&key) {
            self.by_number.remove(&old.number);
        }
        if let Some(listed) = listed {
            let taken = self.by_number.insert(listed.number, listed.sub.clone());
            assert!(taken.is_none(), "subscription number {} given twice", listed.number);
            self.by_key.insert(key, listed);
        }
    }
}

/// A subscription's record: its JSON, with its number beside its fields.
pub(crate) fn record(sub: &Subscription, number: u32) -> Vec<u8> {
    let mut value = serde_json::to_value(sub).expect("records serialize");
    let fields = value.as_object_mut().expect("a subscription is a JSON object");
    fields.insert("number".into(), number.into());
    serde_json::to_vec(&value).expect("records serialize")
}

/// A record read: the subscription, and its number (none in a record of
/// format 5 or earlier, which the open's upgrade numbers).
pub(crate) fn read_record(bytes: &[u8]) -> Result<(Subscription, Option<u32>), StoreError> {
    let corrupt = |e: &dyn std::fmt::Display| StoreError::Corrupt(format!("webhook subscription: {e}"));
    let mut value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| corrupt(&e))?;
    let number = match value.as_object_mut().and_then(|fields| fields.remove("number")) {
        None => None,
        Some(n) => Some(n.as_u64().and_then(|n| u32::try_from(n).ok()).ok_or_else(|| corrupt(&"a bad number"))?),
    };
    let sub = serde_json::from_value(value).map_err(|e| corrupt(&e))?;
    Ok((sub, number))
}

/// Every subscription stored; each must have its number (the open upgrades first).
pub(crate) fn load(engine: &Engine) -> Result<Published, StoreError> {
    let mut out = Published::default();
    for item in engine.webhooks.iter() {
        let (k, v) = item.into_inner()?;
        let (sub, number) = read_record(&v)?;
        let number = number.ok_or_else(|| StoreError::Corrupt(format!("webhook {:?} has no number", sub.id)))?;
        if out.numbered(number).is_some() {
            return Err(StoreError::Corrupt(format!("webhook number {number} given twice")));
        }
        out.set(k.to_vec(), Some(Listed { number, sub: Arc::new(sub) }));
    }
    Ok(out)
}

/// The number the next subscription made takes: past every number given
/// (the one `meta` keeps) and past each of `numbers` (those in use).
pub(crate) fn next_number(engine: &Engine, numbers: impl IntoIterator<Item = u32>) -> Result<u32, StoreError> {
    let stored = match engine.meta.get(NEXT_NUMBER_KEY)? {
        Some(v) => keys::read_u32(&v).ok_or_else(|| StoreError::Corrupt(NEXT_NUMBER_KEY.into()))?,
        None => 0,
    };
    Ok(numbers.into_iter().map(|n| n + 1).fold(stored, u32::max))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook_records::Watch;

    fn sub(id: &str) -> Subscription {
        let watch = Watch::Folder { folder: "/in".into() };
        Subscription::new(("acme", id), "http://h/", (watch, vec![]), "whsec_x", chrono::Utc::now())
    }

    #[test]
    fn a_record_keeps_its_number_beside_the_fields() {
        let s = sub("wh");
        assert_eq!(read_record(&record(&s, 7)).unwrap(), (s.clone(), Some(7)));
        let earlier = serde_json::to_vec(&s).unwrap();
        assert_eq!(read_record(&earlier).unwrap(), (s, None), "format 5 records have none");
        assert!(read_record(br#"{"number": -1}"#).is_err());
    }

    #[test]
    fn a_number_leads_to_its_subscription_until_it_is_removed() {
        let mut p = Published::default();
        let key = keys::subscription_key("acme", "wh");
        p.set(key.clone(), Some(Listed { number: 3, sub: Arc::new(sub("wh")) }));
        assert_eq!(p.numbered(3).unwrap().id, "wh");
        assert_eq!(p.of_account("acme").count(), 1);
        assert_eq!(p.of_account("acm").count(), 0, "accounts are length-prefixed");
        // Made again with the same id: a new number; the old one leads nowhere.
        p.set(key.clone(), Some(Listed { number: 4, sub: Arc::new(sub("wh")) }));
        assert!(p.numbered(3).is_none());
        p.set(key, None);
        assert!(p.numbered(4).is_none());
        assert_eq!(p.iter().count(), 0);
    }
}
