//! What one listing costs: each page is its own call (DESIGN §1), and a log
//! that records a whole listing as one line is costed from its `result_count`.

use callmeter_model::list_pages;

/// Calls, and how many of them are billable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Tally {
    pub calls: u64,
    pub billable: u64,
}

impl Tally {
    pub fn add(&mut self, other: Tally) {
        self.calls += other.calls;
        self.billable += other.billable;
    }

    pub fn one(billable: bool) -> Tally {
        Tally { calls: 1, billable: u64::from(billable) }
    }
}

/// One listing (or one stat or read: a listing of one page), its pages as they come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Listing {
    pages: u64,
    billable_pages: u64,
    entries: u64,
}

impl Listing {
    /// A listing begun by its first call.
    pub fn first(billable: bool, result_count: Option<u64>) -> Listing {
        let mut l = Listing::default();
        l.page(billable, result_count);
        l
    }

    /// One more page call.
    pub fn page(&mut self, billable: bool, result_count: Option<u64>) {
        self.pages += 1;
        self.billable_pages += u64::from(billable);
        self.entries = self.entries.saturating_add(result_count.unwrap_or(0));
    }

    /// Entries listed, from the pages' `result_count`.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// The calls it was seen as: one per page.
    pub fn seen(&self) -> Tally {
        Tally { calls: self.pages, billable: self.billable_pages }
    }

    /// The calls it took beyond those seen: a listing logged as one line of
    /// N entries took `ceil(N / page_size)` requests.
    pub fn beyond_seen(&self, page_size: u64) -> Tally {
        let (cost, seen) = (self.cost(page_size), self.seen());
        Tally { calls: cost.calls.saturating_sub(seen.calls), billable: cost.billable.saturating_sub(seen.billable) }
    }

    /// The calls it took: its pages, or, when it was seen as a single call
    /// whose `result_count` needs more pages, `ceil(entries / page_size)`.
    pub fn cost(&self, page_size: u64) -> Tally {
        let calls = if self.pages == 1 { list_pages(self.entries, page_size) } else { self.pages };
        let billable = if self.billable_pages == self.pages { calls } else { self.billable_pages };
        Tally { calls, billable }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_seen_or_estimated() {
        let mut l = Listing::first(true, Some(10_000));
        for _ in 0..9 {
            l.page(true, Some(10_000));
        }
        assert_eq!(l.cost(10_000), Tally { calls: 10, billable: 10 });
        assert_eq!(l.entries(), 100_000);
        // A log line that stands for a whole listing of 100,000 entries.
        assert_eq!(Listing::first(false, Some(100_000)).cost(2_500), Tally { calls: 40, billable: 0 });
        assert_eq!(Listing::first(true, Some(100_000)).beyond_seen(2_500), Tally { calls: 39, billable: 39 });
        assert_eq!(l.beyond_seen(10_000), Tally::default(), "every page seen");
        assert_eq!(Listing::first(true, None).cost(10_000), Tally { calls: 1, billable: 1 });
    }
}
