//! What the admin crate's tests share: a fake [`AdminSource`] with known
//! numbers, and a small HTTP/1.1 client over 127.0.0.1.

#![allow(dead_code, unused_imports, unreachable_pub)] // each test binary uses a part

pub mod fake;
pub mod http;

pub use fake::FakeSource;
pub use http::{Reply, get, request};

use meshgate_admin::{AdminServer, AdminSource, bind};
use std::sync::Arc;

/// An admin server on 127.0.0.1, port 0, serving `source`.
pub async fn start(source: Arc<FakeSource>) -> AdminServer {
    let source: Arc<dyn AdminSource> = source;
    bind("127.0.0.1:0".parse().expect("an address"), source)
        .await
        .expect("bind the admin server on 127.0.0.1:0")
}
