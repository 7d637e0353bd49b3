//! Plans: the calls a period includes, and the price of the calls beyond (DESIGN §2).

use crate::period::PeriodKind;
use serde::{Deserialize, Serialize};

/// Calls per overage block: overage is priced per started block (DESIGN §2).
pub const OVERAGE_BLOCK_CALLS: u64 = 1_000;

/// A plan, as configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Its name, as accounts refer to it.
    pub name: String,
    /// How its usage periods run.
    pub period: PeriodKind,
    /// Billable calls included per period.
    pub included_calls: u64,
    /// Price of each started block of 1,000 calls beyond, in minor units of `currency`.
    pub overage_price_per_1000: u64,
    /// ISO 4217 code of the prices (default `USD`).
    #[serde(default = "default_currency")]
    pub currency: String,
}

fn default_currency() -> String {
    "USD".to_owned()
}

/// Usage beyond a plan's included calls, and its price.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Overage {
    /// Calls beyond the included calls.
    pub calls: u64,
    /// Started blocks of 1,000 of those calls.
    pub blocks: u64,
    /// `blocks × overage_price_per_1000`, in minor units.
    pub price: u64,
}

impl Plan {
    /// The overage of a period with `billable_calls` billed calls.
    pub fn overage(&self, billable_calls: u64) -> Overage {
        let calls = billable_calls.saturating_sub(self.included_calls);
        let blocks = calls.div_ceil(OVERAGE_BLOCK_CALLS);
        Overage { calls, blocks, price: blocks.saturating_mul(self.overage_price_per_1000) }
    }
}

/// The plan that fits `calls` calls per period, for the audit's what-if.
///
/// Plans carry no base price, so "fits" is by size: the plan with the
/// smallest `included_calls` that covers `calls`; when none does, the largest
/// plan, and among equally large ones the one whose overage is cheapest for
/// `calls`. Ties otherwise go to the plan listed first. `None` only without plans.
pub fn pick_plan(plans: &[Plan], calls: u64) -> Option<&Plan> {
    let covering = plans.iter().filter(|p| p.included_calls >= calls);
    // `min_by_key` and `max_by_key` pick the first and the last of equals: reverse for the max.
    if let Some(p) = covering.min_by_key(|p| p.included_calls) {
        return Some(p);
    }
    plans.iter().rev().max_by_key(|p| (p.included_calls, std::cmp::Reverse(p.overage(calls).price)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(name: &str, included: u64, price: u64) -> Plan {
        Plan {
            name: name.into(),
            period: PeriodKind::ThirtyDays,
            included_calls: included,
            overage_price_per_1000: price,
            currency: "USD".into(),
        }
    }

    #[test]
    fn overage_counts_started_blocks() {
        let p = plan("p", 1_000_000, 100);
        let over = |n: u64| p.overage(1_000_000 + n);
        assert_eq!(over(0), Overage { calls: 0, blocks: 0, price: 0 });
        assert_eq!(over(1), Overage { calls: 1, blocks: 1, price: 100 });
        assert_eq!(over(1_000), Overage { calls: 1_000, blocks: 1, price: 100 });
        assert_eq!(over(1_001), Overage { calls: 1_001, blocks: 2, price: 200 });
        assert_eq!(p.overage(5), Overage::default(), "under the allowance");
        assert_eq!(plan("x", 0, u64::MAX).overage(u64::MAX).price, u64::MAX, "saturates, never overflows");
    }

    #[test]
    fn currency_defaults_to_usd() {
        let p: Plan =
            serde_json::from_str(r#"{"name":"starter","period":"30d","included_calls":5,"overage_price_per_1000":1}"#)
                .unwrap();
        assert_eq!((p.currency.as_str(), p.period), ("USD", PeriodKind::ThirtyDays));
    }

    #[test]
    fn pick_plan_takes_the_smallest_that_fits_else_the_largest() {
        let plans = [plan("business", 20_000_000, 50), plan("starter", 1_000_000, 100), plan("team", 5_000_000, 80)];
        let name = |calls| pick_plan(&plans, calls).map(|p| p.name.as_str());
        assert_eq!(name(0), Some("starter"));
        assert_eq!(name(1_000_000), Some("starter"));
        assert_eq!(name(1_000_001), Some("team"));
        assert_eq!(name(20_000_000), Some("business"));
        assert_eq!(name(90_000_000), Some("business"));
        assert_eq!(pick_plan(&[], 1), None);
        let twins = [plan("a", 10, 5), plan("b", 10, 3), plan("c", 10, 3)];
        assert_eq!(pick_plan(&twins, 1).unwrap().name, "a", "first of the equally small");
        assert_eq!(pick_plan(&twins, 100_000).unwrap().name, "b", "cheapest overage, then first listed");
    }
}
