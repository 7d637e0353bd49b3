//! A seeded, deterministic workload generator for one account: labelled
//! traffic with known waste, to measure the audit against (and to demo it).
//!
//! - [`workload`]: the generators, one per kind of traffic (pollers, the
//!   changes they may see, upload batches with a listing after each upload,
//!   people browsing, mount and iPaaS traffic), and the truth computed from
//!   the calls they made.
//! - [`repeaters`]: clients that repeat requests: each sent twice, fixed-delay
//!   loops (waste), retries after 503 and 429 (not waste).
//! - [`scenario`]: a random mix of all of them for a seed.
//! - [`truth`]: the truth, and scoring findings against it.
//! - [`render`]: the same calls as canonical NDJSON, a Combined access log, a
//!   vsftpd log and an OpenSSH sftp-server log, which the formats crate reads back.
//! - [`rng`]: the seeded generator.

pub mod render;
pub mod repeaters;
pub mod rng;
pub mod scenario;
pub mod truth;
pub mod workload;

pub use render::{write_combined, write_ndjson, write_sftp, write_vsftpd};
pub use rng::SimRng;
pub use scenario::{scenario, ScenarioShape};
pub use truth::{KindScore, Truth, TruthPattern};
pub use workload::{PollerSpec, SimSource, Simulation, Upload, Via, Workload};
