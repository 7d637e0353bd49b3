//! What the engine may claim: the rows it holds, counted by target, by
//! account and by subscription, and the room a claim has left for each
//! ([`Admission`]), so that a slow target or a busy account holds back no
//! one else's deliveries, and an unproven subscription (a new one, or one
//! whose last attempt failed) none of its account's others.
//!
//! A target is a URL's scheme, host and port, shared by every account whose
//! proven webhooks post there: their attempts share its slots, its workers
//! and its kept connections. An unproven subscription's rows (a new one's,
//! a failing one's) count against its account's own target at that host
//! ([`Claimed::lane_of`]), so that accounts whose webhooks share a host (an
//! automation service's, a gateway) do not wait for one account's hanging
//! receiver path: it is unproven from its first failure on, and until then
//! (a proven webhook that starts to hang) holds the shared slots for one
//! timeout at most: its rows queued there are handed back unsent once it is
//! unproven (`engine.rs`), and claimed again into its account's own target.

use crate::target::target_of;
use callmeter_store::Subscription;
use std::sync::Arc;

/// Whether a target is a host's, shared by accounts (a URL's scheme, host
/// and port have no space; an account's own target is its id, a space, then those).
pub(crate) fn is_shared(target: &str) -> bool {
    !target.contains(' ')
}

/// The claimed rows, shared by the engine and its claims.
pub(crate) type SharedClaimed = Arc<parking_lot::Mutex<Claimed>>;

/// The longest a successful attempt may take and prove its subscription: a
/// slower receiver, though it answers 2xx, would hold the slots of a host's
/// shared target that long each time, and other accounts' first attempts
/// there are due within 2 s (DESIGN §7).
pub(crate) const PROVEN_WITHIN: std::time::Duration = std::time::Duration::from_secs(1);

/// Subscription URLs whose host target the engine keeps at most: past it,
/// it forgets them all (and parses them again).
const MAX_KNOWN_URLS: usize = 4_096;

/// Subscriptions whose last attempt's outcome the engine remembers at most:
/// past it, it forgets them all (each is then judged as at a start,
/// [`Standing::of`]).
const MAX_PROVEN: usize = 65_536;

/// How a subscription stands for the engine, which decides where its rows
/// queue and which attempt slots they may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Standing {
    /// Its last attempt succeeded quickly: its rows go to its URL's host
    /// target, shared by accounts.
    Proven,
    /// Made since the engine started, and not attempted yet: its account's
    /// own target, and the unproven half of the slots.
    Untried,
    /// Its last attempt failed or was slow (in this process, or, before its
    /// first attempt here, as its stored `failing_since` says): its
    /// account's own target, and at most a quarter of the slots, so that a
    /// backlog of hanging receivers never holds the slots new webhooks need.
    Failing,
}

impl Standing {
    /// How `sub` stands: by its last outcome in this process when there is
    /// one (`last`: proven or not); else, for one made before the engine
    /// started at `started`, proven unless its stored failures say
    /// otherwise (a restart forgets nothing a receiver showed), and for one
    /// made since, untried.
    pub(crate) fn of(sub: &Subscription, last: Option<bool>, started: chrono::DateTime<chrono::Utc>) -> Standing {
        match last {
            Some(true) => Standing::Proven,
            Some(false) => Standing::Failing,
            None if sub.failing_since.is_some() => Standing::Failing,
            None if sub.created_at < started => Standing::Proven,
            None => Standing::Untried,
        }
    }
}

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
pub(crate) struct Claimed {
    pub(crate) total: usize,
    /// By target (none: no entry).
    targets: Counts,
    /// By account (none: no entry).
    accounts: Counts,
    /// By subscription id (none: no entry). Ids are random (64 bits): two
    /// accounts' subscriptions that shared one would only share its room.
    subscriptions: Counts,
    /// Each subscription's last attempt in this process: whether it proved
    /// it ([`Claimed::attempted`]). The unproven, new or failing, hold
    /// `per_unproven` rows at most.
    outcomes: hashbrown::HashMap<String, bool, foldhash::fast::RandomState>,
    /// When the engine started: a subscription made before it, and not
    /// attempted since, is judged by its stored failures ([`Standing::of`]).
    pub(crate) started: chrono::DateTime<chrono::Utc>,
    /// The target ([`Claimed::lane_of`]) of each subscription's rows held: one at a
    /// time, so that its attempts end in turn where a target sends one at a
    /// time (each attempt judged after the one before it).
    /// With the URL it was found for: a subscription moved since has another.
    lanes: hashbrown::HashMap<String, (String, String), foldhash::fast::RandomState>,
    /// Each subscription URL's host target (scheme, host, port), parsed
    /// once: a URL parse per subscription and claim cost more than the rest
    /// of its admission. At most [`MAX_KNOWN_URLS`].
    hosts: hashbrown::HashMap<String, String, foldhash::fast::RandomState>,
}

