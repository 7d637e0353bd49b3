//! The request log newest first, fast at any depth, over a store that pages
//! only in time order (`Store::calls`).
//!
//! A page of the newest `limit` calls before a cursor is read as a time
//! window `[lo, hi)` that ends at the cursor and holds about `limit`
//! matching calls, scanned forward, keeping the last `limit`. The window's
//! start comes from the 15-minute aggregates, which count every bucket's
//! calls by interface and operation (and by API key and user): walking them
//! back from the cursor until they add up to the page, and taking the
//! bucket's share by time where the page ends inside one. So a page reads
//! about one page of calls whatever its depth, and a deep page costs what
//! the first one does.
//!
//! A filter the aggregates cannot count (path prefix, client address,
//! status) is estimated from what the windows read so far find, and the
//! windows grow until the page is full. Each request reads at most
//! [`SCAN_BUDGET`] calls (as the aggregates count them): a page that a
//! rare filter leaves short says how far back it searched, and its cursor
//! goes on from there, so no request is slow however rare the match.

use callmeter_model::{bucket_of, bucket_start, BUCKET_SECONDS};
use callmeter_store::{CallFilter, Position, Store, StoreError, StoredCall};
use chrono::{DateTime, Utc};
use std::collections::{HashMap, VecDeque};

/// The most calls one request reads, as the aggregates count them.
pub const SCAN_BUDGET: u64 = 150_000;
/// Calls asked of the store at a time inside a window.
const STORE_PAGE: usize = 4_096;
/// Nanoseconds in a bucket.
const BUCKET_NS: i64 = BUCKET_SECONDS * 1_000_000_000;
/// The most buckets read from the aggregates at once, walking back over empty days.
const MAX_CHUNK_BUCKETS: i64 = 96 * 32;

/// A page of the request log, newest first.
#[derive(Debug)]
pub struct NewestPage {
    /// The calls, newest first.
    pub calls: Vec<(Position, StoredCall)>,
    /// Where the next (older) page starts: calls before this position.
    pub older: Option<Position>,
    /// Set when the page is short because the request read its budget:
    /// everything from here to the cursor has been searched.
    pub searched_back_to: Option<DateTime<Utc>>,
}

fn ns(t: DateTime<Utc>) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(if t.timestamp() < 0 { i64::MIN } else { i64::MAX })
}

fn at(ns: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(ns)
}

