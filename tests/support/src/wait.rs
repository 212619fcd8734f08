//! Bounded waiting for a condition that another task makes true.

use std::time::Duration;

/// Polls `cond` every 5 ms until it holds; panics naming `what` after 5 s.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("timed out waiting for: {what}");
}