#[cfg(test)]
impl Default for Claimed {
    fn default() -> Claimed {
        Claimed::new(chrono::DateTime::<chrono::Utc>::MIN_UTC)
    }
}

impl Claimed {
    /// The target a subscription's rows count against and queue in: its
    /// URL's scheme, host and port, its account's own there while it is unproven.
    fn lane_of(&mut self, sub: &Subscription, proven: bool) -> String {
        if self.hosts.len() >= MAX_KNOWN_URLS && !self.hosts.contains_key(sub.url.as_str()) {
            self.hosts.clear();
        }
        let host = self.hosts.entry_ref(sub.url.as_str()).or_insert_with(|| target_of(&sub.url));
        match proven {
            true => host.clone(),
            false => format!("{} {host}", sub.account),
        }
    }

    /// Counts a row claimed, of a subscription at `url`.
    pub(crate) fn add(&mut self, row: &Holder, url: &str) {
        self.total += 1;
        *self.targets.entry_ref(row.target.as_str()).or_insert(0) += 1;
        *self.accounts.entry_ref(row.account.as_str()).or_insert(0) += 1;
        let n = self.subscriptions.entry_ref(row.subscription.as_str()).or_insert(0);
        *n += 1;
        if *n == 1 {
            self.lanes.insert(row.subscription.clone(), (row.target.clone(), url.to_owned()));
        }
        debug_assert_eq!(
            self.lanes.get(&row.subscription).map(|l| &l.0),
            Some(&row.target),
            "one target a subscription"
        );
    }

    /// Counts a row's completion.
    pub(crate) fn remove(&mut self, row: &Holder) {
        /// Whether that was the last.
        fn down(map: &mut Counts, key: &str) -> bool {
            let n = map.get_mut(key).expect("counted when claimed");
            *n -= 1;
            let last = *n == 0;
            if last {
                map.remove(key);
            }
            last
        }
        assert!(self.total > 0, "a completion of a row not counted as claimed");
        self.total -= 1;
        down(&mut self.accounts, &row.account);
        down(&mut self.targets, &row.target);
        if down(&mut self.subscriptions, &row.subscription) {
            self.lanes.remove(&row.subscription);
        }
    }

    /// Nothing claimed, by an engine started at `started`.
    pub(crate) fn new(started: chrono::DateTime<chrono::Utc>) -> Claimed {
        Claimed {
            total: 0,
            targets: Counts::default(),
            accounts: Counts::default(),
            subscriptions: Counts::default(),
            outcomes: Default::default(),
            started,
            lanes: Default::default(),
            hosts: Default::default(),
        }
    }

    /// How a subscription stands now.
    ///
    /// (Tests make a `Claimed` with `Default`: an engine started at the
    /// beginning of time, so that every subscription is untried until attempted.)
    pub(crate) fn standing(&self, sub: &Subscription) -> Standing {
        Standing::of(sub, self.outcomes.get(sub.id.as_str()).copied(), self.started)
    }

    /// Notes how a subscription's attempt ended.
    /// A success proves a subscription only when it came within
    /// [`PROVEN_WITHIN`]: a receiver that takes longer holds a host's shared
    /// slots as long, and is sent to from its account's own target.
    pub(crate) fn attempted(&mut self, subscription: &str, delivered: bool, took: std::time::Duration) {
        let proven = delivered && took < PROVEN_WITHIN;
        if let Some(last) = self.outcomes.get_mut(subscription) {
            *last = proven;
            return;
        }
        if self.outcomes.len() >= MAX_PROVEN {
            self.outcomes.clear();
        }
        self.outcomes.insert(subscription.to_owned(), proven);
    }
}

/// What a claim may take now: `per_target` rows of a target, `per_account`
/// of an account and `per_unproven` of an unproven subscription at most,
/// less those claimed already.
pub(crate) fn admission(
    claimed: &SharedClaimed,
    per_target: usize,
    per_account: usize,
    per_unproven: usize,
) -> Admission {
    let now = claimed.lock();
    let targets = now.targets.iter().map(|(t, n)| (t.clone(), per_target.saturating_sub(*n))).collect();
    let accounts = now.accounts.iter().map(|(a, n)| (a.clone(), per_account.saturating_sub(*n))).collect();
    Admission {
        lane_of_subscription: Default::default(),
        per_target,
        per_account,
        per_unproven,
        targets,
        accounts,
        claimed: claimed.clone(),
        unproven: Default::default(),
        refused: false,
    }
}