/// The newest `limit` calls matching `filter` before `before` (or the newest
/// of all), no older than `floor` (the retention: calls older are gone, their
/// aggregates kept).
pub fn page(
    store: &dyn Store,
    account: &str,
    filter: &CallFilter,
    before: Option<Position>,
    limit: usize,
    floor: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<NewestPage, StoreError> {
    page_with_budget(store, account, filter, before, limit, floor, now, SCAN_BUDGET)
}

#[allow(clippy::too_many_arguments)]
fn page_with_budget(
    store: &dyn Store,
    account: &str,
    filter: &CallFilter,
    before: Option<Position>,
    limit: usize,
    floor: DateTime<Utc>,
    now: DateTime<Utc>,
    budget: u64,
) -> Result<NewestPage, StoreError> {
    let floor_ns = ns(filter.from.map_or(floor, |f| f.max(floor)));
    // Calls may be stamped a little ahead of the server's clock (DESIGN §3: up to 5 minutes).
    let top_ns = ns(filter.to.unwrap_or(now + chrono::Duration::hours(1)));
    let upper = before.unwrap_or(Position { time_ns: i64::MAX, seq: u64::MAX, idx: u32::MAX });
    let mut hi_ns = before.map_or(top_ns, |p| p.time_ns.saturating_add(1).min(top_ns));
    let mut counts = BucketCounts::new(store, account, filter);
    let countable = counts.counts_the_filter();
    let mut out: Vec<(Position, StoredCall)> = Vec::with_capacity(limit);
    // Calls read (as the aggregates count every call), and, of the calls the
    // aggregates say may match, how many were read and how many matched.
    let (mut read, mut may_match, mut matched) = (0f64, 0f64, 0u64);
    let mut last_window = 0f64;
    while out.len() < limit && hi_ns > floor_ns {
        // Buckets where nothing can match are never read.
        hi_ns = counts.skip_unmatched(hi_ns, floor_ns)?;
        let left = budget as f64 - read;
        if hi_ns <= floor_ns {
            break;
        }
        if left < 1.0 {
            let older = Some(Position { time_ns: hi_ns, seq: 0, idx: 0 });
            return Ok(NewestPage { calls: out, older, searched_back_to: Some(at(hi_ns)) });
        }
        let needed = (limit - out.len()) as f64;
        let want = if countable || may_match < 1.0 {
            needed * 1.1 + 8.0
        } else {
            // Matches so far per call that may match, with one match assumed where none was found yet.
            let rate = (matched.max(1) as f64 / may_match).min(1.0);
            (needed / rate).max(last_window * 2.0)
        };
        let lo_ns = counts.window_start(hi_ns, want, floor_ns, left)?;
        let (all, maybe) = counts.between(lo_ns, hi_ns)?;
        let window = CallFilter { from: Some(at(lo_ns)), to: Some(at(hi_ns)), ..filter.clone() };
        let (newest, found) = last_in_window(store, account, &window, upper, limit - out.len())?;
        out.extend(newest.into_iter().rev());
        matched += found;
        read += all;
        may_match += maybe;
        last_window = maybe.max(1.0);
        hi_ns = lo_ns;
    }
    let older = (out.len() == limit).then(|| out.last().map(|(p, _)| *p)).flatten();
    Ok(NewestPage { calls: out, older, searched_back_to: None })
}

/// The last `keep` calls of a window before `upper`, in time order, and how many matched in all.
fn last_in_window(
    store: &dyn Store,
    account: &str,
    window: &CallFilter,
    upper: Position,
    keep: usize,
) -> Result<(VecDeque<(Position, StoredCall)>, u64), StoreError> {
    let mut kept: VecDeque<(Position, StoredCall)> = VecDeque::with_capacity(keep.min(STORE_PAGE));
    let (mut after, mut found) = (None, 0u64);
    loop {
        let page = store.calls(account, window, after, STORE_PAGE)?;
        for (pos, call) in page.calls {
            if pos >= upper {
                continue;
            }
            found += 1;
            if kept.len() == keep {
                kept.pop_front();
            }
            kept.push_back((pos, call));
        }
        match page.next {
            Some(p) => after = Some(p),
            None => return Ok((kept, found)),
        }
    }
}

/// One bucket's calls: all of them, and those the aggregates say may match the filter.
#[derive(Debug, Clone, Copy, Default)]
struct BucketCount {
    all: u64,
    matching: u64,
}

/// The aggregates' counts per bucket, read backwards in chunks as the walks need them.
struct BucketCounts<'a> {
    store: &'a dyn Store,
    account: &'a str,
    filter: &'a CallFilter,
    /// Counts of the buckets loaded, `[loaded_from, loaded_to)`: every call, and those that may match.
    counts: HashMap<i64, BucketCount>,
    loaded_from: i64,
    loaded_to: i64,
    chunk: i64,
}

