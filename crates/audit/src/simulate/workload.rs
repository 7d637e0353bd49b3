//! A workload built pattern by pattern: each generator adds the calls of one
//! source and, for waste, what it records to compute the truth from. The
//! truth is computed here from the generated calls themselves (the changes
//! each poll really saw, the listings each batch really made), not by the
//! audit's code.

use super::rng::SimRng;
use super::truth::{Truth, TruthPattern};
use crate::paths::common_path;
use crate::report::FindingKind;
use crate::source::SourceKey;
use callmeter_model::{list_pages, CallEvent, Direction, Interface, Operation};
use chrono::{DateTime, Utc};

/// How a simulated source reaches the platform; each gives a distinct identity
/// (API key or user), client address and user agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// A script on the REST API with an API key and an SDK user agent.
    Rest,
    /// An SFTP user.
    Sftp,
    /// A remote-server mount, with an API key and an integration name.
    Mount,
    /// An iPaaS integration, with an API key and an integration name.
    Ipaas,
    /// A person in the web interface (a browser user agent).
    Web,
}

/// A generated source.
#[derive(Debug, Clone, PartialEq)]
pub struct SimSource {
    /// Its API key, if it uses one.
    pub api_key: Option<String>,
    /// Its user, if it has no API key.
    pub user: Option<String>,
    /// Its address: distinct per source, so that logs without keys or users still tell sources apart.
    pub client_ip: String,
    /// Its user agent, distinct per source when it has one.
    pub user_agent: Option<String>,
    /// Its interface.
    pub interface: Interface,
    /// Its integration name (mount, iPaaS).
    pub integration: Option<String>,
}

impl SimSource {
    /// Its identity, as the audit derives it from the full events.
    pub fn key(&self) -> SourceKey {
        match (&self.api_key, &self.user) {
            (Some(k), _) => SourceKey::ApiKey { api_key: k.clone() },
            (None, Some(u)) => SourceKey::User { user: u.clone() },
            (None, None) => {
                SourceKey::Client { client_ip: Some(self.client_ip.clone()), user_agent: self.user_agent.clone() }
            }
        }
    }
}

/// How an upload reaches the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upload {
    /// One write call (the platform's example counts uploads this way).
    SingleRequest,
    /// Begin and finish: two writes of one path, a second or so apart (the REST API).
    BeginAndFinish,
}

/// A poller to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct PollerSpec {
    /// `list`, `stat` or `read`.
    pub operation: Operation,
    /// The polled path (a folder for `list`, a file otherwise).
    pub path: String,
    /// The period, in seconds.
    pub period_secs: f64,
    /// Each interval is the period × (1 ± up to this), e.g. 0.2 for ±20 %.
    pub jitter: f64,
    /// Share of polls skipped (missed), e.g. 0.1.
    pub missed: f64,
    /// Pauses: (start, length), in seconds from the workload's start.
    pub pauses: Vec<(f64, f64)>,
    /// When it starts and stops, in seconds from the workload's start.
    pub from_secs: f64,
    /// When it stops.
    pub until_secs: f64,
    /// Entries in the folder (listings take `ceil(entries / page size)` pages).
    pub entries: u64,
    /// How it connects.
    pub via: Via,
}

/// A generated workload: the calls, in time order, and the truth.
#[derive(Debug, Clone)]
pub struct Simulation {
    /// Every call, in time order, ids `sim-1`, `sim-2`, …
    pub events: Vec<CallEvent>,
    /// What they contain.
    pub truth: Truth,
}

/// A waste pattern as generated, to compute its truth from.
#[derive(Debug)]
pub(super) enum Pattern {
    Poller {
        source: SourceKey,
        path: String,
        polls: Vec<(i64, u64)>,
        note: String,
    },
    Batches {
        source: SourceKey,
        folder: String,
        listings: Vec<Vec<u64>>,
        note: String,
    },
    /// One path per duplicate sent.
    Duplicates {
        source: SourceKey,
        paths: Vec<String>,
        note: String,
    },
}

/// The workload being built.
#[derive(Debug)]
pub struct Workload {
    account: String,
    start: DateTime<Utc>,
    page_size: u64,
    rng: SimRng,
    events: Vec<CallEvent>,
    pub(super) patterns: Vec<Pattern>,
    people: Vec<SourceKey>,
    /// Sources that retry after failed answers, and how many retries they sent.
    pub(super) retrying_clients: Vec<SourceKey>,
    pub(super) retries_after_errors: u64,
    sources: u32,
    pub(super) listings: u64,
}

/// Seconds to the microseconds calls are placed at.
pub(super) fn us(secs: f64) -> i64 {
    (secs * 1e6).round() as i64
}

