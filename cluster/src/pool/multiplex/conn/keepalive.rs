//! Keep-alive bookkeeping of one connection (pure: the reader feeds it
//! reads and timer ticks).

use std::time::Duration;
use tokio::time::Instant;

/// Keep-alive bookkeeping of one connection: a ping after `interval` with
/// nothing read, another each `interval` it stays unanswered, and death
/// when `max_misses` pings in a row went unanswered. Anything read counts
/// as an answer.
#[derive(Debug)]
pub(super) struct Keepalive {
    interval: Option<Duration>,
    max_misses: u32,
    last_read: Instant,
    /// When the ping still unanswered was sent.
    ping_sent: Option<Instant>,
    misses: u32,
}

#[derive(Debug, PartialEq, Eq)]
pub(super) enum Beat {
    Wait,
    Ping,
    Dead,
}

impl Keepalive {
    pub(super) fn new(interval: Option<Duration>, max_misses: u32, now: Instant) -> Keepalive {
        Keepalive {
            interval,
            max_misses: max_misses.max(1),
            last_read: now,
            ping_sent: None,
            misses: 0,
        }
    }

    pub(super) fn on_read(&mut self, now: Instant) {
        self.last_read = now;
        self.ping_sent = None;
        self.misses = 0;
    }

    /// When to look again; `None` without keep-alive.
    pub(super) fn deadline(&self) -> Option<Instant> {
        Some(self.ping_sent.unwrap_or(self.last_read) + self.interval?)
    }

    pub(super) fn on_timer(&mut self, now: Instant) -> Beat {
        let Some(due) = self.deadline() else {
            return Beat::Wait;
        };
        if now < due {
            return Beat::Wait;
        }
        if self.ping_sent.is_some() {
            self.misses += 1;
            if self.misses >= self.max_misses {
                return Beat::Dead;
            }
        }
        self.ping_sent = Some(now);
        Beat::Ping
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn keepalive_pings_when_idle_and_dies_after_misses() {
        let interval = Duration::from_secs(10);
        let t0 = Instant::now();
        let mut k = Keepalive::new(Some(interval), 3, t0);
        assert_eq!(k.deadline(), Some(t0 + interval));
        assert_eq!(k.on_timer(t0 + Duration::from_secs(5)), Beat::Wait);
        // Idle for one interval: first ping.
        let t1 = t0 + interval;
        assert_eq!(k.on_timer(t1), Beat::Ping);
        assert_eq!(k.deadline(), Some(t1 + interval));
        // Unanswered: second and third ping, then dead.
        assert_eq!(k.on_timer(t1 + interval), Beat::Ping);
        assert_eq!(k.on_timer(t1 + interval * 2), Beat::Ping);
        assert_eq!(k.on_timer(t1 + interval * 3), Beat::Dead);
    }

    #[tokio::test(start_paused = true)]
    async fn keepalive_reads_reset_the_count() {
        let interval = Duration::from_secs(10);
        let t0 = Instant::now();
        let mut k = Keepalive::new(Some(interval), 2, t0);
        assert_eq!(k.on_timer(t0 + interval), Beat::Ping);
        k.on_read(t0 + interval + Duration::from_secs(1));
        // Not idle yet at the old deadline.
        assert_eq!(k.on_timer(t0 + interval * 2), Beat::Wait);
        assert_eq!(
            k.on_timer(t0 + interval * 2 + Duration::from_secs(1)),
            Beat::Ping
        );
        assert_eq!(
            k.on_timer(t0 + interval * 3 + Duration::from_secs(1)),
            Beat::Ping
        );
        assert_eq!(
            k.on_timer(t0 + interval * 4 + Duration::from_secs(1)),
            Beat::Dead
        );
        let mut off = Keepalive::new(None, 2, t0);
        assert_eq!(off.deadline(), None);
        assert_eq!(off.on_timer(t0 + interval * 100), Beat::Wait);
    }
}
