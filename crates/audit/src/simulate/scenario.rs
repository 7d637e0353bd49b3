//! A random mix of every kind of traffic for one seed: the workloads the
//! audit is measured on.

use super::rng::SimRng;
use super::workload::{PollerSpec, Simulation, Upload, Via, Workload};
use callmeter_model::Operation;
use chrono::{DateTime, TimeZone, Utc};

/// The ranges a scenario's traffic is drawn from.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioShape {
    /// The account.
    pub account: String,
    /// When the workload starts.
    pub start: DateTime<Utc>,
    /// How long it runs, in hours.
    pub hours: f64,
    /// Page sizes to pick one from.
    pub page_sizes: Vec<u64>,
    /// Pollers: (fewest, most).
    pub pollers: (u64, u64),
    /// Upload sources: (fewest, most).
    pub uploaders: (u64, u64),
    /// Clients that double their requests: (fewest, most).
    pub duplicate_clients: (u64, u64),
    /// People browsing: (fewest, most).
    pub people: (u64, u64),
    /// REST pollers of a folder a partner uploads into over SFTP: (fewest, most).
    pub sftp_fed_pollers: (u64, u64),
    /// Clients stuck in fixed-delay loops, fetching each file 3 to 5 times: (fewest, most).
    pub loopers: (u64, u64),
    /// Clients retrying downloads answered 503 or 429 (no waste): (fewest, most).
    pub retrying_clients: (u64, u64),
    /// Clients retrying through outages at a fixed delay of 2.5 to 10 s (no waste): (fewest, most).
    pub outage_retriers: (u64, u64),
    /// Most listing calls one upload batch may make: keeps a scenario's size
    /// reasonable when a large batch meets a large folder (the folder is made smaller).
    pub max_listing_calls_per_batch: u64,
}

impl Default for ScenarioShape {
    fn default() -> Self {
        ScenarioShape {
            account: "acme".into(),
            start: Utc.with_ymd_and_hms(2026, 11, 2, 0, 0, 0).single().unwrap_or_default(),
            hours: 48.0,
            page_sizes: vec![2_500, 10_000],
            pollers: (2, 5),
            uploaders: (1, 2),
            duplicate_clients: (1, 2),
            people: (2, 5),
            sftp_fed_pollers: (1, 1),
            loopers: (1, 2),
            retrying_clients: (1, 1),
            outage_retriers: (1, 1),
            max_listing_calls_per_batch: 6_000,
        }
    }
}

