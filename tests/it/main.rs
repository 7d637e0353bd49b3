//! Whole flows against real `callmeter serve` processes on ephemeral ports.
//! One test binary, so the suite links once.

mod harness;

mod admin;
mod alerts;
mod audit_cli;
mod audit_server;
mod auth;
mod bad_requests;
mod browser;
mod cli_output;
mod closed_period;
mod cloudevents_sdk;
mod crash;
mod dashboard;
mod dashboard_webhooks;
mod disk_full;
mod faults;
mod file_modes;
mod from_audit;
mod ids;
mod ingest;
mod limits;
mod logs;
mod odd_values;
mod operations;
mod webhook_crash;
mod webhook_metrics;
mod webhook_receiver;
mod webhooks;