impl Workload {
    /// An empty workload for `account`, starting at `start`, listing `page_size` entries a page.
    pub fn new(account: &str, start: DateTime<Utc>, page_size: u64, seed: u64) -> Workload {
        Workload {
            account: account.to_owned(),
            start,
            page_size: page_size.max(1),
            rng: SimRng::new(seed),
            events: Vec::new(),
            patterns: Vec::new(),
            people: Vec::new(),
            retrying_clients: Vec::new(),
            retries_after_errors: 0,
            sources: 0,
            listings: 0,
        }
    }

    /// The generator, for callers choosing parameters.
    pub fn rng(&mut self) -> &mut SimRng {
        &mut self.rng
    }

    /// The page size listings are made with.
    pub fn page_size(&self) -> u64 {
        self.page_size
    }

    /// A new source reaching the platform `via`.
    pub fn source(&mut self, via: Via) -> SimSource {
        self.sources += 1;
        let n = self.sources;
        let client_ip = format!("10.{}.{}.{}", 1 + n / 62_500, (n / 250) % 250, 1 + n % 250);
        let s = |api_key: Option<String>, user: Option<String>, ua: Option<String>, interface, integration| SimSource {
            api_key,
            user,
            client_ip: client_ip.clone(),
            user_agent: ua,
            interface,
            integration,
        };
        match via {
            Via::Rest => {
                s(Some(format!("key-{n:04}")), None, Some(format!("files-sdk-python/1.{n}")), Interface::Sdk, None)
            }
            Via::Sftp => s(None, Some(format!("sftp{n:04}")), None, Interface::Sftp, None),
            Via::Mount => s(
                Some(format!("mount-{n:04}")),
                None,
                Some(format!("rclone/v1.{n}")),
                Interface::Mount,
                Some(format!("nas-{n}")),
            ),
            Via::Ipaas => s(
                Some(format!("ipaas-{n:04}")),
                None,
                Some(format!("Zapier/{n}.0")),
                Interface::Ipaas,
                Some(format!("zap-{n}")),
            ),
            Via::Web => s(
                None,
                Some(format!("person{n:04}")),
                Some(format!("Mozilla/5.0 (X11; Linux x86_64; person {n}) Firefox/128.0")),
                Interface::Web,
                None,
            ),
        }
    }

