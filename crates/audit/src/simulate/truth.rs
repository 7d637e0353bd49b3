//! What a simulated workload really contains: every injected waste pattern
//! with its true avoidable calls, and the people who must not be flagged.
//! Serializable, so that a workload can be written out with a JSON truth file.

use crate::report::{Finding, FindingKind};
use crate::source::SourceKey;
use serde::{Deserialize, Serialize};

/// The truth of one simulated workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Truth {
    /// The account the calls are for.
    pub account: String,
    /// The page size listings were made with.
    pub list_page_size: u64,
    /// Calls generated.
    pub calls: u64,
    /// Every injected waste pattern that has avoidable calls.
    pub patterns: Vec<TruthPattern>,
    /// Sources that browse at random: none of them is polling.
    pub people: Vec<SourceKey>,
    /// Repeats of requests whose answer failed (503, 429): retries, not waste.
    #[serde(default)]
    pub retries_after_errors: u64,
    /// The sources that sent them: no finding may name them.
    #[serde(default)]
    pub retrying_clients: Vec<SourceKey>,
}

/// One injected pattern.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthPattern {
    /// The finding it should give.
    pub kind: FindingKind,
    /// Its source.
    pub source: SourceKey,
    /// Its path: the polled path, the listed folder, or the folder all duplicates are under.
    pub path: String,
    /// The calls that really are avoidable.
    pub avoidable_calls: u64,
    /// How it was made, in words (period, jitter, missed polls, pauses, batch sizes…).
    pub note: String,
}

impl TruthPattern {
    /// Whether a finding is this pattern: same kind, source and path.
    pub fn matches(&self, f: &Finding) -> bool {
        f.kind() == self.kind && f.source.key == self.source && f.path == self.path
    }
}

/// How well findings match the truth, for one kind.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct KindScore {
    /// Findings that match a pattern.
    pub true_positives: u64,
    /// Findings that match none.
    pub false_positives: u64,
    /// Patterns no finding matches.
    pub false_negatives: u64,
    /// Σ |found − true| avoidable calls over the matched findings.
    pub avoidable_error: u64,
    /// Σ true avoidable calls over the matched patterns.
    pub avoidable_true: u64,
}

impl KindScore {
    /// Adds another score.
    pub fn add(&mut self, o: &KindScore) {
        self.true_positives += o.true_positives;
        self.false_positives += o.false_positives;
        self.false_negatives += o.false_negatives;
        self.avoidable_error += o.avoidable_error;
        self.avoidable_true += o.avoidable_true;
    }

    /// TP / (TP + FP); 1 when nothing was found.
    pub fn precision(&self) -> f64 {
        ratio(self.true_positives, self.true_positives + self.false_positives)
    }

    /// TP / (TP + FN); 1 when there was nothing to find.
    pub fn recall(&self) -> f64 {
        ratio(self.true_positives, self.true_positives + self.false_negatives)
    }

    /// Relative error of the matched findings' avoidable calls.
    pub fn avoidable_relative_error(&self) -> f64 {
        if self.avoidable_true == 0 {
            0.0
        } else {
            self.avoidable_error as f64 / self.avoidable_true as f64
        }
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        1.0
    } else {
        a as f64 / b as f64
    }
}

impl Truth {
    /// Scores findings against the truth, for one kind.
    pub fn score(&self, findings: &[Finding], kind: FindingKind) -> KindScore {
        let mut s = KindScore::default();
        let patterns: Vec<&TruthPattern> = self.patterns.iter().filter(|p| p.kind == kind).collect();
        let mut matched = vec![false; patterns.len()];
        for f in findings.iter().filter(|f| f.kind() == kind) {
            match patterns.iter().position(|p| p.matches(f)) {
                Some(i) if !matched[i] => {
                    matched[i] = true;
                    s.true_positives += 1;
                    s.avoidable_error += f.avoidable_calls.abs_diff(patterns[i].avoidable_calls);
                    s.avoidable_true += patterns[i].avoidable_calls;
                }
                _ => s.false_positives += 1,
            }
        }
        s.false_negatives = matched.iter().filter(|m| !**m).count() as u64;
        s
    }

    /// The findings that wrongly call a retrying client's retries waste.
    pub fn retrying_clients_flagged<'a>(&self, findings: &'a [Finding]) -> Vec<&'a Finding> {
        findings.iter().filter(|f| self.retrying_clients.contains(&f.source.key)).collect()
    }

    /// The people a finding wrongly calls pollers.
    pub fn people_flagged_as_polling<'a>(&self, findings: &'a [Finding]) -> Vec<&'a Finding> {
        findings.iter().filter(|f| f.kind() == FindingKind::Polling && self.people.contains(&f.source.key)).collect()
    }
}
