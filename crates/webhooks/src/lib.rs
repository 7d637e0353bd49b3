//! Webhook delivery (DESIGN §7): what the server sends for each outbox row,
//! how it signs it, when it tries again, and where it refuses to send.
//!
//! The store records changes and keeps the outbox (`callmeter-store`); this
//! crate sends it. It sits between the store and the server: the server
//! starts a [`DeliveryEngine`] over its store and checks new subscriptions
//! with [`check_target`] and [`check_headers`].
//!
//! # Layout
//!
//! - `clock.rs`: the [`Clock`] every retry decision reads ([`TestClock`] in tests).
//! - `signing.rs`: Standard Webhooks secrets and signatures.
//! - `payload.rs`: the JSON body of a delivery.
//! - `schedule.rs`: the retry schedule, jitter and `Retry-After`.
//! - `target.rs`: refused addresses, checked at subscription and at connect.
//! - `headers.rs`: which custom headers a subscription may add.
//! - `http1.rs`: one HTTP/1.1 exchange: the request written whole, the answer read by its framing, bounded.
//! - `connections.rs`: kept HTTP/1.1 connections, each used by one attempt at a time.
//! - `sender.rs`: one attempt over HTTP: headers, timeout, no redirects, bounded answer.
//! - `admission.rs`: the rows the engine holds, by target and account, and the room a claim has.
//! - `lanes.rs`: claimed rows queued by target, and the count of workers sending each queue.
//! - `stats.rs`: the engine's counters and gauges, for `/metrics`.
//! - `engine.rs`: the loop that claims due rows, sends them with per-target limits, and completes them;
//!   `engine/next_step.rs`: what follows an attempt (delivered, retried, held, given up, disabled);
//!   `engine/pace.rs`: one claim and one completion write per gather at most.

mod admission;
mod clock;
mod connections;
mod engine;
pub mod fuzzing;
mod headers;
mod http1;
mod lanes;
mod payload;
pub mod schedule;
mod sender;
pub mod signing;
mod stats;
mod target;

pub use clock::{Clock, SystemClock, TestClock};
pub use engine::{DeliveryEngine, EngineOptions, GATHER};
pub use headers::{check_headers, MAX_HEADERS, MAX_HEADER_NAME_BYTES, MAX_HEADER_VALUE_BYTES, RESERVED_HEADERS};
pub use payload::body;
pub use stats::DeliveryStats;
pub use target::{check_target, parse_target, refused_ip, target_of};

/// What can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// A target URL that is not allowed (its form, or its address).
    #[error("{0}")]
    Target(String),
    /// A custom header that is not allowed.
    #[error("{0}")]
    Header(String),
    /// The HTTP client could not be made.
    #[error("http client: {0}")]
    Client(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] callmeter_store::StoreError),
}