/// The workload of `seed` drawn from `shape`.
pub fn scenario(seed: u64, shape: &ScenarioShape) -> Simulation {
    let page_size = *SimRng::new(seed).pick(&shape.page_sizes);
    let mut w = Workload::new(&shape.account, shape.start, page_size, seed.wrapping_add(1));
    let end = shape.hours * 3_600.0;

    for p in 0..w.rng().int(shape.pollers.0, shape.pollers.1) {
        let period = *w.rng().pick(&[1.0, 2.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1_800.0, 3_600.0]);
        let fast = period <= 5.0;
        // Fast pollers run for a few hundred to 1,500 polls; slow ones all along.
        let from = if fast { w.rng().range(0.0, end * 0.7) } else { w.rng().range(0.0, 3_600.0) };
        let mut until = if fast { from + period * w.rng().range(200.0, 1_500.0) } else { end };
        let mut pauses = Vec::new();
        for _ in 0..w.rng().int(0, 2) {
            let start = w.rng().range(from, until);
            let len = w.rng().range(2.0, 6.0) * 3_600.0;
            pauses.push((start, len));
            if fast {
                until += len;
            }
        }
        let operation =
            *w.rng().pick(&[Operation::List, Operation::List, Operation::List, Operation::Stat, Operation::Read]);
        let folder = format!("/partners/p{p}/outbox");
        let path = if operation == Operation::List { folder.clone() } else { format!("{folder}/status.json") };
        let entries = if fast { w.rng().int(0, page_size) } else { w.rng().int(0, 30_000) };
        let via = *w.rng().pick(&[Via::Rest, Via::Rest, Via::Sftp, Via::Mount, Via::Ipaas]);
        let spec = PollerSpec {
            operation,
            path: path.clone(),
            period_secs: period,
            jitter: w.rng().range(0.0, 0.2),
            missed: w.rng().range(0.0, 0.1),
            pauses,
            from_secs: from,
            until_secs: until.min(end),
            entries,
            via,
        };
        w.poller(&spec);
        if w.rng().chance(0.5) {
            let n = w.rng().int(3, 20) as usize;
            // The partner writes the polled file itself, or new files into the folder.
            let target = if operation == Operation::List { folder } else { path };
            w.changes(&target, n, spec.from_secs, spec.until_secs);
        }
    }

    for u in 0..w.rng().int(shape.uploaders.0, shape.uploaders.1) {
        let mut batches = Vec::new();
        for _ in 0..w.rng().int(1, 2) {
            let uploads = w.rng().log_range(10.0, 2_000.0).round() as u64;
            let max_pages = (shape.max_listing_calls_per_batch / uploads).max(1);
            let max_entries = (max_pages * page_size).saturating_sub(uploads);
            let entries = w.rng().int(0, 200_000).min(max_entries);
            batches.push((uploads, entries));
        }
        let from = w.rng().range(0.0, end * 0.6);
        let style = if w.rng().chance(0.7) { Upload::BeginAndFinish } else { Upload::SingleRequest };
        w.upload_batches(&format!("/uploads/u{u}/in"), &batches, from, style);
    }

    for d in 0..w.rng().int(shape.duplicate_clients.0, shape.duplicate_clients.1) {
        let actions = w.rng().int(40, 150) as usize;
        let from = w.rng().range(0.0, end * 0.5);
        w.duplicate_client(&format!("/sync/d{d}"), actions, from, end);
    }

    for person in 0..w.rng().int(shape.people.0, shape.people.1) {
        let folders: Vec<(String, u64)> =
            (0..w.rng().int(3, 6)).map(|f| (format!("/team/t{person}/projects/f{f}"), w.rng().int(5, 3_000))).collect();
        let visits = w.rng().int(10, 40) as usize;
        w.person(&folders, visits, 0.0, end);
    }

    let actions = w.rng().int(200, 600) as usize;
    w.mount_traffic("/mnt/share", actions, 0.0, end);
    let files = w.rng().int(20, 80) as usize;
    w.ipaas_traffic("/ipaas", files, 0.0, end);

    // Drawn after everything above, so that the traffic above is what each seed always gave.
    for p in 0..w.rng().int(shape.sftp_fed_pollers.0, shape.sftp_fed_pollers.1) {
        // In logs, the polls are in the HTTP server's log and the uploads in the SFTP server's.
        let folder = format!("/partners/sftp{p}/inbox");
        let spec = PollerSpec {
            operation: Operation::List,
            path: folder.clone(),
            period_secs: *w.rng().pick(&[30.0, 60.0, 120.0, 300.0]),
            jitter: w.rng().range(0.0, 0.2),
            missed: w.rng().range(0.0, 0.1),
            pauses: Vec::new(),
            from_secs: w.rng().range(0.0, 3_600.0),
            until_secs: end,
            entries: w.rng().int(0, 2 * page_size),
            via: Via::Rest,
        };
        w.poller(&spec);
        let uploads = w.rng().int(20, 200) as usize;
        w.changes(&folder, uploads, spec.from_secs, end);
    }
    for l in 0..w.rng().int(shape.loopers.0, shape.loopers.1) {
        let delay = w.rng().range(0.2, 1.9);
        let files = w.rng().int(20, 80) as usize;
        let from = w.rng().range(0.0, end * 0.5);
        w.fixed_delay_loops(&format!("/loops/l{l}/out"), files, delay, from, end);
    }
    for r in 0..w.rng().int(shape.retrying_clients.0, shape.retrying_clients.1) {
        let downloads = w.rng().int(30, 120) as usize;
        w.retrying_client(&format!("/exports/r{r}"), downloads, 0.0, end);
    }
    // Drawn last, so that the traffic above is what each seed gave before it.
    for o in 0..w.rng().int(shape.outage_retriers.0, shape.outage_retriers.1) {
        let outages = w.rng().int(5, 20) as usize;
        w.retrying_through_outages(&format!("/exports/o{o}"), outages, 0.0, end);
    }
    w.build()
}
