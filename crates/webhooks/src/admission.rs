//! What the engine may claim: the rows it holds, counted by target, by
//! account and by subscription, and the room a claim has left for each
//! ([`Admission`]), so that a slow target or a busy account holds back no
//! one else's deliveries, and a failing subscription none of its account's
//! others.

use callmeter_store::Subscription;
use std::sync::Arc;

/// The claimed rows, shared by the engine and its claims.
pub(crate) type SharedClaimed = Arc<parking_lot::Mutex<Claimed>>;

/// Counts by name (target, account or subscription id), looked up by
/// `&str`: most rows are of names counted already, whose lookups copy nothing.
type Counts = hashbrown::HashMap<String, usize, foldhash::fast::RandomState>;

/// Who a claimed row counts against: its target, its account, its subscription.
#[derive(Debug, Default)]
pub(crate) struct Holder {
    pub(crate) target: String,
    pub(crate) account: String,
    pub(crate) subscription: String,
}

/// Rows claimed and not yet completed, counted as a claim admits them and
/// until their completion is recorded.
#[derive(Default)]
pub(crate) struct Claimed {
    pub(crate) total: usize,
    /// By target (none: no entry).
    targets: Counts,
    /// By account (none: no entry).
    accounts: Counts,
    /// By subscription id (none: no entry). Ids are random (64 bits): two
    /// accounts' subscriptions that shared one would only share its room.
    subscriptions: Counts,
}

impl Claimed {
    pub(crate) fn add(&mut self, row: &Holder) {
        self.total += 1;
        *self.targets.entry_ref(row.target.as_str()).or_insert(0) += 1;
        *self.accounts.entry_ref(row.account.as_str()).or_insert(0) += 1;
        *self.subscriptions.entry_ref(row.subscription.as_str()).or_insert(0) += 1;
    }

    /// Counts a row's completion.
    pub(crate) fn remove(&mut self, row: &Holder) {
        fn down(map: &mut Counts, key: &str) {
            let n = map.get_mut(key).expect("counted when claimed");
            *n -= 1;
            if *n == 0 {
                map.remove(key);
            }
        }
        assert!(self.total > 0, "a completion of a row not counted as claimed");
        self.total -= 1;
        down(&mut self.accounts, &row.account);
        down(&mut self.targets, &row.target);
        down(&mut self.subscriptions, &row.subscription);
    }
}

/// What a claim may take now: `per_target` rows of a target, `per_account`
/// of an account and `per_failing` of a failing subscription at most, less
/// those claimed already.
pub(crate) fn admission(
    claimed: &SharedClaimed,
    per_target: usize,
    per_account: usize,
    per_failing: usize,
) -> Admission {
    let now = claimed.lock();
    let targets = now.targets.iter().map(|(t, n)| (t.clone(), per_target.saturating_sub(*n))).collect();
    let accounts = now.accounts.iter().map(|(a, n)| (a.clone(), per_account.saturating_sub(*n))).collect();
    Admission {
        target_of_url: Default::default(),
        per_target,
        per_account,
        per_failing,
        targets,
        accounts,
        claimed: claimed.clone(),
        failing_admitted: Counts::default(),
        refused: false,
    }
}

/// What one claim may take: the room each target and each account has
/// left, counted down as rows are admitted, and the rows each subscription
/// holds, counted up. A target or account not seen yet has all of its room.
pub(crate) struct Admission {
    /// Targets by subscription URL: parsing a URL costs more than the rest.
    pub(crate) target_of_url: hashbrown::HashMap<String, String, foldhash::fast::RandomState>,
    per_target: usize,
    per_account: usize,
    /// Rows a failing subscription may hold: enough for its target's
    /// slots. Its rows wait out their attempts (a hanging receiver's take
    /// the whole timeout), and would otherwise hold its account's room.
    per_failing: usize,
    targets: Counts,
    accounts: Counts,
    /// The rows claimed before, read for failing subscriptions only (rare:
    /// copying every subscription's count at each claim would cost more).
    claimed: SharedClaimed,
    /// Rows of failing subscriptions this claim admitted.
    failing_admitted: Counts,
    /// Whether a row was refused: then the engine waits for completions
    /// before it claims again, rather than look at the same rows at once.
    pub(crate) refused: bool,
}

impl Admission {
    /// Whether a row of `sub` has room (and counts it).
    pub(crate) fn admit(&mut self, sub: &Subscription) -> bool {
        let target = self.target_of_url.entry_ref(sub.url.as_str()).or_insert_with(|| target_of(&sub.url));
        let target = self.targets.entry_ref(target.as_str()).or_insert(self.per_target);
        let account = self.accounts.entry_ref(sub.account.as_str()).or_insert(self.per_account);
        let failing_full = sub.failing_since.is_some() && {
            let before = self.claimed.lock().subscriptions.get(sub.id.as_str()).copied().unwrap_or(0);
            before + self.failing_admitted.get(sub.id.as_str()).copied().unwrap_or(0) >= self.per_failing
        };
        if *target == 0 || *account == 0 || failing_full {
            self.refused = true;
            return false;
        }
        *target -= 1;
        *account -= 1;
        if sub.failing_since.is_some() {
            *self.failing_admitted.entry_ref(sub.id.as_str()).or_insert(0) += 1;
        }
        true
    }
}

/// A target: scheme, host and port.
fn target_of(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => format!("{}://{}:{}", u.scheme(), u.host_str().unwrap_or(""), u.port_or_known_default().unwrap_or(0)),
        Err(_) => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::{admission, Holder, SharedClaimed};
    use callmeter_store::{Subscription, Watch};
    use chrono::Utc;

    fn sub(account: &str, id: &str, url: &str, failing: bool) -> Subscription {
        let folder = (Watch::Folder { folder: "/".into() }, vec![]);
        Subscription {
            failing_since: failing.then(Utc::now),
            ..Subscription::new((account, id), url, folder, "whsec_AAAA", Utc::now())
        }
    }

    /// A target's room, an account's room and a failing subscription's
    /// room each stop a claim; rows already claimed count against them.
    fn holder(target: &str, account: &str, subscription: &str) -> Holder {
        Holder { target: target.into(), account: account.into(), subscription: subscription.into() }
    }

    #[test]
    fn each_room_stops_a_claim() {
        let claimed = SharedClaimed::default();
        claimed.lock().add(&holder("http://a:80", "acme", "wh_a"));
        let dead = sub("acme", "wh_a", "http://a/hook", true);
        let healthy = sub("acme", "wh_b", "http://b/hook", false);
        let other = sub("globex", "wh_c", "http://b/hook", false);
        let mut room = admission(&claimed, 3, 5, 2);
        assert!(room.admit(&dead), "a failing subscription holds one of its two");
        assert!(!room.admit(&dead), "and no more");
        assert!(room.refused);
        for _ in 0..3 {
            assert!(room.admit(&healthy), "its account's others go on");
        }
        assert!(!room.admit(&other), "b's room is 3");
        let mut room = admission(&claimed, 10, 5, 2);
        assert!(room.admit(&dead));
        for _ in 0..3 {
            assert!(room.admit(&healthy));
        }
        assert!(!room.admit(&healthy), "acme's room is 5, one claimed already");
        assert!(room.admit(&other), "globex has its own");
        claimed.lock().remove(&holder("http://a:80", "acme", "wh_a"));
        assert_eq!(claimed.lock().total, 0);
        let mut room = admission(&claimed, 10, 5, 2);
        assert!(room.admit(&dead) && room.admit(&dead) && !room.admit(&dead));
    }
}
