//! The route handlers, one file per group of routes; `api.rs` wires them
//! into the router and holds what they share.

pub(crate) mod accounts;
pub(crate) mod adjustments;
pub(crate) mod admin;
pub(crate) mod alerts;
pub(crate) mod audits;
pub(crate) mod calls;
pub(crate) mod deliveries;
pub(crate) mod events;
pub(crate) mod tokens;
pub(crate) mod usage;
pub(crate) mod webhooks;
