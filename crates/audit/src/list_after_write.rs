//! `list_after_write` (DESIGN §6): a source that lists a folder after each
//! upload into it during a batch.
//!
//! A batch is a run of uploads by one source into one folder with gaps of at
//! most `batch_gap_secs`; writes to the same path within `same_upload_secs`
//! (begin and finish) are one upload. Listings of that folder by that source
//! while its batch is open (at most `batch_gap_secs` after its last upload)
//! belong to the batch. All but the last listing of a batch are avoidable,
//! each costing its pages: the platform's example, 1,000 uploads into a folder
//! of 100,000 entries listed after each at 10,000 a page, is 9,990 avoidable
//! calls of 11,000.
//!
//! The listings a batch takes are marked "claimed" so that the polling
//! analysis does not count them too, even when the batch turns out to have a
//! single listing (then neither counts it: a listing after writes is not a
//! poll that saw no change).

use crate::call::Call;
use crate::config::{secs_to_us, AuditConfig};
use crate::listing::{Listing, Tally};
use crate::paths::{PathId, PathTable};
use crate::report::{thousands, Finding, FindingDetails};
use crate::source::{SourceId, SourceTable};
use crate::Map;
use callmeter_model::Operation;

#[derive(Debug)]
struct Batch {
    last_write: i64,
    last_upload: (PathId, i64),
    uploads: u64,
    /// Listings before the current one: all avoidable if the batch qualifies.
    earlier: Tally,
    earlier_count: u64,
    current: Option<Listing>,
}

#[derive(Debug, Default)]
struct Folder {
    batch: Option<Batch>,
    batches: u64,
    uploads: u64,
    listings: u64,
    calls: Tally,
    avoidable: Tally,
    entries: u64,
    last_pages: u64,
}

impl Folder {
    fn close_batch(&mut self, config: &AuditConfig) {
        let Some(b) = self.batch.take() else { return };
        let Some(last) = b.current else { return };
        self.entries = self.entries.max(last.entries());
        if b.uploads < config.min_batch_uploads || b.earlier_count == 0 {
            return;
        }
        let last_cost = last.cost(config.list_page_size);
        self.batches += 1;
        self.uploads += b.uploads;
        self.listings += b.earlier_count + 1;
        self.calls.add(b.earlier);
        self.calls.add(last_cost);
        self.avoidable.add(b.earlier);
        self.last_pages = last_cost.calls;
    }
}

/// Upload batches per (source, folder).
#[derive(Debug, Default)]
pub(crate) struct UploadBatches {
    folders: Map<(SourceId, PathId), Folder>,
}

impl UploadBatches {
    /// One call that is not a duplicate; answers whether it is a listing a batch took.
    pub fn observe(&mut self, call: &Call, paths: &PathTable, config: &AuditConfig) -> bool {
        let Some(path) = call.path else { return false };
        let gap = secs_to_us(config.batch_gap_secs);
        match call.operation {
            Operation::Write => {
                let Some(folder) = paths.parent(path) else { return false };
                let f = self.folders.entry((call.source, folder)).or_default();
                if f.batch.as_ref().is_some_and(|b| call.time - b.last_write > gap) {
                    f.close_batch(config);
                }
                let b = f.batch.get_or_insert(Batch {
                    last_write: call.time,
                    last_upload: (path, i64::MIN),
                    uploads: 0,
                    earlier: Tally::default(),
                    earlier_count: 0,
                    current: None,
                });
                let same_upload = b.last_upload.0 == path
                    && call.time.saturating_sub(b.last_upload.1) <= secs_to_us(config.same_upload_secs);
                if !same_upload {
                    b.uploads += 1;
                }
                b.last_upload = (path, call.time);
                b.last_write = call.time;
                false
            }
            Operation::List => {
                let Some(f) = self.folders.get_mut(&(call.source, path)) else { return false };
                if f.batch.as_ref().is_some_and(|b| call.time - b.last_write > gap) {
                    f.close_batch(config);
                }
                let Some(b) = &mut f.batch else { return false };
                if call.is_later_page() {
                    match &mut b.current {
                        Some(l) => {
                            l.page(call.billable, call.result_count);
                            true
                        }
                        None => false,
                    }
                } else {
                    if let Some(prev) = b.current.take() {
                        b.earlier.add(prev.cost(config.list_page_size));
                        b.earlier_count += 1;
                    }
                    b.current = Some(Listing::first(call.billable, call.result_count));
                    true
                }
            }
            _ => false,
        }
    }

    /// One finding per (source, folder) with avoidable listings.
    pub fn findings(&mut self, paths: &PathTable, sources: &SourceTable, config: &AuditConfig) -> Vec<Finding> {
        let mut out = Vec::new();
        for ((source, folder), f) in &mut self.folders {
            f.close_batch(config);
            if f.batches == 0 {
                continue;
            }
            let src = sources.get(*source);
            let path = paths.name(*folder);
            let batches = if f.batches == 1 {
                format!("a batch of {} uploads", thousands(f.uploads))
            } else {
                format!("{} batches, {} uploads in all", thousands(f.batches), thousands(f.uploads))
            };
            let recommendation = format!(
                "{} listed {} {} times during {} ({} requests per listing at {} entries). List it once at the end \
                 of each batch instead: {} calls fewer.",
                src.key,
                path,
                thousands(f.listings),
                batches,
                thousands(f.last_pages),
                thousands(f.entries),
                thousands(f.avoidable.calls)
            );
            out.push(Finding {
                source: src.clone(),
                path: path.to_owned(),
                operation: Some(Operation::List),
                calls: f.calls.calls,
                avoidable_calls: f.avoidable.calls,
                avoidable_billable_calls: f.avoidable.billable,
                recommendation,
                details: FindingDetails::ListAfterWrite {
                    batches: f.batches,
                    uploads: f.uploads,
                    listings: f.listings,
                    entries: f.entries,
                    pages_per_listing: f.last_pages,
                },
            });
        }
        out
    }
}