/// What one claim may take: the room each target and each account has
/// left, counted down as rows are admitted, and the rows each subscription
/// holds, counted up. A target or account not seen yet has all of its room.
pub(crate) struct Admission {
    /// Targets ([`Claimed::lane_of`]) by subscription id, as this claim found it (its
    /// rows held, or proven or not): parsing a URL costs more than the rest.
    pub(crate) lane_of_subscription: hashbrown::HashMap<String, String, foldhash::fast::RandomState>,
    per_target: usize,
    per_account: usize,
    /// Rows an unproven subscription may hold: enough for its target's
    /// slots. Until it answers, its rows may each wait out the timeout (a
    /// hanging receiver's do), and more would hold its account's room.
    per_unproven: usize,
    targets: Counts,
    accounts: Counts,
    /// The rows claimed before and the proven subscriptions, read once per
    /// subscription a claim meets (copying them all at each claim would
    /// cost more).
    claimed: SharedClaimed,
    /// The subscriptions this claim met: the rows each unproven one holds
    /// (claimed before, and admitted now), none for a proven one;
    /// `usize::MAX` for one whose rows must end before it takes more.
    unproven: hashbrown::HashMap<String, Option<usize>, foldhash::fast::RandomState>,
    /// Whether a row was refused: then the engine waits for completions
    /// before it claims again, rather than look at the same rows at once.
    pub(crate) refused: bool,
}

