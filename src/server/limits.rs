//! A listener's own bounds on its downstream connections, kept out of the
//! accept loop and the driver so each reads as one call:
//!
//! - **max connections** (`extend_config.max_connections`): a listener at
//!   its limit accepts the next connection and closes it at once (better
//!   than leaving it in the kernel's backlog, where the client cannot
//!   tell a full gateway from a slow one); each refusal is counted and
//!   logged, at most once a second.
//! - **frame read timeout** (`extend_config.frame_read_timeout`, default
//!   15 s, MOSN's connection read timeout): once a frame's first byte has
//!   arrived, the whole frame must arrive within the bound, however
//!   slowly the bytes trickle in (slowloris). Past it the driver answers
//!   with the codec's error reply when the fixed header names a request,
//!   then closes.
//! - **GoAway** before a graceful close (drain, idle timeout) where the
//!   protocol has one ([`meshgate_codecs::FrameCodec::goaway`]); bolt's is
//!   MOSN-only, so it is sent only with `enable_bolt_goaway`.

use crate::config::ListenerLimits;
use meshgate_codecs::{CodecError, Frame, FrameCodec};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// Live connections of one listener, against its `max_connections`.
#[derive(Debug, Default)]
pub(crate) struct ConnectionSlots {
    open: AtomicUsize,
    refused_since_log: AtomicU64,
    /// Milliseconds after `epoch` of the last refusal log line.
    last_log_ms: AtomicU64,
    epoch: std::sync::OnceLock<Instant>,
}

impl ConnectionSlots {
    /// Refusal log lines are at most this frequent.
    const LOG_EVERY: Duration = Duration::from_secs(1);

    /// A slot for one more connection, or `None` at `max` (the caller
    /// closes the connection). `None` limit: always a slot.
    pub(crate) fn admit(self: &Arc<Self>, max: Option<usize>) -> Option<ConnectionSlot> {
        let max = max.unwrap_or(usize::MAX);
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| ConnectionSlot(Arc::clone(self)))
    }

    /// Connections held now.
    #[cfg(test)]
    pub(crate) fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// Records a refusal; returns how many refusals the caller should
    /// report now (0: stay quiet, a line went out less than a second ago).
    pub(crate) fn refused(&self) -> u64 {
        let epoch = *self.epoch.get_or_init(Instant::now);
        // +1: 0 stands for "never logged".
        let now = u64::try_from(epoch.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        self.refused_at(now)
    }

    /// [`ConnectionSlots::refused`] at `now` (milliseconds, never 0).
    fn refused_at(&self, now: u64) -> u64 {
        self.refused_since_log.fetch_add(1, Ordering::Relaxed);
        let last = self.last_log_ms.load(Ordering::Relaxed);
        let quiet = Self::LOG_EVERY.as_millis() as u64;
        if last != 0 && now.saturating_sub(last) < quiet {
            return 0;
        }
        match self
            .last_log_ms
            .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
        {
            Ok(_) => self.refused_since_log.swap(0, Ordering::AcqRel),
            // Another connection's refusal is reporting right now.
            Err(_) => 0,
        }
    }
}

/// One admitted connection; its slot is freed when dropped.
#[derive(Debug)]
pub(crate) struct ConnectionSlot(Arc<ConnectionSlots>);

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// When the frame being read must be complete: `None` while no frame has
/// started (the idle timeout covers silence) or without a bound.
pub(crate) fn frame_deadline(started: Option<Instant>, limit: Option<Duration>) -> Option<Instant> {
    Some(started? + limit?)
}

/// The error a frame read past its deadline is reported as, for the
/// codec's error reply.
pub(crate) fn frame_timeout_error(limit: Option<Duration>) -> CodecError {
    let what = match limit {
        Some(limit) => format!(
            "frame incomplete {} ms after its first byte",
            limit.as_millis()
        ),
        None => "frame incomplete".to_owned(),
    };
    CodecError::malformed("downstream", what)
}

/// The GoAway to send before closing gracefully, if the protocol has one
/// and the listener allows it.
pub(crate) fn goaway(codec: &dyn FrameCodec, limits: &ListenerLimits) -> Option<Frame> {
    if codec.name().starts_with("bolt") && !limits.bolt_goaway {
        return None;
    }
    codec.goaway()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_stop_at_the_limit_and_free_on_drop() {
        let slots = Arc::new(ConnectionSlots::default());
        let a = slots.admit(Some(2)).unwrap();
        let b = slots.admit(Some(2)).unwrap();
        assert!(slots.admit(Some(2)).is_none());
        assert_eq!(slots.open(), 2);
        drop(a);
        let c = slots.admit(Some(2)).unwrap();
        drop((b, c));
        assert_eq!(slots.open(), 0);
        let many: Vec<_> = (0..100).map(|_| slots.admit(None).unwrap()).collect();
        assert_eq!(slots.open(), 100);
        drop(many);
    }

    #[test]
    fn refusals_are_reported_at_most_once_a_second() {
        let slots = ConnectionSlots::default();
        assert_eq!(slots.refused_at(1), 1, "the first refusal is reported");
        for ms in 2..12 {
            assert_eq!(slots.refused_at(ms), 0);
        }
        assert_eq!(slots.refused_at(900), 0);
        assert_eq!(
            slots.refused_at(1001),
            12,
            "the quiet ones are summed in the next line"
        );
        assert!(slots.refused() <= 1, "the real clock path works too");
    }

    #[test]
    fn bolt_goaway_needs_the_listener_switch() {
        let bolt = meshgate_codecs::bolt::BoltCodec::v1();
        let dubbo = meshgate_codecs::dubbo::DubboCodec::new();
        let mut limits = ListenerLimits::default();
        assert!(goaway(&bolt, &limits).is_none());
        assert!(goaway(&dubbo, &limits).is_some());
        limits.bolt_goaway = true;
        assert!(goaway(&bolt, &limits).is_some());
    }
}
