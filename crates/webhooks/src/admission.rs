//! What the engine may claim: the rows it holds, counted by target and by
//! account, and the room a claim has left for each ([`Admission`]), so that
//! a slow target or a busy account holds back no one else's deliveries.

use callmeter_store::Subscription;

/// Counts by name (target or account), looked up by `&str`: most rows are
/// of names counted already, whose lookups copy nothing.
type Counts = hashbrown::HashMap<String, usize, foldhash::fast::RandomState>;

/// Rows claimed and not yet completed, counted as a claim admits them and
/// until their completion is recorded.
#[derive(Default)]
pub(crate) struct Claimed {
    pub(crate) total: usize,
    /// By target (none: no entry).
    targets: Counts,
    /// By account (none: no entry).
    accounts: Counts,
}

impl Claimed {
    pub(crate) fn add(&mut self, target: &str, account: &str) {
        self.total += 1;
        *self.targets.entry_ref(target).or_insert(0) += 1;
        *self.accounts.entry_ref(account).or_insert(0) += 1;
    }

    /// Counts a row's completion.
    pub(crate) fn remove(&mut self, target: &str, account: &str) {
        fn down(map: &mut Counts, key: &str) {
            let n = map.get_mut(key).expect("counted when claimed");
            *n -= 1;
            if *n == 0 {
                map.remove(key);
            }
        }
        assert!(self.total > 0, "a completion of a row not counted as claimed");
        self.total -= 1;
        down(&mut self.accounts, account);
        down(&mut self.targets, target);
    }

    /// What a claim may take now: `per_target` rows of a target and
    /// `per_account` of an account at most, less those claimed already.
    pub(crate) fn admission(&self, per_target: usize, per_account: usize) -> Admission {
        let targets = self.targets.iter().map(|(t, n)| (t.clone(), per_target.saturating_sub(*n))).collect();
        let accounts = self.accounts.iter().map(|(a, n)| (a.clone(), per_account.saturating_sub(*n))).collect();
        let target_of_url = Default::default();
        Admission { target_of_url, per_target, per_account, targets, accounts, refused: false }
    }
}

/// What one claim may take: the room each target and each account has
/// left, counted down as rows are admitted. A target or account not seen
/// yet has all of its room.
pub(crate) struct Admission {
    /// Targets by subscription URL: parsing a URL costs more than the rest.
    pub(crate) target_of_url: hashbrown::HashMap<String, String, foldhash::fast::RandomState>,
    per_target: usize,
    per_account: usize,
    targets: Counts,
    accounts: Counts,
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
        if *target == 0 || *account == 0 {
            self.refused = true;
            return false;
        }
        *target -= 1;
        *account -= 1;
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
