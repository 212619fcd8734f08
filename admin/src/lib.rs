//! The admin HTTP API of meshgate, with MOSN's paths (`/api/v1/states`,
//! `/api/v1/config_dump`, `/api/v1/stats`, log level control) and a live
//! dashboard.
//!
//! It will serve whatever the gateway exposes through an `AdminSource`
//! trait defined here, and imports no gateway crate: the gateway implements
//! the trait, tests use a fake.
//!
//! Empty for now: the admin API lands with its own issue.
