//! `what_if`: the account's calls replayed with every recommendation applied
//! (DESIGN §6), and the plan that fits before and after.

use crate::report::{Finding, FindingKind};
use callmeter_model::{pick_plan, Plan};
use serde::{Deserialize, Serialize};

/// The calls before and after every recommendation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WhatIf {
    /// Calls audited, as the requests they took: a listing recorded as one
    /// call (a log line) of N entries counts `ceil(N / list_page_size)`, as its
    /// findings count it. So it can exceed the report's `calls` (the events).
    pub calls: u64,
    /// Calls left with every recommendation applied.
    pub calls_after: u64,
    /// `calls / calls_after` (1 when nothing is avoidable; `calls` when everything is).
    pub factor: f64,
    /// Billable calls audited.
    pub billable_calls: u64,
    /// Billable calls left.
    pub billable_calls_after: u64,
    /// Avoidable calls by finding kind; each avoidable call is in one kind only.
    pub avoidable_calls_by_kind: AvoidableByKind,
    /// The plan that fits the billable calls now, if plans were given.
    pub plan_before: Option<PlanFit>,
    /// The plan that fits them after.
    pub plan_after: Option<PlanFit>,
    /// Entries one list request returns, that listings were costed at: the
    /// account's own page size where one is set, else `[audit] list_page_size`.
    #[serde(default = "default_page_size")]
    pub list_page_size: u64,
}

fn default_page_size() -> u64 {
    callmeter_model::DEFAULT_LIST_PAGE_SIZE
}

/// Avoidable calls of each kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AvoidableByKind {
    /// Polling repeats that saw no change.
    pub polling: u64,
    /// Listings before the last of each upload batch.
    pub list_after_write: u64,
    /// Repeated identical requests.
    pub duplicate_requests: u64,
}

/// A plan, and what the audited calls would cost on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanFit {
    /// The plan's name.
    pub name: String,
    /// Calls it includes per period.
    pub included_calls: u64,
    /// Billable calls beyond them.
    pub overage_calls: u64,
    /// Their price, in minor units of `currency`.
    pub overage_price: u64,
    /// ISO 4217 code of the price.
    pub currency: String,
}

fn fit(plans: &[Plan], billable: u64) -> Option<PlanFit> {
    pick_plan(plans, billable).map(|p| {
        let o = p.overage(billable);
        PlanFit {
            name: p.name.clone(),
            included_calls: p.included_calls,
            overage_calls: o.calls,
            overage_price: o.price,
            currency: p.currency.clone(),
        }
    })
}

/// The what-if of `calls` (`billable` of them billable) with `findings`
/// fixed, listings costed at `list_page_size` entries a request.
///
/// Plans are picked for the billable calls of the audited range as they are:
/// audit a whole usage period for the plan to mean "per period".
pub fn what_if(calls: u64, billable: u64, list_page_size: u64, findings: &[Finding], plans: &[Plan]) -> WhatIf {
    let mut by_kind = AvoidableByKind::default();
    let mut avoidable_billable = 0u64;
    for f in findings {
        let slot = match f.kind() {
            FindingKind::Polling => &mut by_kind.polling,
            FindingKind::ListAfterWrite => &mut by_kind.list_after_write,
            FindingKind::DuplicateRequests => &mut by_kind.duplicate_requests,
        };
        *slot += f.avoidable_calls;
        avoidable_billable += f.avoidable_billable_calls;
    }
    let avoidable = by_kind.polling + by_kind.list_after_write + by_kind.duplicate_requests;
    // A listing costed from `result_count` can exceed the events seen: never below zero.
    let calls_after = calls.saturating_sub(avoidable);
    let billable_after = billable.saturating_sub(avoidable_billable);
    let factor = match (calls, calls_after) {
        (0, _) => 1.0,
        (c, 0) => c as f64,
        (c, a) => c as f64 / a as f64,
    };
    WhatIf {
        calls,
        calls_after,
        factor,
        billable_calls: billable,
        billable_calls_after: billable_after,
        avoidable_calls_by_kind: by_kind,
        plan_before: fit(plans, billable),
        plan_after: fit(plans, billable_after),
        list_page_size,
    }
}
