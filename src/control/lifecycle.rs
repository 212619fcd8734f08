//! The gateway's lifecycle as an explicit state machine, observable by the
//! admin API, the CLI and tests.
//!
//! ```text
//!   Starting ──(listeners bound)──► Running ──(stop)──► Draining ──(in-flight done
//!      │                              │  ▲                          or grace over)──► Stopped
//!      └──(start failed)──────────────┼──┼──────────────────────────────────────────► Stopped
//!                                     └──┘ reload (stays Running; routes, clusters and
//!                                          listeners swapped, in-flight requests finish
//!                                          on the old ones)
//! ```

use std::fmt;
use tokio::sync::watch;

/// Where the gateway is in its life (pingora's `ExecutionPhase` idea).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Reading config, binding listeners.
    Starting,
    /// Serving.
    Running,
    /// Not accepting; finishing in-flight requests until the grace period ends.
    Draining,
    /// Done; the process exits.
    Stopped,
}

impl State {
    /// The name shown by the admin API and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Starting => "Starting",
            State::Running => "Running",
            State::Draining => "Draining",
            State::Stopped => "Stopped",
        }
    }

    fn can_become(self, next: State) -> bool {
        use State::*;
        matches!(
            (self, next),
            (Starting, Running)
                | (Starting, Stopped)
                | (Running, Draining)
                | (Draining, Stopped)
                | (Running, Stopped)
        )
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Owns the state; hands out watchers.
#[derive(Debug)]
pub struct Lifecycle {
    state: watch::Sender<State>,
}

impl Default for Lifecycle {
    fn default() -> Lifecycle {
        Lifecycle {
            state: watch::Sender::new(State::Starting),
        }
    }
}

impl Lifecycle {
    /// A lifecycle in `Starting`.
    pub fn new() -> Lifecycle {
        Lifecycle::default()
    }

    /// The current state.
    pub fn state(&self) -> State {
        *self.state.borrow()
    }

    /// Moves to `next` if the table above allows it; returns whether it did.
    /// Repeating the current state is a no-op that returns false.
    pub fn advance(&self, next: State) -> bool {
        self.state.send_if_modified(|state| {
            let allowed = state.can_become(next);
            if allowed {
                tracing::info!(from = %state, to = %next, "lifecycle");
                *state = next;
            }
            allowed
        })
    }

    /// A receiver that sees every change.
    pub fn watch(&self) -> watch::Receiver<State> {
        self.state.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_table() {
        let life = Lifecycle::new();
        assert_eq!(life.state(), State::Starting);
        assert!(
            !life.advance(State::Draining),
            "cannot drain before running"
        );
        assert!(life.advance(State::Running));
        assert!(!life.advance(State::Running), "no-op");
        assert!(life.advance(State::Draining));
        assert!(!life.advance(State::Running), "no way back");
        assert!(life.advance(State::Stopped));
        assert!(!life.advance(State::Starting));
        assert_eq!(life.state().to_string(), "Stopped");
    }

    #[tokio::test]
    async fn watchers_see_changes() {
        let life = Lifecycle::new();
        let mut rx = life.watch();
        life.advance(State::Running);
        rx.changed().await.unwrap();
        assert_eq!(*rx.borrow(), State::Running);
    }
}