impl<'a> BucketCounts<'a> {
    fn new(store: &'a dyn Store, account: &'a str, filter: &'a CallFilter) -> BucketCounts<'a> {
        BucketCounts { store, account, filter, counts: HashMap::new(), loaded_from: 0, loaded_to: 0, chunk: 96 }
    }

    /// Whether the aggregates count exactly what the filter matches.
    fn counts_the_filter(&self) -> bool {
        let f = self.filter;
        f.path_prefix.is_none() && f.client_ip.is_none() && f.status_class.is_none()
    }

    fn needs_breakdown(&self) -> bool {
        self.filter.api_key.is_some() || self.filter.user.is_some()
    }

    /// The count of bucket `b`, loading the chunk of buckets that ends with it when needed.
    /// The walks go back in time, so the loaded range only grows downwards; a
    /// chunk with no calls doubles the next (a quiet month is read in a few steps).
    fn count(&mut self, b: i64) -> Result<BucketCount, StoreError> {
        if self.loaded_from == self.loaded_to {
            self.load(b + 1 - self.chunk, b + 1)?;
        } else if b >= self.loaded_to {
            self.load(self.loaded_to, b + 1)?;
        } else if b < self.loaded_from {
            let before = self.counts.len();
            self.load(self.loaded_from - self.chunk, self.loaded_from)?;
            if self.counts.len() == before {
                self.chunk = (self.chunk * 2).min(MAX_CHUNK_BUCKETS);
            }
        }
        Ok(self.counts.get(&b).copied().unwrap_or_default())
    }

    /// Adds the counts of buckets `[from, to)`, next to those loaded.
    fn load(&mut self, from: i64, to: i64) -> Result<(), StoreError> {
        let f = self.filter;
        let breakdown = self.needs_breakdown();
        let (store, account) = (self.store, self.account);
        let counts = &mut self.counts;
        let mut add = |bucket: i64, calls: u64, matches: bool| {
            let c = counts.entry(bucket).or_default();
            c.all += calls;
            if matches {
                c.matching += calls;
            }
        };
        if breakdown {
            for r in store.breakdown(account, from, to)? {
                if r.flags.carried {
                    continue;
                }
                let matches = f.interface.is_none_or(|i| i == r.interface)
                    && f.operation.is_none_or(|o| o == r.operation)
                    && f.api_key.as_ref().is_none_or(|k| *k == r.api_key)
                    && f.user.as_ref().is_none_or(|u| *u == r.user);
                add(r.bucket, r.calls, matches);
            }
        } else {
            for r in store.totals(account, from, to)? {
                if r.flags.carried {
                    continue;
                }
                let matches =
                    f.interface.is_none_or(|i| i == r.interface) && f.operation.is_none_or(|o| o == r.operation);
                add(r.bucket, r.calls, matches);
            }
        }
        if self.loaded_from == self.loaded_to {
            (self.loaded_from, self.loaded_to) = (from, to);
        } else {
            (self.loaded_from, self.loaded_to) = (self.loaded_from.min(from), self.loaded_to.max(to));
        }
        Ok(())
    }

    /// The end of the latest stretch before `hi` where a call may match: the
    /// buckets between, where none can, are left unread. `floor` when none is left.
    fn skip_unmatched(&mut self, hi: i64, floor: i64) -> Result<i64, StoreError> {
        let mut b = bucket_of(at(hi.saturating_sub(1)));
        loop {
            let b_start = ns(bucket_start(b));
            let b_end = b_start.saturating_add(BUCKET_NS);
            if b_end <= floor {
                return Ok(floor);
            }
            if self.count(b)?.matching > 0 {
                return Ok(hi.min(b_end));
            }
            b -= 1;
        }
    }

    /// The latest start of a window ending at `hi` that the aggregates say
    /// holds `want` calls that may match, each bucket's calls taken as spread
    /// evenly over it. The window stops early at a bucket where nothing can
    /// match (the next window starts past it), where it would hold more than
    /// `max_read` calls in all, and at `floor`.
    fn window_start(&mut self, hi: i64, want: f64, floor: i64, max_read: f64) -> Result<i64, StoreError> {
        let (mut matching, mut all) = (0f64, 0f64);
        let mut b = bucket_of(at(hi.saturating_sub(1)));
        loop {
            let b_start = ns(bucket_start(b));
            let b_end = b_start.saturating_add(BUCKET_NS);
            if b_end <= floor {
                return Ok(floor);
            }
            let top = hi.min(b_end);
            let span = (top - b_start.max(floor)).max(0) as f64;
            let c = self.count(b)?;
            let share = span / BUCKET_NS as f64;
            let (m, a) = (c.matching as f64 * share, c.all as f64 * share);
            if m == 0.0 {
                return Ok(top.min(hi - 1).max(floor));
            }
            // The fraction of this bucket's part below `top` that the window takes.
            let by_matches = ((want - matching) / m).max(0.0);
            let by_budget = ((max_read - all) / a).max(0.0);
            let take = by_matches.min(by_budget);
            if take < 1.0 {
                let start = top - (take * span).ceil() as i64;
                return Ok(start.max(floor).min(hi - 1));
            }
            matching += m;
            all += a;
            b -= 1;
        }
    }

    /// The aggregates' counts of `[lo, hi)`: every call, and those that may match.
    fn between(&mut self, lo: i64, hi: i64) -> Result<(f64, f64), StoreError> {
        let (mut all, mut matching) = (0f64, 0f64);
        let mut b = bucket_of(at(hi.saturating_sub(1)));
        loop {
            let b_start = ns(bucket_start(b));
            let b_end = b_start.saturating_add(BUCKET_NS);
            if b_end <= lo {
                return Ok((all, matching));
            }
            let share = (hi.min(b_end) - lo.max(b_start)).max(0) as f64 / BUCKET_NS as f64;
            let c = self.count(b)?;
            all += c.all as f64 * share;
            matching += c.matching as f64 * share;
            b -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use callmeter_model::{CallEvent, Interface, Operation};
    use callmeter_store::{EmbeddedStore, StoreOptions};

    /// Calls over 30 hours: a busy hour, quiet stretches, two interfaces, a
    /// rare path, and several commits whose calls interleave in time.
    fn seeded() -> (tempfile::TempDir, EmbeddedStore, DateTime<Utc>) {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
        let now = Utc::now();
        let start = now - chrono::Duration::hours(30);
        for commit in 0..3i64 {
            let mut events = Vec::new();
            for i in 0..1_200i64 {
                let n = i * 3 + commit;
                // A burst: the first 2,400 calls in the first hour, the rest spread over 29.
                let offset_s = if n < 2_400 { n * 3_600 / 2_400 } else { 3_600 + (n - 2_400) * 29 * 3_600 / 1_200 };
                let time = start + chrono::Duration::seconds(offset_s) + chrono::Duration::milliseconds(commit);
                let (interface, operation) = if n % 500 == 1 {
                    (Interface::Ftp, Operation::Read) // a few, far apart
                } else if n % 3 == 0 {
                    (Interface::Sftp, Operation::Write)
                } else {
                    (Interface::Rest, Operation::List)
                };
                let mut e = CallEvent::new(format!("c{n}"), "acme".into(), time, interface, operation);
                e.path = Some(if n % 97 == 0 { format!("/rare/{n}") } else { format!("/inbox/{n}") });
                e.api_key = Some(format!("key{}", n % 4));
                events.push(e);
            }
            store.ingest(events).wait_blocking().unwrap();
        }
        (dir, store, now)
    }

    fn forward(store: &EmbeddedStore, filter: &CallFilter) -> Vec<String> {
        let mut ids = Vec::new();
        let mut after = None;
        loop {
            let page = store.calls("acme", filter, after, 1_000).unwrap();
            ids.extend(page.calls.iter().map(|(_, c)| c.event.id.clone()));
            match page.next {
                Some(p) => after = Some(p),
                None => return ids,
            }
        }
    }

    fn backward(
        store: &EmbeddedStore,
        filter: &CallFilter,
        limit: usize,
        now: DateTime<Utc>,
        budget: u64,
    ) -> (Vec<String>, usize) {
        let floor = now - chrono::Duration::days(400);
        let (mut ids, mut pages, mut before) = (Vec::new(), 0, None);
        loop {
            let page = page_with_budget(store, "acme", filter, before, limit, floor, now, budget).unwrap();
            pages += 1;
            assert!(page.calls.len() <= limit);
            assert!(page.calls.windows(2).all(|w| w[0].0 > w[1].0), "newest first within a page");
            if page.searched_back_to.is_none() && page.older.is_some() {
                assert_eq!(page.calls.len(), limit, "only a full page or a searched-out one goes on");
            }
            ids.extend(page.calls.iter().map(|(_, c)| c.event.id.clone()));
            match page.older {
                Some(p) => before = Some(p),
                None => return (ids, pages),
            }
            assert!(pages < 10_000, "paging ends");
        }
    }

    #[test]
    fn newest_first_is_the_time_order_reversed_for_every_filter() {
        let (_dir, store, now) = seeded();
        let filters = [
            CallFilter::default(),
            CallFilter { interface: Some(Interface::Sftp), ..Default::default() },
            CallFilter { api_key: Some("key1".into()), operation: Some(Operation::List), ..Default::default() },
            CallFilter { path_prefix: Some("/rare/".into()), ..Default::default() },
            CallFilter {
                from: Some(now - chrono::Duration::hours(20)),
                to: Some(now - chrono::Duration::hours(2)),
                ..Default::default()
            },
        ];
        for filter in &filters {
            let mut expected = forward(&store, filter);
            expected.reverse();
            assert!(!expected.is_empty(), "{filter:?}");
            for limit in [1, 7, 50, 5_000] {
                let (ids, _) = backward(&store, filter, limit, now, SCAN_BUDGET);
                assert_eq!(ids, expected, "{filter:?}, {limit} a page");
            }
        }
        store.shutdown();
    }

    #[test]
    fn a_page_reads_about_a_page_of_calls() {
        let (_dir, store, now) = seeded();
        let all = forward(&store, &CallFilter::default()).len();
        // With a budget just over one page, the unfiltered walk still never stops short:
        // each window is sized from the aggregates to hold about a page.
        let (ids, pages) = backward(&store, &CallFilter::default(), 50, now, 200);
        assert_eq!(ids.len(), all);
        assert_eq!(pages, all.div_ceil(50) + usize::from(all.is_multiple_of(50)));
        store.shutdown();
    }

    #[test]
    fn sparse_and_absent_matches_that_the_aggregates_count_are_found_without_reading_the_rest() {
        let (_dir, store, now) = seeded();
        let ftp = CallFilter { interface: Some(Interface::Ftp), ..Default::default() };
        let mut expected = forward(&store, &ftp);
        expected.reverse();
        assert_eq!(expected.len(), 8);
        // Each match sits in a bucket of its own among thousands of others: a
        // budget of a few buckets' calls still finds every one, a window per bucket.
        let (ids, _) = backward(&store, &ftp, 50, now, 2_000);
        assert_eq!(ids, expected);
        let none = CallFilter { interface: Some(Interface::Mount), ..Default::default() };
        let floor = now - chrono::Duration::days(400);
        let page = page_with_budget(&store, "acme", &none, None, 50, floor, now, 1).unwrap();
        assert!(
            page.calls.is_empty() && page.older.is_none() && page.searched_back_to.is_none(),
            "nothing read, nothing to page"
        );
        store.shutdown();
    }

    #[test]
    fn a_rare_match_is_searched_out_within_the_budget_and_paging_goes_on() {
        let (_dir, store, now) = seeded();
        let rare = CallFilter { path_prefix: Some("/rare/".into()), ..Default::default() };
        let mut expected = forward(&store, &rare);
        expected.reverse();
        let (ids, pages) = backward(&store, &rare, 50, now, 500);
        assert_eq!(ids, expected, "every match, in order, across short pages");
        assert!(pages > 2, "the budget cut the search into several requests: {pages}");
        store.shutdown();
    }
}
