//! Clients that repeat their requests: some of it waste, some not.
//!
//! - [`Workload::duplicate_client`]: every request sent twice within 1.5 s (waste).
//! - [`Workload::fixed_delay_loops`]: each file fetched 3 to 5 times at a fixed
//!   delay of 0.2 to 2 s, all answered 200 (waste: all but the first of each file).
//! - [`Workload::retrying_client`]: downloads answered 503 or 429 now and then,
//!   retried a second or so later until they succeed: what the audit's own
//!   recommendation asks for, so no waste; the truth counts the retries.
//! - [`Workload::retrying_through_outages`]: downloads answered 503 or 429
//!   a dozen times or more in a row, retried at a fixed delay slower than the
//!   duplicate window (2.5 to 10 s): as regular as a poller, and no waste either.

use super::workload::{us, Pattern, SimSource, Via, Workload};
use callmeter_model::{list_pages, Operation};

impl Workload {
    /// A client that sends every request twice within 1.5 s: `actions` reads,
    /// stats and listings under `{root}/out` and uploads into `{root}/in`, at
    /// random moments at least 5 s apart.
    pub fn duplicate_client(&mut self, root: &str, actions: usize, from_secs: f64, until_secs: f64) -> SimSource {
        let src = self.source(Via::Rest);
        let page_size = self.page_size();
        let mut paths = Vec::new();
        let mean_gap = ((until_secs - from_secs) / actions.max(1) as f64).max(6.0);
        let mut t = from_secs;
        let out_folder = format!("{root}/out");
        for a in 0..actions {
            // Poisson: exponential gaps, at least 5 s.
            t += 5.0 - (mean_gap - 5.0) * (1.0 - self.rng().unit()).ln();
            if t >= until_secs {
                break;
            }
            let mut at = us(t);
            let file = format!("{root}/out/report-{}.csv", self.rng().int(0, 19));
            // Each request as (operation, path, cursor, result count).
            let requests: Vec<(Operation, String, Option<String>, Option<u64>)> = match self.rng().int(0, 3) {
                0 => vec![(Operation::Read, file, None, None)],
                1 => vec![(Operation::Stat, file, None, None)],
                2 => {
                    self.listings += 1;
                    let entries = self.rng().int(0, 2 * page_size);
                    (0..list_pages(entries, page_size))
                        .map(|i| {
                            let cursor = (i > 0).then(|| format!("c{}p{}", self.listings, i));
                            let rc = entries.saturating_sub(i * page_size).min(page_size);
                            (Operation::List, out_folder.clone(), cursor, Some(rc))
                        })
                        .collect()
                }
                _ => {
                    let up = format!("{root}/in/upload-{a}.csv");
                    vec![(Operation::Write, up.clone(), None, None), (Operation::Write, up, None, None)]
                }
            };
            for (op, path, cursor, rc) in requests {
                self.call(&src, at, op, &path, None, cursor.clone(), rc);
                at += us(self.rng().range(0.05, 1.5));
                self.call(&src, at, op, &path, None, cursor, rc);
                paths.push(path);
                at += us(self.rng().range(0.3, 1.0));
            }
        }
        let note = format!("{} requests each sent twice", paths.len());
        self.patterns.push(Pattern::Duplicates { source: src.key(), paths, note });
        src
    }

    /// A client stuck in a fixed-delay loop: it fetches each of `files` files
    /// (read, or now and then stat) 3 to 5 times, `delay_secs` apart (the
    /// same delay all along, give or take 2 %), the files some seconds apart.
    pub fn fixed_delay_loops(
        &mut self,
        root: &str,
        files: usize,
        delay_secs: f64,
        from_secs: f64,
        until_secs: f64,
    ) -> SimSource {
        let src = self.source(Via::Rest);
        let mut paths = Vec::new();
        let mut t = from_secs;
        for k in 0..files {
            if t >= until_secs {
                break;
            }
            let path = format!("{root}/file-{k:04}.csv");
            let op = if self.rng().chance(0.2) { Operation::Stat } else { Operation::Read };
            let times = self.rng().int(3, 5);
            let mut at = t;
            for i in 0..times {
                self.call(&src, us(at), op, &path, None, None, None);
                if i > 0 {
                    paths.push(path.clone());
                }
                at += delay_secs * (1.0 + self.rng().range(-0.02, 0.02));
            }
            t = at + self.rng().range(3.0, 60.0);
        }
        let note = format!("each file fetched 3 to 5 times, {delay_secs:.2} s apart");
        self.patterns.push(Pattern::Duplicates { source: src.key(), paths, note });
        src
    }

    /// A client downloading `downloads` files one after another at random
    /// moments at least 10 s apart: about half of them are answered 503 or 429
    /// first (once or twice), and retried 0.3 to 1.9 s later until they
    /// succeed. Not waste: the truth counts the retries.
    pub fn retrying_client(&mut self, root: &str, downloads: usize, from_secs: f64, until_secs: f64) -> SimSource {
        let src = self.source(Via::Rest);
        let mut retries = 0;
        let mean_gap = ((until_secs - from_secs) / downloads.max(1) as f64).max(11.0);
        let mut t = from_secs;
        for k in 0..downloads {
            // Poisson: exponential gaps, at least 10 s.
            t += 10.0 - (mean_gap - 10.0) * (1.0 - self.rng().unit()).ln();
            if t >= until_secs {
                break;
            }
            let mut at = t;
            let path = format!("{root}/export-{k:04}.csv");
            let failures = if self.rng().chance(0.5) { self.rng().int(1, 2) } else { 0 };
            for _ in 0..failures {
                let status = *self.rng().pick(&[503, 429]);
                self.call_answered(&src, us(at), Operation::Read, &path, status);
                at += self.rng().range(0.3, 1.9);
                retries += 1;
            }
            self.call_answered(&src, us(at), Operation::Read, &path, 200);
        }
        self.retries_after_errors += retries;
        self.retrying_clients.push(src.key());
        src
    }

    /// A client that downloads a file now and then through an outage: each of
    /// `outages` downloads is answered 503 (or 429) 12 to 30 times in a row and
    /// retried at a fixed delay of 2.5 to 10 s (the same all along, give or
    /// take 2 %), then answered 200; the downloads 10 to 60 minutes apart.
    /// Not waste, however regular: the truth counts the retries.
    pub fn retrying_through_outages(
        &mut self,
        root: &str,
        outages: usize,
        from_secs: f64,
        until_secs: f64,
    ) -> SimSource {
        let src = self.source(Via::Rest);
        let delay = self.rng().range(2.5, 10.0);
        let status = *self.rng().pick(&[503, 429]);
        let mut retries = 0;
        let mut t = from_secs;
        for k in 0..outages {
            t += self.rng().range(600.0, 3_600.0);
            if t >= until_secs {
                break;
            }
            let path = format!("{root}/export-{k:04}.csv");
            let mut at = t;
            for _ in 0..self.rng().int(12, 30) {
                self.call_answered(&src, us(at), Operation::Read, &path, status);
                at += delay * (1.0 + self.rng().range(-0.02, 0.02));
                retries += 1;
            }
            self.call_answered(&src, us(at), Operation::Read, &path, 200);
            t = at;
        }
        self.retries_after_errors += retries;
        self.retrying_clients.push(src.key());
        src
    }
}