impl Admission {
    /// Whether a row of `sub` has room (and counts it).
    pub(crate) fn admit(&mut self, sub: &Subscription) -> bool {
        let (claimed, lanes) = (&self.claimed, &mut self.lane_of_subscription);
        let held = self.unproven.entry_ref(sub.id.as_str()).or_insert_with(|| {
            let mut claimed = claimed.lock();
            let unproven = claimed.standing(sub) != Standing::Proven;
            let held = claimed.subscriptions.get(sub.id.as_str()).copied().unwrap_or(0);
            // Its rows stay in the target they are in while it holds any.
            let (lane, draining) = match claimed.lanes.get(sub.id.as_str()) {
                // Proven or not since they were claimed (their target is
                // not the one it would take now), or its URL moved to
                // another host: no more rows until those end (a proven
                // one's within milliseconds, an unproven one's within a
                // timeout), then it takes its target as it is then.
                Some((lane, url)) => (lane.clone(), *url != sub.url || is_shared(lane) == unproven),
                None => (claimed.lane_of(sub, !unproven), false),
            };
            lanes.insert(sub.id.clone(), lane);
            if draining {
                Some(usize::MAX)
            } else {
                unproven.then_some(held)
            }
        });
        let target = &self.lane_of_subscription[sub.id.as_str()];
        let target = self.targets.entry_ref(target.as_str()).or_insert(self.per_target);
        let account = self.accounts.entry_ref(sub.account.as_str()).or_insert(self.per_account);
        if *target == 0 || *account == 0 || held.is_some_and(|n| n >= self.per_unproven) {
            self.refused = true;
            return false;
        }
        *target -= 1;
        *account -= 1;
        if let Some(n) = held {
            *n += 1;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::{admission, Holder, SharedClaimed, Standing, PROVEN_WITHIN};

    /// An attempt that took no time.
    const FAST: std::time::Duration = std::time::Duration::ZERO;
    use callmeter_store::{Subscription, Watch};
    use chrono::Utc;

    fn sub(account: &str, id: &str, url: &str) -> Subscription {
        let folder = (Watch::Folder { folder: "/".into() }, vec![]);
        Subscription::new((account, id), url, folder, "whsec_AAAA", Utc::now())
    }

    /// A subscription's target is its URL's host (its account's own there
    /// while unproven), as it was before the host was kept; the kept hosts
    /// are bounded.
    #[test]
    fn targets_are_hosts_and_the_kept_ones_are_bounded() {
        let mut claimed = super::Claimed::default();
        for _ in 0..2 {
            assert_eq!(claimed.lane_of(&sub("acme", "wh_a", "http://hooks/a?x=1"), true), "http://hooks:80");
            assert_eq!(claimed.lane_of(&sub("acme", "wh_a", "https://hooks/a"), false), "acme https://hooks:443");
            assert_eq!(claimed.lane_of(&sub("globex", "wh_b", "http://hooks/a?x=1"), false), "globex http://hooks:80");
        }
        for i in 0..super::MAX_KNOWN_URLS + 10 {
            let url = format!("http://h{i}.example:8080/hook");
            assert_eq!(claimed.lane_of(&sub("acme", "wh_a", &url), true), format!("http://h{i}.example:8080"));
            assert!(claimed.hosts.len() <= super::MAX_KNOWN_URLS);
        }
    }

    /// A success proves a subscription if it came within PROVEN_WITHIN; a
    /// slower one, or a failure, makes it failing.
    #[test]
    fn a_slow_success_proves_nothing() {
        let mut claimed = super::Claimed::default();
        let a = sub("acme", "wh_a", "http://hooks/a");
        assert_eq!(claimed.standing(&a), Standing::Untried, "made since the start, not tried");
        claimed.attempted("wh_a", true, PROVEN_WITHIN);
        assert_eq!(claimed.standing(&a), Standing::Failing);
        claimed.attempted("wh_a", true, PROVEN_WITHIN / 2);
        assert_eq!(claimed.standing(&a), Standing::Proven);
        claimed.attempted("wh_a", true, PROVEN_WITHIN * 14);
        assert_eq!(claimed.standing(&a), Standing::Failing, "a proven subscription that turns slow");
        claimed.attempted("wh_a", false, PROVEN_WITHIN / 2);
        assert_eq!(claimed.standing(&a), Standing::Failing);
        claimed.attempted("wh_a", true, PROVEN_WITHIN / 2);
        assert_eq!(claimed.standing(&a), Standing::Proven);
    }

    /// Found by a hostile trial: after a restart every webhook was unproven,
    /// so a healthy one waited minutes behind other accounts' hanging ones
    /// for the unproven half of the slots. One made before the engine
    /// started is judged by its stored failures until attempted here.
    #[test]
    fn a_restart_keeps_what_the_stored_failures_say() {
        let started = Utc::now();
        let mut claimed = super::Claimed::new(started);
        let mut before = sub("acme", "wh_old", "http://hooks/a");
        before.created_at = started - chrono::Duration::days(3);
        assert_eq!(claimed.standing(&before), Standing::Proven, "no failures stored");
        let mut failing = before.clone();
        failing.id = "wh_failing".into();
        failing.failing_since = Some(started - chrono::Duration::hours(1));
        assert_eq!(claimed.standing(&failing), Standing::Failing, "failures stored");
        let mut since = before.clone();
        since.id = "wh_new".into();
        since.created_at = started + chrono::Duration::seconds(1);
        assert_eq!(claimed.standing(&since), Standing::Untried, "made since the start");
        claimed.attempted("wh_old", false, PROVEN_WITHIN / 2);
        assert_eq!(claimed.standing(&before), Standing::Failing, "what happens here wins");
        claimed.attempted("wh_failing", true, PROVEN_WITHIN / 2);
        assert_eq!(claimed.standing(&failing), Standing::Proven);
    }

    fn holder(target: &str, account: &str, subscription: &str) -> Holder {
        Holder { target: target.into(), account: account.into(), subscription: subscription.into() }
    }

    /// A target's room, an account's room and an unproven subscription's
    /// room each stop a claim; rows already claimed count against them; a
    /// subscription is proven by a success and unproven again by a failure.
    #[test]
    fn each_room_stops_a_claim() {
        let claimed = SharedClaimed::default();
        claimed.lock().add(&holder("acme http://a:80", "acme", "wh_a"), "http://a/hook");
        claimed.lock().attempted("wh_b", true, FAST);
        claimed.lock().attempted("wh_c", true, FAST);
        let dead = sub("acme", "wh_a", "http://a/hook");
        let healthy = sub("acme", "wh_b", "http://b/hook");
        let other = sub("globex", "wh_c", "http://b/hook");
        let mut room = admission(&claimed, 3, 5, 2);
        assert!(room.admit(&dead), "an unproven subscription holds one of its two");
        assert!(!room.admit(&dead), "and no more");
        assert!(room.refused);
        for _ in 0..3 {
            assert!(room.admit(&healthy), "its account's others go on");
        }
        assert!(!room.admit(&other), "b's room is 3, shared by the proven webhooks posting there");
        let mut room = admission(&claimed, 10, 5, 2);
        assert!(room.admit(&dead));
        for _ in 0..3 {
            assert!(room.admit(&healthy));
        }
        assert!(!room.admit(&healthy), "acme's room is 5, one claimed already");
        assert!(room.admit(&other), "globex has its own");
        claimed.lock().remove(&holder("acme http://a:80", "acme", "wh_a"));
        assert_eq!(claimed.lock().total, 0);
        let mut room = admission(&claimed, 10, 5, 2);
        assert!(room.admit(&dead) && room.admit(&dead) && !room.admit(&dead));
        // Proven or not as a claim begins (each claim a new admission).
        claimed.lock().attempted("wh_a", true, FAST);
        let mut room = admission(&claimed, 10, 5, 2);
        assert!(room.admit(&dead) && room.admit(&dead) && room.admit(&dead), "proven by a success");
        claimed.lock().attempted("wh_a", false, FAST);
        let mut room = admission(&claimed, 10, 5, 2);
        assert!(room.admit(&dead) && room.admit(&dead));
        assert!(!room.admit(&dead), "unproven again by a failure");
    }

    /// Unproven webhooks of two accounts at one host each count against
    /// their account's own target there; proven ones share the host's.
    #[test]
    fn an_unproven_webhook_has_its_accounts_own_target() {
        let claimed = SharedClaimed::default();
        let new = sub("acme", "wh_new", "http://hooks/a");
        let other_new = sub("globex", "wh_other_new", "http://hooks/b");
        let mut room = admission(&claimed, 2, 100, 10);
        assert!(room.admit(&new) && room.admit(&new) && !room.admit(&new), "acme's room at the host");
        assert!(room.admit(&other_new), "globex's own, though the host is the same");
        assert_eq!(room.lane_of_subscription["wh_new"], "acme http://hooks:80");
        claimed.lock().attempted("wh_new", true, FAST);
        claimed.lock().attempted("wh_other_new", true, FAST);
        let mut room = admission(&claimed, 2, 100, 10);
        assert!(room.admit(&new) && room.admit(&other_new) && !room.admit(&new), "proven, they share the host's");
        assert_eq!(room.lane_of_subscription["wh_new"], "http://hooks:80");
    }

    /// A subscription's rows stay in one target while it holds any: proven
    /// or unproven since, it takes no more rows until those end, then goes
    /// to the target it would take now.
    #[test]
    fn a_subscriptions_rows_stay_in_one_target_while_it_holds_any() {
        let claimed = SharedClaimed::default();
        let s = sub("acme", "wh_s", "http://hooks/a");
        let mut room = admission(&claimed, 10, 100, 4);
        assert!(room.admit(&s));
        let own = room.lane_of_subscription["wh_s"].clone();
        assert_eq!(own, "acme http://hooks:80");
        claimed.lock().add(&holder(&own, "acme", "wh_s"), "http://hooks/a");
        claimed.lock().attempted("wh_s", true, FAST);
        let mut room = admission(&claimed, 10, 100, 4);
        assert!(!room.admit(&s), "proven, with a row still in its account's: none more until it ends");
        claimed.lock().remove(&holder(&own, "acme", "wh_s"));
        let mut room = admission(&claimed, 10, 100, 4);
        assert!(room.admit(&s));
        let shared = room.lane_of_subscription["wh_s"].clone();
        assert_eq!(shared, "http://hooks:80", "none held: the host's");
        claimed.lock().add(&holder(&shared, "acme", "wh_s"), "http://hooks/a");
        claimed.lock().attempted("wh_s", false, FAST);
        let mut room = admission(&claimed, 10, 100, 4);
        assert!(!room.admit(&s), "unproven with a row in the shared target: none more until it ends");
        claimed.lock().remove(&holder(&shared, "acme", "wh_s"));
        let mut room = admission(&claimed, 10, 100, 4);
        assert!(room.admit(&s));
        assert_eq!(room.lane_of_subscription["wh_s"], own);
    }

    /// A subscription whose URL moved to another host while it held rows
    /// takes no more until they end, then goes to the new host's target.
    #[test]
    fn a_moved_subscription_waits_for_its_rows_at_the_old_host() {
        let claimed = SharedClaimed::default();
        claimed.lock().attempted("wh_m", true, FAST);
        claimed.lock().add(&holder("http://old:80", "acme", "wh_m"), "http://old/hook");
        let moved = sub("acme", "wh_m", "http://new/hook");
        assert!(!admission(&claimed, 10, 100, 4).admit(&moved), "rows still at the old host");
        claimed.lock().remove(&holder("http://old:80", "acme", "wh_m"));
        let mut room = admission(&claimed, 10, 100, 4);
        assert!(room.admit(&moved));
        assert_eq!(room.lane_of_subscription["wh_m"], "http://new:80");
    }
}
