//! How many requests listing a folder takes (DESIGN §1): the audit's estimates and what-ifs.

/// Entries one list request returns unless the platform or account says otherwise.
pub const DEFAULT_LIST_PAGE_SIZE: u64 = 10_000;

/// Requests needed to list a folder of `entries` entries: ceil(entries / page_size),
/// at least 1 since an empty folder still takes one request. A page size of 0 is taken as 1.
pub fn list_pages(entries: u64, page_size: u64) -> u64 {
    entries.div_ceil(page_size.max(1)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_at_the_default_size() {
        let n = |e| list_pages(e, DEFAULT_LIST_PAGE_SIZE);
        assert_eq!([n(0), n(1), n(10_000), n(10_001), n(100_000)], [1, 1, 1, 2, 10]);
    }

    #[test]
    fn pages_at_2500() {
        let n = |e| list_pages(e, 2_500);
        assert_eq!([n(0), n(1), n(2_500), n(2_501), n(10_000), n(100_000)], [1, 1, 1, 2, 4, 40]);
    }

    #[test]
    fn odd_sizes_do_not_panic() {
        assert_eq!(list_pages(7, 0), 7);
        assert_eq!(list_pages(u64::MAX, 1), u64::MAX);
        assert_eq!(list_pages(u64::MAX, u64::MAX), 1);
    }
}
