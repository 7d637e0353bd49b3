//! A call as the audit keeps it between arrival and analysis: small ids
//! instead of strings, time in microseconds, its billability decided once.

use crate::paths::PathId;
use crate::source::SourceId;
use callmeter_model::Operation;
use std::cmp::Ordering;

/// One call, reduced to what the analyses need.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    /// Arrival order: breaks ties of equal times, so that a log's line order is kept.
    pub seq: u64,
    /// Microseconds since the Unix epoch.
    pub time: i64,
    pub source: SourceId,
    pub operation: Operation,
    pub method: Option<Box<str>>,
    pub path: Option<PathId>,
    pub destination: Option<PathId>,
    pub cursor: Option<Box<str>>,
    pub result_count: Option<u64>,
    pub billable: bool,
    /// Its answer failed in a way worth a retry ([`crate::failed_answer`]).
    pub failed: bool,
}

impl Call {
    /// Whether it is a later page of a listing (it carries a cursor).
    pub fn is_later_page(&self) -> bool {
        self.operation == Operation::List && self.cursor.is_some()
    }
}

impl PartialEq for Call {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Call {}

impl PartialOrd for Call {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Call {
    /// Time order, then arrival order.
    fn cmp(&self, other: &Self) -> Ordering {
        (self.time, self.seq).cmp(&(other.time, other.seq))
    }
}