    fn method(interface: Interface, op: Operation) -> &'static str {
        if interface == Interface::Sftp {
            return match op {
                Operation::List => "opendir",
                Operation::Stat => "stat",
                Operation::Read | Operation::Write | Operation::Copy => "open",
                Operation::Delete => "remove",
                Operation::Move => "rename",
                Operation::Mkdir => "mkdir",
                Operation::Login => "session",
                Operation::Other => "other",
            };
        }
        match op {
            Operation::List | Operation::Stat | Operation::Read | Operation::Other => "GET",
            Operation::Delete => "DELETE",
            _ => "POST",
        }
    }

    /// Adds one call at `t` µs from the start, answered with success.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn call(
        &mut self,
        src: &SimSource,
        t: i64,
        op: Operation,
        path: &str,
        destination: Option<&str>,
        cursor: Option<String>,
        result_count: Option<u64>,
    ) {
        let time = self.start + chrono::Duration::microseconds(t);
        let read = op.direction() == Direction::Read;
        self.events.push(CallEvent {
            id: String::new(),
            account: self.account.clone(),
            time,
            interface: src.interface,
            operation: op,
            method: Some(Self::method(src.interface, op).to_owned()),
            path: Some(path.to_owned()),
            destination: destination.map(str::to_owned),
            status: Some(if src.interface == Interface::Sftp { 0 } else { 200 }),
            api_key: src.api_key.clone(),
            user: src.user.clone(),
            client_ip: Some(src.client_ip.clone()),
            user_agent: src.user_agent.clone(),
            integration: src.integration.clone(),
            cursor,
            result_count,
            bytes: Some(if read { 2_048 } else { 4_096 }),
            duration_ms: Some(12.0),
        });
    }

    /// Adds one call of `op` on `path` at `t` µs from the start, answered `status`.
    pub(super) fn call_answered(&mut self, src: &SimSource, t: i64, op: Operation, path: &str, status: i64) {
        self.call(src, t, op, path, None, None, None);
        if let Some(e) = self.events.last_mut() {
            e.status = Some(status);
        }
    }

    /// A listing of `entries` entries from `t` µs, one call per page; returns its calls and its end.
    fn listing(&mut self, src: &SimSource, t: i64, path: &str, entries: u64) -> (u64, i64) {
        self.listings += 1;
        let pages = list_pages(entries, self.page_size);
        let mut at = t;
        for i in 0..pages {
            let left = entries.saturating_sub(i * self.page_size);
            let cursor = (i > 0).then(|| format!("c{}p{}", self.listings, i));
            self.call(src, at, Operation::List, path, None, cursor, Some(left.min(self.page_size)));
            at += us(self.rng.range(0.05, 0.2));
        }
        (pages, at)
    }

    /// A poller; returns its source.
    pub fn poller(&mut self, spec: &PollerSpec) -> SimSource {
        let src = self.source(spec.via);
        let mut polls = Vec::new();
        let mut t = spec.from_secs + self.rng.range(0.0, spec.period_secs);
        let mut missed = 0;
        while t < spec.until_secs {
            if let Some((start, len)) = spec.pauses.iter().find(|(s, l)| t >= *s && t < s + l) {
                t = start + len + self.rng.range(0.0, spec.period_secs);
                continue;
            }
            if self.rng.chance(spec.missed) {
                missed += 1;
            } else {
                let at = us(t);
                let cost = match spec.operation {
                    Operation::List => self.listing(&src, at, &spec.path, spec.entries).0,
                    op => {
                        self.call(&src, at, op, &spec.path, None, None, None);
                        1
                    }
                };
                polls.push((at, cost));
            }
            t += spec.period_secs * (1.0 + self.rng.range(-spec.jitter, spec.jitter));
        }
        let note = format!(
            "{} {} every {} s, jitter ±{:.0} %, {} missed of {}, {} pauses",
            spec.operation,
            spec.path,
            spec.period_secs,
            spec.jitter * 100.0,
            missed,
            missed + polls.len(),
            spec.pauses.len()
        );
        self.patterns.push(Pattern::Poller { source: src.key(), path: spec.path.clone(), polls, note });
        src
    }

    /// Another source (a partner over SFTP) writing `count` files into `folder` at random moments.
    pub fn changes(&mut self, folder: &str, count: usize, from_secs: f64, until_secs: f64) -> SimSource {
        let src = self.source(Via::Sftp);
        for k in 0..count {
            let t = us(self.rng.range(from_secs, until_secs));
            let path = format!("{}/incoming-{k}.csv", folder.trim_end_matches('/'));
            self.call(&src, t, Operation::Write, &path, None, None, None);
        }
        src
    }

    /// Upload batches into `folder`, listing it after each upload: `batches` is
    /// (uploads, entries before the batch); batches start at `from_secs` and
    /// are hours apart.
    pub fn upload_batches(&mut self, folder: &str, batches: &[(u64, u64)], from_secs: f64, style: Upload) -> SimSource {
        let src = self.source(Via::Rest);
        let mut t = us(from_secs);
        let mut costs = Vec::new();
        for (b, (uploads, entries)) in batches.iter().enumerate() {
            let mut listing_costs = Vec::new();
            let mut entries = *entries;
            for i in 0..*uploads {
                let path = format!("{folder}/b{b}-file{i:05}.csv");
                self.call(&src, t, Operation::Write, &path, None, None, None);
                if style == Upload::BeginAndFinish {
                    t += us(self.rng.range(0.2, 1.5));
                    self.call(&src, t, Operation::Write, &path, None, None, None);
                }
                entries += 1;
                t += us(self.rng.range(0.2, 1.0));
                let (cost, end) = self.listing(&src, t, folder, entries);
                listing_costs.push(cost);
                t = end + us(self.rng.range(0.5, 20.0));
            }
            costs.push(listing_costs);
            t += us(self.rng.range(2.0, 5.0) * 3_600.0);
        }
        let note = format!(
            "batches of {:?} uploads, listing after each at {} a page",
            batches.iter().map(|b| b.0).collect::<Vec<_>>(),
            self.page_size
        );
        self.patterns.push(Pattern::Batches { source: src.key(), folder: folder.to_owned(), listings: costs, note });
        src
    }

    /// A person in the web interface who keeps going back to the same few
    /// folders at irregular moments (gaps from 30 s to 3 h, log-uniform), now
    /// and then opening a file there.
    pub fn person(&mut self, folders: &[(String, u64)], visits: usize, from_secs: f64, until_secs: f64) -> SimSource {
        let src = self.source(Via::Web);
        for (folder, entries) in folders {
            let mut t = from_secs + self.rng.range(0.0, 3_600.0);
            for _ in 0..visits {
                if t >= until_secs {
                    break;
                }
                let (_, end) = self.listing(&src, us(t), folder, *entries);
                if self.rng.chance(0.3) {
                    let file = format!("{folder}/doc-{}.pdf", self.rng.int(0, 50));
                    let at = end + us(self.rng.range(3.0, 20.0));
                    self.call(&src, at, Operation::Read, &file, None, None, None);
                }
                t += self.rng.log_range(30.0, 3.0 * 3_600.0);
            }
        }
        self.people.push(src.key());
        src
    }

    /// A remote-server mount reading, checking and writing random files under
    /// `root` (300 of them) at random moments at least 3 s apart.
    pub fn mount_traffic(&mut self, root: &str, actions: usize, from_secs: f64, until_secs: f64) -> SimSource {
        let src = self.source(Via::Mount);
        let mean_gap = ((until_secs - from_secs) / actions.max(1) as f64).max(4.0);
        let mut t = from_secs;
        for _ in 0..actions {
            t += 3.0 + self.rng.range(0.0, 2.0 * (mean_gap - 3.0));
            if t >= until_secs {
                break;
            }
            let path = format!("{root}/dir{}/file{}.bin", self.rng.int(0, 9), self.rng.int(0, 29));
            let op = *self.rng.pick(&[Operation::Read, Operation::Read, Operation::Stat, Operation::Write]);
            self.call(&src, us(t), op, &path, None, None, None);
        }
        src
    }

    /// An iPaaS flow that picks up files in `{root}/inbox` now and then: reads
    /// each, copies it to `{root}/backup` and moves it to `{root}/archive`.
    pub fn ipaas_traffic(&mut self, root: &str, files: usize, from_secs: f64, until_secs: f64) -> SimSource {
        let src = self.source(Via::Ipaas);
        for k in 0..files {
            let t = us(self.rng.range(from_secs, until_secs));
            let name = format!("order-{k}.json");
            let inbox = format!("{root}/inbox/{name}");
            self.call(&src, t, Operation::Read, &inbox, None, None, None);
            let copy = format!("{root}/backup/{name}");
            self.call(&src, t + us(1.0), Operation::Copy, &inbox, Some(&copy), None, None);
            let archive = format!("{root}/archive/{name}");
            self.call(&src, t + us(2.5), Operation::Move, &inbox, Some(&archive), None, None);
        }
        src
    }

    /// The calls in time order with their ids, and the truth computed from them.
    pub fn build(mut self) -> Simulation {
        self.events.sort_by_key(|e| e.time);
        for (i, e) in self.events.iter_mut().enumerate() {
            e.id = format!("sim-{}", i + 1);
        }
        // Every change (write-direction call) as (time µs, path), destinations included.
        let mut changes: Vec<(i64, &str)> = Vec::new();
        for e in &self.events {
            if e.operation.direction() == Direction::Write {
                let t = (e.time - self.start).num_microseconds().unwrap_or(i64::MAX);
                changes.extend(e.path.as_deref().map(|p| (t, p)));
                changes.extend(e.destination.as_deref().map(|p| (t, p)));
            }
        }
        let mut patterns = Vec::new();
        for p in &self.patterns {
            let (kind, source, path, avoidable, note) = match p {
                Pattern::Poller { source, path, polls, note } => {
                    let prefix = format!("{}/", path.trim_end_matches('/'));
                    let mut times: Vec<i64> =
                        changes.iter().filter(|(_, c)| *c == path || c.starts_with(&prefix)).map(|(t, _)| *t).collect();
                    times.sort_unstable();
                    let saw_change = |a: i64, b: i64| {
                        let i = times.partition_point(|t| *t <= a);
                        times.get(i).is_some_and(|t| *t <= b)
                    };
                    let avoidable = polls.windows(2).filter(|w| !saw_change(w[0].0, w[1].0)).map(|w| w[1].1).sum();
                    (FindingKind::Polling, source, path.clone(), avoidable, note)
                }
                Pattern::Batches { source, folder, listings, note } => {
                    let avoidable = listings
                        .iter()
                        .filter(|l| l.len() >= 2)
                        .map(|l| l.iter().sum::<u64>() - l.last().copied().unwrap_or(0))
                        .sum();
                    (FindingKind::ListAfterWrite, source, folder.clone(), avoidable, note)
                }
                Pattern::Duplicates { source, paths, note } => {
                    let Some(first) = paths.first() else { continue };
                    let path = paths.iter().fold(first.clone(), |acc, p| common_path(&acc, p));
                    (FindingKind::DuplicateRequests, source, path, paths.len() as u64, note)
                }
            };
            if avoidable > 0 {
                patterns.push(TruthPattern {
                    kind,
                    source: source.clone(),
                    path,
                    avoidable_calls: avoidable,
                    note: note.clone(),
                });
            }
        }
        let truth = Truth {
            account: self.account,
            list_page_size: self.page_size,
            calls: self.events.len() as u64,
            patterns,
            people: self.people,
            retries_after_errors: self.retries_after_errors,
            retrying_clients: self.retrying_clients,
        };
        Simulation { events: self.events, truth }
    }
}
